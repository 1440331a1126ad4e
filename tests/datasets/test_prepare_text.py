"""datasets/prepare_text.py: the human business/sales negatives and the held-out business set."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from models.training.text_features import CORPUS, HELDOUT_BUSINESS, read_rows

from .test_builders import load_builder

PERSUASION_HEADER = ["dialogue_id", "language", "label", "text", "origin", "licence"]


def _write_persuasion(data: Path, dialogues: list[tuple[str, str]]) -> None:
    (data / "text").mkdir(parents=True)
    with (data / "text" / "human_persuasion_en.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(PERSUASION_HEADER)
        for dialogue_id, text in dialogues:
            writer.writerow([dialogue_id, "en", "human", text, "PersuasionForGood", "Apache-2.0"])


def test_persuasion_rows_are_human_pitches_grouped_by_day(tmp_path: Path) -> None:
    prepare = load_builder("prepare_text")
    _write_persuasion(
        tmp_path,
        [
            ("20180717-200206_41_live", " Have you heard of Save the Children? "),
            ("20180717-210000_7_live", "Would you donate part of your earnings today?"),
            ("20180903-101010_3_live", "Even 50 cents helps a child."),
        ],
    )
    rows = list(prepare.persuasion_rows(tmp_path))
    assert [r.text for r in rows][0] == "Have you heard of Save the Children?"
    assert {(r.is_robot, r.is_pitch, r.topic, r.source) for r in rows} == {
        (0, 1, "none", "persuasion_en")
    }
    assert [r.group for r in rows] == ["persuasion/20180717"] * 2 + ["persuasion/20180903"]
    assert all("Apache-2.0" in r.origin for r in rows)


def test_authored_kinds_map_to_their_own_sources() -> None:
    prepare = load_builder("prepare_text")
    rows = list(prepare.authored_rows())
    kinds = {json.loads(line)["kind"] for line in prepare.AUTHORED.open(encoding="utf-8")}
    assert kinds == set(prepare.AUTHORED_SOURCES)
    business = [r for r in rows if r.source.startswith("authored_business_")]
    assert business and all(r.is_robot == 0 and r.is_pitch == 0 for r in business)
    assert {r.language for r in business} == {"en", "zh"}


def test_held_out_business_set_never_reaches_the_corpus() -> None:
    held = [json.loads(line) for line in HELDOUT_BUSINESS.open(encoding="utf-8")]
    assert {h["language"] for h in held} == {"en", "zh"}
    assert len({h["id"] for h in held}) == len(held)
    corpus = read_rows(CORPUS)
    assert not {h["id"] for h in held} & {r.id for r in corpus}
    assert not {h["text"] for h in held} & {r.text for r in corpus}
