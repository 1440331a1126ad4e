"""Plain-language bilingual rendering of a Verdict (issue 6): renders, never recomputes."""

from __future__ import annotations

import dataclasses

import pytest

from pipeline import report as rp
from pipeline.privacy import RecitalFlag
from pipeline.report import CaseInfo
from pipeline.types import Label, Verdict
from tests import factories
from tests.factories import make_audio_info, make_provenance, make_transcript


def make_verdict(*, label: Label = Label.ROBOT, topic: str = "loan", sales: float = 0.9,
                 stereo: bool = False, fusion: str = "hand-set weights (untrained)") -> Verdict:
    callee = make_transcript("zh", (3.4, 4.0, "喂？"), language_probability=0.9,
                             avg_logprob=-0.3, no_speech_prob=0.1, compression_ratio=1.0)
    return factories.make_verdict(
        label=label, robot_probability=0.87 if label is Label.ROBOT else 0.2,
        sales_probability=sales, topic=topic, other_party_transcript=callee if stereo else None,
        audio=make_audio_info(channels=2 if stereo else 1),
        provenance=make_provenance(fusion_method=fusion),
    )


def test_every_fixed_string_exists_in_both_languages() -> None:
    for key, pair in rp.TEXT.items():
        assert len(pair) == 2 and all(pair), key
    for table in (rp.LABEL_TEXT, rp.TOPIC_TEXT, rp.EVIDENCE_TITLES, rp.RECITAL_TEXT):
        for zh, en in table.values():
            assert zh and en
            assert en.isascii()


def test_summary_lines_render_the_verdict_in_each_language() -> None:
    verdict = make_verdict()
    zh, en = rp.summary_lines(verdict, "zh"), rp.summary_lines(verdict, "en")
    assert "电子营销机器人" in zh[0] and "87 %" in zh[0] and "50 %" in zh[0]
    assert "Electronic sales robot" in en[0] and "87 %" in en[0]
    assert any("贷款" in line for line in zh) and any("loans" in line for line in en)
    assert any("hand-set" in line for line in en)  # untrained fusion is said, not hidden
    trained = make_verdict(fusion="fitted logistic fusion (test)")
    assert not any("hand-set" in line for line in rp.summary_lines(trained, "en"))


def test_reasons_keep_the_verdict_order_and_say_the_direction() -> None:
    reasons = rp.reasons(make_verdict(), "en")
    assert [r.rank for r in reasons] == [1, 2, 3]
    assert [r.name for r in reasons] == ["replayed_speech_s", "jitter_local_pct", "sales_phrases"]
    assert [r.direction for r in reasons] == ["towards robot", "towards human", "no effect"]
    assert reasons[0].where == "0:06.0–0:09.0" and reasons[1].where == ""
    assert rp.reasons(make_verdict(), "zh")[0].title == "重复播放的同一段语音（秒）"
    assert rp.evidence_title("brand_new_cue", "zh") == "Brand new cue"


@pytest.mark.parametrize(("seconds", "clock"), [(0.0, "0:00.0"), (83.25, "1:23.2"),
                                                (59.96, "1:00.0"), (-1.0, "0:00.0")])
def test_format_clock(seconds: float, clock: str) -> None:
    assert rp.format_clock(seconds) == clock


def test_transcript_rows_interleave_caller_and_callee() -> None:
    rows = rp.transcript_rows(make_verdict(stereo=True))
    assert [r.speaker for r in rows] == ["caller", "callee", "caller"]
    assert [r.start_s for r in rows] == sorted(r.start_s for r in rows)


def test_case_info_validates_its_fields() -> None:
    with pytest.raises(ValueError, match="lang"):
        CaseInfo(lang="fr")
    with pytest.raises(ValueError, match="call_time"):
        CaseInfo(call_time="yesterday at noon")
    assert CaseInfo(call_time="2024-05-01T14:30Z").call_datetime() is not None


def test_lead_language_follows_request_then_transcript() -> None:
    verdict = make_verdict()
    assert rp.lead_lang(verdict, CaseInfo()) == "zh"
    assert rp.lead_lang(verdict, CaseInfo(lang="en")) == "en"
    english = dataclasses.replace(verdict, transcript=dataclasses.replace(verdict.transcript,
                                                                          language="en"))
    assert rp.lead_lang(english, CaseInfo()) == "en"


def test_complaint_fields_for_12321_and_ftc() -> None:
    flags = (RecitalFlag("name", (0.5, 3.0), "［姓名］先生您好"),)
    case = CaseInfo(caller_number="+86 400 123 4567", call_time="2024-05-01T06:30:00+00:00")
    fields = rp.complaint_fields(make_verdict(), case, flags, callee_number="138****5678")
    cn, us = fields["cn_12321"], fields["us_ftc"]
    assert fields["schema_version"] == rp.COMPLAINT_SCHEMA_VERSION
    assert cn["reported_number"] == us["phone_number"] == "+86 400 123 4567"
    assert cn["call_time"] == "2024-05-01 14:30:00"  # converted to Beijing time
    assert cn["call_duration"] == "1 分 02 秒" and cn["call_duration_s"] == 62.4
    assert cn["call_type"] == "商业营销"
    assert "电子营销机器人" in cn["content_summary"] and "姓名" in cn["content_summary"]
    assert cn["personal_data_recited"] == ["姓名"]
    assert us["date"] == "05/01/2024" and us["time"] == "06:30 AM"
    assert us["recorded_message"] == "yes"
    assert us["subject"].startswith("Reducing your debt")


@pytest.mark.parametrize(("topic", "sales", "label", "call_type", "recorded"), [
    ("scam", 0.9, Label.ROBOT, "疑似诈骗", "yes"),
    ("none", 0.1, Label.HUMAN, "骚扰", "no"),
])
def test_complaint_call_type(topic: str, sales: float, label: Label, call_type: str,
                             recorded: str) -> None:
    fields = rp.complaint_fields(make_verdict(topic=topic, sales=sales, label=label), CaseInfo(),
                                 (), callee_number="")
    assert fields["cn_12321"]["call_type"] == call_type
    assert fields["us_ftc"]["recorded_message"] == recorded
    assert fields["cn_12321"]["call_time"] == fields["us_ftc"]["date"] == ""


def test_limits_paragraph_is_honest_in_both_languages() -> None:
    verdict = make_verdict()
    en, zh = rp.limits_paragraph(verdict, "en"), rp.limits_paragraph(verdict, "zh")
    for phrase in ("not proof", "spoofed", "hand-set", "listen to the recording"):
        assert phrase in en
    for phrase in ("而非定论", "伪造", "人工设定"):
        assert phrase in zh
