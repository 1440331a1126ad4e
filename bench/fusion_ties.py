"""How much ranking the fused verdict loses to hard bounds, on held-out sets (issue 12).

    .venv/bin/python bench/fusion_ties.py [--kokoro runs/eval_kokoro/results.json]
                                          [--pypi runs/eval_pypi_speech/results.json]
                                          [--sources runs/eval_sources/results.json]

The synthetic-voice evidence is clipped at +-``SYNTH_WEIGHT_CLIP`` log-odds
(``pipeline.detector``) and a human voice's pull towards "person" is bounded at the fusion's
cap (``FusionModel.caps``). Bounded hard, every clip past either bound gets the same
contribution: on a single clip with no other evidence, robots and people past the person-side
cap tie exactly, and a ranking measure (the hidden set's AUC) counts each tie as half right.
Since 2026-12-06 the verdict reaches the cap smoothly (``pipeline.fuse.soft_cap``, chosen after
this bench's first run and refitted on dev); the weight's clip stays hard. This replays the
per-clip records of ``eval_kokoro``, ``eval_pypi_speech`` and ``eval_sources`` (fused logit and
voice log-odds), takes the voice contribution of the fusion they were scored with out of each
logit, and puts back three variants: both bounds hard (as before), the cap soft (as shipped
now), and both soft (``C tanh(x / C)`` on the clip too). Run it with the fusion the records were
scored with. Nothing is chosen here: the sets are held out. Intervals: paired cluster
bootstrap over voices (Kokoro) or speakers / voices (the rest).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from models.loading import load_fusion
from models.training import metrics as M
from models.training.aasist_scores import paired_bootstrap
from models.training.corpus import HELD_OUT_SOURCES
from pipeline.detector import SYNTH_WEIGHT_CLIP
from pipeline.fuse import FusionModel, soft_cap

CUE = "synthetic_voice"


def clipped(log_odds: float) -> float:
    """The evidence's weight as the detector gives it: the head's log-odds clipped."""
    return max(-SYNTH_WEIGHT_CLIP, min(SYNTH_WEIGHT_CLIP, log_odds))


def bounded(fusion: FusionModel, weight: float, *, smooth: bool) -> float:
    """The voice's contribution of hand-set ``weight``: scaled, then bounded at its cap hard
    (clipped) or smoothly (:func:`pipeline.fuse.soft_cap`)."""
    scaled = fusion.scale(CUE, weight) * weight
    cap = fusion.cap(CUE, weight)
    if cap is None:
        return scaled
    return soft_cap(scaled, cap) if smooth else max(-cap, min(cap, scaled))


def hard(fusion: FusionModel, log_odds: float) -> float:
    """Both bounds hard: the weight clipped, the cap clipped (the verdict until 2026-12-06)."""
    return bounded(fusion, clipped(log_odds), smooth=False)


def soft(fusion: FusionModel, log_odds: float, *, clip: bool = True) -> float:
    """The cap reached smoothly, and with ``clip`` the weight's clip too (with ``clip=False``
    the weight clipped as the detector does: the verdict since 2026-12-06)."""
    if clip:
        weight = SYNTH_WEIGHT_CLIP * math.tanh(log_odds / SYNTH_WEIGHT_CLIP)
    else:
        weight = clipped(log_odds)
    return bounded(fusion, weight, smooth=True)


def paired_auc(y: np.ndarray, a: np.ndarray, b: np.ndarray, groups: list[str]) -> list[float]:
    """AUC of ``a`` minus AUC of ``b`` with a 95 % paired cluster-bootstrap interval."""

    def auc(s: np.ndarray, w: np.ndarray | None) -> np.ndarray:
        return np.array([M.roc_auc(y, s, weights=w)])

    of_a, of_b, low, high = paired_bootstrap(y, a, b, groups=groups, figures=auc)
    return [float(of_a[0] - of_b[0]), float(low[0]), float(high[0])]


def sets(kokoro: Path, pypi: Path, sources: Path) -> dict[str, list[dict[str, Any]]]:
    """Named (people vs robots) populations of the two runs' records, per language."""
    out: dict[str, list[dict[str, Any]]] = {}
    for r in json.loads(kokoro.read_text())["records"]:
        lang = r["language"]
        out.setdefault(f"Kokoro vs test people, {lang}", []).append(r)
        if r["y"] == 0 or r["kind"] == "neutral":
            out.setdefault(f"Kokoro neutral lines vs test people, {lang}", []).append(r)
    for r in json.loads(pypi.read_text())["records"]:
        if r["group"] != "our sources, test split (seen chains)":
            out.setdefault(f"commercial voices vs PyPI people, {r['language']}", []).append(r)
    for r in json.loads(sources.read_text())["records"]:
        r = {**r, "voice": r["source"]}  # resampled by source, as evaluation_sources.md does
        lang, commercial = r["language"], r["source"] in HELD_OUT_SOURCES
        if r["y"] == 0 or not commercial:
            out.setdefault(f"sources no voice model saw (eval_sources), {lang}", []).append(r)
        if r["y"] == 0 or commercial:
            out.setdefault(f"commercial voices vs eval_sources people, {lang}", []).append(r)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kokoro", type=Path, default=Path("runs/eval_kokoro/results.json"))
    ap.add_argument("--pypi", type=Path, default=Path("runs/eval_pypi_speech/results.json"))
    ap.add_argument("--sources", type=Path, default=Path("runs/eval_sources/results.json"))
    args = ap.parse_args()
    fusion = load_fusion()
    if fusion is None:
        raise SystemExit("no fitted fusion (models/weights/fusion.json)")
    print("| set | people / robots | tied logits, hard bounds | AUC hard bounds "
          "| AUC soft cap | change [95 % CI] | AUC soft cap and clip | voice head alone "
          "| called robot at 0.5, hard -> soft cap: robots; people |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    named = sets(args.kokoro, args.pypi, args.sources)
    for name, rows in named.items():
        rows = [r for r in rows if None not in (r.get("logit"), r.get("voice_log_odds"))]
        y = np.asarray([r["y"] for r in rows], dtype=np.int64)
        if not M.has_both_classes(y):
            continue
        v = [r["voice_log_odds"] for r in rows]
        scored = np.asarray([r["logit"] for r in rows], dtype=np.float64)
        rest = scored - np.asarray([fusion.contribution(CUE, clipped(x)) for x in v])
        was = rest + np.asarray([hard(fusion, x) for x in v])
        cap_only = rest + np.asarray([soft(fusion, x, clip=False) for x in v])
        smooth = rest + np.asarray([soft(fusion, x) for x in v])
        groups = [str(r.get("voice") or r["group"]) for r in rows]
        d = paired_auc(y, cap_only, was, groups)
        ties = len(was) - len(np.unique(np.round(was, 4)))
        rates = [f"{100 * np.mean(s[y == c] >= 0):.0f} %" for s in (was, cap_only)
                 for c in (1, 0)]  # fmt: skip
        print(f"| {name} | {int((y == 0).sum())} / {int(y.sum())} | {ties} "
              f"| {M.roc_auc(y, was):.3f} | {M.roc_auc(y, cap_only):.3f} "
              f"| {d[0]:+.3f} [{d[1]:+.3f}, {d[2]:+.3f}] | {M.roc_auc(y, smooth):.3f} "
              f"| {M.roc_auc(y, np.asarray(v)):.3f} "
              f"| {rates[0]} -> {rates[2]}; {rates[1]} -> {rates[3]} |")  # fmt: skip
    robot_side_table(fusion, named)


def robot_side_table(fusion: FusionModel, named: dict[str, list[dict[str, Any]]]) -> None:
    """Called robot at 0.5 per population if the voice's robot-side scale were larger (its
    weight's clip at +-3 kept): what a voice alone could then call a robot."""
    shipped = fusion.scale(CUE, 1.0)
    grid = (shipped, 0.5, 0.75, 1.0)
    print("\n| population | n | " + " | ".join(f"robot-side scale {g:.2f}" for g in grid) + " |")
    print("|---|---|" + "---|" * len(grid))
    for name, rows in named.items():
        for label, cls in (("people", 0), ("robots", 1)):
            kept = [r for r in rows if r["y"] == cls
                    and None not in (r.get("logit"), r.get("voice_log_odds"))]  # fmt: skip
            if not kept:
                continue
            logit = np.asarray([r["logit"] for r in kept])
            pull = np.clip([r["voice_log_odds"] for r in kept], 0.0, SYNTH_WEIGHT_CLIP)
            shares = [f"{100 * np.mean(logit + (g - shipped) * pull >= 0):.1f} %" for g in grid]
            print(f"| {name}: {label} | {len(kept)} | " + " | ".join(shares) + " |")


if __name__ == "__main__":
    main()
