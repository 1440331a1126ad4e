"""pipeline.audio: every bad input raises the right error; every format decodes to 16 kHz."""

from __future__ import annotations

import hashlib
import io
import struct
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from pipeline.audio import (
    DC_OFFSET_MAX,
    RAISE_PEAK,
    load_audio,
    loudest_speech_band_dbfs,
    sniff_audio_format,
)
from pipeline.config import AudioLimits
from pipeline.errors import (
    AudioTooLargeError,
    AudioTooLongError,
    CorruptAudioError,
    EmptyAudioError,
    NotAudioError,
    UnsupportedAudioError,
)
from pipeline.types import ANALYSIS_RATE_HZ
from tests.conftest import ENCODINGS, KINDS, encode

LIMITS = AudioLimits()
MakeWav = Callable[..., Path]
Synth = Callable[..., np.ndarray]


def _flac_claiming(samples: np.ndarray, *, total_samples: int) -> bytes:
    """FLAC bytes whose STREAMINFO claims ``total_samples`` (a lying header)."""
    buf = io.BytesIO()
    sf.write(buf, samples, ANALYSIS_RATE_HZ, format="FLAC")
    data = bytearray(buf.getvalue())
    off = 8 + 13  # "fLaC" + block header + 13 bytes into STREAMINFO: 4 high bits of the count
    data[off] = (data[off] & 0xF0) | ((total_samples >> 32) & 0x0F)
    data[off + 1 : off + 5] = struct.pack(">I", total_samples & 0xFFFFFFFF)
    return bytes(data)


# --- bad inputs, cheapest check first ----------------------------------------------------------


def test_zero_bytes(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(EmptyAudioError, match=r"empty\.wav: empty file \(0 bytes\)"):
        load_audio(path, limits=LIMITS)


@pytest.mark.parametrize("source", ["path", "bytes", "file"])
def test_too_large(make_wav: MakeWav, source: str) -> None:
    path = make_wav(duration_s=1.0)
    limits = AudioLimits(max_bytes=1_000)
    fh = io.BytesIO(path.read_bytes())
    src = {"path": path, "bytes": path.read_bytes(), "file": fh}[source]
    with pytest.raises(AudioTooLargeError, match=r"too large.*allowed 1,000 bytes"):
        load_audio(src, limits=limits)
    if source == "file":
        assert fh.tell() == limits.max_bytes + 1  # never read the whole upload


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"hello, this is not a recording\n" * 10, "the content is text"),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "the content is a PNG image"),
        (bytes(np.random.default_rng(0).integers(0, 256, 4_000, dtype=np.uint8)), "recognised"),
    ],
    ids=["text", "png", "random-bytes"],
)
def test_not_audio_renamed_wav(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "call.wav"
    path.write_bytes(content)
    with pytest.raises(NotAudioError, match=match):
        load_audio(path, limits=LIMITS)


def test_no_audio_stream() -> None:
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="matroska") as out:
        stream = out.add_stream("ffv1", rate=1)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
        frame = frame.reformat(format="yuv420p")
        frame.pts = 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with pytest.raises(NotAudioError, match="no audio stream.*found: video"):
        load_audio(buf.getvalue(), limits=LIMITS, name="video.mkv")


def test_wav_cut_inside_header_is_corrupt(make_wav: MakeWav) -> None:
    # "RIFF....WAVE" is there, so it is a WAV file whose header is damaged: corrupt, not "not
    # audio". The decoder's error is chained and quoted.
    data = make_wav().read_bytes()[:30]
    with pytest.raises(CorruptAudioError, match="looks like WAV but its header") as exc:
        load_audio(data, limits=LIMITS, name="cut.wav")
    assert isinstance(exc.value.__cause__, av.error.FFmpegError)
    assert exc.value.__cause__.strerror in exc.value.message


def test_wav_cut_before_its_magic_is_not_audio(make_wav: MakeWav) -> None:
    data = make_wav().read_bytes()[:10]  # "RIFF" + size + "WA": nothing says it is audio
    with pytest.raises(NotAudioError, match="not a recognised audio format"):
        load_audio(data, limits=LIMITS, name="cut.wav")


def test_wav_header_without_data_is_corrupt(make_wav: MakeWav) -> None:
    data = make_wav().read_bytes()[:44]
    with pytest.raises(CorruptAudioError, match="no audio could be decoded"):
        load_audio(data, limits=LIMITS, name="header_only.wav")


@pytest.mark.parametrize("fmt", ["wav", "mp3"])
def test_cut_mid_data_keeps_what_decodes(synth: Synth, fmt: str) -> None:
    data = encode(synth("human", duration_s=2.0), sr=16_000, fmt=fmt)
    audio = load_audio(data[: len(data) // 2 + 1], limits=LIMITS, name=f"cut.{fmt}")
    assert audio.info.duration_s == pytest.approx(1.0, abs=0.15)
    assert audio.samples.shape == (1, round(audio.info.duration_s * ANALYSIS_RATE_HZ))


def test_m4a_without_moov_is_corrupt(synth: Synth) -> None:
    data = encode(synth("robot"), sr=16_000, fmt="m4a")
    with pytest.raises(CorruptAudioError, match="looks like MP4/M4A"):
        load_audio(data[: len(data) // 2], limits=LIMITS, name="cut.m4a")


def test_too_long_by_header() -> None:
    limits = AudioLimits(max_duration_s=1.0)
    samples = np.zeros(2 * ANALYSIS_RATE_HZ, dtype=np.float32)
    buf = io.BytesIO()
    sf.write(buf, samples, ANALYSIS_RATE_HZ, format="WAV")
    with pytest.raises(AudioTooLongError, match=r"header says 2\.0 s, allowed 1 s"):
        load_audio(buf.getvalue(), limits=limits, name="two_s.wav")


def test_three_hour_header_refused_before_decoding(synth: Synth) -> None:
    data = _flac_claiming(synth("sine", duration_s=1.0), total_samples=3 * 3600 * 16_000)
    with pytest.raises(AudioTooLongError, match=r"header says 10800\.0 s, allowed 1800 s"):
        load_audio(data, limits=LIMITS, name="three_hours.flac")


def test_too_long_when_header_understates(synth: Synth) -> None:
    data = _flac_claiming(synth("sine", duration_s=2.0), total_samples=8_000)  # claims 0.5 s
    with pytest.raises(AudioTooLongError, match=r"more than 1\.\d s decoded, allowed 1 s"):
        load_audio(data, limits=AudioLimits(max_duration_s=1.0), name="liar.flac")


def test_more_channels_than_allowed(make_wav: MakeWav) -> None:
    path = make_wav(kind=("sine", "noise", "chirp"))
    with pytest.raises(UnsupportedAudioError, match="3 channels, at most 2"):
        load_audio(path, limits=LIMITS)


@pytest.mark.parametrize("rate_hz", [1, 2_000_000])
def test_absurd_sample_rate_in_header(make_wav: MakeWav, rate_hz: int) -> None:
    data = bytearray(make_wav().read_bytes())
    assert data[:4] == b"RIFF" and data[12:16] == b"fmt "
    data[24:28] = struct.pack("<I", rate_hz)  # nSamplesPerSec
    data[28:32] = struct.pack("<I", rate_hz * 2)  # nAvgBytesPerSec, mono 16-bit
    with pytest.raises(UnsupportedAudioError, match=f"sample rate {rate_hz:,} Hz is outside"):
        load_audio(bytes(data), limits=LIMITS, name="absurd.wav")


def test_too_short(make_wav: MakeWav) -> None:
    with pytest.raises(EmptyAudioError, match=r"too short.*0\.10 s, need at least 0\.3 s"):
        load_audio(make_wav(duration_s=0.1), limits=LIMITS)


def test_non_finite_samples(tmp_path: Path, synth: Synth) -> None:
    samples = synth("sine")
    samples[100], samples[200] = np.nan, np.inf
    path = tmp_path / "nan.wav"
    sf.write(path, samples, 16_000, subtype="FLOAT")
    with pytest.raises(CorruptAudioError, match="NaN or infinite"):
        load_audio(path, limits=LIMITS)


@pytest.mark.parametrize(
    "signal",
    [
        np.zeros(32_000),  # digital silence
        np.full(32_000, 0.1),  # DC offset only: nothing in the speech band
        np.random.default_rng(1).normal(0, 10 ** (-90 / 20), 32_000),  # -90 dBFS hiss
    ],
    ids=["digital", "dc-offset", "hiss-90dBFS"],
)
def test_silence_only(tmp_path: Path, signal: np.ndarray) -> None:
    path = tmp_path / "silence.wav"
    sf.write(path, np.stack([signal, signal[::-1]], axis=1), 16_000, subtype="FLOAT")
    with pytest.raises(EmptyAudioError, match="silent"):
        load_audio(path, limits=LIMITS)


# --- good inputs ------------------------------------------------------------------------------


def _scaled_wav(tmp_path: Path, samples: np.ndarray, gain_db: float) -> Path:
    path = tmp_path / f"scaled{gain_db:g}.wav"
    sf.write(path, samples * 10 ** (gain_db / 20), ANALYSIS_RATE_HZ, subtype="PCM_16")
    return path


def test_a_very_quiet_recording_is_raised_and_says_by_how_much(
    tmp_path: Path, synth: Synth
) -> None:
    speech = synth("human", duration_s=4.0)
    plain = load_audio(_scaled_wav(tmp_path, speech, 0.0), limits=LIMITS)
    assert plain.info.gain_db == 0.0  # a recording at an ordinary level is left as it is
    quiet = load_audio(_scaled_wav(tmp_path, speech, -45.0), limits=LIMITS)
    loudest = loudest_speech_band_dbfs(quiet.caller())
    assert quiet.info.gain_db > 20.0
    assert loudest == pytest.approx(LIMITS.raise_to_dbfs, abs=0.2)
    # one gain for the whole recording: the raised samples are the recorded ones, louder
    np.testing.assert_allclose(
        quiet.caller() / 10 ** (quiet.info.gain_db / 20), plain.caller() * 10 ** (-45 / 20),
        atol=2e-4,
    )  # fmt: skip


def test_raising_keeps_zeros_the_channel_balance_and_room_under_full_scale(
    tmp_path: Path, synth: Synth
) -> None:
    speech = 10 ** (-40 / 20) * synth("human", duration_s=4.0)
    speech[: ANALYSIS_RATE_HZ // 2] = 0.0  # digital silence stays digital silence
    stereo = np.stack([speech, 0.5 * speech], axis=1)
    audio = load_audio(_scaled_wav(tmp_path, stereo, 0.0), limits=LIMITS)
    assert audio.info.gain_db > 0.0
    assert np.all(audio.samples[:, : ANALYSIS_RATE_HZ // 2] == 0.0)
    loud = np.abs(audio.samples[0]) > 0.05  # well above the 16-bit steps of the file
    np.testing.assert_allclose(audio.samples[1][loud] / audio.samples[0][loud], 0.5, atol=0.05)
    clicked = speech.copy()
    clicked[ANALYSIS_RATE_HZ] = 0.1  # one click leaves 19 dB of room, not the 40 wanted
    audio = load_audio(_scaled_wav(tmp_path, clicked, 0.0), limits=LIMITS)
    assert audio.info.gain_db == pytest.approx(20 * np.log10(RAISE_PEAK / 0.1), abs=0.1)
    assert np.abs(audio.samples).max() <= RAISE_PEAK + 1e-3


def test_a_recorder_s_constant_offset_is_removed_and_the_speech_found_as_without_it(
    tmp_path: Path, synth: Synth
) -> None:
    from pipeline.vad import voiced_intervals

    speech = np.concatenate([np.zeros(ANALYSIS_RATE_HZ), synth("human", duration_s=3.0),
                             np.zeros(ANALYSIS_RATE_HZ)])  # fmt: skip
    plain = load_audio(_scaled_wav(tmp_path, speech, 0.0), limits=LIMITS)
    shifted = load_audio(_scaled_wav(tmp_path, speech + 0.01, -0.001), limits=LIMITS)
    assert abs(float(shifted.caller().mean())) < 1e-4
    heard = voiced_intervals(plain.caller())
    found = voiced_intervals(shifted.caller())
    assert np.array(found) == pytest.approx(np.array(heard), abs=0.05)
    assert heard[0][0] > 0.9 and heard[-1][1] < 4.1  # the silence either side is not speech
    # what is removed is the mean and nothing else
    expected, _ = sf.read(tmp_path / "scaled-0.001.wav", dtype="float32")
    np.testing.assert_allclose(shifted.caller(), expected - expected.mean(), atol=1e-7)
    # an offset under DC_OFFSET_MAX is left alone, sample for sample
    small = load_audio(_scaled_wav(tmp_path, speech + DC_OFFSET_MAX / 2, 0.0), limits=LIMITS)
    expected, _ = sf.read(tmp_path / "scaled0.wav", dtype="float32")
    np.testing.assert_array_equal(small.caller(), expected)
    # ...unless raising a quiet recording lifts it past DC_OFFSET_MAX
    quiet = load_audio(_scaled_wav(tmp_path, speech + 0.01, -40.0), limits=LIMITS)
    assert quiet.info.gain_db > 0.0 and abs(float(quiet.caller().mean())) < 1e-4


def test_raising_can_be_configured_and_checked(tmp_path: Path, synth: Synth) -> None:
    path = _scaled_wav(tmp_path, synth("human", duration_s=4.0), -45.0)
    off = AudioLimits(quiet_dbfs=LIMITS.silence_rms_dbfs)  # raise nothing that is not silent
    assert load_audio(path, limits=off).info.gain_db == 0.0
    with pytest.raises(ValueError, match="raise_to_dbfs"):
        AudioLimits(quiet_dbfs=-30.0, raise_to_dbfs=-40.0)


def test_path_bytes_and_file_object_agree(make_wav: MakeWav) -> None:
    path = make_wav(kind="human", sr=8_000)
    raw = path.read_bytes()
    from_path = load_audio(path, limits=LIMITS)
    from_bytes = load_audio(raw, limits=LIMITS)
    with path.open("rb") as fh:
        from_file = load_audio(fh, limits=LIMITS)
    named = load_audio(raw, limits=LIMITS, name="upload.wav")
    assert from_path.info.sha256 == hashlib.sha256(raw).hexdigest()
    for other in (from_bytes, from_file, named):
        np.testing.assert_array_equal(other.samples, from_path.samples)
        assert other.info.sha256 == from_path.info.sha256
        assert other.info.size_bytes == len(raw)
    assert (from_path.info.name, from_file.info.name) == (path.name, path.name)
    assert (from_bytes.info.name, named.info.name) == ("<bytes>", "upload.wav")


def test_8khz_becomes_16khz(make_wav: MakeWav) -> None:
    audio = load_audio(make_wav(kind="sine", sr=8_000, duration_s=1.5), limits=LIMITS)
    assert audio.samples.dtype == np.float32
    assert audio.samples.shape == (1, 24_000)
    assert audio.sample_rate_hz == ANALYSIS_RATE_HZ
    assert (audio.info.sample_rate_hz, audio.info.channels) == (8_000, 1)
    assert audio.info.duration_s == pytest.approx(1.5)
    spectrum = np.abs(np.fft.rfft(audio.samples[0]))
    assert np.argmax(spectrum) * ANALYSIS_RATE_HZ / audio.samples.shape[1] == pytest.approx(
        440, abs=2
    )
    assert float(np.abs(audio.samples).max()) <= 1.0


@pytest.mark.parametrize("sr", [8_000, 16_000])
@pytest.mark.parametrize("fmt", sorted(ENCODINGS))
def test_every_format_decodes_to_the_right_duration(
    synth: Synth, encode_audio: Callable[..., Path], fmt: str, sr: int
) -> None:
    enc = ENCODINGS[fmt]
    path = encode_audio(synth("human", sr=sr, duration_s=2.0), sr=sr, fmt=fmt)
    audio = load_audio(path, limits=LIMITS)
    # codec priming/padding: AAC adds up to 1024+ samples, AMR 20 ms frames
    assert audio.info.duration_s == pytest.approx(2.0, abs=0.1)
    assert audio.samples.shape[1] == round(audio.info.duration_s * ANALYSIS_RATE_HZ)
    assert (audio.info.container, audio.info.codec) == (enc.demuxer, enc.decoder)
    expected_rate = 48_000 if enc.codec == "libopus" else enc.rate_hz or sr
    assert audio.info.sample_rate_hz == expected_rate
    assert audio.n_channels == 1  # mono, or (Vorbis) duplicated into fake stereo
    assert np.all(np.isfinite(audio.samples))


@pytest.mark.parametrize("sr", [8_000, 16_000])
@pytest.mark.parametrize("kind", KINDS)
def test_every_synthetic_kind_loads(make_wav: MakeWav, kind: str, sr: int) -> None:
    path = make_wav(kind=kind, sr=sr, duration_s=1.0)
    if kind == "silence":
        with pytest.raises(EmptyAudioError, match="silent"):
            load_audio(path, limits=LIMITS)
        return
    audio = load_audio(path, limits=LIMITS)
    assert audio.samples.shape == (1, ANALYSIS_RATE_HZ)
    assert float(np.abs(audio.samples).max()) <= 1.0


def test_amr_wb_fixture(amr_wb_path: Path) -> None:
    audio = load_audio(amr_wb_path, limits=LIMITS)
    assert (audio.info.container, audio.info.codec) == ("amr", "amr_wb")
    assert (audio.info.sample_rate_hz, audio.info.channels) == (16_000, 1)
    assert audio.info.duration_s == pytest.approx(1.5, abs=0.05)
    spectrum = np.abs(np.fft.rfft(audio.samples[0, 4_000:20_000]))
    assert np.argmax(spectrum) * ANALYSIS_RATE_HZ / 16_000 == pytest.approx(150, abs=2)


# --- stereo: which channel is the caller ------------------------------------------------------


def _gated(signal: np.ndarray, *spans_s: tuple[float, float]) -> np.ndarray:
    out = np.zeros_like(signal)
    for start, end in spans_s:
        a, b = int(start * ANALYSIS_RATE_HZ), int(end * ANALYSIS_RATE_HZ)
        out[a:b] = signal[a:b]
    return out


def _stereo_wav(tmp_path: Path, left: np.ndarray, right: np.ndarray) -> Path:
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), ANALYSIS_RATE_HZ)
    return path


def test_caller_speaks_first_and_most(tmp_path: Path, synth: Synth) -> None:
    robot, human = synth("robot", duration_s=8.0), synth("human", duration_s=8.0)
    path = _stereo_wav(tmp_path, _gated(human, (3.0, 3.6)), _gated(robot, (0.4, 7.6)))
    audio = load_audio(path, limits=LIMITS)
    assert audio.info.caller_channel == 1
    assert audio.info.caller_channel_reason.startswith("channel 1 speaks first (0.4 s) and most")
    assert audio.info.caller_channel_reason_zh.startswith("第 1 声道最先开口（0.4 秒）且说话最多")
    assert audio.n_channels == 2
    np.testing.assert_array_equal(audio.caller(), audio.samples[1])


def test_caller_speaks_most_even_after_callee_says_hello(tmp_path: Path, synth: Synth) -> None:
    robot, human = synth("robot", duration_s=8.0), synth("human", duration_s=8.0)
    callee = _gated(human, (0.2, 0.7), (5.0, 5.4))
    path = _stereo_wav(tmp_path, callee, _gated(robot, (1.0, 7.6)))
    audio = load_audio(path, limits=LIMITS)
    assert audio.info.caller_channel == 1
    assert "channel 1 speaks most" in audio.info.caller_channel_reason
    assert "channel 0 speaks first" in audio.info.caller_channel_reason


def test_a_noisy_callee_line_does_not_read_as_speech_throughout(
    tmp_path: Path, synth: Synth
) -> None:
    # Noise 20 dB under the callee's speech passes the level gate alone (30 dB under the loud
    # frames), so the callee's channel read as voiced for the whole call and won; the channel
    # choice also asks for speech above the channel's own noise floor.
    robot, human = synth("robot", duration_s=12.0), synth("human", duration_s=12.0)
    noise = np.random.default_rng(0).normal(size=human.size).astype(np.float32)
    noise *= 0.1 * float(np.sqrt(np.mean(human**2)) / np.sqrt(np.mean(noise**2)))
    callee = _gated(human, (0.2, 0.8), (6.0, 7.0)) + noise
    path = _stereo_wav(tmp_path, callee, _gated(robot, (1.0, 5.5), (7.5, 11.5)))
    audio = load_audio(path, limits=LIMITS)
    assert audio.info.caller_channel == 1
    assert "channel 1 speaks most" in audio.info.caller_channel_reason


def test_forced_caller_channel_is_respected(tmp_path: Path, synth: Synth) -> None:
    robot, human = synth("robot", duration_s=4.0), synth("human", duration_s=4.0)
    path = _stereo_wav(tmp_path, _gated(human, (2.0, 2.5)), _gated(robot, (0.3, 3.8)))
    audio = load_audio(path, limits=LIMITS, caller_channel=0)
    assert audio.info.caller_channel == 0
    assert audio.info.caller_channel_reason == "channel 0 set by caller_channel"


def test_silent_channel_makes_the_other_the_caller(make_wav: MakeWav) -> None:
    audio = load_audio(make_wav(kind=("silence", "human")), limits=LIMITS)
    assert audio.info.caller_channel == 1
    assert audio.info.caller_channel_reason == "channel 0 is silent; channel 1 is the caller"


def test_fake_stereo_is_mono(make_wav: MakeWav) -> None:
    audio = load_audio(make_wav(kind="human", channels=2), limits=LIMITS, caller_channel=1)
    assert audio.n_channels == 1
    assert audio.other_party() is None
    assert audio.info.channels == 2  # what the file was
    assert audio.info.caller_channel == 0
    assert "identical (fake stereo): treated as mono" in audio.info.caller_channel_reason


def test_forced_channel_on_mono_is_ignored(make_wav: MakeWav) -> None:
    audio = load_audio(make_wav(kind="robot"), limits=LIMITS, caller_channel=1)
    assert audio.info.caller_channel == 0
    assert audio.info.caller_channel_reason == "mono recording (caller_channel=1 ignored)"


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "wav"),
        (b"#!AMR\n\x00", "amr"),
        (b"#!AMR-WB\n", "amr"),
        (b"fLaC\x00", "flac"),
        (b"OggS\x00", "ogg"),
        (b"ID3\x04", "mp3"),
        (b"\xff\xfb\x90d", "mp3"),
        (b"\x00\x00\x00\x20ftypM4A ", "mp4"),
        (b"\x1a\x45\xdf\xa3", "webm"),
        (b"FORM\x00\x00\x00\x00AIFF", "aiff"),
        (b"RF64\xff\xff\xff\xffWAVEds64", "wav"),
        (b"\xff\xf1\x50\x80", "aac"),
        (b".snd\x00\x00\x00\x18", "au"),
        (b"hello world", None),
        (b"", None),
        (b"RIFF\x00\x00\x00\x00AVI ", None),
        (b"\xff\xd8\xff\xe0JFIF", None),
    ],
)
def test_sniffing_uses_content_only(head: bytes, fmt: str | None) -> None:
    assert sniff_audio_format(head) == fmt
