"""Check and summarise the splits of every manifest; write the leave-one-out fold list.

The split logic lives in ``models/training/corpus.py`` and ``leakage.py`` (importable by
training code); this script reads ``datasets/manifests/*.jsonl``, audio and text, and

- checks that no speaker, utterance (``group_id``), campaign or mixture part is in two splits,
  and that every row of a held-out source (``corpus.HELD_OUT_SOURCES``) is in the test split;
- checks the simulated two-party calls (``calls/calls.jsonl``, kept out of the training readers'
  glob) against every clip manifest: each call's caller voice, its parties' clips, their
  utterances, script lines and campaigns are in the call's split and in no other (a call with a
  train voice in the test split would make every voice figure on the calls a leak);
- checks the people recorded in PyPI packages (``pypi_speech/pypi_speech.jsonl``, also out of
  the glob; ``leakage.held_out_people``): every row in the test split, no speaker or recording
  shared with a clip manifest's row of another split;
- checks the text manifests against the audio ones: every Whisper transcript
  (``text_asr.jsonl``) names a clip that exists and agrees with it on label, speaker, utterance,
  campaign and reference text (a rebuilt clip makes its old transcript stale), and counts the
  text-corpus rows that share words, a campaign or a clip with the test split (the text heads
  never train on them, ``leakage.tied_to_test``);
- prints rows and hours per split, label, language and source;
- writes ``datasets/manifests/folds.json``: leave-one-engine-out and leave-one-source-out folds
  (held-out value, train/test row and hour counts; the row lists are recomputed by
  ``models.training.corpus.leave_one_out_folds`` at training time, so the file stays small).

    python -m datasets.splits [--check]      # exit 1 when a split leaks
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from models.training.corpus import (
    HELD_OUT_SOURCES,
    MANIFEST_DIR,
    CorpusRow,
    check_disjoint,
    leave_one_out_folds,
    read_manifest,
)
from models.training.leakage import PYPI_SPEECH_MANIFEST, audio_keys, tied_to_test
from models.training.text_features import read_rows

TEXT_CORPUS = "text_corpus.jsonl"
TEXT_ASR = "text_asr.jsonl"
CALLS = Path("calls") / "calls.jsonl"  # simulated calls, relative to the manifest folder
# Fields a transcript record copies from its clip (datasets/prepare_text.py ``asr``).
ASR_FIELDS = (
    ("label", "label"),
    ("speaker", "speaker"),
    ("group_id", "group_id"),
    ("campaign", "campaign"),
    ("reference", "text"),
)

log = logging.getLogger("splits")


def leaks(rows: Sequence[CorpusRow]) -> dict[str, list[str]]:
    """Speakers, utterances, campaigns and mixture parts found in more than one split, and
    rows of a held-out source outside the test split."""
    by_id = {r.id: r for r in rows}
    part_leaks = sorted(
        f"{r.id} <- {p}" for r in rows for p in r.parts if p in by_id and by_id[p].split != r.split
    )
    campaigns = [
        dataclasses.replace(r, campaign=f"{r.language}/{r.campaign}") for r in rows if r.campaign
    ]
    return {
        "speaker": check_disjoint(rows, "speaker"),
        "group_id": check_disjoint(rows, "group_id"),
        "campaign": check_disjoint(campaigns, "campaign"),
        "parts": part_leaks,
        "held_out_source": sorted(
            f"{r.id} in {r.split}"
            for r in rows
            if r.source in HELD_OUT_SOURCES and r.split != "test"
        ),
    }


def call_leaks(calls: Sequence[CorpusRow], rows: Sequence[CorpusRow]) -> list[str]:
    """``"<call id>: <key> in <splits>"`` for each key of a call (caller voice, a party's clip,
    utterance, script line, campaign) that a clip of another split carries, or ``"<call id>: no
    such part <id>"``; empty when every call is built from its own split."""
    by_id = {r.id: r for r in rows}
    splits_of: dict[str, set[str]] = {}
    for r in rows:
        for key in audio_keys(r, by_id, engines=False):
            splits_of.setdefault(key, set()).add(r.split)
    out = [f"{c.id}: no such part {p}" for c in calls for p in c.parts if p not in by_id]
    for call in calls:
        own = f"group:{call.group_id}"
        for key in sorted(audio_keys(call, by_id, engines=False) - {own}):
            other = splits_of.get(key, set()) - {call.split}
            if other:
                out.append(f"{call.id}: {key} in {'/'.join(sorted(other))}")
    return out


def stale_transcripts(records: Sequence[dict[str, Any]], rows: Sequence[CorpusRow]) -> list[str]:
    """Transcript records whose clip is missing or disagrees with them (``"<clip>: <field>"``)."""
    by_id = {r.id: r for r in rows}
    out = []
    for record in records:
        clip = by_id.get(record["clip_id"])
        if clip is None:
            out.append(f"{record['clip_id']}: no such clip")
            continue
        out += [
            f"{record['clip_id']}: {key} {record[key]!r} != {getattr(clip, field)!r}"
            for key, field in ASR_FIELDS
            if record[key] != getattr(clip, field)
        ]
    return out


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def summary(rows: Sequence[CorpusRow]) -> dict[str, dict[str, str]]:
    """{"split/label/language": "rows, hours"} and the same per source."""
    out: dict[str, dict[str, list[float]]] = {"by_split": {}, "by_source": {}}
    for row in rows:
        for table, key in (
            ("by_split", f"{row.split}/{row.label}/{row.language}"),
            ("by_source", f"{row.source}/{row.label}"),
        ):
            cell = out[table].setdefault(key, [0, 0.0])
            cell[0] += 1
            cell[1] += row.duration_s / 3600
    return {
        name: {key: f"{n:.0f} rows, {h:.3f} h" for key, (n, h) in sorted(table.items())}
        for name, table in out.items()
    }


def fold_table(rows: Sequence[CorpusRow], field: str) -> list[dict[str, object]]:
    folds = []
    for held_out, train, test in leave_one_out_folds(rows, field=field):
        test_labels = Counter(rows[i].label for i in test)
        folds.append(
            {
                "held_out": held_out,
                "train_rows": len(train),
                "test_rows": len(test),
                "test_robot_rows": test_labels["robot"],
                "test_human_rows": test_labels["human"],
                "test_hours": round(sum(rows[i].duration_s for i in test) / 3600, 3),
            }
        )
    return folds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest-dir", type=Path, default=MANIFEST_DIR)
    parser.add_argument("--check", action="store_true", help="only check; exit 1 on a leak")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    paths = sorted(p for p in args.manifest_dir.glob("*.jsonl") if not p.name.startswith("text_"))
    rows = [row for path in paths for row in read_manifest(path)]
    log.info("%d rows from %s", len(rows), ", ".join(p.stem for p in paths))
    calls_path = args.manifest_dir / CALLS
    calls = read_manifest(calls_path) if calls_path.is_file() else []
    log.info("%d simulated call rows from %s", len(calls), CALLS)
    pypi_path = args.manifest_dir / PYPI_SPEECH_MANIFEST.relative_to(MANIFEST_DIR)
    people = read_manifest(pypi_path) if pypi_path.is_file() else []
    log.info("%d rows of people recorded in PyPI packages", len(people))
    found = leaks([*rows, *calls, *people])
    found["call"] = call_leaks(calls, rows)
    found["pypi_speech"] = sorted(f"{r.id} in {r.split}" for r in people if r.split != "test")
    asr_path = args.manifest_dir / TEXT_ASR
    found["stale_transcript"] = (
        stale_transcripts(read_jsonl(asr_path), rows) if asr_path.is_file() else []
    )
    corpus_path = args.manifest_dir / TEXT_CORPUS
    text_rows = read_rows(corpus_path) if corpus_path.is_file() else []
    tied: list[bool] = tied_to_test(text_rows, rows).tolist()
    log.info(
        "%d text rows, %d of them tied to the test split (never trained on)",
        len(text_rows),
        sum(tied),
    )
    for kind, values in found.items():
        if values:
            log.error("%d %s problem(s), e.g. %s", len(values), kind, values[:3])
    if args.check:
        return 1 if any(found.values()) else 0
    report = {
        "manifests": [p.stem for p in paths],
        "leaks": {k: len(v) for k, v in found.items()},
        "held_out_sources": list(HELD_OUT_SOURCES),
        "text_rows_tied_to_test": dict(
            sorted(Counter(r.source for r, t in zip(text_rows, tied, strict=True) if t).items())
        ),
        **summary(rows),
        "leave_one_engine_family_out": fold_table(rows, "engine_family"),
        "leave_one_source_out": fold_table(rows, "source"),
    }
    folds_path = args.manifest_dir / "folds.json"
    folds_path.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    log.info("wrote %s", folds_path)
    return 1 if any(found.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
