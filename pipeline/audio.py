"""Audio input: bytes of any common container in, a checked 16 kHz float32 :class:`Audio` out.

Every file is decoded exactly once, with PyAV (FFmpeg), and resampled per channel to
:data:`~pipeline.types.ANALYSIS_RATE_HZ` by FFmpeg's ``aformat``/swresample through
:class:`av.AudioResampler`, while decoding (a 30-minute call never exists at 48 kHz in memory).

Checks run cheapest first, each raising one error from :mod:`pipeline.errors`:

1. byte size: 0 bytes -> ``EmptyAudioError``, over ``max_bytes`` -> ``AudioTooLargeError``;
2. content sniffing (never the extension): images, archives and text -> ``NotAudioError``;
3. open: FFmpeg does not recognise the bytes -> ``NotAudioError``; it fails on bytes that start
   with a known audio container's magic (a WAV cut inside its header, an M4A without its
   ``moov``) -> ``CorruptAudioError``; no audio stream -> ``NotAudioError``;
4. header probe, before any decoding: duration, channel count, sample rate;
5. decode, stopping as soon as the decoded length passes ``max_duration_s`` (headers lie);
   a stream cut short keeps what decoded (a truncated phone recording is still evidence),
   nothing decodable -> ``CorruptAudioError``;
6. content: too short -> ``AudioTooShortError``, NaN/inf -> ``CorruptAudioError``, every channel
   silent in the speech band -> ``EmptyAudioError``; a very quiet recording is raised
   (:func:`raise_quiet`, ``AudioInfo.gain_db``), an offset removed (:func:`without_offset`) and
   a mains hum notched out (:func:`pipeline.hum.recording_without_hum`, ``AudioInfo.hum_hz``);
7. stereo: pick the caller's channel (see :func:`choose_caller_channel`).

At about 560 lines this is one module because it is one path: the checks above run in this
order over one PyAV container, and the sniffer beside them is the project's only one.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeAlias

import av
import numpy as np

from pipeline.config import AudioLimits
from pipeline.errors import (
    AudioTooLargeError,
    AudioTooLongError,
    AudioTooShortError,
    CorruptAudioError,
    EmptyAudioError,
    NotAudioError,
    UnsupportedAudioError,
)
from pipeline.hum import recording_without_hum
from pipeline.messages import ReasonPart, channel_reason
from pipeline.types import ANALYSIS_RATE_HZ, Audio, AudioInfo
from pipeline.vad import voiced_intervals

log = logging.getLogger(__name__)

AudioSource: TypeAlias = str | os.PathLike[str] | bytes

SPEECH_BAND_HZ = (100.0, 4_000.0)  # band whose level decides "silent" (ignores DC, hum, hiss)
SILENCE_FRAME_S = 0.02  # frame length of the speech-band level, seconds
RAISE_PEAK = 0.9  # a quiet recording raised for analysis keeps its sample peaks under this
# A channel mean past this (0.5 % of full scale, -46 dBFS) is a recorder's offset and is
# removed: at 1 % the speech detector read the examples as speech from end to end, at 0.3 % it
# did not. Our simulated calls carry offsets of 0.1-0.25 % (pieces of clips with their own), and
# the fusion was fitted with them there: removing them moved its test rows (docs/architecture.md).
DC_OFFSET_MAX = 5e-3
FAKE_STEREO_DB = -40.0  # channels whose difference is this far below them are identical
MAX_BAD_PACKET_FRACTION = 0.1  # more failed packets than this (and more than one) = damaged
SAME_SPEECH_RATIO = 0.9  # speech totals within 10 % count as "about as much"
# Speech that picks the caller's channel must stand this far above the channel's own noise
# floor (``pipeline.vad.voiced_intervals``' above_noise_db): with the level gate alone a noisy
# line reads as voiced throughout, and the callee's channel won 40 % of the simulated calls v3.
# Chosen on the stereo dev calls: `python bench/caller_channel.py`, docs/evaluation_calls.md
# ("Which channel is the caller (stereo)").
CHANNEL_ABOVE_NOISE_DB: float | None = 10.0

# Leading bytes of containers FFmpeg decodes; a failure to open one of these is corruption.
SNIFF_BYTES = 16  # bytes of the head that :func:`sniff_audio_format` needs (every magic below)
# Format id -> (what messages call it, MIME type). The id is stable: the service stores it.
AUDIO_FORMATS: dict[str, tuple[str, str]] = {
    "wav": ("WAV", "audio/wav"),
    "aiff": ("AIFF", "audio/aiff"),
    "amr": ("AMR", "audio/amr"),
    "flac": ("FLAC", "audio/flac"),
    "ogg": ("Ogg", "audio/ogg"),
    "mp3": ("MP3", "audio/mpeg"),
    "aac": ("AAC (ADTS)", "audio/aac"),
    "mp4": ("MP4/M4A", "audio/mp4"),
    "webm": ("Matroska/WebM", "audio/webm"),
    "caf": ("CAF", "audio/x-caf"),
    "au": ("AU", "audio/basic"),
    "asf": ("ASF/WMA", "audio/x-ms-asf"),
}
# (offset, magic, format id): checked against the first bytes, never the name or content type.
_AUDIO_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"#!AMR", "amr"),  # "#!AMR\n" and "#!AMR-WB\n"
    (0, b"fLaC", "flac"),
    (0, b"OggS", "ogg"),
    (0, b"ID3", "mp3"),
    (4, b"ftyp", "mp4"),
    (0, b"\x1a\x45\xdf\xa3", "webm"),
    (0, b"caff", "caf"),
    (0, b".snd", "au"),
    (0, b"\x30\x26\xb2\x75", "asf"),
)
_NOT_AUDIO_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or Office document)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x7fELF", "an executable"),
)


def load_audio(
    src: AudioSource | BinaryIO,
    *,
    limits: AudioLimits,
    name: str | None = None,
    caller_channel: int | None = None,
) -> Audio:
    """Read, check, decode and resample one recording.

    Parameters
    ----------
    src : str, os.PathLike, bytes or binary file object
        The recording in any container/codec FFmpeg decodes (WAV incl. G.711, FLAC, MP3,
        M4A/AAC, Ogg Vorbis/Opus, WebM/Opus, AMR-NB, AMR-WB, ...). A file object is read from
        its current position, at most ``limits.max_bytes + 1`` bytes.
    limits : AudioLimits
        Size, duration, channel, sample-rate and silence limits.
    name : str, optional
        Name for messages and :class:`AudioInfo` (default: the file name of a path, the
        ``name`` of a file object, else ``"<bytes>"``).
    caller_channel : int, optional
        Force the caller's channel of a stereo recording; None decides from speech activity.
        Ignored (and said so in ``caller_channel_reason``) for mono and fake-stereo input.

    Returns
    -------
    Audio
        ``samples`` [shape=(channels, n)], float32 in [-1, 1] at 16 kHz; ``channels`` is 1 for
        mono and fake stereo. ``info`` describes the original (sha256 of the bytes as given,
        container, codec, sample rate in Hz, channel count, decoded duration in s).

    Raises
    ------
    EmptyAudioError
        0 bytes or every channel silent; :class:`AudioTooShortError` (a subclass, its own code)
        when shorter than ``min_duration_s``.
    AudioTooLargeError
        More than ``max_bytes`` bytes.
    NotAudioError
        Not a recognised audio format, or no audio stream.
    CorruptAudioError
        A recognised container that cannot be opened, no decodable audio, too many damaged
        packets, or NaN/inf samples.
    AudioTooLongError
        Longer than ``max_duration_s`` (by the header, or by what decoded).
    UnsupportedAudioError
        More than ``max_channels`` channels, or a sample rate outside the limits.
    OSError
        A path that cannot be read (missing file, permissions).
    ValueError
        A negative ``caller_channel``.
    """
    if caller_channel is not None and caller_channel < 0:
        raise ValueError(f"caller_channel must be >= 0, got {caller_channel}")
    data, label = _read_bytes(src, limits=limits, name=name)
    sha256 = hashlib.sha256(data).hexdigest()
    kind = _sniff(data, label)
    samples, meta = _decode(data, label=label, kind=kind, limits=limits)
    duration_s = samples.shape[1] / ANALYSIS_RATE_HZ
    if duration_s < limits.min_duration_s:
        raise AudioTooShortError(
            f"{label}: too short to analyse: {duration_s:.2f} s, "
            f"need at least {limits.min_duration_s:g} s"
        )
    if not np.all(np.isfinite(samples)):
        raise CorruptAudioError(f"{label}: decoded samples contain NaN or infinite values")
    np.clip(samples, -1.0, 1.0, out=samples)
    levels = [loudest_speech_band_dbfs(ch) for ch in samples]
    silent = [level < limits.silence_rms_dbfs for level in levels]
    if all(silent):
        loudest = f"loudest {max(levels):.1f} dBFS" if max(levels) > -math.inf else "all zeros"
        raise EmptyAudioError(
            f"{label}: silent: the speech band (100-4000 Hz) never rises above "
            f"{limits.silence_rms_dbfs:g} dBFS ({loudest})"
        )
    samples, gain_db = raise_quiet(samples, loudest_dbfs=max(levels), limits=limits)
    samples = without_offset(samples, label)  # after raising, which raises an offset too
    samples, hum_hz = recording_without_hum(samples)
    samples, index, parts = _pick_caller(samples, silent=silent, forced=caller_channel)
    reason, reason_zh = channel_reason(*parts)
    info = AudioInfo(
        name=label,
        sha256=sha256,
        size_bytes=len(data),
        container=meta.container,
        codec=meta.codec,
        sample_rate_hz=meta.sample_rate_hz,
        channels=meta.channels,
        duration_s=duration_s,
        caller_channel=index,
        caller_channel_reason=reason,
        caller_channel_reason_zh=reason_zh,
        gain_db=gain_db,
        hum_hz=hum_hz,
    )
    log.info(
        "decoded %s sha256=%s %s/%s %d Hz x%d %.1f s; %s%s%s",
        label, sha256[:12], info.container, info.codec, info.sample_rate_hz, info.channels,
        duration_s, reason, f"; very quiet, raised {gain_db:g} dB" if gain_db else "",
        f"; {hum_hz:g} Hz mains hum removed" if hum_hz else "",
    )  # fmt: skip
    return Audio(info=info, samples=np.ascontiguousarray(samples, dtype=np.float32))


def without_offset(samples: np.ndarray, label: str = "") -> np.ndarray:
    """``samples`` with each channel's mean removed where it passes :data:`DC_OFFSET_MAX`;
    channels within it are returned bit for bit (their digital silence stays exact zeros).

    An offset is no sound (the training channel removes it, ``pipeline.telephone``), but frame
    levels count it: at 1 % of full scale the speech detector read a whole recording as speech
    (every frame within its range of the loudest), so every timing cue went.
    """
    means = samples.mean(axis=1, dtype=np.float64)
    offset = np.abs(means) > DC_OFFSET_MAX
    if not offset.any():
        return samples
    log.info("%s: removed a constant offset of %s", label, np.round(means, 4).tolist())
    out = samples.copy()
    out[offset] -= means[offset, None].astype(out.dtype)
    return out


def raise_quiet(
    samples: np.ndarray, *, loudest_dbfs: float, limits: AudioLimits
) -> tuple[np.ndarray, float]:
    """A very quiet recording raised for analysis, and by how many dB (0.0: left as it is).

    When the loudest speech-band frame of every channel (``loudest_dbfs``, from
    :func:`loudest_speech_band_dbfs`) stays under ``limits.quiet_dbfs``, all channels are raised
    by one gain (their balance kept) so that frame reaches ``limits.raise_to_dbfs``, but no
    sample past :data:`RAISE_PEAK` (a click may leave less room). Exact zeros stay zeros.
    """
    if not loudest_dbfs < limits.quiet_dbfs:
        return samples, 0.0
    peak = float(np.max(np.abs(samples)))
    room_db = 20.0 * math.log10(RAISE_PEAK / peak) if peak > 0.0 else 0.0
    gain_db = math.floor(10.0 * min(limits.raise_to_dbfs - loudest_dbfs, room_db)) / 10.0
    if gain_db <= 0.0:
        return samples, 0.0
    return samples * np.float32(10.0 ** (gain_db / 20.0)), gain_db


def loudest_speech_band_dbfs(samples: np.ndarray) -> float:
    """Level of the loudest 20 ms frame within :data:`SPEECH_BAND_HZ`.

    Parameters
    ----------
    samples : np.ndarray [shape=(n,)], float32 at 16 kHz

    Returns
    -------
    float
        RMS in dBFS of the loudest frame's 100-4000 Hz content (full-scale sine = -3 dBFS);
        -inf for digital silence or fewer samples than one frame.
    """
    hop = int(round(SILENCE_FRAME_S * ANALYSIS_RATE_HZ))
    n_frames = samples.size // hop
    lo = int(math.ceil(SPEECH_BAND_HZ[0] * hop / ANALYSIS_RATE_HZ))
    hi = int(math.floor(SPEECH_BAND_HZ[1] * hop / ANALYSIS_RATE_HZ))
    loudest = 0.0
    chunk = 500  # frames per FFT batch (10 s) bounds memory on 30-minute calls
    for start in range(0, n_frames, chunk):
        stop = min(start + chunk, n_frames)
        frames = samples[start * hop : stop * hop].reshape(stop - start, hop)
        spectrum = np.abs(np.fft.rfft(frames.astype(np.float64), axis=1)[:, lo : hi + 1]) ** 2
        # Parseval: one-sided bins count twice; mean square = energy / hop.
        mean_square = 2.0 * spectrum.sum(axis=1) / hop**2
        loudest = max(loudest, float(mean_square.max()))
    return 10.0 * math.log10(loudest) if loudest > 0.0 else -math.inf


def choose_caller_channel(
    samples: np.ndarray, *, silent: list[bool] | None = None
) -> tuple[int, list[ReasonPart]]:
    """Pick the caller's channel of a multi-channel call from its speech activity.

    The channel with the most speech (``pipeline.vad.voiced_intervals``) is the caller: the
    called party often speaks first ("hello?") but the pitch is long. When the totals are
    within 10 % of each other, the channel that speaks first wins. A silent channel is never
    the caller while another is not.

    Parameters
    ----------
    samples : np.ndarray [shape=(channels, n)], float32 at 16 kHz
    silent : list of bool, optional
        Per channel, already judged silent; default: none are.

    Returns
    -------
    index : int
    reason : list of (code, params)
        Pieces of :data:`pipeline.messages.CHANNEL_REASONS` (``channel_reason`` renders them),
        e.g. "channel 1 speaks first (0.4 s) and most (31.0 s of 40.0 s)".
    """
    n_ch = samples.shape[0]
    silent = silent if silent is not None else [False] * n_ch
    total_s = samples.shape[1] / ANALYSIS_RATE_HZ
    live = [i for i in range(n_ch) if not silent[i]]
    if len(live) == 1:
        quiet = ", ".join(str(i) for i in range(n_ch) if silent[i])
        return live[0], [("others_silent", {"quiet": quiet, "c": live[0]})]
    spans = {i: voiced_intervals(samples[i], above_noise_db=CHANNEL_ABOVE_NOISE_DB) for i in live}
    speech = {i: sum(b - a for a, b in spans[i]) for i in live}
    first = {i: spans[i][0][0] if spans[i] else math.inf for i in live}
    if all(s == 0.0 for s in speech.values()):
        return live[0], [("no_speech", {"c": live[0]})]
    most = max(live, key=lambda i: speech[i])
    earliest = min(live, key=lambda i: first[i])
    runner_up = max((speech[i] for i in live if i != most), default=0.0)
    if most == earliest:
        facts = {"c": most, "first_s": first[most], "speech_s": speech[most], "total_s": total_s}
        return most, [("first_and_most", facts)]
    if runner_up >= SAME_SPEECH_RATIO * speech[most]:
        facts = {"c": earliest, "first_s": first[earliest], "speech_s": speech[earliest],
                 "other_s": speech[most], "total_s": total_s}  # fmt: skip
        return earliest, [("first_same", facts)]
    facts = {"c": most, "e": earliest, "first_s": first[earliest], "speech_s": speech[most],
             "total_s": total_s}  # fmt: skip
    return most, [("most_not_first", facts)]


def _pick_caller(
    samples: np.ndarray, *, silent: list[bool], forced: int | None
) -> tuple[np.ndarray, int, list[ReasonPart]]:
    n_ch = samples.shape[0]
    if n_ch == 1:
        note: list[ReasonPart] = (
            [("ignored", {"forced": forced})] if forced not in (None, 0) else []
        )
        return samples, 0, [("mono", {}), *note]
    if _is_fake_stereo(samples):
        fake: list[ReasonPart] = [("ignored", {"forced": forced})] if forced is not None else []
        return samples[:1], 0, [("fake_stereo", {"n": n_ch}), *fake]
    if forced is not None:
        if forced >= n_ch:
            index, reason = choose_caller_channel(samples, silent=silent)
            return samples, index, [*reason, ("ignored_channels", {"forced": forced, "n": n_ch})]
        quiet: list[ReasonPart] = [("forced_silent", {})] if silent[forced] else []
        return samples, forced, [("forced", {"c": forced}), *quiet]
    index, reason = choose_caller_channel(samples, silent=silent)
    return samples, index, reason


def _is_fake_stereo(samples: np.ndarray) -> bool:
    ref = samples[0].astype(np.float64)
    ref_rms = math.sqrt(float(np.mean(ref**2)))
    for ch in samples[1:]:
        diff_rms = math.sqrt(float(np.mean((ch - ref) ** 2)))
        level_rms = max(ref_rms, math.sqrt(float(np.mean(ch.astype(np.float64) ** 2))))
        if diff_rms > level_rms * 10 ** (FAKE_STEREO_DB / 20):
            return False
    return True


def _read_bytes(
    src: AudioSource | BinaryIO, *, limits: AudioLimits, name: str | None
) -> tuple[bytes, str]:
    """Return the original bytes and a display name, refusing empty and oversized input."""
    cap = limits.max_bytes
    is_stream = False
    if isinstance(src, bytes | bytearray | memoryview):
        label = _printable(name or "<bytes>")
        data = bytes(src)
    elif isinstance(src, str | os.PathLike):
        path = Path(src)
        label = _printable(name or path.name)
        size = path.stat().st_size
        if size > cap:
            raise AudioTooLargeError(f"{label}: too large: {size:,} bytes, allowed {cap:,} bytes")
        with path.open("rb") as fh:
            data = fh.read(cap + 1)  # the file may have grown since stat()
    else:
        raw_name = getattr(src, "name", None)
        label = _printable(
            name or (Path(raw_name).name if isinstance(raw_name, str) else "<stream>")
        )
        read = src.read(cap + 1)  # never more: an upload may be endless
        if not isinstance(read, bytes | bytearray):
            raise TypeError(f"{label}: expected a binary file object, read {type(read).__name__}")
        data, is_stream = bytes(read), True
    if not data:
        raise EmptyAudioError(f"{label}: empty file (0 bytes)")
    if len(data) > cap:
        amount = f"more than {cap:,}" if is_stream else f"{len(data):,}"
        raise AudioTooLargeError(f"{label}: too large: {amount} bytes, allowed {cap:,} bytes")
    return data, label


def _printable(label: str) -> str:
    clean = "".join(c if c.isprintable() else "?" for c in label)
    return clean[:200] or "<unnamed>"


def sniff_audio_format(head: bytes) -> str | None:
    """Container of a recording from its first bytes (a key of :data:`AUDIO_FORMATS`), or None.

    The one audio sniffer: ``load_audio`` and the service's upload check both use it.

    Parameters
    ----------
    head : bytes
        At least :data:`SNIFF_BYTES` bytes from the start of the file (fewer for tiny files).
    """
    if head[:4] in (b"RIFF", b"RF64", b"BW64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"RIFF" and head[8:12] == b"RF64":
        return "wav"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    for offset, magic, fmt in _AUDIO_MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return fmt
    # MPEG audio frame sync (11 set bits): layer bits 00 is ADTS AAC, anything else MP3 (no tag).
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "mp3" if head[1] & 0x06 else "aac"
    return None


def _sniff(data: bytes, label: str) -> str | None:
    """Name the audio container the magic bytes claim, None if unknown; refuse obvious non-audio."""
    for magic, what in _NOT_AUDIO_MAGIC:
        if data.startswith(magic):
            raise NotAudioError(f"{label}: not audio: the content is {what}")
    fmt = sniff_audio_format(data[:SNIFF_BYTES])
    if fmt is not None:
        return AUDIO_FORMATS[fmt][0]
    if _looks_like_text(data[:4096]):
        # Also keeps text-based demuxers (HLS playlists, ffconcat, SDP) that open other files away
        # from FFmpeg.
        raise NotAudioError(f"{label}: not audio: the content is text")
    return None


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    for cut in range(4):  # a multi-byte character may straddle the end of the window
        try:
            text = head[: len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        printable = sum(c.isprintable() or c in "\t\r\n\f" for c in text)
        return printable >= 0.95 * max(len(text), 1)
    return False


@dataclass(slots=True)
class _Meta:
    """What the header (then the first decoded frame) says about the original."""

    container: str
    codec: str
    sample_rate_hz: int
    channels: int


def _decode(
    data: bytes, *, label: str, kind: str | None, limits: AudioLimits
) -> tuple[np.ndarray, _Meta]:
    """Open, probe the header, decode and resample to (channels, n) float32 at 16 kHz."""
    try:
        container = av.open(io.BytesIO(data), mode="r", metadata_errors="replace")
    except av.error.FFmpegError as exc:
        if kind is not None:
            raise CorruptAudioError(
                f"{label}: looks like {kind} but its header cannot be read: {exc.strerror}"
            ) from exc
        raise NotAudioError(f"{label}: not a recognised audio format ({exc.strerror})") from exc
    with container:
        if not container.streams.audio:
            found = ", ".join(f"{s.type}" for s in container.streams) or "nothing"
            raise NotAudioError(
                f"{label}: no audio stream in this {container.format.name} file (found: {found})"
            )
        stream = container.streams.audio[0]
        ctx = stream.codec_context
        if ctx is None:
            raise UnsupportedAudioError(f"{label}: no decoder for this audio codec")
        meta = _Meta(container.format.name, ctx.codec.canonical_name, ctx.sample_rate, ctx.channels)
        _check_header(container, stream, label=label, meta=meta, limits=limits)
        samples = _decode_stream(container, stream, label=label, meta=meta, limits=limits)
    return samples, meta


def _check_header(
    container: av.container.InputContainer,
    stream: av.audio.stream.AudioStream,
    *,
    label: str,
    meta: _Meta,
    limits: AudioLimits,
) -> None:
    # Rate and channels first: a duration computed from an absurd rate is meaningless too.
    if meta.sample_rate_hz:
        _check_rate(meta.sample_rate_hz, label=label, limits=limits)
    if meta.channels:
        _check_channels(meta.channels, label=label, limits=limits)
    if stream.duration is not None and stream.time_base is not None:
        header_s: float | None = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        header_s = container.duration / av.time_base
    else:
        header_s = None
    if header_s is not None and header_s > limits.max_duration_s:
        raise AudioTooLongError(
            f"{label}: too long: the header says {header_s:.1f} s, "
            f"allowed {limits.max_duration_s:g} s"
        )


def _check_channels(channels: int, *, label: str, limits: AudioLimits) -> None:
    if channels > limits.max_channels:
        raise UnsupportedAudioError(
            f"{label}: {channels} channels, at most {limits.max_channels} supported"
        )


def _check_rate(rate_hz: int, *, label: str, limits: AudioLimits) -> None:
    if not limits.min_sample_rate_hz <= rate_hz <= limits.max_sample_rate_hz:
        raise UnsupportedAudioError(
            f"{label}: sample rate {rate_hz:,} Hz is outside the supported "
            f"{limits.min_sample_rate_hz:,}-{limits.max_sample_rate_hz:,} Hz"
        )


def _decode_stream(
    container: av.container.InputContainer,
    stream: av.audio.stream.AudioStream,
    *,
    label: str,
    meta: _Meta,
    limits: AudioLimits,
) -> np.ndarray:
    max_samples = int(math.ceil(limits.max_duration_s * ANALYSIS_RATE_HZ))
    chunks: list[np.ndarray] = []
    n_out = 0
    resampler: av.AudioResampler | None = None
    setup: tuple[str, str, int] | None = None
    first_error: av.error.FFmpegError | None = None
    n_packets = n_bad = 0

    def keep(frames: list[av.AudioFrame]) -> None:
        nonlocal n_out
        for out in frames:
            arr = out.to_ndarray()
            chunks.append(arr)
            n_out += arr.shape[1]

    packets = container.demux(stream)
    while n_out <= max_samples:
        try:
            packet = next(packets)
        except StopIteration:
            break
        except av.error.FFmpegError as exc:  # the container ends mid-packet: keep what decoded
            log.warning("%s: stream ends early (%s); keeping what decoded", label, exc.strerror)
            first_error = first_error or exc
            break
        n_packets += 1
        try:
            frames = packet.decode()
        except av.error.FFmpegError as exc:
            n_bad += 1
            first_error = first_error or exc
            continue
        for frame in frames:
            this = (frame.format.name, frame.layout.name, frame.sample_rate)
            if this != setup:
                if setup is None:
                    meta.sample_rate_hz, meta.channels = frame.sample_rate, frame.layout.nb_channels
                elif frame.layout.nb_channels != meta.channels:
                    raise CorruptAudioError(
                        f"{label}: channel count changes mid-stream "
                        f"({meta.channels} -> {frame.layout.nb_channels})"
                    )
                _check_channels(frame.layout.nb_channels, label=label, limits=limits)
                _check_rate(frame.sample_rate, label=label, limits=limits)
                if resampler is not None:
                    keep(resampler.resample(None))
                resampler = av.AudioResampler(format="fltp", rate=ANALYSIS_RATE_HZ)
                setup = this
            if resampler is not None:  # always: it is set together with `setup`
                keep(resampler.resample(frame))
    if resampler is not None and n_out <= max_samples:
        keep(resampler.resample(None))
    if n_out > max_samples:
        raise AudioTooLongError(
            f"{label}: too long: more than {n_out / ANALYSIS_RATE_HZ:.1f} s decoded, "
            f"allowed {limits.max_duration_s:g} s"
        )
    if n_out == 0:
        detail = f": {first_error.strerror}" if first_error is not None else ""
        raise CorruptAudioError(
            f"{label}: no audio could be decoded from this {meta.container} file{detail}"
        ) from first_error
    if n_bad > 1 and n_bad > MAX_BAD_PACKET_FRACTION * n_packets:
        first = first_error.strerror if first_error is not None else "?"
        raise CorruptAudioError(
            f"{label}: damaged stream: {n_bad} of {n_packets} packets failed to decode "
            f"(first: {first})"
        ) from first_error
    if n_bad:
        log.warning("%s: %d of %d packets failed to decode; skipped", label, n_bad, n_packets)
    return np.concatenate(chunks, axis=1).astype(np.float32, copy=False)
