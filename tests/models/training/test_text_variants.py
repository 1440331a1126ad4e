"""Issue 13 variants of the robot-script head: harder negatives, folds, the marker gate."""

from __future__ import annotations

import numpy as np
import pytest

from models.training.text_features import TextRow, assign_folds
from models.training.text_variants import (
    HARD_SOURCE,
    HARD_WINDOW_CHARS,
    HARD_WINDOWS,
    Thresholds,
    choose_gate,
    choose_variant,
    evidence_weight,
    extended_folds,
    hard_negatives,
    has_markers,
)
from tests.models.support import pitch_row


def _row(i: int, source: str, text: str, *, robot: int = 0, group: str = "") -> TextRow:
    return pitch_row(i, source, text=text, group=group or f"{source}/g{i}", robot=robot)


SENTENCE = "Would you like to give a little to a charity that helps children get to school today? "


def test_hard_negatives_are_opening_windows_of_persuasion_only() -> None:
    rows = [
        _row(0, "persuasion_en", SENTENCE * 20, group="persuasion/20180904"),
        _row(1, "robocall", SENTENCE * 20, robot=1),
        _row(2, "persuasion_en", "Too short to make a window.", group="persuasion/20180905"),
    ]
    extra = hard_negatives(rows)
    assert len(extra) == HARD_WINDOWS
    for e in extra:
        assert e.source == HARD_SOURCE and e.is_robot == 0
        assert e.group == "hardneg/persuasion/20180904"
        assert len(e.text) >= HARD_WINDOW_CHARS and e.text in rows[0].text
    assert len({e.id for e in extra}) == len(extra)


def test_extended_folds_keep_a_window_with_its_dialogue() -> None:
    rows = [_row(i, "persuasion_en", SENTENCE * 20, group=f"persuasion/day{i}") for i in range(6)]
    rows += [_row(i, "robocall", "press 1", robot=1, group=f"robocall/rc{i}") for i in range(5)]
    extra = hard_negatives(rows)
    for n_folds in (3, 0):
        folds = extended_folds(rows, extra, n_folds)
        assert (folds[: len(rows)] == assign_folds(rows, n_folds)).all()
        by_group = {r.group: f for r, f in zip(rows, folds, strict=False)}
        for e, f in zip(extra, folds[len(rows) :], strict=True):
            assert f == by_group[e.group.removeprefix("hardneg/")]


def test_gate_removes_the_most_false_accusations_that_recall_allows() -> None:
    # robots: marked 5.0 always counts; unmarked 3.0, 1.0 and 0.5 fall as the gate rises
    log_odds = np.array([5.0, 3.0, 1.0, 0.5, 0.8, 2.0, -1.0])
    marked = np.array([True, False, False, False, False, False, False])
    robot = np.array([True, True, True, True, False, False, False])
    business = ~robot
    # recall >= 0.75 allows gates < 1.0: the person at 0.8 is cleared at 0.8, the one at 2.0
    # is not, and the smallest gate with that fewest is taken
    assert choose_gate(log_odds, marked, robot, business, 0.75) == pytest.approx(0.8)
    assert choose_gate(log_odds, marked, robot, business, 1.0) == 0.0  # clears nobody: none
    assert choose_gate(log_odds, marked, robot, business, 0.25) == pytest.approx(2.0)


def test_evidence_weight_applies_the_gate_to_unmarked_rows_only() -> None:
    raw = np.array([1.0, 1.0])
    t = Thresholds(platt=(2.0, -1.0), margin=0.5, gate=1.0)
    assert evidence_weight(raw, np.array([True, False]), t).tolist() == [0.5, -0.5]


def test_has_markers_reads_the_machine_specific_lexicon() -> None:
    rows = [
        _row(0, "robocall", "This is an automated message. Press 1 now.", robot=1),
        _row(1, "authored_business_en", "This is Dana from Oak Dental, call us back at 555-0100."),
    ]
    assert has_markers(rows).tolist() == [True, False]


def _result(business: float, chat: float, recall: float) -> dict[str, object]:
    def rate(r: float) -> dict[str, object]:
        return {"rate": r, "ci95": (r, r), "n": 10}

    dev = {
        "human business/sales, authored (all)": rate(business),
        "human chit-chat and read text (all)": rate(chat),
        "robocall transcripts (held-out campaigns) (all)": rate(recall),
    }
    return {"10_fold": {"dev": dev}}


def test_choice_on_dev_needs_recall_then_fewest_accused_then_simplest() -> None:
    results: dict[str, object] = {
        "current": _result(0.05, 0.02, 0.99),
        "gated": _result(0.0, 0.01, 0.99),
        "hardneg": _result(0.0, 0.01, 0.99),  # ties with gated: the earlier (simpler) one wins
        "gated+hardneg": _result(0.0, 0.0, 0.90),  # fewest accused, but recall below 95 %
        "variants": ["current", "gated", "hardneg", "gated+hardneg"],
    }
    assert choose_variant(results) == "gated"
    results["variants"] = ["current", "gated+hardneg"]
    assert choose_variant(results) == "current"
