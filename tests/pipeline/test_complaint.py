"""Complaint-form fields (issue 14): whose each field is, FTC subject and 12321 type from the
call, descriptions in full sentences that state only what the recording shows."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from pipeline.complaint import (
    CN_12321_TYPES,
    company_named,
    complaint_fields,
    description,
    ftc_subject,
)
from pipeline.privacy import RecitalFlag
from pipeline.report import CaseInfo
from pipeline.types import Label, Segment, Transcript, Verdict
from tests.pipeline.test_report import make_verdict

WARRANTY_EN = (
    "Hello, we've been trying to reach you concerning your car's extended warranty.",
    "Our records show your factory warranty is about to expire.",
    "This is Auto Protect calling from Vehicle Services Department.",
    "Press one now to speak with a warranty specialist",
)


def with_lines(verdict: Verdict, lines: tuple[str, ...], language: str = "en") -> Verdict:
    segments = tuple(
        Segment(3.0 * i, 3.0 * i + 2.5, text, -0.2, 0.01, 1.2) for i, text in enumerate(lines)
    )
    return dataclasses.replace(verdict, transcript=Transcript(language, 0.99, segments))


def fields(
    verdict: Verdict,
    case: CaseInfo | None = None,
    *,
    recitals: tuple[RecitalFlag, ...] = (),
    unmasked: bool = False,
) -> dict[str, Any]:
    shown = {"zh": verdict, "en": verdict}
    return complaint_fields(shown, case or CaseInfo(), recitals, unmasked=unmasked)


def test_fields_say_whose_they_are() -> None:
    case = CaseInfo(
        caller_number="+1 202 555 0143",
        callee_number="+1 415 555 0199",
        call_time="2024-05-01T14:30:00-07:00",
        caller_id_name="VEHICLE SVC",
        on_do_not_call_list=True,
        asked_to_stop=False,
    )
    out = fields(with_lines(make_verdict(), WARRANTY_EN), case)
    complainant, call, us, cn = (out[k] for k in ("complainant", "call", "us_ftc", "cn_12321"))
    assert isinstance(complainant, dict) and isinstance(call, dict)
    assert isinstance(us, dict) and isinstance(cn, dict)
    assert complainant["own_number"] == "+1 41* *** 0199" and complainant["own_number_masked"]
    assert complainant["own_number_on_do_not_call_list"] is True
    assert complainant["asked_caller_to_stop"] is False
    assert call["caller_number_e164"] == "+12025550143" and call["caller_id_name"] == "VEHICLE SVC"
    assert (call["date"], call["time"], call["time_zone"]) == (
        "2024-05-01",
        "14:30:00",
        "UTC-07:00",
    )
    assert call["stated_by"] == "complainant"
    assert us["your_phone_number"] == "+1 41* *** 0199"
    assert (us["on_do_not_call_registry"], us["asked_to_stop"]) == ("yes", "no")
    assert us["time_of_call"] == "02:30 PM" and us["time_zone"] == "UTC-07:00"
    assert cn["call_time_beijing"] == "2024-05-02 05:30:00"
    private = fields(with_lines(make_verdict(), WARRANTY_EN), case, unmasked=True)
    assert private["cn_12321"]["complainant_number"] == "+1 415 555 0199"  # type: ignore[index]


def test_car_warranty_robocall_is_a_warranty_complaint_not_imposters() -> None:
    verdict = with_lines(make_verdict(topic="scam"), WARRANTY_EN)
    out = fields(verdict)
    us = out["us_ftc"]
    assert isinstance(us, dict)
    assert us["subject"] == "Warranties & protection plans" == ftc_subject(verdict)
    assert us["company_name"] == "Vehicle Services Department"
    assert "leaked" not in us["description"] and "sold" not in us["description"]


@pytest.mark.parametrize(
    ("lines", "subject"),
    [
        (
            (
                "This is an important message about your card extended WRNV.",
                "Our records show your factory WRNV is about to expire.",
            ),
            "Warranties & protection plans",
        ),  # examples/robot_en.mp3 as Whisper base hears it
        (
            ("Lower your credit card interest rate today, press one.",),
            "Reducing your debt (credit cards, mortgage, student loans)",
        ),
        (("Your Social Security number has been suspended.",), "Imposters"),
        (("You qualify for free solar panels.",), "Energy, solar, & utilities"),
        (("Congratulations, you have won a free cruise.",), "Vacation & timeshares"),
        (("",), "Dropped call or no message"),
        (("We have a special offer for you today.",), "Other"),
    ],
)
def test_ftc_subject_from_the_transcript(lines: tuple[str, ...], subject: str) -> None:
    assert ftc_subject(with_lines(make_verdict(topic="other"), lines)) == subject


@pytest.mark.parametrize(
    ("topic", "sales", "label", "report_type", "recorded"),
    [
        ("loan", 0.9, Label.ROBOT, "商业营销", "yes"),
        ("scam", 0.9, Label.ROBOT, "诈骗电话", "yes"),
        ("none", 0.1, Label.HUMAN, "其他骚扰", "no"),
    ],
)
def test_12321_report_type(
    topic: str, sales: float, label: Label, report_type: str, recorded: str
) -> None:
    out = fields(make_verdict(topic=topic, sales=sales, label=label))
    cn, us = out["cn_12321"], out["us_ftc"]
    assert isinstance(cn, dict) and isinstance(us, dict)
    assert cn["report_type"] == report_type and report_type in CN_12321_TYPES
    assert us["recorded_message_or_robocall"] == recorded
    assert cn["call_time_beijing"] == us["date_of_call"] == ""


def test_description_has_full_sentences_and_no_cut_word() -> None:
    long_lines = tuple(
        f"Line {i} says something about an extended warranty offer" for i in range(40)
    )
    verdict = with_lines(make_verdict(), long_lines)
    text = description(verdict, (), "en", company="", max_chars=400)
    assert len(text) <= 400 + 60
    quoted = text.split("\u201c", 1)[1]
    assert quoted.endswith("…\u201d")
    for line in quoted.rstrip("…\u201d").split(". ")[:-1]:
        assert line.startswith("Line ") and line.endswith("offer")
    zh = with_lines(make_verdict(), ("您好，这里是平安保险", "您的保单即将进入宽限期"), "zh")
    text_zh = description(zh, (), "zh", company="平安保险")
    assert "“您好，这里是平安保险。您的保单即将进入宽限期。”" in text_zh
    assert "来电方自称来自“平安保险”。" in text_zh


def test_recital_sentence_in_the_complaint_states_only_what_was_heard() -> None:
    flag = RecitalFlag("name", (0.5, 3.0), "［姓名］先生您好")
    out = fields(make_verdict(), recitals=(flag,))
    cn, us = out["cn_12321"], out["us_ftc"]
    assert isinstance(cn, dict) and isinstance(us, dict)
    assert "说出了疑似接听方的姓名" in cn["content_summary"]
    assert "泄露" not in cn["content_summary"] and "leaked" not in us["description"]
    assert cn["personal_data_recited"] == ["姓名"] and us["personal_data_recited"] == ["name"]


def test_company_named_in_the_call() -> None:
    zh = with_lines(make_verdict(), ("您好，这里是平安保险公司，", "有一款产品"), "zh")
    assert company_named(zh) == "平安保险公司"
    assert company_named(with_lines(make_verdict(), ("Hi, how are you today?",))) == ""
    assert company_named(with_lines(make_verdict(), ("This is Mike from Sunrise Solar.",))) == (
        "Sunrise Solar"
    )
