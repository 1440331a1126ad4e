"""Plain-language, bilingual (Chinese / English) rendering of a :class:`Verdict` for people.

Everything here *renders* a verdict that the detector already produced (summary sentences, the
reasons with their figures, transcript rows, complaint-form fields, the limits of the method); it
never recomputes a score. The evidence PDF, the pack's JSON files and the web page all use these
strings, so a verdict reads the same everywhere. Pure Python, no ML imports.

Sentences about the evidence, reason titles, the headline and probabilities come from the one
message catalogue, :mod:`pipeline.messages` (issues 13-15); this module adds the report's fixed
strings and layout.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import phonenumbers

from pipeline.messages import (
    LANGS,
    PERSONAL_DATA,
    TITLES,
    Lang,
    evidence_sentence,
    evidence_title,
    format_clock,
    format_probability,
    format_robot_probability,
    format_threshold_percent,
    headline,
)
from pipeline.privacy import RECITAL_KINDS, RecitalFlag
from pipeline.types import Evidence, Label, Speaker, Verdict

log = logging.getLogger(__name__)

COMPLAINT_SCHEMA_VERSION = "3"  # 3: verdict.caller_certainty; an uncertain caller left unknown
BEIJING = timezone(timedelta(hours=8), "UTC+08:00")

# key -> (Chinese, English): every fixed string a report shows
TEXT: dict[str, tuple[str, str]] = {
    "title": ("通话录音分析报告", "Call recording analysis report"),
    "subtitle": (
        "骚扰电话投诉证据材料（12321 / FTC / FCC）",
        "Evidence for a complaint about an unwanted call (12321 / FTC / FCC)",
    ),
    "case_summary": ("案件摘要", "Case summary"),
    "conclusion": ("结论", "Conclusion"),
    "reported_number": ("被举报号码（来电）", "Reported number (caller)"),
    "callee_number": ("被叫号码（投诉人本人）", "Called number (the complainant's)"),
    "call_time": ("通话时间", "Call time"),
    "stated": (
        "投诉人陈述，录音本身无法证明",
        "stated by the complainant; the recording cannot show it",
    ),
    "caller_id_name": ("来电显示名称", "caller ID name"),
    "threshold_set": (
        "本次分析的判定阈值设为 {t}，默认为 {d}；机器人概率达到该值即判为机器人。",
        "The decision threshold was set to {t} for this analysis (default {d}): a robot "
        "probability at or above it is judged a robot.",
    ),
    "robot_if": ("≥ {t} 判为机器人", "≥ {t} → robot"),
    "uncertain_if": ("{l} 至 {t} 之间无法判断", "{l} to {t} → cannot tell"),
    "uncertain_notice": (
        "仅凭这份判断不足以投诉来电是机器人：请先听录音，投诉时写明您听到的内容。",
        "This verdict alone is not sufficient for a complaint that a robot called: listen to "
        "the recording and state what you heard.",
    ),
    "duration": ("通话时长", "Duration"),
    "verdict": ("判断结果", "Verdict"),
    "robot_probability": ("机器人概率", "Robot probability"),
    "sales_probability": ("是推销的概率", "Probability of a sales pitch"),
    "topic": ("推销内容", "Topic"),
    "language": ("通话语言", "Language"),
    "recording": ("录音文件", "Recording"),
    "recording_sha256": ("录音 SHA-256 校验值", "Recording SHA-256"),
    "analysed_at": ("分析时间（UTC）", "Analysed at (UTC)"),
    "not_given": ("未提供", "not given"),
    "reasons": ("判断依据", "Reasons for the verdict"),
    "reasons_intro": (
        "下表列出影响判断的各项测量。“贡献”为正表示更像机器人，为负表示更像真人；"
        "“位置”指录音中的时间，以分:秒表示。编号 R1、R2…… 与下一页图中的标记对应。",
        "Each row is one measurement. A positive contribution points towards a robot, a negative "
        "one towards a live person; 'Where' is the time in the recording (min:s). R1, R2... match "
        "the marks in the figure on the next page.",
    ),
    "col_reason": ("依据", "Reason"),
    "col_value": ("测量值", "Value"),
    "col_weight": ("贡献", "Contribution"),
    "col_where": ("位置", "Where"),
    "col_time": ("时间", "Time"),
    "col_speaker": ("说话人", "Speaker"),
    "col_text": ("内容", "Text"),
    "towards_robot": ("更像机器人", "towards robot"),
    "towards_human": ("更像真人", "towards human"),
    "neutral": ("不影响判断", "no effect"),
    "figures": ("录音图示", "The recording, drawn"),
    "figure_caption": (
        "上：波形，即声音的强弱；蓝色为来电方，双声道录音时灰色为接听方；底纹标出决定结论的片段，"
        "红色指向机器人，绿色指向真人。"
        "中：来电方的频谱图，颜色越亮声音越强，青色线为音高（声调）轨迹；机器合成的声音音高往往"
        "更平直、更规律。下：各项依据 R1、R2…… 在录音中的位置，编号见上一页；红色更像机器人，"
        "绿色更像真人，灰色不影响判断。",
        "Top: waveform (loudness over time), the caller in blue, the callee in grey (stereo "
        "recordings); the spans that decided the verdict are shaded (red: towards a robot, green: "
        "towards a live person). Middle: the caller's spectrogram (brighter "
        "= louder) with the pitch track in cyan; synthetic voices often have a flatter, more "
        "regular pitch. Bottom: where each reason (R1, R2..., see the previous page) was seen: "
        "red points towards a robot, green towards a live person, grey has no effect.",
    ),
    "transcript": ("通话文字记录（含时间）", "Transcript with timestamps"),
    "transcript_note": (
        "由语音识别自动生成，可能有错字；个人信息已替换为［］中的类别。",
        "Produced automatically by speech recognition and may contain errors; personal data is "
        "replaced by its kind in brackets.",
    ),
    "transcript_note_unmasked": (
        "由语音识别自动生成，可能有错字。此版本未遮盖个人信息，请勿公开传播。",
        "Produced automatically by speech recognition and may contain errors. This copy is NOT "
        "masked: do not share it publicly.",
    ),
    "no_speech": ("（未识别到语音）", "(no speech recognised)"),
    "caller": ("来电方", "Caller"),
    "callee": ("接听方", "Callee"),
    "privacy": ("个人信息", "Personal data"),
    "recital_excerpts": ("来电方原话（已遮盖）", "What the caller said (masked)"),
    "recital_none": (
        "未发现来电方念出接听方个人信息。",
        "The caller was not heard reciting the callee's personal data.",
    ),
    "recital_hint": (
        "请核对这些是否确为您本人的信息；如是，说明来电方在通话前已掌握这些信息，可在投诉中说明。",
        "Check that this is your own data; if it is, the caller had it before the call, which "
        "you can mention in your complaint.",
    ),
    "method": ("分析方法", "How the analysis was made"),
    "software": ("软件版本", "Software version"),
    "models": ("模型（名称与 SHA-256）", "Models (id and SHA-256)"),
    "settings": ("设置（配置哈希）", "Settings (configuration hash)"),
    "fusion": ("综合判断方法", "How cues are combined"),
    "libraries": ("依赖库版本", "Library versions"),
    "pack_created": ("证据包生成时间（UTC）", "Pack created at (UTC)"),
    "signing_key": ("签名公钥指纹（SHA-256）", "Signing key fingerprint (SHA-256)"),
    "limits": ("方法的局限", "Limits of the method"),
    "verify": ("如何核验本证据包", "How to check this pack"),
    "verify_text": (
        "证据包中的 manifest.json 列出每个文件的 SHA-256，并用 Ed25519 签名；"
        "签名文件为 manifest.sig，公钥为 public_key.pem。签名只证明：自持有该密钥的人签名以来，"
        "包内文件没有被改动；密钥在投诉人"
        "自己的电脑上生成并随包附带，因此要确认签名者，请向投诉人核对上文的密钥指纹。运行 robocall "
        "verify 证据包.zip --fingerprint 指纹 即可核验：任何一个字节被改动都会报告是哪个文件，"
        "并核对报告、投诉字段与录音的哈希是否一致。manifest.tsq 是 RFC 3161 时间戳请求；运行 "
        "robocall stamp 证据包.zip --tsa 网址 可向时间戳机构取得时间戳文件 manifest.tsr，证明本包在"
        "该时间已存在。",
        "manifest.json lists every file of the pack with its SHA-256 and is signed with Ed25519 "
        "(manifest.sig; public key in public_key.pem). The signature proves only that no file "
        "changed since whoever holds that key signed it; the key was made on the complainant's "
        "computer and travels in the pack, so confirm the key fingerprint above with the "
        "complainant. Run 'robocall verify PACK.zip --fingerprint FINGERPRINT' to check: a single "
        "changed byte is reported with the file named, and the report, the complaint fields and "
        "the recording's hash must agree. manifest.tsq is an RFC 3161 timestamp request; "
        "'robocall stamp PACK.zip --tsa URL' gets a timestamp authority's reply (manifest.tsr) "
        "proving the pack existed at that time.",
    ),
    "page": ("第 {n} 页", "page {n}"),
}

LABEL_TEXT: dict[Label, tuple[str, str]] = {
    Label.ROBOT: ("机器人（自动外呼）", "robot (automated call)"),
    Label.HUMAN: ("真人", "live person"),
}
TOPIC_TEXT: dict[str, tuple[str, str]] = {
    "real_estate": ("房地产", "real estate"),
    "insurance": ("保险", "insurance"),
    "loan": ("贷款 / 信用", "loans / credit"),
    "car": ("汽车", "cars"),
    "education": ("教育培训", "education / training"),
    "other": ("其他推销", "other sales"),
    "scam": ("疑似诈骗", "suspected scam"),
    "none": ("不像推销", "not a sales pitch"),
}
# (Chinese, English), from the catalogue: pipeline.messages holds the one copy
EVIDENCE_TITLES: dict[str, tuple[str, str]] = {k: (zh, en) for k, (en, zh) in TITLES.items()}
RECITAL_TEXT: dict[str, tuple[str, str]] = {k: (zh, en) for k, (en, zh) in PERSONAL_DATA.items()}


@dataclass(frozen=True, slots=True)
class CaseInfo:
    """What the complainant states about the call; everything optional, validated when given.

    Numbers, caller ID and call time are the complainant's statement: the report marks them so.
    """

    caller_number: str = ""  # the number that called (the one reported), as given
    callee_number: str = ""  # the complainant's own number: masked in the shareable pack
    call_time: str = ""  # ISO 8601, with its UTC offset ("2024-05-01T14:30+08:00"); "" = unknown
    lang: str = ""  # "zh" | "en": which language leads the report; "" = the transcript's
    callee_names: tuple[str, ...] = ()  # the complainant's name(s), masked wherever said
    caller_id_name: str = ""  # the name the phone showed for the caller, if any
    on_do_not_call_list: bool | None = None  # complainant's number on a do-not-call registry
    asked_to_stop: bool | None = None  # the complainant asked the caller to stop calling
    region: str = ""  # ISO 3166 region for numbers given without +country code; "" = CN, US

    def __post_init__(self) -> None:
        if self.lang not in ("", "zh", "en"):
            raise ValueError(f"lang must be 'zh' or 'en', got {self.lang!r}")
        for field, number in (
            ("caller_number", self.caller_number),
            ("callee_number", self.callee_number),
        ):
            if number and parse_phone(number, self.region) is None:
                raise ValueError(
                    f"{field} {number!r} is not a phone number (give it with its country code, "
                    "e.g. +86 138 1234 5678 or +1 415 555 0199)"
                )
        if self.call_time:
            try:
                when = datetime.fromisoformat(self.call_time)
            except ValueError as exc:
                raise ValueError(
                    f"call_time must be ISO 8601 (e.g. 2024-05-01T14:30+08:00), "
                    f"got {self.call_time!r}"
                ) from exc
            if _earliest_instant(when) > datetime.now(UTC) + timedelta(minutes=5):
                raise ValueError(f"call_time {self.call_time} is in the future")

    def call_datetime(self) -> datetime | None:
        return datetime.fromisoformat(self.call_time) if self.call_time else None

    def caller_e164(self) -> str:
        """The caller's number in E.164 (``+864001234567``), or "" when not given."""
        parsed = parse_phone(self.caller_number, self.region) if self.caller_number else None
        return (
            phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
            if (parsed is not None and not _is_short(parsed))
            else self.caller_number
        )

    def check_call_before(self, analysed_at_utc: str) -> None:
        """Raise ValueError when the stated call time is after the recording was analysed."""
        when = self.call_datetime()
        if when is None or not analysed_at_utc:
            return
        analysed = datetime.fromisoformat(analysed_at_utc.replace("Z", "+00:00"))
        if _earliest_instant(when) > analysed:
            raise ValueError(
                f"call_time {self.call_time} is after the recording was analysed "
                f"({analysed_at_utc}): a recording cannot precede its call"
            )


def parse_phone(number: str, region: str = "") -> phonenumbers.PhoneNumber | None:
    """The number parsed by libphonenumber, or None when it is no possible or short number.

    Without a ``+`` country code it is read in ``region``, else as Chinese, then as American.
    """
    for where in (region.upper(),) if region else ("CN", "US"):
        try:
            parsed = phonenumbers.parse(number, where)
        except phonenumbers.NumberParseException:
            return None
        if phonenumbers.is_possible_number(parsed) or _is_short(parsed):
            return parsed
    return None


def _is_short(parsed: phonenumbers.PhoneNumber) -> bool:
    """A service short code (95588, 10086): robocalls come from those too."""
    return bool(phonenumbers.shortnumberinfo.is_valid_short_number(parsed))


def _earliest_instant(when: datetime) -> datetime:
    """``when`` as UTC; a time without offset could be in any zone, so its earliest reading."""
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC) - timedelta(hours=14)


@dataclass(frozen=True, slots=True)
class Reason:
    """One evidence item, ready to print."""

    rank: int  # 1-based; "R1" in tables and figures
    name: str  # Evidence.name
    title: str
    value: str  # the measurement, formatted
    weight: float  # signed contribution to the robot logit
    direction: str  # "towards robot" / "towards human" / "no effect", in the report language
    where: str  # "0:03.2–0:07.9" or ""
    detail: str  # the evidence's plain sentence in the report language (pipeline.messages)
    span_s: tuple[float, float] | None


@dataclass(frozen=True, slots=True)
class TranscriptRow:
    speaker: Speaker
    start_s: float
    end_s: float
    text: str


def text(key: str, lang: Lang) -> str:
    return TEXT[key][LANGS.index(lang)]


def both(key: str, lang: Lang) -> str:
    """``key`` in both languages, the report's leading language first: ``"结论 / Conclusion"``."""
    first, second = (text(key, lang), text(key, other_lang(lang)))
    return f"{first} / {second}"


def other_lang(lang: Lang) -> Lang:
    return "en" if lang == "zh" else "zh"


def lead_lang(verdict: Verdict, case: CaseInfo) -> Lang:
    """The language that leads the report: as asked, else the transcript's (Chinese first)."""
    if case.lang in ("zh", "en"):
        return "zh" if case.lang == "zh" else "en"
    return "en" if verdict.transcript.language == "en" else "zh"


def label_text(label: Label, lang: Lang) -> str:
    return LABEL_TEXT[label][LANGS.index(lang)]


def topic_text(topic: str, lang: Lang) -> str:
    return TOPIC_TEXT.get(topic, (topic, topic))[LANGS.index(lang)]


def format_duration(seconds: float, lang: Lang) -> str:
    minutes, rest = divmod(round(seconds), 60)
    if lang == "zh":
        return f"{minutes} 分 {rest:02d} 秒" if minutes else f"{rest} 秒"
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def format_value(value: float) -> str:
    return f"{value:.3g}"


def format_percent(probability: float) -> str:
    """The one probability formatter (``pipeline.messages.format_probability``): ``">99 %"``."""
    return format_probability(probability)


def format_call_time(case: CaseInfo, lang: Lang) -> str:
    when = case.call_datetime()
    if when is None:
        return text("not_given", lang)
    zone = f" ({when.tzname()})" if when.tzinfo else ""
    return when.strftime("%Y-%m-%d %H:%M:%S") + zone


def verdict_sentence(verdict: Verdict, lang: Lang) -> str:
    what = headline(verdict, lang)
    p, t = format_robot_probability(verdict), format_threshold_percent(verdict.threshold)
    band = band_text(verdict, lang)
    if lang == "zh":
        band_zh = "，" + band if band else ""
        return f"本次来电判断为：{what}。机器人概率 {p}，判定阈值 {t}{band_zh}。"
    return (
        f"This call was judged: {what}. Robot probability {p} (decision threshold {t}"
        f"{'; ' + band if band else ''})."
    )


def band_text(verdict: Verdict, lang: Lang) -> str:
    """``"20 % to 81 % → cannot tell"``: the verdict's uncertain band; "" when it has none."""
    lower = verdict.person_threshold
    if lower is None or lower >= verdict.threshold:
        return ""
    return text("uncertain_if", lang).format(
        l=format_threshold_percent(lower), t=format_threshold_percent(verdict.threshold)
    )


def uncertain_notice(verdict: Verdict, lang: Lang) -> str:
    """Why an uncertain verdict is not enough alone for a complaint; "" for a decided one."""
    if verdict.caller_certainty != "uncertain" or verdict.person_threshold is None:
        return ""
    return text("uncertain_notice", lang)


def summary_lines(verdict: Verdict, lang: Lang) -> tuple[str, ...]:
    """Three to five plain sentences: verdict, topic, what weighed most, duration."""
    lines = [verdict_sentence(verdict, lang)]
    sales, topic = format_percent(verdict.sales_probability), topic_text(verdict.topic, lang)
    duration = format_duration(verdict.audio.duration_s, lang)
    top = [r for r in reasons(verdict, lang, limit=3) if r.weight != 0.0]
    if lang == "zh":
        pitch = f"内容：{topic}" if verdict.sales_pitch_heard else "未听到推销"
        lines.append(f"是推销的概率 {sales}，{pitch}。录音时长 {duration}。")
        if top:
            lines.append(
                "影响最大的依据：" + "；".join(f"{r.title}（{r.direction}）" for r in top) + "。"
            )
        if is_untrained(verdict):
            lines.append("注意：目前的综合判断使用人工设定的权重，尚未经过大规模训练和校准。")
    else:
        pitch = f"topic: {topic}" if verdict.sales_pitch_heard else "no sales pitch heard"
        lines.append(f"Probability of a sales pitch {sales}; {pitch}. Recording: {duration}.")
        if top:
            lines.append(
                "What weighed most: " + "; ".join(f"{r.title} ({r.direction})" for r in top) + "."
            )
        if is_untrained(verdict):
            lines.append(
                "Note: the cues are combined with hand-set weights that have not yet "
                "been trained or calibrated on a large set of calls."
            )
    return tuple(lines)


def reasons(verdict: Verdict, lang: Lang, *, limit: int = 12) -> tuple[Reason, ...]:
    """The evidence in the verdict's order (strongest first), at most ``limit``, as rows."""
    items: list[Evidence] = [e for e in verdict.evidence if e.weight != 0.0]
    items += [e for e in verdict.evidence if e.weight == 0.0]
    out = []
    for rank, e in enumerate(items[:limit], start=1):
        key = "towards_robot" if e.weight > 0 else "towards_human" if e.weight < 0 else "neutral"
        where = f"{format_clock(e.span_s[0])}–{format_clock(e.span_s[1])}" if e.span_s else ""
        out.append(
            Reason(
                rank,
                e.name,
                evidence_title(e.name, lang),
                format_value(e.value),
                e.weight,
                text(key, lang),
                where,
                evidence_sentence(e, lang),
                e.span_s,
            )
        )
    return tuple(out)


def transcript_rows(verdict: Verdict) -> tuple[TranscriptRow, ...]:
    """Caller and callee segments interleaved in time: the callee's from its own channel
    (stereo) or, on a mono recording split into two voices, the segments said in the
    callee's voice (:attr:`~pipeline.types.Verdict.transcript_speakers`)."""
    rows = [
        TranscriptRow(who, s.start_s, s.end_s, s.text)
        for s, who in zip(verdict.transcript.segments, verdict.transcript_speakers, strict=True)
    ]
    if verdict.other_party_transcript is not None:
        rows += [
            TranscriptRow("callee", s.start_s, s.end_s, s.text)
            for s in verdict.other_party_transcript.segments
        ]
    return tuple(sorted(rows, key=lambda r: (r.start_s, r.speaker)))


def recital_sentence(flags: tuple[RecitalFlag, ...], lang: Lang) -> str:
    """What the recording shows about the caller saying the callee's data: facts only."""
    if not flags:
        return text("recital_none", lang)
    kinds = [k for k in RECITAL_KINDS if any(f.kind == k for f in flags)]
    i = LANGS.index(lang)
    what = ("、" if lang == "zh" else ", ").join(RECITAL_TEXT[k][i] for k in kinds)
    when = ", ".join(dict.fromkeys(format_clock(f.span_s[0]) for f in flags[:12]))
    if lang == "zh":
        return f"录音中来电方在 {when} 处说出了疑似接听方的{what}。"
    return f"In the recording the caller says what appears to be the callee's {what} (at {when})."


def recital_hint(lang: Lang) -> str:
    """Advice for the complainant (the report, not the complaint): check, then mention it."""
    return text("recital_hint", lang)


def recital_dicts(flags: tuple[RecitalFlag, ...]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(f) | {"span_s": list(f.span_s)} for f in flags]


def is_untrained(verdict: Verdict) -> bool:
    """The verdict's cues were summed as hand-set, not by a fitted fusion (train_fusion)."""
    return not verdict.provenance.fusion_method.lower().startswith("fitted")
