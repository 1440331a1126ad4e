"""The ``aasist`` block of the synthetic-voice head on a telephone-channel draw of the clip
(issue 12).

The head's Whisper and LFCC blocks are fitted on a 2-8 s window of each training clip through
a random codec and noise (``synth_data.telephone_windows``); its AASIST vector is computed on
the clean whole clip through ``call_channel`` only, so a recording chain's own noise floor and
band reach it unchanged (``docs/unseen_sources.md``, finding 3). This module computes the same
vector on a drawn copy: the whole clip through one seeded draw of the training channel (codec,
AMR mode, noise kind and SNR; the timeline kept), then ``call_channel``, as the detector reads an
upload that went through that channel. The draw is the row's own second stream
(``seeded_rng(salt, "aasist-drawn", id)``), independent of its window's: drawing the window's
parameters again would mean repeating ``telephone_windows``' draw order here.

    python -m models.training.aasist_drawn [--limit N]

fills the cache for every row of the shipped head's manifests (about 0.3 s a row on one core).
The study that uses it is ``loso_aasist_drawn.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.synth_head import ClipEmbedder
from models.training.corpus import CorpusRow, read_clip, resolve_path, seeded_rng
from models.training.synth_config import TrainConfig
from models.training.synth_data import AASIST_WINDOWS, aasist_clip_path, cached_aasist_vector
from pipeline.telephone import ChannelConfig, apply_channel, call_channel, draw_channel_params
from pipeline.types import ANALYSIS_RATE_HZ

log = logging.getLogger(__name__)

DRAW_TAG = "aasist-drawn-v1"  # the draw's stream and part of the cache key
WHOLE_CLIP = dataclasses.replace(ChannelConfig(), trim=False)  # the training draws, untrimmed


def drawn_copy(samples: np.ndarray, row: CorpusRow, cfg: TrainConfig) -> np.ndarray:
    """The clip through the row's seeded draw of the training channel, then ``call_channel``.
    Raises ``EmptyAudioError`` as the channel does."""
    params = draw_channel_params(seeded_rng(cfg.salt, DRAW_TAG, row.id), WHOLE_CLIP)
    drawn = apply_channel(
        samples, sample_rate_hz=ANALYSIS_RATE_HZ, params=params, config=WHOLE_CLIP
    )
    return call_channel(drawn)


def drawn_path(row: CorpusRow, clip_sha: str, cfg: TrainConfig) -> Path:
    """Where the row's drawn vector lives: beside the clean ones, under its own key."""
    key = "|".join([row.id, clip_sha, str(AASIST_WINDOWS), DRAW_TAG, cfg.salt])
    digest = hashlib.sha1(key.encode()).hexdigest()
    return aasist_clip_path(cfg.spec.aasist_id.rsplit("/", 1)[-1], digest)


def drawn_vector(
    row: CorpusRow, cfg: TrainConfig, embedder: ClipEmbedder | None
) -> np.ndarray | None:
    """The row's (160,) AASIST vector on its drawn copy, from the cache or computed (the
    checkpoint loads then, unless ``embedder`` is given); None if the channel finds no speech."""
    clip = resolve_path(row)
    path = drawn_path(row, hashlib.sha256(clip.read_bytes()).hexdigest(), cfg)
    return cached_aasist_vector(
        path, cfg.spec, embedder, lambda: drawn_copy(read_clip(clip), row, cfg)
    )


def collect_drawn(
    rows: Sequence[CorpusRow],
    cfg: TrainConfig,
    *,
    embedder: ClipEmbedder | None = None,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Drawn vectors of many rows by id; rows without speech after the draw are left out."""
    out: dict[str, np.ndarray] = {}
    started = time.monotonic()
    for i, row in enumerate(rows):
        vector = drawn_vector(row, cfg, embedder)
        if vector is None:
            log.warning("no speech after the drawn channel, skipped: %s", row.id)
        else:
            out[row.id] = vector
        if progress and (i + 1) % 200 == 0:
            log.warning("drawn AASIST: %d/%d rows, %.0f s", i + 1, len(rows),
                        time.monotonic() - started)  # fmt: skip
    return out


def main(argv: Sequence[str] | None = None) -> int:
    from models.loading import load_clip_embedder
    from models.synth_head import LogisticHead
    from models.training.eval_sources import shipped_head_path
    from models.training.evaluate import config_from_head
    from models.training.synth_data import select_rows

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="the first N rows only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    cfg = config_from_head(LogisticHead.load(shipped_head_path()))
    rows = select_rows(cfg)[: args.limit]
    got = collect_drawn(rows, cfg, embedder=load_clip_embedder(), progress=True)
    log.warning("drawn AASIST vectors: %d of %d rows", len(got), len(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
