"""Per-layer Whisper statistics of the head's windows: shapes, determinism, the telephone and
call paths and their cache on a small random encoder, and layer 6 of the real base weights
against the CTranslate2 frames the head's ``whisper`` block is made of."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.training.corpus import CorpusRow, read_clip, resolve_path, write_clip
from models.training.synth_config import TrainConfig
from models.training.synth_data import ClipFeatures, telephone_windows
from tests.models.support import corpus_row

torch = pytest.importorskip("torch")
whisper_model = pytest.importorskip("whisper.model")
feature_extractor = pytest.importorskip("faster_whisper.feature_extractor")

from models.training.layer_features import (  # noqa: E402  (after the skips)
    LayerEncoder,
    frame_stats,
    row_layers,
    with_layers,
)

SR = 16_000
N_LAYERS = 6
WIDTH = 16  # the small encoder's d_model


def voice_like(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Harmonics of a gliding 120-220 Hz pitch in 0.3 s bursts, with faint noise."""
    t = np.arange(int(seconds * SR)) / SR
    f0 = 170 + 50 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 12))
    bursts = (np.sin(2 * np.pi * t / 0.6) > -0.3).astype(np.float64)
    return (0.2 * x * bursts + rng.normal(0, 1e-3, t.size)).astype(np.float32)


@pytest.fixture(scope="module")
def small() -> LayerEncoder:
    torch.manual_seed(0)
    enc = whisper_model.AudioEncoder(n_mels=80, n_ctx=1500, n_state=WIDTH, n_head=2,
                                     n_layer=N_LAYERS).eval()  # fmt: skip
    return LayerEncoder(enc, feature_extractor.FeatureExtractor(), "0" * 64)


def test_frame_stats_are_each_layer_s_mean_then_std() -> None:
    frames = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)
    got = frame_stats(frames)
    want = [frames[0].mean(0), frames[0].std(0), frames[1].mean(0), frames[1].std(0)]
    np.testing.assert_allclose(got, np.concatenate(want))


def test_window_layers_shapes_and_determinism(
    small: LayerEncoder, rng: np.random.Generator
) -> None:
    x = voice_like(2.0, rng)
    first = small.window_layers(x)
    assert first.shape == (N_LAYERS + 1, 100, WIDTH)  # 200 mel frames, stride 2
    np.testing.assert_array_equal(first, small.window_layers(x))
    padded = small.layer_frames(np.zeros((80, 3000), dtype=np.float32))
    assert padded.shape == (N_LAYERS + 1, 1500, WIDTH)
    # the last layer goes through ln_post: the encoder's own forward on 30 s gives it
    mel = feature_extractor.FeatureExtractor()(x)[:, :3000]
    mel = np.pad(mel, ((0, 0), (0, 3000 - mel.shape[1])))
    with torch.inference_mode():
        full = small.encoder(torch.from_numpy(mel)[None]).numpy()[0]
    np.testing.assert_allclose(small.layer_frames(mel)[-1], full, atol=1e-5)
    shallow = small.layer_frames(mel, depth=2)  # the stem and two blocks, as a head would run
    np.testing.assert_allclose(shallow, small.layer_frames(mel)[:3], atol=1e-6)


def test_speech_layers_encode_the_joined_speech_in_padded_30_s_windows(
    small: LayerEncoder, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    import models.asr

    x = voice_like(40.0, rng)
    chunks = ((1_600, 320_000), (400_000, 600_000))
    joined = np.concatenate([x[a:b] for a, b in chunks])
    monkeypatch.setattr(models.asr, "vad_speech", lambda audio: (joined, chunks))
    frames, timeline = small.speech_layers(x)
    n = -(-joined.size // 320)
    assert frames.shape == (N_LAYERS + 1, n, WIDTH) and timeline.frames.shape == (n, WIDTH)
    mel = small.extractor(joined)
    first = small.layer_frames(mel[:, :3000])
    np.testing.assert_allclose(frames[:, :1500], first, atol=1e-5)
    np.testing.assert_array_equal(timeline.frames, frames[-1])


@pytest.fixture
def clip_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rng: np.random.Generator
) -> CorpusRow:
    monkeypatch.setenv("ROBOCALL_CACHE_DIR", str(tmp_path / "cache"))
    row = corpus_row("a", root="cache", path="layers/a.flac", duration_s=10.0)
    write_clip(resolve_path(row), voice_like(10.0, rng), sample_rate_hz=SR)
    return row


def test_row_layers_recompute_the_telephone_crop_and_cache_it(
    small: LayerEncoder, clip_row: CorpusRow, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = TrainConfig()
    crops = telephone_windows(read_clip(resolve_path(clip_row)), clip_row, cfg)
    windows = np.asarray([w for w, _ in crops])
    x = row_layers(clip_row, path="telephone", windows=windows, cfg=cfg, encoder=small)
    assert x.shape == (1, (N_LAYERS + 1) * 2 * WIDTH) and x.dtype == np.float32
    np.testing.assert_allclose(x[0], frame_stats(small.window_layers(crops[0][1])), rtol=1e-5)
    monkeypatch.setattr(LayerEncoder, "window_layers", lambda *a: pytest.fail("not cached"))
    again = row_layers(clip_row, path="telephone", windows=windows, cfg=cfg, encoder=small)
    np.testing.assert_array_equal(again, x)
    with pytest.raises(ValueError, match="not the cached one"):
        row_layers(clip_row, path="telephone", windows=windows + 0.5, cfg=cfg, encoder=small)


def test_with_layers_on_the_call_path_cuts_windows_as_speech_frames_do(
    small: LayerEncoder, clip_row: CorpusRow, monkeypatch: pytest.MonkeyPatch
) -> None:
    import models.asr
    from pipeline.telephone import call_channel

    y = call_channel(read_clip(resolve_path(clip_row)))
    chunks = ((8_000, 70_000), (90_000, 150_000))
    joined = np.concatenate([y[a:b] for a, b in chunks])
    monkeypatch.setattr(models.asr, "vad_speech", lambda audio: (joined, chunks))
    cfg = TrainConfig()
    windows = np.asarray([[0.0, 3.0], [3.5, 9.0]])
    head = {clip_row.id: ClipFeatures(clip_row.id, windows, np.ones((2, 3)))}
    got = with_layers(head, [clip_row], path="inference", cfg=cfg, encoder=small)[clip_row.id]
    assert got.x.shape == (2, 3 + (N_LAYERS + 1) * 2 * WIDTH)
    np.testing.assert_array_equal(got.x[:, :3], 1.0)
    frames, timeline = small.speech_layers(y)
    last = timeline.between(3.5, 9.0)  # the head's whisper block of the second window
    want = np.concatenate([last.mean(axis=0), last.std(axis=0)])
    np.testing.assert_allclose(got.x[1, -2 * WIDTH :], want, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="no frame"):
        row_layers(clip_row, path="inference", windows=np.asarray([[9.5, 9.9]]), cfg=cfg,
                   encoder=small)  # fmt: skip


@pytest.mark.slow
def test_layer_6_of_the_base_weights_is_the_ct2_int8_whisper_block(
    rng: np.random.Generator,
) -> None:
    from models.loading import load_synth_encoder
    from models.synth_head import whisper_embedding
    from models.training.layer_features import LAYER_WIDTH, load_layer_encoder

    torch.set_num_threads(1)
    x = voice_like(3.0, rng)
    layers = load_layer_encoder()
    got = frame_stats(layers.window_layers(x))
    assert got.shape == (7 * LAYER_WIDTH,)
    ct2 = whisper_embedding(x, encoder=load_synth_encoder()).astype(np.float64)
    last = got[6 * LAYER_WIDTH :]
    # int8 weights against float32: measured cosine >= 0.9998 on corpus windows
    assert np.dot(last, ct2) / np.linalg.norm(last) / np.linalg.norm(ct2) > 0.999
    assert np.abs(last - ct2).max() < 0.05 * np.abs(ct2).max()
    first = got[LAYER_WIDTH : 2 * LAYER_WIDTH]  # layer 1 is no copy of layer 6
    assert np.dot(first, ct2) / np.linalg.norm(first) / np.linalg.norm(ct2) < 0.99
