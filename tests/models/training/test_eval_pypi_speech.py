"""People from unseen recording chains (PyPI speech) through the detector: groups and tables."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from models.training import eval_pypi_speech as E
from models.training.text_features import MARK_BEGIN
from tests.models.support import corpus_row as row


def record(i: int, group: str, *, y: int = 0, logit: float, voice: float | None, **kw: object):  # type: ignore[no-untyped-def]
    base = {
        "id": f"{group}/{i}",
        "group": group,
        "source": f"s{i % 3}",
        "chain": f"c{i % 3}",
        "voice": f"v{i % 4}",
        "language": "en",
        "y": y,
        "logit": logit,
        "voice_log_odds": voice,
    }
    return {**base, **kw}


def test_samples_are_pypi_people_our_test_people_and_the_commercial_voices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = [
        row("own_test", source="a", split="test"),
        row("own_train", source="a"),
        row("own_mix", source="a", split="test", parts=("src/own_test",)),
        row("own_fr", source="a", split="test", language="fr"),
        *(
            row(f"tts{i}", source="commercial_tts", label="robot", engine=f"e{i}", split="test")
            for i in range(8)
        ),
    ]
    people = [row("pypi", source="pypi_demo", split="test", root="cache")]
    monkeypatch.setattr(E, "read_manifests", lambda: rows)
    monkeypatch.setattr(E, "held_out_people", lambda: people)
    got = E.samples()
    assert [r.id for r in got[E.PYPI]] == ["src/pypi"]
    assert [r.id for r in got[E.OWN]] == ["src/own_test"]
    assert len(got[E.COMMERCIAL]) == 8


def test_rates_count_clips_without_a_verdict_apart_and_resample_sources() -> None:
    no_verdict = record(3, E.PYPI, logit=0.0, voice=0.0, error="empty_audio")
    del no_verdict["logit"]
    members = [
        record(0, E.PYPI, logit=2.0, voice=3.0),
        record(1, E.PYPI, logit=-2.0, voice=-1.0),
        record(2, E.PYPI, logit=-3.0, voice=None),  # no speech window: the voice says nothing
        no_verdict,
    ]
    got = E.rate_row(members, threshold=0.5)
    assert (got["n"], got["judged"], got["voice_judged"], got["groups"]) == (4, 3, 2, "3 sources")
    assert got["called_robot"] == pytest.approx(1 / 3)
    assert got["voice_synthetic"] == pytest.approx(1 / 2)  # of the clips the voice head read
    lo, hi = got["called_robot_ci"]
    assert 0.0 <= lo <= got["called_robot"] <= hi <= 1.0


def test_auc_needs_both_classes_and_reads_the_voice_and_the_fused_score() -> None:
    people = [record(i, E.PYPI, logit=-1.0 - i, voice=-2.0 + 0.1 * i) for i in range(6)]
    robots = [record(i, E.COMMERCIAL, y=1, logit=-2.0, voice=1.0 + i) for i in range(4)]
    assert E.auc_row(people, []) == {}
    got = E.auc_row(people, robots)
    assert (got["voice_people"], got["voice_robots"]) == (6, 4)
    assert got["voice_auc"] == pytest.approx(1.0)
    assert got["fused_auc"] == pytest.approx(4.5 / 6)  # -2 beats four people, ties one


def test_tables_and_report(tmp_path: Path) -> None:
    records = [record(i, E.PYPI, logit=-2.0, voice=-1.0 + i % 2 * 2) for i in range(6)]
    records += [record(i, E.OWN, logit=-2.0, voice=-2.0) for i in range(6)]
    records += [record(i, E.COMMERCIAL, y=1, logit=1.0, voice=2.0) for i in range(4)]
    t = E.tables(records, threshold=0.5)
    assert set(t["rates"]) == {f"en | {E.PYPI}", f"en | {E.OWN}", f"en | {E.COMMERCIAL}"}
    assert t["rates"][f"en | {E.COMMERCIAL}"]["called_robot"] == 1.0  # caught
    assert t["rates"][f"en | {E.PYPI}"]["voice_synthetic"] == pytest.approx(0.5)
    assert len(t["chains"]) == 3 and not any(
        math.isnan(r["called_robot"]) for r in t["chains"].values()
    )
    out = {"seconds": 1.0, "head": "ab" * 32, "fusion": "cd" * 32, "tables": t, "records": records}
    text = E.render(out)
    assert "| en | PyPI packages (unseen chains) | 6 (6; 6) | 3 sources |" in text
    report = tmp_path / "r.md"
    report.write_text("by hand\n")
    (tmp_path / "res.json").write_text(json.dumps(out))
    assert (
        E.main(["--render", "--results", str(tmp_path / "res.json"), "--report", str(report)]) == 0
    )
    written = report.read_text()
    assert (
        written.startswith("by hand\n")
        and MARK_BEGIN.replace(":begin", ":pypi_speech:begin") in written
    )
    assert np.isfinite(t["aucs"][f"en | {E.PYPI}"]["voice_auc"])
