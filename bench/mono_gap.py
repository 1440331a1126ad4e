"""Where mono calls lose the recorded-prompt robots: the gap to stereo, step by step (issue 13).

The simulated calls the fusion scores (``fusion_calls.select_calls``: every dev call, 10 per
cell on test, as ``robocall train --stage fusion --calls 10`` chose them), recorded-prompt
robots and live agents only, both copies of each call cropped and run through the whole
detector exactly as the fusion's call examples are (``fusion_calls.call_evidence``: its ASR
and encoder caches, the heads rescored). Each call is then scored by the shipped fusion
(``models/weights/fusion.json``, all cues) under these variants:

- ``stereo``: the stereo copy as shipped;
- ``mono``: the mono copy as shipped;
- ``mono, estimated turns, true caller``: the diarizer's two voices as shipped, the caller the
  cluster holding more of the simulator's caller speech (its behaviour cues measured anew);
- ``mono, two voices forced, true caller``: the same with the one-voice gate ignored;
- ``mono, oracle turns``: the mix's speech frames (the diarizer's VAD) given to the party whose
  simulator segments (``extra["segments"]``) cover them, one party per frame, read as mono;
- ``mono, oracle turns + overlap cues``: the same with frames in both parties' segments given to
  both, and the overlap cues (barge-in, backchannels) measured as on stereo (and so, as on
  stereo, without the two-channel timing cues of the legs: ``behaviour_cues`` adds those on
  mono only);
- ``mono, stereo's other cues``: the mono behaviour cues with the stereo copy's acoustic, text
  and voice evidence (the caller's channel alone rather than the mix);
- ``mono, voice on the caller's leg``: the mono evidence with ``synthetic_voice`` scored on the
  caller's leg (``pipeline.behaviour.party_legs``: the callee's speech turned down to the mix's
  noise floor) of the diarizer's split as shipped (its caller choice; one voice: the mix), not
  on the whole mix; ``... of the oracle turns``: the leg of the true caller (oracle turns);
- ``mono, stereo's <group>``: the mono evidence with one group (:data:`GROUPS`: behaviour cues,
  two-channel timing cues, ``no_reaction_to_callee``, ``replayed_speech_s``,
  ``synthetic_voice``, text cues; or every other acoustic cue) as the stereo copy has it.

Per variant: fused EER and AUC with 95 % bootstrap intervals over caller voices (robots and
agents drawn apart, ``metrics.bootstrap_ci``), the share called robot at the shipped
threshold, and per cue its presence and mean hand-set weight per class (interval over voices).
Per call results are cached under ``$ROBOCALL_CACHE_DIR/bench/mono_gap`` keyed by the call, this
script and the code that decides the evidence, so a rerun only scores what changed.

    nice -n 10 python bench/mono_gap.py --split dev [--json OUT]
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.diarize import ONE_VOICE, DiarizerConfig, choose_caller, party_runs
from models.loading import load_fusion
from models.training import metrics as M
from models.training.corpus import CorpusRow, corpus_cache_dir
from models.training.eval_calls import Windows
from models.training.eval_calls import cache_root as eval_calls_cache
from models.training.fusion_calls import (
    BASE_CODE,
    HEAD_CODE,
    analyze_detector,
    call_evidence,
    decode_call,
    layout,
    robot_kind,
    select_calls,
    with_cached_frames,
)
from models.training.fusion_fit import TEXT_CUES
from models.training.leakage import simulated_calls
from pipeline.behaviour import (
    BEHAVIOUR_RULES,
    MIX_NOISE_MARGIN_DB,
    Interval,
    PartyTurns,
    behaviour_cues,
    party_legs,
    speech_intervals,
)
from pipeline.detector import synthetic_voice_evidence
from pipeline.fuse import FusionModel, sigmoid
from pipeline.vad import FRAME_S

KINDS = ("recorded_robot", "human_agent")
TEST_PER_CELL = 10  # as the shipped verdict page (robocall train --stage fusion --calls 10)
BEHAVIOUR = frozenset(BEHAVIOUR_RULES)
VARIANTS = (
    "stereo",
    "mono",
    "mono, estimated turns, true caller",
    "mono, two voices forced, true caller",
    "mono, oracle turns",
    "mono, oracle turns + overlap cues",
    "mono, voice on the caller's leg",
    "mono, voice on the caller's leg of the oracle turns",
    "mono, stereo's behaviour cues",
    "mono, stereo's other cues",
    "mono, stereo's two-channel timing cues",
    "mono, stereo's no_reaction_to_callee",
    "mono, stereo's replayed_speech_s",
    "mono, stereo's synthetic_voice",
    "mono, stereo's text cues",
    "mono, stereo's other acoustic cues",
)
# What pipeline.acoustic.latency_cues measures between two channels (on mono: between the legs
# pipeline.behaviour.party_legs cuts from the mix by the turns).
TIMING = frozenset({"response_latency_median_s", "response_latency_std_s", "talk_over_fraction"})
VOICE = frozenset({"synthetic_voice"})
# Evidence groups swapped one at a time from the stereo copy into the mono one; the rest of the
# evidence (pitch, spectrum, pauses, ...) is "other acoustic".
GROUPS = {
    "behaviour cues": BEHAVIOUR,
    "two-channel timing cues": TIMING,
    "no_reaction_to_callee": frozenset({"no_reaction_to_callee"}),
    "replayed_speech_s": frozenset({"replayed_speech_s"}),
    "synthetic_voice": VOICE,
    "text cues": frozenset(TEXT_CUES),
}


def cache_dir() -> Path:
    return corpus_cache_dir().parent / "bench" / "mono_gap"


def code_digest() -> str:
    """Keys the per-call cache: this script, the code behind the evidence and the heads' weights
    (the voice head rescores the legs here)."""
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    weights = ("models/weights/synth_head.npz", "models/weights/text_heads.npz")
    for name in sorted({*BASE_CODE, *HEAD_CODE, *weights, "bench/mono_gap.py"}):
        h.update((root / name).read_bytes())
    return h.hexdigest()[:16]


def segment_masks(row: CorpusRow, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """(caller, callee) boolean ``FRAME_S`` masks of the simulator's segments of a call."""
    masks = {"caller": np.zeros(n_frames, bool), "callee": np.zeros(n_frames, bool)}
    for seg in json.loads(dict(row.extra)["segments"]):
        masks[seg["role"]][int(seg["start_s"] / FRAME_S) : int(seg["end_s"] / FRAME_S)] = True
    return masks["caller"], masks["callee"]


def runs(mask: np.ndarray) -> tuple[Interval, ...]:
    """Intervals (s) of the True runs of a frame mask."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
    return tuple(
        (round(float(a) * FRAME_S, 3), round(float(b) * FRAME_S, 3))
        for a, b in zip(edges[::2], edges[1::2], strict=True)
    )


def oracle_turns(
    mix: np.ndarray, caller: np.ndarray, callee: np.ndarray, *, overlap: bool
) -> PartyTurns:
    """The mix's speech frames given to the party whose true segments cover them.

    ``overlap``: a frame in both parties' segments goes to both; otherwise to the caller only
    when the callee's segment does not cover it (a callee turn over a prompt holds the floor).
    """
    speech = np.zeros(caller.size, bool)
    for a, b in speech_intervals(mix, margin_db=MIX_NOISE_MARGIN_DB):
        speech[int(a / FRAME_S) : int(b / FRAME_S)] = True
    c = speech & caller & (True if overlap else ~callee)
    return PartyTurns(runs(c), runs(speech & callee), "oracle", 1.0)


def _overlap_s(a: Sequence[Interval], mask: np.ndarray) -> float:
    return float(sum(mask[int(s / FRAME_S) : int(e / FRAME_S)].sum() for s, e in a)) * FRAME_S


def estimated_turns(
    mix: np.ndarray, caller: np.ndarray, windows: Windows, *, force: bool
) -> PartyTurns:
    """The diarizer's two voices (its shipped config), the caller the one that holds more true
    caller speech; ``force``: kept as two voices whatever the one-voice gate says."""
    split = party_runs(mix, config=DiarizerConfig(), windows=windows(mix))
    if not split.second or not (split.two_voices or force):
        return PartyTurns(split.speech, (), ONE_VOICE, split.separation)
    a, b = split.first, split.second
    if _overlap_s(a, caller) < _overlap_s(b, caller):
        a, b = b, a
    return PartyTurns(a, b, "true caller", split.separation)


def shipped_turns(mix: np.ndarray, windows: Windows) -> PartyTurns:
    """The diarizer's split as shipped (``models.diarize.diarize`` on the cached windows)."""
    split = party_runs(mix, config=DiarizerConfig(), windows=windows(mix))
    if not split.two_voices:
        return PartyTurns(split.speech, (), ONE_VOICE, split.separation)
    caller, callee, reason = choose_caller(split.first, split.second, DiarizerConfig().caller_rule)
    return PartyTurns(caller, callee, reason, split.separation)


def leg_voice(detector: Any, mix: np.ndarray, turns: PartyTurns) -> dict[str, float]:
    """``synthetic_voice`` of the caller's leg of ``turns`` (one voice: of the mix), or {}."""
    leg = party_legs(mix, turns)[0] if turns.callee else mix
    score = with_cached_frames(detector.synth_scorer).score(leg)
    return {} if score is None else {"synthetic_voice": synthetic_voice_evidence(score).weight}


def _behaviour(turns: PartyTurns, samples: np.ndarray, *, is_stereo: bool) -> dict[str, float]:
    return {
        e.name: e.weight for e in behaviour_cues(turns, caller_samples=samples, is_stereo=is_stereo)
    }


def _with(cues: dict[str, float], behaviour: dict[str, float]) -> dict[str, float]:
    return swapped(cues, behaviour, BEHAVIOUR | TIMING)


def swapped(
    into: dict[str, float], source: dict[str, float], names: frozenset[str]
) -> dict[str, float]:
    """``into`` with its cues in ``names`` replaced by those ``source`` has."""
    return {
        **{k: v for k, v in into.items() if k not in names},
        **{k: v for k, v in source.items() if k in names},
    }


def call_variants(
    detector: Any, stereo: CorpusRow, mono: CorpusRow, windows: Windows
) -> dict[str, dict[str, float]] | None:
    """Each variant's cues (name -> hand-set weight) of one call; None if either copy fails."""
    got = {"stereo": call_evidence(detector, stereo), "mono": call_evidence(detector, mono)}
    if any("error" in g for g in got.values()):
        return None
    s_cues, m_cues = got["stereo"]["cues"], got["mono"]["cues"]
    mix = decode_call(detector, mono).caller()
    n = int(mix.size / 16000 / FRAME_S)
    caller, callee = segment_masks(mono, n)
    grouped = frozenset().union(*GROUPS.values())
    other = frozenset(s_cues) | frozenset(m_cues)
    variants = {
        "stereo": s_cues,
        "mono": m_cues,
        "mono, estimated turns, true caller": _with(
            m_cues,
            _behaviour(estimated_turns(mix, caller, windows, force=False), mix, is_stereo=False),
        ),
        "mono, two voices forced, true caller": _with(
            m_cues,
            _behaviour(estimated_turns(mix, caller, windows, force=True), mix, is_stereo=False),
        ),
        "mono, oracle turns": _with(
            m_cues,
            _behaviour(oracle_turns(mix, caller, callee, overlap=False), mix, is_stereo=False),
        ),
        "mono, oracle turns + overlap cues": _with(
            m_cues,
            _behaviour(oracle_turns(mix, caller, callee, overlap=True), mix, is_stereo=True),
        ),
        "mono, voice on the caller's leg": swapped(
            m_cues, leg_voice(detector, mix, shipped_turns(mix, windows)), VOICE
        ),
        "mono, voice on the caller's leg of the oracle turns": swapped(
            m_cues,
            leg_voice(detector, mix, oracle_turns(mix, caller, callee, overlap=False)),
            VOICE,
        ),
        "mono, stereo's other cues": swapped(m_cues, s_cues, other - BEHAVIOUR),
        "mono, stereo's other acoustic cues": swapped(m_cues, s_cues, other - grouped),
    }
    for group, names in GROUPS.items():
        variants[f"mono, stereo's {group}"] = swapped(m_cues, s_cues, names)
    return variants


def collect(split: str) -> list[dict[str, Any]]:
    """One record per call of ``split`` (recorded robots and agents): its variants' cues."""
    rows = select_calls(
        simulated_calls(), split=split, per_cell=None if split == "dev" else TEST_PER_CELL
    )
    pairs: dict[str, dict[str, CorpusRow]] = {}
    for r in rows:
        if robot_kind(r) in KINDS:
            pairs.setdefault(r.group_id, {})[layout(r)] = r
    root = cache_dir() / code_digest()
    root.mkdir(parents=True, exist_ok=True)
    detector = None
    windows = Windows(eval_calls_cache() / "windows")  # GE2E windows cached per mix
    out = []
    for group, pair in sorted(pairs.items()):
        path = root / f"{hashlib.sha256(group.encode()).hexdigest()[:24]}.json"
        if path.is_file():
            out.append(json.loads(path.read_text()))
            continue
        if detector is None:
            detector = analyze_detector()
        variants = call_variants(detector, pair["stereo"], pair["mono"], windows)
        record = {
            "group": group,
            "voice": pair["mono"].speaker,
            "kind": robot_kind(pair["mono"]),
            "language": pair["mono"].language,
            "y": int(pair["mono"].label == "robot"),
            "variants": variants,
        }
        path.write_text(json.dumps(record, sort_keys=True))
        out.append(record)
    return out


def _mean_ci(values: np.ndarray, groups: Sequence[str], rounds: int = 1000) -> tuple[float, float]:
    """95 % interval of the mean of ``values``, resampling whole groups (voices)."""
    _, of = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    sums, sizes = np.bincount(of, weights=values), np.bincount(of).astype(float)
    draws = np.random.default_rng(0).integers(0, sizes.size, size=(rounds, sizes.size))
    means = sums[draws].sum(axis=1) / sizes[draws].sum(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def summarise(records: Sequence[dict[str, Any]], model: FusionModel) -> dict[str, Any]:
    """Per variant: fused EER/AUC [95 % CI over voices], called robot, per-cue presence/means."""
    kept = [r for r in records if r["variants"] is not None]
    y = np.array([r["y"] for r in kept], dtype=np.int64)
    voices = [r["voice"] for r in kept]
    out: dict[str, Any] = {"calls": len(kept), "failed": len(records) - len(kept)}
    for v in VARIANTS:
        cue_sets = [r["variants"][v] for r in kept]
        logit = np.array([model.logit(tuple(sorted(c.items()))) for c in cue_sets])
        ci = M.bootstrap_ci(y, logit, groups=voices)
        row: dict[str, Any] = {
            "eer": M.eer(y, logit)[0],
            "eer_ci": ci["eer"],
            "auc": M.roc_auc(y, logit),
            "auc_ci": ci["auc"],
            "robots_called": float((sigmoid(logit[y == 1]) >= model.threshold).mean()),
            "people_called": float((sigmoid(logit[y == 0]) >= model.threshold).mean()),
            "cues": {},
        }
        for cue in sorted({k for c in cue_sets for k in c}):
            per_class = {}
            for label, name in ((1, "robot"), (0, "agent")):
                idx = np.flatnonzero(y == label)
                g = [voices[i] for i in idx]
                has = np.array([cue in cue_sets[i] for i in idx])
                w = np.array([cue_sets[i].get(cue, 0.0) for i in idx])
                per_class[name] = {
                    "present": float(has.mean()),
                    "present_ci": M.rate_ci(has, g),
                    "mean_weight": float(w.mean()),
                    "mean_weight_ci": _mean_ci(w, g),
                }
            row["cues"][cue] = per_class
        out[v] = row
    return out


def markdown(split: str, s: dict[str, Any]) -> str:
    """The fused table and the behaviour cues' presence per variant, as Markdown."""
    lines = [
        f"{split}: {s['calls']} calls ({s['failed']} failed)",
        "",
        "| variant | EER [95 % CI] | AUC [95 % CI] | robots called | people called |",
        "|---|---|---|---|---|",
    ]
    for v in VARIANTS:
        r = s[v]
        lines.append(
            f"| {v} | {r['eer']:.1%} [{r['eer_ci'][0]:.1%}-{r['eer_ci'][1]:.1%}] | "
            f"{r['auc']:.3f} [{r['auc_ci'][0]:.3f}-{r['auc_ci'][1]:.3f}] | "
            f"{r['robots_called']:.1%} | {r['people_called']:.1%} |"
        )
    lines += ["", "| variant | cue | robots: present, mean weight | agents: present, mean weight |"]
    lines.append("|---|---|---|---|")
    for v in VARIANTS:
        for cue, c in s[v]["cues"].items():
            if cue not in BEHAVIOUR | TIMING and v not in ("stereo", "mono"):
                continue
            rb, ag = c["robot"], c["agent"]
            lines.append(
                f"| {v} | {cue} | {rb['present']:.0%}, {rb['mean_weight']:+.2f} "
                f"[{rb['mean_weight_ci'][0]:+.2f}, {rb['mean_weight_ci'][1]:+.2f}] | "
                f"{ag['present']:.0%}, {ag['mean_weight']:+.2f} "
                f"[{ag['mean_weight_ci'][0]:+.2f}, {ag['mean_weight_ci'][1]:+.2f}] |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=("dev", "test"), action="append", required=True)
    parser.add_argument("--json", type=Path, help="write the summaries here")
    args = parser.parse_args(argv)
    model = load_fusion()
    if model is None:
        raise SystemExit("no fitted fusion (models/weights/fusion.json)")
    result = {}
    for split in args.split:
        result[split] = summarise(collect(split), model)
        print(markdown(split, result[split]), flush=True)  # noqa: T201
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
