"""The pure helpers of bench/replay_noise.py (the bench itself reads the shared clips)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.bench.support import load_bench

B = load_bench("replay_noise")


def test_floor_subtraction_zeroes_the_noise_and_keeps_what_stands_above_it() -> None:
    rng = np.random.default_rng(1)
    mel = -60.0 + rng.normal(0.0, 1.0, (200, 4))  # a noise floor near -60 dB in every band
    mel[50:80, 2] = -20.0  # one loud stretch in band 2
    out = B.floor_subtracted(mel, 6.0)
    assert out.min() == 0.0
    assert np.all(out[50:80, 2] > 30.0)
    assert np.mean(out[:50] == 0.0) > 0.9


def test_window_correlation_finds_the_copy_and_not_other_audio() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(40, 8)), rng.normal(size=(40, 8))
    mel = np.concatenate([a, b, a])
    assert B.window_corr(mel, 0, 40, range(78, 81)) == pytest.approx(1.0, abs=1e-4)
    assert B.window_corr(mel, 0, 40, range(40, 41)) < 0.5
