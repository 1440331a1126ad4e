"""One call -> one flat row: what a batch worker runs (local pool or Ray actor).

The audio is decoded once and feeds both the detector and the landmark fingerprint; every failure
becomes an error row, never an exception, so a bad file never stops a batch.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import platform
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from pipeline.config import DetectorConfig
from pipeline.errors import RobocallError
from pipeline.fingerprint import landmarks, landmarks_to_bytes
from pipeline.types import Audio, Verdict
from service.batch.inputs import CHANNEL_LAYOUTS, CallRecord

log = logging.getLogger(__name__)

TOP_CUES = 5  # evidence items kept per row (strongest |weight| first)


class BatchDetector(Protocol):
    """What a worker needs from a detector (``pipeline.detector.Detector`` is one)."""

    @property
    def config(self) -> DetectorConfig: ...

    def detect_audio(self, audio: Audio) -> Verdict: ...


DetectorFactory = Callable[[DetectorConfig], BatchDetector]


def analyse_call(detector: BatchDetector, record: CallRecord) -> dict[str, Any]:
    """Analyse one call into a flat, JSON-ready row; every failure becomes an error row.

    The audio is decoded once (``pipeline.audio.load_audio``) and feeds both the detector and the
    landmark fingerprint of the caller's channel (:mod:`pipeline.fingerprint`).
    """
    from pipeline.audio import load_audio

    started, cpu_started = time.perf_counter(), time.process_time()
    row: dict[str, Any] = row_metadata(record)
    try:
        limits = detector.config.audio
        channel = CHANNEL_LAYOUTS[record.channel_layout or ""]
        if channel is None:
            channel = detector.config.caller_channel
        audio = load_audio(
            _open_source(record.path, max_bytes=limits.max_bytes),
            limits=limits,
            name=Path(record.path).name,
            caller_channel=channel,
        )
        verdict = detector.detect_audio(audio)
        marks = landmarks(audio.caller(), sample_rate_hz=audio.sample_rate_hz)
        row.update(verdict_columns(verdict), audio_fingerprint=landmarks_to_bytes(marks))
    except RobocallError as exc:
        row.update(status="error", error_code=exc.code, error_message=exc.message)
    except OSError as exc:  # missing file, permissions, unreachable object store
        row.update(status="error", error_code="unreadable", error_message=f"{record.path}: {exc}")
    except Exception as exc:  # noqa: BLE001 - a bug on one call must not stop a night's run
        log.exception("internal error on %s", record.call_id)
        row.update(
            status="error",
            error_code="internal_error",
            error_message=f"{type(exc).__name__}: {exc}",
        )
    row["analysed_at_utc"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    row["elapsed_s"] = round(time.perf_counter() - started, 4)
    row["cpu_s"] = round(time.process_time() - cpu_started, 4)  # all threads of the worker
    row["worker"] = f"{platform.node()}:{os.getpid()}"
    row["worker_peak_rss_mb"] = peak_rss_mb()
    return row


def peak_rss_mb() -> float:
    """Peak resident memory of this process, MB: ``VmHWM`` on Linux (``ru_maxrss`` is inherited
    through fork + exec, so a spawned worker would report its parent's peak)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def row_metadata(record: CallRecord) -> dict[str, Any]:
    """The row of a call before analysis: its record fields and an ``ok`` status."""
    fields = dataclasses.asdict(record)
    fields.pop("seq")
    return {**fields, "status": "ok", "error_code": None, "error_message": None}


ARROW_SCHEMES = frozenset(("s3", "gs", "gcs", "hdfs"))  # built into pyarrow, no extra package


def _open_source(path: str, *, max_bytes: int) -> str | bytes:
    """A local path as is; a URI read here, on the worker (at most the size limit + 1 byte).

    ``s3://``, ``gs://`` and ``hdfs://`` through ``pyarrow.fs`` (its own clients, credentials
    from the node's environment or instance role); any other scheme through ``fsspec``
    (``memory://``, ``https://``, ``az://`` with adlfs, ...).
    """
    if "://" not in path or path.startswith("file://"):
        return path.removeprefix("file://")
    if path.split("://", 1)[0].lower() in ARROW_SCHEMES:
        from pyarrow import fs

        filesystem, inner = fs.FileSystem.from_uri(path)
        with filesystem.open_input_stream(inner) as stream:
            data: bytes = stream.read(max_bytes + 1)
        return data
    import fsspec

    try:
        with fsspec.open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except (ValueError, ImportError) as exc:  # unknown scheme, or its package not installed
        raise OSError(f"cannot open {path}: {exc}") from exc
    return data


def verdict_columns(verdict: Verdict) -> dict[str, Any]:
    """The flat columns of a verdict, all taken from ``Verdict.to_dict()`` (the one serialiser)."""
    d = verdict.to_dict()
    audio, prov = d["audio"], d["provenance"]
    other = verdict.other_party_transcript
    return {
        "label": d["label"],
        "robot_probability": d["robot_probability"],
        "threshold": d["threshold"],
        "caller_certainty": d["caller_certainty"],
        "person_threshold": d["person_threshold"],
        "sales_probability": d["sales_probability"],
        "topic": d["topic"],
        "top_cues": [
            {k: e[k] for k in ("source", "name", "value", "weight", "detail")}
            for e in d["evidence"][:TOP_CUES]
        ],
        "transcript": verdict.transcript.text,
        "language": d["transcript"]["language"],
        "other_party_transcript": other.text if other is not None else None,
        "audio_sha256": audio["sha256"],
        "audio_duration_s": audio["duration_s"],
        "container": audio["container"],
        "codec": audio["codec"],
        "sample_rate_hz": audio["sample_rate_hz"],
        "channels": audio["channels"],
        "caller_channel": audio["caller_channel"],
        "package_version": prov["package_version"],
        "config_hash": prov["config_hash"],
        "models": ", ".join(
            f"{m['role']}={m['model_id']}@{m['sha256'][:12]}" for m in prov["models"]
        ),
        "fusion_method": prov["fusion_method"],
        "verdict_json": json.dumps(d, ensure_ascii=False, sort_keys=True),
    }
