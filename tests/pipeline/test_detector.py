"""The composed pipeline with fake models: real decoding, cues and fusion."""

import dataclasses
import json
import math
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from pipeline.audio import load_audio
from pipeline.behaviour import PartyTurns
from pipeline.config import AudioLimits, DetectorConfig, load_config
from pipeline.detector import Detector
from pipeline.errors import AudioTooShortError, EmptyAudioError, NotAudioError
from pipeline.fuse import FusionModel
from pipeline.messages import recording_notes
from pipeline.text_cues import RuleTextClassifier
from pipeline.types import ANALYSIS_RATE_HZ, Evidence, Label, Verdict
from tests.conftest import write_wav
from tests.fakes import FakeContextCue, FakeTextClassifier, FakeTranscriber


def _detector(
    text: str = "您好，请按1了解详情。", config: DetectorConfig | None = None
) -> Detector:
    return Detector(FakeTranscriber(text), RuleTextClassifier(), config or DetectorConfig())


def test_verdict_is_complete_and_consistent(make_wav: Callable[..., Path]) -> None:
    path = make_wav(kind="robot", sr=8000, duration_s=6.0)
    verdict = _detector().detect(path)
    assert isinstance(verdict, Verdict)
    assert 0.0 <= verdict.robot_probability <= 1.0
    expected = Label.ROBOT if verdict.robot_probability >= verdict.threshold else Label.HUMAN
    assert verdict.label is expected
    weights = [abs(e.weight) for e in verdict.evidence]
    assert weights == sorted(weights, reverse=True)
    assert verdict.audio.sample_rate_hz == 8000
    assert verdict.audio.name == path.name
    assert {m.role for m in verdict.provenance.models} == {"asr", "text"}
    assert "not calibrated" in verdict.provenance.fusion_method
    assert any(e.name == "scripted_phrase" and e.weight > 0 for e in verdict.evidence)


def test_bytes_and_path_give_the_same_verdict(make_wav: Callable[..., Path]) -> None:
    path = make_wav(kind="human", duration_s=4.0)
    detector = _detector("Hi, it's Tom from the dealership, um, about the car you looked at.")
    from_path = detector.detect(path).to_dict()
    from_bytes = detector.detect(path.read_bytes(), name=path.name).to_dict()
    for record in (from_path, from_bytes):
        record["provenance"].pop("analysed_at_utc")
    assert from_path == from_bytes


def test_stereo_transcribes_both_parties(make_wav: Callable[..., Path]) -> None:
    path = make_wav(kind=("robot", "human"), duration_s=5.0, channels=2)
    transcriber = FakeTranscriber("喂，你好")
    text = FakeTextClassifier()
    verdict = Detector(transcriber, text, DetectorConfig()).detect(path)
    assert len(transcriber.calls) == 2
    assert verdict.other_party_transcript is not None
    assert text.calls[0][1] is verdict.other_party_transcript
    assert verdict.audio.channels == 2


def test_forced_caller_channel_is_respected(make_wav: Callable[..., Path]) -> None:
    path = make_wav(kind=("robot", "human"), duration_s=5.0, channels=2)
    verdict = _detector(config=load_config(caller_channel=1)).detect(path)
    assert verdict.audio.caller_channel == 1


def test_no_speech_at_all_is_an_error(make_wav: Callable[..., Path]) -> None:
    path = make_wav(kind="silence", duration_s=3.0)
    with pytest.raises(EmptyAudioError, match="silent"):
        _detector("").detect(path)


def test_a_call_that_only_rang_is_an_error_that_says_so(
    tmp_path: Path, synth: Callable[..., np.ndarray]
) -> None:
    t = np.arange(12 * ANALYSIS_RATE_HZ) / ANALYSIS_RATE_HZ
    ringing = 0.1 * np.sin(2 * np.pi * 450.0 * t) * ((t % 5.0) < 1.0)  # China's ringback
    path = write_wav(tmp_path / "unanswered.wav", ringing.astype(np.float32), sr=ANALYSIS_RATE_HZ)
    with pytest.raises(EmptyAudioError, match=r"no speech on the caller channel besides 3\.0 s of"):
        _detector("").detect(path)
    # a word after the ringing: too short, and the tones named beside it
    word = np.concatenate([ringing, synth("human", duration_s=0.6)]).astype(np.float32)
    path = write_wav(tmp_path / "hello.wav", word, sr=ANALYSIS_RATE_HZ)
    with pytest.raises(
        AudioTooShortError, match=r"caller channel besides 3\.0 s of telephone tones"
    ):
        _detector("").detect(path)


def test_a_verdict_names_the_ringing_it_left_out(
    tmp_path: Path, synth: Callable[..., np.ndarray]
) -> None:
    t = np.arange(10 * ANALYSIS_RATE_HZ) / ANALYSIS_RATE_HZ
    ringing = 0.1 * (np.sin(2 * np.pi * 440.0 * t) + np.sin(2 * np.pi * 480.0 * t)) / 2
    ringing *= (t % 6.0) < 2.0  # North America's ringback: 2 s on, 4 s off
    call = np.concatenate([ringing, synth("human", duration_s=6.0)]).astype(np.float32)
    verdict = _detector().detect(write_wav(tmp_path / "rang.wav", call, sr=ANALYSIS_RATE_HZ))
    assert [(round(a, 1), round(b, 1)) for a, b in verdict.tones] == [(0.0, 2.0), (6.0, 8.0)]
    silence = {e.name: e for e in verdict.evidence}["digital_silence_s"]
    assert silence.value < 1.0  # the cadence's dead gaps are not silence between sentences
    assert (
        _detector().detect(write_wav(tmp_path / "voice.wav", call[t.size :], sr=16_000)).tones == ()
    )


def test_a_very_quiet_recording_is_judged_as_at_its_recorded_level(
    tmp_path: Path, synth: Callable[..., np.ndarray]
) -> None:
    # at -45 dB the speech lies under the speech detector's -55 dBFS floor: it was refused
    # as "too short to judge" before quiet recordings were raised
    voice = synth("human", duration_s=6.0)
    loud = _detector().detect(write_wav(tmp_path / "loud.wav", voice, sr=ANALYSIS_RATE_HZ))
    faint = (voice * 10 ** (-45 / 20)).astype(np.float32)
    quiet = _detector().detect(write_wav(tmp_path / "quiet.wav", faint, sr=ANALYSIS_RATE_HZ))
    assert loud.audio.gain_db == 0.0 and quiet.audio.gain_db > 20.0
    assert quiet.robot_probability == pytest.approx(loud.robot_probability, abs=0.05)
    assert recording_notes(quiet, "en")[0].startswith("The recording is very quiet: it was raised")
    assert recording_notes(quiet, "zh")[0].startswith("录音音量很低")
    assert not any("very quiet" in note for note in recording_notes(loud, "en"))
    assert Verdict.from_dict(quiet.to_dict()).audio.gain_db == quiet.audio.gain_db
    older = quiet.to_dict()
    del older["audio"]["gain_db"]  # a verdict stored before schema 8
    assert Verdict.from_dict(older).audio.gain_db == 0.0


def test_a_humming_recording_is_judged_as_without_its_hum(
    tmp_path: Path, synth: Callable[..., np.ndarray], rng: np.random.Generator
) -> None:
    # a 50 Hz buzz at -40 dBFS filled the pauses: the speech detector read them as speech
    gap = np.zeros(ANALYSIS_RATE_HZ)
    voice = np.concatenate(
        [gap, synth("human", duration_s=4.0), gap, synth("human", duration_s=3.0), gap]
    )
    voice = (voice + rng.normal(0.0, 1e-3, voice.size)).astype(np.float32)
    t = np.arange(voice.size) / ANALYSIS_RATE_HZ
    buzz = sum(
        g * 0.014 * np.sin(2 * np.pi * 50.0 * k * t) for k, g in ((1, 1.0), (3, 0.5), (5, 0.25))
    )
    clean = _detector().detect(write_wav(tmp_path / "clean.wav", voice, sr=ANALYSIS_RATE_HZ))
    hummed = _detector().detect(
        write_wav(tmp_path / "hum.wav", (voice + buzz).astype(np.float32), sr=ANALYSIS_RATE_HZ)
    )
    assert [e.name for e in hummed.evidence] == [e.name for e in clean.evidence]
    assert hummed.robot_probability == pytest.approx(clean.robot_probability, abs=0.05)
    assert clean.audio.hum_hz == 0.0 and hummed.audio.hum_hz == 50.0
    assert recording_notes(hummed, "en")[0].startswith("The recording carries a 50 Hz mains hum")
    assert recording_notes(hummed, "zh")[0].startswith("录音里有 50 赫兹的电源交流声")
    assert not any("hum" in note for note in recording_notes(clean, "en"))
    older = hummed.to_dict()
    del older["audio"]["hum_hz"]  # a verdict stored before schema 9
    assert Verdict.from_dict(older).audio.hum_hz == 0.0


def test_sound_without_words_is_an_error(make_wav: Callable[..., Path]) -> None:
    path = make_wav(kind="noise", duration_s=3.0)
    with pytest.raises(EmptyAudioError, match="no speech recognised in zh/en"):
        _detector("").detect(path)


def test_bad_bytes_raise_before_any_model_runs() -> None:
    transcriber = FakeTranscriber()
    detector = Detector(transcriber, FakeTextClassifier(), DetectorConfig())
    with pytest.raises(NotAudioError):
        detector.detect(b"this is not audio at all\n" * 20, name="notes.wav")
    assert transcriber.calls == []


def test_robot_like_call_scores_above_human_like(
    make_wav: Callable[..., Path], rng: np.random.Generator
) -> None:
    robot = _detector("Press 1 now to speak with a specialist, or press 9 to be removed.")
    human = _detector("Hi, uh, this is Tom, I mean, from the dealership, you know, the car.")
    p_robot = robot.detect(make_wav(kind="robot", duration_s=8.0)).robot_probability
    p_human = human.detect(make_wav(kind="human", duration_s=8.0)).robot_probability
    assert p_robot > p_human


PROMPT_CUE = Evidence("structure", "prompt_seen_before", 3.0, 1.5, "Heard in 3 other calls.")


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


@pytest.mark.parametrize(
    ("fusion", "applied"),
    [
        (None, 1.5),  # hand-set sum: the cue's own weight
        # a fitted fusion that never saw the cue: its default scale
        (FusionModel(bias=-1.0, scales=(("scripted_phrase:+", 0.5),), default_scale=0.8,
                     method="fitted (test)"), 1.2),
    ],
)  # fmt: skip
def test_context_cue_evidence_is_fused_like_any_cue(
    make_wav: Callable[..., Path], fusion: FusionModel | None, applied: float
) -> None:
    path = make_wav(kind="robot", sr=8000, duration_s=4.0)
    text = "您好，请按1了解详情。"
    plain = Detector(FakeTranscriber(text), RuleTextClassifier(), DetectorConfig(), fusion=fusion)
    cue, silent = FakeContextCue(PROMPT_CUE), FakeContextCue(None)
    hooked = dataclasses.replace(plain, context_cues=(silent, cue))
    before, after = plain.detect(path), hooked.detect(path)
    assert cue.calls == silent.calls == [(before.audio.sha256, before.transcript.text)]
    added = [e for e in after.evidence if e.name == "prompt_seen_before"]
    assert added == [dataclasses.replace(PROMPT_CUE, weight=applied)]
    assert [e for e in after.evidence if e not in added] == list(before.evidence)
    assert _logit(after.robot_probability) - _logit(before.robot_probability) == pytest.approx(
        applied
    )
    weights = [abs(e.weight) for e in after.evidence]
    assert weights == sorted(weights, reverse=True)
    nothing = dataclasses.replace(plain, context_cues=(silent,)).detect(path)
    assert (nothing.evidence, nothing.robot_probability) == (
        before.evidence,
        before.robot_probability,
    )


def test_a_single_word_is_too_short_to_judge_with_the_minimum_named(
    make_wav: Callable[..., Path],
) -> None:
    path = make_wav(kind="robot", duration_s=0.6)
    with pytest.raises(AudioTooShortError, match=r"too short to judge.*at least 1 s") as e:
        _detector("hello").detect(path)
    assert e.value.code == "audio_too_short" and e.value.status == 422
    assert isinstance(e.value, EmptyAudioError)  # callers that skip unanalysable input skip it


def test_a_file_under_the_minimum_duration_is_too_short(make_wav: Callable[..., Path]) -> None:
    path = make_wav(kind="robot", duration_s=0.1)
    with pytest.raises(AudioTooShortError, match="need at least 0.3 s"):
        _detector().detect(path)


class _RecordingDiarizer:
    """Gives fixed turns and records which thread called it on how many samples."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def __call__(self, samples: np.ndarray) -> PartyTurns:
        self.calls.append((threading.current_thread().name, samples.size))
        caller = tuple((t, t + 1.5) for t in (0.0, 2.5, 5.0))
        callee = tuple((t + 1.7, t + 2.3) for t in (0.0, 2.5))
        return PartyTurns(caller, callee, caller_reason="the party with more speech time")


def test_mono_split_runs_beside_the_asr_and_stereo_needs_none(
    make_wav: Callable[..., Path],
) -> None:
    diarizer = _RecordingDiarizer()
    detector = dataclasses.replace(_detector("喂，你好，请问是王先生吗"), diarizer=diarizer)
    mono = make_wav(kind="human", duration_s=7.0)
    detector.detect(mono)
    assert len(diarizer.calls) == 1
    thread, n = diarizer.calls[0]
    assert thread.startswith("beside-asr") and n == 7 * 16000
    detector.detect(make_wav(kind=("robot", "human"), duration_s=5.0, channels=2))
    assert len(diarizer.calls) == 1  # stereo: the channels are the parties


def test_a_mono_verdict_names_the_caller_turns_and_its_context_cues_get_them(
    make_wav: Callable[..., Path],
) -> None:
    cue = FakeContextCue(None)
    detector = dataclasses.replace(
        _detector("喂，你好，请问是王先生吗"), diarizer=_RecordingDiarizer(), context_cues=(cue,)
    )
    path = make_wav(kind="human", duration_s=7.0)
    mono = detector.detect(path)
    turns = ((0.0, 1.5), (2.5, 4.0), (5.0, 6.5))
    assert mono.caller_turns == turns and cue.turns == [turns]
    assert detector.caller_turns(load_audio(path, limits=AudioLimits())) == turns
    assert Verdict.from_dict(json.loads(json.dumps(mono.to_dict()))).caller_turns == turns
    one_voice = dataclasses.replace(
        detector, diarizer=lambda x: PartyTurns(((0.0, 6.5),), (), caller_reason="one voice")
    )
    assert one_voice.detect(path).caller_turns is None  # nothing was told apart
    assert one_voice.caller_turns(load_audio(path, limits=AudioLimits())) is None
    two = make_wav(kind=("robot", "human"), duration_s=5.0, channels=2)
    stereo = detector.detect(two)
    assert stereo.caller_turns is None and cue.turns[-1] is None  # the channel is the caller's
    assert detector.caller_turns(load_audio(two, limits=AudioLimits())) is None
