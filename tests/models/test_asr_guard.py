"""Hallucination guard, language restriction and transcript assembly: no weights, no torch."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from models.asr import (
    _as_mono_float32,
    on_recording,
    pick_language,
    span_redecoder,
    uncovered_speech,
    with_uncovered,
)
from models.transcript_guard import (
    SILENCE_HALLUCINATIONS,
    RawSegment,
    ReplayCoverage,
    _loops,
    assemble_transcript,
    hallucination_reason,
    normalise_for_matching,
    repetition_verdict,
    replay_coverage_of,
)
from pipeline.config import AsrConfig
from pipeline.errors import EmptyAudioError
from pipeline.types import Transcript

CFG = AsrConfig()
CONFIDENT = {"avg_logprob": -0.2, "no_speech_prob": 0.01, "compression_ratio": 1.3}


def reason(text: str, **numbers: float) -> str | None:
    return hallucination_reason(text, cfg=CFG, **(CONFIDENT | numbers))


@pytest.mark.parametrize("phrase", SILENCE_HALLUCINATIONS)
def test_every_listed_phrase_is_dropped_even_when_confident(phrase: str) -> None:
    assert reason(phrase) == "known_phrase"


@pytest.mark.parametrize(
    "variant",
    [
        "  THANKS for watching!!! ",
        "Thanks  for   watching",
        "字幕ｂｙ索兰娅",  # full-width Latin (NFKC)
        "请不吝点赞、订阅、转发、打赏支持明镜与点点栏目。",  # other punctuation, no spaces
        "谢谢观看！",
        "You.",
    ],
)
def test_matching_ignores_case_width_spacing_and_punctuation(variant: str) -> None:
    assert reason(variant) == "known_phrase"


def test_long_signature_inside_a_segment_is_dropped() -> None:
    assert reason("好的。字幕由Amara.org社区提供") == "known_phrase"
    assert reason("okay so Subtitles by the Amara.org community") == "known_phrase"


@pytest.mark.parametrize(
    "text",
    [
        "Thank you, see you tomorrow.",  # "you" is listed, but only as a whole segment
        "谢谢观看我们的样板间",  # 4-character entries match whole segments only
        "谢谢",
        "Thank you.",
        "您好，我是城南置业的顾问，我们新开盘的学区房首付只要三十万。",
        "Press 1 to speak to an agent about your car warranty.",
    ],
)
def test_real_call_text_is_kept(text: str) -> None:
    assert reason(text) is None


def test_no_speech_rule_needs_both_conditions() -> None:
    assert reason("Hello there", no_speech_prob=0.9, avg_logprob=-1.5) == "no_speech"
    assert reason("Hello there", no_speech_prob=0.9, avg_logprob=-0.3) is None
    assert reason("Hello there", no_speech_prob=0.3, avg_logprob=-1.5) is None
    strict = AsrConfig(no_speech_threshold=0.2, logprob_threshold=-0.5)
    got = hallucination_reason(
        "Hello", avg_logprob=-0.6, no_speech_prob=0.3, compression_ratio=1.0, cfg=strict
    )
    assert got == "no_speech"


def test_repetition_rule_is_strictly_above_threshold() -> None:
    limit = CFG.compression_ratio_threshold
    assert reason("Hello there", compression_ratio=limit + 0.01) == "repetition"
    assert reason("Hello there", compression_ratio=limit) is None


@pytest.mark.parametrize("text", ["", "   ", "♪ ♪", "...", "（）"])
def test_segments_without_letters_or_digits_are_dropped(text: str) -> None:
    assert reason(text) == "no_words"


def test_normalise_for_matching() -> None:
    assert normalise_for_matching(" Ｈｅｌｌｏ, World! 你好。") == "helloworld你好"


def test_pick_language_restricts_and_renormalises() -> None:
    probs = {"th": 0.6, "ja": 0.2, "zh": 0.15, "en": 0.05}
    language, p = pick_language(probs, ("zh", "en"))
    assert language == "zh"
    assert p == pytest.approx(0.75)
    assert pick_language(list(probs.items()), ("en",)) == ("en", 1.0)


def test_pick_language_ties_and_zeros_prefer_the_first_configured() -> None:
    assert pick_language({"zh": 0.5, "en": 0.5}, ("en", "zh")) == ("en", 0.5)
    assert pick_language({"th": 1.0}, ("zh", "en")) == ("zh", 0.5)


def raw(text: str, start: float = 0.0, **numbers: float) -> RawSegment:
    values = CONFIDENT | numbers
    words = tuple(
        (start + i * 0.2, start + i * 0.2 + 0.2, f" {w}", 0.9) for i, w in enumerate(text)
    )
    return RawSegment(
        start,
        start + 2.0,
        f" {text} ",
        values["avg_logprob"],
        values["no_speech_prob"],
        values["compression_ratio"],
        words,
    )


def test_assemble_converts_to_simplified_and_counts_drops() -> None:
    opencc = pytest.importorskip("opencc")
    t2s = opencc.OpenCC("t2s").convert
    segments = [
        raw("學區房首付只要三十萬"),
        raw("請不吝點贊 訂閱 轉發 打賞支持明鏡與點點欄目", start=2.0),  # traditional hallucination
        raw("嗯嗯嗯嗯嗯嗯", start=4.0, compression_ratio=3.0),
        raw("後來", start=6.0, no_speech_prob=0.95, avg_logprob=-2.0),
    ]
    transcript = assemble_transcript(
        segments,
        language="zh",
        language_probability=0.9,
        cfg=CFG,
        to_simplified=t2s,
        backend="faster",
    )
    assert transcript.text == "学区房首付只要三十万"
    assert transcript.dropped_segments == 3
    assert [w.text for w in transcript.segments[0].words][:3] == ["学", "区", "房"]
    assert transcript.backend == "faster" and transcript.language == "zh"


def test_assemble_leaves_english_alone() -> None:
    def boom(text: str) -> str:
        raise AssertionError("t2s must not run on English")

    transcript = assemble_transcript(
        [raw("Hello there"), raw("Thanks for watching!", start=2.0)],
        language="en",
        language_probability=1.0,
        cfg=CFG,
        to_simplified=boom,
        backend="openai",
    )
    assert transcript.text == "Hello there"
    assert transcript.dropped_segments == 1
    seg = transcript.segments[0]
    assert seg.start_s <= seg.end_s and all(w.text == w.text.strip() for w in seg.words)


def test_input_checks() -> None:
    with pytest.raises(EmptyAudioError, match="no samples"):
        _as_mono_float32(np.zeros(0, dtype=np.float32))
    with pytest.raises(ValueError, match="mono"):
        _as_mono_float32(np.zeros((2, 100), dtype=np.float32))
    assert _as_mono_float32(np.zeros(10, dtype=np.float64)).dtype == np.float32


# Issue 17: a window whose text repeats because the caller repeated it is not a decoding loop.
LOOPY = {"compression_ratio": 3.1}  # the window's ratio, as both backends report it


def assemble(
    segments: list[RawSegment],
    *,
    replayed: tuple[tuple[float, float], ...] = (),
    redecode: Callable[[float, float], list[RawSegment]] | None = None,
) -> tuple[Transcript, list[int]]:
    built: list[int] = []

    def coverage() -> ReplayCoverage:
        built.append(1)
        return lambda a, b: max(
            (max(0.0, min(b, hi) - max(a, lo)) / (b - a) for lo, hi in replayed), default=0.0
        )

    transcript = assemble_transcript(
        segments,
        language="en",
        language_probability=1.0,
        cfg=CFG,
        to_simplified=lambda s: s,
        backend="faster",
        replay_coverage=coverage,
        redecode=redecode,
    )
    return transcript, built


MESSAGE = "press two to hear this message again"


def test_a_replayed_message_is_kept_and_marked() -> None:
    segments = [raw(MESSAGE, start=2.0 * i, **LOOPY) for i in range(3)]
    transcript, _ = assemble(segments, replayed=((2.0, 6.0),))
    assert transcript.dropped_segments == 0
    marks = [s.is_repeat for s in transcript.segments]
    assert marks == [False, True, True]


def test_repeated_text_without_an_acoustic_repeat_is_a_loop() -> None:
    segments = [raw(MESSAGE, start=2.0 * i, **LOOPY) for i in range(3)]
    transcript, _ = assemble(segments)
    assert [s.text for s in transcript.segments] == [MESSAGE]
    assert transcript.dropped_segments == 2


def test_a_segment_looping_within_itself_is_dropped() -> None:
    transcript, _ = assemble([raw("thank you " * 8, **LOOPY)])
    assert transcript.segments == ()
    assert transcript.dropped_segments == 1


def test_a_loop_is_decoded_again_before_it_is_dropped() -> None:
    asked: list[tuple[float, float]] = []

    def redecode(start_s: float, end_s: float) -> list[RawSegment]:
        asked.append((start_s, end_s))
        return [raw("we are calling about your car warranty", start=start_s)]

    transcript, _ = assemble([raw("thank you " * 8, start=4.0, **LOOPY)], redecode=redecode)
    assert asked == [(4.0, 6.0)]
    assert transcript.text == "we are calling about your car warranty"
    assert transcript.dropped_segments == 0


def test_a_redecoded_loop_that_loops_again_is_dropped_without_a_second_retry() -> None:
    calls: list[int] = []

    def redecode(start_s: float, end_s: float) -> list[RawSegment]:
        calls.append(1)
        return [raw("thank you " * 8, start=start_s, **LOOPY)]

    transcript, _ = assemble([raw("thank you " * 8, **LOOPY)], redecode=redecode)
    assert calls == [1] and transcript.segments == ()


def test_the_replay_search_runs_only_for_a_window_over_the_threshold() -> None:
    _, built = assemble([raw(MESSAGE), raw(MESSAGE, start=2.0)])
    assert built == []
    _, built = assemble([raw(MESSAGE, **LOOPY), raw(MESSAGE, start=2.0, **LOOPY)])
    assert built == [1]


def test_a_kept_repeat_still_passes_the_text_rules() -> None:
    segments = [raw("Thanks for watching!", start=2.0 * i, **LOOPY) for i in range(2)]
    transcript, _ = assemble(segments, replayed=((2.0, 4.0),))
    assert transcript.segments == ()


@pytest.mark.parametrize(
    ("text", "loops"),
    [
        ("嗯嗯嗯嗯嗯嗯", True),
        ("thankyouthankyouthankyou", True),
        ("学区房首付只要三十万", False),
        ("pressonetospeaktoanagent", False),
        ("", False),
    ],
)
def test_loops_within_a_segment(text: str, loops: bool) -> None:
    assert _loops(text) is loops


def test_repetition_verdict_prefers_the_acoustic_repeat() -> None:
    assert repetition_verdict(MESSAGE, seen=[], coverage=0.0, cfg=CFG) is None
    seen = [normalise_for_matching(MESSAGE)]
    assert repetition_verdict(MESSAGE, seen=seen, coverage=0.0, cfg=CFG) == "repetition"
    assert repetition_verdict(MESSAGE, seen=seen, coverage=0.9, cfg=CFG) == "repeat"


def test_replay_coverage_of_a_played_twice_signal() -> None:
    rng = np.random.default_rng(7)
    t = np.arange(int(2.5 * 16_000)) / 16_000
    f0 = 140 + 30 * np.sin(2 * np.pi * 1.3 * t) + 10 * rng.standard_normal(t.size).cumsum() / 400
    voice = 0.3 * np.sin(2 * np.pi * np.cumsum(f0) / 16_000) * (0.6 + 0.4 * np.sin(6 * t))
    gap = np.zeros(8_000)
    samples = np.concatenate([gap, voice, gap, voice, gap]).astype(np.float32)
    coverage = replay_coverage_of(samples)
    assert coverage(0.5, 3.0) < 0.5  # the first take replays nothing
    assert coverage(3.5, 6.0) > 0.5  # the second replays the first


def test_speech_a_window_skipped_is_found_for_decoding_again() -> None:
    sr = 16_000
    chunks = [(0, 3 * sr), (int(3.2 * sr), 8 * sr), (10 * sr, 12 * sr), (14 * sr, 18 * sr)]
    segments = [raw("hello", start=0.0), raw("there", start=2.5)]  # cover 0-4.5 s
    assert uncovered_speech(segments, chunks) == [(4.5, 8.0), (14.0, 18.0)]  # 10-12 s: short
    assert uncovered_speech([], []) == []


def test_times_in_the_joined_speech_move_as_faster_whisper_moves_its_own() -> None:
    from faster_whisper.transcribe import Segment, Word, restore_speech_timestamps

    sr = 16_000
    chunks = [(sr, 2 * sr), (3 * sr, 4 * sr), (6 * sr, 7 * sr)]  # joined: 0-1, 1-2, 2-3 s
    raws = [
        # words on both sides of the first joint; one straddles it (its middle decides)
        RawSegment(0.2, 1.3, " a b c", -0.2, 0.01, 1.1,
                   ((0.2, 0.6, " a", 0.9), (0.7, 0.95, " b", 0.9), (0.9, 1.3, " c", 0.8))),
        RawSegment(1.5, 2.0, " d", -0.3, 0.02, 1.0, ()),  # no word times: its end is a chunk's
        RawSegment(2.1, 2.9, " e", -0.3, 0.02, 1.0, ()),
    ]  # fmt: skip
    theirs = list(
        restore_speech_timestamps(
            [
                Segment(
                    i,
                    0,
                    r.start_s,
                    r.end_s,
                    r.text,
                    [],
                    r.avg_logprob,
                    r.compression_ratio,
                    r.no_speech_prob,
                    [Word(*w) for w in r.words] or None,
                    0.0,
                )
                for i, r in enumerate(raws)
            ],
            [{"start": a, "end": b} for a, b in chunks],
            sr,
        )
    )
    ours = on_recording(raws, chunks)
    assert [(r.start_s, r.end_s) for r in ours] == [(s.start, s.end) for s in theirs]
    assert [r.words for r in ours] == [
        tuple((w.start, w.end, w.word, w.probability) for w in s.words or ()) for s in theirs
    ]
    assert ours[0].words[2][:2] == (2.9, 3.3)  # " c" kept whole, by the second chunk
    assert (ours[1].start_s, ours[1].end_s) == (3.5, 4.0)
    assert [r.text for r in ours] == [r.text for r in raws]


def test_speech_no_segment_covers_is_decoded_on_its_own_and_put_in_its_place() -> None:
    sr = 16_000
    audio = np.zeros(20 * sr, np.float32)
    asked: list[tuple[int, float]] = []

    def decode(span: np.ndarray, start_s: float) -> list[RawSegment]:
        asked.append((span.size, start_s))
        return [raw("again", start=0.5)]

    redecode = span_redecoder(audio, decode)
    assert redecode(3.0, 3.4) == []  # under half a second: not worth a window
    found = with_uncovered([raw("first"), raw("last", start=16.0)], [(0, 18 * sr)], redecode)
    assert asked == [(14 * sr, 2.0)]  # 2-16 s: between the first segment and the last
    assert [r.text.strip() for r in found] == ["first", "again", "last"]
    assert found[1].start_s == 2.5 and found[1].words[0][0] == 2.5


def test_a_span_decoded_on_its_own_moves_with_its_words() -> None:
    decoded = RawSegment(0.2, 1.4, " Press one.", -0.2, 0.01, 1.1,
                         ((0.2, 0.7, " Press", 0.9), (0.8, 1.4, " one.", 0.8)))  # fmt: skip
    moved = decoded.shifted(12.5)
    assert (moved.start_s, moved.end_s) == (12.7, 13.9)
    assert moved.words == ((12.7, 13.2, " Press", 0.9), (13.3, 13.9, " one.", 0.8))
    assert moved.text == decoded.text
