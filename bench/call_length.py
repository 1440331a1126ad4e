"""The fused verdict on whole simulated test calls against their first 30 s (issue 13).

    PYTHONPATH=. OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/call_length.py \
        [--crops 30,60,0] [--json OUT]

``docs/evaluation_calls_verdict.md`` scores each simulated test call on its first 30 s (ASR is
the cost), but ``robocall analyze`` reads a whole recording. Here the same test calls (10 per
language and caller kind, both layouts, ``fusion_calls.select_calls``) go through the same
cached detector at each crop length (0 = the whole call) and the shipped fusion
(``models/weights/fusion.json``, fitted on 30-s crops of the dev calls) decides them at its
threshold. Prints, per crop: the seconds analysed and, for each robot kind against the human
agents, by layout (and the Mandarin TTS robots, which read no sales text), EER and AUC with 95 %
bootstrap intervals over caller voices, the robots and the people called robot, and the robots
called at the strictest threshold that calls at most 5 % of these people robot. Nothing is
fitted or chosen here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from models.fusion_file import read_fusion
from models.training.fusion_calls import (
    analyze_detector,
    caching_detector,
    call_examples,
    call_tables,
    robot_kind,
    select_calls,
)
from models.training.fusion_fit import fusion_logit
from models.training.leakage import simulated_calls

WHOLE_CALL_S = 1e6  # a crop longer than any call: the whole recording
PER_CELL = 10  # test calls per (language, caller kind): the verdict page's `--calls 10`
# (robot kind, layout, language); the Mandarin TTS robots read TTS demo sentences, not sales
# (issue 13's "TTS robots reading non-sales text" among the simulated calls)
ROWS = (
    ("recorded_robot", "stereo", "both languages"),
    ("recorded_robot", "mono", "both languages"),
    ("tts_robot", "stereo", "both languages"),
    ("tts_robot", "mono", "both languages"),
    ("tts_robot", "both layouts", "zh"),
    ("any robot", "both layouts", "both languages"),
)


def crop_name(crop_s: float) -> str:
    return "whole call" if crop_s >= WHOLE_CALL_S else f"first {crop_s:g} s"


def analysed_seconds(crop_s: float, per_cell: int) -> dict[str, float]:
    """Median seconds analysed per caller kind (a call shorter than the crop counts whole)."""
    rows = select_calls(simulated_calls(), split="test", per_cell=per_cell)
    out: dict[str, list[float]] = {}
    for row in rows:
        out.setdefault(robot_kind(row), []).append(min(float(row.duration_s), crop_s))
    return {k: float(np.median(v)) for k, v in sorted(out.items())}


def measure(crops: list[float], *, per_cell: int = PER_CELL) -> dict[str, Any]:
    detector = caching_detector(analyze_detector())
    model = read_fusion()
    sales = detector.config.fusion.sales_threshold
    results: dict[str, Any] = {"fusion_sha256": model.sha256, "threshold": model.threshold}
    for crop in crops:
        examples, failed = call_examples(
            detector, split="test", per_cell=per_cell, crop_s=crop, progress=True
        )
        logit = fusion_logit(model, examples)
        tables = call_tables(examples, logit, threshold=model.threshold, sales_threshold=sales)
        results[crop_name(crop)] = {
            "failed": failed,
            "median_seconds": analysed_seconds(crop, per_cell),
            "pairs": {k: v for k, v in tables["pairs"].items() if tuple(k.split(" | ")) in ROWS},
        }
    return results


def _pct(v: float) -> str:
    return f"{100 * v:.1f} %"


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"Fusion sha256 {results['fusion_sha256'][:8]}, threshold {results['threshold']:.3f}.",
        "",
        "| robots vs human agents | layout | language | analysed | EER [95 % CI] | AUC [95 % CI] "
        "| robots called | people called | robots called, <= 5 % people |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    crops = [k for k in results if k.startswith(("first", "whole"))]
    for robots, layout, language in ROWS:
        for crop in crops:
            row = results[crop]["pairs"].get(f"{robots} | {layout} | {language}")
            if row is None:
                continue
            lo, hi = row["eer_ci"]
            alo, ahi = row["auc_ci"]
            lines.append(
                f"| {robots} ({row['n_robot']} / {row['n_human']}) | {layout} | {language} "
                f"| {crop} "
                f"| {_pct(row['eer'])} [{100 * lo:.1f}-{100 * hi:.1f}] "
                f"| {row['auc']:.3f} [{alo:.3f}-{ahi:.3f}] "
                f"| {_pct(row['robots_called'])} | {_pct(row['people_called'])} "
                f"| {_pct(row['robots_called_at_5pct'])} |"
            )
    lines += ["", "Median seconds analysed per caller kind:", ""]
    for crop in crops:
        secs = ", ".join(f"{k} {v:.0f} s" for k, v in results[crop]["median_seconds"].items())
        lines.append(f"- {crop}: {secs} ({results[crop]['failed']} calls without a verdict)")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crops", default="30,0", help="seconds from the start; 0 = whole call")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)
    crops = [float(c) if float(c) > 0 else WHOLE_CALL_S for c in args.crops.split(",")]
    results = measure(crops)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, sort_keys=True))
    sys.stdout.write(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
