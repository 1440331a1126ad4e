"""Recorded queue announcements on the caller channel (issue 13).

A call to (or from) a call centre may hold a queue: "Thank you for holding, your call is
important to us, please stay on the line", played again every half minute between hold music,
before a live agent answers. That audio is a recording, so the replay cue calls it robotic, and
its words read like an IVR to the text heads; but it is not the caller's voice. Judged with it,
a live agent's call was called a robot (a probe of 16 test people with a flite hold message
played twice: every one, docs/evaluation_calls.md, "Queue announcements").

A stretch is set aside as a queue announcement only when both hold:

- the caller channel **replays** it (``pipeline.acoustic.find_repeats``: the same audio twice,
  which no person produces), and
- its words are **mostly queue phrasing** (``lexicon.QUEUE_ANNOUNCEMENT``: at least
  :data:`QUEUE_MIN_SHARE` of its characters), in every transcript segment of both plays.

An agent who says "please hold while I check" is never set aside (no replay), and a robot's
replayed pitch keeps its weight (its words are a pitch, not a queue). What is set aside leaves
the judged transcript (text heads), the replay cue and the synthetic-voice head; the verdict says
so in a reason of weight 0. A recording with no speech besides the announcement is judged as it
is (:func:`pipeline.detector.Detector` checks): a queue message with nobody after it is a machine.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline import lexicon as lx
from pipeline.text_cues import normalize_text
from pipeline.types import ANALYSIS_RATE_HZ, Repeat, Segment, Transcript

QUEUE_MIN_SHARE = 0.5  # share of a play's characters that queue phrases must cover
# A replay's play is a voiced chunk of the energy VAD; Whisper's word times differ from it by a
# few hundred ms (the first word of a flite hold message began 0.2 s before its chunk), so the
# words read to tell whether a play is an announcement are those whose middle lies within this
# margin of it. Whether a play holds *other* words, and which words leave the judged transcript,
# go by the middle alone: Whisper stretches the first word after a pause back into it (a
# person's "4" at 31.4-32.9 s after hold music that ended at 32.3 s).
WORD_MARGIN_S = 0.5
# A play holding at most this many words that are not the announcement's, at most one per
# STRAY_S of it, counts as holding none: Whisper may put the first word after the hold (or of the
# next announcement play) at the start of the music before it ("Thank" at 20.2 s, 10 s before the
# announcement it opens). The rate keeps a short replayed prompt ("Press one.", 1.5 s) counting.
MAX_STRAY_WORDS = 2
STRAY_S = 2.0

_CJK = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_PHRASES = tuple(
    re.compile(p if _CJK.search(p) else f"(?<![a-z0-9])(?:{p})(?![a-z0-9])")
    for p in lx.QUEUE_ANNOUNCEMENT
)


def queue_share(text: str) -> float:
    """The share of ``text``'s characters (normalised, spaces left out) inside queue phrases."""
    norm = normalize_text(text)
    covered = np.zeros(len(norm), dtype=bool)
    for pattern in _PHRASES:
        for m in pattern.finditer(norm):
            covered[m.start() : m.end()] = True
    chars = np.asarray([c != " " for c in norm], dtype=bool)
    return float((covered & chars).sum() / chars.sum()) if chars.any() else 0.0


@dataclass(frozen=True, slots=True)
class _Unit:
    """A word of the transcript (a whole segment where the ASR gave no word times)."""

    start_s: float
    end_s: float
    text: str

    def inside(self, span: tuple[float, float], margin: float = 0.0) -> bool:
        middle = (self.start_s + self.end_s) / 2
        return span[0] - margin <= middle <= span[1] + margin


def _units(segment: Segment) -> list[_Unit]:
    if segment.words:
        return [_Unit(w.start_s, w.end_s, w.text) for w in segment.words]
    return [_Unit(segment.start_s, segment.end_s, segment.text)]


def _joined(units: Sequence[_Unit], language: str) -> str:
    return ("" if language == "zh" else " ").join(u.text for u in units)


@dataclass(frozen=True, slots=True)
class QueueAnnouncement:
    """What :func:`find_announcement` sets aside."""

    spans: tuple[tuple[float, float], ...]  # the set-aside replays' plays, in order
    announced: tuple[tuple[float, float], ...]  # those whose words are the announcement's
    replays: int  # replays of announcement words (a play count is this plus one)
    quote: str  # the words of its first play
    start_s: float  # where its first play starts

    @property
    def seconds(self) -> float:
        """Seconds of audio set aside (the union of the spans)."""
        total, end = 0.0, -np.inf
        for a, b in self.spans:
            total += max(0.0, b - max(a, end))
            end = max(end, b)
        return total


def find_announcement(
    transcript: Transcript, repeats: Sequence[Repeat]
) -> QueueAnnouncement | None:
    """The recorded queue announcement of a call, or None.

    Words are placed by their middle (word times; a segment's where the ASR gave none); those
    read for the phrasing within :data:`WORD_MARGIN_S` of a play. A replay
    is an announcement's when the words heard in one of its plays (at least one) are mostly
    queue phrasing: the two plays are the same audio, so the better heard one says what both
    say (the ASR may mishear a word of the other). With one found, every replay whose plays
    hold no other words (:data:`MAX_STRAY_WORDS` at most, one per :data:`STRAY_S`) is set aside
    with it: the hold music
    between the announcements loops too, and Whisper hears no words in it.
    """
    units = [u for s in transcript.segments for u in _units(s)]

    def heard(play: tuple[float, float], margin: float = 0.0) -> list[_Unit]:
        return [u for u in units if u.inside(play, margin)]

    def queue_worded(play: tuple[float, float]) -> bool:
        words = heard(play, WORD_MARGIN_S)
        return bool(words) and queue_share(_joined(words, transcript.language)) >= QUEUE_MIN_SHARE

    spoken = [r for r in repeats if queue_worded(r.first_s) or queue_worded(r.again_s)]
    if not spoken:
        return None
    words = {
        u for r in spoken for play in (r.first_s, r.again_s) for u in heard(play, WORD_MARGIN_S)
    }

    def wordless(play: tuple[float, float]) -> bool:
        stray = len(set(heard(play)) - words)
        return stray <= MAX_STRAY_WORDS and stray * STRAY_S <= play[1] - play[0]

    aside = [r for r in repeats if wordless(r.first_s) and wordless(r.again_s)]
    first = min(spoken, key=lambda r: r.first_s)
    play = first.first_s if queue_worded(first.first_s) else first.again_s
    return QueueAnnouncement(
        spans=tuple(sorted({p for r in aside for p in (r.first_s, r.again_s)})),
        announced=tuple(sorted({p for r in spoken for p in (r.first_s, r.again_s)})),
        replays=len(spoken),
        quote=_joined(heard(play, WORD_MARGIN_S), transcript.language),
        start_s=first.first_s[0],
    )


def set_aside(repeats: Sequence[Repeat], announcement: QueueAnnouncement) -> list[Repeat]:
    """The replays of ``repeats`` that are not part of ``announcement``."""
    spans = set(announcement.spans)
    return [r for r in repeats if not (r.first_s in spans and r.again_s in spans)]


def without_spans(
    transcript: Transcript, spans: Sequence[tuple[float, float]], *, margin: float = 0.0
) -> Transcript:
    """``transcript`` without the words inside ``spans`` (by their middle, within ``margin``); a
    segment keeps its other words (its text rebuilt from them) and goes when none is left."""
    kept = []
    for segment in transcript.segments:
        units = _units(segment)
        gone = [any(u.inside(span, margin) for span in spans) for u in units]
        rest = [u for u, g in zip(units, gone, strict=True) if not g]
        if len(rest) == len(units):
            kept.append(segment)
        elif rest:
            words = segment.words and tuple(
                w for w, g in zip(segment.words, gone, strict=True) if not g
            )
            kept.append(dataclasses.replace(
                segment, start_s=rest[0].start_s, end_s=rest[-1].end_s,
                text=_joined(rest, transcript.language), words=words))  # fmt: skip
    return dataclasses.replace(transcript, segments=tuple(kept))


def judged_transcript(transcript: Transcript, announcement: QueueAnnouncement) -> Transcript:
    """What the text heads judge: ``transcript`` without the announcement's words (those within
    :data:`WORD_MARGIN_S` of its plays, as they were read) and the words inside the other
    set-aside plays (by their middle alone)."""
    told = without_spans(transcript, announcement.announced, margin=WORD_MARGIN_S)
    return without_spans(told, announcement.spans)


def muted(samples: np.ndarray, spans: Sequence[tuple[float, float]]) -> np.ndarray:
    """A copy of ``samples`` (16 kHz) with ``spans`` silenced; the timeline kept."""
    out = np.array(samples, dtype=np.float32, copy=True)
    for a, b in spans:
        out[max(0, int(a * ANALYSIS_RATE_HZ)) : max(0, int(b * ANALYSIS_RATE_HZ))] = 0.0
    return out


def outside(
    intervals: Sequence[tuple[float, float]], spans: Sequence[tuple[float, float]]
) -> float:
    """Seconds of ``intervals`` outside ``spans``."""
    total = 0.0
    for a, b in intervals:
        inside = sum(max(0.0, min(b, e) - max(a, s)) for s, e in spans)
        total += max(0.0, b - a - inside)
    return total
