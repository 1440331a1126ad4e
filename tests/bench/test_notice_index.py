"""The weighing and the tables of bench/notice_index.py (the bench itself reads the simulated
calls)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from service.campaigns.heard_before import prompt_evidence
from service.campaigns.index import (
    MAX_EVIDENCE_WEIGHT,
    REPLAY_SHARE_FULL,
    REPLAY_SHARE_NONE,
    Sightings,
)
from tests.bench.support import load_bench

B = load_bench("notice_index")


def _evidence(share: float, calls: int = 12):  # type: ignore[no-untyped-def]
    return prompt_evidence(Sightings("cmp-x", calls, 0, None, None), "audio", share=share)


def test_reweighed_gives_the_weight_before_the_share_and_at_a_carriers_scale() -> None:
    notice = _evidence(0.12)
    assert notice is not None and notice.weight == 0.0
    before = B.reweighed(notice, share=False)
    assert before is not None and before.weight == pytest.approx(0.5 * math.log1p(12), abs=1e-4)
    large = B.reweighed(notice, share=False, calls=B.LARGE_CAMPAIGN)
    assert large is not None and large.weight == MAX_EVIDENCE_WEIGHT
    assert B.reweighed(notice, calls=B.LARGE_CAMPAIGN).weight == 0.0  # the share still holds
    half = B.reweighed(
        _evidence((REPLAY_SHARE_NONE + REPLAY_SHARE_FULL) / 2), calls=B.LARGE_CAMPAIGN
    )
    assert half is not None and half.weight == pytest.approx(0.5 * MAX_EVIDENCE_WEIGHT)


def test_tables_count_by_split_layout_and_caller() -> None:
    def row(i: int, split: str, kind: str) -> SimpleNamespace:
        prefix = B.NOTICE_PREFIX if kind == "notice_agent" else "calls/"
        extra = (("layout", "mono"), ("caller_kind", "human_agent" if "agent" in kind else kind))
        return SimpleNamespace(id=f"{prefix}{i}", split=split, extra=extra)

    rows = [row(0, "dev", "notice_agent"), row(1, "test", "notice_agent"),
            row(2, "test", "tts_robot"), row(3, "test", "tts_robot")]  # fmt: skip
    cues = {"calls_notice/0": _evidence(0.1), "calls_notice/1": _evidence(0.35),
            "calls/2": _evidence(0.9), "calls/3": None}  # fmt: skip
    lines = B.index_table(rows, cues)
    assert len(lines) == 2 + 3
    assert lines[2].startswith("| test | mono | notice_agent | 1 | 1 | 0.35 [0.35-0.35] |")
    assert lines[2].endswith("| 1 -> 1 |")
    assert lines[3].startswith("| test | mono | tts_robot | 2 | 1 | 0.90 [0.90-0.90] |")
    assert lines[4].startswith("| train+dev | mono | notice_agent | 1 | 1 |")
    assert lines[4].endswith("| 1 -> 0 |")
    found = [{"layout": "mono", "kind": "tts_robot", "threshold": 0.5, "alone": 0.4,
              "before": 0.6, "now": 0.6, "before_large": 0.7, "now_large": 0.45}]  # fmt: skip
    (table_row,) = B.verdict_table(found)[2:]
    assert table_row.startswith("| mono | tts_robot | 1 | 0 (0%), max p 0.40 | 1 (100%)")
    assert table_row.endswith("0 (0%), max p 0.45 |")
