"""Fakes for the model protocols in ``pipeline/types.py`` (fakes over mocks, STYLE.md section 7)."""

from __future__ import annotations

import numpy as np

from pipeline.config import AsrConfig
from pipeline.types import (
    ANALYSIS_RATE_HZ,
    Audio,
    Evidence,
    ModelInfo,
    Segment,
    TextScore,
    Transcript,
    Turns,
)


class FakeTextClassifier:
    """A :class:`~pipeline.types.TextClassifier` that returns the ``TextScore`` it was given.

    Every call is recorded in ``calls`` as ``(transcript, other_party)`` so tests can check what the
    detector passed in.
    """

    def __init__(
        self,
        result: TextScore | None = None,
        *,
        model_info: ModelInfo | None = None,
    ) -> None:
        self.result = (
            result
            if result is not None
            else TextScore(sales_probability=0.0, topic="none", topic_scores=(), evidence=())
        )
        self.model_info = model_info or ModelInfo(
            role="text", model_id="fake-text", sha256="0" * 64
        )
        self.calls: list[tuple[Transcript, Transcript | None]] = []

    def score(self, transcript: Transcript, *, other_party: Transcript | None = None) -> TextScore:
        self.calls.append((transcript, other_party))
        return self.result


class FakeTranscriber:
    """A :class:`~pipeline.types.Transcriber` that returns a fixed text as one segment.

    The segment spans the whole input; ``text=""`` gives a transcript with no segments. Every call
    is recorded in ``calls`` as the number of samples it received. With an ``AsrConfig`` of one
    language, that language is the transcript's, as the real transcribers restrict language
    detection to the configured ones (``models.loading.with_asr_config`` swaps the config).
    """

    def __init__(
        self,
        text: str = "您好，我是城南置业的顾问，我们新开盘的学区房首付只要三十万。",
        *,
        language: str = "zh",
        model_info: ModelInfo | None = None,
        cfg: AsrConfig | None = None,
    ) -> None:
        self.text = text
        self.language = language
        self.cfg = cfg
        self.model_info = model_info or ModelInfo(role="asr", model_id="fake-asr", sha256="0" * 64)
        self.calls: list[int] = []

    def transcribe(self, samples: np.ndarray) -> Transcript:
        self.calls.append(int(samples.shape[-1]))
        duration_s = samples.shape[-1] / ANALYSIS_RATE_HZ
        segments = (
            (
                Segment(
                    0.0,
                    duration_s,
                    self.text,
                    avg_logprob=-0.2,
                    no_speech_prob=0.01,
                    compression_ratio=1.2,
                ),
            )
            if self.text
            else ()
        )
        language = self.language
        if self.cfg is not None and len(self.cfg.languages) == 1:
            language = self.cfg.languages[0]
        return Transcript(language, 1.0, segments, backend="fake")


class FakeContextCue:
    """A :class:`~pipeline.types.ContextCue` that returns the evidence it was given (or None).

    Every call is recorded in ``calls`` as ``(audio sha256, transcript text)``, the caller turns
    it was given in ``turns``.
    """

    def __init__(self, evidence: Evidence | None) -> None:
        self.evidence = evidence
        self.calls: list[tuple[str, str]] = []
        self.turns: list[Turns | None] = []

    def __call__(
        self,
        audio: Audio,
        transcript: Transcript,
        *,
        caller_turns: Turns | None = None,
    ) -> Evidence | None:
        self.calls.append((audio.info.sha256, transcript.text))
        self.turns.append(caller_turns)
        return self.evidence
