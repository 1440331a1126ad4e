"""The pure helpers of bench/latency_cues.py (the bench itself reads the simulated calls)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.training.corpus import CorpusRow
from models.training.fusion_calls import CROP_S
from tests.bench.support import load_bench
from tests.models.support import corpus_row

NAME = "latency_cues"


def _row(segments: list[dict[str, object]]) -> CorpusRow:
    return corpus_row(
        "x",
        label="robot",
        kind="call_tts_robot",
        language="zh",
        source="calls",
        split="dev",
        duration_s=CROP_S + 10.0,
        extra=(("segments", json.dumps(segments)),),
    )


def test_truth_turns_merge_short_gaps_and_stop_at_the_crop() -> None:
    bench = load_bench(NAME)
    seg = [
        {"role": "caller", "start_s": 1.0, "end_s": 2.0},
        {"role": "caller", "start_s": 2.1, "end_s": 3.0},  # 0.1 s later: the same turn
        {"role": "callee", "start_s": 3.2, "end_s": 4.0},
        {"role": "caller", "start_s": 4.5, "end_s": 5.0},
        {"role": "caller", "start_s": CROP_S - 1.0, "end_s": CROP_S + 3.0},
        {"role": "caller", "start_s": CROP_S + 1.0, "end_s": CROP_S + 2.0},
    ]
    row = _row(seg)
    assert bench.truth_turns(row, "caller") == [(1.0, 3.0), (4.5, 5.0), (CROP_S - 1.0, CROP_S)]
    assert bench.truth_turns(row, "callee") == [(3.2, 4.0)]


def bench_lines() -> tuple[str, ...]:
    return tuple(line for line, _ in load_bench(NAME).LINES)


def test_the_declared_rule_takes_the_first_variant_near_the_best_that_keeps_the_rest() -> None:
    bench = load_bench(NAME)
    hyst = [name for name, *_ in bench.VARIANTS if name.startswith("hyst")]
    summary = {
        (name, line): (1.0, 0.2) for name in (bench.SHIPPED_BEFORE, *hyst) for line in bench_lines()
    }
    summary[bench.SHIPPED_BEFORE, "clean"] = (1.0, 0.06)
    for name in hyst:
        summary[name, "clean"] = (1.0, 0.06)
    summary[hyst[0], "noisy"] = (1.0, 0.09)  # near the best that counts: chosen, first in line
    summary[hyst[1], "noisy"] = (1.0, 0.085)  # the best that counts
    summary[hyst[2], "noisy"] = (1.0, 0.01)  # better, but fewer cues present over all calls
    summary[hyst[2], "all"] = (0.9, 0.05)
    summary[hyst[3], "noisy"] = (1.0, 0.02)  # better, but worse on clean lines
    summary[hyst[3], "clean"] = (1.0, 0.08)
    assert bench.choose(summary) == hyst[0]
    summary[hyst[0], "noisy"] = (1.0, 0.1)  # no longer within the slack of the best
    assert bench.choose(summary) == hyst[1]


def test_intervals_bracket_the_statistic_and_resample_whole_voices() -> None:
    bench = load_bench(NAME)
    values = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    text = bench.median_ci(values, ["a", "a", "b", "b", "c", "c"])
    point, lo, hi = (float(v) for v in text.replace("[", " ").replace("-", " ").strip("]").split())
    assert point == pytest.approx(float(np.median(values)), abs=1e-3)
    assert lo <= point <= hi
    # one voice: every resample is the same, the interval is the point
    assert bench.mean_ci([0.1, 0.3], ["a", "a"]) == "0.200 [0.200-0.200]"
    assert bench.median_ci([], []) == "n/a"
