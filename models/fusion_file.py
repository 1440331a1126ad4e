"""The fitted fusion's file: ``models/weights/fusion.json`` (written by ``train_fusion.py``).

Written by ``models/training/train_fusion.py``.

Plain JSON, no arrays: a bias, one scale per cue, the scale of cues the fit never saw, the caps
of the cue directions the fit caps (absent in files written before caps existed: none), the cap
of the turn-taking cues' sum (absent: none), the operating point (``threshold``,
``person_threshold``; absent in files written before it existed: 0.5 and no uncertain band), and
the metadata of the run (data, metrics). Read by ``models.loading.load_fusion``.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

from pipeline.fuse import FusionModel

FUSION_PATH = Path(__file__).resolve().parent / "weights" / "fusion.json"
FORMAT = "robocall-fusion/1"


def write_fusion(model: FusionModel, meta: dict[str, Any], path: Path = FUSION_PATH) -> str:
    """Write the model and its run metadata as canonical JSON; returns the file's sha256."""
    blob = {
        "format": FORMAT,
        "model_id": model.model_id,
        "method": model.method,
        "bias": model.bias,
        "default_scale": model.default_scale,
        "scales": dict(model.scales),
        "caps": dict(model.caps),
        "turn_taking_cap": model.turn_taking_cap,
        "threshold": model.threshold,
        "person_threshold": model.person_threshold,
        "meta": meta,
    }
    text = json.dumps(blob, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return hashlib.sha256(text.encode()).hexdigest()


def read_fusion(path: Path = FUSION_PATH) -> FusionModel:
    """The fitted fusion in ``path``.

    Raises
    ------
    OSError
        The file cannot be read.
    ValueError
        It is not a fusion file of this format, a number in it is not finite / negative, it
        caps a cue direction that may not be capped, or its operating point is out of order.
    """
    data = path.read_bytes()
    raw = json.loads(data)
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} file")
    scales = tuple(sorted((str(k), float(v)) for k, v in raw["scales"].items()))
    caps = tuple(sorted((str(k), float(v)) for k, v in raw.get("caps", {}).items()))
    turn_cap = None if raw.get("turn_taking_cap") is None else float(raw["turn_taking_cap"])
    threshold = float(raw.get("threshold", 0.5))
    person_threshold = float(raw.get("person_threshold", threshold))
    numbers = [
        float(raw["bias"]),
        float(raw["default_scale"]),
        *(v for _, v in scales),
        *(v for _, v in caps),
        *(() if turn_cap is None else (turn_cap,)),
        threshold,
        person_threshold,
    ]
    if not all(math.isfinite(v) for v in numbers) or any(v < 0 for v in numbers[1:]):
        raise ValueError(f"{path}: bias, scales and caps must be finite, scales and caps >= 0")
    return FusionModel(
        bias=float(raw["bias"]),
        scales=scales,
        default_scale=float(raw["default_scale"]),
        method=str(raw["method"]),
        model_id=str(raw["model_id"]),
        sha256=hashlib.sha256(data).hexdigest(),
        caps=caps,
        turn_taking_cap=turn_cap,
        threshold=threshold,
        person_threshold=person_threshold,
    )
