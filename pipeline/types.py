"""Typed, frozen records that flow between the stages, and the model protocols.

Only :class:`Audio` holds an array; every other record has plain float/str/tuple fields so it is
hashable and serialises with :func:`to_jsonable` without custom code.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

ANALYSIS_RATE_HZ = 16_000  # every stage after decoding sees mono float32 at this rate


class Label(enum.StrEnum):
    ROBOT = "electronic_sales_robot"
    HUMAN = "human_sales_pitch"


CallerCertainty = Literal["robot", "person", "uncertain"]
Speaker = Literal["caller", "callee"]


@dataclass(frozen=True, slots=True)
class AudioInfo:
    """What the original recording was, before we resampled it."""

    name: str  # file name as given by the user (never a path we trust)
    sha256: str  # of the original bytes, hex
    size_bytes: int
    container: str  # demuxer name, e.g. "wav", "mp3", "amr"
    codec: str  # decoder name, e.g. "pcm_s16le", "amr_nb"
    sample_rate_hz: int  # original rate
    channels: int  # original channel count (1 or 2)
    duration_s: float
    caller_channel: int = 0  # index of the channel we judged as the caller
    caller_channel_reason: str = "mono recording"
    caller_channel_reason_zh: str = ""  # the same in Chinese; "" in verdicts before schema 5
    # dB the decoded recording was raised by before analysis, because it was very quiet
    # (AudioLimits.quiet_dbfs); 0: analysed at its recorded level (and in verdicts before schema 8)
    gain_db: float = 0.0
    # mains frequency (Hz) of a hum notched out of the recording before analysis (pipeline.hum);
    # 0: none (and in verdicts before schema 9)
    hum_hz: float = 0.0


@dataclass(frozen=True, slots=True)
class Audio:
    """Decoded recording: ``samples`` shape (channels, n), float32 in [-1, 1], 16 kHz."""

    info: AudioInfo
    samples: np.ndarray = dataclasses.field(compare=False, hash=False, repr=False)

    @property
    def sample_rate_hz(self) -> int:
        return ANALYSIS_RATE_HZ

    @property
    def n_channels(self) -> int:
        return int(self.samples.shape[0])

    def channel(self, index: int) -> np.ndarray:
        """One channel, shape (n,), float32."""
        return np.asarray(self.samples[index])

    def caller(self) -> np.ndarray:
        return self.channel(self.info.caller_channel)

    def other_party(self) -> np.ndarray | None:
        """The callee's channel of a stereo recording, or None for mono."""
        if self.n_channels < 2:
            return None
        return self.channel(1 - self.info.caller_channel)


@dataclass(frozen=True, slots=True)
class Word:
    start_s: float
    end_s: float
    text: str
    probability: float


@dataclass(frozen=True, slots=True)
class Segment:
    start_s: float
    end_s: float
    text: str  # normalised (Simplified Chinese), stripped
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float  # of the decoded window's text (Whisper's), not this segment's
    words: tuple[Word, ...] = ()
    is_repeat: bool = False  # its audio replays earlier audio of the call (kept, issue 17)


@dataclass(frozen=True, slots=True)
class Transcript:
    language: str  # ISO 639-1, one of the configured languages
    language_probability: float
    segments: tuple[Segment, ...]
    dropped_segments: int = 0  # removed by the hallucination guard
    backend: str = ""  # "faster" | "openai" | "fake"

    @property
    def text(self) -> str:
        joiner = "" if self.language == "zh" else " "
        return joiner.join(s.text for s in self.segments).strip()


EvidenceSource = Literal["text", "acoustic", "structure"]
Param = str | float | tuple[str, ...]  # a message parameter: a figure, a word, quoted phrases


@dataclass(frozen=True, slots=True)
class Evidence:
    """One cue's contribution, with its sentence in English and Chinese (issues 14, 15).

    ``code`` and ``params`` name a message of ``pipeline.messages.CATALOGUE``; the sentences
    rendered from them are stored too (``detail`` English, ``detail_zh`` Chinese) so that the
    JSON verdict carries both. ``params`` also holds the technical figures (log-odds, pooling,
    correlations) that the sentences leave out. Build with ``pipeline.messages.make_evidence``;
    read a sentence with ``pipeline.messages.evidence_sentence``. Evidence from before the
    catalogue (or built by hand) has ``code == ""`` and only ``detail``.
    """

    source: EvidenceSource
    name: str  # stable id: "scripted_phrase", "pitch_flatness", ...
    value: float  # the measurement; unit in `name` or `detail`
    weight: float  # signed contribution to the robot logit (positive = robot)
    detail: str  # one plain sentence for the report, English
    span_s: tuple[float, float] | None = None  # where in the call, seconds
    code: str = ""  # message code in pipeline.messages.CATALOGUE, "" = free text in `detail`
    params: tuple[tuple[str, Param], ...] = ()  # (name, value) sorted by name
    detail_zh: str = ""  # the same sentence in Chinese, "" = none (read `detail`)


@dataclass(frozen=True, slots=True)
class TextScore:
    """What the text branch concluded from the caller's transcript."""

    sales_probability: float  # 0..1: is this a sales pitch at all
    topic: str  # real_estate | insurance | loan | car | education | other | scam | none
    topic_scores: tuple[tuple[str, float], ...]  # (topic, score), best first
    evidence: tuple[Evidence, ...]


@dataclass(frozen=True, slots=True)
class AcousticCues:
    evidence: tuple[Evidence, ...]
    speech_s: float  # seconds of detected speech on the caller channel
    repeats: tuple[Repeat, ...] = ()  # the replays the replayed_speech_s cue found


@dataclass(frozen=True, slots=True)
class Repeat:
    """A voiced chunk of the caller channel that replays an earlier one."""

    first_s: tuple[float, float]
    again_s: tuple[float, float]
    correlation: float  # log-mel correlation, 1.0 = identical


@dataclass(frozen=True, slots=True)
class SyntheticVoiceScore:
    """What the trained synthetic-voice head concluded about one channel (``models/synth_head``)."""

    log_odds: float  # calibrated robot log-odds at even prior, pooled over the windows
    probability: float  # sigmoid(log_odds)
    windows: tuple[tuple[float, float, float], ...]  # (start_s, end_s, log_odds) per window
    span_s: tuple[float, float]  # the most robot-like window
    pooling: str  # how the windows were pooled, e.g. "q0.9 of 4 window(s)"


@dataclass(frozen=True, slots=True)
class ModelInfo:
    role: str  # "asr", "text", "fusion"
    model_id: str
    sha256: str


@dataclass(frozen=True, slots=True)
class Provenance:
    package_version: str
    models: tuple[ModelInfo, ...]
    config_hash: str
    fusion_method: str  # e.g. "hand-set weights (untrained), see pipeline/fuse.py"
    libraries: tuple[tuple[str, str], ...]  # (distribution, version)
    analysed_at_utc: str  # ISO 8601
    # What the ASR transcribed: "decoded" (the caller's channel as decoded, 16 kHz; since
    # 2026-12-05) or "call_channel" (the G.711 copy the head scores); "" = not recorded (older).
    asr_input: str = ""


MIN_SALES_UNITS = 8  # fewer caller words (or Chinese characters) than this: too little said
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_UNIT_RE = re.compile(f"[{_CJK}]|[^\\W_{_CJK}]+")


def spoken_units(transcript: Transcript) -> int:
    """Words plus Chinese characters in a transcript (a Chinese character counts as a word)."""
    return len(_UNIT_RE.findall(transcript.text))


Turns = tuple[tuple[float, float], ...]  # speech intervals (start_s, end_s), sorted


def overlap_s(start_s: float, end_s: float, turns: Sequence[tuple[float, float]]) -> float:
    """Seconds of ``[start_s, end_s]`` inside ``turns`` (non-overlapping intervals)."""
    return float(sum(max(0.0, min(end_s, b) - max(start_s, a)) for a, b in turns))


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer to two questions (issue 13): who called, and what the call was.

    ``label`` says who: an electronic sales robot or a live person (``human_sales_pitch``, the
    value kept for compatibility, does *not* mean a pitch was heard); ``caller_certainty`` says
    whether that is decided or the probability lies in the uncertain band below ``threshold``.
    ``sales_pitch_heard`` says what: ``sales_probability >= sales_threshold``; when it is False,
    ``too_little_said`` tells "no pitch heard" from "too little said to tell" (fewer than
    :data:`MIN_SALES_UNITS` words). All three are derived, so they never disagree with the
    probability; :meth:`to_dict` writes them and :meth:`from_dict` ignores them.
    ``pipeline.messages.headline`` renders the answer.
    """

    label: Label
    robot_probability: float  # 0..1 after fusion
    threshold: float
    sales_probability: float
    topic: str
    evidence: tuple[Evidence, ...]  # strongest |weight| first
    transcript: Transcript  # the caller's channel
    other_party_transcript: Transcript | None  # the callee's channel (stereo only)
    audio: AudioInfo
    provenance: Provenance
    sales_threshold: float = 0.5  # sales_probability >= this: a sales pitch was heard
    # robot_probability below this: a live person; from it up to `threshold`: uncertain (the
    # caller question is left open, issue 13); None: no band (verdicts before schema 3).
    person_threshold: float | None = None
    # mono recordings split into two voices: the speech the diarizer took as the caller's;
    # None: the caller has a channel of its own (stereo), or one voice was heard (not split)
    caller_turns: Turns | None = None
    # signalling tones on the caller's channel (ringing, busy tone, beeps: pipeline.tones), left
    # out of the speech every cue reads; () when none was heard (and in verdicts before schema 6)
    tones: Turns = ()
    # stretches of the caller's channel set aside as played while the caller waits (a recorded
    # queue announcement, looping hold music: pipeline.queue): left out of every cue, the voice
    # head and the words the text heads judge; () when none (and in verdicts before schema 7)
    set_aside: Turns = ()

    @property
    def caller_certainty(self) -> CallerCertainty:
        """Whether the caller question is decided: ``"robot"``, ``"person"`` or ``"uncertain"``.

        ``"uncertain"`` when ``person_threshold <= robot_probability < threshold``: ``label``
        then says which side the probability leans to at the threshold (``human_sales_pitch``),
        but the evidence is too weak to call the caller either (not enough for a complaint).
        """
        if self.label is Label.ROBOT:
            return "robot"
        below = self.threshold if self.person_threshold is None else self.person_threshold
        return "person" if self.robot_probability < below else "uncertain"

    @property
    def sales_pitch_heard(self) -> bool:
        """A sales pitch was heard: ``sales_probability >= sales_threshold``."""
        return self.sales_probability >= self.sales_threshold

    @property
    def too_little_said(self) -> bool:
        """No pitch heard, and the caller said too little to tell whether it was one."""
        return not self.sales_pitch_heard and spoken_units(self.transcript) < MIN_SALES_UNITS

    @property
    def transcript_speakers(self) -> tuple[Speaker, ...]:
        """Who said each segment of ``transcript``: the caller's, except on a mono recording
        split into two voices, where a segment is the callee's when less than half of it lies in
        ``caller_turns`` (the callee of a stereo call has ``other_party_transcript``)."""
        segments = self.transcript.segments
        if not self.caller_turns:
            return tuple("caller" for _ in segments)
        return tuple(
            "caller"
            if 2.0 * overlap_s(s.start_s, s.end_s, self.caller_turns) >= s.end_s - s.start_s
            else "callee"
            for s in segments
        )

    def to_dict(self) -> dict[str, Any]:
        """The one serialiser (CLI JSON, API, batch, report).

        Every field, plus the derived ``sales_pitch_heard`` and ``too_little_said`` and the
        ``schema_version``.
        """
        out: dict[str, Any] = to_jsonable(self)
        for key in VERDICT_DERIVED_KEYS:
            out[key] = getattr(self, key)
        out["schema_version"] = VERDICT_SCHEMA_VERSION
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        """Rebuild a verdict from :meth:`to_dict` output (a stored result, a report.json).

        Verdicts stored before schema 2 read too: a missing ``sales_threshold`` is the default
        (0.5, what decided "topic: none" then), a missing ``person_threshold`` (before schema 3)
        is None (no uncertain band: decided as it was shown then), a missing ``caller_turns``
        (before schema 4) is None, a missing ``audio.caller_channel_reason_zh`` (before
        schema 5) is "" (the English reason is shown), missing ``tones`` (before schema 6) and
        ``set_aside`` (before schema 7) are none, a missing ``audio.gain_db`` (before schema 8)
        is 0 (analysed as recorded), a missing ``audio.hum_hz`` (before schema 9) is 0 (no hum
        removed), evidence without
        ``code``/``params``/``detail_zh`` keeps its English ``detail``; derived keys are ignored.
        """
        derived = {"schema_version", *VERDICT_DERIVED_KEYS}
        fields = {k: v for k, v in data.items() if k not in derived}
        rebuilt: Verdict = from_jsonable(cls, fields)
        return rebuilt


# 2: sales_threshold, sales_pitch_heard, too_little_said; Evidence code, params, detail_zh
# 3: person_threshold, caller_certainty (the uncertain band, issue 13)
# 4: caller_turns (a mono recording's caller speech, issue 13)
# 5: audio.caller_channel_reason_zh (the caller channel's reason in Chinese)
# 6: tones (signalling tones on the caller's channel, left out of the analysis)
# 7: set_aside (a queue announcement or hold music on the caller's channel, left out of it)
# 8: audio.gain_db (a very quiet recording raised before analysis)
# 9: audio.hum_hz (a mains hum notched out before analysis)
VERDICT_SCHEMA_VERSION = "9"
# Properties of Verdict that to_dict() writes beside the fields.
VERDICT_DERIVED_KEYS = ("sales_pitch_heard", "too_little_said", "caller_certainty")


def from_jsonable(tp: Any, value: Any) -> Any:
    """Inverse of :func:`to_jsonable` for the record types of this module."""
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(inner) > 1:  # e.g. Param: a JSON list is the tuple member, a scalar itself
            if not isinstance(value, list):
                return value
            inner = [a for a in inner if typing.get_origin(a) is tuple] or inner
        return from_jsonable(inner[0], value)
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_jsonable(args[0], v) for v in value)
        return tuple(from_jsonable(a, v) for a, v in zip(args, value, strict=True))
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        hints = typing.get_type_hints(tp)
        known = {f.name for f in dataclasses.fields(tp) if f.init and f.name in value}
        return tp(**{name: from_jsonable(hints[name], value[name]) for name in known})
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(value)
    return value


def to_jsonable(value: Any) -> Any:
    """Convert records, enums and tuples into JSON-ready dicts, lists and scalars."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_jsonable(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if not isinstance(getattr(value, f.name), np.ndarray)
        }
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value)
    return value


class Transcriber(Protocol):
    """Speech to text. Real ones live in ``models/asr.py``; a fake in ``tests/fakes.py``."""

    model_info: ModelInfo

    def transcribe(self, samples: np.ndarray) -> Transcript:
        """Transcribe mono float32 samples at :data:`ANALYSIS_RATE_HZ`."""
        ...


class TextClassifier(Protocol):
    model_info: ModelInfo

    def score(self, transcript: Transcript, *, other_party: Transcript | None = None) -> TextScore:
        """Score the caller's transcript; ``other_party`` is the callee's, when stereo."""
        ...


class SyntheticVoiceScorer(Protocol):
    """Trained synthetic-speech detector (``models/synth_head.SynthVoiceScorer``).

    Implementations apply ``pipeline.telephone.call_channel`` to what they score, so the head
    sees audio processed like its training data.
    """

    model_info: ModelInfo

    def score(self, samples: np.ndarray) -> SyntheticVoiceScore | None:
        """Score mono float32 samples at :data:`ANALYSIS_RATE_HZ`; None if too little speech."""
        ...


class ContextCue(Protocol):
    """Evidence from outside the recording, e.g. "this prompt was heard in N other calls".

    The service builds these (``service.campaigns.heard_before.PromptCue`` looks the call up in
    a prompt index) and hands them to ``pipeline.detector.Detector(context_cues=...)``, so the
    pipeline fuses them without knowing where they come from. Weights are hand-set robot-logit
    contributions, scaled by the fusion like every other cue's.
    """

    def __call__(
        self,
        audio: Audio,
        transcript: Transcript,
        *,
        caller_turns: Turns | None = None,
    ) -> Evidence | None:
        """Evidence about the decoded call and its caller's transcript, or None (nothing known).

        ``caller_turns``: on a mono recording, the speech the diarizer took as the caller's
        (``Verdict.caller_turns``); None: all of ``audio.caller()`` is the caller's.
        """
        ...
