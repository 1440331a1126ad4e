"""Dependencies of the routes: the runtime (store, blobs, worker pool, limits), the detector, and
who is calling (API key, then the per-key rate limit)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from pipeline.config import DetectorConfig
from pipeline.errors import ModelNotAvailableError
from service.http.apikeys import Principal, RateLimiter, verify_key
from service.http.errors import (
    InvalidApiKeyError,
    MissingApiKeyError,
    NotReadyError,
    QueueFullError,
    RateLimitedError,
)
from service.settings import Settings
from service.store.blobs import BlobStore
from service.store.database import Store
from service.store.jobs import DetectorLike, WorkerPool


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


def get_runtime(request: Request) -> Runtime:
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
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="API key from `robocall apikeys create`"
)
_bearer = HTTPBearer(auto_error=False, description="the same API key as a bearer token")


def get_principal(
    rt: RuntimeDep,
    api_key: Annotated[str | None, Security(api_key_header)] = None,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
) -> Principal:
    """Who is calling; every /v1 route needs it. Local single-user mode needs no key and has
    no rate limit (the one user only slows themself down)."""
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


def queue_full(rt: Runtime, depth: int) -> QueueFullError:
    retry = rt.pool.retry_after_s(depth) if rt.pool else 5
    return QueueFullError(
        f"{depth} analyses are queued or running (capacity {rt.settings.queue_size}); retry later",
        retry_after_s=retry,
    )
