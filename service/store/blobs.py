"""Audio blobs on disk, content-addressed: ``<data_dir>/audio/ab/cd/<sha256>``.

The path is derived from the hash we computed, never from anything the client sent.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pipeline.audio import AUDIO_FORMATS
from pipeline.files import atomic_path
from service.store.database import utcnow

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_COPY_CHUNK_BYTES = 1024 * 1024


AUDIO_MIME = {fmt: mime for fmt, (_, mime) in AUDIO_FORMATS.items()}  # stored format -> MIME
ORPHAN_GRACE_S = 600.0  # purge leaves unreferenced blobs younger than this (upload in flight)


@dataclass(frozen=True, slots=True)
class StagedBlob:
    tmp_path: Path
    sha256: str
    size_bytes: int


class BlobStore:
    """Content-addressed audio files under ``root``; names are sha256 hex, nothing else."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp_dir = root / "tmp"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        if not SHA256_RE.match(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256[:80]!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def stage(self, src: IO[bytes]) -> StagedBlob:
        """Copy a stream to a temporary file in the store, hashing it on the way."""
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp_dir, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := src.read(_COPY_CHUNK_BYTES):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return StagedBlob(Path(tmp_name), digest.hexdigest(), size)

    def commit(self, staged: StagedBlob) -> Path:
        """Move a staged file to its content address (atomic; same bytes if it existed)."""
        final = self.path(staged.sha256)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged.tmp_path, final)
        return final

    def put(self, src: IO[bytes]) -> tuple[str, int]:
        """Stage and commit in one go; returns (sha256 hex, size in bytes)."""
        staged = self.stage(src)
        self.commit(staged)
        return staged.sha256, staged.size_bytes

    def wav_path(self, sha256: str) -> Path:
        """Where a decoded 16 kHz WAV copy (for browsers that cannot play the original) lives."""
        return self.root / "wav" / sha256[:2] / f"{self.path(sha256).name}.wav"

    def write_wav(self, sha256: str, write: Callable[[Path], None]) -> Path:
        """Create the WAV copy with ``write(tmp_path)`` (atomic); returns its path."""
        final = self.wav_path(sha256)
        with atomic_path(final) as tmp:
            write(tmp)
        return final

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def read(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def delete(self, sha256: str) -> bool:
        """Delete a blob and its WAV copy; False when the blob was already gone."""
        self.wav_path(sha256).unlink(missing_ok=True)
        try:
            self.path(sha256).unlink()
        except FileNotFoundError:
            return False
        return True

    def age_s(self, sha256: str) -> float:
        """Seconds since the blob was written (0 when it is gone)."""
        try:
            return utcnow().timestamp() - self.path(sha256).stat().st_mtime
        except FileNotFoundError:
            return 0.0

    def iter_blobs(self) -> Iterator[str]:
        for path in self.root.glob("??/??/*"):
            if SHA256_RE.match(path.name):
                yield path.name

    def iter_wav_copies(self) -> Iterator[str]:
        for path in self.root.glob("wav/??/*.wav"):
            if SHA256_RE.match(path.stem):
                yield path.stem

    def remove_stale_parts(self, *, older_than_s: float = 3600.0) -> int:
        """Delete upload leftovers (``tmp/*.part``) older than ``older_than_s``."""
        cutoff = utcnow().timestamp() - older_than_s
        removed = 0
        for part in self.tmp_dir.glob("*.part"):
            try:
                if part.stat().st_mtime < cutoff:
                    part.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed
