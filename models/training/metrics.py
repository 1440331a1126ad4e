"""Detection metrics over ``sklearn.metrics``: kept apart from training and evaluation (aasist).

Conventions everywhere: ``labels`` are 1 for the positive class (robot / synthetic voice) and 0
for human; ``scores`` are higher for "more robot" (any monotone scale: logits or
probabilities). Sample weights are optional and used for class-balanced summaries.

- :func:`roc_curve`, :func:`roc_auc`: ``sklearn.metrics`` (ties counted half, as Mann-Whitney U);
- :func:`eer` (equal error rate, the anti-spoofing field's headline number) and its threshold,
  interpolated on sklearn's ROC;
- :func:`det_points` (miss vs false-alarm rates on a probit scale, for DET plots; from the full
  ROC, which keeps the end points that ``sklearn.metrics.det_curve`` drops);
- :func:`calibration_bins`, :func:`ece` (expected calibration error, equal-width bins);
- :func:`confusion`, :func:`precision_recall_f1` at a threshold;
- :func:`bootstrap_ci`: 95 % intervals of EER and AUC by a stratified *cluster* bootstrap
  (speakers, engines), because rows of one voice are not independent evidence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri


def _check(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).astype(np.int64).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length: {y.size} vs {s.size}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (human) or 1 (robot)")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    return y, s


def _weights(w: np.ndarray | None, n: int) -> np.ndarray:
    if w is None:
        return np.ones(n)
    out = np.asarray(w, dtype=np.float64).reshape(-1)
    if out.size != n or (out < 0).any():
        raise ValueError("weights must be non-negative, one per score")
    return out


def has_both_classes(labels: np.ndarray) -> bool:
    y = np.asarray(labels)
    return bool((y == 1).any() and (y == 0).any())


def roc_curve(
    labels: np.ndarray, scores: np.ndarray, *, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False- and true-positive rates at every distinct threshold (``score >= t`` = positive).

    Returns
    -------
    fpr, tpr, thresholds : np.ndarray [shape=(k + 1,)]
        Starting at (0, 0) with threshold +inf, ending at (1, 1); thresholds descending.

    Raises
    ------
    ValueError
        Only one class present, or malformed input.
    """
    from sklearn.metrics import roc_curve as sk_roc_curve

    y, s = _check(labels, scores)
    w = _weights(weights, y.size)
    if not has_both_classes(y):
        raise ValueError("ROC needs both classes")
    fpr, tpr, thresholds = sk_roc_curve(y, s, sample_weight=w, drop_intermediate=False)
    return (
        np.asarray(fpr, dtype=np.float64),
        np.asarray(tpr, dtype=np.float64),
        np.asarray(thresholds, dtype=np.float64),
    )


def roc_auc(labels: np.ndarray, scores: np.ndarray, *, weights: np.ndarray | None = None) -> float:
    """Area under the ROC curve (``sklearn.metrics.roc_auc_score``: ties count one half)."""
    from sklearn.metrics import roc_auc_score

    y, s = _check(labels, scores)
    w = _weights(weights, y.size)
    if not has_both_classes(y):
        raise ValueError("ROC needs both classes")
    return float(roc_auc_score(y, s, sample_weight=w))


def eer(
    labels: np.ndarray, scores: np.ndarray, *, weights: np.ndarray | None = None
) -> tuple[float, float]:
    """Equal error rate and the threshold where miss rate meets false-alarm rate.

    Linear interpolation between the two ROC points that bracket ``fpr == 1 - tpr`` (the
    ROCCH-free convention most anti-spoofing toolkits use). Perfectly separated scores give 0;
    identical distributions give about 0.5.

    Returns
    -------
    (eer, threshold) : (float in [0, 1], float on the score scale)
    """
    fpr, tpr, thr = roc_curve(labels, scores, weights=weights)
    diff = (1.0 - tpr) - fpr  # miss minus false alarm: 1 at threshold +inf, -1 at the lowest
    i = int(np.flatnonzero(diff <= 0)[0])  # i >= 1: diff[0] == 1
    if diff[i] == 0:
        return float(fpr[i]), float(thr[i])
    t = diff[i - 1] / (diff[i - 1] - diff[i])
    rate = float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))
    upper = thr[i - 1] if np.isfinite(thr[i - 1]) else thr[i]
    return rate, float(upper + t * (thr[i] - upper))


def det_points(
    labels: np.ndarray, scores: np.ndarray, *, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """DET curve: (false-alarm rate, miss rate) on the probit scale, clipped to 1e-4..1-1e-4.

    Returns
    -------
    probit_fpr, probit_fnr : np.ndarray [shape=(k + 1,)]
        ``scipy.special.ndtri`` of the rates; plot ``ndtri`` of tick values as axis labels.
    """
    fpr, tpr, _ = roc_curve(labels, scores, weights=weights)
    lo, hi = 1e-4, 1 - 1e-4
    probit_fpr = np.asarray(ndtri(np.clip(fpr, lo, hi)), dtype=np.float64)
    probit_fnr = np.asarray(ndtri(np.clip(1.0 - tpr, lo, hi)), dtype=np.float64)
    return probit_fpr, probit_fnr


@dataclass(frozen=True, slots=True)
class CalibrationBin:
    low: float  # bin edges on the probability scale
    high: float
    count: float  # (weighted) number of scores in the bin
    mean_probability: float  # average predicted probability (nan when empty)
    positive_rate: float  # observed share of label 1 (nan when empty)


def calibration_bins(
    labels: np.ndarray,
    probabilities: np.ndarray,
    *,
    n_bins: int = 10,
    weights: np.ndarray | None = None,
) -> list[CalibrationBin]:
    """Reliability diagram data: equal-width bins over [0, 1] (the last bin includes 1.0)."""
    y, p = _check(labels, probabilities)
    if ((p < 0) | (p > 1)).any():
        raise ValueError("probabilities must be in [0, 1]")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    w = _weights(weights, y.size)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, n_bins - 1)
    out = []
    for b in range(n_bins):
        m = index == b
        count = float(w[m].sum())
        mean_p = float(np.sum(w[m] * p[m]) / count) if count else float("nan")
        rate = float(np.sum(w[m] * y[m]) / count) if count else float("nan")
        out.append(CalibrationBin(float(edges[b]), float(edges[b + 1]), count, mean_p, rate))
    return out


def ece(
    labels: np.ndarray,
    probabilities: np.ndarray,
    *,
    n_bins: int = 10,
    weights: np.ndarray | None = None,
) -> float:
    """Expected calibration error: bin-weighted mean |observed rate - mean probability|."""
    bins = calibration_bins(labels, probabilities, n_bins=n_bins, weights=weights)
    total = sum(b.count for b in bins)
    if total == 0:
        raise ValueError("no scores")
    return float(
        sum(b.count * abs(b.positive_rate - b.mean_probability) for b in bins if b.count) / total
    )


@dataclass(frozen=True, slots=True)
class Confusion:
    """Counts at one threshold; positive = robot."""

    true_positive: int
    false_positive: int
    true_negative: int
    false_negative: int

    @property
    def precision(self) -> float:
        d = self.true_positive + self.false_positive
        return self.true_positive / d if d else float("nan")

    @property
    def recall(self) -> float:
        d = self.true_positive + self.false_negative
        return self.true_positive / d if d else float("nan")

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r > 0 else float("nan")

    @property
    def false_positive_rate(self) -> float:
        d = self.false_positive + self.true_negative
        return self.false_positive / d if d else float("nan")

    @property
    def accuracy(self) -> float:
        n = self.true_positive + self.false_positive + self.true_negative + self.false_negative
        return (self.true_positive + self.true_negative) / n if n else float("nan")


def confusion(labels: np.ndarray, scores: np.ndarray, *, threshold: float) -> Confusion:
    """Confusion counts with ``score >= threshold`` predicted positive."""
    y, s = _check(labels, scores)
    pred = s >= threshold
    return Confusion(
        true_positive=int(np.sum(pred & (y == 1))),
        false_positive=int(np.sum(pred & (y == 0))),
        true_negative=int(np.sum(~pred & (y == 0))),
        false_negative=int(np.sum(~pred & (y == 1))),
    )


def precision_recall_f1(
    labels: np.ndarray, scores: np.ndarray, *, threshold: float
) -> tuple[float, float, float]:
    """Precision, recall and F1 of the positive class at ``threshold`` (nan when undefined)."""
    c = confusion(labels, scores, threshold=threshold)
    return c.precision, c.recall, c.f1


def summary(
    labels: np.ndarray,
    scores: np.ndarray,
    probabilities: np.ndarray | None = None,
    *,
    threshold: float = 0.5,
) -> dict[str, float]:
    """The usual table row: n, EER, AUC, and (given probabilities) P/R/F1/FPR at ``threshold``
    and ECE. Rank metrics are nan when one class is missing."""
    y, s = _check(labels, scores)
    out: dict[str, float] = {"n": float(y.size), "n_robot": float(y.sum())}
    both = has_both_classes(y)
    out["eer"] = eer(y, s)[0] if both else float("nan")
    out["auc"] = roc_auc(y, s) if both else float("nan")
    if probabilities is not None:
        c = confusion(y, probabilities, threshold=threshold)
        out.update(
            precision=c.precision,
            recall=c.recall,
            f1=c.f1,
            fpr=c.false_positive_rate,
            accuracy=c.accuracy,
            ece=ece(y, probabilities),
        )
    return out


BOOTSTRAP_ROUNDS = 1000
BOOTSTRAP_SEED = 20_251_204


def bootstrap_ci(
    labels: np.ndarray,
    scores: np.ndarray,
    *,
    groups: Sequence[str],
    rounds: int = BOOTSTRAP_ROUNDS,
    level: float = 0.95,
    seed: int = BOOTSTRAP_SEED,
) -> dict[str, tuple[float, float]]:
    """Percentile intervals of EER and AUC, resampling whole groups with replacement.

    Groups are drawn within each class (stratified: every round keeps both classes and their
    group counts), so a voice or an engine with 100 clips counts as one draw, not 100. Use the
    speaker for people and the engine for robots: the interval then says how much the figure
    would move with other voices and other engines of the same kind. Seeded: the same numbers
    on every run.

    Parameters
    ----------
    labels : np.ndarray [shape=(n,)], 0/1
    scores : np.ndarray [shape=(n,)], higher = more robot
    groups : sequence of str, length n; the resampling unit of each row
    rounds : int, bootstrap resamples (1000)
    level : float, coverage (0.95 = 2.5th to 97.5th percentile)

    Returns
    -------
    {"eer": (low, high), "auc": (low, high)}; nan when a class has no row.
    """
    y, s = _check(labels, scores)
    g = np.asarray(list(groups), dtype=object)
    if g.size != y.size:
        raise ValueError(f"groups has {g.size} entries for {y.size} rows")
    nan = (float("nan"), float("nan"))
    if not has_both_classes(y):
        return {"eer": nan, "auc": nan}
    # Row weight per round = how often its group was drawn; then one ROC per round, all
    # rounds at once on the scores sorted once (a per-round sklearn call takes minutes).
    rng = np.random.default_rng(seed)
    weights = np.zeros((rounds, y.size))
    for cls in (0, 1):
        rows = np.flatnonzero(y == cls)
        _, group_of_row = np.unique(g[rows], return_inverse=True)
        n_groups = int(group_of_row.max()) + 1
        draws = rng.integers(0, n_groups, size=(rounds, n_groups))
        counts = np.stack([np.bincount(d, minlength=n_groups) for d in draws])
        weights[:, rows] = counts[:, group_of_row]
    order = np.argsort(-s, kind="mergesort")
    distinct = np.r_[s[order][1:] != s[order][:-1], True]  # last row of each tied score
    w = weights[:, order]
    pos = np.cumsum(w * y[order], axis=1)[:, distinct]
    neg = np.cumsum(w * (1 - y[order]), axis=1)[:, distinct]
    zero = np.zeros((rounds, 1))
    tpr = np.hstack([zero, pos / pos[:, -1:]])
    fpr = np.hstack([zero, neg / neg[:, -1:]])
    aucs = np.sum(np.diff(fpr, axis=1) * (tpr[:, 1:] + tpr[:, :-1]) / 2, axis=1)
    diff = (1.0 - tpr) - fpr  # as in :func:`eer`: 1 at the first point, -1 at the last
    i = np.argmax(diff <= 0, axis=1)
    r = np.arange(rounds)
    d0, d1 = diff[r, i - 1], diff[r, i]
    t = np.where(d1 == 0, 1.0, d0 / np.where(d0 - d1 == 0, 1.0, d0 - d1))
    eers = fpr[r, i - 1] + t * (fpr[r, i] - fpr[r, i - 1])
    tail = 100 * (1 - level) / 2
    return {
        name: (float(np.percentile(v, tail)), float(np.percentile(v, 100 - tail)))
        for name, v in (("eer", eers), ("auc", aucs))
    }


def format_metric(v: float | None, pct: bool = True) -> str:
    """``"12.3 %"`` (``pct``) or ``"0.123"`` for a report table; ``"-"`` when missing or NaN."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{100 * v:.1f} %" if pct else f"{v:.3f}"


def format_with_ci(v: float, ci: tuple[float, float], pct: bool = True) -> str:
    """``"12.3 % [4.5 %, 20.1 %]"``: :func:`format_metric` with its interval; ``"-"`` for NaN."""
    if v != v:
        return "-"
    return f"{format_metric(v, pct)} [{format_metric(ci[0], pct)}, {format_metric(ci[1], pct)}]"


def rate_ci(
    flags: np.ndarray,
    groups: Sequence[str],
    *,
    rounds: int = BOOTSTRAP_ROUNDS,
    level: float = 0.95,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """Percentile interval of ``mean(flags)``, resampling whole groups with replacement (as
    :func:`bootstrap_ci` does for EER and AUC).

    Parameters
    ----------
    flags : np.ndarray [shape=(n,)], bool; the event per row (e.g. robot-leaning evidence)
    groups : sequence of str, length n; the resampling unit of each row (its fold group)

    Returns
    -------
    (low, high) rates in [0, 1]; (nan, nan) when there is no row.
    """
    f = np.asarray(flags, dtype=bool)
    if f.size != len(groups):
        raise ValueError(f"groups has {len(groups)} entries for {f.size} rows")
    if not f.size:
        return float("nan"), float("nan")
    _, group_of_row = np.unique(np.asarray(list(groups), dtype=str), return_inverse=True)
    hits = np.bincount(group_of_row, weights=f.astype(float))
    sizes = np.bincount(group_of_row).astype(float)
    draws = np.random.default_rng(seed).integers(0, len(sizes), size=(rounds, len(sizes)))
    rates = hits[draws].sum(axis=1) / sizes[draws].sum(axis=1)
    tail = 100 * (1 - level) / 2
    return float(np.percentile(rates, tail)), float(np.percentile(rates, 100 - tail))
