"""The fitted fusion's settings, composed examples, fit, scores and the key of its caches.

Apart from ``train_fusion`` so that its report (``fusion_report.py``) reads the fit without
importing the training run (no import cycle).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize

from models.training import metrics as M
from models.training.corpus import REPO_DIR
from pipeline.fuse import FusionModel, sigmoid, signed_cue

log = logging.getLogger(__name__)

SALT = "fusion-v1"  # channel draws, text halves and pairs; change it and every draw changes
PAIRS = 4  # texts joined to each clip
HUMAN_SALES_SHARE = 0.5  # share of a person's texts drawn from human sales calls
L2 = 1e-3  # on the scales, per unit of mean (balanced) log loss
MAX_SCALE = 5.0
TEXT_FOLDS = 10
HANDSET_BIAS = -0.5  # FusionConfig.bias: the sum the fitted fusion replaces
COMMAND = "robocall train --stage fusion"  # its defaults: --e2e 120, simulated calls PER_CELL
TEXT_CUES = ("robot_script_text", "scripted_phrase", "disfluency_rate", "sales_phrases")


def source_digest(salt: str, files: Iterable[str], model_sha256s: Iterable[str]) -> str:
    """A cache key (16 hex digits) for results that depend on code and weights.

    sha256 over ``salt``, the bytes of each of ``files`` (paths relative to the repository) and
    each model sha256, in the order given: editing one of the files or swapping a model changes
    the key. The layout is fixed, as keys name caches of hours of ASR under
    ``$ROBOCALL_CACHE_DIR``: a changed layout would orphan them.
    """
    h = hashlib.sha256(salt.encode())
    for rel in files:
        h.update((REPO_DIR / rel).read_bytes())
    for sha256 in model_sha256s:
        h.update(sha256.encode())
    return h.hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Example:
    """One composed call: a clip's acoustic cues joined to a text's cues."""

    audio_id: str
    text_id: str
    y: int  # 1 = robot
    language: str
    kind: str  # the clip's kind (tts, dialer_call, read_speech, ...)
    text_source: str
    cues: tuple[tuple[str, float], ...]  # (name, hand-set weight)
    layout: str = ""  # simulated calls: "stereo" | "mono"; "" for composed calls
    group: str = ""  # simulated calls: the bootstrap unit (caller's voice)
    sales_probability: float = float("nan")  # simulated calls: the verdict's sales question


def design(examples: Sequence[Example], names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Matrix of hand-set weights, one column per signed cue (absent = 0), and labels."""
    col = {n: j for j, n in enumerate(names)}
    x = np.zeros((len(examples), len(names)))
    for i, ex in enumerate(examples):
        for name, weight in ex.cues:
            key = signed_cue(name, weight)
            if key in col:
                x[i, col[key]] = weight
    return x, np.array([ex.y for ex in examples], dtype=np.float64)


def balanced(y: np.ndarray) -> np.ndarray:
    """Row weights giving each class the same total (mean 1)."""
    n1, n0 = max(float(y.sum()), 1.0), max(float((1 - y).sum()), 1.0)
    return np.where(y == 1, 0.5 * y.size / n1, 0.5 * y.size / n0)


def fit_scales(
    x: np.ndarray, y: np.ndarray, *, l2: float = L2, max_scale: float = MAX_SCALE
) -> tuple[float, np.ndarray]:
    """Bias and non-negative scales minimising class-balanced log loss + ``l2 * |scales|^2``."""
    w = balanced(y)
    w = w / w.sum()

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = theta[0] + x @ theta[1:]
        p = sigmoid(z)
        value = float(np.sum(w * (np.logaddexp(0.0, z) - y * z)) + l2 * np.sum(theta[1:] ** 2))
        r = w * (p - y)
        grad = np.concatenate([[r.sum()], x.T @ r + 2 * l2 * theta[1:]])
        return value, grad

    start = np.concatenate([[0.0], np.ones(x.shape[1])])
    bounds = [(None, None)] + [(0.0, max_scale)] * x.shape[1]
    res = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds)
    if not res.success:
        log.warning("fusion fit: %s", res.message)
    return float(res.x[0]), np.asarray(res.x[1:])


def base_cue(signed: str) -> str:
    """The cue name of a signed cue (``"synthetic_voice:+"`` -> ``"synthetic_voice"``)."""
    return signed.rsplit(":", 1)[0]


def fusion_logit(model: FusionModel, examples: Sequence[Example]) -> np.ndarray:
    return np.array(
        [model.bias + sum(model.scale(n, w) * w for n, w in ex.cues) for ex in examples]
    )


def handset_logit(examples: Sequence[Example]) -> np.ndarray:
    return np.array([HANDSET_BIAS + sum(w for _, w in ex.cues) for ex in examples])


def scores_table(y: np.ndarray, logit: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """EER, AUC, error rates at the threshold, ECE as drawn and at even prior."""
    p = sigmoid(logit)
    out: dict[str, float] = {"n_human": float((y == 0).sum()), "n_robot": float(y.sum())}
    both = M.has_both_classes(y.astype(np.int64))
    out["eer"] = M.eer(y.astype(np.int64), logit)[0] if both else float("nan")
    out["auc"] = M.roc_auc(y.astype(np.int64), logit) if both else float("nan")
    c = M.confusion(y.astype(np.int64), p, threshold=threshold)
    out["fpr"] = c.false_positive_rate
    out["miss"] = 1 - c.recall if c.true_positive + c.false_negative else float("nan")
    out["ece"] = M.ece(y, p) if y.size else float("nan")
    out["ece_even"] = M.ece(y, p, weights=balanced(y)) if both else float("nan")
    return out


@dataclass
class Result:
    model: FusionModel
    names: list[str]
    counts: dict[str, Any]
    tables: dict[str, dict[str, dict[str, float]]]
    cue_rows: list[dict[str, Any]]
    ablations: dict[str, dict[str, float]]
    e2e: dict[str, Any] | None
    eval_examples: list[Example]
    seconds: float
    calls: dict[str, Any]  # simulated test calls by fusion variant (fusion_calls.call_tables)
    command: str = COMMAND  # how the run was started, as the reports quote it


def make_model(names: Sequence[str], bias: float, scales: np.ndarray) -> FusionModel:
    return FusionModel(
        bias=round(bias, 4),
        scales=tuple(sorted((n, round(float(s), 4)) for n, s in zip(names, scales, strict=True))),
        default_scale=1.0,
        method=(
            "fitted logistic fusion: bias + a non-negative scale per cue and direction, "
            "class-balanced, on composed dev calls and simulated two-party dev calls "
            "(models/training/train_fusion.py, models/weights/FUSION.md); a cue the fit never "
            "saw keeps its rule weight unscaled"
        ),
        model_id="fusion-v1",
    )


def grouped_scores(
    examples: Sequence[Example], logit: np.ndarray, key: str
) -> dict[str, dict[str, float]]:
    groups: dict[str, list[int]] = {}
    for i, ex in enumerate(examples):
        groups.setdefault(str(getattr(ex, key)), []).append(i)
    y = np.array([ex.y for ex in examples], dtype=np.float64)
    return {g: scores_table(y[idx], logit[idx]) for g, idx in sorted(groups.items())}
