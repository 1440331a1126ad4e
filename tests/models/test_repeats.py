"""A robot that plays its message again is judged on every take (issue 17): slow, real weights.

The prompt is played 2, 3 and 6 times back to back: an English line spoken by espeak-ng (made
here) and the first 9 s of ``examples/robot_zh.amr``. Every take must stay in the transcript
(nothing dropped as a Whisper loop), later takes marked ``is_repeat`` where their window's text
compressed above the threshold, and the in-call replay cue must count the replays towards robot.
"""

from __future__ import annotations

import functools
import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pipeline.audio import load_audio
from pipeline.config import AudioLimits, DetectorConfig
from pipeline.detector import Detector
from pipeline.errors import EmptyAudioError
from pipeline.types import Verdict

pytestmark = pytest.mark.slow
pytest.importorskip("faster_whisper")

ROOT = Path(__file__).resolve().parents[2]
RATE_HZ = 16_000
EN_PROMPT = (
    "This is an important message about your account. Press one to speak to an agent, "
    "or press two to hear this message again."
)


@functools.cache
def english_prompt() -> np.ndarray:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        pytest.skip("espeak-ng is not installed (scripts/install_system_packages.sh installs it)")
    wav = subprocess.run([espeak, "--stdout", EN_PROMPT], capture_output=True, check=True).stdout
    return load_audio(wav, limits=AudioLimits(), name="prompt.wav").caller()


@functools.cache
def mandarin_prompt() -> np.ndarray:
    samples = load_audio(ROOT / "examples" / "robot_zh.amr", limits=AudioLimits()).caller()
    return samples[: 9 * RATE_HZ]  # its first two sentences; the pause after ends at 9.7 s


PROMPTS = {"en": english_prompt, "zh": mandarin_prompt}


@pytest.fixture(scope="module")
def detector() -> Detector:
    from models.loading import load_detector

    return load_detector(DetectorConfig())


def wav_bytes(samples: np.ndarray) -> bytes:
    out = io.BytesIO()
    sf.write(out, samples, RATE_HZ, format="WAV", subtype="PCM_16")
    return out.getvalue()


def replayed_s(verdict: Verdict) -> tuple[float, float]:
    cue = next(e for e in verdict.evidence if e.name == "replayed_speech_s")
    return cue.value, cue.weight


@pytest.mark.parametrize("times", [2, 3, 6])
@pytest.mark.parametrize("language", ["en", "zh"])
def test_a_prompt_played_again_keeps_every_take(
    detector: Detector, language: str, times: int
) -> None:
    prompt = PROMPTS[language]()
    once = detector.transcriber.transcribe(prompt)
    assert once.segments, "the prompt alone must be recognised"
    verdict = detector.detect(wav_bytes(np.tile(prompt, times)), name=f"{language}_x{times}.wav")
    transcript = verdict.transcript
    assert transcript.dropped_segments == 0
    assert transcript.language == language
    spoken_s = sum(s.end_s - s.start_s for s in transcript.segments)
    once_s = sum(s.end_s - s.start_s for s in once.segments)
    assert spoken_s >= 0.8 * times * once_s  # every take transcribed, not just the first
    value, weight = replayed_s(verdict)
    assert value >= 0.3 * (times - 1) * once_s and weight > 0  # replays weigh towards robot
    assert not transcript.segments[0].is_repeat  # the first take replays nothing


def test_music_gets_no_invented_text(detector: Detector) -> None:
    t = np.arange(12 * RATE_HZ) / RATE_HZ
    notes = 220.0 * 2 ** (np.array([0, 4, 7, 12, 7, 4]) / 12)
    f = np.repeat(notes, t.size // notes.size + 1)[: t.size]
    chord = sum(np.sin(2 * np.pi * k * np.cumsum(f) / RATE_HZ) / k for k in (1, 2, 3))
    music = (0.2 * chord * (0.7 + 0.3 * np.sin(2 * np.pi * 2 * t))).astype(np.float32)
    with pytest.raises(EmptyAudioError):
        detector.detect(wav_bytes(np.tile(music, 3)), name="music.wav")
