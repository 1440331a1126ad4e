"""The fields of the 12321 (China) and FTC (US) complaint forms, filled from a verdict (issue 14).

Every field says whose it is: ``complainant_*`` is what the person filing states about themself,
``caller_*`` is about the party that called, and the ``call`` block holds what the complainant
states about the call (number, caller ID, time) next to what the recording shows (duration,
company named, topic). The description states only what the recording shows, in full sentences.

The complainant's own number is masked in the shareable pack; the FTC form requires it and
12321 needs it unmasked (it verifies the complainant by SMS), so the unmasked value goes only into
the complainant's own copy (``robocall evidence --unmasked``), never into the signed pack.
"""

from __future__ import annotations

import re
from typing import Any

from pipeline.messages import Lang
from pipeline.privacy import RECITAL_KINDS, RecitalFlag, has_cjk, mask_number
from pipeline.report import (
    BEIJING,
    COMPLAINT_SCHEMA_VERSION,
    RECITAL_TEXT,
    CaseInfo,
    format_duration,
    label_text,
    recital_sentence,
    topic_text,
    verdict_sentence,
)
from pipeline.types import Label, Verdict

# The FTC's Do Not Call complaint form, "What was the call about?" (the subject list as offered
# on donotcall.gov / reportfraud.ftc.gov); first matching transcript pattern wins.
FTC_SUBJECT_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (subject, re.compile(pattern, re.IGNORECASE))
    for subject, pattern in (
        # "extended" / "factory ... expire": the car-warranty script even when ASR mishears
        # "warranty" (examples/robot_en.mp3 comes out as "factory WRNV is about to expire")
        (
            "Warranties & protection plans",
            r"warrant|protection plan|service contract|extended (?:auto |car |vehicle )?\w+"
            r"|factory \w+ (?:is )?(?:about to )?expir|延保|保修",
        ),
        ("Computer & technical support", r"computer|virus|tech(?:nical)? support|microsoft|电脑"),
        (
            "Imposters",
            r"social security|\bIRS\b|warrant for your arrest|government agency|公安|检察院|法院",
        ),
        (
            "Reducing your debt (credit cards, mortgage, student loans)",
            r"debt|credit card|interest rate|student loan|mortgage|贷款|信用卡|额度|借款",
        ),
        (
            "Medical & prescriptions",
            r"medicare|prescription|health insurance|medical|brace|医保|药",
        ),
        ("Energy, solar, & utilities", r"solar|energy|electric(?:ity)? bill|utility|光伏|电费"),
        ("Vacation & timeshares", r"vacation|cruise|timeshare|resort|旅游"),
        ("Lotteries, prizes & sweepstakes", r"prize|sweepstake|lottery|you(?:'ve| have) won|中奖"),
        ("Home security & alarms", r"home security|alarm system|安防"),
        ("Home improvement & cleaning", r"roof|window|remodel|duct clean|装修"),
    )
)
FTC_SUBJECT_BY_TOPIC = {
    "loan": "Reducing your debt (credit cards, mortgage, student loans)",
    "scam": "Imposters",
}
FTC_SUBJECT_OTHER, FTC_SUBJECT_NO_MESSAGE = "Other", "Dropped call or no message"
# 12321's report types for an unwanted call (举报类型); the form on 12321.cn is authoritative.
CN_12321_TYPES = ("商业营销", "诈骗电话", "违法犯罪", "响一声", "其他骚扰")

_COMPANY_EN = re.compile(
    r"\b(?:calling from|calling on behalf of|on behalf of|from)\s+(?:the\s+)?"
    r"(?P<name>[A-Z][\w&'.-]*(?:\s+(?:of\s+|&\s+)?[A-Z][\w&'.-]*){0,4})"
)
_COMPANY_ZH = re.compile(
    r"(?:这里是|这边是|我是|我们是|来自)(?P<name>[\u4e00-\u9fff]{2,14}"
    r"(?:有限公司|公司|银行|保险|集团|中心|平台|金融|证券|地产|置业|中介|教育|学校|机构))"
    r"|(?:这里是|这边是|我是)(?P<brand>[\u4e00-\u9fff]{2,10}?)的(?:客服|工作人员|客户经理|经理|专员"
    r"|顾问|业务员)"
)
_NOT_COMPANY = frozenset("Your You Our We I The This A An Monday Friday".split())


def company_named(verdict: Verdict) -> str:
    """The company the caller names ("calling from Auto Protect", "这里是平安保险"), or ""."""
    for seg in verdict.transcript.segments:
        for pattern in (_COMPANY_ZH, _COMPANY_EN):
            for m in pattern.finditer(seg.text):
                name = (m.group("name") or m.group("brand")).strip(" .")
                if name.split()[0] not in _NOT_COMPANY and "[" not in name and "［" not in name:
                    return name
    return ""


def ftc_subject(verdict: Verdict) -> str:
    """The FTC form's subject for what the caller talked about (transcript first, then topic)."""
    said = verdict.transcript.text
    if not said.strip():
        return FTC_SUBJECT_NO_MESSAGE
    for subject, pattern in FTC_SUBJECT_PATTERNS:
        if pattern.search(said):
            return subject
    return FTC_SUBJECT_BY_TOPIC.get(verdict.topic, FTC_SUBJECT_OTHER)


def report_type_12321(verdict: Verdict) -> str:
    """12321's report type, one of :data:`CN_12321_TYPES`."""
    if verdict.topic == "scam":
        return "诈骗电话"
    if verdict.sales_pitch_heard:
        return "商业营销"
    return "其他骚扰"


def description(
    verdict: Verdict,
    recitals: tuple[RecitalFlag, ...],
    lang: Lang,
    *,
    company: str,
    max_chars: int = 600,
) -> str:
    """Full sentences on what the recording shows, ending with whole lines the caller said.

    The quote is cut only between segments (never mid-word); "…" marks that lines follow.
    """
    zh = lang == "zh"
    parts = [verdict_sentence(verdict, lang)]
    if recitals:
        parts.append(recital_sentence(recitals, lang))
    if company:
        parts.append(
            f"来电方自称来自“{company}”。"
            if zh
            else f"The caller said they were calling from {company}."
        )
    lines = [
        _sentence(s.text.strip(), has_cjk(s.text))
        for s in verdict.transcript.segments
        if s.text.strip()
    ]
    budget = max_chars - sum(len(p) for p in parts)
    quoted: list[str] = []
    for line in lines:
        if quoted and sum(len(q) + 1 for q in quoted) + len(line) > budget:
            quoted.append("…")
            break
        quoted.append(line)
    if quoted:
        said = "".join(
            q if i == 0 or has_cjk(q) and has_cjk(quoted[i - 1]) else " " + q
            for i, q in enumerate(quoted)
        )
        parts.append(
            f"来电方原话（自动转写）：“{said}”"
            if zh
            else f"What the caller said (automatic transcript): \u201c{said}\u201d"
        )
    return ("" if zh else " ").join(parts)


def complaint_fields(
    shown: dict[Lang, Verdict],
    case: CaseInfo,
    recitals: tuple[RecitalFlag, ...],
    *,
    unmasked: bool = False,
) -> dict[str, Any]:
    """complaint.json: the 12321 and FTC form fields, filled where known.

    Parameters
    ----------
    shown : dict
        The verdict as shown in each language ("zh", "en"): masked, with masked-data tokens in
        that language, for the shareable pack; unmasked for the complainant's copy.
    case : CaseInfo
        What the complainant states (numbers, caller ID, time, do-not-call, asked to stop).
    recitals : tuple of RecitalFlag
    unmasked : bool
        The complainant's own copy: their number in full (12321 verifies it by SMS).
    """
    verdict = shown["en"]
    when = case.call_datetime()
    own = case.callee_number if unmasked else mask_number(case.callee_number)
    company = company_named(shown["zh"]) or company_named(verdict)
    duration_s = round(verdict.audio.duration_s, 1)
    robot = verdict.label is Label.ROBOT
    # in the uncertain band the caller question is open: the forms leave it unknown (issue 13)
    decided = verdict.caller_certainty != "uncertain"
    beijing = when.astimezone(BEIJING) if when and when.tzinfo else None
    return {
        "schema": "robocall-complaint",
        "schema_version": COMPLAINT_SCHEMA_VERSION,
        "recording_sha256": verdict.audio.sha256,
        "verdict": {
            "label": verdict.label.value,
            "robot_probability": verdict.robot_probability,
            "threshold": verdict.threshold,
            "caller_certainty": verdict.caller_certainty,
        },
        "note": {
            "zh": "以下字段根据录音分析和投诉人的陈述自动填写，提交前请逐项核对；空字符串或 null "
            "表示未知。号码、来电显示名称和通话时间为投诉人陈述，录音本身无法证明。",
            "en": "Filled from the analysis of the recording and from what the complainant "
            "stated; check every field before submitting. An empty string or null means "
            "unknown. Numbers, caller ID name and call time are the complainant's statement; "
            "the recording cannot show them.",
        },
        "complainant": {
            "own_number": own,
            "own_number_masked": not unmasked,
            "own_number_on_do_not_call_list": case.on_do_not_call_list,
            "asked_caller_to_stop": case.asked_to_stop,
            "stated_by": "complainant",
        },
        "call": {
            "caller_number": case.caller_number,
            "caller_number_e164": case.caller_e164(),
            "caller_id_name": case.caller_id_name,
            "date": when.strftime("%Y-%m-%d") if when else "",
            "time": when.strftime("%H:%M:%S") if when else "",
            "time_zone": _zone(when),
            "stated_by": "complainant",
            "duration_s": duration_s,
            "company_named_in_call": company,
            "topic": verdict.topic,
            "caller_kind": verdict.label.value if decided else "",
        },
        "cn_12321": {
            "report_type": report_type_12321(verdict),
            "reported_number": case.caller_number,
            "complainant_number": own,
            "call_time_beijing": beijing.strftime("%Y-%m-%d %H:%M:%S") if beijing else "",
            "call_duration": format_duration(duration_s, "zh"),
            "caller_kind": label_text(verdict.label, "zh") if decided else "",
            "topic": topic_text(verdict.topic, "zh") if verdict.sales_pitch_heard else "",
            "company_named_in_call": company,
            "personal_data_recited": [RECITAL_TEXT[k][0] for k in _kinds(recitals)],
            "content_summary": description(shown["zh"], recitals, "zh", company=company),
        },
        "us_ftc": {
            "your_phone_number": own,
            "caller_phone_number": case.caller_number,
            "caller_id_name": case.caller_id_name,
            "date_of_call": when.strftime("%m/%d/%Y") if when else "",
            "time_of_call": when.strftime("%I:%M %p") if when else "",
            "time_zone": _zone(when),
            "recorded_message_or_robocall": ("yes" if robot else "no") if decided else "",
            "subject": ftc_subject(verdict),
            "company_name": company,
            "on_do_not_call_registry": _yes_no(case.on_do_not_call_list),
            "asked_to_stop": _yes_no(case.asked_to_stop),
            "personal_data_recited": [RECITAL_TEXT[k][1] for k in _kinds(recitals)],
            "description": description(verdict, recitals, "en", company=company),
        },
    }


def _sentence(line: str, zh: bool) -> str:
    if re.search(r"[。！？.!?…」”\"')]$", line):
        return line
    return line + ("。" if zh else ".")


def _zone(when: Any) -> str:
    if when is None or when.tzinfo is None:
        return ""
    offset = when.strftime("%z")
    return f"UTC{offset[:3]}:{offset[3:]}"


def _yes_no(value: bool | None) -> str:
    return "" if value is None else "yes" if value else "no"


def _kinds(flags: tuple[RecitalFlag, ...]) -> list[str]:
    return [k for k in RECITAL_KINDS if any(f.kind == k for f in flags)]
