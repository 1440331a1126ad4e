"""Issue 12 measurements on cached features: training objectives, and score vs call length.

Usage: ``.venv/bin/python bench/voice_generalisation.py [--manifests shared,tts_en,resynth,vocoded]
[--objectives two_class,oc_softmax,human_density] [--weights models/weights/synth_head.npz]``

Needs the cached Whisper+LFCC features of every row (``robocall train`` fills
``$ROBOCALL_CACHE_DIR/synth_features``); no encoder is loaded. Objectives:

- ``two_class``: the shipped head (``fit_logistic``, class-balanced, L2 grid x copy weights).
- ``oc_softmax``: one-class softmax (Zhang, Jiang & Li, "One-class learning towards synthetic
  voice spoofing detection", IEEE SPL 2021): a linear 32-d embedding of the standardised
  features, L2-normalised, scored by its cosine to one learned direction; people are pulled
  above margin 0.9, robots pushed below 0.2 (scale 20). The embedding is the part a deep
  front end would learn; here it sits on frozen Whisper + LFCC statistics.
- ``human_density``: people only. PCA (64) of the standardised people's windows, Ledoit-Wolf
  covariance; the score is the Mahalanobis distance (robots are whatever is far from people).

Each objective is judged as ``robocall evaluate`` judges the shipped head: leave-one-engine-out
and leave-one-source-out with settings chosen inside each fold (``nested``, 25 % of the fold's
speakers), and on the test split (people vs TTS/VC, the held-out commercial voices, English and
Mandarin apart) with the setting chosen on the "select" half of dev; windows pooled by median.
EER with 95 % bootstrap intervals by speaker / engine. Deterministic (fixed torch seed, one
thread).

Call length (``--weights``): the shipped head's pooled score of each test call mixture
(``mixed.jsonl``) from its first 5, 15 and 60 s of windows only (a window counts when it ends
within the cut), at every pooling quantile the head could pick; EER and AUC per cut.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from models.synth_head import pool_log_odds
from models.training import metrics as M
from models.training.corpus import CorpusRow, dev_halves, hash_unit, leave_one_out_folds
from models.training.evaluate import NESTED_SALT, NESTED_VAL_SHARE, ci_group
from models.training.synth_data import (
    ClipFeatures,
    TrainConfig,
    collect_features,
    mixed_rows,
    select_rows,
    train_ids,
)
from models.training.synth_fit import fit_logistic, fit_weights, is_copy, stack

Scorer = Callable[[np.ndarray], np.ndarray]  # windows (n, d) -> robot score (n,)
Fitter = Callable[[np.ndarray, np.ndarray, np.ndarray], Scorer]  # x, y, row weights
SEED = 0
EMBED_DIM = 32
OC_MARGINS = (0.9, 0.2)  # people above, robots below (cosine)
OC_SCALE = 20.0
PCA_DIM = 64


def two_class(l2: float) -> Fitter:
    def fit(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> Scorer:
        mean, scale, coef, b = fit_logistic(x, y, l2=l2, weights=w)
        return lambda z: ((z - mean) / scale) @ coef + b

    return fit


def oc_softmax(weight_decay: float) -> Fitter:
    def fit(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> Scorer:
        import torch

        torch.manual_seed(SEED)
        torch.set_num_threads(1)
        mean, scale = x.mean(axis=0), np.maximum(x.std(axis=0), 1e-6)
        z = torch.tensor((x - mean) / scale, dtype=torch.float32)
        proj = torch.nn.Linear(z.shape[1], EMBED_DIM)
        centre = torch.nn.Parameter(torch.randn(EMBED_DIM))
        human = torch.tensor(y == 0)
        weights = torch.tensor(w / w.sum(), dtype=torch.float32)
        opt = torch.optim.Adam([*proj.parameters(), centre], lr=1e-2, weight_decay=weight_decay)

        def cosine(v: torch.Tensor) -> torch.Tensor:
            e = torch.nn.functional.normalize(proj(v), dim=1)
            return e @ torch.nn.functional.normalize(centre, dim=0)

        for _ in range(300):
            opt.zero_grad()
            c = cosine(z)
            m_h, m_r = OC_MARGINS
            margin = torch.where(human, m_h - c, c - m_r)
            loss = (weights * torch.nn.functional.softplus(OC_SCALE * margin)).sum()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()

        def score(v: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                t = torch.tensor((v - mean) / scale, dtype=torch.float32)
                return np.asarray(-cosine(t).numpy(), dtype=np.float64)

        return score

    return fit


def human_density(shrink: float) -> Fitter:
    def fit(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> Scorer:
        from sklearn.covariance import LedoitWolf
        from sklearn.decomposition import PCA

        people = x[y == 0]
        mean, scale = people.mean(axis=0), np.maximum(people.std(axis=0), 1e-6)
        pca = PCA(n_components=min(PCA_DIM, len(people) - 1), random_state=SEED)
        p = pca.fit_transform((people - mean) / scale)
        cov = LedoitWolf().fit(p)
        precision = np.linalg.inv(cov.covariance_ + shrink * np.eye(p.shape[1]))

        def score(v: np.ndarray) -> np.ndarray:
            d = pca.transform((v - mean) / scale) - cov.location_
            return np.asarray(np.einsum("ij,jk,ik->i", d, precision, d), dtype=np.float64)

        return score

    return fit


OBJECTIVES: dict[str, list[tuple[str, Fitter]]] = {
    "two_class": [(f"l2={v:g}", two_class(v)) for v in TrainConfig().l2_grid],
    "oc_softmax": [(f"wd={v:g}", oc_softmax(v)) for v in (1e-4, 1e-2)],
    "human_density": [(f"shrink={v:g}", human_density(v)) for v in (0.0, 1.0)],
}


def labels(rows: Sequence[CorpusRow]) -> np.ndarray:
    return np.asarray([r.label == "robot" for r in rows], dtype=np.int64)


def candidates(objective: str, cfg: TrainConfig) -> list[tuple[str, Fitter, TrainConfig]]:
    """Every (setting, copy weight) of an objective (people-only ones ignore copy weights)."""
    weights = (0.0,) if objective == "human_density" else cfg.copy_weight_grid
    return [
        (f"{name} copy={cw:g}", fitter, cfg.resolved(l2=cfg.l2, copy_weight=cw))
        for name, fitter in OBJECTIVES[objective]
        for cw in weights
    ]


def nested(
    objective: str, x: np.ndarray, y: np.ndarray, rows: Sequence[CorpusRow], cfg: TrainConfig
) -> tuple[Scorer, str]:
    """``evaluate.nested_fit`` for any objective: choose on 25 % of the speakers, refit on all."""
    val = np.asarray(
        [hash_unit(f"speaker:{r.speaker}", salt=NESTED_SALT) < NESTED_VAL_SHARE for r in rows]
    )
    scored = val & ~np.asarray([is_copy(r, cfg) for r in rows])
    fit_rows = [r for r, v in zip(rows, val, strict=True) if not v]
    best: tuple[float, str, Fitter, TrainConfig] | None = None
    for name, fitter, c in candidates(objective, cfg):
        if not (M.has_both_classes(y[scored]) and M.has_both_classes(y[~val])):
            break
        s = fitter(x[~val], y[~val], fit_weights(fit_rows, c))(x[scored])
        e = M.eer(y[scored], s)[0]
        if best is None or e < best[0]:
            best = (e, name, fitter, c)
    _, name, fitter, c = best or (0.0, *candidates(objective, cfg)[0])
    return fitter(x, y, fit_weights(rows, c)), name


def fold_table(
    objective: str,
    rows: Sequence[CorpusRow],
    tel: dict[str, ClipFeatures],
    cfg: TrainConfig,
    field: str,
) -> dict[str, tuple[float, str]]:
    kept = [r for r in rows if r.id in tel]
    out = {}
    for held_out, train_idx, test_idx in leave_one_out_folds(kept, field=field, min_rows=20):
        x, y, fit_rows = stack(tel, [kept[i] for i in train_idx])
        if not M.has_both_classes(y):
            continue
        scorer, chosen = nested(objective, x, y, fit_rows, cfg)
        xt, yt, _ = stack(tel, [kept[i] for i in test_idx])
        out[held_out] = (M.eer(yt, scorer(xt))[0], chosen)
    return out


def pooled(scorer: Scorer, rows: Sequence[CorpusRow], inf: dict[str, ClipFeatures]) -> np.ndarray:
    out = []
    for r in rows:
        w = inf[r.id].windows
        out.append(pool_log_odds(scorer(inf[r.id].x), w[:, 1] - w[:, 0], quantile=0.5))
    return np.asarray(out)


def eer_ci(rows: Sequence[CorpusRow], s: np.ndarray) -> str:
    y = labels(rows)
    if not M.has_both_classes(y):
        return "-"
    lo, hi = M.bootstrap_ci(y, s, groups=[ci_group(r) for r in rows])["eer"]
    return f"{100 * M.eer(y, s)[0]:.1f} [{100 * lo:.1f}-{100 * hi:.1f}] (n={len(rows)})"


def call_length_table(weights: str, cfg: TrainConfig) -> None:
    """EER/AUC of the test call mixtures scored from their first 5 / 15 / 60 s only."""
    from models.synth_head import LogisticHead
    from models.training.synth_data import POOL_QUANTILES

    head = LogisticHead.load(Path(weights))
    calls = mixed_rows(cfg, splits=("test",))
    inf = collect_features(calls, variant="inference", cfg=cfg, encoder=None)
    calls = [r for r in calls if r.id in inf]
    print(f"== call length: {len(calls)} test call mixtures, head {weights}")
    for cut_s in (5.0, 15.0, 60.0):
        kept: list[CorpusRow] = []
        scores: dict[float, list[float]] = {q: [] for q in POOL_QUANTILES}
        for r in calls:
            f = inf[r.id]
            inside = f.windows[:, 1] <= cut_s
            if not inside.any():
                continue
            kept.append(r)
            values = head.log_odds(f.x[inside])
            w = f.windows[inside]
            for q in POOL_QUANTILES:
                scores[q].append(pool_log_odds(values, w[:, 1] - w[:, 0], quantile=q))
        y = labels(kept)
        cells = [
            f"q{q:g}{'*' if q == head.pool_quantile else ''} EER "
            f"{100 * M.eer(y, np.asarray(s))[0]:.1f} AUC {M.roc_auc(y, np.asarray(s)):.3f}"
            for q, s in scores.items()
        ]
        print(f"  first {cut_s:g} s ({len(kept)} calls with a window): " + "; ".join(cells))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifests", default=",".join(TrainConfig().manifests))
    parser.add_argument("--objectives", default=",".join(OBJECTIVES), help="'' for none")
    parser.add_argument("--weights", help="also score test calls cut to 5/15/60 s with this head")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    cfg = TrainConfig(manifests=tuple(args.manifests.split(",")))
    if args.weights:
        call_length_table(args.weights, cfg)
    if not args.objectives:
        return 0
    rows, calls = select_rows(cfg), mixed_rows(cfg)
    tel = collect_features(rows, variant="telephone", cfg=cfg, encoder=None)
    ev = [r for r in rows if r.split in ("dev", "test")]
    inf = collect_features([*ev, *calls], variant="inference", cfg=cfg, encoder=None)
    fit_ids = train_ids(rows, cfg)
    x, y, train_rows = stack(tel, [r for r in rows if r.id in fit_ids])
    select = {k for k, v in dev_halves([*rows, *calls]).items() if v == "select"}
    dev = [r for r in ev if r.id in select and r.id in inf and not is_copy(r, cfg)]
    test = [r for r in ev if r.split == "test" and r.id in inf]
    people = [r for r in test if r.label == "human"]
    for objective in args.objectives.split(","):
        best: tuple[float, str, Scorer] | None = None
        for name, fitter, c in candidates(objective, cfg):
            scorer = fitter(x, y, fit_weights(train_rows, c))
            e = M.eer(labels(dev), pooled(scorer, dev, inf))[0]
            if best is None or e < best[0]:
                best = (e, name, scorer)
        if best is None:
            raise SystemExit(f"{objective}: no setting to fit")
        dev_eer, chosen, scorer = best
        print(f"== {objective}: chosen on dev select half {chosen} (dev EER {100 * dev_eer:.1f})")
        sets = {
            "test TTS/VC": [r for r in test if r.label == "human" or not is_copy(r, cfg)],
            "test copy synthesis": [r for r in test if r.label == "human" or is_copy(r, cfg)],
            "held-out commercial": people + [r for r in test if r.source == "commercial_tts"],
        }
        for lang in ("en", "zh"):
            sets[f"test TTS/VC {lang}"] = [r for r in sets["test TTS/VC"] if r.language == lang]
        for label, members in sets.items():
            print(f"  {label}: EER {eer_ci(members, pooled(scorer, members, inf))}")
        for field in ("engine_family", "source"):
            folds = fold_table(objective, rows, tel, cfg, field)
            eers = [e for e, _ in folds.values()]
            worst = max(folds.items(), key=lambda kv: kv[1][0])
            print(
                f"  leave-one-{field}-out: mean EER {100 * float(np.mean(eers)):.1f} over "
                f"{len(eers)} folds, worst {worst[0]} {100 * worst[1][0]:.1f}"
            )
            for held, (e, ch) in sorted(folds.items()):
                print(f"    {held}: {100 * e:.1f} ({ch})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
