"""The pure helpers of bench/mixture_attribution.py (the attribution itself reads real caches)."""

from __future__ import annotations

import numpy as np
import pytest

from models.synth_head import pool_log_odds
from pipeline.detector import SYNTH_WEIGHT_CLIP
from pipeline.fuse import FusionModel, soft_cap
from tests.bench.support import load_bench

NAME = "mixture_attribution"


B = load_bench(NAME)


def test_voice_cue_pools_the_raw_logits_then_calibrates_as_the_head_does(
    rng: np.random.Generator,
) -> None:
    durations, raws = rng.uniform(0.5, 8, 9), rng.normal(0, 1, 9)
    windows = [(float(d), float(r)) for d, r in zip(durations, raws, strict=True)]
    a, b, q = 0.8, -0.3, 0.75
    per_window = [a * r + b for _, r in windows]  # what the head pools: calibrated windows
    expected = pool_log_odds(per_window, [d for d, _ in windows], quantile=q)
    got = B.voice_cue(windows, B.VoiceVariant("v", q, a, b))
    assert got == pytest.approx(expected, abs=5e-4)


def test_voice_cue_clips_and_is_absent_without_windows() -> None:
    loud = B.VoiceVariant("v", 0.5, 10.0, 0.0)
    assert B.voice_cue([(1.0, 2.0), (1.0, 3.0)], loud) == SYNTH_WEIGHT_CLIP
    assert B.voice_cue([(1.0, -2.0)], loud) == -SYNTH_WEIGHT_CLIP
    assert B.voice_cue([], loud) is None


def test_voice_cue_quantile_picks_by_duration() -> None:
    windows = [(1.0, -1.0), (3.0, 2.0)]  # the long window holds 75 % of the speech
    assert B.voice_cue(windows, B.VoiceVariant("v", 0.25, 1.0, 0.0)) == -1.0
    assert B.voice_cue(windows, B.VoiceVariant("v", 0.5, 1.0, 0.0)) == 2.0


def _fusion(voice_plus: float, voice_minus: float, cap: float, text: float) -> FusionModel:
    return FusionModel(
        bias=-1.0,
        scales=(
            ("robot_script_text:+", text),
            ("synthetic_voice:+", voice_plus),
            ("synthetic_voice:-", voice_minus),
        ),
        default_scale=1.0,
        method="test",
        caps=(("synthetic_voice:-", cap),),
        threshold=0.7,
    )


def test_with_cue_of_swaps_only_that_cue() -> None:
    old, new = _fusion(2.0, 3.0, 1.5, 2.5), _fusion(0.8, 3.4, 0.9, 2.6)
    mixed = B.with_cue_of(old, new, "synthetic_voice", name="mixed")
    assert mixed.scale("synthetic_voice", 1.0) == 0.8
    assert mixed.scale("synthetic_voice", -1.0) == 3.4
    assert mixed.cap("synthetic_voice", -1.0) == 0.9
    assert mixed.scale("robot_script_text", 1.0) == 2.5  # the rest stays the old fusion's
    assert (mixed.bias, mixed.threshold) == (old.bias, old.threshold)


def test_mean_contributions_by_class_and_quiet_cues_left_out() -> None:
    model = _fusion(2.0, 3.0, 1.5, 2.5)
    cue_sets = [
        {"synthetic_voice": 1.0, "robot_script_text": 0.4, "pitch_std_st": 0.0},
        {"synthetic_voice": 0.5},
        {"synthetic_voice": -1.0},  # 3.0 * -1.0 bounded smoothly at 1.5: 1.5 tanh(-2)
    ]
    got = B.mean_contributions(model, cue_sets, np.array([1, 1, 0]))
    assert got["synthetic_voice"] == pytest.approx((1.5, soft_cap(-3.0, 1.5)))
    assert -1.5 < soft_cap(-3.0, 1.5) < -1.4
    assert got["robot_script_text"] == pytest.approx((0.5, 0.0))
    assert "pitch_std_st" not in got
