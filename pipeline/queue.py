"""What a call centre plays on the caller channel while you wait: queue announcements and hold
music (issue 13).

A call to (or from) a call centre may hold a queue: "Thank you for holding, your call is
important to us, please stay on the line", played again every half minute between hold music,
before a live agent answers. That audio is a recording, so the replay cue calls it robotic, and
its words read like an IVR to the text heads; but it is not the caller's voice. Judged with it,
a live agent's call was called a robot (a probe of 16 test people with a flite hold message
played twice: every one, docs/evaluation_calls.md, "Queue announcements"); hold music that loops
with no announcement did the same to every one of 16 test people.

A stretch is set aside as a queue announcement only when both hold:

- the caller channel **replays** it (``pipeline.acoustic.find_repeats``: the same audio twice,
  which no person produces), and
- its words are **mostly queue phrasing** (``lexicon.QUEUE_ANNOUNCEMENT``: at least
  :data:`QUEUE_MIN_SHARE` of its characters) in one of its two plays.

A stretch is set aside as hold music when the caller channel replays it and the ASR heard no
words in either play, nor in it decoded on its own, while it follows the caller's other speech
well (:func:`find_hold_music`): replayed sound that is not speech.

An agent who says "please hold while I check" is never set aside (no replay), and a robot's
replayed pitch keeps its weight (its words are a pitch, not a queue). What is set aside leaves
the judged transcript (text heads), every acoustic cue and the synthetic-voice head; the verdict
says so in a reason of weight 0. A recording with no speech besides it is judged as it is
(:func:`pipeline.detector.Detector` checks): a queue message with nobody after it is a machine.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from pipeline import lexicon as lx
from pipeline.text_cues import normalize_text
from pipeline.types import ANALYSIS_RATE_HZ, Repeat, Segment, Transcript
from pipeline.vad import subtract

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
# Words are counted as spoken: a number by its digits, Chinese by its characters (Whisper writes
# a read-out number as one word: "1704", 1.4 s, is four words said).
MAX_STRAY_WORDS = 2
STRAY_S = 2.0
# The ASR's silence in a loop says it is no speech only when it hears the caller's other speech
# well: at least this many words said (``_spoken``) per second of the channel's other voiced
# sound. People with hold music inserted: 1.1-6.3 (median 3.1); the simulated robot calls
# whose replayed prompts the ASR missed (slow digit prompts, a diphone TTS, on mono mixes):
# 0.09-1.05. Set at a slow speaking rate, after those were seen (docs/evaluation_calls.md,
# "Hold music").
MIN_HEARD_RATE = 1.5
# A called line's menu opens the recording: the last key it offers ends within this (the
# longest menu of bench/line_menu_agents.py, with a recording notice and an extension prompt,
# took 15 s; set well beyond it, not tuned).
MENU_WITHIN_S = 60.0

_CJK = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def _compiled(phrases: Sequence[str]) -> tuple[re.Pattern[str], ...]:
    """Phrases matched on ``normalize_text``'s output, English ones as whole words."""
    return tuple(
        re.compile(p if _CJK.search(p) else f"(?<![a-z0-9])(?:{p})(?![a-z0-9])") for p in phrases
    )


_PHRASES = _compiled(lx.QUEUE_ANNOUNCEMENT)
_INBOUND = _compiled(lx.INBOUND_GREETING)
_MENU = _compiled(lx.LINE_MENU)


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


_SAID_ONE_BY_ONE = re.compile(f"[0-9{_CJK.pattern[1:-1]}]")


def _spoken(word: str) -> int:
    """How many words ``word`` is when said: its digits and Chinese characters, else one."""
    return max(1, len(_SAID_ONE_BY_ONE.findall(word)))


def _joined(units: Sequence[_Unit], language: str) -> str:
    return ("" if language == "zh" else " ").join(u.text for u in units)


def union(spans: Sequence[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    """``spans`` as disjoint stretches in order (overlapping or touching ones joined)."""
    out: list[tuple[float, float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return tuple(out)


def _union_s(spans: Sequence[tuple[float, float]]) -> float:
    """Seconds covered by ``spans``, overlaps counted once."""
    return sum(b - a for a, b in union(spans))


class _Heard:
    """The transcript's words placed in time, to ask what was heard inside a stretch."""

    def __init__(self, transcript: Transcript) -> None:
        self.language = transcript.language
        self.units = [u for s in transcript.segments for u in _units(s)]

    def inside(self, play: tuple[float, float], margin: float = 0.0) -> list[_Unit]:
        return [u for u in self.units if u.inside(play, margin)]

    def queue_worded(self, play: tuple[float, float]) -> bool:
        """Whether the words within :data:`WORD_MARGIN_S` of ``play`` are mostly queue phrasing."""
        words = self.inside(play, WORD_MARGIN_S)
        return bool(words) and queue_share(_joined(words, self.language)) >= QUEUE_MIN_SHARE

    def wordless(self, play: tuple[float, float], known: set[_Unit]) -> bool:
        """Whether ``play`` holds no words besides ``known`` ones (:data:`MAX_STRAY_WORDS` at
        most, one per :data:`STRAY_S`)."""
        stray = sum(_spoken(u.text) for u in set(self.inside(play)) - known)
        return stray <= MAX_STRAY_WORDS and stray * STRAY_S <= play[1] - play[0]


@dataclass(frozen=True, slots=True)
class QueueAnnouncement:
    """What :func:`find_announcement` sets aside."""

    spans: tuple[tuple[float, float], ...]  # the plays of its replays, in order
    replays: int  # replays of announcement words (a play count is this plus one)
    quote: str  # the words of its first play
    start_s: float  # where its first play starts
    words: frozenset[_Unit]  # the words heard in its plays (within WORD_MARGIN_S)

    @property
    def seconds(self) -> float:
        """Seconds of audio set aside (the union of the spans)."""
        return _union_s(self.spans)


@dataclass(frozen=True, slots=True)
class HoldMusic:
    """What :func:`find_hold_music` sets aside: looping sound with no words in it."""

    spans: tuple[tuple[float, float], ...]  # the loops' plays, each grown to the nearest words
    loops: int  # replays found in it
    start_s: float

    @property
    def seconds(self) -> float:
        """Seconds of audio set aside (the union of the spans)."""
        return _union_s(self.spans)


@dataclass(frozen=True, slots=True)
class LineMenu:
    """What :func:`find_line_menu` sets aside: the called line's recorded menu."""

    span: tuple[float, float]  # its first word's start to its last word's end
    quote: str  # its words

    @property
    def seconds(self) -> float:
        return self.span[1] - self.span[0]


def find_line_menu(transcript: Transcript) -> LineMenu | None:
    """The recorded menu of the line that was called, opening the recording, or None.

    The menu runs from the first segment to the last one that offers a key to press
    (``lexicon.LINE_MENU``) and ends within :data:`MENU_WITHIN_S`, provided that those
    segments thank the caller for calling (or welcome them: ``INBOUND_GREETING``) and
    something is said after them; what else they say (a recording notice, "if this is an
    emergency, hang up") goes with them. Played once, it is no replay, so the queue rule cannot
    find it; a dialer's own "press 1" does not thank you for calling, and an agent's "thank you
    for calling" offers no key. (A first version also wanted the segments to be mostly such
    phrasing; a menu with a recording notice and an extension prompt fell under it:
    docs/evaluation_calls.md, "The called line's menu".)
    """
    segments = transcript.segments
    found = None
    for k, segment in enumerate(segments[:-1]):  # something must be said after it
        if segment.end_s > MENU_WITHIN_S:
            break
        if not any(p.search(normalize_text(segment.text)) for p in _MENU):
            continue
        units = [u for s in segments[: k + 1] for u in _units(s)]
        quote = _joined(units, transcript.language)
        if any(p.search(normalize_text(quote)) for p in _INBOUND):
            found = LineMenu((units[0].start_s, units[-1].end_s), quote)
    return found


def find_announcement(
    transcript: Transcript, repeats: Sequence[Repeat]
) -> QueueAnnouncement | None:
    """The recorded queue announcement of a call, or None.

    Words are placed by their middle (word times; a segment's where the ASR gave none); those
    read for the phrasing within :data:`WORD_MARGIN_S` of a play. A replay is an
    announcement's when the words heard in one of its plays (at least one) are mostly queue
    phrasing: the two plays are the same audio, so the better heard one says what both say (the
    ASR may mishear a word of the other).
    """
    heard = _Heard(transcript)
    spoken = [r for r in repeats if heard.queue_worded(r.first_s) or heard.queue_worded(r.again_s)]
    if not spoken:
        return None
    first = min(spoken, key=lambda r: r.first_s)
    play = first.first_s if heard.queue_worded(first.first_s) else first.again_s
    plays = sorted({p for r in spoken for p in (r.first_s, r.again_s)})
    return QueueAnnouncement(
        spans=tuple(plays),
        replays=len(spoken),
        quote=_joined(heard.inside(play, WORD_MARGIN_S), transcript.language),
        start_s=first.first_s[0],
        words=frozenset(u for p in plays for u in heard.inside(p, WORD_MARGIN_S)),
    )


def find_hold_music(
    transcript: Transcript,
    repeats: Sequence[Repeat],
    intervals: Sequence[tuple[float, float]],
    *,
    announcement: QueueAnnouncement | None = None,
    hears: Callable[[tuple[float, float]], bool] | None = None,
) -> HoldMusic | None:
    """The looping sound with no words on the caller channel (hold music), or None.

    A replay whose two plays hold no words (besides the announcement's, and
    :data:`MAX_STRAY_WORDS` stray ones: Whisper stretches the first word after a pause back
    into it) replays sound that is not speech: a person's voice is never replayed, and a
    dialler's replayed prompt has words in it. The announcement's own replays are not music.
    Whisper may also skip a replayed prompt in a long window (a prompt said again, or under the
    other party's voice), so ``hears(stretch)``, when given, decodes each stretch of such plays
    on its own: a replay goes on counting when words are heard in either of its plays (hold
    music gives none). Each play grows inside the voiced stretch of ``intervals`` (the VAD's)
    it lies in, up to the nearest words (:func:`_grown`): the rest of the music, where the loop
    did not come round again, goes with it. None unless the transcript holds
    :data:`MIN_HEARD_RATE` words a second of the rest of ``intervals``: an ASR that hears
    little of the caller's speech (a voice it cannot follow) hears nothing in a replayed prompt
    either.
    """
    heard = _Heard(transcript)
    known, told = (set(), set()) if announcement is None else (
        set(announcement.words), set(announcement.spans))  # fmt: skip
    loops = [
        r
        for r in repeats
        if not {r.first_s, r.again_s} <= told
        and heard.wordless(r.first_s, known)
        and heard.wordless(r.again_s, known)
    ]
    if hears is not None and loops:
        stretches = union([p for r in loops for p in (r.first_s, r.again_s)])
        spoken = [s for s in stretches if hears(s)]

        def silent(play: tuple[float, float]) -> bool:
            return not any(a <= play[0] and play[1] <= b for a, b in spoken)

        loops = [r for r in loops if silent(r.first_s) and silent(r.again_s)]
    if not loops:
        return None
    plays = {p for r in loops for p in (r.first_s, r.again_s)}
    around = {_grown(play, iv, heard, plays) for iv in intervals for play in plays
              if min(iv[1], play[1]) > max(iv[0], play[0])}  # fmt: skip
    rest = subtract(intervals, sorted(plays | around))
    said = sum(_spoken(u.text) for u in heard.units if any(u.inside(iv) for iv in rest))
    if said < MIN_HEARD_RATE * sum(b - a for a, b in rest):
        return None  # the ASR hears little of the caller: its silence in the loop means little
    return HoldMusic(
        spans=tuple(sorted(plays | around)),
        loops=len(loops),
        start_s=min(r.first_s[0] for r in loops),
    )


def _grown(
    play: tuple[float, float],
    interval: tuple[float, float],
    heard: _Heard,
    plays: set[tuple[float, float]],
) -> tuple[float, float]:
    """``play`` grown inside ``interval`` (a voiced stretch it overlaps) to the words nearest it
    on either side, or to the stretch's ends where there are none: the rest of the music, where
    the loop did not come round again, and the line's sound between it and the speech, which
    the energy VAD joins to the speech when it is loud enough. Words inside a play (strays) do
    not stop it."""
    words = [u for u in heard.inside(interval) if not any(u.inside(p) for p in plays)]
    start = max([u.end_s for u in words if u.inside((-np.inf, play[0]))] + [interval[0]])
    end = min([u.start_s for u in words if u.inside((play[1], np.inf))] + [interval[1]])
    return min(start, play[0]), max(end, play[1])


def hears_words(
    transcribe: Callable[[np.ndarray], Transcript],
    samples: np.ndarray,
    span: tuple[float, float],
) -> bool:
    """Whether the ASR (``transcribe``) hears any word in ``span`` of ``samples`` (16 kHz)
    decoded on its own. (With a second of the recording either side, the words of the speech
    around hold music were heard inside it: a message's end ran on into its loop.)"""
    piece = samples[int(span[0] * ANALYSIS_RATE_HZ) : int(span[1] * ANALYSIS_RATE_HZ)]
    return bool(transcribe(piece).segments)


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


def judged_transcript(
    transcript: Transcript,
    announcement: QueueAnnouncement | None,
    music: HoldMusic | None,
    menu: LineMenu | None = None,
) -> Transcript:
    """What the text heads judge: ``transcript`` without the announcement's words (those within
    :data:`WORD_MARGIN_S` of its plays, as they were read), the words inside the hold music and
    the line's menu (by their middle alone)."""
    if announcement is not None:
        transcript = without_spans(transcript, announcement.spans, margin=WORD_MARGIN_S)
    spans = [*(music.spans if music else ()), *((menu.span,) if menu else ())]
    return without_spans(transcript, spans) if spans else transcript


def muted(samples: np.ndarray, spans: Sequence[tuple[float, float]]) -> np.ndarray:
    """A copy of ``samples`` (16 kHz) with ``spans`` silenced; the timeline kept."""
    out = np.array(samples, dtype=np.float32, copy=True)
    for a, b in spans:
        out[max(0, int(a * ANALYSIS_RATE_HZ)) : max(0, int(b * ANALYSIS_RATE_HZ))] = 0.0
    return out
