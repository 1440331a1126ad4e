"""Energy-based voice activity: cheap, deterministic, good enough on a telephone line.

Used to pick the caller's channel, measure pauses and latency, and refuse recordings with no
speech. Whisper has its own (Silero) VAD for transcription; this one needs no model. Signalling
tones (ringback, busy, recorder beeps: ``pipeline.tones``) are as loud as speech but nobody's
voice: their frames are never active, and they do not set the level gate.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from pipeline.tones import tone_frames
from pipeline.types import ANALYSIS_RATE_HZ

FRAME_S = 0.02  # 20 ms analysis frames
MIN_SPEECH_S = 0.12  # shorter bursts are clicks, not speech
MERGE_GAP_S = 0.25  # gaps shorter than this are inside one utterance
ABS_FLOOR_DBFS = -55.0  # nothing quieter than this counts as speech
REL_FLOOR_DB = 30.0  # ...nor anything this far below the loudest frames
NOISE_PERCENTILE = 10.0  # the frame level taken as a channel's noise floor (above_noise_db)


def frame_rms_dbfs(samples: np.ndarray, *, frame_s: float = FRAME_S) -> np.ndarray:
    """RMS level of consecutive non-overlapping frames.

    Parameters
    ----------
    samples : np.ndarray [shape=(n,)], float32 at 16 kHz
    frame_s : float
        Frame length in seconds.

    Returns
    -------
    np.ndarray [shape=(n // frame,)], dBFS (full-scale sine = -3 dBFS), floored at -150.
    """
    hop = int(round(frame_s * ANALYSIS_RATE_HZ))
    n = samples.size // hop
    if n == 0:
        return np.zeros(0, dtype=np.float64)
    frames = samples[: n * hop].astype(np.float64).reshape(n, hop)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    return np.asarray(20.0 * np.log10(np.maximum(rms, 10 ** (-150 / 20))))


def voiced_intervals(
    samples: np.ndarray,
    *,
    above_noise_db: float | None = None,
    floor_dbfs: float = ABS_FLOOR_DBFS,
    hold_db: float = 0.0,
    merge_gap_s: float = MERGE_GAP_S,
) -> list[tuple[float, float]]:
    """Intervals (start_s, end_s) where the channel holds speech-level energy.

    A frame is active when it is above ``floor_dbfs`` and within ``REL_FLOOR_DB`` of the
    95th-percentile frame level; active runs closer than ``MERGE_GAP_S`` merge, and runs shorter
    than ``MIN_SPEECH_S`` are dropped. A frame of a signalling tone
    (:func:`pipeline.tones.tone_frames`) is never active, and the percentiles are taken over the
    other frames.

    ``above_noise_db``: also ask that a frame be this far above the channel's noise floor (its
    ``NOISE_PERCENTILE``-th percentile frame level). On a line whose noise lies within
    ``REL_FLOOR_DB`` of its speech, the default gate passes the noise as speech: the whole
    channel reads as voiced. Default None: that gate alone, as the voice head and the timing
    cues were fitted with.

    ``hold_db`` and ``merge_gap_s`` (noise-gated path only, issue 13): hysteresis against a
    speaker's turn breaking up on a noisy line, where the quieter syllables of one turn dip to
    the noise gate. A run of frames above ``gate - hold_db`` is speech when one of its frames
    passes the gate itself (the run starts high and holds until it falls below the lower gate),
    and runs closer than ``merge_gap_s`` (the silence a turn must hold to end) merge. Their
    defaults (0 dB, ``MERGE_GAP_S``) give the single gate.

    Raises
    ------
    ValueError
        ``hold_db`` negative or ``merge_gap_s`` not positive, or either set without
        ``above_noise_db``: the level-gate path stays as the voice head was fitted with.
    """
    if hold_db < 0.0 or merge_gap_s <= 0.0:
        raise ValueError(f"hold_db must be >= 0 and merge_gap_s > 0, got {hold_db}, {merge_gap_s}")
    if above_noise_db is None and (hold_db != 0.0 or merge_gap_s != MERGE_GAP_S):
        raise ValueError("hold_db and merge_gap_s apply to the noise-gated path (above_noise_db)")
    levels = frame_rms_dbfs(samples)
    if levels.size == 0:
        return []
    tone = tone_frames(samples)
    if tone.all():
        return []
    others = levels[~tone]
    floor = max(floor_dbfs, float(np.percentile(others, 95)) - REL_FLOOR_DB)
    if above_noise_db is not None:
        floor = max(floor, float(np.percentile(others, NOISE_PERCENTILE)) + above_noise_db)
    active = (levels > floor) & ~tone
    if hold_db > 0.0:
        runs, _ = ndimage.label((levels > floor - hold_db) & ~tone)
        active = np.isin(runs, runs[active])  # runs[active] > 0: a run holding a gated frame
    intervals: list[tuple[float, float]] = []
    edges = np.flatnonzero(np.diff(np.concatenate(([0], active.astype(np.int8), [0]))))
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        t0, t1 = float(start * FRAME_S), float(end * FRAME_S)
        if intervals and t0 - intervals[-1][1] < merge_gap_s:
            intervals[-1] = (intervals[-1][0], t1)
        else:
            intervals.append((t0, t1))
    return [(a, b) for a, b in intervals if b - a >= MIN_SPEECH_S]


def subtract(
    intervals: Sequence[tuple[float, float]], spans: Sequence[tuple[float, float]]
) -> list[tuple[float, float]]:
    """``intervals`` less whatever of them lies inside ``spans``; pieces shorter than
    ``MIN_SPEECH_S`` are dropped, as the VAD drops such bursts."""
    out = []
    for a, b in intervals:
        pieces = [(a, b)]
        for s, e in spans:
            pieces = [p for x, y in pieces for p in ((x, min(y, s)), (max(x, e), y)) if p[1] > p[0]]
        out += [(x, y) for x, y in pieces if y - x >= MIN_SPEECH_S]
    return out
