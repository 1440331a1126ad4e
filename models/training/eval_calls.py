"""Measure mono diarisation and the behaviour cues on the simulated calls (issue 13).

For every dev/test call of ``datasets/manifests/calls/calls.jsonl`` (stereo and mono copies):

- truth: each party's speech = the energy VAD of its own channel in the stereo copy;
- mono diarisation (``models.diarize``): share of single-party speech time attributed to the
  right party as the detector's diarizer returns it (one voice: all speech the caller's), and
  with the clustering forced to two voices and the caller chosen by each rule; by language,
  caller kind and level difference of the two parties in the mix; the diarisation error as
  shipped (speech given to the wrong party, missed, false alarm);
- one voice or two: how often a caller leg alone is split in two, and how often a mono mix is
  kept as two voices;
- behaviour cues (``pipeline.behaviour``) on stereo (the caller channel known from the manifest)
  and on mono (turns from the diarisation), plus the existing in-call replay measure
  (``pipeline.acoustic.find_repeats``) and a prompt-index lookup (``pipeline.fingerprint``
  landmarks of the caller side against every other call of the same split and language, this
  call left out, as a carrier's index of the run would hold them), and how many calls of each
  kind it matches (on agents, false alarms);
- each cue's AUC alone on dev (robot vs human caller; recorded-prompt robot vs human agent);
- a logistic fusion of the cues fitted on dev, EER on test with 95 % bootstrap intervals,
  by layout, language and robot kind.

    python -m models.training.eval_calls [--features FILE] [--json OUT] [--limit N]

Two caches under ``$ROBOCALL_CACHE_DIR/eval_calls``: the GE2E windows of each mono mix and
caller leg on a 0.25 s grid (``windows/<sha256 of the samples>.npz``: every hop that is a
multiple of 0.25 s reads them, so a diarizer change costs no embedding), and the features per
call in ``--features`` (JSONL), each keyed by the audio and the code that computes them
(:data:`FEATURE_CODE`), so a rerun only measures new or changed calls. Intervals are
bootstrapped over caller voices (a voice may play several calls of a split), 1,000 resamples:
EERs through :func:`models.training.metrics.bootstrap_ci` (voices drawn within each class, as
on every other page), shares of speech time and rates by drawing voices from all calls of the row.

About 700 lines: one measurement run (features, report, Markdown tables) whose pieces share the
per-call feature dict; split, each part would only pass that dict on.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import logging
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from tqdm import tqdm

import models.diarize
import pipeline.acoustic
import pipeline.behaviour
import pipeline.fingerprint
import pipeline.tones
import pipeline.vad
from models.diarize import (
    CALLER_RULE,
    CALLER_RULES,
    ONE_VOICE,
    DiarizerConfig,
    choose_caller,
    load_voice_encoder,
    party_runs,
    speech_frames,
    window_embeddings,
    window_starts,
)
from models.training.corpus import (
    MANIFEST_DIR,
    CorpusRow,
    corpus_cache_dir,
    read_manifest,
    resolve_path,
)
from models.training.metrics import bootstrap_ci, eer, roc_auc
from pipeline.acoustic import find_repeats
from pipeline.behaviour import (
    MIX_NOISE_MARGIN_DB,
    PartyTurns,
    behaviour_cues,
    speech_intervals,
    stereo_turns,
)
from pipeline.files import atomic_path
from pipeline.fingerprint import (
    SAME_PROMPT_MIN_ALIGNED,
    SAME_PROMPT_MIN_SPAN_S,
    landmarks,
    match_landmarks,
)
from pipeline.vad import FRAME_S

log = logging.getLogger("eval_calls")
CUES = (
    "reply_latency_spread_s",
    "barge_in_talk_on_fraction",
    "turn_restart_count",
    "backchannel_rate_per_min",
    "caller_talk_share",
    "replayed_speech_s",
    "prompt_index_hashes",
)
# talk share is reported only; the prompt index enters as "how many other calls share a prompt"
FUSION_CUES = (*CUES[:4], "replayed_speech_s", "prompt_index_calls")
# "" = every cue; " (no index)" = what one call shows before its campaign is in any index
FUSION_VARIANTS = {"": FUSION_CUES, " (no index)": FUSION_CUES[:-1]}
# +1: a higher value means robot; -1: lower means robot (AUCs are reported in that orientation)
DIRECTION = {
    "reply_latency_spread_s": -1,
    "barge_in_talk_on_fraction": 1,
    "turn_restart_count": 1,
    "backchannel_rate_per_min": -1,
    "caller_talk_share": 1,
    "replayed_speech_s": 1,
    "prompt_index_hashes": 1,
    "prompt_index_calls": 1,
}
N_BOOT = 1000
GRID = DiarizerConfig(hop_s=0.25)  # the windows cached per recording (see the module doc)


def cache_root() -> Path:
    return corpus_cache_dir().parent / "eval_calls"


# The modules whose code computes a call's cached features: an edit to any of them (a cue, a
# gate, the diarizer) invalidates the cache, not only the diarizer's.
FEATURE_CODE = (
    models.diarize,
    pipeline.acoustic,
    pipeline.behaviour,
    pipeline.fingerprint,
    pipeline.tones,
    pipeline.vad,
)


def feature_code_digest() -> str:
    """Keys the cached features: the code of :data:`FEATURE_CODE` and the diarizer's default
    config."""
    code = b"".join(Path(m.__file__).read_bytes() for m in FEATURE_CODE if m.__file__)
    return hashlib.sha256(code + repr(DiarizerConfig()).encode()).hexdigest()[:16]


class Windows:
    """GE2E windows of a recording on the ``GRID`` hop, cached on disk by the samples' sha256;
    the encoder loads only when a recording is not cached."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._encoder: Any = None

    def __call__(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.ascontiguousarray(samples, dtype=np.float32)
        key = hashlib.sha256(x.tobytes()).hexdigest()[:32]
        path = self.root / f"{key}_{GRID.window_s:g}_{GRID.hop_s:g}.npz"
        if path.is_file():
            with np.load(path) as z:
                return z["starts"], z["emb"]
        intervals = speech_intervals(x, margin_db=MIX_NOISE_MARGIN_DB)
        speech = speech_frames(intervals, int(x.size / 16000 / FRAME_S))
        starts = window_starts(speech, config=GRID)
        emb = np.zeros((0, 256), dtype=np.float32)
        if starts.size:
            if self._encoder is None:
                self._encoder = load_voice_encoder()
            emb = window_embeddings(x, starts_s=starts, config=GRID, encoder=self._encoder)
        with atomic_path(path, suffix=".tmp.npz") as tmp:  # two runs may share the cache
            np.savez(tmp, starts=starts, emb=emb)
        return starts, emb


def caller_voice(row: CorpusRow) -> str:
    """The unit a bootstrap resamples: a robot's campaign (voice + prompt set), an agent."""
    return row.campaign or f"agent:{row.speaker}"


def _mask(intervals: Sequence[tuple[float, float]], n: int) -> np.ndarray:
    m = np.zeros(n, dtype=bool)
    for a, b in intervals:
        m[int(a / FRAME_S) : int(b / FRAME_S)] = True
    return m


def attribution(truth: PartyTurns, predicted: PartyTurns, n: int) -> dict[str, float]:
    """Seconds of single-party truth speech given to the right / wrong party / nobody, and of
    speech predicted where neither party speaks (false alarm)."""
    tc, te = _mask(truth.caller, n), _mask(truth.callee, n)
    pc, pe = _mask(predicted.caller, n), _mask(predicted.callee, n)
    only_c, only_e = tc & ~te, te & ~tc
    right = float((only_c & pc).sum() + (only_e & pe).sum()) * FRAME_S
    wrong = float((only_c & pe).sum() + (only_e & pc).sum()) * FRAME_S
    single = float((only_c | only_e).sum()) * FRAME_S
    return {
        "right_s": right,
        "wrong_s": wrong,
        "missed_s": single - right - wrong,
        "false_alarm_s": float(((pc | pe) & ~(tc | te)).sum()) * FRAME_S,
        "single_s": single,
        "overlap_s": float((tc & te).sum()) * FRAME_S,
    }


def swap(t: PartyTurns) -> PartyTurns:
    return PartyTurns(t.callee, t.caller, "swapped", t.separation)


def read_call(
    stereo: CorpusRow, mono: CorpusRow
) -> tuple[np.ndarray, np.ndarray, np.ndarray, PartyTurns]:
    """One simulated call's caller leg, callee leg, mono mix and true turns (from the legs)."""
    x, _ = sf.read(resolve_path(stereo), dtype="float32", always_2d=True)
    ch = int(dict(stereo.extra)["caller_channel"])
    caller, callee = x[:, ch], x[:, 1 - ch]
    m, _ = sf.read(resolve_path(mono), dtype="float32")
    return caller, callee, m, stereo_turns(caller, callee)


def call_features(stereo: CorpusRow, mono: CorpusRow, windows: Windows) -> dict[str, Any]:
    """Everything measured on one call (both layouts); JSON-able."""
    extra = dict(stereo.extra)
    caller, callee, m, truth = read_call(stereo, mono)
    out: dict[str, Any] = {
        "id": stereo.group_id,
        "key": feature_key(mono),
        "caller": caller_voice(stereo),
        "split": stereo.split,
        "language": stereo.language,
        "kind": extra["caller_kind"],
        "label": stereo.label,
        "duration_s": stereo.duration_s,
    }
    n = int(m.size / 16000 / FRAME_S) + 1
    out["mono_gain_db"] = float(dict(mono.extra)["mono_gain_db"])
    split = party_runs(m, windows=windows(m))
    one = PartyTurns(split.speech, (), ONE_VOICE, split.separation)
    for rule in CALLER_RULES:  # the clustering taken as two voices whatever the gate says
        if split.second:
            caller_runs, callee_runs, reason = choose_caller(split.first, split.second, rule)
            pred = PartyTurns(caller_runs, callee_runs, reason, split.separation)
        else:
            pred = one
        out[f"mono_attr_{rule}"] = attribution(truth, pred, n)
        if rule == CALLER_RULE:
            forced = pred
    perm = attribution(truth, swap(forced), n)
    out["mono_attr_oracle_right_s"] = max(
        out[f"mono_attr_{CALLER_RULE}"]["right_s"], perm["right_s"]
    )
    best = forced if split.two_voices else one  # what the detector's diarizer returns
    out["mono_attr_shipped"] = attribution(truth, best, n)
    out["mono_two_voices"] = split.two_voices
    out["mono_spread"] = split.spread
    out["mono_persistence"] = split.persistence
    out["mono_separation"] = split.separation
    leg = party_runs(caller, windows=windows(caller))  # one voice: must not be split in two
    out["caller_leg_two_voices"] = leg.two_voices
    out["caller_leg_spread"] = leg.spread
    out["caller_leg_persistence"] = leg.persistence
    layouts = {
        "stereo": (truth, caller, True),
        "mono": (best, m, False),
    }
    for layout, (turns, samples, is_stereo) in layouts.items():
        cues = {
            e.name: e.value
            for e in behaviour_cues(turns, caller_samples=samples, is_stereo=is_stereo)
        }
        reps = find_repeats(np.asarray(samples, dtype=np.float32))
        replayed = np.zeros(int(len(samples) / 160) + 1, dtype=bool)
        for r in reps:
            replayed[int(r.again_s[0] * 100) : int(r.again_s[1] * 100)] = True
        cues["replayed_speech_s"] = float(replayed.sum()) / 100
        out[layout] = cues
    out["turns_stereo"] = [truth.caller, truth.callee]
    out["turns_mono"] = [best.caller, best.callee]
    out["landmarks_stereo"] = landmarks(caller, sample_rate_hz=16000).tolist()
    out["landmarks_mono"] = landmarks(m, sample_rate_hz=16000).tolist()
    out["truth_caller_first"] = bool(
        truth.caller and (not truth.callee or truth.caller[0][0] <= truth.callee[0][0])
    )
    return out


def feature_key(mono: CorpusRow) -> str:
    return f"{mono.path}|{mono.duration_s}|{feature_code_digest()}"


def _crop_turns(turns: Sequence[Sequence[Sequence[float]]], crop_s: float) -> PartyTurns:
    caller, callee = (
        tuple((a, min(b, crop_s)) for a, b in side if a < crop_s - 0.12) for side in turns
    )
    return PartyTurns(caller, callee, "cropped")


def cropped_features(f: dict[str, Any], pair: dict[str, CorpusRow], crop_s: float) -> None:
    """Re-measure the cues on the first ``crop_s`` seconds of the call (turns from the cache).

    Robot calls run longer than agent calls (an agent stops when its speaker's clips run out),
    and counts grow with length; cut to the same length, length carries no label.
    """
    extra = dict(pair["stereo"].extra)
    n = int(crop_s * 16000)
    x, _ = sf.read(resolve_path(pair["stereo"]), dtype="float32", always_2d=True, frames=n)
    m, _ = sf.read(resolve_path(pair["mono"]), dtype="float32", frames=n)
    caller = x[:, int(extra["caller_channel"])]
    for layout, samples, is_stereo in (("stereo", caller, True), ("mono", m, False)):
        turns = _crop_turns(f[f"turns_{layout}"], crop_s)
        cues = {
            e.name: e.value
            for e in behaviour_cues(turns, caller_samples=samples, is_stereo=is_stereo)
        }
        if crop_s >= f["duration_s"]:  # the whole call: replay and landmarks as cached
            cues["replayed_speech_s"] = f[layout]["replayed_speech_s"]
            f[layout] = cues
            continue
        reps = find_repeats(np.asarray(samples, dtype=np.float32))
        replayed = np.zeros(int(len(samples) / 160) + 1, dtype=bool)
        for r in reps:
            replayed[int(r.again_s[0] * 100) : int(r.again_s[1] * 100)] = True
        cues["replayed_speech_s"] = float(replayed.sum()) / 100
        f[layout] = cues
        f[f"landmarks_{layout}"] = landmarks(samples, sample_rate_hz=16000).tolist()


def add_prompt_index(feats: list[dict[str, Any]]) -> None:
    """Aligned landmark hashes with the best-matching *other* call of the same split/language."""
    for layout in ("stereo", "mono"):
        marks = [np.asarray(f[f"landmarks_{layout}"], dtype=np.uint32) for f in feats]
        for i, f in enumerate(feats):
            best, same = 0, 0
            for j, g in enumerate(feats):
                if i == j or g["split"] != f["split"] or g["language"] != f["language"]:
                    continue
                match = match_landmarks(marks[i], marks[j])
                best = max(best, match.aligned)
                # whole calls: coverage of the shorter landmark set is diluted by everything
                # else said, so only the aligned count and span of the rule apply
                same += (
                    match.aligned >= SAME_PROMPT_MIN_ALIGNED
                    and match.span_s >= SAME_PROMPT_MIN_SPAN_S
                )
            f[layout]["prompt_index_hashes"] = float(best)
            f[layout]["prompt_index_calls"] = float(same)


def index_hits(feats: Sequence[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Calls whose caller side the prompt index matches to another call of the split
    (``prompt_index_calls`` > 0), by split, language, caller kind and layout: on robots what it
    should find, on agents its false alarms (a person never says the same audio twice)."""
    out: dict[str, dict[str, int]] = {}
    for f in feats:
        for layout in ("stereo", "mono"):
            row = out.setdefault(
                f"{f['split']}/{f['language']}/{f['kind']}/{layout}", {"calls": 0, "matched": 0}
            )
            row["calls"] += 1
            row["matched"] += int(f[layout].get("prompt_index_calls", 0.0) > 0)
    return dict(sorted(out.items()))


def resample(groups: Sequence[str], rng: np.random.Generator) -> np.ndarray:
    """Indices of one bootstrap sample that draws whole groups (caller voices) with replacement."""
    members = _members(tuple(groups))
    drawn = rng.integers(0, len(members), len(members))
    return np.concatenate([members[k] for k in drawn])


@functools.lru_cache(maxsize=256)
def _members(groups: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    names = sorted(set(groups))
    return tuple(np.flatnonzero(np.array(groups) == g) for g in names)


LOG_CUES = {"turn_restart_count", "replayed_speech_s", "prompt_index_calls"}  # counts: log1p


def _value(f: dict[str, Any], layout: str, cue: str) -> float:
    v = f[layout].get(cue)
    if v is None:
        return math.nan
    return math.log1p(max(float(v), 0.0)) if cue in LOG_CUES else float(v)


def _matrix(
    feats: Sequence[dict[str, Any]], layout: str, cues: Sequence[str] = FUSION_CUES
) -> np.ndarray:
    """Cue values (counts through log1p); a missing cue is NaN, set to the dev median later."""
    return np.array([[_value(f, layout, c) for c in cues] for f in feats])


def fit_and_score(
    dev: Sequence[dict[str, Any]],
    test: Sequence[dict[str, Any]],
    layout: str,
    cues: Sequence[str] = FUSION_CUES,
) -> tuple[np.ndarray, dict[str, Any]]:
    from sklearn.linear_model import LogisticRegression

    xd, xt = _matrix(dev, layout, cues), _matrix(test, layout, cues)
    med = np.nanmedian(xd, axis=0)
    med = np.where(np.isfinite(med), med, 0.0)
    xd = np.where(np.isfinite(xd), xd, med)
    xt = np.where(np.isfinite(xt), xt, med)
    mu, sd = xd.mean(axis=0), xd.std(axis=0) + 1e-9
    yd = np.array([f["label"] == "robot" for f in dev], dtype=int)
    clf = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000)
    clf.fit((xd - mu) / sd, yd)
    coef = {c: round(float(w), 3) for c, w in zip(cues, clf.coef_[0], strict=True)}
    return clf.decision_function((xt - mu) / sd), {"coef_per_sd": coef, "mean": mu.tolist()}


KINDS = ("tts_robot", "recorded_robot", "human_agent")
LEVELS = ("0-2 dB", "2-4 dB", "4-6 dB")  # |caller - callee| level in the mono mix


def _level(f: dict[str, Any]) -> str:
    return LEVELS[min(int(abs(f["mono_gain_db"]) // 2), len(LEVELS) - 1)]


def _share_ci(
    right: np.ndarray, total: np.ndarray, groups: Sequence[str], rng: np.random.Generator
) -> dict[str, Any]:
    """right.sum() / total.sum() with a 95 % bootstrap interval over caller voices."""
    boots = []
    for _ in range(N_BOOT):
        idx = resample(groups, rng)
        boots.append(right[idx].sum() / max(total[idx].sum(), 1e-9))
    return {
        "accuracy": float(right.sum() / max(total.sum(), 1e-9)),
        "ci95": [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))],
        "calls_below_90pct": int(np.sum(right / np.maximum(total, 1e-9) < 0.9)),
        "caller_voices": len(set(groups)),
    }


def _rate_ci(
    flags: Sequence[bool], groups: Sequence[str], rng: np.random.Generator
) -> dict[str, Any]:
    x = np.asarray(flags, dtype=float)
    row = _share_ci(x, np.ones_like(x), groups, rng)
    return {"rate": row["accuracy"], "ci95": row["ci95"], "n": int(x.size)}


def _attribution_row(sel: Sequence[dict[str, Any]], rng: np.random.Generator) -> dict[str, Any]:
    single = np.array([f["mono_attr_shipped"]["single_s"] for f in sel])
    groups = [f["caller"] for f in sel]
    row: dict[str, Any] = {"calls": len(sel)}
    row["shipped"] = _share_ci(
        np.array([f["mono_attr_shipped"]["right_s"] for f in sel]), single, groups, rng
    )
    for rule in CALLER_RULES:
        right = np.array([f[f"mono_attr_{rule}"]["right_s"] for f in sel])
        row[rule] = _share_ci(right, single, groups, rng)
    oracle = np.array([f["mono_attr_oracle_right_s"] for f in sel])
    row["oracle_permutation_accuracy"] = float(oracle.sum() / single.sum())
    row["two_voices"] = int(sum(f["mono_two_voices"] for f in sel))
    # diarisation error as shipped, over single-party truth speech (overlap left out)
    for part in ("wrong", "missed", "false_alarm"):
        row[f"{part}_share"] = float(
            sum(f["mono_attr_shipped"][f"{part}_s"] for f in sel) / single.sum()
        )
    row["der"] = row["wrong_share"] + row["missed_share"] + row["false_alarm_share"]
    return row


def report(feats: list[dict[str, Any]]) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {
        "counts": {},
        "diarisation": {},
        "one_voice": {},
        "cue_auc_dev": {},
        "test": {},
        "index_hits": index_hits(feats),
    }
    for f in feats:
        key = f"{f['split']}/{f['language']}/{f['kind']}"
        out["counts"][key] = out["counts"].get(key, 0) + 1
    # diarisation: attribution as shipped and by caller rule, by split / language / caller kind
    # and by the level difference of the two parties in the mix
    groups = [(lang, kind, "all") for lang in ("en", "zh", "all") for kind in (*KINDS, "all")]
    groups += [("all", "all", level) for level in LEVELS]
    # train last, so that adding it (--splits train,dev,test) draws dev and test's intervals as
    # before: the gate and caller rule are chosen on dev, so train is a second held-out set
    for split in [s for s in ("dev", "test", "train") if any(f["split"] == s for f in feats)]:
        for lang, kind, level in groups:
            sel = [
                f
                for f in feats
                if f["split"] == split
                and lang in (f["language"], "all")
                and kind in (f["kind"], "all")
                and level in (_level(f), "all")
            ]
            if sel:
                out["diarisation"][f"{split}/{lang}/{kind}/{level}"] = _attribution_row(sel, rng)
        sel = [f for f in feats if f["split"] == split]
        voices = [f["caller"] for f in sel]
        out["one_voice"][split] = {
            "caller_legs_split": _rate_ci([f["caller_leg_two_voices"] for f in sel], voices, rng),
            "mixes_kept_two": _rate_ci([f["mono_two_voices"] for f in sel], voices, rng),
        }
    dev = [f for f in feats if f["split"] == "dev"]
    test = [f for f in feats if f["split"] == "test"]
    for layout in ("stereo", "mono"):
        for pair in ("robot_vs_human", "recorded_vs_agent", "tts_vs_agent"):
            sel = [f for f in dev if _in_pair(f, pair)]
            y = np.array([f["label"] == "robot" for f in sel], dtype=int)
            for cue in CUES + ("prompt_index_calls",):
                vals = [(yy, f[layout].get(cue)) for yy, f in zip(y, sel, strict=True)]
                vals = [(a, b) for a, b in vals if b is not None]
                ys = np.array([a for a, _ in vals])
                if len(ys) < 4 or not 0 < ys.sum() < len(ys):
                    continue
                auc = roc_auc(ys, DIRECTION[cue] * np.array([b for _, b in vals]))
                out["cue_auc_dev"][f"{layout}/{pair}/{cue}"] = {
                    "auc": round(auc, 3),
                    "measured_in": f"{len(ys)}/{len(sel)}",
                }
        for variant, cues in FUSION_VARIANTS.items():
            name = layout + variant
            scores, model = fit_and_score(dev, test, layout, cues)
            out["test"][f"{name}/fusion"] = model
            for f, sc in zip(test, scores, strict=True):
                f[f"score_{name}"] = float(sc)
            _eer_rows(out, test, name)
    return out


def _eer_rows(out: dict[str, Any], test: Sequence[dict[str, Any]], name: str) -> None:
    for pair in PAIRS:
        for lang in ("en", "zh", "all"):
            sel = [f for f in test if _in_pair(f, pair) and lang in (f["language"], "all")]
            y = np.array([f["label"] == "robot" for f in sel], dtype=int)
            if 0 < y.sum() < y.size:
                s = np.array([f[f"score_{name}"] for f in sel])
                rate, _ = eer(y, s)
                # caller voices drawn within each class, as on every other page
                ci = bootstrap_ci(y, s, groups=[f["caller"] for f in sel], rounds=N_BOOT)["eer"]
                out["test"][f"{name}/{pair}/{lang}"] = {
                    "eer": round(rate, 4),
                    "ci95": [round(v, 4) for v in ci],
                    "auc": round(roc_auc(y, s), 4),
                    "robot_calls": int(y.sum()),
                    "human_calls": int(y.size - y.sum()),
                }


def _pct(v: float) -> str:
    return f"{100 * v:.1f} %"


def markdown(result: dict[str, Any]) -> str:
    """The report's tables as Markdown (pasted into docs/evaluation_calls.md)."""
    lines = ["### Mono diarisation: speech time attributed to the right party", ""]
    lines += [
        "| split | language | caller kind | level difference | calls | caller voices | "
        f"as shipped (95 % CI) | two voices kept | forced two, rule `{CALLER_RULE}` (95 % CI) | "
        + " | ".join(f"rule `{rule}`" for rule in CALLER_RULES if rule != CALLER_RULE)
        + " | best permutation | missed speech | calls < 90 % (shipped) |",
        "|---" * (11 + len(CALLER_RULES)) + "|",
    ]
    for key, row in sorted(result["diarisation"].items()):
        split, lang, kind, level = key.split("/")
        ship, forced = row["shipped"], row[CALLER_RULE]
        voices = ship["caller_voices"]
        # one caller voice: a bootstrap over voices has nothing to resample
        ci = " - ".join(_pct(v) for v in ship["ci95"]) if voices > 1 else "no interval"
        ci_forced = " - ".join(_pct(v) for v in forced["ci95"]) if voices > 1 else "no interval"
        others = " | ".join(
            _pct(row[rule]["accuracy"]) for rule in CALLER_RULES if rule != CALLER_RULE
        )
        lines.append(
            f"| {split} | {lang} | {kind} | {level} | {row['calls']} | {voices} | "
            f"{_pct(ship['accuracy'])} ({ci}) | {row['two_voices']} | "
            f"{_pct(forced['accuracy'])} ({ci_forced}) | {others} | "
            f"{_pct(row['oracle_permutation_accuracy'])} | {_pct(row['missed_share'])} | "
            f"{ship['calls_below_90pct']} |"
        )
    lines += ["", "### Diarisation error as shipped (share of single-party speech time)", ""]
    lines += [
        "| split | language | caller kind | calls | given to the wrong party | missed | "
        "false alarm | diarisation error |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, row in sorted(result["diarisation"].items()):
        split, lang, kind, level = key.split("/")
        if level == "all":
            lines.append(
                f"| {split} | {lang} | {kind} | {row['calls']} | {_pct(row['wrong_share'])} | "
                f"{_pct(row['missed_share'])} | {_pct(row['false_alarm_share'])} | "
                f"{_pct(row['der'])} |"
            )
    lines += ["", "### One voice or two", ""]
    lines += [
        "| split | caller legs alone split in two (95 % CI) | mono mixes kept as two voices |",
        "|---|---|---|",
    ]
    for split, row in sorted(result["one_voice"].items()):
        a, b = row["caller_legs_split"], row["mixes_kept_two"]
        lines.append(
            f"| {split} | {_pct(a['rate'])} ({' - '.join(_pct(v) for v in a['ci95'])}), "
            f"n={a['n']} | {_pct(b['rate'])} ({' - '.join(_pct(v) for v in b['ci95'])}), "
            f"n={b['n']} |"
        )
    lines += ["", "### Calls the prompt index matches to another call of the split", ""]
    lines += ["| split | language | caller kind | stereo | mono |", "|---|---|---|---|---|"]
    hits = result["index_hits"]
    for key in sorted({k.rsplit("/", 1)[0] for k in hits}):
        split, lang, kind = key.split("/")
        cells = [hits[f"{key}/{layout}"] for layout in ("stereo", "mono")]
        lines.append(
            f"| {split} | {lang} | {kind} | "
            + " | ".join(f"{c['matched']} of {c['calls']}" for c in cells)
            + " |"
        )
    lines += ["", "### Each cue alone on dev calls (AUC, oriented so that 1.0 = perfect)", ""]
    lines += [
        "| cue | layout | robot vs human | recorded vs agent | TTS vs agent | measured in |",
        "|---|---|---|---|---|---|",
    ]
    auc = result["cue_auc_dev"]
    for cue in (*CUES, "prompt_index_calls"):
        for layout in ("stereo", "mono"):
            cells = [auc.get(f"{layout}/{pair}/{cue}") for pair in PAIRS]
            if not any(cells):
                continue
            vals = [f"{c['auc']:.3f}" if c else "n/a" for c in cells]
            measured = cells[0]["measured_in"] if cells[0] else ""
            lines.append(f"| `{cue}` | {layout} | {' | '.join(vals)} | {measured} |")
    lines += ["", "### Fused cues on test calls (logistic fit on dev), EER", ""]
    lines += [
        "| layout | comparison | language | robot / human calls | EER (95 % CI) | AUC |",
        "|---|---|---|---|---|---|",
    ]
    for key, row in sorted(result["test"].items()):
        if key.endswith("/fusion"):
            continue
        layout, pair, lang = key.split("/")
        ci = " - ".join(_pct(v) for v in row["ci95"])
        lines.append(
            f"| {layout} | {pair} | {lang} | {row['robot_calls']} / {row['human_calls']} | "
            f"{_pct(row['eer'])} ({ci}) | {row['auc']:.3f} |"
        )
    lines += ["", "Fitted coefficients (logit per dev standard deviation):", ""]
    for key in sorted(k for k in result["test"] if k.endswith("/fusion")):
        coef = result["test"][key]["coef_per_sd"]
        lines.append(
            f"- {key.removesuffix('/fusion')}: "
            + ", ".join(f"`{k}` {v:+.2f}" for k, v in coef.items())
        )
    return "\n".join(lines) + "\n"


PAIRS = ("robot_vs_human", "recorded_vs_agent", "tts_vs_agent")


def _in_pair(f: dict[str, Any], pair: str) -> bool:
    kind = f["kind"]
    if pair == "robot_vs_human":
        return True
    if pair == "recorded_vs_agent":
        return kind in ("recorded_robot", "human_agent")
    return kind in ("tts_robot", "human_agent")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=MANIFEST_DIR / "calls" / "calls.jsonl")
    parser.add_argument(
        "--features",
        type=Path,
        default=cache_root() / "features_v3.jsonl",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the report here")
    parser.add_argument("--markdown", type=Path, default=None, help="write the tables here")
    parser.add_argument("--splits", default="dev,test")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument(
        "--crop-s", type=float, default=None, help="measure the cues on the first N s only"
    )
    parser.add_argument(
        "--kinds", default="tts_robot,recorded_robot,human_agent", help="caller kinds to measure"
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    rows = read_manifest(args.manifest)
    splits = set(args.splits.split(","))
    by_group: dict[str, dict[str, CorpusRow]] = {}
    for r in rows:
        if r.split in splits and dict(r.extra)["caller_kind"] in args.kinds.split(","):
            by_group.setdefault(r.group_id, {})[dict(r.extra)["layout"]] = r
    keys = {g: feature_key(pair["mono"]) for g, pair in by_group.items()}
    done: dict[str, dict[str, Any]] = {}
    if args.features.is_file():
        for line in args.features.read_text().splitlines():
            f = json.loads(line)
            if f.get("key") == keys.get(f["id"]):  # the same audio and diarizer code
                done[f["id"]] = f
    todo = [g for g in sorted(by_group) if g not in done][: args.limit]
    windows = Windows(cache_root() / "windows")
    args.features.parent.mkdir(parents=True, exist_ok=True)
    with args.features.open("a") as handle:
        for g in tqdm(todo, desc="calls", disable=args.no_progress):
            pair = by_group[g]
            f = call_features(pair["stereo"], pair["mono"], windows)
            done[g] = f
            handle.write(json.dumps(f) + "\n")
            handle.flush()
    feats = [done[g] for g in sorted(by_group) if g in done]
    if args.crop_s is not None:
        for f in tqdm(feats, desc="crop", disable=args.no_progress):
            cropped_features(f, by_group[f["id"]], args.crop_s)
    add_prompt_index(feats)
    for f in feats:
        f.pop("landmarks_stereo", None)
        f.pop("landmarks_mono", None)
    result = report(feats)
    text = json.dumps(result, indent=1, sort_keys=True)
    if args.markdown:
        args.markdown.write_text(markdown(result))
    if args.json:
        args.json.write_text(text + "\n")
    else:
        sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
