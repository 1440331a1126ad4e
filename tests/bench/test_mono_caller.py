"""The scoring of bench/mono_caller.py on made-up call records (the bench itself runs the
detector on the simulated calls)."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.fuse import FusionModel
from tests.bench.support import load_bench

B = load_bench("mono_caller")
MODEL = FusionModel(bias=0.0, scales=(), default_scale=1.0, method="test")


def record(kind: str, voice: str, robotness: float | None) -> dict[str, Any]:
    cues = None if robotness is None else {"replayed_speech_s": robotness}
    return {"id": f"{kind}{voice}{robotness}", "kind": kind, "voice": voice, "cues": cues,
            "y": int(kind != "human_agent")}  # fmt: skip


def test_each_robot_kind_and_any_robot_against_the_agents() -> None:
    records = [
        *(record("recorded_robot", f"r{i % 3}", 1.0 + i) for i in range(6)),
        *(record("tts_robot", f"t{i % 2}", -0.5 + i) for i in range(4)),  # one below an agent
        *(record("human_agent", f"a{i % 3}", -2.0 + 0.5 * i) for i in range(6)),
        record("human_agent", "a9", None),  # failed to decode: counted, not scored
    ]
    rows = B.verdict_rows(records, MODEL)
    assert rows["failed"] == 1
    assert (rows["recorded_robot"]["n_robot"], rows["recorded_robot"]["n_human"]) == (6, 6)
    assert rows["any robot"]["n_robot"] == 10 and rows["tts_robot"]["n_robot"] == 4
    assert rows["recorded_robot"]["eer"] == pytest.approx(0.0)
    assert rows["recorded_robot"]["auc"] == pytest.approx(1.0)
    assert 0.0 < rows["tts_robot"]["eer"] < 0.5 and rows["tts_robot"]["auc"] < 1.0
    for robots in B.ROBOTS:
        low, high = rows[robots]["eer_ci"]
        assert 0.0 <= low <= high <= 1.0
    table = B.markdown("dev", rows)
    assert table.count("vs agents") == len(B.ROBOTS)
