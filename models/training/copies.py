"""Robot copies of human clips: what ``datasets/prepare_resynth.py`` and ``prepare_vocoded.py``
share (flags, choice of clips, rows, the resumable build loop); each adds only its method.

A copy keeps its source's speaker, utterance (``group_id``), campaign, split and text, so the
same voice is on both sides of the label and a copy never sits across a split from its source.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from models.training.corpus import (
    MANIFEST_DIR,
    STORE_RATE_HZ,
    CorpusRow,
    builder_parser,
    clip_duration_s,
    corpus_cache_dir,
    hash_unit,
    read_clip,
    read_manifest,
    resolve_path,
    write_clip,
    write_manifest,
)


def copy_builder_args(
    description: str, *, name: str, argv: Sequence[str] | None
) -> argparse.Namespace:
    """The parsed flags of a copy builder.

    :func:`~models.training.corpus.builder_parser`'s, plus ``--fraction``,
    ``--max-per-speaker`` and ``--source-manifest``; exits with a usage error (status 2) when
    that manifest is missing.
    """
    parser = builder_parser(description, name=name)
    parser.add_argument(
        "--fraction", type=float, default=0.25, help="share of each speaker's clips to copy"
    )
    parser.add_argument(
        "--max-per-speaker", type=int, default=150, help="cap per speaker (default %(default)s)"
    )
    parser.add_argument(
        "--source-manifest", type=Path, default=MANIFEST_DIR / "shared.jsonl", help="human rows"
    )
    args = parser.parse_args(argv)
    if not args.source_manifest.is_file():
        parser.error(f"{args.source_manifest} is missing: run datasets/prepare_shared.py first")
    return args


def clips_to_copy(
    rows: Iterable[CorpusRow],
    *,
    languages: Sequence[str],
    fraction: float,
    max_per_speaker: int,
    salt: str,
) -> dict[str, list[CorpusRow]]:
    """Speaker -> the human clips in ``languages`` to copy: ``fraction`` of the speaker's clips
    (at least one, at most ``max_per_speaker``), the first in the hash order of ``salt``.

    Speakers come in sorted order; a builder's own ``salt`` makes its own choice of clips.
    """
    by_speaker: dict[str, list[CorpusRow]] = {}
    for row in rows:
        if row.label == "human" and row.language in languages:
            by_speaker.setdefault(row.speaker, []).append(row)
    chosen = {}
    for speaker in sorted(by_speaker):
        ranked = sorted(by_speaker[speaker], key=lambda r: hash_unit(r.id, salt=salt))
        chosen[speaker] = ranked[: min(max(round(len(ranked) * fraction), 1), max_per_speaker)]
    return chosen


def copy_id(source: CorpusRow, *, name: str, engine_family: str) -> str:
    """``<name>/<engine_family>/<source id>``: the row id of a copy (its audio: that + .flac)."""
    return f"{name}/{engine_family}/{source.id}"


def copy_row(
    source: CorpusRow,
    *,
    name: str,
    kind: str,
    engine: str,
    engine_family: str,
    licence: str,
    duration_s: float,
) -> CorpusRow:
    """The row of a robot copy of human clip ``source`` made by ``engine``, stored at 16 kHz:
    the source's row with the copy's own id, audio, label, engine, licence and length."""
    row_id = copy_id(source, name=name, engine_family=engine_family)
    return dataclasses.replace(
        source,
        id=row_id,
        path=f"{row_id}.flac",
        root="cache",
        label="robot",
        kind=kind,
        engine=engine,
        engine_family=engine_family,
        source=name,
        duration_s=duration_s,
        orig_sr_hz=STORE_RATE_HZ,
        licence=licence,
        parts=(source.id,),
        extra=(("method", engine),),
    )


def build_copies(
    args: argparse.Namespace,
    jobs: Sequence[tuple[CorpusRow, str]],
    *,
    name: str,
    copy_audio: Callable[[CorpusRow, str, np.ndarray], np.ndarray],
    make_row: Callable[[CorpusRow, str, float], CorpusRow],
) -> int:
    """Make the copies ``jobs`` asks for and write the manifest ``args.manifest``.

    ``jobs`` are (human row, engine family); they run in a stable hash order, the first
    ``args.limit`` of them. ``copy_audio(source, family, samples)`` turns the 16 kHz source
    into its copy (16 kHz); ``make_row(source, family, duration_s)`` gives its row. A copy
    already on disk is kept, so an interrupted run resumes: its row comes from the previous
    manifest (or is made again from the file), with its source's current split. Returns the
    row count.
    """
    out = args.out or corpus_cache_dir() / name
    jobs = sorted(jobs, key=lambda job: hash_unit(job[0].id, salt=f"{name}:order"))
    jobs = jobs[: args.limit] if args.limit is not None else jobs
    previous = {r.id: r for r in read_manifest(args.manifest)} if args.manifest.exists() else {}
    rows = []
    for source, family in tqdm(jobs, desc=name, unit="clip", disable=args.no_progress):
        path = out / family / f"{source.id}.flac"
        if path.exists():
            row_id = copy_id(source, name=name, engine_family=family)
            done = previous.get(row_id) or make_row(source, family, clip_duration_s(path))
            rows.append(dataclasses.replace(done, split=source.split))
            continue
        copy = copy_audio(source, family, read_clip(resolve_path(source)))
        duration_s = write_clip(path, copy, sample_rate_hz=STORE_RATE_HZ)
        rows.append(make_row(source, family, duration_s))
    return write_manifest(rows, args.manifest)


@dataclasses.dataclass(frozen=True)
class VocoderCopies:
    """A builder of one neural vocoder's copies (``prepare_vocoded.py``, ``prepare_hifigan.py``):
    which clips, their rows and the build; each builder gives only its constants and its copier.

    ``licence`` is formatted with the source's ``id`` and ``licence``; ``copier(rows)`` returns
    the function that turns 16 kHz samples into their copy, made at the first copy (a vocoder
    may need the source manifest's rows to set itself up)."""

    name: str
    engine: str
    engine_family: str
    languages: tuple[str, ...]
    licence: str
    copier: Callable[[Sequence[CorpusRow]], Callable[[np.ndarray], np.ndarray]]

    def select_sources(
        self, rows: Sequence[CorpusRow], *, fraction: float, max_per_speaker: int
    ) -> list[CorpusRow]:
        """The clips :func:`clips_to_copy` picks, in this builder's own hash order."""
        picked = clips_to_copy(
            rows,
            languages=self.languages,
            fraction=fraction,
            max_per_speaker=max_per_speaker,
            salt=self.name,
        )
        return [row for clips in picked.values() for row in clips]

    def make_row(self, source: CorpusRow, *, duration_s: float) -> CorpusRow:
        return copy_row(
            source,
            name=self.name,
            kind="vocoder_resynthesis",
            engine=self.engine,
            engine_family=self.engine_family,
            licence=self.licence.format(id=source.id, licence=source.licence),
            duration_s=duration_s,
        )

    def main(self, description: str, argv: Sequence[str] | None) -> int:
        """Parse the flags (:func:`copy_builder_args`) and build every chosen copy."""
        args = copy_builder_args(description, name=self.name, argv=argv)
        logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
        shared = read_manifest(args.source_manifest)
        copy = functools.cache(lambda: self.copier(shared))
        chosen = self.select_sources(
            shared, fraction=args.fraction, max_per_speaker=args.max_per_speaker
        )
        build_copies(
            args,
            [(source, self.engine_family) for source in chosen],
            name=self.name,
            copy_audio=lambda source, family, samples: copy()(samples),
            make_row=lambda source, family, duration_s: self.make_row(
                source, duration_s=duration_s
            ),
        )
        return 0
