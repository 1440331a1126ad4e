"""Per-layer Whisper encoder statistics of the synthetic-voice head's windows (issue 12: which
encoder layer holds on unseen recording sources; ``docs/unseen_sources.md``, ``--layers``).

The head's ``whisper`` block is the mean and std over a window's frames of the *last* encoder
layer (CTranslate2 int8). This module takes, in one encoder forward per window, the mean and
std of every layer's output: the conv stem (``stem``: the two GELU convolutions, before the
positional embedding is added) and the six residual blocks (``layer1``..``layer6``; the last
through the encoder's final layer norm, as CTranslate2 returns it, so ``layer6`` is the
``whisper`` block up to int8 noise). The network is the shipped CTranslate2 weights converted
to openai-whisper (``models/whisper_convert.py``), run in float32 by our own loop over its
modules (openai-whisper's ``AudioEncoder.forward`` insists on 3000 mel frames).

The audio and frames are exactly the head's:

- ``telephone``: the seeded training crop through its seeded channel
  (``synth_data.telephone_windows``), log-mel by faster-whisper's extractor with no padding and
  an even frame count, encoded alone, the positional embedding sliced to its length (what
  CTranslate2 does for ``Ct2FrameEncoder.frames``);
- ``inference``: the ``call_channel`` copy, its Silero VAD speech joined and cut into 30 s
  windows padded to 3000 mel frames (``models.asr.encode_windows``), each window's frames cut
  out by :class:`models.asr.SpeechFrames` on the head's cached call-path windows.

Cached per row and path under ``$ROBOCALL_CACHE_DIR/synth_features/whisper_layers/``, keyed by
the row, its clip's sha256, the head's seed salt, :data:`FEATURE_VERSION` and the converted
checkpoint; the windows are stored beside the values, so an interrupted run resumes and a row
is reused only for the same windows.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.training.corpus import CorpusRow, read_clip, resolve_path
from models.training.ge2e_features import with_blocks
from models.training.synth_config import TrainConfig
from models.training.synth_data import (
    CACHE_VARIANT,
    ClipFeatures,
    features_cache_dir,
    telephone_windows,
)
from pipeline.errors import EmptyAudioError
from pipeline.files import atomic_path
from pipeline.telephone import call_channel

log = logging.getLogger(__name__)

FEATURE_VERSION = 1  # bump when what the blocks hold changes: it keys the cache
LAYERS = ("stem", "layer1", "layer2", "layer3", "layer4", "layer5", "layer6")
D_MODEL = 512  # Whisper base
LAYER_WIDTH = 2 * D_MODEL  # mean then std of each layer's frames
BLOCK_WIDTHS = dict.fromkeys(LAYERS, LAYER_WIDTH)  # in the order they are appended


@dataclass(frozen=True, slots=True)
class LayerEncoder:
    """The converted Whisper encoder (openai-whisper ``AudioEncoder``, float32, eval mode) and
    faster-whisper's log-mel extractor, returning every layer's frames."""

    encoder: Any  # whisper.model.AudioEncoder
    extractor: Any  # faster_whisper.feature_extractor.FeatureExtractor
    checkpoint: str  # sha256 of the CTranslate2 model.bin it was converted from

    def layer_frames(self, mel: np.ndarray, *, depth: int | None = None) -> np.ndarray:
        """Every layer's output for log-mel ``mel`` (80, n), n even: shape (7, n / 2, 512).
        ``depth``: run the stem and the first ``depth`` blocks only (shape (depth + 1, ...));
        the final layer norm follows the last block only."""
        import torch
        import torch.nn.functional as F

        enc = self.encoder
        blocks = enc.blocks[: len(enc.blocks) if depth is None else depth]
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(mel, dtype=np.float32))[None]
            x = F.gelu(enc.conv2(F.gelu(enc.conv1(x)))).permute(0, 2, 1)
            outs = [x]
            x = x + enc.positional_embedding[: x.shape[1]]
            for block in blocks:
                x = block(x)
                outs.append(x)
            if len(blocks) == len(enc.blocks):
                outs[-1] = enc.ln_post(x)
            return torch.cat(outs).numpy()

    def window_layers(self, samples: np.ndarray) -> np.ndarray:
        """A window encoded alone, as ``Ct2FrameEncoder.frames``: shape (7, frames, 512)."""
        x = np.ascontiguousarray(samples, dtype=np.float32)
        mel = self.extractor(x, padding=0)
        n = max(mel.shape[-1] // 2 * 2, 2)
        return self.layer_frames(mel[:, :n])

    def padded_windows(self, speech: np.ndarray) -> list[np.ndarray]:
        """The log-mel of consecutive 30 s windows of ``speech``, each padded to 3000 frames, cut
        as :func:`models.asr.encode_windows` cuts them (the last feature frame dropped)."""
        from faster_whisper.audio import pad_or_trim

        features = self.extractor(speech)
        content = features.shape[-1] - 1
        step = self.extractor.nb_max_frames
        return [pad_or_trim(features[:, s : min(s + step, content)])
                for s in range(0, max(content, 1), step)]  # fmt: skip

    def speech_layers(self, samples: np.ndarray) -> tuple[np.ndarray, Any] | None:
        """The call path's pass (:func:`models.asr.encode_speech` with no window choice): every
        layer's frames of the VAD speech in 30 s windows padded to 3000 mel frames, shape
        (7, frames, 512), and the :class:`models.asr.SpeechFrames` of the last layer (its
        ``chunks`` place any layer's frames); None when the VAD finds no speech."""
        from models.asr import FRAME_SAMPLES, SpeechFrames, vad_speech

        speech, chunks = vad_speech(np.ascontiguousarray(samples, dtype=np.float32))
        if not chunks:
            return None
        outputs = [self.layer_frames(mel) for mel in self.padded_windows(speech)]
        n = -(-speech.size // FRAME_SAMPLES)  # frames beyond the speech encode padding
        frames = np.concatenate(outputs, axis=1)[:, :n]
        return frames, SpeechFrames(np.ascontiguousarray(frames[-1]), chunks)


def load_layer_encoder() -> LayerEncoder:
    """The shipped Whisper base weights as a float32 torch encoder (converted once and cached by
    ``models.loading``), on CPU."""
    from faster_whisper.feature_extractor import FeatureExtractor

    from models.asr import OpenAIWhisperTranscriber
    from models.loading import load_transcriber
    from pipeline.config import AsrConfig

    asr = load_transcriber(AsrConfig(backend="openai", device="cpu", word_timestamps=False))
    if not isinstance(asr, OpenAIWhisperTranscriber):  # pragma: no cover - config above
        raise TypeError("expected the openai-whisper backend")
    return LayerEncoder(asr.model.encoder, FeatureExtractor(), asr.model_info.sha256)


def frame_stats(frames: np.ndarray) -> np.ndarray:
    """Mean then std over frames of each layer: (layers, frames, d) -> (layers * 2 * d,)."""
    f = np.asarray(frames, dtype=np.float64)
    return np.concatenate([np.concatenate([m.mean(axis=0), m.std(axis=0)]) for m in f])


def cache_path(
    row: CorpusRow, *, clip_sha: str, path: str, cfg: TrainConfig, checkpoint: str
) -> Path:
    """Where a row's layer statistics on ``path`` ("telephone" or "inference") are cached."""
    key = hashlib.sha1(
        f"{row.id}|{clip_sha}|{path}|{cfg.salt}|{FEATURE_VERSION}|{checkpoint}".encode()
    ).hexdigest()
    return features_cache_dir() / "whisper_layers" / CACHE_VARIANT[path] / key[:2] / f"{key}.npz"


def row_layers(
    row: CorpusRow, *, path: str, windows: np.ndarray, cfg: TrainConfig, encoder: LayerEncoder
) -> np.ndarray:
    """Every layer's statistics of each of the row's head ``windows`` (k, 2) on ``path``:
    shape (k, 7 * 1024), float32, computed as the head's cache made its ``whisper`` block,
    then cached.

    Raises
    ------
    ValueError
        The telephone crop drawn now is not ``windows`` (another salt or channel code), or a
        call-path window holds no speech frame.
    """
    clip = resolve_path(row)
    clip_sha = hashlib.sha256(clip.read_bytes()).hexdigest()
    file = cache_path(row, clip_sha=clip_sha, path=path, cfg=cfg, checkpoint=encoder.checkpoint)
    if file.is_file():
        with np.load(file) as data:
            cached = np.asarray(data["windows"], dtype=np.float64)
            if cached.shape == windows.shape and np.allclose(cached, windows):
                return np.asarray(data["x"], dtype=np.float32)
    samples = read_clip(clip)
    if path == "telephone":
        crops = telephone_windows(samples, row, cfg)
        drawn = np.asarray([w for w, _ in crops], dtype=np.float64).reshape(-1, 2)
        if drawn.shape != windows.shape or not np.allclose(drawn, windows):
            raise ValueError(f"{row.id}: telephone crop {drawn.tolist()} is not the cached one")
        stats = [frame_stats(encoder.window_layers(x)) for _, x in crops]
    else:
        try:
            encoded = encoder.speech_layers(call_channel(samples))
        except EmptyAudioError:
            encoded = None
        if encoded is None:
            raise ValueError(f"{row.id}: no speech on the call path")
        frames, timeline = encoded
        stats = []
        for a, b in windows:
            picked = _frame_indices(timeline, float(a), float(b))
            if picked.size == 0:
                raise ValueError(f"{row.id}: no frame in window {a:.2f}-{b:.2f} s")
            stats.append(frame_stats(frames[:, picked]))
    x = np.stack(stats).astype(np.float32)
    file.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(file, suffix=".tmp.npz") as tmp:  # np.savez appends ".npz"
        np.savez(tmp, windows=windows, x=x)
    return x


def _frame_indices(timeline: Any, start_s: float, end_s: float) -> np.ndarray:
    """The indices of the frames :meth:`SpeechFrames.between` returns for a window."""
    index = np.arange(timeline.frames.shape[0], dtype=np.float64)[:, None]
    picked = type(timeline)(index, timeline.chunks).between(start_s, end_s)[:, 0]
    return np.asarray(picked, dtype=np.int64)


def with_layers(
    feats: dict[str, ClipFeatures],
    rows: Sequence[CorpusRow],
    *,
    path: str,
    cfg: TrainConfig,
    encoder: LayerEncoder,
    progress: bool = False,
) -> dict[str, ClipFeatures]:
    """``feats`` (a row id's head features on ``path``) with the :data:`LAYERS` blocks appended
    to every window, in :data:`BLOCK_WIDTHS` order; ``rows`` must hold every row of ``feats``."""
    return with_blocks(
        feats, rows,
        lambda row, windows: row_layers(row, path=path, windows=windows, cfg=cfg, encoder=encoder),
        label=f"layers {path}", progress=progress,
    )  # fmt: skip
