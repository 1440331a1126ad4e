"""Whisper speech-to-text, two backends behind the ``Transcriber`` protocol.

``FasterWhisperTranscriber`` (CTranslate2, int8 on CPU) is the default; ``OpenAIWhisperTranscriber``
runs the same weights, converted by ``models/whisper_convert.py``, in PyTorch. Both get already
loaded models from ``models/loading.py`` (the only place weights load) and share:

- language detection restricted to ``AsrConfig.languages``: base Whisper labels fast Mandarin TTS
  as Thai or Japanese often enough, so we keep the configured languages' probabilities, pick the
  best of those and decode with it fixed (the faster backend then decodes again, in the other
  language, the stretches whose windows heard it: :func:`other_language_runs`);
- Simplified Chinese output (OpenCC ``t2s``) for segment and word text;
- the hallucination guard (``models/transcript_guard.py``), which drops silence and loop
  artefacts, counts them in ``Transcript.dropped_segments`` and keeps real repeats (issue 17);
  the faster backend decodes a loop's span again on its own before the guard drops it;
- deterministic decoding: temperature 0 only (no sampling fallback, so a call always gets the same
  verdict) and ``condition_on_previous_text=False`` (breaks repetition loops, Whisper issue #679).

Nothing heavy is imported at module level. At about 680 lines this stays one module: the two
backends share window encoding and restricted language detection, and the code that leans on
faster-whisper's pinned internals (``EncoderMemo``, VAD helpers) should sit in one place.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from models.transcript_guard import RawSegment, assemble_transcript, replay_coverage_of
from pipeline.config import AsrConfig
from pipeline.errors import EmptyAudioError
from pipeline.types import ANALYSIS_RATE_HZ, ModelInfo, Transcript

if TYPE_CHECKING:
    from faster_whisper import WhisperModel
    from whisper.model import Whisper

logger = logging.getLogger(__name__)

WINDOW_S = 30  # Whisper's fixed input window
WINDOW_SAMPLES = WINDOW_S * ANALYSIS_RATE_HZ
WINDOW_FRAMES = WINDOW_SAMPLES // 160  # 10 ms mel hop
DECODE_TEMPERATURE = 0.0  # no sampling fallback: deterministic, and the guard drops what fails


def pick_language(
    probabilities: Mapping[str, float] | Iterable[tuple[str, float]], allowed: Sequence[str]
) -> tuple[str, float]:
    """The most probable of the allowed languages.

    Parameters
    ----------
    probabilities : mapping or iterable of (code, probability)
        Whisper's language distribution (ISO 639-1 codes).
    allowed : sequence of str
        Configured languages, in order of preference for ties.

    Returns
    -------
    (str, float)
        The language and its probability renormalised over the allowed languages (how sure the
        choice is among them; 1/len(allowed) when Whisper gave all of them zero).
    """
    probs = dict(probabilities)
    kept = {lang: float(probs.get(lang, 0.0)) for lang in allowed}
    best = max(allowed, key=kept.__getitem__)  # first configured wins a tie
    total = sum(kept.values())
    return best, (kept[best] / total if total > 0 else 1.0 / len(allowed))


# A decoder window is decoded again in another configured language when it heard that language
# this surely, over this much audio (a window near the end holds little: on the calls v3 caller
# channels, every window after the first heard in the wrong language held under 1 s of speech;
# set before the mixed-language measurements, not tuned on them).
SWITCH_MIN_PROBABILITY = 0.9
SWITCH_MIN_CONTENT_S = 10.0
PART_S = SWITCH_MIN_CONTENT_S  # an unsure window is asked again this much at a time


@dataclass(frozen=True, slots=True)
class WindowLanguage:
    """The language one decoder window heard (restricted, :func:`pick_language`)."""

    start_s: float  # where the window starts in the joined speech
    content_s: float  # audio in it: 30 s, less near the end
    language: str
    probability: float


@dataclass(frozen=True, slots=True)
class LanguageRun:
    """A stretch of the joined speech to decode in another language than the recording's."""

    start_s: float
    end_s: float
    language: str
    probability: float  # the least sure of its windows


def other_language_runs(
    windows: Iterable[WindowLanguage], language: str, end_s: float
) -> list[LanguageRun]:
    """Stretches whose decoder windows heard another language than ``language`` for sure.

    A window covers the speech from its start to the next window's start (``end_s``, the end
    of the joined speech, after the last); adjacent windows of one language make one run.
    """
    ordered = sorted({w.start_s: w for w in windows}.values(), key=lambda w: w.start_s)
    runs: list[LanguageRun] = []
    for i, w in enumerate(ordered):
        stop = ordered[i + 1].start_s if i + 1 < len(ordered) else end_s
        if (
            w.language == language
            or w.probability < SWITCH_MIN_PROBABILITY
            or w.content_s < SWITCH_MIN_CONTENT_S
        ):
            continue
        last = runs[-1] if runs else None
        if last is not None and last.language == w.language and last.end_s == w.start_s:
            runs[-1] = LanguageRun(
                last.start_s, stop, w.language, min(last.probability, w.probability)
            )
        else:
            runs.append(LanguageRun(w.start_s, stop, w.language, w.probability))
    return runs


def most_heard(
    runs: Sequence[LanguageRun], language: str, probability: float, speech_samples: int
) -> tuple[str, float]:
    """The language of most of the speech, and how sure: ``language`` (the first window's,
    with its ``probability``) unless ``runs`` of another cover more of the joined speech."""
    seconds = {language: speech_samples / ANALYSIS_RATE_HZ}
    for run in runs:
        seconds[language] -= run.end_s - run.start_s
        seconds[run.language] = seconds.get(run.language, 0.0) + run.end_s - run.start_s
    most = max(seconds, key=seconds.__getitem__)
    if most == language:
        return language, probability
    return most, min(r.probability for r in runs if r.language == most)


def _as_mono_float32(samples: np.ndarray) -> np.ndarray:
    audio = np.asarray(samples)
    if audio.ndim != 1:
        raise ValueError(f"samples must be mono, shape (n,), got shape {audio.shape}")
    if audio.size == 0:
        raise EmptyAudioError("no samples to transcribe")
    return np.ascontiguousarray(audio, dtype=np.float32)


class EncoderMemo:
    """Wraps ``WhisperModel.encode`` so that features encoded once are not encoded again.

    We encode the first 30 s window of the speech ourselves (restricted language detection
    needs it), and faster-whisper's decoder then asks for the same window again: keyed by a
    hash of the features, it gets the stored output. Outputs are held
    only while a transcription is running (:meth:`session`; at most ``size``, ~3 MB each) and
    dropped when the last one ends, so nothing carries over from one recording to the next.
    """

    def __init__(self, encode: Callable[[np.ndarray], Any], *, size: int = 8) -> None:
        self._encode = encode
        self._size = size
        self._held: dict[bytes, Any] = {}
        self._sessions = 0
        self._lock = threading.Lock()
        self._local = threading.local()  # this thread's watcher (:meth:`watch`)

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Hold outputs for the duration of one transcription (sessions may overlap)."""
        with self._lock:
            self._sessions += 1
        try:
            yield
        finally:
            with self._lock:
                self._sessions -= 1
                if not self._sessions:
                    self._held.clear()

    @contextlib.contextmanager
    def watch(self, note: Callable[[np.ndarray, Any], None]) -> Iterator[None]:
        """Call ``note(features, output)`` for each window this thread encodes meanwhile, held
        or not: how the transcriber hears the language of every window the decoder takes."""
        self._local.note = note
        try:
            yield
        finally:
            self._local.note = None

    def __call__(self, features: np.ndarray) -> Any:
        out = self._held_or_encoded(features)
        note = getattr(self._local, "note", None)
        if note is not None:
            note(features, out)
        return out

    def _held_or_encoded(self, features: np.ndarray) -> Any:
        if not self._sessions:
            return self._encode(features)
        key = hashlib.blake2b(np.ascontiguousarray(features).tobytes(), digest_size=16).digest()
        with self._lock:
            if key in self._held:
                return self._held[key]
        out = self._encode(features)
        with self._lock:
            if self._sessions:
                self._held[key] = out
                while len(self._held) > self._size:
                    del self._held[next(iter(self._held))]
        return out


FRAME_SAMPLES = 320  # one Whisper encoder frame: 20 ms at 16 kHz


@dataclass(frozen=True, slots=True)
class SpeechFrames:
    """Whisper encoder output over the speech of one channel, on the recording's timeline.

    The speech chunks (Silero VAD, as faster-whisper transcribes them) are joined, the join is
    cut into consecutive 30 s windows exactly as the ASR's decoder cuts them and each window is
    encoded once; ``frames`` holds one vector per 20 ms of the join. This is the pass the
    synthetic-voice head was trained on (:func:`encode_speech`).
    """

    frames: np.ndarray  # (n, d_model) float32
    chunks: tuple[tuple[int, int], ...]  # speech (start, end) in samples of the recording

    def between(self, start_s: float, end_s: float) -> np.ndarray:
        """Frames of the speech inside [start_s, end_s) of the recording, shape (k, d_model)."""
        pieces, offset = [], 0
        lo_all, hi_all = round(start_s * ANALYSIS_RATE_HZ), round(end_s * ANALYSIS_RATE_HZ)
        for a, b in self.chunks:
            lo, hi = max(a, lo_all), min(b, hi_all)
            if hi > lo:
                first = (offset + lo - a) // FRAME_SAMPLES
                last = max((offset + hi - a) // FRAME_SAMPLES, first + 1)
                pieces.append(self.frames[first:last])
            offset += b - a
        if not pieces:
            return np.zeros((0, self.frames.shape[1]), dtype=np.float32)
        return np.concatenate(pieces)


def vad_speech(audio: np.ndarray) -> tuple[np.ndarray, tuple[tuple[int, int], ...]]:
    """The speech of ``audio`` joined, and its chunks (start, end samples); Silero VAD."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    chunks = tuple(
        (int(c["start"]), int(c["end"])) for c in get_speech_timestamps(audio, VadOptions())
    )
    if not chunks:
        return np.zeros(0, dtype=np.float32), ()
    return np.concatenate([audio[a:b] for a, b in chunks]), chunks


def speech_to_decode(
    audio: np.ndarray, *, vad_filter: bool
) -> tuple[np.ndarray, tuple[tuple[int, int], ...]]:
    """What a backend decodes: the speech the VAD finds, joined, and its chunks (no chunks: no
    speech); without the VAD, all of ``audio`` as one chunk."""
    return vad_speech(audio) if vad_filter else (audio, ((0, audio.size),))


def speech_within(
    audio: np.ndarray,
    chunks: Sequence[tuple[int, int]],
    spans_s: Sequence[tuple[float, float]],
) -> tuple[np.ndarray, tuple[tuple[int, int], ...]]:
    """The part of the speech ``chunks`` (samples) inside ``spans_s`` (seconds), joined, and
    its chunks: what :func:`encode_speech` encodes when the head keeps only some windows."""
    kept = []
    for a, b in chunks:
        for start_s, end_s in spans_s:
            lo = max(a, round(start_s * ANALYSIS_RATE_HZ))
            hi = min(b, round(end_s * ANALYSIS_RATE_HZ))
            if hi > lo:
                kept.append((lo, hi))
    kept.sort()
    if not kept:
        return np.zeros(0, dtype=np.float32), ()
    return np.concatenate([audio[a:b] for a, b in kept]), tuple(kept)


def encode_windows(
    model: WhisperModel, speech: np.ndarray, *, limit: int | None = None
) -> list[Any]:
    """Encoder outputs of consecutive 30 s windows of ``speech`` (the first ``limit``).

    Each window's features are cut and padded exactly as faster-whisper's decoder cuts the
    window that starts there (it drops the last feature frame), so the decoder's request for
    that window is answered by :class:`EncoderMemo`.
    """
    from faster_whisper.audio import pad_or_trim

    extractor = model.feature_extractor
    features = extractor(speech)
    content = features.shape[-1] - 1
    starts = list(range(0, max(content, 1), extractor.nb_max_frames))[:limit]
    return [
        model.encode(pad_or_trim(features[:, s : min(s + extractor.nb_max_frames, content)]))
        for s in starts
    ]


SpanChoice = Callable[[tuple[tuple[int, int], ...]], Sequence[tuple[float, float]] | None]


def encode_speech(
    model: WhisperModel, samples: np.ndarray, *, within: SpanChoice | None = None
) -> SpeechFrames | None:
    """:class:`SpeechFrames` of mono 16 kHz ``samples``; None when the VAD finds no speech.

    ``within``: given the VAD's speech chunks (samples), the (start_s, end_s) spans of the
    recording whose speech alone is encoded (:func:`speech_within`; the synthetic-voice head's
    windows on a long call), or None to encode all of it, as without ``within``.
    """
    audio = _as_mono_float32(samples)
    speech, chunks = vad_speech(audio)
    spans = within(chunks) if within is not None and chunks else None
    if spans is not None:
        speech, chunks = speech_within(audio, chunks, spans)
    if not chunks:
        return None
    outputs = encode_windows(model, speech)
    frames = np.concatenate([np.asarray(o, dtype=np.float32)[0] for o in outputs])
    n = -(-speech.size // FRAME_SAMPLES)  # frames beyond the speech encode padding
    return SpeechFrames(np.ascontiguousarray(frames[:n]), chunks)


# Speech this long without any segment is decoded again on its own: a skipped sentence or take.
# Shorter stretches are mostly the tails Whisper's segment times fall short of (1.4-1.6 s on the
# bench clip), and each re-decode costs a 30 s window.
UNCOVERED_MIN_S = 3.0
_JOIN_GAP_S = 0.5  # VAD chunks closer than this are one stretch of speech


def uncovered_speech(
    raws: Sequence[RawSegment], chunks: Sequence[tuple[int, int]]
) -> list[tuple[float, float]]:
    """Stretches of VAD speech (``chunks`` in samples) of ``UNCOVERED_MIN_S`` or more that no
    segment overlaps, as (start_s, end_s) on the recording's timeline."""
    stretches: list[list[float]] = []
    for a, b in chunks:
        lo, hi = a / ANALYSIS_RATE_HZ, b / ANALYSIS_RATE_HZ
        if stretches and lo - stretches[-1][1] < _JOIN_GAP_S:
            stretches[-1][1] = hi
        else:
            stretches.append([lo, hi])
    covered = sorted((r.start_s, r.end_s) for r in raws)
    out: list[tuple[float, float]] = []
    for lo, hi in stretches:
        at = lo
        for c_lo, c_hi in covered:
            if c_hi <= at or c_lo >= hi:
                continue
            if c_lo - at >= UNCOVERED_MIN_S:
                out.append((at, c_lo))
            at = max(at, c_hi)
        if hi - at >= UNCOVERED_MIN_S:
            out.append((at, hi))
    return out


def _timeline(chunks: Sequence[tuple[int, int]]) -> Any:
    """faster-whisper's map from times in the VAD-joined speech to the recording's."""
    from faster_whisper.vad import SpeechTimestampsMap

    return SpeechTimestampsMap([{"start": a, "end": b} for a, b in chunks], ANALYSIS_RATE_HZ)


def on_recording(raws: Iterable[RawSegment], chunks: Sequence[tuple[int, int]]) -> list[RawSegment]:
    """Segments decoded on the VAD-joined speech (``chunks`` in samples), their times and their
    words' moved onto the recording's timeline, as faster-whisper's
    ``restore_speech_timestamps`` moves its own segments: a word's start and end by the chunk
    of its middle, and a segment with words spans them."""
    timeline = _timeline(chunks)
    out = []
    for r in raws:
        if r.words:
            words = []
            for a, b, text, p in r.words:
                i = timeline.get_chunk_index((a + b) / 2)
                words.append(
                    (timeline.get_original_time(a, i), timeline.get_original_time(b, i), text, p)
                )
            out.append(replace(r, start_s=words[0][0], end_s=words[-1][1], words=tuple(words)))
        else:
            start_s = timeline.get_original_time(r.start_s)
            out.append(
                replace(r, start_s=start_s, end_s=timeline.get_original_time(r.end_s, is_end=True))
            )
    return out


Redecode = Callable[[float, float], list[RawSegment]]


def with_uncovered(
    raws: Sequence[RawSegment], chunks: Sequence[tuple[int, int]], redecode: Redecode
) -> list[RawSegment]:
    """``raws`` (on the recording's timeline) and, decoded on its own, each stretch of speech
    no segment covers (:func:`uncovered_speech`), in order of time. Whisper can end a window
    on a lone timestamp and skip the rest of it: a replayed take then vanishes without a
    segment to guard (issue 17)."""
    found = [
        r for start_s, end_s in uncovered_speech(raws, chunks) for r in redecode(start_s, end_s)
    ]
    return sorted([*raws, *found], key=lambda r: r.start_s)


def span_redecoder(
    audio: np.ndarray, decode: Callable[[np.ndarray, float], list[RawSegment]]
) -> Redecode:
    """A :data:`Redecode` of ``audio``: ``decode(span, start_s)`` on the span alone (without
    the window's earlier text around it, issue 17), its times moved to the recording's; a
    span under half a second gives nothing."""

    def redecode(start_s: float, end_s: float) -> list[RawSegment]:
        lo, hi = int(start_s * ANALYSIS_RATE_HZ), int(end_s * ANALYSIS_RATE_HZ)
        if hi - lo < ANALYSIS_RATE_HZ // 2:
            return []
        return [r.shifted(start_s) for r in decode(audio[lo:hi], start_s)]

    return redecode


def _raw_of(s: Any) -> RawSegment:
    """A faster-whisper ``Segment`` as a :class:`RawSegment`."""
    return RawSegment(
        s.start,
        s.end,
        s.text,
        s.avg_logprob,
        s.no_speech_prob,
        s.compression_ratio,
        tuple((w.start, w.end, w.word, w.probability) for w in s.words or ()),
    )


_KEY = 8  # feature frames that find where a decoder window starts (digital silence repeats one)


def _window_start(features: np.ndarray, key: np.ndarray, *, after: int) -> int | None:
    """The first frame at or after ``after`` where ``features`` (n_mels, n) go on as ``key``
    (n_mels, k) does: where the decoder cut a window (the windows come in order)."""
    k = key.shape[1]
    for start in np.flatnonzero((features[:, after:] == key[:, :1]).all(axis=0)) + after:
        if np.array_equal(features[:, start : start + k], key[:, : features.shape[1] - start]):
            return int(start)
    return None


class _Backend:
    """What both backends share: their settings, the Chinese normaliser, and how decoded
    segments become a :class:`Transcript`."""

    backend: str
    cfg: AsrConfig
    _to_simplified: Callable[[str], str]

    def _assembled(
        self,
        raws: Sequence[RawSegment],
        audio: np.ndarray,
        *,
        language: str,
        probability: float,
        redecode: Redecode,
        also_heard: frozenset[str] = frozenset(),
    ) -> Transcript:
        return assemble_transcript(
            raws,
            language=language,
            language_probability=probability,
            cfg=self.cfg,
            to_simplified=self._to_simplified,
            backend=self.backend,
            replay_coverage=lambda: replay_coverage_of(audio),
            redecode=redecode,
            also_heard=also_heard,
        )


class FasterWhisperTranscriber(_Backend):
    """faster-whisper (CTranslate2) backend; build it with ``models.loading.load_transcriber``."""

    backend = "faster"

    def __init__(
        self,
        model: WhisperModel,
        *,
        cfg: AsrConfig,
        model_info: ModelInfo,
        to_simplified: Callable[[str], str],
    ) -> None:
        if not isinstance(model.encode, EncoderMemo):
            model.encode = EncoderMemo(model.encode)
        self.model = model
        self.cfg = cfg
        self.model_info = model_info
        self._to_simplified = to_simplified

    def transcribe(self, samples: np.ndarray) -> Transcript:
        """Transcribe mono float32 samples at 16 kHz.

        Parameters
        ----------
        samples : np.ndarray [shape=(n,)], float32
            Mono audio in [-1, 1] at :data:`pipeline.types.ANALYSIS_RATE_HZ`.

        Returns
        -------
        Transcript
            No segments (language = first configured, probability 0) when the VAD finds no speech.

        Raises
        ------
        EmptyAudioError
            ``samples`` is empty.
        """
        with self.model.encode.session():
            return self._transcribe_held(samples)

    def _transcribe_held(self, samples: np.ndarray) -> Transcript:
        audio = _as_mono_float32(samples)
        # One VAD pass: we transcribe the speech alone and map times back ourselves, as
        # faster-whisper's own vad_filter would after running the same VAD again.
        speech, chunks = speech_to_decode(audio, vad_filter=self.cfg.vad_filter)
        if not chunks:
            return Transcript(self.cfg.languages[0], 0.0, (), 0, self.backend)
        runs: list[LanguageRun] = []
        if len(self.cfg.languages) > 1:
            (first,) = encode_windows(self.model, speech, limit=1)
            language, probability = self._language_of(first)
            segments, runs = self._decode_by_language(speech, first, (language, probability))
        else:  # nothing to choose: no encoder pass for it
            language, probability = self.cfg.languages[0], 1.0
            segments = list(self._decode(speech, language))
        raws = [_raw_of(s) for s in segments]
        to_recording: Callable[[float], float] = float
        if self.cfg.vad_filter:
            raws = on_recording(raws, chunks)
            to_recording = _timeline(chunks).get_original_time
        spans = [(to_recording(r.start_s), to_recording(r.end_s), r.language) for r in runs]

        def language_at(start_s: float) -> str:
            return next((lang for lo, hi, lang in spans if lo <= start_s < hi), language)

        redecode = span_redecoder(
            audio,
            lambda span, start_s: [_raw_of(s) for s in self._decode(span, language_at(start_s))],
        )
        if self.cfg.vad_filter:
            raws = with_uncovered(raws, chunks, redecode)
        most, most_probability = most_heard(runs, language, probability, speech.size)
        return self._assembled(
            raws,
            audio,
            language=most,
            probability=most_probability,
            redecode=redecode,
            also_heard=frozenset(r.language for r in runs) | {language},
        )

    def _language_of(self, encoded: Any) -> tuple[str, float]:
        results = self.model.model.detect_language(encoded)[0]
        return pick_language([(token[2:-2], p) for token, p in results], self.cfg.languages)

    def _decode_by_language(
        self, speech: np.ndarray, first: Any, chosen: tuple[str, float]
    ) -> tuple[list[Any], list[LanguageRun]]:
        """Decode ``speech`` in the ``chosen`` language (heard on the ``first`` window's
        encoder output), then again in another configured language the stretches that heard
        that one (:func:`other_language_runs`): a recording that changes language.

        Each decoder window is asked its language on the encoder output the decoder computed
        anyway (:meth:`EncoderMemo.watch`; about 50 ms of CPU a window). A window unsure of
        its language (below ``SWITCH_MIN_PROBABILITY``: both languages inside it, or ~2 % of
        one-language windows) is asked again ``PART_S`` at a time (an encoder pass a part).
        """
        language = chosen[0]
        heard: list[tuple[np.ndarray, str, float]] = []  # (window features, language, p)

        def note(window: np.ndarray, encoded: Any) -> None:
            found = chosen if encoded is first else self._language_of(encoded)
            # An unsure window's features are kept for its parts; a sure one's first frames,
            # to find where it starts.
            kept = window if found[1] < SWITCH_MIN_PROBABILITY else np.array(window[:, :_KEY])
            heard.append((kept, *found))

        with self.model.encode.watch(note):
            segments = list(self._decode(speech, language))
        if all(lang == language and p >= SWITCH_MIN_PROBABILITY for _, lang, p in heard):
            return segments, []
        extractor = self.model.feature_extractor
        features = extractor(speech)
        content = features.shape[-1] - 1  # the decoder drops the last frame (encode_windows)
        windows: list[WindowLanguage] = []
        seek = 0
        for window, lang, p in heard:
            found = _window_start(features[:, :content], window[:, :_KEY], after=seek)
            if found is None:  # the decoder no longer cuts windows as encode_windows does
                logger.warning("a decoder window was not found in the speech; its language is left")
                continue
            seek = found
            length = min(extractor.nb_max_frames, content - seek)
            whole = WindowLanguage(
                seek * extractor.time_per_frame, length * extractor.time_per_frame, lang, p
            )
            windows += [whole] if p >= SWITCH_MIN_PROBABILITY else self._parts_heard(window, whole)
        runs = other_language_runs(windows, language, content * extractor.time_per_frame)
        for run in runs:
            segments = [s for s in segments if not run.start_s <= s.start < run.end_s]
            segments += self._decode(speech, run.language, clip=(run.start_s, run.end_s))
        segments.sort(key=lambda s: s.start)
        return segments, runs

    def _parts_heard(self, window: np.ndarray, whole: WindowLanguage) -> list[WindowLanguage]:
        """The language of each ``PART_S`` of a decoder window (its features padded to 30 s;
        ``whole``: what the window heard whole); the last part takes the rest. A window too
        short for two parts keeps ``whole``."""
        from faster_whisper.audio import pad_or_trim

        step = self.model.feature_extractor.time_per_frame
        part, length = round(PART_S / step), round(whole.content_s / step)
        cuts = list(range(0, length - part + 1, part))
        if len(cuts) < 2:
            return [whole]
        out = []
        for i, lo in enumerate(cuts):
            hi = length if i == len(cuts) - 1 else lo + part
            found = self._language_of(self.model.encode(pad_or_trim(window[:, lo:hi])))
            out.append(WindowLanguage(whole.start_s + lo * step, (hi - lo) * step, *found))
        return out

    def _decode(
        self, speech: np.ndarray, language: str, *, clip: tuple[float, float] | None = None
    ) -> Iterator[Any]:
        segments, _info = self.model.transcribe(
            speech,
            language=language,
            clip_timestamps=list(clip) if clip else "0",
            task="transcribe",
            beam_size=self.cfg.beam_size,
            temperature=DECODE_TEMPERATURE,
            condition_on_previous_text=False,
            word_timestamps=self.cfg.word_timestamps,
            vad_filter=False,
            compression_ratio_threshold=self.cfg.compression_ratio_threshold,
            log_prob_threshold=self.cfg.logprob_threshold,
            # None: faster-whisper would silently skip no-speech windows; our guard counts them.
            no_speech_threshold=None,
        )
        return iter(segments)

    def log_mel(self, samples: np.ndarray) -> np.ndarray:
        """Log-mel of the first 30 s, zero-padded like openai-whisper: shape (n_mels, 3000)."""
        audio = _as_mono_float32(samples)[:WINDOW_SAMPLES]
        mel = self.model.feature_extractor(audio, padding=WINDOW_SAMPLES)
        return np.ascontiguousarray(mel[:, :WINDOW_FRAMES], dtype=np.float32)

    def encode_mel(self, mel: np.ndarray) -> np.ndarray:
        """Encoder output for a (n_mels, 3000) log-mel: shape (1500, d_model), float32."""
        import ctranslate2

        features = ctranslate2.StorageView.from_array(
            np.ascontiguousarray(mel[np.newaxis], dtype=np.float32)
        )
        out: np.ndarray = np.asarray(self.model.model.encode(features, to_cpu=True))
        return np.asarray(out[0], dtype=np.float32)

    def encode(self, samples: np.ndarray) -> np.ndarray:
        """Whisper encoder output for the first 30 s window.

        Parameters
        ----------
        samples : np.ndarray [shape=(n,)], float32
            Mono 16 kHz audio; shorter input is zero-padded to 30 s, longer is cut.

        Returns
        -------
        np.ndarray [shape=(1500, d_model)], float32
            One 512-dim vector per 20 ms for Whisper base.
        """
        return self.encode_mel(self.log_mel(samples))


class OpenAIWhisperTranscriber(_Backend):
    """openai-whisper (PyTorch) backend; build it with ``models.loading.load_transcriber``."""

    backend = "openai"

    def __init__(
        self,
        model: Whisper,
        *,
        cfg: AsrConfig,
        model_info: ModelInfo,
        to_simplified: Callable[[str], str],
        fp16: bool = False,
    ) -> None:
        self.model = model
        self.cfg = cfg
        self.model_info = model_info
        self._to_simplified = to_simplified
        self._fp16 = fp16  # CUDA only: float32 weights, float16 activations
        # openai-whisper installs kv-cache and alignment hooks on the shared model per call, so
        # concurrent calls would corrupt each other: one at a time.
        self._lock = threading.Lock()

    def transcribe(self, samples: np.ndarray) -> Transcript:
        """Transcribe mono float32 samples at 16 kHz (same contract as the faster backend).

        The speech the VAD finds is transcribed alone, its times mapped back, and speech left
        without a segment decoded on its own, as the faster backend does; unlike it, in one
        language a recording (that of the speech's first 30 s).
        """
        audio = _as_mono_float32(samples)
        speech, chunks = speech_to_decode(audio, vad_filter=self.cfg.vad_filter)
        if not chunks:
            return Transcript(self.cfg.languages[0], 0.0, (), 0, self.backend)
        if len(self.cfg.languages) == 1:
            language, probability = self.cfg.languages[0], 1.0
        else:
            with self._lock:
                _, probs = self.model.detect_language(self._window_mel(speech))
            language, probability = pick_language(probs, self.cfg.languages)
        raws = self._decode(speech, language)
        redecode = span_redecoder(audio, lambda span, _start_s: self._decode(span, language))
        if self.cfg.vad_filter:
            raws = with_uncovered(on_recording(raws, chunks), chunks, redecode)
        return self._assembled(
            raws, audio, language=language, probability=probability, redecode=redecode
        )

    def _decode(self, audio: np.ndarray, language: str) -> list[RawSegment]:
        import whisper

        options: dict[str, Any] = {}
        if self.cfg.beam_size > 1:  # None = greedy, as faster-whisper does for beam_size 1
            options["beam_size"] = self.cfg.beam_size
        with self._lock:
            result = whisper.transcribe(
                self.model,
                audio,
                language=language,
                task="transcribe",
                temperature=DECODE_TEMPERATURE,
                condition_on_previous_text=False,
                word_timestamps=self.cfg.word_timestamps,
                compression_ratio_threshold=self.cfg.compression_ratio_threshold,
                logprob_threshold=self.cfg.logprob_threshold,
                no_speech_threshold=None,  # as in the faster backend: the guard decides and counts
                fp16=self._fp16,
                verbose=None,
                **options,
            )
        return [
            RawSegment(
                s["start"],
                s["end"],
                s["text"],
                s["avg_logprob"],
                s["no_speech_prob"],
                s["compression_ratio"],
                tuple(
                    (w["start"], w["end"], w["word"], w["probability"]) for w in s.get("words", ())
                ),
            )
            for s in result["segments"]
        ]

    def _window_mel(self, audio: np.ndarray) -> Any:
        import torch
        import whisper

        mel = whisper.log_mel_spectrogram(
            audio[:WINDOW_SAMPLES], self.model.dims.n_mels, padding=WINDOW_SAMPLES
        )
        dtype = torch.float16 if self._fp16 else torch.float32
        return mel[:, :WINDOW_FRAMES].to(self.model.device, dtype)

    def log_mel(self, samples: np.ndarray) -> np.ndarray:
        """Log-mel of the first 30 s, zero-padded: shape (n_mels, 3000), float32."""
        mel: np.ndarray = self._window_mel(_as_mono_float32(samples)).float().cpu().numpy()
        return mel

    def encode_mel(self, mel: np.ndarray) -> np.ndarray:
        """Encoder output for a (n_mels, 3000) log-mel: shape (1500, d_model), float32."""
        import torch

        dtype = torch.float16 if self._fp16 else torch.float32
        x = torch.from_numpy(np.ascontiguousarray(mel, dtype=np.float32))[None]
        with self._lock, torch.inference_mode():
            states = self.model.encoder(x.to(self.model.device, dtype))
        out: np.ndarray = states[0].float().cpu().numpy()
        return out

    def encode(self, samples: np.ndarray) -> np.ndarray:
        """Whisper encoder output for the first 30 s window: shape (1500, d_model), float32."""
        return self.encode_mel(self.log_mel(samples))
