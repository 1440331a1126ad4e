"""Highlighted spans (issue 15): the evidence that decided, where it is, on the caller's side."""

from __future__ import annotations

import dataclasses

from pipeline.highlights import MIN_WEIGHT, highlight_spans
from pipeline.types import Evidence, Label
from tests.factories import make_transcript
from tests.pipeline.test_report import make_verdict


def evidence(
    name: str, weight: float, span: tuple[float, float] | None, source: str = "acoustic"
) -> Evidence:
    return Evidence(source, name, 1.0, weight, f"{name}.", span)  # type: ignore[arg-type]


def test_only_strong_evidence_for_the_verdicts_side_with_a_local_span() -> None:
    verdict = dataclasses.replace(
        make_verdict(label=Label.ROBOT),
        evidence=(
            evidence("replayed_speech_s", 2.0, (6.0, 9.0), "structure"),
            evidence("robot_script_text", 2.5, (0.5, 60.0), "text"),  # nearly the whole call
            evidence("pause_cv", MIN_WEIGHT / 2, (3.0, 5.0), "structure"),  # too weak to decide
            evidence("disfluency_rate", -1.2, (10.0, 12.0), "text"),  # the other side
            evidence("digital_silence_s", 1.5, None, "structure"),  # nowhere in particular
        ),
    )
    (h,) = highlight_spans(verdict)
    assert h.name == "replayed_speech_s" and h.span_s == (6.0, 9.0)
    assert h.caller_segments == (1,)


def test_a_live_person_verdict_highlights_the_human_evidence() -> None:
    verdict = dataclasses.replace(
        make_verdict(label=Label.HUMAN),
        evidence=(
            evidence("replayed_speech_s", 0.8, (6.0, 9.0), "structure"),
            evidence("disfluency_rate", -1.2, (0.5, 3.0), "text"),
        ),
    )
    assert [h.name for h in highlight_spans(verdict)] == ["disfluency_rate"]


def test_text_spans_never_cover_the_callees_lines() -> None:
    caller = make_transcript(
        "zh", (0.5, 3.0, "您好"), (6.0, 9.0, "按1了解详情"), language_probability=0.9
    )
    verdict = dataclasses.replace(
        make_verdict(label=Label.ROBOT, stereo=True),
        transcript=caller,
        evidence=(evidence("no_reaction_to_callee", 1.5, (3.4, 9.0), "text"),),
    )
    (h,) = highlight_spans(verdict)
    callee = verdict.other_party_transcript
    assert callee is not None and callee.segments[0].end_s <= h.span_s[0]  # 3.4-4.0 left out
    assert h.span_s == (6.0, 9.0) and h.caller_segments == (1,)


def test_a_mono_call_split_in_two_never_marks_the_callee_s_lines() -> None:
    """A text cue over both lines of a mono call whose split gives the first to the callee
    marks and covers only the caller's line."""
    verdict = dataclasses.replace(
        make_verdict(label=Label.ROBOT),
        caller_turns=((6.0, 9.0),),
        evidence=(evidence("scripted_phrase", 1.5, (0.5, 9.0), "text"),),
    )
    (h,) = highlight_spans(verdict)
    assert h.caller_segments == (1,) and h.span_s == (6.0, 9.0)
