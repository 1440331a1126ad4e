"""bench/call_length.py's table (the bench itself scores the simulated test calls)."""

from __future__ import annotations

from tests.bench.support import load_bench

B = load_bench("call_length")


def _row(eer: float, called: float) -> dict[str, object]:
    return {
        "n_robot": 15, "n_human": 13, "eer": eer, "eer_ci": (0.0, 0.2), "auc": 0.95,
        "auc_ci": (0.85, 1.0), "robots_called": called, "people_called": 0.0,
        "robots_called_at_5pct": called,
    }  # fmt: skip


def test_each_robot_kind_and_layout_gets_a_line_per_crop() -> None:
    results = {
        "fusion_sha256": "58cefa25" + "0" * 56,
        "threshold": 0.5,
        B.crop_name(30.0): {
            "failed": 0,
            "median_seconds": {"human_agent": 21.0, "recorded_robot": 30.0},
            "pairs": {"recorded_robot | mono | both languages": _row(0.154, 0.667)},
        },
        B.crop_name(B.WHOLE_CALL_S): {
            "failed": 1,
            "median_seconds": {"human_agent": 21.0, "recorded_robot": 62.0},
            "pairs": {"recorded_robot | mono | both languages": _row(0.077, 0.8)},
        },
    }
    text = B.markdown(results)
    assert (
        "| recorded_robot (15 / 13) | mono | both languages | first 30 s | 15.4 % [0.0-20.0] |"
        in text
    )
    assert (
        "| recorded_robot (15 / 13) | mono | both languages | whole call | 7.7 % [0.0-20.0] |"
        in text
    )
    assert "- whole call: human_agent 21 s, recorded_robot 62 s (1 calls without a verdict)" in text
    assert "tts_robot" not in text  # no such rows measured: no line
