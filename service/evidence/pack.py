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
    manifest.json                    every file above with sha256 and size
    manifest.sig                     Ed25519 signature of manifest.json (64 raw bytes)
    public_key.pem                   the signer's public key
    manifest.tsq                     RFC 3161 TimeStampReq over sha256(manifest.json)

``build_pack`` is also what the HTTP service calls for a stored analysis. The complainant's
unmasked copy (``--unmasked``) is a separate zip, never inside the signed pack
(:func:`build_evidence`).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import zipfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pipeline import limits
from pipeline import report as rp
from pipeline.complaint import complaint_fields
from pipeline.config import AudioLimits
from pipeline.messages import LANGS, Lang
from pipeline.privacy import MaskSummary, mask_number, mask_verdict
from pipeline.report import CaseInfo
from pipeline.types import Audio, Verdict
from service.evidence import signing
from service.evidence.timestamp import timestamp_request
from service.evidence.verify import (
    MANIFEST,
    PUBLIC_KEY,
    SIGNATURE,
    TIMESTAMP_REQUEST,
    verify_pack,
)

__all__ = [
    "PACK_SCHEMA_VERSION",
    "build_evidence",
    "build_pack",
    "verify_pack",
]  # verify_pack: its old home

log = logging.getLogger(__name__)

# 2: complaint.json names the recording and verdict; 3: report.json's "caller" (issue 13)
PACK_SCHEMA_VERSION = "3"
FIGURE = "figures/overview.png"
PRIVATE_README = """\
本人留存件（未遮盖）/ Your private copy (NOT masked)
===================================================

这些文件含有您的完整号码和个人信息，不属于签名证据包，请勿公开或随证据包发送。
These files hold your full number and personal data. They are not part of the signed evidence
pack: keep them, use them to fill in the 12321 / FTC forms, do not share them.
"""
_ROLES = {
    "report.pdf": "report_pdf",
    "report.json": "report_json",
    "complaint.json": "complaint",
    FIGURE: "figure",
    "README.txt": "readme",
    "SHA256SUMS": "checksums",
}


def build_pack(
    original: bytes,
    verdict: Verdict,
    case: CaseInfo,
    *,
    signing_key: Ed25519PrivateKey,
    audio: Audio | None = None,
    created_at: datetime | None = None,
    settings: Mapping[str, Any] | None = None,
) -> bytes:
    """Build the signed evidence pack for one analysed recording (masked, shareable).

    Parameters
    ----------
    original : bytes
        The recording exactly as received; its sha256 must be ``verdict.audio.sha256``.
    verdict : Verdict
        The detector's verdict on ``original`` (unmasked; masking happens here).
    case : CaseInfo
        What the complainant states: numbers, call time, report language, their name(s).
    signing_key : Ed25519PrivateKey
        See :mod:`service.evidence.signing`.
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
        ``original`` is not the recording the verdict describes, or the stated call time is
        after the analysis.
    FontNotFoundError
        No CJK font to typeset the PDF.
    """
    pack, _ = build_evidence(
        original,
        verdict,
        case,
        signing_key=signing_key,
        audio=audio,
        created_at=created_at,
        settings=settings,
        private_copy=False,
    )
    return pack


def build_evidence(
    original: bytes,
    verdict: Verdict,
    case: CaseInfo,
    *,
    signing_key: Ed25519PrivateKey,
    private_copy: bool,
    audio: Audio | None = None,
    created_at: datetime | None = None,
    settings: Mapping[str, Any] | None = None,
) -> tuple[bytes, bytes | None]:
    """The signed pack, and with ``private_copy`` the complainant's unmasked copy.

    The private copy is a separate zip (``report.pdf``, ``report.json`` and ``complaint.json``
    unmasked, with the complainant's own number in full for the 12321/FTC forms); it is not
    part of the signed pack, so the pack can be shared without it. Other parameters, return
    and errors as :func:`build_pack`.
    """
    from service.evidence.pdf import PdfInputs, find_cjk_font, render_pdf
    from service.evidence.plots import render_overview

    digest = hashlib.sha256(original).hexdigest()
    if digest != verdict.audio.sha256:
        raise ValueError(
            f"the recording's sha256 {digest[:12]}… is not the verdict's "
            f"{verdict.audio.sha256[:12]}…: wrong file for this analysis"
        )
    case.check_call_before(verdict.provenance.analysed_at_utc)
    created = (created_at or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    created_iso = created.isoformat().replace("+00:00", "Z")
    lang = rp.lead_lang(verdict, case)
    known = {
        "known_numbers": (case.callee_number,) if case.callee_number else (),
        "known_names": case.callee_names,
    }
    by_lang = {code: mask_verdict(verdict, **known, token_lang=code) for code in LANGS}
    masked, summary = by_lang[lang]
    if audio is None:
        from pipeline.audio import load_audio  # decoding stack only when a figure is needed

        audio = load_audio(
            original,
            limits=AudioLimits(max_bytes=len(original) + 1, max_duration_s=24 * 3600.0),
            name=verdict.audio.name,
            caller_channel=verdict.audio.caller_channel,
        )
    font = find_cjk_font()
    figure = render_overview(audio, verdict, lang=lang, font_path=font)
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
    shown = {code: by_lang[code][0] for code in LANGS}
    files["complaint.json"] = _json_bytes(complaint_fields(shown, case, summary.recitals))
    files[FIGURE] = figure
    files["README.txt"] = _readme(fingerprint).encode()
    private = None
    if private_copy:
        private_files = dict(
            zip(("report.pdf", "report.json"), report_files(verdict, is_masked=False), strict=True)
        )
        unmasked = {code: verdict for code in LANGS}
        private_files["complaint.json"] = _json_bytes(
            complaint_fields(unmasked, case, summary.recitals, unmasked=True)
        )
        private_files["README.txt"] = PRIVATE_README.encode()
        private = _zip(private_files, created, stored=())
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
    return _zip(files, created, stored=(recording,)), private


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
        # Whether the caller question is decided: an uncertain verdict (the robot probability
        # in the band where the detector cannot tell) is not sufficient alone for a complaint.
        "caller": {
            "certainty": verdict.caller_certainty,
            "sufficient_alone_for_complaint": verdict.caller_certainty != "uncertain",
            "notice": (
                {code: rp.uncertain_notice(verdict, code) for code in LANGS}
                if verdict.caller_certainty == "uncertain"
                else None
            ),
        },
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
        "limits": {code: limits.limits_paragraph(verdict, code) for code in LANGS},
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
