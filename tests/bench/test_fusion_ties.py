"""The soft bounds of bench/fusion_ties.py on a made-up fusion (the bench itself replays the
records of eval_kokoro and eval_pypi_speech)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pipeline.fuse import FusionModel
from tests.bench.support import load_bench

B = load_bench("fusion_ties")
MODEL = FusionModel(
    bias=-1.2,
    scales=(("synthetic_voice:+", 0.4), ("synthetic_voice:-", 2.8)),
    default_scale=1.0,
    method="test",
    caps=(("synthetic_voice:-", 0.7),),
)


def test_hard_bounds_tie_where_soft_bounds_keep_the_order() -> None:
    log_odds = [-6.0, -2.0, -0.5, 4.0, 8.0]
    hard = [B.hard(MODEL, x) for x in log_odds]
    soft = [B.soft(MODEL, x) for x in log_odds]
    assert hard[0] == hard[1] == hard[2] == pytest.approx(-0.7)  # past the person-side cap
    assert hard[3] == hard[4] == pytest.approx(0.4 * 3.0)  # past the weight's clip
    assert all(a < b for a, b in zip(soft, soft[1:], strict=False))
    assert all(abs(s) <= abs(h) + 1e-12 for s, h in zip(soft, hard, strict=True))
    assert B.soft(MODEL, 0.0) == 0.0


def test_paired_auc_of_a_score_with_itself_is_zero_and_tracks_a_better_one() -> None:
    y = np.asarray([0, 0, 0, 1, 1, 1])
    worse = np.asarray([0.0, 1.0, 0.0, 1.0, 0.0, 1.0])
    better = np.asarray([0.0, 1.0, 0.5, 2.0, 1.5, 3.0])
    groups = ["a", "b", "c", "d", "e", "f"]
    assert B.paired_auc(y, worse, worse, groups) == [0.0, 0.0, 0.0]
    delta, low, high = B.paired_auc(y, better, worse, groups)
    assert delta > 0 and low <= delta <= high


def test_a_larger_robot_side_scale_lets_a_voice_alone_call_a_robot(capsys: Any) -> None:
    rows = [{"y": 1, "logit": -1.2 + 0.4 * 3.0 - 0.01, "voice_log_odds": 5.0},
            {"y": 0, "logit": -1.2, "voice_log_odds": 0.0}]  # fmt: skip
    B.robot_side_table(MODEL, {"set": rows})
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| set")]
    assert lines == ["| set: people | 1 | 0.0 % | 0.0 % | 0.0 % | 0.0 % |",
                     "| set: robots | 1 | 0.0 % | 100.0 % | 100.0 % | 100.0 % |"]  # fmt: skip
