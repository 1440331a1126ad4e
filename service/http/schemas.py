"""Response models and OpenAPI declarations of the HTTP API (pydantic), and the public JSON of an
analysis. The models only document and validate the schema; routes answer with plain JSON built by
:func:`analysis_json` and ``Verdict.to_dict()`` (the one serialiser).
"""

from __future__ import annotations

import json
import re
import typing
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from pipeline.messages import LANGS, format_robot_probability, headline
from pipeline.types import VERDICT_DERIVED_KEYS, VERDICT_SCHEMA_VERSION, Label, Verdict
from service.http.display import Bilingual, DisplayOut, WarningOut, display_json, warnings_json
from service.store.database import Analysis

PHONE_RE = re.compile(r"^\+?[0-9*#() -]{1,32}$")
CALL_TIME_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2}))?$"
)
CALL_TIME_HELP = "ISO 8601 with the time zone, e.g. 2025-06-01T09:30:00+08:00, or a date alone"


def check_call_time(value: str) -> str:
    """``value`` if it is a real date (and time with zone), else ``ValueError`` saying why.

    The same check the evidence pack's ``CaseInfo`` makes, done at once (issue 15: an invalid
    time is refused when it is entered, not when the pack is asked for).
    """
    if not CALL_TIME_RE.match(value):
        raise ValueError(f"call_time: {CALL_TIME_HELP}; got {value[:40]!r}")
    try:
        datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"call_time: no such date or time: {value[:40]!r}") from exc
    return value


def _verdict_model() -> type[BaseModel]:
    """Pydantic mirror of ``Verdict.to_dict()``, derived from the dataclass so it cannot drift."""
    hints = typing.get_type_hints(Verdict)
    fields: dict[str, Any] = {name: (tp, ...) for name, tp in hints.items()}
    # a derived key's type is its property's (caller_certainty: "robot" | "person" | "uncertain")
    fields.update(
        {
            key: (typing.get_type_hints(getattr(Verdict, key).fget)["return"], ...)
            for key in VERDICT_DERIVED_KEYS
        }
    )
    fields["schema_version"] = (str, Field(..., examples=[VERDICT_SCHEMA_VERSION]))
    return create_model(
        "Verdict",
        __config__=ConfigDict(title="Verdict"),
        __doc__="The verdict, exactly as `robocall analyze --json` prints it.",
        **fields,
    )


VerdictJSON = _verdict_model()


class ErrorBody(BaseModel):
    """Every error: a stable machine-readable code and one sentence for people."""

    error: str = Field(
        description="stable code, e.g. not_audio, queue_full", examples=["not_audio"]
    )
    message: str = Field(examples=["call.txt: not a recording (unknown header)"])


class JobError(BaseModel):
    code: str = Field(examples=["corrupt_audio"])
    message: str


class UploadInfo(BaseModel):
    name: str = Field(description="file name as uploaded (display only)", examples=["call.wav"])
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_bytes: int = Field(ge=1)
    format: str = Field(description="container sniffed from the content", examples=["wav"])


class CallMetadata(BaseModel):
    caller_number: str | None = Field(None, examples=["+86 400 123 4567"])
    callee_number: str | None = None
    call_time: str | None = Field(None, examples=["2025-06-01T09:30:00+08:00"])
    language: str | None = Field(None, description="language hint", examples=["zh"])
    caller_channel: int | None = Field(None, ge=0, le=1)


class MetadataPatch(BaseModel):
    """Call details to change; a field left out stays, ``null`` clears it."""

    model_config = ConfigDict(extra="forbid")

    caller_number: str | None = Field(None, pattern=PHONE_RE.pattern, examples=["+86 400 123 4567"])
    callee_number: str | None = Field(None, pattern=PHONE_RE.pattern)
    call_time: str | None = Field(
        None, description=CALL_TIME_HELP, examples=["2025-06-01T09:30+08:00"]
    )
    language: Literal["zh", "en"] | None = Field(
        None, description="language hint; changing it analyses the recording again"
    )


class Links(BaseModel):
    self: str = Field(examples=["/v1/analyses/0123456789abcdef0123456789abcdef"])
    audio: str = Field(examples=["/v1/analyses/0123456789abcdef0123456789abcdef/audio"])


class AnalysisOut(BaseModel):
    """An analysis job: its state and, once done, the verdict."""

    id: str = Field(pattern=r"^[0-9a-f]{32}$", examples=["0123456789abcdef0123456789abcdef"])
    status: Literal["queued", "running", "done", "failed"]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    audio: UploadInfo
    metadata: CallMetadata
    verdict: VerdictJSON | None = Field(  # type: ignore[valid-type]
        description="set when status is done"
    )
    display: DisplayOut | None = Field(
        description="the verdict in plain words, English and Chinese (set when status is done)"
    )
    error: JobError | None = Field(description="set when status is failed")
    warnings: list[WarningOut] = Field(
        description="what the upload check noticed about an accepted recording (e.g. cut off)"
    )
    links: Links


class AnalysisSummary(BaseModel):
    """One line of the history: what was uploaded and what came out, without the verdict."""

    id: str = Field(pattern=r"^[0-9a-f]{32}$")
    status: Literal["queued", "running", "done", "failed"]
    created_at: datetime
    finished_at: datetime | None
    audio: UploadInfo
    metadata: CallMetadata
    label: Label | None = Field(description="who called (set when status is done)")
    caller_certainty: Literal["robot", "person", "uncertain"] | None = Field(
        description="whether the caller question is decided; 'uncertain': the robot probability "
        "lies in the band where the detector cannot tell (set when status is done)"
    )
    headline: Bilingual | None = Field(description="the verdict in one line (when done)")
    robot_probability: str | None = Field(examples=[">99 %"])
    error: JobError | None
    warnings: list[WarningOut]
    links: Links


class AnalysisListOut(BaseModel):
    items: list[AnalysisSummary] = Field(description="newest first")
    total: int = Field(ge=0, description="analyses matching the filter")
    limit: int
    offset: int


class ModelOut(BaseModel):
    role: str
    model_id: str
    sha256: str


class QueueOut(BaseModel):
    depth: int = Field(ge=0, description="analyses queued or running")
    capacity: int = Field(ge=1)
    workers: int = Field(ge=1)


class ReadyOut(BaseModel):
    """Models and queue only for a caller with a valid key (or in local mode)."""

    status: Literal["ready"]
    models: list[ModelOut] | None = None
    queue: QueueOut | None = None


class HealthOut(BaseModel):
    status: Literal["ok"]


def error_response(description: str, **examples: str) -> dict[str, Any]:
    return {
        "model": ErrorBody,
        "description": description,
        "content": {
            "application/json": {
                "examples": {
                    code: {"value": {"error": code, "message": msg}}
                    for code, msg in examples.items()
                }
            }
        },
    }


RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: error_response(
        "no or wrong API key",
        missing_api_key="send an API key in X-API-Key",
        invalid_api_key="unknown or revoked API key",
    ),
    429: {
        **error_response("too many requests for this key", rate_limited="rate limit reached"),
        "headers": RETRY_AFTER,
    },
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: error_response("no such analysis (or not yours)", not_found="no analysis 0123...")
}
INVALID: dict[int | str, dict[str, Any]] = {
    422: error_response("a field is malformed", invalid_request="caller_number: not a phone number")
}

UPLOAD_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {
                        "type": "string",
                        "format": "binary",
                        "description": "the recording (WAV, MP3, AMR, FLAC, OGG, M4A, WebM); "
                        "the format is sniffed from its bytes",
                    },
                    "caller_number": {
                        "type": "string",
                        "pattern": PHONE_RE.pattern,
                        "description": "number that called",
                    },
                    "callee_number": {
                        "type": "string",
                        "pattern": PHONE_RE.pattern,
                        "description": "number that was called",
                    },
                    "call_time": {
                        "type": "string",
                        "pattern": CALL_TIME_RE.pattern,
                        "description": f"when the call took place: {CALL_TIME_HELP}",
                        "example": "2025-06-01T09:30:00+08:00",
                    },
                    "language": {
                        "type": "string",
                        "enum": ["zh", "en"],
                        "description": "language hint for speech recognition",
                    },
                    "caller_channel": {
                        "type": "integer",
                        "enum": [0, 1],
                        "description": "channel of the caller in a stereo recording",
                    },
                },
            },
            "encoding": {"file": {"contentType": "application/octet-stream, audio/*"}},
        }
    },
}


# -- the public JSON of an analysis --------------------------------------------------------


def iso_utc(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def analysis_json(a: Analysis) -> dict[str, Any]:
    """The public JSON of an analysis (the schema is :class:`AnalysisOut`)."""
    verdict = json.loads(a.verdict_json) if a.verdict_json else None
    return {
        **_common(a),
        "started_at": iso_utc(a.started_at),
        "verdict": verdict,
        "display": display_json(Verdict.from_dict(verdict)) if verdict else None,
    }


def summary_json(a: Analysis) -> dict[str, Any]:
    """One line of the history (the schema is :class:`AnalysisSummary`)."""
    verdict = Verdict.from_dict(json.loads(a.verdict_json)) if a.verdict_json else None
    return {
        **_common(a),
        "label": verdict.label.value if verdict else None,
        "caller_certainty": verdict.caller_certainty if verdict else None,
        "headline": {lang: headline(verdict, lang) for lang in LANGS} if verdict else None,
        "robot_probability": format_robot_probability(verdict) if verdict else None,
    }


def _common(a: Analysis) -> dict[str, Any]:
    base = f"/v1/analyses/{a.id}"
    return {
        "id": a.id,
        "status": a.status,
        "created_at": iso_utc(a.created_at),
        "finished_at": iso_utc(a.finished_at),
        "audio": {
            "name": a.audio_name,
            "sha256": a.audio_sha256,
            "size_bytes": a.audio_size_bytes,
            "format": a.audio_format,
        },
        "metadata": {
            "caller_number": a.caller_number,
            "callee_number": a.callee_number,
            "call_time": a.call_time,
            "language": a.language_hint,
            "caller_channel": a.caller_channel,
        },
        "error": (
            {"code": a.error_code, "message": a.error_message or ""}
            if a.status == "failed"
            else None
        ),
        "warnings": warnings_json(a.warnings_json),
        "links": {"self": base, "audio": f"{base}/audio"},
    }
