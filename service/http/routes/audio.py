"""``/v1/analyses/{id}/audio``: the stored recording as uploaded, or a decoded 16 kHz WAV copy for
browsers that cannot play the original (AMR)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, Response

from service.http.deps import PrincipalDep, Runtime, RuntimeDep
from service.http.errors import NotFoundError
from service.http.schemas import AUTH_ERRORS, NOT_FOUND, error_response
from service.store.blobs import AUDIO_MIME
from service.store.database import Analysis

router = APIRouter()


@router.get(
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
        **AUTH_ERRORS,
        **NOT_FOUND,
        415: error_response("the stored file cannot be decoded", not_audio="not a recording"),
        422: error_response(
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
        path = wav_copy(rt, found)
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
            "Cache-Control": "no-store",  # private: a deleted recording stays nowhere
        },
    )


def wav_copy(rt: Runtime, found: Analysis) -> Path:
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
