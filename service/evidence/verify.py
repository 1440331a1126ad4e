"""``robocall verify``: check an evidence pack (:mod:`service.evidence.pack` builds one).

Beyond every file's hash and the Ed25519 signature over the manifest, a check says what the
signature proves (integrity since signing, by whoever holds the key in the pack), pins the
signer's key when asked (``--public-key`` / ``--fingerprint``), checks that the pack's files
agree with each other (:mod:`service.evidence.consistency`) and checks a stored RFC 3161
timestamp reply (:mod:`service.evidence.timestamp`). ``robocall stamp`` adds that reply.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from service.evidence import signing
from service.evidence.consistency import consistency_problems
from service.evidence.timestamp import (
    TimestampCheck,
    TimestampRequest,
    check_timestamp_reply,
    parse_timestamp_request,
)

MANIFEST, SIGNATURE, PUBLIC_KEY, TIMESTAMP_REQUEST, TIMESTAMP_REPLY = (
    "manifest.json",
    "manifest.sig",
    "public_key.pem",
    "manifest.tsq",
    "manifest.tsr",
)
# made from the manifest (or, the reply, added later by `robocall stamp`)
UNLISTED = (MANIFEST, SIGNATURE, PUBLIC_KEY, TIMESTAMP_REQUEST, TIMESTAMP_REPLY)
# What the signature proves, said wherever a pack is checked (issue 14)
KEY_IN_PACK_NOTE = (
    "the pack carries its own signing key: the signature proves the files are unchanged since "
    "whoever holds that key signed them, not who that is; compare the key fingerprint with "
    "one the signer gave you, or pin it (--public-key / --fingerprint)"
)


@dataclass(frozen=True, slots=True)
class Check:
    path: str  # file in the pack ("" for the archive itself)
    ok: bool
    message: str


@dataclass(frozen=True, slots=True)
class VerifyReport:
    checks: tuple[Check, ...]
    fingerprint: str  # of the public key in the pack, hex; "" if unreadable
    timestamp: TimestampCheck | None = None  # the stored manifest.tsr, checked; None if absent

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def problems(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.ok)


def verify_pack(
    data: bytes,
    *,
    trusted_public_key: bytes | None = None,
    trusted_fingerprint: str | None = None,
    tsa_roots: tuple[bytes, ...] = (),
) -> VerifyReport:
    """Check every hash, the signature, the files' agreement, the timestamp and the archive.

    Parameters
    ----------
    data : bytes
        The pack (zip). Directory entries (``zip -r`` writes them) are ignored.
    trusted_public_key : bytes, optional
        PEM of the key the pack must be signed with.
    trusted_fingerprint : str, optional
        The same pinned by its SHA-256 fingerprint (hex; spaces and colons are ignored).
        Without either, the key in the pack is used: that proves integrity since signing by
        whoever holds that key, not who it is (anyone can sign with a key of their own).
    tsa_roots : tuple of bytes
        CA certificates (PEM/DER) a stored timestamp reply (``manifest.tsr``) must chain to.

    Raises
    ------
    ValueError
        ``trusted_public_key`` is not an Ed25519 PEM key or ``trusted_fingerprint`` no sha256.
    """
    pinned = _pinned_fingerprint(trusted_public_key, trusted_fingerprint)
    checks: list[Check] = []
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as exc:
        return VerifyReport((Check("", False, f"not a readable zip archive: {exc}"),), "")
    infos = [i for i in archive.infolist() if not (i.is_dir() and i.file_size == 0)]
    names = [i.filename for i in infos]
    for name in sorted({n for n in names if names.count(n) > 1}):
        checks.append(Check(name, False, "appears more than once in the archive"))
    contents: dict[str, bytes] = {}
    for name in dict.fromkeys(names):
        try:
            contents[name] = archive.read(name)
        except (zipfile.BadZipFile, zlib.error, OSError, ValueError) as exc:
            checks.append(Check(name, False, f"damaged inside the archive ({exc})"))
    manifest_bytes = contents.get(MANIFEST)
    if manifest_bytes is None:
        checks.append(Check(MANIFEST, False, "missing or unreadable: nothing can be checked"))
        return VerifyReport(tuple(checks), "")
    fingerprint = ""
    public = None
    try:
        public = signing.load_public_pem(contents[PUBLIC_KEY])
        fingerprint = signing.fingerprint(public)
    except (KeyError, ValueError) as exc:
        checks.append(Check(PUBLIC_KEY, False, f"missing or not an Ed25519 public key ({exc})"))
    if public is not None and pinned is None:
        checks.append(Check(PUBLIC_KEY, True, KEY_IN_PACK_NOTE))
    if public is not None and pinned is not None:
        checks.append(
            Check(
                PUBLIC_KEY,
                pinned == fingerprint,
                "is the key you pinned"
                if pinned == fingerprint
                else f"is NOT the key you pinned (pack {fingerprint[:16]}…, "
                f"yours {pinned[:16]}…): signed by someone else, or re-signed after a change",
            )
        )
    if public is not None:
        signature = contents.get(SIGNATURE, b"")
        good = signing.verify_signature(public, signature, manifest_bytes)
        checks.append(
            Check(
                SIGNATURE,
                good,
                "Ed25519 signature over manifest.json is valid"
                if good
                else "does NOT match manifest.json: the manifest or the "
                "signature was changed after signing",
            )
        )
    try:
        manifest = json.loads(manifest_bytes)
        entries = {e["path"]: e for e in manifest["files"]}
    except (ValueError, KeyError, TypeError) as exc:
        checks.append(Check(MANIFEST, False, f"not a valid manifest ({exc})"))
        return VerifyReport(tuple(checks), fingerprint)
    checks.append(_check_manifest_fields(manifest, fingerprint))
    for path, entry in entries.items():
        checks.append(_check_file(path, entry, contents, names))
    for name in contents:
        if name not in entries and name not in UNLISTED:
            checks.append(Check(name, False, "is not listed in the manifest (added after signing)"))
    version = str(manifest.get("schema_version", ""))
    for path, found in consistency_problems(contents, entries, schema_version=version).items():
        checks.extend(Check(path, False, f"INCONSISTENT: {problem}") for problem in found)
        if not found:
            checks.append(Check(path, True, "agrees with the recording's hash and the verdict"))
    request_check, request = _check_timestamp_request(
        contents.get(TIMESTAMP_REQUEST), manifest_bytes
    )
    checks.append(request_check)
    stamp = None
    if TIMESTAMP_REPLY in contents:
        stamp = check_timestamp_reply(
            contents[TIMESTAMP_REPLY],
            digest=hashlib.sha256(manifest_bytes).digest(),
            nonce=request.nonce if request is not None else None,
            trusted_roots=tsa_roots,
        )
        checks.append(_timestamp_check(stamp, pinned_roots=bool(tsa_roots)))
    return VerifyReport(tuple(checks), fingerprint, stamp)


def add_timestamp_reply(data: bytes, tsr: bytes) -> bytes:
    """The pack with ``manifest.tsr`` set to ``tsr`` (replacing one stored before).

    Every other entry is copied byte for byte, with its name, date and compression.

    Raises
    ------
    ValueError
        ``data`` is not a zip archive.
    """
    try:
        source = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise ValueError(f"not a zip archive: {exc}") from exc
    buf = io.BytesIO()
    with source, zipfile.ZipFile(buf, "w") as out:
        for info in source.infolist():
            if info.filename != TIMESTAMP_REPLY:
                out.writestr(info, source.read(info))
        stamp = zipfile.ZipInfo(TIMESTAMP_REPLY, date_time=datetime.now(UTC).timetuple()[:6])
        stamp.external_attr = 0o644 << 16
        out.writestr(stamp, tsr)
    return buf.getvalue()


def stored_timestamp_request(data: bytes) -> bytes:
    """``manifest.tsq`` of a pack; raises ValueError when the pack has none."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return archive.read(TIMESTAMP_REQUEST)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise ValueError(f"not an evidence pack with {TIMESTAMP_REQUEST}: {exc}") from exc


def _pinned_fingerprint(public_pem: bytes | None, fingerprint: str | None) -> str | None:
    pins = []
    if public_pem is not None:
        pins.append(signing.fingerprint(signing.load_public_pem(public_pem)))
    if fingerprint is not None:
        pin = re.sub(r"[\s:]", "", fingerprint).lower()
        if not re.fullmatch(r"[0-9a-f]{64}", pin):
            raise ValueError(f"a key fingerprint is 64 hex digits (sha256), got {fingerprint!r}")
        pins.append(pin)
    if len(set(pins)) > 1:
        raise ValueError("--public-key and --fingerprint name different keys")
    return pins[0] if pins else None


def _check_manifest_fields(manifest: dict[str, Any], fingerprint: str) -> Check:
    if manifest.get("schema") != "robocall-evidence-manifest":
        return Check(MANIFEST, False, "is not a robocall evidence manifest")
    claimed = manifest.get("signature", {}).get("public_key_sha256")
    if fingerprint and claimed != fingerprint:
        return Check(MANIFEST, False, "names a different public key than public_key.pem")
    return Check(
        MANIFEST,
        True,
        f"schema version {manifest.get('schema_version')}, {len(manifest['files'])} files listed",
    )


def _check_file(
    path: str, entry: dict[str, Any], contents: dict[str, bytes], names: list[str]
) -> Check:
    if path not in contents:
        why = "damaged (see above)" if path in names else "MISSING from the pack"
        return Check(path, False, why)
    found = hashlib.sha256(contents[path]).hexdigest()
    expected = str(entry.get("sha256", ""))
    if found != expected:
        return Check(
            path,
            False,
            f"CHANGED: sha256 is {found[:16]}…, the signed manifest says {expected[:16]}…",
        )
    return Check(path, True, f"sha256 matches ({found[:16]}…)")


def _check_timestamp_request(
    tsq: bytes | None, manifest_bytes: bytes
) -> tuple[Check, TimestampRequest | None]:
    if tsq is None:
        return Check(TIMESTAMP_REQUEST, False, "missing"), None
    try:
        request = parse_timestamp_request(tsq)
    except ValueError as exc:
        return Check(TIMESTAMP_REQUEST, False, f"not a valid RFC 3161 request ({exc})"), None
    good = request.digest == hashlib.sha256(manifest_bytes).digest()
    message = (
        "RFC 3161 request for sha256(manifest.json)" if good else "does not match manifest.json"
    )
    return Check(TIMESTAMP_REQUEST, good, message), request


def _timestamp_check(stamp: TimestampCheck, *, pinned_roots: bool) -> Check:
    if not stamp.ok:
        return Check(TIMESTAMP_REPLY, False, "; ".join(stamp.problems))
    when = (
        stamp.gen_time.astimezone(UTC).isoformat().replace("+00:00", "Z") if stamp.gen_time else "?"
    )
    root = (
        f"chain to the CA you gave ({stamp.root})"
        if pinned_roots
        else f"chain ends at {stamp.root} (not pinned: pass --tsa-ca to require your TSA's CA)"
    )
    return Check(
        TIMESTAMP_REPLY,
        True,
        f"RFC 3161 timestamp {when} by {stamp.tsa}: imprint = sha256(manifest.json), nonce "
        f"matches, TSA signature valid, {root}",
    )
