"""Does a stronger classifier than the logistic synth head pay off? Measured on cached features.

Usage: ``.venv/bin/python bench/head_classifiers.py [--families logistic,mlp,...] [--seeds N]``

Needs the cached Whisper+LFCC features of every row (``robocall train`` fills
``$ROBOCALL_CACHE_DIR/synth_features``); no encoder is loaded, so a missing row raises.

Every classifier gets what ``models.training.train_synth.train`` gives the logistic head: the same
train rows (``train_ids``), the same row weights (``fit_weights``: classes balanced, copy-synthesis
rows times a copy weight from ``TrainConfig.copy_weight_grid``), the same selection (lowest mean of
the dev EER on single clips, people vs TTS/VC, and on the dev calls, windows pooled at q0.75), then
the pooling quantile picked on the dev calls and Platt fit on the dev clips and calls. Selection
reads dev only. Families compared, each over a small grid x the copy weights:

- ``logistic``: the shipped head (``fit_logistic``, L2 grid of ``TrainConfig``): the reference.
- ``pca_logistic``: standardise, PCA-whiten to k components (fit on the train rows), logistic.
- ``svm_rbf``: standardise, RBF SVC (gamma "scale"); raw score = decision function.
- ``mlp``: standardise, one ReLU hidden layer (Adam, early stopping on 10 % of train, L2 alpha);
  raw score = the output unit's pre-sigmoid activation.
- ``hgb``: HistGradientBoosting (early stopping on 10 % of train); raw score = its log-odds.

Prints one line per fitted configuration (dev EERs, fit seconds), each family's pick with its
pooling and calibrated dev figures, and the test figures that ``docs/evaluation.md`` reports for
the logistic reference and the best family on dev. Deterministic: fixed seeds, one thread.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from models.synth_head import pool_log_odds
from models.training import metrics as M
from models.training.corpus import CorpusRow
from models.training.evaluate import record, table_row
from models.training.synth_config import TrainConfig
from models.training.synth_data import (
    POOL_QUANTILES,
    ClipFeatures,
    collect_features,
    mixed_rows,
    select_rows,
    train_ids,
)
from models.training.synth_fit import (
    class_weights,
    fit_logistic,
    fit_platt,
    fit_weights,
    is_copy,
    stack,
)

SEED = 0
SELECTION_QUANTILE = 0.75  # as train_synth._pick_fit
Scorer = Callable[[np.ndarray], np.ndarray]  # (n, d) features -> (n,) raw logits
Fitter = Callable[[np.ndarray, np.ndarray, np.ndarray, int], Scorer]  # x, y, row weights, seed
SEEDED = ("mlp", "hgb")  # families whose fit depends on the seed


def standardiser(x: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    mean, scale = x.mean(axis=0), np.maximum(x.std(axis=0), 1e-6)
    return lambda z: (np.asarray(z, dtype=np.float64) - mean) / scale


def logistic(l2: float) -> Fitter:
    def fit(x: np.ndarray, y: np.ndarray, w: np.ndarray, seed: int) -> Scorer:
        mean, scale, coef, b = fit_logistic(x, y, l2=l2, weights=w)
        return lambda z: ((z - mean) / scale) @ coef + b

    return fit


def pca_logistic(k: int, l2: float) -> Fitter:
    from sklearn.decomposition import PCA

    def fit(x: np.ndarray, y: np.ndarray, w: np.ndarray, seed: int) -> Scorer:
        std = standardiser(x)
        pca = PCA(n_components=k, whiten=True, svd_solver="full").fit(std(x))
        mean, scale, coef, b = fit_logistic(pca.transform(std(x)), y, l2=l2, weights=w)
        return lambda z: ((pca.transform(std(z)) - mean) / scale) @ coef + b

    return fit


def svm_rbf(c: float) -> Fitter:
    from sklearn.svm import SVC

    def fit(x: np.ndarray, y: np.ndarray, w: np.ndarray, seed: int) -> Scorer:
        std = standardiser(x)
        model = SVC(C=c, kernel="rbf", gamma="scale", cache_size=500).fit(std(x), y, w)
        return lambda z: model.decision_function(std(z))

    return fit


def mlp(hidden: int, alpha: float) -> Fitter:
    from sklearn.neural_network import MLPClassifier

    def fit(x: np.ndarray, y: np.ndarray, w: np.ndarray, seed: int) -> Scorer:
        std = standardiser(x)
        model = MLPClassifier(
            hidden_layer_sizes=(hidden,), alpha=alpha, early_stopping=True,
            validation_fraction=0.1, n_iter_no_change=10, max_iter=300, random_state=seed,
        ).fit(std(x), y, sample_weight=w)  # fmt: skip
        (w0, w1), (b0, b1) = model.coefs_, model.intercepts_

        # The output unit before its sigmoid: predict_proba saturates to 0/1 and ties ranks.
        return lambda z: (np.maximum(std(z) @ w0 + b0, 0.0) @ w1 + b1)[:, 0]

    return fit


def hgb(max_leaf_nodes: int, learning_rate: float) -> Fitter:
    from sklearn.ensemble import HistGradientBoostingClassifier

    def fit(x: np.ndarray, y: np.ndarray, w: np.ndarray, seed: int) -> Scorer:
        model = HistGradientBoostingClassifier(
            learning_rate=learning_rate, max_leaf_nodes=max_leaf_nodes, max_iter=300,
            l2_regularization=1.0, early_stopping=True, validation_fraction=0.1,
            n_iter_no_change=20, random_state=seed,
        ).fit(x, y, sample_weight=w)  # fmt: skip
        return lambda z: model.decision_function(np.asarray(z, dtype=np.float64))

    return fit


# Grids listed most regularised first: ties keep the earlier entry (as _pick_fit).
FAMILIES: dict[str, list[tuple[str, Fitter]]] = {
    "logistic": [(f"l2={v:g}", logistic(v)) for v in (1.0, 0.1, 0.01, 0.001)],
    "pca_logistic": [
        (f"k={k} l2={v:g}", pca_logistic(k, v)) for k in (64, 256) for v in (1.0, 0.1, 0.01)
    ],
    "svm_rbf": [(f"C={c:g}", svm_rbf(c)) for c in (0.3, 1.0, 3.0, 10.0)],
    "mlp": [(f"h={h} alpha={a:g}", mlp(h, a)) for h in (64, 256) for a in (10.0, 1.0, 0.1)],
    "hgb": [(f"leaves={n} lr={lr:g}", hgb(n, lr)) for n in (7, 31) for lr in (0.05, 0.2)],
}


@dataclass(frozen=True, slots=True)
class Data:
    cfg: TrainConfig
    rows: list[CorpusRow]  # every selected single-clip row
    x: np.ndarray  # (n, d) train windows (telephone variant)
    y: np.ndarray  # (n,)
    train_rows: list[CorpusRow]
    inf: dict[str, ClipFeatures]  # inference-path windows of dev/test clips and calls
    dev: list[CorpusRow]  # dev single clips, people vs TTS/VC (no copy-synthesis)
    dev_calls: list[CorpusRow]
    test: list[CorpusRow]  # test single clips, all robots
    test_calls: list[CorpusRow]


def load(cfg: TrainConfig) -> Data:
    """Cached features and the splits, exactly as ``train_synth.train`` builds them."""
    rows, calls = select_rows(cfg), mixed_rows(cfg)
    tel = collect_features(rows, variant="telephone", cfg=cfg, encoder=None)
    ev = [r for r in rows if r.split in ("dev", "test")]
    inf = collect_features([*ev, *calls], variant="inference", cfg=cfg, encoder=None)
    fit_ids = train_ids(rows, cfg)
    x, y, kept = stack(tel, [r for r in rows if r.id in fit_ids])
    return Data(
        cfg, rows, x, y, kept, inf,
        dev=[r for r in ev if r.split == "dev" and r.id in inf and not is_copy(r, cfg)],
        dev_calls=[r for r in calls if r.split == "dev" and r.id in inf],
        test=[r for r in ev if r.split == "test" and r.id in inf],
        test_calls=[r for r in calls if r.split == "test" and r.id in inf],
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Fitted:
    family: str
    params: str
    copy_weight: float
    seed: int
    window_scores: dict[str, np.ndarray]  # raw logit per inference window, by row id
    dev_clips_eer: float
    dev_calls_eer: float
    fit_s: float

    @property
    def dev_eer(self) -> float:
        return (self.dev_clips_eer + self.dev_calls_eer) / 2

    def pooled(
        self, rows: Sequence[CorpusRow], inf: dict[str, ClipFeatures], q: float
    ) -> np.ndarray:
        out = []
        for r in rows:
            w = inf[r.id].windows
            out.append(pool_log_odds(self.window_scores[r.id], w[:, 1] - w[:, 0], quantile=q))
        return np.asarray(out)


def labels(rows: Sequence[CorpusRow]) -> np.ndarray:
    return np.asarray([r.label == "robot" for r in rows], dtype=np.int64)


def fit_one(data: Data, family: str, params: str, copy_weight: float, seed: int) -> Fitted:
    """Fit one configuration; score every dev/test window; dev EERs pooled at q0.75."""
    fitter = dict(FAMILIES[family])[params]
    c = data.cfg.resolved(l2=data.cfg.l2, copy_weight=copy_weight)
    started = time.monotonic()
    scorer = fitter(data.x, data.y, fit_weights(data.train_rows, c), seed)
    fit_s = time.monotonic() - started
    rows = [*data.dev, *data.dev_calls, *data.test, *data.test_calls]
    scores = {r.id: np.asarray(scorer(data.inf[r.id].x)) for r in rows}
    partial = Fitted(family, params, copy_weight, seed, scores, math.nan, math.nan, fit_s)
    eers = [
        M.eer(labels(s), partial.pooled(s, data.inf, SELECTION_QUANTILE))[0]
        for s in (data.dev, data.dev_calls)
    ]
    return dataclasses.replace(partial, dev_clips_eer=eers[0], dev_calls_eer=eers[1])


def fit_all(data: Data, families: Sequence[str]) -> Iterator[Fitted]:
    """Every (family, params, copy weight) of the grids, seed ``SEED``."""
    for family in families:
        for params, _ in FAMILIES[family]:
            for cw in sorted(data.cfg.copy_weight_grid):
                yield fit_one(data, family, params, cw, SEED)


@dataclass(frozen=True, slots=True)
class Final:
    fitted: Fitted
    quantile: float
    platt: tuple[float, float]
    dev_clips_eer: float  # at the picked quantile
    dev_calls_eer: float


def finalise(f: Fitted, data: Data) -> Final:
    """Pooling quantile on the dev calls (ties: lower), then Platt on dev clips + calls."""
    y_calls = labels(data.dev_calls)
    q = min(POOL_QUANTILES, key=lambda q: M.eer(y_calls, f.pooled(data.dev_calls, data.inf, q))[0])
    cal = [*data.dev, *data.dev_calls]
    a, b = fit_platt(f.pooled(cal, data.inf, q), labels(cal))
    return Final(
        f, q, (a, b),
        M.eer(labels(data.dev), f.pooled(data.dev, data.inf, q))[0],
        M.eer(y_calls, f.pooled(data.dev_calls, data.inf, q))[0],
    )  # fmt: skip


def test_figures(final: Final, data: Data) -> tuple[dict[str, dict[str, float]], float]:
    """The rows of docs/evaluation.md (inference path, calibrated, shipped threshold) and the
    test clips' ECE with the classes weighted equally."""
    f, cfg = final.fitted, data.cfg
    a, b = final.platt

    def recs(rows: Sequence[CorpusRow]) -> list[dict[str, object]]:
        lo = a * f.pooled(rows, data.inf, final.quantile) + b
        return [record(r, "inference", float(v)) for r, v in zip(rows, lo, strict=True)]

    test, calls = recs(data.test), recs(data.test_calls)
    c = cfg.resolved(l2=cfg.l2, copy_weight=f.copy_weight)
    ids = {r.id for r in data.train_rows}
    seen = {
        r.engine_family
        for r in data.rows
        if r.id in ids and r.label == "robot" and not (is_copy(r, c) and c.copy_weight == 0)
    }
    thr = cfg.threshold
    y = np.asarray([r["y"] for r in test])
    ece_balanced = M.ece(y, np.asarray([r["p"] for r in test]), weights=class_weights(y))
    table = {
        "test, inference channel": table_row(test, thr),
        "test, seen engines": table_row(
            [r for r in test if not r["y"] or r["engine_family"] in seen], thr
        ),
        "test, TTS and VC robots only": table_row(
            [r for r in test if not r["y"] or r["kind"] not in cfg.copy_kinds], thr
        ),
        "test calls, all": table_row(calls, thr),
    }
    return table, ece_balanced


def pct(v: float) -> str:
    return "-" if math.isnan(v) else f"{100 * v:.1f} %"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=",".join(FAMILIES), help="comma-separated subset")
    parser.add_argument(
        "--seeds",
        type=int,
        default=0,
        help=f"refit the pick of each seeded family ({', '.join(SEEDED)}) with seeds "
        f"{SEED + 1}..N (dev figures only; selection stays on seed {SEED})",
    )
    args = parser.parse_args(argv)
    families = [f for f in args.families.split(",") if f]
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        parser.error(f"unknown families: {unknown}; known: {list(FAMILIES)}")
    logging.basicConfig(level=logging.WARNING)
    started = time.monotonic()
    data = load(TrainConfig())
    print(
        f"train windows {data.x.shape[0]} x {data.x.shape[1]}; dev clips {len(data.dev)}, "
        f"dev calls {len(data.dev_calls)}; test clips {len(data.test)}, "
        f"test calls {len(data.test_calls)}; loaded in {time.monotonic() - started:.0f} s\n"
    )
    print(
        "| family | params | copy weight | dev clips EER | dev calls EER | dev EER (mean) | fit s |"
    )
    print("|---|---|---|---|---|---|---|")
    best: dict[str, Fitted] = {}
    for f in fit_all(data, families):
        print(
            f"| {f.family} | {f.params} | {f.copy_weight:g} | {pct(f.dev_clips_eer)} | "
            f"{pct(f.dev_calls_eer)} | {pct(f.dev_eer)} | {f.fit_s:.1f} |",
            flush=True,
        )
        if f.family not in best or f.dev_eer < best[f.family].dev_eer:
            best[f.family] = f
    finals = {k: finalise(f, data) for k, f in best.items()}
    print("\nEach family's pick (dev only): pooling quantile on the dev calls, then Platt.\n")
    print("| family | params | copy | dev EER (mean, q0.75) | q | dev clips EER | dev calls EER |")
    print("|---|---|---|---|---|---|---|")
    for k, fin in finals.items():
        f = fin.fitted
        print(
            f"| {k} | {f.params} | {f.copy_weight:g} | {pct(f.dev_eer)} | q{fin.quantile:g} | "
            f"{pct(fin.dev_clips_eer)} | {pct(fin.dev_calls_eer)} |"
        )
    for k in (k for k in SEEDED if k in best and args.seeds > 0):
        f = best[k]
        refits = [f] + [
            fit_one(data, k, f.params, f.copy_weight, SEED + i) for i in range(1, args.seeds + 1)
        ]
        print(
            f"\nSeed spread, {k} pick ({f.params}, copy weight {f.copy_weight:g}), dev at q0.75:\n"
        )
        print("| seed | dev clips EER | dev calls EER | dev EER (mean) |")
        print("|---|---|---|---|")
        for r in refits:
            print(
                f"| {r.seed} | {pct(r.dev_clips_eer)} | {pct(r.dev_calls_eer)} | {pct(r.dev_eer)} |"
            )
        means = [r.dev_eer for r in refits]
        print(
            f"| mean of {len(refits)} | | | {pct(float(np.mean(means)))} "
            f"(min {pct(min(means))}, max {pct(max(means))}) |"
        )
    winner = min(finals, key=lambda k: (finals[k].fitted.dev_eer, k != "logistic"))
    for k in dict.fromkeys([k for k in ("logistic", winner) if k in finals]):
        f = finals[k].fitted
        role = "best on dev" if k == winner else "reference"
        print(f"\nTest figures, {k} ({role}; {f.params}, copy weight {f.copy_weight:g}):\n")
        print("| set | humans | robots | EER | AUC | FPR @0.5 | miss @0.5 | ECE |")
        print("|---|---|---|---|---|---|---|---|")
        figures, ece_balanced = test_figures(finals[k], data)
        for name, r in figures.items():
            print(
                f"| {name} | {r['n_human']:.0f} | {r['n_robot']:.0f} | {pct(r['eer'])} | "
                f"{r['auc']:.3f} | {pct(r['fpr'])} | {pct(r['miss'])} | {r['ece']:.3f} |"
            )
        print(f"\nECE at even prior (test clips, class-balanced weights): {ece_balanced:.3f}")
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    with threadpool_limits(limits=1):  # one core: deterministic BLAS sums, the ASR job keeps one
        raise SystemExit(main())
