"""``/v1/analyses/{id}/evidence``: the signed evidence pack of a finished analysis."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from pipeline.types import Verdict
from service.http.deps import PrincipalDep, RuntimeDep
from service.http.errors import InvalidRequestError, NotFoundError
from service.http.schemas import AUTH_ERRORS, INVALID, NOT_FOUND

router = APIRouter()


@router.post(
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
        **AUTH_ERRORS,
        **NOT_FOUND,
        **INVALID,
    },
)
def evidence_pack(
    analysis_id: str,
    rt: RuntimeDep,
    principal: PrincipalDep,
    lang: Annotated[Literal["zh", "en"] | None, Query(description="report language")] = None,
) -> Response:
    from pipeline.report import CaseInfo
    from service.evidence.pack import build_pack
    from service.evidence.signing import load_or_create_signing_key

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
        verdict = Verdict.from_dict(json.loads(found.verdict_json))
        original = rt.blobs.path(found.audio_sha256).read_bytes()
        # A stated call time after the analysis is refused by build_pack (ValueError).
        pack = build_pack(original, verdict, case, signing_key=load_or_create_signing_key()[0])
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from exc
    return Response(
        pack,
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="evidence-{found.id}.zip"',
            "Cache-Control": "no-store",
        },
    )
