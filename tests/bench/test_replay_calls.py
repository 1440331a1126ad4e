"""The pure helpers of bench/replay_calls.py (the bench itself reads the simulated calls)."""

from __future__ import annotations

import json

from models.training.corpus import CorpusRow
from tests.bench.support import load_bench

B = load_bench("replay_calls")


def _call(segments: list[tuple[str, float, str]]) -> CorpusRow:
    parts = [{"role": role, "start_s": t, "prompt_id": p} for role, t, p in segments]
    return CorpusRow(
        id="calls/stereo/zh/recorded_robot/dev/0001", path="x.flac", root="cache", label="robot",
        kind="call_recorded_robot", language="zh", speaker="s", engine="", engine_family="",
        source="calls", group_id="g", campaign="", split="dev", duration_s=60.0,
        orig_sr_hz=16_000, licence="",
        extra=(("layout", "stereo"), ("segments", json.dumps(parts))),
    )  # fmt: skip


def test_a_prompt_counts_as_replayed_only_when_both_plays_start_inside_the_crop() -> None:
    row = _call([("caller", 1.0, "p1"), ("callee", 5.0, ""), ("caller", 8.0, "p2"),
                 ("callee", 12.0, "p1"), ("caller", 40.0, "p1")])  # fmt: skip
    assert not B.replays_a_prompt(row, 30.0)  # the callee's segment is no caller prompt
    assert B.replays_a_prompt(row, 0.0)  # the whole call
    assert B.replays_a_prompt(row, 45.0)


def test_summary_counts_calls_with_a_replay_per_scoring() -> None:
    calls = [
        {"layout": "mono", "kind": "recorded_robot", "replays_a_prompt": True,
         "replayed_s": {"raw@0.92": 0.0, "floor6@0.92": 2.4}},
        {"layout": "mono", "kind": "recorded_robot", "replays_a_prompt": True,
         "replayed_s": {"raw@0.92": 1.5, "floor6@0.92": 3.0}},
        {"layout": "mono", "kind": "human_agent", "replays_a_prompt": False,
         "replayed_s": {"raw@0.92": 0.0, "floor6@0.92": 0.0}},
    ]  # fmt: skip
    text = B.summary(calls)
    assert "| mono | recorded_robot | yes | 2 | 1 | 2 |" in text
    assert "| mono | human_agent | no | 1 | 0 | 0 |" in text
