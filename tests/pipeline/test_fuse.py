import json
import math

import pytest

from pipeline.config import DetectorConfig, FusionConfig
from pipeline.fuse import FUSION_METHOD, FusionModel, fuse, sigmoid
from pipeline.provenance import make_provenance
from pipeline.types import (
    AcousticCues,
    AudioInfo,
    Evidence,
    Label,
    ModelInfo,
    Segment,
    TextScore,
    Transcript,
    Verdict,
)

INFO = AudioInfo(
    name="call.wav",
    sha256="0" * 64,
    size_bytes=10,
    container="wav",
    codec="pcm_s16le",
    sample_rate_hz=8000,
    channels=1,
    duration_s=3.0,
)
TRANSCRIPT = Transcript(
    language="zh",
    language_probability=0.9,
    segments=(Segment(0.0, 2.0, "您好，按1了解详情", -0.2, 0.01, 1.1),),
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
    assert data["schema_version"] == "1"
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
