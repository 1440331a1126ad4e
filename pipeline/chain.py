"""A random recording chain (microphone colouration, room, device artefacts) put on a clip
before the telephone channel, to people and robots alike (issue 12).

Why: every synthetic source of the training data is clean studio audio and every telephone
recording is human, so the synthetic-voice head learns the training sources' recording chains
(docs/unseen_sources.md, findings 2-3: a speaker from an unseen chain loses the "person"
credit). The telephone channel (:mod:`pipeline.telephone`) draws codec, band and noise but no
colouration, room or device distortion; this module draws those:

1. colouration: a random parametric equaliser (low and high shelf plus peaking bands, RBJ
   audio-EQ-cookbook biquads), each gain uniform in +-``eq_gain_db``;
2. a synthetic room: an impulse response of a direct path plus an exponentially decaying
   noise tail (RT60 uniform in ``rt60_s_range``), the direct-to-reverberant energy ratio
   uniform in ``drr_db_range``;
3. RawBoost-style perturbations (Tak et al., "RawBoost: a raw data boosting and augmentation
   method applied to automatic speaker verification anti-spoofing", ICASSP 2022), written here
   from the paper's description: (a) linear and non-linear convolutive noise: for each power
   1..``nonlinear_orders`` the signal through its own random multi-band FIR filter raised to
   that power, added to the signal with random gains that shrink with the power;
   (b) impulsive signal-dependent noise: a random few percent of
   samples get the sample itself times a uniform random factor added; (c) stationary additive
   noise, white noise through a random multi-band FIR filter, at a random SNR.

Each stage runs with its own probability; every draw comes from the ``rng`` given, in a fixed
order, so one seed gives one chain. Written with numpy/scipy rather than ``audiomentations``:
that library draws from numpy's global random state (no per-clip generator) and its room
simulator needs ``pyroomacoustics``; the stages here are a few filters each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import signal

from pipeline.types import ANALYSIS_RATE_HZ


def _check_pair(name: str, pair: tuple[float, float], low: float, high: float) -> None:
    if not low <= pair[0] <= pair[1] <= high:
        raise ValueError(f"{name} must be an ordered pair within [{low}, {high}], got {pair}")


@dataclass(frozen=True, slots=True)
class ChainConfig:
    eq_probability: float = 0.9  # chance of a random equaliser
    eq_peaks: int = 3  # peaking bands besides the two shelves
    eq_gain_db: float = 8.0  # each band's gain is uniform in +-this
    room_probability: float = 0.6  # chance of a synthetic room
    rt60_s_range: tuple[float, float] = (0.15, 0.8)  # reverberation time, uniform
    drr_db_range: tuple[float, float] = (-3.0, 12.0)  # direct-to-reverberant ratio, uniform
    convolutive_probability: float = 0.4  # RawBoost (a)
    nonlinear_orders: int = 3  # powers of the filtered signal summed in (a)
    impulsive_probability: float = 0.3  # RawBoost (b)
    impulsive_share_range: tuple[float, float] = (0.005, 0.05)  # share of samples hit in (b)
    impulsive_gain_range: tuple[float, float] = (0.1, 1.0)  # max relative size of (b)'s hits
    coloured_probability: float = 0.4  # RawBoost (c)
    coloured_snr_db_range: tuple[float, float] = (15.0, 40.0)  # (c)'s SNR, uniform

    def __post_init__(self) -> None:
        for name in ("eq_probability", "room_probability", "convolutive_probability",
                     "impulsive_probability", "coloured_probability"):  # fmt: skip
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if not 0 <= self.eq_peaks <= 10:
            raise ValueError(f"eq_peaks must be in [0, 10], got {self.eq_peaks}")
        if not 0.0 <= self.eq_gain_db <= 20.0:
            raise ValueError(f"eq_gain_db must be in [0, 20], got {self.eq_gain_db}")
        if not 1 <= self.nonlinear_orders <= 5:
            raise ValueError(f"nonlinear_orders must be in [1, 5], got {self.nonlinear_orders}")
        _check_pair("rt60_s_range", self.rt60_s_range, 0.05, 3.0)
        _check_pair("drr_db_range", self.drr_db_range, -20.0, 40.0)
        _check_pair("impulsive_share_range", self.impulsive_share_range, 0.0, 0.5)
        _check_pair("impulsive_gain_range", self.impulsive_gain_range, 0.0, 5.0)
        _check_pair("coloured_snr_db_range", self.coloured_snr_db_range, -5.0, 80.0)


def _biquad(kind: str, f0_hz: float, gain_db: float, q: float, sample_rate_hz: int) -> np.ndarray:
    """One RBJ-cookbook biquad ("peak", "low_shelf" or "high_shelf") as an sos row."""
    a = 10 ** (gain_db / 40)
    w0 = 2 * math.pi * f0_hz / sample_rate_hz
    cos_w, alpha = math.cos(w0), math.sin(w0) / (2 * q)
    if kind == "peak":
        b = [1 + alpha * a, -2 * cos_w, 1 - alpha * a]
        den = [1 + alpha / a, -2 * cos_w, 1 - alpha / a]
    else:
        sign = 1 if kind == "low_shelf" else -1
        root = 2 * math.sqrt(a) * alpha
        b = [a * ((a + 1) - sign * (a - 1) * cos_w + root),
             sign * 2 * a * ((a - 1) - sign * (a + 1) * cos_w),
             a * ((a + 1) - sign * (a - 1) * cos_w - root)]  # fmt: skip
        den = [(a + 1) + sign * (a - 1) * cos_w + root,
               -sign * 2 * ((a - 1) + sign * (a + 1) * cos_w),
               (a + 1) + sign * (a - 1) * cos_w - root]  # fmt: skip
    return np.asarray([*b, *den]) / den[0]


def random_equaliser(
    rng: np.random.Generator, config: ChainConfig, sample_rate_hz: int
) -> np.ndarray:
    """A random equaliser as second-order sections: a low shelf (80-400 Hz), a high shelf
    (2-6 kHz) and ``eq_peaks`` peaking bands (150 Hz-0.45 x rate, log-uniform; Q 0.5-3)."""
    g = config.eq_gain_db
    top = 0.45 * sample_rate_hz
    rows = [_biquad("low_shelf", rng.uniform(80, 400), rng.uniform(-g, g), 0.707, sample_rate_hz),
            _biquad("high_shelf", rng.uniform(2000, min(6000, top)), rng.uniform(-g, g), 0.707,
                    sample_rate_hz)]  # fmt: skip
    for _ in range(config.eq_peaks):
        f0 = math.exp(rng.uniform(math.log(150), math.log(top)))
        rows.append(_biquad("peak", f0, rng.uniform(-g, g), rng.uniform(0.5, 3.0), sample_rate_hz))
    return np.stack(rows)


def room_impulse_response(
    rng: np.random.Generator, *, rt60_s: float, drr_db: float, sample_rate_hz: int
) -> np.ndarray:
    """A direct path (1 at sample 0) then, after 1-10 ms, Gaussian noise decaying by 60 dB in
    ``rt60_s``, scaled so direct energy / tail energy is ``drr_db``."""
    delay = int(rng.uniform(0.001, 0.010) * sample_rate_hz)
    n = int(rt60_s * sample_rate_hz)
    t = np.arange(n) / sample_rate_hz
    tail = rng.standard_normal(n) * np.exp(-3 * math.log(10) * t / rt60_s)
    tail *= math.sqrt(10 ** (-drr_db / 10) / max(float(np.sum(tail**2)), 1e-12))
    h = np.zeros(delay + n)
    h[0] = 1.0
    h[delay:] += tail
    return h


def random_multiband_fir(rng: np.random.Generator, sample_rate_hz: int) -> np.ndarray:
    """RawBoost's random filter: the sum of 1-5 band-pass FIRs (windowed sinc, 11-101 taps,
    random centre 20 Hz-0.45 x rate and width 100-1000 Hz)."""
    taps = 2 * int(rng.integers(5, 51)) + 1
    nyquist = sample_rate_hz / 2
    h = np.zeros(taps)
    for _ in range(int(rng.integers(1, 6))):
        centre = rng.uniform(20.0, 0.9 * nyquist)
        width = rng.uniform(100.0, 1000.0)
        low, high = max(centre - width / 2, 10.0), min(centre + width / 2, 0.95 * nyquist)
        h += signal.firwin(taps, [low, high], pass_zero=False, fs=sample_rate_hz)
    return h


def _power(x: np.ndarray) -> float:
    return float(np.mean(x**2)) + 1e-20


def apply_chain(
    samples: np.ndarray,
    *,
    rng: np.random.Generator,
    config: ChainConfig = ChainConfig(),
    sample_rate_hz: int = ANALYSIS_RATE_HZ,
) -> np.ndarray:
    """``samples`` through one random recording chain drawn from ``rng``.

    Parameters
    ----------
    samples : np.ndarray [shape=(n,)]
        Mono audio, float.
    rng : np.random.Generator
        Every random choice, drawn in a fixed order (one seed, one chain).
    config : ChainConfig
        Stage probabilities and ranges.
    sample_rate_hz : int
        Rate of ``samples``.

    Returns
    -------
    np.ndarray [shape=(n,)], float32
        The same length; peak scaled back to the input's (the telephone channel sets the
        level afterwards); finite.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.size == 0:
        return x.astype(np.float32)
    peak = float(np.max(np.abs(x)))
    # Every draw is made whether its stage runs or not, so a stage switched off in the config
    # leaves the others' draws as they were.
    use = rng.uniform(size=5) < np.asarray([
        config.eq_probability, config.room_probability, config.convolutive_probability,
        config.impulsive_probability, config.coloured_probability,
    ])  # fmt: skip
    eq = random_equaliser(rng, config, sample_rate_hz)
    rt60_s, drr_db = rng.uniform(*config.rt60_s_range), rng.uniform(*config.drr_db_range)
    room = room_impulse_response(rng, rt60_s=rt60_s, drr_db=drr_db, sample_rate_hz=sample_rate_hz)
    order_filters = [
        random_multiband_fir(rng, sample_rate_hz) for _ in range(config.nonlinear_orders)
    ]
    order_gains = [rng.uniform(0.0, 1.0) ** (j + 1) for j in range(config.nonlinear_orders)]
    share = rng.uniform(*config.impulsive_share_range)
    hit_gain = rng.uniform(*config.impulsive_gain_range)
    hit_seed = int(rng.integers(2**31))
    noise_filter = random_multiband_fir(rng, sample_rate_hz)
    snr_db = rng.uniform(*config.coloured_snr_db_range)
    noise_seed = int(rng.integers(2**31))

    if use[0]:
        x = signal.sosfilt(eq, x)
    if use[1]:
        x = signal.fftconvolve(x, room)[: x.size]
    if use[2]:  # (a) y = x + sum_j g_j (h_j * x)^j, x at unit peak so the powers stay bounded
        unit = x / max(float(np.max(np.abs(x))), 1e-12)
        x = unit + sum(
            g * signal.fftconvolve(unit, h, mode="same") ** (j + 1)
            for j, (g, h) in enumerate(zip(order_gains, order_filters, strict=True))
        )
    if use[3]:  # (b) x[n] + g x[n] u[n] at a random share of the samples
        hits = np.random.default_rng(hit_seed)
        where = hits.uniform(size=x.size) < share
        x = x + where * hit_gain * x * hits.uniform(-1.0, 1.0, size=x.size)
    if use[4]:  # (c) white noise through a random multi-band filter at snr_db
        noise = signal.lfilter(
            noise_filter, [1.0], np.random.default_rng(noise_seed).standard_normal(x.size)
        )
        x = x + noise * math.sqrt(_power(x) / _power(noise) * 10 ** (-snr_db / 10))
    x = np.nan_to_num(np.asarray(x, dtype=np.float64))
    top = float(np.max(np.abs(x)))
    if top > 0 and peak > 0:
        x *= peak / top
    return x.astype(np.float32)
