"""Mains hum: a recorder's 50 or 60 Hz ground-loop hum and its harmonics, found and notched out.

A hum is no voice, but frame levels count it. On a simulated call's channel, whose line noise
sits near -55 dBFS, a hum at -50 dBFS made the energy speech detector (``pipeline.vad``) read
every pause as speech; on the examples' clean files one at -40 dBFS (50 + 150 Hz) lengthened
the speech found (the Mandarin example 13.1 -> 16.2 s). Every pause, latency and turn it
measures goes with them. Nothing of our training or simulated audio hums (the telephone channel
passes 300-3400 Hz).

A channel hums when, in the mean spectrum of its quietest windows (:func:`pause_spectrum`), the
mains frequency itself (50 or 60 Hz) stands ``MIN_PEAK_DB`` above the spectrum around it: no
voice holds a line that low. Its harmonics are no sign: a TTS voice of flat pitch holds steady
lines at multiples of its pitch, and in a short clip without pauses the quietest windows are
speech (asked for lines up to 250 Hz too, a first version took the harmonics of flat-pitched
TTS clips of ../shared for a hum). Every harmonic of the measured mains frequency up to
``NOTCH_MAX_HZ`` is then notched (zero-phase, ``NOTCH_WIDTH_HZ`` wide), and the notched channel
is kept only when its quiet frames (the ``QUIET_PERCENTILE``-th percentile 20 ms frame) fell by
``MIN_DROP_DB`` or more: a hum too weak to lift the pauses is left bit for bit. Signalling tones
lie at 350 Hz and above (``pipeline.tones``), so the notches stop under them; a hum's harmonics
above ``NOTCH_MAX_HZ`` stay. Measured: ``docs/architecture.md`` (schema 9).
Written here with scipy's filters: no library we use removes mains hum.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from pipeline.types import ANALYSIS_RATE_HZ
from pipeline.vad import ABS_FLOOR_DBFS, FRAME_S, REL_FLOOR_DB, frame_rms_dbfs

MAINS_HZ = (50.0, 60.0)
WINDOW_S = 1.0  # spectrum window: 1 Hz bins (mains drifts by under 0.2 Hz)
MAX_WINDOWS = 200  # quiet windows averaged at most
NOTCH_MAX_HZ = 340.0  # harmonics notched up to here, under the lowest signalling tone
SEARCH_HZ = 1.0  # the mains line's peak is looked for this close to 50 or 60 Hz
BACKGROUND_HZ = (5.0, 20.0)  # the spectrum around a peak: this far from it on either side
MIN_PEAK_DB = 15.0  # the mains line stands this far above the median of its surroundings
NOTCH_WIDTH_HZ = 6.0  # -3 dB width of each notch (3, 6, 10 Hz tried on the dev calls: 6)
QUIET_PERCENTILE = 20.0  # the frames (and windows) that stand for a channel's pauses
# the notches must lower those frames this much to be kept (3, 2, 1, 0.5 dB tried on the dev
# calls: 0.5; a line's noise near the detector's -55 dBFS floor tips over at a fraction of a dB)
MIN_DROP_DB = 0.5
GATE_MARGIN_DB = 10.0  # pauses further than this under the speech detector's level are left
MIN_SECONDS = 2.0  # shorter channels are left alone (too few windows)
CHUNK_S, PAD_S = 60.0, 2.0  # the notches run over this much audio at a time, with context


def hum_lines(samples: np.ndarray) -> tuple[float, tuple[float, ...]] | None:
    """The mains frequency of a channel's hum and the lines to notch, or None.

    Parameters
    ----------
    samples : np.ndarray [shape=(n,)], float at 16 kHz (``ANALYSIS_RATE_HZ``)

    Returns
    -------
    (mains_hz, lines_hz) or None
        None when neither mains frequency stands ``MIN_PEAK_DB`` out of the pauses' spectrum
        (:func:`pause_spectrum`). Else the mains frequency as measured (the louder of the two
        if both do) and every harmonic of it up to ``NOTCH_MAX_HZ``: a hum's weaker harmonics
        may hide under the pauses' noise in the spectrum and still lift the frames, and a
        narrow notch where there is nothing to remove costs a voice nothing audible.
    """
    if samples.size < MIN_SECONDS * ANALYSIS_RATE_HZ:
        return None
    freqs, power = pause_spectrum(samples)
    found = [line for line in (_stands_out(freqs, power, f) for f in MAINS_HZ) if line]
    if not found:
        return None
    mains = max(found, key=lambda line: line[1])[0]
    return mains, tuple(k * mains for k in range(1, int(NOTCH_MAX_HZ // mains) + 1))


def pause_spectrum(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean power spectrum of a channel's quietest ``WINDOW_S`` windows (Hann, half overlap):
    those at or under the ``QUIET_PERCENTILE``-th percentile of the windows' levels, at most
    ``MAX_WINDOWS`` of them evenly spread. A hum fills the pauses; a voice's harmonics, which
    would stand out in a louder window, are mostly absent there.

    Returns
    -------
    (freqs_hz, power): ``WINDOW_S``-wide bins, power in arbitrary units.
    """
    size, hop = int(round(WINDOW_S * ANALYSIS_RATE_HZ)), int(round(FRAME_S * ANALYSIS_RATE_HZ))
    frames = 10.0 ** (frame_rms_dbfs(samples) / 10.0)  # mean square of each 20 ms frame
    per_window = size // hop
    sums = np.concatenate(([0.0], np.cumsum(frames)))
    starts = np.arange(0, frames.size - per_window + 1, per_window // 2)  # in frames
    level = sums[starts + per_window] - sums[starts]
    quiet = starts[level <= np.percentile(level, QUIET_PERCENTILE)]
    quiet = quiet[np.linspace(0, quiet.size - 1, min(quiet.size, MAX_WINDOWS)).astype(int)]
    windows = np.stack([samples[i * hop : i * hop + size] for i in quiet]).astype(np.float64)
    windows -= windows.mean(axis=1, keepdims=True)
    spectra = np.abs(np.fft.rfft(windows * np.hanning(size), axis=1)) ** 2
    return np.fft.rfftfreq(size, 1.0 / ANALYSIS_RATE_HZ), spectra.mean(axis=0)


def _stands_out(freqs: np.ndarray, power: np.ndarray, line_hz: float) -> tuple[float, float] | None:
    """(peak_hz, rise_db) of the strongest bin within ``SEARCH_HZ`` of ``line_hz`` when it rises
    ``MIN_PEAK_DB`` above the median of the bins ``BACKGROUND_HZ`` away; the peak frequency is
    refined between bins by a parabola through the log powers."""
    distance = np.abs(freqs - line_hz)
    near = np.flatnonzero(distance <= SEARCH_HZ)
    peak = int(near[np.argmax(power[near])])
    background = float(
        np.median(power[(distance >= BACKGROUND_HZ[0]) & (distance <= BACKGROUND_HZ[1])])
    )
    if power[peak] <= 0.0:
        return None
    rise_db = np.inf if background <= 0.0 else 10.0 * np.log10(power[peak] / background)
    if rise_db < MIN_PEAK_DB:
        return None
    left, centre, right = np.log(np.maximum(power[peak - 1 : peak + 2], 1e-300))
    bend = left - 2.0 * centre + right
    shift = float(np.clip(0.5 * (left - right) / bend, -0.5, 0.5)) if bend < 0.0 else 0.0
    return float(freqs[peak] + shift * (freqs[1] - freqs[0])), float(rise_db)


def without_hum(samples: np.ndarray) -> tuple[np.ndarray, float | None]:
    """A channel with its mains hum notched out, and the mains frequency (None: left as it is).

    The channel is returned unchanged (the same array) unless its pauses (the
    ``QUIET_PERCENTILE``-th percentile frame) reach within ``GATE_MARGIN_DB`` of the level the
    speech detector calls speech (``pipeline.vad``: ``ABS_FLOOR_DBFS``, or ``REL_FLOOR_DB``
    under the 95th-percentile frame), :func:`hum_lines` finds a hum, and notching it lowers
    the pauses by ``MIN_DROP_DB``. A notch rings for some 50 ms around a voice's low
    harmonics, so it is kept off recordings whose hum stays far under that level.
    """
    levels = frame_rms_dbfs(samples)
    if levels.size == 0:
        return samples, None
    pauses = float(np.percentile(levels, QUIET_PERCENTILE))
    if (
        pauses
        < max(ABS_FLOOR_DBFS, float(np.percentile(levels, 95)) - REL_FLOOR_DB) - GATE_MARGIN_DB
    ):
        return samples, None
    found = hum_lines(samples)
    if found is None:
        return samples, None
    mains, lines = found
    sos = np.concatenate(
        [signal.tf2sos(*signal.iirnotch(f, f / NOTCH_WIDTH_HZ, fs=ANALYSIS_RATE_HZ)) for f in lines]
    )
    notched = _filtered(samples, sos)
    if pauses - float(np.percentile(frame_rms_dbfs(notched), QUIET_PERCENTILE)) < MIN_DROP_DB:
        return samples, None
    return notched, mains


def _filtered(samples: np.ndarray, sos: np.ndarray) -> np.ndarray:
    """``samples`` through ``sos`` forwards and backwards (zero phase), ``CHUNK_S`` at a time
    with ``PAD_S`` of context either side, which is dropped: a notch's ringing has died long
    before (time constant 1 / (pi * width), 53 ms), and a 30-minute call never exists in
    float64 at once (its whole filtfilt held some 500 MB more at peak)."""
    out = np.empty_like(samples)
    chunk, pad = int(CHUNK_S * ANALYSIS_RATE_HZ), int(PAD_S * ANALYSIS_RATE_HZ)
    for start in range(0, samples.size, chunk):
        stop = min(start + chunk, samples.size)
        lo, hi = max(0, start - pad), min(samples.size, stop + pad)
        part = signal.sosfiltfilt(sos, samples[lo:hi].astype(np.float64))
        out[start:stop] = part[start - lo : stop - lo]
    return out


def recording_without_hum(samples: np.ndarray) -> tuple[np.ndarray, float]:
    """Every channel of ``samples`` (shape (channels, n)) through :func:`without_hum`, and the
    mains frequency removed (Hz, to 0.1; the first humming channel's), 0.0 when
    none was: then ``samples`` itself is returned."""
    out, removed = samples, 0.0
    for index, channel in enumerate(samples):
        notched, mains = without_hum(channel)
        if mains is None:
            continue
        if out is samples:
            out = samples.copy()
        out[index] = notched
        removed = removed or round(mains, 1)
    return out, removed
