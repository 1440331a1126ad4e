"""The batch driver streams: row groups on disk as calls finish, resume across a group boundary,
the run summary, the risk-weighted sample through the CLI, Prometheus metrics."""

from __future__ import annotations

import argparse
import json
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from pipeline.config import DetectorConfig
from service.batch import driver
from service.batch.analyse import analyse_call
from service.batch.driver import BatchOptions, run_batch
from service.batch.engines import DetectorLoadError
from service.batch.inputs import CallRecord, discover_calls
from service.batch.journal import (
    VOLATILE_COLUMNS,
    Journal,
    Parts,
    journal_path,
    parts_dir,
    read_rows,
)
from service.batch.metrics import RunMetrics
from service.commands import batch as batch_cmd
from tests.service.batch.batch_fakes import BrokenFactory, FakeFactory, make_corpus
from tests.service.batch.test_batch import REPO, run_cli

GROUP = 4  # rows per row group in these tests: the 15 calls make 4 groups


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def whole(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One uninterrupted run with the default row-group size."""
    out = tmp_path_factory.mktemp("whole") / "results.parquet"
    run_batch(discover_calls(corpus), BatchOptions(out=out, workers=2), config=DetectorConfig(),
              detector_factory=FakeFactory())  # fmt: skip
    return out


def _stable(path: Path) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in VOLATILE_COLUMNS} for r in read_rows(path)]


def test_rows_are_written_in_row_groups_in_input_order(
    corpus: Path, whole: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(driver, "ROW_GROUP_ROWS", GROUP)
    out = tmp_path / "grouped.parquet"
    calls = discover_calls(corpus)
    summary = run_batch(iter(calls), BatchOptions(out=out, workers=2, jsonl=True, progress=True),
                        config=DetectorConfig(), detector_factory=FakeFactory())  # fmt: skip
    assert pq.ParquetFile(out).metadata.num_row_groups == 4
    assert [r["call_id"] for r in read_rows(out)] == [c.call_id for c in calls]
    assert _stable(out) == _stable(whole)  # same rows as one group: campaigns, evidence
    assert not parts_dir(out).exists() and not journal_path(out).exists()
    assert not out.with_name(out.name + ".index.sqlite").exists()
    assert len(out.with_suffix(".jsonl").read_text().splitlines()) == 15
    assert (summary.calls, summary.rows, summary.errors) == (15, 15, 3)
    assert summary.campaigns == 3  # the three replayed prompts
    assert summary.robots == sum(r["label"] == "electronic_sales_robot" for r in read_rows(out))
    assert summary.peak_rss_mb > 0


class Crash(Exception):
    """Stands for kill -9 in the middle of a run."""


def test_resume_across_a_row_group_boundary(
    corpus: Path, whole: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(driver, "ROW_GROUP_ROWS", GROUP)
    out = tmp_path / "resumed.parquet"
    calls = discover_calls(corpus)
    write = Parts.write

    def crash_on_third(self: Parts, rows: Any) -> Path:
        if len(self.paths()) == 2:
            raise Crash
        return write(self, rows)

    monkeypatch.setattr(Parts, "write", crash_on_third)
    with pytest.raises(Crash):
        run_batch(calls, BatchOptions(out=out, workers=1, prompt_index=None),
                  config=DetectorConfig(), detector_factory=FakeFactory())  # fmt: skip
    monkeypatch.setattr(Parts, "write", write)
    in_parts = [r for p in Parts(parts_dir(out)).paths() for r in pq.read_table(p).to_pylist()]
    assert [r["call_id"] for r in in_parts] == [c.call_id for c in calls[: 2 * GROUP]]
    journal = Journal(journal_path(out))
    journaled = journal.read()
    journal.close()
    assert {r["call_id"] for r in journaled} >= {c.call_id for c in calls[2 * GROUP : 3 * GROUP]}
    assert not {r["call_id"] for r in journaled} & {r["call_id"] for r in in_parts}
    assert not out.exists()

    summary = run_batch(calls, BatchOptions(out=out, workers=1), config=DetectorConfig(),
                        detector_factory=FakeFactory())  # fmt: skip
    assert summary.skipped == 2 * GROUP + len(journaled)  # nothing done is analysed again
    assert summary.analysed == 15 - summary.skipped
    rows = read_rows(out)
    assert [r["call_id"] for r in rows] == [c.call_id for c in calls]  # none lost, none twice
    done_before = {r["call_id"]: r["analysed_at_utc"] for r in in_parts + journaled}
    assert all(r["analysed_at_utc"] == done_before[r["call_id"]] for r in rows
               if r["call_id"] in done_before)  # fmt: skip
    assert _stable(out) == _stable(whole)
    assert not parts_dir(out).exists()


def test_cli_samples_by_risk_and_reports_the_rate(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, summary_file = tmp_path / "risk.parquet", tmp_path / "summary.json"
    code, report = run_cli(["batch", str(corpus), "--out", str(out), "--no-prompt-index",
                            "--workers", "1", "--sample-by-risk", "0.6", "--uniform-share", "0.5",
                            "--summary", str(summary_file)])  # fmt: skip
    assert report == json.loads(summary_file.read_text())
    assert {"calls", "robots", "errors", "campaigns", "calls_per_min"} <= set(report)
    risk = report["sample_by_risk"]
    assert risk["population"] == 15 and report["calls"] == round(0.6 * 15) == 9
    assert risk["risk_stratum_calls"] + risk["uniform_calls"] == 9
    estimate = risk["estimate"]
    if estimate is not None:  # None when every uniform call was a bad file
        low, high = estimate["ci95"]
        assert 0.0 <= low <= estimate["robot_rate"] <= high <= 1.0
    parser = argparse.ArgumentParser()
    batch_cmd.register(parser.add_subparsers())
    args = parser.parse_args(["batch", str(corpus), "--out", str(tmp_path / "x.parquet"),
                              "--sample-by-risk", "1.5"])  # fmt: skip
    assert args.func(args) == 2
    assert "--sample-by-risk must be in (0, 1]" in capsys.readouterr().err


def test_prometheus_metrics_are_served_on_localhost() -> None:
    pytest.importorskip("prometheus_client")
    metrics = RunMetrics(port=0)
    try:
        metrics.observe({"status": "ok", "error_code": None, "label": "electronic_sales_robot",
                         "caller_certainty": "robot", "elapsed_s": 1.5,
                         "worker_peak_rss_mb": 420.0})  # fmt: skip
        metrics.observe({"status": "error", "error_code": "not_audio", "label": None,
                         "elapsed_s": 0.1, "worker_peak_rss_mb": 400.0})  # fmt: skip
        url = f"http://127.0.0.1:{metrics.port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - localhost
            text = response.read().decode()
    finally:
        metrics.close()
    assert 'robocall_batch_calls_total{error_code="",status="ok"} 1.0' in text
    assert 'robocall_batch_calls_total{error_code="not_audio",status="error"} 1.0' in text
    assert "robocall_batch_robot_calls_total 1.0" in text
    assert "robocall_batch_worker_peak_rss_mb 400.0" in text


def test_object_store_uris_are_read_on_the_worker(corpus: Path) -> None:
    """fsspec's in-memory file system stands for a bucket: the worker reads the URI itself."""
    fsspec = pytest.importorskip("fsspec")
    memory = fsspec.filesystem("memory")
    calls = {c.call_id: c for c in discover_calls(corpus)}
    name = Path(calls["p0_1"].path).name
    memory.pipe(f"/bucket/2026-01-01/{name}", Path(calls["p0_1"].path).read_bytes())
    detector = FakeFactory()(DetectorConfig())
    try:
        remote = analyse_call(
            detector, replace(calls["p0_1"], path=f"memory://bucket/2026-01-01/{name}")
        )
        local = analyse_call(detector, calls["p0_1"])
        gone = analyse_call(detector, replace(calls["p0_1"], path="memory://bucket/nothing.wav"))
        unknown = analyse_call(detector, replace(calls["p0_1"], path="nosuchscheme://x/y.wav"))
    finally:
        memory.rm("/bucket", recursive=True)
    assert remote["status"] == "ok"
    assert remote["audio_sha256"] == local["audio_sha256"]
    assert remote["verdict_json"] == local["verdict_json"]
    assert (gone["status"], gone["error_code"]) == ("error", "unreadable")
    assert "memory://bucket/nothing.wav" in gone["error_message"]
    assert (unknown["status"], unknown["error_code"]) == ("error", "unreadable")


@pytest.mark.slow  # ~20 s, mostly starting Ray
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_ray_actor_that_cannot_load_the_models_fails_with_our_error(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray", reason="install the 'cluster' extra for the Ray engine")
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}})  # fmt: skip
    calls = [CallRecord(call_id="a", path=str(tmp_path / "a.wav"))]
    try:
        with pytest.raises(DetectorLoadError, match="could not load the detector: .*no weights"):
            run_batch(calls, BatchOptions(out=tmp_path / "o.parquet", engine="ray", workers=1),
                      config=DetectorConfig(), detector_factory=BrokenFactory())  # fmt: skip
    finally:
        ray.shutdown()


@pytest.mark.slow  # ~1 min: two Ray nodes
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_two_node_ray_cluster_gives_the_rows_of_the_local_pool(
    corpus: Path, whole: Path, tmp_path: Path
) -> None:
    """A head node and a second node (two raylets, as ``ray start --head`` and ``ray start
    --address`` make), the driver connecting by address, as on a real cluster."""
    pytest.importorskip("ray", reason="install the 'cluster' extra for the Ray engine")
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "include_dashboard": False},
    )
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        out = tmp_path / "cluster.parquet"
        import ray

        ray.init(address=cluster.address, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}})  # fmt: skip
        try:
            assert len([n for n in ray.nodes() if n["Alive"]]) == 2
            run_batch(discover_calls(corpus),
                      BatchOptions(out=out, engine="ray", workers=2, ray_address=cluster.address),
                      config=DetectorConfig(), detector_factory=FakeFactory())  # fmt: skip
        finally:
            ray.shutdown()
    finally:
        cluster.shutdown()
    # The same rows as the local pool. Which actor took which call is Ray's choice (on a busy
    # machine one actor may take them all), so it is not asserted.
    assert _stable(out) == _stable(whole)


def test_a_manifest_is_streamed_and_a_bad_row_refused_before_anything_runs(
    corpus: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import pyarrow as pa

    from service.batch import inputs

    monkeypatch.setattr(inputs, "MANIFEST_BATCH_ROWS", 4)  # 15 rows in 4 batches
    listed = discover_calls(corpus)
    table = pa.Table.from_pylist(
        [{"call_id": c.call_id, "path": c.path, "caller_number": c.caller_number} for c in listed]
        + [{"call_id": listed[0].call_id, "path": listed[0].path, "caller_number": None}]
    )
    manifest = tmp_path / "m.parquet"
    pq.write_table(table, manifest, row_group_size=5)
    streamed = inputs.iter_calls(manifest)
    assert next(streamed).call_id == listed[0].call_id  # one at a time
    again = [c.call_id for c in inputs.iter_calls(manifest)]
    assert again == [c.call_id for c in listed] + [f"{listed[0].call_id}#2"]
    assert inputs.check_manifest(manifest) == 16

    bad = tmp_path / "bad.csv"
    lines = corpus.read_text().splitlines()
    bad.write_text("\n".join([*lines, lines[-1].replace(",mono", ",sideways")]) + "\n")
    parser = argparse.ArgumentParser()
    batch_cmd.register(parser.add_subparsers())
    out = tmp_path / "never.parquet"
    args = parser.parse_args(["batch", str(bad), "--out", str(out), "--no-prompt-index"])
    args.detector_factory = FakeFactory()
    assert args.func(args) == 2
    assert "row 16: channel_layout 'sideways'" in capsys.readouterr().err
    assert not journal_path(out).exists() and not out.exists()
