"""The message catalogue (issues 13-15): two questions apart, every sentence in both languages."""

from __future__ import annotations

import dataclasses
import re
import string

import pytest

from pipeline import report as rp
from pipeline.messages import (
    CATALOGUE,
    CHANNEL_REASONS,
    TITLES,
    channel_reason,
    evidence_sentence,
    format_probability,
    headline,
    make_evidence,
    render,
)
from pipeline.types import Evidence, Label
from tests.factories import make_transcript
from tests.pipeline.test_report import make_verdict

# sample params for every field a message may use
SAMPLE: dict[str, object] = {
    "phrases": ("press 1", "按1"),
    "kinds": ("name", "phone"),
    "unit": "chars",
    "when": "other",
    "question": "你是机器人吗",
    "quote": "感谢您的耐心等待",
    "probability": 0.999,
}
# Latin letters allowed in Chinese sentences: units and the like
ZH_LATIN_OK = {"Hz", "dB", "press"}  # "press 1" is a quoted phrase the caller said


def sample_params(code: str) -> dict[str, object]:
    names = {
        f for lang in (0, 1) for _, f, _, _ in string.Formatter().parse(CATALOGUE[code][lang]) if f
    }
    return {n: SAMPLE.get(n, 1.25) for n in names}


@pytest.mark.parametrize("code", sorted(CATALOGUE))
def test_every_message_renders_plainly_in_both_languages(code: str) -> None:
    params = sample_params(code)
    en, zh = render(code, params, "en"), render(code, params, "zh")
    assert en.endswith(".") and zh.endswith("。") and not zh.startswith("。")
    for words in ("log-odds", "log odds", "window(s)", "q0.", "std", "coefficient"):
        assert words not in en.lower()
    latin = set(re.findall(r"[A-Za-z]+", zh)) - ZH_LATIN_OK
    assert not latin, f"{code}: English left in the Chinese sentence: {latin}"
    assert "100 %" not in en and " 0 %" not in en


def test_every_cue_has_a_title_in_both_languages() -> None:
    names = {code.split(".")[0] for code in CATALOGUE}
    assert names <= set(TITLES)
    for en, zh in TITLES.values():
        assert en.isascii() and not re.search(r"[A-Za-z]{3,}", zh)


@pytest.mark.parametrize(
    ("p", "text"),
    [
        (1.0, ">99 %"),
        (0.996, ">99 %"),
        (0.994, "99 %"),
        (0.5, "50 %"),
        (0.004, "<1 %"),
        (0.0, "<1 %"),
    ],
)
def test_probabilities_never_read_100_or_0_percent(p: float, text: str) -> None:
    assert format_probability(p) == text
    assert rp.format_percent(p) == text  # the report uses the same formatter


def test_synthetic_voice_sentence_keeps_the_technical_figures_in_params() -> None:
    e = make_evidence(
        "acoustic",
        "synthetic_voice",
        value=0.9990,
        weight=3.0,
        code="synthetic_voice.synthetic",
        params={
            "probability": 0.999,
            "log_odds": 13.48,
            "pooling": "q0.5 of 3 window(s)",
            "windows": 3.0,
        },
    )
    assert e.detail == (
        "The trained voice model judges the voice synthetic: >99 % likely to be machine-made."
    )
    assert e.detail_zh.startswith("经过训练的声音模型") and ">99 %" in e.detail_zh
    assert dict(e.params)["log_odds"] == 13.48 and "13.48" not in e.detail


@pytest.mark.parametrize(
    ("label", "sales", "topic", "en", "zh"),
    [
        (
            Label.ROBOT,
            0.9,
            "loan",
            "Electronic sales robot \u2013 sales pitch (topic: loan)",
            "电子营销机器人，推销（内容：贷款）",
        ),
        (Label.ROBOT, 0.1, "none", "Robot \u2013 no sales pitch heard", "机器人，未听到推销"),
        (
            Label.HUMAN,
            0.9,
            "insurance",
            "Live person \u2013 sales pitch (topic: insurance)",
            "真人，推销（内容：保险）",
        ),
        (Label.HUMAN, 0.1, "none", "Live person \u2013 no sales pitch heard", "真人，未听到推销"),
    ],
)
def test_headline_answers_who_and_what_apart(label, sales, topic, en, zh) -> None:
    verdict = make_verdict(label=label, sales=sales, topic=topic)
    assert headline(verdict, "en") == en and headline(verdict, "zh") == zh
    if sales < verdict.sales_threshold:  # never call a non-sales call a sales pitch
        for lang in ("en", "zh"):
            for line in rp.summary_lines(verdict, lang):
                assert "sales pitch (" not in line and "topic:" not in line and "内容：" not in line


def test_headline_says_when_too_little_was_said() -> None:
    short = make_transcript("en", (0.0, 1.0, "Hello? Hello?"), language_probability=0.9)
    verdict = dataclasses.replace(
        make_verdict(label=Label.HUMAN, sales=0.1, topic="none"), transcript=short
    )
    assert verdict.too_little_said
    assert headline(verdict, "en") == (
        "Live person \u2013 too little said to tell whether it was a sales pitch"
    )


def test_the_zh_report_has_every_reason_in_chinese() -> None:
    evidence = (
        make_evidence(
            "acoustic",
            "synthetic_voice",
            value=0.99,
            weight=3.0,
            code="synthetic_voice.synthetic",
            params={"probability": 0.99},
            span_s=(1.0, 4.0),
        ),
        make_evidence(
            "text",
            "robot_script_text",
            value=13.5,
            weight=2.5,
            code="robot_script_text.robot",
            params={"log_odds": 13.5},
        ),
        make_evidence(
            "structure",
            "digital_silence_s",
            value=1.6,
            weight=1.5,
            code="digital_silence_s.found",
            params={"silence_s": 1.6, "start_s": 8.3, "end_s": 9.9},
        ),
    )
    verdict = dataclasses.replace(make_verdict(), evidence=evidence)
    for r in rp.reasons(verdict, "zh"):
        assert not re.search(r"[A-Za-z]{3,}", r.title + r.detail), r
        assert not r.detail.startswith("。")
    assert [r.detail for r in rp.reasons(verdict, "en")] == [e.detail for e in evidence]


def test_a_verdict_without_codes_still_renders() -> None:
    e = Evidence("text", "brand_new_cue", 1.0, 0.4, "Something new.", None)
    assert evidence_sentence(e, "zh") == evidence_sentence(e, "en") == "Something new."
    zh = dataclasses.replace(e, detail_zh="新的依据。")
    assert evidence_sentence(zh, "zh") == "新的依据。"


@pytest.mark.parametrize(
    ("probability", "sales", "en", "zh"),
    [
        (
            0.63,
            0.9,
            "Cannot tell whether a robot or a live person called (leans robot, 63 %) \u2013 "
            "sales pitch (topic: loan) \u2013 listen before reporting",
            "无法判断来电的是机器人还是真人（倾向机器人，63 %），"
            "推销（内容：贷款），举报前请先听录音",
        ),
        (
            0.3,
            0.1,
            "Cannot tell whether a robot or a live person called (leans live person, 70 %) "
            "\u2013 no sales pitch heard \u2013 listen before reporting",
            "无法判断来电的是机器人还是真人（倾向真人，70 %），未听到推销，举报前请先听录音",
        ),
    ],
)
def test_headline_in_the_uncertain_band_says_it_cannot_tell(
    probability: float, sales: float, en: str, zh: str
) -> None:
    verdict = dataclasses.replace(
        make_verdict(label=Label.HUMAN, sales=sales, topic="loan" if sales > 0.5 else "none"),
        robot_probability=probability,
        threshold=0.9,
        person_threshold=0.1,
    )
    assert verdict.caller_certainty == "uncertain"
    assert headline(verdict, "en") == en and headline(verdict, "zh") == zh
    for lang in ("en", "zh"):  # the report says so too, and why it is not enough alone
        assert rp.verdict_sentence(verdict, lang).count(headline(verdict, lang)) == 1
        assert rp.band_text(verdict, lang) and rp.uncertain_notice(verdict, lang)
    assert "not sufficient for a complaint" in rp.uncertain_notice(verdict, "en")
    decided = dataclasses.replace(verdict, robot_probability=0.05)
    assert decided.caller_certainty == "person" and rp.uncertain_notice(decided, "en") == ""
    assert headline(decided, "en").startswith("Live person")


@pytest.mark.parametrize(
    ("threshold", "text"), [(0.956, "95.6 %"), (0.023, "2.3 %"), (0.5, "50 %"), (0.9, "90 %")]
)
def test_thresholds_read_to_a_tenth_of_a_percent(threshold: float, text: str) -> None:
    from pipeline.messages import format_threshold_percent

    assert format_threshold_percent(threshold) == text


@pytest.mark.parametrize(
    ("probability", "text"),
    [(0.0236, "2.3 %"), (0.0229, "2.2 %"), (0.9559, "95.5 %"), (0.956, "95.6 %"), (0.4, "40 %")],
)
def test_a_probability_near_an_edge_reads_on_its_side_of_it(probability: float, text: str) -> None:
    from pipeline.messages import format_robot_probability

    verdict = dataclasses.replace(
        make_verdict(label=Label.HUMAN), robot_probability=probability, threshold=0.956,
        person_threshold=0.023,
    )  # fmt: skip
    assert format_robot_probability(verdict) == text


@pytest.mark.parametrize("code", sorted(CHANNEL_REASONS))
def test_every_caller_channel_reason_reads_in_both_languages(code: str) -> None:
    names = {
        f
        for lang in (0, 1)
        for _, f, _, _ in string.Formatter().parse(CHANNEL_REASONS[code][lang])
        if f
    }
    en, zh = channel_reason(("mono", {}), (code, {n: 1.25 for n in names}))
    assert en.startswith("mono recording") and zh.startswith("单声道录音")
    latin = set(re.findall(r"[A-Za-z_]+", zh)) - {"caller_channel"}  # the option's own name
    assert not latin, f"{code}: English left in the Chinese reason: {latin}"
