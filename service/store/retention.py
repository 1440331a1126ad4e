"""Retention: delete analyses past their retention period and audio nobody references."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select

from service.store.blobs import ORPHAN_GRACE_S, BlobStore
from service.store.database import ANALYSES, Store, utcnow

log = logging.getLogger(__name__)


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
