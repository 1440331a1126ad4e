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
    # the same call on a wideband line: the same draws after it (caller channel, mono gain)
    rng_narrow, rng_wide = seeded_rng("a", 3), seeded_rng("a", 3)
    mod.render(events, rng_narrow)
    wa, wb, wide = mod.render(events, rng_wide, wideband=True)
    assert wide == "wideband" and wa.shape == a.shape
    assert rng_narrow.integers(2**31) == rng_wide.integers(2**31)
    spectrum = np.abs(np.fft.rfft(wa)) ** 2
    freqs = np.fft.rfftfreq(wa.size, 1 / mod.STORE_RATE_HZ)
    narrow = np.abs(np.fft.rfft(a)) ** 2
    above = (freqs > 4_500) & (freqs < 6_500)
    assert spectrum[above].sum() / spectrum.sum() > 10 * narrow[above].sum() / narrow.sum()


def _voice(mod, key: str, n: int, piece_s: float = 2.5, *, source: str = "", split: str = "dev"):  # type: ignore[no-untyped-def]
    """A voice of ``n`` pieces, two per clip (no audio: the pure functions need none)."""
    pieces = tuple(
        mod.Piece(f"{key}/{i // 2}", (i % 2) * 10.0, (i % 2) * 10.0 + piece_s, "") for i in range(n)
    )
    return mod.Voice(key, "en", split, pieces, source=source)


def test_roles_fit_the_speech() -> None:
    mod = load_builder("prepare_calls")
    voices = [_voice(mod, "long", 9), _voice(mod, "mid", 3), _voice(mod, "short", 2, 1.0)]
    voices += [_voice(mod, f"one{i}", 1) for i in range(3)]
    roles = mod.assign_roles(voices)
    assert roles == mod.assign_roles(voices[::-1])  # stable, not order-dependent
    assert {roles["long"], roles["mid"]} == {"prompt", "agent"}  # the two who fit both
    assert roles["short"] == "callee"  # two pieces, 2 s of speech: no prompt set, no agent
    assert {roles[k] for k in ("one0", "one1", "one2")} == {"callee"}
    many = [_voice(mod, f"s{i}", 8) for i in range(30)]
    counts = {r: sum(v == r for v in mod.assign_roles(many).values()) for r in mod.ROLES}
    assert counts == {"prompt": 5, "agent": 5, "callee": 20}  # as ROLE_SHARES shares them out


def test_roles_are_given_within_each_source() -> None:
    mod = load_builder("prepare_calls")
    studio = [_voice(mod, f"ivr{i}", 8, source="studio") for i in range(4)]
    readers = [_voice(mod, f"reader{i}", 8, source="books") for i in range(4)]
    short = [_voice(mod, f"short{i}", 2, 4.0, source="other") for i in range(3)]
    roles = mod.assign_roles([*studio, *readers, *short])
    for group in (studio, readers):  # both sources give a prompt set and an agent
        assert {roles[v.key] for v in group} >= {"prompt", "agent"}
    assert {roles[v.key] for v in short} == {"callee"}


def _pools(mod, voices: dict[str, list]):  # type: ignore[no-untyped-def]
    cell = ("en", "dev")
    return mod.Pools(
        tts={cell: voices.get("tts", [])},
        prompt={cell: voices.get("prompt", [])},
        agent={cell: voices.get("agent", [])},
        callee={cell: voices.get("callee", [])},
        rows={},
    )


def _en(missing: dict[str, int]) -> dict[str, int]:
    """The English cells of ``allocate_calls``' shortfall (the pools here hold no Mandarin)."""
    return {k: n for k, n in missing.items() if k.startswith("en/")}


def _speech(plan) -> set:  # type: ignore[no-untyped-def]
    """The pieces a call's people say (a robot's prompts are not a person's speech)."""
    people = {plan.callee.pieces}
    if plan.kind == "human_agent":
        people.add(plan.caller.pieces)
    return {p for pieces in people for p in pieces}


def test_no_agent_or_callee_speech_in_two_calls() -> None:
    mod = load_builder("prepare_calls")
    tts = dataclasses.replace(_voice(mod, "tts|espeak", 6), engine="espeak")
    pools = _pools(
        mod,
        {
            "tts": [tts],
            "prompt": [_voice(mod, "p0", 8, source="a"), _voice(mod, "p1", 8, source="b")],
            "agent": [_voice(mod, f"ag{i}", 12, source="ab"[i % 2]) for i in range(4)],
            "callee": [_voice(mod, f"c{i}", 10, source="a") for i in range(12)],
        },
    )
    plans, missing = mod.allocate_calls(pools, {"dev": 6})
    assert len(plans) == 18 and not _en(missing)  # six calls of each kind
    seen: dict = {}
    for plan in plans:
        for piece in _speech(plan):
            assert piece not in seen, f"{piece} in {seen.get(piece)} and {plan.call_id}"
            seen[piece] = plan.call_id
        assert plan.callee.key != plan.caller.key.split("|")[0]
    # a robot's prompts are the same audio in every call of its campaign
    by_campaign: dict = {}
    for plan in plans:
        if plan.campaign:
            by_campaign.setdefault(plan.campaign, set()).add(plan.caller.pieces)
    assert by_campaign and all(len(sets) == 1 for sets in by_campaign.values())
    # an agent's several calls say different things
    agent_calls = [p for p in plans if p.kind == "human_agent"]
    assert len({p.caller.key for p in agent_calls}) < len(agent_calls)


def test_every_dev_cell_gets_calls_from_the_same_sources() -> None:
    mod = load_builder("prepare_calls")
    # the confound of calls v2: every prompt speaker of one source, every agent of another
    voices = [_voice(mod, f"ivr{i}", 10, source="ivr") for i in range(3)]
    voices += [_voice(mod, f"book{i}", 10, source="books") for i in range(3)]
    voices += [_voice(mod, f"c{i}", 8, source="books") for i in range(30)]
    roles = mod.assign_roles(voices)
    by_role: dict = {r: [v for v in voices if roles[v.key] == r] for r in mod.ROLES}
    tts = dataclasses.replace(_voice(mod, "tts|espeak", 6), engine="espeak")
    plans, missing = mod.allocate_calls(_pools(mod, {**by_role, "tts": [tts]}), {"dev": 4})
    kinds = {p.kind for p in plans}
    assert kinds == set(mod.CALLER_KINDS) and not _en(missing)  # no empty cell
    sources = {
        kind: sorted(p.caller.source for p in plans if p.kind == kind)
        for kind in ("recorded_robot", "human_agent")
    }
    assert sources["recorded_robot"] == sources["human_agent"]  # call for call
    assert set(sources["human_agent"]) == {"ivr", "books"}


def test_a_source_with_one_speaker_lends_its_other_clips_to_agents() -> None:
    mod = load_builder("prepare_calls")
    solo = _voice(mod, "solo", 30, source="solo")  # the only speaker of its source
    callees = [_voice(mod, f"c{i}", 6, source="x") for i in range(20)]
    plans, _ = mod.allocate_calls(_pools(mod, {"prompt": [solo], "callee": callees}), {"dev": 3})
    agents = [p for p in plans if p.kind == "human_agent"]
    robots = [p for p in plans if p.kind == "recorded_robot"]
    assert agents and robots
    prompts = set(robots[0].caller.pieces)
    assert all(not prompts & set(a.caller.pieces) for a in agents)


def test_cells_that_cannot_be_filled_are_counted() -> None:
    mod = load_builder("prepare_calls")
    callees = [_voice(mod, f"c{i}", 4, source="x") for i in range(2)]
    agent = _voice(mod, "ag", 12, source="x")
    plans, missing = mod.allocate_calls(
        _pools(mod, {"agent": [agent], "callee": callees}), {"dev": 5}
    )
    assert missing["en/tts_robot/dev"] == 5 and missing["en/recorded_robot/dev"] == 5
    # two callees of 10 s each: four bundles of >= 3 s, one per call, for five agent calls
    assert len(plans) + missing["en/human_agent/dev"] == 5
    assert 0 < len(plans) < 5


def test_a_short_script_replays_its_pitch() -> None:
    mod = load_builder("prepare_calls")
    voice = _voice(mod, "p", 3)
    caller = mod.Caller("recorded_robot", voice, "camp", seeded_rng("s", 1))
    caller._prompt = lambda index: index  # type: ignore[method-assign]
    assert caller.turn("answer", first=True, last=False) == [0]
    assert caller.turn("objection", first=False, last=False) == [1]
    assert caller.turn("question", first=False, last=False) == [1]
    assert caller.turn("answer", first=False, last=False) == [1]
    assert caller.turn("answer", first=False, last=True) == [2]


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


def test_a_notice_is_a_piece_no_call_says_and_opens_every_agent_call(calls) -> None:  # type: ignore[no-untyped-def]
    mod, voices = calls
    caller = mod.Caller("human_agent", voices["agent"], "x", seeded_rng("n", 1))
    events = mod.simulate_call(caller, voices["callee"], seeded_rng("n", 2), 30.0)
    before = [(e.kind, e.start_s) for e in events]
    notice = voices["callee"].pieces[0]
    opened = mod.with_notice(events, notice)
    first = opened[0]
    assert (first.role, first.kind, first.part) == ("caller", "notice", notice.row_id)
    shift = opened[1].start_s - before[0][1]
    assert shift == pytest.approx(0.3 + first.samples.size / 16_000 + mod.NOTICE_GAP_S)
    assert [(e.kind, round(e.start_s - shift, 6)) for e in opened[1:]] == [
        (k, round(t, 6)) for k, t in before
    ]
    assert np.array_equal(first.samples, mod.piece_audio(notice))  # the same audio every call


def test_the_notice_is_left_over_speech_of_its_cell() -> None:
    mod = load_builder("prepare_calls")
    callee = _voice(mod, "c0", 6, piece_s=3.0, source="a")
    pools = _pools(
        mod,
        {
            "prompt": [_voice(mod, "p0", 8, source="a")],
            "agent": [_voice(mod, "ag0", 6, source="a")],
            "callee": [callee],
        },
    )
    plans, _ = mod.allocate_calls(pools, {"dev": 1})
    said = {p for plan in plans for v in (plan.caller, plan.callee) for p in v.pieces}
    notices = mod.notice_pieces(pools, plans)
    notice = notices[("en", "dev")]
    assert notice not in said
    assert mod.NOTICE_S[0] <= notice.end_s - notice.start_s <= mod.NOTICE_S[1]
    assert mod.notice_pieces(pools, plans) == notices  # chosen by hash, not by order
    assert mod.notice_pieces(pools, []) == {}  # no agent calls, no notice
