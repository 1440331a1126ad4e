"""Fakes for the model protocols in ``pipeline/types.py`` (fakes over mocks, STYLE.md section 7)."""

from __future__ import annotations

from pipeline.types import ModelInfo, TextScore, Transcript


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
