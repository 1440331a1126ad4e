"""An upload's language hint reaches the Whisper that runs (issue 11), through the real Detector.

``service.store.jobs.configure_detector`` used to replace only ``Detector.config.asr``; the
transcriber reads its own config, so the hint changed the provenance and nothing else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from models.loading import WhisperSource, load_transcriber_from, with_asr_config
from pipeline.audio import load_audio
from pipeline.config import AsrConfig, DetectorConfig
from pipeline.detector import Detector
from pipeline.errors import EmptyAudioError
from service.store.database import Analysis
from service.store.jobs import configure_detector
from tests.fakes import FakeTextClassifier

TINY_CFG = AsrConfig(vad_filter=False)  # random weights: VAD would see no speech in noise


def job(language_hint: str | None) -> Analysis:
    now = datetime.now(UTC)
    return Analysis(
        id="a1",
        owner="local",
        status="running",
        created_at=now,
        updated_at=now,
        started_at=now,
        finished_at=None,
        audio_sha256="0" * 64,
        audio_name="call.wav",
        audio_format="wav",
        audio_size_bytes=1,
        caller_number=None,
        callee_number=None,
        call_time=None,
        language_hint=language_hint,
        caller_channel=None,
        attempts=1,
        claim_token=None,
        lease_until=None,
        verdict_json=None,
        error_code=None,
        error_message=None,
    )


@pytest.fixture(scope="module")
def detector(tiny_source: WhisperSource) -> Detector:
    return Detector(
        transcriber=load_transcriber_from(TINY_CFG, tiny_source),
        text_classifier=FakeTextClassifier(),
        config=DetectorConfig(asr=TINY_CFG),
    )


@pytest.mark.parametrize("hint", ["en", "zh"])
def test_the_hint_decides_the_transcript_language(
    detector: Detector, hint: str, make_wav: Callable[..., Path]
) -> None:
    hinted = configure_detector(detector, job(hint))
    assert isinstance(hinted, Detector)
    assert hinted.config.asr.languages == (hint,)
    assert getattr(hinted.transcriber, "cfg").languages == (hint,)  # noqa: B009 - real backend
    assert getattr(hinted.transcriber, "model") is getattr(detector.transcriber, "model")  # noqa: B009
    # The original detector, shared by the other workers, is untouched.
    assert getattr(detector.transcriber, "cfg").languages == ("zh", "en")  # noqa: B009
    path = make_wav(kind="noise", duration_s=3.0)
    audio = load_audio(path, limits=detector.config.audio)
    transcript = hinted.transcriber.transcribe(audio.caller())
    assert (transcript.language, transcript.language_probability) == (hint, 1.0)
    try:
        verdict = hinted.detect(path)
    except EmptyAudioError as exc:  # random weights may decode no words: the message says where
        assert f"no speech recognised in {hint} " in str(exc)
    else:
        assert verdict.transcript.language == hint


def test_no_hint_keeps_the_detector(detector: Detector) -> None:
    assert configure_detector(detector, job(None)) is detector


def test_settings_that_choose_weights_are_refused(detector: Detector) -> None:
    with pytest.raises(ValueError, match="backend"):
        with_asr_config(detector.transcriber, dataclasses.replace(TINY_CFG, backend="openai"))
