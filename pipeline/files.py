"""Atomic file writes: the one helper every package uses (service -> models -> pipeline).

A reader (or a re-run after a crash) sees the old file or the complete new one, never a partial
one: the content goes to a temporary file in the same directory, is fsync'd, then ``os.replace``d
onto the target, and the directory entry is fsync'd too.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DEFAULT_MODE = 0o666  # before the umask, as open() would create the file
DEFAULT_CACHE_DIR = Path("~/.cache/robocall")


def cache_dir() -> Path:
    """``$ROBOCALL_CACHE_DIR`` or ``~/.cache/robocall`` (not created here)."""
    return Path(os.environ.get("ROBOCALL_CACHE_DIR") or DEFAULT_CACHE_DIR).expanduser()


@contextmanager
def atomic_path(path: Path, *, mode: int = DEFAULT_MODE, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a fresh temporary path beside ``path``; on success it replaces ``path`` atomically.

    Write the content to the yielded path (any writer: ``np.savez``, ``soundfile.write``, ...). On
    an exception the temporary file is removed and ``path`` is left as it was.

    Parameters
    ----------
    path : Path
        Final file; its directory is created if missing.
    mode : int
        Permission bits of the new file before the umask (``0o600`` for secrets).
    suffix : str
        End of the temporary name (``".tmp.npz"`` for writers that append an extension).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{suffix}")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def write_atomic(path: Path, data: bytes, *, mode: int = DEFAULT_MODE) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path, mode=mode) as tmp:
        tmp.write_bytes(data)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # not every platform opens directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
