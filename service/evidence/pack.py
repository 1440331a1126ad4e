"""Evidence packs for complaints (issue 6): ``robocall evidence`` builds one, ``robocall verify``
checks one.

A pack is a zip that a regulator or court can check without trusting us::

    recording/original.<ext>         the recording, byte for byte
    recording/original.<ext>.sha256  its sha256 (sha256sum format)
    report.pdf                       bilingual report (masked)
    report.json                      the same, machine-readable (schema PACK_SCHEMA_VERSION)
    complaint.json                   12321 and FTC form fields, filled where known
    figures/overview.png             waveform, spectrogram + pitch, reasons on a timeline
    README.txt                       how to check the pack, zh/en
    SHA256SUMS                       for ``sha256sum -c`` after unzipping
    unmasked/report.{pdf,json}       only with --unmasked
    manifest.json                    every file above with sha256 and size
    manifest.sig                     Ed25519 signature of manifest.json (64 raw bytes)
    public_key.pem                   the signer's public key
    manifest.tsq                     RFC 3161 TimeStampReq over sha256(manifest.json)

``build_pack`` is also what the HTTP service calls for a stored analysis.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pipeline import report as rp
from pipeline.config import AudioLimits
from pipeline.messages import LANGS, Lang
from pipeline.privacy import MaskSummary, mask_number, mask_verdict
from pipeline.report import CaseInfo
from pipeline.types import Audio, Verdict
from service.evidence import signing
from service.evidence.consistency import consistency_problems
from service.evidence.timestamp import (
    TimestampCheck,
    TimestampRequest,
    check_timestamp_reply,
    parse_timestamp_request,
    timestamp_request,
)

log = logging.getLogger(__name__)

PACK_SCHEMA_VERSION = "2"  # 2: complaint.json names the recording and verdict
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
    "whoever holds that key signed them, not who that is; compare the fingerprint below with "
    "one the signer gave you, or pin it (--public-key / --fingerprint)"
)
FIGURE = "figures/overview.png"
_ROLES = {
    "report.pdf": "report_pdf",
    "report.json": "report_json",
    "complaint.json": "complaint",
    FIGURE: "figure",
    "README.txt": "readme",
    "SHA256SUMS": "checksums",
    "unmasked/report.pdf": "unmasked_report_pdf",
    "unmasked/report.json": "unmasked_report_json",
}


def build_pack(
    original: bytes,
    verdict: Verdict,
    case: CaseInfo,
    *,
    signing_key: Ed25519PrivateKey,
    unmasked: bool = False,
    audio: Audio | None = None,
    created_at: datetime | None = None,
    settings: Mapping[str, Any] | None = None,
) -> bytes:
    """Build the signed evidence pack for one analysed recording.

    Parameters
    ----------
    original : bytes
        The recording exactly as received; its sha256 must be ``verdict.audio.sha256``.
    verdict : Verdict
        The detector's verdict on ``original`` (unmasked; masking happens here).
    case : CaseInfo
        Numbers, call time, report language, the callee's name(s) if known.
    signing_key : Ed25519PrivateKey
        See :mod:`service.evidence.signing`.
    unmasked : bool
        Also include an unmasked copy of the report under ``unmasked/``.
    audio : Audio, optional
        The decoded recording for the figure; decoded from ``original`` when omitted.
    created_at : datetime, optional
        Pack time (UTC now by default); also the zip entries' timestamps.
    settings : mapping, optional
        The analysis settings (e.g. ``dataclasses.asdict(DetectorConfig)``), shown in the
        method section; the verdict itself carries only their hash.

    Returns
    -------
    bytes
        The zip archive.

    Raises
    ------
    ValueError
        ``original`` is not the recording the verdict describes.
    FontNotFoundError
        No CJK font to typeset the PDF.
    """
    from service.evidence.pdf import PdfInputs, find_cjk_font, render_pdf
    from service.evidence.plots import render_overview

    digest = hashlib.sha256(original).hexdigest()
    if digest != verdict.audio.sha256:
        raise ValueError(
            f"the recording's sha256 {digest[:12]}… is not the verdict's "
            f"{verdict.audio.sha256[:12]}…: wrong file for this analysis"
        )
    created = (created_at or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    created_iso = created.isoformat().replace("+00:00", "Z")
    lang = rp.lead_lang(verdict, case)
    known = {
        "known_numbers": (case.callee_number,) if case.callee_number else (),
        "known_names": case.callee_names,
    }
    masked, summary = mask_verdict(verdict, **known)
    if audio is None:
        from pipeline.audio import load_audio  # decoding stack only when a figure is needed

        audio = load_audio(
            original,
            limits=AudioLimits(max_bytes=len(original) + 1, max_duration_s=24 * 3600.0),
            name=verdict.audio.name,
            caller_channel=verdict.audio.caller_channel,
        )
    font = find_cjk_font()
    figure = render_overview(audio, rp.reasons(verdict, lang), lang=lang, font_path=font)
    public = signing_key.public_key()
    fingerprint = signing.fingerprint(public)
    flat_settings = tuple(_flatten(settings or {}))

    def report_files(shown: Verdict, *, is_masked: bool) -> tuple[bytes, bytes]:
        callee = case.callee_number if not is_masked else mask_number(case.callee_number)
        inputs = PdfInputs(
            case=case,
            callee_display=callee,
            recitals=summary.recitals,
            masked=is_masked,
            figure_png=figure,
            key_fingerprint=fingerprint,
            created_at_utc=created_iso,
            settings=flat_settings,
        )
        pdf = render_pdf(shown, inputs, lang=lang)
        doc = _report_json(
            shown,
            case,
            summary,
            callee=callee,
            masked=is_masked,
            created_at_utc=created_iso,
            lang=lang,
        )
        doc["settings"] = dict(flat_settings)
        return pdf, _json_bytes(doc)

    recording = f"recording/original.{_extension(verdict)}"
    files: dict[str, bytes] = {
        recording: original,
        f"{recording}.sha256": f"{digest}  original.{_extension(verdict)}\n".encode(),
    }
    files["report.pdf"], files["report.json"] = report_files(masked, is_masked=True)
    complaint = rp.complaint_fields(
        masked, case, summary.recitals, callee_number=mask_number(case.callee_number)
    )
    files["complaint.json"] = _json_bytes(complaint)
    files[FIGURE] = figure
    files["README.txt"] = _readme(fingerprint).encode()
    if unmasked:
        files["unmasked/report.pdf"], files["unmasked/report.json"] = report_files(
            verdict, is_masked=False
        )
    files["SHA256SUMS"] = "".join(
        f"{hashlib.sha256(data).hexdigest()}  {path}\n" for path, data in files.items()
    ).encode()
    manifest = _json_bytes(
        {
            "schema": "robocall-evidence-manifest",
            "schema_version": PACK_SCHEMA_VERSION,
            "created_at_utc": created_iso,
            "generator": f"robocall-detector {verdict.provenance.package_version}",
            "hash_algorithm": "sha256",
            "files": [
                {
                    "path": path,
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "size_bytes": len(data),
                    "role": "original_recording"
                    if path == recording
                    else "recording_checksum"
                    if path.startswith("recording/")
                    else _ROLES[path],
                }
                for path, data in files.items()
            ],
            "signature": {
                "algorithm": "Ed25519",
                "file": SIGNATURE,
                "public_key_file": PUBLIC_KEY,
                "public_key_sha256": fingerprint,
                "signed_bytes": MANIFEST,
            },
            "timestamp_request": {
                "file": TIMESTAMP_REQUEST,
                "standard": "RFC 3161",
                "message_imprint": "sha256 of manifest.json",
            },
        }
    )
    files[MANIFEST] = manifest
    files[SIGNATURE] = signing_key.sign(manifest)
    files[PUBLIC_KEY] = signing.public_pem(public)
    files[TIMESTAMP_REQUEST] = timestamp_request(hashlib.sha256(manifest).digest())
    return _zip(files, created, stored=(recording,))


def _report_json(
    verdict: Verdict,
    case: CaseInfo,
    summary: MaskSummary,
    *,
    callee: str,
    masked: bool,
    created_at_utc: str,
    lang: Lang,
) -> dict[str, Any]:
    return {
        "schema": "robocall-evidence-report",
        "schema_version": PACK_SCHEMA_VERSION,
        "created_at_utc": created_at_utc,
        "lang": lang,
        "case": {
            "caller_number": case.caller_number,
            "callee_number": callee,
            "call_time": case.call_time,
            "duration_s": verdict.audio.duration_s,
        },
        "summary": {code: list(rp.summary_lines(verdict, code)) for code in LANGS},
        "reasons": [
            {
                "rank": r.rank,
                "name": r.name,
                "title": {"zh": zh.title, "en": r.title},
                "value": r.value,
                "weight": r.weight,
                "span_s": list(r.span_s) if r.span_s else None,
                "detail": r.detail,
            }
            for r, zh in zip(rp.reasons(verdict, "en"), rp.reasons(verdict, "zh"), strict=True)
        ],
        "privacy": {
            "masked": masked,
            "masked_counts": dict(summary.counts) if masked else {},
            "caller_recited_personal_data": rp.recital_dicts(summary.recitals),
            "statement": {code: rp.recital_sentence(summary.recitals, code) for code in LANGS},
        },
        "limits": {code: rp.limits_paragraph(verdict, code) for code in LANGS},
        "verdict": verdict.to_dict(),
    }


def _readme(fingerprint: str) -> str:
    fp = signing.readable_fingerprint(fingerprint)
    return f"""\
通话录音证据包 / Call recording evidence pack
============================================

打开 report.pdf 阅读报告（中英双语）。complaint.json 中是 12321 和 FTC 投诉表格所需的字段。
Open report.pdf for the report (Chinese and English). complaint.json holds the fields of the
12321 and FTC complaint forms.

签名证明什么 / What the signature proves
----------------------------------------
签名只证明：自持有该密钥的人签名以来，包内文件没有被改动。密钥是在投诉人自己的电脑上生成的，
随包附带；要确认签名者是谁，请通过其他渠道向投诉人核对下面的指纹（robocall verify --fingerprint）。
The signature proves only that no file changed since whoever holds the key signed the pack. The
key was made on the complainant's computer and travels in the pack, so anyone can sign a pack
with a key of their own: to know who signed, confirm the fingerprint below with the complainant
through another channel and pin it (robocall verify --fingerprint ...).

Signing key fingerprint (SHA-256 of the Ed25519 public key):
   {fp}

核验 / How to check that nothing was changed
--------------------------------------------
1. robocall verify PACK.zip --fingerprint "<the fingerprint above>"
   (also checks that report.json, report.pdf, complaint.json and SHA256SUMS agree with each
   other and with the recording's hash, and a stored timestamp)
2. Without our software (after unzipping):
   sha256sum -c SHA256SUMS
   openssl pkeyutl -verify -pubin -inkey public_key.pem -rawin -in manifest.json \\
       -sigfile manifest.sig
   then compare each sha256 in manifest.json with the files.

时间戳 / Trusted timestamp
--------------------------
manifest.tsq is an RFC 3161 timestamp request for sha256(manifest.json). To prove the pack
existed at a time, have a timestamp authority (TSA) answer it:
   robocall stamp PACK.zip --tsa https://<your TSA>/
which stores the reply as manifest.tsr inside the pack; 'robocall verify' then checks it. By hand:
   curl -H "Content-Type: application/timestamp-query" --data-binary @manifest.tsq \\
       https://<your TSA>/ -o manifest.tsr
   openssl ts -verify -data manifest.json -in manifest.tsr -CAfile <TSA CA certificate>
"""


# --- verification -------------------------------------------------------------------------------
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


# --- helpers ------------------------------------------------------------------------------------
def _flatten(mapping: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            out += _flatten(value, f"{prefix}{key}.")
        else:
            out.append(
                (
                    f"{prefix}{key}",
                    ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value),
                )
            )
    return out


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=False) + "\n").encode()


def _extension(verdict: Verdict) -> str:
    suffix = Path(verdict.audio.name).suffix.lstrip(".").lower()
    if re.fullmatch(r"[a-z0-9]{1,5}", suffix):
        return suffix
    container = verdict.audio.container.split(",")[0].lower()
    return container if re.fullmatch(r"[a-z0-9]{1,5}", container) else "bin"


def _zip(files: dict[str, bytes], when: datetime, *, stored: tuple[str, ...]) -> bytes:
    buf = io.BytesIO()
    stamp = (when.year, when.month, when.day, when.hour, when.minute, when.second)
    with zipfile.ZipFile(buf, "w") as archive:
        for path, data in files.items():
            info = zipfile.ZipInfo(path, date_time=stamp)
            info.compress_type = zipfile.ZIP_STORED if path in stored else zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buf.getvalue()
