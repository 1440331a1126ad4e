"""Masking of the callee's personal data, and detection of a caller reciting it (issue 6).

The shareable evidence report must not spread the callee's phone number, Chinese resident ID
number, bank card number, address or name further than the recording already does. This module
finds them in transcript text, Mandarin and English, and replaces each with a bracketed token
(``［电话号码］`` / ``[phone number]``). It is rule-based and errs towards masking: a long digit
run that is no valid ID or card is still masked as a ``number``.

It also flags a caller who *recites* the callee's specific data (addresses them by name, reads
out their number, ID, card or address, or an amount, date or reference tied to them; a generic
line such as "your warranty is about to expire" is no recital, issue 14). Flags carry masked
excerpts only.

At about 620 lines this stays one module: most of it is the pattern tables for names, numbers,
IDs, cards and addresses in two languages, and masking and the recital flag must read the same
tables (a datum the flag names is a datum the mask hides).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from pipeline.messages import make_evidence
from pipeline.types import Evidence, Segment, Transcript, Verdict, Word

# kind -> (Chinese token, English token); the token language follows the text, not the report
MASK_TOKENS: dict[str, tuple[str, str]] = {
    "phone": ("［电话号码］", "[phone number]"),
    "cn_id": ("［身份证号］", "[ID number]"),
    "bank_card": ("［银行卡号］", "[bank card number]"),
    "number": ("［号码］", "[number]"),
    "address": ("［地址］", "[address]"),
    "name": ("［姓名］", "[name]"),
    "email": ("［邮箱］", "[email]"),
}
RECITAL_KINDS = ("name", "phone", "cn_id", "bank_card", "address", "history")

# --- digits -------------------------------------------------------------------------------------
# Spoken digits come out of Whisper as Arabic or Chinese numerals ("幺三八..."); both map 1:1 onto
# ASCII digits so that offsets in the "digit view" are offsets in the original text.
_CN_DIGITS = str.maketrans(
    "零〇一二三四五六七八九幺两０１２３４５６７８９ｘＸ", "00123456789120123456789xX"
)
_DIGIT_RUN = re.compile(r"(?<![0-9A-Za-z+])\+?\d(?:[ \-–]?\d){6,}(?:[xX](?![A-Za-z]))?")
_UNIT_AFTER = re.compile(r"\s*(?:k?Hz|ms|dB|%|s\b|秒|元|块|万|亿|年|岁|米|公里|平|次)")
_US_PARENS = re.compile(r"\(\d{3}\)\s?\d{3}[\s.\-]?\d{4}(?!\d)")
_EN_DIGIT_WORDS = {
    "zero": "0",
    "oh": "0",
    "o": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}
_EN_WORD = r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine|double|triple)"
_EN_DIGIT_RUN = re.compile(rf"(?i)\b{_EN_WORD}(?:[\s,\-]+{_EN_WORD}){{6,}}\b")
_LAST_DIGITS = re.compile(
    r"(?i)(?:尾号(?:是|为)?|后[四4]位(?:是|为)?|ending(?: in)?|last (?:four|4) "
    r"(?:digits )?(?:is |are |of )?)\s*(\d{3,4})(?!\d)"
)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def is_cn_id(number: str) -> bool:
    """True for an 18-character PRC resident ID with a valid birth date and ISO 7064 check."""
    if not re.fullmatch(r"\d{17}[\dXx]", number):
        return False
    year, month, day = int(number[6:10]), int(number[10:12]), int(number[12:14])
    if not (1900 <= year <= 2100 and 1 <= month <= 12 and 1 <= day <= 31):
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    return "10X98765432"[total % 11] == number[17].upper()


def is_luhn(number: str) -> bool:
    """True when the digit string passes the Luhn check used by bank cards."""
    if not number.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def classify_number(digits: str) -> str:
    """Kind of a spoken digit string: ``phone``, ``cn_id``, ``bank_card`` or ``number``."""
    core = digits.lstrip("+")
    core = core[2:] if core.startswith("00") else core
    if re.fullmatch(r"(?:86)?1[3-9]\d{9}", core):
        return "phone"
    if is_cn_id(core):
        return "cn_id"
    if 15 <= len(core) <= 19 and is_luhn(core):
        return "bank_card"
    if len(core) <= 12 or (digits.startswith(("+", "00")) and len(core) <= 15):
        return "phone"
    return "number"


# --- names --------------------------------------------------------------------------------------
_SURNAMES_1 = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕"
    "丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃"
    "武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒"
    "阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳穆农司卓古"
    "吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂佟臧闵苟邬边卞姬师仇栾隋刁沙荣巫寇桑郎甄"
    "丛仲虞敖巩佘池查麻苑迟邝"
)
_SURNAME = rf"(?:欧阳|司马|诸葛|上官|东方|皇甫|令狐|慕容|尉迟|公孙|[{_SURNAMES_1}])"
# characters that end a name: function words and punctuation never belong to a given name
_NOT_NAME = (
    "的是在我您你他她它们了和与及就也都要把被给从到向为于这那"
    "请问好吗呢吧啊哦嗯呀个有没不会能可以先女总经老"
)
_GIVEN = rf"(?:(?![{_NOT_NAME}])[\u4e00-\u9fff])"
_HONORIFIC = r"(?:先生|女士|小姐|太太|阿姨|大哥|大姐|经理|老板|总(?![共额计是的数量体之结算价部]))"
_ZH_NAME_HONORIFIC = re.compile(rf"(?P<name>{_SURNAME}{_GIVEN}{{0,2}}?){_HONORIFIC}")
_ZH_NAME_ASKED = re.compile(
    rf"(?:请问(?:您|你)?是|(?:您|你)是不是|(?:您|你)好[，,]?|喂[，,]?)(?P<name>{_SURNAME}{_GIVEN}{{1,2}})"
    r"(?=吗|嘛|本人|啊|呀|[，,。？?！!\s]|$)"
)
_EN_NAME = r"(?P<name>[A-Z][a-z'’\-]+(?:\s+[A-Z][a-z'’\-]+)?)"
_EN_NOT_NAMES = frozenset(
    "This That It I I'm We There Sir Madam Ma'am My Our Thank Thanks How Is Are Am Can Could Good "
    "Yes No Ok Okay Please Welcome Everyone Again Friend Folks You Your Mr Mrs Ms Dr Miss Mister "
    "Congratulations Hello Hi Hey Dear Press Call Medicare Social Security".split()
)
_EN_NAME_PATTERNS = (
    re.compile(rf"\b(?:Mr|Mrs|Ms|Miss|Dr|Mister)\.?\s+{_EN_NAME}"),
    re.compile(rf"\b(?i:hi|hello|hey|dear|good (?:morning|afternoon|evening))[,!]?\s+{_EN_NAME}"),
    re.compile(
        r"\b(?i:is this|is that|am i speaking (?:with|to)|speaking (?:with|to)"
        r"|may i speak (?:with|to)|calling for|looking for|trying to reach|this message is for)"
        rf"\s+{_EN_NAME}"
    ),
)

# --- addresses ----------------------------------------------------------------------------------
_PLACE = rf"(?:(?![{_NOT_NAME}市区县省镇乡路街])[\u4e00-\u9fff])"
_NUM = r"(?:\d+|[一二三四五六七八九十百零〇两]+)"
_ZH_ADDRESS = re.compile(
    rf"(?P<p>{_PLACE}{{2,6}}?(?:省|自治区))?"
    rf"(?P<c>{_PLACE}{{1,5}}?市)?"
    rf"(?P<d>{_PLACE}{{1,5}}?(?:区|县|旗))?"
    rf"(?P<t>{_PLACE}{{1,5}}?(?:镇|乡|街道))?"
    rf"(?P<r>{_PLACE}{{1,6}}?(?:大道|大街|路|街|巷|胡同|弄))?"
    rf"(?P<n>{_NUM}(?:号院|号楼|号|弄))?"
    rf"(?P<b>{_PLACE}{{1,6}}?(?:小区|花园|公寓|大厦|新村|家园|苑|村))?"
    rf"(?P<u>(?:{_NUM}(?:栋|幢|号楼|单元|层|楼|室|号))+)?"
)
_ADDRESS_TRIGGER = re.compile(
    r"(?:家住在|住在|家住|家在|住址是|地址是|地址在|寄到|送到|收货地址是?)[:：]?\s*(?P<addr>[^，。！？,.!?；;\n]{2,30})"
    r"|(?i:\b(?:live at|living at|live on|lives at|address is|located at|ship(?:ped)? to"
    r"|deliver(?:ed)? to))\s+(?P<addr_en>[^,.!?;\n]{3,60})"
)
_EN_STREET = re.compile(
    r"\b\d{1,6}\s+(?:[A-Z][a-z]+\s+){1,3}(?i:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln"
    r"|drive|dr|court|ct|way|place|pl|terrace|circle|highway|hwy)\b\.?"
    r"(?:,?\s*(?i:apt|apartment|suite|unit|#)\.?\s*\w+)?"
    r"(?:,\s*[A-Z][a-z]+(?:\s[A-Z][a-z]+)?)?(?:,?\s*[A-Z]{2})?(?:\s+\d{5}(?:-\d{4})?)?"
)

# --- recitation: what ties a line to this callee -------------------------------------------------
# Talk about "your warranty", "您的保单" or "our records show" is said to everyone an auto-dialer
# rings (issue 14: a generic script is no leak). A line recites the callee's account only when it
# carries something specific to them: an amount or a date of their loan, order or policy, or a
# reference number. Amounts in an offer ("up to 50,000 dollars", "最高可借50万") are the pitch.
_SECOND_PERSON = re.compile(r"您|你|(?i:\byour?\b)")
_MONTHS = (
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)
_DATE = re.compile(
    r"\d{4}年\d{1,2}月(?:[\d十]{1,3}[日号])?|[\d十]{1,2}月[\d十]{1,3}[日号]|[\d十]{1,3}号(?:到期|还款)"
    rf"|(?i:\b(?:{_MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?\b"
    r"|\b\d{1,2}/\d{1,2}(?:/\d{2,4})?\b|\bon the (?:\d{1,2}(?:st|nd|rd|th)|first|last)\b)"
)
_AMOUNT = re.compile(
    r"[$￥¥]\s?\d[\d,]*(?:\.\d+)?|\d[\d,]*(?:\.\d+)?\s?(?:元|块|万|千元)"
    r"|(?i:\b\d[\d,]*(?:\.\d+)?\s?(?:dollars|bucks)\b)"
)
_OFFER = re.compile(
    r"(?:最高|高达|低至|只要|仅需|最低|最快|可达|可以借|提升至|提升到|以上|以内|首付"
    r"|(?i:\bup to|\bas (?:low|little) as|\bstarting at|\bonly|\bsave|\bwin|\bget|\bqualify))"
)
_REFERENCE = re.compile(
    r"(?:订单号|保单号|合同号|车牌号?|(?i:\b(?:order|policy|account|claim|member|case) "
    r"(?:number|no\.?|#)))\s*(?:是|为|is)?\s*[A-Za-z\u4e00-\u9fff]?[A-Za-z]?\d[\d\- ]{3,}"
)
# "我是XX银行的王经理", "this is Mr. Lee from ...": the caller naming themself is no recital
_SELF_INTRO = re.compile(
    r"(?:我是|我姓|我叫|我们|本人是)[^，。！？,.!?]*$"
    r"|(?i:\b(?:this is|my name is|i'm|i am|it's)\s+(?:(?:mr|mrs|ms|miss|dr)\.?\s+)?$)"
)
# role nouns a caller asks about that start with a surname character ("请问您是房东吗")
_ROLE_NOUNS = re.compile(r"房东|业主|机主|家长|老板|股东|车主|户主|孩子|学生|老师|本人")
_PHONE_CONTEXT = re.compile(r"(?:您|你)的(?:手机|电话|号码)|尾号|(?i:\byour (?:phone|number|cell))")
_CARD_CONTEXT = re.compile(
    r"卡号|卡(?:的)?尾号|(?i:\bcard (?:number|ending|ends)|\baccount number)"
)
_ID_CONTEXT = re.compile(r"身份证|(?i:social security|\bSSN\b)")
_DELIVERY = re.compile(r"寄到|送到|收货地址|(?i:\bdeliver(?:ed)? to|\bship(?:ped)? to)")


@dataclass(frozen=True, slots=True)
class Redaction:
    """One masked span, by character offset into the original text (the text is not kept)."""

    kind: str  # a key of MASK_TOKENS
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class RecitalFlag:
    """The caller recited what looks like the callee's personal data."""

    kind: str  # one of RECITAL_KINDS
    span_s: tuple[float, float]  # the segment where it was said, seconds
    excerpt: str  # the segment text, masked


@dataclass(frozen=True, slots=True)
class MaskSummary:
    counts: tuple[tuple[str, int], ...]  # (kind, number of masked spans), most frequent first
    recitals: tuple[RecitalFlag, ...]  # from the caller's transcript only

    @property
    def total(self) -> int:
        return sum(n for _, n in self.counts)


def has_cjk(text: str) -> bool:
    return re.search(r"[\u4e00-\u9fff]", text) is not None


def find_personal_data(
    text: str, *, known_numbers: Iterable[str] = (), known_names: Iterable[str] = ()
) -> tuple[Redaction, ...]:
    """Spans of personal data in ``text``, sorted and non-overlapping.

    Parameters
    ----------
    text : str
        One transcript segment (or any text), Mandarin or English.
    known_numbers, known_names : iterable of str
        The callee's own number(s) and name(s), masked wherever they occur.
    """
    found: list[Redaction] = []
    view = text.translate(_CN_DIGITS)
    for m in _DIGIT_RUN.finditer(view):
        if _UNIT_AFTER.match(view, m.end()):  # "300-3400 Hz", "1000000元": a quantity
            continue
        digits = re.sub(r"[^\d+xX]", "", m.group())
        found.append(Redaction(classify_number(digits), m.start(), m.end()))
    for m in _US_PARENS.finditer(view):
        found.append(Redaction("phone", m.start(), m.end()))
    for m in _EN_DIGIT_RUN.finditer(text):
        found.append(Redaction(classify_number(_words_to_digits(m.group())), m.start(), m.end()))
    for m in _LAST_DIGITS.finditer(view):
        found.append(Redaction("number", m.start(1), m.end(1)))
    found.extend(Redaction("email", m.start(), m.end()) for m in _EMAIL.finditer(text))
    known = [d for d in (re.sub(r"\D", "", n) for n in known_numbers) if len(d) >= 5]
    for digits in known:
        pattern = r"[ \-–]?".join(digits[-11:])
        found.extend(Redaction("phone", m.start(), m.end()) for m in re.finditer(pattern, view))
    found.extend(_fuzzy_known_numbers(view, known))
    found.extend(_find_addresses(text))
    found.extend(_find_names(text, known_names))
    return _non_overlapping(found)


def mask_text(
    text: str,
    *,
    known_numbers: Iterable[str] = (),
    known_names: Iterable[str] = (),
    token_lang: str = "",
) -> tuple[str, tuple[Redaction, ...]]:
    """``text`` with every span of :func:`find_personal_data` replaced by its token.

    ``token_lang`` ("zh" / "en") picks the tokens' language (a Chinese report masks an English
    call with ``［电话号码］``); "" follows the text.
    """
    spans = find_personal_data(text, known_numbers=known_numbers, known_names=known_names)
    return _apply(text, spans, token_lang), spans


def mask_transcript(
    transcript: Transcript,
    *,
    known_numbers: Iterable[str] = (),
    known_names: Iterable[str] = (),
    token_lang: str = "",
) -> tuple[Transcript, tuple[Redaction, ...]]:
    """Mask every segment (and its words) of a transcript; returns the spans found."""
    numbers, names = tuple(known_numbers), tuple(known_names)
    segments: list[Segment] = []
    spans: list[Redaction] = []
    for seg in transcript.segments:
        found = find_personal_data(seg.text, known_numbers=numbers, known_names=names)
        spans.extend(found)
        if not found:
            segments.append(seg)
            continue
        segments.append(
            dataclasses.replace(
                seg,
                text=_apply(seg.text, found, token_lang),
                words=_mask_words(seg, found, token_lang),
            )
        )
    return dataclasses.replace(transcript, segments=tuple(segments)), tuple(spans)


def find_recitals(
    transcript: Transcript, *, known_numbers: Iterable[str] = (), known_names: Iterable[str] = ()
) -> tuple[RecitalFlag, ...]:
    """Where the caller recites the callee's own personal data.

    Only specific data counts (issue 14): the caller addresses someone by name (``王先生``,
    ``Is this Mary Smith``), says an ID, SSN or bank card number, the callee's own number (or any
    number after "your number"), an address of theirs, or an amount, date or reference number of
    their loan, order or policy (``history``). Generic script lines ("Our records show your
    factory warranty is about to expire", "您的保单即将进入宽限期") are not flagged. Precision
    and recall on a labelled set of lines: docs/evidence.md.
    """
    numbers, names = tuple(known_numbers), tuple(known_names)
    known_digits = {d[-11:] for d in (re.sub(r"\D", "", n) for n in numbers) if len(d) >= 5}
    flags: list[RecitalFlag] = []
    for seg in transcript.segments:
        text = seg.text
        kinds = _recited_kinds(text, text.translate(_CN_DIGITS), known_digits, numbers, names)
        excerpt = mask_text(text, known_numbers=numbers, known_names=names)[0][:120]
        flags.extend(
            RecitalFlag(kind, (seg.start_s, seg.end_s), excerpt)
            for kind in RECITAL_KINDS
            if kind in kinds
        )
    return tuple(flags)


def _recited_kinds(
    text: str,
    view: str,
    known_digits: set[str],
    numbers: tuple[str, ...],
    names: tuple[str, ...],
) -> set[str]:
    kinds: set[str] = set()
    to_callee = _SECOND_PERSON.search(text) is not None
    for r in find_personal_data(text, known_numbers=numbers, known_names=names):
        before = text[max(0, r.start - 32) : r.start]
        said = re.sub(r"\D", "", view[r.start : r.end])
        if r.kind == "name":
            if not (_SELF_INTRO.search(before) or _ROLE_NOUNS.match(text, r.start)):
                kinds.add("name")
        elif r.kind in ("cn_id", "bank_card"):
            kinds.add(r.kind)
        elif r.kind in ("phone", "number"):
            if _ID_CONTEXT.search(before):
                kinds.add("cn_id")
            elif _CARD_CONTEXT.search(before) or "卡" in text[r.end : r.end + 6]:
                kinds.add("bank_card")
            elif _PHONE_CONTEXT.search(before) or any(
                said.endswith(k) or k.endswith(said) for k in known_digits if said
            ):
                kinds.add("phone")
        elif r.kind == "address" and (to_callee or _DELIVERY.search(text)):
            kinds.add("address")
    if to_callee and (
        _DATE.search(view)
        or _REFERENCE.search(view)
        or any(
            not _OFFER.search(view[max(0, m.start() - 16) : m.start()])
            for m in _AMOUNT.finditer(view)
        )
    ):
        kinds.add("history")
    return kinds


def mask_verdict(
    verdict: Verdict,
    *,
    known_numbers: Iterable[str] = (),
    known_names: Iterable[str] = (),
    token_lang: str = "",
) -> tuple[Verdict, MaskSummary]:
    """The shareable copy of a verdict: transcripts, evidence sentences and file name masked.

    Returns the masked verdict and what was masked (counts by kind, over every field) plus the
    recital flags found in the caller's (unmasked) transcript. ``token_lang`` as in
    :func:`mask_text`, for the transcripts and the file name; each evidence sentence gets
    tokens in its own language.
    """
    numbers, names = tuple(known_numbers), tuple(known_names)
    kw = {"known_numbers": numbers, "known_names": names}
    transcript, spans = mask_transcript(verdict.transcript, **kw, token_lang=token_lang)
    all_spans = list(spans)
    other = verdict.other_party_transcript
    if other is not None:
        other, other_spans = mask_transcript(other, **kw, token_lang=token_lang)
        all_spans.extend(other_spans)
    evidence = []
    for e in verdict.evidence:
        masked_e, found = _mask_evidence(e, numbers, names)
        all_spans.extend(found)
        evidence.append(masked_e)
    name, found = mask_text(verdict.audio.name, **kw, token_lang=token_lang)
    all_spans.extend(found)
    audio = dataclasses.replace(verdict.audio, name=name) if found else verdict.audio
    masked = dataclasses.replace(
        verdict,
        transcript=transcript,
        other_party_transcript=other,
        evidence=tuple(evidence),
        audio=audio,
    )
    counts = Counter(r.kind for r in all_spans).most_common()
    return masked, MaskSummary(tuple(counts), find_recitals(verdict.transcript, **kw))


def _mask_evidence(
    e: Evidence, numbers: tuple[str, ...], names: tuple[str, ...]
) -> tuple[Evidence, tuple[Redaction, ...]]:
    """Mask the sentences and the quoted words in the params (phrases the caller said).

    The redactions returned are the English sentence's (one count per thing masked, as before
    the sentences came in two languages); the rest is masked alike.
    """
    changed = False

    def masked(text: str) -> str:
        nonlocal changed
        out, spans = mask_text(text, known_numbers=numbers, known_names=names)
        changed = changed or bool(spans)
        return out

    params = tuple(
        (
            k,
            masked(v)
            if isinstance(v, str)
            else tuple(masked(x) for x in v)
            if isinstance(v, tuple)
            else v,
        )
        for k, v in e.params
    )
    detail, found = mask_text(e.detail, known_numbers=numbers, known_names=names, token_lang="en")
    detail_zh = (
        mask_text(e.detail_zh, known_numbers=numbers, known_names=names, token_lang="zh")[0]
        if e.detail_zh
        else ""
    )
    if not (found or changed):
        return e, found
    return dataclasses.replace(e, detail=detail, detail_zh=detail_zh, params=params), found


def mask_number(number: str) -> str:
    """A phone number for display with its middle digits hidden: ``138****5678``.

    Separators are kept (``+1 415 555 0199`` -> ``+1 41* *** 0199``); short numbers are hidden
    entirely.
    """
    count = sum(ch.isdigit() for ch in number)
    out, seen = [], 0
    for ch in number:
        if ch.isdigit():
            seen += 1
            keep = count >= 7 and (seen <= 3 or seen > count - 4)
            out.append(ch if keep else "*")
        else:
            out.append(ch)
    return "".join(out)


def recital_evidence(flags: tuple[RecitalFlag, ...]) -> Evidence | None:
    """The recital flags as one zero-weight :class:`Evidence` (it is no robot cue)."""
    if not flags:
        return None
    kinds = sorted({f.kind for f in flags}, key=RECITAL_KINDS.index)
    return make_evidence(
        "text",
        "recites_personal_data",
        value=float(len(flags)),
        weight=0.0,
        code="recites_personal_data",
        params={"kinds": tuple(kinds)},
        span_s=(min(f.span_s[0] for f in flags), max(f.span_s[1] for f in flags)),
    )


# digit groups a few words apart ("138 near O'Neill 138000": ASR breaking up 13800138000)
_DIGIT_CLUSTER = re.compile(r"\d[\d \-–]*(?:[^\d。！？，、；：.!?,;:\n]{1,16}?\d[\d \-–]*)*")
FUZZY_NUMBER_RATIO = 0.75  # difflib similarity of the digits to a number the complainant gave


def _fuzzy_known_numbers(view: str, known: list[str]) -> list[Redaction]:
    """Digit clusters that look like a known number misheard (issue 14): masked as phone."""
    found = []
    for m in _DIGIT_CLUSTER.finditer(view):
        said = re.sub(r"\D", "", m.group())
        if len(said) < 5:
            continue
        for digits in known:
            target = digits[-11:]
            if difflib.SequenceMatcher(None, said, target).ratio() >= FUZZY_NUMBER_RATIO:
                end = m.start() + len(m.group().rstrip(" -–"))
                found.append(Redaction("phone", m.start(), end))
                break
    return found


def _words_to_digits(words: str) -> str:
    out: list[str] = []
    repeat = 1
    for token in re.findall(r"[a-z]+", words.lower()):
        if token in ("double", "triple"):
            repeat = 2 if token == "double" else 3
            continue
        out.append(_EN_DIGIT_WORDS.get(token, "") * repeat)
        repeat = 1
    return "".join(out)


def _find_addresses(text: str) -> list[Redaction]:
    found: list[Redaction] = []
    for m in _ZH_ADDRESS.finditer(text):
        parts = [k for k, v in m.groupdict().items() if v]
        # two components at least ("朝阳区建国路"), or a road with its number ("建国路88号")
        if len(parts) >= 2 and m.end() > m.start():
            found.append(Redaction("address", m.start(), m.end()))
    for m in _ADDRESS_TRIGGER.finditer(text):
        group = "addr" if m.group("addr") else "addr_en"
        found.append(Redaction("address", m.start(group), m.end(group)))
    found.extend(Redaction("address", m.start(), m.end()) for m in _EN_STREET.finditer(text))
    return found


def _find_names(text: str, known_names: Iterable[str]) -> list[Redaction]:
    found = [
        Redaction("name", m.start("name"), m.end("name"))
        for pattern in (_ZH_NAME_HONORIFIC, _ZH_NAME_ASKED)
        for m in pattern.finditer(text)
    ]
    for pattern in _EN_NAME_PATTERNS:
        for m in pattern.finditer(text):
            words = m.group("name").split()
            while words and words[-1] in _EN_NOT_NAMES:  # "Hi John Thanks" -> "John"
                words.pop()
            if words and words[0] not in _EN_NOT_NAMES:
                start = m.start("name")
                found.append(Redaction("name", start, start + len(" ".join(words))))
    for name in known_names:
        name = name.strip()
        if len(name) >= 2:
            found.extend(
                Redaction("name", m.start(), m.end())
                for m in re.finditer(re.escape(name), text, flags=re.IGNORECASE)
            )
    return found


def _non_overlapping(spans: list[Redaction]) -> tuple[Redaction, ...]:
    spans = sorted(spans, key=lambda r: (r.start, -(r.end - r.start)))
    kept: list[Redaction] = []
    for r in spans:
        if r.end <= r.start:
            continue
        if kept and r.start < kept[-1].end:
            if r.end > kept[-1].end:  # overlapping: merge into the first, keep its kind
                kept[-1] = Redaction(kept[-1].kind, kept[-1].start, r.end)
            continue
        kept.append(r)
    return tuple(kept)


def _token(kind: str, text: str, token_lang: str) -> str:
    zh = token_lang == "zh" if token_lang else has_cjk(text)
    return MASK_TOKENS[kind][0 if zh else 1]


def _apply(text: str, spans: tuple[Redaction, ...], token_lang: str = "") -> str:
    out, pos = [], 0
    for r in spans:
        out.append(text[pos : r.start])
        out.append(_token(r.kind, text, token_lang))
        pos = r.end
    out.append(text[pos:])
    return "".join(out)


def _mask_words(seg: Segment, spans: tuple[Redaction, ...], token_lang: str) -> tuple[Word, ...]:
    """Mask the words overlapping a span; drop all words if they cannot be aligned to the text."""
    words: list[Word] = []
    cursor = 0
    for w in seg.words:
        token = w.text.strip()
        at = seg.text.find(token, cursor) if token else cursor
        if at < 0:
            return ()
        end = at + len(token)
        cursor = end
        hit = next((r for r in spans if r.start < end and at < r.end), None)
        words.append(
            w
            if hit is None
            else dataclasses.replace(w, text=_token(hit.kind, seg.text, token_lang))
        )
    return tuple(words)
