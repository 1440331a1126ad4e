"""The pure helpers of bench/replay_noise.py (the bench itself reads the shared clips)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.bench.support import load_bench

B = load_bench("replay_noise")


def test_window_correlation_finds_the_copy_and_not_other_audio() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(40, 8)), rng.normal(size=(40, 8))
    mel = np.concatenate([a, b, a])
    assert B.window_corr(mel, 0, 40, range(78, 81)) == pytest.approx(1.0, abs=1e-4)
    assert B.window_corr(mel, 0, 40, range(40, 41)) < 0.5
