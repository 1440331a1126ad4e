"""How much ranking the fused verdict loses to its hard bounds, on held-out sets (issue 12).

    .venv/bin/python bench/fusion_ties.py [--kokoro runs/eval_kokoro/results.json]
                                          [--pypi runs/eval_pypi_speech/results.json]
                                          [--sources runs/eval_sources/results.json]

The synthetic-voice evidence is clipped at +-``SYNTH_WEIGHT_CLIP`` log-odds
(``pipeline.detector``) and a human voice's pull towards "person" at the fusion's cap
(``FusionModel.caps``), so every clip past either bound gets the same contribution: on a
single clip with no other evidence, robots and people past the person-side cap tie exactly,
and a ranking measure (the hidden set's AUC) counts each tie as half right. This replays the
per-clip records of ``eval_kokoro``, ``eval_pypi_speech`` and ``eval_sources`` (fused logit and
voice log-odds),
takes the shipped voice contribution out of each logit, and puts back a soft bound of the same
size instead: ``C tanh(x / C)``, which keeps the order of the evidence and its limit. Nothing
is chosen here: the sets are held out, so this says what to try on dev next, not what to ship.
Intervals: paired cluster bootstrap over voices (Kokoro) or speakers / voices (the rest).
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
from models.training.aasist_scores import cluster_draw
from models.training.corpus import HELD_OUT_SOURCES
from pipeline.detector import SYNTH_WEIGHT_CLIP
from pipeline.fuse import FusionModel

CUE = "synthetic_voice"


def hard(fusion: FusionModel, log_odds: float) -> float:
    """The shipped contribution of the voice: clipped weight, scaled, capped."""
    weight = max(-SYNTH_WEIGHT_CLIP, min(SYNTH_WEIGHT_CLIP, log_odds))
    return fusion.contribution(CUE, weight)


def soft(fusion: FusionModel, log_odds: float, *, clip: bool = True) -> float:
    """The same bounds reached smoothly: tanh on the weight's clip (or, with ``clip=False``,
    the weight clipped as shipped: a change to ``pipeline.fuse`` alone) and on the cap."""
    if clip:
        weight = SYNTH_WEIGHT_CLIP * math.tanh(log_odds / SYNTH_WEIGHT_CLIP)
    else:
        weight = max(-SYNTH_WEIGHT_CLIP, min(SYNTH_WEIGHT_CLIP, log_odds))
    scaled = fusion.scale(CUE, weight) * weight
    cap = fusion.cap(CUE, weight)
    return scaled if cap is None else cap * math.tanh(scaled / cap)


def paired_auc(y: np.ndarray, a: np.ndarray, b: np.ndarray, groups: list[str]) -> list[float]:
    """AUC of ``a`` minus AUC of ``b`` with a 95 % paired cluster-bootstrap interval."""
    rng = np.random.default_rng(0)
    g = np.asarray(groups, dtype=object)
    deltas = [
        M.roc_auc(y, a, weights=w) - M.roc_auc(y, b, weights=w)
        for w in (cluster_draw(y, g, rng) for _ in range(1000))
    ]
    low, high = np.percentile(deltas, [2.5, 97.5])
    return [M.roc_auc(y, a) - M.roc_auc(y, b), float(low), float(high)]


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
    print("| set | people / robots | tied logits | AUC shipped | AUC soft bounds "
          "| change [95 % CI] | AUC soft cap only | voice head alone "
          "| called robot at 0.5, shipped -> soft: robots; people |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    named = sets(args.kokoro, args.pypi, args.sources)
    for name, rows in named.items():
        rows = [r for r in rows if None not in (r.get("logit"), r.get("voice_log_odds"))]
        y = np.asarray([r["y"] for r in rows], dtype=np.int64)
        if not M.has_both_classes(y):
            continue
        v = [r["voice_log_odds"] for r in rows]
        shipped = np.asarray([r["logit"] for r in rows], dtype=np.float64)
        smooth = shipped + np.asarray([soft(fusion, x) - hard(fusion, x) for x in v])
        cap_only = shipped + np.asarray([soft(fusion, x, clip=False) - hard(fusion, x) for x in v])
        groups = [str(r.get("voice") or r["group"]) for r in rows]
        d = paired_auc(y, smooth, shipped, groups)
        ties = len(shipped) - len(np.unique(np.round(shipped, 4)))
        rates = [f"{100 * np.mean(s[y == c] >= 0):.0f} %" for s in (shipped, smooth)
                 for c in (1, 0)]  # fmt: skip
        print(f"| {name} | {int((y == 0).sum())} / {int(y.sum())} | {ties} "
              f"| {M.roc_auc(y, shipped):.3f} | {M.roc_auc(y, smooth):.3f} "
              f"| {d[0]:+.3f} [{d[1]:+.3f}, {d[2]:+.3f}] | {M.roc_auc(y, cap_only):.3f} "
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
