"""The Ed25519 key that signs evidence packs (``robocall keys``: :mod:`service.commands.keys`).

The private key lives in ``$ROBOCALL_KEY_DIR`` (default ``~/.config/robocall``) as PKCS#8 PEM,
mode 0600, in a 0700 directory. Every pack carries the public key and its fingerprint; a recipient
who wants to know *who* signed compares that fingerprint with one published out of band
(``robocall keys show``).

Other key kinds join the same command group: a module listed in ``KEYS_SUBCOMMAND_MODULES``
exposes ``register_keys(keys_subparsers)`` and adds its own ``robocall keys <name>`` parsers.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pipeline.errors import RobocallError
from pipeline.files import write_atomic

PRIVATE_KEY_FILE = "signing_key.pem"
PUBLIC_KEY_FILE = "signing_key.pub.pem"
# Modules adding more `robocall keys` subcommands (e.g. API keys for the HTTP service).
KEYS_SUBCOMMAND_MODULES: tuple[str, ...] = ()


class SigningKeyError(RobocallError):
    """No usable signing key: missing, unreadable, or readable by other users."""

    code = "signing_key"
    status = 500


def key_dir() -> Path:
    """``$ROBOCALL_KEY_DIR``, else ``$XDG_CONFIG_HOME/robocall``, else ``~/.config/robocall``."""
    if os.environ.get("ROBOCALL_KEY_DIR"):
        return Path(os.environ["ROBOCALL_KEY_DIR"]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "robocall"


def create_signing_key(directory: Path | None = None, *, force: bool = False) -> Path:
    """Generate a new Ed25519 key; returns the private key's path.

    Raises
    ------
    FileExistsError
        A key is already there and ``force`` is False.
    """
    directory = directory or key_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / PRIVATE_KEY_FILE
    if path.exists() and not force:
        raise FileExistsError(f"{path} already exists (use --force to replace it)")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_atomic(path, pem, mode=0o600)
    (directory / PUBLIC_KEY_FILE).write_bytes(public_pem(key.public_key()))
    return path


def load_signing_key(directory: Path | None = None) -> Ed25519PrivateKey:
    """Read the private key.

    Raises
    ------
    SigningKeyError
        Missing, not an Ed25519 PEM key, or readable by group/others (POSIX).
    """
    path = (directory or key_dir()) / PRIVATE_KEY_FILE
    if not path.is_file():
        raise SigningKeyError(f"no signing key at {path}: run 'robocall keys create'")
    if os.name == "posix" and path.stat().st_mode & 0o077:
        raise SigningKeyError(
            f"{path} is readable by other users (mode {path.stat().st_mode & 0o777:o}); "
            f"run: chmod 600 {path}"
        )
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"{path} is not a readable PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} is not an Ed25519 key")
    return key


def load_or_create_signing_key(directory: Path | None = None) -> tuple[Ed25519PrivateKey, bool]:
    """The signing key, created on first use; the flag says whether it was just created."""
    path = (directory or key_dir()) / PRIVATE_KEY_FILE
    created = not path.exists()
    if created:
        create_signing_key(directory)
    return load_signing_key(directory), created


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_pem(data: bytes) -> Ed25519PublicKey:
    """Parse a PEM public key; raises ValueError unless it is Ed25519."""
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def fingerprint(key: Ed25519PublicKey) -> str:
    """sha256 of the 32 raw public key bytes, hex (64 characters)."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def readable_fingerprint(fp: str) -> str:
    """``"ab12cd34..."`` -> ``"ab12 cd34 ..."`` for reading aloud or comparing by eye."""
    return " ".join(fp[i : i + 4] for i in range(0, len(fp), 4))


def verify_signature(key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True
