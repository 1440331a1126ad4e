"""models/training/eval_calls.py: the window cache and the bootstrap over caller voices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.training import eval_calls
from tests.models.test_diarize import FakeEncoder, call


def test_resample_draws_whole_caller_voices() -> None:
    groups = ["a", "a", "a", "b", "c", "c"]
    rng = np.random.default_rng(0)
    for _ in range(50):
        idx = eval_calls.resample(groups, rng)
        drawn = [groups[i] for i in idx]
        for g in set(drawn):  # a voice comes with all of its calls, as often as it was drawn
            assert drawn.count(g) % groups.count(g) == 0
        assert len({g for g in drawn}) <= 3


def test_windows_are_cached_by_the_samples(tmp_path: Path, rng: np.random.Generator) -> None:
    x, _ = call(rng)
    windows = eval_calls.Windows(tmp_path)
    windows._encoder = FakeEncoder()
    starts, emb = windows(x)
    assert starts.size == emb.shape[0] > 4 and np.allclose(np.diff(starts) % 0.25, 0.0)
    assert len(list(tmp_path.glob("*.npz"))) == 1

    class Refuses:
        def __call__(self, mels: np.ndarray) -> np.ndarray:
            raise AssertionError("a cached recording is embedded again")

    again = eval_calls.Windows(tmp_path)
    again._encoder = Refuses()
    starts2, emb2 = again(x)
    assert np.array_equal(starts, starts2) and np.array_equal(emb, emb2)
    with pytest.raises(AssertionError, match="again"):
        again(x[: x.size // 2])  # other samples: not cached
