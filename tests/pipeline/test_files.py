"""pipeline.files: the one atomic write."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from pipeline.files import atomic_path, write_atomic


def test_write_atomic_replaces_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.json"
    write_atomic(target, b"old")
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in target.parent.iterdir()] == ["out.json"]


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("writer died")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_mode_and_suffix(tmp_path: Path) -> None:
    secret = tmp_path / "key.pem"
    write_atomic(secret, b"k", mode=0o600)
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    with atomic_path(tmp_path / "a.npz", suffix=".tmp.npz") as tmp:
        assert tmp.name.endswith(".tmp.npz") and tmp.parent == tmp_path
        tmp.write_bytes(b"x")
    assert (tmp_path / "a.npz").read_bytes() == b"x"
