"""The fusion fit, the composition of calls and the fusion file, on synthetic data."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from models.fusion_file import read_fusion, write_fusion
from models.training.corpus import CorpusRow
from models.training.fusion_fit import (
    CALLS_TIE,
    COMPOSED_TOLERANCE,
    PROMPT_CUE,
    PROMPT_MAX_SCALE,
    Example,
    balanced,
    balanced_log_loss,
    call_weights,
    calls_only_cues,
    choose_cap,
    design,
    fit_on_calls,
    fit_prompt_scale,
    fit_scales,
    fusion_logit,
    make_model,
    pick_cap,
    scores_table,
)
from models.training.text_features import TextRow
from models.training.train_fusion import compose, text_half
from pipeline.fuse import sigmoid


def _cues(rng: np.random.Generator, y: np.ndarray) -> np.ndarray:
    """Three cues: one informative, one noise, one informative but duplicated by the first."""
    n = y.size
    good = np.where(y == 1, 1.0, -1.0) + rng.normal(0, 1.0, n)
    noise = rng.normal(0, 1.0, n)
    return np.column_stack([good, noise, good + rng.normal(0, 0.05, n)])


def test_fit_recovers_a_calibrated_logit_and_ignores_noise() -> None:
    rng = np.random.default_rng(0)
    n = 6000
    hidden = rng.normal(0, 1.5, n)
    y = (rng.random(n) < sigmoid(0.3 + 1.2 * hidden)).astype(float)
    x = np.column_stack([hidden, rng.normal(0, 1.0, n)])
    bias, scales = fit_scales(x, y, l2=0.0)
    assert scales[0] == pytest.approx(1.2, abs=0.12)
    assert scales[1] == pytest.approx(0.0, abs=0.08)
    # Class-balanced: the fitted bias moves the prior to even odds, not 0.3.
    p = sigmoid(bias + x @ scales)
    assert scores_table(y, bias + x @ scales)["ece_even"] < 0.03
    assert abs(float(np.average(p, weights=balanced(y))) - 0.5) < 0.02


def test_scales_stay_non_negative_and_bounded() -> None:
    rng = np.random.default_rng(1)
    y = (rng.random(2000) < 0.5).astype(float)
    x = _cues(rng, y)
    x[:, 1] = np.where(y == 1, -2.0, 2.0)  # a cue written backwards: the fit must not flip it
    _, scales = fit_scales(x, y, max_scale=3.0)
    assert (scales >= 0).all() and (scales <= 3.0).all()
    assert scales[1] == 0.0


def test_fusion_file_round_trip(tmp_path: Path) -> None:
    model = make_model(["a:+", "b:-"], -0.25, np.array([1.5, 0.0]))
    path = tmp_path / "fusion.json"
    sha = write_fusion(model, {"note": "test"}, path)
    back = read_fusion(path)
    assert back.sha256 == sha
    assert (back.bias, back.scales, back.default_scale) == (
        -0.25,
        (("a:+", 1.5), ("b:-", 0.0)),
        1.0,
    )
    ex = Example("x", "t", 1, "en", "tts", "robocall", (("a", 2.0), ("b", -1.0), ("c", 1.0)))
    assert fusion_logit(back, [ex])[0] == pytest.approx(-0.25 + 3.0 + 0.0 + 1.0)


@pytest.mark.parametrize(
    "change", [{"format": "other"}, {"bias": float("nan")}, {"scales": {"a": -1.0}}]
)
def test_fusion_file_rejects_damage(tmp_path: Path, change: dict[str, object]) -> None:
    path = tmp_path / "fusion.json"
    write_fusion(make_model(["a:+"], 0.0, np.array([1.0])), {}, path)
    raw = json.loads(path.read_text())
    raw.update(change)
    path.write_text(json.dumps(raw))
    with pytest.raises(ValueError):
        read_fusion(path)


def _row(i: int, label: str, language: str) -> CorpusRow:
    return CorpusRow(
        id=f"clip/{label}/{language}/{i}",
        path=f"{i}.flac",
        root="cache",
        label=label,
        kind="tts" if label == "robot" else "read_speech",
        language=language,
        speaker=f"s{i}",
        engine="e" if label == "robot" else "",
        engine_family="e" if label == "robot" else "",
        source="test",
        group_id=f"g{i}",
        campaign="",
        split="test",
        duration_s=3.0,
        orig_sr_hz=16000,
        licence="test",
        text="",
    )


def _text(i: int, *, robot: int, pitch: int, language: str, group: str) -> TextRow:
    return TextRow(
        id=f"text/{i}",
        text=f"text {i}",
        language=language,
        source="robocall" if robot else ("authored_sales" if pitch else "chat"),
        group=group,
        is_pitch=pitch,
        is_robot=robot,
        topic="loan" if pitch else "none",
        origin="test",
    )


def test_compose_joins_within_class_and_language_from_one_half() -> None:
    texts = [
        _text(
            i, robot=i % 3 == 0, pitch=i % 3 != 2, language="en" if i % 2 else "zh", group=f"G{i}"
        )
        for i in range(300)
    ]
    weights = [{"robot_script_text": 1.0 if t.is_robot else -1.0} for t in texts]
    rows = [_row(i, "robot" if i % 2 else "human", "en" if i < 10 else "zh") for i in range(20)]
    acoustic = {r.id: {"synthetic_voice": 0.5} for r in rows}
    acoustic[rows[0].id] = {}  # no speech after the channel: left out
    by_id = {t.id: t for t in texts}
    for half in ("fit", "eval"):
        examples = compose(rows, acoustic, texts, weights, half=half, pairs=3)
        assert len(examples) == 3 * 19
        for ex in examples:
            text = by_id[ex.text_id]
            assert text.is_robot == ex.y and text.language == ex.language
            assert text_half(text) == half
            assert dict(ex.cues) == {
                "synthetic_voice": 0.5,
                "robot_script_text": 1.0 if ex.y else -1.0,
            }
        people = [by_id[ex.text_id] for ex in examples if not ex.y]
        assert any(t.is_pitch for t in people) and any(not t.is_pitch for t in people)
    again = compose(rows, acoustic, texts, weights, half="fit", pairs=3)
    assert again == compose(rows, acoustic, texts, weights, half="fit", pairs=3)


def test_design_has_a_column_per_cue_direction_and_zero_for_absent_cues() -> None:
    examples = [
        Example("a", "t", 1, "en", "tts", "s", (("x", 2.0),)),
        Example("b", "t", 0, "en", "tts", "s", (("x", -0.5), ("y", -1.0), ("z", 5.0))),
    ]
    x, y = design(examples, ["x:+", "x:-", "y:-"])
    assert x.tolist() == [[2.0, 0.0, 0.0], [0.0, -0.5, -1.0]]
    assert y.tolist() == [1.0, 0.0]


def test_a_capped_column_clips_the_weight_and_the_model_cap_is_scaled() -> None:
    examples = [Example("a", "t", 0, "en", "x", "s", (("synthetic_voice", -2.0), ("b", 1.0)))]
    x, _ = design(examples, ["synthetic_voice:-", "b:+"], caps={"synthetic_voice:-": 0.5})
    assert x[0, 0] == pytest.approx(0.5 * math.tanh(-2.0 / 0.5)) and x[0, 1] == 1.0
    model = make_model(
        ["synthetic_voice:-", "b:+"], 0.0, np.array([2.0, 1.0]), caps={"synthetic_voice:-": 0.5}
    )
    assert model.caps == (("synthetic_voice:-", 1.0),)
    # the model applies exactly what the fit saw: 2 x soft_cap(-2, 0.5) + 1
    assert fusion_logit(model, examples)[0] == pytest.approx(2.0 * x[0, 0] + 1.0)


def test_fusion_file_keeps_the_caps(tmp_path: Path) -> None:
    model = make_model(["synthetic_voice:-"], 0.1, np.array([1.5]), caps={"synthetic_voice:-": 1})
    path = tmp_path / "fusion.json"
    write_fusion(model, {}, path)
    assert read_fusion(path).caps == (("synthetic_voice:-", 1.5),)
    raw = json.loads(path.read_text())
    raw["caps"] = {"robot_script_text:+": 1.0}
    path.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="caps"):
        read_fusion(path)


def _population(
    rng: np.random.Generator, n: int, *, layout: str, voice_informative: bool
) -> list[Example]:
    """Composed clips (layout "") whose voice tells the class apart, or calls whose robots
    replay a person's voice (the voice says "person" for both classes) and give themselves
    away by behaviour only."""
    out = []
    for i in range(n):
        y = i % 2
        voice = (1.5 if y else -1.5) + rng.normal(0, 1) if voice_informative else -2.5
        cues: list[tuple[str, float]] = [("synthetic_voice", float(np.clip(voice, -3, 3)))]
        if layout:
            cues.append(
                ("backchannel_rate_per_min", float((1.2 if y else 0.0) + rng.normal(0, 0.3)))
            )
        kind = ("recorded_robot" if y else "human_agent") if layout else "clip"
        out.append(
            Example(f"{layout}{i}", "", y, "en", kind, "s", tuple(cues), layout, f"g{i % 10}")
        )
    return out


def test_choose_cap_caps_a_voice_that_vetoes_behaviour_on_calls() -> None:
    rng = np.random.default_rng(7)
    composed = _population(rng, 200, layout="", voice_informative=True)
    calls = _population(rng, 80, layout="stereo", voice_informative=False)
    got = choose_cap(
        [*composed, *calls], [*composed, *calls], grid=(0.0, 0.5, None), weightings=("as drawn",)
    )
    assert [r["cap"] for r in got["rows"]] == [0.0, 0.5, None]
    by_cap = {r["cap"]: r for r in got["rows"]}
    assert got["chosen"] is not None
    assert by_cap[got["chosen"]]["calls"] < by_cap[None]["calls"]
    assert all(0.0 <= r["auc_recorded_stereo"] <= 1.0 for r in got["rows"])


def test_sample_weights_count_rows_but_keep_the_classes_balanced() -> None:
    rng = np.random.default_rng(3)
    y = (np.arange(400) % 2).astype(np.float64)
    x = _cues(rng, y)[:, :1]
    plain = fit_scales(x, y)
    doubled = fit_scales(x, y, sample_weight=np.full(y.size, 2.0))
    assert doubled[0] == pytest.approx(plain[0], abs=1e-4)
    assert doubled[1] == pytest.approx(plain[1], abs=1e-4)
    calls = [
        Example(str(i), "", 1, "en", "k", "s", (), "stereo" if i < 2 else "") for i in range(6)
    ]
    assert call_weights(calls, "calls = composed").tolist() == [2.0, 2.0, 1, 1, 1, 1]
    assert call_weights(calls, "as drawn").tolist() == [1.0] * 6


def test_choose_cap_never_buys_the_calls_fit_with_the_clips() -> None:
    """Weighting 40 calls like 200 clips fits the calls better but the clips worse: not kept."""
    rng = np.random.default_rng(11)
    composed = _population(rng, 200, layout="", voice_informative=True)
    calls = _population(rng, 40, layout="stereo", voice_informative=False)
    got = choose_cap([*composed, *calls], [*composed, *calls], grid=(None,))
    rows = {r["weighting"]: r for r in got["rows"]}
    floor = min(r["composed"] for r in got["rows"])
    kept = rows[got["weighting"]]
    assert kept["composed"] <= floor * (1 + COMPOSED_TOLERANCE)
    eligible = [r for r in got["rows"] if r["composed"] <= floor * (1 + COMPOSED_TOLERANCE)]
    assert kept["calls"] == min(r["calls"] for r in eligible)


def test_a_tie_of_the_calls_loss_goes_to_the_smaller_cap() -> None:
    """Rows as the shipped refit saw them under the soft cap: 0.25 and 0.5 fit the dev calls
    within 1 %; the smaller cap wins, and a clearly better fit still beats a smaller cap."""
    rows = [
        {"cap": 0.0, "weighting": "w", "composed": 0.222, "calls": 0.205},
        {"cap": 0.25, "weighting": "w", "composed": 0.218, "calls": 0.183},
        {"cap": 0.5, "weighting": "w", "composed": 0.223, "calls": 0.182},
        {"cap": None, "weighting": "w", "composed": 0.229, "calls": 0.221},
        {"cap": 0.5, "weighting": "v", "composed": 0.300, "calls": 0.100},  # clips pay: out
    ]
    assert pick_cap(rows)["cap"] == 0.25
    assert 0.183 <= 0.182 * (1 + CALLS_TIE)
    rows[1] = {**rows[1], "calls": 0.190}
    assert pick_cap(rows)["cap"] == 0.5


def test_an_offset_is_fixed_and_the_bias_can_be_held_at_zero() -> None:
    rng = np.random.default_rng(5)
    n = 20000
    known = rng.normal(0, 2.0, n)  # the rest of a model's logit, kept as it is
    cue = rng.normal(0, 1.0, n)
    y = (rng.random(n) < sigmoid(known + 0.8 * cue)).astype(float)
    bias, scales = fit_scales(cue[:, None], y, offset=known, fit_bias=False, l2=0.0)
    assert bias == 0.0
    assert scales[0] == pytest.approx(0.8, abs=0.1)
    # without the offset the unexplained part of the logit attenuates the cue's scale
    assert fit_scales(cue[:, None], y, l2=0.0)[1][0] < scales[0] - 0.2


def test_turn_taking_scales_come_from_the_calls_scored_with_every_cue() -> None:
    """Recorded-prompt robots sound human: the joint fit, drowned by clips, leaves backchannel
    absence too weak to outvote the voice; refitted on the calls with the voice in place, it
    gets the scale that ranks the calls, and no composed call moves."""
    rng = np.random.default_rng(13)
    composed = _population(rng, 400, layout="", voice_informative=True)
    calls = _population(rng, 60, layout="stereo", voice_informative=False)
    fit = [*composed, *calls]
    names = sorted({f"{n}:{'+' if w > 0 else '-'}" for ex in fit for n, w in ex.cues if w})
    only = calls_only_cues(fit, names)
    assert set(only) == {"backchannel_rate_per_min:+", "backchannel_rate_per_min:-"}
    x, y = design(fit, names)
    bias, scales = fit_scales(x, y, l2=0.5)  # strong shrinkage: the few calls lose
    joint = make_model(names, bias, scales)
    refit = fit_on_calls(joint, calls, only)
    before, after = dict(joint.scales), dict(refit.scales)
    assert after["backchannel_rate_per_min:+"] > before["backchannel_rate_per_min:+"]
    assert refit.bias == joint.bias
    assert all(after[n] == before[n] for n in names if n not in only)
    assert np.allclose(fusion_logit(refit, composed), fusion_logit(joint, composed))
    y_calls = np.array([ex.y for ex in calls], dtype=np.float64)
    loss = {
        name: float(np.mean(np.logaddexp(0.0, z) - y_calls * z))
        for name, z in (
            ("joint", fusion_logit(joint, calls)),
            ("refit", fusion_logit(refit, calls)),
        )
    }
    assert loss["refit"] < loss["joint"]
    assert fit_on_calls(joint, [], only) is joint and fit_on_calls(joint, calls, []) is joint


@pytest.mark.parametrize("steady", [True, False])
def test_the_shipped_fusion_s_behaviour_reasons_add_up_to_the_probability(steady: bool) -> None:
    """Every turn-taking cue the shipped fusion weighs says why in both languages, where in the
    call, and the reasons shown sum to the robot logit."""
    from pipeline.behaviour import PartyTurns, behaviour_cues
    from pipeline.config import FusionConfig
    from pipeline.fuse import fuse
    from pipeline.types import AcousticCues, TextScore
    from tests.factories import make_audio_info, make_provenance, make_transcript

    rng = np.random.default_rng(2)
    caller, callee, t = [], [], 0.5
    for _ in range(8):  # caller prompt, callee reply, caller again after a latency
        caller.append((t, t + 3.0))
        callee.append((t + 3.6, t + 5.6))
        t += 5.6 + (0.4 + rng.normal(0, 0.02) if steady else float(rng.uniform(0.1, 1.6)))
    cues = behaviour_cues(PartyTurns(tuple(caller), tuple(callee), "test"))
    model = read_fusion()
    weighed = [e for e in cues if model.contribution(e.name, e.weight) != 0.0]
    assert weighed, "the shipped fusion weighs no behaviour cue of this call"
    verdict = fuse(
        text=TextScore(0.1, "none", (), ()),
        cues=AcousticCues(tuple(cues), speech_s=20.0),
        transcript=make_transcript("en"),
        other_transcript=None,
        audio=make_audio_info(),
        provenance=make_provenance(),
        config=FusionConfig(),
        model=model,
    )
    shown = [e for e in verdict.evidence if e.weight != 0.0]
    assert all(e.detail and e.detail_zh and e.span_s is not None for e in shown)
    logit = model.bias + sum(e.weight for e in verdict.evidence)
    assert verdict.robot_probability == pytest.approx(sigmoid(logit), abs=2e-3)
    latency = next(e for e in verdict.evidence if e.name == "reply_latency_spread_s")
    assert (latency.weight > 0) == steady  # a steady delay is a robot's; a varied one is not


# --- the turn-taking cap and the operating point (issue 13) ------------------------------------


def test_the_fusion_file_keeps_the_operating_point_and_reads_old_files(tmp_path: Path) -> None:
    import dataclasses

    model = dataclasses.replace(
        make_model(["a:+"], 0.0, np.array([1.0])),
        turn_taking_cap=1.25,
        threshold=0.83,
        person_threshold=0.12,
    )
    path = tmp_path / "fusion.json"
    write_fusion(model, {}, path)
    back = read_fusion(path)
    assert (back.turn_taking_cap, back.threshold, back.person_threshold) == (1.25, 0.83, 0.12)
    raw = json.loads(path.read_text())
    for key in ("turn_taking_cap", "threshold", "person_threshold"):
        del raw[key]  # a file written before they existed: 0.5, no band, no cap
    path.write_text(json.dumps(raw))
    old = read_fusion(path)
    assert (old.turn_taking_cap, old.threshold, old.person_threshold) == (None, 0.5, 0.5)
    raw["threshold"], raw["person_threshold"] = 0.4, 0.6  # out of order
    path.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="person_threshold"):
        read_fusion(path)


def test_the_threshold_rules_allow_at_most_the_share_they_name() -> None:
    from models.training.operating_point import person_threshold, robot_threshold

    rng = np.random.default_rng(3)
    for n in (7, 20, 40, 333):
        p = rng.random(n)
        t = robot_threshold(p, 0.05)
        assert (p >= t).sum() <= int(0.05 * n)  # at most 5 % called robot ...
        assert (p >= t - 0.001).sum() > int(0.05 * n) or t == 0.0  # ... and no lower 0.001 step
        lower = person_threshold(p, 0.05)
        assert (p < lower).sum() <= int(0.05 * n)
        assert (p < lower + 0.001).sum() > int(0.05 * n) or lower == 1.0
    assert robot_threshold(np.array([0.2, 0.9]), 0.05) == 0.901  # 0 of 2 may be called robot


def test_the_operating_point_is_the_strictest_population_s_within_even_odds() -> None:
    from models.training.operating_point import choose_operating_point

    y = np.array([0] * 20 + [1] * 20)
    easy = np.concatenate([np.linspace(0.0, 0.3, 20), np.linspace(0.7, 1.0, 20)])
    hard = np.concatenate([np.linspace(0.1, 0.9, 20), np.linspace(0.2, 0.95, 20)])
    point = choose_operating_point(
        {"easy": (y, easy), "hard": (y, hard)}, max_robots_called_person=0.05
    )
    assert point["threshold"] == max(0.5, point["rows"]["hard"]["robot_threshold"])
    assert point["person_threshold"] == min(0.5, point["rows"]["hard"]["person_threshold"])
    for name in ("easy", "hard"):  # no population calls more than 5 % of its people robot
        assert point["rows"][name]["people_called_robot"] <= 0.05
        assert point["rows"][name]["robots_called_person"] <= 0.05
    only_easy = choose_operating_point({"easy": (y, easy)}, max_robots_called_person=0.05)
    assert only_easy["threshold"] == 0.5 and only_easy["person_threshold"] == 0.5  # no band
    shipped = choose_operating_point({"easy": (y, easy), "hard": (y, hard)})  # the shipped rule
    assert shipped["threshold"] == point["threshold"]
    assert shipped["person_threshold"] == 0.5  # the band lies only on the robot side


def test_a_population_too_small_to_read_5_percent_from_is_shown_and_does_not_count() -> None:
    from models.training.operating_point import MIN_POPULATION, choose_operating_point

    y = np.array([0] * 20 + [1] * 20)
    p = np.concatenate([np.linspace(0.0, 0.4, 20), np.linspace(0.6, 1.0, 20)])
    small = (np.zeros(MIN_POPULATION - 1, dtype=np.int64), np.full(MIN_POPULATION - 1, 0.97))
    point = choose_operating_point({"big": (y, p), "small": small})
    assert point["rows"]["small"]["robot_threshold"] > 0.97  # its own rule is reported ...
    assert not point["rows"]["small"]["sets_threshold"]  # ... and does not count
    assert point["threshold"] == max(0.5, point["rows"]["big"]["robot_threshold"]) < 0.97
    enough = (np.zeros(MIN_POPULATION, dtype=np.int64), np.full(MIN_POPULATION, 0.97))
    assert choose_operating_point({"big": (y, p), "enough": enough})["threshold"] > 0.97


def test_dev_populations_split_by_language_and_add_the_unseen_sources_people() -> None:
    from models.training.operating_point import dev_populations

    def ex(i: int, y: int, language: str, layout: str = "") -> Example:
        return Example(f"a{i}", "", y, language, "clip", "s", (), layout, f"g{i}")

    shown = [ex(i, i % 2, "en" if i < 40 else "zh") for i in range(60)]
    shown += [ex(100 + i, i % 2, "en", "stereo") for i in range(10)]
    shown += [ex(150 + i, i % 2, "zh", "mono") for i in range(6)]
    unseen = [ex(200 + i, 0, "en" if i < 25 else "zh") for i in range(30)]
    logit = np.linspace(-3, 3, len(shown))
    pops = dev_populations(shown, logit, unseen=unseen, unseen_logit=np.full(30, 2.0))
    assert {k: v[0].size for k, v in pops.items()} == {
        "composed dev calls": 60,
        "composed dev calls, en": 40,
        "composed dev calls, zh": 20,
        "simulated dev calls, stereo": 10,  # one language: not split
        "simulated dev calls, mono": 6,
        "simulated dev calls, both layouts": 16,
        "simulated dev calls, both layouts, en": 10,
        "simulated dev calls, both layouts, zh": 6,
        "dev people of sources no voice model saw": 30,
        "dev people of sources no voice model saw, en": 25,
        "dev people of sources no voice model saw, zh": 5,
    }
    y_zh, p_zh = pops["composed dev calls, zh"]
    assert np.allclose(p_zh, sigmoid(logit[40:60])) and (y_zh == np.arange(40, 60) % 2).all()
    assert (pops["dev people of sources no voice model saw"][0] == 0).all()
    assert np.allclose(pops["dev people of sources no voice model saw"][1], sigmoid(2.0))
    assert set(dev_populations(shown[:70], logit[:70])) == {
        "composed dev calls",
        "composed dev calls, en",
        "composed dev calls, zh",
        "simulated dev calls, stereo",  # no mono calls: no pooled population either
    }


def test_examples_outside_the_fit_are_scored_by_the_model_without_their_voice() -> None:
    from models.training.operating_point import out_of_fold, voice_fold

    rng = np.random.default_rng(5)
    fit = _population(rng, 120, layout="", voice_informative=True)
    names = ["synthetic_voice:+", "synthetic_voice:-"]
    oof = out_of_fold(fit, fit, names, caps={}, weighting="as drawn")
    k = len(oof.models)
    assert np.allclose(oof.logit_by_voice(fit, None), oof.logit(fit, None))  # same fold rule
    new = [
        dataclasses.replace(ex, audio_id=f"new{i}", group=f"other{i}")
        for i, ex in enumerate(fit[:12])
    ]
    got = oof.logit_by_voice(new, None)
    want = [oof.models[voice_fold(ex, k)].logit(ex.cues) for ex in new]
    assert np.allclose(got, want)


def test_choose_turn_taking_cap_takes_the_smallest_cap_that_costs_no_robots() -> None:
    from models.training.operating_point import (
        TURN_CAP_GRID,
        choose_turn_taking_cap,
        out_of_fold,
    )

    rng = np.random.default_rng(5)
    composed = _population(rng, 200, layout="", voice_informative=True)
    calls = _population(rng, 120, layout="stereo", voice_informative=False)
    fit = [*composed, *calls]
    names = sorted({f"{n}:{'+' if w > 0 else '-'}" for ex in fit for n, w in ex.cues if w})
    oof = out_of_fold(fit, fit, names, caps={}, weighting="as drawn")
    cv = choose_turn_taking_cap(oof, fit)
    assert [r["cap"] for r in cv["rows"]] == list(TURN_CAP_GRID) and cv["calls"] == 120
    best = max(r["robots_caught_at_5pct"] for r in cv["rows"])
    chosen = next(r for r in cv["rows"] if r["cap"] == cv["chosen"])
    assert chosen["robots_caught_at_5pct"] >= best - 0.02
    smaller = [r for r in cv["rows"] if r["cap"] is not None and (
        cv["chosen"] is None or r["cap"] < cv["chosen"])]  # fmt: skip
    assert all(r["robots_caught_at_5pct"] < best - 0.02 for r in smaller)
    # the composed calls carry no turn-taking cue: no cap changes their held-out scores
    is_clip = np.array([not ex.layout for ex in fit])
    assert np.array_equal(oof.logit(fit, 0.5)[is_clip], oof.logit(fit, None)[is_clip])


def test_rate_intervals_resample_voices_and_hold_the_rate() -> None:
    from models.training.metrics import rate_ci

    hits = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], dtype=bool)
    low, high = rate_ci(hits, ["a"] * 4 + ["b", "c", "d", "e", "f", "g"])
    assert low <= 0.4 <= high and high - low > 0.3  # one voice holds every hit: wide
    assert rate_ci(np.ones(5, dtype=bool), list("abcde")) == (1.0, 1.0)
    assert all(math.isnan(v) for v in rate_ci(np.array([], dtype=bool), []))


def test_write_outputs_reports_the_operating_point(tmp_path: Path) -> None:
    """The card and the report state both rules, the chosen values, and before -> after."""
    import dataclasses

    from models.training.fusion_fit import Result
    from models.training.fusion_report import write_outputs
    from models.training.operating_point import (
        band_alternatives,
        choose_operating_point,
        operating_rows,
    )

    rng = np.random.default_rng(11)
    examples = _population(rng, 80, layout="", voice_informative=True)
    model = dataclasses.replace(
        make_model(["synthetic_voice:+", "synthetic_voice:-"], 0.0, np.array([1.0, 1.0])),
        threshold=0.9,
        person_threshold=0.1,
    )
    logit = fusion_logit(model, examples)
    y = np.array([ex.y for ex in examples])
    pops = {"composed dev calls": (y, sigmoid(logit))}
    table = scores_table(y.astype(float), logit)
    counts = {k: {"examples": 80, "clips": 80, "texts": 1, "robot": 40, "human": 40}
              for k in ("fit", "eval", "fit_calls", "test_calls")}  # fmt: skip
    cap_rows = [{"cap": None, "weighting": "as drawn", "composed": 0.1, "calls": 0.2,
                 "auc_recorded_stereo": 0.5, "auc_recorded_mono": 0.5}]  # fmt: skip
    result = Result(
        model=model, names=["synthetic_voice:+"], counts=counts,
        tables={"headline": {"fitted, test calls (composed)": table}, "kind": {},
                "language": {}, "text_source": {}},
        cue_rows=[], ablations={"all cues": table}, e2e=None, eval_examples=examples,
        seconds=1.0, calls={},
        cap_cv={"chosen": None, "weighting": "as drawn", "folds": 5, "rows": cap_rows},
        operating={
            "dev": choose_operating_point(pops),
            "turn_cap": {"chosen": 1.0, "calls": 40, "rows": [
                {"cap": 1.0, "robots_caught_at_5pct": 0.4, "people_called_at_half": 0.1,
                 "auc": 0.7}]},
            "test": {"composed": operating_rows(
                examples, logit, {"both languages": np.ones(80, dtype=bool)},
                threshold=0.9, person_threshold=0.1)},
            "band_alternatives": band_alternatives(pops, pops, threshold=0.9),
        },
    )  # fmt: skip
    write_outputs(result, weights=tmp_path / "fusion.json", report=tmp_path / "f.md")
    card, report = (tmp_path / "FUSION.md").read_text(), (tmp_path / "f.md").read_text()
    for text in (card, report):
        assert "**Robot threshold 0.900**" in text and "**Uncertain band [0.100, 0.900)**" in text
        assert "## Turn-taking alone is capped" in text and "| 1 | 40.0 % | 10.0 % |" in text
        header = "| composed test calls | people | robots | people called robot @0.5 | @0.900 |"
        assert header in text
        assert "none (shipped)" in text and "the band lies only on the robot side" in text
    assert read_fusion(tmp_path / "fusion.json").threshold == 0.9


def _carrier_calls(rng: np.random.Generator, n: int, *, agents: float = 0.0) -> list[Example]:
    """Calls as a carrier's batch scores them: a weak voice cue on every call, and the prompt
    index's evidence on most robots (their campaign replays its prompts) and on a share
    ``agents`` of the agents (a recorded disclosure their dialer plays)."""
    out = []
    for i in range(n):
        y = i % 2
        cues: tuple[tuple[str, float], ...] = (("pitch_std_st", float(rng.normal(0.3 * y, 1.0))),)
        if rng.random() < (0.7 if y else agents):
            cues = (*cues, (PROMPT_CUE, float(rng.uniform(0.5, 2.0))))
        out.append(Example(f"c{i}", "", y, "en", "call", "simulated call", cues,
                           layout="stereo", group=f"v{i % 7}"))  # fmt: skip
    return out


def test_the_prompt_cue_gets_a_scale_from_the_carrier_calls_and_nothing_else_moves() -> None:
    rng = np.random.default_rng(3)
    model = make_model(["pitch_std_st:+", "pitch_std_st:-"], -0.2, np.array([0.8, 0.6]))
    calls = _carrier_calls(rng, 200, agents=0.3)
    fitted = fit_prompt_scale(model, calls)
    scale = dict(fitted.scales)[f"{PROMPT_CUE}:+"]
    assert 0.0 < scale < PROMPT_MAX_SCALE
    assert fitted.bias == model.bias and fitted.threshold == model.threshold
    assert {k: v for k, v in fitted.scales if not k.startswith(PROMPT_CUE)} == dict(model.scales)
    # a single upload carries no prompt cue: its score is the model's, whatever the scale
    single = [dataclasses.replace(ex, cues=ex.cues[:1]) for ex in calls]
    assert np.array_equal(fusion_logit(fitted, single), fusion_logit(model, single))
    # the fitted scale scores the carrier's calls better than the hand-set one
    y = np.array([ex.y for ex in calls], dtype=np.float64)
    assert balanced_log_loss(y, fusion_logit(fitted, calls)) < balanced_log_loss(
        y, fusion_logit(model, calls)
    )
    # no agent carries the cue: the calls cannot bound its scale, the lead's bound does
    unbounded = fit_prompt_scale(model, _carrier_calls(rng, 200))
    assert dict(unbounded.scales)[f"{PROMPT_CUE}:+"] == PROMPT_MAX_SCALE
    assert fit_prompt_scale(model, single) is model  # the index found nothing: nothing to fit
    assert fit_prompt_scale(model, []) is model


def test_robocall_train_passes_the_service_s_prompt_index_unless_told_not_to(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from models.training import fusion_report, train_fusion
    from service.campaigns.heard_before import leave_one_out
    from service.cli import main
    from service.commands import train as train_cmd

    got: list[dict[str, object]] = []

    @dataclasses.dataclass(frozen=True)
    class Done:
        command: str = ""

    def fake_train(**kwargs: object) -> object:
        got.append(kwargs)
        return Done()

    monkeypatch.setattr(train_fusion, "train", fake_train)
    monkeypatch.setattr(fusion_report, "write_outputs", lambda *a, **kw: {"ok": True})
    monkeypatch.setattr(train_cmd, "FUSION_WEIGHTS", tmp_path / "fusion.json")
    assert main(["train", "--stage", "fusion", "--e2e", "5", "--calls", "2"]) == 0
    assert main(["train", "--stage", "fusion", "--no-carrier", "--composed-fit", "9"]) == 0
    assert got[0]["prompt_index"] is leave_one_out and got[0]["e2e"] == 5 and got[0]["calls"] == 2
    assert got[1]["prompt_index"] is None and got[1]["composed_fit"] == 9
