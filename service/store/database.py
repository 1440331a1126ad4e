"""Persistence of the service: the job table and API keys (SQLAlchemy models and :class:`Store`).

Over 500 lines on purpose: :class:`Store` is the only code that speaks SQL, and the claim, lease,
recovery and purge statements must be read together to see that no job runs twice or is lost.
Audio blobs are in :mod:`service.store.blobs`, retention in :mod:`service.store.retention`.

The database is SQLite (one file, zero set-up) by default and PostgreSQL by URL for several
instances sharing one queue; the schema is created and upgraded by Alembic
(``service/store/migrations``) at start-up. Jobs are claimed with a conditional ``UPDATE`` (plus
``FOR UPDATE SKIP LOCKED`` where the database has it), so two workers never run the same job, and
every claim carries a fresh token and a lease: a worker that dies stops renewing its lease and the
job is queued again (issue 4: a restart loses no accepted job).
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

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
METADATA_FIELDS = ("caller_number", "callee_number", "call_time", "language_hint")
_ID_RE = re.compile(r"^[0-9a-f]{32}$")


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
    label: Mapped[str | None] = mapped_column(String(32), nullable=True)  # the verdict's, if done
    claimed_by: Mapped[str | None] = mapped_column(String(128), nullable=True)  # "host:pid"
    warnings_json: Mapped[str | None] = mapped_column(Text, nullable=True)  # upload warnings

    __table_args__ = (
        Index("ix_analyses_status_created", "status", "created_at"),
        Index("ix_analyses_owner_created", "owner", "created_at"),
    )


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
    label: str | None = None
    claimed_by: str | None = None
    warnings_json: str | None = None


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
    warnings_json: str | None = None  # JSON list of {"code", "params"} from the upload check


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
            "label": None,
            "claimed_by": None,
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
            "warnings_json": new.warnings_json,
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

    def claim_next(self, *, lease_s: float, claimed_by: str | None = None) -> Analysis | None:
        """Atomically move the oldest queued job to ``running`` under a fresh claim token.

        ``claimed_by`` names the claiming process (``"host:pid"``, see :meth:`recover_dead`).
        """
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
                        claimed_by=claimed_by,
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
        label: str | None = None,
    ) -> bool:
        """Record the outcome of a claimed job; False when the claim was lost (requeued).

        ``label`` is the verdict's (stored apart so that the history can filter by it).
        """
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
                        label=label,
                        finished_at=now,
                        updated_at=now,
                        claim_token=None,
                        claimed_by=None,
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
                        claimed_by=None,
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
                    claimed_by=None,
                    lease_until=None,
                )
            ).rowcount
            requeued = conn.execute(
                update(ANALYSES)
                .where(expired)
                .values(
                    status="queued",
                    claim_token=None,
                    claimed_by=None,
                    lease_until=None,
                    updated_at=now,
                )
            ).rowcount
        if requeued or failed:
            log.warning(
                "recovered jobs from stopped workers: %d requeued, %d failed", requeued, failed
            )
        return int(requeued), int(failed)

    def recover_dead(self, *, host: str, is_alive: Callable[[int], bool]) -> int:
        """Requeue running jobs claimed on ``host`` by a process that is gone (issue 15).

        Called at start-up, before this process claims anything: after a hard kill the jobs
        it ran are requeued at once instead of after their lease. Only jobs of this host are
        judged (a process elsewhere may be alive); ``is_alive(pid)`` says whether a pid runs.

        Returns
        -------
        int
            Jobs requeued.
        """
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(ANALYSES.c.id, ANALYSES.c.claimed_by).where(
                    ANALYSES.c.status == "running", ANALYSES.c.claimed_by.is_not(None)
                )
            ).all()
        # Compared in Python: a host name may hold LIKE wildcards ("_").
        claims = [(r.id, r.claimed_by.rpartition(":")) for r in rows]
        dead = [
            job_id
            for job_id, (claim_host, _, pid) in claims
            if claim_host == host and (not pid.isdigit() or not is_alive(int(pid)))
        ]
        if not dead:
            return 0
        with self.engine.begin() as conn:
            requeued = conn.execute(
                update(ANALYSES)
                .where(ANALYSES.c.id.in_(dead), ANALYSES.c.status == "running")
                .values(
                    status="queued",
                    claim_token=None,
                    claimed_by=None,
                    lease_until=None,
                    updated_at=utcnow(),
                )
            ).rowcount
        log.warning("requeued %d analyses left running by a stopped process", requeued)
        return int(requeued)

    def list_analyses(
        self,
        owner: str,
        *,
        label: str | None = None,
        status: str | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> tuple[list[Analysis], int]:
        """One owner's analyses, newest first: a page of them and how many match in all."""
        where = [ANALYSES.c.owner == owner]
        if label is not None:
            where.append(ANALYSES.c.label == label)
        if status is not None:
            where.append(ANALYSES.c.status == status)
        with self.engine.connect() as conn:
            total = conn.execute(
                select(func.count()).select_from(ANALYSES).where(*where)
            ).scalar_one()
            rows = conn.execute(
                select(ANALYSES)
                .where(*where)
                .order_by(ANALYSES.c.created_at.desc(), ANALYSES.c.id.desc())
                .limit(limit)
                .offset(offset)
            ).all()
        return [_row(Analysis, r) for r in rows], int(total)

    def update_metadata(
        self, analysis_id: str, *, owner: str, changes: dict[str, str | None], rerun: bool = False
    ) -> Analysis | None:
        """Change the call details of an analysis (keys of :data:`METADATA_FIELDS`).

        With ``rerun`` a finished (done or failed) analysis is queued again with the new details
        (a new language hint changes what the recognizer hears); a queued one runs with them
        anyway, a running one finishes with the old ones.
        """
        unknown = set(changes) - set(METADATA_FIELDS)
        if unknown:
            raise ValueError(f"not call details: {', '.join(sorted(unknown))}")
        if not is_analysis_id(analysis_id):
            return None
        values: dict[str, Any] = {**changes, "updated_at": utcnow()}
        with self.engine.begin() as conn:
            mine = (ANALYSES.c.id == analysis_id) & (ANALYSES.c.owner == owner)
            n = conn.execute(update(ANALYSES).where(mine).values(**values)).rowcount
            if n and rerun:
                conn.execute(
                    update(ANALYSES)
                    .where(mine, ANALYSES.c.status.in_(("done", "failed")))
                    .values(
                        status="queued",
                        attempts=0,
                        verdict_json=None,
                        label=None,
                        error_code=None,
                        error_message=None,
                        started_at=None,
                        finished_at=None,
                    )
                )
        return self.get_analysis(analysis_id, owner=owner) if n else None

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
