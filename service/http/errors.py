"""Errors of the HTTP service and the one mapping of every error to JSON.

Every error answers ``{"error": code, "message": ...}``: :func:`handle_error` maps a
:class:`RobocallError` ``code``/``status``; validation and framework errors (unknown route, wrong
method) go through it too (issue 4, STYLE §9).
"""

from __future__ import annotations

import logging

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipeline.errors import ModelNotAvailableError, RobocallError

log = logging.getLogger(__name__)


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


# -- errors to JSON ------------------------------------------------------------------------


def handle_error(request: Request, exc: RobocallError) -> JSONResponse:
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


def handle_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    parts = []
    for e in exc.errors()[:3]:
        where = ".".join(str(p) for p in e.get("loc", ()) if p not in ("query", "path", "body"))
        parts.append(f"{where}: {e.get('msg', 'invalid')}")
    return handle_error(request, InvalidRequestError("; ".join(parts) or "invalid request"))


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}


def handle_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    err = HttpError(exc.status_code, code, str(exc.detail))
    err.headers = dict(exc.headers or {})  # type: ignore[attr-defined]  # e.g. Allow on 405
    return handle_error(request, err)


def handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s: unexpected error", request.method, request.url.path, exc_info=exc)
    return JSONResponse(
        {"error": "internal_error", "message": "unexpected server error"}, status_code=500
    )
