"""The fused verdict on the simulated mono calls, as the verdict page measures it (issue 13).

A change of the mono caller rule (``models.diarize.CALLER_RULE``) moves only the mono rows of
docs/evaluation_calls_verdict.md; this scores those rows alone, with the shipped fusion
(``models/weights/fusion.json``, not refitted), so that the rule can be compared before and
after without the stereo copies' ASR. The calls are the verdict page's
(``fusion_calls.select_calls``: every dev call, 10 per (language, caller kind) on test), their
mono copies cropped and run through the detector as ``robocall analyze`` runs them
(``fusion_calls.call_evidence``, whose caches key the evidence by the code of
``fusion_calls.BASE_CODE``, ``models/diarize.py`` among it: run it once on each version of the
rule). Rows: each robot kind, and any robot, against the human agents; EER and AUC with 95 %
bootstrap intervals over caller voices (``fusion_calls.verdict_row``, as the verdict page).

    nice -n 10 python bench/mono_caller.py --split dev --split test [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.diarize import CALLER_RULE
from models.loading import load_fusion
from models.training.fusion_calls import (
    analyze_detector,
    call_evidence,
    layout,
    robot_kind,
    select_calls,
    verdict_row,
)
from models.training.leakage import simulated_calls
from pipeline.fuse import FusionModel

TEST_PER_CELL = 10  # as the shipped verdict page (robocall train --stage fusion --calls 10)
AGENT = "human_agent"
ROBOTS = ("recorded_robot", "tts_robot", "any robot")


def collect(split: str) -> list[dict[str, Any]]:
    """One record per mono call of ``split`` the verdict page scores: its cues, or its error."""
    rows = select_calls(
        simulated_calls(), split=split, per_cell=None if split == "dev" else TEST_PER_CELL
    )
    detector = analyze_detector()
    out = []
    for row in (r for r in rows if layout(r) == "mono"):
        got = call_evidence(detector, row)
        out.append(
            {
                "id": row.id,
                "kind": robot_kind(row),
                "voice": row.speaker,
                "y": int(row.label == "robot"),
                "cues": got.get("cues"),
            }
        )
    return out


def verdict_rows(records: Sequence[dict[str, Any]], model: FusionModel) -> dict[str, Any]:
    """Each robot kind (and any robot) against the agents: ``fusion_calls.verdict_row``."""
    kept = [r for r in records if r["cues"] is not None]
    logit = np.array([model.logit(tuple(sorted(r["cues"].items()))) for r in kept])
    out: dict[str, Any] = {"failed": len(records) - len(kept)}
    for robots in ROBOTS:
        idx = [
            i
            for i, r in enumerate(kept)
            if r["kind"] == AGENT or (r["kind"] == robots if robots != "any robot" else r["y"])
        ]
        y = np.array([kept[i]["y"] for i in idx], dtype=np.int64)
        out[robots] = verdict_row(y, logit[idx], [kept[i]["voice"] for i in idx], model.threshold)
    return out


def markdown(split: str, rows: dict[str, Any]) -> str:
    lines = [
        f'| {split} mono calls (`CALLER_RULE = "{CALLER_RULE}"`) | robots / agents | '
        "EER [95 % CI] | AUC [95 % CI] | robots called | people called |",
        "|---|---|---|---|---|---|",
    ]
    for robots in ROBOTS:
        r = rows[robots]
        lines.append(
            f"| {robots} vs agents | {r['n_robot']} / {r['n_human']} | {100 * r['eer']:.1f} % "
            f"[{100 * r['eer_ci'][0]:.1f}-{100 * r['eer_ci'][1]:.1f}] | {r['auc']:.3f} "
            f"[{r['auc_ci'][0]:.3f}-{r['auc_ci'][1]:.3f}] | {100 * r['robots_called']:.1f} % | "
            f"{100 * r['people_called']:.1f} % |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", action="append", choices=("dev", "test"), required=True)
    parser.add_argument("--json", type=Path, default=None, help="write the rows here")
    args = parser.parse_args(argv)
    model = load_fusion()
    if model is None:
        raise SystemExit("no fitted fusion (models/weights/fusion.json)")
    result: dict[str, Any] = {"caller_rule": CALLER_RULE, "fusion": model.sha256[:16]}
    for split in args.split:
        started = time.monotonic()
        records = collect(split)
        rows = verdict_rows(records, model)
        result[split] = {"rows": rows, "wall_s": round(time.monotonic() - started, 1)}
        sys.stdout.write(markdown(split, rows) + f"\n({result[split]['wall_s']} s)\n\n")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
