"""Store, blobs, API keys and the worker pool: against SQLite always, and against PostgreSQL when
``ROBOCALL_TEST_PG_URL`` names a database (``scripts/ci_postgres.sh`` prints one)."""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text, update

from pipeline.errors import NotAudioError
from service.http.apikeys import RateLimiter, create_key, verify_key
from service.store.blobs import BlobStore
from service.store.database import ANALYSES, Base, NewAnalysis, Store, utcnow
from service.store.jobs import WorkerPool
from service.store.retention import purge
from tests.service.fake_detector import FakeDetector, make_verdict, wav_bytes

PG_URL = os.environ.get("ROBOCALL_TEST_PG_URL")
BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(
            not PG_URL,
            reason="set ROBOCALL_TEST_PG_URL (see scripts/ci_postgres.sh) to test PostgreSQL",
        ),
    ),
]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        s = Store(f"sqlite:///{tmp_path / 'store.db'}")
    else:
        assert PG_URL
        s = Store(PG_URL)
        with s.engine.begin() as conn:  # a clean schema per test: the migration runs from zero
            conn.execute(text("DROP TABLE IF EXISTS analyses, api_keys, alembic_version"))
    s.migrate()
    yield s
    s.close()


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "audio")


def new(blobs: BlobStore, data: bytes = b"RIFF....WAVE", *, owner: str = "local") -> NewAnalysis:
    sha, size = blobs.put(io.BytesIO(data))
    return NewAnalysis(
        owner=owner,
        audio_sha256=sha,
        audio_name="call.wav",
        audio_format="wav",
        audio_size_bytes=size,
    )


def test_migrations_are_idempotent_and_match_the_models(store: Store) -> None:
    store.migrate()  # second run: nothing to do
    with store.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(ctx, Base.metadata) == []
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0002"
    assert store.ping()


def test_add_get_delete_with_owner_isolation(store: Store, blobs: BlobStore) -> None:
    a = store.add_analysis(new(blobs, owner="k1"))
    assert a is not None and a.status == "queued" and len(a.id) == 32
    got = store.get_analysis(a.id, owner="k1")
    assert got is not None and got.created_at.tzinfo is not None
    assert got.created_at == a.created_at.replace(microsecond=got.created_at.microsecond)
    assert store.get_analysis(a.id, owner="k2") is None
    assert store.get_analysis("not-an-id") is None
    assert store.delete_analysis(a.id, owner="k2") is None
    assert store.delete_analysis(a.id, owner="k1") is not None
    assert store.get_analysis(a.id) is None


def test_max_active_bounds_the_queue(store: Store, blobs: BlobStore) -> None:
    assert store.add_analysis(new(blobs), max_active=2) is not None
    assert store.add_analysis(new(blobs), max_active=2) is not None
    assert store.add_analysis(new(blobs), max_active=2) is None
    assert store.count_active() == 2


def test_each_job_is_claimed_exactly_once_under_concurrency(store: Store, blobs: BlobStore) -> None:
    ids = {store.add_analysis(new(blobs)).id for _ in range(24)}  # type: ignore[union-attr]
    claimed: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        while (job := store.claim_next(lease_s=30)) is not None:
            with lock:
                claimed.append(job.id)
            assert job.status == "running" and job.attempts == 1 and job.claim_token

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(ids)


def test_claims_follow_creation_order_and_tokens_guard_results(
    store: Store, blobs: BlobStore
) -> None:
    first = store.add_analysis(new(blobs))
    store.add_analysis(new(blobs))
    job = store.claim_next(lease_s=30)
    assert job is not None and first is not None and job.id == first.id
    assert not store.finish(job.id, "wrong-token", verdict_json="{}")
    assert store.finish(job.id, job.claim_token or "", verdict_json='{"ok": true}')
    done = store.get_analysis(job.id)
    assert done is not None and done.status == "done" and done.claim_token is None
    second = store.claim_next(lease_s=30)
    assert second is not None
    assert store.finish(
        second.id, second.claim_token or "", error_code="not_audio", error_message="no"
    )
    failed = store.get_analysis(second.id)
    assert failed is not None and (failed.status, failed.error_code) == ("failed", "not_audio")


def test_release_and_lease_expiry_requeue_then_give_up(store: Store, blobs: BlobStore) -> None:
    a = store.add_analysis(new(blobs))
    assert a is not None
    job = store.claim_next(lease_s=30)
    assert job is not None and store.release([job.claim_token or ""]) == 1
    again = store.get_analysis(a.id)
    assert again is not None and (again.status, again.attempts) == ("queued", 0)
    for attempt in range(1, 4):
        job = store.claim_next(lease_s=30)
        assert job is not None and job.attempts == attempt
        assert store.recover_expired(max_attempts=3) == (0, 0)  # lease still valid
        with store.engine.begin() as conn:  # the worker died: its lease runs out
            conn.execute(update(ANALYSES).values(lease_until=utcnow() - timedelta(seconds=1)))
        expected = (1, 0) if attempt < 3 else (0, 1)
        assert store.recover_expired(max_attempts=3) == expected
    gone = store.get_analysis(a.id)
    assert gone is not None and (gone.status, gone.error_code) == ("failed", "analysis_abandoned")


def test_purge_removes_old_results_and_orphan_audio(store: Store, blobs: BlobStore) -> None:
    old = store.add_analysis(new(blobs, b"RIFF-old"))
    keep = store.add_analysis(new(blobs, b"RIFF-new"))
    assert old is not None and keep is not None
    with store.engine.begin() as conn:
        conn.execute(
            update(ANALYSES)
            .where(ANALYSES.c.id == old.id)
            .values(created_at=utcnow() - timedelta(days=40))
        )
    for sha in (old.audio_sha256, keep.audio_sha256):  # written long ago
        os.utime(blobs.path(sha), (time.time() - 7200, time.time() - 7200))
    stray = blobs.tmp_dir / "x.part"
    stray.write_bytes(b"partial")
    os.utime(stray, (time.time() - 7200, time.time() - 7200))
    dry = purge(store, blobs, retention_days=30, dry_run=True)
    assert (dry.analyses, dry.blobs) == (1, 0)
    report = purge(store, blobs, retention_days=30)
    assert (report.analyses, report.blobs, report.parts) == (1, 1, 1)
    assert store.get_analysis(old.id) is None and not blobs.exists(old.audio_sha256)
    assert store.get_analysis(keep.id) is not None and blobs.exists(keep.audio_sha256)


def test_api_keys_are_stored_hashed_and_revocable(store: Store) -> None:
    record, key = create_key(store, name="call centre audit")
    assert key.startswith(f"rcd_{record.id}_")
    secret = key.split("_", 2)[2]
    with store.engine.connect() as conn:
        dump = " ".join(str(v) for row in conn.execute(text("SELECT * FROM api_keys")) for v in row)
    assert secret not in dump and record.secret_sha256 in dump
    assert verify_key(store, key) is not None
    assert verify_key(store, key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert verify_key(store, "rcd_nothing") is None
    assert store.revoke_api_key(record.id) and not store.revoke_api_key(record.id)
    assert verify_key(store, key) is None
    listed = store.list_api_keys()
    assert [k.id for k in listed] == [record.id] and listed[0].revoked_at is not None
    with pytest.raises(ValueError, match="name"):
        create_key(store, name="  ")


def test_rate_limiter_refills() -> None:
    limiter = RateLimiter(per_min=6000.0, burst=2)
    assert limiter.acquire("k") == 0 and limiter.acquire("k") == 0
    assert limiter.acquire("k") >= 1  # burst spent
    assert limiter.acquire("other") == 0  # per key
    time.sleep(0.03)  # 100 per second: refilled
    assert limiter.acquire("k") == 0


def test_blobs_are_content_addressed_and_paths_checked(blobs: BlobStore) -> None:
    sha, size = blobs.put(io.BytesIO(b"abc"))
    assert size == 3 and blobs.path(sha).read_bytes() == b"abc"
    assert blobs.path(sha).relative_to(blobs.root).parts == (sha[:2], sha[2:4], sha)
    assert blobs.put(io.BytesIO(b"abc")) == (sha, 3)  # idempotent
    assert list(blobs.iter_blobs()) == [sha]
    for bad in ("../../etc/passwd", "A" * 64, sha[:-1]):
        with pytest.raises(ValueError, match="sha256"):
            blobs.path(bad)
    assert not list(blobs.tmp_dir.iterdir())


def _wait(predicate: object, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_worker_pool_runs_jobs_and_records_failures(store: Store, blobs: BlobStore) -> None:
    good = wav_bytes(seed=1)
    ok = store.add_analysis(new(blobs, good))
    bad = store.add_analysis(new(blobs, b"plain text"))
    assert ok is not None and bad is not None
    pool = WorkerPool(store, blobs, FakeDetector, workers=2, poll_interval_s=0.02)
    pool.start()
    try:
        _wait(lambda: store.count_active() == 0)
    finally:
        pool.stop()
    done = store.get_analysis(ok.id)
    assert done is not None and done.status == "done" and done.verdict_json is not None
    import json

    assert json.loads(done.verdict_json) == make_verdict(good, name="call.wav").to_dict()
    failed = store.get_analysis(bad.id)
    assert failed is not None and failed.error_code == NotAudioError.code


def test_worker_pool_survives_a_crashing_detector(store: Store, blobs: BlobStore) -> None:
    class Boom:
        def detect(self, src: bytes, *, name: str | None = None) -> None:
            raise RuntimeError("bug")

    a = store.add_analysis(new(blobs))
    b = store.add_analysis(new(blobs, b"RIFF-2"))
    assert a is not None and b is not None
    pool = WorkerPool(store, blobs, Boom, poll_interval_s=0.02)  # type: ignore[arg-type]
    pool.start()
    try:
        _wait(lambda: store.count_active() == 0)
    finally:
        pool.stop()
    for job in (a, b):
        got = store.get_analysis(job.id)
        assert got is not None and (got.status, got.error_code) == ("failed", "internal_error")


def test_worker_pool_requeues_jobs_of_a_dead_worker(store: Store, blobs: BlobStore) -> None:
    a = store.add_analysis(new(blobs, wav_bytes(seed=2)))
    assert a is not None
    dead = store.claim_next(lease_s=0.2)  # claimed by an instance that then died
    assert dead is not None
    pool = WorkerPool(store, blobs, FakeDetector, lease_s=0.3, poll_interval_s=0.02)
    pool.start()
    try:
        _wait(lambda: (g := store.get_analysis(a.id)) is not None and g.status == "done")
    finally:
        pool.stop()
    got = store.get_analysis(a.id)
    assert got is not None and got.attempts == 2


def test_jobs_a_killed_process_left_running_are_requeued_at_start(
    store: Store, blobs: BlobStore
) -> None:
    """Issue 15: after ``kill -9`` the job runs again as soon as the service starts, not after
    its lease; a job claimed by a live process (or on another host) is left alone."""
    import socket
    import subprocess
    import sys

    ids = [a.id for s in (3, 4, 5) if (a := store.add_analysis(new(blobs, wav_bytes(seed=s))))]
    claim = (
        "import os, socket, sys\n"
        "from service.store.database import Store\n"
        "s = Store(sys.argv[1])\n"
        "s.claim_next(lease_s=3600, claimed_by=f'{socket.gethostname()}:{os.getpid()}')\n"
        "os._exit(0)\n"  # dies holding the claim, as under kill -9
    )
    subprocess.run([sys.executable, "-c", claim, store.url], check=True, timeout=60)
    host = socket.gethostname()
    alive = store.claim_next(lease_s=3600, claimed_by=f"{host}:{os.getppid()}")
    elsewhere = store.claim_next(lease_s=3600, claimed_by="another-host:1")
    assert alive is not None and elsewhere is not None
    pool = WorkerPool(store, blobs, FakeDetector, lease_s=3600, poll_interval_s=0.02)
    pool.start()
    try:
        _wait(lambda: (g := store.get_analysis(ids[0])) is not None and g.status == "done")
    finally:
        pool.stop()
    assert [store.get_analysis(i).status for i in ids[1:]] == ["running", "running"]  # type: ignore[union-attr]


def test_history_lists_own_analyses_newest_first_filtered_and_paged(
    store: Store, blobs: BlobStore
) -> None:
    made = []
    for i, label in enumerate(
        ["electronic_sales_robot", "human_sales_pitch", "electronic_sales_robot", None]
    ):
        a = store.add_analysis(new(blobs, wav_bytes(seed=10 + i), owner="k1"))
        assert a is not None
        made.append(a.id)
        if label is not None:
            job = store.claim_next(lease_s=30)
            assert job is not None and job.id == a.id
            store.finish(job.id, job.claim_token or "", verdict_json="{}", label=label)
    store.add_analysis(new(blobs, owner="k2"))
    items, total = store.list_analyses("k1")
    assert total == 4 and [a.id for a in items] == made[::-1]
    robots, n = store.list_analyses("k1", label="electronic_sales_robot")
    assert n == 2 and [a.id for a in robots] == [made[2], made[0]]
    queued, n = store.list_analyses("k1", status="queued")
    assert n == 1 and queued[0].id == made[3]
    page, n = store.list_analyses("k1", limit=2, offset=2)
    assert n == 4 and [a.id for a in page] == made[1::-1]
    assert store.list_analyses("nobody") == ([], 0)


def test_call_details_change_and_a_new_language_reruns(store: Store, blobs: BlobStore) -> None:
    a = store.add_analysis(new(blobs, owner="k1"))
    assert a is not None
    job = store.claim_next(lease_s=30)
    assert job is not None
    store.finish(job.id, job.claim_token or "", verdict_json="{}", label="human_sales_pitch")
    changed = store.update_metadata(
        a.id, owner="k1", changes={"caller_number": "+86 400 123 4567", "call_time": None}
    )
    assert changed is not None and changed.caller_number == "+86 400 123 4567"
    assert changed.status == "done"
    assert store.update_metadata(a.id, owner="k2", changes={"caller_number": "1"}) is None
    rerun = store.update_metadata(a.id, owner="k1", changes={"language_hint": "en"}, rerun=True)
    assert rerun is not None and rerun.status == "queued" and rerun.verdict_json is None
    assert rerun.label is None and rerun.language_hint == "en"
    with pytest.raises(ValueError, match="not call details"):
        store.update_metadata(a.id, owner="k1", changes={"owner": "k2"})
