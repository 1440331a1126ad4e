"""The caller rule and one-voice gate choice on synthetic per-call rows (no audio)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from models.training.caller_select import (
    FITTED,
    MAX_LEGS_SPLIT,
    OPENING_S,
    Gate,
    choose_rule,
    fit_caller,
    fit_gate,
    fixed_picker,
    markdown,
    opening_speech,
    right_forced,
    select,
    structure_first,
    weights_picker,
)


def rows(rng: np.random.Generator, *, n: int = 60, split: str = "dev") -> list[dict[str, Any]]:
    """Calls whose caller has more speech time 90 % of the time; who speaks first is a coin;
    mixes persist in runs (two voices), caller legs do not (one voice)."""
    out = []
    for i in range(n):
        caller_first = bool(rng.random() < 0.5)  # which 2-means cluster is the caller
        speech = abs(rng.normal(1.0, 0.3)) * (1 if rng.random() < 0.9 else -1)
        contrast = [speech, rng.normal(0, 0.5), rng.normal(0, 0.5), rng.choice([-1.0, 1.0])]
        if not caller_first:
            contrast = [-v for v in contrast]
        right, wrong = 20.0 + 10 * rng.random(), 5.0 * rng.random()
        out.append(
            {
                "id": f"call{i}",
                "split": split,
                "caller": f"voice{i % 12}",
                "kind": "human_agent" if i % 12 < 4 else "recorded_robot",
                "single_s": right + wrong,
                "one_right_s": 0.6 * (right + wrong),  # one voice: the callee's speech lost
                "two_parties": True,
                "contrast": contrast,
                "right_first_s": right if caller_first else wrong,
                "right_second_s": wrong if caller_first else right,
                "fixed_first": {
                    "most": contrast[0] >= 0,
                    "first": contrast[3] > 0,
                    "longest_turns": contrast[2] >= 0,
                    "opening": contrast[3] > 0,
                    "longest": contrast[2] >= 0,
                    "vote": contrast[0] + contrast[2] + contrast[3] >= 0,
                },
                "mix_stats": [rng.normal(0.25, 0.03), rng.normal(0.9, 0.05)],
                "mix_sides_ok": True,
                "leg_stats": [rng.normal(0.15, 0.03), rng.normal(0.6, 0.1)],
                "leg_sides_ok": True,
            }
        )
    return out


def test_opening_longest_and_their_vote_on_a_short_agent_call() -> None:
    # A short agent call whose callee talks as much as the agent: "hello?", the agent's greeting
    # and pitch, then the callee's long questions fill the rest. The speech time is the
    # callee's; the opening and the longest turn are the agent's.
    callee = ((0.0, 0.8), (6.0, 9.0), (11.5, 15.0), (20.0, 22.0))
    agent = ((1.5, 5.5), (9.5, 11.0), (18.0, 19.5))
    assert sum(e - s for s, e in callee) > sum(e - s for s, e in agent)
    assert opening_speech(agent, 0.0) > opening_speech(callee, 0.0)
    for rule in ("opening", "longest", "vote"):
        assert not structure_first(callee, agent, rule)
        assert structure_first(agent, callee, rule)
    # the opening is counted from the first word, only OPENING_S long: a party that only
    # speaks later has none of it
    late = ((OPENING_S + 5.0, OPENING_S + 30.0),)
    assert opening_speech(late, 0.0) == 0.0
    assert opening_speech(((2.0, OPENING_S + 8.0),), 2.0) == pytest.approx(OPENING_S)
    assert structure_first(agent, late, "opening")
    # two of three (speech time and the longest turn against the opening) decide the vote
    assert structure_first(late, agent, "longest") and structure_first(late, agent, "vote")


def test_fit_caller_is_antisymmetric_and_uses_only_its_features(rng: np.random.Generator) -> None:
    dev = rows(rng)
    w = fit_caller(dev, FITTED["combined"])
    assert w[0] > 0  # more speech time: the caller
    t = fit_caller(dev, FITTED["turns"])
    assert t[0] == 0.0 and t[3] == 0.0
    pick = weights_picker(w)
    swapped = {**dev[0], "contrast": [-v for v in dev[0]["contrast"]]}
    assert pick(dev[0]) != pick(swapped) or float(np.dot(w, dev[0]["contrast"])) == 0.0


def test_a_tie_goes_to_the_rule_with_fewer_weights(rng: np.random.Generator) -> None:
    dev = rows(rng)
    single = np.array([r["single_s"] for r in dev])
    most = right_forced(dev, fixed_picker("most"))
    # better on some calls, worse on others, 0.25 point better pooled: within what 12 voices tell
    nudged = most + single * np.where(np.arange(len(dev)) % 2 == 0, 0.05, -0.045)
    chosen, ci = choose_rule(dev, {"most": most, "fit": nudged}, {"most": 0, "fit": 4})
    assert chosen == "most" and ci["most"][0] < 0 <= ci["most"][1]
    oracle = np.maximum(most, single * 0.99)  # right almost everywhere: clearly better
    chosen, ci = choose_rule(dev, {"most": most, "fit": oracle}, {"most": 0, "fit": 4})
    assert chosen == "fit" and ci["most"][1] < 0


def test_a_dev_only_run_chooses_without_test_figures(rng: np.random.Generator) -> None:
    dev = rows(rng)
    result = select(dev)
    assert result["chosen"] == select(dev + rows(rng, n=30, split="test"))["chosen"]
    for figures in result["rules"].values():
        assert not any(key.startswith("test") for key in figures)
        assert figures["dev_forced_agents"]["share"] <= 1.0
    assert set(result["legs_split"]) == {"dev"}
    table = markdown(result)
    assert "not read" in table and f"**`{result['chosen']}`** (chosen)" in table


def test_gate_splits_at_most_the_allowed_share_of_legs(rng: np.random.Generator) -> None:
    dev = rows(rng)
    gate = fit_gate(dev, fixed_picker("most"))
    assert np.mean([gate.leg(r) for r in dev]) <= MAX_LEGS_SPLIT
    assert np.mean([gate.mix(r) for r in dev]) > 0.8  # these mixes persist far more than legs
    never = Gate(np.zeros(2), -1.0)
    assert not any(never.mix(r) or never.leg(r) for r in dev)


def test_select_reports_every_rule_on_dev_and_test(rng: np.random.Generator) -> None:
    result = select(rows(rng) + rows(rng, n=30, split="test"))
    assert result["chosen"] in result["rules"]
    assert set(result["rules"]) >= {"most", "first", "opening", "longest", "vote", *FITTED}
    for figures in result["rules"].values():
        for key in ("dev_forced", "dev_forced_agents", "test_forced", "test_shipped"):
            low, high = figures[key]["ci95"]
            assert 0.0 <= low <= figures[key]["share"] <= high <= 1.0
    assert result["legs_split"]["dev"] <= MAX_LEGS_SPLIT
    assert result["dev_shipped_loo"]["share"] == pytest.approx(
        result["dev_shipped_in_sample"]["share"], abs=0.1
    )
    table = markdown(result)
    assert f"**`{result['chosen']}`** (chosen)" in table
    assert table.count("\n| `") + 1 == len(result["rules"])  # one row per rule
