"""GE2E speaker-embedding features of the synthetic-voice head's windows, measured leave one
source out before any head reads them (issue 12: "TTS voices may be unnaturally stable across a
call"; ``docs/voice_generalisation.md`` section 5).

Two blocks per head window, computed on the very audio the head's other blocks see (the
telephone path's seeded crop through its seeded codec and noise, or a call-path window of the
``call_channel`` copy):

- ``ge2e`` (256 values): the normalised mean of the unit GE2E embeddings of the window's
  one-second sub-windows every 0.5 s over speech (the mono diarizer's embedder and window,
  :func:`models.diarize.window_embeddings`; :data:`SUB_WINDOWS`);
- ``ge2e_spread`` (2 values): how stable the voice is inside the window: the mean cosine
  distance of the sub-window embeddings from that mean, and the mean cosine distance between
  sub-windows one second apart (no overlap). A window too short for two sub-windows gets 0.

Cached per row and path under ``$ROBOCALL_CACHE_DIR/synth_features/ge2e/``, keyed by the row,
its clip's sha256, the head's seed salt, :data:`FEATURE_VERSION` and the GE2E checkpoint, with
the windows stored beside the values so a row is only reused for the same windows.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.diarize import DiarizerConfig, speech_frames, window_embeddings, window_starts
from models.synth_head import cut, speech_windows
from models.training.corpus import CorpusRow, read_clip, resolve_path
from models.training.synth_config import TrainConfig
from models.training.synth_data import (
    CACHE_VARIANT,
    ClipFeatures,
    features_cache_dir,
    telephone_windows,
)
from pipeline.behaviour import speech_intervals
from pipeline.errors import EmptyAudioError
from pipeline.files import atomic_path
from pipeline.telephone import call_channel
from pipeline.types import ANALYSIS_RATE_HZ
from pipeline.vad import FRAME_S

log = logging.getLogger(__name__)

FEATURE_VERSION = 1  # bump when what the blocks hold changes: it keys the cache
GE2E_DIM = 256
SPREAD_DIM = 2
BLOCK_WIDTHS = {"ge2e": GE2E_DIM, "ge2e_spread": SPREAD_DIM}  # in the order they are appended
SUB_WINDOWS = DiarizerConfig(window_s=1.0, hop_s=0.5)  # the diarizer's window, half its density


def window_stats(samples: np.ndarray, *, encoder: Any) -> np.ndarray:
    """Both blocks of one channel-processed window: shape (258,), float64.

    Parameters
    ----------
    samples : np.ndarray [shape=(n,)], float at 16 kHz, after the telephone or call channel
    encoder : the GE2E encoder (:func:`models.ge2e.load_ge2e`)

    Returns
    -------
    np.ndarray: the unit mean embedding (256), then the mean cosine distance of the
    sub-windows from it and the mean cosine distance of sub-windows one second apart.
    """
    x = np.asarray(samples, dtype=np.float32)
    speech = speech_frames(speech_intervals(x), int(x.size / ANALYSIS_RATE_HZ / FRAME_S))
    starts = window_starts(speech, config=SUB_WINDOWS)
    if starts.size == 0:  # under a second of speech: one sub-window over the start
        starts = np.zeros(1)
    emb = window_embeddings(x, starts_s=starts, config=SUB_WINDOWS, encoder=encoder)
    emb = emb.astype(np.float64)
    centre = emb.mean(axis=0)
    centre /= max(float(np.linalg.norm(centre)), 1e-12)
    spread = float(np.mean(1.0 - emb @ centre))
    gap = np.isclose(starts[None, :] - starts[:, None], SUB_WINDOWS.window_s)
    first, second = np.nonzero(gap)
    drift = float(np.mean(1.0 - np.sum(emb[first] * emb[second], axis=1))) if first.size else 0.0
    return np.concatenate([centre, [spread, drift]])


def cache_path(
    row: CorpusRow, *, clip_sha: str, path: str, cfg: TrainConfig, checkpoint: str
) -> Path:
    """Where a row's blocks on ``path`` ("telephone", "inference", or "inference-own": the
    call path's own speech windows) are cached."""
    key = hashlib.sha1(
        f"{row.id}|{clip_sha}|{path}|{cfg.salt}|{FEATURE_VERSION}|{checkpoint}".encode()
    ).hexdigest()
    folder = CACHE_VARIANT[path.removesuffix("-own")]
    return features_cache_dir() / "ge2e" / folder / key[:2] / f"{key}.npz"


def row_stats(
    row: CorpusRow, *, path: str, windows: np.ndarray | None, cfg: TrainConfig, encoder: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Both blocks of each of a row's head windows on ``path`` ("telephone" or "inference"):
    ``(windows (k, 2) s, values (k, 258))``, recomputed as the head's cache made them (the
    seeded telephone crop, or ``cut`` of the ``call_channel`` copy), then cached.

    ``windows``: those of the row's cached head features; None takes the path's own (the
    telephone crop; the call path's :func:`models.synth_head.speech_windows`, which the head's
    cache narrows to those where the ASR's VAD heard speech). No window: shape (0, 2), (0, 258).

    Raises
    ------
    ValueError
        The telephone crop drawn now is not the cached one (another salt or channel code).
    """
    clip = resolve_path(row)
    clip_sha = hashlib.sha256(clip.read_bytes()).hexdigest()
    key_path = f"{path}-own" if windows is None and path == "inference" else path
    file = cache_path(
        row, clip_sha=clip_sha, path=key_path, cfg=cfg, checkpoint=encoder.sha256[:16]
    )
    if file.is_file():
        with np.load(file) as data:
            cached = np.asarray(data["windows"], dtype=np.float64)
            if windows is None or (cached.shape == windows.shape and np.allclose(cached, windows)):
                return cached, np.asarray(data["x"], dtype=np.float64)
    samples = read_clip(clip)
    try:
        if path == "telephone":
            crops = telephone_windows(samples, row, cfg)
            drawn = np.asarray([w for w, _ in crops], dtype=np.float64).reshape(-1, 2)
            if windows is not None and (drawn.shape != windows.shape
                                        or not np.allclose(drawn, windows)):  # fmt: skip
                raise ValueError(f"{row.id}: telephone crop {drawn.tolist()} is not the cached one")
            windows, pieces = drawn, [x for _, x in crops]
        else:
            y = call_channel(samples)
            if windows is None:
                windows = np.asarray(speech_windows(y), dtype=np.float64).reshape(-1, 2)
            pieces = [cut(y, (float(a), float(b))) for a, b in windows]
    except EmptyAudioError:
        windows, pieces = np.zeros((0, 2)), []
    x = np.stack([window_stats(p, encoder=encoder) for p in pieces]) if pieces else None
    x = x if x is not None else np.zeros((0, GE2E_DIM + SPREAD_DIM))
    file.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(file, suffix=".tmp.npz") as tmp:  # np.savez appends ".npz"
        np.savez(tmp, windows=windows, x=x)
    return windows, x


def ge2e_only(
    rows: Sequence[CorpusRow], *, path: str, cfg: TrainConfig, encoder: Any, progress: bool = False
) -> dict[str, ClipFeatures]:
    """Both blocks alone on each row's own windows of ``path`` (``row_stats`` with no head
    features: no Whisper encoder needed); rows without speech are left out."""
    out = {}
    started = time.monotonic()
    for i, r in enumerate(rows):
        windows, x = row_stats(r, path=path, windows=None, cfg=cfg, encoder=encoder)
        if len(windows):
            out[r.id] = ClipFeatures(r.id, windows, x)
        if progress and (i + 1) % 200 == 0:
            log.warning("ge2e alone, %s: %d/%d rows, %.0f s", path, i + 1, len(rows),
                        time.monotonic() - started)  # fmt: skip
    return out


def with_blocks(
    feats: dict[str, ClipFeatures],
    rows: Sequence[CorpusRow],
    block: Callable[[CorpusRow, np.ndarray], np.ndarray],
    *,
    label: str,
    progress: bool = False,
) -> dict[str, ClipFeatures]:
    """``feats`` with ``block(row, windows)`` (k, d) appended to each row's k windows (studies of
    extra feature blocks: GE2E here, Whisper layers in ``layer_features``); ``rows`` must hold
    every row of ``feats``."""
    by_id = {r.id: r for r in rows}
    out = {}
    started = time.monotonic()
    for i, (key, f) in enumerate(feats.items()):
        x = block(by_id[key], f.windows)
        out[key] = ClipFeatures(key, f.windows, np.concatenate([f.x, x], axis=1))
        if progress and (i + 1) % 200 == 0:
            log.warning("%s: %d/%d rows, %.0f s", label, i + 1, len(feats),
                        time.monotonic() - started)  # fmt: skip
    return out


def with_ge2e(
    feats: dict[str, ClipFeatures],
    rows: Sequence[CorpusRow],
    *,
    path: str,
    cfg: TrainConfig,
    encoder: Any,
    progress: bool = False,
) -> dict[str, ClipFeatures]:
    """``feats`` (a row id's head features on ``path``) with the ``ge2e`` and ``ge2e_spread``
    blocks appended to every window, in :data:`BLOCK_WIDTHS` order; ``rows`` must hold every
    row of ``feats``."""

    def block(row: CorpusRow, windows: np.ndarray) -> np.ndarray:
        return row_stats(row, path=path, windows=windows, cfg=cfg, encoder=encoder)[1]

    return with_blocks(feats, rows, block, label=f"ge2e {path}", progress=progress)
