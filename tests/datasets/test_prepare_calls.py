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


def test_splits_and_roles_are_stable() -> None:
    mod = load_builder("prepare_calls")
    assert mod.speaker_split("aishell_BAC009S0150") == "train"
    names = [f"spk{i}" for i in range(400)]
    splits = [mod.speaker_split(n) for n in names]
    assert {"train", "dev", "test"} == set(splits)
    assert splits == [mod.speaker_split(n) for n in names]
    assert {mod.speaker_role(n) for n in names} == {"prompt", "agent", "callee"}
    assert dataclasses.is_dataclass(mod.Piece)
