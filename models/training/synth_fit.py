"""Fitting the synthetic-voice head: row weights, the L2 logistic regression, Platt scaling.

Both fits are scipy L-BFGS rather than sklearn: the logistic head's penalty leaves the
intercept free and is scaled per unit of weighted mean loss, and Platt's fit uses smoothed
(non-0/1) targets, which ``LogisticRegression`` does not take; refitting through sklearn would
also move the shipped head's coefficients beyond float noise (different stopping rules).
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import optimize

from models.synth_head import (
    AASIST_DIM,
    LFCC_COEFS,
    LogisticHead,
    PeopleDensity,
    pool_log_odds,
)
from models.training.corpus import (
    CorpusRow,
)
from models.training.synth_config import TrainConfig
from models.training.synth_data import ClipFeatures
from pipeline.fuse import sigmoid

log = logging.getLogger(__name__)

MIN_DENSITY_PEOPLE = 3  # fewest people a people density is fitted on


# ---------------------------------------------------------------------------------------------
# Fitting


def class_weights(labels: np.ndarray) -> np.ndarray:
    """Per-row weights giving each class the same total weight (mean weight 1)."""
    y = np.asarray(labels)
    n1, n0 = max(int(y.sum()), 1), max(int((1 - y).sum()), 1)
    return np.where(y == 1, y.size / (2 * n1), y.size / (2 * n0))


def fit_logistic(
    x: np.ndarray,
    y: np.ndarray,
    *,
    l2: float,
    weights: np.ndarray | None = None,
    nuisance: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """L2-regularised logistic regression on standardised features (convex, L-BFGS from 0).

    ``nuisance``, given the standardised rows, returns orthonormal directions (k, d)
    (:func:`nuisance_directions`) projected out of them before the fit. The penalty keeps the
    coefficients off those directions, and they are made exactly orthogonal to them, so
    ``z @ coef`` equals the projected rows' logit: the head needs no projection when scoring.

    Returns
    -------
    mean, scale, coef : np.ndarray [shape=(d,)]
    intercept : float
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    w = class_weights(y) if weights is None else np.asarray(weights, dtype=np.float64)
    mean = x.mean(axis=0)
    scale = np.maximum(x.std(axis=0), 1e-6)
    z = (x - mean) / scale
    directions = nuisance(z) if nuisance is not None else np.zeros((0, z.shape[1]))
    z = project_out(z, directions)
    n, d = z.shape
    total = w.sum()

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        coef, b = theta[:d], theta[d]
        logit = z @ coef + b
        # log(1 + exp(-s*logit)) with s = +-1, stable
        margin = np.where(y == 1, logit, -logit)
        nll = np.logaddexp(0.0, -margin)
        p = sigmoid(logit)
        g = w * (p - y)
        value = float(np.sum(w * nll) / total + 0.5 * l2 * coef @ coef)
        grad = np.concatenate([z.T @ g / total + l2 * coef, [g.sum() / total]])
        return value, grad

    res = optimize.minimize(
        loss, np.zeros(d + 1), jac=True, method="L-BFGS-B", options={"maxiter": 2000, "gtol": 1e-7}
    )
    coef = project_out(res.x[:d], directions)
    return mean, scale, coef, float(res.x[d])


def nuisance_directions(
    z: np.ndarray,
    y: np.ndarray,
    groups: Sequence[str],
    *,
    dim: int,
    classes: str = "people",
    col_blocks: np.ndarray | None = None,
) -> np.ndarray:
    """Nuisance attribute projection (issue 12): the directions along which the sources of one
    class differ, to be projected out of the features before a linear fit.

    Within each class counted (the people, or both classes), each source's mean row minus the
    mean of those source means (every source counts once, as in source-balanced weights);
    the top right singular vectors of these centred means are the between-source scatter's
    leading eigenvectors. The sign of a singular vector does not change the projection.

    Parameters
    ----------
    z : np.ndarray [shape=(n, d)]
        Standardised feature rows.
    y : np.ndarray [shape=(n,)]
        1 robot, 0 person.
    groups : sequence of str, length n
        The recording source of each row.
    dim : int
        Directions kept (over all columns, or in each block); fewer when the sources span fewer.
    classes : str
        "people" (the people sources' scatter) or "both" (each class's, stacked).
    col_blocks : np.ndarray [shape=(d,)], optional
        The block of each column: ``dim`` directions in each block, each zero outside it.

    Returns
    -------
    np.ndarray [shape=(k, d)]
        Orthonormal rows, k <= ``dim`` (times the blocks).
    """
    z = np.asarray(z, dtype=np.float64)
    y = np.asarray(y)
    g = np.asarray(list(groups), dtype=object)
    centred = []
    for cls in (0, 1) if classes == "both" else (0,):
        means = np.stack([z[(y == cls) & (g == s)].mean(axis=0)
                          for s in sorted(set(g[y == cls].tolist()))])  # fmt: skip
        if len(means) > 1:
            centred.append(means - means.mean(axis=0))
    d = z.shape[1]
    if not centred or dim < 1:
        return np.zeros((0, d))
    scatter = np.concatenate(centred)
    blocks = np.zeros(d, dtype=object) if col_blocks is None else np.asarray(col_blocks)
    out = []
    for block in dict.fromkeys(blocks.tolist()):
        cols = blocks == block
        _, sv, vt = np.linalg.svd(scatter[:, cols], full_matrices=False)
        rank = int((sv > sv[0] * 1e-10).sum()) if sv.size and sv[0] > 0 else 0
        part = np.zeros((min(dim, rank), d))
        part[:, cols] = vt[: part.shape[0]]
        out.append(part)
    return np.concatenate(out)


def nuisance_of(
    y: np.ndarray, rows: Sequence[CorpusRow], cfg: TrainConfig, *, col_blocks: np.ndarray | None
) -> Callable[[np.ndarray], np.ndarray] | None:
    """``fit_logistic``'s ``nuisance`` for ``cfg``'s projection of the sources of ``rows`` (its
    labels ``y``; ``col_blocks``, the block of each column, read when ``cfg.nap_per_block``);
    None when ``cfg.nap_dim`` is 0."""
    if cfg.nap_dim == 0:
        return None
    if cfg.nap_per_block and col_blocks is None:
        raise ValueError("nap_per_block needs the block of each column")
    return functools.partial(
        nuisance_directions, y=np.asarray(y), groups=[r.source for r in rows], dim=cfg.nap_dim,
        classes=cfg.nap_classes, col_blocks=col_blocks if cfg.nap_per_block else None,
    )  # fmt: skip


def project_out(z: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """``z`` with its part along the orthonormal ``directions`` (k, d) removed."""
    return np.asarray(z - (z @ directions.T) @ directions)


def fit_platt(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Platt scaling ``a * score + b`` with class-balanced weights (log-odds at even prior).

    Uses Platt's smoothed targets ((n+ + 1)/(n+ + 2), 1/(n- + 2)) against over-confidence on a
    small validation split.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    n1, n0 = y.sum(), (1 - y).sum()
    t = np.where(y == 1, (n1 + 1) / (n1 + 2), 1 / (n0 + 2))
    w = class_weights(y)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        logit = theta[0] * s + theta[1]
        p = sigmoid(logit)
        nll = np.logaddexp(0.0, logit) - t * logit
        g = w * (p - t)
        return float(np.sum(w * nll)), np.asarray([np.sum(g * s), np.sum(g)])

    res = optimize.minimize(loss, np.asarray([1.0, 0.0]), jac=True, method="L-BFGS-B")
    return float(res.x[0]), float(res.x[1])


def block_columns(blocks: Sequence[str], width: int) -> dict[str, np.ndarray]:
    """Column indices of each block in a cached feature row of ``width`` values (the blocks in
    the order they were concatenated; whisper takes what LFCC and AASIST leave)."""
    fixed = {"lfcc": 6 * LFCC_COEFS, "aasist": AASIST_DIM}
    sizes = {b: fixed.get(b, width - sum(fixed[o] for o in blocks if o in fixed)) for b in blocks}
    if sum(sizes.values()) != width or min(sizes.values()) < 1:
        raise ValueError(f"blocks {tuple(blocks)} do not add up to {width} columns: {sizes}")
    bounds = np.cumsum([0, *sizes.values()])
    return {b: np.arange(bounds[i], bounds[i + 1]) for i, b in enumerate(blocks)}


def stack(
    feats: dict[str, ClipFeatures], rows: Sequence[CorpusRow]
) -> tuple[np.ndarray, np.ndarray, list[CorpusRow]]:
    """Single-window matrix (telephone variant): X (n, d), y (n,), the rows kept."""
    kept = [r for r in rows if r.id in feats]
    x = np.stack([feats[r.id].x[0] for r in kept]) if kept else np.zeros((0, 0))
    y = np.asarray([1 if r.label == "robot" else 0 for r in kept], dtype=np.int64)
    return x, y, kept


def pooled_log_odds(head: LogisticHead, feats: ClipFeatures, *, quantile: float) -> float:
    """The scorer's clip score from cached per-window features."""
    values = head.log_odds(feats.x)
    durations = feats.windows[:, 1] - feats.windows[:, 0]
    return pool_log_odds(values, durations, quantile=quantile)


def fit_head(
    x: np.ndarray,
    y: np.ndarray,
    *,
    cfg: TrainConfig,
    rows: Sequence[CorpusRow],
    meta: dict[str, Any] | None = None,
) -> LogisticHead:
    """Logistic head on (x, y) of ``rows`` with ``cfg``'s resolved penalty and row weights
    (:func:`row_weights`), the sources' nuisance directions projected out when ``cfg.nap_dim``
    is above 0 (:func:`nuisance_directions`; the people density stays on the raw features),
    plus the people density of (x, y) at ``cfg.density_alpha`` when that is above 0."""
    names = None
    if cfg.nap_dim > 0 and cfg.nap_per_block:
        names = np.empty(np.shape(x)[1], dtype=object)
        for block, cols in block_columns(cfg.spec.blocks, np.shape(x)[1]).items():
            names[cols] = block
    mean, scale, coef, intercept = fit_logistic(
        x, y, l2=cfg.l2, weights=row_weights(rows, cfg),
        nuisance=nuisance_of(y, rows, cfg, col_blocks=names),
    )  # fmt: skip
    head = LogisticHead(mean, scale, coef, intercept, meta=dict(meta or {}))
    if cfg.density_alpha > 0:
        head = head.with_density(fit_density(x, y, dim=cfg.density_dim), cfg.density_alpha)
    return head


def fit_density(x: np.ndarray, y: np.ndarray, *, dim: int) -> PeopleDensity:
    """:class:`PeopleDensity` of the rows with ``y == 0`` (full SVD: deterministic)."""
    from sklearn.covariance import LedoitWolf
    from sklearn.decomposition import PCA

    people = np.asarray(x, dtype=np.float64)[np.asarray(y) == 0]
    if len(people) < MIN_DENSITY_PEOPLE:
        raise ValueError(
            f"the people density needs >= {MIN_DENSITY_PEOPLE} people, got {len(people)}"
        )
    mean, scale = people.mean(axis=0), np.maximum(people.std(axis=0), 1e-6)
    pca = PCA(n_components=min(dim, len(people) - 1, people.shape[1]), svd_solver="full")
    p = pca.fit_transform((people - mean) / scale)
    cov = LedoitWolf().fit(p)
    precision = np.linalg.inv(cov.covariance_)
    d = p - cov.location_
    dist = np.einsum("ij,jk,ik->i", d, precision, d)
    return PeopleDensity(
        mean=mean, scale=scale, centre=pca.mean_, components=pca.components_,
        location=cov.location_, precision=precision,
        offset=float(dist.mean()), spread=float(max(dist.std(), 1e-6)),
    )  # fmt: skip


def is_copy(row: CorpusRow, cfg: TrainConfig) -> bool:
    """A copy-synthesis robot row (down-weighted in fitting, left out of dev selection)."""
    return row.label == "robot" and row.kind in cfg.copy_kinds


def report_sets(
    test: Sequence[CorpusRow],
    cfg: TrainConfig,
    *,
    mixtures: Sequence[CorpusRow] = (),
) -> dict[str, list[CorpusRow]]:
    """The test subsets the voice studies report, the test people in each: TTS/VC robots,
    copy-synthesis robots, the held-out commercial voices, the call ``mixtures`` (as given, if
    any) and the TTS/VC set per language (``bench/voice_generalisation.py``, ``aasist_probe.py``).
    """
    people = [r for r in test if r.label == "human"]
    sets = {
        "test TTS/VC": [r for r in test if r.label == "human" or not is_copy(r, cfg)],
        "test copy synthesis": [r for r in test if r.label == "human" or is_copy(r, cfg)],
        "held-out commercial": people + [r for r in test if r.source == "commercial_tts"],
    }
    if mixtures:
        sets["test call mixtures"] = list(mixtures)
    for lang in ("en", "zh"):
        sets[f"test TTS/VC {lang}"] = [r for r in sets["test TTS/VC"] if r.language == lang]
    return sets


def fit_weights(rows: Sequence[CorpusRow], cfg: TrainConfig) -> np.ndarray:
    """Row weights: copy-synthesis rows times ``cfg.copy_weight``, then classes balanced."""
    y = np.asarray([r.label == "robot" for r in rows], dtype=np.int64)
    w = np.asarray([cfg.copy_weight if is_copy(r, cfg) else 1.0 for r in rows])
    totals = np.where(y == 1, w[y == 1].sum(), w[y == 0].sum())
    return np.asarray(w / np.maximum(totals, 1e-12) * y.size / 2)


def source_balanced_weights(rows: Sequence[CorpusRow], cfg: TrainConfig) -> np.ndarray:
    """Row weights under which, within each class, every source carries the same total; copy
    rows then times ``cfg.copy_weight``; classes balanced (mean weight 1)."""
    per_source = Counter((r.label, r.source) for r in rows)
    w = np.asarray([1.0 / per_source[(r.label, r.source)] for r in rows])
    w *= np.asarray([cfg.copy_weight if is_copy(r, cfg) else 1.0 for r in rows])
    y = np.asarray([r.label == "robot" for r in rows])
    totals = np.where(y, w[y].sum(), w[~y].sum())
    return np.asarray(w / np.maximum(totals, 1e-12) * len(rows) / 2)


def row_weights(rows: Sequence[CorpusRow], cfg: TrainConfig) -> np.ndarray:
    """The row weights of ``cfg``'s resolved ``row_weights``: :func:`fit_weights` ("class") or
    :func:`source_balanced_weights` ("source")."""
    if cfg.row_weights == "source":
        return source_balanced_weights(rows, cfg)
    return fit_weights(rows, cfg)
