"""API keys for the HTTP service (stored hashed) and the per-key rate limit.

A key reads ``rcd_<id>_<secret>``: the id is public (listed, used to revoke, owns analyses), the
secret is shown once at creation and only its sha256 is stored. The secret is 256 random bits, so
a plain hash is as strong as a slow password hash here and keeps each request cheap.

CLI: ``robocall apikeys create --name NAME | list | revoke ID`` (``robocall keys`` is a separate
group, for the Ed25519 signing keys of evidence packs).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import math
import re
import secrets
import sys
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from service.store import ApiKey, Store, utcnow

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


# -- CLI ----------------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "apikeys",
        help="manage API keys of the HTTP service (create, list, revoke)",
        description="API keys for `robocall serve` (stored hashed in the service database; "
        "ROBOCALL_DB_URL or ROBOCALL_DATA_DIR say where).",
    )
    parser.add_argument("--db-url", help="SQLAlchemy URL (default: from ROBOCALL_* settings)")
    sub = parser.add_subparsers(dest="apikeys_command", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", required=True, help="who or what uses the key")
    create.add_argument("--json", action="store_true", help="print JSON")
    create.set_defaults(func=_cmd_create)
    listing = sub.add_parser("list", help="list keys (ids and names, never secrets)")
    listing.add_argument("--json", action="store_true", help="print JSON lines")
    listing.set_defaults(func=_cmd_list)
    revoke = sub.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("key_id", help="the id shown by `list` (12 hex digits)")
    revoke.set_defaults(func=_cmd_revoke)


def _open_store(args: argparse.Namespace) -> Store:
    from service.settings import get_settings

    store = Store(args.db_url or get_settings().resolved_db_url)
    store.migrate()
    return store


def _iso(value: object) -> str | None:
    return None if value is None else value.isoformat()  # type: ignore[attr-defined]


def _cmd_create(args: argparse.Namespace) -> int:
    store = _open_store(args)
    try:
        record, key = create_key(store, name=args.name)
    except ValueError as exc:
        sys.stderr.write(f"robocall apikeys: {exc}\n")
        return 2
    finally:
        store.close()
    if args.json:
        sys.stdout.write(json.dumps({"id": record.id, "name": record.name, "key": key}) + "\n")
    else:
        sys.stdout.write(f"{key}\n")
        sys.stderr.write(f"created key {record.id} ({record.name}); it is shown only once\n")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    store = _open_store(args)
    try:
        keys = store.list_api_keys()
    finally:
        store.close()
    for k in keys:
        row = {
            "id": k.id,
            "name": k.name,
            "created_at": _iso(k.created_at),
            "revoked_at": _iso(k.revoked_at),
            "last_used_at": _iso(k.last_used_at),
        }
        if args.json:
            sys.stdout.write(json.dumps(row) + "\n")
        else:
            state = "revoked" if k.revoked_at else "active"
            sys.stdout.write(f"{k.id}\t{state}\t{row['created_at']}\t{k.name}\n")
    return 0


def _cmd_revoke(args: argparse.Namespace) -> int:
    store = _open_store(args)
    try:
        ok = store.revoke_api_key(args.key_id)
    finally:
        store.close()
    if not ok:
        sys.stderr.write(f"robocall apikeys: no active key with id {args.key_id!r}\n")
        return 1
    sys.stderr.write(f"revoked key {args.key_id}\n")
    return 0
