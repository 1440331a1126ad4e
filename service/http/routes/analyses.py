"""``/v1/analyses``: upload a recording (queued, or answered at once with ``wait=true``), list the
caller's own analyses, read the state and verdict of one, change its call details, delete it.

Results are private: every answer carrying one says ``Cache-Control: no-store``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from pipeline.errors import ModelNotAvailableError
from service.http.apikeys import Principal
from service.http.deps import PrincipalDep, Runtime, RuntimeDep, queue_full
from service.http.errors import InvalidRequestError, NotFoundError, RateLimitedError
from service.http.schemas import (
    AUTH_ERRORS,
    INVALID,
    NOT_FOUND,
    RETRY_AFTER,
    UPLOAD_BODY,
    AnalysisListOut,
    AnalysisOut,
    MetadataPatch,
    analysis_json,
    check_call_time,
    error_response,
    summary_json,
)
from service.http.uploads import receive_upload
from service.store.database import Analysis
from service.store.jobs import WorkerPool

_WAIT_POLL_S = 0.05
NO_STORE = {"Cache-Control": "no-store"}

router = APIRouter()


@router.post(
    "/v1/analyses",
    tags=["analyses"],
    status_code=202,
    response_model=AnalysisOut,
    summary="Upload a recording for analysis",
    description="Multipart upload (`file` plus optional call metadata). Answers 202 with "
    "the queued analysis and its `Location`; with `wait=true` a short upload may answer "
    "200 with the finished analysis. The size limit is enforced while the body streams in; "
    "the recording is decoded on arrival, so one that cannot be analysed is refused here "
    "with the status and code `robocall analyze` gives, and nothing is queued.",
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
            "upload larger than the limit, or a recording longer than allowed",
            audio_too_large="upload exceeds 209715200 bytes",
            audio_too_long="call.wav: too long: the header says 2400.0 s, allowed 1800 s",
        ),
        415: error_response("the content is not a recording", not_audio="not a recording"),
        422: error_response(
            "a recording that cannot be analysed (the CLI's code), or a malformed field",
            empty_audio="call.wav: too short to analyse: 0.10 s, need at least 0.3 s",
            corrupt_audio="call.wav: looks like WAV but its header cannot be read",
            unsupported_audio="call.wav: 6 channels, at most 2 supported",
            audio_too_short="call.wav: too short to judge: 0.6 s of speech, need at least 1 s",
            invalid_request="call_time: no such date or time: '2025-02-30T09:30+08:00'",
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
                analysis_json(done), status_code=200, headers={"Location": location, **NO_STORE}
            )
    return JSONResponse(
        analysis_json(record), status_code=202, headers={"Location": location, **NO_STORE}
    )


def _admit(request: Request, rt: Runtime, principal: Principal) -> WorkerPool:
    """The worker pool, once the models are loaded and the key is within its upload rate."""
    pool = rt.pool
    if request.app.state.detector is None or pool is None:
        raise ModelNotAvailableError(rt.detector_error or "the models are not loaded")
    if not rt.settings.local_mode:  # one local user limits nobody but themself
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
    "/v1/analyses",
    tags=["analyses"],
    response_model=AnalysisListOut,
    summary="Your analyses, newest first",
    description="Only the caller's own analyses (per API key; everything in local mode), "
    "paged with `limit`/`offset`, optionally filtered by the verdict's `label` or `status`. "
    "Results are kept for the retention period (30 days by default).",
    responses={**AUTH_ERRORS, **INVALID},
)
def list_analyses(
    rt: RuntimeDep,
    principal: PrincipalDep,
    label: Annotated[
        Literal["electronic_sales_robot", "human_sales_pitch"] | None,
        Query(description="only analyses with this verdict"),
    ] = None,
    status: Annotated[
        Literal["queued", "running", "done", "failed"] | None, Query(description="only this state")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    found, total = rt.store.list_analyses(
        principal.owner, label=label, status=status, limit=limit, offset=offset
    )
    body = {
        "items": [summary_json(a) for a in found],
        "total": total,
        "limit": limit,
        "offset": offset,
    }
    return JSONResponse(body, headers=NO_STORE)


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
    return JSONResponse(analysis_json(found), headers=NO_STORE)


@router.patch(
    "/v1/analyses/{analysis_id}",
    tags=["analyses"],
    response_model=AnalysisOut,
    summary="Change the call details (number, time, language) of an analysis",
    description="A JSON object with the fields to change; `null` clears one. A new `language` "
    "analyses the recording again (the status goes back to `queued`).",
    responses={**AUTH_ERRORS, **NOT_FOUND, **INVALID},
)
def patch_analysis(
    analysis_id: str,
    patch: Annotated[MetadataPatch, Body()],
    rt: RuntimeDep,
    principal: PrincipalDep,
) -> Response:
    found = rt.store.get_analysis(analysis_id, owner=principal.owner)
    if found is None:
        raise NotFoundError(f"no analysis {analysis_id[:40]!r}")
    given = patch.model_dump(exclude_unset=True)
    if given.get("call_time") is not None:
        try:
            check_call_time(given["call_time"])
        except ValueError as exc:
            raise InvalidRequestError(str(exc)) from exc
    if given.get("language") is not None and given["language"] not in rt.config.asr.languages:
        raise InvalidRequestError(f"language: must be one of {', '.join(rt.config.asr.languages)}")
    changes: dict[str, Any] = {
        ("language_hint" if k == "language" else k): v for k, v in given.items()
    }
    rerun = "language_hint" in changes and changes["language_hint"] != found.language_hint
    updated = rt.store.update_metadata(
        found.id, owner=principal.owner, changes=changes, rerun=rerun
    )
    if updated is None:
        raise NotFoundError(f"no analysis {analysis_id[:40]!r}")
    if rerun and rt.pool is not None:
        rt.pool.notify()
    return JSONResponse(analysis_json(updated), headers=NO_STORE)


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
