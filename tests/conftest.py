"""Shared test fixtures: seeded randomness, synthetic calls, and encoders for every format.

Everything is generated at test time (no network, no committed audio except one AMR-WB file, see
``tests/fixtures/README.md``). Fixtures for other test modules:

``rng``
    ``np.random.Generator`` seeded with :data:`SEED`; the same in every test.
``synth(kind, *, sr=16000, duration_s=2.0, amplitude=0.3, f0_hz=None, freq_hz=440.0)``
    Mono float32 signal [shape=(n,)] of one of :data:`KINDS`.
``make_wav(directory=None, *, kind="sine", sr=16000, duration_s=2.0, channels=1, ...)``
    Write a WAV with soundfile and return its path (default directory: the test's ``tmp_path``).
``encode_audio(samples, *, sr, fmt, directory=None)``
    Encode float32 samples [shape=(n,) or (channels, n)] with PyAV into one of
    :data:`ENCODINGS` and return the path.
``amr_wb_path``
    The committed 1.5 s AMR-WB fixture (PyAV cannot encode AMR-WB).

Markers: ``network`` tests skip unless ``--run-network``; ``gpu`` tests skip unless torch sees
CUDA (torch is imported only if such a test is collected).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import soundfile as sf

SEED = 20_240_601
FIXTURES_DIR = Path(__file__).resolve().parent / "fixtures"
AMR_WB_FIXTURE = FIXTURES_DIR / "tone_1500ms.amr"  # 1.5 s, 150 Hz harmonic tone, 16 kHz mono

KINDS = ("sine", "chirp", "noise", "silence", "dtmf", "robot", "human")
"""Signal kinds of ``synth``/``make_wav``:

- ``sine``: ``freq_hz`` (440 Hz) tone at ``amplitude`` peak.
- ``chirp``: linear sweep 200 Hz -> 3400 Hz (the telephone band).
- ``noise``: white Gaussian noise with RMS ``amplitude / 3``, clipped to [-1, 1].
- ``silence``: digital zeros.
- ``dtmf``: the digits ``1234567890*#`` repeated, 80 ms tone + 80 ms gap each.
- ``robot``: robot-like voice: perfectly flat f0 (``f0_hz``, default 160 Hz), constant energy,
  phrases of identical length with identical 0.3 s gaps.
- ``human``: human-like voice: f0 (``f0_hz``, default 130 Hz) with intonation drift and
  cycle-to-cycle jitter, syllable-rate loudness changes, phrases and pauses of random length.
"""

_DTMF_HZ = {
    "1": (697, 1209), "2": (697, 1336), "3": (697, 1477),
    "4": (770, 1209), "5": (770, 1336), "6": (770, 1477),
    "7": (852, 1209), "8": (852, 1336), "9": (852, 1477),
    "*": (941, 1209), "0": (941, 1336), "#": (941, 1477),
}  # fmt: skip
_FORMANTS_HZ = ((700.0, 130.0), (1_220.0, 170.0), (2_600.0, 250.0))  # an open /a/ vowel


@dataclass(frozen=True)
class Encoding:
    """How ``encode_audio`` writes one format."""

    ext: str  # file suffix
    container: str  # PyAV muxer
    codec: str  # PyAV encoder
    demuxer: str  # what ``load_audio`` reports as ``AudioInfo.container``
    decoder: str  # what ``load_audio`` reports as ``AudioInfo.codec``
    rate_hz: int | None = None  # forced encoder rate (None: keep the input's)
    channels: int | None = None  # forced channel count (None: keep the input's)
    bit_rate: int | None = None


ENCODINGS: dict[str, Encoding] = {
    "wav": Encoding("wav", "wav", "pcm_s16le", "wav", "pcm_s16le"),
    "wav_mulaw": Encoding("wav", "wav", "pcm_mulaw", "wav", "pcm_mulaw"),
    "wav_alaw": Encoding("wav", "wav", "pcm_alaw", "wav", "pcm_alaw"),
    "flac": Encoding("flac", "flac", "flac", "flac", "flac"),
    "mp3": Encoding("mp3", "mp3", "libmp3lame", "mp3", "mp3", bit_rate=32_000),
    "m4a": Encoding("m4a", "ipod", "aac", "mov,mp4,m4a,3gp,3g2,mj2", "aac", bit_rate=32_000),
    # FFmpeg's own Vorbis encoder (the wheel has no libvorbis) only writes stereo: mono input is
    # duplicated into both channels, which load_audio then reports as fake stereo.
    "ogg_vorbis": Encoding("ogg", "ogg", "vorbis", "ogg", "vorbis", channels=2),
    "ogg_opus": Encoding("opus", "ogg", "libopus", "ogg", "opus", bit_rate=24_000),
    "webm_opus": Encoding("webm", "webm", "libopus", "matroska,webm", "opus", bit_rate=24_000),
    "amr_nb": Encoding("amr", "amr", "libopencore_amrnb", "amr", "amr_nb", 8_000, 1, 12_200),
}
"""Formats ``encode_audio`` writes. Opus resamples 8/16 kHz input to itself but decodes at
48 kHz; AMR-NB is always 8 kHz mono (input is resampled/downmixed). AMR-WB: ``amr_wb_path``."""


def synthesize(
    kind: str,
    *,
    sr: int = 16_000,
    duration_s: float = 2.0,
    amplitude: float = 0.3,
    f0_hz: float | None = None,
    freq_hz: float = 440.0,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Generate one mono test signal, float32 [shape=(round(duration_s * sr),)], peak <= 1."""
    rng = rng if rng is not None else np.random.default_rng(SEED)
    n = int(round(duration_s * sr))
    t = np.arange(n) / sr
    if kind == "sine":
        x = amplitude * np.sin(2 * np.pi * freq_hz * t)
    elif kind == "chirp":
        f_lo, f_hi = 200.0, 3_400.0
        phase = 2 * np.pi * (f_lo * t + (f_hi - f_lo) * t**2 / (2 * max(duration_s, 1e-9)))
        x = amplitude * np.sin(phase)
    elif kind == "noise":
        x = np.clip(rng.normal(0.0, amplitude / 3, n), -1.0, 1.0)
    elif kind == "silence":
        x = np.zeros(n)
    elif kind == "dtmf":
        x = np.zeros(n)
        step = int(0.16 * sr)
        for i, start in enumerate(range(0, n, step)):
            lo, hi = _DTMF_HZ["1234567890*#"[i % 12]]
            seg = t[start : min(start + step // 2, n)]
            x[start : start + seg.size] = (
                amplitude / 2 * (np.sin(2 * np.pi * lo * seg) + np.sin(2 * np.pi * hi * seg))
            )
    elif kind == "robot":
        f0 = np.full(n, f0_hz or 160.0)
        gate = ((t % 1.5) < 1.2).astype(np.float64)  # 1.2 s phrases, 0.3 s gaps, like clockwork
        x = amplitude * _voice(f0, sr) * _smooth(gate, sr)
    elif kind == "human":
        base = f0_hz or 130.0
        drift = 1.0 + 0.12 * np.sin(2 * np.pi * 0.4 * t + rng.uniform(0, 2 * np.pi))
        jitter = np.repeat(rng.normal(1.0, 0.03, n // 80 + 1), 80)[:n]  # ~5 ms cycle jitter
        f0 = base * drift * jitter
        syllables = 0.15 + 0.85 * np.abs(np.sin(2 * np.pi * 2.2 * t + rng.uniform(0, np.pi)))
        x = amplitude * _voice(f0, sr) * syllables * _smooth(_human_gate(t, rng), sr)
    else:
        raise ValueError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
    return np.asarray(x, dtype=np.float32)


def _voice(f0_hz: np.ndarray, sr: int) -> np.ndarray:
    """Harmonics of a time-varying f0 shaped by three vowel formants, peak-normalised to 1."""
    phase = 2 * np.pi * np.cumsum(f0_hz) / sr
    x = np.zeros(f0_hz.size)
    top = min(3_800.0, 0.45 * sr)
    for k in range(1, int(top / float(f0_hz.min())) + 1):
        f = k * f0_hz
        gain = sum(np.exp(-0.5 * ((f - fc) / bw) ** 2) for fc, bw in _FORMANTS_HZ) + 0.05
        x += np.where(f < top, gain / k**0.5, 0.0) * np.sin(k * phase)
    return x / max(float(np.abs(x).max()), 1e-9)


def _human_gate(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    gate = np.zeros(t.size)
    pos = rng.uniform(0.0, 0.2)
    while pos < t[-1]:
        talk = rng.uniform(0.6, 2.0)
        gate[(t >= pos) & (t < pos + talk)] = 1.0
        pos += talk + rng.uniform(0.25, 0.9)
    return gate


def _smooth(gate: np.ndarray, sr: int) -> np.ndarray:
    """10 ms raised-cosine edges on a 0/1 gate (no clicks)."""
    k = max(int(0.01 * sr), 1)
    kernel = np.hanning(2 * k + 1)
    return np.convolve(gate, kernel / kernel.sum(), mode="same")


def write_wav(path: Path, samples: np.ndarray, *, sr: int, subtype: str = "PCM_16") -> Path:
    """Write float samples [shape=(n,) or (channels, n)] as WAV with soundfile."""
    data = samples.T if samples.ndim == 2 else samples
    sf.write(path, data, sr, format="WAV", subtype=subtype)
    return path


def encode(samples: np.ndarray, *, sr: int, fmt: str) -> bytes:
    """Encode float32 samples [shape=(n,) or (channels, n)] at ``sr`` Hz into ``fmt`` bytes."""
    enc = ENCODINGS[fmt]
    planar = np.atleast_2d(np.asarray(samples, dtype=np.float32))
    if enc.channels is not None and planar.shape[0] != enc.channels:
        planar = np.repeat(planar.mean(axis=0, keepdims=True), enc.channels, axis=0)
    layout = "mono" if planar.shape[0] == 1 else "stereo"
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=enc.container) as out:
        stream = out.add_stream(enc.codec, rate=enc.rate_hz or _opus_rate(enc, sr), layout=layout)
        if not isinstance(stream, av.audio.stream.AudioStream):
            raise TypeError(f"{enc.codec} is not an audio encoder")
        ctx = stream.codec_context
        if enc.codec == "vorbis":
            ctx.options = {"strict": "experimental"}
        if enc.bit_rate:
            stream.bit_rate = enc.bit_rate
        ctx.open()
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(planar), format="fltp", layout=layout
        )
        frame.sample_rate = sr
        frame.pts = 0
        resampler = av.AudioResampler(
            format=ctx.format.name,
            layout=layout,
            rate=ctx.sample_rate,
            frame_size=ctx.frame_size or None,
        )
        for chunk in resampler.resample(frame) + resampler.resample(None):
            out.mux(stream.encode(chunk))
        out.mux(stream.encode(None))
    return buf.getvalue()


def _opus_rate(enc: Encoding, sr: int) -> int:
    if enc.codec == "libopus" and sr not in (8_000, 12_000, 16_000, 24_000, 48_000):
        return 48_000
    return sr


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh ``np.random.Generator`` seeded with :data:`SEED`."""
    return np.random.default_rng(SEED)


@pytest.fixture
def synth(rng: np.random.Generator) -> Callable[..., np.ndarray]:
    """Factory: ``synth(kind, *, sr=16000, duration_s=2.0, ...)`` -> float32 [shape=(n,)]."""

    def make(kind: str, **kwargs: Any) -> np.ndarray:
        kwargs.setdefault("rng", rng)
        return synthesize(kind, **kwargs)

    return make


@pytest.fixture
def make_wav(tmp_path: Path, rng: np.random.Generator) -> Callable[..., Path]:
    """Factory writing a synthetic WAV; returns its path.

    ``make_wav(directory=None, *, kind="sine", sr=16000, duration_s=2.0, channels=1,
    subtype="PCM_16", name=None, **synth_kwargs)``. ``kind`` may be a sequence of kinds, one per
    channel (e.g. ``("robot", "silence")``); a single kind with ``channels=2`` writes the same
    signal twice (fake stereo). ``subtype`` is any soundfile WAV subtype ("PCM_16", "FLOAT",
    "ULAW", "ALAW", ...).
    """
    counter = iter(range(1_000_000))

    def make(
        directory: Path | None = None,
        *,
        kind: str | Sequence[str] = "sine",
        sr: int = 16_000,
        duration_s: float = 2.0,
        channels: int = 1,
        subtype: str = "PCM_16",
        name: str | None = None,
        **synth_kwargs: Any,
    ) -> Path:
        if isinstance(kind, str):
            kinds = [kind] * channels
            one = synthesize(kind, sr=sr, duration_s=duration_s, rng=rng, **synth_kwargs)
            rows = [one] * channels
        else:
            kinds = list(kind)
            rows = [
                synthesize(k, sr=sr, duration_s=duration_s, rng=rng, **synth_kwargs) for k in kinds
            ]
        samples = np.stack(rows) if len(rows) > 1 else rows[0]
        label = name or f"{'-'.join(kinds)}_{sr}hz_{next(counter)}.wav"
        return write_wav((directory or tmp_path) / label, samples, sr=sr, subtype=subtype)

    return make


@pytest.fixture
def encode_audio(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``encode_audio(samples, *, sr, fmt, directory=None) -> Path``.

    ``fmt`` is a key of :data:`ENCODINGS`; the file is ``<fmt>_<i>.<ext>`` in ``directory``
    (default: the test's ``tmp_path``).
    """

    counter = iter(range(1_000_000))

    def make(samples: np.ndarray, *, sr: int, fmt: str, directory: Path | None = None) -> Path:
        path = (directory or tmp_path) / f"{fmt}_{next(counter)}.{ENCODINGS[fmt].ext}"
        path.write_bytes(encode(samples, sr=sr, fmt=fmt))
        return path

    return make


@pytest.fixture
def amr_wb_path() -> Path:
    """Path of the committed AMR-WB fixture (1.5 s, 16 kHz mono, mode 8 / 23.85 kbit/s)."""
    return AMR_WB_FIXTURE


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-network", action="store_true", default=False, help="run tests marked network"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--run-network"):
        skip = pytest.mark.skip(reason="needs network; run with --run-network")
        for item in items:
            if "network" in item.keywords:
                item.add_marker(skip)
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if gpu_items and not _has_cuda():
        skip = pytest.mark.skip(reason="needs a CUDA device")
        for item in gpu_items:
            item.add_marker(skip)


def _has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())
