"""The batch driver's own cost at carrier scale: peak memory and throughput of the bookkeeping.

    .venv/bin/python bench/batch_bookkeeping.py --sizes 10000,100000,1000000

For each size, in a fresh process (so each peak is its own): ``run_batch`` over that many
synthetic calls with the engine replaced by one that returns a canned row at once, so that what
is measured is everything the driver does per call (the journal with its group commit, putting
rows in input order, the campaign step with the SQLite prompt index and the transcript MinHash
LSH, the fused ``prompt_seen_before`` evidence, the row-group parts, the final streamed Parquet).
Prints one JSON line per size: calls, seconds, calls/s, the driver's peak resident memory
(``VmHWM``), the output's size and row groups, and the campaigns found.

The calls: ``--robot-share`` of them (default 2 %) replay one of ``--campaigns`` scripts (20)
from a few hundred caller numbers; the others are ordinary calls with a transcript of their own
(a few dozen words drawn from a vocabulary, so each is an exemplar of its own, as a live call
is). The canned verdict is the fake detector's of the tests (about 1.9 KB of verdict JSON);
rows carry no audio fingerprint (audio matching is measured in ``docs/batch.md``'s campaign
section and in ``bench/batch_scaling.py``), so the prompt index matches on text.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from pipeline.config import DetectorConfig  # noqa: E402
from service.batch import driver  # noqa: E402
from service.batch.analyse import row_metadata, verdict_columns  # noqa: E402
from service.batch.driver import BatchOptions, run_batch  # noqa: E402
from service.batch.inputs import CallRecord  # noqa: E402

DAY0 = 1_767_225_600  # 2026-01-01T00:00:00Z
SYLLABLES = list(
    "您好我们是银行贷款保险房产教育客服中心请问最近有没有需要了解一下优惠活动谢谢再见喂对不好意思"
)


def synthetic_calls(
    n: int, *, robot_share: float, campaigns: int, seed: int
) -> Iterator[CallRecord]:
    """``n`` calls over one day, generated as they are consumed (none held in memory)."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        robot = rng.random() < robot_share
        campaign = int(rng.integers(campaigns)) if robot else -1
        caller = (
            f"+86170{campaign:02d}{int(rng.integers(300)):05d}"
            if robot
            else f"+8613{int(rng.integers(10**9)):09d}"
        )
        yield CallRecord(
            call_id=f"call-{i:08d}",
            path=f"s3://carrier/2026-01-01/{i:08d}.amr",
            seq=i,
            caller_number=caller,
            callee_number=f"+8615{int(rng.integers(10**9)):09d}",
            start_time=_iso(DAY0 + i * 86_400 / max(1, n)),
            duration_s=round(float(rng.uniform(5, 90)), 1),
            channel_layout="mono",
        )


def _iso(epoch_s: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch_s, tz=dt.UTC).isoformat()


def canned_engine(canned: dict[str, Any], *, campaigns: int) -> Any:
    """An engine that answers every call at once with the canned verdict (see module doc)."""
    scripts = [
        "".join(np.random.default_rng(1000 + k).choice(list(SYLLABLES), 60))
        for k in range(campaigns)
    ]

    def iter_rows(pending: Any, **_: Any) -> Iterator[dict[str, Any]]:
        for record in pending:
            digest = hashlib.sha256(record.call_id.encode()).digest()
            row = row_metadata(record)
            row.update(canned)
            robot = record.caller_number is not None and record.caller_number.startswith("+86170")
            if robot:
                row["transcript"] = scripts[int(record.caller_number[6:8])]
            else:
                rng = np.random.default_rng(int.from_bytes(digest[:8], "big"))
                row["transcript"] = "".join(rng.choice(SYLLABLES, int(rng.integers(20, 80))))
            row["audio_sha256"] = digest.hex()
            row.update(analysed_at_utc="2026-01-02T00:00:00+00:00", elapsed_s=0.0, cpu_s=0.0,
                       worker="bench:0", worker_peak_rss_mb=0.0)  # fmt: skip
            yield row

    return iter_rows


def canned_verdict_columns() -> dict[str, Any]:
    from pipeline.types import Audio, AudioInfo
    from tests.service.batch.batch_fakes import FakeFactory

    info = AudioInfo("call.amr", "0" * 64, 48_000, "amr", "amr_nb", 8_000, 1, 30.0)
    verdict = FakeFactory()(DetectorConfig()).detect_audio(Audio(info, np.zeros((1, 16))))
    return verdict_columns(verdict)


def measure(n: int, args: argparse.Namespace) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from service.batch.analyse import peak_rss_mb

    canned = canned_verdict_columns()
    driver.iter_rows = canned_engine(canned, campaigns=args.campaigns)  # the engine only
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        out = Path(tmp) / "results.parquet"
        calls = synthetic_calls(n, robot_share=args.robot_share, campaigns=args.campaigns,
                                seed=args.seed)  # fmt: skip
        started = time.perf_counter()
        summary = run_batch(
            calls, BatchOptions(out=out, workers=1), config=DetectorConfig(),
            detector_factory=lambda c: None,  # type: ignore[arg-type,return-value]
        )  # fmt: skip
        seconds = time.perf_counter() - started
        meta = pq.ParquetFile(out).metadata
        return {
            "calls": n,
            "rows": summary.rows,
            "seconds": round(seconds, 1),
            "calls_per_s": round(n / seconds, 1),
            "driver_peak_rss_mb": peak_rss_mb(),
            "output_mb": round(out.stat().st_size / 2**20, 1),
            "row_groups": meta.num_row_groups,
            "campaigns": summary.campaigns,
            "robots": summary.robots,
            "verdict_json_bytes": len(canned["verdict_json"]),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated")
    parser.add_argument("--robot-share", type=float, default=0.02)
    parser.add_argument("--campaigns", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tmp", help="folder for the output (default: the system's)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child: measure this size
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args)), flush=True)
        return
    for size in (int(s) for s in args.sizes.split(",")):
        child = [sys.executable, __file__, "--one", str(size), "--robot-share",
                 str(args.robot_share), "--campaigns", str(args.campaigns), "--seed",
                 str(args.seed)] + (["--tmp", args.tmp] if args.tmp else [])  # fmt: skip
        subprocess.run(child, check=True, cwd=REPO)


if __name__ == "__main__":
    main()
