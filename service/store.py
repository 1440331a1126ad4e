"""Persistence of the service: the job table and API keys (SQLAlchemy), audio blobs on disk.

The database is SQLite (one file, zero set-up) by default and PostgreSQL by URL for several
instances sharing one queue; the schema is created and upgraded by Alembic
(``service/migrations``) at start-up. Jobs are claimed with a conditional ``UPDATE`` (plus
``FOR UPDATE SKIP LOCKED`` where the database has it), so two workers never run the same job, and
every claim carries a fresh token and a lease: a worker that dies stops renewing its lease and the
job is queued again (issue 4: a restart loses no accepted job).

Audio is stored content-addressed, ``<data_dir>/audio/ab/cd/<sha256>``: the path is derived from
the hash we computed, never from anything the client sent.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, cast

from sqlalchemy import (
    BigInteger,
    DateTime,
    Engine,
    Index,
    Integer,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    func,
    select,
    text,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
STATUSES = ("queued", "running", "done", "failed")
ACTIVE_STATUSES = ("queued", "running")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_ID_RE = re.compile(r"^[0-9a-f]{32}$")
_COPY_CHUNK_BYTES = 1024 * 1024


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on the Python side; naive UTC in SQLite, ``timestamptz`` in PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class AnalysisRow(Base):
    __tablename__ = "analyses"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)  # API key id, or "local"
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    audio_sha256: Mapped[str] = mapped_column(String(64), index=True)
    audio_name: Mapped[str] = mapped_column(String(255))  # display only, never a path
    audio_format: Mapped[str] = mapped_column(String(16))  # sniffed container
    audio_size_bytes: Mapped[int] = mapped_column(BigInteger)
    caller_number: Mapped[str | None] = mapped_column(String(32), nullable=True)
    callee_number: Mapped[str | None] = mapped_column(String(32), nullable=True)
    call_time: Mapped[str | None] = mapped_column(String(40), nullable=True)
    language_hint: Mapped[str | None] = mapped_column(String(8), nullable=True)
    caller_channel: Mapped[int | None] = mapped_column(Integer, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claim_token: Mapped[str | None] = mapped_column(String(32), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    verdict_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (Index("ix_analyses_status_created", "status", "created_at"),)


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)  # public part of the key
    name: Mapped[str] = mapped_column(String(100))
    secret_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


ANALYSES = cast(Table, AnalysisRow.__table__)
API_KEYS = cast(Table, ApiKeyRow.__table__)


@dataclass(frozen=True, slots=True)
class Analysis:
    """One row of ``analyses`` as a plain record (no ORM session attached)."""

    id: str
    owner: str
    status: str
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    audio_sha256: str
    audio_name: str
    audio_format: str
    audio_size_bytes: int
    caller_number: str | None
    callee_number: str | None
    call_time: str | None
    language_hint: str | None
    caller_channel: int | None
    attempts: int
    claim_token: str | None
    lease_until: datetime | None
    verdict_json: str | None
    error_code: str | None
    error_message: str | None


@dataclass(frozen=True, slots=True)
class NewAnalysis:
    """What an upload brings: the stored blob and the optional call metadata."""

    owner: str
    audio_sha256: str
    audio_name: str
    audio_format: str
    audio_size_bytes: int
    caller_number: str | None = None
    callee_number: str | None = None
    call_time: str | None = None
    language_hint: str | None = None
    caller_channel: int | None = None


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    name: str
    secret_sha256: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


def _row(record_type: type[Any], row: Any) -> Any:
    return record_type(**dict(row._mapping))


def is_analysis_id(value: str) -> bool:
    return bool(_ID_RE.match(value))


def new_id() -> str:
    return secrets.token_hex(16)


class Store:
    """Repository over the database; every method is one short transaction, thread-safe.

    Parameters
    ----------
    url : str
        SQLAlchemy URL, e.g. ``sqlite:////var/lib/robocall/robocall.db`` or
        ``postgresql+psycopg://user@127.0.0.1/robocall``.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _make_engine(url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    def migrate(self) -> None:
        """Create or upgrade the schema to the newest Alembic revision."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def ping(self) -> bool:
        """True when the database answers a trivial query."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001 - any driver error means "not reachable"
            log.warning("store ping failed", exc_info=True)
            return False
        return True

    # -- analyses -------------------------------------------------------------------------

    def add_analysis(self, new: NewAnalysis, *, max_active: int | None = None) -> Analysis | None:
        """Insert a queued job; None when ``max_active`` jobs are already queued or running."""
        now = utcnow()
        values: dict[str, Any] = {
            "id": new_id(),
            "status": "queued",
            "created_at": now,
            "updated_at": now,
            "started_at": None,
            "finished_at": None,
            "attempts": 0,
            "claim_token": None,
            "lease_until": None,
            "verdict_json": None,
            "error_code": None,
            "error_message": None,
            "owner": new.owner,
            "audio_sha256": new.audio_sha256,
            "audio_name": new.audio_name,
            "audio_format": new.audio_format,
            "audio_size_bytes": new.audio_size_bytes,
            "caller_number": new.caller_number,
            "callee_number": new.callee_number,
            "call_time": new.call_time,
            "language_hint": new.language_hint,
            "caller_channel": new.caller_channel,
        }
        with self.engine.begin() as conn:
            if max_active is not None and _count_active(conn) >= max_active:
                return None
            conn.execute(ANALYSES.insert().values(**values))
        return Analysis(**values)

    def count_active(self) -> int:
        with self.engine.connect() as conn:
            return _count_active(conn)

    def get_analysis(self, analysis_id: str, *, owner: str | None = None) -> Analysis | None:
        if not is_analysis_id(analysis_id):
            return None
        query = select(ANALYSES).where(ANALYSES.c.id == analysis_id)
        if owner is not None:
            query = query.where(ANALYSES.c.owner == owner)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _row(Analysis, row)

    def delete_analysis(self, analysis_id: str, *, owner: str | None = None) -> Analysis | None:
        """Delete one analysis; returns what was deleted (its blob may now be unreferenced)."""
        found = self.get_analysis(analysis_id, owner=owner)
        if found is None:
            return None
        with self.engine.begin() as conn:
            gone = conn.execute(delete(ANALYSES).where(ANALYSES.c.id == analysis_id)).rowcount
        return found if gone else None

    def blob_in_use(self, sha256: str) -> bool:
        with self.engine.connect() as conn:
            n = conn.execute(
                select(func.count()).select_from(ANALYSES).where(ANALYSES.c.audio_sha256 == sha256)
            ).scalar_one()
        return bool(n)

    def referenced_blobs(self) -> set[str]:
        with self.engine.connect() as conn:
            return set(conn.execute(select(ANALYSES.c.audio_sha256).distinct()).scalars())

    def claim_next(self, *, lease_s: float) -> Analysis | None:
        """Atomically move the oldest queued job to ``running`` under a fresh claim token."""
        for _ in range(8):  # another worker may win the race for a candidate: try the next one
            now = utcnow()
            token = secrets.token_hex(16)
            with self.engine.begin() as conn:
                candidate = conn.execute(
                    select(ANALYSES.c.id)
                    .where(ANALYSES.c.status == "queued")
                    .order_by(ANALYSES.c.created_at, ANALYSES.c.id)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                ).scalar()
                if candidate is None:
                    return None
                won = conn.execute(
                    update(ANALYSES)
                    .where(ANALYSES.c.id == candidate, ANALYSES.c.status == "queued")
                    .values(
                        status="running",
                        claim_token=token,
                        updated_at=now,
                        started_at=now,
                        lease_until=now + timedelta(seconds=lease_s),
                        attempts=ANALYSES.c.attempts + 1,
                    )
                ).rowcount
                if won == 1:
                    row = conn.execute(select(ANALYSES).where(ANALYSES.c.id == candidate)).one()
                    return _row(Analysis, row)  # type: ignore[no-any-return]
        return None

    def renew_leases(self, tokens: list[str], *, lease_s: float) -> int:
        if not tokens:
            return 0
        now = utcnow()
        with self.engine.begin() as conn:
            return int(
                conn.execute(
                    update(ANALYSES)
                    .where(ANALYSES.c.claim_token.in_(tokens), ANALYSES.c.status == "running")
                    .values(lease_until=now + timedelta(seconds=lease_s))
                ).rowcount
            )

    def finish(
        self,
        analysis_id: str,
        token: str,
        *,
        verdict_json: str | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> bool:
        """Record the outcome of a claimed job; False when the claim was lost (requeued)."""
        now = utcnow()
        status = "done" if verdict_json is not None else "failed"
        with self.engine.begin() as conn:
            return (
                conn.execute(
                    update(ANALYSES)
                    .where(
                        ANALYSES.c.id == analysis_id,
                        ANALYSES.c.claim_token == token,
                        ANALYSES.c.status == "running",
                    )
                    .values(
                        status=status,
                        verdict_json=verdict_json,
                        error_code=error_code,
                        error_message=error_message,
                        finished_at=now,
                        updated_at=now,
                        claim_token=None,
                        lease_until=None,
                    )
                ).rowcount
                == 1
            )

    def release(self, tokens: list[str]) -> int:
        """Put claimed jobs back in the queue (graceful stop: someone else will run them)."""
        if not tokens:
            return 0
        with self.engine.begin() as conn:
            return int(
                conn.execute(
                    update(ANALYSES)
                    .where(ANALYSES.c.claim_token.in_(tokens), ANALYSES.c.status == "running")
                    .values(
                        status="queued",
                        claim_token=None,
                        lease_until=None,
                        attempts=ANALYSES.c.attempts - 1,
                        updated_at=utcnow(),
                    )
                ).rowcount
            )

    def recover_expired(self, *, max_attempts: int) -> tuple[int, int]:
        """Requeue running jobs whose lease ran out; fail those that used up their attempts.

        Returns
        -------
        (requeued, failed) : tuple of int
        """
        now = utcnow()
        expired = (ANALYSES.c.status == "running") & (ANALYSES.c.lease_until < now)
        with self.engine.begin() as conn:
            failed = conn.execute(
                update(ANALYSES)
                .where(expired, ANALYSES.c.attempts >= max_attempts)
                .values(
                    status="failed",
                    error_code="analysis_abandoned",
                    error_message=f"the analysis stopped its worker {max_attempts} times; "
                    "not retried",
                    finished_at=now,
                    updated_at=now,
                    claim_token=None,
                    lease_until=None,
                )
            ).rowcount
            requeued = conn.execute(
                update(ANALYSES)
                .where(expired)
                .values(status="queued", claim_token=None, lease_until=None, updated_at=now)
            ).rowcount
        if requeued or failed:
            log.warning(
                "recovered jobs from stopped workers: %d requeued, %d failed", requeued, failed
            )
        return int(requeued), int(failed)

    def purge_before(self, cutoff: datetime) -> list[Analysis]:
        """Delete finished analyses created before ``cutoff`` (and stale queued ones too)."""
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(ANALYSES).where(
                    ANALYSES.c.created_at < cutoff, ANALYSES.c.status != "running"
                )
            ).all()
            ids = [r.id for r in rows]
            for start in range(0, len(ids), 500):
                conn.execute(delete(ANALYSES).where(ANALYSES.c.id.in_(ids[start : start + 500])))
        return [_row(Analysis, r) for r in rows]

    # -- API keys -------------------------------------------------------------------------

    def add_api_key(self, key_id: str, *, name: str, secret_sha256: str) -> ApiKey:
        values: dict[str, Any] = {
            "id": key_id,
            "name": name,
            "secret_sha256": secret_sha256,
            "created_at": utcnow(),
            "revoked_at": None,
            "last_used_at": None,
        }
        with self.engine.begin() as conn:
            conn.execute(API_KEYS.insert().values(**values))
        return ApiKey(**values)

    def get_api_key(self, key_id: str) -> ApiKey | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(API_KEYS).where(API_KEYS.c.id == key_id)).first()
        return None if row is None else _row(ApiKey, row)

    def list_api_keys(self) -> list[ApiKey]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(API_KEYS).order_by(API_KEYS.c.created_at)).all()
        return [_row(ApiKey, r) for r in rows]

    def revoke_api_key(self, key_id: str) -> bool:
        with self.engine.begin() as conn:
            return (
                conn.execute(
                    update(API_KEYS)
                    .where(API_KEYS.c.id == key_id, API_KEYS.c.revoked_at.is_(None))
                    .values(revoked_at=utcnow())
                ).rowcount
                == 1
            )

    def touch_api_key(self, key_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(API_KEYS).where(API_KEYS.c.id == key_id).values(last_used_at=utcnow())
            )


def _count_active(conn: Any) -> int:
    return int(
        conn.execute(
            select(func.count()).select_from(ANALYSES).where(ANALYSES.c.status.in_(ACTIVE_STATUSES))
        ).scalar_one()
    )


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        if url in ("sqlite://", "sqlite:///:memory:"):
            raise ValueError(
                "an in-memory SQLite database cannot be shared by the workers; use a file URL"
            )
        db_path = url.split(":///", 1)[-1]
        Path(db_path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # The driver's own transaction handling is off so that we can BEGIN IMMEDIATE:
            # a deferred read that later writes would fail with SQLITE_BUSY under WAL instead
            # of waiting for the lock (SQLAlchemy docs, "Serializable isolation / Savepoints").
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


# -- audio ------------------------------------------------------------------------------

# (offset, magic, format): checked against the first bytes, never the name or content type.
_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"#!AMR-WB\n", "amr"),
    (0, b"#!AMR\n", "amr"),
    (0, b"fLaC", "flac"),
    (0, b"OggS", "ogg"),
    (0, b"ID3", "mp3"),
    (0, b"\x1a\x45\xdf\xa3", "webm"),
    (0, b"caff", "caf"),
    (4, b"ftyp", "mp4"),
)
AUDIO_MIME = {
    "wav": "audio/wav",
    "amr": "audio/amr",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "mp3": "audio/mpeg",
    "webm": "audio/webm",
    "caf": "audio/x-caf",
    "mp4": "audio/mp4",
    "aiff": "audio/aiff",
}
SNIFF_BYTES = 16
ORPHAN_GRACE_S = 600.0  # purge leaves unreferenced blobs younger than this (upload in flight)


def sniff_audio_format(head: bytes) -> str | None:
    """Container of a recording from its first bytes, or None when it is not audio we know.

    Parameters
    ----------
    head : bytes
        At least :data:`SNIFF_BYTES` bytes from the start of the file (fewer for tiny files).
    """
    if head[:4] == b"RIFF" and head[8:12] in (b"WAVE", b"RF64"):
        return "wav"
    if head[:4] in (b"RF64", b"BW64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    for offset, magic, fmt in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return fmt
    # MPEG audio frame sync (11 set bits), layer bits != 00: a raw MP3 without an ID3 tag.
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0 and (head[1] & 0x06):
        return "mp3"
    return None


@dataclass(frozen=True, slots=True)
class StagedBlob:
    tmp_path: Path
    sha256: str
    size_bytes: int


class BlobStore:
    """Content-addressed audio files under ``root``; names are sha256 hex, nothing else."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp_dir = root / "tmp"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        if not _SHA256_RE.match(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256[:80]!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def stage(self, src: IO[bytes]) -> StagedBlob:
        """Copy a stream to a temporary file in the store, hashing it on the way."""
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp_dir, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := src.read(_COPY_CHUNK_BYTES):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return StagedBlob(Path(tmp_name), digest.hexdigest(), size)

    def commit(self, staged: StagedBlob) -> Path:
        """Move a staged file to its content address (atomic; same bytes if it existed)."""
        final = self.path(staged.sha256)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged.tmp_path, final)
        return final

    def put(self, src: IO[bytes]) -> tuple[str, int]:
        """Stage and commit in one go; returns (sha256 hex, size in bytes)."""
        staged = self.stage(src)
        self.commit(staged)
        return staged.sha256, staged.size_bytes

    def wav_path(self, sha256: str) -> Path:
        """Where a decoded 16 kHz WAV copy (for browsers that cannot play the original) lives."""
        return self.root / "wav" / sha256[:2] / f"{self.path(sha256).name}.wav"

    def write_wav(self, sha256: str, write: Callable[[Path], None]) -> Path:
        """Create the WAV copy with ``write(tmp_path)`` (atomic); returns its path."""
        final = self.wav_path(sha256)
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp_dir, suffix=".part")
        os.close(fd)
        try:
            write(Path(tmp_name))
            os.replace(tmp_name, final)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return final

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def read(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def delete(self, sha256: str) -> bool:
        """Delete a blob and its WAV copy; False when the blob was already gone."""
        self.wav_path(sha256).unlink(missing_ok=True)
        try:
            self.path(sha256).unlink()
        except FileNotFoundError:
            return False
        return True

    def age_s(self, sha256: str) -> float:
        """Seconds since the blob was written (0 when it is gone)."""
        try:
            return utcnow().timestamp() - self.path(sha256).stat().st_mtime
        except FileNotFoundError:
            return 0.0

    def iter_blobs(self) -> Iterator[str]:
        for path in self.root.glob("??/??/*"):
            if _SHA256_RE.match(path.name):
                yield path.name

    def iter_wav_copies(self) -> Iterator[str]:
        for path in self.root.glob("wav/??/*.wav"):
            if _SHA256_RE.match(path.stem):
                yield path.stem

    def remove_stale_parts(self, *, older_than_s: float = 3600.0) -> int:
        """Delete upload leftovers (``tmp/*.part``) older than ``older_than_s``."""
        cutoff = utcnow().timestamp() - older_than_s
        removed = 0
        for part in self.tmp_dir.glob("*.part"):
            try:
                if part.stat().st_mtime < cutoff:
                    part.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed


@dataclass(frozen=True, slots=True)
class PurgeReport:
    analyses: int
    blobs: int
    parts: int


def purge(
    store: Store, blobs: BlobStore, *, retention_days: float, dry_run: bool = False
) -> PurgeReport:
    """Delete analyses older than the retention period and every unreferenced audio blob.

    Parameters
    ----------
    retention_days : float
        Keep analyses created within this many days.
    dry_run : bool
        Only count what would go.
    """
    cutoff = utcnow() - timedelta(days=retention_days)
    if dry_run:
        with store.engine.connect() as conn:
            n = int(
                conn.execute(
                    select(func.count())
                    .select_from(ANALYSES)
                    .where(ANALYSES.c.created_at < cutoff, ANALYSES.c.status != "running")
                ).scalar_one()
            )
        referenced = store.referenced_blobs()
        orphans = sum(
            1
            for sha in blobs.iter_blobs()
            if sha not in referenced and blobs.age_s(sha) > ORPHAN_GRACE_S
        )
        return PurgeReport(analyses=n, blobs=orphans, parts=0)
    deleted = store.purge_before(cutoff)
    referenced = store.referenced_blobs()
    # A blob younger than the grace period may belong to an upload whose row is not yet written.
    n_blobs = sum(
        blobs.delete(sha)
        for sha in list(blobs.iter_blobs())
        if sha not in referenced and blobs.age_s(sha) > ORPHAN_GRACE_S
    )
    for sha in list(blobs.iter_wav_copies()):  # copies of blobs deleted by other instances
        if sha not in referenced:
            blobs.wav_path(sha).unlink(missing_ok=True)
    parts = blobs.remove_stale_parts()
    log.info("purge: %d analyses, %d audio files, %d partial uploads", len(deleted), n_blobs, parts)
    return PurgeReport(analyses=len(deleted), blobs=n_blobs, parts=parts)
