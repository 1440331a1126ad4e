"""Train the synthetic-voice head: corpus rows -> telephone channel -> cached features -> head.

``robocall train`` (``service/commands/train.py``) calls :func:`train`. Rows, windows and the
feature cache are in ``synth_data.py``, the fits in ``synth_fit.py``; ``evaluate.py`` reuses
both for its tables and its leave-one-engine-out retraining. ``robocall train --stage synth
--recalibrate`` calls :func:`recalibrate`, which redoes only the mixture-decided tail of a run
(pooling quantile, Platt scaling, figures) on a trained head. The module is over 500 lines
because both share that tail (private helpers here) and the selection grid beside them.

Deterministic: rows are chosen by a sha1 order (``models.training.corpus.sample_by_hash``), every
clip's crop and channel (codec, AMR mode, noise) come from ``seeded_rng(salt, row id)``, and the
logistic regression is a convex L-BFGS fit from zeros. Features are cached under
``$ROBOCALL_CACHE_DIR/synth_features/<block key>/<variant>/`` keyed by the clip's sha256, the row id
and the variant, so a re-run (and every leave-one-out fold) only re-fits.

Variants (how the audio reaches the features):

- ``telephone``: training path. One random window of at most ``max_window_s`` from the clip,
  then ``telephone_channel`` (random G.711 / AMR-NB / GSM, noise at 15-40 dB SNR). One row, one
  feature vector.
- ``inference``: the shipped scorer's path exactly (``SynthVoiceScorer.score``): the whole clip
  through ``call_channel``, one encoder pass over 30 s windows of its speech (the head's own
  pass in ``robocall analyze``; the ASR encodes the decoded audio), the frames and LFCC of each
  VAD window, one feature vector per window (pooled later).
"""

from __future__ import annotations

import json
import logging
import math
import platform
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.synth_head import (
    ClipEmbedder,
    FrameEncoder,
    LogisticHead,
    file_sha256,
)
from models.training.corpus import CorpusRow, dev_halves
from models.training.synth_config import ROW_WEIGHTINGS, TrainConfig
from models.training.synth_data import (
    POOL_QUANTILES,
    VARIANTS,
    WEIGHTS_PATH,
    ClipFeatures,
    collect_features,
    manifest_sha256,
    mixed_rows,
    select_rows,
    train_ids,
)
from models.training.synth_fit import (
    fit_density,
    fit_head,
    fit_platt,
    is_copy,
    pooled_log_odds,
    stack,
)
from models.training.synth_select import (
    Fitter,
    Scorer,
    SelectionFold,
    criterion,
    family_eers,
    fold_scores,
    selection_folds,
    selection_pool,
    source_eers,
    source_folds,
)
from models.training.threads import one_blas_thread
from pipeline.fuse import sigmoid

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# The run


@dataclass(frozen=True, slots=True)
class TrainResult:
    head: LogisticHead
    weights_path: Path
    weights_sha256: str
    run_dir: Path
    metrics: dict[str, Any]


@one_blas_thread
def train(
    cfg: TrainConfig,
    *,
    run_dir: Path,
    weights_path: Path = WEIGHTS_PATH,
    encoder: FrameEncoder | None,
    embedder: ClipEmbedder | None = None,
    progress: bool = False,
) -> TrainResult:
    """Compute (or read) features, fit the head, pick the pooling, calibrate, write everything.

    Writes ``run_dir/config.json``, ``metrics.json``, ``scores.jsonl`` (every dev/test row and
    mixed call with its calibrated log-odds) and the weights file (with a copy in ``run_dir``).
    ``embedder`` computes the ``aasist`` block of rows the cache lacks (default: the installed
    checkpoint, loaded on the first such row).
    """

    started = time.monotonic()
    run_dir.mkdir(parents=True, exist_ok=True)
    rows = select_rows(cfg)
    calls = mixed_rows(cfg)
    (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1, sort_keys=True))
    eval_rows = [r for r in rows if r.split in ("dev", "test")]
    # Issue 12: each block set of the grid (with and without the aasist block) on the same
    # rows: a row enters only if every set has its features.
    features: dict[bool, tuple[dict[str, ClipFeatures], dict[str, ClipFeatures]]] = {}
    for on in sorted(cfg.aasist_grid):
        features[on] = _features(
            rows, [*eval_rows, *calls], cfg.with_aasist(on), encoder, embedder, progress
        )
    both_tel = set.intersection(*(set(t) for t, _ in features.values()))
    both_inf = set.intersection(*(set(i) for _, i in features.values()))
    features = {
        on: (
            {k: v for k, v in t.items() if k in both_tel},
            {k: v for k, v in i.items() if k in both_inf},
        )
        for on, (t, i) in features.items()
    }
    feature_s = time.monotonic() - started

    fit_ids = train_ids(rows, cfg)
    train_rows = [r for r in rows if r.id in fit_ids]
    # Model selection and calibration on the population the head is for: people against TTS
    # and voice conversion (copy-synthesis rows are reported, not targeted; see above).
    # Only the "select" half of dev: the fusion is fitted on the other half's scores, which no
    # choice made here saw (issue 11).
    select = {k for k, v in dev_halves([*rows, *calls]).items() if v == "select"}
    dev_rows = [r for r in eval_rows if r.id in select and r.id in both_inf and not is_copy(r, cfg)]
    dev_calls = [r for r in calls if r.id in select and r.id in both_inf]
    candidates = []
    grid_dev: dict[str, Any] = {}
    for on, (tel, inf) in features.items():
        c = cfg.with_aasist(on)
        x, y, train_kept = stack(tel, train_rows)
        pool = selection_pool(rows, tel, fit_ids=fit_ids, select_ids=select)
        folds = list(selection_folds(pool, c))
        sources = list(source_folds(pool, c))
        head, chosen, table, score = _pick_fit(
            x,
            y,
            train_kept,
            c,
            inf,
            dev_rows,
            dev_calls,
            pool=pool,
            tel=tel,
            folds=(folds, sources),
        )
        blocks = "+".join(c.spec.blocks)
        grid_dev |= {f"blocks={blocks} {k}": v for k, v in table.items()}
        candidates.append((score, on, head, chosen, train_kept))
        log.warning(
            "selection: blocks %s chosen criterion %.4f (l2 %g, density %g, %s row weights)",
            blocks, score, chosen.l2, chosen.density_alpha, chosen.row_weights,
        )  # fmt: skip
    # Ties: without the aasist block (False sorts first), the cheaper head.
    _, on, head, cfg, train_kept = min(
        candidates, key=lambda t: (math.inf if math.isnan(t[0]) else t[0], t[1])
    )
    tel, inf = features[on]
    (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1, sort_keys=True))
    head, quantile, n_cal = _pool_and_calibrate(head, inf, dev_rows, dev_calls)
    scores = _score_all(head, quantile, tel=tel, inf=inf, eval_rows=eval_rows, calls=calls)
    metrics = _headline(scores, cfg.threshold)
    metrics["train_rows"] = dict(Counter(r.label for r in train_kept))
    metrics["grid_dev_eer"] = grid_dev
    metrics["feature_seconds"] = round(feature_s, 1)
    metrics["fit_seconds"] = round(time.monotonic() - started - feature_s, 1)
    head = head.with_meta(
        feature_spec=cfg.spec.to_dict(),
        pool_quantile=quantile,
        threshold=cfg.threshold,
        log_odds_clip=3.0,
        label_map={"0": "human", "1": "robot"},
        training={
            "config": cfg.to_dict(),
            "manifests_sha256": manifest_sha256(cfg),
            "train_rows": len(train_kept),
            "train_rows_by_label": metrics["train_rows"],
            "calibration": _calibration_note(n_cal),
            "selection": "grouped cross-validation inside the train + dev-select rows by "
            "TTS/VC engine family (with people by speaker) and by human recording source, "
            "with the dev select half (models/training/synth_select.py)",
            "selection_table": grid_dev,
            "splits": "models.training.corpus split_components (speaker/utterance-disjoint)",
        },
        metrics=_meta_metrics(metrics),
        created_by={
            "command": "robocall train" + (" --quick" if cfg.quick else ""),
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
    )
    return _write(
        head, scores, metrics, run_dir=run_dir, weights_path=weights_path, started=started
    )


@one_blas_thread
def recalibrate(
    *,
    run_dir: Path,
    weights_path: Path = WEIGHTS_PATH,
    out_path: Path | None = None,
    encoder: FrameEncoder | None,
    embedder: ClipEmbedder | None = None,
    manifest_dir: str = "",
    progress: bool = False,
) -> TrainResult:
    """Redo only what the call mixtures decide, on the head in ``weights_path``.

    The head's weights (standardisation, logistic part, people density) and its resolved
    recipe stay; the pooling quantile is picked again on the dev-select mixtures and the Platt
    scaling refitted on the dev-select clips and mixtures, as :func:`train` does after its
    grid (issue 11: the mixtures were rebuilt, the training rows were not). The selection table
    is kept, marked as computed on the manifests the head was trained with. Writes to
    ``out_path`` (default: ``weights_path``) and ``run_dir`` as :func:`train` does.
    """
    started = time.monotonic()
    run_dir.mkdir(parents=True, exist_ok=True)
    old = LogisticHead.load(weights_path)
    old_training = dict(old.meta["training"])
    cfg = TrainConfig.from_dict({**old_training["config"], "manifest_dir": manifest_dir})
    (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1, sort_keys=True))
    rows = select_rows(cfg)
    calls = mixed_rows(cfg)
    eval_rows = [r for r in rows if r.split in ("dev", "test")]
    tel, inf = _features(eval_rows, [*eval_rows, *calls], cfg, encoder, embedder, progress)
    feature_s = time.monotonic() - started
    select = {k for k, v in dev_halves([*rows, *calls]).items() if v == "select"}
    dev_rows = [r for r in eval_rows if r.id in select and r.id in inf and not is_copy(r, cfg)]
    dev_calls = [r for r in calls if r.id in select and r.id in inf]
    raw = old.with_calibration(1.0, 0.0)
    head, quantile, n_cal = _pool_and_calibrate(raw, inf, dev_rows, dev_calls)
    scores = _score_all(head, quantile, tel=tel, inf=inf, eval_rows=eval_rows, calls=calls)
    metrics = _headline(scores, cfg.threshold)
    metrics["feature_seconds"] = round(feature_s, 1)
    metrics["fit_seconds"] = round(time.monotonic() - started - feature_s, 1)
    sha_before = file_sha256(weights_path)
    metrics["recalibrated_from"] = {
        "weights_sha256": sha_before,
        "pool_quantile": old.pool_quantile,
        "platt": [old.platt_a, old.platt_b],
        "metrics": old.meta.get("metrics", {}),
    }
    trained_on = old_training.get("trained_on_manifests_sha256", old_training["manifests_sha256"])
    head = head.with_meta(
        pool_quantile=quantile,
        training={
            **old_training,
            "manifests_sha256": manifest_sha256(cfg),
            "trained_on_manifests_sha256": trained_on,
            "calibration": _calibration_note(n_cal),
            "recalibrated": "pooling quantile and Platt scaling redone on the manifests of "
            "manifests_sha256 (robocall train --stage synth --recalibrate); weights, recipe "
            "and selection_table are those fitted on trained_on_manifests_sha256 "
            f"(head file sha256 {sha_before})",
        },
        metrics=_meta_metrics(metrics),
        created_by={
            **old.meta.get("created_by", {}),
            "recalibrated_by": "robocall train --stage synth --recalibrate",
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
    )
    out = out_path or weights_path
    return _write(head, scores, metrics, run_dir=run_dir, weights_path=out, started=started)


def _features(
    telephone_rows: Sequence[CorpusRow],
    inference_rows: Sequence[CorpusRow],
    cfg: TrainConfig,
    encoder: FrameEncoder | None,
    embedder: ClipEmbedder | None,
    progress: bool,
) -> tuple[dict[str, ClipFeatures], dict[str, ClipFeatures]]:
    """Cached features of the training-channel copies and of the inference-channel copies."""
    kw: dict[str, Any] = {"cfg": cfg, "encoder": encoder, "embedder": embedder}
    tel = collect_features(telephone_rows, variant="telephone", progress=progress, **kw)
    return tel, collect_features(inference_rows, variant="inference", progress=progress, **kw)


def _pool_and_calibrate(
    head: LogisticHead,
    inf: dict[str, ClipFeatures],
    dev_rows: Sequence[CorpusRow],
    dev_calls: Sequence[CorpusRow],
) -> tuple[LogisticHead, float, int]:
    """Pick the pooling on the dev calls, then fit Platt on the dev rows and calls pooled so.

    Returns the calibrated head, the quantile and how many rows the calibration saw.
    """
    from models.training import metrics as M

    quantile = _pick_quantile(head, inf, dev_calls) if dev_calls else 0.9
    cal_rows = [*dev_rows, *dev_calls]
    cal_scores = np.asarray([pooled_log_odds(head, inf[r.id], quantile=quantile) for r in cal_rows])
    cal_y = np.asarray([r.label == "robot" for r in cal_rows], dtype=np.int64)
    a, b = fit_platt(cal_scores, cal_y) if M.has_both_classes(cal_y) else (1.0, 0.0)
    return head.with_calibration(a, b), quantile, len(cal_rows)


def _calibration_note(n_rows: int) -> str:
    return (
        f"Platt (class-balanced) on {n_rows} dev rows/calls "
        "(the select half of dev; the fusion fits on the other half)"
    )


def _score_all(
    head: LogisticHead,
    quantile: float,
    *,
    tel: dict[str, ClipFeatures],
    inf: dict[str, ClipFeatures],
    eval_rows: Sequence[CorpusRow],
    calls: Sequence[CorpusRow],
) -> list[dict[str, Any]]:
    """Score records of every dev/test row (both variants) and mixed call (inference)."""
    scores: list[dict[str, Any]] = []
    for variant, feats, pool_rows in (
        ("inference", inf, [*eval_rows, *calls]),
        ("telephone", tel, eval_rows),
    ):
        for r in pool_rows:
            if r.id not in feats:
                continue
            lo = pooled_log_odds(head, feats[r.id], quantile=quantile)
            scores.append(_score_record(r, variant, lo, feats[r.id], head))
    return scores


def _meta_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if k.startswith(("test", "dev", "mixed"))}


def _write(
    head: LogisticHead,
    scores: Sequence[dict[str, Any]],
    metrics: dict[str, Any],
    *,
    run_dir: Path,
    weights_path: Path,
    started: float,
) -> TrainResult:
    sha = head.save(weights_path)
    if weights_path.resolve() != (run_dir / weights_path.name).resolve():
        head.save(run_dir / weights_path.name)
    (run_dir / "scores.jsonl").write_text("".join(json.dumps(s) + "\n" for s in scores))
    metrics["weights_sha256"] = sha
    metrics["seconds"] = round(time.monotonic() - started, 1)
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=1, sort_keys=True))
    log.warning("synth head written: %s", json.dumps(metrics, sort_keys=True))
    return TrainResult(head, weights_path, sha, run_dir, metrics)


def _pick_fit(
    x: np.ndarray,
    y: np.ndarray,
    rows: Sequence[CorpusRow],
    cfg: TrainConfig,
    inf: dict[str, ClipFeatures],
    dev: Sequence[CorpusRow],
    dev_calls: Sequence[CorpusRow],
    *,
    pool: Sequence[CorpusRow],
    tel: dict[str, ClipFeatures],
    folds: tuple[Sequence[SelectionFold], Sequence[SelectionFold]],
) -> tuple[LogisticHead, TrainConfig, dict[str, Any], float]:
    """Fit every (l2, copy weight, row weighting, density weight) of the grids; keep the lowest
    selection criterion (``synth_select.py``: mean of the family folds' EER, the people-source
    folds' EER and the dev EER, the latter the mean of single clips, people vs TTS/VC, and dev
    calls, both pooled at q0.75). ``folds``: the family folds and the source folds. Settings
    within ``cfg.selection_tolerance`` of the lowest criterion tie; among them
    ``cfg.incumbent`` is kept when it is one, otherwise the lowest criterion, with exact ties
    broken by stronger penalty, then smaller copy weight, then smaller density weight, then the
    row weighting earlier in ``ROW_WEIGHTINGS``. The people density does not depend on the
    logistic settings, so it is fitted once per fold. Returns the table of every setting's
    parts and the chosen setting's criterion (nan when there was nothing to choose on)."""
    from models.training import metrics as M

    sets = [s for s in (dev, dev_calls) if s]
    labels = [np.asarray([r.label == "robot" for r in s], dtype=np.int64) for s in sets]
    usable = [(s, y_) for s, y_ in zip(sets, labels, strict=True) if M.has_both_classes(y_)]
    alphas = sorted(cfg.density_alpha_grid)
    settings = [
        (l2, cw, rw)
        for l2 in sorted(cfg.l2_grid, reverse=True)
        for cw in sorted(cfg.copy_weight_grid)
        for rw in sorted(cfg.row_weights_grid, key=ROW_WEIGHTINGS.index)
    ]
    all_folds = [*folds[0], *folds[1]]
    if len(settings) * len(alphas) == 1 or not (usable or all_folds):
        l2, cw, rw = settings[0]
        c = cfg.resolved(l2=l2, copy_weight=cw, density_alpha=max(alphas), row_weights=rw)
        return fit_head(x, y, cfg=c, rows=rows), c, {}, math.nan
    with_density = max(alphas) > 0
    density = fit_density(x, y, dim=cfg.density_dim) if with_density else None
    fold_density = (
        fold_scores(pool, tel, all_folds, _density_fitter(cfg.density_dim)) if with_density else {}
    )
    family_names = {f.held_out for f in folds[0]}
    results: list[tuple[float, float, float, float, int, LogisticHead]] = []
    table: dict[str, Any] = {}
    for l2, cw, rw in settings:
        c = cfg.resolved(l2=l2, copy_weight=cw, density_alpha=0.0, row_weights=rw)
        base = fit_head(x, y, cfg=c, rows=rows)
        fold_logit = fold_scores(pool, tel, all_folds, _logistic_fitter(c))
        for alpha in alphas:
            head = base.with_density(density, alpha)
            eers = [
                M.eer(y_, np.asarray([pooled_log_odds(head, inf[r.id], quantile=0.75) for r in s]))[
                    0
                ]
                for s, y_ in usable
            ]
            dev_eer = float(np.mean(eers)) if eers else None
            scored = {
                k: (yt, s + alpha * fold_density[k][1] if alpha else s)
                for k, (yt, s) in fold_logit.items()
            }
            by_family = {k: v for k, v in scored.items() if k in family_names}
            by_fold = family_eers(by_family)
            by_source = source_eers(
                by_family, {k: v for k, v in scored.items() if k not in family_names}
            )
            score = criterion(by_fold, dev_eer, by_source)
            results.append((score, -l2, cw, alpha, ROW_WEIGHTINGS.index(rw), head))
            key = f"l2={l2:g} copy={cw:g} density={alpha:g} rows={rw}"
            table[key] = {
                "criterion": round(score, 4),
                "dev": None if dev_eer is None else round(dev_eer, 4),
                "folds": {k: round(v, 4) for k, v in sorted(by_fold.items())},
                "sources": {k: round(v, 4) for k, v in sorted(by_source.items())},
            }
            log.info("selection %s: %s", key, table[key])
    best = choose_setting(results, cfg)
    chosen = cfg.resolved(
        l2=-best[1], copy_weight=best[2], density_alpha=best[3], row_weights=ROW_WEIGHTINGS[best[4]]
    )
    return best[5], chosen, table, best[0]


def choose_setting(
    results: Sequence[tuple[float, float, float, float, int, LogisticHead]], cfg: TrainConfig
) -> tuple[float, float, float, float, int, LogisticHead]:
    """The chosen entry of :func:`_pick_fit`'s results: ``cfg.incumbent`` when its criterion is
    within ``cfg.selection_tolerance`` of the lowest, otherwise the lowest."""
    best = min(results, key=lambda t: t[:5])
    l2, cw, alpha, rw = cfg.incumbent
    key = (-l2, cw, alpha, ROW_WEIGHTINGS.index(rw))
    kept = [t for t in results if t[1:5] == key and t[0] <= best[0] + cfg.selection_tolerance]
    return kept[0] if kept else best


def _logistic_fitter(cfg: TrainConfig) -> Fitter:
    def fit(x: np.ndarray, y: np.ndarray, rows: list[CorpusRow]) -> Scorer:
        return fit_head(x, y, cfg=cfg, rows=rows).raw_logit

    return fit


def _density_fitter(dim: int) -> Fitter:
    def fit(x: np.ndarray, y: np.ndarray, rows: list[CorpusRow]) -> Scorer:
        return fit_density(x, y, dim=dim).z

    return fit


def _pick_quantile(
    head: LogisticHead, inf: dict[str, ClipFeatures], calls: Sequence[CorpusRow]
) -> float:
    """The pooling quantile with the lowest EER on the dev mixed calls (ties: the lower one)."""
    from models.training import metrics as M

    y = np.asarray([r.label == "robot" for r in calls], dtype=np.int64)
    if not M.has_both_classes(y):
        return 0.9
    best = (math.inf, 0.9)
    for q in POOL_QUANTILES:
        s = np.asarray([pooled_log_odds(head, inf[r.id], quantile=q) for r in calls])
        best = min(best, (M.eer(y, s)[0], q))
    return best[1]


def _score_record(
    row: CorpusRow, variant: str, log_odds: float, feats: ClipFeatures, head: LogisticHead
) -> dict[str, Any]:
    return {
        "id": row.id,
        "variant": variant,
        "split": row.split,
        "label": row.label,
        "language": row.language,
        "source": row.source,
        "kind": row.kind,
        "engine_family": row.engine_family,
        # the bootstrap's unit: a person's voice, a robot's engine (the caller's, in a call)
        "group": row.engine_family or row.engine if row.label == "robot" else row.speaker,
        "orig_sr_hz": row.orig_sr_hz,
        "duration_s": row.duration_s,
        "path": row.path,
        "log_odds": round(float(log_odds), 4),
        "probability": round(float(sigmoid(log_odds)), 4),
        "windows": [
            [round(float(a), 2), round(float(b), 2), round(float(s), 3)]
            for (a, b), s in zip(feats.windows, head.log_odds(feats.x), strict=True)
        ],
    }


def _headline(scores: Sequence[dict[str, Any]], threshold: float) -> dict[str, Any]:
    from models.training import metrics as M

    out: dict[str, Any] = {}
    for variant in VARIANTS:
        for split in ("dev", "test"):
            for mixed in (False, True):
                sel = [
                    s
                    for s in scores
                    if s["variant"] == variant
                    and s["split"] == split
                    and (s["source"] == "mixed") == mixed
                ]
                y = np.asarray([s["label"] == "robot" for s in sel], dtype=np.int64)
                if not sel or not M.has_both_classes(y):
                    continue
                lo = np.asarray([s["log_odds"] for s in sel])
                key = f"{'mixed_' if mixed else ''}{split}_{variant}"
                out[key] = {
                    k: round(v, 4)
                    for k, v in M.summary(y, lo, sigmoid(lo), threshold=threshold).items()
                }
                ci = M.bootstrap_ci(y, lo, groups=[s["group"] for s in sel])["eer"]
                out[key]["eer_ci95"] = [round(ci[0], 4), round(ci[1], 4)]
    return out
