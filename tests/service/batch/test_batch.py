"""robocall batch: manifests, sampling, error rows, resume after kill -9, local vs Ray."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import DetectorConfig
from service.batch.analyse import analyse_call
from service.batch.driver import BatchOptions, run_batch
from service.batch.engines import DetectorLoadError
from service.batch.inputs import CallRecord, discover_calls, sample_calls
from service.batch.journal import (
    VOLATILE_COLUMNS,
    BatchInUseError,
    Journal,
    journal_path,
    output_schema,
    read_rows,
)
from service.commands import batch as batch_cmd
from tests.service.batch.batch_fakes import FakeFactory, make_call, make_corpus, synth_prompt

REPO = Path(__file__).resolve().parents[3]
BAD = {"notes": "not_audio", "empty": "empty_audio", "missing": "unreadable"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """15 calls: 3 prompts x 3 replays (codecs, levels), 3 live calls, 3 bad rows."""
    return make_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def local_out(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("local") / "results.parquet"
    options = BatchOptions(out=out, workers=2, jsonl=True)
    run_batch(
        discover_calls(corpus), options, config=DetectorConfig(), detector_factory=FakeFactory()
    )
    return out


def run_cli(argv: list[str], factory: Any = None) -> tuple[int, dict[str, Any]]:
    """``robocall batch|campaigns ...`` in process, with a fake detector factory."""
    parser = argparse.ArgumentParser()
    batch_cmd.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    args.detector_factory = factory or FakeFactory()
    stdout = io.StringIO()
    with redirect_stdout(stdout):
        code = args.func(args)
    return code, json.loads(stdout.getvalue().strip().splitlines()[-1])


# --- input -------------------------------------------------------------------------------------


def test_directory_lists_audio_files_recursively_sorted(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    for name in ("b/2.amr", "a.WAV", "b/1.mp3", "notes.txt", ".hidden.wav", "c.flac"):
        (tmp_path / name).write_bytes(b"x")
    calls = discover_calls(tmp_path)
    assert [c.call_id for c in calls] == ["a.WAV", "b/1.mp3", "b/2.amr", "c.flac"]
    assert [c.seq for c in calls] == [0, 1, 2, 3]
    assert all(Path(c.path).is_absolute() and c.caller_number is None for c in calls)


def test_csv_manifest_with_aliases_times_and_duplicates(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text(
        "File,Caller,Callee,Start,Duration,Route,Layout\n"
        "calls/a.wav,+8613800000001,010-1234,2026-03-01T08:00:00,12.5,t1,caller_left\n"
        "calls/a.wav,+8613800000001,,2026-03-01T09:00:00Z,,,\n"
        "s3://bucket/x.amr,0086138,,1767225600,3,,mono\n"
    )
    a, a2, x = discover_calls(tmp_path / "m.csv")
    assert a.call_id == "calls/a.wav" and a2.call_id == "calls/a.wav#2"
    assert a.path == str((tmp_path / "calls/a.wav").resolve())
    assert a.caller_number == "+8613800000001" and a.callee_number == "010-1234"
    assert a.start_time == "2026-03-01T08:00:00+00:00"  # naive means UTC
    assert a2.start_time == "2026-03-01T09:00:00+00:00"
    assert (a.duration_s, a.trunk, a.channel_layout) == (12.5, "t1", "caller_left")
    assert a2.duration_s is None and a2.trunk is None and a2.channel_layout is None
    assert x.path == "s3://bucket/x.amr" and x.caller_number == "0086138"  # leading zeros kept
    assert x.start_time == "2026-01-01T00:00:00+00:00"


def test_parquet_manifest_gives_the_same_records_as_csv(corpus: Path, tmp_path: Path) -> None:
    with corpus.open() as fh:
        rows = list(csv.DictReader(fh))
    table = pa.table(
        {
            "path": [str(corpus.parent / r["path"]) for r in rows],
            "call_id": [r["call_id"] for r in rows],
            "caller_number": [int(r["caller_number"]) for r in rows],  # numbers stored as ints
            "start_time": pa.array(
                [int(r["start_time"]) * 1_000_000 for r in rows], pa.timestamp("us", tz="UTC")
            ),
            "duration_s": [float(r["duration_s"]) for r in rows],
            "trunk": [r["trunk"] for r in rows],
        }
    )
    pq.write_table(table, tmp_path / "m.parquet")
    from_csv = discover_calls(corpus)
    from_parquet = discover_calls(tmp_path / "m.parquet")
    assert [c.path for c in from_parquet] == [c.path for c in from_csv]
    assert [c.start_time for c in from_parquet] == [c.start_time for c in from_csv]
    assert [c.caller_number for c in from_parquet] == [
        c.caller_number.lstrip("+") for c in from_csv
    ]


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("call_id\nx\n", "no path column"),
        ("path,channel_layout\na.wav,diagonal\n", "channel_layout"),
        ("path,start_time\na.wav,yesterday\n", "ISO 8601"),
        ("path,duration_s\na.wav,long\n", "not a number"),
    ],
)
def test_bad_manifests_are_usage_errors(tmp_path: Path, content: str, match: str) -> None:
    (tmp_path / "m.csv").write_text(content)
    with pytest.raises(ValueError, match=match):
        discover_calls(tmp_path / "m.csv")


def test_unknown_manifest_format_and_missing_input(tmp_path: Path) -> None:
    (tmp_path / "m.txt").write_text("path\na.wav\n")
    with pytest.raises(ValueError, match="csv or .parquet"):
        discover_calls(tmp_path / "m.txt")
    with pytest.raises(FileNotFoundError):
        discover_calls(tmp_path / "nope.csv")


# --- sampling ----------------------------------------------------------------------------------


def _population() -> list[CallRecord]:
    """100 calls: callers A, B, C with 40, 20 and 7 calls, and 33 callers with one call each."""
    sizes = {"A": 40, "B": 20, "C": 7, **{f"single{i}": 1 for i in range(33)}}
    pairs = [(caller, i) for caller, n in sizes.items() for i in range(n)]
    return [
        CallRecord(call_id=f"{c}-{i}", path=f"/x/{c}-{i}.wav", seq=k, caller_number=c)
        for k, (c, i) in enumerate(pairs)
    ]


def test_sample_is_reproducible_exact_in_size_and_stratified() -> None:
    calls = _population()
    first = sample_calls(calls, 0.25, seed=3)
    assert first == sample_calls(calls, 0.25, seed=3)
    assert first == sample_calls(list(reversed(calls)), 0.25, seed=3)  # order does not matter
    assert first != sample_calls(calls, 0.25, seed=4)
    assert len(first) == round(0.25 * len(calls))
    assert [c.seq for c in first] == sorted(c.seq for c in first)
    per_caller = Counter(c.caller_number for c in first)
    for caller, n in (("A", 40), ("B", 20), ("C", 7)):
        assert abs(per_caller[caller] - 0.25 * n) <= 1, caller
    assert sample_calls(calls, 1.0) == calls
    for fraction in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="fraction"):
            sample_calls(calls, fraction)


# --- one call ----------------------------------------------------------------------------------


def test_the_real_detector_fills_a_row_and_honours_the_channel_layout(tmp_path: Path) -> None:
    import soundfile as sf

    from pipeline.detector import Detector
    from tests.fakes import FakeTextClassifier, FakeTranscriber

    quiet = 0.3 * synth_prompt(11, duration_s=3.0)
    loud = synth_prompt(12, duration_s=3.0)
    sf.write(tmp_path / "stereo.wav", np.stack([loud, quiet], axis=1), 16_000)
    detector = Detector(FakeTranscriber(), FakeTextClassifier(), DetectorConfig())
    for layout, channel in (("caller_left", 0), ("caller_right", 1)):
        record = CallRecord("s", str(tmp_path / "stereo.wav"), caller_number="+1",
                            channel_layout=layout)  # fmt: skip
        row = analyse_call(detector, record)
        assert row["status"] == "ok", row["error_message"]
        assert row["caller_channel"] == channel and row["channels"] == 2
        assert row["transcript"] == FakeTranscriber().text
        assert row["label"] == json.loads(row["verdict_json"])["label"]
        assert row["models"] == "asr=fake-asr@000000000000, text=fake-text@000000000000"
        assert len(row["audio_fingerprint"]) % 4 == 0 and row["audio_fingerprint"]
        json.dumps({k: v for k, v in row.items() if k != "audio_fingerprint"})  # JSON-ready


# --- a run -------------------------------------------------------------------------------------


def test_every_call_gets_one_row_and_bad_files_error_rows(local_out: Path, corpus: Path) -> None:
    table = pq.read_table(local_out)
    assert table.schema.equals(output_schema())
    rows = read_rows(local_out)
    calls = discover_calls(corpus)
    assert [r["call_id"] for r in rows] == [c.call_id for c in calls]  # input order
    for row in rows:
        if row["call_id"] in BAD:
            assert row["status"] == "error"
            assert row["error_code"] == BAD[row["call_id"]]
            assert row["error_message"] and row["label"] is None and row["campaign_id"] is None
        else:
            assert row["status"] == "ok" and row["error_code"] is None
            assert row["label"] in ("electronic_sales_robot", "human_sales_pitch")
            assert 0.0 <= row["robot_probability"] <= 1.0
            assert row["top_cues"] and row["transcript"] and row["models"].startswith("asr=")
            assert row["caller_number"].startswith("+86") and row["start_time"].endswith("+00:00")
            assert json.loads(row["verdict_json"])["label"] == row["label"]
            assert row["audio_fingerprint"] and row["campaign_id"].startswith("cmp-")
    assert not journal_path(local_out).exists()


def test_jsonl_has_one_line_per_call_with_verdict_or_error(local_out: Path) -> None:
    lines = [json.loads(x) for x in local_out.with_suffix(".jsonl").read_text().splitlines()]
    assert len(lines) == len(read_rows(local_out))
    for line in lines:
        assert line["input"] and line["metadata"]["call_id"]
        assert ("verdict" in line) != ("error" in line)
        if "error" in line:
            assert line["error"]["code"] == BAD[line["metadata"]["call_id"]]


def test_cli_exit_code_and_summary(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.parquet"
    argv = ["batch", str(corpus), "--out", str(out), "--workers", "1", "--no-prompt-index",
            "--sample", "0.5", "--seed", "1"]  # fmt: skip
    code, summary = run_cli(argv)
    assert summary["calls"] == round(0.5 * 15) == summary["rows"] == summary["analysed"]
    assert code == (1 if summary["errors"] else 0)
    code, again = run_cli(argv)  # resume by default: nothing left to do
    assert again["skipped_done"] == again["calls"] and again["analysed"] == 0


def test_cli_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    batch_cmd.register(parser.add_subparsers())
    for argv in (
        ["batch", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o.parquet")],
        ["batch", str(tmp_path), "--out", str(tmp_path / "o.parquet"), "--sample", "2"],
        ["campaigns", str(tmp_path / "nope.parquet")],
    ):
        args = parser.parse_args(argv)
        assert args.func(args) == 2
    assert "robocall" in capsys.readouterr().err


def test_a_detector_that_cannot_load_stops_the_run(tmp_path: Path) -> None:
    make_call(tmp_path / "a", synth_prompt(1, duration_s=1.0))
    with pytest.raises(DetectorLoadError, match="no weights"):
        run_batch(discover_calls(tmp_path), BatchOptions(out=tmp_path / "o.parquet", workers=1),
                  config=DetectorConfig(), detector_factory=_broken_factory)  # fmt: skip
    assert not (tmp_path / "o.parquet").exists()


def _broken_factory(config: DetectorConfig) -> Any:
    raise FileNotFoundError("no weights under models/")


def test_a_second_writer_is_refused(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "x.journal.jsonl")
    try:
        with pytest.raises(BatchInUseError, match="another batch"):
            Journal(tmp_path / "x.journal.jsonl")
    finally:
        journal.close()


# --- resume after kill -9 ----------------------------------------------------------------------

KILL_SCRIPT = """
import argparse, os, sys
from service.commands import batch as batch_cmd
from tests.service.batch.batch_fakes import FakeFactory

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    batch_cmd.register(parser.add_subparsers())
    args = parser.parse_args(sys.argv[1:])
    args.detector_factory = FakeFactory(delay_s=float(os.environ["FAKE_DELAY_S"]))
    sys.exit(args.func(args))
"""


def test_resume_after_kill_9_loses_and_doubles_nothing(
    corpus: Path, local_out: Path, tmp_path: Path
) -> None:
    out = tmp_path / "results.parquet"
    script = tmp_path / "run_batch.py"
    script.write_text(KILL_SCRIPT)
    argv = ["batch", str(corpus), "--out", str(out), "--workers", "2", "--no-prompt-index"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "FAKE_DELAY_S": "0.6"}
    log = (tmp_path / "stderr.txt").open("wb")
    proc = subprocess.Popen(
        [sys.executable, str(script), *argv],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,
    )
    journal = journal_path(out)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if journal.exists() and journal.read_bytes().count(b"\n") >= 4:
                break
            time.sleep(0.05)
        assert proc.poll() is None, (tmp_path / "stderr.txt").read_text()
        os.kill(proc.pid, signal.SIGKILL)  # the driver only, as a crash would
        proc.wait(timeout=10)
    finally:
        time.sleep(1.5)  # orphaned workers notice their parent is gone within 0.5 s
        _kill_group(proc.pid)  # (workers run in their own sessions: this spares them)
        log.close()
    assert not out.exists()  # never finalised
    before = [
        json.loads(x) for x in journal.read_bytes().splitlines(keepends=True) if x.endswith(b"\n")
    ]
    orphans = [int(w.rsplit(":", 1)[1]) for w in {r["worker"] for r in before}]
    alive = [pid for pid in orphans if _alive(pid)]
    for pid in alive:
        os.kill(pid, signal.SIGKILL)
    assert not alive, "workers outlived their killed driver"
    assert 4 <= len(before) < 15
    with journal.open("ab") as fh:
        fh.write(b'{"call_id": "p0_0", "status": "ok", "torn wri')  # a write cut by the kill

    code, summary = run_cli([*argv, "--jsonl"])
    assert code == 1  # the corpus has bad files
    assert summary["skipped_done"] == len(before)
    assert summary["analysed"] == 15 - len(before)
    rows = read_rows(out)
    ids = [r["call_id"] for r in rows]
    assert sorted(ids) == sorted(c.call_id for c in discover_calls(corpus))  # none lost
    assert len(ids) == len(set(ids)) == 15  # none twice
    by_id = {r["call_id"]: r for r in rows}
    for old in before:  # rows done before the kill were kept, not analysed again
        assert by_id[old["call_id"]]["worker"] == old["worker"]
        assert by_id[old["call_id"]]["analysed_at_utc"] == old["analysed_at_utc"]
    assert not journal.exists()
    assert len(out.with_suffix(".jsonl").read_text().splitlines()) == 15
    # campaigns and the prompt evidence in the verdicts as in a run never killed
    assert _stable(rows) == _stable(read_rows(local_out))


def _stable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in VOLATILE_COLUMNS} for r in rows]


def _alive(pid: int) -> bool:
    """Running (an exited process waiting for init to reap it is a zombie: not alive)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def test_no_resume_analyses_everything_again(local_out: Path, tmp_path: Path, corpus: Path) -> None:
    out = tmp_path / "again.parquet"
    out.write_bytes(local_out.read_bytes())
    code, summary = run_cli(["batch", str(corpus), "--out", str(out), "--workers", "2",
                             "--no-prompt-index", "--no-resume"])  # fmt: skip
    assert summary["skipped_done"] == 0 and summary["analysed"] == summary["rows"] == 15


# --- engines agree -----------------------------------------------------------------------------


@pytest.mark.slow  # ~20 s, mostly starting Ray
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_local_and_ray_engines_give_the_same_rows(
    local_out: Path, corpus: Path, tmp_path: Path
) -> None:
    ray = pytest.importorskip("ray", reason="install the 'cluster' extra for the Ray engine")
    out = tmp_path / "ray.parquet"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}})  # fmt: skip
    try:
        run_batch(discover_calls(corpus), BatchOptions(out=out, engine="ray", workers=2),
                  config=DetectorConfig(), detector_factory=FakeFactory())  # fmt: skip
    finally:
        ray.shutdown()

    local_rows, ray_rows = read_rows(local_out), read_rows(out)
    assert len(ray_rows) == 15
    assert _stable(ray_rows) == _stable(local_rows)
    assert any("prompt_seen_before" in r["verdict_json"] for r in ray_rows if r["verdict_json"])
    assert {r["worker"] for r in ray_rows} != {r["worker"] for r in local_rows}
