"""Batch output: the write-ahead journal, the row-group parts, and the final Parquet/JSONL.

Three kinds of file beside ``results.parquet`` while a batch runs, so that the driver's memory does
not grow with the number of calls and ``kill -9`` loses at most the calls in flight:

- the **journal** (``<out>.journal.jsonl``): each finished row as the worker made it, appended and
  fsync'd before it counts done; a partial last line is dropped on reading;
- the **parts** (``<out>.parts/part-000001.parquet``, ...): rows that went through the campaign
  step, in input order, one Parquet file per row group, each written atomically; once a part is
  on disk its rows leave the journal (which is rewritten with the rows not yet in a part);
- the **output**: at the end the parts are streamed, row group by row group, into one Parquet file
  (temporary file, fsync, rename), and the parts and the journal are removed.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pipeline.files import atomic_path
from pipeline.types import Verdict

log = logging.getLogger(__name__)

# Columns that differ from run to run for the same call (timing and placement).
VOLATILE_COLUMNS = ("analysed_at_utc", "elapsed_s", "cpu_s", "worker", "worker_peak_rss_mb")


class BatchInUseError(RuntimeError):
    """Another batch holds the journal of this output."""


class Journal:
    """Append-only JSONL of finished rows, fsync'd, locked against a second writer.

    A ``kill -9`` can leave a partial last line; :meth:`read` drops and truncates it (that call
    was not counted done, so it is analysed again).
    """

    def __init__(self, path: Path) -> None:
        import fcntl

        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = path.open("a+b")
        try:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._fh.close()
            raise BatchInUseError(f"{path}: another batch is writing this output") from None

    def read(self) -> list[dict[str, Any]]:
        self._fh.seek(0)
        data = self._fh.read()
        rows, good = [], 0
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break
            good += len(line)
        if good < len(data):
            log.warning(
                "%s: dropping a partial last record (%d bytes)", self.path, len(data) - good
            )
            self._fh.truncate(good)
        self._fh.seek(0, os.SEEK_END)
        return [_row_from_json(r) for r in rows]

    def append(self, rows: Iterable[dict[str, Any]]) -> None:
        blob = b"".join(
            json.dumps(_row_to_json(r), ensure_ascii=False).encode() + b"\n" for r in rows
        )
        self._fh.write(blob)
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def reset(self) -> None:
        self._fh.truncate(0)
        self._fh.seek(0)

    def rewrite(self, rows: Sequence[dict[str, Any]]) -> None:
        """Keep only ``rows`` (those not yet in a part). A crash between the truncation and the
        append loses them from the journal: they are analysed again, never lost from the output."""
        self.reset()
        if rows:
            self.append(rows)

    def close(self, *, remove: bool = False) -> None:
        if remove:
            self.path.unlink(missing_ok=True)
        self._fh.close()


def _row_to_json(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    blob = out.get("audio_fingerprint")
    out["audio_fingerprint"] = base64.b64encode(blob).decode() if blob else None
    return out


def _row_from_json(row: dict[str, Any]) -> dict[str, Any]:
    blob = row.get("audio_fingerprint")
    return with_caller_certainty(
        {**row, "audio_fingerprint": base64.b64decode(blob) if blob else None}
    )


def journal_path(out: Path) -> Path:
    return out.with_name(out.name + ".journal.jsonl")


def output_schema() -> Any:
    """The Parquet schema of a results file (one row per call)."""
    import pyarrow as pa

    s, f, i = pa.string(), pa.float64(), pa.int64()
    cue = pa.struct([("source", s), ("name", s), ("value", f), ("weight", f), ("detail", s)])
    return pa.schema(
        [
            ("call_id", s), ("path", s), ("caller_number", s), ("callee_number", s),
            ("start_time", pa.timestamp("us", tz="UTC")), ("duration_s", f), ("trunk", s),
            ("channel_layout", s),
            ("status", s), ("error_code", s), ("error_message", s),
            ("label", s), ("robot_probability", f), ("threshold", f),
            ("caller_certainty", s), ("person_threshold", f), ("sales_probability", f),
            ("topic", s), ("top_cues", pa.list_(cue)),
            ("transcript", s), ("language", s), ("other_party_transcript", s),
            ("campaign_id", s), ("campaign_match", s), ("prompt_other_calls", i),
            ("prompt_other_numbers", i),
            ("audio_sha256", s), ("audio_duration_s", f), ("container", s), ("codec", s),
            ("sample_rate_hz", i), ("channels", i), ("caller_channel", i),
            ("package_version", s), ("config_hash", s), ("models", s), ("fusion_method", s),
            ("verdict_json", s), ("audio_fingerprint", pa.binary()),
            ("analysed_at_utc", s), ("elapsed_s", f), ("cpu_s", f), ("worker", s),
            ("worker_peak_rss_mb", f),
        ]
    )  # fmt: skip


def rows_table(rows: Sequence[dict[str, Any]]) -> Any:
    """Rows (as the journal holds them) as a ``pyarrow.Table`` of :func:`output_schema`."""
    import pyarrow as pa

    schema = output_schema()
    return pa.Table.from_pylist(
        [{**{k: r.get(k) for k in schema.names}, "start_time": _parse_time(r.get("start_time"))}
         for r in rows],
        schema=schema,
    )  # fmt: skip


def parts_dir(out: Path) -> Path:
    return out.with_name(out.name + ".parts")


class Parts:
    """The row groups finished so far (``<out>.parts/part-NNNNNN.parquet``), in input order."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def paths(self) -> list[Path]:
        return sorted(self.folder.glob("part-*.parquet")) if self.folder.is_dir() else []

    def write(self, rows: Sequence[dict[str, Any]]) -> Path:
        """Write one part atomically (fsync'd) and return its path."""
        import pyarrow.parquet as pq

        existing = self.paths()
        number = int(existing[-1].stem.split("-")[1]) + 1 if existing else 1
        path = self.folder / f"part-{number:06d}.parquet"
        with atomic_path(path) as tmp:
            pq.write_table(rows_table(rows), tmp, compression="zstd")
        return path

    def call_ids(self) -> set[str]:
        import pyarrow.parquet as pq

        ids: set[str] = set()
        for path in self.paths():
            ids.update(pq.read_table(path, columns=["call_id"])[0].to_pylist())
        return ids

    def clear(self) -> None:
        for path in self.paths():
            path.unlink()
        if self.folder.is_dir():
            self.folder.rmdir()


def output_call_ids(out: Path) -> set[str]:
    """The ``call_id`` of every row of a results file (read one column, not the rows)."""
    import pyarrow.parquet as pq

    return set(pq.read_table(out, columns=["call_id"])[0].to_pylist())


def iter_tables(path: Path) -> Iterator[Any]:
    """The row groups of a results (or part) file, one ``pyarrow.Table`` at a time."""
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as reader:
        for group in range(reader.num_row_groups):
            yield reader.read_row_group(group)


def table_rows(table: Any) -> list[dict[str, Any]]:
    """Rows of a table of :func:`output_schema`, as the journal holds them (ISO times); rows of
    an output from before the ``caller_certainty`` column get it (:func:`with_caller_certainty`).
    """
    rows: list[dict[str, Any]] = table.to_pylist()
    for row in rows:
        stamp = row.get("start_time")
        row["start_time"] = stamp.astimezone(dt.UTC).isoformat() if stamp else None
        with_caller_certainty(row)
    return rows


def with_caller_certainty(row: dict[str, Any]) -> dict[str, Any]:
    """Fill ``caller_certainty`` and ``person_threshold`` of an ``ok`` row that lacks them (an
    output or a journal from before these columns) from its ``verdict_json``, in place.

    A verdict stored before schema 3 has no uncertain band: ``Verdict.caller_certainty`` then
    reads its label (robot or person), as it was shown then.
    """
    if row.get("status") == "ok" and row.get("caller_certainty") is None:
        verdict = Verdict.from_dict(json.loads(row["verdict_json"]))
        row["caller_certainty"] = verdict.caller_certainty
        row["person_threshold"] = verdict.person_threshold
    return row


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a results Parquet, as the journal holds them (ISO times, bytes fingerprints).

    All of them in memory: for reports and tests; a batch streams (:func:`iter_tables`).
    """
    import pyarrow.parquet as pq

    return table_rows(pq.read_table(path))


def _parse_time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


_METADATA_FIELDS = ("call_id", "caller_number", "callee_number", "start_time", "duration_s",
                    "trunk", "channel_layout")  # fmt: skip
_CAMPAIGN_FIELDS = ("campaign_id", "campaign_match", "prompt_other_calls", "prompt_other_numbers")


def jsonl_lines(rows: Iterable[dict[str, Any]]) -> str:
    """Rows as JSON lines (see :func:`_jsonl_line`)."""
    return "".join(_jsonl_line(r) for r in rows)


def _jsonl_line(row: dict[str, Any]) -> str:
    """STYLE section 8: {"input", "verdict"} or {"input", "error"}, plus metadata and campaign."""
    obj: dict[str, Any] = {
        "input": row["path"],
        "metadata": {k: row.get(k) for k in _METADATA_FIELDS},
    }
    obj.update({k: row.get(k) for k in _CAMPAIGN_FIELDS})
    if row["status"] == "ok":
        obj["verdict"] = json.loads(row["verdict_json"])
    else:
        obj["error"] = {"code": row["error_code"], "message": row["error_message"]}
    return json.dumps(obj, ensure_ascii=False) + "\n"
