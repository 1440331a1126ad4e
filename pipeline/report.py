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
import functools
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
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
    headline,
)
from pipeline.privacy import RECITAL_KINDS, RecitalFlag
from pipeline.types import Evidence, Label, Verdict

log = logging.getLogger(__name__)

COMPLAINT_SCHEMA_VERSION = "2"
ERROR_RATES_PATH = Path(__file__).resolve().parents[1] / "models" / "weights" / "error_rates.json"
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
    speaker: str  # "caller" | "callee"
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
    p, t = format_percent(verdict.robot_probability), format_percent(verdict.threshold)
    if lang == "zh":
        return f"本次来电判断为：{what}。机器人概率 {p}，判定阈值 {t}。"
    return f"This call was judged: {what}. Robot probability {p} (decision threshold {t})."


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
        if _untrained(verdict):
            lines.append("注意：目前的综合判断使用人工设定的权重，尚未经过大规模训练和校准。")
    else:
        pitch = f"topic: {topic}" if verdict.sales_pitch_heard else "no sales pitch heard"
        lines.append(f"Probability of a sales pitch {sales}; {pitch}. Recording: {duration}.")
        if top:
            lines.append(
                "What weighed most: " + "; ".join(f"{r.title} ({r.direction})" for r in top) + "."
            )
        if _untrained(verdict):
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
    """Caller and (stereo) callee segments interleaved in time."""
    rows = [
        TranscriptRow("caller", s.start_s, s.end_s, s.text) for s in verdict.transcript.segments
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


@dataclass(frozen=True, slots=True)
class ErrorRates:
    """The published error rates a report quotes in its limits (fractions, 0..1)."""

    threshold: float  # the robot-probability threshold they were measured at
    composed_people_called_robots: float  # held-out composed calls: people judged robots
    composed_robots_missed: float  # held-out composed calls: robots judged people
    e2e_people_called_robots: float  # test call mixtures through the whole detector
    e2e_robots_missed: float
    unseen_engine_eer: float  # leave-one-engine-out mean EER, synthetic-voice head


@functools.cache
def load_error_rates(path: Path = ERROR_RATES_PATH) -> ErrorRates | None:
    """The measured error rates from ``models/weights/error_rates.json``; None if unreadable.

    The file (schema ``robocall-error-rates``, version 1) is rewritten by the evaluation with
    the same keys; every rate is a fraction in [0, 1]:

    - ``threshold``: the robot-probability threshold the rates below were measured at;
    - ``composed_calls.people_called_robots`` / ``composed_calls.robots_missed``: false positive
      and miss rates of the fitted fusion on held-out composed calls
      (docs/evaluation_fusion.md, Headline), with ``humans``/``robots`` counts and ``source``;
    - ``end_to_end.people_called_robots`` / ``end_to_end.robots_missed``: the same on the
      test-split call mixtures through the whole detector (ASR included), with counts/source;
    - ``unseen_engines.eer``: mean equal error rate of the synthetic-voice head over
      leave-one-engine-out folds (docs/evaluation.md), with ``source``;
    - ``generated``: how and when the numbers were produced.
    """
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        rates = ErrorRates(
            threshold=float(doc["threshold"]),
            composed_people_called_robots=float(doc["composed_calls"]["people_called_robots"]),
            composed_robots_missed=float(doc["composed_calls"]["robots_missed"]),
            e2e_people_called_robots=float(doc["end_to_end"]["people_called_robots"]),
            e2e_robots_missed=float(doc["end_to_end"]["robots_missed"]),
            unseen_engine_eer=float(doc["unseen_engines"]["eer"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("no error rates for the report's limits (%s): %s", path, exc)
        return None
    if not all(0.0 <= v <= 1.0 for v in dataclasses.astuple(rates)):
        log.warning("error rates in %s are not fractions in [0, 1]; not quoted", path)
        return None
    return rates


def limits_paragraph(verdict: Verdict, lang: Lang, *, rates: ErrorRates | None = None) -> str:
    """One honest paragraph on what this analysis cannot establish, with measured error rates.

    ``rates`` defaults to :func:`load_error_rates`; without any, the paragraph says so.
    """
    rates = rates or load_error_rates()
    gap = "" if lang == "zh" else " "
    return _limits_text(verdict, lang) + gap + _rates_text(verdict, lang, rates)


def _rates_text(verdict: Verdict, lang: Lang, rates: ErrorRates | None) -> str:
    zh = lang == "zh"
    if rates is None:
        return (
            "本机未找到已测得错误率的文件 models/weights/error_rates.json。"
            if zh
            else "The measured error rates (models/weights/error_rates.json) are not available "
            "on this machine."
        )
    pct = {k: _rate(v) for k, v in dataclasses.asdict(rates).items()}
    at = format_threshold(rates.threshold)
    if zh:
        text_ = (
            f"阈值为 {at} 时已测得的错误率：在留出的合成通话上，"
            f"{pct['composed_people_called_robots']}的真人被判为机器人，{pct['composed_robots_missed']}的机器人被漏判；端到端测试通话"
            f"上分别为 {pct['e2e_people_called_robots']} 和 {pct['e2e_robots_missed']}；"
            f"对训练中未见过的语音合成引擎，声音模型的平均等错误率为 {pct['unseen_engine_eer']}。"
        )
    else:
        text_ = (
            f"Measured error rates at threshold {at}: on held-out composed calls "
            f"{pct['composed_people_called_robots']} of people were called robots and "
            f"{pct['composed_robots_missed']} of robots were missed; end to end on test "
            f"calls, {pct['e2e_people_called_robots']} and {pct['e2e_robots_missed']}; for "
            f"speech engines unseen in training the voice model's mean equal error rate is "
            f"{pct['unseen_engine_eer']}."
        )
    if abs(verdict.threshold - rates.threshold) > 1e-9:
        used = format_threshold(verdict.threshold)
        text_ += (
            f"本次分析使用的阈值为 {used}，与测量时不同：阈值越高，被误判为机器人的真人越少，"
            "被漏判的机器人越多。"
            if zh
            else f" This analysis used threshold {used}, not {at}: a higher threshold calls "
            "fewer people robots and misses more robots."
        )
    return text_


def fusion_text(verdict: Verdict, lang: Lang) -> str:
    """How the cues were combined, in the report's language (the provenance line is English)."""
    if lang == "en":
        return verdict.provenance.fusion_method
    if _untrained(verdict):
        return (
            "各项依据权重的逻辑求和：训练过的模型加入其校准后的对数几率，其他依据使用人工设定的"
            "权重；总和未经拟合，因此概率未经校准。"
        )
    return (
        "拟合的逻辑回归融合：偏置加上每项依据、每个方向一个非负缩放系数，在开发集的合成通话上"
        "按类别平衡拟合；仅双声道录音才有的依据保持规则权重。"
    )


def format_threshold(threshold: float) -> str:
    return f"{threshold:.2f}".rstrip("0").rstrip(".") if threshold else "0"


def _rate(value: float) -> str:
    return f"{value * 100:.1f} %"


def _limits_text(verdict: Verdict, lang: Lang) -> str:
    if lang == "zh":
        weights = (
            "机器人概率由人工设定的权重综合得出，尚未在大量真实通话上训练和校准，"
            "因此 80% 并不表示同类通话中有八成是机器人。"
            if _untrained(verdict)
            else "机器人概率来自在有限数据上训练和校准的模型，按机器人与真人各占一半校准，"
            "对其他运营商、地区或录音设备未必同样准确。"
        )
        return (
            "本报告由软件自动生成，是证据线索而非定论。"
            + weights
            + "现代语音合成可以很像真人；照稿念的真人、通话质量差、AMR 等强压缩或背景噪声也可能让"
            "真人听起来像机器。语音识别（Whisper）可能听错字词、姓名和数字，短促或嘈杂的通话尤甚。"
            "分析只针对提交的录音本身：无法判断是谁拨打的电话、来电号码是否被伪造，也无法判断录音在"
            "分析之前是否被剪辑；签名的清单只能证明本证据包生成之后没有被改动。个人信息遮盖基于规则，"
            "可能漏遮或多遮。依据本结论行事之前，请由人亲自听一遍录音。"
        )
    weights = (
        "The robot probability combines the cues with hand-set weights that have not been "
        "trained or calibrated on a large set of real calls, so 80% does not mean that 8 in "
        "10 such calls are robots. "
        if _untrained(verdict)
        else "The robot probability comes from models and a fusion trained and calibrated on "
        "limited data (calibrated as if robots and people were equally likely); it may be "
        "less accurate for other carriers, regions or recording devices. "
    )
    return (
        "This report is made by software; it is evidence to weigh, not proof. "
        + weights
        + "Modern speech synthesis can sound human, and a live agent reading a script, a poor "
        "line, heavy compression (such as AMR) or background noise can make a person sound "
        "mechanical. The speech recogniser (Whisper) can mishear words, names and numbers, "
        "especially in short or noisy calls. The analysis sees only the recording it was "
        "given: it cannot tell who placed the call or whether the caller ID was spoofed, nor "
        "whether the recording was edited before it was analysed; the signed manifest only "
        "shows that nothing changed after this pack was made. Masking of personal data is "
        "rule-based and can miss or over-mask words. A person should listen to the recording "
        "before relying on this verdict."
    )


def recital_dicts(flags: tuple[RecitalFlag, ...]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(f) | {"span_s": list(f.span_s)} for f in flags]


def _untrained(verdict: Verdict) -> bool:
    """The verdict's cues were summed as hand-set, not by a fitted fusion (train_fusion)."""
    return not verdict.provenance.fusion_method.lower().startswith("fitted")
