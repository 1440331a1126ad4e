"""The two batch engines: a local process pool, and Ray (an actor pool fed by Ray Data).

Both load one detector per worker (process or actor) through the injected ``detector_factory``
(``models.loading.load_detector`` in production, a fake in tests) and run
:func:`service.batch.analyse.analyse_call` on each :class:`~service.batch.inputs.CallRecord`;
both yield the finished rows to the driver in completion order, which journals them (see
``service/batch/driver.py``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import multiprocessing
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import numpy as np

from pipeline.config import DetectorConfig
from service.batch.analyse import (
    BatchDetector,
    DetectorFactory,
    analyse_call,
    row_metadata,
)
from service.batch.inputs import CallRecord

log = logging.getLogger(__name__)

MAX_WORKER_CRASHES = 2  # a call in flight when a worker died this often gets an error row
MAX_BREAKS_WITHOUT_PROGRESS = 3  # then the pool itself is broken, not one file
IN_FLIGHT_PER_WORKER = 2  # queued calls per worker: keeps workers busy, memory bounded
# A call is handed out only while it is at most this many calls ahead of the oldest call in
# flight: the driver keeps finished rows until every older call is done (input order), so one
# slow call must not let the rest of the manifest pile up behind it.
AHEAD_PER_WORKER = 64


class DetectorLoadError(RuntimeError):
    """A worker could not build its detector (missing weights, bad config): the run stops."""


LOAD_ERROR_PREFIX = "a batch worker could not load the detector: "


class WorkerPoolError(RuntimeError):
    """Worker processes die before finishing any call: the run stops (rows so far are kept)."""


# --- local process pool -------------------------------------------------------------------------

_DETECTOR: BatchDetector | None = None
_LOAD_ERROR: str | None = None


def _init_worker(
    factory: DetectorFactory, config: DetectorConfig, parent_pid: int, threads: int
) -> None:
    global _DETECTOR, _LOAD_ERROR
    # Our own session, as Ray's workers have: Ctrl-C reaches only the driver (which shuts the
    # pool down) instead of interrupting every call, and on Linux with autogroup scheduling the
    # workers are not squeezed into the one CPU share of the driver's terminal session.
    try:
        os.setsid()
    except OSError:  # already a session leader
        pass
    # Math libraries read these when first imported (below, by the factory): N workers x all
    # cores each would oversubscribe the machine.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()
    try:
        _DETECTOR = factory(config)
    except Exception as exc:  # noqa: BLE001 - reported to the driver by the first task
        _LOAD_ERROR = _load_message(exc)


def _exit_with_parent(parent_pid: int) -> None:
    """A killed driver must not leave workers behind (kill -9 skips every cleanup)."""
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os._exit(1)


def _work(record: CallRecord) -> dict[str, Any]:
    if _DETECTOR is None:
        raise DetectorLoadError(_LOAD_ERROR or LOAD_ERROR_PREFIX + "unknown error")
    return analyse_call(_DETECTOR, record)


def iter_local(
    pending: Iterable[CallRecord],
    *,
    config: DetectorConfig,
    detector_factory: DetectorFactory,
    workers: int,
) -> Iterator[dict[str, Any]]:
    """Analyse on a pool of ``workers`` spawned processes, models loaded once per process.

    A worker that dies (a decoder crash, the out-of-memory killer) breaks the pool: it is rebuilt
    and the calls that were in flight are retried one at a time, which pins the culprit; a call
    that broke the pool :data:`MAX_WORKER_CRASHES` times gets a ``worker_crashed`` error row.

    Raises
    ------
    DetectorLoadError
        A worker could not build its detector.
    WorkerPoolError
        Workers kept dying before finishing any call (the environment, not a file).
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")  # fork + threads (torch, ray) deadlocks

    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=workers,
            mp_context=context,
            initializer=_init_worker,
            initargs=(detector_factory, config, os.getpid(), threads),
        )

    calls = iter(pending)
    queue: deque[CallRecord] = deque()  # handed out by ``calls``, not yet submitted
    handed = 0  # calls taken from ``calls``
    position: dict[str, int] = {}  # call_id -> its place in the input, for calls in flight
    suspects: deque[CallRecord] = deque()  # in flight when a worker died: retried alone
    crashes: Counter[str] = Counter()
    breaks_without_progress = 0
    in_flight: dict[Future[dict[str, Any]], CallRecord] = {}

    def take() -> bool:
        nonlocal handed
        if queue:
            return True
        oldest = min(position.values(), default=handed)
        if handed - oldest >= AHEAD_PER_WORKER * workers:
            return False
        record = next(calls, None)
        if record is None:
            return False
        position[record.call_id] = handed
        handed += 1
        queue.append(record)
        return True

    pool = new_pool()
    try:
        while take() or suspects or in_flight:
            if suspects:
                if not in_flight:
                    record = suspects.popleft()
                    in_flight[pool.submit(_work, record)] = record
            else:
                while len(in_flight) < IN_FLIGHT_PER_WORKER * workers and take():
                    record = queue.popleft()
                    in_flight[pool.submit(_work, record)] = record
            if not in_flight:
                continue
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            broken = False
            for future in done:
                try:
                    row = future.result()
                except BrokenProcessPool:
                    broken = True
                    continue
                record = in_flight.pop(future)
                position.pop(record.call_id, None)
                breaks_without_progress = 0
                yield row
            if not broken:
                continue
            breaks_without_progress += 1
            if breaks_without_progress >= MAX_BREAKS_WITHOUT_PROGRESS:
                raise WorkerPoolError(
                    f"worker processes died {breaks_without_progress} times in a row without "
                    "finishing a call; see the log above"
                )
            pool.shutdown(wait=True, cancel_futures=True)
            log.warning("a worker died; retrying %d call(s) one at a time", len(in_flight))
            for record in in_flight.values():
                crashes[record.call_id] += 1
                if crashes[record.call_id] >= MAX_WORKER_CRASHES:
                    position.pop(record.call_id, None)
                    yield _crash_row(record)
                else:
                    suspects.append(record)
            in_flight.clear()
            pool = new_pool()
    finally:
        pool.shutdown(wait=not in_flight, cancel_futures=True)


def _crash_row(record: CallRecord) -> dict[str, Any]:
    row = row_metadata(record)
    row.update(
        status="error",
        error_code="worker_crashed",
        error_message=f"{record.path}: the worker analysing this call died "
        f"{MAX_WORKER_CRASHES} times (decoder crash or out of memory)",
    )
    return row


# --- Ray ----------------------------------------------------------------------------------------


class RayAnalyser:
    """Ray Data actor: builds the detector once, then analyses one batch of records at a time."""

    def __init__(self, factory: DetectorFactory, config: DetectorConfig) -> None:
        self.detector: BatchDetector | None = None
        self.load_error: str | None = None
        try:
            self.detector = factory(config)
        except Exception as exc:  # noqa: BLE001 - raised with our message by the first batch
            self.load_error = _load_message(exc)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.detector is None:
            raise DetectorLoadError(self.load_error or LOAD_ERROR_PREFIX + "unknown error")
        rows = [
            json.dumps(analyse_call(self.detector, CallRecord(**json.loads(r))), default=_bytes)
            for r in batch["record_json"]
        ]
        return {"row_json": np.asarray(rows, dtype=object)}


def _load_message(exc: BaseException) -> str:
    import platform

    return f"{LOAD_ERROR_PREFIX}{type(exc).__name__}: {exc} (on {platform.node()}:{os.getpid()})"


def _our_load_error(exc: BaseException) -> str | None:
    """Our message inside whatever Ray wrapped it in (a task error, an actor that died)."""
    text = str(exc)
    at = text.find(LOAD_ERROR_PREFIX)
    if at < 0:
        return None
    return text[at:].splitlines()[0]


def _bytes(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"__bytes__": value.hex()}
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _unbytes(obj: dict[str, Any]) -> Any:
    return bytes.fromhex(obj["__bytes__"]) if set(obj) == {"__bytes__"} else obj


def iter_ray(
    pending: Iterable[CallRecord],
    *,
    config: DetectorConfig,
    detector_factory: DetectorFactory,
    workers: int,
    address: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Analyse with Ray Data: the records become a dataset, an actor pool holds the detectors.

    Parameters
    ----------
    workers : int
        Actors (one CPU each). With ``address`` and ``workers=0``: one per CPU of the cluster.
    address : str, optional
        An existing cluster (``ray://head:10001`` or ``auto``); None starts Ray on this machine
        with ``workers`` CPUs. Every node must have this package installed and see the audio
        paths (shared file system or object-store URIs), see ``docs/batch.md``.
    """
    import ray
    import ray.data

    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=max(1, workers), include_dashboard=False, log_to_driver=False)
    try:
        if workers < 1:
            workers = max(1, int(ray.cluster_resources().get("CPU", 1)))  # type: ignore[no-untyped-call]
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the driver shows its own (calls/min, ETA)
        # Rows in input order: the driver campaigns them in that order and keeps the rows that
        # came early until their turn, so order keeps that buffer small.
        context.execution_options.preserve_order = True
        items = [{"record_json": json.dumps(dataclasses.asdict(r))} for r in pending]
        # Small blocks so that long and short calls spread evenly over the actors.
        blocks = min(len(items), max(4 * workers, len(items) // 8))
        dataset = ray.data.from_items(items, override_num_blocks=blocks).map_batches(
            RayAnalyser,
            fn_constructor_args=(detector_factory, config),
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=1,
        )
        try:
            for row in dataset.iter_rows():
                yield json.loads(row["row_json"], object_hook=_unbytes)
        except Exception as exc:
            message = _our_load_error(exc)
            if message is None:
                raise
            raise DetectorLoadError(message) from None
    finally:
        if started_here:
            ray.shutdown()
