"""Synthetic-voice detector: features, speech windows, the trained head and its scorer.

Why a trained head: hand-set pitch, jitter and spectral cues do not separate modern neural TTS
from people on matched data (AUC 0.40-0.60, ``pipeline/acoustic.py``), so a single Mandarin TTS
prompt scored "human". This module turns audio into one calibrated robot log-odds.

Path of every window of audio. Training crops one window per clip and runs steps 2-3 on it
alone; evaluation and inference run the call path (``SynthVoiceScorer.score``):

1. **speech windows** (:func:`speech_windows`): the energy VAD's voiced intervals grouped into
   windows of at most ``max_window_s`` (8 s), split where the silence between intervals is long
   (a turn change in a mono two-party recording), never shorter than ``min_window_s``;
2. **telephone channel**: the call path runs ``pipeline.telephone.call_channel`` over the whole
   call (deterministic G.711 mu-law, 8 kHz, 300-3400 Hz, level-normalised, untrimmed so times
   are kept); training draws ``telephone_channel`` (random codec, AMR-NB mode, noise) with a
   seeded generator. The scorer applies the channel itself, so no caller can hand the head
   un-channelled audio;
3. **features** (:class:`FeatureSpec`): Whisper base encoder output (CTranslate2 int8, the same
   weights and runtime as the ASR) pooled to mean + std per dimension (1024 values); and/or
   LFCC statistics (20 linear-frequency cepstra + deltas + delta-deltas at 8 kHz, mean + std
   over speech frames, 120 values; the ASVspoof baseline); and/or the clip's AASIST embedding
   (``aasist``, 160 values, issue 12; its window: :class:`ClipEmbedder`), the same vector
   appended to every window of the clip. A training window is encoded alone
   (not padded to 30 s); on the call path the frames of each window are cut out of one encoder
   pass over 30 s windows of the call's speech (:class:`models.asr.SpeechFrames`, cut as the
   ASR's decoder cuts them); when that speech needs more than one 30 s pass, the scorer's
   ``window_rule`` may keep only the windows whose speech fits one (:class:`WindowChoice`).
   What that costs and gains against encoding each window alone:
   ``models/weights/SYNTH_HEAD.md`` and ``bench/shared_encoder_head.py``;
4. **head** (:class:`LogisticHead`): standardise, logistic regression, plus (when trained with
   one) a weight times the window's distance from the training people (:class:`PeopleDensity`),
   Platt calibration fit on
   the validation split with class-balanced weights, so the calibrated log-odds is a
   likelihood ratio at even prior (0.9 means about 90 % when robots and people are equally
   likely);
5. **pooling**: the per-window log-odds are pooled with a duration-weighted quantile
   (``pool_quantile``, picked on dev call mixtures of robot prompts and a person's replies, so
   that the callee's voice in a mono recording is accounted for).

Nothing heavy at import: the Whisper model comes from ``models/loading.py`` (``load_synth_head``).

Why one module of ~640 lines: features, windows, head (with its people density) and scorer are
one inference stage that share one weights file (``synth_head.npz``, whose ``FeatureSpec`` they
all read); training lives in ``models/training/synth_*.py``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from scipy import signal
from scipy.fft import dct

from pipeline.files import write_atomic
from pipeline.fuse import sigmoid
from pipeline.telephone import call_channel
from pipeline.types import ANALYSIS_RATE_HZ, ModelInfo, SyntheticVoiceScore
from pipeline.vad import voiced_intervals

if TYPE_CHECKING:
    from models.asr import SpeechFrames

FEATURE_VERSION = 1  # bump when any feature computation changes: it keys the feature cache
HEAD_FORMAT = "robocall-synth-head-v1"
MAX_WINDOW_S = 8.0  # longest window scored at once (training clips are cropped to this too)
MIN_WINDOW_S = 1.0  # shorter windows are merged into a neighbour or, if alone, scored as is
TURN_GAP_S = 0.6  # a silence this long between voiced intervals starts a new window
MIN_SPEECH_S = 0.3  # below this much speech nothing is scored
LFCC_RATE_HZ = 8_000
LFCC_N_FFT = 256  # 32 ms
LFCC_HOP = 80  # 10 ms
LFCC_WIN = 200  # 25 ms
LFCC_FILTERS = 30  # linear triangular filters over 0-4 kHz
LFCC_COEFS = 20
AASIST_DIM = 160
AASIST_ID = "aasist-asvspoof2019-la/51d2d9cf0738172f"  # models/manifest.toml's sha256[:16]
BLOCKS = ("whisper", "lfcc", "aasist")
ENCODER_PASS_S = 30.0  # the speech one Whisper encoder pass holds (its 30 s input window)
# Which speech windows the head encodes when they hold more speech than one encoder pass
# (:func:`choose_windows`); "all" encodes every window (a pass per 30 s of speech). "spread"
# was chosen on the dev calls and mixtures: the voice stage of a 60 s call 36 -> 21 % of the
# bare ASR's CPU time, no dev EER worse (docs/performance.md, "Which speech the head encodes").
WINDOW_RULES = ("all", "spread", "longest")
WINDOW_RULE = "spread"
# The ``aasist`` block's middle window is cut from the whole channel copy (``aasist_pad_s`` None,
# the shipped head), or from the speech span with at most ``aasist_pad_s`` seconds of the copy
# kept before and after it (:func:`aasist_input`). Measured 2026-12-07 (docs/evaluation_calls.md,
# "Signalling tones"): the speech span moves a clip's log-odds less when quiet is put in front,
# and the head retrained on it loses 3.1 points of EER on the held-out commercial voices at the
# shipped setting (a 1 s margin: 2.5); so the shipped head keeps the whole copy.


class ClipEmbedder(Protocol):
    """The ``aasist`` block: one 160-d vector for a whole channel-processed clip or call.

    Definition (training and inference alike; ``bench/aasist_probe.py`` chose on it): the
    audio after ``call_channel`` (all of it, or its speech span with ``FeatureSpec.aasist_pad_s``
    of margin: :func:`aasist_input`), peak-normalised, its middle 4.04 s window
    (``models.aasist.clip_windows(..., max_windows=1)``; a shorter stretch is tiled to one
    window), through the ASVspoof 2019 LA AASIST checkpoint; the last hidden layer (the input
    of its output layer). Training keeps it in a cache of its own (``synth_data.py``).
    """

    @property
    def model_id(self) -> str: ...

    def embed(self, samples: np.ndarray) -> np.ndarray:
        """Shape (160,), float32, of channel-processed 16 kHz samples."""
        ...


class FrameEncoder(Protocol):
    """Turns 16 kHz mono samples into encoder frames, shape (frames, dim)."""

    @property
    def model_id(self) -> str: ...

    def frames(self, samples: np.ndarray) -> np.ndarray: ...

    def speech_frames(
        self, samples: np.ndarray, *, choice: WindowChoice | None = None
    ) -> SpeechFrames | None:
        """The call path's frames (:func:`models.asr.encode_speech`) of all the speech, or of
        the speech of the windows ``choice`` keeps; None without speech."""
        ...


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """What a head's input vector is made of (stored in every weights file; keys the cache)."""

    # "whisper" (1024), "lfcc" (120) per window and "aasist" (160, the clip's), in order
    blocks: tuple[str, ...] = ("whisper",)
    encoder_id: str = "whisper-base/faster-ct2-int8"  # encoder that produced "whisper" features
    max_window_s: float = MAX_WINDOW_S
    version: int = FEATURE_VERSION
    aasist_id: str = AASIST_ID  # checkpoint that produced "aasist" features (sha256[:16] last)
    aasist_pad_s: float | None = None  # non-speech kept around the aasist window's speech

    def __post_init__(self) -> None:
        if not self.blocks or not set(self.blocks) <= set(BLOCKS):
            raise ValueError(f"blocks must be a non-empty subset of {BLOCKS}: {self.blocks}")
        if self.aasist_pad_s is not None and not 0.0 <= self.aasist_pad_s <= 30.0:
            raise ValueError(f"aasist_pad_s must be None or in [0, 30], got {self.aasist_pad_s}")
        if not self.window_blocks:
            # The windows (and so the pooling) come from the window blocks.
            raise ValueError("the aasist block is one vector per clip: it needs whisper or lfcc")
        if not 1.0 <= self.max_window_s <= 30.0:
            raise ValueError(f"max_window_s must be in [1, 30], got {self.max_window_s}")

    def block_key(self, block: str) -> str:
        """Cache key of one block's features (independent of the other blocks)."""
        parts = [block, f"v{self.version}", f"w{self.max_window_s:g}"]
        if block == "whisper":
            parts.append(self.encoder_id)
        if block == "aasist":
            parts.append(self.aasist_id)
            if self.aasist_pad_s is not None:  # the whole copy keys as before the choice
                parts.append(f"pad{self.aasist_pad_s:g}")
        return hashlib.sha1("|".join(parts).encode()).hexdigest()[:12]

    @property
    def window_blocks(self) -> tuple[str, ...]:
        """The blocks computed per speech window (all but the clip-level ``aasist``)."""
        return tuple(b for b in self.blocks if b != "aasist")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> FeatureSpec:
        raw = dict(raw)
        raw["blocks"] = tuple(raw["blocks"])
        return cls(**raw)


# ---------------------------------------------------------------------------------------------
# Features


def whisper_embedding(samples: np.ndarray, *, encoder: FrameEncoder) -> np.ndarray:
    """Mean and std over the Whisper encoder frames of one window: shape (2 * dim,), float32."""
    frames = np.asarray(encoder.frames(samples), dtype=np.float64)
    return np.concatenate([frames.mean(axis=0), frames.std(axis=0)]).astype(np.float32)


@dataclass(frozen=True, slots=True)
class Ct2FrameEncoder:
    """The ASR's faster-whisper model, run on one window without padding to 30 s.

    CTranslate2 accepts fewer than 3000 mel frames (it slices the positional embedding), so
    an 8 s window costs 400 encoder frames instead of 1500.
    """

    model: Any  # faster_whisper.WhisperModel
    model_id: str

    def frames(self, samples: np.ndarray) -> np.ndarray:
        import ctranslate2

        x = np.ascontiguousarray(samples, dtype=np.float32)
        mel = self.model.feature_extractor(x, padding=0)
        n = max(mel.shape[-1] // 2 * 2, 2)
        mel = np.ascontiguousarray(mel[np.newaxis, :, :n], dtype=np.float32)
        out = self.model.model.encode(ctranslate2.StorageView.from_array(mel), to_cpu=True)
        frames: np.ndarray = np.asarray(out, dtype=np.float32)[0]
        return frames

    def speech_frames(
        self, samples: np.ndarray, *, choice: WindowChoice | None = None
    ) -> SpeechFrames | None:
        from models.asr import encode_speech

        return encode_speech(self.model, samples, within=None if choice is None else choice.spans)


def _linear_filterbank() -> np.ndarray:
    freqs = np.linspace(0.0, LFCC_RATE_HZ / 2, LFCC_N_FFT // 2 + 1)
    edges = np.linspace(0.0, LFCC_RATE_HZ / 2, LFCC_FILTERS + 2)
    bank = np.zeros((LFCC_FILTERS, freqs.size))
    for i in range(LFCC_FILTERS):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        bank[i] = np.clip(np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)), 0, 1)
    return bank


_FILTERBANK = _linear_filterbank()


def _deltas(x: np.ndarray, width: int = 2) -> np.ndarray:
    """Regression deltas over +-width frames (HTK formula), edges repeated."""
    padded = np.pad(x, ((width, width), (0, 0)), mode="edge")
    num = sum(
        k
        * (padded[width + k : width + k + x.shape[0]] - padded[width - k : width - k + x.shape[0]])
        for k in range(1, width + 1)
    )
    return np.asarray(num / (2 * sum(k * k for k in range(1, width + 1))))


def lfcc_stats(samples: np.ndarray) -> np.ndarray:
    """LFCC (+ deltas, delta-deltas) mean and std over speech frames: shape (120,), float32.

    Computed at 8 kHz (the channel's rate) over the whole 0-4 kHz band with linear filters: the
    ASVspoof 2019 baseline front end (Todisco et al. 2019), whose high-band resolution suits
    vocoder artefacts better than mel spacing.
    """
    x = signal.resample_poly(np.asarray(samples, dtype=np.float64), 1, 2)
    if x.size < LFCC_WIN:
        x = np.pad(x, (0, LFCC_WIN - x.size))
    n = 1 + (x.size - LFCC_WIN) // LFCC_HOP
    idx = np.arange(LFCC_WIN)[None, :] + LFCC_HOP * np.arange(n)[:, None]
    frames = x[idx] * np.hamming(LFCC_WIN)[None, :]
    power = np.abs(np.fft.rfft(frames, LFCC_N_FFT, axis=1)) ** 2
    log_energy = np.log(power @ _FILTERBANK.T + 1e-10)
    ceps = dct(log_energy, type=2, norm="ortho", axis=1)[:, :LFCC_COEFS]
    feats = np.concatenate([ceps, _deltas(ceps), _deltas(_deltas(ceps))], axis=1)
    frame_db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    speech = frame_db > max(float(np.max(frame_db)) - 40.0, -70.0)
    if speech.sum() < 3:
        speech[:] = True
    sel = feats[speech]
    return np.concatenate([sel.mean(axis=0), sel.std(axis=0)]).astype(np.float32)


def window_features(
    samples: np.ndarray, *, spec: FeatureSpec, encoder: FrameEncoder | None
) -> dict[str, np.ndarray]:
    """Every window block of ``spec`` for one channel-processed window, keyed by block name
    (the clip-level ``aasist`` block is left to the caller)."""
    out: dict[str, np.ndarray] = {}
    for block in spec.window_blocks:
        if block == "whisper":
            if encoder is None:
                raise ValueError("the whisper block needs an encoder")
            out[block] = whisper_embedding(samples, encoder=encoder)
        else:
            out[block] = lfcc_stats(samples)
    return out


def call_window_features(
    y: np.ndarray,
    frames: SpeechFrames | None,
    *,
    spec: FeatureSpec,
    embedding: np.ndarray | None = None,
    windows: Sequence[tuple[float, float]] | None = None,
) -> list[tuple[tuple[float, float], dict[str, np.ndarray]]]:
    """Features of each speech window of a channel-processed call, keyed by block name.

    ``frames`` are the encoder frames of ``y`` (:func:`models.asr.encode_speech`); needed when
    the spec has the Whisper block. ``embedding`` is the call's ``aasist`` vector
    (:class:`ClipEmbedder`), given to every window; needed when the spec has that block.
    ``windows``: the speech windows of ``y`` when already cut (:func:`speech_windows`). A window
    without frames (in which the ASR's VAD heard no speech, or which a :class:`WindowChoice`
    left out) is left out.
    """
    if "aasist" in spec.blocks and (embedding is None or embedding.shape != (AASIST_DIM,)):
        raise ValueError(f"the aasist block needs the clip's ({AASIST_DIM},) embedding")
    if windows is None:
        windows = speech_windows(y, max_window_s=spec.max_window_s)
    out = []
    for window in windows:
        feats: dict[str, np.ndarray] = {}
        for block in spec.blocks:
            if block == "aasist":
                feats[block] = np.asarray(embedding, dtype=np.float32)
            elif block == "whisper":
                if frames is None:
                    break
                f = np.asarray(frames.between(*window), dtype=np.float64)
                if f.shape[0] == 0:
                    break
                feats[block] = np.concatenate([f.mean(axis=0), f.std(axis=0)]).astype(np.float32)
            else:
                feats[block] = lfcc_stats(cut(y, window))
        else:
            out.append((window, feats))
    return out


# ---------------------------------------------------------------------------------------------
# Windows


def speech_windows(
    samples: np.ndarray,
    *,
    max_window_s: float = MAX_WINDOW_S,
    min_window_s: float = MIN_WINDOW_S,
    turn_gap_s: float = TURN_GAP_S,
) -> list[tuple[float, float]]:
    """Group voiced intervals into windows (start_s, end_s) of at most ``max_window_s``.

    A new window starts at a silence of ``turn_gap_s`` or more (likely a change of speaker in a
    mono two-party recording) or when the window would exceed ``max_window_s``; an interval
    longer than ``max_window_s`` is cut into equal parts. Windows shorter than ``min_window_s``
    join the previous window when that stays within ``max_window_s`` (else they stand alone).
    Empty when there is less than ``MIN_SPEECH_S`` of speech.
    """
    intervals = voiced_intervals(np.asarray(samples, dtype=np.float32))
    if sum(b - a for a, b in intervals) < MIN_SPEECH_S:
        return []
    pieces: list[tuple[float, float]] = []
    for a, b in intervals:
        parts = max(1, math.ceil((b - a) / max_window_s - 1e-9))
        step = (b - a) / parts
        pieces += [(a + i * step, a + (i + 1) * step) for i in range(parts)]
    windows: list[list[float]] = []
    for a, b in pieces:
        if windows and a - windows[-1][1] < turn_gap_s and b - windows[-1][0] <= max_window_s:
            windows[-1][1] = b
        else:
            windows.append([a, b])
    merged: list[list[float]] = []
    for w in windows:
        short = w[1] - w[0] < min_window_s
        if merged and short and w[1] - merged[-1][0] <= max_window_s:
            merged[-1][1] = w[1]
        elif (
            merged
            and merged[-1][1] - merged[-1][0] < min_window_s
            and w[1] - merged[-1][0] <= max_window_s
        ):
            merged[-1][1] = w[1]
        else:
            merged.append(list(w))
    return [(round(a, 3), round(b, 3)) for a, b in merged]


def aasist_input(
    y: np.ndarray, windows: Sequence[tuple[float, float]], *, spec: FeatureSpec
) -> np.ndarray:
    """The audio a head's ``aasist`` block embeds: the channel copy ``y`` from ``aasist_pad_s``
    seconds before the start of its first speech window (``windows``, :func:`speech_windows` of
    ``y``) to as long after the end of its last; all of ``y`` when the spec keeps the whole copy
    (None) or there are no windows."""
    pad = spec.aasist_pad_s
    if pad is None or not windows:
        return y
    a = max(int((windows[0][0] - pad) * ANALYSIS_RATE_HZ), 0)
    b = min(int(math.ceil((windows[-1][1] + pad) * ANALYSIS_RATE_HZ)), y.size)
    return y[a:b]


def choose_windows(
    windows: Sequence[tuple[float, float]],
    speech_s: Sequence[float],
    *,
    rule: str,
    budget_s: float = ENCODER_PASS_S,
) -> list[tuple[float, float]]:
    """The windows whose speech (``speech_s`` seconds in each) the head encodes: all of them
    when it fits ``budget_s`` (one encoder pass), else a subset that fits, in time order.

    Rules (issue 12, the voice stage's cost on long calls): ``all`` keeps every window;
    ``spread`` the most windows that fit at evenly spaced ranks, first and last included (a
    dialer may open with a recorded human greeting and go on in TTS); ``longest`` the windows
    with the most speech first, each that still fits (the head's training windows are 2-8 s
    long, short windows score noisier). A single window over ``budget_s`` is kept alone.
    """
    if rule not in WINDOW_RULES:
        raise ValueError(f"rule must be one of {WINDOW_RULES}, got {rule!r}")
    spans, n = list(windows), len(windows)
    if len(speech_s) != n:
        raise ValueError(f"{len(speech_s)} speech durations for {n} windows")
    if rule == "all" or sum(speech_s) <= budget_s:
        return spans
    if rule == "spread":
        for k in range(n - 1, 1, -1):
            ranks = [(j * (n - 1) + (k - 1) // 2) // (k - 1) for j in range(k)]
            if sum(speech_s[i] for i in ranks) <= budget_s:
                return [spans[i] for i in ranks]
    # "longest", and "spread" when not even the first and last window fit together
    order = sorted(range(n), key=lambda i: -speech_s[i])
    kept: list[int] = []
    used_s = 0.0
    for i in order:
        if used_s + speech_s[i] <= budget_s:
            kept.append(i)
            used_s += speech_s[i]
    return [spans[i] for i in sorted(kept)] or [spans[order[0]]]


@dataclass(frozen=True, slots=True)
class WindowChoice:
    """Which speech windows of a call the head encodes, decided on the VAD's speech chunks.

    Handed to :meth:`FrameEncoder.speech_frames`: when all the call's speech fits one encoder
    pass (``budget_s``) or the rule is ``all``, everything is encoded as before; otherwise
    only the speech of the windows :func:`choose_windows` keeps (windows without speech are
    left out first), and the other windows get no frames, so they are not scored.
    """

    windows: tuple[tuple[float, float], ...]
    rule: str
    budget_s: float = ENCODER_PASS_S

    def __post_init__(self) -> None:
        if self.rule not in WINDOW_RULES:
            raise ValueError(f"rule must be one of {WINDOW_RULES}, got {self.rule!r}")

    def spans(self, chunks: Sequence[tuple[int, int]]) -> list[tuple[float, float]] | None:
        """The windows to encode given the speech ``chunks`` (samples); None = all speech."""
        if self.rule == "all" or sum(b - a for a, b in chunks) <= self.budget_s * ANALYSIS_RATE_HZ:
            return None
        speech_s = [
            sum(max(0.0, min(b / ANALYSIS_RATE_HZ, end) - max(a / ANALYSIS_RATE_HZ, start))
                for a, b in chunks)
            for start, end in self.windows
        ]  # fmt: skip
        heard = [i for i, v in enumerate(speech_s) if v > 0]
        return choose_windows(
            [self.windows[i] for i in heard],
            [speech_s[i] for i in heard],
            rule=self.rule,
            budget_s=self.budget_s,
        )


def cut(samples: np.ndarray, window: tuple[float, float], *, pad_s: float = 0.1) -> np.ndarray:
    """The samples of ``window`` with ``pad_s`` of context either side (the channel trims)."""
    a = max(int((window[0] - pad_s) * ANALYSIS_RATE_HZ), 0)
    b = min(int(math.ceil((window[1] + pad_s) * ANALYSIS_RATE_HZ)), samples.size)
    return samples[a:b]


def pool_log_odds(
    values: Sequence[float] | np.ndarray, weights: Sequence[float] | np.ndarray, *, quantile: float
) -> float:
    """Duration-weighted quantile of per-window log-odds (``quantile=1`` is the maximum)."""
    v = np.asarray(values, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if v.size == 0:
        raise ValueError("no windows to pool")
    order = np.argsort(v, kind="mergesort")
    v, w = v[order], w[order]
    cum = np.cumsum(w) / np.sum(w)
    return float(v[min(int(np.searchsorted(cum, quantile - 1e-12)), v.size - 1)])


# ---------------------------------------------------------------------------------------------
# Head


@dataclass(frozen=True)
class PeopleDensity:
    """How far a window lies from the people a head was fitted on (a one-class score).

    Standardise on the people, project on their first principal components, squared
    Mahalanobis distance under a Ledoit-Wolf covariance, then standardised by the distances of
    those people (0 = a typical person, larger = further from every person seen). Robots are not
    used, so it leaves room for engines no one has seen (``docs/voice_generalisation.md``).
    """

    mean: np.ndarray  # (d,) people's feature means
    scale: np.ndarray  # (d,) people's feature stds (>= 1e-6)
    centre: np.ndarray  # (d,) PCA centre of the standardised people (zeros up to float noise)
    components: np.ndarray  # (k, d) principal axes
    location: np.ndarray  # (k,) Ledoit-Wolf location of the projections
    precision: np.ndarray  # (k, k) inverse of the Ledoit-Wolf covariance
    offset: float  # mean distance of the fitted people
    spread: float  # std of those distances (> 0)

    def z(self, x: np.ndarray) -> np.ndarray:
        """Standardised distance, shape (n,) for x of shape (n, d)."""
        p = ((np.atleast_2d(x) - self.mean) / self.scale - self.centre) @ self.components.T
        d = p - self.location
        return np.asarray(
            (np.einsum("ij,jk,ik->i", d, self.precision, d) - self.offset) / self.spread
        )

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "density_mean": self.mean,
            "density_scale": self.scale,
            "density_centre": self.centre,
            "density_components": self.components,
            "density_location": self.location,
            "density_precision": self.precision,
            "density_scalars": np.asarray([self.offset, self.spread]),
        }

    @classmethod
    def from_arrays(cls, data: Any) -> PeopleDensity:
        offset, spread = (float(v) for v in data["density_scalars"])
        return cls(
            mean=data["density_mean"], scale=data["density_scale"],
            centre=data["density_centre"], components=data["density_components"],
            location=data["density_location"], precision=data["density_precision"],
            offset=offset, spread=spread,
        )  # fmt: skip


@dataclass(frozen=True)
class LogisticHead:
    """Standardise -> linear logit -> Platt calibration. Arrays float64; ``meta`` JSON-able.

    ``meta`` carries everything needed to trust and rebuild the head: ``feature_spec``,
    ``pool_quantile``, ``threshold``, ``training`` (manifests, their sha256, splits, rows,
    seed, l2), ``metrics`` and ``created_by``.
    """

    mean: np.ndarray  # (d,) feature means over the training rows
    scale: np.ndarray  # (d,) feature stds (>= 1e-6)
    coef: np.ndarray  # (d,) logistic weights on standardised features
    intercept: float
    platt_a: float = 1.0  # calibrated log-odds = platt_a * raw + platt_b
    platt_b: float = 0.0
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)
    density: PeopleDensity | None = None  # raw logit += density_alpha * density.z(x)
    density_alpha: float = 0.0

    @property
    def spec(self) -> FeatureSpec:
        return FeatureSpec.from_dict(self.meta["feature_spec"])

    @property
    def threshold(self) -> float:
        return float(self.meta.get("threshold", 0.5))

    @property
    def pool_quantile(self) -> float:
        return float(self.meta.get("pool_quantile", 0.9))

    def raw_logit(self, x: np.ndarray) -> np.ndarray:
        """Uncalibrated logit, shape (n,) for x of shape (n, d)."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        logit = ((x - self.mean) / self.scale) @ self.coef + self.intercept
        if self.density is not None and self.density_alpha:
            logit = logit + self.density_alpha * self.density.z(x)
        return np.asarray(logit)

    def log_odds(self, x: np.ndarray) -> np.ndarray:
        """Calibrated robot log-odds (even prior), shape (n,)."""
        return self.platt_a * self.raw_logit(x) + self.platt_b

    def probability(self, x: np.ndarray) -> np.ndarray:
        return sigmoid(self.log_odds(x))

    def with_calibration(self, a: float, b: float) -> LogisticHead:
        return dataclasses.replace(self, platt_a=float(a), platt_b=float(b))

    def with_meta(self, **updates: Any) -> LogisticHead:
        return dataclasses.replace(self, meta={**self.meta, **updates})

    def with_density(self, density: PeopleDensity | None, alpha: float) -> LogisticHead:
        """The same logistic part plus ``alpha`` times the people-density score."""
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        keep = density if alpha > 0 else None
        return dataclasses.replace(self, density=keep, density_alpha=alpha if keep else 0.0)

    def arrays_sha256(self) -> str:
        """sha256 over the numbers (not the metadata): identifies the model itself."""
        h = hashlib.sha256()
        for arr in (self.mean, self.scale, self.coef):
            h.update(np.ascontiguousarray(arr, dtype="<f8").tobytes())
        h.update(np.asarray([self.intercept, self.platt_a, self.platt_b], dtype="<f8").tobytes())
        if self.density is not None:  # heads without one keep the digest they always had
            for arr in (*self.density.arrays().values(), np.asarray([self.density_alpha])):
                h.update(np.ascontiguousarray(arr, dtype="<f8").tobytes())
        return h.hexdigest()

    def save(self, path: Path) -> str:
        """Write a self-describing ``.npz`` (arrays + JSON ``meta``); returns the file's sha256."""
        meta = {**self.meta, "format": HEAD_FORMAT, "arrays_sha256": self.arrays_sha256()}
        arrays = {
            "mean": self.mean.astype("<f8"),
            "scale": self.scale.astype("<f8"),
            "coef": self.coef.astype("<f8"),
            "scalars": np.asarray([self.intercept, self.platt_a, self.platt_b], dtype="<f8"),
            "meta": np.frombuffer(json.dumps(meta, sort_keys=True, indent=1).encode(), np.uint8),
        }
        if self.density is not None:
            arrays |= {k: v.astype("<f8") for k, v in self.density.arrays().items()}
            arrays["density_alpha"] = np.asarray([self.density_alpha], dtype="<f8")
        blob = _npz_bytes(arrays)
        write_atomic(path, blob)
        return hashlib.sha256(blob).hexdigest()

    @classmethod
    def load(cls, path: Path) -> LogisticHead:
        """Read a file written by :meth:`save`; ValueError when it is not one or was altered."""
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            if meta.get("format") != HEAD_FORMAT:
                raise ValueError(f"{path}: not a {HEAD_FORMAT} file")
            intercept, a, b = (float(v) for v in data["scalars"])
            head = cls(
                mean=data["mean"], scale=data["scale"], coef=data["coef"], intercept=intercept,
                platt_a=a, platt_b=b, meta=meta,
            )  # fmt: skip
            if "density_alpha" in data.files:
                density = PeopleDensity.from_arrays(data)
                head = head.with_density(density, float(data["density_alpha"][0]))
        if head.arrays_sha256() != meta.get("arrays_sha256"):
            raise ValueError(f"{path}: weights do not match their recorded sha256")
        return head


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An ``.npz`` (np.load reads it) with fixed zip timestamps, so equal weights give equal
    bytes and an equal sha256 (``np.savez`` stamps the current time into the archive)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, member.getvalue())
    return buffer.getvalue()


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------
# Scorer (the pipeline's SyntheticVoiceScorer)


ChannelFn = Callable[[np.ndarray], np.ndarray]


class SynthVoiceScorer:
    """Scores one channel of a call: call channel -> windows -> features -> pooled log-odds.

    Build it with ``models.loading.load_synth_head``; ``encoder`` may be None when the head uses
    LFCC only, ``embedder`` when it has no ``aasist`` block. ``window_rule`` says which speech
    windows of a call with more than one encoder pass of speech are encoded and scored
    (:class:`WindowChoice`).
    """

    def __init__(
        self,
        head: LogisticHead,
        *,
        encoder: FrameEncoder | None,
        model_info: ModelInfo,
        channel: ChannelFn = call_channel,
        embedder: ClipEmbedder | None = None,
        window_rule: str = WINDOW_RULE,
    ) -> None:
        if window_rule not in WINDOW_RULES:
            raise ValueError(f"window_rule must be one of {WINDOW_RULES}, got {window_rule!r}")
        if "whisper" in head.spec.blocks and encoder is None:
            raise ValueError("this head needs the Whisper encoder")
        if "aasist" in head.spec.blocks:
            if embedder is None:
                raise ValueError("this head needs the AASIST embedder")
            if embedder.model_id != head.spec.aasist_id:
                raise ValueError(
                    f"head was trained on {head.spec.aasist_id} features, got {embedder.model_id}"
                )
        if encoder is not None and "whisper" in head.spec.blocks:
            if encoder.model_id != head.spec.encoder_id:
                raise ValueError(
                    f"head was trained on {head.spec.encoder_id} features, got {encoder.model_id}"
                )
        self.head = head
        self.encoder = encoder
        self.model_info = model_info
        self.embedder = embedder if "aasist" in head.spec.blocks else None
        self.window_rule = window_rule
        self._channel = channel

    def score(self, samples: np.ndarray) -> SyntheticVoiceScore | None:
        """Score mono 16 kHz samples; None when there is too little speech to judge.

        Parameters
        ----------
        samples : np.ndarray [shape=(n,)], float32 at 16 kHz
            One channel of the call as decoded (the scorer applies the telephone channel and
            runs the encoder, then the AASIST window when the head has that block, itself).

        Returns
        -------
        SyntheticVoiceScore or None
        """
        from pipeline.errors import EmptyAudioError

        try:
            y = self._channel(np.asarray(samples, dtype=np.float32))
        except EmptyAudioError:  # the channel's energy gate found no speech
            return None
        windows = speech_windows(y, max_window_s=self.head.spec.max_window_s)
        if not windows:
            return None
        frames = None
        if "whisper" in self.head.spec.blocks and self.encoder is not None:
            # "all" hands no choice, so a cache of the encoder's passes keys as before the rules
            choice = (
                None
                if self.window_rule == "all"
                else WindowChoice(tuple(windows), self.window_rule)
            )
            frames = self.encoder.speech_frames(y, choice=choice)
        return self.score_channelled(y, frames, self.embedding(y, windows), windows=windows)

    def embedding(self, y: np.ndarray, windows: Sequence[tuple[float, float]]) -> np.ndarray | None:
        """The ``aasist`` block of the channel copy ``y`` with speech windows ``windows`` (None
        for a head without it): the embedder on :func:`aasist_input`."""
        if self.embedder is None:
            return None
        return np.asarray(self.embedder.embed(aasist_input(y, windows, spec=self.head.spec)))

    def score_channelled(
        self,
        y: np.ndarray,
        frames: SpeechFrames | None,
        embedding: np.ndarray | None = None,
        *,
        windows: Sequence[tuple[float, float]] | None = None,
    ) -> SyntheticVoiceScore | None:
        """Score a call already through ``call_channel``, with the encoder frames of ``y`` and
        (for a head with the ``aasist`` block) its AASIST embedding; ``windows``: its speech
        windows when already cut. A window without frames (none heard, or not chosen by the
        :class:`WindowChoice` of ``frames``) is not scored."""
        spec = self.head.spec
        scored: list[tuple[float, float, float]] = []
        features = call_window_features(y, frames, spec=spec, embedding=embedding, windows=windows)
        for (a, b), feats in features:
            x = np.concatenate([feats[block] for block in spec.blocks])
            scored.append((a, b, float(self.head.log_odds(x[None, :])[0])))
        if not scored:
            return None
        q = self.head.pool_quantile
        pooled = pool_log_odds([s for *_, s in scored], [b - a for a, b, _ in scored], quantile=q)
        best = max(scored, key=lambda t: t[2])
        return SyntheticVoiceScore(
            log_odds=round(pooled, 4),
            probability=round(float(sigmoid(pooled)), 4),
            windows=tuple((round(a, 3), round(b, 3), round(s, 4)) for a, b, s in scored),
            span_s=(best[0], best[1]),
            pooling=f"q{q:g} of {len(scored)} window(s)",
        )
