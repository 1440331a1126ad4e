"""The batch output says what the verdict decided: ``caller_certainty`` and ``person_threshold``
in the Parquet, the JSON lines, the journal and the summary; an uncertain row is never counted a
robot (nor a person), and an output from before these columns is filled in on resume."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.config import DetectorConfig
from pipeline.types import Verdict
from service.batch.driver import BatchOptions, run_batch
from service.batch.inputs import discover_calls
from service.batch.journal import Journal, read_rows, with_caller_certainty
from service.batch.metrics import RunMetrics
from tests.service.batch.batch_fakes import FakeFactory, make_corpus
from tests.service.batch.test_batch import run_cli

BAND = 0.4  # the fake verdicts' robot probabilities spread over 0.3-0.75 around the 0.5 threshold


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus"))


def test_rows_carry_the_decided_caller_and_the_summary_counts_it(
    corpus: Path, tmp_path: Path
) -> None:
    out = tmp_path / "results.parquet"
    summary = run_batch(discover_calls(corpus), BatchOptions(out=out, workers=1, jsonl=True),
                        config=DetectorConfig(),
                        detector_factory=FakeFactory(person_threshold=BAND))  # fmt: skip
    rows = read_rows(out)
    ok = [r for r in rows if r["status"] == "ok"]
    for row in ok:
        verdict = Verdict.from_dict(json.loads(row["verdict_json"]))
        assert row["caller_certainty"] == verdict.caller_certainty
        assert row["person_threshold"] == verdict.person_threshold
        # a replayed prompt's verdict is fused again in the driver (prompt_seen_before) with
        # the fusion that made it; the fake's is the hand-set sum, which has no band
        if not row["prompt_other_calls"]:
            assert row["person_threshold"] == pytest.approx(BAND)
    certainty = [r["caller_certainty"] for r in ok]
    assert {"robot", "person", "uncertain"} <= set(certainty)  # the band holds some rows
    # an uncertain row is labelled human_sales_pitch, and counted neither robot nor person
    assert all(r["label"] == "human_sales_pitch" for r in ok if r["caller_certainty"] != "robot")
    assert (summary.robots, summary.persons, summary.uncertain) == (
        certainty.count("robot"),
        certainty.count("person"),
        certainty.count("uncertain"),
    )
    assert summary.robots + summary.persons + summary.uncertain == summary.rows - summary.errors
    assert summary.to_dict()["uncertain"] == summary.uncertain
    errors = [r for r in rows if r["status"] != "ok"]
    assert errors and all(r["caller_certainty"] is None for r in errors)
    lines = [json.loads(line) for line in out.with_suffix(".jsonl").read_text().splitlines()]
    by_input = {line["input"]: line for line in lines if "verdict" in line}
    for row in ok:
        assert by_input[row["path"]]["verdict"]["caller_certainty"] == row["caller_certainty"]


def test_an_output_from_before_the_columns_is_filled_in_on_resume(
    corpus: Path, tmp_path: Path
) -> None:
    calls = discover_calls(corpus)
    out = tmp_path / "old.parquet"
    factory = FakeFactory(person_threshold=BAND)
    run_batch(calls[:8], BatchOptions(out=out, workers=1), config=DetectorConfig(),
              detector_factory=factory)  # fmt: skip
    fresh = {r["call_id"]: r["caller_certainty"] for r in read_rows(out)}
    # as an earlier version wrote it: no caller_certainty / person_threshold columns
    table = pq.read_table(out)
    pq.write_table(table.drop_columns(["caller_certainty", "person_threshold"]), out)
    summary = run_batch(calls, BatchOptions(out=out, workers=1), config=DetectorConfig(),
                        detector_factory=factory)  # fmt: skip
    assert summary.skipped == 8
    rows = {r["call_id"]: r for r in read_rows(out)}
    assert len(rows) == len(calls)
    assert all(rows[k]["caller_certainty"] == v for k, v in fresh.items())
    assert summary.robots == sum(r["caller_certainty"] == "robot" for r in rows.values())


def test_a_journal_row_from_before_the_columns_is_filled_in(tmp_path: Path) -> None:
    out = tmp_path / "results.parquet"
    run_batch(discover_calls(make_corpus(tmp_path / "c", prompts=1, replays=1, live=0,
                                         bad=False)),
              BatchOptions(out=out, workers=1), config=DetectorConfig(),
              detector_factory=FakeFactory())  # fmt: skip
    (row,) = read_rows(out)
    old = {k: v for k, v in row.items() if k not in ("caller_certainty", "person_threshold")}
    journal = Journal(tmp_path / "j.jsonl")
    try:
        journal.append([old])
        (back,) = journal.read()
    finally:
        journal.close()
    assert back["caller_certainty"] == row["caller_certainty"]
    # a verdict stored before schema 3 has no band: decided by its label, as shown then
    verdict = json.loads(row["verdict_json"])
    verdict.pop("person_threshold")
    before = {**old, "verdict_json": json.dumps(verdict)}
    robot = verdict["label"] == "electronic_sales_robot"
    assert with_caller_certainty(before)["caller_certainty"] == ("robot" if robot else "person")
    assert before["person_threshold"] is None
    assert with_caller_certainty({"status": "error"}).get("caller_certainty") is None


def test_metrics_count_uncertain_rows_apart_from_robots() -> None:
    pytest.importorskip("prometheus_client")
    from prometheus_client import generate_latest

    metrics = RunMetrics()
    for certainty, label in (("robot", "electronic_sales_robot"),
                             ("uncertain", "human_sales_pitch"),
                             ("person", "human_sales_pitch")):  # fmt: skip
        metrics.observe({"status": "ok", "error_code": None, "label": label,
                         "caller_certainty": certainty})  # fmt: skip
    text = generate_latest(metrics.registry).decode()
    assert "robocall_batch_robot_calls_total 1.0" in text
    assert "robocall_batch_uncertain_calls_total 1.0" in text


def test_cli_rate_estimate_counts_decided_robots_and_says_how_many_are_uncertain(
    corpus: Path, tmp_path: Path
) -> None:
    out = tmp_path / "risk.parquet"
    _, report = run_cli(["batch", str(corpus), "--out", str(out), "--no-prompt-index",
                         "--workers", "1", "--sample-by-risk", "1.0", "--uniform-share", "1.0"],
                        FakeFactory(person_threshold=BAND))  # fmt: skip
    risk = report["sample_by_risk"]
    rows = [r for r in read_rows(out) if r["status"] == "ok"]
    assert risk["uncertain_calls"] == sum(r["caller_certainty"] == "uncertain" for r in rows)
    decided, upper = risk["estimate"], risk["estimate_with_uncertain_as_robots"]
    robots = sum(r["caller_certainty"] == "robot" for r in rows)
    assert decided["uniform_sample"]["robots"] == robots == report["robots"]
    assert upper["uniform_sample"]["robots"] == robots + risk["uncertain_calls"]
    assert upper["robot_rate"] >= decided["robot_rate"]
