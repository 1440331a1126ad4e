"""Bounded worker pool that runs queued analyses from the store.

The queue *is* the ``analyses`` table: the API inserts ``queued`` rows (refusing when
``queue_size`` are queued or running), workers claim them one at a time, and a housekeeping
thread renews the leases of running jobs and requeues jobs whose worker stopped renewing (a
crashed or killed instance), so a restart loses no accepted job. Workers are threads sharing one
loaded detector: inference releases the GIL (CTranslate2, torch), the queue stays in the database.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Protocol

from models.loading import with_asr_config
from pipeline.config import DetectorConfig
from pipeline.errors import RobocallError
from pipeline.types import Verdict
from service.store.blobs import BlobStore
from service.store.database import Analysis, Store
from service.store.retention import purge

log = logging.getLogger(__name__)

_HOUSEKEEPING_MAX_S = 10.0  # lease renewal/recovery at least this often
_PURGE_EVERY_S = 3600.0


class DetectorLike(Protocol):
    """What the pool needs: ``pipeline.detector.Detector`` or a test fake."""

    def detect(self, src: bytes, *, name: str | None = None) -> Verdict: ...


def configure_detector(detector: DetectorLike, job: Analysis) -> DetectorLike:
    """Apply the upload's hints (caller channel, language) to a copy of the detector.

    The frozen config changes, and the transcriber decodes under the new ``asr`` config (it
    reads its own, so changing the detector's alone would only change the provenance); the
    loaded models are shared. A detector without a ``DetectorConfig`` is used as it is.
    """
    config = getattr(detector, "config", None)
    if (job.caller_channel is None and job.language_hint is None) or not (
        dataclasses.is_dataclass(detector) and isinstance(config, DetectorConfig)
    ):
        return detector
    changes: dict[str, object] = {}
    if job.caller_channel is not None:
        changes["caller_channel"] = job.caller_channel
    if job.language_hint is not None:
        changes["asr"] = dataclasses.replace(config.asr, languages=(job.language_hint,))
    new_config = dataclasses.replace(config, **changes)
    replaced: dict[str, object] = {"config": new_config}
    transcriber = getattr(detector, "transcriber", None)
    if transcriber is not None:
        replaced["transcriber"] = with_asr_config(transcriber, new_config.asr)
    return dataclasses.replace(detector, **replaced)


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host; our own pid counts as gone (at start-up it
    can only have been a previous process's, e.g. pid 1 of a restarted container)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def _serialise(verdict: Verdict) -> str:
    try:
        return json.dumps(verdict.to_dict(), ensure_ascii=False, allow_nan=False)
    except ValueError as exc:  # NaN/inf in a cue: a pipeline bug, reported, never stored as JSON
        raise InternalAnalysisError("the verdict contained a non-finite number") from exc


class InternalAnalysisError(RobocallError):
    """The analysis itself failed (a bug, not the input): reported as ``internal_error``."""

    code = "internal_error"
    status = 500


class WorkerPool:
    """``workers`` threads running analyses; start with :meth:`start`, end with :meth:`stop`.

    Parameters
    ----------
    store, blobs : Store, BlobStore
        Where jobs and audio are.
    detector : callable
        Returns the detector to use (looked up per job, so tests can swap it).
    workers : int
        Analyses run at the same time.
    lease_s : float
        A running job not renewed for this long is requeued (by any instance).
    max_attempts : int
        A job claimed this many times without finishing is failed (``analysis_abandoned``).
    poll_interval_s : float
        Idle workers look for jobs queued elsewhere this often.
    shutdown_grace_s : float
        :meth:`stop` waits this long for running analyses, then requeues them.
    retention_days : float or None
        When set, results and audio older than this are purged hourly.
    """

    def __init__(
        self,
        store: Store,
        blobs: BlobStore,
        detector: Callable[[], DetectorLike],
        *,
        workers: int = 1,
        lease_s: float = 60.0,
        max_attempts: int = 3,
        poll_interval_s: float = 1.0,
        shutdown_grace_s: float = 5.0,
        retention_days: float | None = None,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.detector = detector
        self.workers = workers
        self.lease_s = lease_s
        self.max_attempts = max_attempts
        self.poll_interval_s = poll_interval_s
        self.shutdown_grace_s = shutdown_grace_s
        self.retention_days = retention_days
        self._stop = threading.Event()
        self._wake = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._running: dict[str, str] = {}  # claim token -> analysis id
        self._finished: dict[str, threading.Event] = {}
        self._mean_job_s = 5.0  # running mean, for Retry-After
        self._host = socket.gethostname()
        self._claimed_by = f"{self._host}:{os.getpid()}"

    @property
    def is_running(self) -> bool:
        return bool(self._threads) and not self._stop.is_set()

    def start(self) -> None:
        # Jobs this host's dead processes left running go back now, not when their lease ends.
        self.store.recover_dead(host=self._host, is_alive=_pid_alive)
        self.store.recover_expired(max_attempts=self.max_attempts)
        self._stop.clear()
        for i in range(self.workers):
            t = threading.Thread(target=self._work, name=f"robocall-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        t = threading.Thread(target=self._housekeep, name="robocall-housekeeping", daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self) -> None:
        """Stop claiming, give running analyses ``shutdown_grace_s``, requeue the rest."""
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        deadline = time.monotonic() + self.shutdown_grace_s
        for t in self._threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        self._threads = []
        with self._lock:
            tokens = list(self._running)
        if tokens:
            try:
                n = self.store.release(tokens)
                log.warning("stopped with %d analyses unfinished; requeued %d", len(tokens), n)
            except Exception:  # noqa: BLE001 - their leases expire and another start requeues
                log.exception("could not requeue unfinished analyses")

    def notify(self) -> None:
        """A job was queued: wake one idle worker."""
        with self._wake:
            self._wake.notify()

    def watch(self, analysis_id: str) -> threading.Event:
        """An event set when this instance finishes the analysis (for ``?wait=true``)."""
        with self._lock:
            return self._finished.setdefault(analysis_id, threading.Event())

    def unwatch(self, analysis_id: str) -> None:
        with self._lock:
            self._finished.pop(analysis_id, None)

    def retry_after_s(self, depth: int) -> int:
        """Seconds a client should wait when the queue is full (estimate, 1..120)."""
        estimate = self._mean_job_s * max(1, depth) / max(1, self.workers)
        return int(min(120, max(1, math.ceil(estimate))))

    # -- threads ----------------------------------------------------------------------------

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                job = self.store.claim_next(lease_s=self.lease_s, claimed_by=self._claimed_by)
            except Exception:  # noqa: BLE001 - database away: keep the thread, retry later
                log.exception("could not claim a job")
                job = None
            if job is None:
                with self._wake:
                    if not self._stop.is_set():
                        self._wake.wait(timeout=self.poll_interval_s)
                continue
            self._run(job)

    def _run(self, job: Analysis) -> None:
        token = job.claim_token or ""
        with self._lock:
            self._running[token] = job.id
        started = time.monotonic()
        verdict_json: str | None = None
        label: str | None = None
        code: str | None = None
        message: str | None = None
        try:
            data = self.blobs.read(job.audio_sha256)
            verdict = configure_detector(self.detector(), job).detect(data, name=job.audio_name)
            verdict_json, label = _serialise(verdict), verdict.label.value
        except RobocallError as exc:
            code, message = exc.code, exc.message
        except FileNotFoundError:
            code, message = "audio_missing", "the stored recording was deleted before analysis"
        except Exception:  # noqa: BLE001 - a bug must fail this job, not the worker
            log.exception("analysis %s failed", job.id)
            code, message = "internal_error", "the analysis failed unexpectedly; see the server log"
        elapsed = time.monotonic() - started
        self._mean_job_s = 0.8 * self._mean_job_s + 0.2 * elapsed
        try:
            if not self.store.finish(
                job.id,
                token,
                verdict_json=verdict_json,
                error_code=code,
                error_message=message,
                label=label,
            ):
                log.info("analysis %s was deleted or requeued while running", job.id)
        except Exception:  # noqa: BLE001 - the lease expires and the job runs again
            log.exception("could not record the result of %s", job.id)
        finally:
            with self._lock:
                self._running.pop(token, None)
                event = self._finished.get(job.id)
            if event is not None:
                event.set()
        log.info("analysis %s %s in %.2fs", job.id, "done" if code is None else code, elapsed)

    def _housekeep(self) -> None:
        interval = min(_HOUSEKEEPING_MAX_S, self.lease_s / 3.0)
        next_purge = time.monotonic()
        while not self._stop.wait(interval):
            try:
                with self._lock:
                    tokens = list(self._running)
                self.store.renew_leases(tokens, lease_s=self.lease_s)
                requeued, _ = self.store.recover_expired(max_attempts=self.max_attempts)
                if requeued:
                    with self._wake:
                        self._wake.notify_all()
                if self.retention_days is not None and time.monotonic() >= next_purge:
                    purge(self.store, self.blobs, retention_days=self.retention_days)
                    next_purge = time.monotonic() + _PURGE_EVERY_S
            except Exception:  # noqa: BLE001 - keep housekeeping alive through outages
                log.exception("housekeeping failed")
