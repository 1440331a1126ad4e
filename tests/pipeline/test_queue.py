"""Recorded queue announcements: which replays are set aside, and what the verdict judges."""

from pathlib import Path

import numpy as np
import pytest

from pipeline.config import DetectorConfig
from pipeline.detector import Detector
from pipeline.messages import make_evidence
from pipeline.queue import (
    QUEUE_MIN_SHARE,
    find_announcement,
    judged_transcript,
    muted,
    outside,
    queue_share,
    set_aside,
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


def test_a_replayed_queue_message_and_its_looping_music_are_set_aside() -> None:
    transcript, repeats = _hold_call(HOLD_EN)
    found = find_announcement(transcript, repeats)
    assert found is not None
    assert found.spans == ((4.6, 8.4), (9.0, 12.0), (16.1, 19.9), (20.5, 23.5))
    assert found.replays == 1 and found.start_s == 4.6
    assert found.quote.startswith("Thank you for holding.")
    assert found.seconds == pytest.approx(3.8 + 3.0 + 3.8 + 3.0)
    assert set_aside(repeats, found) == []
    assert found.announced == ((4.6, 8.4), (16.1, 19.9))
    judged = judged_transcript(transcript, found)
    assert [s.text for s in judged.segments] == [AGENT, AGENT_BACK]


def test_a_replayed_pitch_is_not_an_announcement() -> None:
    transcript, repeats = _hold_call(PITCH)
    assert find_announcement(transcript, repeats) is None


def test_a_replay_with_other_words_in_it_keeps_counting() -> None:
    transcript, repeats = _hold_call(HOLD_EN)
    # the agent's own words replayed (a recorded agent): not part of the announcement
    agent_replay = Repeat((0.5, 3.5), (27.5, 30.5), 0.97)
    found = find_announcement(transcript, [*repeats, agent_replay])
    assert found is not None
    assert set_aside([*repeats, agent_replay], found) == [agent_replay]


def test_a_word_stretched_into_the_music_does_not_keep_it() -> None:
    transcript, repeats = _hold_call(HOLD_EN)
    # Whisper put the agent's first word back at the music's start (9.2-10.0 s)
    words = (Word(9.2, 10.0, "So", 0.5), *_segment(27.0, 31.0, AGENT_BACK).words)
    stray = Segment(9.2, 31.0, "So " + AGENT_BACK, -0.2, 0.01, 1.2, words=words)
    found = find_announcement(Transcript("en", 1.0, (*transcript.segments[:3], stray)), repeats)
    assert found is not None and (9.0, 12.0) in found.spans


def test_a_short_replayed_prompt_beside_the_announcement_keeps_counting() -> None:
    transcript, repeats = _hold_call(HOLD_EN)
    press = Repeat((24.0, 25.5), (31.5, 33.0), 0.99)  # "Press one." twice: two words in 1.5 s
    segments = (*transcript.segments, _segment(24.0, 25.5, "Press one."),
                _segment(31.5, 33.0, "Press one."))  # fmt: skip
    found = find_announcement(Transcript("en", 1.0, segments), [*repeats, press])
    assert found is not None and set_aside([*repeats, press], found) == [press]


def test_one_play_heard_right_is_enough() -> None:
    transcript, repeats = _hold_call(HOLD_EN)
    misheard = "Thank you for folding. Your cold is important. Plea stay on the lime."
    garbled = Transcript("en", 1.0, (*transcript.segments[:2], _segment(16.0, 20.0, misheard),
                                     transcript.segments[3]))  # fmt: skip
    found = find_announcement(garbled, repeats)
    assert found is not None and found.spans[0] == (4.6, 8.4)
    assert misheard not in [s.text for s in judged_transcript(garbled, found).segments]


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


def test_muted_and_outside() -> None:
    x = np.ones(4 * ANALYSIS_RATE_HZ, dtype=np.float32)
    y = muted(x, [(1.0, 2.0)])
    assert y[:ANALYSIS_RATE_HZ].all() and not y[ANALYSIS_RATE_HZ : 2 * ANALYSIS_RATE_HZ].any()
    assert x.all()  # a copy
    assert outside([(0.0, 3.0), (3.5, 4.0)], [(1.0, 2.0), (3.8, 5.0)]) == pytest.approx(2.3)


class _TimedTranscriber:
    """A transcriber that returns fixed segments."""

    def __init__(self, transcript: Transcript) -> None:
        from pipeline.types import ModelInfo

        self.transcript = transcript
        self.model_info = ModelInfo(role="asr", model_id="fake-asr", sha256="0" * 64)

    def transcribe(self, samples: np.ndarray) -> Transcript:
        return self.transcript


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


def test_the_verdict_sets_a_replayed_queue_message_aside(tmp_path: Path) -> None:
    path, call, transcript = _call_audio(tmp_path, HOLD_EN)
    scorer = _RecordingScorer()
    text = FakeTextClassifier()
    detector = Detector(_TimedTranscriber(transcript), text, DetectorConfig(), synth_scorer=scorer)
    verdict = detector.detect(path)
    evidence = {e.name: e for e in verdict.evidence}
    assert evidence["replayed_speech_s"].value == 0.0
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
