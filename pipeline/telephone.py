"""One telephone channel for every clip of both classes, at training and at inference time.

The shared training data has format shortcuts that follow the label (``/work/shared/data/README``,
"Warnings"): synthetic clips started at 24 kHz or more, often float32, clean and wideband; the only
telephone-channel audio is human (Hyke, 8 kHz). A model trained on raw clips learns the recording
chain, not the voice. So every clip, robot or human, goes through the same path:

1. mix to float, remove DC, resample to 8 kHz (``CHANNEL_RATE_HZ``);
2. 300-3400 Hz band-pass (4th-order Butterworth, causal, like a line);
3. active-speech level (ITU-T P.56 style, frames above an energy gate) normalised to
   ``target_dbfs`` so the codec sees the same level for every clip;
4. a codec round trip: G.711 mu-law / A-law and AMR-NB (random mode) through PyAV,
   GSM 06.10 through libsndfile (PyAV has no GSM encoder);
5. leading and trailing silence trimmed to ``pad_s`` (faded), optional random ``crop_s`` window;
6. level normalised again (the codec moves it a little), background noise (white, pink or
   babble-like, all made with numpy) at a random SNR relative to the active speech level;
7. back to 16 kHz float32.

:func:`telephone_channel` draws the random choices from ``rng`` (deterministic given its seed);
:func:`inference_channel` is the fixed variant (mu-law, no noise, no crop) that the detector
applies before a trained model sees audio, so train and test share band, codec and level.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np
import soundfile as sf
from scipy import signal

from pipeline.errors import EmptyAudioError
from pipeline.types import ANALYSIS_RATE_HZ

if TYPE_CHECKING:
    from av.audio.codeccontext import AudioCodecContext

CHANNEL_RATE_HZ = 8_000  # narrowband telephony
CODECS = ("mulaw", "alaw", "amr_nb", "gsm")
WIDEBAND_BAND_HZ = (50.0, 7_000.0)  # a wideband call's band (:func:`wideband_channel`)
NOISE_KINDS = ("white", "pink", "babble")
AMR_NB_BITRATES_BPS = (4750, 5150, 5900, 6700, 7400, 7950, 10200, 12200)  # the 8 AMR-NB modes
FRAME_S = 0.02  # level and silence analysis frames
_ABS_FLOOR_DBFS = -70.0  # quieter frames are never speech
_REL_FLOOR_DB = 30.0  # nor frames this far below the loudest (95th percentile) ones
_PAV_CODECS = {
    "mulaw": ("pcm_mulaw", "pcm_mulaw"),
    "alaw": ("pcm_alaw", "pcm_alaw"),
    "amr_nb": ("libopencore_amrnb", "amrnb"),
}  # ours -> (PyAV encoder, decoder)


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    codecs: tuple[str, ...] = CODECS  # one drawn per clip from these (subset of CODECS)
    amr_bitrates_bps: tuple[int, ...] = AMR_NB_BITRATES_BPS  # AMR-NB mode drawn per clip
    band_hz: tuple[float, float] = (300.0, 3400.0)  # telephone band-pass edges
    target_dbfs: float = -26.0  # active speech level after normalisation (P.56 style)
    noise_kinds: tuple[str, ...] = NOISE_KINDS  # one drawn per clip; empty = no noise
    snr_db_range: tuple[float, float] = (15.0, 40.0)  # noise SNR vs active speech, uniform
    pad_s: float = 0.1  # silence kept before the first and after the last speech frame
    crop_s: float | None = None  # training: random window of this many seconds; None = all
    trim: bool = True  # cut to the speech (+ pad_s); False keeps the recording's timeline

    def __post_init__(self) -> None:
        if not self.codecs or not set(self.codecs) <= set(CODECS):
            raise ValueError(f"codecs must be a non-empty subset of {CODECS}, got {self.codecs}")
        if not self.amr_bitrates_bps or not set(self.amr_bitrates_bps) <= set(AMR_NB_BITRATES_BPS):
            raise ValueError(
                f"amr_bitrates_bps must be a non-empty subset of {AMR_NB_BITRATES_BPS}, "
                f"got {self.amr_bitrates_bps}"
            )
        low, high = self.band_hz
        _check_range("band_hz[0]", low, 20.0, 1_000.0)
        _check_range("band_hz[1]", high, low + 500.0, CHANNEL_RATE_HZ / 2 - 100.0)
        _check_range("target_dbfs", self.target_dbfs, -50.0, -10.0)
        if not set(self.noise_kinds) <= set(NOISE_KINDS):
            raise ValueError(
                f"noise_kinds must be a subset of {NOISE_KINDS}, got {self.noise_kinds}"
            )
        snr_low, snr_high = self.snr_db_range
        _check_range("snr_db_range[0]", snr_low, -5.0, 80.0)
        _check_range("snr_db_range[1]", snr_high, snr_low, 80.0)
        _check_range("pad_s", self.pad_s, 0.0, 2.0)
        if self.crop_s is not None:
            _check_range("crop_s", self.crop_s, 0.5, 600.0)


INFERENCE_CHANNEL = ChannelConfig(codecs=("mulaw",), noise_kinds=())  # deterministic path
CALL_CHANNEL = ChannelConfig(codecs=("mulaw",), noise_kinds=(), trim=False)  # a whole call


@dataclass(frozen=True, slots=True)
class ChannelParams:
    """The random choices for one clip (JSON-able, so a manifest row can record them)."""

    codec: str  # one of CODECS
    amr_bitrate_bps: int  # used when codec == "amr_nb"
    noise_kind: str  # one of NOISE_KINDS, or "none"
    snr_db: float  # noise SNR vs active speech level; inf when noise_kind == "none"
    crop_start: float  # 0..1: where the crop window starts in the trimmed clip
    noise_seed: int  # seeds the noise generator


def draw_channel_params(rng: np.random.Generator, config: ChannelConfig) -> ChannelParams:
    """Draw one clip's codec, AMR mode, noise and crop start (always the same draws, in order)."""
    codec = config.codecs[int(rng.integers(len(config.codecs)))]
    bitrate = config.amr_bitrates_bps[int(rng.integers(len(config.amr_bitrates_bps)))]
    kind_index = int(rng.integers(max(len(config.noise_kinds), 1)))
    snr_db = float(rng.uniform(*config.snr_db_range))
    crop_start = float(rng.uniform())
    noise_seed = int(rng.integers(2**31))
    if not config.noise_kinds:
        return ChannelParams(codec, bitrate, "none", math.inf, crop_start, noise_seed)
    return ChannelParams(
        codec, bitrate, config.noise_kinds[kind_index], snr_db, crop_start, noise_seed
    )


def telephone_channel(
    samples: np.ndarray,
    *,
    sample_rate_hz: int,
    rng: np.random.Generator,
    config: ChannelConfig = ChannelConfig(),  # noqa: B008 (frozen, hashable)
) -> np.ndarray:
    """Pass one clip through the randomised telephone channel (training augmentation).

    Parameters
    ----------
    samples : np.ndarray [shape=(n,)]
        Mono audio; float in [-1, 1], or integer PCM (int8/16/32, uint8) scaled by its range.
    sample_rate_hz : int
        Rate of ``samples``, 4 kHz to 384 kHz.
    rng : np.random.Generator
        Source of every random choice; the same seed gives the same output.
    config : ChannelConfig
        Codec choices, SNR range, level and padding.

    Returns
    -------
    np.ndarray [shape=(m,)], float32 at 16 kHz (``ANALYSIS_RATE_HZ``), in [-1, 1].

    Raises
    ------
    ValueError
        Not 1-D, not finite, or a sample rate out of range.
    EmptyAudioError
        No samples, or nothing above the speech-energy gate.
    """
    params = draw_channel_params(rng, config)
    return apply_channel(samples, sample_rate_hz=sample_rate_hz, params=params, config=config)


def inference_channel(samples: np.ndarray, *, sample_rate_hz: int = ANALYSIS_RATE_HZ) -> np.ndarray:
    """The deterministic channel (G.711 mu-law, no noise, no crop) applied before a trained model.

    Same band, codec family, level and padding as training, so a model never sees a clip that
    skipped the channel. Parameters, returns and raises as :func:`telephone_channel`.
    """
    params = ChannelParams("mulaw", AMR_NB_BITRATES_BPS[-1], "none", math.inf, 0.0, 0)
    return apply_channel(
        samples, sample_rate_hz=sample_rate_hz, params=params, config=INFERENCE_CHANNEL
    )


def call_channel(samples: np.ndarray, *, sample_rate_hz: int = ANALYSIS_RATE_HZ) -> np.ndarray:
    """:func:`inference_channel` over a whole call, untrimmed: times stay those of the recording.

    What the ASR and the synthetic-voice head share when they share one encoder pass
    (``models/asr.py``); the head then scores windows cut out of it. Raises as
    :func:`telephone_channel`.
    """
    params = ChannelParams("mulaw", AMR_NB_BITRATES_BPS[-1], "none", math.inf, 0.0, 0)
    return apply_channel(samples, sample_rate_hz=sample_rate_hz, params=params, config=CALL_CHANNEL)


def apply_channel(
    samples: np.ndarray, *, sample_rate_hz: int, params: ChannelParams, config: ChannelConfig
) -> np.ndarray:
    """Run the channel with fixed choices ``params``; see :func:`telephone_channel`."""
    x = _to_float(samples)
    _check_range("sample_rate_hz", sample_rate_hz, 4_000, 384_000)
    x = _resample(x - np.mean(x), sample_rate_hz, CHANNEL_RATE_HZ)
    sos = signal.butter(4, config.band_hz, btype="bandpass", fs=CHANNEL_RATE_HZ, output="sos")
    x = np.asarray(signal.sosfilt(sos, x), dtype=np.float64)
    x = np.clip(_normalise(x, config.target_dbfs), -1.0, 1.0)
    x = codec_round_trip(x, codec=params.codec, bitrate_bps=params.amr_bitrate_bps)
    if config.trim:
        x = _trim(x, config.pad_s)
    if config.crop_s is not None:
        x = _crop(x, round(config.crop_s * CHANNEL_RATE_HZ), params.crop_start)
    x = _normalise(x, config.target_dbfs)
    if params.noise_kind != "none":
        x = _with_noise(x, params, speech_dbfs=_active_level_dbfs(x), rate_hz=CHANNEL_RATE_HZ)
    x = _resample(np.clip(x, -1.0, 1.0), CHANNEL_RATE_HZ, ANALYSIS_RATE_HZ)
    return np.asarray(np.clip(x, -1.0, 1.0), dtype=np.float32)


def wideband_channel(
    samples: np.ndarray, *, sample_rate_hz: int, params: ChannelParams, target_dbfs: float = -26.0
) -> np.ndarray:
    """A wideband call as a recorder keeps it (HD voice, VoLTE, a G.722 softphone): the path of
    :func:`apply_channel` at 16 kHz with ``WIDEBAND_BAND_HZ`` and no narrowband codec, so the
    same ``params`` (noise kind, SNR and seed; their codec is not used) give the same call on
    a wideband line. Untrimmed, uncropped; the noise is made at 16 kHz."""
    x = _to_float(samples)
    _check_range("sample_rate_hz", sample_rate_hz, 4_000, 384_000)
    x = _resample(x - np.mean(x), sample_rate_hz, ANALYSIS_RATE_HZ)
    sos = signal.butter(4, WIDEBAND_BAND_HZ, btype="bandpass", fs=ANALYSIS_RATE_HZ, output="sos")
    x = np.asarray(signal.sosfilt(sos, x), dtype=np.float64)
    level_dbfs = _active_level_dbfs(_resample(x, ANALYSIS_RATE_HZ, CHANNEL_RATE_HZ))
    x = np.clip(x * 10 ** ((target_dbfs - level_dbfs) / 20), -1.0, 1.0)
    if params.noise_kind != "none":
        x = _with_noise(x, params, speech_dbfs=target_dbfs, rate_hz=ANALYSIS_RATE_HZ)
    return np.asarray(np.clip(x, -1.0, 1.0), dtype=np.float32)


def _with_noise(
    x: np.ndarray, params: ChannelParams, *, speech_dbfs: float, rate_hz: int
) -> np.ndarray:
    """``x`` with ``params``' noise (kind, seed) made at ``rate_hz`` and added ``params.snr_db``
    under a speech level of ``speech_dbfs``."""
    noise = make_noise(
        params.noise_kind,
        x.size,
        rng=np.random.default_rng(params.noise_seed),
        sample_rate_hz=rate_hz,
    )
    speech_power = 10 ** (speech_dbfs / 10)
    noise_power = float(np.mean(noise**2)) or 1.0
    return x + noise * math.sqrt(speech_power / 10 ** (params.snr_db / 10) / noise_power)


def _to_float(samples: np.ndarray) -> np.ndarray:
    x = np.asarray(samples)
    if x.ndim != 1:
        raise ValueError(f"samples must be mono with shape (n,), got shape {x.shape}")
    if x.size == 0:
        raise EmptyAudioError("no samples to pass through the telephone channel")
    if x.dtype == np.uint8:
        return (x.astype(np.float64) - 128.0) / 128.0
    if np.issubdtype(x.dtype, np.integer):
        return x.astype(np.float64) / float(-np.iinfo(x.dtype).min)
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("samples must be finite (no NaN or inf)")
    return x


def _resample(x: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    if from_hz == to_hz:
        return x
    g = math.gcd(int(from_hz), int(to_hz))
    return np.asarray(signal.resample_poly(x, to_hz // g, from_hz // g), dtype=np.float64)


def _frame_levels_dbfs(x: np.ndarray) -> np.ndarray:
    hop = round(FRAME_S * CHANNEL_RATE_HZ)
    n = max(x.size // hop, 1)
    frames = np.zeros(n * hop)
    frames[: min(x.size, n * hop)] = x[: n * hop]
    power = np.mean(frames.reshape(n, hop) ** 2, axis=1)
    return np.asarray(10 * np.log10(np.maximum(power, 1e-15)), dtype=np.float64)


def _active_frames(levels: np.ndarray) -> np.ndarray:
    """Frames above an energy gate between the noise floor and the loudest frames."""
    p10, p95 = (float(v) for v in np.percentile(levels, [10, 95]))
    gate = max(_ABS_FLOOR_DBFS, p95 - _REL_FLOOR_DB, min(p10 + 6.0, p95 - 10.0))
    active = np.asarray(levels > gate)
    if not active.any():
        raise EmptyAudioError(f"no speech-level energy (loudest frames {p95:.1f} dBFS)")
    return active


def _active_level_dbfs(x: np.ndarray) -> float:
    levels = _frame_levels_dbfs(x)
    power = 10 ** (levels[_active_frames(levels)] / 10)
    return float(10 * np.log10(np.mean(power)))


def _normalise(x: np.ndarray, target_dbfs: float) -> np.ndarray:
    return np.asarray(x * 10 ** ((target_dbfs - _active_level_dbfs(x)) / 20), dtype=np.float64)


def _trim(x: np.ndarray, pad_s: float) -> np.ndarray:
    """Keep ``pad_s`` around the first and last active frames, zero-padded and faded."""
    hop = round(FRAME_S * CHANNEL_RATE_HZ)
    pad = round(pad_s * CHANNEL_RATE_HZ)
    active = np.flatnonzero(_active_frames(_frame_levels_dbfs(x)))
    start, end = int(active[0]) * hop, min(int(active[-1] + 1) * hop, x.size)
    out = np.zeros(end - start + 2 * pad)
    lead = min(pad, start)
    tail = min(pad, x.size - end)
    out[pad - lead : pad + end - start + tail] = x[start - lead : end + tail]
    fade = pad // 2
    if fade:
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, fade))
        out[:fade] *= ramp
        out[out.size - fade :] *= ramp[::-1]
    return out


def _crop(x: np.ndarray, length: int, start_fraction: float) -> np.ndarray:
    if x.size <= length:
        return np.concatenate([x, np.zeros(length - x.size)])  # pad with silence (noise follows)
    start = int(start_fraction * (x.size - length))
    return x[start : start + length]


def codec_round_trip(x: np.ndarray, *, codec: str, bitrate_bps: int = 12_200) -> np.ndarray:
    """Encode and decode 8 kHz float samples with a telephone codec; same length out.

    Parameters
    ----------
    x : np.ndarray [shape=(n,)], float in [-1, 1] at 8 kHz
    codec : str
        One of :data:`CODECS`.
    bitrate_bps : int
        AMR-NB mode (one of :data:`AMR_NB_BITRATES_BPS`); ignored by the other codecs.

    Returns
    -------
    np.ndarray [shape=(n,)], float64. AMR-NB output is delayed by the codec's look-ahead
    (about 10 ms); the silence trim that follows absorbs it.
    """
    if codec not in CODECS:
        raise ValueError(f"codec must be one of {CODECS}, got {codec!r}")
    pcm = np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)
    if codec == "gsm":
        buffer = io.BytesIO()
        sf.write(buffer, pcm, CHANNEL_RATE_HZ, format="WAV", subtype="GSM610")
        buffer.seek(0)
        decoded, _ = sf.read(buffer, dtype="float64")
    else:
        decoded = _pyav_round_trip(pcm, *_PAV_CODECS[codec], bitrate_bps)
    out = np.zeros(x.size)
    out[: min(x.size, decoded.size)] = decoded[: x.size]
    return out


def _pyav_round_trip(pcm: np.ndarray, encoder: str, decoder: str, bitrate_bps: int) -> np.ndarray:
    import av  # lazy: the decoder module is heavy and only the channel needs an encoder

    try:
        enc = cast("AudioCodecContext", av.CodecContext.create(encoder, "w"))
    except av.codec.codec.UnknownCodecError as error:
        raise RuntimeError(
            f"PyAV {av.__version__} was built without the {encoder} encoder; "
            "install the version in constraints.txt (`make setup`)"
        ) from error
    enc.sample_rate = CHANNEL_RATE_HZ
    enc.layout = "mono"
    enc.format = "s16"
    enc.bit_rate = bitrate_bps
    enc.open()
    dec = cast("AudioCodecContext", av.CodecContext.create(decoder, "r"))
    dec.sample_rate = CHANNEL_RATE_HZ
    dec.layout = "mono"
    frame_size = enc.frame_size or 160
    padded = np.zeros(-(-pcm.size // frame_size) * frame_size, dtype=np.int16)
    padded[: pcm.size] = pcm
    packets = []
    for start in range(0, padded.size, frame_size):
        frame = av.AudioFrame.from_ndarray(
            padded[None, start : start + frame_size], format="s16", layout="mono"
        )
        frame.sample_rate = CHANNEL_RATE_HZ
        frame.pts = start
        packets.extend(enc.encode(frame))
    packets.extend(enc.encode(None))
    chunks = [f.to_ndarray().reshape(-1) for p in packets for f in dec.decode(p)]
    chunks.extend(f.to_ndarray().reshape(-1) for f in dec.decode(None))
    out = np.concatenate(chunks) if chunks else np.zeros(0)
    if out.dtype == np.int16:
        return out.astype(np.float64) / 32768.0
    return out.astype(np.float64)


def make_noise(
    kind: str, n: int, *, rng: np.random.Generator, sample_rate_hz: int = CHANNEL_RATE_HZ
) -> np.ndarray:
    """Background noise at ``sample_rate_hz`` (8 kHz), unit RMS: "white", "pink" (1/f) or
    "babble" (6 fake talkers, whose pitch, formants and syllable rate are set in Hz).

    Babble is harmonic sources with wandering f0, syllable-rate envelopes and one formant
    each: not speech, but speech-shaped and non-stationary, made without any recorded data.
    """
    if kind not in NOISE_KINDS:
        raise ValueError(f"noise kind must be one of {NOISE_KINDS}, got {kind!r}")
    if kind == "white":
        noise = rng.standard_normal(n)
    elif kind == "pink":
        spectrum = np.fft.rfft(rng.standard_normal(n))
        spectrum /= np.sqrt(np.maximum(np.arange(spectrum.size), 1.0))
        noise = np.fft.irfft(spectrum, n)
    else:
        noise = _babble(n, rng, sample_rate_hz)
    return noise / max(float(np.sqrt(np.mean(noise**2))), 1e-12)


def _babble(n: int, rng: np.random.Generator, rate_hz: int, talkers: int = 6) -> np.ndarray:
    t_env = np.linspace(0.0, 1.0, n)
    out = np.zeros(n)
    for _ in range(talkers):
        knots = max(int(n / rate_hz * 4), 2)  # ~4 syllables a second
        f0 = rng.uniform(90.0, 240.0) * (
            1 + 0.08 * np.interp(t_env, np.linspace(0, 1, knots), rng.standard_normal(knots))
        )
        phase = 2 * np.pi * np.cumsum(f0) / rate_hz
        harmonics = np.arange(1, 17)[:, None]
        source = np.sum(np.sin(harmonics * phase[None, :]) / harmonics, axis=0)
        envelope = np.interp(t_env, np.linspace(0, 1, knots), rng.uniform(0, 1, knots) ** 2)
        formant_hz = rng.uniform(400.0, 2500.0)
        b, a = signal.iirpeak(formant_hz, 3.0, fs=rate_hz)
        out += signal.lfilter(b, a, source) * envelope
    return out
