"""The hallucination guard: which decoded segments are Whisper artefacts, and the transcript.

Both ASR backends (``models/asr.py``) hand their decoded segments here. A segment is dropped when
it looks like text Whisper invents on silence, music or noise (subtitle credits and the like),
when the decoder was unsure and the window had no speech, or when its window loops; a window
whose text repeats because the caller really said it again (a robot replaying its message,
issue 17) is kept, marked ``Segment.is_repeat``, when its audio replays an earlier stretch of the
call (:func:`pipeline.acoustic.find_repeats`). Pure Python and numpy: testable without weights.
"""

from __future__ import annotations

import logging
import unicodedata
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from pipeline.config import AsrConfig
from pipeline.types import ANALYSIS_RATE_HZ, Segment, Transcript, Word

logger = logging.getLogger(__name__)

# Text Whisper emits on silence, music or noise, learnt from subtitle credits in its training data
# (openai/whisper discussions #928, #1783). Written in Simplified Chinese; matched after
# normalise_for_matching() on both sides: a segment is dropped when its normalised text equals an
# entry, or contains an entry of at least _MIN_CONTAINED_CHARS normalised characters (long
# enough to be a signature, not an everyday word).
# Deliberately absent: "谢谢" / "thank you" / "bye", common silence outputs but also real call
# endings; the no-speech rule handles them when they come from silence.
SILENCE_HALLUCINATIONS: tuple[str, ...] = (
    # zh
    "字幕by索兰娅",
    "字幕by索兰娅请不吝点赞订阅转发打赏",
    "请不吝点赞 订阅 转发 打赏支持明镜与点点栏目",
    "明镜与点点栏目",
    "明镜需要您的支持 欢迎订阅明镜",
    "字幕由Amara.org社区提供",
    "小编字幕由Amara.org社区提供",
    "优优独播剧场——YoYo Television Series Exclusive",
    "中文字幕志愿者",
    "点赞 订阅 转发 打赏",
    "谢谢观看",
    "感谢观看",
    "谢谢收看",
    "谢谢大家收看",
    "请订阅我的频道",
    # en
    "Thanks for watching!",
    "Thank you for watching.",
    "Thank you so much for watching.",
    "Please subscribe to my channel.",
    "Like and subscribe.",
    "Subtitles by the Amara.org community",
    "Transcription by CastingWords",
    "you",
)
_MIN_CONTAINED_CHARS = 6


def normalise_for_matching(text: str) -> str:
    """NFKC, case-folded, letters and digits only (drops spaces, punctuation, music notes)."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if unicodedata.category(ch)[0] in "LN")


_BLACKLIST: frozenset[str] = frozenset(normalise_for_matching(p) for p in SILENCE_HALLUCINATIONS)
_SIGNATURES: tuple[str, ...] = tuple(p for p in _BLACKLIST if len(p) >= _MIN_CONTAINED_CHARS)


def hallucination_reason(
    text: str,
    *,
    avg_logprob: float,
    no_speech_prob: float,
    compression_ratio: float,
    cfg: AsrConfig,
) -> str | None:
    """Why a decoded segment should be dropped, or None to keep it.

    Parameters
    ----------
    text : str
        Segment text, already converted to Simplified Chinese.
    avg_logprob : float
        Mean token log-probability of the segment (nats, <= 0).
    no_speech_prob : float
        Probability of the no-speech token at the start of the window, in [0, 1].
    compression_ratio : float
        gzip compression ratio of the text; loops compress well (high ratio).
    cfg : AsrConfig
        ``no_speech_threshold``, ``logprob_threshold``, ``compression_ratio_threshold``.

    Returns
    -------
    str or None
        ``"no_speech"`` (silence decoded with low confidence, Whisper's own rule),
        ``"repetition"`` (compression ratio above threshold), ``"known_phrase"`` (a listed
        silence hallucination), ``"no_words"`` (punctuation or symbols only), or None.
    """
    if no_speech_prob > cfg.no_speech_threshold and avg_logprob < cfg.logprob_threshold:
        return "no_speech"
    if compression_ratio > cfg.compression_ratio_threshold:
        return "repetition"
    return _content_reason(text)


# A segment of a high-compression window counts as a real repeat when at least this share of its
# time replays earlier audio of the call at this log-mel correlation or more (a decoding loop has
# no acoustic repeat; a replayed prompt scores 0.99, pipeline/acoustic.py).
REPEAT_MIN_COVERAGE = 0.5
REPEAT_CONFIRM_CORR = 0.98

# Fraction of [start_s, end_s) of the recording that replays earlier audio, in [0, 1].
ReplayCoverage = Callable[[float, float], float]


def text_compression_ratio(text: str) -> float:
    """gzip compression ratio of ``text`` as Whisper computes it (bytes / compressed bytes)."""
    raw = text.encode("utf-8")
    return len(raw) / len(zlib.compress(raw)) if raw else 0.0


def repetition_verdict(
    text: str,
    *,
    seen: Iterable[str],
    coverage: float,
    cfg: AsrConfig,
) -> str | None:
    """Whether a segment of a window over ``compression_ratio_threshold`` is a loop (issue 17).

    Whisper's compression ratio is the window's, so a window holding a message and its replay
    compresses as well as a decoding loop. This tells them apart per segment.

    Parameters
    ----------
    text : str
        The segment's text.
    seen : iterable of str
        Normalised texts of the earlier segments of the call (kept or not).
    coverage : float
        Share of the segment's time that replays earlier audio, in [0, 1]
        (:data:`ReplayCoverage`).
    cfg : AsrConfig
        ``compression_ratio_threshold``.

    Returns
    -------
    str or None
        ``"repeat"`` (keep, marked: its audio replays earlier audio), None (keep: new text that
        does not loop), or ``"repetition"`` (a loop: its own text compresses above the threshold,
        or it repeats earlier text with no acoustic repeat under it).
    """
    if coverage >= REPEAT_MIN_COVERAGE:
        return "repeat"
    normalised = normalise_for_matching(text)
    if text_compression_ratio(text) > cfg.compression_ratio_threshold or _loops(normalised):
        return "repetition"
    if normalised and normalised in set(seen):
        return "repetition"
    return None


def _loops(normalised: str) -> bool:
    """The text holds a unit said three or more times in a row over half its length ("嗯嗯嗯")."""
    n = len(normalised)
    for period in range(1, n // 3 + 1):
        run = best = 0
        for i in range(n - period):
            run = run + 1 if normalised[i] == normalised[i + period] else 0
            best = max(best, run)
        if best >= 2 * period and best + period >= n / 2:
            return True
    return False


def replay_coverage_of(samples: np.ndarray) -> ReplayCoverage:
    """:data:`ReplayCoverage` of mono 16 kHz ``samples`` from the acoustic replay search."""
    from pipeline.acoustic import find_repeats

    hop_s = 0.01
    replayed = np.zeros(int(samples.size / ANALYSIS_RATE_HZ / hop_s) + 1, dtype=bool)
    for rep in find_repeats(samples):
        if rep.correlation >= REPEAT_CONFIRM_CORR:
            replayed[int(rep.again_s[0] / hop_s) : int(rep.again_s[1] / hop_s)] = True

    def coverage(start_s: float, end_s: float) -> float:
        lo, hi = int(start_s / hop_s), max(int(end_s / hop_s), int(start_s / hop_s) + 1)
        return float(replayed[lo:hi].mean()) if lo < replayed.size else 0.0

    return coverage


def _content_reason(text: str) -> str | None:
    """The text rules of :func:`hallucination_reason` alone (a kept repeat is still checked)."""
    normalised = normalise_for_matching(text)
    if not normalised:
        return "no_words"
    if normalised in _BLACKLIST or any(sig in normalised for sig in _SIGNATURES):
        return "known_phrase"
    return None


@dataclass(frozen=True, slots=True)
class RawSegment:
    """A decoded segment as either backend returns it, before normalisation and the guard."""

    start_s: float
    end_s: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    words: tuple[tuple[float, float, str, float], ...]  # (start_s, end_s, text, probability)

    def shifted(self, by_s: float) -> RawSegment:
        """The segment ``by_s`` seconds later, its words too (a span decoded on its own has
        times from the span's start)."""
        return RawSegment(
            round(self.start_s + by_s, 3),
            round(self.end_s + by_s, 3),
            self.text,
            self.avg_logprob,
            self.no_speech_prob,
            self.compression_ratio,
            tuple((round(a + by_s, 3), round(b + by_s, 3), w, p) for a, b, w, p in self.words),
        )


def assemble_transcript(
    raw: Iterable[RawSegment],
    *,
    language: str,
    language_probability: float,
    cfg: AsrConfig,
    to_simplified: Callable[[str], str],
    backend: str,
    replay_coverage: Callable[[], ReplayCoverage] | None = None,
    redecode: Callable[[float, float], list[RawSegment]] | None = None,
    also_heard: frozenset[str] = frozenset(),
) -> Transcript:
    """Turn decoded segments into a :class:`Transcript`: Simplified Chinese, guard applied.

    Parameters
    ----------
    raw : iterable of RawSegment
        Segments in time order, as a backend decoded them.
    language : str
        The (restricted) language the segments were decoded in, the most heard one when
        ``also_heard`` names others; ``"zh"`` enables OpenCC t2s.
    language_probability : float
        From :func:`pick_language`.
    cfg : AsrConfig
        Guard thresholds.
    to_simplified : callable
        Traditional -> Simplified converter (OpenCC ``t2s``, injected by ``models/loading.py``).
    backend : str
        ``"faster"`` or ``"openai"``.
    replay_coverage : callable, optional
        Builds the :data:`ReplayCoverage` of the recording; called once, and only when a window
        compresses above the threshold. None: no acoustic repeat is known.
    redecode : callable, optional
        ``redecode(start_s, end_s)`` decodes that span of the recording on its own; tried on a
        loop before it is dropped (its segments go through the guard, without a second retry).
    also_heard : frozenset of str
        Languages some stretches were decoded in besides ``language`` (a recording that changes
        language); ``"zh"`` among them enables t2s too.

    Returns
    -------
    Transcript
        Kept segments (real repeats marked ``is_repeat``); ``dropped_segments`` counts those
        the guard removed.
    """
    convert = to_simplified if "zh" in also_heard | {language} else (lambda s: s)
    kept: list[Segment] = []
    dropped: dict[str, int] = {}
    seen: list[str] = []
    coverage: ReplayCoverage | None = None

    def guard(seg: RawSegment, *, retry: bool) -> list[Segment]:
        nonlocal coverage
        text = convert(seg.text).strip()
        reason = hallucination_reason(
            text,
            avg_logprob=seg.avg_logprob,
            no_speech_prob=seg.no_speech_prob,
            compression_ratio=seg.compression_ratio,
            cfg=cfg,
        )
        is_repeat = False
        if reason == "repetition":
            if coverage is None:
                coverage = replay_coverage() if replay_coverage is not None else lambda a, b: 0.0
            verdict = repetition_verdict(
                text, seen=seen, coverage=coverage(seg.start_s, seg.end_s), cfg=cfg
            )
            is_repeat = verdict == "repeat"
            reason = verdict if verdict == "repetition" else _content_reason(text)
            if reason == "repetition" and retry and redecode is not None:
                again = [k for r in redecode(seg.start_s, seg.end_s) for k in guard(r, retry=False)]
                if again:
                    logger.debug("loop at %.1f-%.1f s decoded again", seg.start_s, seg.end_s)
                    return again
        seen.append(normalise_for_matching(text))
        if reason is not None:
            dropped[reason] = dropped.get(reason, 0) + 1
            return []
        words = tuple(
            Word(start_s=float(s), end_s=float(e), text=convert(w).strip(), probability=float(p))
            for s, e, w, p in seg.words
        )
        return [
            Segment(
                start_s=float(seg.start_s),
                end_s=float(seg.end_s),
                text=text,
                avg_logprob=float(seg.avg_logprob),
                no_speech_prob=float(seg.no_speech_prob),
                compression_ratio=float(seg.compression_ratio),
                words=words,
                is_repeat=is_repeat,
            )
        ]

    for seg in raw:
        kept += guard(seg, retry=True)
    if dropped:
        logger.debug("hallucination guard dropped %s", dropped)
    return Transcript(
        language=language,
        language_probability=float(language_probability),
        segments=tuple(kept),
        dropped_segments=sum(dropped.values()),
        backend=backend,
    )
