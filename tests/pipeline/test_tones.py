"""Signalling tones (ringback, busy, beeps) are found and left out of the speech; voices are not."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from pipeline.acoustic import acoustic_cues
from pipeline.audio import load_audio
from pipeline.config import AudioLimits
from pipeline.telephone import call_channel
from pipeline.tones import FRAME_S, MIN_TONE_S, tone_frames, tone_spans
from pipeline.types import ANALYSIS_RATE_HZ, Audio
from pipeline.vad import voiced_intervals
from tests.factories import make_audio_info

SR = ANALYSIS_RATE_HZ
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# ITU-T E.180 tones: frequencies and a cadence (on, off, on, off, ...) in seconds
TONES: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "North American ringback": ((440.0, 480.0), (2.0, 4.0)),
    "Chinese ringback": ((450.0,), (1.0, 4.0)),
    "European ringback": ((425.0,), (1.0, 4.0)),
    "British ringback": ((400.0, 450.0), (0.4, 0.2, 0.4, 2.0)),
    "North American busy": ((480.0, 620.0), (0.5, 0.5)),
    "Chinese busy": ((450.0,), (0.35, 0.35)),
    "recorder beep": ((1400.0,), (0.2, 2.0)),
    "special information tone": ((913.8,), (0.274, 1.0)),
}


def cadence(
    freqs_hz: tuple[float, ...], pattern_s: tuple[float, ...], total_s: float, level_dbfs: float
) -> tuple[np.ndarray, np.ndarray]:
    """A tone cadence at ``level_dbfs`` RMS (while on) and a per-sample mask of where it is on."""
    t = np.arange(int(total_s * SR)) / SR
    x = sum(np.sin(2 * np.pi * f * t) for f in freqs_hz)
    x = x / np.sqrt(np.mean(x**2)) * 10 ** (level_dbfs / 20)
    period = np.cumsum(pattern_s)
    phase = np.searchsorted(period, t % period[-1], side="right")
    on = phase % 2 == 0
    return (x * on).astype(np.float32), on


def inner_frames(on: np.ndarray) -> np.ndarray:
    """Frames wholly inside a burst, 40 ms away from its edges (the analysis window's reach)."""
    n = on.size // int(FRAME_S * SR)
    full = on[: n * int(FRAME_S * SR)].reshape(n, -1).all(axis=1)
    return np.asarray(ndimage.binary_erosion(full, iterations=2))


@pytest.mark.parametrize("name", sorted(TONES))
@pytest.mark.parametrize("path", ["as recorded", "call channel"])
def test_each_telephone_tone_is_found(name: str, path: str) -> None:
    freqs, pattern = TONES[name]
    x, on = cadence(freqs, pattern, 8.0, -20.0)
    if path == "call channel":
        x = call_channel(x)
    found = tone_frames(x)
    inner = inner_frames(on)
    assert found[inner].mean() >= 0.95
    off = ~ndimage.binary_dilation(inner_frames(on) | found, iterations=4)
    assert not found[off].any()


@pytest.mark.parametrize("f0_hz", [110.0, 160.0, 250.0, 330.0])
def test_a_voice_on_a_flat_pitch_is_not_a_tone(
    synth: Callable[..., np.ndarray], f0_hz: float
) -> None:
    # a robot's monotone, or Mandarin's first tone: one pitch, its energy in a few harmonics
    assert not tone_frames(synth("robot", duration_s=4.0, f0_hz=f0_hz)).any()


def test_a_human_voice_is_not_a_tone(synth: Callable[..., np.ndarray]) -> None:
    assert not tone_frames(synth("human", duration_s=6.0)).any()


@pytest.mark.parametrize("name", ["human_zh.mp3", "robot_en.mp3", "call_stereo.m4a"])
def test_the_example_recordings_hold_no_tone(name: str) -> None:
    audio = load_audio(EXAMPLES / name, limits=AudioLimits())
    for channel in audio.samples:
        assert tone_spans(channel) == []


def test_key_presses_are_too_short_to_count(synth: Callable[..., np.ndarray]) -> None:
    # a documented limit: DTMF digits (here 80 ms) are shorter than MIN_TONE_S
    assert 0.08 < MIN_TONE_S
    assert not tone_frames(synth("dtmf", duration_s=3.0)).any()


def test_spans_are_whole_bursts() -> None:
    x, _ = cadence((450.0,), (1.0, 4.0), 7.0, -20.0)
    spans = tone_spans(x)
    assert len(spans) == 2
    for (start, end), want in zip(spans, (0.0, 5.0), strict=True):
        assert start == pytest.approx(want, abs=0.05)
        assert end - start == pytest.approx(1.0, abs=0.06)


def test_empty_and_short_input() -> None:
    assert tone_frames(np.zeros(0, dtype=np.float32)).size == 0
    assert tone_spans(np.zeros(100, dtype=np.float32)) == []


def ringing_then_voice(synth: Callable[..., np.ndarray]) -> tuple[np.ndarray, float]:
    """Two North American ringback cycles, exact zeros between them, then a voice."""
    ring, _ = cadence((440.0, 480.0), (2.0, 4.0), 10.0, -20.0)
    voice = synth("human", duration_s=6.0)
    return np.concatenate([ring, voice]), ring.size / SR


def test_the_speech_gate_leaves_the_ringing_out(synth: Callable[..., np.ndarray]) -> None:
    x, answered_s = ringing_then_voice(synth)
    intervals = voiced_intervals(x)
    assert intervals and intervals[0][0] >= answered_s - 0.05
    for kwargs in ({}, {"above_noise_db": 10.0}, {"above_noise_db": 10.0, "hold_db": 6.0}):
        assert voiced_intervals(x, **kwargs)[0][0] >= answered_s - 0.05
    ring, _ = cadence((450.0,), (1.0, 4.0), 10.0, -20.0)
    assert voiced_intervals(ring) == []


def test_the_ringing_s_dead_gaps_are_not_silence_between_sentences(
    synth: Callable[..., np.ndarray],
) -> None:
    # the gaps of the cadence are exact zeros: taken for speech, the ringing made them
    # "the line goes completely dead between sentences", a robot cue
    x, _ = ringing_then_voice(synth)
    info = make_audio_info(name="ringing.wav", duration_s=x.size / SR)
    cues = acoustic_cues(Audio(samples=x[None, :], info=info))
    silence = [e for e in cues.evidence if e.name == "digital_silence_s"]
    assert all(e.value < 1.0 for e in silence)
