"""Train the synthetic-voice head: corpus rows -> telephone channel -> cached features -> head.

``robocall train`` (``service/train_cmd.py``) calls :func:`train`; ``models/evaluate.py`` reuses
:func:`collect_features`, :func:`fit_logistic` and :func:`fit_platt` for its tables and its
leave-one-engine-out retraining.

Deterministic: rows are chosen by a sha1 order (``models.corpus.sample_by_hash``), every clip's
crop and channel (codec, AMR mode, noise) come from ``seeded_rng(salt, row id)``, and the
logistic regression is a convex L-BFGS fit from zeros. Features are cached under
``$ROBOCALL_CACHE_DIR/synth_features/<block key>/<variant>/`` keyed by the clip's sha256, the
row id and the variant, so a re-run (and every leave-one-out fold) only re-fits.

Variants (how the audio reaches the features):

- ``telephone``: training path. One random window of at most ``max_window_s`` from the clip,
  then ``telephone_channel`` (random G.711 / AMR-NB / GSM, noise at 15-40 dB SNR). One row, one
  feature vector.
- ``inference``: the shipped scorer's path exactly (``SynthVoiceScorer.score``): the whole clip
  through ``call_channel``, one encoder pass over 30 s windows of its speech (the pass the ASR
  makes in ``robocall analyze``), the frames and LFCC of each VAD window, one feature vector per
  window (pooled later).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import platform
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import optimize

from models.corpus import (
    MANIFEST_DIR,
    CorpusRow,
    read_clip,
    read_manifest,
    resolve_path,
    sample_by_hash,
    seeded_rng,
)
from models.synth_head import (
    FeatureSpec,
    FrameEncoder,
    LogisticHead,
    call_window_features,
    pool_log_odds,
    sigmoid,
    window_features,
)
from pipeline.errors import EmptyAudioError
from pipeline.files import atomic_path
from pipeline.telephone import call_channel, telephone_channel
from pipeline.types import ANALYSIS_RATE_HZ

log = logging.getLogger(__name__)

REPO_DIR = Path(__file__).resolve().parent.parent
WEIGHTS_PATH = REPO_DIR / "models" / "weights" / "synth_head.npz"
VARIANTS = ("telephone", "inference")
MIN_CROP_S = 2.0  # shortest training window (when the clip is longer)
POOL_QUANTILES = (0.5, 0.75, 0.9, 1.0)  # candidates, chosen on the mixed-call dev split


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Everything that decides the trained head (copied into the run dir and the weights)."""

    manifests: tuple[str, ...] = ("shared", "tts_en", "resynth")  # single clips (train/dev/test)
    mixed_manifest: str = "mixed"  # call mixtures: dev picks the pooling, test reports it
    languages: tuple[str, ...] = ("en", "zh")  # product languages; ko/CSS10 rows are left out
    max_train_per_group: int = 250  # train rows per robot engine family / human source (hash)
    max_eval_per_group: int = 250  # leave-one-out test rows per engine family (hash)
    # Copy-synthesis: WORLD / Griffin-Lim / neural-vocoder copies of human recordings. After an
    # 8 kHz mu-law channel they are nearly indistinguishable from their sources, and at full
    # weight they cost the TTS side; at weight 0 the English folds lose their only robots with
    # the human sources' voices and the head learns "English = person". Their weight is
    # chosen on dev from the grid (docs/evaluation.md, "Training data").
    copy_kinds: tuple[str, ...] = ("resynthesis", "vocoder_resynthesis")
    copy_weight_grid: tuple[float, ...] = (0.0, 0.3, 1.0)
    # Whisper + LFCC: equal to Whisper alone within noise on dev, a little better on the dev
    # calls (docs/evaluation.md, "Features"); LFCC costs ~10 ms a window.
    spec: FeatureSpec = field(default_factory=lambda: FeatureSpec(blocks=("whisper", "lfcc")))
    # L2 penalty per row on standardised features: the value with the lowest dev EER is kept
    # (the run's resolved config, and the weights, record that one value).
    l2_grid: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0)
    salt: str = "synth-v1"  # seeds crops and channels; change it and every clip changes
    threshold: float = 0.5  # shipped decision threshold on the calibrated probability
    quick: bool = False  # tests: a handful of rows, no mixed calls
    quick_rows: int = 8  # per split and label in quick mode
    manifest_dir: str = ""  # folder of the JSONL manifests; "" = datasets/manifests

    def __post_init__(self) -> None:
        if not self.l2_grid or min(self.l2_grid) <= 0:
            raise ValueError(f"l2_grid must hold values > 0, got {self.l2_grid}")
        if not self.copy_weight_grid or min(self.copy_weight_grid) < 0:
            raise ValueError(f"copy_weight_grid must hold values >= 0, got {self.copy_weight_grid}")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if self.max_train_per_group < 1 or self.max_eval_per_group < 1:
            raise ValueError("max_*_per_group must be >= 1")

    @property
    def l2(self) -> float:
        """The penalty once resolved (one grid value); the largest while still a grid."""
        return max(self.l2_grid)

    @property
    def copy_weight(self) -> float:
        """Copy-synthesis row weight once resolved; the largest while still a grid."""
        return max(self.copy_weight_grid)

    def resolved(self, *, l2: float, copy_weight: float) -> TrainConfig:
        return dataclasses.replace(self, l2_grid=(l2,), copy_weight_grid=(copy_weight,))

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["spec"] = self.spec.to_dict()
        return out


def features_cache_dir() -> Path:
    base = os.environ.get("ROBOCALL_CACHE_DIR") or str(Path.home() / ".cache" / "robocall")
    return Path(base).expanduser() / "synth_features"


def manifest_dir(cfg: TrainConfig) -> Path:
    return Path(cfg.manifest_dir) if cfg.manifest_dir else MANIFEST_DIR


def manifest_sha256(cfg: TrainConfig) -> dict[str, str]:
    """sha256 of every manifest file the run read (the training data's identity)."""
    out = {}
    for name in (*cfg.manifests, cfg.mixed_manifest):
        path = manifest_dir(cfg) / f"{name}.jsonl"
        if path.is_file():
            out[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def group_of(row: CorpusRow) -> str:
    """Sampling group: engine family for robots, source for people."""
    return f"robot:{row.engine_family}" if row.label == "robot" else f"human:{row.source}"


def select_rows(cfg: TrainConfig) -> list[CorpusRow]:
    """The rows features are computed for: every dev/test row, train rows capped per group,
    and (for leave-one-out tests) up to ``max_eval_per_group`` robot rows per engine family."""
    paths = [manifest_dir(cfg) / f"{name}.jsonl" for name in cfg.manifests]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        log.warning("manifests not found, skipped: %s", ", ".join(missing))
    rows = [
        r
        for p in paths
        if p.is_file()
        for r in read_manifest(p)
        if r.language in cfg.languages and r.source != cfg.mixed_manifest
    ]
    if cfg.quick:
        return _quick(rows, cfg)
    by_group: dict[tuple[str, str], list[CorpusRow]] = {}
    for r in rows:
        by_group.setdefault((group_of(r), r.split), []).append(r)
    chosen: dict[str, CorpusRow] = {}
    for (_group, split), members in sorted(by_group.items()):
        keep = members if split != "train" else sample_by_hash(
            members, cfg.max_train_per_group, salt=cfg.salt
        )  # fmt: skip
        chosen.update((r.id, r) for r in keep)
    robots: dict[str, list[CorpusRow]] = {}
    for r in rows:
        if r.label == "robot":
            robots.setdefault(r.engine_family, []).append(r)
    for members in robots.values():
        chosen.update(
            (r.id, r) for r in sample_by_hash(members, cfg.max_eval_per_group, salt=cfg.salt)
        )
    return sorted(chosen.values(), key=lambda r: r.id)


def _quick(rows: Sequence[CorpusRow], cfg: TrainConfig) -> list[CorpusRow]:
    out: list[CorpusRow] = []
    for split in ("train", "dev", "test"):
        for label in ("human", "robot"):
            members = [r for r in rows if r.split == split and r.label == label]
            out += sample_by_hash(members, cfg.quick_rows, salt=cfg.salt)
    return sorted(out, key=lambda r: r.id)


def mixed_rows(cfg: TrainConfig, splits: Sequence[str] = ("dev", "test")) -> list[CorpusRow]:
    path = manifest_dir(cfg) / f"{cfg.mixed_manifest}.jsonl"
    if cfg.quick or not path.is_file():
        return []
    return [r for r in read_manifest(path) if r.split in splits and r.language in cfg.languages]


# ---------------------------------------------------------------------------------------------
# Features, cached


@dataclass(frozen=True, slots=True)
class ClipFeatures:
    """Per-window features of one row under one variant (arrays inside; never exported)."""

    row_id: str
    windows: np.ndarray  # (k, 2) start_s, end_s in the clip (telephone: the crop)
    x: np.ndarray  # (k, d) blocks of the spec concatenated in order


def _telephone_windows(
    samples: np.ndarray, row: CorpusRow, cfg: TrainConfig
) -> list[tuple[tuple[float, float], np.ndarray]]:
    rng = seeded_rng(cfg.salt, "telephone", row.id)
    # A random window length as well as position: inference windows run from MIN_WINDOW_S to
    # max_window_s, and a fixed crop would let clip length (long human recordings vs short TTS
    # lines) stand in for the label.
    clip_s = samples.size / ANALYSIS_RATE_HZ
    length_s = rng.uniform(min(MIN_CROP_S, clip_s), min(cfg.spec.max_window_s, clip_s))
    n = min(round(length_s * ANALYSIS_RATE_HZ), samples.size)
    start = int(rng.integers(samples.size - n + 1))
    piece = samples[start : start + n]
    processed = telephone_channel(piece, sample_rate_hz=ANALYSIS_RATE_HZ, rng=rng)
    window = (start / ANALYSIS_RATE_HZ, (start + piece.size) / ANALYSIS_RATE_HZ)
    return [(window, processed)]


def _call_windows(
    samples: np.ndarray, spec: FeatureSpec, encoder: FrameEncoder | None
) -> list[tuple[tuple[float, float], dict[str, np.ndarray]]]:
    """What ``robocall analyze`` computes: the whole clip through ``call_channel``, one encoder
    pass over its speech (as the ASR's), each speech window's frames and LFCC."""
    try:
        y = call_channel(samples)
    except EmptyAudioError:
        return []
    frames = encoder.speech_frames(y) if encoder is not None and "whisper" in spec.blocks else None
    return call_window_features(y, frames, spec=spec)


# Cache folder of each variant: "inference" features come from the call path (shared encoder
# pass over call_channel audio) since the head began reading the ASR's frames.
CACHE_VARIANT = {"telephone": "telephone", "inference": "inference-call"}


def _cache_path(block_key: str, variant: str, row: CorpusRow, clip_sha: str, salt: str) -> Path:
    key = hashlib.sha1(f"{row.id}|{clip_sha}|{variant}|{salt}".encode()).hexdigest()
    return features_cache_dir() / block_key / CACHE_VARIANT[variant] / key[:2] / f"{key}.npz"


def clip_features(
    row: CorpusRow,
    *,
    variant: str,
    cfg: TrainConfig,
    encoder: FrameEncoder | None,
) -> ClipFeatures | None:
    """Features of one row (computed once, then read from the cache); None if no speech."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    path = resolve_path(row)
    clip_sha = hashlib.sha256(path.read_bytes()).hexdigest()
    spec = cfg.spec
    paths = {
        b: _cache_path(spec.block_key(b), variant, row, clip_sha, cfg.salt) for b in spec.blocks
    }
    cached: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for block, p in paths.items():
        if p.is_file():
            with np.load(p) as data:
                cached[block] = (data["windows"], data["x"])
    missing = [b for b in spec.blocks if b not in cached]
    if missing:
        samples = read_clip(path)
        sub = dataclasses.replace(spec, blocks=tuple(missing))
        if variant == "telephone":
            try:
                crops = _telephone_windows(samples, row, cfg)
            except EmptyAudioError:
                crops = []
            pieces = [(w, window_features(x, spec=sub, encoder=encoder)) for w, x in crops]
        else:
            pieces = _call_windows(samples, sub, encoder)
        per_block: dict[str, list[np.ndarray]] = {b: [] for b in missing}
        for _, feats in pieces:
            for b, v in feats.items():
                per_block[b].append(v)
        windows = np.asarray([w for w, _ in pieces], dtype=np.float64).reshape(-1, 2)
        for b in missing:
            x = np.stack(per_block[b]) if per_block[b] else np.zeros((0, 1), np.float32)
            with atomic_path(paths[b], suffix=".tmp.npz") as tmp:  # np.savez appends ".npz"
                np.savez(tmp, windows=windows, x=x)
            cached[b] = (windows, x)
    windows = cached[spec.blocks[0]][0]
    if windows.shape[0] == 0:
        return None
    x = np.concatenate([cached[b][1] for b in spec.blocks], axis=1)
    return ClipFeatures(row_id=row.id, windows=windows, x=x.astype(np.float64))


def collect_features(
    rows: Sequence[CorpusRow],
    *,
    variant: str,
    cfg: TrainConfig,
    encoder: FrameEncoder | None,
    progress: bool = False,
) -> dict[str, ClipFeatures]:
    """Features of many rows by id; rows without speech are left out (and logged)."""
    out: dict[str, ClipFeatures] = {}
    started = time.monotonic()
    for i, row in enumerate(rows):
        feats = clip_features(row, variant=variant, cfg=cfg, encoder=encoder)
        if feats is None:
            log.warning("no speech after the channel, skipped: %s", row.id)
        else:
            out[row.id] = feats
        if progress and (i + 1) % 200 == 0:
            log.warning(
                "%s features: %d/%d rows, %.0f s",
                variant,
                i + 1,
                len(rows),
                time.monotonic() - started,
            )
    return out


# ---------------------------------------------------------------------------------------------
# Fitting


def class_weights(labels: np.ndarray) -> np.ndarray:
    """Per-row weights giving each class the same total weight (mean weight 1)."""
    y = np.asarray(labels)
    n1, n0 = max(int(y.sum()), 1), max(int((1 - y).sum()), 1)
    return np.where(y == 1, y.size / (2 * n1), y.size / (2 * n0))


def fit_logistic(
    x: np.ndarray, y: np.ndarray, *, l2: float, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """L2-regularised logistic regression on standardised features (convex, L-BFGS from 0).

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
    return mean, scale, res.x[:d].copy(), float(res.x[d])


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
    """Logistic head on (x, y) of ``rows`` with ``cfg``'s resolved penalty and row weights."""
    mean, scale, coef, intercept = fit_logistic(x, y, l2=cfg.l2, weights=fit_weights(rows, cfg))
    return LogisticHead(mean, scale, coef, intercept, meta=dict(meta or {}))


# ---------------------------------------------------------------------------------------------
# The run


@dataclass(frozen=True, slots=True)
class TrainResult:
    head: LogisticHead
    weights_path: Path
    weights_sha256: str
    run_dir: Path
    metrics: dict[str, Any]


def train(
    cfg: TrainConfig,
    *,
    run_dir: Path,
    weights_path: Path = WEIGHTS_PATH,
    encoder: FrameEncoder | None,
    progress: bool = False,
) -> TrainResult:
    """Compute (or read) features, fit the head, pick the pooling, calibrate, write everything.

    Writes ``run_dir/config.json``, ``metrics.json``, ``scores.jsonl`` (every dev/test row and
    mixed call with its calibrated log-odds) and the weights file (with a copy in ``run_dir``).
    """
    from models import metrics as M

    started = time.monotonic()
    run_dir.mkdir(parents=True, exist_ok=True)
    rows = select_rows(cfg)
    calls = mixed_rows(cfg)
    (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1, sort_keys=True))
    tel = collect_features(rows, variant="telephone", cfg=cfg, encoder=encoder, progress=progress)
    eval_rows = [r for r in rows if r.split in ("dev", "test")]
    inf = collect_features(
        [*eval_rows, *calls], variant="inference", cfg=cfg, encoder=encoder, progress=progress
    )
    feature_s = time.monotonic() - started

    fit_ids = train_ids(rows, cfg)
    train_rows = [r for r in rows if r.id in fit_ids]
    x, y, train_kept = stack(tel, train_rows)
    # Model selection and calibration on the population the head is for: people against TTS
    # and voice conversion (copy-synthesis rows are reported, not targeted; see above).
    dev_rows = [r for r in eval_rows if r.split == "dev" and r.id in inf and not is_copy(r, cfg)]
    dev_calls = [r for r in calls if r.split == "dev" and r.id in inf]
    head, cfg, grid_dev = _pick_fit(x, y, train_kept, cfg, inf, dev_rows, dev_calls)
    (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1, sort_keys=True))
    quantile = _pick_quantile(head, inf, dev_calls) if dev_calls else 0.9
    cal_rows = [*dev_rows, *dev_calls]
    cal_scores = np.asarray([pooled_log_odds(head, inf[r.id], quantile=quantile) for r in cal_rows])
    cal_y = np.asarray([r.label == "robot" for r in cal_rows], dtype=np.int64)
    a, b = fit_platt(cal_scores, cal_y) if M.has_both_classes(cal_y) else (1.0, 0.0)
    head = head.with_calibration(a, b)

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
            "calibration": f"Platt (class-balanced) on {len(cal_rows)} dev rows/calls",
            "selection_dev_eer": grid_dev,
            "splits": "models.corpus split_components (speaker/utterance-disjoint)",
        },
        metrics={k: v for k, v in metrics.items() if k.startswith(("test", "dev", "mixed"))},
        created_by={
            "command": "robocall train" + (" --quick" if cfg.quick else ""),
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
    )
    sha = head.save(weights_path)
    if weights_path.resolve() != (run_dir / weights_path.name).resolve():
        head.save(run_dir / weights_path.name)
    (run_dir / "scores.jsonl").write_text("".join(json.dumps(s) + "\n" for s in scores))
    metrics["weights_sha256"] = sha
    metrics["seconds"] = round(time.monotonic() - started, 1)
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=1, sort_keys=True))
    log.warning("trained synth head: %s", json.dumps(metrics, sort_keys=True))
    return TrainResult(head, weights_path, sha, run_dir, metrics)


def train_ids(rows: Sequence[CorpusRow], cfg: TrainConfig) -> set[str]:
    """Ids of the train rows the shipped head fits on: at most ``max_train_per_group`` per group.

    The same sha1 order as :func:`select_rows`, so these are the rows it capped to (the extra
    train rows it adds are leave-one-out test material only).
    """
    by_group: dict[str, list[CorpusRow]] = {}
    for r in rows:
        if r.split == "train":
            by_group.setdefault(group_of(r), []).append(r)
    if cfg.quick:
        chosen = {r.id for m in by_group.values() for r in m}
    else:
        cap = cfg.max_train_per_group
        chosen = {r.id for m in by_group.values() for r in sample_by_hash(m, cap, salt=cfg.salt)}
    return chosen


def is_copy(row: CorpusRow, cfg: TrainConfig) -> bool:
    """A copy-synthesis robot row (down-weighted in fitting, left out of dev selection)."""
    return row.label == "robot" and row.kind in cfg.copy_kinds


def fit_weights(rows: Sequence[CorpusRow], cfg: TrainConfig) -> np.ndarray:
    """Row weights: copy-synthesis rows times ``cfg.copy_weight``, then classes balanced."""
    y = np.asarray([r.label == "robot" for r in rows], dtype=np.int64)
    w = np.asarray([cfg.copy_weight if is_copy(r, cfg) else 1.0 for r in rows])
    totals = np.where(y == 1, w[y == 1].sum(), w[y == 0].sum())
    return np.asarray(w / np.maximum(totals, 1e-12) * y.size / 2)


def _pick_fit(
    x: np.ndarray,
    y: np.ndarray,
    rows: Sequence[CorpusRow],
    cfg: TrainConfig,
    inf: dict[str, ClipFeatures],
    dev: Sequence[CorpusRow],
    dev_calls: Sequence[CorpusRow],
) -> tuple[LogisticHead, TrainConfig, dict[str, float]]:
    """Fit every (l2, copy weight) of the grids; keep the lowest mean of the dev EER on single
    clips (people vs TTS/VC) and on dev calls, both pooled at q0.75. Ties: stronger penalty,
    then smaller copy weight."""
    from models import metrics as M

    sets = [s for s in (dev, dev_calls) if s]
    labels = [np.asarray([r.label == "robot" for r in s], dtype=np.int64) for s in sets]
    usable = [(s, y_) for s, y_ in zip(sets, labels, strict=True) if M.has_both_classes(y_)]
    results: list[tuple[float, float, float, LogisticHead]] = []
    for l2 in sorted(cfg.l2_grid, reverse=True):
        for cw in sorted(cfg.copy_weight_grid):
            c = cfg.resolved(l2=l2, copy_weight=cw)
            head = fit_head(x, y, cfg=c, rows=rows)
            if len(cfg.l2_grid) * len(cfg.copy_weight_grid) == 1 or not usable:
                return head, c, {}
            eers = [
                M.eer(y_, np.asarray([pooled_log_odds(head, inf[r.id], quantile=0.75) for r in s]))[
                    0
                ]
                for s, y_ in usable
            ]
            results.append((float(np.mean(eers)), -l2, cw, head))
    best = min(results, key=lambda t: (t[0], t[1], t[2]))
    table = {f"l2={-l2:g} copy={cw:g}": round(e, 4) for e, l2, cw, _ in results}
    return best[3], cfg.resolved(l2=-best[1], copy_weight=best[2]), table


def _pick_quantile(
    head: LogisticHead, inf: dict[str, ClipFeatures], calls: Sequence[CorpusRow]
) -> float:
    """The pooling quantile with the lowest EER on the dev mixed calls (ties: the lower one)."""
    from models import metrics as M

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
    from models import metrics as M

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
    return out
