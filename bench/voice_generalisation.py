"""Issue 12 measurements on cached features: training objectives, and score vs call length.

Usage: ``.venv/bin/python bench/voice_generalisation.py [--manifests shared,tts_en,resynth,vocoded]
[--objectives two_class,oc_softmax,human_density] [--weights models/weights/synth_head.npz]``

Needs the cached Whisper+LFCC features of every row (``robocall train`` fills
``$ROBOCALL_CACHE_DIR/synth_features``); no encoder is loaded. Objectives:

- ``two_class``: the shipped head's logistic (``fit_logistic``, L2 grid x copy weights) with
  class-balanced rows (``fit_weights``), as shipped before issue 12's session 7 (now
  source-balanced, ``synth_fit.row_weights``).
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

Fixed setting (``--fixed 0.1,1[,2]``): leave-one-engine-out of the head at one L2, copy weight
and density weight, no nested selection (what a manifest or a weight does by itself).

A trained run (``--scores RUN/scores.jsonl``): its test figures with 95 % intervals.

Density fusion (``--density-fusion 0.1,0.3``): the two-class head at that setting plus the
people-only density, the weight of the density chosen by the selection criterion of
``models/training/synth_select.py`` (its three parts printed); every weight's criterion and
test figures printed.

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
from models.training.synth_config import TrainConfig
from models.training.synth_data import (
    ClipFeatures,
    collect_features,
    mixed_rows,
    select_rows,
    train_ids,
)
from models.training.synth_fit import (
    fit_density,
    fit_logistic,
    fit_weights,
    is_copy,
    report_sets,
    stack,
)
from models.training.synth_select import (
    criterion,
    family_eers,
    selection_folds,
    selection_pool,
    source_eers,
    source_folds,
)

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


def pooled(
    scorer: Scorer, rows: Sequence[CorpusRow], inf: dict[str, ClipFeatures], *, q: float = 0.5
) -> np.ndarray:
    out = []
    for r in rows:
        w = inf[r.id].windows
        out.append(pool_log_odds(scorer(inf[r.id].x), w[:, 1] - w[:, 0], quantile=q))
    return np.asarray(out)


def eer_ci(rows: Sequence[CorpusRow], s: np.ndarray) -> str:
    y = labels(rows)
    if not M.has_both_classes(y):
        return "-"
    lo, hi = M.bootstrap_ci(y, s, groups=[ci_group(r) for r in rows])["eer"]
    return f"{100 * M.eer(y, s)[0]:.1f} [{100 * lo:.1f}-{100 * hi:.1f}] (n={len(rows)})"


def call_length_table(weights: str, cfg: TrainConfig) -> None:
    """EER/AUC of the test call mixtures scored from their first 5 / 15 / 60 s only, pooled as
    the head pools (its quantile was chosen on dev calls; no other is read on test). Each cut is
    reported on every call with a window inside it and on the calls that have one within 5 s,
    so the cuts can be compared on the same calls."""
    from models.synth_head import LogisticHead

    head = LogisticHead.load(Path(weights))
    calls = mixed_rows(cfg, splits=("test",))
    inf = collect_features(calls, variant="inference", cfg=cfg, encoder=None)
    calls = [r for r in calls if r.id in inf]
    cuts = (5.0, 15.0, 60.0)

    def score(r: CorpusRow, cut_s: float) -> float | None:
        f = inf[r.id]
        inside = f.windows[:, 1] <= cut_s
        if not inside.any():
            return None
        w = f.windows[inside]
        return pool_log_odds(
            head.log_odds(f.x[inside]), w[:, 1] - w[:, 0], quantile=head.pool_quantile
        )

    short = [r for r in calls if score(r, cuts[0]) is not None]
    print(
        f"== call length: {len(calls)} test call mixtures, head {weights}, q{head.pool_quantile:g}"
    )
    for cut_s in cuts:
        for name, members in (("all", calls), ("same calls as 5 s", short)):
            pairs = [(r, score(r, cut_s)) for r in members]
            kept = [(r, v) for r, v in pairs if v is not None]
            y = labels([r for r, _ in kept])
            s = np.asarray([v for _, v in kept])
            print(
                f"  first {cut_s:g} s, {name} ({int((y == 0).sum())} people / {int(y.sum())} "
                f"robots): EER {eer_ci([r for r, _ in kept], s)} AUC {M.roc_auc(y, s):.3f}"
            )


def fixed_loeo(cfg: TrainConfig, *, l2: float, copy_weight: float, density: float) -> None:
    """Leave-one-engine-out of the head at one fixed setting (no nested selection): isolates
    what a manifest, a copy weight or the people density does, apart from what the selection
    would pick."""
    from models.training.synth_fit import fit_head

    rows = select_rows(cfg)
    tel = collect_features(rows, variant="telephone", cfg=cfg, encoder=None)
    kept = [r for r in rows if r.id in tel]
    c = cfg.resolved(l2=l2, copy_weight=copy_weight, density_alpha=density)
    eers = {}
    for held_out, train_idx, test_idx in leave_one_out_folds(kept, min_rows=20):
        x, y, fit_rows = stack(tel, [kept[i] for i in train_idx])
        head = fit_head(x, y, cfg=c, rows=fit_rows)
        xt, yt, _ = stack(tel, [kept[i] for i in test_idx])
        eers[held_out] = M.eer(yt, head.raw_logit(xt))[0]
        print(f"  {held_out}: {100 * eers[held_out]:.1f}", flush=True)
    mean = 100 * float(np.mean(list(eers.values())))
    print(
        f"== fixed l2={l2:g} copy={copy_weight:g} density={density:g}: LOEO mean {mean:.1f} "
        f"over {len(eers)} folds"
    )


def run_table(scores_path: str, cfg: TrainConfig) -> None:
    """Test figures of a ``robocall train`` run from its ``scores.jsonl`` (call path, the head's
    calibrated and pooled log-odds): people vs TTS/VC (English, Mandarin), the held-out
    commercial voices, copy synthesis, call mixtures; EER [95 % CI] and AUC."""
    import json

    by_id = {r.id: r for r in [*select_rows(cfg), *mixed_rows(cfg)]}
    recs = [json.loads(line) for line in Path(scores_path).read_text().splitlines()]
    test = [
        (by_id[s["id"]], float(s["log_odds"]))
        for s in recs
        if s["variant"] == "inference" and s["split"] == "test" and s["id"] in by_id
    ]
    score_of = {r.id: v for r, v in test}
    sets = report_sets(
        [r for r, _ in test if r.source != cfg.mixed_manifest],
        cfg,
        mixtures=[r for r, _ in test if r.source == cfg.mixed_manifest],
    )
    print(f"== {scores_path}")
    for name, rows in sets.items():
        s = np.asarray([score_of[r.id] for r in rows])
        print(f"  {name}: EER {eer_ci(rows, s)} AUC {M.roc_auc(labels(rows), s):.3f}")


DENSITY_ALPHAS = TrainConfig().density_alpha_grid  # weight of the people density in the sum


def fused_density(
    cfg: TrainConfig,
) -> Callable[[np.ndarray, np.ndarray, list[CorpusRow]], tuple[Scorer, Scorer]]:
    """Fits the two-class head (``cfg``'s L2 and copy weight) and the people density of the
    shipped head (``synth_fit.fit_density``) on the same rows; returns both window scorers."""

    def fit(x: np.ndarray, y: np.ndarray, rows: list[CorpusRow]) -> tuple[Scorer, Scorer]:
        lr = two_class(cfg.l2)(x, y, fit_weights(rows, cfg))
        return lr, fit_density(x, y, dim=cfg.density_dim).z

    return fit


def density_fusion_table(cfg: TrainConfig) -> None:
    """Candidate (b): two-class log-odds + alpha * standardised people-density distance, alpha
    chosen by the selection criterion (``models/training/synth_select.py``: family folds and
    people-source folds inside train + dev-select, averaged with the dev select EER of clips and
    calls at q0.75); every alpha's test figures printed beside it (alpha 0 is the two-class head
    alone)."""
    rows, calls = select_rows(cfg), mixed_rows(cfg)
    tel = collect_features(rows, variant="telephone", cfg=cfg, encoder=None)
    ev = [r for r in rows if r.split in ("dev", "test")]
    inf = collect_features([*ev, *calls], variant="inference", cfg=cfg, encoder=None)
    fit_ids = train_ids(rows, cfg)
    halves = dev_halves([*rows, *calls])
    select = {k for k, v in halves.items() if v == "select"}
    pool = selection_pool(rows, tel, fit_ids=fit_ids, select_ids=select)
    fit = fused_density(cfg)
    fold_scores = []
    family_folds = list(selection_folds(pool, cfg))
    for fold in [*family_folds, *source_folds(pool, cfg)]:
        x, y, fit_rows = stack(tel, [pool[i] for i in fold.train])
        xt, yt, _ = stack(tel, [pool[i] for i in fold.test])
        if M.has_both_classes(y) and yt.size:
            lr, den = fit(x, y, fit_rows)
            fold_scores.append((fold.held_out, yt, lr(xt), den(xt)))
    families = {f.held_out for f in family_folds}
    x, y, train_rows = stack(tel, [r for r in rows if r.id in fit_ids])
    lr, den = fit(x, y, train_rows)
    dev = [r for r in ev if r.id in select and r.id in inf and not is_copy(r, cfg)]
    dev_calls = [r for r in calls if r.id in select and r.id in inf]
    test = [r for r in ev if r.split == "test" and r.id in inf]
    sets = report_sets(test, cfg, mixtures=[r for r in calls if r.split == "test" and r.id in inf])
    print(f"== density fusion at l2={cfg.l2:g} copy={cfg.copy_weight:g}, {len(fold_scores)} folds")
    for alpha in DENSITY_ALPHAS:

        def score(z: np.ndarray, a: float = alpha) -> np.ndarray:
            return np.asarray(lr(z) + a * den(z))

        scored = {h: (yt, s + alpha * d) for h, yt, s, d in fold_scores}
        fams = {h: v for h, v in scored.items() if h in families}
        folds = family_eers(fams)
        sources = source_eers(fams, {h: v for h, v in scored.items() if h not in families})
        dev_eer = float(
            np.mean([M.eer(labels(s), pooled(score, s, inf, q=0.75))[0] for s in (dev, dev_calls)])
        )
        crit = criterion(folds, dev_eer, sources)
        worst = max(folds.items(), key=lambda kv: kv[1])
        print(
            f"  alpha={alpha:g}: criterion {100 * crit:.1f} (folds mean "
            f"{100 * float(np.mean(list(folds.values()))):.1f}, worst {worst[0]} "
            f"{100 * worst[1]:.1f}; people sources mean "
            f"{100 * float(np.mean(list(sources.values()))):.1f}; dev {100 * dev_eer:.1f})"
        )
        for name, members in sets.items():
            print(f"    {name}: EER {eer_ci(members, pooled(score, members, inf))}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifests", default=",".join(TrainConfig().manifests))
    parser.add_argument("--objectives", default=",".join(OBJECTIVES), help="'' for none")
    parser.add_argument("--weights", help="also score test calls cut to 5/15/60 s with this head")
    parser.add_argument(
        "--fixed",
        metavar="L2,COPY[,DENSITY]",
        help="also leave-one-engine-out at this one setting (density weight default 0)",
    )
    parser.add_argument("--scores", help="test figures of a robocall train run's scores.jsonl")
    parser.add_argument(
        "--density-fusion",
        metavar="L2,COPY",
        help="candidate: this two-class setting plus the people density, weight by the criterion",
    )
    parser.add_argument(
        "--folds",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="nested leave-one-engine/source-out per objective (the slow part)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    cfg = TrainConfig(manifests=tuple(args.manifests.split(",")))
    if args.fixed:
        l2, copy_weight, density = (float(v) for v in f"{args.fixed},0".split(",")[:3])
        fixed_loeo(cfg, l2=l2, copy_weight=copy_weight, density=density)
    if args.weights:
        call_length_table(args.weights, cfg)
    if args.scores:
        run_table(args.scores, cfg)
    if args.density_fusion:
        l2, copy_weight = (float(v) for v in args.density_fusion.split(","))
        density_fusion_table(cfg.resolved(l2=l2, copy_weight=copy_weight))
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
        sets = report_sets(test, cfg)
        for label, members in sets.items():
            print(f"  {label}: EER {eer_ci(members, pooled(scorer, members, inf))}")
        for field in ("engine_family", "source") if args.folds else ():
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
