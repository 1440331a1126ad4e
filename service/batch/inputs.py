"""Batch input: find the calls (directory tree or CSV/Parquet manifest) and sample them.

A manifest has one row per call: ``path`` (required; relative to the manifest's folder, or an
object-store URI) and optional metadata, ``call_id``, ``caller_number``, ``callee_number``,
``start_time`` (ISO 8601, a Parquet timestamp, or epoch seconds; naive means UTC),
``duration_s``, ``trunk`` (or ``route``) and ``channel_layout`` (see :data:`CHANNEL_LAYOUTS`).
Columns are matched case-insensitively, with the aliases in :data:`MANIFEST_ALIASES`; others are
ignored. See ``docs/batch.md``.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import os
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

AUDIO_SUFFIXES = frozenset(
    ".wav .flac .mp3 .m4a .aac .mp4 .ogg .oga .opus .webm .amr .awb .3gp .au .aif .aiff .caf "
    ".wma .mka .gsm".split()
)

# Manifest column -> CallRecord field; the first name is the canonical one.
MANIFEST_ALIASES: dict[str, tuple[str, ...]] = {
    "path": ("path", "file", "audio_path", "uri"),
    "call_id": ("call_id", "id"),
    "caller_number": ("caller_number", "caller", "calling_number", "ani"),
    "callee_number": ("callee_number", "callee", "called_number", "dnis"),
    "start_time": ("start_time", "started_at", "start"),
    "duration_s": ("duration_s", "duration"),
    "trunk": ("trunk", "route", "trunk_route"),
    "channel_layout": ("channel_layout", "layout", "channels"),
}
# channel_layout value -> caller channel index (None: decide from speech activity).
CHANNEL_LAYOUTS: dict[str, int | None] = {
    "": None,
    "mono": None,
    "auto": None,
    "stereo": None,
    "caller_left": 0,
    "left": 0,
    "caller_right": 1,
    "right": 1,
}


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One call to analyse: where its audio is, and what the carrier knows about it."""

    call_id: str  # unique within a run: manifest ``call_id``, else the path as listed
    path: str  # local path (absolute) or object-store URI (s3://, gs://, hdfs://)
    seq: int = 0  # position in the input; output rows keep this order
    caller_number: str | None = None
    callee_number: str | None = None
    start_time: str | None = None  # ISO 8601, UTC
    duration_s: float | None = None  # as the carrier recorded it (the audio may differ)
    trunk: str | None = None  # trunk group / route the call came in on
    channel_layout: str | None = None  # see CHANNEL_LAYOUTS


# --- discovery ----------------------------------------------------------------------------------


def discover_calls(source: str | os.PathLike[str]) -> list[CallRecord]:
    """List the calls of a directory tree or a CSV/Parquet manifest (all in memory; a batch
    streams them with :func:`iter_calls`).

    Parameters
    ----------
    source : path
        A directory (every file whose suffix is in :data:`AUDIO_SUFFIXES`, recursively, sorted;
        ``call_id`` is the path relative to it), or a ``.csv`` / ``.parquet`` manifest with a
        ``path`` column and optional metadata columns (see ``docs/batch.md``). Relative paths in a
        manifest are relative to the manifest's folder; URIs (``s3://...``) are kept as they are.

    Raises
    ------
    ValueError
        Unknown manifest format, no ``path`` column, a bad ``channel_layout`` or ``duration_s``.
    FileNotFoundError
        ``source`` does not exist.
    """
    return list(iter_calls(source))


def iter_calls(source: str | os.PathLike[str]) -> Iterator[CallRecord]:
    """The calls of :func:`discover_calls`, one at a time: a manifest is read in batches of
    :data:`MANIFEST_BATCH_ROWS` rows, so a million-row manifest is never in memory at once.

    A bad row raises when it is reached; :func:`check_manifest` reads the whole manifest first
    (also streaming) so that a batch refuses it before analysing anything.
    """
    root = Path(source)
    if root.is_dir():
        files = sorted(
            p
            for p in root.rglob("*")
            if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES and not p.name.startswith(".")
        )
        for i, p in enumerate(files):
            yield CallRecord(call_id=p.relative_to(root).as_posix(), path=str(p.resolve()), seq=i)
        return
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such file or directory")
    yield from _records_from_rows(_manifest_rows(root), base=root.parent, label=str(root))


def check_manifest(source: str | os.PathLike[str]) -> int:
    """Read every call of ``source`` once (streaming) and return how many there are.

    Raises
    ------
    ValueError, FileNotFoundError
        As :func:`discover_calls`.
    """
    return sum(1 for _ in iter_calls(source))


MANIFEST_BATCH_ROWS = 10_000


def _manifest_rows(path: Path) -> Iterator[dict[str, Any]]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as fh:
            yield from csv.DictReader(fh)
    elif suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        with pq.ParquetFile(path) as reader:
            for batch in reader.iter_batches(batch_size=MANIFEST_BATCH_ROWS):
                yield from batch.to_pylist()
    else:
        raise ValueError(f"{path}: a manifest must be .csv or .parquet, or give a directory")


def _records_from_rows(
    raw: Iterator[dict[str, Any]], *, base: Path, label: str
) -> Iterator[CallRecord]:
    pick: dict[str, str | None] | None = None
    # Ids seen so far, as 8-byte digests (a million ids in a few tens of MB, not hundreds); a
    # repeated id gets "#2", "#3" (counted only for ids that repeat). Two different ids with
    # the same digest (about 1 in 10^7 for a million calls) would rename the second to "#2".
    seen: set[int] = set()
    repeats: dict[str, int] = defaultdict(lambda: 1)
    for i, row in enumerate(raw):
        if pick is None:
            columns = {c.strip().lower(): c for c in row}
            pick = {f: next((columns[a] for a in names if a in columns), None)
                    for f, names in MANIFEST_ALIASES.items()}  # fmt: skip
            if pick["path"] is None:
                raise ValueError(
                    f"{label}: no path column (one of {', '.join(MANIFEST_ALIASES['path'])})"
                )
        values = {f: (row.get(c) if c else None) for f, c in pick.items()}
        listed = _text(values["path"]) or ""
        path = listed if "://" in listed else str((base / listed).resolve())
        call_id = _text(values["call_id"]) or listed
        digest = int.from_bytes(hashlib.blake2b(call_id.encode(), digest_size=8).digest(), "big")
        if digest in seen:  # the same file listed twice is two calls; ids stay unique
            repeats[call_id] += 1
            call_id = f"{call_id}#{repeats[call_id]}"
        seen.add(digest)
        layout = (_text(values["channel_layout"]) or "").lower()
        if layout not in CHANNEL_LAYOUTS:
            raise ValueError(
                f"{label} row {i + 1}: channel_layout {layout!r} is not one of "
                f"{', '.join(k for k in CHANNEL_LAYOUTS if k)}"
            )
        yield CallRecord(
            call_id=call_id,
            path=path,
            seq=i,
            caller_number=_text(values["caller_number"]),
            callee_number=_text(values["callee_number"]),
            start_time=_iso_time(values["start_time"], where=f"{label} row {i + 1}"),
            duration_s=_float(values["duration_s"], where=f"{label} row {i + 1}"),
            trunk=_text(values["trunk"]),
            channel_layout=layout or None,
        )


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def _float(value: Any, *, where: str) -> float | None:
    text = _text(value)
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{where}: duration_s {text!r} is not a number") from None


def _iso_time(value: Any, *, where: str) -> str | None:
    """ISO 8601 in UTC from an ISO string, a datetime, or epoch seconds; naive means UTC."""
    if value is None or _text(value) is None:
        return None
    if isinstance(value, dt.datetime):
        stamp = value
    elif isinstance(value, int | float) or _text(value).replace(".", "", 1).isdigit():  # type: ignore[union-attr]
        stamp = dt.datetime.fromtimestamp(float(value), tz=dt.UTC)
    else:
        try:
            stamp = dt.datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise ValueError(f"{where}: start_time {value!r} is not ISO 8601") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return stamp.astimezone(dt.UTC).isoformat()


# --- sampling ------------------------------------------------------------------------------------


def sample_calls(
    calls: Sequence[CallRecord], fraction: float, *, seed: int = 0
) -> list[CallRecord]:
    """A reproducible sample, stratified by caller number.

    Each caller number gets ``fraction`` of its calls (largest-remainder rounding, so the total
    is exactly ``round(fraction * len(calls))``; which callers get the odd extra call, and which
    calls of a caller are taken, follow a hash of ``seed`` and the id, not the input order).

    Parameters
    ----------
    calls : sequence of CallRecord
    fraction : float
        In (0, 1]; 1 keeps every call.
    seed : int
        Another seed draws another sample; the same seed always the same one.

    Returns
    -------
    list of CallRecord
        In input order.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"sample fraction must be in (0, 1], got {fraction}")
    if fraction == 1.0:
        return list(calls)
    groups: dict[str, list[CallRecord]] = defaultdict(list)
    for call in calls:
        groups[call.caller_number or ""].append(call)
    quota = {k: fraction * len(v) for k, v in groups.items()}
    take = {k: int(np.floor(q)) for k, q in quota.items()}
    extra = round(fraction * len(calls)) - sum(take.values())
    by_remainder = sorted(groups, key=lambda k: (-(quota[k] - take[k]), _rank(seed, "caller", k)))
    for key in by_remainder[: max(0, extra)]:
        take[key] += 1
    chosen = [
        call
        for key, members in groups.items()
        for call in sorted(members, key=lambda c: _rank(seed, "call", c.call_id))[: take[key]]
    ]
    return sorted(chosen, key=lambda c: c.seq)


def _rank(seed: int, kind: str, key: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}\0{kind}\0{key}".encode()).digest()[:8], "big")
