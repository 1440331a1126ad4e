"""What the web page shows of a verdict, rendered on the server in both languages (issue 15).

The page never re-implements the wording or the highlight rule: the headline comes from
:func:`pipeline.messages.headline`, each reason's sentence from
:func:`pipeline.messages.evidence_sentence`, probabilities from
:func:`pipeline.messages.format_probability` (">99 %", never 100 %), and the spans to shade and
the caller lines to mark from :func:`pipeline.highlights.highlight_spans`, who said each line
from :attr:`pipeline.types.Verdict.transcript_speakers`. The technical figures
(log-odds, pooling) stay in the verdict's ``params``; nothing here shows them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, Field

from pipeline.highlights import highlight_spans
from pipeline.messages import (
    LANGS,
    Lang,
    caller_side,
    evidence_sentence,
    evidence_title,
    format_robot_probability,
    format_threshold_percent,
    headline,
    queue_note,
    tones_note,
    topic_name,
)
from pipeline.types import Verdict

# Warnings about an accepted recording: code -> (English, Chinese), str.format over the params.
WARNINGS: dict[str, tuple[str, str]] = {
    "hum": (
        "The recording carries a {hum_hz:.0f} Hz mains hum: it was filtered out before the "
        "analysis.",
        "录音里有 {hum_hz:.0f} 赫兹的电源交流声：分析前已将其滤除。",
    ),
    "quiet": (
        "The recording is very quiet: it was raised by {gain_db:.0f} dB before the analysis.",
        "录音音量很低：分析前已将其提高 {gain_db:.0f} 分贝。",
    ),
    "truncated": (
        "The recording ends early: its header announces {declared_s:.1f} s but only "
        "{decoded_s:.1f} s are in the file, so it was probably cut off. The verdict covers "
        "what is there.",
        "录音提前结束：文件头标明 {declared_s:.1f} 秒，文件里只有 {decoded_s:.1f} 秒，"
        "可能被截断了。判断只基于现有部分。",
    ),
}


class Bilingual(BaseModel):
    en: str
    zh: str


class ReasonOut(BaseModel):
    name: str = Field(description="the evidence's stable name", examples=["pitch_std_st"])
    direction: Literal["robot", "person", "neutral"] = Field(
        description="which side the cue pushed the verdict to (neutral: measured, no weight)"
    )
    title: Bilingual
    sentence: Bilingual = Field(description="the evidence's plain sentence")
    span_s: tuple[float, float] | None = Field(description="where in the call, seconds")


class HighlightOut(BaseModel):
    span_s: tuple[float, float] = Field(description="the part of the call to shade, seconds")
    name: str = Field(description="the evidence that put it there")
    caller_segments: list[int] = Field(
        description="indices into verdict.transcript.segments to mark (never the callee's)"
    )


class WarningOut(BaseModel):
    code: str = Field(examples=["truncated"])
    params: dict[str, float]
    message: Bilingual


class DisplayOut(BaseModel):
    """The verdict as a person reads it, in English and Chinese."""

    headline: Bilingual = Field(
        examples=[{"en": "Robot – no sales pitch heard", "zh": "机器人，未听到推销"}]
    )
    topic: Bilingual
    robot_probability: str = Field(examples=[">99 %"], description="never 100 % or 0 %")
    threshold: str = Field(examples=["95.6 %"], description="robot at this probability or more")
    person_threshold: str = Field(
        examples=["2.3 %"],
        description="a live person below this probability; from it up to `threshold` the "
        "detector cannot tell (equal to `threshold`: no such band)",
    )
    caller_certainty: Literal["robot", "person", "uncertain"] = Field(
        description="'uncertain': cannot tell whether a robot or a live person called; the "
        "headline says so and asks to listen before reporting"
    )
    caller_side: Bilingual | None = Field(
        description="which part of the recording was heard as the caller: the channel of a "
        "stereo call, or the voice a mono recording was split into (null: a mono recording of "
        "one voice, all of it the caller's)"
    )
    tones: Bilingual | None = Field(
        description="the telephone tones (ringing, busy tone, beeps) on the caller's channel, "
        "which are nobody's voice and were left out of the analysis (null: none heard)"
    )
    queue: Bilingual | None = Field(
        description="a call-centre queue announcement replayed on the caller's channel, which "
        "was set aside and not judged as the caller (null: none found)"
    )
    speakers: list[Literal["caller", "callee"]] = Field(
        description="who said each of verdict.transcript.segments: the callee only where a "
        "mono recording was split into two voices (a stereo callee has its own transcript)"
    )
    reasons: list[ReasonOut] = Field(description="the verdict's evidence, strongest first")
    highlights: list[HighlightOut] = Field(description="the parts that drove the verdict")


def _both(render: Callable[[Lang], str]) -> dict[str, str]:
    return {lang: render(lang) for lang in LANGS}


def display_json(verdict: Verdict) -> dict[str, Any]:
    """The ``display`` object of an analysis (schema :class:`DisplayOut`)."""
    side = caller_side(verdict, "en")
    queued = queue_note(verdict, "en")
    reasons = [
        {
            "name": e.name,
            "direction": "robot" if e.weight > 0 else "person" if e.weight < 0 else "neutral",
            "title": {lang: evidence_title(e.name, lang) for lang in LANGS},
            "sentence": {lang: evidence_sentence(e, lang) for lang in LANGS},
            "span_s": list(e.span_s) if e.span_s else None,
        }
        for e in verdict.evidence
    ]
    return {
        "headline": _both(lambda lang: headline(verdict, lang)),
        "topic": _both(lambda lang: topic_name(verdict.topic, lang)),
        "robot_probability": format_robot_probability(verdict),
        "threshold": format_threshold_percent(verdict.threshold),
        "person_threshold": format_threshold_percent(
            verdict.threshold if verdict.person_threshold is None else verdict.person_threshold
        ),
        "caller_certainty": verdict.caller_certainty,
        "caller_side": _both(lambda lang: caller_side(verdict, lang)) if side else None,
        "tones": _both(lambda lang: tones_note(verdict, lang)) if verdict.tones else None,
        "queue": _both(lambda lang: queue_note(verdict, lang)) if queued else None,
        "speakers": list(verdict.transcript_speakers),
        "reasons": reasons,
        "highlights": [
            {"span_s": list(h.span_s), "name": h.name, "caller_segments": list(h.caller_segments)}
            for h in highlight_spans(verdict)
        ],
    }


def warnings_json(stored: str | None) -> list[dict[str, Any]]:
    """The public form of stored warnings: code, params and the sentence in both languages."""
    out = []
    for w in json.loads(stored) if stored else []:
        en, zh = WARNINGS.get(w["code"], (w["code"], w["code"]))
        message = {"en": en.format(**w["params"]), "zh": zh.format(**w["params"])}
        out.append({"code": w["code"], "params": w["params"], "message": message})
    return out
