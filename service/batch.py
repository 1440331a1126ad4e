"""Bulk runs for carriers: find the calls, sample them, analyse them on many cores, never lose one.

``robocall batch`` (see :mod:`service.batch_cmd` and ``docs/batch.md``) in four steps:

1. **Discover** the calls (:func:`~service.batch_input.discover_calls`): every audio file under a
   directory, or the rows of a CSV/Parquet manifest with the path and the call metadata.
2. **Sample** (:func:`~service.batch_input.sample_calls`): a reproducible fraction, stratified by
   caller number.
3. **Analyse** on an engine (:mod:`service.batch_engines`): ``local`` (a process pool, one
   detector per worker process) or ``ray`` (Ray Data feeding an actor pool, one detector per
   actor). Each worker turns a :class:`CallRecord` into one flat row (:func:`analyse_call`); a
   failing call becomes an error row, never an exception.
4. **Journal and finalise** (:mod:`service.batch_store`): the driver appends each finished row to a
   write-ahead JSONL journal (``<out>.journal.jsonl``, fsync'd) before counting it done. A crash or
   ``kill -9`` loses at most the calls in flight, which are analysed again on resume; rows are
   keyed by ``call_id``, so none is counted twice. Finalising clusters the calls into campaigns
   (:mod:`service.campaigns`), fuses the ``prompt_seen_before`` evidence of each call (its prompt
   recorded before it) into its verdict (:func:`add_prompt_evidence`), and writes the Parquet
   (and JSONL) atomically.
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
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from pipeline.config import DetectorConfig
from pipeline.errors import RobocallError
from pipeline.fingerprint import landmarks, landmarks_to_bytes
from pipeline.fuse import FusionModel, add_evidence
from pipeline.types import Audio, Evidence, Verdict
from service.batch_input import (
    CHANNEL_LAYOUTS,
    CallRecord,
    discover_calls,
    sample_calls,
)
from service.batch_store import Journal, journal_path, read_rows, write_jsonl, write_rows

__all__ = [
    "BatchOptions",
    "BatchSummary",
    "CallRecord",
    "analyse_call",
    "discover_calls",
    "run_batch",
    "sample_calls",
]

log = logging.getLogger(__name__)

Engine = Literal["local", "ray"]

TOP_CUES = 5  # evidence items kept per row (strongest |weight| first)


class BatchDetector(Protocol):
    """What a worker needs from a detector (``pipeline.detector.Detector`` is one)."""

    config: DetectorConfig

    def detect_audio(self, audio: Audio) -> Verdict: ...


DetectorFactory = Callable[[DetectorConfig], BatchDetector]


# --- analysis (runs in the workers) -------------------------------------------------------------


def analyse_call(detector: BatchDetector, record: CallRecord) -> dict[str, Any]:
    """Analyse one call into a flat, JSON-ready row; every failure becomes an error row.

    The audio is decoded once (``pipeline.audio.load_audio``) and feeds both the detector and the
    landmark fingerprint of the caller's channel (:mod:`pipeline.fingerprint`).
    """
    from pipeline.audio import load_audio

    started, cpu_started = time.perf_counter(), time.process_time()
    row: dict[str, Any] = _metadata(record)
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
    row["worker_peak_rss_mb"] = _peak_rss_mb()
    return row


def _peak_rss_mb() -> float:
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


def _metadata(record: CallRecord) -> dict[str, Any]:
    fields = dataclasses.asdict(record)
    fields.pop("seq")
    return {**fields, "status": "ok", "error_code": None, "error_message": None}


def _open_source(path: str, *, max_bytes: int) -> str | bytes:
    """A local path as is; an object-store URI read through ``pyarrow.fs`` (at most the limit)."""
    if "://" not in path or path.startswith("file://"):
        return path.removeprefix("file://")
    from pyarrow import fs

    filesystem, inner = fs.FileSystem.from_uri(path)
    with filesystem.open_input_stream(inner) as stream:
        data: bytes = stream.read(max_bytes + 1)
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


# --- the journal (driver only) ------------------------------------------------------------------


# --- engines ------------------------------------------------------------------------------------


def iter_rows(
    pending: Sequence[CallRecord],
    *,
    engine: Engine,
    config: DetectorConfig,
    detector_factory: DetectorFactory,
    workers: int,
    ray_address: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Analyse ``pending`` on the chosen engine; yields rows in completion order."""
    if not pending:
        return iter(())
    from service import batch_engines

    if engine == "local":
        return batch_engines.iter_local(
            pending, config=config, detector_factory=detector_factory, workers=workers
        )
    if engine == "ray":
        return batch_engines.iter_ray(
            pending,
            config=config,
            detector_factory=detector_factory,
            workers=workers,
            address=ray_address,
        )
    raise ValueError(f"engine must be 'local' or 'ray', got {engine!r}")


# --- run, journal, finalise (driver) ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchOptions:
    out: Path  # results Parquet; the journal is <out>.journal.jsonl beside it
    engine: Engine = "local"
    workers: int = 0  # processes (local) or actors (ray); 0 = one per CPU core
    ray_address: str | None = None  # an existing Ray cluster; None starts Ray locally
    resume: bool = True  # keep rows already in the output/journal, analyse only the rest
    jsonl: bool = False  # also write <out stem>.jsonl: {"input", "verdict"|"error", ...}
    prompt_index: str | None = None  # SQLite prompt index; None = in memory, this run only
    progress: bool = False  # progress bar with calls/min and ETA on stderr

    def __post_init__(self) -> None:
        if self.engine not in ("local", "ray"):
            raise ValueError(f"engine must be 'local' or 'ray', got {self.engine!r}")
        if self.workers < 0:
            raise ValueError(f"workers must be >= 0, got {self.workers}")


@dataclass(frozen=True, slots=True)
class BatchSummary:
    calls: int  # in the input (after sampling)
    skipped: int  # already done by an earlier run (resume)
    analysed: int  # by this run
    errors: int  # error rows in the whole output
    rows: int  # rows in the output
    elapsed_s: float  # analysis time of this run

    @property
    def calls_per_min(self) -> float:
        return 60.0 * self.analysed / self.elapsed_s if self.elapsed_s > 0 else 0.0


def run_batch(
    calls: Sequence[CallRecord],
    options: BatchOptions,
    *,
    config: DetectorConfig,
    detector_factory: DetectorFactory,
) -> BatchSummary:
    """Analyse every call not yet in the output, journaling each row, then write the output.

    Raises
    ------
    BatchInUseError
        Another batch is writing the same output.
    service.batch_engines.DetectorLoadError
        The workers could not build a detector (rows finished so far stay in the journal).
    """
    out = Path(options.out)
    journal = Journal(journal_path(out))
    try:
        if options.resume:
            earlier = read_rows(out) if out.exists() else []
            done_ids = {r["call_id"] for r in earlier + journal.read()}
        else:
            journal.reset()
            earlier, done_ids = [], set()
        pending = [c for c in calls if c.call_id not in done_ids]
        skipped = len(calls) - len(pending)
        if skipped:
            log.info("resuming: %d of %d calls already done", skipped, len(calls))
        # 0 = one per core here; with a Ray cluster, one per CPU of the cluster (decided there).
        workers = options.workers or (0 if options.ray_address else os.cpu_count() or 1)
        started = time.perf_counter()
        bar = _progress(total=len(calls), initial=skipped, enabled=options.progress)
        analysed = errors = 0
        try:
            for row in iter_rows(
                pending,
                engine=options.engine,
                config=config,
                detector_factory=detector_factory,
                workers=workers,
                ray_address=options.ray_address,
            ):
                journal.append([row])  # durable before it counts
                analysed += 1
                errors += row["status"] != "ok"
                rate = 60.0 * analysed / max(1e-9, time.perf_counter() - started)
                bar.set_postfix_str(f"{rate:.1f} calls/min, {errors} errors", refresh=False)
                bar.update(1)
        finally:
            bar.close()
        elapsed = time.perf_counter() - started
        rows = finalise(out, earlier + journal.read(), calls=calls, options=options, config=config)
        journal.close(remove=True)
    except BaseException:
        journal.close()
        raise
    return BatchSummary(
        calls=len(calls),
        skipped=skipped,
        analysed=analysed,
        errors=sum(r["status"] != "ok" for r in rows),
        rows=len(rows),
        elapsed_s=elapsed,
    )


def finalise(
    out: Path,
    rows: Iterable[dict[str, Any]],
    *,
    calls: Sequence[CallRecord],
    options: BatchOptions,
    config: DetectorConfig,
) -> list[dict[str, Any]]:
    """Deduplicate by ``call_id``, order as the input, assign campaigns, add the prompt evidence
    to the verdicts, write atomically."""
    from service.campaigns import PromptIndex, assign_campaigns

    unique: dict[str, dict[str, Any]] = {}
    for row in rows:
        unique.setdefault(row["call_id"], row)
    order = {c.call_id: c.seq for c in calls}
    ordered = sorted(
        unique.values(), key=lambda r: (order.get(r["call_id"], len(order)), r["call_id"])
    )
    with PromptIndex(options.prompt_index or ":memory:") as index:
        evidence = assign_campaigns(ordered, index=index)
    add_prompt_evidence(ordered, evidence, config=config)
    write_rows(out, ordered)
    if options.jsonl:
        write_jsonl(out.with_suffix(".jsonl"), ordered)
    return ordered


def add_prompt_evidence(
    rows: Iterable[dict[str, Any]], evidence: dict[str, Evidence], *, config: DetectorConfig
) -> None:
    """Fuse each row's ``prompt_seen_before`` evidence (by ``call_id``) into its verdict, in place.

    Here, in the driver, because the evidence depends on the calls recorded before (the prompt
    index is one SQLite file the driver writes, in start-time order), which the workers cannot
    know. The verdict is fused again with the fusion that made it
    (:func:`pipeline.fuse.add_evidence`); evidence of an earlier finalise is replaced, so running
    this twice changes nothing. A verdict made with another config or fusion (an output resumed
    after an upgrade) keeps its verdict, with a warning.
    """
    from service.campaigns import EVIDENCE_NAME

    mismatched: list[str] = []
    for row in rows:
        cue = evidence.get(row["call_id"])
        if row["status"] != "ok" or (cue is None and EVIDENCE_NAME not in row["verdict_json"]):
            continue
        verdict = Verdict.from_dict(json.loads(row["verdict_json"]))
        try:
            verdict = add_evidence(
                verdict,
                () if cue is None else (cue,),
                config=config,
                model=_fusion_of(verdict),
                replace=(EVIDENCE_NAME,),
            )
        except ValueError as exc:
            mismatched.append(f"{row['call_id']}: {exc}")
            continue
        row.update(verdict_columns(verdict))
    if mismatched:
        log.warning(
            "%d verdict(s) made by another config or fusion than this run's were left as they "
            "were, without this run's prompt_seen_before evidence (first: %s)",
            len(mismatched),
            mismatched[0],
        )


def _fusion_of(verdict: Verdict) -> FusionModel | None:
    """The fitted fusion that made ``verdict`` (None: the hand-set sum), as the workers load it.

    :func:`pipeline.fuse.add_evidence` checks its sha256 against the verdict's provenance.
    """
    if not any(m.role == "fusion" for m in verdict.provenance.models):
        return None
    from models.loading import load_fusion

    return load_fusion()


def _progress(*, total: int, initial: int, enabled: bool) -> Any:
    import sys

    from tqdm import tqdm

    tty = sys.stderr.isatty()
    return tqdm(
        total=total,
        initial=initial,
        unit="call",
        disable=not enabled,
        file=sys.stderr,
        mininterval=0.5 if tty else 30.0,  # a log file gets a line every 30 s, not a stream
        ascii=not tty,
        dynamic_ncols=tty,
    )
