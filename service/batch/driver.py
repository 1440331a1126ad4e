"""Bulk runs for carriers: find the calls, sample them, analyse them on many cores, never lose one.

``robocall batch`` (see :mod:`service.commands.batch` and ``docs/batch.md``) in four steps:

1. **Discover** the calls (:func:`~service.batch.inputs.discover_calls`): every audio file under a
   directory, or the rows of a CSV/Parquet manifest with the path and the call metadata.
2. **Sample** (:func:`~service.batch.inputs.sample_calls`): a reproducible fraction, stratified by
   caller number.
3. **Analyse** on an engine (:mod:`service.batch.engines`): ``local`` (a process pool, one
   detector per worker process) or ``ray`` (Ray Data feeding an actor pool, one detector per
   actor). Each worker turns a :class:`CallRecord` into one flat row
   (:func:`~service.batch.analyse.analyse_call`); a failing call becomes an error row, never an
   exception.
4. **Journal and finalise** (:mod:`service.batch.journal`): the driver appends each finished row
   to a write-ahead JSONL journal (``<out>.journal.jsonl``, fsync'd) before counting it done. A
   crash or ``kill -9`` loses at most the calls in flight, which are analysed again on resume; rows
   are keyed by ``call_id``, so none is counted twice. Finalising clusters the calls into campaigns
   (:mod:`service.campaigns.index`), fuses the ``prompt_seen_before`` evidence of each call (its
   prompt recorded before it) into its verdict (:func:`add_prompt_evidence`), and writes the Parquet
   (and JSONL) atomically.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sized
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pipeline.config import DetectorConfig
from pipeline.files import atomic_path
from pipeline.fuse import FusionModel, add_evidence
from pipeline.types import Evidence, Verdict
from service.batch import engines
from service.batch.analyse import DetectorFactory, peak_rss_mb, verdict_columns
from service.batch.inputs import CallRecord
from service.batch.journal import (
    Journal,
    Parts,
    iter_tables,
    journal_path,
    jsonl_lines,
    output_call_ids,
    output_schema,
    parts_dir,
    rows_table,
    table_rows,
)
from service.batch.metrics import RunMetrics

log = logging.getLogger(__name__)

Engine = Literal["local", "ray"]

# --- engines ------------------------------------------------------------------------------------


def iter_rows(
    pending: Iterable[CallRecord],
    *,
    engine: Engine,
    config: DetectorConfig,
    detector_factory: DetectorFactory,
    workers: int,
    ray_address: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Analyse ``pending`` on the chosen engine; yields rows in completion order."""
    if engine == "local":
        return engines.iter_local(
            pending, config=config, detector_factory=detector_factory, workers=workers
        )
    if engine == "ray":
        return engines.iter_ray(
            pending,
            config=config,
            detector_factory=detector_factory,
            workers=workers,
            address=ray_address,
        )
    raise ValueError(f"engine must be 'local' or 'ray', got {engine!r}")


# --- run, journal, finalise (driver) ------------------------------------------------------------

ROW_GROUP_ROWS = 4096  # rows per part / row group of the output
ROW_GROUP_BYTES = 32 * 2**20  # ... or fewer, when their verdicts and fingerprints reach this
COMMIT_EVERY_S = 0.2  # group commit of the journal: one fsync per this much time, not per call
COMMIT_EVERY_ROWS = 512
# Summary counts by the verdict's decided caller (Verdict.caller_certainty), not by ``label``:
# an uncertain row carries label human_sales_pitch but is neither counted a robot nor a person.
CERTAINTY_TOTALS = {"robot": "robots", "person": "persons", "uncertain": "uncertain"}


@dataclass(frozen=True, slots=True)
class BatchOptions:
    out: Path  # results Parquet; the journal is <out>.journal.jsonl beside it
    engine: Engine = "local"
    workers: int = 0  # processes (local) or actors (ray); 0 = one per CPU core
    ray_address: str | None = None  # an existing Ray cluster; None starts Ray locally
    resume: bool = True  # keep rows already in the output/journal, analyse only the rest
    jsonl: bool = False  # also write <out stem>.jsonl: {"input", "verdict"|"error", ...}
    prompt_index: str | None = None  # SQLite prompt index; None = this run only (a temp file)
    progress: bool = False  # progress bar with calls/min and ETA on stderr
    total: int | None = None  # calls in the input, for the ETA when ``calls`` is a stream
    metrics: RunMetrics | None = None  # Prometheus counters updated as rows finish

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
    robots: int  # rows whose caller is decided a robot (caller_certainty "robot")
    persons: int  # rows whose caller is decided a live person
    uncertain: int  # rows left undecided (the uncertain band): neither of the two above
    campaigns: int  # campaigns with at least two calls among the output's rows
    elapsed_s: float  # analysis time of this run
    peak_rss_mb: float  # of the driver process (VmHWM)

    @property
    def calls_per_min(self) -> float:
        return 60.0 * self.analysed / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The machine-readable summary (``robocall batch`` prints it, ``--summary`` saves it)."""
        return {
            "calls": self.calls,
            "skipped_done": self.skipped,
            "analysed": self.analysed,
            "errors": self.errors,
            "rows": self.rows,
            "robots": self.robots,
            "persons": self.persons,
            "uncertain": self.uncertain,
            "campaigns": self.campaigns,
            "elapsed_s": round(self.elapsed_s, 2),
            "calls_per_min": round(self.calls_per_min, 1),
            "driver_peak_rss_mb": self.peak_rss_mb,
        }


def run_batch(
    calls: Iterable[CallRecord],
    options: BatchOptions,
    *,
    config: DetectorConfig,
    detector_factory: DetectorFactory,
) -> BatchSummary:
    """Analyse every call not yet in the output, journaling each row, then write the output.

    Memory does not grow with the number of calls: ``calls`` is consumed as the workers need
    them, finished rows go through the campaign step in input order and into row groups on disk
    (:class:`~service.batch.journal.Parts`), and the output is streamed from those.

    Raises
    ------
    BatchInUseError
        Another batch is writing the same output.
    service.batch.engines.DetectorLoadError
        The workers could not build a detector (rows finished so far stay in the journal).
    """
    from service.campaigns.index import PromptIndex

    out = Path(options.out)
    journal = Journal(journal_path(out))
    parts = Parts(parts_dir(out))
    index_file = Path(options.prompt_index) if options.prompt_index else _run_index_path(out)
    try:
        if not options.resume:
            journal.reset()
            parts.clear()
            _remove_sqlite(_run_index_path(out))
        done = parts.call_ids()
        if options.resume and out.exists():
            done |= output_call_ids(out)
        cached = {r["call_id"]: r for r in journal.read() if r["call_id"] not in done}
        counted = _Counted(calls)
        if options.total is None and isinstance(calls, Sized):
            options = dataclasses.replace(options, total=len(calls))
        pending = (c for c in counted if c.call_id not in done)
        # 0 = one per core here; with a Ray cluster, one per CPU of the cluster (decided there).
        workers = options.workers or (0 if options.ray_address else os.cpu_count() or 1)
        started = time.perf_counter()
        with PromptIndex(index_file) as index:
            if not options.prompt_index and out.exists() and options.resume:
                _replay_output(out, index)  # this run's index died with its temp file
            stream = _Stream(journal=journal, parts=parts, index=index, config=config,
                             cached=cached, options=options, done=len(done))  # fmt: skip
            try:
                stream.run(
                    pending, engine=options.engine, detector_factory=detector_factory,
                    workers=workers,
                )  # fmt: skip
            finally:
                stream.close()
            elapsed = time.perf_counter() - started
            totals = _write_output(
                out, parts, index=index, jsonl=options.jsonl, earlier=options.resume
            )
        journal.close(remove=True)
        parts.clear()
        if not options.prompt_index:
            _remove_sqlite(index_file)
    except BaseException:
        journal.close()
        raise
    return BatchSummary(
        calls=counted.count,
        skipped=counted.count - stream.analysed,
        analysed=stream.analysed,
        errors=totals["errors"],
        rows=totals["rows"],
        robots=totals["robots"],
        persons=totals["persons"],
        uncertain=totals["uncertain"],
        campaigns=totals["campaigns"],
        elapsed_s=elapsed,
        peak_rss_mb=peak_rss_mb(),
    )


class _Counted:
    """Iterate ``calls`` once, counting them (the input may be a generator)."""

    def __init__(self, calls: Iterable[CallRecord]) -> None:
        self.calls, self.count = calls, 0

    def __iter__(self) -> Iterator[CallRecord]:
        for call in self.calls:
            self.count += 1
            yield call


class _Stream:
    """The driver's loop: journal finished rows, put them in input order, campaign them, write
    them in row groups. Holds at most the rows between the oldest call in flight and the newest
    one finished, plus one row group."""

    def __init__(
        self,
        *,
        journal: Journal,
        parts: Parts,
        index: Any,
        config: DetectorConfig,
        cached: dict[str, dict[str, Any]],
        options: BatchOptions,
        done: int,
    ) -> None:
        self.journal, self.parts, self.index, self.config = journal, parts, index, config
        self.cached = cached  # rows in the journal from a killed run, not analysed again
        self.options = options
        self.done = done  # calls already in the output or the parts
        self.order: deque[str] = deque()  # call ids handed out, oldest first, not yet grouped
        self.finished: dict[str, dict[str, Any]] = {}  # rows waiting for an older call
        self.unsynced: list[dict[str, Any]] = []  # journaled rows not yet fsync'd
        self.group: list[dict[str, Any]] = []  # campaigned rows of the next part
        self.group_bytes = 0
        self.synced_at = time.perf_counter()
        self.analysed = self.reused = self.errors = 0
        self.bar: Any = None

    def run(
        self,
        pending: Iterator[CallRecord],
        *,
        engine: Engine,
        detector_factory: DetectorFactory,
        workers: int,
    ) -> None:
        total = self.options.total
        # The bar counts the calls this run takes on (analysed, or taken from the journal).
        self.bar = _progress(
            total=None if total is None else max(0, total - self.done),
            enabled=self.options.progress,
        )
        started = time.perf_counter()
        to_analyse = self._hand_out(pending)
        for row in iter_rows(
            to_analyse,
            engine=engine,
            config=self.config,
            detector_factory=detector_factory,
            workers=workers,
            ray_address=self.options.ray_address,
        ):
            self.unsynced.append(row)
            self.analysed += 1
            self.errors += row["status"] != "ok"
            if (
                len(self.unsynced) >= COMMIT_EVERY_ROWS
                or time.perf_counter() - self.synced_at >= COMMIT_EVERY_S
            ):
                self._sync()
            rate = 60.0 * self.analysed / max(1e-9, time.perf_counter() - started)
            self.bar.set_postfix_str(f"{rate:.1f} calls/min, {self.errors} errors", refresh=False)
            self.bar.update(1)
        self._sync()
        self._advance()  # the cached rows after the last analysed call
        if self.order:
            raise RuntimeError(f"{len(self.order)} call(s) handed out but never finished")
        self._flush()

    def _hand_out(self, pending: Iterator[CallRecord]) -> Iterator[CallRecord]:
        """The calls to analyse, recording the input order; calls in the journal of a killed
        run are not analysed again, they take their place in the order."""
        for call in pending:
            self.order.append(call.call_id)
            if call.call_id in self.cached:
                self.finished[call.call_id] = self.cached.pop(call.call_id)
                self.reused += 1
                self.bar.update(1)
                self._advance()
                continue
            yield call

    def _sync(self) -> None:
        """Journal (one fsync) the rows finished since the last sync; they now count done."""
        if self.unsynced:
            self.journal.append(self.unsynced)
            for row in self.unsynced:
                self.finished[row["call_id"]] = row
                if self.options.metrics is not None:
                    self.options.metrics.observe(row)
            self.unsynced = []
            self._advance()
        self.synced_at = time.perf_counter()

    def _advance(self) -> None:
        """Campaign the rows whose turn has come (every older call is finished)."""
        from service.campaigns.heard_before import assign_campaign

        while self.order and self.order[0] in self.finished:
            row = self.finished.pop(self.order.popleft())
            cue = assign_campaign(row, index=self.index)
            add_prompt_evidence(row, cue, config=self.config)
            self.group.append(row)
            self.group_bytes += len(row.get("verdict_json") or "") + len(
                row.get("audio_fingerprint") or b""
            )
            if len(self.group) >= ROW_GROUP_ROWS or self.group_bytes >= ROW_GROUP_BYTES:
                self._flush()

    def _flush(self) -> None:
        """Write the row group as a part; its rows leave the journal. The index is committed
        first: a part's calls are always in the index (a crash in between re-adds them, which
        changes nothing)."""
        if not self.group:
            return
        self.index.commit()
        self.parts.write(self.group)
        self.group, self.group_bytes = [], 0
        waiting = [*self.finished.values(), *self.cached.values()]
        self.journal.rewrite(waiting)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _write_output(
    out: Path, parts: Parts, *, index: Any, jsonl: bool, earlier: bool
) -> dict[str, int]:
    """Stream the rows of the earlier output (when ``earlier``: resumed) and of the parts into
    ``out`` (and its JSONL), one row group at a time, counting each row's other calls of its
    campaign."""
    import pyarrow.parquet as pq

    from service.campaigns.heard_before import count_other_calls

    sources = ([out] if earlier and out.exists() else []) + parts.paths()
    totals = {"rows": 0, "errors": 0, "robots": 0, "persons": 0, "uncertain": 0}
    seen: set[str] = set()  # campaigns with other calls
    with atomic_path(out) as tmp, ExitStack() as stack:
        writer = stack.enter_context(pq.ParquetWriter(tmp, output_schema(), compression="zstd"))
        lines = None
        if jsonl:
            lines = stack.enter_context(atomic_path(out.with_suffix(".jsonl")))
            lines_fh = stack.enter_context(lines.open("w", encoding="utf-8"))
        for source in sources:
            for table in iter_tables(source):
                rows = table_rows(table)
                count_other_calls(rows, index=index)
                writer.write_table(rows_table(rows))
                if lines is not None:
                    lines_fh.write(jsonl_lines(rows))
                totals["rows"] += len(rows)
                totals["errors"] += sum(r["status"] != "ok" for r in rows)
                for certainty, key in CERTAINTY_TOTALS.items():
                    totals[key] += sum(r.get("caller_certainty") == certainty for r in rows)
                seen.update(r["campaign_id"] for r in rows if r.get("prompt_other_calls"))
    totals["campaigns"] = len(seen)
    return totals


def _replay_output(out: Path, index: Any) -> None:
    """Record the rows of an earlier output in a fresh run-only index, in their order, so that
    calls added to a finished output see them as earlier calls."""
    from service.campaigns.heard_before import assign_campaign

    for table in iter_tables(out):
        for row in table_rows(table):
            assign_campaign(row, index=index)
    index.commit()


def _run_index_path(out: Path) -> Path:
    """The prompt index of a run without a persistent one: beside the output, so that it
    survives a crash with the parts it indexes, and removed when the run ends."""
    return out.with_name(out.name + ".index.sqlite")


def _remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def add_prompt_evidence(
    row: dict[str, Any], cue: Evidence | None, *, config: DetectorConfig
) -> None:
    """Fuse a row's ``prompt_seen_before`` evidence into its verdict, in place.

    Here, in the driver, because the evidence depends on the calls recorded before (the prompt
    index is one SQLite file the driver writes, in input order), which the workers cannot
    know. The verdict is fused again with the fusion that made it
    (:func:`pipeline.fuse.add_evidence`); evidence of an earlier run is replaced, so doing this
    twice changes nothing. A verdict made with another config or fusion (an output resumed
    after an upgrade) keeps its verdict, with a warning.
    """
    from service.campaigns.index import EVIDENCE_NAME

    if row["status"] != "ok" or (cue is None and EVIDENCE_NAME not in row["verdict_json"]):
        return
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
        log.warning(
            "%s: verdict made by another config or fusion than this run's, left as it was, "
            "without this run's prompt_seen_before evidence (%s)",
            row["call_id"],
            exc,
        )
        return
    row.update(verdict_columns(verdict))


def _fusion_of(verdict: Verdict) -> FusionModel | None:
    """The fitted fusion that made ``verdict`` (None: the hand-set sum), as the workers load it.

    :func:`pipeline.fuse.add_evidence` checks its sha256 against the verdict's provenance.
    """
    if not any(m.role == "fusion" for m in verdict.provenance.models):
        return None
    from models.loading import load_fusion

    return load_fusion()


def _progress(*, total: int | None, enabled: bool) -> Any:
    import sys

    from tqdm import tqdm

    tty = sys.stderr.isatty()
    return tqdm(
        total=total,
        unit="call",
        disable=not enabled,
        file=sys.stderr,
        mininterval=0.5 if tty else 30.0,  # a log file gets a line every 30 s, not a stream
        ascii=not tty,
        dynamic_ncols=tty,
    )
