"""Shared builders for verdicts and their parts (restructure issue 10), one place for every test.

Each builder is keyword-only and returns a valid record of the current schema (Verdict schema 2)
with every field overridable. The defaults describe one plausible call: a robot offering a loan,
in Chinese, mono, with three hand-written cues (``code == ""``, the English ``detail`` only).
Tests pass what they assert on (their evidence, transcript lines, labels) as arguments.
"""

from __future__ import annotations

from typing import Any

from pipeline.types import (
    AudioInfo,
    Evidence,
    Label,
    ModelInfo,
    Provenance,
    Segment,
    Transcript,
    Verdict,
)

Line = tuple[float, float, str]  # (start_s, end_s, text) of one transcript segment

DEFAULT_CALLER_LINES: tuple[Line, ...] = (
    (0.5, 3.0, "您好，现在有一笔低息贷款"),
    (6.0, 9.0, "按1了解详情，回复TD退订"),
)

DEFAULT_EVIDENCE: tuple[Evidence, ...] = (
    Evidence("structure", "replayed_speech_s", 3.0, 1.5, "A 3 s prompt repeats.", (6.0, 9.0)),
    Evidence("acoustic", "jitter_local_pct", 1.9, -0.6, "Jitter in the human range.", None),
    Evidence("text", "sales_phrases", 2.0, 0.0, "Two sales phrases.", (0.5, 3.0)),
)


def make_audio_info(**overrides: Any) -> AudioInfo:
    """An :class:`AudioInfo` for a mono 8 kHz AMR call of 62.4 s; any field overridable."""
    fields: dict[str, Any] = {
        "name": "call.amr",
        "sha256": "f" * 64,
        "size_bytes": 12_345,
        "container": "amr",
        "codec": "amr_nb",
        "sample_rate_hz": 8000,
        "channels": 1,
        "duration_s": 62.4,
    }
    return AudioInfo(**(fields | overrides))


def make_provenance(**overrides: Any) -> Provenance:
    """A :class:`Provenance` with a fixed time and the untrained fusion; any field overridable."""
    fields: dict[str, Any] = {
        "package_version": "0.1.0",
        "models": (ModelInfo("asr", "whisper-base", "e" * 64),),
        "config_hash": "c" * 16,
        "fusion_method": "hand-set weights (untrained)",
        "libraries": (("numpy", "2.0"),),
        "analysed_at_utc": "2024-05-01T06:31:00Z",
    }
    return Provenance(**(fields | overrides))


def make_transcript(
    language: str,
    *lines: Line,
    language_probability: float = 0.98,
    backend: str = "fake",
    avg_logprob: float = -0.2,
    no_speech_prob: float = 0.01,
    compression_ratio: float = 1.2,
    **overrides: Any,
) -> Transcript:
    """A :class:`Transcript` with one confident segment per ``(start_s, end_s, text)`` line.

    The segment-level scores apply to every line; ``overrides`` set other Transcript fields
    (``dropped_segments``).
    """
    segments = tuple(
        Segment(start, end, text, avg_logprob, no_speech_prob, compression_ratio)
        for start, end, text in lines
    )
    return Transcript(language, language_probability, segments, backend=backend, **overrides)


def make_verdict(**overrides: Any) -> Verdict:
    """A robot :class:`Verdict` about a loan call (schema 2); any field overridable.

    The caller's transcript is :data:`DEFAULT_CALLER_LINES` in Chinese, the evidence
    :data:`DEFAULT_EVIDENCE`, mono (no callee transcript).
    """
    fields: dict[str, Any] = {
        "label": Label.ROBOT,
        "robot_probability": 0.87,
        "threshold": 0.5,
        "sales_probability": 0.9,
        "topic": "loan",
        "evidence": DEFAULT_EVIDENCE,
        "transcript": make_transcript("zh", *DEFAULT_CALLER_LINES),
        "other_party_transcript": None,
        "audio": make_audio_info(),
        "provenance": make_provenance(),
        "sales_threshold": 0.5,
    }
    return Verdict(**(fields | overrides))
