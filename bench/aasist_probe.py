"""Issue 12, candidate (c): a linear probe on frozen AASIST embeddings, alone and stacked.

Usage: ``.venv/bin/python bench/aasist_probe.py [--copy-weight 0.3]``

Reads, never computes, the 160-d last hidden layer (the input of ``out_layer``) of the official
ASVspoof 2019 LA checkpoint (``models/aasist.py``) for each corpus row: one window, the middle
4.04 s of ``call_channel`` of the stored decode, cached under
``$ROBOCALL_CACHE_DIR/synth_features/aasist_embed/<checkpoint sha256[:16]>/telephone/<key>.npy``
with the key of ``models/training/aasist_scores.py``. Rows without a cached embedding are left
out of every candidate (the count is printed), so the three are compared on the same rows:

- ``whisper+lfcc``: the shipped head's features (telephone variant, one window per row);
- ``aasist``: the AASIST embedding alone;
- ``stacked``: both concatenated.

Each is a class-balanced logistic head (copy-synthesis rows at ``--copy-weight``), its L2
chosen by the selection criterion (``models/training/synth_select.py``; the dev part here is the
dev select clips' single windows, as no call-path AASIST features exist), then scored on the
test rows' single windows: people vs TTS/VC (English, Mandarin), the held-out commercial voices,
copy synthesis. EER with 95 % cluster-bootstrap intervals (speakers, engine families).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
from collections.abc import Sequence

import numpy as np

from models.aasist import file_sha256, packaged_source
from models.training import metrics as M
from models.training.aasist_scores import MAX_WINDOWS
from models.training.corpus import CorpusRow, dev_halves, resolve_path
from models.training.evaluate import ci_group
from models.training.synth_data import (
    ClipFeatures,
    TrainConfig,
    collect_features,
    features_cache_dir,
    mixed_rows,
    select_rows,
    train_ids,
)
from models.training.synth_fit import fit_head, is_copy, report_sets, stack
from models.training.synth_select import (
    Scorer,
    criterion,
    fold_eers,
    selection_folds,
    selection_pool,
)


def cached_embeddings(rows: Sequence[CorpusRow]) -> dict[str, np.ndarray]:
    """The telephone-variant AASIST embedding (160,) of every row that has one cached."""
    base = features_cache_dir() / "aasist_embed" / file_sha256(packaged_source().path)[:16]
    out = {}
    for row in rows:
        clip_sha = hashlib.sha256(resolve_path(row).read_bytes()).hexdigest()
        key = hashlib.sha1(f"{row.id}|{clip_sha}|{MAX_WINDOWS}".encode()).hexdigest()
        path = base / "telephone" / f"{key}.npy"
        if path.is_file():
            out[row.id] = np.load(path).astype(np.float64).mean(axis=0)
    return out


def single_window(x: np.ndarray, rid: str) -> ClipFeatures:
    return ClipFeatures(row_id=rid, windows=np.asarray([[0.0, 4.04]]), x=x[None, :])


def report(name: str, rows: Sequence[CorpusRow], scores: np.ndarray) -> str:
    y = np.asarray([r.label == "robot" for r in rows], dtype=np.int64)
    if not M.has_both_classes(y):
        return f"{name}: -"
    lo, hi = M.bootstrap_ci(y, scores, groups=[ci_group(r) for r in rows])["eer"]
    return (
        f"{name}: EER {100 * M.eer(y, scores)[0]:.1f} [{100 * lo:.1f}-{100 * hi:.1f}] "
        f"AUC {M.roc_auc(y, scores):.3f} ({int((y == 0).sum())} / {int(y.sum())})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copy-weight", type=float, default=0.3)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    base_cfg = TrainConfig()
    rows, calls = select_rows(base_cfg), mixed_rows(base_cfg)
    tel = collect_features(rows, variant="telephone", cfg=base_cfg, encoder=None)
    emb = cached_embeddings([r for r in rows if r.id in tel])
    kept = [r for r in rows if r.id in emb]
    print(f"rows with features: {len(tel)}, with a cached AASIST embedding: {len(kept)}")
    variants = {
        "whisper+lfcc": {r.id: tel[r.id] for r in kept},
        "aasist": {r.id: single_window(emb[r.id], r.id) for r in kept},
        "stacked": {
            r.id: single_window(np.concatenate([tel[r.id].x[0], emb[r.id]]), r.id) for r in kept
        },
    }
    fit_ids = train_ids(rows, base_cfg)
    select = {k for k, v in dev_halves([*rows, *calls]).items() if v == "select"}
    dev = [r for r in kept if r.id in select and not is_copy(r, base_cfg)]
    test = [r for r in kept if r.split == "test"]
    sets = report_sets(test, base_cfg)
    for name, feats in variants.items():
        pool = selection_pool(kept, feats, fit_ids=fit_ids, select_ids=select)
        folds = list(selection_folds(pool, base_cfg))
        x, y, train_rows = stack(feats, [r for r in kept if r.id in fit_ids])
        best: tuple[float, float, Scorer, dict[str, float], float] | None = None
        for l2 in sorted(base_cfg.l2_grid, reverse=True):
            cfg = base_cfg.resolved(l2=l2, copy_weight=args.copy_weight, density_alpha=0.0)

            def fit(
                x: np.ndarray, y: np.ndarray, r: list[CorpusRow], c: TrainConfig = cfg
            ) -> Scorer:
                return fit_head(x, y, cfg=c, rows=r).raw_logit

            scorer = fit(x, y, train_rows)
            xd, yd, _ = stack(feats, dev)
            dev_eer = M.eer(yd, scorer(xd))[0] if M.has_both_classes(yd) else None
            by_fold = fold_eers(pool, feats, folds, fit)
            crit = criterion(by_fold, dev_eer)
            if best is None or crit < best[0]:
                best = (crit, l2, scorer, by_fold, dev_eer if dev_eer is not None else float("nan"))
        if best is None:
            raise SystemExit("no L2 to fit")
        crit, l2, scorer, by_fold, dev_eer = best
        worst = max(by_fold.items(), key=lambda kv: kv[1]) if by_fold else ("-", float("nan"))
        print(
            f"== {name} (train {len(train_rows)} rows): chosen l2={l2:g}, criterion "
            f"{100 * crit:.1f} (folds mean {100 * float(np.mean(list(by_fold.values()))):.1f} over "
            f"{len(by_fold)}, worst {worst[0]} {100 * worst[1]:.1f}; dev {100 * dev_eer:.1f})"
        )
        for set_name, members in sets.items():
            xt, _, kept_rows = stack(feats, members)
            print("  " + report(set_name, kept_rows, scorer(xt)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
