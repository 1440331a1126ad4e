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

import json
import logging
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pipeline.config import DetectorConfig
from pipeline.fuse import FusionModel, add_evidence
from pipeline.types import Evidence, Verdict
from service.batch import engines
from service.batch.analyse import DetectorFactory, verdict_columns
from service.batch.inputs import CallRecord
from service.batch.journal import Journal, journal_path, read_rows, write_jsonl, write_rows

log = logging.getLogger(__name__)

Engine = Literal["local", "ray"]

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
    service.batch.engines.DetectorLoadError
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
    from service.campaigns.index import PromptIndex, assign_campaigns

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
    from service.campaigns.index import EVIDENCE_NAME

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
