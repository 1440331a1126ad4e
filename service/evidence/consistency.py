"""Do the files of a pack agree with each other and with the recording? (issue 14)

The signature proves only that the manifest is unchanged since someone holding the key signed
it; the key travels in the pack, so a forger can re-sign a changed pack with a key of their own.
These checks catch a pack that was assembled inconsistently, forged by hand or re-signed after
editing one file: report.json, the PDF's page 1, complaint.json, SHA256SUMS and the recording's
checksum file must all name the same recording (by sha256) and the same verdict.
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

from pipeline import report as rp
from pipeline.messages import LANGS
from pipeline.types import Verdict


def consistency_problems(
    contents: dict[str, bytes], entries: dict[str, dict[str, Any]], *, schema_version: str
) -> dict[str, list[str]]:
    """Disagreements between the pack's files, by file; empty lists when they agree.

    Parameters
    ----------
    contents : dict
        Path -> bytes of every readable file in the pack.
    entries : dict
        Path -> manifest entry (``sha256``, ``role``...) of every listed file.
    schema_version : str
        The manifest's; complaint.json names the recording and verdict from version 2 on.
    """
    problems: dict[str, list[str]] = {}
    recording = next((p for p, e in entries.items() if e.get("role") == "original_recording"), "")
    recording_sha = str(entries.get(recording, {}).get("sha256", ""))
    if not recording:
        return {"manifest.json": ["lists no original recording"]}
    problems[f"{recording}.sha256"] = _checksum_file(
        contents.get(f"{recording}.sha256"), recording_sha
    )
    problems["SHA256SUMS"] = _sha256sums(contents.get("SHA256SUMS"), entries)
    shown = None
    if "report.json" in contents:
        shown, problems["report.json"] = _report_json(contents["report.json"], recording_sha)
    if "report.pdf" in contents and shown is not None:
        problems["report.pdf"] = _pdf(contents["report.pdf"], shown, recording_sha)
    if "complaint.json" in contents and shown is not None and schema_version != "1":
        problems["complaint.json"] = _complaint(contents["complaint.json"], shown, recording_sha)
    return {path: found for path, found in problems.items() if path in contents}


def _checksum_file(data: bytes | None, recording_sha: str) -> list[str]:
    if data is None:
        return []
    said = data.decode("utf-8", "replace").split()[:1]
    return [] if said == [recording_sha] else ["names another recording hash than the manifest"]


def _sha256sums(data: bytes | None, entries: dict[str, dict[str, Any]]) -> list[str]:
    if data is None:
        return []
    listed: dict[str, str] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        match = re.fullmatch(r"([0-9a-f]{64}) [ *](.+)", line.strip())
        if match is None:
            return [f"has a line that is not 'sha256  path': {line[:40]!r}"]
        listed[match.group(2)] = match.group(1)
    out = [
        f"gives {p} another hash than the manifest"
        for p, h in listed.items()
        if entries.get(p, {}).get("sha256") != h
    ]
    missing = [p for p in entries if p != "SHA256SUMS" and p not in listed]
    if missing:
        out.append(f"does not list {', '.join(missing)}")
    return out


def _report_json(data: bytes, recording_sha: str) -> tuple[Verdict | None, list[str]]:
    try:
        verdict = Verdict.from_dict(json.loads(data)["verdict"])
    except (ValueError, KeyError, TypeError) as exc:
        return None, [f"holds no readable verdict ({exc})"]
    if verdict.audio.sha256 != recording_sha:
        return verdict, ["describes another recording (its audio.sha256 is not the manifest's)"]
    return verdict, []


def _pdf(data: bytes, verdict: Verdict, recording_sha: str) -> list[str]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        first = PdfReader(io.BytesIO(data)).pages[0].extract_text() or ""
    except (PdfReadError, ValueError, IndexError, KeyError) as exc:
        return [f"cannot be read as a PDF ({exc})"]
    page = _squeeze(first)
    out = []
    if recording_sha not in page:
        out.append("page 1 does not show the recording's sha256 from the manifest")
    if not all(_squeeze(rp.verdict_sentence(verdict, lang)) in page for lang in LANGS):
        out.append("page 1 does not state the verdict of the matching report.json")
    return out


def _complaint(data: bytes, verdict: Verdict, recording_sha: str) -> list[str]:
    try:
        complaint = json.loads(data)
        said_sha = complaint["recording_sha256"]
        said_label = complaint["verdict"]["label"]
    except (ValueError, KeyError, TypeError) as exc:
        return [f"is not a complaint file of this version ({exc})"]
    out = []
    if said_sha != recording_sha:
        out.append("names another recording than the manifest")
    if said_label != verdict.label.value:
        out.append("gives another verdict than report.json")
    return out


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)
