"""``robocall serve`` (HTTP API + web page under uvicorn) and ``robocall purge`` (retention)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from service.settings import Settings, get_settings, is_loopback

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = subparsers.add_parser(
        "serve",
        help="run the HTTP API and the web page",
        description="Start the service (models load once at start-up). Settings come from "
        "ROBOCALL_* environment variables (see service/settings.py); flags override them.",
    )
    serve.add_argument("--host", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.add_argument(
        "--workers", type=int, help="analyses run at the same time (threads sharing one model)"
    )
    serve.add_argument(
        "--auth",
        choices=("auto", "keys", "local"),
        default="auto",
        help="keys: every API call needs a key (`robocall apikeys create`); local: single-user "
        "mode without keys, loopback hosts only; auto (default): local on a loopback host, "
        "keys otherwise",
    )
    serve.add_argument(
        "--ssl-certfile", type=Path, help="TLS certificate (PEM) to serve HTTPS directly"
    )
    serve.add_argument("--ssl-keyfile", type=Path, help="private key (PEM) of --ssl-certfile")
    _store_args(serve)
    serve.add_argument("--config", type=Path, help="robocall.toml with detector settings")
    serve.add_argument("--queue-size", type=int, help="queued + running analyses before 503")
    serve.add_argument(
        "--purge", action="store_true", help="purge expired results and audio, then exit"
    )
    serve.set_defaults(func=_cmd_serve)

    purge = subparsers.add_parser(
        "purge",
        help="delete results and audio older than the retention period",
        description="Delete analyses older than --retention-days (ROBOCALL_RETENTION_DAYS, "
        "default 30) and every audio file no analysis refers to.",
    )
    _store_args(purge)
    purge.add_argument("--retention-days", type=float, help="keep this many days")
    purge.add_argument("--dry-run", action="store_true", help="only count what would go")
    purge.set_defaults(func=_cmd_purge)


def _store_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, help="audio and SQLite directory")
    parser.add_argument("--db-url", help="SQLAlchemy URL (e.g. postgresql+psycopg://...)")


def _settings(args: argparse.Namespace) -> Settings:
    base = get_settings()
    changes: dict[str, object] = {}
    for name in ("host", "port", "workers", "data_dir", "db_url", "queue_size"):
        value = getattr(args, name, None)
        if value is not None:
            changes[name] = value
    if getattr(args, "config", None) is not None:
        changes["config_path"] = args.config
    if getattr(args, "retention_days", None) is not None:
        changes["retention_days"] = args.retention_days
    auth = getattr(args, "auth", None)
    host = str(changes.get("host", base.host))
    if auth == "local" or (auth == "auto" and is_loopback(host)):
        changes["local_mode"] = True
    elif auth == "keys":
        changes["local_mode"] = False
    return base.replace(**changes)


def _cmd_serve(args: argparse.Namespace) -> int:
    try:
        settings = _settings(args)
    except ValueError as exc:
        sys.stderr.write(f"robocall serve: {exc}\n")
        return 2
    if args.purge:
        return _purge(settings, dry_run=False)
    problem = _tls_problem(args.ssl_certfile, args.ssl_keyfile)
    if problem:
        sys.stderr.write(f"robocall serve: {problem}\n")
        return 2
    import uvicorn

    from service.http.app import create_app

    if settings.local_mode:
        log.warning("local single-user mode: no API keys, listening on %s only", settings.host)
    if not is_loopback(settings.host) and args.ssl_certfile is None:
        log.warning(
            "serving plain HTTP on %s: API keys and recordings cross the network unencrypted; "
            "give --ssl-certfile/--ssl-keyfile or put a TLS reverse proxy in front "
            "(docs/service.md, Running the service)",
            settings.host,
        )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="info",
        lifespan="on",
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s) + 5,
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
    )
    return 0


def _tls_problem(certfile: Path | None, keyfile: Path | None) -> str | None:
    """Why the TLS flags cannot work, or None (both given and readable, or neither)."""
    if (certfile is None) != (keyfile is None):
        return "--ssl-certfile and --ssl-keyfile go together"
    for flag, path in (("--ssl-certfile", certfile), ("--ssl-keyfile", keyfile)):
        if path is not None and not path.is_file():
            return f"{flag}: no such file: {path}"
    return None


def _cmd_purge(args: argparse.Namespace) -> int:
    try:
        settings = _settings(args)
    except ValueError as exc:
        sys.stderr.write(f"robocall purge: {exc}\n")
        return 2
    return _purge(settings, dry_run=args.dry_run)


def _purge(settings: Settings, *, dry_run: bool) -> int:
    from service.store.blobs import BlobStore
    from service.store.database import Store
    from service.store.retention import purge

    store = Store(settings.resolved_db_url)
    try:
        store.migrate()
        report = purge(
            store,
            BlobStore(settings.audio_dir),
            retention_days=settings.retention_days,
            dry_run=dry_run,
        )
    finally:
        store.close()
    result = {
        "dry_run": dry_run,
        "retention_days": settings.retention_days,
        "analyses": report.analyses,
        "audio_files": report.blobs,
        "partial_uploads": report.parts,
    }
    sys.stdout.write(json.dumps(result) + "\n")
    return 0
