"""A mono mix of two parties: the replay cue's threshold on the mix, and the detector's wiring."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf

from pipeline.acoustic import REPEAT_MIN_CORR, REPEAT_MIN_CORR_MIX, acoustic_cues
from pipeline.behaviour import PartyTurns
from pipeline.config import DetectorConfig
from pipeline.detector import Detector
from pipeline.text_cues import RuleTextClassifier
from tests.fakes import FakeTranscriber
from tests.pipeline.test_acoustic import SR, assemble, by_name, make_audio, utterance


def _replay_under_a_voice(gain: float) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Four robot prompts, the first played again with another voice ``gain`` x over it."""
    rng = np.random.default_rng(7)
    prompts = [utterance(rng, n_syllables=10, robot=True) for _ in range(4)]
    other = utterance(np.random.default_rng(9), n_syllables=12, robot=False)
    again = prompts[0].copy()
    k = min(other.size, again.size)
    again[:k] += gain * other[:k]
    return assemble([prompts[0], prompts[1], prompts[2], again, prompts[3]], [0.5] + [0.8] * 4)


def test_a_replay_under_the_other_voice_is_found_on_a_two_party_mix_only() -> None:
    assert REPEAT_MIN_CORR_MIX < REPEAT_MIN_CORR
    x, _ = _replay_under_a_voice(0.15)
    alone = by_name(acoustic_cues(make_audio(x)))["replayed_speech_s"]
    mixed = by_name(acoustic_cues(make_audio(x), two_party_mix=True))["replayed_speech_s"]
    assert alone.value == 0.0 and alone.weight == 0.0
    assert mixed.value > 1.2 and mixed.weight > 0
    # everything else is measured as before
    others = {e.name: e for e in acoustic_cues(make_audio(x)).evidence}
    others_mix = {e.name: e for e in acoustic_cues(make_audio(x), two_party_mix=True).evidence}
    assert {k: v for k, v in others.items() if k != "replayed_speech_s"} == {
        k: v for k, v in others_mix.items() if k != "replayed_speech_s"
    }


def test_people_replay_nothing_at_the_mix_threshold() -> None:
    rng = np.random.default_rng(8)
    chunks = [utterance(rng, n_syllables=int(rng.integers(6, 12)), robot=False) for _ in range(5)]
    x, _ = assemble(chunks, [0.5, 0.35, 1.6, 0.6, 2.2])
    cue = by_name(acoustic_cues(make_audio(x), two_party_mix=True))["replayed_speech_s"]
    assert cue.value == 0.0 and cue.weight == 0.0


class _FixedDiarizer:
    def __init__(self, callee: tuple[tuple[float, float], ...]) -> None:
        self.callee = callee

    def __call__(self, samples: np.ndarray) -> PartyTurns:
        n_s = samples.size / SR
        return PartyTurns(((0.0, n_s),), self.callee, caller_reason="test")


def test_the_detector_uses_the_mix_threshold_when_the_diarizer_finds_two_voices() -> None:
    x, spans = _replay_under_a_voice(0.15)
    buf = io.BytesIO()
    sf.write(buf, x, SR, format="WAV", subtype="FLOAT")
    data = buf.getvalue()

    def replay(callee: tuple[tuple[float, float], ...]) -> float:
        detector = Detector(
            FakeTranscriber("您好，请按1了解详情。"),
            RuleTextClassifier(),
            DetectorConfig(),
            diarizer=_FixedDiarizer(callee),
        )
        found = [
            e
            for e in detector.detect(data, name="mix.wav").evidence
            if e.name == "replayed_speech_s"
        ]
        assert len(found) == 1
        return found[0].value

    assert replay(((spans[3][0], spans[3][0] + 1.0),)) > 1.2  # two voices: the mix's threshold
    assert replay(()) == 0.0  # one voice: the recording is the caller's alone
