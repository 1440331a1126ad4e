"""The pure helpers of bench/queue_announcements.py (the bench itself reads the corpus)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.bench.support import load_bench

B = load_bench("queue_announcements")


def _clip() -> np.ndarray:
    """2 s of a quiet line (white noise, -50 dBFS) with a loud tone in its second half."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(2 * B.SR).astype(np.float32) * np.float32(10 ** (-50 / 20))
    t = np.arange(B.SR) / B.SR
    x[B.SR :] += (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    return x


def test_the_line_sound_has_the_quiet_frames_level_and_is_new_each_draw() -> None:
    clip = _clip()
    a, b = B.line_sound(clip, 1), B.line_sound(clip, 2)
    assert a.size == b.size == B.SR // 2
    # the level of the quiet half, not of the tone
    assert np.sqrt(np.mean(a**2)) == pytest.approx(10 ** (-50 / 20), rel=0.2)
    # two draws are not the same audio: nothing for the replay search to find between gaps
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.1
    assert np.array_equal(B.line_sound(clip, 1), a)  # seeded
    assert not B.line_sound(np.zeros(B.SR, np.float32), 0).any()  # digital silence stays silent
    assert B.line_sound(np.zeros(10, np.float32), 0).size == B.SR // 2


def test_the_hold_goes_between_the_clip_s_halves() -> None:
    clip = _clip()
    music = B.music_loop(None)
    out = B.held(clip, None, music)
    gap = B.SR // 2
    assert out.size == clip.size + 3 * gap + music.size + 6 * B.SR
    h = clip.size // 2
    assert np.array_equal(out[:h], clip[:h]) and np.array_equal(out[-h:], clip[h:])
    # the music at half the clip's peak level, the second time cut at 6 s
    first = out[h + gap : h + gap + music.size]
    level = float(np.percentile(np.abs(clip), 99))
    assert np.abs(first).max() == pytest.approx(0.5 * level, rel=1e-3)
    again = out[h + 2 * gap + music.size : h + 2 * gap + music.size + 6 * B.SR]
    assert np.allclose(again, first[: 6 * B.SR])
    message = np.ones(B.SR, np.float32)
    assert B.held(clip, message, music).size == out.size + 2 * (message.size + gap)


def test_real_music_is_looped_end_to_end(tmp_path: Path) -> None:
    track = np.sin(2 * np.pi * 220 * np.arange(3 * B.SR) / B.SR).astype(np.float32) * 0.5
    path = tmp_path / "track.wav"
    sf.write(path, track, B.SR, subtype="FLOAT")
    loop = B.music_loop(path, 7.0)
    assert loop.size == 7 * B.SR
    assert np.allclose(loop[3 * B.SR : 6 * B.SR], track) and np.allclose(
        loop[6 * B.SR :], track[: B.SR]
    )
