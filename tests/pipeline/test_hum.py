"""Mains hum is found in the pauses and notched out; voices, tones and faint hums are left alone."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from pipeline.hum import NOTCH_MAX_HZ, hum_lines, recording_without_hum, without_hum
from pipeline.types import ANALYSIS_RATE_HZ
from pipeline.vad import voiced_intervals

SR = ANALYSIS_RATE_HZ


def _call(synth: Callable[..., np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Two phrases of a voice with silence around them, on a line whose noise is at -60 dBFS."""
    gap = np.zeros(SR)
    voice = np.concatenate(
        [gap, synth("human", duration_s=3.0), gap, synth("human", duration_s=2.0), gap]
    )
    return (voice + rng.normal(0.0, 10 ** (-60 / 20), voice.size)).astype(np.float32)


def _hum(n: int, mains_hz: float, level_dbfs: float) -> np.ndarray:
    """A buzz: harmonics 1-5 of ``mains_hz``, the fundamental at ``level_dbfs`` RMS."""
    t = np.arange(n) / SR
    amplitude = np.sqrt(2.0) * 10 ** (level_dbfs / 20)
    gains = (1.0, 0.3, 0.5, 0.15, 0.25)
    out = sum(
        g * amplitude * np.sin(2 * np.pi * k * mains_hz * t + k) for k, g in enumerate(gains, 1)
    )
    return np.asarray(out, dtype=np.float32)


def _voiced_s(x: np.ndarray) -> float:
    return sum(b - a for a, b in voiced_intervals(x))


@pytest.mark.parametrize("mains_hz", [50.07, 59.9])
def test_a_mains_hum_is_notched_out_and_the_speech_found_as_without_it(
    synth: Callable[..., np.ndarray], rng: np.random.Generator, mains_hz: float
) -> None:
    clean = _call(synth, rng)
    hummed = clean + _hum(clean.size, mains_hz, -45.0)
    # the hum fills the pauses: the speech detector reads the whole channel as speech
    assert _voiced_s(hummed) > clean.size / SR - 0.5 > _voiced_s(clean) + 2.0
    found = hum_lines(hummed)
    assert found is not None
    measured, lines = found
    assert measured == pytest.approx(mains_hz, abs=0.1)
    assert lines == pytest.approx(
        [k * measured for k in range(1, int(NOTCH_MAX_HZ // measured) + 1)]
    )
    notched, removed = without_hum(hummed)
    assert removed == pytest.approx(mains_hz, abs=0.1)
    heard, found_again = voiced_intervals(clean), voiced_intervals(notched)
    assert len(found_again) == len(heard)
    assert np.array(found_again) == pytest.approx(np.array(heard), abs=0.1)


def test_a_channel_without_hum_is_left_as_it_is(
    synth: Callable[..., np.ndarray], rng: np.random.Generator
) -> None:
    clean = _call(synth, rng)
    assert hum_lines(clean) is None
    same, removed = without_hum(clean)
    assert same is clean and removed is None
    stereo = np.stack([clean, np.zeros_like(clean)])
    out, hz = recording_without_hum(stereo)
    assert out is stereo and hz == 0.0


def test_a_hum_far_under_the_speech_detector_s_level_is_left_bit_for_bit(
    synth: Callable[..., np.ndarray], rng: np.random.Generator
) -> None:
    # audible in the spectrum of the pauses, but 15 dB under the line noise's frames
    clean = _call(synth, rng)
    faint = clean + _hum(clean.size, 50.0, -80.0)
    assert hum_lines(faint) is not None
    same, removed = without_hum(faint)
    assert same is faint and removed is None


def test_a_signalling_tone_is_no_hum(
    synth: Callable[..., np.ndarray], rng: np.random.Generator
) -> None:
    # a Chinese ringback (450 Hz = 9 x 50 Hz, 1 s on, 4 s off) before the voice
    clean = _call(synth, rng)
    t = np.arange(clean.size) / SR
    ringback = 0.1 * np.sin(2 * np.pi * 450.0 * t) * ((t % 5.0) < 1.0) * (t < 5.0)
    with_tone = (clean + ringback).astype(np.float32)
    assert hum_lines(with_tone) is None
    assert without_hum(with_tone)[0] is with_tone


def test_each_channel_is_treated_alone_and_the_mains_reported(
    synth: Callable[..., np.ndarray], rng: np.random.Generator
) -> None:
    clean = _call(synth, rng)
    stereo = np.stack([clean, clean + _hum(clean.size, 60.0, -40.0)])
    out, hz = recording_without_hum(stereo)
    assert hz == 60.0
    np.testing.assert_array_equal(out[0], stereo[0])  # the clean channel untouched
    assert _voiced_s(out[1]) == pytest.approx(_voiced_s(clean), abs=0.3)
    assert _voiced_s(stereo[1]) > _voiced_s(clean) + 2.0  # (the input is not changed in place)


def test_notching_a_long_recording_in_chunks_is_notching_it_whole(
    synth: Callable[..., np.ndarray], rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    hummed = _call(synth, rng) + _hum(8 * SR, 50.0, -45.0)
    whole, _ = without_hum(hummed)  # 8 s: one chunk
    monkeypatch.setattr("pipeline.hum.CHUNK_S", 1.5)
    chunked, mains = without_hum(hummed)
    assert mains is not None and not np.array_equal(whole, hummed)
    np.testing.assert_allclose(chunked, whole, atol=1e-6)


@pytest.mark.parametrize("f0_hz", [100.0, 120.0])
def test_a_flat_pitched_voice_on_a_multiple_of_the_mains_is_no_hum(
    synth: Callable[..., np.ndarray], rng: np.random.Generator, f0_hz: float
) -> None:
    # a TTS voice of flat pitch holds steady lines at 100, 200, 300 Hz (or 120, 240, 360 Hz),
    # even in its quietest windows when it hardly pauses; nothing at 50 or 60 Hz itself
    voice = synth("robot", duration_s=8.0, f0_hz=f0_hz)
    voice = (voice + rng.normal(0.0, 1e-3, voice.size)).astype(np.float32)
    assert hum_lines(voice) is None
    assert without_hum(voice)[0] is voice
