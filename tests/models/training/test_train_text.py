"""The held-out business text summary of ``train_text business``."""

from __future__ import annotations

import pytest

from models.training.train_text import held_out_rates


def _item(i: int, category: str) -> dict[str, str]:
    return {"id": f"x/{i}", "category": category, "kind": "call_centre_agent", "language": "en"}


def test_held_out_rates_count_each_kind_of_robot_lean_apart() -> None:
    """The head's log-odds can lean robot while its evidence stays 0 (under the gate), and the
    rules can add evidence the head did not give: the three shares are counted apart."""
    scored = [
        (_item(0, "inbound"), 4.0, 2.0, 2.0),  # head evidence
        (_item(1, "inbound"), 1.0, 0.0, 0.0),  # leans robot, under the gate
        (_item(2, "transfer"), -2.0, 0.0, 0.75),  # a rules phrase only
        (_item(3, "transfer"), -3.0, 0.0, 0.0),
    ]
    rates = held_out_rates(scored)
    assert rates["n"] == 4
    assert rates["head_robot_leaning"] == pytest.approx(0.5)
    assert rates["head_evidence"] == pytest.approx(0.25)
    assert rates["all_text_robot_leaning"] == pytest.approx(0.5)
    assert rates["head_above_3"] == pytest.approx(0.25)
    assert rates["median_log_odds"] == pytest.approx(-0.5) and rates["max_log_odds"] == 4.0
    low, high = rates["head_evidence_ci95"]
    assert 0.0 <= low <= 0.25 <= high <= 1.0
