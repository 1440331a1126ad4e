"""HTTP API and web page of the robocall detector (FastAPI): the app, its lifespan, its middleware.

``create_app(settings)`` builds the app; its lifespan loads the detector once
(:func:`service.detector.load_detector`), migrates the store and starts the worker pool
(``service.store.jobs.WorkerPool``). Routes live in ``service/http/routes/`` (one module per
resource), uploads in :mod:`service.http.uploads`, schemas in :mod:`service.http.schemas`. Every
error is JSON ``{"error": code, "message": ...}`` from :mod:`service.http.errors` (issue 4,
STYLE §9).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline.errors import RobocallError
from service.detector import load_detector, resolve_config
from service.http.apikeys import RateLimiter
from service.http.deps import Runtime, get_detector
from service.http.errors import (
    handle_error,
    handle_http,
    handle_unexpected,
    handle_validation,
)
from service.http.routes import analyses, audio, evidence, health, page
from service.settings import Settings, get_settings
from service.store.blobs import BlobStore
from service.store.database import Store
from service.store.jobs import WorkerPool

__all__ = ["create_app", "get_detector"]

log = logging.getLogger(__name__)


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
        summary="Tell an electronic sales robot from a live person in a recorded call, and say "
        "whether a sales pitch was heard (Mandarin, English), offline.",
        description="Upload a recording to `POST /v1/analyses`, poll `GET /v1/analyses/{id}`. "
        'Every error is JSON `{"error": code, "message": ...}` with a stable code. '
        "Send an API key as `X-API-Key` unless the server runs in local single-user mode.",
        lifespan=_lifespan,
        docs_url=None,  # the Swagger/ReDoc pages load their assets from a CDN: not offline
        redoc_url=None,
    )
    app.state.settings = settings or get_settings()
    app.add_exception_handler(RobocallError, handle_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, handle_validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, handle_http)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, handle_unexpected)
    if app.state.settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(app.state.settings.cors_origins),
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["X-API-Key", "Authorization", "Range"],
            expose_headers=["Location", "Retry-After", "Content-Range"],
        )
    app.add_middleware(SecurityHeaders)
    for router in (health.router, analyses.router, audio.router, evidence.router, page.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=page.STATIC_DIR), name="static")
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    config = resolve_config(settings.config_path, asr__device=settings.device)
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
            override() if override else await run_in_threadpool(load_detector, config)
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


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("robocall-detector")
    except PackageNotFoundError:
        return "0.0.0"


# -- middleware --------------------------------------------------------------------------


class SecurityHeaders:
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
