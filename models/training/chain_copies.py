"""Recording-chain, quiet and redrawn copies of training rows for the synthetic-voice head
(issue 12).

    python -m models.training.chain_copies [--quiet | --redrawn] [--limit N]

One copy of each row of the head's training pool: the clip through one random recording chain
(:func:`pipeline.chain.apply_chain`, seeded by the row), then through the row's own telephone
window (``synth_data.telephone_windows``: the same seeded 2-8 s crop, codec and noise as the
row's ``tel`` features, so a copy differs from its original by the chain alone), Whisper and
LFCC blocks. A copy is a :class:`CorpusRow` with the original's source, speaker and utterance
and its own id (:func:`copy_row`), so whatever ties the original to a held-out source
(``eval_sources.tied_to_source``) ties the copy too. The AASIST block is not recomputed (about
1 s a clip): a copy carries its original's vector (:func:`with_original_aasist`).

A *quiet* copy (``--quiet``, kind ``quiet``) is the row's own telephone window with the drawn
noise left out (``telephone_windows(channel="quiet")``: the same crop, codec and level), so it
differs from its original by the noise alone; a *redrawn* copy (``--redrawn``) is the same crop
through a second, independent channel draw (codec, AMR mode, noise), the noise drawn afresh.
AASIST's vector is the original's for both (it is computed on the noiseless call path anyway).

Features are cached one file a row under ``synth_features/<blocks>/telephone-<kind>-<digest>``,
the digest covering the functions that make the copy (:func:`copy_digest`), so an interrupted
run resumes and a changed recipe computes afresh.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import inspect
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.synth_head import AASIST_DIM, FrameEncoder, window_features
from models.training.corpus import CorpusRow, read_clip, resolve_path, seeded_rng
from models.training.synth_config import TrainConfig
from models.training.synth_data import ClipFeatures, features_cache_dir, telephone_windows
from pipeline import chain
from pipeline.errors import EmptyAudioError
from pipeline.files import atomic_path

log = logging.getLogger(__name__)

DEFAULT_CHAIN = chain.ChainConfig()
KINDS = ("chain", "quiet", "redrawn")  # a chain on top; the window without noise; a second draw
# A study may train on copies of several kinds at once, each row with one copy of each
# (``loso_chainaug --quiet-redrawn``); only the computed kinds above have copies of their own.
COMBINED = "quiet+redrawn"


def copy_id(row_id: str, kind: str = "chain") -> str:
    """A copy's id: its original's id, ``#`` and its kind (``#chain``, ``#quiet``, ...)."""
    return f"{row_id}#{kind}"


def original_id(row_id: str) -> str:
    """The original's id of a copy's id (an original's id unchanged)."""
    return row_id.rsplit("#", 1)[0] if copy_kind(row_id) else row_id


def copy_kind(row_id: str) -> str | None:
    """The kind of a copy's id; None for an original's."""
    _, hash_, kind = row_id.rpartition("#")
    return kind if hash_ and kind in KINDS else None


def copy_row(row: CorpusRow, kind: str = "chain") -> CorpusRow:
    """The copy's row: the original's fields (source, speaker, utterance, label, split) under
    the copy's id."""
    return dataclasses.replace(
        row, id=copy_id(row.id, kind), extra=(*row.extra, ("chain_of", row.id))
    )


def chain_digest(config: chain.ChainConfig) -> str:
    """Identity of the copies' recipe: the chain's functions, :func:`chain_window` and
    ``config`` (not the modules' docstrings)."""
    parts = (chain._biquad, chain.random_equaliser, chain.room_impulse_response,
             chain.random_multiband_fir, chain._power, chain.apply_chain, chain_window)  # fmt: skip
    code = "".join(inspect.getsource(f) for f in parts) + repr(config)
    return hashlib.sha256(code.encode()).hexdigest()[:12]


def copy_digest(kind: str, config: chain.ChainConfig = DEFAULT_CHAIN) -> str:
    """Identity of a copy kind's recipe: :func:`chain_digest` for ``chain``; for the others the
    window function (``telephone_windows``) and the channel it draws, and the kind."""
    if kind == "chain":
        return chain_digest(config)
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    from pipeline import telephone

    parts = (telephone_windows, telephone.draw_channel_params, telephone.apply_channel)
    code = "".join(inspect.getsource(f) for f in parts) + repr(telephone.ChannelConfig()) + kind
    return hashlib.sha256(code.encode()).hexdigest()[:12]


def _cache_path(row: CorpusRow, clip_sha: str, cfg: TrainConfig, kind: str, digest: str) -> Path:
    blocks = "+".join(cfg.spec.block_key(b) for b in cfg.spec.window_blocks)
    key = hashlib.sha1(f"{row.id}|{clip_sha}|{cfg.salt}".encode()).hexdigest()
    return features_cache_dir() / blocks / f"telephone-{kind}-{digest}" / key[:2] / f"{key}.npz"


def chain_window(
    samples: np.ndarray, row: CorpusRow, cfg: TrainConfig, config: chain.ChainConfig
) -> list[tuple[tuple[float, float], np.ndarray]]:
    """The row's telephone window (``telephone_windows``) of its clip through its chain."""
    rng = seeded_rng(cfg.salt, "chain", row.id)
    return telephone_windows(chain.apply_chain(samples, rng=rng, config=config), row, cfg)


def copy_features(
    row: CorpusRow,
    *,
    cfg: TrainConfig,
    encoder: FrameEncoder | None,
    config: chain.ChainConfig = DEFAULT_CHAIN,
    kind: str = "chain",
) -> ClipFeatures | None:
    """The window blocks (Whisper, LFCC) of ``row``'s copy of ``kind`` (:data:`KINDS`),
    cached; None if the channel finds no speech. ``encoder`` None: the cached features only (a
    miss raises)."""
    path = resolve_path(row)
    clip_sha = hashlib.sha256(path.read_bytes()).hexdigest()
    cache = _cache_path(row, clip_sha, cfg, kind, copy_digest(kind, config))
    if not cache.is_file():
        if encoder is None and "whisper" in cfg.spec.window_blocks:
            raise FileNotFoundError(f"no cached {kind} copy of {row.id} ({cache})")
        spec = dataclasses.replace(cfg.spec, blocks=cfg.spec.window_blocks)
        samples = read_clip(path)
        try:
            if kind == "chain":
                crops = chain_window(samples, row, cfg, config)
            else:
                crops = telephone_windows(samples, row, cfg, channel=kind)
        except EmptyAudioError:
            crops = []
        pieces = [(w, window_features(x, spec=spec, encoder=encoder)) for w, x in crops]
        windows = np.asarray([w for w, _ in pieces], dtype=np.float64).reshape(-1, 2)
        rows_x = [np.concatenate([f[b] for b in spec.blocks]) for _, f in pieces]
        x = np.stack(rows_x) if rows_x else np.zeros((0, 1), np.float32)
        cache.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cache, suffix=".tmp.npz") as tmp:
            np.savez(tmp, windows=windows, x=x)
    with np.load(cache) as data:
        windows, x = data["windows"], data["x"]
    if windows.shape[0] == 0:
        return None
    return ClipFeatures(copy_id(row.id, kind), windows, x.astype(np.float64))


def collect_copies(
    rows: Sequence[CorpusRow],
    *,
    cfg: TrainConfig,
    encoder: FrameEncoder | None,
    config: chain.ChainConfig = DEFAULT_CHAIN,
    kind: str = "chain",
    progress: bool = False,
) -> dict[str, ClipFeatures]:
    """Copy features of many rows by copy id; rows without speech are left out."""
    out: dict[str, ClipFeatures] = {}
    started = time.monotonic()
    for i, row in enumerate(rows):
        feats = copy_features(row, cfg=cfg, encoder=encoder, config=config, kind=kind)
        if feats is not None:
            out[feats.row_id] = feats
        if progress and (i + 1) % 100 == 0:
            log.warning(
                "%s copies: %d/%d rows, %.0f s, load %.1f",
                kind,
                i + 1,
                len(rows),
                time.monotonic() - started,
                os.getloadavg()[0],
            )
    return out


def with_original_aasist(
    copies: dict[str, ClipFeatures], originals: dict[str, ClipFeatures]
) -> dict[str, ClipFeatures]:
    """Each copy's window blocks with its original's AASIST vector (the last ``AASIST_DIM``
    columns of the original's features) appended; copies without an original are left out."""
    return {
        k: ClipFeatures(
            k,
            f.windows,
            np.concatenate([f.x, originals[original_id(k)].x[:, -AASIST_DIM:]], axis=1),
        )
        for k, f in copies.items()
        if original_id(k) in originals
    }


def add_kind_options(parser: argparse.ArgumentParser, *, combined: bool = False) -> None:
    """``--quiet`` / ``--redrawn`` (and with ``combined`` ``--quiet-redrawn``: both kinds at
    once, :data:`COMBINED`; one option at most) into ``args.kind``; none: ``"chain"``."""
    kinds = parser.add_mutually_exclusive_group()
    for kind in (*KINDS[1:], *((COMBINED,) if combined else ())):
        kinds.add_argument(f"--{kind.replace('+', '-')}", dest="kind", action="store_const",
                           const=kind, default=KINDS[0],
                           help=f"{kind} copies, not chain copies")  # fmt: skip


def training_pool(cfg: TrainConfig) -> list[CorpusRow]:
    """The rows a leave-one-source-out fold may fit on: the shipped head's training rows."""
    from models.training.synth_data import select_rows, train_ids

    rows = select_rows(cfg)
    fit = train_ids(rows, cfg)
    return [r for r in rows if r.id in fit]


def main(argv: Sequence[str] | None = None) -> int:
    from models.loading import SYNTH_ENCODER_ASR, load_synth_encoder
    from models.training.loso_voice import shipped_config

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="the first N rows only")
    add_kind_options(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    cfg = shipped_config()
    pool = training_pool(cfg)[: args.limit]
    # one thread: the other engineers extract features on the same two cores
    encoder = load_synth_encoder(dataclasses.replace(SYNTH_ENCODER_ASR, cpu_threads=1))
    started = time.monotonic()
    copies = collect_copies(pool, cfg=cfg, encoder=encoder, kind=args.kind, progress=True)
    log.warning(
        "%d copies of %d rows in %.0f s", len(copies), len(pool), time.monotonic() - started
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
