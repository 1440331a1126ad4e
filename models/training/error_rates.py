"""Rewrite sections of ``models/weights/error_rates.json``, the rates a report quotes.

``pipeline/limits.py`` reads the file and documents its keys. Two runs produce its figures:
the fusion stage (``composed_calls``, ``end_to_end``, ``threshold``) and ``robocall evaluate``
(``unseen_engines``); each rewrites its own sections and keeps the other's, so the file always
holds the latest published tables. Only runs that write the published reports update it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.limits import ERROR_RATES_PATH

SCHEMA = {"schema": "robocall-error-rates", "schema_version": 1}


def update_error_rates(
    sections: dict[str, Any], *, command: str, path: Path = ERROR_RATES_PATH
) -> None:
    """Replace ``sections`` (top-level keys) of the file, keep the rest, say who wrote it.

    Rates are rounded to 3 decimals (fractions, as the loader expects).
    """
    try:
        doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        doc = {}
    doc.update(SCHEMA)
    for key, value in sections.items():
        doc[key] = _rounded(value)
    program = _program(command)
    writers = {
        w
        for w in str(doc.get("generated", "")).split("; ")
        if w.startswith("written by ") and _program(w.removeprefix("written by ")) != program
    }
    doc["generated"] = "; ".join(sorted(writers | {f"written by {command}"}))
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _program(command: str) -> str:
    """What a command runs, without its options: its previous entry is the one it replaces."""
    words = command.split()
    return " ".join(words[:3] if words[:2] == ["python", "-m"] else words[:2])


def _rounded(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, float):
        return round(value, 3)
    return value
