"""Trained text heads: committed weights, the weights format, the TextClassifier contract."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest

from models.text_clf import (
    HEADS,
    ROBOT_WEIGHT_CAP,
    ROBOT_WEIGHT_FLOOR,
    WEIGHTS_DIR,
    WEIGHTS_JSON,
    WEIGHTS_NPZ,
    LinearHead,
    TextHeads,
    TrainedTextClassifier,
    char_ngrams,
    load_heads,
    robot_text_weight,
    save_heads,
)
from pipeline.text_cues import MAX_ABS_WEIGHT as MAX_ABS_RULE_WEIGHT
from pipeline.types import Segment, TextScore, Transcript

RULE_EVIDENCE = {"scripted_phrase", "disfluency_rate", "no_reaction_to_callee", "sales_phrases"}

# Written for this test; none of these lines is in the training corpus.
ROBOT_ZH = (
    "您好，这里是系统自动拨打的语音通知，您的信用卡额度可以免费提升，如需办理请按1，退订请回复TD。"
)
ROBOT_EN = (
    "This is an automated message regarding your car's extended warranty. Our records show "
    "your coverage is about to expire. Press 1 now to speak with a warranty specialist, "
    "or press 2 to be removed from our list."
)
HUMAN_EN = (
    "Hey, it's me. Um, I'm at the store, they're out of the oat milk, do you want the almond "
    "one instead? Oh, and did you call your sister back?"
)
HUMAN_ZH = "喂，妈，我到家了，刚才路上有点堵。你们晚饭吃了没？周末我回去看你们啊。"
# What a TTS robot may read that is no sales script (issue 13): the words must not clear it.
PLAIN_TTS_EN = (
    "Here is the weather for Tuesday. Cloudy in the morning, with light rain in the afternoon. "
    "The high will be eighteen degrees and the low nine degrees."
)
PITCH_WITHOUT_MARKER_EN = (
    "Hi, this is Dana calling from Summit Home Solar about your electric bill. You may qualify "
    "for our zero down solar program. Give us a call back at 555-0100 today."
)
PLAIN_TTS_ZH = "今天夜间到明天白天，多云转小雨，东南风三到四级，最高气温十八度，最低气温九度。"


def _transcript(text: str, language: str) -> Transcript:
    return Transcript(language, 0.99, (Segment(0.0, 8.0, text, -0.2, 0.01, 1.3),))


@pytest.fixture(scope="module")
def clf() -> TrainedTextClassifier:
    from models.loading import load_text_classifier

    loaded = load_text_classifier()
    assert isinstance(loaded, TrainedTextClassifier)
    return loaded


def _robot_weight(score: TextScore) -> float:
    return next(e.weight for e in score.evidence if e.name == "robot_script_text")


@pytest.mark.parametrize(("text", "language"), [(ROBOT_ZH, "zh"), (ROBOT_EN, "en")])
def test_robot_lines_read_as_robot_pitches(
    clf: TrainedTextClassifier, text: str, language: str
) -> None:
    score = clf.score(_transcript(text, language))
    assert score.sales_probability > 0.5
    assert score.topic != "none"
    assert _robot_weight(score) > 0


@pytest.mark.parametrize(("text", "language"), [(HUMAN_EN, "en"), (HUMAN_ZH, "zh")])
def test_human_lines_read_as_human(clf: TrainedTextClassifier, text: str, language: str) -> None:
    score = clf.score(_transcript(text, language))
    assert score.sales_probability < 0.5
    assert score.topic == "none"
    robot = next(e for e in score.evidence if e.name == "robot_script_text")
    assert robot.value < 0  # the head's log-odds leans human...
    assert robot.weight == 0.0  # ...but "not a script" is no evidence of a person


@pytest.mark.parametrize(("text", "language"), [(PLAIN_TTS_EN, "en"), (PLAIN_TTS_ZH, "zh")])
def test_plain_text_a_robot_reads_is_neutral_not_human(
    clf: TrainedTextClassifier, text: str, language: str
) -> None:
    weight = _robot_weight(clf.score(_transcript(text, language)))
    assert ROBOT_WEIGHT_FLOOR <= weight < 1.0  # never pulls a TTS robot towards "person"


def test_robot_text_weight_cuts_the_human_side_and_caps_the_robot_side() -> None:
    assert robot_text_weight(-7.0) == 0.0
    assert robot_text_weight(-0.1) == 0.0
    assert robot_text_weight(0.7) == pytest.approx(0.7)
    assert robot_text_weight(9.0) == ROBOT_WEIGHT_CAP
    assert robot_text_weight(2.5, bar=3.0) == 0.0  # below the bar of a marker-less transcript
    assert robot_text_weight(3.5, bar=3.0) == pytest.approx(0.5)
    assert robot_text_weight(9.0, bar=3.0) == ROBOT_WEIGHT_CAP


def test_without_a_machine_marker_the_words_must_clear_the_gate(
    clf: TrainedTextClassifier,
) -> None:
    # Issue 13: "who is calling + a call-back number" is what people say too; only key presses,
    # IVR menus, opt-outs and "automated message" lower the bar back to the calibrated 0.
    heads = dataclasses.replace(clf.heads, meta={**clf.heads.meta, "robot_gate": 50.0})
    gated = TrainedTextClassifier(heads, embed=clf.embed)
    assert heads.robot_bar(has_machine_marker=True) == 0.0
    assert heads.robot_bar(has_machine_marker=False) == 50.0
    unmarked = _transcript(PITCH_WITHOUT_MARKER_EN, "en")
    marked = _transcript(PITCH_WITHOUT_MARKER_EN + " Press 1 to speak with an agent.", "en")
    assert _robot_weight(gated.score(unmarked)) == 0.0
    assert _robot_weight(gated.score(marked)) == _robot_weight(clf.score(marked))
    evidence = next(e for e in gated.score(unmarked).evidence if e.name == "robot_script_text")
    assert evidence.value == pytest.approx(
        next(e.value for e in clf.score(unmarked).evidence if e.name == "robot_script_text")
    )  # the head's log-odds is still reported, only its weight is gated


def test_agents_holding_transferring_and_closing_get_no_robot_evidence(
    clf: TrainedTextClassifier,
) -> None:
    # Issue 13: "please hold", "can you hear me", "感谢您的耐心等待", "祝您生活愉快" and a key press
    # for a later call are what live agents say; the held-out lines were never trained on.
    from models.training.text_features import HELDOUT_BUSINESS

    items = [json.loads(line) for line in HELDOUT_BUSINESS.open(encoding="utf-8")]
    closings = [item for item in items if item["kind"] == "call_centre_closing"]
    assert {item["language"] for item in closings} == {"en", "zh"} and len(closings) == 20
    for item in closings:
        evidence = clf.score(_transcript(item["text"], item["language"])).evidence
        assert [e.name for e in evidence if e.source == "text" and e.weight > 0] == [], item["id"]


def test_robot_weight_is_what_the_fusion_training_and_inference_share() -> None:
    # train_fusion's text cues go through TextHeads.robot_weight, so the fusion is fitted on the
    # weights inference gives: the gate applies unless the words hold a machine marker.
    heads = load_heads()
    heads = dataclasses.replace(heads, meta={**heads.meta, "robot_gate": 3.0})
    unmarked = _transcript(PITCH_WITHOUT_MARKER_EN, "en")
    marked = _transcript(PITCH_WITHOUT_MARKER_EN + " Press 1 to speak with an agent.", "en")
    assert heads.robot_weight(2.5, unmarked) == 0.0
    assert heads.robot_weight(3.5, unmarked) == pytest.approx(0.5)
    assert heads.robot_weight(2.5, marked) == pytest.approx(min(2.5, ROBOT_WEIGHT_CAP))


def test_weights_before_the_gate_have_none() -> None:
    heads = load_heads()
    old = dataclasses.replace(
        heads, meta={k: v for k, v in heads.meta.items() if k != "robot_gate"}
    )
    assert old.robot_bar(has_machine_marker=False) == 0.0


def test_topic_of_a_clear_line(clf: TrainedTextClassifier) -> None:
    assert clf.score(_transcript(ROBOT_EN, "en")).topic == "car"


def test_satisfies_the_text_classifier_contract(clf: TrainedTextClassifier) -> None:
    assert clf.model_info.role == "text"
    assert clf.model_info.sha256 == hashlib.sha256(WEIGHTS_NPZ.read_bytes()).hexdigest()
    other = _transcript("Who is this? Are you a robot?", "en")
    score = clf.score(_transcript(ROBOT_EN, "en"), other_party=other)
    assert isinstance(score, TextScore)
    assert 0.0 <= score.sales_probability <= 1.0
    names = {e.name for e in score.evidence}
    assert "robot_script_text" in names and names - {"robot_script_text"} <= RULE_EVIDENCE
    weights = [abs(e.weight) for e in score.evidence]
    assert weights == sorted(weights, reverse=True)
    assert all(w <= max(MAX_ABS_RULE_WEIGHT, ROBOT_WEIGHT_CAP) for w in weights)
    robot = next(e for e in score.evidence if e.name == "robot_script_text")
    assert 0.0 <= robot.weight <= ROBOT_WEIGHT_CAP and robot.span_s == (0.0, 8.0)
    assert [t for t, _ in score.topic_scores][0] == score.topic
    assert all(0.0 <= s <= 1.0 for _, s in score.topic_scores)


def test_empty_transcript_falls_back_to_rules(clf: TrainedTextClassifier) -> None:
    score = clf.score(Transcript("en", 0.5, ()))
    assert score.sales_probability == 0.0
    assert all(e.name != "robot_script_text" for e in score.evidence)


def test_heads_that_need_embeddings_refuse_to_run_without() -> None:
    with pytest.raises(ValueError, match="embed"):
        TrainedTextClassifier(load_heads())


def test_weights_sha256_matches_model_card() -> None:
    card = (WEIGHTS_DIR / "TEXT_CLF.md").read_text(encoding="utf-8")
    digest = hashlib.sha256(WEIGHTS_NPZ.read_bytes()).hexdigest()
    assert re.search(rf"sha256[^\n]*{digest}", card), "model card does not list the npz sha256"
    total = sum(p.stat().st_size for p in WEIGHTS_DIR.glob("text_*"))
    assert total < 10 * 2**20


def test_inference_is_cheap(clf: TrainedTextClassifier) -> None:
    transcript = _transcript(" ".join([ROBOT_EN] * 4), "en")
    clf.score(transcript)
    start = time.perf_counter()
    for _ in range(10):
        clf.score(transcript)
    per_call_s = (time.perf_counter() - start) / 10
    assert per_call_s < 0.25  # budget 50 ms; generous here for a loaded CI machine


def test_weights_round_trip_matches_sklearn(tmp_path: Path) -> None:
    sklearn_text = pytest.importorskip("sklearn.feature_extraction.text")
    texts = ["请按1转人工", "press 1 now", "hi, it's me, um, call me back", "您好我是小王", "ok 42"]
    vec = sklearn_text.TfidfVectorizer(analyzer=char_ngrams, sublinear_tf=True, dtype=np.float32)
    expected = vec.fit_transform(texts).toarray()
    rng = np.random.default_rng(0)
    n = len(vec.idf_)
    heads = {
        "pitch": LinearHead(
            ("no", "pitch"), ("tfidf",), rng.normal(size=(1, n)), np.zeros(1), (2, -1)
        ),
        "robot": LinearHead(("no", "robot"), ("tfidf",), rng.normal(size=(1, n)), np.ones(1)),
        "topic": LinearHead(
            ("car", "loan", "scam"), ("tfidf",), rng.normal(size=(3, n)), np.zeros(3)
        ),
    }
    original = TextHeads(
        vocabulary={str(k): int(v) for k, v in vec.vocabulary_.items()},
        idf=vec.idf_.astype(np.float32),
        heads=heads,
        meta={"model_id": "tiny"},
    )
    npz, sidecar = tmp_path / "text_heads.npz", tmp_path / "text_heads.json"
    digest = save_heads(original, npz, sidecar)
    loaded = load_heads(npz, sidecar)
    assert set(loaded.heads) == set(HEADS)
    x = loaded.ngram_features(texts)
    np.testing.assert_allclose(x, expected, rtol=1e-5, atol=1e-6)
    for name in HEADS:
        np.testing.assert_allclose(
            loaded.scores(name, loaded.head_input(name, {"tfidf": x})),
            original.scores(name, original.ngram_features(texts)),
            rtol=1e-5,
        )
    assert loaded.heads["pitch"].platt == (2.0, -1.0)
    assert TrainedTextClassifier(loaded).model_info.sha256 == digest
    blob = bytearray(npz.read_bytes())
    blob[-1] ^= 0xFF
    npz.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="sha256"):
        load_heads(npz, sidecar)


def test_committed_sidecar_describes_itself() -> None:
    meta = load_heads().meta
    assert meta["npz_sha256"] == hashlib.sha256(WEIGHTS_NPZ.read_bytes()).hexdigest()
    assert set(meta["heads"]) == set(HEADS)
    assert "metrics" in meta and "trained_on" in meta and meta["model_id"]
    assert WEIGHTS_JSON.name == "text_heads.json"
