"""Telephone signalling tones: ringback, busy tone, call waiting, recorder beeps, SIT.

A recording of a call often holds sounds that are nobody's voice: the ringing before the call is
answered (ITU-T E.180: 425 Hz in most of Europe, 450 Hz in China, 440 + 480 Hz in North America,
400 + 450 Hz in the UK), a busy tone, a recorder's beep, the special information tone before "the
number you have dialled...". To an energy gate they are as loud as speech, so without this they
count as the caller talking: windows of pure tone are scored by the voice model, and the dead
gaps of the ringing cadence read as silence between sentences.

A 20 ms frame belongs to a tone when

- its two strongest spectral peaks (64 ms Hann window, 200-4000 Hz) hold ``MIN_PEAK_SHARE`` of
  the band's energy,
- those two peaks are not two harmonics of one voice (frequency ratio m/n, 1 <= n < m <= 6,
  within ``HARMONIC_TOLERANCE``, the weaker one holding ``HARMONIC_MIN_SHARE``): a voice on a
  flat tone, such as Mandarin's first tone, also puts most of its energy in two harmonics,
- and a run of such frames holds its frequency (the strongest peak within ``MAX_DRIFT_HZ`` of
  one of the run's first two peaks) and its level (within ``MAX_LEVEL_STEP_DB``) for at least
  ``MIN_TONE_S``. Speech glides; a tone generator does not.

Not detected, by design of the last rule: DTMF key presses (40-100 ms, shorter than
``MIN_TONE_S``), and tones whose two frequencies stand in a small-integer ratio (the North
American dial tone, 350 + 440 Hz, 4:5), which the harmonic rule cannot tell from a voice.
Measured on the corpus and on generated tones: ``docs/evaluation_calls.md``, "Signalling tones".
Written here with numpy: no library offers a detector for arbitrary tone cadences (DTMF decoders
know only the keypad's pairs).
"""

from __future__ import annotations

import numpy as np

from pipeline.types import ANALYSIS_RATE_HZ

FRAME_S = 0.02  # the energy VAD's frame (``pipeline.vad.FRAME_S``): frame i is [i, i+1) * 20 ms
WINDOW = 1024  # 64 ms Hann window at 16 kHz: 15.6 Hz bins, resolves 440 from 480 Hz
BAND_HZ = (200.0, 4000.0)  # where telephony tones lie, inside what a line passes
PEAK_HALF_WIDTH = 2  # bins each side of a peak: a Hann window's main lobe
MIN_PEAK_SHARE = 0.85  # the two strongest peaks' share of the band's energy
HARMONIC_RATIOS = tuple(sorted({m / n for m in range(2, 7) for n in range(1, m)}))
HARMONIC_TOLERANCE = 0.02  # relative distance of the peaks' ratio from m/n
HARMONIC_MIN_SHARE = 0.05  # the weaker peak's share for the pair to count as harmonics
MAX_DRIFT_HZ = 3.0  # a run's strongest peak stays this close to one of its first peaks
# ...and its band level this close to its first frame's (AMR-NB moves a tone's level 1-4 dB)
MAX_LEVEL_STEP_DB = 9.0
MIN_TONE_S = 0.16  # shorter runs are not counted (a sustained vowel can hold ~0.15 s)
MIN_LEVEL_DBFS = -60.0  # quieter frames are the line's noise, not a tone
CHUNK_FRAMES = 2_000  # windows transformed at once (16 MB)


def tone_frames(samples: np.ndarray) -> np.ndarray:
    """Which 20 ms frames of a channel hold a signalling tone rather than a voice.

    Parameters
    ----------
    samples : np.ndarray [shape=(n,)], float at 16 kHz (``ANALYSIS_RATE_HZ``)

    Returns
    -------
    np.ndarray [shape=(n // 320,)], bool: frame i covers [i * 20 ms, (i + 1) * 20 ms), the
    frames of ``pipeline.vad.frame_rms_dbfs``.
    """
    hop = int(round(FRAME_S * ANALYSIS_RATE_HZ))
    x = np.asarray(samples, dtype=np.float64)
    n_frames = x.size // hop
    if n_frames == 0:
        return np.zeros(0, dtype=bool)
    power = _band_spectra(x, n_frames)
    total = np.maximum(power.sum(axis=1), 1e-30)
    peaks, shares = _two_peaks(power, total)
    freqs_hz = _peak_hz(power, peaks)
    frames = x[: n_frames * hop].reshape(n_frames, hop)
    level_dbfs = 10.0 * np.log10(np.maximum(np.mean(frames**2, axis=1), 1e-15))
    candidate = (
        (shares[:, 1] >= MIN_PEAK_SHARE)
        & (level_dbfs >= MIN_LEVEL_DBFS)
        & ~_harmonic_pair(freqs_hz, shares)
    )
    return _steady_runs(candidate, freqs_hz, 10.0 * np.log10(total))


def tone_spans(samples: np.ndarray) -> list[tuple[float, float]]:
    """The runs of :func:`tone_frames` as (start_s, end_s)."""
    tone = tone_frames(samples)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], tone.astype(np.int8), [0]))))
    return [
        (float(a * FRAME_S), float(b * FRAME_S))
        for a, b in zip(edges[::2], edges[1::2], strict=True)
    ]


def _band_spectra(x: np.ndarray, n_frames: int) -> np.ndarray:
    """Power spectra in ``BAND_HZ`` (n_frames, bins), each window centred on its 20 ms frame;
    computed ``CHUNK_FRAMES`` at a time, so a long call never holds all its windows at once."""
    hop = int(round(FRAME_S * ANALYSIS_RATE_HZ))
    padded = np.pad(x, ((WINDOW - hop) // 2, WINDOW))
    band = _band()
    taper = np.hanning(WINDOW)
    out = np.empty((n_frames, int(band.sum())))
    for first in range(0, n_frames, CHUNK_FRAMES):
        rows = np.arange(first, min(first + CHUNK_FRAMES, n_frames))
        windows = padded[rows[:, None] * hop + np.arange(WINDOW)[None, :]]
        out[rows] = (np.abs(np.fft.rfft(windows * taper, axis=1)) ** 2)[:, band]
    return out


def _band() -> np.ndarray:
    freqs = np.fft.rfftfreq(WINDOW, 1.0 / ANALYSIS_RATE_HZ)
    return np.asarray((freqs >= BAND_HZ[0]) & (freqs <= BAND_HZ[1]))


def _two_peaks(power: np.ndarray, total: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two strongest local maxima per frame (bins, (n, 2)) and the band's energy share of
    the strongest one and of both together (each +-``PEAK_HALF_WIDTH`` bins; (n, 2))."""
    is_peak = np.zeros(power.shape, dtype=bool)
    is_peak[:, 1:-1] = (power[:, 1:-1] >= power[:, :-2]) & (power[:, 1:-1] > power[:, 2:])
    peaks = np.argsort(np.where(is_peak, power, -1.0), axis=1)[:, ::-1][:, :2]
    rows = np.arange(power.shape[0])[:, None]
    covered = np.zeros(power.shape, dtype=bool)
    shares = np.zeros((power.shape[0], 2))
    for k in range(2):
        for offset in range(-PEAK_HALF_WIDTH, PEAK_HALF_WIDTH + 1):
            covered[rows[:, 0], np.clip(peaks[:, k] + offset, 0, power.shape[1] - 1)] = True
        shares[:, k] = (power * covered).sum(axis=1) / total
    return peaks, shares


def _peak_hz(power: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    """Each peak's frequency refined by a parabola through its log power and its neighbours'."""
    log_p = np.log(np.maximum(power, 1e-30))
    rows = np.arange(power.shape[0])[:, None]
    k = np.clip(peaks, 1, power.shape[1] - 2)
    left, mid, right = log_p[rows, k - 1], log_p[rows, k], log_p[rows, k + 1]
    curve = left - 2.0 * mid + right
    offset = np.where(np.abs(curve) > 1e-12, 0.5 * (left - right) / np.where(curve, curve, 1), 0)
    first_hz = float(np.fft.rfftfreq(WINDOW, 1.0 / ANALYSIS_RATE_HZ)[_band()][0])
    return np.asarray(first_hz + (k + np.clip(offset, -0.5, 0.5)) * ANALYSIS_RATE_HZ / WINDOW)


def _harmonic_pair(freqs_hz: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """Frames whose two peaks could be two harmonics of one voice."""
    high = np.max(freqs_hz, axis=1)
    low = np.maximum(np.min(freqs_hz, axis=1), 1.0)
    ratio = high / low
    near = np.min(np.abs(ratio[:, None] / np.asarray(HARMONIC_RATIOS)[None, :] - 1.0), axis=1)
    weaker = shares[:, 1] - shares[:, 0]
    return np.asarray((near <= HARMONIC_TOLERANCE) & (weaker >= HARMONIC_MIN_SHARE))


def _steady_runs(candidate: np.ndarray, freqs_hz: np.ndarray, level_db: np.ndarray) -> np.ndarray:
    """Candidate frames in runs that hold frequency and level for ``MIN_TONE_S``."""
    min_frames = int(np.ceil(MIN_TONE_S / FRAME_S - 1e-9))
    tone = np.zeros(candidate.size, dtype=bool)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], candidate.astype(np.int8), [0]))))
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        first = start
        for i in range(start + 1, end + 1):
            if i < end and _holds(freqs_hz, level_db, first, i):
                continue
            if i - first >= min_frames:
                tone[first:i] = True
            first = i
    return tone


def _holds(freqs_hz: np.ndarray, level_db: np.ndarray, first: int, i: int) -> bool:
    drift = float(np.min(np.abs(freqs_hz[first] - freqs_hz[i, 0])))
    return drift <= MAX_DRIFT_HZ and abs(float(level_db[i] - level_db[first])) <= MAX_LEVEL_STEP_DB
