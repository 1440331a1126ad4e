"""The telephone channel: output format, determinism, band, level, silence, codecs, validation."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import EmptyAudioError
from pipeline.telephone import (
    CHANNEL_RATE_HZ,
    CODECS,
    ChannelConfig,
    codec_round_trip,
    draw_channel_params,
    inference_channel,
    make_noise,
    telephone_channel,
    wideband_channel,
)

SR_OUT = 16_000


def voiced(sr: int, *, duration_s: float = 1.0, level: float = 0.3) -> np.ndarray:
    """A 150 Hz buzz with harmonics up to 7 kHz, amplitude-modulated at 4 Hz."""
    t = np.arange(int(duration_s * sr)) / sr
    top = int(min(7_000, sr / 2 - 100) // 150)
    x = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, top + 1))
    x = x * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))
    return (level * x / np.abs(x).max()).astype(np.float32)


def band_energy_fraction(y: np.ndarray, low_hz: float, high_hz: float) -> float:
    power = np.abs(np.fft.rfft(y)) ** 2
    freqs = np.fft.rfftfreq(y.size, 1 / SR_OUT)
    return float(power[(freqs >= low_hz) & (freqs < high_hz)].sum() / power.sum())


def active_level_dbfs(y: np.ndarray) -> float:
    frames = y[: y.size // 320 * 320].reshape(-1, 320).astype(np.float64)
    power = np.mean(frames**2, axis=1)
    return float(10 * np.log10(np.mean(power[power > power.max() / 1000])))


@pytest.mark.parametrize("sr", [8_000, 16_000, 22_050, 44_100])
def test_output_is_16k_float32_in_range(sr: int) -> None:
    y = telephone_channel(voiced(sr), sample_rate_hz=sr, rng=np.random.default_rng(0))
    assert y.dtype == np.float32 and y.ndim == 1
    assert np.all(np.abs(y) <= 1.0)
    assert y.size == pytest.approx(SR_OUT * 1.2, abs=SR_OUT * 0.1)  # 1 s speech + 2 pads


def test_same_seed_same_output_other_seed_differs() -> None:
    x = voiced(24_000)
    a = telephone_channel(x, sample_rate_hz=24_000, rng=np.random.default_rng(7))
    b = telephone_channel(x, sample_rate_hz=24_000, rng=np.random.default_rng(7))
    c = telephone_channel(x, sample_rate_hz=24_000, rng=np.random.default_rng(8))
    assert np.array_equal(a, b)
    assert a.shape != c.shape or not np.allclose(a, c)


def test_inference_channel_is_deterministic_and_matches_its_config() -> None:
    x = voiced(16_000)
    a = inference_channel(x)
    assert np.array_equal(a, inference_channel(x))
    assert active_level_dbfs(a) == pytest.approx(-26.0, abs=1.0)


def test_band_limited_to_the_telephone_band() -> None:
    rng = np.random.default_rng(1)
    x = (0.1 * rng.standard_normal(32_000)).astype(np.float32)  # white: energy everywhere
    y = inference_channel(x, sample_rate_hz=32_000)
    assert band_energy_fraction(y, 4_000, 8_000) < 1e-4  # nothing above the 8 kHz Nyquist
    assert band_energy_fraction(y, 0, 150) < 0.01
    assert band_energy_fraction(y, 300, 3_400) > 0.95


def test_a_wideband_line_keeps_50_to_7000_hz_at_the_same_level_and_noise_draws() -> None:
    rng = np.random.default_rng(2)
    x = (0.1 * rng.standard_normal(48_000)).astype(np.float32)  # white: energy everywhere
    quiet = ChannelConfig(noise_kinds=())
    params = draw_channel_params(np.random.default_rng(3), quiet)
    y = wideband_channel(x, sample_rate_hz=24_000, params=params)
    assert y.dtype == np.float32 and y.size == 32_000  # 2 s at 16 kHz
    assert band_energy_fraction(y, 4_000, 7_000) > 0.3  # what a narrowband line loses
    assert band_energy_fraction(y, 0, 30) < 0.01 and band_energy_fraction(y, 7_600, 8_000) < 0.01
    speech = voiced(16_000, level=0.01)
    assert active_level_dbfs(wideband_channel(speech, sample_rate_hz=16_000, params=params)) == (
        pytest.approx(-26.0, abs=1.5)
    )
    noisy = draw_channel_params(np.random.default_rng(3), ChannelConfig())
    a = wideband_channel(speech, sample_rate_hz=16_000, params=noisy)
    assert np.array_equal(a, wideband_channel(speech, sample_rate_hz=16_000, params=noisy))
    assert not np.array_equal(a, wideband_channel(speech, sample_rate_hz=16_000, params=params))


def test_babble_made_at_16k_talks_as_it_does_at_8k() -> None:
    # pitch, formants and syllable rate are in Hz and seconds, not in samples
    low = make_noise("babble", 8_000 * 4, rng=np.random.default_rng(0))
    high = make_noise("babble", 16_000 * 4, rng=np.random.default_rng(0), sample_rate_hz=16_000)
    assert band_energy_fraction(high, 4_000, 8_000) < 0.02
    centroid = []
    for x, rate in ((low, 8_000), (high, 16_000)):
        power = np.abs(np.fft.rfft(x)) ** 2
        freqs = np.fft.rfftfreq(x.size, 1 / rate)
        centroid.append(float((power * freqs).sum() / power.sum()))
    assert centroid[1] == pytest.approx(centroid[0], rel=0.1)


def test_level_is_normalised_whatever_the_input_level() -> None:
    levels = [
        active_level_dbfs(inference_channel(voiced(16_000, level=amp)))
        for amp in (0.003, 0.05, 0.9)
    ]
    assert max(levels) - min(levels) < 0.5
    assert levels[0] == pytest.approx(-26.0, abs=1.0)


def test_leading_and_trailing_silence_trimmed_to_the_pad() -> None:
    config = ChannelConfig(noise_kinds=(), pad_s=0.1)
    x = voiced(16_000)
    short = np.concatenate([np.zeros(800, np.float32), x])
    long = np.concatenate([np.zeros(32_000, np.float32), x, np.zeros(16_000, np.float32)])
    ys = [
        telephone_channel(s, sample_rate_hz=16_000, rng=np.random.default_rng(3), config=config)
        for s in (short, long)
    ]
    assert abs(ys[0].size - ys[1].size) <= 0.02 * SR_OUT  # same length within one frame
    for y in ys:
        onset = np.argmax(np.abs(y) > 0.01) / SR_OUT
        assert 0.05 <= onset <= 0.15


def test_crop_gives_a_fixed_length() -> None:
    config = ChannelConfig(crop_s=0.5)
    for i, seconds in enumerate((0.3, 1.0, 2.0)):
        x = voiced(16_000, duration_s=seconds)
        y = telephone_channel(x, sample_rate_hz=16_000, rng=np.random.default_rng(i), config=config)
        assert y.size == SR_OUT // 2


def test_integer_pcm_is_scaled_like_float() -> None:
    x = voiced(8_000)
    as_int16 = np.round(x * 32767).astype(np.int16)
    as_uint8 = np.round(x * 127 + 128).astype(np.uint8)
    ref = inference_channel(x, sample_rate_hz=8_000)
    for pcm in (as_int16, as_uint8):
        y = inference_channel(pcm, sample_rate_hz=8_000)
        assert y.shape == ref.shape
        assert np.corrcoef(y, ref)[0, 1] > 0.95


@pytest.mark.parametrize("codec", CODECS)
def test_codec_round_trip_keeps_length_and_speech(codec: str) -> None:
    x = voiced(CHANNEL_RATE_HZ).astype(np.float64)
    y = codec_round_trip(x, codec=codec, bitrate_bps=12_200)
    assert y.shape == x.shape
    level_in, level_out = (10 * np.log10(np.mean(v[800:] ** 2)) for v in (x, y))
    assert level_out == pytest.approx(level_in, abs=3.0)
    if codec in ("mulaw", "alaw"):  # waveform codecs: sample-exact up to quantisation
        assert np.corrcoef(x, y)[0, 1] > 0.999


def test_a_pyav_build_without_the_encoder_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import av

    def missing(name: str, mode: str) -> None:
        raise av.codec.codec.UnknownCodecError(name)

    monkeypatch.setattr(av.CodecContext, "create", missing)
    with pytest.raises(RuntimeError, match="without the libopencore_amrnb encoder.*constraints"):
        codec_round_trip(np.zeros(1600), codec="amr_nb")


def test_draws_cover_every_codec_and_noise_and_the_snr_range() -> None:
    config = ChannelConfig(snr_db_range=(15.0, 40.0))
    rng = np.random.default_rng(0)
    params = [draw_channel_params(rng, config) for _ in range(200)]
    assert {p.codec for p in params} == set(CODECS)
    assert {p.noise_kind for p in params} == {"white", "pink", "babble"}
    assert all(15.0 <= p.snr_db <= 40.0 for p in params)
    assert len({p.amr_bitrate_bps for p in params}) == 8


@pytest.mark.parametrize("kind", ["white", "pink", "babble"])
def test_noise_has_unit_rms(kind: str) -> None:
    noise = make_noise(kind, 8_000, rng=np.random.default_rng(0))
    assert np.sqrt(np.mean(noise**2)) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("codecs", ()),
        ("codecs", ("opus",)),
        ("amr_bitrates_bps", (8000,)),
        ("band_hz", (300.0, 3_950.0)),
        ("target_dbfs", 0.0),
        ("noise_kinds", ("brown",)),
        ("snr_db_range", (40.0, 15.0)),
        ("pad_s", -0.1),
        ("crop_s", 0.1),
    ],
)
def test_config_validation_names_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field.split("_")[0]):
        ChannelConfig(**{field: value})


def test_bad_inputs_raise() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(EmptyAudioError, match="no samples"):
        telephone_channel(np.zeros(0, np.float32), sample_rate_hz=16_000, rng=rng)
    with pytest.raises(EmptyAudioError, match="energy"):
        telephone_channel(np.zeros(16_000, np.float32), sample_rate_hz=16_000, rng=rng)
    with pytest.raises(ValueError, match="mono"):
        telephone_channel(np.zeros((2, 100), np.float32), sample_rate_hz=16_000, rng=rng)
    with pytest.raises(ValueError, match="finite"):
        telephone_channel(np.full(100, np.nan), sample_rate_hz=16_000, rng=rng)
    with pytest.raises(ValueError, match="sample_rate_hz"):
        telephone_channel(voiced(16_000), sample_rate_hz=1_000, rng=rng)
