"""Metric code on synthetic scores (models/training/metrics.py): invariants, not magic numbers."""

from __future__ import annotations

import numpy as np
import pytest

from models.training import metrics as M


def _labels(n: int = 500) -> np.ndarray:
    return np.r_[np.ones(n, dtype=np.int64), np.zeros(n, dtype=np.int64)]


def test_perfect_separation_has_zero_eer_and_unit_auc(rng: np.random.Generator) -> None:
    y = _labels()
    s = np.r_[rng.uniform(1.0, 2.0, 500), rng.uniform(-2.0, 0.5, 500)]
    rate, threshold = M.eer(y, s)
    assert rate == 0.0
    assert 0.5 <= threshold <= 2.0
    assert M.roc_auc(y, s) == pytest.approx(1.0)


def test_identical_distributions_are_at_chance(rng: np.random.Generator) -> None:
    y = _labels(5000)
    s = rng.normal(size=y.size)
    assert M.eer(y, s)[0] == pytest.approx(0.5, abs=0.03)
    assert M.roc_auc(y, s) == pytest.approx(0.5, abs=0.03)
    assert M.roc_auc(y, np.zeros(y.size)) == pytest.approx(0.5)  # all tied: exactly half


def test_eer_matches_gaussian_theory(rng: np.random.Generator) -> None:
    # Two unit Gaussians d' = 2 apart: EER = Phi(-1) = 0.1587.
    y = _labels(20_000)
    s = np.r_[rng.normal(2.0, 1.0, 20_000), rng.normal(0.0, 1.0, 20_000)]
    rate, threshold = M.eer(y, s)
    assert rate == pytest.approx(0.1587, abs=0.01)
    assert threshold == pytest.approx(1.0, abs=0.05)


def test_eer_is_invariant_to_monotone_transforms(rng: np.random.Generator) -> None:
    y = _labels()
    s = np.r_[rng.normal(1, 1, 500), rng.normal(0, 1, 500)]
    assert M.eer(y, s)[0] == pytest.approx(M.eer(y, 1 / (1 + np.exp(-s)))[0])
    assert M.roc_auc(y, s) == pytest.approx(M.roc_auc(y, 3 * s + 7))


def test_inverted_scores_flip_auc(rng: np.random.Generator) -> None:
    y = _labels()
    s = np.r_[rng.normal(1, 1, 500), rng.normal(0, 1, 500)]
    assert M.roc_auc(y, s) + M.roc_auc(y, -s) == pytest.approx(1.0)


def test_roc_and_det_shapes(rng: np.random.Generator) -> None:
    y = _labels(100)
    s = rng.normal(size=200) + y
    fpr, tpr, thr = M.roc_curve(y, s)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert np.all(np.diff(thr[1:]) < 0)
    px, py = M.det_points(y, s)
    assert px.shape == py.shape == fpr.shape
    assert np.all(np.isfinite(px)) and np.all(np.diff(py) <= 1e-12)


def test_weights_balance_classes(rng: np.random.Generator) -> None:
    y = np.r_[np.ones(900, dtype=np.int64), np.zeros(100, dtype=np.int64)]
    s = rng.normal(size=1000) + y
    w = np.where(y == 1, 1 / 900, 1 / 100)
    assert M.roc_auc(y, s, weights=w) == pytest.approx(M.roc_auc(y, s))  # AUC ignores the prior
    dup = np.r_[s, s]
    assert M.eer(np.r_[y, y], dup)[0] == pytest.approx(M.eer(y, s, weights=np.full(1000, 2.0))[0])


def test_ece_of_a_calibrated_generator_is_small(rng: np.random.Generator) -> None:
    p = rng.uniform(size=50_000)
    y = (rng.uniform(size=p.size) < p).astype(np.int64)
    assert M.ece(y, p) < 0.01
    bins = M.calibration_bins(y, p)
    assert sum(b.count for b in bins) == p.size
    for b in bins:
        assert b.positive_rate == pytest.approx(b.mean_probability, abs=0.03)


def test_ece_of_an_overconfident_generator_is_large(rng: np.random.Generator) -> None:
    p = rng.uniform(size=20_000)
    y = (rng.uniform(size=p.size) < p).astype(np.int64)
    sharpened = np.where(p > 0.5, 1.0, 0.0)  # says 0 or 1, is right 75 % of the time
    assert M.ece(y, sharpened) == pytest.approx(0.25, abs=0.02)


def test_confusion_and_precision_recall() -> None:
    y = np.asarray([1, 1, 1, 0, 0, 0, 0, 1])
    p = np.asarray([0.9, 0.8, 0.3, 0.6, 0.1, 0.2, 0.4, 0.5])
    c = M.confusion(y, p, threshold=0.5)
    assert (c.true_positive, c.false_negative, c.false_positive, c.true_negative) == (3, 1, 1, 3)
    precision, recall, f1 = M.precision_recall_f1(y, p, threshold=0.5)
    assert (precision, recall, f1) == pytest.approx((0.75, 0.75, 0.75))
    assert c.false_positive_rate == pytest.approx(0.25)
    assert c.accuracy == pytest.approx(0.75)


def test_summary_keys_and_ranges(rng: np.random.Generator) -> None:
    y = _labels(200)
    s = rng.normal(size=400) + 2 * y
    out = M.summary(y, s, 1 / (1 + np.exp(-s)), threshold=0.5)
    for key in ("eer", "auc", "precision", "recall", "f1", "ece", "fpr"):
        assert 0.0 <= out[key] <= 1.0
    one_class = M.summary(np.ones(5), np.arange(5.0))
    assert np.isnan(one_class["eer"]) and np.isnan(one_class["auc"])


@pytest.mark.parametrize(
    ("labels", "scores", "match"),
    [
        ([0, 1, 2], [0.1, 0.2, 0.3], "labels"),
        ([0, 1], [0.1], "length"),
        ([0, 1], [0.1, np.nan], "finite"),
        ([1, 1], [0.1, 0.2], "both classes"),
    ],
)
def test_bad_input_raises(labels: list[int], scores: list[float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        M.roc_curve(np.asarray(labels), np.asarray(scores))


# The hand-written formulas that sklearn.metrics replaced (until the restructure of issue 10),
# kept as the reference the library must match on random data, ties and weights included.


def _old_roc_curve(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, ...]:
    order = np.argsort(-s, kind="mergesort")
    s, y, w = s[order], y[order], w[order]
    distinct = np.flatnonzero(np.diff(s)) if s.size > 1 else np.zeros(0, dtype=np.int64)
    ends = np.concatenate([distinct, [s.size - 1]])
    tp = np.cumsum(w * y)[ends]
    fp = np.cumsum(w * (1 - y))[ends]
    tpr = np.concatenate([[0.0], tp / tp[-1]])
    fpr = np.concatenate([[0.0], fp / fp[-1]])
    return fpr, tpr, np.concatenate([[np.inf], s[ends]])


def _old_rank_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    both = np.concatenate([pos, neg])
    order = both.argsort(kind="stable")
    ranks = np.empty(len(both))
    ranks[order] = np.arange(1, len(both) + 1)
    for value in np.unique(both):
        tie = both == value
        ranks[tie] = ranks[tie].mean()
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


@pytest.mark.parametrize("seed", range(5))
def test_sklearn_metrics_match_the_old_formulas(seed: int) -> None:
    from models.training.text_eval import roc_auc as text_roc_auc

    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 400))
    y = (rng.random(n) < 0.4).astype(np.int64)
    y[:2] = (0, 1)
    s = np.round(rng.normal(size=n) + y, 1)  # rounded: many ties
    w = rng.uniform(0.1, 3.0, n)
    for weights in (None, w):
        ww = np.ones(n) if weights is None else weights
        old_fpr, old_tpr, old_thr = _old_roc_curve(y, s, ww)
        fpr, tpr, thr = M.roc_curve(y, s, weights=weights)
        np.testing.assert_allclose(fpr, old_fpr, atol=1e-12)
        np.testing.assert_allclose(tpr, old_tpr, atol=1e-12)
        np.testing.assert_array_equal(thr, old_thr)
        old_auc = float(np.sum(np.diff(old_fpr) * (old_tpr[1:] + old_tpr[:-1]) / 2.0))
        assert M.roc_auc(y, s, weights=weights) == pytest.approx(old_auc, abs=1e-12)
    pos, neg = s[y == 1], s[y == 0]
    assert text_roc_auc(pos, neg) == pytest.approx(_old_rank_auc(pos, neg), abs=1e-12)


# --- cluster bootstrap ---------------------------------------------------------------------------


def test_bootstrap_with_one_group_per_class_is_the_point_estimate() -> None:
    """Each round then redraws the whole data: the vectorised ROC must equal eer/roc_auc."""
    rng = np.random.default_rng(3)
    y = np.r_[np.zeros(40, dtype=np.int64), np.ones(60, dtype=np.int64)]
    s = np.round(y + rng.normal(size=100), 1)  # rounded: ties across classes
    groups = ["person" if v == 0 else "engine" for v in y]
    ci = M.bootstrap_ci(y, s, groups=groups, rounds=20)
    assert ci["eer"] == pytest.approx((M.eer(y, s)[0],) * 2)
    assert ci["auc"] == pytest.approx((M.roc_auc(y, s),) * 2)


def test_bootstrap_by_cluster_is_wider_than_by_row_and_repeatable() -> None:
    rng = np.random.default_rng(4)
    # 6 engines, each with its own offset: rows of one engine are not independent.
    engine = rng.integers(0, 6, size=300)
    y = np.r_[np.zeros(300, dtype=np.int64), np.ones(300, dtype=np.int64)]
    s = np.r_[rng.normal(size=300), 1.0 + 1.5 * rng.normal(size=6)[engine] + rng.normal(size=300)]
    by_cluster = [f"p{i % 60}" for i in range(300)] + [f"e{e}" for e in engine]
    by_row = [str(i) for i in range(600)]
    wide = M.bootstrap_ci(y, s, groups=by_cluster, rounds=400)
    narrow = M.bootstrap_ci(y, s, groups=by_row, rounds=400)
    assert wide == M.bootstrap_ci(y, s, groups=by_cluster, rounds=400)  # seeded
    for name, point in (("eer", M.eer(y, s)[0]), ("auc", M.roc_auc(y, s))):
        assert wide[name][0] <= point <= wide[name][1]
        assert wide[name][1] - wide[name][0] > narrow[name][1] - narrow[name][0]
        assert 0.0 <= wide[name][0] <= wide[name][1] <= 1.0


def test_bootstrap_refuses_mismatched_groups_and_needs_both_classes() -> None:
    y = np.array([0, 1, 1])
    with pytest.raises(ValueError, match="groups"):
        M.bootstrap_ci(y, np.array([0.1, 0.5, 0.9]), groups=["a", "b"])
    ci = M.bootstrap_ci(np.ones(3, dtype=np.int64), np.array([0.1, 0.5, 0.9]), groups="abc")
    assert all(np.isnan(v) for pair in ci.values() for v in pair)


def test_format_with_ci_writes_the_value_and_its_interval_in_one_unit() -> None:
    assert M.format_with_ci(0.125, (0.031, 0.25)) == "12.5 % [3.1 %, 25.0 %]"
    assert M.format_with_ci(0.9123, (0.85, 0.97), pct=False) == "0.912 [0.850, 0.970]"
    assert M.format_with_ci(float("nan"), (0.1, 0.2)) == "-"
