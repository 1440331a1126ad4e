"""``robocall batch`` and ``robocall campaigns``: bulk runs for carriers (see ``docs/batch.md``).

``batch`` prints one JSON summary line to stdout (the results are in the files); progress and
logs go to stderr. Exit 0 when every call was analysed, 1 when any call became an error row (or
the models could not load), 2 on usage errors (bad flags, unreadable manifest).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.commands.analyze import add_detector_options, config_from_args
from service.detector import load_detector

if TYPE_CHECKING:
    from service.batch.inputs import CallRecord

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    batch = sub.add_parser(
        "batch",
        help="analyse a directory or manifest of calls into Parquet",
        description="Analyse many calls: a directory of recordings, or a CSV/Parquet manifest "
        "(path, caller_number, callee_number, start_time, duration_s, trunk, channel_layout). "
        "Writes one row per call (verdict, probabilities, topic, top cues, transcript, campaign, "
        "error, model provenance). Safe to kill: run it again and it resumes.",
    )
    batch.add_argument("input", type=Path, metavar="INPUT", help="directory, .csv or .parquet")
    batch.add_argument("--out", type=Path, required=True, help="results Parquet file")
    batch.add_argument(
        "--jsonl", action="store_true", help="also write <out>.jsonl, one line per call"
    )
    sampling = batch.add_mutually_exclusive_group()
    sampling.add_argument(
        "--sample", type=float, metavar="FRACTION", help="analyse this fraction, stratified by "
        "caller number (reproducible: same --seed, same calls)",
    )  # fmt: skip
    sampling.add_argument(
        "--sample-by-risk", type=float, metavar="FRACTION", help="analyse this fraction, the "
        "caller numbers whose call records look like an auto-dialer first, plus a uniform share "
        "for an unbiased robot-rate estimate (in the summary, with its 95%% interval)",
    )  # fmt: skip
    batch.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    batch.add_argument(
        "--uniform-share", type=float, default=0.2, help="with --sample-by-risk: part of the "
        "budget drawn uniformly (default 0.2)",
    )  # fmt: skip
    batch.add_argument(
        "--max-calls-per-number", type=int, default=25, help="with --sample-by-risk: calls of "
        "one risky number analysed (default 25)",
    )  # fmt: skip
    batch.add_argument(
        "--tz-offset-h", type=float, default=8.0, help="with --sample-by-risk: callers' local "
        "time, hours from UTC, for night calls (default 8)",
    )  # fmt: skip
    batch.add_argument("--engine", choices=("local", "ray"), default="local")
    batch.add_argument(
        "--ray-address", metavar="ADDRESS", help="existing Ray cluster (e.g. ray://head:10001 or "
        "auto); default: start Ray on this machine",
    )  # fmt: skip
    batch.add_argument(
        "--workers",
        type=int,
        default=0,
        help="worker processes / Ray actors (default: one per core)",
    )
    batch.add_argument(
        "--resume", action=argparse.BooleanOptionalAction, default=True,
        help="keep calls already in --out or its journal and analyse the rest (default); "
        "--no-resume starts over",
    )  # fmt: skip
    index = batch.add_mutually_exclusive_group()
    index.add_argument(
        "--prompt-index", type=Path, metavar="SQLITE", help="persistent prompt index (default: "
        "prompt_index.sqlite in ROBOCALL_DATA_DIR, ~/.local/share/robocall)",
    )  # fmt: skip
    index.add_argument(
        "--no-prompt-index", action="store_true", help="cluster this run only, remember nothing"
    )
    batch.add_argument(
        "--campaigns", action="store_true", help="also write the campaign table and HTML summary"
    )
    batch.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None,
        help="progress bar with calls/min and ETA on stderr (default: when stderr is a terminal)",
    )  # fmt: skip
    batch.add_argument(
        "--summary", type=Path, metavar="JSON", help="also write the summary (calls, robots, "
        "errors, campaigns, throughput, robot-rate estimate) to this file",
    )  # fmt: skip
    batch.add_argument(
        "--metrics-port", type=int, metavar="PORT", help="serve Prometheus metrics on "
        "127.0.0.1:PORT while the batch runs (needs prometheus-client)",
    )  # fmt: skip
    add_detector_options(batch)
    batch.set_defaults(func=run_batch_command)

    campaigns = sub.add_parser(
        "campaigns",
        help="campaign table and HTML summary of a batch's results",
        description="Group the calls of a results Parquet into campaigns (same prompt replayed "
        "from many numbers) and write a table (calls, distinct caller numbers, first/last seen, "
        "verdict mix, topic, a representative transcript) and an HTML summary with charts.",
    )
    campaigns.add_argument("results", type=Path, help="results Parquet from robocall batch")
    campaigns.add_argument(
        "--table",
        type=Path,
        help="campaign table, .csv or .parquet (default <results>.campaigns.csv)",
    )
    campaigns.add_argument(
        "--html", type=Path, help="HTML summary (default <results>.campaigns.html)"
    )
    campaigns.add_argument(
        "--min-calls", type=int, default=2, help="smallest campaign listed (default 2)"
    )
    campaigns.set_defaults(func=run_campaigns_command)


def run_batch_command(args: argparse.Namespace) -> int:
    from service.batch.driver import BatchOptions, run_batch
    from service.batch.engines import DetectorLoadError
    from service.batch.inputs import check_manifest, discover_calls, iter_calls, sample_calls
    from service.batch.journal import BatchInUseError
    from service.batch.metrics import RunMetrics
    from service.batch.risk import sample_by_risk

    risk_sample = metrics = None
    calls: Iterable[CallRecord]
    try:
        config = config_from_args(args)
        if args.sample is not None:
            calls = sample_calls(discover_calls(args.input), args.sample, seed=args.seed)
            count = len(calls)
        elif args.sample_by_risk is not None:
            risk_sample = sample_by_risk(
                discover_calls(args.input),
                args.sample_by_risk,
                seed=args.seed,
                uniform_share=args.uniform_share,
                max_calls_per_number=args.max_calls_per_number,
                tz_offset_h=args.tz_offset_h,
            )
            calls = list(risk_sample.calls)
            count = len(calls)
        else:  # streamed: checked once (a bad row is a usage error before anything runs)
            count = check_manifest(args.input)
            calls = iter_calls(args.input)
        if args.metrics_port is not None:
            metrics = RunMetrics(port=args.metrics_port)
            log.info("Prometheus metrics on http://127.0.0.1:%d/metrics", metrics.port)
        options = BatchOptions(
            out=args.out,
            engine=args.engine,
            workers=args.workers,
            ray_address=args.ray_address,
            resume=args.resume,
            jsonl=args.jsonl,
            prompt_index=None if args.no_prompt_index else str(_prompt_index_path(args)),
            progress=sys.stderr.isatty() if args.progress is None else args.progress,
            total=count,
            metrics=metrics,
        )
    except (ValueError, OSError, ModuleNotFoundError) as exc:
        if metrics is not None:
            metrics.close()
        print(f"robocall batch: {exc}", file=sys.stderr)
        return 2
    factory = getattr(args, "detector_factory", None) or load_detector
    log.info("%d calls from %s -> %s (%s engine)", count, args.input, args.out, args.engine)
    try:
        summary = run_batch(calls, options, config=config, detector_factory=factory)
    except (BatchInUseError, DetectorLoadError) as exc:
        print(f"robocall batch: {exc}", file=sys.stderr)
        return 1
    finally:
        if metrics is not None:
            metrics.close()
    if args.campaigns:
        _write_campaigns(args.out, table=None, html=None, min_calls=2)
    report: dict[str, Any] = {"out": str(args.out), **summary.to_dict()}
    if risk_sample is not None:
        report["sample_by_risk"] = _rate_report(args.out, risk_sample)
    text = json.dumps(report)
    if args.summary is not None:
        from pipeline.files import write_atomic

        write_atomic(args.summary, (text + "\n").encode())
    print(text)
    return 1 if summary.errors else 0


def _rate_report(out: Path, sample: Any) -> dict[str, Any]:
    """The robot-rate estimate of the whole manifest from the rows of a risk-weighted sample.

    Robots are the calls whose caller is decided a robot (``caller_certainty``); the calls left
    uncertain are counted apart, and ``estimate_with_uncertain_as_robots`` gives the rate were
    they all robots (the upper end of what the verdicts allow).
    """
    import pyarrow.parquet as pq

    from service.batch.risk import estimate_robot_rate

    table = pq.read_table(out, columns=["call_id", "status", "caller_certainty"]).to_pylist()
    certainty = {r["call_id"]: r["caller_certainty"] for r in table if r["status"] == "ok"}
    estimate = estimate_robot_rate(sample, {k: v == "robot" for k, v in certainty.items()})
    upper = estimate_robot_rate(sample, {k: v != "person" for k, v in certainty.items()})
    strata = list(sample.strata.values())
    return {
        "population": sample.population,
        "risk_stratum_calls": strata.count("risk"),
        "uniform_calls": strata.count("uniform"),
        "uncertain_calls": sum(v == "uncertain" for v in certainty.values()),
        "estimate": None if estimate is None else estimate.to_dict(),
        "estimate_with_uncertain_as_robots": None if upper is None else upper.to_dict(),
    }


def _prompt_index_path(args: argparse.Namespace) -> Path:
    if args.prompt_index is not None:
        return Path(args.prompt_index)
    from service.campaigns.index import default_prompt_index

    return default_prompt_index()


def run_campaigns_command(args: argparse.Namespace) -> int:
    if not args.results.is_file():
        print(f"robocall campaigns: {args.results}: no such file", file=sys.stderr)
        return 2
    if args.min_calls < 1:
        print("robocall campaigns: --min-calls must be >= 1", file=sys.stderr)
        return 2
    table, html, n = _write_campaigns(
        args.results, table=args.table, html=args.html, min_calls=args.min_calls
    )
    print(json.dumps({"campaigns": n, "table": str(table), "html": str(html)}))
    return 0


def _write_campaigns(
    results: Path, *, table: Path | None, html: Path | None, min_calls: int
) -> tuple[Path, Path, int]:
    from service.batch.journal import read_rows
    from service.campaigns.report import campaign_table, write_html, write_table

    stem = results.with_suffix("")
    table = table or stem.with_name(stem.name + ".campaigns.csv")
    html = html or stem.with_name(stem.name + ".campaigns.html")
    rows = read_rows(results)
    campaigns = campaign_table(rows, min_calls=min_calls)
    write_table(table, campaigns)
    write_html(html, rows, campaigns, title=f"Campaigns in {results.name}")
    return table, html, len(campaigns)
