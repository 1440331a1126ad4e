"""The pure helpers of bench/line_menu_agents.py (the bench itself reads the simulated calls)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.bench.support import load_bench
from tests.bench.test_hold_music_agents import _call

B = load_bench("line_menu_agents")
GAP = B.SR // 2


def _menu() -> np.ndarray:
    t = np.arange(2 * B.SR) / B.SR
    return (0.3 * np.sin(2 * np.pi * 500 * t)).astype(np.float32)


@pytest.mark.parametrize("channels", [1, 2])
def test_the_menu_opens_the_caller_s_leg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, channels: int
) -> None:
    row, x = _call(tmp_path, monkeypatch, channels)
    menu = _menu()
    y, _ = sf.read(io.BytesIO(B.with_menu(row, menu)), dtype="float32", always_2d=True)
    opening = menu.size + 2 * GAP
    assert y.shape == (x.shape[0] + opening, channels)
    assert np.allclose(y[opening:], x, atol=1e-4)  # the call after it, as stored (PCM_16)
    caller = channels - 1  # the agent's leg ("caller_channel" 1 of a stereo call)
    played = y[GAP : GAP + menu.size, caller]
    level = np.percentile(np.abs(x[:, caller]), 99)
    assert np.abs(played).max() == pytest.approx(level, rel=0.05)
    assert np.abs(y[: GAP // 2, caller]).max() < 0.01  # the line's sound before it
    if channels == 2:
        assert np.abs(y[:opening, 0]).max() < 0.01  # the callee hears the line meanwhile


def test_every_menu_has_both_languages() -> None:
    assert all(set(menu) == {"en", "zh"} for menu in B.MENUS.values())
    texts = [text for menu in B.MENUS.values() for text in menu.values()]
    assert len(set(texts)) == len(texts)
