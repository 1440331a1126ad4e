"""A candidate voice head against the shipped one: sets, bootstrap units, paired figures."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from models.training import eval_voice_candidate as E
from models.training.eval_pypi_speech import COMMERCIAL, OWN, PYPI
from tests.models.support import corpus_row as row


def test_bootstrap_units() -> None:
    kokoro = row("k", label="robot", source="kokoro", engine="kokoro", speaker="kokoro:v1")
    polly = row("p", label="robot", source="commercial_tts", engine="Polly", speaker="zhiyu")
    person = row("h", speaker="spk", source="pkg")
    assert E.cluster(kokoro, E.KOKORO) == "kokoro:v1"  # one voice, not the whole engine
    assert E.cluster(polly, COMMERCIAL) == "zhiyu"  # a voice, not the vendor
    assert E.cluster(person, PYPI) == "pkg"  # a package is one source
    assert E.cluster(person, OWN) == "spk"


def test_a_clip_in_two_groups_is_scored_once_by_each_head(monkeypatch: pytest.MonkeyPatch) -> None:
    heard: list[str] = []

    def channel(r: Any, *, salt: str) -> Any:
        heard.append(r.id)
        return SimpleNamespace(caller=lambda: r.id)

    monkeypatch.setattr(E, "channel_audio", channel)
    scorers = {
        "shipped": SimpleNamespace(score=lambda a: SimpleNamespace(log_odds=1.0)),
        "candidate": SimpleNamespace(score=lambda a: None),  # no speech window
    }
    person = row("h")
    groups = {E.KOKORO_PEOPLE: [person], OWN: [person, row("g")]}
    records = E.score(scorers, groups)
    assert heard == ["src/h", "src/g"]
    assert records[0]["groups"] == [E.KOKORO_PEOPLE, OWN]
    assert (records[0]["shipped"], records[0]["candidate"]) == (1.0, None)


def record(i: int, groups: list[str], *, y: int, kind: str = "", language: str = "en") -> dict:
    return {
        "id": f"c{i}",
        "groups": groups,
        "language": language,
        "y": y,
        "cluster": f"u{i % 6}",
        "kind": kind,
        "shipped": float(i % 7) - 3 + y,
        "candidate": float(i % 5) - 2 + 2 * y,
    }


def test_comparisons_pair_each_robot_set_with_its_people() -> None:
    records = [
        *(record(i, [E.KOKORO], y=1, kind="neutral" if i % 2 else "sales") for i in range(12)),
        *(record(100 + i, [E.KOKORO_PEOPLE, OWN], y=0) for i in range(12)),
        *(record(200 + i, [COMMERCIAL], y=1) for i in range(12)),
        {**record(300, [COMMERCIAL], y=1), "candidate": None},  # not scored by one head: out
    ]
    got = {(c["robots"], c["people"], c["language"]): c for c in E.comparisons(records)}
    assert set(got) == {
        (E.KOKORO, E.KOKORO_PEOPLE, "en"),
        (E.KOKORO_NEUTRAL, E.KOKORO_PEOPLE, "en"),
        (COMMERCIAL, OWN, "en"),
    }  # no PyPI people here, no Mandarin
    assert got[(E.KOKORO, E.KOKORO_PEOPLE, "en")]["n_robots"] == 12
    assert got[(E.KOKORO_NEUTRAL, E.KOKORO_PEOPLE, "en")]["n_robots"] == 6
    assert got[(COMMERCIAL, OWN, "en")]["n_robots"] == 12
    assert all(c["n_people"] == 12 for c in got.values())
    table = E.markdown(list(got.values()))
    assert table.count("\n") == 4 and "->" in table


def test_the_embedding_of_the_same_audio_is_computed_once() -> None:
    calls: list[int] = []

    class Inner:
        model_id = "aasist/x"

        def embed(self, samples: np.ndarray) -> np.ndarray:
            calls.append(samples.size)
            return samples[:2] * 2

    shared = E.LastEmbedding(Inner())
    a, b = np.ones(8, np.float32), np.zeros(6, np.float32)
    assert shared.model_id == "aasist/x"
    assert np.array_equal(shared.embed(a), shared.embed(a.copy()))
    shared.embed(b)
    shared.embed(a)
    assert calls == [8, 6, 8]
