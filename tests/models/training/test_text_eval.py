"""Robot-leaning evidence rates of the text heads: group-bootstrap CIs and per-family tables."""

from __future__ import annotations

import numpy as np
import pytest

from models.training.metrics import rate_ci
from models.training.text_eval import (
    EVIDENCE_FAMILIES,
    business_margin,
    evidence_rates,
)
from models.training.text_features import TextRow
from tests.models.support import pitch_row


def _row(i: int, source: str, *, language: str = "en", robot: int = 0, group: str = "") -> TextRow:
    group = group or f"{source}/g{i % 4}"
    return pitch_row(i, source, text=f"text {i}", group=group, language=language, robot=robot)


def test_rate_ci_brackets_the_rate_and_is_exact_when_every_group_agrees() -> None:
    groups = [f"g{i % 10}" for i in range(100)]
    assert rate_ci(np.zeros(100, dtype=bool), groups) == (0.0, 0.0)
    assert rate_ci(np.ones(100, dtype=bool), groups) == (1.0, 1.0)
    flags = np.array([i % 10 < 3 for i in range(100)])  # 3 of 10 groups always flagged
    low, high = rate_ci(flags, groups)
    assert 0.0 <= low < flags.mean() < high <= 1.0


def test_rate_ci_resamples_groups_not_rows() -> None:
    # The same 30 % of rows flagged, spread over every group or packed into whole groups:
    # only the packed one varies between resamples of groups.
    groups = [f"g{i % 10}" for i in range(100)]
    spread = np.array([i < 30 for i in range(100)])
    packed = np.array([i % 10 < 3 for i in range(100)])
    spread_low, spread_high = rate_ci(spread, groups)
    packed_low, packed_high = rate_ci(packed, groups)
    assert spread_high - spread_low < packed_high - packed_low


def test_rate_ci_checks_lengths_and_handles_no_rows() -> None:
    with pytest.raises(ValueError, match="groups"):
        rate_ci(np.zeros(3, dtype=bool), ["a", "b"])
    low, high = rate_ci(np.zeros(0, dtype=bool), [])
    assert low != low and high != high  # nan


def test_evidence_rates_per_family_and_language() -> None:
    rows = [
        *(_row(i, "authored_sales_en") for i in range(8)),
        *(_row(i, "authored_business_zh", language="zh") for i in range(4)),
        *(_row(i, "persuasion_en") for i in range(10)),
        *(_row(i, "chatterbot_en") for i in range(6)),
        *(_row(i, "robocall", robot=1) for i in range(12)),
        *(_row(i, "asr_librispeech") for i in range(2)),  # human ASR row: chit-chat family
        *(_row(i, "asr_tts_en", robot=1) for i in range(2)),  # robot ASR row: script family
    ]
    weights = np.array(
        [1.0, -1.0, -1.0, -1.0, -2.0, -2.0, -2.0, -2.0]  # 1 of 8 authored sales en
        + [-1.0, -1.0, -1.0, 0.5]  # 1 of 4 business zh
        + [-1.0] * 10
        + [0.0] * 6  # 0 is not robot-leaning
        + [2.0] * 11
        + [-0.5]
        + [-1.0, -1.0]
        + [1.0, 1.0]
    )
    shown = np.ones(len(rows), dtype=bool)
    shown[-1] = False  # rows not shown are not counted
    out = evidence_rates(rows, weights, shown)
    family = next(iter(EVIDENCE_FAMILIES))
    assert out[f"{family} (all)"]["n"] == 12
    assert out[f"{family} (all)"]["rate"] == pytest.approx(2 / 12)
    assert out[f"{family} (en)"]["rate"] == pytest.approx(1 / 8)
    assert out[f"{family} (zh)"]["rate"] == pytest.approx(1 / 4)
    assert out["human persuasion, typed (PersuasionForGood) (all)"]["rate"] == 0.0
    chat = out["human chit-chat and read text (all)"]
    assert chat["n"] == 8 and chat["rate"] == 0.0
    assert out["robocall transcripts (held-out campaigns) (all)"]["rate"] == pytest.approx(11 / 12)
    assert out["robot script lines and their Whisper transcripts (all)"]["n"] == 1
    assert all(0.0 <= m["ci95"][0] <= m["rate"] <= m["ci95"][1] <= 1.0 for m in out.values())
    assert "human persuasion, typed (PersuasionForGood) (zh)" not in out  # no row, no entry


def test_business_margin_lets_at_most_five_percent_of_people_who_sell_through() -> None:
    sales = [_row(i, "authored_sales_en") for i in range(40)]
    others = [_row(i, "chatterbot_en") for i in range(40)] + [_row(0, "robocall", robot=1)]
    rows = sales + others
    log_odds = np.r_[np.linspace(-4.0, 3.0, 40), np.full(40, 9.0), 9.0]  # chat/robot: ignored
    on = np.ones(len(rows), dtype=bool)
    margin = business_margin(log_odds, rows, on)
    assert margin > 0.0
    assert np.mean(log_odds[:40] > margin) <= 0.05
    assert np.mean(log_odds[:40] > margin - 0.2) > 0.05  # the smallest such margin
    on[:40] = False  # no business row to choose on: nothing to raise
    assert business_margin(log_odds, rows, on) == 0.0
    assert business_margin(log_odds - 10.0, rows, np.ones(len(rows), dtype=bool)) == 0.0
