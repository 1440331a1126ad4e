"""Tests for the rule-based text branch (pipeline/text_cues.py, pipeline/lexicon.py)."""

from __future__ import annotations

import math

import pytest

from pipeline import lexicon
from pipeline.text_cues import (
    MAX_ABS_WEIGHT,
    RuleTextClassifier,
    machine_markers,
    normalize_text,
)
from pipeline.types import Evidence, Segment, TextClassifier, TextScore, Transcript

CLF = RuleTextClassifier()


def make_transcript(language: str, *segments: tuple[float, float, str]) -> Transcript:
    return Transcript(
        language=language,
        language_probability=0.95,
        segments=tuple(Segment(a, b, text, -0.25, 0.01, 1.3) for a, b, text in segments),
        backend="fake",
    )


def one_line(language: str, text: str, *, start_s: float = 0.0, end_s: float = 5.0) -> Transcript:
    return make_transcript(language, (start_s, end_s, text))


def find(score: TextScore, name: str) -> Evidence | None:
    return next((e for e in score.evidence if e.name == name), None)


NEUTRAL_ZH = "今天天气不错，我们下午去公园散步，晚上回家做饭。"
NEUTRAL_EN = "The weather was nice today, so we walked to the park and cooked dinner at home."


def check_invariants(score: TextScore) -> None:
    assert 0.0 <= score.sales_probability <= 1.0
    assert score.topic in (*lexicon.TOPICS, "none")
    values = [s for _, s in score.topic_scores]
    assert values == sorted(values, reverse=True)
    assert all(0.0 <= s <= 1.0 for s in values)
    weights = [abs(e.weight) for e in score.evidence]
    assert weights == sorted(weights, reverse=True)
    for e in score.evidence:
        assert e.source == "text"
        assert math.isfinite(e.weight) and abs(e.weight) <= MAX_ABS_WEIGHT
        assert math.isfinite(e.value)
        assert e.detail


def test_implements_protocol_and_model_info() -> None:
    clf: TextClassifier = CLF
    assert clf.model_info.role == "text"
    assert clf.model_info.model_id == "rules-v1"
    assert len(clf.model_info.sha256) == 64
    int(clf.model_info.sha256, 16)


def test_empty_transcript_is_low_and_none() -> None:
    for transcript in (make_transcript("zh"), one_line("en", "   ")):
        score = CLF.score(transcript)
        check_invariants(score)
        assert score.sales_probability < 0.2
        assert score.topic == "none"
        assert score.evidence == ()


def test_normalize_text_width_case_spaces() -> None:
    assert normalize_text("请按 １，") == "请按1"
    assert normalize_text("PRESS  ONE!") == "press one"
    assert normalize_text("您 好 ， 我 是 UPS 国际快递") == "您好我是ups国际快递"


# --- scripted / IVR phrasing -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("zh", "如需了解详情请按1，如不需要请直接挂机。"),
        ("zh", "您好，您的话费套餐可以免费升级，办理请按１"),  # full-width digit
        ("zh", "本次来电为系统自动拨打，请勿回拨。"),
        ("zh", "退订请回复TD"),
        ("en", "This is an automated message. Press 1 to speak with an agent."),
        ("en", "PRESS NINE TO BE REMOVED FROM OUR LIST."),
    ],
)
def test_scripted_phrase_fires(language: str, text: str) -> None:
    score = CLF.score(one_line(language, text, start_s=2.0, end_s=6.5))
    check_invariants(score)
    scripted = find(score, "scripted_phrase")
    assert scripted is not None and scripted.weight >= 2.0
    assert scripted.span_s == (2.0, 6.5)
    assert "\u201c" in scripted.detail and "\u201c" in scripted.detail_zh


def test_scripted_phrase_chinese_without_spaces_and_span() -> None:
    transcript = make_transcript(
        "zh",
        (0.0, 3.0, "您好这里是会员服务中心"),
        (3.5, 7.0, "您的积分即将清零"),
        (7.5, 9.0, "兑换礼品请按1转人工请按2"),
    )
    scripted = find(CLF.score(transcript), "scripted_phrase")
    assert scripted is not None
    assert scripted.span_s == (7.5, 9.0)
    assert "按1" in scripted.detail


def test_many_ivr_phrases_stay_bounded() -> None:
    text = "请按1，按2，按3。Press 1, press 2, press 9 to be removed from our list. " * 20
    score = CLF.score(one_line("zh", text))
    check_invariants(score)
    scripted = find(score, "scripted_phrase")
    assert scripted is not None and scripted.weight == MAX_ABS_WEIGHT


def test_weak_scripted_phrases_weigh_less() -> None:
    for language, text in (
        ("zh", "如不需要，请直接挂机。"),
        ("en", "Your call is important to us. All of our agents are currently busy."),
    ):
        scripted = find(CLF.score(one_line(language, text)), "scripted_phrase")
        assert scripted is not None and 0.0 < scripted.weight < 2.0


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("zh", NEUTRAL_ZH),
        ("en", NEUTRAL_EN),
        ("zh", "按一下按钮就可以后退"),
        ("zh", "请按照说明书操作"),
        # every caller opens with it, people too (issue 13: human business calls)
        ("zh", "喂，您好，我是锦绣花园物业的小周，明天上午要停水检修。"),
    ],
)
def test_scripted_phrase_silent_on_neutral(language: str, text: str) -> None:
    assert find(CLF.score(one_line(language, text)), "scripted_phrase") is None


def test_machine_markers_are_the_strong_phrases_in_text_order() -> None:
    transcript = make_transcript(
        "en",
        (0.0, 4.0, "This is an automated message from your pharmacy."),
        (4.0, 8.0, "Press 1 to refill, or press 9 to be removed from our list."),
    )
    found = machine_markers(transcript)
    assert found[0] == "this is an automated message"
    assert "press 1" in found and "press 9" in found
    assert machine_markers(one_line("zh", "兑换礼品请按1，退订请回复TD")) == ("按1", "退订请回复")


@pytest.mark.parametrize(
    ("language", "text"),
    [
        # a person's voicemail: who is calling, from where, and a number to call back (issue 13)
        (
            "en",
            "Hi, this is Carol from Northside Auto calling about your car. Give us a call back "
            "at 555-0100, thanks.",
        ),
        ("zh", "您好，我是城东口腔的小李，提醒您明天上午十点复诊，有事请回电13800138000。"),
        ("zh", "喂，您好，我是锦绣花园物业的小周，明天上午要停水检修。"),
        ("en", "Are you still there? Please hold, I'll check with my manager."),
        # a key press for a later call, as an agent explains the menu before a transfer
        ("en", "If the call drops, just dial the main number again and press three for support."),
        ("zh", "要是中间断了，您重新拨打我们的热线，按2就是售后。"),
        ("zh", "您拨打客服热线95555，然后转人工就行。"),
        ("zh", "逾期了还是请按合同约定还款，请按页面上的提示填写。"),
    ],
)
def test_machine_markers_silent_on_people_doing_business(language: str, text: str) -> None:
    assert machine_markers(one_line(language, text)) == ()


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("en", "Thanks for holding. Can you hear me okay? Please stay on the line for a moment."),
        ("en", "Thank you for your patience today, you have a great rest of your day."),
        ("zh", "感谢您的耐心等待，到时候请保持电话畅通，祝您生活愉快。"),
        ("zh", "您还在听吗？我这边提交一下，稍后会有专人与您联系。"),
    ],
)
def test_agents_courtesy_formulas_are_no_scripted_phrase(language: str, text: str) -> None:
    """What every call-centre agent says on hold, on a bad line and at the close (issue 13)."""
    assert find(CLF.score(one_line(language, text)), "scripted_phrase") is None


def test_a_key_press_counts_unless_joined_to_a_later_call() -> None:
    """ "This call", a call-back number before a menu, or a dial instruction further back is
    no key press for a later call; "dial ... again and press" is."""
    for text in (
        "This is your final courtesy call, press 1 now to speak with an agent.",
        "We are calling about your car warranty. Press 1 to be connected.",
        "Give us a call back at 555-0100 today. Press 1 to speak with an agent.",
        "Dial our hotline and " + "your vehicle's coverage is about to end " * 2 + "press 1.",
    ):
        assert machine_markers(one_line("en", text)), text
    assert machine_markers(one_line("zh", "拨打热线咨询，您的车险即将到期，续保请按1")) == ("按1",)


# --- sales likelihood and topic --------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "text"),
    [
        (
            "zh",
            "您好，我是城南置业的顾问，我们新开盘的学区房首付只要三十万，您近期有看房的打算吗？",
        ),
        ("zh", "您好，低息贷款，贷款额度最高三十万，现在申请当天放款，限时优惠。"),
        ("en", "Hi, this is Mike from Sunrise Solar. Get a free quote today, limited time offer."),
        (
            "en",
            "You may qualify for a lower rate. This special offer ends soon, call us back today.",
        ),
    ],
)
def test_sales_pitch_fires(language: str, text: str) -> None:
    score = CLF.score(one_line(language, text))
    check_invariants(score)
    assert score.sales_probability >= 0.5
    sales = find(score, "sales_phrases")
    assert sales is not None and sales.weight == 0.0  # content says nothing about robot vs human


@pytest.mark.parametrize(("language", "text"), [("zh", NEUTRAL_ZH), ("en", NEUTRAL_EN)])
def test_sales_pitch_silent_on_neutral(language: str, text: str) -> None:
    score = CLF.score(one_line(language, text))
    check_invariants(score)
    assert score.sales_probability < 0.5
    assert score.topic == "none"


TOPIC_LINES = [
    ("real_estate", "zh", "您好，我是安居地产的置业顾问，新楼盘学区房首付只要三十万，欢迎来看房。"),
    (
        "real_estate",
        "en",
        "Hi, this is Karen with Sunrise Realty. We have cash buyers for your property, "
        "and you can get a free valuation of your home today.",
    ),
    (
        "insurance",
        "zh",
        "您好，我是保险公司的客服，您的车险下个月到期，现在续保可以享受八五折优惠。",
    ),
    (
        "insurance",
        "en",
        "Hello, this is Linda with the senior benefits center. You may qualify for a "
        "new Medicare plan with lower premiums. Press 1 to speak with a licensed agent.",
    ),
    ("loan", "zh", "您好，我是银行的贷款专员，现在有一款低息信用贷，额度最高三十万，当天放款。"),
    (
        "loan",
        "en",
        "Congratulations, you have been pre-approved for a personal loan. Lower your "
        "interest rate and pay off your credit card debt today.",
    ),
    ("car", "zh", "您好，这边是汽车销售服务店，新款车型现在到店试驾就送精美礼品，购车还有优惠。"),
    (
        "car",
        "en",
        "We've been trying to reach you about the extended warranty on your vehicle. "
        "Press 1 to speak with a warranty specialist about your car.",
    ),
    ("education", "zh", "您好，我们是新思维教育，孩子暑假的辅导班现在报名有优惠，可以免费试听。"),
    (
        "education",
        "en",
        "Hi, I'm calling from the admissions office of an online school. Earn your "
        "degree with classes on your schedule, and the first course is free.",
    ),
    ("other", "zh", "您好，您的话费套餐可以免费升级，流量翻倍，月租不变，现在办理还送积分。"),
    (
        "other",
        "en",
        "Homeowners in your area may qualify for free solar panels. Stop paying high "
        "electric bills, call us today for a free quote.",
    ),
    ("scam", "zh", "您好，这里是国际快递，您有一个包裹涉嫌洗钱已被海关扣留，如有疑问请按9。"),
    (
        "scam",
        "en",
        "This call is from the Social Security Administration. Your social security "
        "number has been suspended for fraudulent activity. Press 1 to speak with an officer.",
    ),
]


@pytest.mark.parametrize(("topic", "language", "text"), TOPIC_LINES)
def test_topic_per_language(topic: str, language: str, text: str) -> None:
    score = CLF.score(one_line(language, text))
    check_invariants(score)
    assert score.sales_probability >= 0.5
    assert score.topic == topic
    assert score.topic_scores[0][0] == topic
    assert {t for t, _ in score.topic_scores} == set(lexicon.TOPICS)


def test_mixed_chinese_english_parcel_scam() -> None:
    text = (
        "Hello,这里是UPS国际快递,您有一份国际快递即将退回,For English please press 1,如有疑问请按9"
    )
    score = CLF.score(one_line("zh", text))
    check_invariants(score)
    assert score.topic == "scam"
    scripted = find(score, "scripted_phrase")
    assert scripted is not None and "press 1" in scripted.detail and "按9" in scripted.detail


# --- disfluency ------------------------------------------------------------------------------

DISFLUENT_ZH = (
    "嗯，那个，我们这边呢，就是，呃，有一个那个房子，然后，我我想问一下您，呃，有没有兴趣"
)
DISFLUENT_EN = (
    "So um, I was, I was calling about, uh, you know, your, your home. I mean, uh, we could "
    "maybe talk about it, um, if you have a minute."
)


@pytest.mark.parametrize(("language", "text"), [("zh", DISFLUENT_ZH), ("en", DISFLUENT_EN)])
def test_disfluency_fires_human(language: str, text: str) -> None:
    score = CLF.score(one_line(language, text))
    check_invariants(score)
    cue = find(score, "disfluency_rate")
    assert cue is not None and cue.weight < 0.0 and cue.value > 4.0


@pytest.mark.parametrize(("language", "text"), [("zh", NEUTRAL_ZH * 6), ("en", NEUTRAL_EN * 5)])
def test_long_fluent_text_is_reported_but_neutral(language: str, text: str) -> None:
    # fluent is no machine-specific sign (issue 13): Whisper drops fillers, typed text has none
    cue = find(CLF.score(one_line(language, text)), "disfluency_rate")
    assert cue is not None and cue.value == 0.0 and cue.weight == 0.0


@pytest.mark.parametrize(("language", "text"), [("zh", NEUTRAL_ZH), ("en", NEUTRAL_EN)])
def test_disfluency_silent_on_short_neutral(language: str, text: str) -> None:
    cue = find(CLF.score(one_line(language, text)), "disfluency_rate")
    assert cue is None or cue.weight == 0.0


def test_ordinary_words_are_not_fillers() -> None:
    # "let you know", "然后" as a conjunction, "就是" as a copula, reduplication ("看看")
    texts = [
        ("en", "We want to let you know that your order shipped, and did you know it ships free?"),
        ("zh", "这就是我们的新产品，您可以先看看，然后再决定买不买。"),
    ]
    for language, text in texts:
        cue = find(CLF.score(one_line(language, text)), "disfluency_rate")
        assert cue is None or cue.weight >= 0.0


# --- reaction to the callee (stereo only) ----------------------------------------------------

ROBOT_ZH = make_transcript(
    "zh",
    (0.0, 4.0, "您好，我是宏达房产的置业顾问，给您介绍一下我们的新项目。"),
    (6.0, 10.0, "项目紧邻地铁和商场，周边配套齐全。"),
    (12.0, 16.0, "现在认购还可以享受额外优惠。"),
    (18.0, 22.0, "名额有限，先到先得。"),
)
CALLEE_ZH = make_transcript(
    "zh",
    (4.2, 5.5, "你是机器人吗？"),
    (10.2, 11.5, "我问你话呢"),
    (16.2, 17.5, "我不需要买房子"),
)
HUMAN_ZH = make_transcript(
    "zh",
    (0.0, 4.0, "您好，我是宏达房产的置业顾问，给您介绍一下我们的新项目。"),
    (6.0, 10.0, "不是不是，我是真人，我姓王。"),
    (12.0, 16.0, "好的，那您对房子有什么要求？"),
    (18.0, 22.0, "学区房的话我们也有。"),
)
CALLEE_ZH_2 = make_transcript(
    "zh", (4.2, 5.5, "你是机器人吗？"), (10.2, 11.5, "哦，那你说吧"), (16.2, 17.5, "我想要学区房")
)
ROBOT_EN = make_transcript(
    "en",
    (0.0, 4.0, "Hello, this is an important call about your vehicle's extended warranty."),
    (6.0, 10.0, "Our records show your coverage may have expired."),
    (12.0, 16.0, "We can help you reinstate it today."),
    (18.0, 22.0, "Extended protection plans start at just a few dollars a day."),
)
CALLEE_EN = make_transcript(
    "en",
    (4.2, 5.5, "Are you a robot?"),
    (10.2, 11.5, "Who is this?"),
    (16.2, 17.5, "Take me off your list."),
)
HUMAN_EN = make_transcript(
    "en",
    (0.0, 4.0, "Hi, this is Mike from Sunrise Realty."),
    (6.0, 10.0, "No, I'm a real person. My name is Mike."),
    (12.0, 16.0, "Sure, I understand. Can I send you an email instead?"),
    (18.0, 22.0, "Great, I'll send the listing to your email then."),
)
CALLEE_EN_2 = make_transcript(
    "en",
    (4.2, 5.5, "Are you a robot?"),
    (10.2, 11.5, "I don't have time for this."),
    (16.2, 17.5, "Fine, email is okay."),
)


@pytest.mark.parametrize(("caller", "callee"), [(ROBOT_ZH, CALLEE_ZH), (ROBOT_EN, CALLEE_EN)])
def test_no_reaction_to_callee_is_robot(caller: Transcript, callee: Transcript) -> None:
    score = CLF.score(caller, other_party=callee)
    check_invariants(score)
    cue = find(score, "no_reaction_to_callee")
    assert cue is not None and cue.weight > 1.0 and cue.value == 1.0
    assert cue.span_s is not None and cue.span_s[0] == pytest.approx(4.2)
    assert cue.code == "no_reaction_to_callee.never_question" and "not even" in cue.detail


@pytest.mark.parametrize(("caller", "callee"), [(HUMAN_ZH, CALLEE_ZH_2), (HUMAN_EN, CALLEE_EN_2)])
def test_reaction_to_callee_is_human(caller: Transcript, callee: Transcript) -> None:
    score = CLF.score(caller, other_party=callee)
    check_invariants(score)
    cue = find(score, "no_reaction_to_callee")
    assert cue is not None and cue.weight < 0.0 and cue.value == 0.0


@pytest.mark.parametrize("caller", [ROBOT_ZH, ROBOT_EN, HUMAN_ZH, HUMAN_EN])
def test_reaction_cue_needs_other_party(caller: Transcript) -> None:
    assert find(CLF.score(caller), "no_reaction_to_callee") is None
    assert find(CLF.score(caller, other_party=None), "no_reaction_to_callee") is None


def test_reaction_cue_silent_when_callee_says_nothing() -> None:
    silent = make_transcript("en")
    assert find(CLF.score(ROBOT_EN, other_party=silent), "no_reaction_to_callee") is None


def test_fake_text_classifier_returns_given_score() -> None:
    from tests.fakes import FakeTextClassifier

    fixed = TextScore(
        sales_probability=0.9, topic="loan", topic_scores=(("loan", 0.9),), evidence=()
    )
    fake: TextClassifier = FakeTextClassifier(fixed)
    assert fake.score(ROBOT_EN, other_party=CALLEE_EN) is fixed
    assert fake.model_info.role == "text"
