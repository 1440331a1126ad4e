"""The voice studies' report sets (``models.training.synth_fit.report_sets``)."""

from __future__ import annotations

import dataclasses

from models.training.synth_data import TrainConfig
from models.training.synth_fit import report_sets
from tests.models.training.test_synth_select import row


def test_report_sets_keep_every_person_and_split_the_robots_by_kind() -> None:
    people = [
        row("p_en", label="human"),
        dataclasses.replace(row("p_zh", label="human"), language="zh"),
    ]
    tts = row("t", label="robot", family="espeak-ng")
    copy = row("c", label="robot", family="world", kind="resynthesis")
    commercial = dataclasses.replace(
        row("m", label="robot", family="polly"), source="commercial_tts"
    )
    mix = row("x", label="robot", family="espeak-ng")
    sets = report_sets([*people, tts, copy, commercial], TrainConfig(), mixtures=[mix])

    def ids(name: str) -> set[str]:
        return {r.id for r in sets[name]}

    assert ids("test TTS/VC") == {"p_en", "p_zh", "t", "m"}
    assert ids("test copy synthesis") == {"p_en", "p_zh", "c"}
    assert ids("held-out commercial") == {"p_en", "p_zh", "m"}
    assert ids("test call mixtures") == {"x"}
    assert ids("test TTS/VC en") == {"p_en", "t", "m"} and ids("test TTS/VC zh") == {"p_zh"}
    assert "test call mixtures" not in report_sets(people, TrainConfig())
