"""Recorded queue announcements: which replays are set aside, and what the verdict judges."""

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import DetectorConfig
from pipeline.detector import Detector
from pipeline.messages import make_evidence
from pipeline.queue import (
    MENU_WITHIN_S,
    QUEUE_MIN_SHARE,
    find_announcement,
    find_hold_music,
    find_line_menu,
    hears_words,
    judged_transcript,
    muted,
    queue_share,
    union,
    without_spans,
)
from pipeline.text_cues import RuleTextClassifier
from pipeline.types import (
    ANALYSIS_RATE_HZ,
    Evidence,
    Repeat,
    Segment,
    SyntheticVoiceScore,
    Transcript,
    Verdict,
    Word,
)
from tests.conftest import write_wav
from tests.fakes import FakeTextClassifier
from tests.pipeline.test_acoustic import utterance

HOLD_EN = (
    "Thank you for holding. Your call is important to us. Please stay on the line, and the "
    "next available agent will be with you shortly."
)
HOLD_ZH = "感谢您的耐心等待，您的来电对我们非常重要，请不要挂机，我们将尽快为您接通人工服务。"


def queue_evidence() -> Evidence:
    """The reason a verdict carries for a hold message set aside (played twice from 0:05.4)."""
    return make_evidence(
        "structure", "queue_announcement", value=14.6, weight=0.0,
        code="queue_announcement.found",
        params={"plays": 2.0, "seconds": 14.6, "start_s": 5.4, "quote": "Thank you for holding"},
        span_s=(5.4, 12.7),
    )  # fmt: skip


@pytest.mark.parametrize("text", [HOLD_EN, HOLD_ZH, "All of our agents are currently busy."])
def test_queue_messages_are_mostly_queue_phrasing(text: str) -> None:
    assert queue_share(text) >= 0.8


@pytest.mark.parametrize(
    "text",
    [
        # an agent putting the caller on hold: a queue phrase inside her own words
        "Alright, that's a question for our technical team. Let me get you over there, please "
        "hold, it'll be just a minute.",
        "好的，您这个问题需要技术部门来处理，我这边帮您转过去，请不要挂机，稍等片刻。",
        # a robot's pitch that asks the callee to stay on the line
        "Please stay on the line to speak with a licensed agent about your Medicare benefits.",
        "Press 1 now to speak with the warranty specialist.",
        "",
    ],
)
def test_an_agents_or_a_pitchs_words_are_not(text: str) -> None:
    assert queue_share(text) < QUEUE_MIN_SHARE


def hold_music_evidence() -> Evidence:
    """The reason a verdict carries for hold music set aside (12.0 s of it from 0:03.6)."""
    return make_evidence(
        "structure", "hold_music", value=12.0, weight=0.0, code="hold_music.found",
        params={"seconds": 12.0, "start_s": 3.6}, span_s=(3.6, 16.1),
    )  # fmt: skip


def _segment(start: float, end: float, text: str, *, words: bool = True) -> Segment:
    """A segment whose words share its time evenly (none with ``words=False``)."""
    tokens = text.split()
    step = (end - start) / max(len(tokens), 1)
    timed = tuple(
        Word(start + i * step, start + (i + 1) * step, w, 0.9) for i, w in enumerate(tokens)
    )
    return Segment(start, end, text, -0.2, 0.01, 1.2, words=timed if words else ())


AGENT = "Hi, this is Dana from the billing team, I can see your account here."
AGENT_BACK = "Sorry about the wait, so the charge on the fourteenth was a duplicate."
PITCH = "You have been selected for a special offer on your car warranty today."


def _hold_call(announcement: str) -> tuple[Transcript, list[Repeat]]:
    """An agent, the same recording twice with music after each play, the agent again: the
    transcript and the replays the replay search would find."""
    transcript = Transcript(
        "en",
        1.0,
        (
            _segment(0.0, 4.0, AGENT),
            _segment(4.5, 8.5, announcement),
            _segment(16.0, 20.0, announcement),
            _segment(27.0, 31.0, AGENT_BACK),
        ),
    )
    repeats = [
        Repeat((4.6, 8.4), (16.1, 19.9), 0.99),  # the recording
        Repeat((9.0, 12.0), (20.5, 23.5), 0.95),  # the hold music loops: no words heard
    ]
    return transcript, repeats


VOICED = [(0.0, 4.0), (4.5, 8.5), (9.0, 14.0), (16.0, 20.0), (20.5, 25.5), (27.0, 31.0)]


def test_a_replayed_queue_message_and_its_looping_music_are_set_aside() -> None:
    transcript, repeats = _hold_call(HOLD_EN)
    found = find_announcement(transcript, repeats)
    assert found is not None
    assert found.spans == ((4.6, 8.4), (16.1, 19.9))
    assert found.replays == 1 and found.start_s == 4.6
    assert found.quote.startswith("Thank you for holding.")
    assert found.seconds == pytest.approx(2 * 3.8)
    music = find_hold_music(transcript, repeats, VOICED, announcement=found)
    # the loop's plays and the whole wordless stretches of sound they lie in
    assert music is not None and music.loops == 1 and music.start_s == 9.0
    assert music.spans == ((9.0, 12.0), (9.0, 14.0), (20.5, 23.5), (20.5, 25.5))
    assert music.seconds == pytest.approx(10.0)
    judged = judged_transcript(transcript, found, music)
    assert [s.text for s in judged.segments] == [AGENT, AGENT_BACK]


def test_looping_music_with_no_announcement_is_set_aside() -> None:
    transcript, repeats = _hold_call(PITCH)
    music = find_hold_music(transcript, repeats, VOICED)
    assert music is not None and music.spans[0] == (9.0, 12.0)
    # the replayed pitch has words: it is no music, and stays
    assert (4.6, 8.4) not in music.spans
    assert [s.text for s in judged_transcript(transcript, None, music).segments] == [
        AGENT, PITCH, PITCH, AGENT_BACK]  # fmt: skip


def test_music_joined_to_the_speech_goes_up_to_the_words() -> None:
    # the line's sound between the music and the agent's return is loud enough for the VAD to
    # join them: the play grows to the agent's first word, and the rest of the loop (23.5-27 s)
    # neither stays judged nor counts as sound the ASR heard nothing in
    transcript, repeats = _hold_call(PITCH)
    joined = [*VOICED[:4], (20.5, 31.0)]
    music = find_hold_music(transcript, repeats, joined)
    assert music is not None and (20.5, 27.0) in music.spans
    assert [s.text for s in judged_transcript(transcript, None, music).segments][-1] == AGENT_BACK
    # the rest of a loop does not count against the gate: a slow speaker (18 words in 10 s
    # of speech) with 5 s of music the loop did not replay and 2 s of line sound in between,
    # all one voiced stretch; counted, they would make it 18 words in 19 s
    slow = Transcript("en", 1.0, (
        _segment(0.0, 4.0, "Hi, Dana here from billing, one moment please."),
        _segment(24.0, 30.0, "Thanks for waiting, so that charge was a duplicate one."),
    ))  # fmt: skip
    loop = Repeat((5.0, 10.0), (12.0, 17.0), 0.95)
    music = find_hold_music(slow, [loop], [(0.0, 4.0), (5.0, 30.0)])
    assert music is not None and union(music.spans) == ((5.0, 24.0),)


def test_no_music_where_the_asr_hears_little_of_the_caller() -> None:
    # a voice the ASR cannot follow: four words in 20 s of the caller's other sound; its
    # silence in a replay is no sign that the replay is not speech
    transcript, repeats = _hold_call(PITCH)
    sparse = Transcript("en", 1.0, (_segment(0.0, 4.0, "not to say I"),))
    assert find_hold_music(sparse, repeats, VOICED) is None
    assert find_hold_music(transcript, repeats, VOICED) is not None


def test_a_replayed_pitch_is_not_an_announcement() -> None:
    transcript, repeats = _hold_call(PITCH)
    assert find_announcement(transcript, repeats) is None


def test_a_replay_with_other_words_in_it_is_no_music() -> None:
    transcript, repeats = _hold_call(HOLD_EN)
    # the agent's own words replayed (a recorded agent): not part of the announcement
    agent_replay = Repeat((0.5, 3.5), (27.5, 30.5), 0.97)
    found = find_announcement(transcript, [*repeats, agent_replay])
    music = find_hold_music(transcript, [*repeats, agent_replay], VOICED, announcement=found)
    assert found is not None and music is not None
    assert not {(0.5, 3.5), (27.5, 30.5)} & {*found.spans, *music.spans}


def test_a_word_stretched_into_the_music_does_not_keep_it() -> None:
    transcript, repeats = _hold_call(HOLD_EN)
    # Whisper put the agent's first word back at the music's start (9.2-10.0 s)
    words = (Word(9.2, 10.0, "So", 0.5), *_segment(27.0, 31.0, AGENT_BACK).words)
    stray = Segment(9.2, 31.0, "So " + AGENT_BACK, -0.2, 0.01, 1.2, words=words)
    held = Transcript("en", 1.0, (*transcript.segments[:3], stray))
    music = find_hold_music(held, repeats, VOICED, announcement=find_announcement(held, repeats))
    assert music is not None and (9.0, 12.0) in music.spans


def test_a_short_replayed_prompt_is_no_music() -> None:
    transcript, repeats = _hold_call(HOLD_EN)
    press = Repeat((24.0, 25.5), (31.5, 33.0), 0.99)  # "Press one." twice: two words in 1.5 s
    segments = (*transcript.segments, _segment(24.0, 25.5, "Press one."),
                _segment(31.5, 33.0, "Press one."))  # fmt: skip
    held = Transcript("en", 1.0, segments)
    found = find_announcement(held, [*repeats, press])
    music = find_hold_music(held, [*repeats, press], VOICED, announcement=found)
    assert music is not None and (24.0, 25.5) not in music.spans


def test_a_replayed_number_is_no_music() -> None:
    # a recorded prompt reading digits: Whisper writes "1704" (1.4 s) as one word, but it is four
    number = Repeat((11.4, 14.0), (20.6, 23.2), 0.99)
    segments = (_segment(11.3, 12.7, "1704"), _segment(20.5, 21.9, "1704"))
    assert find_hold_music(Transcript("en", 1.0, segments), [number], [(11.4, 14.0)]) is None
    chinese = (_segment(11.3, 12.7, "您好"), _segment(20.5, 21.9, "您好"))
    assert find_hold_music(Transcript("zh", 1.0, chinese), [number], [(11.4, 14.0)]) is None


def test_hears_words_decodes_the_stretch_alone() -> None:
    samples = np.zeros(20 * ANALYSIS_RATE_HZ, dtype=np.float32)
    pieces: list[int] = []

    def asr(text: str) -> Callable[[np.ndarray], Transcript]:
        def transcribe(piece: np.ndarray) -> Transcript:
            pieces.append(piece.size)
            heard = (_segment(0.0, 2.0, text),) if text else ()
            return Transcript("en", 1.0, heard)

        return transcribe

    assert hears_words(asr("zero three"), samples, (5.0, 10.0))
    assert pieces == [5 * ANALYSIS_RATE_HZ]
    assert not hears_words(asr(""), samples, (5.0, 10.0))


def test_one_play_heard_right_is_enough() -> None:
    transcript, repeats = _hold_call(HOLD_EN)
    misheard = "Thank you for folding. Your cold is important. Plea stay on the lime."
    garbled = Transcript("en", 1.0, (*transcript.segments[:2], _segment(16.0, 20.0, misheard),
                                     transcript.segments[3]))  # fmt: skip
    found = find_announcement(garbled, repeats)
    assert found is not None and found.spans[0] == (4.6, 8.4)
    assert misheard not in [s.text for s in judged_transcript(garbled, found, None).segments]


def test_without_spans_keeps_a_segments_other_words() -> None:
    segment = _segment(0.0, 10.0, "one two three four five six seven eight nine ten")
    transcript = Transcript("en", 1.0, (segment, _segment(12.0, 14.0, "later", words=False)))
    judged = without_spans(transcript, [(2.0, 5.0), (12.5, 13.5)])
    # words by their middle: "three" (2.5 s) to "five" (4.5 s) go; "later" has no word times
    # and its middle (13 s) is inside the second span
    assert [s.text for s in judged.segments] == ["one two six seven eight nine ten"]
    assert judged.segments[0].start_s == 0.0 and judged.segments[0].end_s == 10.0
    assert len(judged.segments[0].words) == 7
    wider = without_spans(transcript, [(2.0, 5.0)], margin=0.5)  # "two" and "six" too
    assert wider.segments[0].text == "one seven eight nine ten"


def test_muted() -> None:
    x = np.ones(4 * ANALYSIS_RATE_HZ, dtype=np.float32)
    y = muted(x, [(1.0, 2.0)])
    assert y[:ANALYSIS_RATE_HZ].all() and not y[ANALYSIS_RATE_HZ : 2 * ANALYSIS_RATE_HZ].any()
    assert x.all()  # a copy


class _TimedTranscriber:
    """A transcriber that returns fixed segments for a whole recording, and ``alone`` for a
    stretch of it decoded on its own (shorter than the recording's words)."""

    def __init__(self, transcript: Transcript, *, alone: str = "") -> None:
        from pipeline.types import ModelInfo

        self.transcript = transcript
        self.alone = alone
        self.model_info = ModelInfo(role="asr", model_id="fake-asr", sha256="0" * 64)

    def transcribe(self, samples: np.ndarray) -> Transcript:
        if samples.size / ANALYSIS_RATE_HZ >= self.transcript.segments[-1].end_s:
            return self.transcript
        heard = (_segment(0.0, samples.size / ANALYSIS_RATE_HZ, self.alone),) if self.alone else ()
        return Transcript(self.transcript.language, 1.0, heard)


class _RecordingScorer:
    """A synthetic-voice scorer that calls silence human and sound synthetic, and keeps what
    it scored."""

    def __init__(self) -> None:
        from pipeline.types import ModelInfo

        self.model_info = ModelInfo(role="synthetic_voice", model_id="fake", sha256="1" * 64)
        self.scored: list[np.ndarray] = []

    def score(self, samples: np.ndarray) -> SyntheticVoiceScore:
        self.scored.append(samples)
        return SyntheticVoiceScore(1.0, 0.73, ((0.0, 1.0, 1.0),), (0.0, 1.0), "median")


def _call_audio(tmp_path: Path, text: str) -> tuple[Path, np.ndarray, Transcript]:
    """Agent speech, a recorded message, quiet, the same message again, the agent again: the
    file, its samples and its transcript, the message read as ``text``."""
    rng = np.random.default_rng(3)
    message = utterance(rng, n_syllables=14, robot=False)
    parts = [
        (0.3, utterance(rng, n_syllables=12, robot=False), AGENT),
        (0.6, message, text),
        (5.0, message, text),
        (0.6, utterance(rng, n_syllables=12, robot=False), AGENT_BACK),
    ]
    pieces, segments, t = [], [], 0.0
    for gap_s, chunk, words in parts:
        pieces += [np.zeros(int(gap_s * ANALYSIS_RATE_HZ)), chunk]
        t += int(gap_s * ANALYSIS_RATE_HZ) / ANALYSIS_RATE_HZ
        segments.append(_segment(t, t + chunk.size / ANALYSIS_RATE_HZ, words))
        t += chunk.size / ANALYSIS_RATE_HZ
    call = np.concatenate([*pieces, np.zeros(ANALYSIS_RATE_HZ // 2)]).astype(np.float32)
    path = write_wav(tmp_path / "held.wav", call, sr=ANALYSIS_RATE_HZ)
    return path, call, Transcript("en", 1.0, tuple(segments))


def _judged_with_recorders(
    path: Path, transcript: Transcript
) -> tuple[Verdict, dict[str, Evidence], _RecordingScorer, FakeTextClassifier]:
    """The verdict on ``path`` heard as ``transcript``, its evidence by name, and the voice and
    text heads that kept what they were given; the replay cue found nothing left to count."""
    scorer, text = _RecordingScorer(), FakeTextClassifier()
    detector = Detector(_TimedTranscriber(transcript), text, DetectorConfig(), synth_scorer=scorer)
    verdict = detector.detect(path)
    evidence = {e.name: e for e in verdict.evidence}
    assert evidence["replayed_speech_s"].value == 0.0
    return verdict, evidence, scorer, text


def test_the_verdict_sets_a_replayed_queue_message_aside(tmp_path: Path) -> None:
    path, call, transcript = _call_audio(tmp_path, HOLD_EN)
    verdict, evidence, scorer, text = _judged_with_recorders(path, transcript)
    note = evidence["queue_announcement"]
    assert note.weight == 0.0 and dict(note.params)["plays"] == 2.0
    assert "queue announcement played 2 times" in note.detail and "排队录音" in note.detail_zh
    # the text heads judge the agent's words only; the voice head the call with it silenced
    judged = text.calls[0][0]
    assert [s.text for s in judged.segments] == [AGENT, AGENT_BACK]
    assert len(scorer.scored) == 2
    first = transcript.segments[1]
    inside = slice(
        int(first.start_s * ANALYSIS_RATE_HZ) + 800, int(first.end_s * ANALYSIS_RATE_HZ) - 800
    )
    assert not scorer.scored[1][inside].any() and call[inside].any()
    # the verdict still shows every word that was heard
    assert len(verdict.transcript.segments) == 4


def test_a_replayed_pitch_keeps_its_weight(tmp_path: Path) -> None:
    path, _, transcript = _call_audio(tmp_path, PITCH)
    detector = Detector(_TimedTranscriber(transcript), RuleTextClassifier(), DetectorConfig())
    evidence = {e.name: e for e in detector.detect(path).evidence}
    assert evidence["replayed_speech_s"].value > 2.0 and evidence["replayed_speech_s"].weight > 0
    assert "queue_announcement" not in evidence


def test_a_recording_of_nothing_but_the_announcement_is_judged_as_it_is(tmp_path: Path) -> None:
    _, call, transcript = _call_audio(tmp_path, HOLD_EN)
    start = int(transcript.segments[1].start_s * ANALYSIS_RATE_HZ) - ANALYSIS_RATE_HZ // 4
    end = int(transcript.segments[2].end_s * ANALYSIS_RATE_HZ) + ANALYSIS_RATE_HZ // 4
    path = write_wav(tmp_path / "queue.wav", call[start:end], sr=ANALYSIS_RATE_HZ)
    shift = start / ANALYSIS_RATE_HZ
    only = Transcript(
        "en",
        1.0,
        tuple(
            _segment(s.start_s - shift, s.end_s - shift, s.text) for s in transcript.segments[1:3]
        ),
    )
    detector = Detector(_TimedTranscriber(only), RuleTextClassifier(), DetectorConfig())
    evidence = {e.name: e for e in detector.detect(path).evidence}
    assert evidence["replayed_speech_s"].weight > 0
    assert "queue_announcement" not in evidence


def _music(seconds: float) -> np.ndarray:
    """A plucked chord every half second, its chord changing each beat (the same every time)."""
    sr, beat = ANALYSIS_RATE_HZ, ANALYSIS_RATE_HZ // 2
    t = np.arange(beat) / sr
    chords = ((261.6, 329.6, 392.0), (220.0, 261.6, 329.6), (174.6, 220.0, 261.6))
    notes = [
        np.exp(-3 * t)
        * sum(np.sin(2 * np.pi * f * (k + 1) * t) / (k + 1) for f in c for k in range(3))
        for c in chords
    ]
    out = np.concatenate([notes[i % 3] for i in range(int(seconds * 2))])
    return (0.1 * out / np.abs(out).max()).astype(np.float32)


def music_call(tmp_path: Path) -> tuple[Path, np.ndarray, Transcript, list[int]]:
    """An agent, 6 s of hold music twice, the agent again: the file, its samples, its
    transcript and where (in samples) the agent starts, the music starts and ends, and the
    agent speaks again."""
    rng = np.random.default_rng(5)
    loop = _music(6.0)
    agent, back = (utterance(rng, n_syllables=12, robot=False) for _ in range(2))
    gap = np.zeros(ANALYSIS_RATE_HZ // 2, np.float32)
    call = np.concatenate([gap, agent, gap, loop, gap, loop, gap, back, gap])
    at = [gap.size, 2 * gap.size + agent.size]
    at += [at[1] + 2 * loop.size + gap.size, at[1] + 2 * loop.size + 2 * gap.size]
    sr = ANALYSIS_RATE_HZ
    transcript = Transcript("en", 1.0, (
        _segment(at[0] / sr, (at[0] + agent.size) / sr, AGENT),
        _segment(at[3] / sr, (at[3] + back.size) / sr, AGENT_BACK)))  # fmt: skip
    return write_wav(tmp_path / "music.wav", call, sr=sr), call, transcript, at


def test_the_verdict_sets_looping_hold_music_aside(tmp_path: Path) -> None:
    path, call, transcript, at = music_call(tmp_path)
    verdict, evidence, scorer, _ = _judged_with_recorders(path, transcript)
    assert [round(a) for span in verdict.set_aside for a in span] == [4, 10, 10, 16]  # two loops
    note = evidence["hold_music"]
    assert note.weight == 0.0 and note.value >= 8.0 and "hold music" in note.detail
    # the voice head scored the call again with the music silenced, the agent's speech kept
    held = slice(at[1], at[2])  # (the VAD's 20 ms frames may leave a note's last 10 ms)
    assert np.sum(scorer.scored[1][held] ** 2) < 1e-3 * np.sum(call[held] ** 2)
    assert scorer.scored[1][: at[1]].any() and scorer.scored[1][at[3] :].any()
    # with the loop gone, the timing cues measure the agent alone: two stretches of speech
    assert evidence.get("pause_cv") is None


def test_a_replay_the_asr_skipped_but_hears_alone_keeps_counting(tmp_path: Path) -> None:
    # the whole recording's transcript missed the replayed stretch; decoded alone it has words
    path, _, transcript, _ = music_call(tmp_path)
    asr = _TimedTranscriber(transcript, alone="I can't allow the examination to be held.")
    verdict = Detector(asr, FakeTextClassifier(), DetectorConfig()).detect(path)
    evidence = {e.name: e for e in verdict.evidence}
    assert "hold_music" not in evidence and not verdict.set_aside
    assert evidence["replayed_speech_s"].value > 2.0


def test_music_that_never_comes_round_again_is_kept(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    agent = utterance(rng, n_syllables=12, robot=False)
    gap = np.zeros(ANALYSIS_RATE_HZ // 2, np.float32)
    call = np.concatenate([gap, agent, gap, _music(1.5), gap])
    sr = ANALYSIS_RATE_HZ
    transcript = Transcript("en", 1.0, (_segment(0.5, 0.5 + agent.size / sr, AGENT),))
    path = write_wav(tmp_path / "short.wav", call, sr=sr)
    detector = Detector(_TimedTranscriber(transcript), FakeTextClassifier(), DetectorConfig())
    assert "hold_music" not in {e.name for e in detector.detect(path).evidence}


MENU_EN = (
    "Thank you for calling Northwind Energy. For billing, press one. To report an outage, press "
    "two. To speak with an agent, press zero."
)
MENU_ZH = "您好，欢迎致电北风能源。账单查询请按1，故障报修请按2，人工服务请按0。"


def _menu_transcript(menu: str, *after: str, language: str = "en") -> Transcript:
    """``menu`` from 0.5 s, then each of ``after`` in turn, 5 s each."""
    segments = [_segment(0.5, 8.5, menu)]
    segments += [_segment(9.0 + 5.5 * i, 14.0 + 5.5 * i, text) for i, text in enumerate(after)]
    return Transcript(language, 1.0, tuple(segments))


@pytest.mark.parametrize(("menu", "language"), [(MENU_EN, "en"), (MENU_ZH, "zh")])
def test_the_called_line_s_menu_before_the_agent_is_found(menu: str, language: str) -> None:
    found = find_line_menu(_menu_transcript(menu, AGENT, AGENT_BACK, language=language))
    assert found is not None
    assert found.span == pytest.approx((0.5, 8.5)) and found.seconds == pytest.approx(8.0)
    assert found.quote.replace(" ", "") == menu.replace(" ", "")


@pytest.mark.parametrize(
    "first",
    [
        # a dialer's pitch offers a key but does not thank you for calling
        "Press 1 now to speak with the warranty specialist about your vehicle.",
        "This is an important message about your car warranty. To speak with a specialist, "
        "press one.",
        # an agent thanks you for calling but offers no key
        "Thank you for calling Northwind Energy, my name is Dana, how can I help you today?",
        "您好，欢迎致电北风能源，我是客服小李，请问有什么可以帮您？",
        # a queue message with no menu (replayed, it is the queue rule's)
        HOLD_EN,
    ],
)
def test_no_menu_without_both_a_greeting_and_a_key(first: str) -> None:
    language = "zh" if "您" in first else "en"
    assert find_line_menu(_menu_transcript(first, AGENT, language=language)) is None


def test_a_menu_only_opening_the_recording_and_followed_by_speech() -> None:
    assert find_line_menu(_menu_transcript(MENU_EN)) is None  # nothing after it
    later = Transcript("en", 1.0, (_segment(0.0, 4.0, AGENT), _segment(4.5, 12.5, MENU_EN)))
    assert find_line_menu(later) is None
    # the menu's segments must each be mostly menu phrasing: an agent's words end the run
    mixed = _menu_transcript("Thank you for calling.", "For billing, press one.", AGENT, PITCH)
    found = find_line_menu(mixed)
    assert found is not None and found.span == pytest.approx((0.5, 14.0))


def test_the_verdict_sets_the_called_line_s_menu_aside(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    sr = ANALYSIS_RATE_HZ
    menu, agent = (utterance(rng, n_syllables=14, robot=r) for r in (True, False))
    gap = np.zeros(sr // 2, np.float32)
    call = np.concatenate([gap, menu, gap, agent, gap])
    at = gap.size + menu.size + gap.size
    transcript = Transcript("en", 1.0, (
        _segment(gap.size / sr, (gap.size + menu.size) / sr, MENU_EN),
        _segment(at / sr, (at + agent.size) / sr, AGENT)))  # fmt: skip
    path = write_wav(tmp_path / "menu.wav", call, sr=sr)
    verdict, evidence, scorer, text = _judged_with_recorders(path, transcript)
    note = evidence["line_menu"]
    assert note.weight == 0.0 and "recorded menu" in note.detail and "语音菜单" in note.detail_zh
    assert verdict.set_aside == ((gap.size / sr, (gap.size + menu.size) / sr),)
    assert [s.text for s in text.calls[0][0].segments] == [AGENT]
    inside = slice(gap.size + 800, gap.size + menu.size - 800)
    assert not scorer.scored[1][inside].any() and call[inside].any()
    assert len(verdict.transcript.segments) == 2  # every word heard is still shown


@pytest.mark.parametrize(
    ("heard", "language"),
    [
        # how the ASR wrote two synthetic menus (flite, ttskit) before a live agent
        (
            [
                "Thank you for calling for sales.",
                "Press one for billing.",
                "Press two to speak with an agent.",
                "Press zero.",
            ],
            "en",
        ),  # fmt: skip
        (["您好 欢迎至电影资讯请按一", "长等查询请按吧", "人都服务请按赢"], "zh"),
    ],
)
def test_a_menu_as_the_asr_hears_it(heard: list[str], language: str) -> None:
    transcript = Transcript(language, 1.0, (
        *(_segment(2.0 * i, 2.0 * i + 1.8, text) for i, text in enumerate(heard)),
        _segment(9.0, 14.0, AGENT)))  # fmt: skip
    found = find_line_menu(transcript)
    assert found is not None and found.span == pytest.approx((0.0, 2.0 * len(heard) - 0.2))


def test_a_sentence_among_the_menu_s_keys_stays_in_the_menu() -> None:
    transcript = _menu_transcript(
        "You have reached Riverside Medical Group.",
        "If this is an emergency, hang up and dial nine one one.",
        "For appointments, press one.",
        AGENT,
    )
    found = find_line_menu(transcript)
    assert found is not None and found.span == pytest.approx((0.5, 19.5))
    # but a menu must open the recording: its last key within MENU_WITHIN_S
    late = [_segment(s.start_s + MENU_WITHIN_S, s.end_s + MENU_WITHIN_S, s.text)
            for s in transcript.segments]  # fmt: skip
    assert find_line_menu(dataclasses.replace(transcript, segments=tuple(late))) is None
