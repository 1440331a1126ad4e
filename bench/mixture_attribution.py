"""Which change made the whole detector worse on the end-to-end test mixtures (issues 11/12).

An attribution, not a fix: it reads test figures to say which change moved them, and chooses
nothing on them. Between two states of the repository the synthetic-voice head was recalibrated
(same weights; its pooling quantile and its Platt pair changed), the fusion was refitted (cue
scales, the cap of a human voice, bias, threshold) and the two-party latency cues of
``pipeline/acoustic.py`` changed. This scores the same test mixtures that ``train_fusion --e2e N``
runs (``fusion_calls.end_to_end``: the first N test rows of ``mixed.jsonl`` by the fusion's
seeded hash, each through the telephone channel with its seeded draw) with every combination,
from caches alone: no ASR, no Whisper encoder pass.

- Evidence no head decides (acoustic, behaviour, latency cues): the head-free evidence
  ``fusion_calls.audio_evidence`` kept per mixture under the digest of the code that decides it,
  read for the code of ``--old-rev`` (its ``fusion_calls.BASE_CODE`` files, as git blobs) and of
  the working tree; the report counts the mixtures where they differ. The tables use the
  working tree's for every combination, so with a count above 0 the latency cues' share is not
  in them (on the mixtures of 2026-12-05 it is 0: one caller, no two-party turns).
- Text cues: the kept scored evidence of the working tree's code with the new head.
- The voice cue: recomputed. The head scores windows with log-odds ``a * raw + b`` and pools them
  with a duration-weighted quantile; ``a > 0``, so pooling the raw logits first gives the same
  value. Each mixture's windows are scored once per head file with its Platt pair set to (1, 0),
  from the Whisper frames the e2e run cached (``CachedFrameEncoder``; a missing one is an error,
  never a new encoder pass) and the AASIST embedding (computed: a small ONNX graph); then every
  (quantile, Platt) pair is a pooling and an affine map. The shipped variants are checked against
  the kept evidence of each head (the cue must match to 0.002).
- Fusions: each file as it is, and each with the other's ``synthetic_voice`` scales and cap
  swapped in, so that the voice's share of the refit is told from the rest of it.

EER and AUC (ranking: a fusion's bias and threshold do not move them) with the 95 % bootstrap
over caller voices of ``models.training.metrics``, overall and for the robots reading non-sales
text (``fusion_calls.NON_SALES_SOURCES``) against every person; the robots called at each
fusion's own threshold; then each cue's mean contribution for robots and people.

    git show 27e56da:models/weights/synth_head.npz > /tmp/old_head.npz
    git show 27e56da:models/weights/fusion.json > /tmp/old_fusion.json
    python bench/mixture_attribution.py --heads /tmp/old_head.npz models/weights/synth_head.npz \\
        --fusions /tmp/old_fusion.json models/weights/fusion.json --old-rev 27e56da [--limit 50]

Measured (2026-12-05, that command, 84 s on 2 loaded cores; intervals from the shared
``aasist_scores.paired_eer_delta``; test figures read to attribute, not
to choose): 50 mixtures, 24 robots (17 non-sales), 26 people. The head-free evidence (latency
cues included) is identical under both code states on all 50 and the text cues too; both heads'
recomputed voice cues match their kept evidence (max difference 0.001). Fused EER (all rows):
old head + old fusion 29.2 %, + new fusion 29.2 % (dEER +0.0 [-3.4, +6.0]); new pooling alone
38.5 % (+9.3 [-9.2, +25.8]), new Platt alone 40.3 % (+11.2 [-6.8, +27.3]); new head + old
fusion 48.2 %, + new fusion 43.6 % (+14.4 [-0.3, +25.9]). The voice cue alone: pooling q0.5 ->
q0.75 moves its EER 30.8 -> 41.7 %; the new Platt pair puts 16-23 of the 50 cues on the +-3
clip and turns robots' cues towards "person" (robots with a positive cue 16 -> 10 of 24). The
non-sales robots called at the fusion's threshold (17.6 -> 5.9 %, 3 -> 1 of 17) drop with the
new fusion already on the old head, and not with the new fusion given the old voice scales and
cap: the refit's ``synthetic_voice:+`` scale (2.10 -> 0.77) and cap.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import pickle
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.fusion_file import read_fusion
from models.synth_head import (
    LogisticHead,
    SynthVoiceScorer,
    file_sha256,
    pool_log_odds,
    speech_windows,
)
from models.training import fusion_calls as fc
from models.training.aasist_scores import paired_eer_delta
from models.training.corpus import (
    REPO_DIR,
    hash_unit,
    read_clip,
    read_manifests,
    resolve_path,
    seeded_rng,
)
from models.training.fusion_fit import SALT as FUSION_SALT
from models.training.fusion_fit import source_digest
from models.training.synth_data import features_cache_dir
from pipeline.detector import SYNTH_WEIGHT_CLIP
from pipeline.fuse import FusionModel
from pipeline.telephone import call_channel, telephone_channel
from pipeline.types import ANALYSIS_RATE_HZ, ModelInfo

VOICE = "synthetic_voice"


@dataclass(frozen=True, slots=True)
class VoiceVariant:
    """How the head turns a mixture's raw window logits into the voice cue."""

    name: str
    quantile: float  # duration-weighted quantile of the window logits
    platt_a: float
    platt_b: float


@dataclass(frozen=True, slots=True)
class Mixture:
    """One end-to-end test mixture, as the caches hold it."""

    row_id: str
    y: int  # 1 = robot
    group: str  # caller voice: the bootstrap's unit
    non_sales: bool  # a robot reading non-sales text (NON_SALES_SOURCES)
    cues: dict[str, float]  # every cue but the voice, hand-set weights
    windows: dict[str, tuple[tuple[float, float], ...]]  # head file -> (duration s, raw logit)
    kept_voice: dict[str, float | None]  # head file -> voice cue in its kept evidence


def voice_cue(windows: Sequence[tuple[float, float]], variant: VoiceVariant) -> float | None:
    """The ``synthetic_voice`` weight of (duration s, raw logit) windows under ``variant``:
    pooled, calibrated, clipped to +-SYNTH_WEIGHT_CLIP and rounded as the detector's evidence
    is (``pipeline.detector.synthetic_voice_evidence``); None without windows (no cue)."""
    if not windows:
        return None
    raw = pool_log_odds([r for _, r in windows], [d for d, _ in windows], quantile=variant.quantile)
    log_odds = variant.platt_a * raw + variant.platt_b
    return round(max(-SYNTH_WEIGHT_CLIP, min(SYNTH_WEIGHT_CLIP, log_odds)), 3) + 0.0


def with_cue_of(model: FusionModel, donor: FusionModel, cue: str, *, name: str) -> FusionModel:
    """``model`` with ``donor``'s scales and cap of ``cue`` (both directions) and nothing else."""
    keys = {f"{cue}:+", f"{cue}:-"}
    scales = {k: v for k, v in model.scales if k not in keys}
    scales |= {k: v for k, v in donor.scales if k in keys}
    caps = {k: v for k, v in model.caps if k not in keys} | {
        k: v for k, v in donor.caps if k in keys
    }
    return dataclasses.replace(
        model, scales=tuple(sorted(scales.items())), caps=tuple(sorted(caps.items())), model_id=name
    )


def mean_contributions(
    model: FusionModel, cue_sets: Sequence[dict[str, float]], y: np.ndarray
) -> dict[str, tuple[float, float]]:
    """Per cue, its mean contribution to the robot logit over the robots and over the people
    (``FusionModel.contribution``, a missing cue adds 0); cues that add nothing anywhere are left
    out. The turn-taking cues' joint cap is not split between them."""
    names = sorted({n for cues in cue_sets for n in cues})
    out: dict[str, tuple[float, float]] = {}
    for name in names:
        c = np.array([model.contribution(name, cues.get(name, 0.0)) for cues in cue_sets])
        robots, people = float(c[y == 1].mean()), float(c[y == 0].mean())
        if max(abs(robots), abs(people)) >= 0.005:
            out[name] = (robots, people)
    return out


# ---------------------------------------------------------------------------------------------
# Reading the caches


def _kept_root() -> Path:
    """Where ``fusion_calls`` keeps the e2e run's ASR, encoder frames and evidence."""
    return features_cache_dir() / "call_asr"


def _entry_name(key: str) -> str:
    """The file stem ``fusion_calls.audio_evidence`` keeps a key's evidence under."""
    return hashlib.sha256(key.encode() + b"\0").hexdigest()[:32]


def _digest_at(rev: str | None, files: Sequence[str], shas: Sequence[str]) -> str:
    """``source_digest`` of ``files`` as they are at git ``rev`` (None: the working tree)."""
    if rev is None:
        return source_digest(fc.SALT, files, shas)
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for rel in files:
            blob = subprocess.run(
                ["git", "show", f"{rev}:{rel}"], cwd=REPO_DIR, capture_output=True, check=True
            ).stdout
            path = Path(tmp) / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(blob)
            paths.append(str(path))  # absolute: source_digest's REPO_DIR / path is the path
        return source_digest(fc.SALT, paths, shas)


class _KeptFramesOnly:
    """A frame encoder that has none: every frame must come from the e2e run's cache."""

    def __init__(self, model_id: str) -> None:
        self.model_id = model_id

    def frames(self, samples: np.ndarray) -> np.ndarray:
        raise LookupError("encoder frames not cached: run train_fusion --e2e first")

    def speech_frames(self, samples: np.ndarray, *, choice: Any = None) -> Any:
        raise LookupError("encoder frames not cached: run train_fusion --e2e first")


def _raw_scorer(head: LogisticHead, embedder: Any) -> SynthVoiceScorer:
    frames = fc.CachedFrameEncoder(_KeptFramesOnly(head.spec.encoder_id), cache_dir=_kept_root())
    return SynthVoiceScorer(
        head.with_calibration(1.0, 0.0),
        encoder=frames,
        model_info=ModelInfo("synth", "raw", ""),
        embedder=embedder,
    )


def _kept(path: Path) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not cached; run `train_fusion --e2e N` first")
    return (
        pickle.loads(path.read_bytes()) if path.suffix == ".pkl" else json.loads(path.read_text())
    )


def load_mixtures(
    heads: dict[str, Path], *, old_rev: str, limit: int
) -> tuple[list[Mixture], dict[str, Any]]:
    """The first ``limit`` e2e test mixtures with their kept evidence and raw window logits per
    head file (``heads``: label -> path), and what the caches say about the unchanged parts."""
    from models.loading import load_clip_embedder, model_bin_sha256, packaged_whisper_source

    asr_sha = model_bin_sha256(packaged_whisper_source())
    text_sha = json.loads((REPO_DIR / "models/weights/text_heads.json").read_text())["npz_sha256"]
    bases = {rev: _digest_at(rev, fc.BASE_CODE, [asr_sha]) for rev in (old_rev, None)}
    loaded = {label: LogisticHead.load(path) for label, path in heads.items()}
    scored = {  # label -> (base dir of its state, head digest)
        label: (
            bases[old_rev if i == 0 else None],
            _digest_at(old_rev if i == 0 else None, fc.HEAD_CODE, [text_sha, file_sha256(path)]),
        )
        for i, (label, path) in enumerate(heads.items())
    }
    embedder = (
        load_clip_embedder() if any("aasist" in h.spec.blocks for h in loaded.values()) else None
    )
    scorers = {label: _raw_scorer(h, embedder) for label, h in loaded.items()}
    frames = next(iter(scorers.values())).encoder
    rows = [r for r in read_manifests(["mixed"]) if r.split == "test"]
    rows = sorted(rows, key=lambda r: hash_unit(r.id, salt=FUSION_SALT))[:limit]
    root = _kept_root() / "base"
    newest = list(heads)[-1]
    out: list[Mixture] = []
    base_changed = text_changed = 0
    for row in rows:
        rng = seeded_rng(FUSION_SALT, "channel", row.id)
        x = telephone_channel(
            read_clip(resolve_path(row)), sample_rate_hz=ANALYSIS_RATE_HZ, rng=rng
        )
        x = x.astype(np.float32)
        name = _entry_name(f"mixed|{row.id}|{hashlib.sha256(x[None, :].tobytes()).hexdigest()}")
        base = {rev: _kept(root / d / f"{name}.pkl") for rev, d in bases.items()}
        if any("error" in b for b in base.values()):
            continue  # the e2e run skipped it too
        base_changed += base[old_rev]["cues"] != base[None]["cues"]
        kept = {
            label: _kept(root / b / h / f"{name}.json")["cues"] for label, (b, h) in scored.items()
        }
        text = {
            label: {k: v for k, v in cues.items() if k != VOICE and k not in base[b_rev]["cues"]}
            for (label, cues), b_rev in zip(kept.items(), (old_rev, None), strict=True)
        }
        text_changed += len({json.dumps(t, sort_keys=True) for t in text.values()}) > 1
        y = call_channel(x)
        got = frames.speech_frames(y) if frames is not None else None
        windows = {}
        embedded: dict[tuple[bool, float, float | None], Any] = {}  # AASIST once per window kind
        for label, scorer in scorers.items():  # each head's own aasist window (spec.aasist_pad_s)
            spec = scorer.head.spec
            every = speech_windows(y, max_window_s=spec.max_window_s)
            key = ("aasist" in spec.blocks, spec.max_window_s, spec.aasist_pad_s)
            if key not in embedded:
                embedded[key] = scorer.embedding(y, every)
            score = scorer.score_channelled(y, got, embedded[key], windows=every)
            windows[label] = () if score is None else tuple((b - a, r) for a, b, r in score.windows)
        source = row.parts[0].split("/")[0] if row.parts else row.source
        out.append(
            Mixture(
                row_id=row.id,
                y=int(row.label == "robot"),
                group=row.speaker,
                non_sales=row.label == "robot" and source.startswith(fc.NON_SALES_SOURCES),
                cues={**base[None]["cues"], **text[newest]},
                windows=windows,
                kept_voice={label: cues.get(VOICE) for label, cues in kept.items()},
            )
        )
    facts = {
        "mixtures": len(out),
        "skipped": len(rows) - len(out),
        "head-free evidence differs (old code vs new)": base_changed,
        "text cues differ (old vs new head's kept evidence)": text_changed,
        "base dirs": {str(k or "working tree"): v for k, v in bases.items()},
        "head dirs": {k: "/".join(v) for k, v in scored.items()},
    }
    return out, facts


# ---------------------------------------------------------------------------------------------
# Tables


def voice_variants(old: LogisticHead, new: LogisticHead) -> list[tuple[str, str, VoiceVariant]]:
    """The four (pooling, Platt) pairs of the two heads: (pooling's head, Platt's head, variant).
    A variant scores the windows of the head whose Platt pair it uses (the pair was fitted to
    that head's raw logits)."""
    out = []
    for q_label, q in (("old", old.pool_quantile), ("new", new.pool_quantile)):
        for p_label, head in (("old", old), ("new", new)):
            name = f"q{q:g} ({q_label} pool) + {p_label} Platt"
            out.append((q_label, p_label, VoiceVariant(name, q, head.platt_a, head.platt_b)))
    return out


def _row(y: np.ndarray, logit: np.ndarray, groups: list[str], threshold: float) -> str:
    r = fc.verdict_row(y, logit, groups, threshold)
    return f"{_rank(r)} | {100 * r['robots_called']:.1f} | {100 * r['people_called']:.1f}"


def _rank(r: dict[str, Any]) -> str:
    return (
        f"{100 * r['eer']:.1f} [{100 * r['eer_ci'][0]:.1f}, {100 * r['eer_ci'][1]:.1f}] | "
        f"{r['auc']:.2f} [{r['auc_ci'][0]:.2f}, {r['auc_ci'][1]:.2f}]"
    )


def _delta(d: tuple[float, float, float]) -> str:
    return f"{100 * d[0]:+.1f} [{100 * d[1]:+.1f}, {100 * d[2]:+.1f}]"


def report(
    mixtures: Sequence[Mixture],
    heads: dict[str, LogisticHead],
    fusions: dict[str, FusionModel],
    facts: dict[str, Any],
) -> str:
    """The markdown report: facts, the combinations table, the voice cue alone, the cues."""
    y = np.array([m.y for m in mixtures])
    groups = [m.group for m in mixtures]
    subset = np.array([m.non_sales or not m.y for m in mixtures])
    variants = voice_variants(heads["old"], heads["new"])
    voices = {
        v.name: [voice_cue(m.windows[label], v) for m in mixtures] for _, label, v in variants
    }
    lines = [f"- {k}: {v}" for k, v in facts.items()]
    raw_same = all(m.windows["old"] == m.windows["new"] for m in mixtures)
    lines.append(f"- raw window logits of the two head files identical: {raw_same}")
    for label in heads:
        name = next(v.name for q, p, v in variants if q == p == label)
        worst = max(
            abs((got or 0.0) - (m.kept_voice[label] or 0.0))
            for got, m in zip(voices[name], mixtures, strict=True)
        )
        lines.append(f"- {label} head recomputed vs its kept evidence: max |diff| {worst:.4f}")
    n_sub = int(subset.sum()) - int((1 - y).sum())
    lines += [
        "",
        f"{len(mixtures)} mixtures ({int(y.sum())} robots, {int((1 - y).sum())} people; "
        f"{n_sub} robots read non-sales text, scored against every person). EER % and AUC "
        "[95 % bootstrap over caller voices]; robots / people called at the fusion's own "
        "threshold (%; a fusion with the other's voice scales keeps its own bias and threshold); "
        "dEER: EER change against the first row in points [95 % paired bootstrap].",
        "",
        "| voice cue | fusion | all: EER | AUC | robots called | people called | dEER "
        "| non-sales: EER | AUC | robots called | people called | dEER |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    cue_sets = {
        name: [
            m.cues | ({} if v is None else {VOICE: v})
            for m, v in zip(mixtures, values, strict=True)
        ]
        for name, values in voices.items()
    }
    idx = np.flatnonzero(subset)
    sub_groups = [groups[i] for i in idx]
    logits = {
        (name, f_name): np.array([model.logit(c.items()) for c in cue_sets[name]])
        for name in voices
        for f_name, model in fusions.items()
    }
    first = next(iter(logits.values()))
    for (name, f_name), logit in logits.items():
        threshold = fusions[f_name].threshold
        d_all = paired_eer_delta(y, logit, first, groups=groups)
        d_sub = paired_eer_delta(y[idx], logit[idx], first[idx], groups=sub_groups)
        lines.append(
            f"| {name} | {f_name} | {_row(y, logit, groups, threshold)} | {_delta(d_all)} "
            f"| {_row(y[idx], logit[idx], sub_groups, threshold)} | {_delta(d_sub)} |"
        )
    lines += [
        "",
        "The voice cue alone (no fusion; a mixture without speech windows scores 0); "
        "'at clip': cues at +-SYNTH_WEIGHT_CLIP (ties for the ranking); robots > 0, people < 0: "
        "how many point the right way:",
        "",
        "| voice cue | all: EER | AUC | at clip | robots > 0 | people < 0 | non-sales: EER | AUC |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, values in voices.items():
        v = np.array([0.0 if x is None else x for x in values])
        r_all = fc.verdict_row(y, v, groups, 1.0)
        r_sub = fc.verdict_row(y[idx], v[idx], sub_groups, 1.0)
        clipped = int((np.abs(v) >= SYNTH_WEIGHT_CLIP).sum())
        right = f"{int((v[y == 1] > 0).sum())}/{int(y.sum())} | {int((v[y == 0] < 0).sum())}/"
        lines.append(
            f"| {name} | {_rank(r_all)} | {clipped} | {right}{int((1 - y).sum())} "
            f"| {_rank(r_sub)} |"
        )
    old_voice, new_voice = variants[0][2].name, variants[-1][2].name
    states = {
        "old head, old fusion": (old_voice, fusions["old"]),
        "new head, old fusion": (new_voice, fusions["old"]),
        "new head, new fusion": (new_voice, fusions["new"]),
    }
    means = {s: mean_contributions(m, cue_sets[v], y) for s, (v, m) in states.items()}
    names = sorted({n for m in means.values() for n in m})
    lines += [
        "",
        "Mean contribution to the robot logit (robots / people / gap = robots - people):",
        "",
        "| cue | " + " | ".join(states) + " |",
        "|---|" + "---|" * len(states),
    ]
    for n in names:
        cells = []
        for s in states:
            r, p = means[s].get(n, (0.0, 0.0))
            cells.append(f"{r:+.2f} / {p:+.2f} / {r - p:+.2f}")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    lines.append("| bias | " + " | ".join(f"{m.bias:+.2f}" for _, m in states.values()) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heads", nargs=2, type=Path, required=True, metavar=("OLD", "NEW"))
    parser.add_argument("--fusions", nargs=2, type=Path, required=True, metavar=("OLD", "NEW"))
    parser.add_argument("--old-rev", default="27e56da", help="git revision of the old code")
    parser.add_argument("--limit", type=int, default=50, help="mixtures, as train_fusion --e2e")
    args = parser.parse_args(argv)
    head_paths = dict(zip(("old", "new"), args.heads, strict=True))
    mixtures, facts = load_mixtures(head_paths, old_rev=args.old_rev, limit=args.limit)
    heads = {label: LogisticHead.load(path) for label, path in head_paths.items()}
    old, new = (read_fusion(p) for p in args.fusions)
    fusions = {
        "old": old,
        "new": new,
        "old, new voice scales+cap": with_cue_of(old, new, VOICE, name="old+new voice"),
        "new, old voice scales+cap": with_cue_of(new, old, VOICE, name="new+old voice"),
    }
    facts["fusions"] = {
        k: f"{file_sha256(p)[:8]}" for k, p in zip(("old", "new"), args.fusions, strict=True)
    }
    facts["heads"] = {k: f"{file_sha256(p)[:8]}" for k, p in head_paths.items()}
    print(report(mixtures, heads, fusions, facts))  # noqa: T201


if __name__ == "__main__":
    main()
