"""Check and summarise the splits of every manifest; write the leave-one-out fold list.

The split logic lives in ``models/training/corpus.py`` (importable by training code);
this script reads ``datasets/manifests/*.jsonl`` and

- checks that no speaker, utterance (``group_id``) or mixture part is in two splits;
- prints rows and hours per split, label, language and source;
- writes ``datasets/manifests/folds.json``: leave-one-engine-out and leave-one-source-out folds
  (held-out value, train/test row and hour counts; the row lists are recomputed by
  ``models.training.corpus.leave_one_out_folds`` at training time, so the file stays small).

    python datasets/splits.py [--check]      # exit 1 when a split leaks
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from models.training.corpus import (
    MANIFEST_DIR,
    CorpusRow,
    check_disjoint,
    leave_one_out_folds,
    read_manifest,
)

log = logging.getLogger("splits")


def leaks(rows: Sequence[CorpusRow]) -> dict[str, list[str]]:
    """Speakers, utterances and mixture parts found in more than one split."""
    by_id = {r.id: r for r in rows}
    part_leaks = sorted(
        f"{r.id} <- {p}" for r in rows for p in r.parts if p in by_id and by_id[p].split != r.split
    )
    return {
        "speaker": check_disjoint(rows, "speaker"),
        "group_id": check_disjoint(rows, "group_id"),
        "parts": part_leaks,
    }


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
    paths = sorted(args.manifest_dir.glob("*.jsonl"))
    rows = [row for path in paths for row in read_manifest(path)]
    log.info("%d rows from %s", len(rows), ", ".join(p.stem for p in paths))
    found = leaks(rows)
    for kind, values in found.items():
        if values:
            log.error(
                "%d %s value(s) in more than one split, e.g. %s", len(values), kind, values[:3]
            )
    if args.check:
        return 1 if any(found.values()) else 0
    report = {
        "manifests": [p.stem for p in paths],
        "leaks": {k: len(v) for k, v in found.items()},
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
