"""The fitted fusion's settings, composed examples, fit, scores and the key of its caches.

Apart from ``train_fusion`` so that its report (``fusion_report.py``) reads the fit without
importing the training run (no import cycle).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize

from models.training import metrics as M
from models.training.corpus import REPO_DIR, hash_unit
from pipeline.fuse import FusionModel, sigmoid, signed_cue, soft_cap

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
    group: str = ""  # the clip's speaker; simulated calls: the caller's voice (bootstrap unit)
    sales_probability: float = float("nan")  # simulated calls: the verdict's sales question


def design(
    examples: Sequence[Example], names: Sequence[str], *, caps: Mapping[str, float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Matrix of hand-set weights, one column per signed cue (absent = 0), and labels.

    ``caps``: signed cue -> cap in hand-set units; the column holds the weight bounded to
    +-cap as the verdict bounds it (``pipeline.fuse.soft_cap``). For a scale s >= 0,
    ``s * soft_cap(w, cap)`` is ``soft_cap(s * w, s * cap)``: the fit stays linear and the
    model's cap is ``s * cap`` (:func:`make_model`).
    """
    col = {n: j for j, n in enumerate(names)}
    caps = caps or {}
    x = np.zeros((len(examples), len(names)))
    for i, ex in enumerate(examples):
        for name, weight in ex.cues:
            key = signed_cue(name, weight)
            if key in col:
                cap = caps.get(key)
                x[i, col[key]] = weight if cap is None else soft_cap(weight, cap)
    return x, np.array([ex.y for ex in examples], dtype=np.float64)


def balanced(y: np.ndarray) -> np.ndarray:
    """Row weights giving each class the same total (mean 1)."""
    n1, n0 = max(float(y.sum()), 1.0), max(float((1 - y).sum()), 1.0)
    return np.where(y == 1, 0.5 * y.size / n1, 0.5 * y.size / n0)


def balanced_log_loss(y: np.ndarray, logit: np.ndarray) -> float:
    """Mean log loss with each class weighted equally (the fit's objective, without L2)."""
    return float(np.mean(balanced(y) * (np.logaddexp(0.0, logit) - y * logit)))


def fit_scales(
    x: np.ndarray,
    y: np.ndarray,
    *,
    l2: float = L2,
    max_scale: float = MAX_SCALE,
    sample_weight: np.ndarray | None = None,
    offset: np.ndarray | None = None,
    fit_bias: bool = True,
) -> tuple[float, np.ndarray]:
    """Bias and non-negative scales minimising class-balanced log loss + ``l2 * |scales|^2``.

    ``sample_weight``: relative row weights (default 1); the classes still get equal totals.
    ``offset``: a fixed logit per row added to the fitted part (the rest of a model);
    ``fit_bias=False`` keeps the bias at 0 (it is in the offset).
    """
    sw = np.ones(y.size) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    n1, n0 = max(float(sw[y == 1].sum()), 1e-12), max(float(sw[y == 0].sum()), 1e-12)
    w = sw * np.where(y == 1, 0.5 / n1, 0.5 / n0)
    w = w / w.sum()

    base = np.zeros(y.size) if offset is None else np.asarray(offset, dtype=np.float64)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = base + theta[0] + x @ theta[1:]
        p = sigmoid(z)
        value = float(np.sum(w * (np.logaddexp(0.0, z) - y * z)) + l2 * np.sum(theta[1:] ** 2))
        r = w * (p - y)
        grad = np.concatenate([[r.sum()], x.T @ r + 2 * l2 * theta[1:]])
        return value, grad

    start = np.concatenate([[0.0], np.ones(x.shape[1])])
    bounds = [(None, None) if fit_bias else (0.0, 0.0)] + [(0.0, max_scale)] * x.shape[1]
    res = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds)
    if not res.success:
        log.warning("fusion fit: %s", res.message)
    return float(res.x[0]), np.asarray(res.x[1:])


def calls_only_cues(fit: Sequence[Example], names: Sequence[str]) -> list[str]:
    """The signed cues of ``names`` that no composed row of ``fit`` carries: the turn-taking
    cues, measured on two-party calls only (a composed call is a single clip)."""
    x, _ = design([ex for ex in fit if not ex.layout], names)
    return [n for j, n in enumerate(names) if not x[:, j].any()]


def fit_on_calls(
    model: FusionModel,
    calls: Sequence[Example],
    only: Sequence[str],
    *,
    caps: Mapping[str, float] | None = None,
) -> FusionModel:
    """``model`` with the scales of the cues ``only`` refitted on the simulated ``calls``.

    Issue 13: a turn-taking cue is seen on the simulated dev calls alone, a few rows beside
    hundreds of composed ones, so the joint fit scales it by what little those rows weigh. Here
    each call is scored as the verdict scores it (all its cues, text and voice included, with
    every other scale and the bias of ``model`` fixed) and only the scales of ``only`` move, to
    minimise the calls' class-balanced log loss: the behaviour must carry what the voice and
    the words leave open (a recorded human prompt), and no composed row changes (none carries
    these cues). ``caps`` as for :func:`design` (hand-set units).
    """
    names = [n for n, _ in model.scales]
    if not calls or not only:
        return model
    scales = np.array([s for _, s in model.scales])
    x, y = design(calls, names, caps=caps)
    free = np.array([n in set(only) for n in names])
    offset = model.bias + x[:, ~free] @ scales[~free]
    _, refit = fit_scales(x[:, free], y, offset=offset, fit_bias=False)
    scales[free] = refit
    return make_model(names, model.bias, scales, caps=caps)


# The carrier's cross-call evidence (``service.campaigns``: "this prompt was heard in N other
# calls"), robot side only; named here because training code does not import the service.
PROMPT_CUE = "prompt_seen_before"
# Upper bound of its fitted scale: the hand-set 1, so the cue alone moves a verdict by at most
# its capped 2 logits. No simulated agent replays audio, so the dev calls cannot bound the scale
# (unbounded it ran to MAX_SCALE, up to +10 logits); a live agent whose dialer plays a recorded
# greeting or compliance disclosure would carry the cue, and a carrier's index would match it
# across that call centre's calls. Lead's decision (issue 13): a false "robot" goes into a
# complaint, so the bound stays until dev calls with such agents are measured.
PROMPT_MAX_SCALE = 1.0


def fit_prompt_scale(model: FusionModel, carrier_calls: Sequence[Example]) -> FusionModel:
    """``model`` with a fitted scale for :data:`PROMPT_CUE`, everything else fixed.

    A single upload has no prompt index, so no row of the fit carries the cue and it would keep
    its hand-set weight. Here the simulated dev calls are scored as a carrier's batch scores
    them (``carrier_calls``: each with the cue an index over the other calls gave it, or none),
    every other scale, cap and the bias held, and only the cue's scale moves to minimise their
    class-balanced log loss, within [0, :data:`PROMPT_MAX_SCALE`]: the single-upload rows and the
    operating point do not change. When no carrier call carries the cue the model is returned as
    it is.
    """
    weights = np.array([dict(ex.cues).get(PROMPT_CUE, 0.0) for ex in carrier_calls])
    if not carrier_calls or not np.any(weights > 0):
        return model
    rest = [
        dataclasses.replace(ex, cues=tuple((n, w) for n, w in ex.cues if n != PROMPT_CUE))
        for ex in carrier_calls
    ]
    y = np.array([ex.y for ex in carrier_calls], dtype=np.float64)
    _, scale = fit_scales(
        np.maximum(weights, 0.0)[:, None],
        y,
        offset=fusion_logit(model, rest),
        fit_bias=False,
        max_scale=PROMPT_MAX_SCALE,
    )
    key = signed_cue(PROMPT_CUE, 1.0)
    scales = dict(model.scales) | {key: round(float(scale[0]), 4)}
    method = model.method + (
        "; prompt_seen_before's scale fitted on the simulated dev calls as a carrier's batch "
        "with a prompt index scores them, everything else fixed"
    )
    return dataclasses.replace(model, scales=tuple(sorted(scales.items())), method=method)


def base_cue(signed: str) -> str:
    """The cue name of a signed cue (``"synthetic_voice:+"`` -> ``"synthetic_voice"``)."""
    return signed.rsplit(":", 1)[0]


def fusion_logit(model: FusionModel, examples: Sequence[Example]) -> np.ndarray:
    """The verdict's robot logit of each example (``FusionModel.logit``: every cap applied)."""
    return np.array([model.logit(ex.cues) for ex in examples])


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
    cap_cv: dict[str, Any]  # choose_cap's result: the cap of a human voice's pull
    # models/training/operating_point.py: "dev": choose_operating_point's result; "turn_cap":
    # choose_turn_taking_cap's; "test": operating_rows per test population
    # (train_fusion.operating_tables); "band_alternatives"; empty: not chosen
    operating: dict[str, Any] = dataclasses.field(default_factory=dict)
    command: str = COMMAND  # how the run was started, as the reports quote it


def make_model(
    names: Sequence[str],
    bias: float,
    scales: np.ndarray,
    *,
    caps: Mapping[str, float] | None = None,
) -> FusionModel:
    """The fitted model; ``caps`` in hand-set units, as :func:`design` applied them."""
    fitted = {n: round(float(s), 4) for n, s in zip(names, scales, strict=True)}
    return FusionModel(
        bias=round(bias, 4),
        scales=tuple(sorted(fitted.items())),
        default_scale=1.0,
        method=(
            "fitted logistic fusion: bias + a non-negative scale per cue and direction, "
            "class-balanced, on composed dev calls and simulated two-party dev calls, a human "
            "voice's pull towards 'person' capped, the turn-taking cues' scales refitted on "
            "the dev calls scored with every cue and their summed pull towards 'robot' capped, "
            "the robot threshold and the uncertain band chosen on dev "
            "(models/training/train_fusion.py, models/weights/FUSION.md); a cue the fit never "
            "saw keeps its rule weight unscaled"
        ),
        model_id="fusion-v3",
        caps=tuple(sorted((k, round(fitted.get(k, 1.0) * c, 4)) for k, c in (caps or {}).items())),
    )


# The human side of the voice head: caps tried, in hand-set units (the head's weight is within
# +-3, pipeline/detector.py), None = no cap. Chosen by :func:`choose_cap`.
CAPPED_CUE = "synthetic_voice:-"
CAP_GRID: tuple[float | None, ...] = (0.0, 0.25, 0.5, 1.0, 2.0, None)
CV_FOLDS = 5
COMPOSED_TOLERANCE = 0.10  # relative: how much worse than its best the composed loss may get
# relative: calls losses this close to the lowest are a tie on ~100 dev calls; the smallest cap
# among them wins (a human voice rules out a TTS engine, not a robot: it pulls no further
# towards 'person' than the dev calls show it must)
CALLS_TIE = 0.02
# How the simulated calls count in the fit: one row each ("as drawn"), or all of them together
# as much as all composed calls ("calls = composed"), so that the few calls are not outweighed.
CALL_WEIGHTINGS = ("as drawn", "calls = composed")


def call_weights(fit: Sequence[Example], weighting: str) -> np.ndarray:
    """Row weights of the fit population under one of :data:`CALL_WEIGHTINGS`."""
    is_call = np.array([bool(ex.layout) for ex in fit])
    if weighting == "as drawn" or not is_call.any() or is_call.all():
        return np.ones(len(fit))
    return np.where(is_call, (~is_call).sum() / is_call.sum(), 1.0)


def choose_cap(
    fit: Sequence[Example],
    shown: Sequence[Example],
    *,
    grid: Sequence[float | None] = CAP_GRID,
    weightings: Sequence[str] = CALL_WEIGHTINGS,
    folds: int = CV_FOLDS,
) -> dict[str, Any]:
    """Choose the cap of a human voice's pull (:data:`CAPPED_CUE`) and how much the simulated
    calls count (:data:`CALL_WEIGHTINGS`) by cross-validation on dev.

    ``fit[i]`` is what the fit sees of example i, ``shown[i]`` what the verdict sees of it (a
    simulated call's fit example lacks its text and voice cues, ``fusion_calls.fit_cues_only``;
    it is scored with them). Folds are drawn by ``group`` (a clip's speaker, a call's caller
    voice), so that no voice is in the fit that scores it. Each cap is scored by the
    class-balanced log loss of the held-out composed calls plus that of the held-out simulated
    calls (``layout`` set) apart: the option with the lowest calls loss wins among those whose
    composed loss is within :data:`COMPOSED_TOLERANCE` of the lowest composed loss, since the
    verdict also judges single clips (an upload, a voicemail) and the few dev calls must not buy
    their fit at the clips' expense. Calls losses within :data:`CALLS_TIE` of the lowest are a
    tie, won by the smallest cap (then the lower calls loss).

    Returns
    -------
    dict
        ``"chosen"`` (a cap of ``grid``), ``"weighting"`` (one of ``weightings``) and
        ``"rows"``: per cap and weighting the two losses and the held-out AUC of
        recorded-prompt robots against human agents, stereo and mono.
    """
    y = np.array([ex.y for ex in fit], dtype=np.float64)
    fold = np.array([int(hash_unit(ex.group or ex.audio_id, salt=SALT) * folds) for ex in fit])
    is_call = np.array([bool(ex.layout) for ex in shown])
    names = sorted({signed_cue(n, w) for ex in fit for n, w in ex.cues if w != 0.0})
    rows: list[dict[str, Any]] = []
    for weighting, cap in ((w, c) for w in weightings for c in grid):
        caps = {} if cap is None else {CAPPED_CUE: cap}
        x_fit, _ = design(fit, names, caps=caps)
        x_shown, _ = design(shown, names, caps=caps)
        sw = call_weights(fit, weighting)
        logit = np.zeros(len(fit))
        for k in range(folds):
            held = fold == k
            if not held.any() or held.all():
                continue
            bias, scales = fit_scales(x_fit[~held], y[~held], sample_weight=sw[~held])
            logit[held] = bias + x_shown[held] @ scales
        row: dict[str, Any] = {"cap": cap, "weighting": weighting}
        for population, keep in (("composed", ~is_call), ("calls", is_call)):
            both = M.has_both_classes(y[keep].astype(np.int64))
            row[population] = balanced_log_loss(y[keep], logit[keep]) if both else 0.0
        for layout in ("stereo", "mono"):
            pair = ("recorded_robot", "human_agent")
            keep = np.array([ex.layout == layout and ex.kind in pair for ex in shown])
            pair_y = y[keep].astype(np.int64)
            row[f"auc_recorded_{layout}"] = (
                M.roc_auc(pair_y, logit[keep]) if M.has_both_classes(pair_y) else float("nan")
            )
        rows.append(row)
    best = pick_cap(rows)
    return {"chosen": best["cap"], "weighting": best["weighting"], "rows": rows, "folds": folds}


def pick_cap(rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """:func:`choose_cap`'s rule over its rows ("cap", "composed" and "calls" losses): the
    lowest calls loss among the rows whose composed loss is within :data:`COMPOSED_TOLERANCE` of
    the lowest, calls losses within :data:`CALLS_TIE` of it a tie won by the smallest cap."""
    floor = min(r["composed"] for r in rows)
    eligible = [r for r in rows if r["composed"] <= floor * (1 + COMPOSED_TOLERANCE)]
    lowest = min(r["calls"] for r in eligible)
    tied = [r for r in eligible if r["calls"] <= lowest * (1 + CALLS_TIE)]
    return min(tied, key=lambda r: (math.inf if r["cap"] is None else r["cap"], r["calls"]))


def grouped_scores(
    examples: Sequence[Example], logit: np.ndarray, key: str
) -> dict[str, dict[str, float]]:
    groups: dict[str, list[int]] = {}
    for i, ex in enumerate(examples):
        groups.setdefault(str(getattr(ex, key)), []).append(i)
    y = np.array([ex.y for ex in examples], dtype=np.float64)
    return {g: scores_table(y[idx], logit[idx]) for g, idx in sorted(groups.items())}


# ---------------------------------------------------------------------------------------------
# The turn-taking cap and the operating point (issue 13): chosen on dev, out of fold


def fit_model(
    fit: Sequence[Example],
    shown: Sequence[Example],
    names: Sequence[str],
    *,
    caps: Mapping[str, float],
    weighting: str,
) -> FusionModel:
    """The fusion fit of ``train_fusion``: the joint fit of ``fit`` (class-balanced, the calls
    weighted by ``weighting``), then the turn-taking scales refitted on the simulated calls of
    ``shown`` (``fit[i]`` as the fit sees example i, ``shown[i]`` as the verdict does)."""
    x, y = design(fit, names, caps=caps)
    bias, scales = fit_scales(x, y, sample_weight=call_weights(fit, weighting))
    return fit_on_calls(
        make_model(names, bias, scales, caps=caps),
        [ex for ex in shown if ex.layout],
        calls_only_cues(fit, names),
        caps=caps,
    )
