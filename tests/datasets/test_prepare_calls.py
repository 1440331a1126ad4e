"""The call simulator (datasets/prepare_calls.py) on generated clips."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from models.training.corpus import seeded_rng, write_clip

from .test_builders import load_builder, voiced
from .test_corpus import row


@pytest.fixture
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ROBOCALL_CACHE_DIR", str(tmp_path))
    mod = load_builder("prepare_calls")
    mod._clip.cache_clear()
    rows = []
    for i, (speaker, f0) in enumerate((("agent", 120.0), ("callee", 220.0), ("tts", 180.0))):
        for k in range(6):
            rel = f"clips/{speaker}_{k}.flac"
            x = np.concatenate([voiced(duration_s=1.5 + 0.3 * k, f0=f0), np.zeros(4000)])
            write_clip(tmp_path / "corpus" / rel, x, sample_rate_hz=16_000)
            rows.append(
                row(10 * i + k, path=rel, root="cache", speaker=speaker, duration_s=2.0, text="")
            )
    mod._ROWS.clear()
    mod._ROWS.update({r.id: r for r in rows})
    voices = {}
    for speaker in ("agent", "callee", "tts"):
        pieces = []
        for r in rows:
            if r.speaker == speaker:
                pieces += mod.cut_pieces(r, mod._clip(r.id))
        voices[speaker] = mod.Voice(speaker, "en", "dev", tuple(pieces))
    return mod, voices


def test_cut_pieces_are_short_speech(calls) -> None:  # type: ignore[no-untyped-def]
    mod, voices = calls
    for v in voices.values():
        assert len(v.pieces) == 6
        assert all(0.4 <= p.end_s - p.start_s <= mod.PIECE_S[1] + 2.0 for p in v.pieces)


def test_robot_call_replays_prompts_with_constant_latency(calls) -> None:  # type: ignore[no-untyped-def]
    mod, voices = calls
    caller = mod.Caller("tts_robot", voices["tts"], "camp", seeded_rng("t", 1))
    events = mod.simulate_call(caller, voices["callee"], seeded_rng("t", 2), 40.0)
    kinds = {e.kind for e in events if e.role == "caller"}
    assert "backchannel" not in kinds and "repair" not in kinds
    assert all(e.prompt_id.startswith("tts#") for e in events if e.role == "caller")
    assert events[-1].end_s > 20.0
    again = mod.simulate_call(
        mod.Caller("tts_robot", voices["tts"], "camp", seeded_rng("t", 1)),
        voices["callee"],
        seeded_rng("t", 2),
        40.0,
    )
    assert mod.segments_of(events) == mod.segments_of(again)  # deterministic


def test_agent_call_and_render(calls) -> None:  # type: ignore[no-untyped-def]
    mod, voices = calls
    caller = mod.Caller("human_agent", voices["agent"], "x", seeded_rng("a", 1))
    events = mod.simulate_call(caller, voices["callee"], seeded_rng("a", 2), 60.0)
    assert any(e.kind == "backchannel" for e in events)
    assert all(e.prompt_id == "" for e in events)
    a, b, codec = mod.render(events, seeded_rng("a", 3))
    assert a.shape == b.shape and codec in ("mulaw", "alaw", "amr_nb", "gsm")
    dry = mod.render(events, seeded_rng("a", 3), audio=False)
    assert dry[2] == codec and not dry[0].any()
    segs = json.loads(json.dumps(mod.segments_of(events)))
    assert {s["role"] for s in segs} == {"caller", "callee"}


def test_roles_fit_the_speech() -> None:
    mod = load_builder("prepare_calls")

    def voice(key: str, n: int, piece_s: float = 2.5) -> object:
        pieces = tuple(mod.Piece(f"{key}/{i}", 0.0, piece_s, "") for i in range(n))
        return mod.Voice(key, "zh", "test", pieces)

    voices = [voice("long", 9), voice("mid", 3), voice("short", 3, 1.0), voice("a", 1)]
    voices += [voice(f"one{i}", 1) for i in range(3)]
    roles = mod.assign_roles(voices)
    assert roles == mod.assign_roles(voices[::-1])  # stable, not order-dependent
    assert roles["long"] == "prompt" and roles["mid"] == "agent"
    assert roles["short"] == "callee"  # 3 s of speech: too little for an agent
    assert {roles[k] for k in ("a", "one0", "one1", "one2")} == {"callee"}
    many = [voice(f"s{i}", 8) for i in range(30)]
    counts = {r: sum(v == r for v in mod.assign_roles(many).values()) for r in mod.ROLES}
    assert all(c == 10 for c in counts.values())  # a big split: a third each


def test_pools_take_the_corpus_split(calls) -> None:  # type: ignore[no-untyped-def]
    mod, _ = calls
    split = {"agent": "test", "callee": "test", "tts": "dev"}
    robot = {"label": "robot", "kind": "tts", "engine": "espeak"}
    rows = [
        dataclasses.replace(r, split=split[r.speaker], **(robot if r.speaker == "tts" else {}))
        for r in mod._ROWS.values()
    ]
    pools = mod.build_pools(rows)
    assert [v.key for v in pools.tts[("en", "dev")]] == ["tts|espeak"]
    humans = [v for pool in (pools.prompt, pools.agent, pools.callee) for v in pool.values()]
    assert {v.key: v.split for vs in humans for v in vs} == {"agent": "test", "callee": "test"}
    assert ("en", "train") not in pools.callee
