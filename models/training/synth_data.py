"""Rows and cached features of the synthetic-voice head: the run's config, the rows it reads,
each clip's windows through the telephone or the call path, and the feature cache.

How the variants differ is in ``train_synth.py``'s docstring.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.synth_head import (
    AASIST_DIM,
    ClipEmbedder,
    FeatureSpec,
    FrameEncoder,
    aasist_input,
    call_window_features,
    speech_windows,
    window_features,
)
from models.training.corpus import (
    MANIFEST_DIR,
    CorpusRow,
    read_clip,
    read_manifest,
    resolve_path,
    sample_by_hash,
    seeded_rng,
)
from models.training.synth_config import TrainConfig
from pipeline.errors import EmptyAudioError
from pipeline.files import atomic_path
from pipeline.telephone import (
    ChannelConfig,
    apply_channel,
    call_channel,
    draw_channel_params,
    telephone_channel,
)
from pipeline.types import ANALYSIS_RATE_HZ

log = logging.getLogger(__name__)

REPO_DIR = Path(__file__).resolve().parents[2]
WEIGHTS_PATH = REPO_DIR / "models" / "weights" / "synth_head.npz"
VARIANTS = ("telephone", "inference")
MIN_CROP_S = 2.0  # shortest training window (when the clip is longer)
POOL_QUANTILES = (0.5, 0.75, 0.9, 1.0)  # candidates, chosen on the mixed-call dev split


def features_cache_dir() -> Path:
    base = os.environ.get("ROBOCALL_CACHE_DIR") or str(Path.home() / ".cache" / "robocall")
    return Path(base).expanduser() / "synth_features"


def manifest_dir(cfg: TrainConfig) -> Path:
    return Path(cfg.manifest_dir) if cfg.manifest_dir else MANIFEST_DIR


def manifest_sha256(cfg: TrainConfig) -> dict[str, str]:
    """sha256 of every manifest file the run read (the training data's identity)."""
    out = {}
    for name in (*cfg.manifests, cfg.mixed_manifest):
        path = manifest_dir(cfg) / f"{name}.jsonl"
        if path.is_file():
            out[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def group_of(row: CorpusRow) -> str:
    """Sampling group: engine family for robots, source for people."""
    return f"robot:{row.engine_family}" if row.label == "robot" else f"human:{row.source}"


def select_rows(cfg: TrainConfig) -> list[CorpusRow]:
    """The rows features are computed for: every dev/test row, train rows capped per group,
    and (for leave-one-out tests) up to ``max_eval_per_group`` robot rows per engine family."""
    paths = [manifest_dir(cfg) / f"{name}.jsonl" for name in cfg.manifests]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        log.warning("manifests not found, skipped: %s", ", ".join(missing))
    rows = [
        r
        for p in paths
        if p.is_file()
        for r in read_manifest(p)
        if r.language in cfg.languages and r.source != cfg.mixed_manifest
    ]
    if cfg.quick:
        return _quick(rows, cfg)
    by_group: dict[tuple[str, str], list[CorpusRow]] = {}
    for r in rows:
        by_group.setdefault((group_of(r), r.split), []).append(r)
    chosen: dict[str, CorpusRow] = {}
    for (_group, split), members in sorted(by_group.items()):
        keep = members if split != "train" else sample_by_hash(
            members, cfg.max_train_per_group, salt=cfg.salt
        )  # fmt: skip
        chosen.update((r.id, r) for r in keep)
    robots: dict[str, list[CorpusRow]] = {}
    for r in rows:
        if r.label == "robot":
            robots.setdefault(r.engine_family, []).append(r)
    for members in robots.values():
        chosen.update(
            (r.id, r) for r in sample_by_hash(members, cfg.max_eval_per_group, salt=cfg.salt)
        )
    return sorted(chosen.values(), key=lambda r: r.id)


def _quick(rows: Sequence[CorpusRow], cfg: TrainConfig) -> list[CorpusRow]:
    out: list[CorpusRow] = []
    for split in ("train", "dev", "test"):
        for label in ("human", "robot"):
            members = [r for r in rows if r.split == split and r.label == label]
            out += sample_by_hash(members, cfg.quick_rows, salt=cfg.salt)
    return sorted(out, key=lambda r: r.id)


def mixed_rows(cfg: TrainConfig, splits: Sequence[str] = ("dev", "test")) -> list[CorpusRow]:
    path = manifest_dir(cfg) / f"{cfg.mixed_manifest}.jsonl"
    if cfg.quick or not path.is_file():
        return []
    return [r for r in read_manifest(path) if r.split in splits and r.language in cfg.languages]


# ---------------------------------------------------------------------------------------------
# Features, cached


@dataclass(frozen=True, slots=True)
class ClipFeatures:
    """Per-window features of one row under one variant (arrays inside; never exported)."""

    row_id: str
    windows: np.ndarray  # (k, 2) start_s, end_s in the clip (telephone: the crop)
    x: np.ndarray  # (k, d) blocks of the spec concatenated in order


WINDOW_CHANNELS = ("own", "quiet", "redrawn")


def telephone_windows(
    samples: np.ndarray, row: CorpusRow, cfg: TrainConfig, *, channel: str = "own"
) -> list[tuple[tuple[float, float], np.ndarray]]:
    """The row's training window through its seeded telephone channel: ((start, end) s, x).

    ``channel`` (:data:`WINDOW_CHANNELS`), for copies of the row (``chain_copies``) that differ
    from it by the channel alone: ``"own"`` the row's draw; ``"quiet"`` the same crop, codec and
    level with the drawn noise left out; ``"redrawn"`` the same crop through a second,
    independent draw (codec, AMR mode, noise kind and SNR).
    """
    if channel not in WINDOW_CHANNELS:
        raise ValueError(f"channel must be one of {WINDOW_CHANNELS}, got {channel!r}")
    rng = seeded_rng(cfg.salt, "telephone", row.id)
    # A random window length as well as position: inference windows run from MIN_WINDOW_S to
    # max_window_s, and a fixed crop would let clip length (long human recordings vs short TTS
    # lines) stand in for the label.
    clip_s = samples.size / ANALYSIS_RATE_HZ
    length_s = rng.uniform(min(MIN_CROP_S, clip_s), min(cfg.spec.max_window_s, clip_s))
    n = min(round(length_s * ANALYSIS_RATE_HZ), samples.size)
    start = int(rng.integers(samples.size - n + 1))
    piece = samples[start : start + n]
    if channel == "own":
        processed = telephone_channel(piece, sample_rate_hz=ANALYSIS_RATE_HZ, rng=rng)
    else:  # telephone_channel's draws, in order, from the row's stream or a second one
        draws = rng if channel == "quiet" else seeded_rng(cfg.salt, "redrawn", row.id)
        params = draw_channel_params(draws, ChannelConfig())
        if channel == "quiet":
            params = dataclasses.replace(params, noise_kind="none", snr_db=math.inf)
        processed = apply_channel(
            piece, sample_rate_hz=ANALYSIS_RATE_HZ, params=params, config=ChannelConfig()
        )
    window = (start / ANALYSIS_RATE_HZ, (start + piece.size) / ANALYSIS_RATE_HZ)
    return [(window, processed)]


def _call_windows(
    samples: np.ndarray, spec: FeatureSpec, encoder: FrameEncoder | None
) -> list[tuple[tuple[float, float], dict[str, np.ndarray]]]:
    """What ``robocall analyze`` computes on up to 30 s of speech: the whole clip through
    ``call_channel``, one encoder pass over its speech (as the ASR's), each speech window's
    frames and LFCC. Every window, also beyond 30 s of speech, where ``robocall analyze``
    encodes those of one pass (``SynthVoiceScorer.window_rule``)."""
    try:
        y = call_channel(samples)
    except EmptyAudioError:
        return []
    frames = encoder.speech_frames(y) if encoder is not None and "whisper" in spec.blocks else None
    return call_window_features(y, frames, spec=spec)


# Cache folder of each variant: "inference" features come from the call path (shared encoder
# pass over call_channel audio) since the head began reading the ASR's frames.
CACHE_VARIANT = {"telephone": "telephone", "inference": "inference-call"}


def _cache_path(block_key: str, variant: str, row: CorpusRow, clip_sha: str, salt: str) -> Path:
    key = hashlib.sha1(f"{row.id}|{clip_sha}|{variant}|{salt}".encode()).hexdigest()
    return features_cache_dir() / block_key / CACHE_VARIANT[variant] / key[:2] / f"{key}.npz"


# The aasist block's cache: one file per row, the (160,) float32 vector of the embedder that
# ``robocall analyze`` runs (the exported ONNX graph, ``models/aasist_runtime.py``), under the
# checkpoint's sha256[:16]. Nothing else writes it: ``aasist_scores.py`` keeps its torch
# embeddings apart, since the two differ in the last bits and a file shared by both held whichever
# ran first, so that the same recipe gave other bytes after ``robocall evaluate`` had run.
AASIST_CLIP_DIR = "aasist_clip"
AASIST_WINDOWS = 1  # models.aasist.CLIP_WINDOWS; part of the key


def aasist_row_key(row: CorpusRow, clip_sha: str, *, pad_s: float | None = None) -> str:
    """Cache key of a row's AASIST files: its id, its clip's sha256, the window count and, when
    the window is cut from the speech span and that cut removed audio, the margin kept
    (``FeatureSpec.aasist_pad_s``); a row the cut leaves whole shares the whole copy's file."""
    parts = [row.id, clip_sha, str(AASIST_WINDOWS)]
    if pad_s is not None:
        parts.append(f"pad{pad_s:g}")
    return hashlib.sha1("|".join(parts).encode()).hexdigest()


def aasist_clip_path(checkpoint: str, key: str) -> Path:
    """Where a row's ``aasist`` block lives (``checkpoint``: the sha256[:16] folder)."""
    return features_cache_dir() / AASIST_CLIP_DIR / checkpoint / f"{key}.npy"


def _aasist_block(
    row: CorpusRow, clip_sha: str, spec: FeatureSpec, embedder: ClipEmbedder | None
) -> np.ndarray | None:
    """The row's ``aasist`` vector (160,) from the cache, computed on a miss (the checkpoint
    loads then, unless ``embedder`` is given); None if the channel finds no speech. With a
    margin (``spec.aasist_pad_s``) the channel copy is made first, to know whether the cut
    removes anything: a row it leaves whole reads the whole copy's file."""
    y: np.ndarray | None = None
    pad = spec.aasist_pad_s
    if pad is not None:
        try:
            y = call_channel(read_clip(resolve_path(row)))
        except EmptyAudioError:
            return None
        cut = aasist_input(y, speech_windows(y, max_window_s=spec.max_window_s), spec=spec)
        pad = None if cut.size == y.size else pad
        y = cut
    path = aasist_clip_path(
        spec.aasist_id.rsplit("/", 1)[-1], aasist_row_key(row, clip_sha, pad_s=pad)
    )
    whole = y
    return cached_aasist_vector(
        path,
        spec,
        embedder,
        lambda: whole if whole is not None else call_channel(read_clip(resolve_path(row))),
    )


def cached_aasist_vector(
    path: Path,
    spec: FeatureSpec,
    embedder: ClipEmbedder | None,
    audio: Callable[[], np.ndarray],
) -> np.ndarray | None:
    """The (160,) AASIST vector stored at ``path``; on a miss ``audio()`` is embedded (the
    checkpoint loads then, unless ``embedder`` is given) and stored. None if ``audio`` raises
    ``EmptyAudioError`` (the channel found no speech)."""
    if not path.is_file():
        if embedder is None:
            from models.loading import load_clip_embedder

            embedder = load_clip_embedder()
        if embedder.model_id != spec.aasist_id:
            raise ValueError(f"spec wants {spec.aasist_id} features, got {embedder.model_id}")
        try:
            y = audio()
        except EmptyAudioError:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, suffix=".tmp.npy") as tmp:
            np.save(tmp, np.asarray(embedder.embed(y), dtype=np.float32))
    vector = np.load(path).astype(np.float64)
    if vector.shape != (AASIST_DIM,):
        raise ValueError(f"{path}: expected {AASIST_DIM} values, got shape {vector.shape}")
    return np.asarray(vector)


def clip_features(
    row: CorpusRow,
    *,
    variant: str,
    cfg: TrainConfig,
    encoder: FrameEncoder | None,
    embedder: ClipEmbedder | None = None,
) -> ClipFeatures | None:
    """Features of one row (computed once, then read from the cache); None if no speech.

    The ``aasist`` block is the same clip vector in both variants (:class:`ClipEmbedder`: the
    whole clip through ``call_channel``, cut as at inference), appended to every window.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    path = resolve_path(row)
    clip_sha = hashlib.sha256(path.read_bytes()).hexdigest()
    spec = dataclasses.replace(cfg.spec, blocks=cfg.spec.window_blocks)
    paths = {
        b: _cache_path(spec.block_key(b), variant, row, clip_sha, cfg.salt) for b in spec.blocks
    }
    cached: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for block, p in paths.items():
        if p.is_file():
            with np.load(p) as data:
                cached[block] = (data["windows"], data["x"])
    missing = [b for b in spec.blocks if b not in cached]
    if missing:
        samples = read_clip(path)
        sub = dataclasses.replace(spec, blocks=tuple(missing))
        if variant == "telephone":
            try:
                crops = telephone_windows(samples, row, cfg)
            except EmptyAudioError:
                crops = []
            pieces = [(w, window_features(x, spec=sub, encoder=encoder)) for w, x in crops]
        else:
            pieces = _call_windows(samples, sub, encoder)
        per_block: dict[str, list[np.ndarray]] = {b: [] for b in missing}
        for _, feats in pieces:
            for b, v in feats.items():
                per_block[b].append(v)
        windows = np.asarray([w for w, _ in pieces], dtype=np.float64).reshape(-1, 2)
        for b in missing:
            x = np.stack(per_block[b]) if per_block[b] else np.zeros((0, 1), np.float32)
            with atomic_path(paths[b], suffix=".tmp.npz") as tmp:  # np.savez appends ".npz"
                np.savez(tmp, windows=windows, x=x)
            cached[b] = (windows, x)
    windows = cached[spec.blocks[0]][0]
    if windows.shape[0] == 0:
        return None
    if "aasist" in cfg.spec.blocks:
        vector = _aasist_block(row, clip_sha, cfg.spec, embedder)
        if vector is None:
            return None
        cached["aasist"] = (windows, np.broadcast_to(vector, (windows.shape[0], AASIST_DIM)))
    x = np.concatenate([cached[b][1] for b in cfg.spec.blocks], axis=1)
    return ClipFeatures(row_id=row.id, windows=windows, x=x.astype(np.float64))


def collect_features(
    rows: Sequence[CorpusRow],
    *,
    variant: str,
    cfg: TrainConfig,
    encoder: FrameEncoder | None,
    embedder: ClipEmbedder | None = None,
    progress: bool = False,
) -> dict[str, ClipFeatures]:
    """Features of many rows by id; rows without speech are left out (and logged)."""
    out: dict[str, ClipFeatures] = {}
    started = time.monotonic()
    for i, row in enumerate(rows):
        feats = clip_features(row, variant=variant, cfg=cfg, encoder=encoder, embedder=embedder)
        if feats is None:
            log.warning("no speech after the channel, skipped: %s", row.id)
        else:
            out[row.id] = feats
        if progress and (i + 1) % 200 == 0:
            log.warning(
                "%s features: %d/%d rows, %.0f s",
                variant,
                i + 1,
                len(rows),
                time.monotonic() - started,
            )
    return out


def train_ids(rows: Sequence[CorpusRow], cfg: TrainConfig) -> set[str]:
    """Ids of the train rows the shipped head fits on: at most ``max_train_per_group`` per group.

    The same sha1 order as :func:`select_rows`, so these are the rows it capped to (the extra
    train rows it adds are leave-one-out test material only).
    """
    by_group: dict[str, list[CorpusRow]] = {}
    for r in rows:
        if r.split == "train":
            by_group.setdefault(group_of(r), []).append(r)
    if cfg.quick:
        chosen = {r.id for m in by_group.values() for r in m}
    else:
        cap = cfg.max_train_per_group
        chosen = {r.id for m in by_group.values() for r in sample_by_hash(m, cap, salt=cfg.salt)}
    return chosen
