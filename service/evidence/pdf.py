"""The bilingual (Chinese / English) evidence report as a PDF, with reportlab.

Layout only: every sentence comes from :mod:`pipeline.report`, every number from the
:class:`Verdict`. Pages: 1 conclusion, case summary and personal data; 2 the reasons;
3 the figure; then the transcript; then the method, the limits and how to check the pack.

The font must hold CJK glyphs and be embedded so that the PDF reads the same on any machine:
WenQuanYi Micro Hei from Debian's ``fonts-wqy-microhei`` by default (``ROBOCALL_CJK_FONT`` points
at another TrueType font).
"""

from __future__ import annotations

import functools
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFError, TTFont
from reportlab.platypus import (
    Image,
    KeepTogether,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from pipeline import limits
from pipeline import report as rp
from pipeline.errors import RobocallError
from pipeline.messages import (
    Lang,
    format_clock,
    format_robot_probability,
    format_threshold_percent,
    recording_notes,
)
from pipeline.privacy import RecitalFlag, has_cjk
from pipeline.report import CaseInfo, both, text
from pipeline.types import Verdict

FONT_NAME = "RobocallCJK"
FONT_APT = "apt-get install -y fonts-wqy-microhei"
# TrueType (not CFF/OTF) fonts with CJK glyphs, in order of preference: Debian, macOS, Windows
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/System/Library/Fonts/STHeiti Light.ttc",
    "/Library/Fonts/Arial Unicode.ttf",
    "C:/Windows/Fonts/msyh.ttc",
    "C:/Windows/Fonts/simhei.ttf",
)
PAGE_W, PAGE_H = A4
MARGIN = 16 * mm
ROBOT_RED, HUMAN_GREEN, GREY = colors.HexColor("#c62828"), colors.HexColor("#2e7d32"), colors.grey
UNCERTAIN_AMBER = colors.HexColor("#8a5a00")  # the band where the detector cannot tell


class FontNotFoundError(RobocallError):
    """No TrueType font with Chinese glyphs: the bilingual report cannot be typeset."""

    code = "font_unavailable"
    status = 500


@dataclass(frozen=True, slots=True)
class PdfInputs:
    """Everything the PDF shows besides the verdict; prepared by :mod:`service.evidence.pack`."""

    case: CaseInfo
    callee_display: str  # the called number as shown (masked unless asked)
    recitals: tuple[RecitalFlag, ...]
    masked: bool  # whether the transcript was masked (changes the transcript note)
    figure_png: bytes | None
    key_fingerprint: str  # hex sha256 of the signing public key
    created_at_utc: str  # ISO 8601
    settings: tuple[tuple[str, str], ...] = ()  # (setting, value) of the analysis, when known


def find_cjk_font() -> Path:
    """The first usable CJK TrueType font: ``$ROBOCALL_CJK_FONT``, then known system paths.

    Raises
    ------
    FontNotFoundError
        None found; the message gives the install command.
    """
    env = os.environ.get("ROBOCALL_CJK_FONT")
    for candidate in ((env,) if env else ()) + FONT_CANDIDATES:
        path = Path(candidate)
        if path.is_file():
            return path
    raise FontNotFoundError(
        "no font with Chinese characters found for the PDF report; install one "
        f"(Debian/Ubuntu: {FONT_APT}) or set ROBOCALL_CJK_FONT to a TrueType .ttf/.ttc file"
    )


@functools.cache
def _register_font(path: Path) -> str:
    try:
        pdfmetrics.registerFont(TTFont(FONT_NAME, str(path), subfontIndex=0))
    except TTFError as exc:  # e.g. a CFF-flavoured .otf, which reportlab cannot embed
        raise FontNotFoundError(f"{path} cannot be embedded in a PDF: {exc}") from exc
    return FONT_NAME


def render_pdf(verdict: Verdict, inputs: PdfInputs, *, lang: Lang) -> bytes:
    """The report as PDF bytes.

    Parameters
    ----------
    verdict : Verdict
        The verdict to show, already masked for the shareable copy.
    inputs : PdfInputs
    lang : "zh" or "en"
        The language that leads every bilingual block.

    Raises
    ------
    FontNotFoundError
        No embeddable CJK font on this machine.
    """
    font = _register_font(find_cjk_font())
    st = _styles(font)
    second = rp.other_lang(lang)
    story: list[Any] = []

    def para(value: str, style: str = "body", *, lang_of: Lang | None = None) -> Paragraph:
        key = f"{style}_zh" if (lang_of or lang) == "zh" and f"{style}_zh" in st else style
        return CjkParagraph(escape(value), st[key])

    def heading(key: str) -> None:
        story.append(para(both(key, lang), "h2"))

    # page 1: conclusion and case summary
    story.append(para(text("title", lang), "title"))
    story.append(para(text("title", second), "subtitle", lang_of=second))
    story.append(para(both("subtitle", lang), "small"))
    story.append(Spacer(1, 4 * mm))
    colour = {"robot": ROBOT_RED, "person": HUMAN_GREEN, "uncertain": UNCERTAIN_AMBER}[
        verdict.caller_certainty
    ]
    box = [
        [para(rp.verdict_sentence(verdict, lang), "verdict", lang_of=lang)],
        [para(rp.verdict_sentence(verdict, second), "verdict", lang_of=second)],
    ]
    for code in (lang, second):  # not sufficient alone for a complaint (issue 13)
        if rp.uncertain_notice(verdict, code):
            box.append([para(rp.uncertain_notice(verdict, code), lang_of=code)])
    # the default: 0.5 for the hand-set sum, else the fitted fusion's, where its rates were measured
    rates = limits.load_error_rates()
    default = 0.5 if rp.is_untrained(verdict) else rates.threshold if rates else None
    if default is not None and abs(verdict.threshold - default) > 1e-9:  # --threshold was set
        for code in (lang, second):
            line = text("threshold_set", code).format(
                t=format_threshold_percent(verdict.threshold),
                d=format_threshold_percent(default),
            )
            box.append([para(line, lang_of=code)])
    story.append(_boxed(box, colour))
    story.append(Spacer(1, 3 * mm))
    for code in (lang, second):
        for line in rp.summary_lines(verdict, code)[1:]:
            story.append(para(line, lang_of=code))
    heading("case_summary")
    story.append(_key_value_table(_case_rows(verdict, inputs, lang), st))
    heading("privacy")
    recital_colour = ROBOT_RED if inputs.recitals else GREY
    story.append(
        _boxed(
            [
                [
                    para(
                        rp.recital_sentence(inputs.recitals, c)
                        + (" " + rp.recital_hint(c) if inputs.recitals else ""),
                        lang_of=c,
                    )
                ]
                for c in (lang, second)
            ],
            recital_colour,
        )
    )
    excerpts = dict.fromkeys((f.span_s[0], f.excerpt) for f in inputs.recitals)
    if excerpts:
        story.append(para(both("recital_excerpts", lang) + ":", "small"))
    for start_s, excerpt in list(excerpts)[:2]:
        story.append(
            para(
                f"{format_clock(start_s)}  {excerpt}",
                "small",
                lang_of="zh" if has_cjk(excerpt) else "en",
            )
        )
    story.append(PageBreak())

    # page 2: reasons and figure
    heading("reasons")
    story.append(para(text("reasons_intro", lang)))
    story.append(para(text("reasons_intro", second), lang_of=second))
    story.append(Spacer(1, 2 * mm))
    story.append(_reasons_table(verdict, lang, st))
    story.append(PageBreak())

    # figure
    if inputs.figure_png:
        figure = Image(io.BytesIO(inputs.figure_png))
        scale = min((PAGE_W - 2 * MARGIN) / figure.drawWidth, 205 * mm / figure.drawHeight)
        figure.drawWidth *= scale
        figure.drawHeight *= scale
        caption = [para(text("figure_caption", c), lang_of=c) for c in (lang, second)]
        story.append(KeepTogether([para(both("figures", lang), "h2"), figure, *caption]))
        story.append(PageBreak())

    # transcript
    heading("transcript")
    note = "transcript_note" if inputs.masked else "transcript_note_unmasked"
    story.append(para(f"{text(note, lang)} {text(note, second)}", "small"))
    story.append(_transcript_table(verdict, lang, st))
    story.append(PageBreak())

    # method, limits, verification
    heading("method")
    story.append(_key_value_table(_method_rows(verdict, inputs, lang), st))
    heading("limits")
    for code in (lang, second):
        story.append(para(limits.limits_paragraph(verdict, code), lang_of=code))
    heading("verify")
    for code in (lang, second):
        story.append(para(text("verify_text", code), lang_of=code))

    buf = io.BytesIO()
    footer = f"{verdict.audio.name} · SHA-256 {verdict.audio.sha256[:16]}…"
    doc = SimpleDocTemplate(
        buf,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN + 4 * mm,
        title=f"{text('title', lang)} / {text('title', second)}",
        author="robocall-detector",
        subject=verdict.audio.sha256,
    )

    def on_page(canvas: Any, document: Any) -> None:
        canvas.saveState()
        canvas.setFont(font, 7.5)
        canvas.setFillColor(GREY)
        page = " / ".join(text("page", c).format(n=document.page) for c in (lang, second))
        canvas.drawString(MARGIN, MARGIN * 0.6, footer)
        canvas.drawRightString(PAGE_W - MARGIN, MARGIN * 0.6, page)
        canvas.restoreState()

    doc.build(story, onFirstPage=on_page, onLaterPages=on_page)
    return buf.getvalue()


# Chinese typography never starts a line with these (GB/T 15834 punctuation rules)
_CANNOT_START = frozenset("。，、；：！？）」』》〉”’…%·")
_MAX_REWRAPS, _REWRAP_STEP_PT = 24, 1.5  # up to 36 pt narrower, about four characters


class CjkParagraph(Paragraph):  # type: ignore[misc]  # reportlab is untyped
    """A paragraph whose lines never start with closing punctuation ("。", "，", "）").

    reportlab's CJK wrap hangs at most one closing mark in the margin and, for a one-style
    paragraph, none: "（分:秒）。" could leave "。" alone at the start of a line. Wrapping a
    little narrower moves the breaks; the narrowing with the fewest such lines (none, almost
    always) is kept. The text itself is never changed.
    """

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:  # noqa: N803
        best = (len(_CANNOT_START), 0.0)  # (lines starting badly, narrowing in pt)
        for attempt in range(_MAX_REWRAPS):
            narrower = _REWRAP_STEP_PT * attempt
            super().wrap(availWidth - narrower, availHeight)
            bad = sum(_line_start(line) in _CANNOT_START for line in self.blPara.lines[1:])
            best = min(best, (bad, narrower))
            if bad == 0:
                break
        size: tuple[float, float] = super().wrap(availWidth - best[1], availHeight)
        return size


def _line_start(line: Any) -> str:
    words = line[1] if isinstance(line, tuple) else getattr(line, "words", [])
    first = words[0] if words else ""
    return str(first if isinstance(first, str) else getattr(first, "text", ""))[:1]


def _styles(font: str) -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("body", fontName=font, fontSize=9.5, leading=14, spaceAfter=3)
    out = {
        "body": base,
        "small": ParagraphStyle(
            "small", parent=base, fontSize=8, leading=11, textColor=colors.HexColor("#424242")
        ),
        "cell": ParagraphStyle("cell", parent=base, fontSize=8.5, leading=11.5, spaceAfter=0),
        "title": ParagraphStyle("title", parent=base, fontSize=20, leading=26, spaceAfter=2),
        "subtitle": ParagraphStyle(
            "subtitle", parent=base, fontSize=14, leading=18, textColor=colors.HexColor("#424242")
        ),
        "h2": ParagraphStyle(
            "h2",
            parent=base,
            fontSize=13,
            leading=18,
            spaceBefore=10,
            spaceAfter=5,
            textColor=colors.HexColor("#0d47a1"),
        ),
        "verdict": ParagraphStyle("verdict", parent=base, fontSize=12, leading=17),
    }
    # Chinese wraps between any two characters; English only at spaces
    for key in list(out):
        out[f"{key}_zh"] = ParagraphStyle(f"{key}_zh", parent=out[key], wordWrap="CJK")
    return out


def _boxed(rows: list[list[Any]], colour: Any) -> Table:
    table = Table(rows, colWidths=[PAGE_W - 2 * MARGIN])
    table.setStyle(
        TableStyle(
            [
                ("BOX", (0, 0), (-1, -1), 1.2, colour),
                ("LEFTPADDING", (0, 0), (-1, -1), 8),
                ("TOPPADDING", (0, 0), (-1, -1), 5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 5),
            ]
        )
    )
    return table


def _cell(value: str, st: dict[str, ParagraphStyle]) -> Paragraph:
    return CjkParagraph(escape(value).replace("\n", "<br/>"), st["cell_zh"])


def _grid(rows: list[list[Any]], widths: list[float], *, header: bool) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1 if header else 0)
    style = [
        ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#bdbdbd")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 3),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
    ]
    if header:
        style.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e3f2fd")))
    table.setStyle(TableStyle(style))
    return table


def _key_value_table(rows: list[tuple[str, str]], st: dict[str, ParagraphStyle]) -> Table:
    width = PAGE_W - 2 * MARGIN
    cells = [[_cell(k, st), _cell(v, st)] for k, v in rows]
    return _grid(cells, [0.34 * width, 0.66 * width], header=False)


def _case_rows(verdict: Verdict, inputs: PdfInputs, lang: Lang) -> list[tuple[str, str]]:
    case, info = inputs.case, verdict.audio
    second = rp.other_lang(lang)
    given = both("not_given", lang)
    stated = f"（{text('stated', 'zh')}）" if lang == "zh" else f" ({text('stated', 'en')})"
    caller = case.caller_number
    if caller and case.caller_id_name:
        caller += f" · {both('caller_id_name', lang)}: {case.caller_id_name}"
    return [
        (both("reported_number", lang), caller + stated if caller else given),
        (
            both("callee_number", lang),
            inputs.callee_display + stated if inputs.callee_display else given,
        ),
        (
            both("call_time", lang),
            rp.format_call_time(case, lang) + stated if case.call_time else given,
        ),
        (
            both("duration", lang),
            f"{rp.format_duration(info.duration_s, lang)} / "
            f"{rp.format_duration(info.duration_s, second)}",
        ),
        (
            both("robot_probability", lang),
            f"{format_robot_probability(verdict)} ("
            + " / ".join(
                text("robot_if", c).format(t=format_threshold_percent(verdict.threshold))
                + ("; " + rp.band_text(verdict, c) if rp.band_text(verdict, c) else "")
                for c in (lang, second)
            )
            + ")",
        ),
        (both("sales_probability", lang), rp.format_percent(verdict.sales_probability)),
        (
            both("topic", lang),
            f"{rp.topic_text(verdict.topic, lang)} / {rp.topic_text(verdict.topic, second)}",
        ),
        (
            both("recording", lang),
            f"{info.name} · {info.container}/{info.codec} · "
            f"{info.sample_rate_hz} Hz · {info.channels} ch · "
            f"{info.size_bytes:,} bytes"
            + "".join(f"\n{note}" for note in recording_notes(verdict, lang)),
        ),
        (both("recording_sha256", lang), info.sha256),
    ]


def _reasons_table(verdict: Verdict, lang: Lang, st: dict[str, ParagraphStyle]) -> Table:
    second = rp.other_lang(lang)
    width = PAGE_W - 2 * MARGIN
    rows: list[list[Any]] = [
        [_cell(both(k, lang), st) for k in ("col_reason", "col_value", "col_weight", "col_where")]
    ]
    colour_rows = []
    for r, r2 in zip(rp.reasons(verdict, lang), rp.reasons(verdict, second), strict=True):
        rows.append(
            [
                _cell(f"R{r.rank}  {r.title} / {r2.title}\n{r.detail}", st),
                _cell(r.value, st),
                _cell(f"{r.weight:+.2f}\n{r.direction}\n{r2.direction}", st),
                _cell(r.where or "—", st),
            ]
        )
        colour_rows.append(ROBOT_RED if r.weight > 0 else HUMAN_GREEN if r.weight < 0 else GREY)
    table = _grid(rows, [0.55 * width, 0.10 * width, 0.17 * width, 0.18 * width], header=True)
    table.setStyle(
        TableStyle(
            [("LINEBEFORE", (0, i), (0, i), 3, c) for i, c in enumerate(colour_rows, start=1)]
        )
    )
    return table


def _transcript_table(verdict: Verdict, lang: Lang, st: dict[str, ParagraphStyle]) -> Any:
    rows_data = rp.transcript_rows(verdict)
    if not rows_data:
        return Paragraph(escape(both("no_speech", lang)), st["body"])
    width = PAGE_W - 2 * MARGIN
    rows: list[list[Any]] = [
        [_cell(both(k, lang), st) for k in ("col_time", "col_speaker", "col_text")]
    ]
    callee_rows = []
    for i, row in enumerate(rows_data, start=1):
        rows.append(
            [
                _cell(f"{format_clock(row.start_s)}–{format_clock(row.end_s)}", st),
                _cell(both(row.speaker, lang), st),
                _cell(row.text, st),
            ]
        )
        if row.speaker == "callee":
            callee_rows.append(("BACKGROUND", (0, i), (-1, i), colors.HexColor("#f5f5f5")))
    table = _grid(rows, [0.15 * width, 0.17 * width, 0.68 * width], header=True)
    table.setStyle(TableStyle(callee_rows))
    return table


def _method_rows(verdict: Verdict, inputs: PdfInputs, lang: Lang) -> list[tuple[str, str]]:
    prov = verdict.provenance
    models = "\n".join(f"{m.role}: {m.model_id} (sha256 {m.sha256})" for m in prov.models)
    libraries = ", ".join(f"{name} {version}" for name, version in prov.libraries)
    return [
        (both("software", lang), f"robocall-detector {prov.package_version}"),
        (both("models", lang), models or "—"),
        (
            both("settings", lang),
            "\n".join(
                [f"config hash {prov.config_hash}; threshold {verdict.threshold:.2f}"]
                + [f"{k} = {v}" for k, v in inputs.settings]
            ),
        ),
        (
            both("fusion", lang),
            "\n".join(
                dict.fromkeys(limits.fusion_text(verdict, c) for c in (lang, rp.other_lang(lang)))
            ),
        ),
        (
            both("language", lang),
            f"{verdict.transcript.language} (p={verdict.transcript.language_probability:.2f})",
        ),
        (both("libraries", lang), libraries or "—"),
        (both("analysed_at", lang), prov.analysed_at_utc),
        (both("pack_created", lang), inputs.created_at_utc),
        (both("signing_key", lang), inputs.key_fingerprint),
    ]
