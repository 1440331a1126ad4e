import dataclasses
import json
import math

import pytest

from pipeline.config import DetectorConfig, FusionConfig, load_config
from pipeline.fuse import FUSION_METHOD, FusionModel, add_evidence, fuse, sigmoid
from pipeline.provenance import make_provenance
from pipeline.types import (
    AcousticCues,
    Evidence,
    Label,
    ModelInfo,
    Segment,
    TextScore,
    Transcript,
    Verdict,
)
from tests.factories import make_audio_info, make_transcript

INFO = make_audio_info(
    name="call.wav",
    sha256="0" * 64,
    size_bytes=10,
    container="wav",
    codec="pcm_s16le",
    duration_s=3.0,
)
TRANSCRIPT = make_transcript(
    "zh", (0.0, 2.0, "您好，按1了解详情"), language_probability=0.9, compression_ratio=1.1
)


def _fuse(
    weights: list[float], config: FusionConfig | None = None, model: FusionModel | None = None
) -> Verdict:
    text = TextScore(
        sales_probability=0.8,
        topic="loan",
        topic_scores=(("loan", 0.8),),
        evidence=tuple(
            Evidence("text", f"t{i}", 1.0, w, f"text cue {i}") for i, w in enumerate(weights[:2])
        ),
    )
    cues = AcousticCues(
        evidence=tuple(
            Evidence("acoustic", f"a{i}", 1.0, w, f"acoustic cue {i}", (0.0, 1.0))
            for i, w in enumerate(weights[2:])
        ),
        speech_s=2.0,
    )
    provenance = make_provenance(
        models=(ModelInfo("asr", "fake", "1" * 64),),
        config=DetectorConfig(),
        fusion_method=FUSION_METHOD,
    )
    return fuse(
        text=text,
        cues=cues,
        transcript=TRANSCRIPT,
        other_transcript=None,
        audio=INFO,
        provenance=provenance,
        config=config or FusionConfig(),
        model=model,
    )


def test_sigmoid_is_stable_at_extremes() -> None:
    assert sigmoid(1000.0) == pytest.approx(1.0)
    assert sigmoid(-1000.0) == pytest.approx(0.0)
    assert sigmoid(0.0) == 0.5


def test_probability_is_the_logistic_sum_of_weights_and_bias() -> None:
    config = FusionConfig(bias=-0.5)
    verdict = _fuse([1.0, -0.25, 2.0, 0.0], config)
    assert verdict.robot_probability == pytest.approx(1 / (1 + math.exp(-(2.25))))
    assert verdict.label is Label.ROBOT


def test_evidence_sorted_by_absolute_weight() -> None:
    verdict = _fuse([0.3, -2.0, 1.0, -0.1])
    weights = [abs(e.weight) for e in verdict.evidence]
    assert weights == sorted(weights, reverse=True)
    assert verdict.evidence[0].weight == -2.0


def test_threshold_decides_the_label() -> None:
    weights = [0.5, 0.0, 0.0, 0.0]  # logit 0.0 with the default bias -> p = 0.5
    assert _fuse(weights, FusionConfig(threshold=0.5)).label is Label.ROBOT
    assert _fuse(weights, FusionConfig(threshold=0.6)).label is Label.HUMAN


def test_weight_scale_zero_leaves_the_prior() -> None:
    verdict = _fuse([2.0, 2.0, 2.0], FusionConfig(weight_scale=0.0, bias=-0.5))
    assert verdict.robot_probability == pytest.approx(sigmoid(-0.5))
    assert all(e.weight == 0.0 for e in verdict.evidence)


def test_to_dict_is_json_and_complete() -> None:
    verdict = _fuse([1.0, -0.5, 0.7])
    data = json.loads(json.dumps(verdict.to_dict(), ensure_ascii=False))
    assert data["label"] == "electronic_sales_robot"
    assert 0.0 <= data["robot_probability"] <= 1.0
    assert data["schema_version"] == "9"
    assert data["sales_pitch_heard"] is True and data["too_little_said"] is False
    assert data["sales_threshold"] == 0.5
    assert data["transcript"]["segments"][0]["text"] == "您好，按1了解详情"
    assert data["evidence"][1]["span_s"] in (None, [0.0, 1.0])
    assert data["provenance"]["fusion_method"] == FUSION_METHOD
    assert len(data["provenance"]["config_hash"]) == 16
    assert {"audio", "topic", "sales_probability", "other_party_transcript"} <= set(data)


def test_fusion_config_validates() -> None:
    with pytest.raises(ValueError, match="threshold"):
        FusionConfig(threshold=1.5)


def test_from_dict_rebuilds_the_same_verdict() -> None:
    verdict = _fuse([1.0, -0.5, 0.7])
    stored = json.loads(json.dumps(verdict.to_dict()))
    assert Verdict.from_dict(stored) == verdict
    rang = dataclasses.replace(verdict, tones=((0.0, 2.0), (6.0, 8.0)))
    assert Verdict.from_dict(json.loads(json.dumps(rang.to_dict()))) == rang


def test_sales_pitch_heard_follows_the_configured_threshold() -> None:
    assert _fuse([1.0]).sales_pitch_heard  # sales_probability 0.8
    strict = _fuse([1.0], FusionConfig(sales_threshold=0.9))
    assert strict.sales_threshold == 0.9 and not strict.sales_pitch_heard
    with pytest.raises(ValueError, match="sales_threshold"):
        FusionConfig(sales_threshold=1.5)


def test_too_little_said_only_when_no_pitch_was_heard() -> None:
    verdict = dataclasses.replace(_fuse([1.0]), sales_probability=0.1)
    assert not verdict.sales_pitch_heard and not verdict.too_little_said  # 9 characters said
    short = Transcript("zh", 0.9, (Segment(0.0, 1.0, "喂？你好", -0.2, 0.01, 1.1),))
    hello = dataclasses.replace(verdict, transcript=short)
    assert hello.too_little_said
    assert not dataclasses.replace(hello, sales_probability=0.9).too_little_said


# A verdict as the HTTP store and evidence packs hold it from before schema 2 (issue 13).
OLD_VERDICT = {
    "label": "human_sales_pitch",
    "robot_probability": 0.2,
    "threshold": 0.5,
    "sales_probability": 0.1,
    "topic": "none",
    "evidence": [
        {
            "source": "acoustic",
            "name": "digital_silence_s",
            "value": 0.4,
            "weight": 0.21,
            "detail": "The longest digital silence between speech lasts "
            "0.40 s at 1.00-1.40 s (0 % exact zero samples).",
            "span_s": [1.0, 1.4],
        }
    ],
    "transcript": {
        "language": "en",
        "language_probability": 0.9,
        "segments": [
            {
                "start_s": 0.0,
                "end_s": 2.0,
                "text": "Hi, it's me, are you coming to dinner tonight?",
                "avg_logprob": -0.2,
                "no_speech_prob": 0.01,
                "compression_ratio": 1.1,
                "words": [],
            }
        ],
        "dropped_segments": 0,
        "backend": "fake",
    },
    "other_party_transcript": None,
    "audio": {
        "name": "old.wav",
        "sha256": "0" * 64,
        "size_bytes": 10,
        "container": "wav",
        "codec": "pcm_s16le",
        "sample_rate_hz": 8000,
        "channels": 1,
        "duration_s": 2.0,
        "caller_channel": 0,
        "caller_channel_reason": "mono recording",
    },
    "provenance": {
        "package_version": "0.1.0",
        "models": [],
        "config_hash": "c" * 16,
        "fusion_method": "hand-set",
        "libraries": [],
        "analysed_at_utc": "2024-01-01T00:00:00Z",
    },
    "schema_version": "1",
}


def test_from_dict_reads_a_verdict_stored_before_schema_2() -> None:
    from pipeline.messages import evidence_sentence, headline

    verdict = Verdict.from_dict(json.loads(json.dumps(OLD_VERDICT)))
    assert verdict.sales_threshold == 0.5
    assert verdict.tones == ()  # schema 6: no tones stored, none shown
    assert not verdict.sales_pitch_heard and not verdict.too_little_said
    (e,) = verdict.evidence
    assert e.code == "" and e.params == () and e.detail_zh == ""
    assert evidence_sentence(e, "zh") == e.detail  # no Chinese stored: the English one
    assert headline(verdict, "en") == "Live person \u2013 no sales pitch heard"
    again = verdict.to_dict()
    assert again["schema_version"] == "9" and again["sales_pitch_heard"] is False
    assert again["person_threshold"] is None and again["caller_certainty"] == "person"
    assert Verdict.from_dict(again) == verdict
    legacy = {k: v for k, v in OLD_VERDICT.items() if k != "schema_version"}
    assert set(legacy) <= set(again)  # the new JSON is a superset of the old


def test_from_dict_round_trips_catalogue_evidence_with_phrase_params() -> None:
    from pipeline.messages import make_evidence

    e = make_evidence(
        "text",
        "scripted_phrase",
        value=2.0,
        weight=2.25,
        code="scripted_phrase.strong",
        params={"phrases": ("press 1", "按1"), "phrase_count": 2.0},
    )
    verdict = dataclasses.replace(_fuse([1.0]), evidence=(e,))
    assert Verdict.from_dict(json.loads(json.dumps(verdict.to_dict()))) == verdict


def test_fitted_model_scales_each_cue_direction_and_replaces_the_bias() -> None:
    model = FusionModel(
        bias=-1.0,
        scales=(("a0:+", 2.0), ("a1:-", 0.5), ("t0:+", 0.0)),
        default_scale=1.0,
        method="fitted (test)",
    )
    verdict = _fuse([1.5, 0.5, 1.0, -0.4], FusionConfig(bias=3.0), model)
    applied = {e.name: e.weight for e in verdict.evidence}
    # t0 dropped by the fit, a0 doubled, a1 (towards human) halved, t1 never seen: kept as is.
    assert applied == {"t0": 0.0, "t1": 0.5, "a0": 2.0, "a1": -0.2}
    assert verdict.robot_probability == pytest.approx(sigmoid(-1.0 + 0.5 + 2.0 - 0.2))


def test_a_direction_the_fit_never_saw_keeps_the_default_scale() -> None:
    model = FusionModel(bias=0.0, scales=(("a0:+", 3.0),), default_scale=1.0, method="fitted")
    assert model.scale("a0", 0.4) == 3.0
    assert model.scale("a0", -0.4) == 1.0
    assert model.scale("other", 2.0) == 1.0


def test_fitted_model_contributions_are_what_the_probability_sums() -> None:
    model = FusionModel(bias=0.2, scales=(("a0:+", 0.7),), default_scale=1.0, method="m")
    verdict = _fuse([0.3, -1.1, 2.0], FusionConfig(weight_scale=0.5), model)
    total = sum(e.weight for e in verdict.evidence)
    assert verdict.robot_probability == pytest.approx(sigmoid(0.2 + total), abs=1e-3)
    assert {e.name: e.weight for e in verdict.evidence}["a0"] == pytest.approx(0.7)


MODEL = FusionModel(
    bias=-0.8,
    scales=(("a0:+", 2.0), ("prompt_seen_before:+", 0.0)),
    default_scale=0.5,
    method="fitted (test)",
    model_id="fusion-test",
    sha256="f" * 64,
)
PROVENANCE = {  # one analysis time, so that verdicts compare equal
    fitted: make_provenance(
        models=(ModelInfo("asr", "fake", "1" * 64),)
        + ((ModelInfo("fusion", MODEL.model_id, MODEL.sha256),) if fitted else ()),
        config=DetectorConfig(),
        fusion_method=MODEL.method if fitted else FUSION_METHOD,
    )
    for fitted in (False, True)
}
CUE = Evidence("structure", "prompt_seen_before", 3.0, 1.6, "Heard in 3 other calls.")
OTHER_CUE = Evidence("structure", "number_reported", 1.0, 0.7, "Reported once.")


def _fused(model: FusionModel | None, extra: tuple[Evidence, ...] = ()) -> Verdict:
    """A verdict as the detector makes it: provenance names the fusion that made it."""
    return fuse(
        text=TextScore(0.8, "loan", (("loan", 0.8),), (Evidence("text", "t0", 1.0, 0.2, "t"),)),
        cues=AcousticCues(
            (Evidence("acoustic", "a0", 1.0, -0.5, "a", (0.0, 1.0)), *extra), speech_s=2.0
        ),
        transcript=TRANSCRIPT,
        other_transcript=None,
        audio=INFO,
        provenance=PROVENANCE[model is not None],  # the fitted test models share id and sha256
        config=FusionConfig(),
        model=model,
    )


@pytest.mark.parametrize("model", [None, MODEL, dataclasses.replace(MODEL, scales=())])
def test_adding_evidence_to_a_verdict_is_fusing_with_it_from_the_start(
    model: FusionModel | None,
) -> None:
    config = DetectorConfig()
    without, direct = _fused(model), _fused(model, (CUE, OTHER_CUE))
    added = add_evidence(without, [CUE, OTHER_CUE], config=config, model=model)
    assert added == direct
    assert added.provenance == without.provenance
    assert add_evidence(added, [CUE], config=config, model=model) == added  # replaced, not twice
    # replace drops evidence without adding any
    assert add_evidence(direct, [], config=config, model=model, replace=(CUE.name,)) == _fused(
        model, (OTHER_CUE,)
    )


def test_added_evidence_can_change_the_label() -> None:
    without = _fused(None)
    assert without.label is Label.HUMAN  # logit -0.5 + 0.2 - 0.5
    added = add_evidence(without, [CUE], config=DetectorConfig(), model=None)
    assert added.label is Label.ROBOT and added.robot_probability == pytest.approx(sigmoid(0.8))
    # the fitted model here gives the cue no weight (its scale is 0): nothing changes
    fitted = add_evidence(_fused(MODEL), [CUE], config=DetectorConfig(), model=MODEL)
    assert fitted.robot_probability == _fused(MODEL).robot_probability


def test_a_verdict_of_another_fusion_or_config_is_not_fused_again() -> None:
    with pytest.raises(ValueError, match="fused by the hand-set sum"):
        add_evidence(_fused(None), [CUE], config=DetectorConfig(), model=MODEL)
    with pytest.raises(ValueError, match="fused by"):
        add_evidence(_fused(MODEL), [CUE], config=DetectorConfig(), model=None)
    other = dataclasses.replace(MODEL, sha256="e" * 64)
    with pytest.raises(ValueError, match="fused by"):
        add_evidence(_fused(MODEL), [CUE], config=DetectorConfig(), model=other)
    with pytest.raises(ValueError, match="config"):
        add_evidence(_fused(None), [CUE], config=load_config(fusion__threshold=0.6), model=None)


def test_a_fit_cannot_silence_an_in_call_replay() -> None:
    from pipeline.fuse import SCALE_FLOORS

    model = FusionModel(
        bias=0.0,
        scales=(("replayed_speech_s:+", 0.0), ("pause_cv:+", 0.0)),
        default_scale=1.0,
        method="test",
    )
    assert model.scale("replayed_speech_s", 2.0) == SCALE_FLOORS["replayed_speech_s:+"] > 0
    assert model.scale("pause_cv", 1.0) == 0.0  # other fitted scales stand


def _voice(log_odds: float) -> Evidence:
    from pipeline.messages import make_evidence

    return make_evidence(
        "acoustic",
        "synthetic_voice",
        value=0.05,
        weight=log_odds,
        code="synthetic_voice.human" if log_odds < 0 else "synthetic_voice.synthetic",
        params={"probability": 0.05, "log_odds": log_odds, "pooling": "mean", "windows": 3.0},
        span_s=(0.0, 2.0),
    )


CAPPED = FusionModel(
    bias=-1.0,
    scales=(("synthetic_voice:+", 1.0), ("synthetic_voice:-", 2.0), ("a0:+", 1.0)),
    default_scale=1.0,
    method="capped (test)",
    caps=(("synthetic_voice:-", 0.5),),
)


def _fuse_cues(cues: AcousticCues, model: FusionModel) -> Verdict:
    return fuse(
        text=TextScore(0.1, "none", (), ()),
        cues=cues,
        transcript=TRANSCRIPT,
        other_transcript=None,
        audio=INFO,
        provenance=PROVENANCE[True],
        config=FusionConfig(),
        model=model,
    )


def _fuse_voice(voice: float, behaviour: float, model: FusionModel) -> Verdict:
    cues = AcousticCues(
        (Evidence("structure", "a0", 1.0, behaviour, "b", (0.0, 1.0)), _voice(voice)), 2.0
    )
    return _fuse_cues(cues, model)


@pytest.mark.parametrize("voice", [-3.0, -0.1, 0.0, 2.0])
def test_a_human_voice_pulls_towards_person_no_further_than_its_cap(voice: float) -> None:
    # reached smoothly (soft_cap): a stronger human voice still pulls a little further
    verdict = _fuse_voice(voice, 1.5, CAPPED)
    applied = {e.name: e.weight for e in verdict.evidence}["synthetic_voice"]
    scaled = CAPPED.scale("synthetic_voice", voice) * voice
    assert applied == pytest.approx(
        0.5 * math.tanh(scaled / 0.5) if voice < 0 else scaled, abs=1e-3
    )
    assert applied >= -0.5
    # the reasons shown still add up to the probability shown
    total = sum(e.weight for e in verdict.evidence)
    assert verdict.robot_probability == pytest.approx(sigmoid(CAPPED.bias + total), abs=1e-3)


def test_a_capped_voice_says_why_it_counts_less_in_both_languages() -> None:
    from pipeline.messages import evidence_sentence

    capped = _fuse_voice(-3.0, 0.0, CAPPED)
    mild = _fuse_voice(-0.1, 0.0, CAPPED)  # 2 x -0.1 stays within the cap
    (voice,) = (e for e in capped.evidence if e.name == "synthetic_voice")
    (kept,) = (e for e in mild.evidence if e.name == "synthetic_voice")
    assert voice.code == "synthetic_voice.human_capped" and kept.code == "synthetic_voice.human"
    assert "recorded by a real person" in evidence_sentence(voice, "en")
    assert "真人录制" in evidence_sentence(voice, "zh")
    assert Verdict.from_dict(json.loads(json.dumps(capped.to_dict()))) == capped


def test_a_synthetic_voice_the_fusion_does_not_count_says_so_in_both_languages() -> None:
    from pipeline.messages import evidence_sentence

    unscaled = dataclasses.replace(
        CAPPED, scales=(("synthetic_voice:+", 0.0001), ("synthetic_voice:-", 2.0), ("a0:+", 1.0))
    )
    verdict = _fuse_voice(2.0, 0.0, unscaled)
    (voice,) = (e for e in verdict.evidence if e.name == "synthetic_voice")
    assert voice.weight < 0.001 and voice.code == "synthetic_voice.synthetic_uncounted"
    assert "gives this no weight" in evidence_sentence(voice, "en")
    assert "不计入" in evidence_sentence(voice, "zh")
    assert Verdict.from_dict(json.loads(json.dumps(verdict.to_dict()))) == verdict
    counted = _fuse_voice(2.0, 0.0, CAPPED)  # scale 1: it counts, the plain sentence
    (kept,) = (e for e in counted.evidence if e.name == "synthetic_voice")
    assert kept.weight > 0 and kept.code == "synthetic_voice.synthetic"


def test_a_person_s_voice_does_not_veto_dialer_behaviour() -> None:
    """Behaviour towards robot outweighs a confident human voice once the voice is capped."""
    uncapped = dataclasses.replace(CAPPED, caps=())
    assert _fuse_voice(-3.0, 1.5, uncapped).label is Label.HUMAN  # -1 - 6 + 1.5
    assert _fuse_voice(-3.0, 1.5, CAPPED).label is Label.ROBOT  # -1 - 0.5 + 1.5


def test_only_the_listed_cue_directions_can_be_capped() -> None:
    with pytest.raises(ValueError, match="caps"):
        dataclasses.replace(CAPPED, caps=(("a0:+", 1.0),))
    with pytest.raises(ValueError, match="caps"):
        dataclasses.replace(CAPPED, caps=(("synthetic_voice:-", -1.0),))


# --- the turn-taking cap and the operating point (issue 13) ------------------------------------


def _turn(name: str, weight: float) -> Evidence:
    from pipeline.messages import make_evidence

    params = {
        "reply_latency_spread_s": {"replies": 6.0, "median_s": 0.4, "spread_s": 0.05},
        "backchannel_rate_per_min": {"callee_s": 20.0},
        "talk_over_fraction": {"over": 2.0, "turns": 6.0},
    }[name]
    code = "backchannel_rate_per_min.none" if name == "backchannel_rate_per_min" else name
    return make_evidence(
        "structure", name, value=0.1, weight=weight, code=code, params=params, span_s=(1.0, 9.0)
    )


TURN_CAPPED = FusionModel(
    bias=-1.0,
    scales=(
        ("reply_latency_spread_s:+", 1.0),
        ("backchannel_rate_per_min:+", 2.0),
        ("talk_over_fraction:-", 1.0),
        ("a0:+", 1.0),
    ),
    default_scale=1.0,
    method=MODEL.method,  # the provenance of the fitted test verdicts names MODEL
    model_id=MODEL.model_id,
    sha256=MODEL.sha256,
    turn_taking_cap=1.5,
    threshold=0.8,
    person_threshold=0.2,
)


def _fuse_turns(turns: tuple[Evidence, ...], model: FusionModel, other: float = 0.4) -> Verdict:
    cues = AcousticCues((Evidence("acoustic", "a0", 1.0, other, "a", (0.0, 1.0)), *turns), 2.0)
    return _fuse_cues(cues, model)


def test_turn_taking_alone_pushes_towards_robot_no_further_than_its_cap() -> None:
    from pipeline.fuse import TURN_TAKING_CUES, WEIGHT_BEFORE_CAP_PARAM

    turns = (_turn("reply_latency_spread_s", 1.2), _turn("backchannel_rate_per_min", 0.8))
    verdict = _fuse_turns(turns, TURN_CAPPED)
    applied = {e.name: e for e in verdict.evidence}
    turn_sum = sum(e.weight for e in verdict.evidence if e.name in TURN_TAKING_CUES)
    assert turn_sum == pytest.approx(1.5, abs=2e-3)  # 1.2 + 2 x 0.8 = 2.8 before the cap
    # each robot-side cue shrinks by the same factor and keeps its weight before the cap
    latency, backchannel = applied["reply_latency_spread_s"], applied["backchannel_rate_per_min"]
    assert latency.weight / 1.2 == pytest.approx(backchannel.weight / 1.6, abs=2e-3)
    assert dict(latency.params)[WEIGHT_BEFORE_CAP_PARAM] == 1.2
    assert "counts less than measured" in latency.detail and "分量比测得的小" in latency.detail_zh
    # the reasons shown still add up to the probability shown
    total = sum(e.weight for e in verdict.evidence)
    assert verdict.robot_probability == pytest.approx(sigmoid(TURN_CAPPED.bias + total))
    assert TURN_CAPPED.logit([("reply_latency_spread_s", 1.2), ("backchannel_rate_per_min", 0.8),
                              ("a0", 0.4)]) == pytest.approx(-1.0 + 1.5 + 0.4)  # fmt: skip
    # below the cap nothing changes, and other cues are never capped with them
    small = _fuse_turns((_turn("reply_latency_spread_s", 0.5),), TURN_CAPPED, other=3.0)
    assert {e.name: e.weight for e in small.evidence} == {"reply_latency_spread_s": 0.5, "a0": 3.0}
    assert "counts less" not in small.evidence[1].detail


def test_a_person_side_turn_taking_cue_is_not_shrunk_and_leaves_room_under_the_cap() -> None:
    turns = (
        _turn("reply_latency_spread_s", 1.4),
        _turn("backchannel_rate_per_min", 0.5),
        _turn("talk_over_fraction", -0.6),
    )
    verdict = _fuse_turns(turns, TURN_CAPPED)
    weights = {e.name: e.weight for e in verdict.evidence}
    assert weights["talk_over_fraction"] == -0.6
    assert weights["reply_latency_spread_s"] + weights["backchannel_rate_per_min"] == (
        pytest.approx(1.5 + 0.6, abs=2e-3)
    )


def test_adding_evidence_under_a_turn_taking_cap_is_fusing_it_from_the_start() -> None:
    first = (_turn("reply_latency_spread_s", 1.2),)
    later = [_turn("backchannel_rate_per_min", 0.8), CUE]
    without, direct = _fuse_turns(first, TURN_CAPPED), _fuse_turns((*first, *later), TURN_CAPPED)
    added = add_evidence(without, later, config=DetectorConfig(), model=TURN_CAPPED)
    assert added == direct
    # dropping a turn-taking cue lifts the cap off the others
    config = DetectorConfig()
    dropped = add_evidence(
        direct, [], config=config, model=TURN_CAPPED, replace=("backchannel_rate_per_min",)
    )
    assert dropped == _fuse_turns((*first, CUE), TURN_CAPPED)


@pytest.mark.parametrize(
    ("other", "certainty", "label"),
    [(3.0, "robot", Label.ROBOT), (0.6, "uncertain", Label.HUMAN), (-2.0, "person", Label.HUMAN)],
)
def test_the_verdict_is_decided_at_the_model_s_operating_point(
    other: float, certainty: str, label: Label
) -> None:
    verdict = _fuse_turns((), TURN_CAPPED, other=other)
    assert (verdict.threshold, verdict.person_threshold) == (0.8, 0.2)
    assert verdict.caller_certainty == certainty and verdict.label is label
    data = verdict.to_dict()
    assert data["caller_certainty"] == certainty and data["person_threshold"] == 0.2
    assert Verdict.from_dict(json.loads(json.dumps(data))) == verdict


def test_a_threshold_set_in_the_config_overrides_the_model_s_and_lowers_its_band() -> None:
    from pipeline.fuse import operating_point

    assert operating_point(FusionConfig(), TURN_CAPPED) == (0.8, 0.2)
    assert operating_point(FusionConfig(threshold=0.9), TURN_CAPPED) == (0.9, 0.2)
    assert operating_point(FusionConfig(threshold=0.1), TURN_CAPPED) == (0.1, 0.1)  # no band
    assert operating_point(FusionConfig(), None) == (0.5, 0.5)  # hand-set sum: no band
    assert _fuse([0.1], FusionConfig()).caller_certainty in ("robot", "person")


@pytest.mark.parametrize(
    "change",
    [
        {"threshold": 0.4, "person_threshold": 0.5},
        {"threshold": 1.2},
        {"turn_taking_cap": -1.0},
    ],
)
def test_an_operating_point_out_of_order_is_refused(change: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        dataclasses.replace(TURN_CAPPED, **change)


def test_a_soft_cap_keeps_the_order_of_voices_past_the_cap() -> None:
    pulls = [_fuse_voice(v, 0.0, CAPPED).robot_probability for v in (-0.6, -0.4, -0.2)]
    assert pulls[0] < pulls[1] < pulls[2]
