"""``/v1/analyses``: upload a recording (queued, or answered at once with ``wait=true``), read the
state and verdict of an analysis, delete it."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from pipeline.errors import ModelNotAvailableError
from service.http.apikeys import Principal
from service.http.deps import PrincipalDep, Runtime, RuntimeDep, queue_full
from service.http.errors import NotFoundError, RateLimitedError
from service.http.schemas import (
    AUTH_ERRORS,
    INVALID,
    NOT_FOUND,
    RETRY_AFTER,
    UPLOAD_BODY,
    AnalysisOut,
    analysis_json,
    error_response,
)
from service.http.uploads import receive_upload
from service.store.database import Analysis
from service.store.jobs import WorkerPool

_WAIT_POLL_S = 0.05

router = APIRouter()


@router.post(
    "/v1/analyses",
    tags=["analyses"],
    status_code=202,
    response_model=AnalysisOut,
    summary="Upload a recording for analysis",
    description="Multipart upload (`file` plus optional call metadata). Answers 202 with "
    "the queued analysis and its `Location`; with `wait=true` a short upload may answer "
    "200 with the finished analysis. The size limit is enforced while the body streams in.",
    openapi_extra={"requestBody": UPLOAD_BODY},
    responses={
        200: {"model": AnalysisOut, "description": "finished within the wait"},
        202: {
            "description": "queued",
            "headers": {
                "Location": {"description": "URL of the analysis", "schema": {"type": "string"}}
            },
        },
        **AUTH_ERRORS,
        413: error_response(
            "upload larger than the limit", audio_too_large="upload exceeds 209715200 bytes"
        ),
        415: error_response("the content is not a recording", not_audio="not a recording"),
        422: error_response(
            "empty upload or malformed field",
            empty_audio="the upload is empty",
            audio_too_short="too short to judge: need at least 1 s of speech",
            invalid_request="caller_number: not a phone number",
        ),
        503: {
            **error_response(
                "queue full or models not loaded",
                queue_full="32 analyses waiting; retry later",
                model_unavailable="models are not loaded",
            ),
            "headers": RETRY_AFTER,
        },
    },
)
async def create_analysis(
    request: Request,
    rt: RuntimeDep,
    principal: PrincipalDep,
    wait: Annotated[bool, Query(description="wait for short uploads to finish")] = False,
) -> Response:
    pool = _admit(request, rt, principal)
    depth = await run_in_threadpool(rt.store.count_active)
    if depth >= rt.settings.queue_size:  # refuse before reading a byte of the body
        raise queue_full(rt, depth)
    record = await receive_upload(request, rt, principal)
    pool.notify()
    location = f"/v1/analyses/{record.id}"
    if wait and record.audio_size_bytes <= rt.settings.wait_max_bytes:
        done = await wait_for(rt, pool, record.id)
        if done is not None:
            return JSONResponse(
                analysis_json(done), status_code=200, headers={"Location": location}
            )
    return JSONResponse(analysis_json(record), status_code=202, headers={"Location": location})


def _admit(request: Request, rt: Runtime, principal: Principal) -> WorkerPool:
    """The worker pool, once the models are loaded and the key is within its upload rate."""
    pool = rt.pool
    if request.app.state.detector is None or pool is None:
        raise ModelNotAvailableError(rt.detector_error or "the models are not loaded")
    wait_s = rt.upload_limiter.acquire(principal.owner)
    if wait_s:
        raise RateLimitedError("too many uploads for this API key", retry_after_s=int(wait_s))
    return pool


async def wait_for(rt: Runtime, pool: WorkerPool, analysis_id: str) -> Analysis | None:
    """The analysis once done or failed, or None after ``wait_timeout_s``."""
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


@router.get(
    "/v1/analyses/{analysis_id}",
    tags=["analyses"],
    response_model=AnalysisOut,
    summary="State of an analysis and, once done, its verdict",
    responses={**AUTH_ERRORS, **NOT_FOUND, **INVALID},
)
def get_analysis(analysis_id: str, rt: RuntimeDep, principal: PrincipalDep) -> Response:
    found = rt.store.get_analysis(analysis_id, owner=principal.owner)
    if found is None:
        raise NotFoundError(f"no analysis {analysis_id[:40]!r}")
    return JSONResponse(analysis_json(found))


@router.delete(
    "/v1/analyses/{analysis_id}",
    tags=["analyses"],
    status_code=204,
    summary="Delete an analysis and its recording",
    responses={204: {"description": "deleted"}, **AUTH_ERRORS, **NOT_FOUND, **INVALID},
)
def delete_analysis(analysis_id: str, rt: RuntimeDep, principal: PrincipalDep) -> Response:
    with rt.blob_lock:
        gone = rt.store.delete_analysis(analysis_id, owner=principal.owner)
        if gone is None:
            raise NotFoundError(f"no analysis {analysis_id[:40]!r}")
        if not rt.store.blob_in_use(gone.audio_sha256):
            rt.blobs.delete(gone.audio_sha256)
    return Response(status_code=204)
