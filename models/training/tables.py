"""The one markdown-table writer of the training and evaluation reports.

``docs/evaluation*.md`` and the model cards under ``models/weights/`` are generated whole; their
metric tables go through :func:`markdown_table` (fusion and head evaluation, text comparison).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def table_row(cells: Sequence[str]) -> str:
    """One row: ``| a | b |``."""
    return "| " + " | ".join(cells) + " |"


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """Header, ``|---|`` rule and one line per row (cells already formatted), as lines."""
    return [table_row(header), "|" + "---|" * len(header), *(table_row(r) for r in rows)]
