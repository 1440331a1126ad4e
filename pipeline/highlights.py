"""Which parts of a call to highlight for a verdict (issue 15).

A renderer (the web page's waveform and transcript, the PDF figure) shades the spans returned
by :func:`highlight_spans`: the spans of the evidence that pushed towards the verdict's side
with real weight. Not every span of the verdict: a cue whose span covers nearly the whole call
(the text model reads the whole transcript) points at nothing in particular, weak cues do not
decide anything, and the callee's lines are never the caller's fault.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.types import Evidence, Label, Verdict

MIN_WEIGHT = 0.5  # |robot-logit| a cue needs to be highlighted (a third of a strong cue)
MAX_CALL_FRACTION = 0.5  # a span longer than this share of the call is no place in it


@dataclass(frozen=True, slots=True)
class Highlight:
    """One part of the call to shade, and why."""

    span_s: tuple[float, float]  # start, end in seconds, on the caller's side of the call
    name: str  # the Evidence.name that put it there
    weight: float  # that evidence's signed robot-logit contribution
    caller_segments: tuple[int, ...]  # indices into verdict.transcript.segments it overlaps


def highlight_spans(verdict: Verdict) -> tuple[Highlight, ...]:
    """The spans to highlight for ``verdict``, in time order.

    Parameters
    ----------
    verdict : Verdict

    Returns
    -------
    tuple of Highlight
        One per evidence that points to the verdict's side (positive weight for a robot,
        negative for a live person) by at least :data:`MIN_WEIGHT`, has a span, and whose span
        covers at most :data:`MAX_CALL_FRACTION` of the call. Spans of text evidence are cut to
        the caller's transcript segments they overlap (text cues can start on a callee turn);
        acoustic spans are the caller channel's by construction (a digital silence lies between
        the caller's sentences). ``caller_segments`` says which caller lines to mark: a
        renderer marks those, never a line of ``other_party_transcript`` nor one a mono
        recording's split gives the callee (:attr:`~pipeline.types.Verdict.transcript_speakers`).
    """
    side = 1.0 if verdict.label is Label.ROBOT else -1.0
    duration_s = max(verdict.audio.duration_s, 1e-9)
    segments = verdict.transcript.segments
    said_by_caller = [who == "caller" for who in verdict.transcript_speakers]
    out = []
    for e in verdict.evidence:
        if e.span_s is None or side * e.weight < MIN_WEIGHT:
            continue
        start_s, end_s = e.span_s
        if end_s - start_s > MAX_CALL_FRACTION * duration_s:
            continue
        overlapping = tuple(
            i
            for i, s in enumerate(segments)
            if said_by_caller[i] and s.start_s < end_s and s.end_s > start_s
        )
        if _is_text(e):
            if not overlapping:
                continue
            start_s = max(start_s, min(segments[i].start_s for i in overlapping))
            end_s = min(end_s, max(segments[i].end_s for i in overlapping))
        out.append(Highlight((start_s, end_s), e.name, e.weight, overlapping))
    return tuple(sorted(out, key=lambda h: (h.span_s, h.name)))


def _is_text(evidence: Evidence) -> bool:
    return evidence.source == "text"
