"""Masking of the callee's personal data and detection of a caller reciting it (issue 6)."""

from __future__ import annotations

import pytest

from pipeline.messages import make_evidence
from pipeline.privacy import (
    MASK_TOKENS,
    classify_number,
    find_recitals,
    is_cn_id,
    is_luhn,
    mask_number,
    mask_text,
    mask_transcript,
    mask_verdict,
    recital_evidence,
)
from pipeline.types import Evidence, Segment, Transcript, Word
from tests.factories import make_audio_info, make_transcript, make_verdict

CN_ID = "11010519491231002X"  # the published GB 11643 example: valid date and check digit
ID_BAD_CHECK = "110105194912310021"


def luhn_complete(prefix: str) -> str:
    """``prefix`` plus the Luhn check digit."""
    for d in "0123456789":
        if is_luhn(prefix + d):
            return prefix + d
    raise AssertionError("unreachable")


CARD_CN = luhn_complete("622202123456789")  # 16-digit UnionPay-like
CARD_EN = "4111 1111 1111 1111"  # the Visa test number


def test_checksums() -> None:
    assert is_cn_id(CN_ID)
    assert is_cn_id(CN_ID.lower())
    assert not is_cn_id(ID_BAD_CHECK)
    assert not is_cn_id("110105194913310028")  # month 13
    assert is_luhn(CARD_CN) and is_luhn(CARD_EN.replace(" ", ""))
    assert not is_luhn(CARD_CN[:-1] + str((int(CARD_CN[-1]) + 1) % 10))


@pytest.mark.parametrize(
    ("digits", "kind"),
    [
        ("13812345678", "phone"),
        ("+8613812345678", "phone"),
        ("4155550199", "phone"),
        (CN_ID, "cn_id"),
        (CARD_CN, "bank_card"),
        (ID_BAD_CHECK, "number"),  # an 18-digit run that is no valid ID is still masked
    ],
)
def test_classify_number(digits: str, kind: str) -> None:
    assert classify_number(digits) == kind


ZH, EN = 0, 1


@pytest.mark.parametrize(
    ("text", "secret", "kind", "lang"),
    [
        # phone numbers
        ("我的电话是13812345678，您记一下", "13812345678", "phone", ZH),
        ("号码是幺三八一二三四五六七八", "幺三八一二三四五六七八", "phone", ZH),
        ("您的手机 138-1234-5678 对吧", "138-1234-5678", "phone", ZH),
        ("Call me back at (555) 123-4567 today", "(555) 123-4567", "phone", EN),
        ("my number is 415-555-0199.", "415-555-0199", "phone", EN),
        ("it is five five five one two three four five six seven", "five five five", "phone",
         EN),
        # Chinese resident ID
        (f"身份证号是{CN_ID}对吧", CN_ID, "cn_id", ZH),
        (f"Your ID number is {CN_ID}, right?", CN_ID, "cn_id", EN),
        # bank cards
        (f"卡号{CARD_CN[:4]} {CARD_CN[4:8]} {CARD_CN[8:12]} {CARD_CN[12:]}", CARD_CN[4:8],
         "bank_card", ZH),
        (f"card number {CARD_EN} expires soon", CARD_EN, "bank_card", EN),
        # addresses
        ("您家住在北京市朝阳区建国路88号3栋2单元501室对吧", "建国路88号", "address", ZH),
        ("寄到广东省深圳市南山区科技园路1号", "南山区", "address", ZH),
        ("We have your address as 123 Main Street, Springfield", "123 Main Street", "address",
         EN),
        ("so you live at 42 Oak Avenue apartment 5", "42 Oak Avenue", "address", EN),
        # names said to the callee
        ("王先生您好，我是平安的客服", "王", "name", ZH),
        ("请问是张小明吗？", "张小明", "name", ZH),
        ("欧阳女士，您的额度已经批下来了", "欧阳", "name", ZH),
        ("Hello John, this is Mike", "John", "name", EN),
        ("Is this Mary Smith? Great.", "Mary Smith", "name", EN),
        ("Mr. Johnson, you have been selected", "Johnson", "name", EN),
    ],
)
def test_masks_each_kind_in_both_languages(text: str, secret: str, kind: str, lang: int) -> None:
    masked, spans = mask_text(text)
    assert secret not in masked
    assert kind in {s.kind for s in spans}
    assert MASK_TOKENS[kind][lang] in masked


def test_masking_keeps_ordinary_numbers_and_words() -> None:
    for text in ("语文老师说1999年的时候花了5000元", "这款车总价二十万，我们公司总部在上海",
                 "just 5 minutes drive from the beach", "Press 1 now to speak to an agent",
                 "Mean spectral centroid of speech frames in 300-3400 Hz is 783 Hz.",
                 "Hello, this is an important message"):
        assert mask_text(text) == (text, ())


def test_known_callee_data_is_masked_wherever_said() -> None:
    masked, _ = mask_text("小红说尾号5678的那个号码是138 1234 5678", known_numbers=["13812345678"])
    assert "1234 5678" not in masked and "5678" not in masked
    masked, _ = mask_text("thanks alice, bye", known_names=["Alice"])
    assert "alice" not in masked.lower()


def _transcript(*texts: str, language: str = "zh") -> Transcript:
    lines = ((2.0 * i, 2.0 * i + 1.5, text) for i, text in enumerate(texts))
    return make_transcript(language, *lines, language_probability=0.99)


def test_mask_transcript_keeps_times_and_masks_words() -> None:
    words = (Word(0.0, 0.4, "Hello", 0.9), Word(0.4, 0.8, " John,", 0.9),
             Word(0.8, 1.2, " hi", 0.9))
    seg = Segment(0.0, 1.2, "Hello John, hi", -0.1, 0.0, 1.0, words)
    masked, spans = mask_transcript(Transcript("en", 0.9, (seg,)))
    out = masked.segments[0]
    assert (out.start_s, out.end_s) == (0.0, 1.2)
    assert out.text == "Hello [name], hi"
    assert [w.text for w in out.words] == ["Hello", "[name]", " hi"]
    assert [s.kind for s in spans] == ["name"]


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("王先生您好，这边是房产中介", "name"),
        ("Is this Mary Smith?", "name"),
        ("您之前在我们平台申请过贷款", "history"),
        ("I'm calling about your car's extended warranty", "history"),
        ("您尾号5678的银行卡可以提额", "bank_card"),
        (f"核对一下您的身份证{CN_ID}", "cn_id"),
        ("您家住在朝阳区建国路88号吧", "address"),
        ("您的手机13912345678是本人在用吗", "phone"),
    ],
)
def test_recitals_are_flagged(text: str, kind: str) -> None:
    flags = find_recitals(_transcript("喂", text))
    assert kind in {f.kind for f in flags}
    flag = next(f for f in flags if f.kind == kind)
    assert flag.span_s == (2.0, 3.5)
    assert "5678" not in flag.excerpt and "Mary" not in flag.excerpt and CN_ID not in flag.excerpt


def test_no_recital_for_self_introduction_or_plain_pitch() -> None:
    flags = find_recitals(_transcript("您好，我是平安银行的王经理", "this is Mr. Lee from ABC",
                                      "现在办理有优惠，按1了解详情"))
    assert flags == ()
    assert recital_evidence(flags) is None


def test_mask_verdict_masks_everything_shareable() -> None:
    info = make_audio_info(name="13812345678_call.wav", container="wav", codec="pcm_s16le",
                           channels=2, duration_s=4.0)
    verdict = make_verdict(
        robot_probability=0.9,
        evidence=(Evidence("text", "scripted_phrase", 1.0, 1.0, "Said 'call 13812345678'.",
                           (0.0, 1.5)),
                  make_evidence("text", "scripted_phrase", value=1.0, weight=1.0,
                                code="scripted_phrase.weak",
                                params={"phrases": ("请拨打13812345678",)}),),
        transcript=_transcript("王先生您好，您之前申请过贷款"),
        other_party_transcript=_transcript("我的地址是朝阳区建国路88号"),
        audio=info,
    )
    masked, summary = mask_verdict(verdict, known_numbers=["13812345678"])
    blob = str(masked.to_dict())
    assert "13812345678" not in blob and "建国路" not in blob and "王先生" not in blob
    assert masked.robot_probability == verdict.robot_probability
    assert dict(summary.counts) == {"phone": 3, "name": 1, "address": 1}  # once per evidence
    assert {f.kind for f in summary.recitals} == {"name", "history"}
    evidence = recital_evidence(summary.recitals)
    assert evidence is not None and evidence.weight == 0.0


def test_mask_number_for_display() -> None:
    assert mask_number("+1 415 555 0199") == "+1 41* *** 0199"
    assert mask_number("12345") == "*****"
    assert mask_number("13812345678") == "138****5678"
    assert mask_number("") == ""
