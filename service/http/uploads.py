"""Uploads: read the multipart body as a stream (413 as soon as it passes the limit), validate the
call metadata, sniff the content (never the name or content type), check the recording, store
the blob and queue the analysis.

One error path (issue 15): the recording is decoded once at upload by
:func:`pipeline.audio.load_audio`, the decoder the CLI and the worker use, so unsupported, too
long, too short, silent and damaged audio is refused at once with the same 4xx and code that
``robocall analyze`` gives, instead of being accepted and then failing in the queue. A file that
ends before its header says it should (a cut-off WAV) is accepted with a warning.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import struct
from collections.abc import AsyncGenerator
from typing import Any, BinaryIO

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from pipeline.audio import SNIFF_BYTES, load_audio, sniff_audio_format
from pipeline.config import AudioLimits
from pipeline.errors import AudioTooLargeError, EmptyAudioError, NotAudioError
from service.http.apikeys import Principal
from service.http.deps import Runtime, queue_full
from service.http.errors import InvalidRequestError
from service.http.schemas import PHONE_RE, check_call_time
from service.store.database import Analysis, NewAnalysis

log = logging.getLogger(__name__)

MULTIPART_OVERHEAD_BYTES = 64 * 1024  # boundaries, part headers and the small text fields
_CTRL_RE = re.compile(r"[\x00-\x1f\x7f]")


async def read_multipart(request: Request, max_upload_bytes: int) -> list[tuple[str, Any]]:
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


def validate_upload(
    items: list[tuple[str, Any]], rt: Runtime, principal: Principal
) -> tuple[NewAnalysis, UploadFile]:
    form: dict[str, Any] = {}
    for key, value in items:
        form.setdefault(key, value)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidRequestError("the `file` part with the recording is missing")
    name = display_name(upload.filename)
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

    call_time = text("call_time")
    if call_time is not None:
        try:
            check_call_time(call_time)
        except ValueError as exc:
            raise InvalidRequestError(str(exc)) from exc
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
        caller_number=text("caller_number", PHONE_RE),
        callee_number=text("callee_number", PHONE_RE),
        call_time=call_time,
        language_hint=language,
        caller_channel=None if channel_raw is None else int(channel_raw),
    )
    return new, upload


_UNKNOWN_SIZES = (0, 0xFFFFFFFF)  # a streamed WAV writes one of these when it does not know


def check_recording(file: BinaryIO, *, limits: AudioLimits, name: str) -> list[dict[str, Any]]:
    """Decode the upload as the analysis will; the warnings about it (codes of
    :data:`service.http.display.WARNINGS`).

    Raises
    ------
    RobocallError
        What :func:`pipeline.audio.load_audio` raises for this file (``not_audio``,
        ``audio_too_long``, ``empty_audio``, ``corrupt_audio``, ``unsupported_audio``, ...).
    """
    file.seek(0)
    audio = load_audio(file, limits=limits, name=name)
    file.seek(0)
    declared_s = _wav_declared_s(file)
    file.seek(0)
    warnings: list[dict[str, Any]] = []
    if declared_s is not None and declared_s - audio.info.duration_s > 0.1:
        params = {"declared_s": round(declared_s, 3), "decoded_s": audio.info.duration_s}
        warnings.append({"code": "truncated", "params": params})
    if audio.info.gain_db > 0.0:
        warnings.append({"code": "quiet", "params": {"gain_db": audio.info.gain_db}})
    if audio.info.hum_hz > 0.0:
        warnings.append({"code": "hum", "params": {"hum_hz": audio.info.hum_hz}})
    return warnings


def _wav_declared_s(file: BinaryIO) -> float | None:
    """Duration a PCM WAV's header announces (its ``data`` size), None when it does not say.

    FFmpeg reports the length of what is present, so a cut-off WAV is only seen here.
    """
    head = file.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    byte_rate = None
    while chunk := file.read(8):
        if len(chunk) < 8:
            return None
        kind, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        if kind == b"fmt ":
            fmt = file.read(size)
            byte_rate = struct.unpack("<I", fmt[8:12])[0] if len(fmt) >= 12 else None
            file.seek(size % 2, 1)  # chunks are word-aligned
        elif kind == b"data":
            if not byte_rate or size in _UNKNOWN_SIZES:
                return None
            return float(size / byte_rate)
        else:
            file.seek(size + size % 2, 1)
    return None


def display_name(filename: str | None) -> str:
    """The upload's base name, for display only (it never reaches the file system)."""
    base = re.split(r"[\\/]", filename or "")[-1]
    base = _CTRL_RE.sub("", base).strip()[:200]
    return base or "upload"


def store_upload(rt: Runtime, upload: UploadFile, new: NewAnalysis, fmt: str) -> Analysis:
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
            raise queue_full(rt, rt.settings.queue_size)
    log.info(
        "queued %s sha256=%s size=%d format=%s",
        record.id,
        record.audio_sha256[:12],
        record.audio_size_bytes,
        fmt,
    )
    return record


async def receive_upload(request: Request, rt: Runtime, principal: Principal) -> Analysis:
    """Read, validate, sniff and store an upload; returns the queued analysis.

    Raises
    ------
    AudioTooLargeError, EmptyAudioError, NotAudioError, InvalidRequestError, QueueFullError
        and every error of :func:`pipeline.audio.load_audio` (the same code as the CLI).
    """
    form_items = await read_multipart(request, rt.max_upload_bytes)
    try:
        new, upload = validate_upload(form_items, rt, principal)
        head = await upload.read(SNIFF_BYTES)
        await upload.seek(0)
        fmt = sniff_audio_format(head)
        if fmt is None:
            raise NotAudioError(
                f"{new.audio_name}: not a recording (unrecognised content; "
                "send WAV, MP3, AMR, FLAC, OGG, M4A or WebM)"
            )
        warnings = await run_in_threadpool(
            check_recording, upload.file, limits=rt.config.audio, name=new.audio_name
        )
        if warnings:
            new = dataclasses.replace(new, warnings_json=json.dumps(warnings))
        return await run_in_threadpool(store_upload, rt, upload, new, fmt)
    finally:
        for _, value in form_items:
            if isinstance(value, UploadFile):
                await value.close()
