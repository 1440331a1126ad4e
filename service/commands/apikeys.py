"""``robocall apikeys create --name NAME | list | revoke ID``: API keys of the HTTP service.

``robocall keys`` is a separate group, for the Ed25519 signing keys of evidence packs.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.store.database import Store


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
    # Imported here: SQLAlchemy takes ~0.4 s to import, which every other command (robocall
    # analyze on one call above all, issue 17) would pay for nothing.
    from service.settings import get_settings
    from service.store.database import Store

    store = Store(args.db_url or get_settings().resolved_db_url)
    store.migrate()
    return store


def _iso(value: object) -> str | None:
    return None if value is None else value.isoformat()  # type: ignore[attr-defined]


def _cmd_create(args: argparse.Namespace) -> int:
    from service.http.apikeys import create_key

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
