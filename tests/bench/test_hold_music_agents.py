"""The pure helpers of bench/hold_music_agents.py (the bench itself reads the simulated calls)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from models.training.corpus import CorpusRow
from tests.bench.support import load_bench

B = load_bench("hold_music_agents")


def _call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, channels: int
) -> tuple[CorpusRow, np.ndarray]:
    """A 4-s call in the corpus cache, the agent speaking 0.5-1.5 s on its last channel."""
    monkeypatch.setenv("ROBOCALL_CACHE_DIR", str(tmp_path))
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((4 * B.SR, channels)) * 1e-3).astype(np.float32)
    x[B.SR // 2 : 3 * B.SR // 2, channels - 1] += 0.2
    (tmp_path / "corpus").mkdir()
    sf.write(tmp_path / "corpus" / "call.flac", x, B.SR)
    turns = [{"role": "caller", "kind": "turn", "start_s": 0.5, "end_s": 1.5},
             {"role": "callee", "kind": "answer", "start_s": 2.0, "end_s": 3.0}]  # fmt: skip
    row = CorpusRow(
        id="calls/stereo/en/human_agent/test/0000", path="call.flac", root="cache",
        label="human", kind="call_human_agent", language="en", speaker="s", engine="",
        engine_family="", source="calls", group_id="g", campaign="", split="test",
        duration_s=4.0, orig_sr_hz=16_000, licence="",
        extra=(("layout", "stereo" if channels == 2 else "mono"), ("caller_channel", "1"),
               ("segments", json.dumps(turns))),
    )  # fmt: skip
    return row, x


AT = int(1.8 * B.SR)  # 0.3 s after the agent's turn ends
GAP = B.SR // 2


def _on_hold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, channels: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The call as stored, as the bench puts it on hold (the chord loop), and the held part."""
    row, x = _call(tmp_path, monkeypatch, channels)
    music = B.hold_music(None, 2.5)
    y, _ = sf.read(io.BytesIO(B.on_hold(row, music)), dtype="float32", always_2d=True)
    assert y.shape == (x.shape[0] + music.size + 2 * GAP, channels)
    return x, y, y[AT + GAP : AT + GAP + music.size]


def test_the_music_goes_on_the_caller_s_leg_after_the_agent_s_first_turn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    x, y, held = _on_hold(tmp_path, monkeypatch, 2)
    assert np.allclose(y[:AT], x[:AT], atol=1e-4)  # PCM_16
    assert np.allclose(y[-(x.shape[0] - AT) :], x[AT:], atol=1e-4)
    # the caller's leg carries the music at half its peak level, the callee's only line sound
    assert np.abs(held[:, 1]).max() == pytest.approx(
        0.5 * np.percentile(np.abs(x[:, 1]), 99), rel=0.05
    )
    assert np.abs(held[:, 0]).max() < 0.01


def test_real_music_plays_the_given_number_of_times(tmp_path: Path) -> None:
    track = np.sin(2 * np.pi * 220 * np.arange(2 * B.SR) / B.SR).astype(np.float32) * 0.5
    sf.write(tmp_path / "track.wav", track, B.SR, subtype="FLOAT")
    assert B.hold_music(tmp_path / "track.wav", 2.5).size == 5 * B.SR
    assert B.hold_music(None, 2.5).size == 16 * B.SR  # the chord loop, 10 s then 6 s


def test_a_mono_call_gets_the_music_in_its_one_channel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, held = _on_hold(tmp_path, monkeypatch, 1)
    assert np.abs(held).max() > 0.05


def _most_alike_later(audio: np.ndarray, lag_s: float) -> float:
    """The highest correlation of a quarter second with any quarter second ``lag_s`` or more
    before it."""
    frames = audio.reshape(-1, B.SR // 4).astype(np.float64)
    frames /= np.linalg.norm(frames, axis=1, keepdims=True) + 1e-12
    lag = np.subtract.outer(np.arange(len(frames)), np.arange(len(frames)))
    return float((frames @ frames.T)[lag >= int(lag_s * 4)].max())


def test_the_walk_is_played_once_and_never_repeats() -> None:
    music = B.hold_music(None, 2.5, walk_s=12.0)
    assert music.size == 12 * B.SR
    assert np.array_equal(music, B.hold_music(Path("ignored.wav"), 1.0, walk_s=12.0))  # seeded
    assert _most_alike_later(music, 2.0) < 0.8
    assert _most_alike_later(np.tile(music[: 3 * B.SR], 4), 2.0) > 0.99  # a loop would show
