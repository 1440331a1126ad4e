"""The recording-chain perturbation: seeded, length- and peak-keeping, and it changes the sound."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from pipeline.chain import ChainConfig, apply_chain, random_equaliser, room_impulse_response

RATE_HZ = 16_000
ALL_STAGES = ChainConfig(eq_probability=1.0, room_probability=1.0, convolutive_probability=1.0,
                         impulsive_probability=1.0, coloured_probability=1.0)  # fmt: skip
NO_STAGE = ChainConfig(eq_probability=0.0, room_probability=0.0, convolutive_probability=0.0,
                       impulsive_probability=0.0, coloured_probability=0.0)  # fmt: skip


def _speechlike(rng: np.random.Generator, seconds: float = 2.0) -> np.ndarray:
    """Noise bursts with gaps, 0.3 peak."""
    x = rng.standard_normal(int(seconds * RATE_HZ))
    x *= (np.arange(x.size) // 4000) % 2 == 0
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def _band_db(x: np.ndarray) -> np.ndarray:
    """Level in 16 bands up to 8 kHz (Welch), dB."""
    _, p = signal.welch(x, fs=RATE_HZ, nperseg=512)
    return np.asarray(10 * np.log10([b.mean() + 1e-20 for b in np.array_split(p[1:], 16)]))


def test_one_seed_gives_one_chain(rng: np.random.Generator) -> None:
    x = _speechlike(rng)
    a = apply_chain(x, rng=np.random.default_rng(7), config=ALL_STAGES)
    b = apply_chain(x, rng=np.random.default_rng(7), config=ALL_STAGES)
    c = apply_chain(x, rng=np.random.default_rng(8), config=ALL_STAGES)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.mark.parametrize("seed", range(12))
def test_length_peak_and_finiteness_are_kept(rng: np.random.Generator, seed: int) -> None:
    x = _speechlike(rng)
    y = apply_chain(x, rng=np.random.default_rng(seed))
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.isfinite(y).all()
    assert np.abs(y).max() == pytest.approx(np.abs(x).max(), rel=1e-5)


def test_every_stage_changes_the_spectrum(rng: np.random.Generator) -> None:
    x = _speechlike(rng)
    before = _band_db(x)
    for seed in range(5):
        after = _band_db(apply_chain(x, rng=np.random.default_rng(seed), config=ALL_STAGES))
        shape = (after - after.mean()) - (before - before.mean())
        assert np.abs(shape).max() > 3.0  # at least one band moves by 3 dB relative to the rest


def test_no_stage_leaves_the_clip_as_it_was(rng: np.random.Generator) -> None:
    x = _speechlike(rng)
    assert np.allclose(apply_chain(x, rng=np.random.default_rng(0), config=NO_STAGE), x, atol=1e-6)


def test_the_equaliser_stays_within_its_gains() -> None:
    eq = random_equaliser(np.random.default_rng(3), ChainConfig(eq_gain_db=6.0), RATE_HZ)
    _, h = signal.sosfreqz(eq, worN=2048, fs=RATE_HZ)
    gain_db = 20 * np.log10(np.abs(h))
    assert np.isfinite(gain_db).all()
    assert np.abs(gain_db).max() <= 6.0 * (2 + 3) + 1e-6  # five bands, each at most 6 dB
    assert np.ptp(gain_db) > 1.0


def test_the_room_has_its_direct_to_reverberant_ratio_and_decay() -> None:
    h = room_impulse_response(np.random.default_rng(1), rt60_s=0.4, drr_db=6.0,
                              sample_rate_hz=RATE_HZ)  # fmt: skip
    tail = h[1:]
    assert 10 * np.log10(h[0] ** 2 / np.sum(tail**2)) == pytest.approx(6.0, abs=1e-6)
    n = tail.size
    early, late = np.sum(tail[: n // 4] ** 2), np.sum(tail[-n // 4 :] ** 2)
    assert 10 * np.log10(early / late) > 20  # decays by 60 dB over the RT60


def test_reverberation_fills_the_gaps(rng: np.random.Generator) -> None:
    x = _speechlike(rng)
    only_room = ChainConfig(eq_probability=0.0, room_probability=1.0, rt60_s_range=(0.6, 0.8),
                            drr_db_range=(-3.0, -3.0), convolutive_probability=0.0,
                            impulsive_probability=0.0, coloured_probability=0.0)  # fmt: skip
    y = apply_chain(x, rng=np.random.default_rng(2), config=only_room)
    gap = slice(4000 + 800, 4000 + 2400)  # just after the first burst ends
    assert np.abs(x[gap]).max() == 0
    assert np.sqrt(np.mean(y[gap] ** 2)) > 0.01


def test_empty_input_and_bad_configs() -> None:
    assert apply_chain(np.zeros(0), rng=np.random.default_rng(0)).size == 0
    with pytest.raises(ValueError, match="room_probability"):
        ChainConfig(room_probability=1.5)
    with pytest.raises(ValueError, match="rt60_s_range"):
        ChainConfig(rt60_s_range=(0.8, 0.2))
