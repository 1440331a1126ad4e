"""eval_kokoro's sample and tables on made-up records (no model, no audio)."""

from __future__ import annotations

import numpy as np
import pytest

from models.training.eval_kokoro import markdown, people_sample, tables
from tests.datasets.test_corpus import row


def test_people_sample_takes_test_split_people_of_the_language_spread_over_speakers() -> None:
    rows = [
        *(row(i, split="test", speaker=f"p{i % 3}") for i in range(12)),  # 3 speakers
        row(20, split="train", speaker="t"),
        row(21, split="dev", speaker="d"),
        row(22, split="test", language="zh", speaker="z"),
        row(23, split="test", label="robot", engine="e", speaker="r"),
    ]
    picked = people_sample(rows, "en", 6)
    assert len(picked) == 6
    assert {r.split for r in picked} == {"test"} and {r.label for r in picked} == {"human"}
    assert sorted(r.speaker for r in picked) == ["p0", "p0", "p1", "p1", "p2", "p2"]
    assert people_sample(rows, "zh", 5) == [rows[14]]


def record(i: int, y: int, score: float, *, kind: str, language: str = "en") -> dict:
    return {
        "id": f"r{i}",
        "y": y,
        "language": language,
        "group": f"{'voice' if y else 'spk'}{i % 4}",
        "kind": kind,
        "logit": score,
        "voice_log_odds": score - 1.0,
    }


def test_tables_separate_the_classes_and_count_called_robot() -> None:
    people = [record(i, 0, -3.0 + 0.1 * i, kind="human") for i in range(8)]
    neutral = [record(10 + i, 1, 2.0 + 0.1 * i, kind="neutral") for i in range(6)]
    sales = [record(20 + i, 1, -5.0, kind="sales") for i in range(4)]
    broken = [{"id": "x", "y": 1, "language": "en", "group": "v", "kind": "sales", "error": "e"}]
    aasist = {r["id"]: -r["logit"] for r in people + neutral}  # AASIST ranks them backwards
    got = tables([*people, *neutral, *sales, *broken], aasist, threshold=0.5)["en"]
    assert got["errors"] == 1
    assert got["fused, neutral texts"]["auc"] == pytest.approx(1.0)
    assert got["fused, sales texts"]["auc"] == pytest.approx(0.0)
    assert got["AASIST (telephone)"]["auc"] == pytest.approx(0.0)
    fused = got["fused"]
    assert (fused["n_human"], fused["n_robot"]) == (8, 10)
    assert fused["kokoro_called_robot"]["rate"] == pytest.approx(0.6)
    assert fused["people_called_robot"]["rate"] == 0.0
    low, high = fused["kokoro_called_robot"]["ci"]
    assert low <= 0.6 <= high
    # the voice head is cut at 0.5 on its own log-odds: 1.0..1.5 -> robot, -4..-2.3 -> person
    assert got["voice head"]["kokoro_called_robot"]["rate"] == pytest.approx(0.6)
    assert np.isnan(tables([], {}, threshold=0.5)["zh"]["fused"].get("auc", np.nan))


def test_markdown_lists_every_scored_table_and_the_error_rates() -> None:
    people = [record(i, 0, -1.0 - i, kind="human") for i in range(4)]
    robots = [record(10 + i, 1, 1.0 + i, kind="neutral") for i in range(4)]
    out = {
        "tables": tables([*people, *robots], {}, threshold=0.5),
        "intelligibility": {
            "en/all": {"unit": "wer", "n": 4, "clean": 0.05, "channel": 0.1, "wrong_language": 0.0}
        },  # fmt: skip
    }
    text = markdown(out)
    assert "| en | voice head | 4 / 4 | 1.00 [1.00-1.00] | 0.0 % [0.0-0.0] |" in text
    assert "| en/all | WER | 4 | 5.0 % | 10.0 % | 0.0 % |" in text
    assert "AASIST" not in text  # no AASIST score: no row
    assert "| clean clip | telephone channel |" in text
    assert "| clean clip | as uploaded |" in markdown({**out, "condition": "as uploaded"})
