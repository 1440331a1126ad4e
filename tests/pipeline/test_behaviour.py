"""Behaviour cues on hand-built turn timelines and generated audio (no models)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.acoustic import LATENCY_ABOVE_NOISE_DB, latency_cues
from pipeline.behaviour import (
    BEHAVIOUR_RULES,
    LEG_HOLD_DB,
    MAX_WEIGHT,
    MIX_NOISE_MARGIN_DB,
    PartyTurns,
    backchannels,
    barge_ins,
    behaviour_cues,
    party_legs,
    reply_latencies,
    same_start,
    stereo_turns,
    text_overlap,
    turn_texts,
)
from pipeline.types import Evidence, Segment, Transcript

SR = 16_000


def alternating(latencies: list[float], *, turn_s: float = 3.0, reply_s: float = 2.0) -> PartyTurns:
    """Caller turn, callee reply, caller after ``latency`` ... (one caller turn per latency)."""
    caller, callee, t = [], [], 0.5
    for lat in latencies:
        caller.append((t, t + turn_s))
        a = t + turn_s + 0.6
        callee.append((a, a + reply_s))
        t = a + reply_s + lat
    caller.append((t, t + turn_s))
    return PartyTurns(tuple(caller), tuple(callee), "test")


def by_name(turns: PartyTurns, **kwargs: object) -> dict[str, float]:
    ev = behaviour_cues(turns, **kwargs)  # type: ignore[arg-type]
    assert all(abs(e.weight) <= MAX_WEIGHT and e.detail.endswith(".") for e in ev)
    assert all(e.source == "structure" for e in ev)
    return {e.name: e.weight for e in ev}


def cue(turns: PartyTurns, name: str) -> Evidence:
    found = [e for e in behaviour_cues(turns) if e.name == name]
    assert len(found) == 1 and found[0].detail_zh and found[0].code
    return found[0]


def test_constant_latency_scores_robot_and_varied_latency_scores_human(
    rng: np.random.Generator,
) -> None:
    robot = alternating([0.8 + 0.02 * float(rng.standard_normal()) for _ in range(6)])
    human = alternating([float(v) for v in np.clip(rng.normal(0.5, 0.6, 6), -0.3, 2.0)])
    lat = reply_latencies(robot)
    assert len(lat) == 6 and all(0.7 < v < 0.9 for v, _ in lat)
    robot_cue, human_cue = (cue(t, "reply_latency_spread_s") for t in (robot, human))
    assert robot_cue.value < 0.12 < 0.25 < human_cue.value
    # the one latency cue of a mono call, so it carries weight; the fusion's fit on the dev
    # calls scales it beside acoustic's response_latency_std_s (issue 13)
    assert robot_cue.weight > 0 > human_cue.weight


def test_too_few_replies_give_no_latency_cue() -> None:
    assert "reply_latency_spread_s" not in by_name(alternating([0.8, 0.8]))


def test_barge_in_talk_on_and_yield() -> None:
    caller = ((0.0, 6.0), (8.0, 14.0), (16.0, 22.0))
    callee = ((2.0, 3.0), (10.0, 11.0), (23.0, 24.0))
    talks_on = PartyTurns(caller, callee, "test")
    assert [d for _, d in barge_ins(talks_on)] == [4.0, 4.0]
    assert cue(talks_on, "barge_in_talk_on_fraction").value == 1.0
    yields = PartyTurns(((0.0, 2.5), (8.0, 10.4), (16.0, 22.0)), callee, "test")
    assert cue(yields, "barge_in_talk_on_fraction").value == 0.0
    # talking on is a robot's sign; yielding is no sign of a person (a dialer that honours
    # barge-in yields too), so it weighs nothing
    assert cue(talks_on, "barge_in_talk_on_fraction").weight > 0
    assert cue(yields, "barge_in_talk_on_fraction").weight == 0.0
    assert "barge_in_talk_on_fraction" not in by_name(talks_on, is_stereo=False)


def test_backchannels_inside_callee_speech_count() -> None:
    callee = tuple((10.0 * i, 10.0 * i + 6.0) for i in range(4))
    caller_bc = tuple((10.0 * i + 3.0, 10.0 * i + 3.3) for i in range(4))
    with_bc = PartyTurns(tuple(sorted(caller_bc + ((7.0, 9.5),))), callee, "test")
    assert len(backchannels(with_bc)) == 4
    assert by_name(with_bc)["backchannel_rate_per_min"] < 0
    silent = PartyTurns(((7.0, 9.5), (17.0, 19.5)), callee, "test")
    assert backchannels(silent) == []
    assert by_name(silent)["backchannel_rate_per_min"] > 0
    # where: the first listener sound, or (none) the callee's speech a listener would fill
    assert cue(with_bc, "backchannel_rate_per_min").span_s == (3.0, 3.3)
    assert cue(silent, "backchannel_rate_per_min").span_s == (0.0, 36.0)


def _prompt(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """Noise bursts with a syllable-rate envelope: a distinct 'sentence' per seed."""
    n = int(seconds * SR)
    env = np.repeat(rng.uniform(0.05, 1.0, n // 1600 + 1), 1600)[:n]
    return (rng.standard_normal(n) * env * 0.1).astype(np.float32)


def test_restarted_prompt_is_found_and_a_new_sentence_is_not(rng: np.random.Generator) -> None:
    a, b = _prompt(rng, 3.0), _prompt(rng, 3.0)
    gap = np.zeros(SR * 2, dtype=np.float32)
    x = np.concatenate([a[: SR * 2], gap, a, gap, b])
    assert same_start(x, 0.0, 4.0) > 0.95
    assert same_start(x, 4.0, 9.0) < 0.5
    turns = PartyTurns(((0.0, 2.0), (4.0, 7.0), (9.0, 12.0)), ((2.2, 3.6), (7.3, 8.6)), "t")
    ev = {e.name: e for e in behaviour_cues(turns, caller_samples=x)}
    assert ev["turn_restart_count"].value == 1.0
    assert ev["turn_restart_count"].span_s is not None


def test_stereo_turns_follow_each_channel(synth) -> None:  # type: ignore[no-untyped-def]
    voice = synth("robot", duration_s=1.0)
    silence = np.zeros(SR, dtype=np.float32)
    caller = np.concatenate([voice, silence, silence])
    callee = np.concatenate([silence, silence, voice])
    turns = stereo_turns(caller, callee)
    assert turns.caller[0][0] == pytest.approx(0.0, abs=0.05)
    assert turns.callee[0][0] == pytest.approx(2.0, abs=0.05)


def test_text_overlap_and_relevance_cue() -> None:
    assert text_overlap("what is the interest rate", "the interest rate is 3 percent") > 0.5
    assert text_overlap("你们是哪家公司", "我们公司是正规的贷款机构") > 0.0
    assert text_overlap("what is the interest rate", "press one now") == 0.0
    turns = alternating([0.5, 0.6, 0.4, 0.7])
    seg = lambda a, b, t: Segment(a, b, t, -0.2, 0.01, 1.2)  # noqa: E731
    callee = Transcript(
        "en", 0.9, tuple(seg(a, b, "what is the interest rate") for a, b in turns.callee)
    )
    caller = Transcript(
        "en", 0.9, tuple(seg(a, b, "press one now for an offer") for a, b in turns.caller)
    )
    pairs = turn_texts(turns, caller, callee)
    assert len(pairs) == 4
    ev = {e.name: e for e in behaviour_cues(turns, text_pairs=pairs)}
    assert ev["reply_relevance"].value == 0.0
    # reported, not weighed, until measured on calls whose replies can relate to the callee
    assert ev["reply_relevance"].weight == 0.0 and ev["reply_relevance"].span_s is not None


def test_rules_are_bounded() -> None:
    for rule in BEHAVIOUR_RULES.values():
        for v in (-1e9, -1.0, 0.0, 0.1, 0.5, 1.0, 5.0, 1e9):
            assert abs(rule.weight(v)) <= MAX_WEIGHT


def _two_voices(
    rng: np.random.Generator, latencies: list[float]
) -> tuple[np.ndarray, np.ndarray, PartyTurns]:
    """Caller and callee channels (speech-like bursts over line noise) taking turns with the
    caller answering after each ``latency``, and their true turns."""
    n = int(40 * SR)
    caller = (rng.standard_normal(n) * 0.002).astype(np.float32)  # line noise, about -54 dBFS
    callee = (rng.standard_normal(n) * 0.002).astype(np.float32)
    turns = alternating(latencies, turn_s=2.5, reply_s=1.5)
    for leg, spans in ((caller, turns.caller), (callee, turns.callee)):
        for a, b in spans:
            i, j = int(a * SR), int(b * SR)
            leg[i:j] += _prompt(rng, (j - i) / SR)[: j - i] * 3.0
    return caller, callee, turns


def test_party_legs_turn_the_other_party_down_to_the_noise_floor(rng: np.random.Generator) -> None:
    caller, callee, turns = _two_voices(rng, [0.4, 0.9, 0.2, 1.3])
    mix = caller + callee
    c_leg, e_leg = party_legs(mix, turns)
    assert c_leg.shape == e_leg.shape == mix.shape and c_leg.dtype == np.float32

    def level(x: np.ndarray, span: tuple[float, float]) -> float:
        seg = x[int(span[0] * SR) : int(span[1] * SR)]
        return float(10 * np.log10(np.mean(seg.astype(np.float64) ** 2)))

    noise = level(mix, (turns.caller[0][1] + 0.1, turns.callee[0][0] - 0.1))
    a_callee_turn, a_caller_turn = turns.callee[1], turns.caller[1]
    assert level(c_leg, a_caller_turn) == pytest.approx(level(mix, a_caller_turn))
    assert level(c_leg, a_callee_turn) < noise + 3.0 < level(mix, a_callee_turn)
    assert level(e_leg, a_caller_turn) < noise + 3.0
    assert level(e_leg, a_callee_turn) == pytest.approx(level(mix, a_callee_turn))
    # the pause between the parties stays as recorded in both legs
    gap = (a_caller_turn[1] + 0.1, turns.callee[1][0] - 0.1)
    assert level(c_leg, gap) == pytest.approx(level(mix, gap), abs=0.5)
    # a stretch both parties hold stays in both legs
    both = PartyTurns(((0.0, 3.0),), ((1.0, 3.0),), "t")
    c2, e2 = party_legs(mix, both)
    assert level(c2, (1.5, 2.5)) == pytest.approx(level(e2, (1.5, 2.5)))


def test_mono_turns_carry_the_stereo_timing_cues(rng: np.random.Generator) -> None:
    caller, callee, turns = _two_voices(rng, [0.35, 0.4, 0.38, 0.42, 0.36])
    stereo = {e.name: e for e in latency_cues(caller, callee)}
    mono = {
        e.name: e for e in behaviour_cues(turns, caller_samples=caller + callee, is_stereo=False)
    }
    names = {"response_latency_median_s", "talk_over_fraction", "response_latency_std_s"}
    assert names <= set(stereo) and names <= set(mono)
    for name in names:  # the legs give the stereo channels' turns, within a frame or two
        assert mono[name].value == pytest.approx(stereo[name].value, abs=0.05)
    # without the audio, or on stereo (acoustic_cues measures them there), they are not added
    assert not names & {e.name for e in behaviour_cues(turns, is_stereo=False)}
    assert not names & {e.name for e in behaviour_cues(turns, caller_samples=caller)}
    # one voice (no callee): no turn-taking to measure
    alone = PartyTurns(turns.caller, (), "one voice")
    assert behaviour_cues(alone, caller_samples=caller + callee, is_stereo=False) == ()


def test_mono_legs_keep_a_quiet_partys_last_words(rng: np.random.Generator) -> None:
    """The mix's noise floor is the louder line's: a callee on a quiet line ends each turn
    with words 8 dB over it, under the latency gate (10 dB) but over the mix's speech gate
    (6 dB); a stereo leg, over its own floor, keeps them. The legs' turns hold on to the mix's
    gate, so the caller's replies read as late as on stereo, not 0.5 s later."""
    assert LEG_HOLD_DB == (LATENCY_ABOVE_NOISE_DB or 0.0) - MIX_NOISE_MARGIN_DB > 0.0
    latencies = [0.6, 0.62, 0.58, 0.61, 0.6]
    turns = alternating(latencies, turn_s=2.5, reply_s=1.5)
    n = int(40 * SR)
    caller = (rng.standard_normal(n) * 0.003).astype(np.float32)  # a noisy line, -50 dBFS
    callee = (rng.standard_normal(n) * 0.0003).astype(np.float32)  # a quiet one, -70 dBFS
    for a, b in turns.caller:
        i, j = int(a * SR), int(b * SR)
        caller[i:j] += _prompt(rng, (j - i + 1) / SR)[: j - i] * 3
    tail_s, tail_rms = 0.5, 0.003 * 10 ** (8 / 20)
    for a, b in turns.callee:
        i, j, k = int(a * SR), int((b - tail_s) * SR), int(b * SR)
        callee[i:j] += _prompt(rng, (j - i + 1) / SR)[: j - i] * 3
        callee[j:k] += (rng.standard_normal(k - j) * tail_rms).astype(np.float32)
    mix = caller + callee

    def median(ev: list[Evidence] | tuple[Evidence, ...]) -> float:
        return next(e.value for e in ev if e.name == "response_latency_median_s")

    stereo = median(latency_cues(caller, callee))
    assert stereo == pytest.approx(0.6, abs=0.05)
    mono = median(behaviour_cues(turns, caller_samples=mix, is_stereo=False))
    assert mono == pytest.approx(stereo, abs=0.05)
    # without the hold, the callee's last words fall under the gate: replies read 0.5 s late
    assert median(latency_cues(*party_legs(mix, turns))) > stereo + 0.4
