"""Two-party diarisation of mono call recordings (issue 13): who speaks when, and who is the caller.

A phone call-recorder app saves both parties on one channel. Before the behaviour cues can
measure the caller's timing, each stretch of speech must be given to the caller or the callee:

1. speech frames from the energy VAD at the mix's margin (``MIX_NOISE_MARGIN_DB``: 6 dB);
2. GE2E speaker embeddings (Wan et al. 2018; Resemblyzer's 3-layer LSTM, weights shipped inside
   the ``resemblyzer`` wheel, loaded offline on first use) of overlapping windows
   (``WINDOW_S`` long, every ``HOP_S``) over speech;
3. two clusters (spherical k-means on the unit embeddings);
4. every 20 ms speech frame takes the cluster its covering windows lean to (mean cosine margin),
   smoothed with a median filter, and runs shorter than ``MIN_TURN_S`` join their neighbours
   (per frame everywhere: one label per short pause-bounded stretch, the previous rule, lost
   5.7 points of attribution on the dev calls, docs/evaluation_calls.md); then each party keeps
   only the frames its own leg's VAD finds (:func:`own_speech`), so that a reply within the
   mix VAD's merge gap is not 0 s late;
5. the caller is the party with more speech time (``CALLER_RULE = "most"``): a dialer's
   prompts or an agent's pitch fill more of the call than "喂?", "yes", "what is it?". Chosen
   on the dev calls v3 (:mod:`models.training.caller_select`) over "first speaker", "longer
   turns" and two logistic fits over :func:`caller_contrast` ("turns": more pause-bounded runs
   and a longer longest run, the rule chosen on the calls v2; "combined": speech time, runs,
   longest run and first speaker), which stay selectable (``DiarizerConfig.caller_rule``). It
   needs no transcript, so the split still runs beside the ASR. A second pick after the ASR
   (the party whose words carry the pitch) was not tried.

Before any of that, a recording must hold two voices at all: 2-means splits one voice in two as
readily as two voices. Two statistics of the split tell them apart (:func:`two_voices`): how far
the upper quarter of the windows lies from their one centroid (:func:`voice_spread`; a minority
voice lifts that tail where it hardly moves the mean) and how often neighbouring windows keep
their cluster (:func:`label_persistence`: two parties take turns, so the labels come in runs; a
voice split in two flips label from one window to the next). Their logistic score
(``TWO_VOICE_WEIGHTS``, ``TWO_VOICE_BIAS``, fitted on the dev calls v3) must be at least 0 and
each side must have ``MIN_PARTY_SPEECH_S``.
Otherwise all speech is the caller's and the callee has none, which the behaviour cues read as
"no turn-taking to measure". :class:`TwoPartyDiarizer` is what the
detector holds: it loads the encoder on the first recording with speech enough for two parties.

Output: :class:`pipeline.behaviour.PartyTurns`, the same record stereo calls give, so the
behaviour cues run alike on both layouts.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import ndimage

from pipeline.behaviour import (
    MIX_NOISE_MARGIN_DB,
    Interval,
    PartyTurns,
    party_legs,
    speech_intervals,
)
from pipeline.errors import ModelNotAvailableError
from pipeline.types import ANALYSIS_RATE_HZ
from pipeline.vad import FRAME_S

log = logging.getLogger(__name__)
WINDOW_S = 1.0  # embedding window: shorter blurs fewer turn changes, longer is a surer voice
HOP_S = 0.25  # one window every this: 2x the cost of 0.5 s, +5 points (evaluation_calls.md)
MIN_WINDOW_SPEECH = 0.5  # a window with less speech than this share is not clustered
SMOOTH_S = 0.3  # median filter over frame labels
MIN_TURN_S = 0.3  # shorter label runs inside speech join the surrounding party
CALLER_RULES = ("turns", "most", "first", "longest_turns", "combined")
CALLER_RULE = "most"  # chosen on the calls v3 dev calls (models.training.caller_select)
CALLER_REASONS = {
    "turns": "the party with more speech runs and the longest one",
    "most": "the party with more speech time",
    "first": "the party that speaks first",
    "longest_turns": "the party with the longer turns",
    "combined": "the party whose speech time, runs, longest run and start look like a caller's",
}
# The fitted rules: logit = weights . caller_contrast(a, b), one weight per CALLER_FEATURES (0 =
# not used). Logistic fits without intercept (swapping the parties flips the sign) on the 51
# dev calls v3, each call weighted by the seconds that ride on the choice
# (models.training.caller_select); both lose to "most" on dev, left out by caller voice.
CALLER_FEATURES = ("log_speech_ratio", "log_runs_ratio", "log_longest_ratio", "speaks_first")
CALLER_WEIGHTS = {
    "turns": (0.0, 3.5341, 3.504, 0.0),
    "combined": (8.2822, 2.1037, -0.2716, 1.1973),
}
MIN_TWO_PARTY_SPEECH_S = 4.0  # less speech than this: one party, no encoder loaded
MIN_PARTY_SPEECH_S = 2.0  # each of two parties must have this much speech
# Two voices: TWO_VOICE_WEIGHTS . (voice_spread, label_persistence) + TWO_VOICE_BIAS >= 0.
# Weights: a logistic fit of the dev calls v3' mono mixes (two voices) against their caller legs
# alone (one voice); bias: the most speech attributed right as shipped (caller by CALLER_RULE)
# while splitting at most 10 % of the dev caller legs (models.training.caller_select).
TWO_VOICE_WEIGHTS = (0.9985, 3.0438)
TWO_VOICE_BIAS = -2.7241  # mid-gap between two dev scores: 0.0015 wide
SPREAD_PERCENTILE = 75.0  # voice_spread: this percentile of the windows' distance to the centroid
_MEL_HOP_S = 0.01  # Resemblyzer mel frames
ONE_VOICE = "one voice: the whole recording is the caller's"


@functools.cache
def load_voice_encoder() -> Any:
    """Resemblyzer's GE2E encoder run in NumPy (:mod:`models.ge2e`; weights from the wheel).

    Raises
    ------
    ModelNotAvailableError
        ``resemblyzer`` is not installed (or, before its weights are cached, torch).
    """
    from models.ge2e import load_ge2e

    return load_ge2e()


@dataclass(frozen=True, slots=True)
class DiarizerConfig:
    window_s: float = WINDOW_S  # embedding window length
    hop_s: float = HOP_S  # window hop
    caller_rule: str = CALLER_RULE  # one of CALLER_RULES (choose_caller)

    def __post_init__(self) -> None:
        if not 0.5 <= self.window_s <= 3.0:
            raise ValueError(f"window_s must be in [0.5, 3.0], got {self.window_s}")
        if not 0.05 <= self.hop_s <= self.window_s:
            raise ValueError(f"hop_s must be in [0.05, window_s], got {self.hop_s}")
        if self.caller_rule not in CALLER_RULES:
            raise ValueError(f"caller_rule must be one of {CALLER_RULES}, got {self.caller_rule}")


def window_embeddings(
    samples: np.ndarray, *, starts_s: np.ndarray, config: DiarizerConfig, encoder: Any
) -> np.ndarray:
    """Unit GE2E embeddings of the ``config.window_s`` windows starting at ``starts_s``.

    Parameters
    ----------
    samples : np.ndarray [shape=(n,)], float32 at 16 kHz
    starts_s : np.ndarray [shape=(m,)], window starts in seconds

    Returns
    -------
    np.ndarray [shape=(m, 256)], float32, unit norm
    """
    from models.ge2e import mel_spectrogram

    x = np.asarray(samples, dtype=np.float32)
    rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) or 1.0
    x = x * (10 ** (-30 / 20) / rms)  # Resemblyzer's training level (-30 dBFS)
    mel = mel_spectrogram(x)
    n_win = round(config.window_s / _MEL_HOP_S)
    first = np.minimum(np.round(starts_s / _MEL_HOP_S).astype(int), max(mel.shape[0] - n_win, 0))
    batch = np.stack([mel[s : s + n_win] for s in first]).astype(np.float32)
    return np.concatenate([encoder(batch[i : i + 128]) for i in range(0, len(batch), 128)])


def two_clusters(emb: np.ndarray, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Spherical 2-means: (labels (m,), centroids (2, d) unit norm)."""
    rng = np.random.default_rng(seed)
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    for _ in range(8):
        c = emb[rng.choice(len(emb), 2, replace=False)].copy()
        for _ in range(30):
            labels = np.argmax(emb @ c.T, axis=1)
            new = np.stack(
                [emb[labels == k].mean(axis=0) if np.any(labels == k) else c[k] for k in (0, 1)]
            )
            new /= np.linalg.norm(new, axis=1, keepdims=True) + 1e-9
            if np.allclose(new, c):
                break
            c = new
        score = float(np.sum(np.max(emb @ c.T, axis=1)))
        if best is None or score > best[0]:
            best = (score, labels, c)
    assert best is not None
    return best[1], best[2]


@dataclass(frozen=True, slots=True)
class VoiceSplit:
    """A mono recording's speech cut into two voices, and whether they are two voices at all."""

    first: tuple[Interval, ...]  # one 2-means cluster's speech (all speech if never embedded)
    second: tuple[Interval, ...]  # the other's
    speech: tuple[Interval, ...]  # all speech (VAD of the mix)
    separation: float  # 1 - cosine of the two centroids; 0.0 if never embedded
    spread: float  # voice_spread of the windows; 0.0 if never embedded
    persistence: float  # label_persistence of the windows' clusters; 0.0 if never embedded
    two_voices: bool  # the split is kept (:func:`two_voices`)


def party_runs(
    samples: np.ndarray,
    *,
    config: DiarizerConfig = DiarizerConfig(),
    encoder: Any = None,
    windows: tuple[np.ndarray, np.ndarray] | None = None,
) -> VoiceSplit:
    """Speech of the two voices (unordered), their separation, and whether they are two.

    Too little speech (``MIN_TWO_PARTY_SPEECH_S``, or under 4 windows) is one voice without
    loading the encoder. ``windows``: ``(starts_s, embeddings)`` of ``config.window_s`` windows
    already embedded on a grid that holds this config's starts (an evaluation's cache, e.g.
    every 0.25 s for a 0.5 s hop); the encoder is then not used.
    """
    x = np.asarray(samples, dtype=np.float32)
    intervals = speech_intervals(x, margin_db=MIX_NOISE_MARGIN_DB)
    one = VoiceSplit(tuple(intervals), (), tuple(intervals), 0.0, 0.0, 0.0, False)
    if sum(b - a for a, b in intervals) < MIN_TWO_PARTY_SPEECH_S:
        return one
    speech = speech_frames(intervals, int(x.size / ANALYSIS_RATE_HZ / FRAME_S))
    starts = window_starts(speech, config=config)
    if starts.size < 4:
        return one
    if windows is None:
        emb = window_embeddings(
            x, starts_s=starts, config=config, encoder=encoder or load_voice_encoder()
        )
    else:
        emb = windows_at(windows, starts)
    split = split_voices(starts, emb, speech=speech, intervals=intervals, config=config)
    first, second = own_speech(x, split.first, split.second)
    return replace(split, first=first, second=second)


def own_speech(
    samples: np.ndarray, first: Sequence[Interval], second: Sequence[Interval]
) -> tuple[tuple[Interval, ...], tuple[Interval, ...]]:
    """Each party's runs cut to the frames its own leg's VAD finds.

    The mix's VAD bridges pauses under ``pipeline.vad.MERGE_GAP_S``: where the other party
    answers within one, the two runs touch and each reply reads 0 s late, a robot's flat
    latency (docs/evaluation_calls.md, "Agent calls on mono"). A party's leg
    (:func:`pipeline.behaviour.party_legs`) has the other party turned down to the noise floor.

    Parameters
    ----------
    samples : np.ndarray [shape=(n,)], float32 at 16 kHz, the mix
    first, second : sequences of (start_s, end_s), the two parties' runs

    Returns
    -------
    (first, second) : tuples of (start_s, end_s)
    """
    if not first or not second:
        return tuple(first), tuple(second)
    legs = party_legs(samples, PartyTurns(tuple(first), tuple(second), ""))
    n_frames = int(samples.size / ANALYSIS_RATE_HZ / FRAME_S) + 1
    out = []
    for runs, leg in zip((first, second), legs, strict=True):
        own = speech_frames(speech_intervals(leg, margin_db=MIX_NOISE_MARGIN_DB), n_frames)
        out.append(tuple(_runs(speech_frames(list(runs), n_frames) & own)))
    return out[0], out[1]


def windows_at(windows: tuple[np.ndarray, np.ndarray], starts_s: np.ndarray) -> np.ndarray:
    """The rows of ``windows = (grid_starts_s, embeddings)`` that start at ``starts_s``.

    Raises
    ------
    ValueError
        A start is not on the grid (the cache was made with another hop or VAD).
    """
    grid = {round(float(s) * 1000): i for i, s in enumerate(windows[0])}
    keys = [round(float(s) * 1000) for s in starts_s]
    missing = [k / 1000 for k in keys if k not in grid]
    if missing:
        raise ValueError(f"window starts not in the cached grid: {missing[:3]} ...")
    return windows[1][[grid[k] for k in keys]]


def speech_frames(intervals: list[Interval], n_frames: int) -> np.ndarray:
    """Boolean (n_frames,) mask of ``FRAME_S`` frames inside ``intervals``."""
    speech = np.zeros(n_frames, dtype=bool)
    for a, b in intervals:
        speech[int(a / FRAME_S) : int(b / FRAME_S)] = True
    return speech


def window_starts(speech: np.ndarray, *, config: DiarizerConfig) -> np.ndarray:
    """Starts (s) of the embedding windows, every ``hop_s``, that are mostly speech."""
    w = int(config.window_s / FRAME_S)
    starts = np.arange(0.0, max(speech.size * FRAME_S - config.window_s, 0.0), config.hop_s)
    share = np.array([speech[int(s / FRAME_S) : int(s / FRAME_S) + w].mean() for s in starts])
    return starts[share >= MIN_WINDOW_SPEECH] if starts.size else starts


def split_voices(
    starts: np.ndarray,
    emb: np.ndarray,
    *,
    speech: np.ndarray,
    intervals: list[Interval],
    config: DiarizerConfig,
) -> VoiceSplit:
    """The two voices of window embeddings ``emb`` (m, d) at ``starts`` (m,): party_runs."""
    n_frames = speech.size
    w = int(config.window_s / FRAME_S)
    labels, centroids = two_clusters(emb)
    separation = round(float(1.0 - centroids[0] @ centroids[1]), 4)
    margin = emb @ centroids[0] - emb @ centroids[1]  # > 0: cluster 0
    acc = np.zeros(n_frames)
    cnt = np.zeros(n_frames)
    for s, m in zip(starts, margin, strict=True):
        i = int(s / FRAME_S)
        acc[i : i + w] += m
        cnt[i : i + w] += 1
    lab = np.where(cnt > 0, (acc / np.maximum(cnt, 1) < 0).astype(int), -1)
    lab = _fill(lab)
    lab = ndimage.median_filter(lab, size=max(int(SMOOTH_S / FRAME_S) | 1, 1), mode="nearest")
    lab = _absorb_short(lab, speech, int(MIN_TURN_S / FRAME_S))
    first, second = _runs((lab == 0) & speech), _runs((lab == 1) & speech)
    spread = voice_spread(emb)
    persistence = label_persistence(starts, labels, hop_s=config.hop_s)
    return VoiceSplit(
        tuple(first),
        tuple(second),
        tuple(intervals),
        separation,
        round(spread, 4),
        round(persistence, 4),
        two_voices(spread, persistence, first, second),
    )


def voice_spread(emb: np.ndarray) -> float:
    """``SPREAD_PERCENTILE`` percentile of the cosine distances of unit embeddings (m, d) from
    their normalised mean: a voice that speaks a quarter of the time lifts it, where it hardly
    moves the mean distance (the previous statistic, which judged every English TTS-robot mix of
    the test calls one voice)."""
    centre = emb.mean(axis=0)
    centre /= np.linalg.norm(centre) + 1e-9
    return float(np.percentile(1.0 - emb @ centre, SPREAD_PERCENTILE))


def label_persistence(starts: np.ndarray, labels: np.ndarray, *, hop_s: float) -> float:
    """How much more often than chance a window keeps the cluster of the window one hop before.

    Cohen's kappa of the labels of window pairs ``hop_s`` apart (both over speech): 1 when the
    clusters come in runs, as two parties' turns do; near 0 when they flip at random, as when
    2-means cuts one voice by vowel or loudness. 0.0 with no such pair or one cluster only.
    """
    pairs = np.isclose(np.diff(starts), hop_s)
    if not pairs.any():
        return 0.0
    share = float(labels.mean())
    chance = share**2 + (1.0 - share) ** 2
    if chance >= 1.0:
        return 0.0
    same = float(np.mean(labels[1:][pairs] == labels[:-1][pairs]))
    return (same - chance) / (1.0 - chance)


def two_voices(
    spread: float, persistence: float, first: Sequence[Interval], second: Sequence[Interval]
) -> bool:
    """Whether a 2-means split is two voices rather than one voice cut in two: the logistic
    score ``TWO_VOICE_WEIGHTS . (spread, persistence) + TWO_VOICE_BIAS`` is at least 0 and
    each side has ``MIN_PARTY_SPEECH_S`` of speech."""
    score = TWO_VOICE_WEIGHTS[0] * spread + TWO_VOICE_WEIGHTS[1] * persistence + TWO_VOICE_BIAS
    return min(_total(first), _total(second)) >= MIN_PARTY_SPEECH_S and score >= 0.0


def _total(runs: Sequence[Interval]) -> float:
    return float(sum(e - s for s, e in runs))


def choose_caller(
    a: tuple[Interval, ...], b: tuple[Interval, ...], rule: str
) -> tuple[tuple[Interval, ...], tuple[Interval, ...], str]:
    """(caller, callee, reason) of two parties by ``rule`` (one of CALLER_RULES)."""
    if rule in CALLER_WEIGHTS:
        a_first = caller_logit(a, b, rule) >= 0.0
    elif rule == "most":
        a_first = _total(a) >= _total(b)
    elif rule == "first":
        a_first = bool(a) and (not b or a[0][0] <= b[0][0])
    else:  # a dialer prompt or a sales pitch runs longer than "喂?" / "yes" / "what is it?"
        a_first = _mean_run(a) >= _mean_run(b)
    return (a, b, CALLER_REASONS[rule]) if a_first else (b, a, CALLER_REASONS[rule])


def caller_contrast(a: Sequence[Interval], b: Sequence[Interval]) -> np.ndarray:
    """How party ``a`` differs from ``b``, one value per :data:`CALLER_FEATURES`.

    Log ratios of speech time, of the number of pause-bounded runs and of the longest run, and
    +1 / -1 when ``a`` / ``b`` speaks first. Antisymmetric: ``caller_contrast(b, a)`` is the
    negation. Both parties must have speech.

    Returns
    -------
    np.ndarray [shape=(4,)], float64
    """
    longest_a, longest_b = (max(e - s for s, e in runs) for runs in (a, b))
    return np.array(
        [
            math.log(max(_total(a), FRAME_S) / max(_total(b), FRAME_S)),
            math.log(len(a) / len(b)),
            math.log(max(longest_a, FRAME_S) / max(longest_b, FRAME_S)),
            1.0 if a[0][0] <= b[0][0] else -1.0,
        ]
    )


def caller_logit(a: Sequence[Interval], b: Sequence[Interval], rule: str = "turns") -> float:
    """Logit that party ``a`` rather than ``b`` is the caller under a fitted rule
    (``CALLER_WEIGHTS[rule]`` . :func:`caller_contrast`): antisymmetric in ``a`` and ``b``; a
    party with no speech is never the caller (+-1)."""
    if not a or not b:
        return 1.0 if a else -1.0
    return float(np.dot(CALLER_WEIGHTS[rule], caller_contrast(a, b)))


def _mean_run(runs: tuple[Interval, ...]) -> float:
    return float(np.mean([e - s for s, e in runs])) if runs else 0.0


def diarize(
    samples: np.ndarray, *, config: DiarizerConfig = DiarizerConfig(), encoder: Any = None
) -> PartyTurns:
    """Split a mono two-party call into caller and callee speech.

    Parameters
    ----------
    samples : np.ndarray [shape=(n,)], float32 at 16 kHz
    config : DiarizerConfig
    encoder : VoiceEncoder, optional
        Defaults to :func:`load_voice_encoder` (CPU).

    Returns
    -------
    PartyTurns
        Caller and callee intervals in seconds (one party per frame), how the caller was
        chosen, and how far apart the two voices are. One voice: all speech is the caller's,
        the callee has none, and the reason is ``ONE_VOICE``.
    """
    split = party_runs(samples, config=config, encoder=encoder)
    if not split.two_voices:
        return PartyTurns(split.speech, (), ONE_VOICE, split.separation)
    caller, callee, reason = choose_caller(split.first, split.second, config.caller_rule)
    return PartyTurns(caller, callee, reason, split.separation)


@dataclass(frozen=True, slots=True)
class TwoPartyDiarizer:
    """The detector's :class:`pipeline.behaviour.Diarizer` for mono recordings.

    Holds no model: the GE2E encoder (:func:`load_voice_encoder`, cached per process) loads on
    the first recording with ``MIN_TWO_PARTY_SPEECH_S`` of speech, so start-up and stereo
    recordings pay nothing for it. Without ``resemblyzer`` installed, every mono recording is
    one voice (logged as a warning) rather than an error.
    """

    config: DiarizerConfig = DiarizerConfig()
    encoder: Any = None  # a GE2E-like encoder; None = load_voice_encoder() when first needed

    def __call__(self, samples: np.ndarray) -> PartyTurns:
        try:
            return diarize(samples, config=self.config, encoder=self.encoder)
        except ModelNotAvailableError as exc:  # the behaviour cues are extra evidence: go on
            log.warning("mono recording taken as one voice: %s", exc)
            speech = speech_intervals(samples, margin_db=MIX_NOISE_MARGIN_DB)
            return PartyTurns(tuple(speech), (), ONE_VOICE, 0.0)


def _fill(lab: np.ndarray) -> np.ndarray:
    """Speech frames no window covered take the nearest covered frame's label."""
    covered = np.flatnonzero(lab >= 0)
    if covered.size == 0:
        return np.zeros_like(lab)
    idx = np.searchsorted(covered, np.arange(lab.size)).clip(0, covered.size - 1)
    prev = covered[np.maximum(idx - 1, 0)]
    nxt = covered[idx]
    nearest = np.where(
        np.abs(prev - np.arange(lab.size)) <= np.abs(nxt - np.arange(lab.size)), prev, nxt
    )
    out = lab.copy()
    missing = lab < 0
    out[missing] = lab[nearest[missing]]
    return out


def _absorb_short(lab: np.ndarray, speech: np.ndarray, min_frames: int) -> np.ndarray:
    """Label runs shorter than ``min_frames`` take the label of the run before them."""
    out = lab.copy()
    edges = np.flatnonzero(np.diff(out)) + 1
    bounds = np.concatenate(([0], edges, [out.size]))
    for i in range(1, len(bounds) - 1):
        a, b = bounds[i], bounds[i + 1]
        if b - a < min_frames and speech[a:b].any():
            out[a:b] = out[a - 1]
    return out


def _runs(mask: np.ndarray) -> list[Interval]:
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
    return [
        (round(float(a) * FRAME_S, 3), round(float(b) * FRAME_S, 3))
        for a, b in zip(edges[::2], edges[1::2], strict=True)
    ]
