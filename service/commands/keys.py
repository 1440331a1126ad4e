"""``robocall keys create | show | export-public``: the Ed25519 key that signs evidence packs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from service.evidence.signing import (
    PRIVATE_KEY_FILE,
    SigningKeyError,
    create_signing_key,
    fingerprint,
    key_dir,
    load_signing_key,
    public_pem,
    readable_fingerprint,
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "keys",
        help="manage the signing key of evidence packs",
        description="Manage the Ed25519 key that signs evidence packs (stored in "
        "$ROBOCALL_KEY_DIR, default ~/.config/robocall, readable by you only).",
    )
    keys_sub = parser.add_subparsers(dest="keys_command", metavar="KEYS_COMMAND", required=True)
    create = keys_sub.add_parser("create", help="generate the signing key")
    create.add_argument("--force", action="store_true", help="replace an existing key")
    create.set_defaults(func=_run_create)
    show = keys_sub.add_parser(
        "show", help="print where the key is, its fingerprint and public key"
    )
    show.set_defaults(func=_run_show)
    export = keys_sub.add_parser("export-public", help="write the public key (PEM)")
    export.add_argument("--out", type=Path, help="file to write (default: stdout)")
    export.set_defaults(func=_run_export)


def _out(line: str = "") -> None:
    sys.stdout.write(line + "\n")


def _err(line: str) -> None:
    sys.stderr.write(f"robocall keys: {line}\n")


def _run_create(args: argparse.Namespace) -> int:
    try:
        path = create_signing_key(force=args.force)
    except FileExistsError as exc:
        _err(str(exc))
        return 1
    _out(f"Created signing key {path} (readable by you only).")
    return _run_show(args)


def _run_show(args: argparse.Namespace) -> int:
    try:
        key = load_signing_key().public_key()
    except SigningKeyError as exc:
        _err(exc.message)
        return 1
    _out(f"Private key:  {key_dir() / PRIVATE_KEY_FILE}")
    _out(f"Fingerprint:  SHA256 {readable_fingerprint(fingerprint(key))}")
    _out("Public key (share it, or publish the fingerprint, so others can check your packs):")
    _out(public_pem(key).decode().rstrip())
    return 0


def _run_export(args: argparse.Namespace) -> int:
    try:
        pem = public_pem(load_signing_key().public_key())
    except SigningKeyError as exc:
        _err(exc.message)
        return 1
    if args.out is None:
        sys.stdout.write(pem.decode())
    else:
        args.out.write_bytes(pem)
        _err(f"public key written to {args.out}")
    return 0
