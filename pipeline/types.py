"""Typed, frozen records that flow between the stages, and the model protocols.

Only :class:`Audio` holds an array; every other record has plain float/str/tuple fields so it is
hashable and serialises with :func:`to_jsonable` without custom code.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

ANALYSIS_RATE_HZ = 16_000  # every stage after decoding sees mono float32 at this rate


class Label(enum.StrEnum):
    ROBOT = "electronic_sales_robot"
    HUMAN = "human_sales_pitch"


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


@dataclass(frozen=True, slots=True)
class Evidence:
    source: EvidenceSource
    name: str  # stable id: "scripted_phrase", "pitch_flatness", ...
    value: float  # the measurement; unit in `name` or `detail`
    weight: float  # signed contribution to the robot logit (positive = robot)
    detail: str  # one plain sentence for the report
    span_s: tuple[float, float] | None = None  # where in the call, seconds


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


@dataclass(frozen=True, slots=True)
class Verdict:
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

    def to_dict(self) -> dict[str, Any]:
        """The one serialiser (CLI JSON, API, batch, report)."""
        out: dict[str, Any] = to_jsonable(self)
        out["schema_version"] = VERDICT_SCHEMA_VERSION
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        """Rebuild a verdict from :meth:`to_dict` output (a stored result, a report.json)."""
        fields = {k: v for k, v in data.items() if k != "schema_version"}
        rebuilt: Verdict = from_jsonable(cls, fields)
        return rebuilt


VERDICT_SCHEMA_VERSION = "1"


def from_jsonable(tp: Any, value: Any) -> Any:
    """Inverse of :func:`to_jsonable` for the record types of this module."""
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
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


@typing.runtime_checkable
class FrameSharingTranscriber(Transcriber, Protocol):
    """A transcriber that hands out the encoder frames it computed (``models/asr.py``).

    The detector then transcribes the call through ``pipeline.telephone.call_channel`` and
    gives those frames to the synthetic-voice head, so the encoder runs once for both.
    """

    def transcribe_with_frames(self, samples: np.ndarray) -> tuple[Transcript, Any]:
        """The transcript and the frames (opaque here; None when there was no speech)."""
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

    def score_channelled(self, samples: np.ndarray, frames: Any) -> SyntheticVoiceScore | None:
        """Score samples already through ``call_channel``, with a transcriber's frames of them."""
        ...


class ContextCue(Protocol):
    """Evidence from outside the recording, e.g. "this prompt was heard in N other calls".

    The service builds these (``service.campaigns.PromptCue`` looks the call up in a prompt
    index) and hands them to ``pipeline.detector.Detector(context_cues=...)``, so the pipeline
    fuses them without knowing where they come from. Weights are hand-set robot-logit
    contributions, scaled by the fusion like every other cue's.
    """

    def __call__(self, audio: Audio, transcript: Transcript) -> Evidence | None:
        """Evidence about the decoded call and its caller's transcript, or None (nothing known)."""
        ...
