"""API keys for the HTTP service (stored hashed) and the per-key rate limit.

A key reads ``rcd_<id>_<secret>``: the id is public (listed, used to revoke, owns analyses), the
secret is shown once at creation and only its sha256 is stored. The secret is 256 random bits, so
a plain hash is as strong as a slow password hash here and keeps each request cheap.

CLI (:mod:`service.commands.apikeys`): ``robocall apikeys create --name NAME | list | revoke ID``
(``robocall keys`` is a separate group, for the Ed25519 signing keys of evidence packs).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from service.store.database import ApiKey, Store, utcnow

KEY_PREFIX = "rcd"
_KEY_RE = re.compile(r"^rcd_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})$")
_TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is advisory; avoid a write per request


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(store: Store, *, name: str) -> tuple[ApiKey, str]:
    """Create a key; returns its record and the full key (shown once, never stored)."""
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise ValueError(f"name must have 1 to 100 characters, got {len(name)}")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    record = store.add_api_key(key_id, name=name, secret_sha256=_hash(secret))
    return record, f"{KEY_PREFIX}_{key_id}_{secret}"


def verify_key(store: Store, presented: str) -> ApiKey | None:
    """The active key matching ``presented``, or None (unknown, malformed, wrong or revoked)."""
    match = _KEY_RE.match(presented.strip())
    if match is None:
        return None
    key_id, secret = match.groups()
    record = store.get_api_key(key_id)
    if record is None or record.revoked_at is not None:
        return None
    if not hmac.compare_digest(record.secret_sha256, _hash(secret)):
        return None
    if record.last_used_at is None or utcnow() - record.last_used_at > _TOUCH_EVERY:
        store.touch_api_key(key_id)
    return record


class RateLimiter:
    """Token buckets per key, in memory (each instance limits on its own).

    Parameters
    ----------
    per_min : float
        Sustained requests per minute per key.
    burst : int
        Requests a key may send at once after being idle.
    """

    def __init__(self, *, per_min: float, burst: int) -> None:
        self.rate_per_s = per_min / 60.0
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last time)
        self._lock = threading.Lock()

    def acquire(self, key: str) -> float:
        """Take one token; returns 0 when allowed, else the seconds to wait before retrying."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate_per_s)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > 10_000:  # forget idle keys; a full bucket is the default
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 3600}
            return max(1.0, math.ceil((1.0 - tokens) / self.rate_per_s))


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an API key id, or ``local`` in local single-user mode."""

    owner: str
