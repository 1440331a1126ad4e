"""Deployment settings of the HTTP service, read from the environment (never at import).

Only deployment concerns live here (where models, data and the database are, limits of the
service); what the detector does is configured by ``robocall.toml`` (``ROBOCALL_CONFIG``), see
``pipeline/config.py``.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATA_DIR = Path("~/.local/share/robocall")


def _check(name: str, ok: bool, detail: str) -> None:
    if not ok:
        raise ValueError(f"{name} {detail}")


@dataclass(frozen=True, slots=True)
class Settings:
    model_dir: Path | None = None  # ROBOCALL_MODEL_DIR: where trained heads live (None = packaged)
    device: str = "auto"  # ROBOCALL_DEVICE: "auto" | "cpu" | "cuda"
    config_path: Path | None = None  # ROBOCALL_CONFIG: robocall.toml (None = defaults)
    data_dir: Path = DEFAULT_DATA_DIR  # ROBOCALL_DATA_DIR: audio blobs and the SQLite file
    db_url: str | None = None  # ROBOCALL_DB_URL: SQLAlchemy URL; None = SQLite in data_dir
    host: str = "127.0.0.1"  # ROBOCALL_HOST: interface the server binds
    port: int = 8000  # ROBOCALL_PORT
    workers: int = 1  # ROBOCALL_WORKERS: analyses run concurrently (threads sharing one model)
    queue_size: int = 32  # ROBOCALL_QUEUE_SIZE: queued + running analyses before 503
    max_upload_bytes: int | None = None  # ROBOCALL_MAX_UPLOAD_BYTES; None = AudioLimits.max_bytes
    local_mode: bool = False  # ROBOCALL_LOCAL_MODE: no API keys (single user, loopback only)
    rate_limit_per_min: float = 30.0  # ROBOCALL_RATE_LIMIT_PER_MIN: uploads per key per minute
    rate_limit_burst: int = 10  # ROBOCALL_RATE_LIMIT_BURST: uploads a key may send at once
    read_rate_limit_per_min: float = 600.0  # ROBOCALL_READ_RATE_LIMIT_PER_MIN: other requests
    retention_days: float = 30.0  # ROBOCALL_RETENTION_DAYS: results and audio kept this long
    cors_origins: tuple[str, ...] = ()  # ROBOCALL_CORS_ORIGINS (comma-separated); () = CORS off
    wait_max_bytes: int = 8 * 1024 * 1024  # ?wait=true waits only for uploads up to this size
    wait_timeout_s: float = 60.0  # ... and at most this long before answering 202
    job_lease_s: float = 60.0  # a running job whose worker stopped renewing is requeued after this
    max_attempts: int = 3  # a job that killed its worker this many times is failed, not retried
    poll_interval_s: float = 1.0  # workers look for jobs queued by other instances this often
    shutdown_grace_s: float = 5.0  # on stop, wait this long for running analyses to finish

    def __post_init__(self) -> None:
        _check("workers", 1 <= self.workers <= 64, f"must be in [1, 64], got {self.workers}")
        _check(
            "queue_size",
            1 <= self.queue_size <= 100_000,
            f"must be in [1, 100000], got {self.queue_size}",
        )
        if self.max_upload_bytes is not None:
            _check(
                "max_upload_bytes",
                self.max_upload_bytes > 0,
                f"must be > 0, got {self.max_upload_bytes}",
            )
        _check("port", 0 <= self.port <= 65535, f"must be in [0, 65535], got {self.port}")
        _check(
            "rate_limit_per_min",
            self.rate_limit_per_min > 0,
            f"must be > 0, got {self.rate_limit_per_min}",
        )
        _check(
            "rate_limit_burst",
            self.rate_limit_burst >= 1,
            f"must be >= 1, got {self.rate_limit_burst}",
        )
        _check(
            "read_rate_limit_per_min",
            self.read_rate_limit_per_min > 0,
            f"must be > 0, got {self.read_rate_limit_per_min}",
        )
        _check("retention_days", self.retention_days > 0, f"must be > 0, got {self.retention_days}")
        _check("job_lease_s", self.job_lease_s > 0, f"must be > 0, got {self.job_lease_s}")
        _check("max_attempts", self.max_attempts >= 1, f"must be >= 1, got {self.max_attempts}")
        _check(
            "poll_interval_s", self.poll_interval_s > 0, f"must be > 0, got {self.poll_interval_s}"
        )
        _check(
            "wait_timeout_s", self.wait_timeout_s >= 0, f"must be >= 0, got {self.wait_timeout_s}"
        )
        if self.local_mode and not is_loopback(self.host):
            raise ValueError(
                f"local_mode (no API keys) is only allowed on a loopback host, got {self.host!r}"
            )

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser()

    @property
    def resolved_db_url(self) -> str:
        """The SQLAlchemy URL: ``ROBOCALL_DB_URL`` or a SQLite file in the data directory."""
        if self.db_url:
            return self.db_url
        return f"sqlite:///{self.resolved_data_dir / 'robocall.db'}"

    @property
    def audio_dir(self) -> Path:
        return self.resolved_data_dir / "audio"

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and any address in 127.0.0.0/8 or ``::1``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


_BOOL = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
}


def settings_from_env(env: Mapping[str, str]) -> Settings:
    """Build :class:`Settings` from ``ROBOCALL_*`` variables; unset ones keep their defaults.

    Raises
    ------
    ValueError
        A variable that does not parse or is out of range (the message names it).
    """
    values: dict[str, object] = {}
    for field in dataclasses.fields(Settings):
        var = f"ROBOCALL_{field.name.upper()}"
        if field.name == "config_path":
            var = "ROBOCALL_CONFIG"
        raw = env.get(var)
        if raw is None or raw == "":
            continue
        try:
            values[field.name] = _parse(field.name, raw)
        except ValueError as exc:
            raise ValueError(f"{var}={raw!r}: {exc}") from exc
    return Settings(**values)  # type: ignore[arg-type]


def _parse(name: str, raw: str) -> object:
    default = getattr(Settings(), name)
    if name in ("model_dir", "config_path", "data_dir"):
        return Path(raw)
    if name == "cors_origins":
        return tuple(o.strip() for o in raw.split(",") if o.strip())
    if isinstance(default, bool):
        if raw.lower() not in _BOOL:
            raise ValueError("expected a boolean (1/0, true/false)")
        return _BOOL[raw.lower()]
    if name in ("max_upload_bytes",) or isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    return raw


@functools.cache
def get_settings() -> Settings:
    """Settings from the process environment, read once (call ``cache_clear()`` in tests)."""
    return settings_from_env(os.environ)
