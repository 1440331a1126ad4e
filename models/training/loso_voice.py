"""Why the voice head calls people from unseen sources synthetic: leave one source out, voice
alone, from cached features (issue 12).

    python -m models.training.loso_voice [--ge2e | --nap] [--variant NAME ...] [--render]

For every shared source (and ``tts_en``) with enough English or Mandarin clips, the
synthetic-voice head is refitted without every row tied to that source (its rows, and any row
sharing a speaker or an utterance with one: ``eval_sources.tied_to_source``), Platt-scaled on
the dev select half less those rows (as ``eval_sources.fold_head``), and a spread sample of the
source's clips is scored. Unlike ``eval_sources`` there is no ASR, no detector and no encoder
pass: fits read the cached telephone-channel features (``tel``: one seeded 2-8 s window of each
clip through a random codec and noise), the calibration reads the cached call-path features
(``inf``); held-out clips are scored on their ``tel`` window (every clip of every split has
one) and, for dev/test rows, on their pooled ``inf`` windows too.

Each *variant* is one cheap change to the recipe (feature blocks, per-clip cepstral mean
normalisation, per-source standardisation, L2, the people density, source-balanced row
weights): a logistic-regression refit at fixed settings (the resolved L2 0.1, copies 0.3,
density 1 and class weights of the head shipped before issue 12's session 7, the variant
"shipped"; no nested selection, so variants differ in one thing only). Selection is
honest: the sources are split into two seeded halves (:func:`source_halves`); a variant is
chosen by its mean per-language AUC on the ``choose`` half and reported on the ``report`` half.
Fold heads are cached under ``$ROBOCALL_CACHE_DIR/loso_voice`` keyed by the variant, the fold's
rows and the fitting code, so a rerun only rescores.

``--ge2e`` runs the GE2E study instead (:func:`ge2e_variants`: the shipped head's own settings,
with the GE2E speaker-embedding blocks of ``ge2e_features.py`` added or alone), each variant's
change against the shipped settings paired by clip (:func:`paired_figures`); its report goes
under ``runs/`` and ``docs/voice_generalisation.md`` section 8 quotes it. ``--nap`` runs the
nuisance attribute projection study (:func:`nap_variants`, against the shipped settings); its
tables go to a second generated part of ``docs/unseen_sources.md``. The recording-chain copies
study has its own entry point on this harness (``loso_chainaug.py``).

About 900 lines in one module: the variants, the pure parts they are built from, the fold
loop and the figures the selection reads share one record layout; the report is apart
(``loso_voice_report.py``).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import inspect
import json
import logging
import math
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.synth_head import LFCC_COEFS, LogisticHead, PeopleDensity
from models.training import metrics as M
from models.training.corpus import REPO_DIR, CorpusRow, dev_halves, hash_unit
from models.training.eval_sources import (
    LANGUAGES,
    MIN_CLIPS,
    OWN_SOURCES,
    shipped_head_path,
    spread_sample,
    tied_to_source,
)
from models.training.evaluate import ci_group
from models.training.synth_config import TrainConfig
from models.training.synth_data import ClipFeatures
from models.training.synth_fit import (
    block_columns,
    fit_density,
    fit_logistic,
    fit_platt,
    is_copy,
    nuisance_directions,
    nuisance_of,
    pooled_log_odds,
    project_out,
    row_weights,
    stack,
)

log = logging.getLogger(__name__)

SALT = "loso-voice-v1"  # the source halves and the scored sample
PER_CELL = 40  # scored clips per (source, label, language), spread over voices
HALVES = ("choose", "report")
BLOCK_PARTS = ("whisper", "lfcc", "aasist", "ge2e", "ge2e_spread")  # feature blocks
PARTS = (*BLOCK_PARTS, "intercept", "density")  # a raw logit's additive parts
REPORT = REPO_DIR / "docs" / "unseen_sources.md"
RESULTS = REPO_DIR / "runs" / "loso_voice" / "results.json"
GE2E_RESULTS = REPO_DIR / "runs" / "loso_voice" / "ge2e.json"
GE2E_REPORT = REPO_DIR / "runs" / "loso_voice" / "ge2e.md"  # figures quoted by hand in the docs
NAP_RESULTS = REPO_DIR / "runs" / "loso_voice" / "nap.json"
NAP_MARK = "nap"  # the NAP study's generated part of REPORT, apart from the main study's


@dataclass(frozen=True, slots=True)
class Variant:
    """One recipe: the session-4 head's ("shipped", the defaults), or it with one cheap change."""

    name: str
    blocks: tuple[str, ...] = ("whisper", "lfcc", "aasist")  # feature blocks kept
    l2: float = 0.1  # penalty per unit of weighted mean loss, standardised features
    density_alpha: float = 1.0  # weight of the people density in the raw logit
    copy_weight: float = 0.3  # copy-synthesis rows' weight
    source_weights: bool = False  # within a class every training source weighs the same
    lfcc_cmn: bool = False  # drop the LFCC static cepstral means (= per-clip CMN)
    whisper_std_only: bool = False  # drop the encoder frames' means, keep their stds
    source_norm: bool = False  # standardise each source's features by its own mean and std
    nap_dim: int = 0  # nuisance directions projected out before the fit (TrainConfig.nap_dim)
    nap_classes: str = "people"  # whose between-source scatter: "people" or "both"
    nap_per_block: bool = False  # nap_dim directions in each feature block


VARIANTS = (  # the most telling first: a cut-short run still has them cached
    Variant("shipped"),
    Variant("no density", density_alpha=0.0),
    Variant("lfcc+aasist", blocks=("lfcc", "aasist")),
    Variant("whisper", blocks=("whisper",)),
    Variant("lfcc", blocks=("lfcc",)),
    Variant("aasist", blocks=("aasist",)),
    Variant("whisper+lfcc", blocks=("whisper", "lfcc")),
    Variant("whisper+aasist", blocks=("whisper", "aasist")),
    Variant("l2 1", l2=1.0),
    Variant("l2 10", l2=10.0),
    Variant("source-balanced", source_weights=True),
    Variant("lfcc cmn", lfcc_cmn=True),
    Variant("whisper std only", whisper_std_only=True),
    Variant("per-source standardised", source_norm=True),
    Variant("no density, l2 1", density_alpha=0.0, l2=1.0),
    Variant("no density, source-balanced", density_alpha=0.0, source_weights=True),
)
GE2E_BLOCKS = ("ge2e", "ge2e_spread")  # computed by models/training/ge2e_features.py
GE2E_BASE = "shipped settings"  # the GE2E study's reference: the shipped head's own settings


def shipped_variant(cfg: TrainConfig, name: str) -> Variant:
    """The shipped head's resolved settings (``cfg``: blocks, L2, density, copies, row
    weights, nuisance projection) as a variant."""
    return Variant(
        name,
        blocks=cfg.spec.blocks,
        l2=cfg.l2,
        density_alpha=cfg.density_alpha,
        copy_weight=cfg.copy_weight,
        source_weights=cfg.row_weights == "source",
        nap_dim=cfg.nap_dim,
        nap_classes=cfg.nap_classes,
        nap_per_block=cfg.nap_per_block,
    )


def ge2e_variants(cfg: TrainConfig) -> tuple[Variant, ...]:
    """The GE2E study (``--ge2e``; ``models/training/ge2e_features.py``): the shipped head's
    resolved settings (``cfg``, L2, density, copies, row weights) as they are, with the clip's
    mean GE2E embedding or the voice's spread appended, and each GE2E block alone (no density:
    its principal axes would outnumber a 2-value block)."""
    ref = shipped_variant(cfg, GE2E_BASE)
    blocks = ref.blocks
    return (
        ref,
        dataclasses.replace(ref, name="+ ge2e", blocks=(*blocks, "ge2e")),
        dataclasses.replace(ref, name="+ ge2e spread", blocks=(*blocks, "ge2e_spread")),
        dataclasses.replace(ref, name="ge2e alone", blocks=("ge2e",), density_alpha=0.0),
        dataclasses.replace(
            ref, name="ge2e spread alone", blocks=("ge2e_spread",), density_alpha=0.0
        ),
    )


NAP_BASE = "shipped (session 7)"  # the NAP study's reference: the shipped head's own settings


def nap_variants(cfg: TrainConfig) -> tuple[Variant, ...]:
    """The nuisance attribute projection study (``--nap``; fixed, with its candidate list in
    ``docs/unseen_sources.md``, before any result): the shipped head's resolved settings, and
    them with the top k directions of the between-source scatter projected out: of the people
    sources over all blocks (k 2, 4, 8, 16, 32), of the people and the robot sources (k 8,
    32), and of the people sources in each block (k 2, 8 per block)."""
    ref = shipped_variant(cfg, NAP_BASE)
    people = [dataclasses.replace(ref, name=f"nap people k{k}", nap_dim=k)
              for k in (2, 4, 8, 16, 32)]  # fmt: skip
    both = [dataclasses.replace(ref, name=f"nap people+robots k{k}", nap_dim=k, nap_classes="both")
            for k in (8, 32)]  # fmt: skip
    per_block = [dataclasses.replace(ref, name=f"nap people per block k{k}", nap_dim=k,
                                     nap_per_block=True) for k in (2, 8)]  # fmt: skip
    return (ref, *people, *both, *per_block)


# ---------------------------------------------------------------------------------------------
# Pure parts: columns, normalisation, weights, halves


def variant_columns(
    variant: Variant, layout: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """The columns a variant keeps and the block of each kept column. CMN: the LFCC block's
    first ``LFCC_COEFS`` values are the static cepstra's means over the window; subtracting a
    clip's cepstral mean makes them 0 and leaves deltas and stds as they are. The whisper
    block is the frames' mean then their std, half each."""
    kept = []
    for block in variant.blocks:
        cols = layout[block]
        if block == "lfcc" and variant.lfcc_cmn:
            cols = cols[LFCC_COEFS:]
        if block == "whisper" and variant.whisper_std_only:
            cols = cols[cols.size // 2 :]
        kept.append(cols)
    names = np.concatenate([np.full(c.size, b) for b, c in zip(variant.blocks, kept, strict=True)])
    return np.concatenate(kept), names


def group_standardise(x: np.ndarray, groups: Sequence[str]) -> np.ndarray:
    """Each row standardised by the mean and std of its group's rows (std floor 1e-6)."""
    out = np.asarray(x, dtype=np.float64).copy()
    g = np.asarray(list(groups), dtype=object)
    for key in set(g.tolist()):
        member = g == key
        part = out[member]
        out[member] = (part - part.mean(axis=0)) / np.maximum(part.std(axis=0), 1e-6)
    return out


def transform_features(
    feats: dict[str, ClipFeatures], source_of: dict[str, str], cols: np.ndarray, *, norm: bool
) -> dict[str, ClipFeatures]:
    """``feats`` restricted to ``cols``; with ``norm``, every window standardised over the
    windows of its row's source (transductive: a held-out source by its own unlabelled clips)."""
    out = {k: ClipFeatures(k, f.windows, f.x[:, cols]) for k, f in feats.items()}
    if not norm or not out:
        return out
    ids = list(out)
    x = np.concatenate([out[k].x for k in ids])
    groups = [source_of[k] for k in ids for _ in range(out[k].x.shape[0])]
    z = group_standardise(x, groups)
    bounds = np.cumsum([0, *(out[k].x.shape[0] for k in ids)])
    return {
        k: ClipFeatures(k, out[k].windows, z[bounds[i] : bounds[i + 1]]) for i, k in enumerate(ids)
    }


def source_stratum(rows: Sequence[CorpusRow]) -> str:
    """``<languages>:<people|robots|both>`` of one source's rows."""
    labels = {r.label for r in rows}
    role = "both" if len(labels) == 2 else ("people" if labels == {"human"} else "robots")
    return "+".join(sorted({r.language for r in rows})) + ":" + role


def source_halves(strata: dict[str, str], *, salt: str = SALT) -> dict[str, str]:
    """``{source: "choose" | "report"}``: within each stratum the sources in seeded hash order
    go alternately to the two halves, each stratum starting on the half with fewer so far."""
    out: dict[str, str] = {}
    count = dict.fromkeys(HALVES, 0)
    for stratum in sorted(set(strata.values())):
        members = sorted(
            (s for s, k in strata.items() if k == stratum), key=lambda s: hash_unit(s, salt=salt)
        )
        first = min(HALVES, key=lambda h: (count[h], HALVES.index(h)))
        order = (first, HALVES[1 - HALVES.index(first)])
        for i, source in enumerate(members):
            out[source] = order[i % 2]
            count[order[i % 2]] += 1
    return out


def held_out_sources(
    rows: Sequence[CorpusRow], *, min_clips: int = MIN_CLIPS
) -> dict[str, list[CorpusRow]]:
    """``{source: its English/Mandarin rows}`` for each shared source (or :data:`OWN_SOURCES`)
    with at least ``min_clips`` rows of one (label, language)."""
    by_source: dict[str, list[CorpusRow]] = {}
    for r in rows:
        if (r.root == "shared" or r.source in OWN_SOURCES) and r.language in LANGUAGES:
            by_source.setdefault(r.source, []).append(r)
    return {
        s: members
        for s, members in sorted(by_source.items())
        if max(Counter((r.label, r.language) for r in members).values()) >= min_clips
    }


def scored_sample(members: Sequence[CorpusRow], *, per_cell: int = PER_CELL) -> list[CorpusRow]:
    """Up to ``per_cell`` rows per (label, language), spread over voices, so no source or voice
    outweighs the others in a pooled figure."""
    cells: dict[tuple[str, str], list[CorpusRow]] = {}
    for r in members:
        cells.setdefault((r.label, r.language), []).append(r)
    return [
        r for _, cell in sorted(cells.items()) for r in spread_sample(cell, per_cell, salt=SALT)
    ]


# ---------------------------------------------------------------------------------------------
# One fold


def fit_fold(
    variant: Variant,
    rows: Sequence[CorpusRow],
    tel: dict[str, ClipFeatures],
    cfg: TrainConfig,
    *,
    col_blocks: np.ndarray | None = None,
    densities: dict[str, PeopleDensity] | None = None,
) -> LogisticHead:
    """The variant's logistic head (plus its people density) on the ``tel`` windows of ``rows``.
    ``col_blocks``: the block of each column (a per-block projection needs it). ``densities``:
    people densities already fitted, by a digest of (x, y): variants that differ only in the
    logistic part (the NAP study) share their fold's density instead of refitting it."""
    x, y, kept = stack(tel, rows)
    return fit_head(variant, cfg, x, y, kept, lambda c: row_weights(kept, c),
                    col_blocks=col_blocks, densities=densities)  # fmt: skip


def fit_head(
    variant: Variant,
    cfg: TrainConfig,
    x: np.ndarray,
    y: np.ndarray,
    kept: Sequence[CorpusRow],
    weights_of: Callable[[TrainConfig], np.ndarray],
    *,
    col_blocks: np.ndarray | None = None,
    densities: dict[str, PeopleDensity] | None = None,
) -> LogisticHead:
    """:func:`fit_fold`'s head on stacked rows ``x, y`` (``kept``: their corpus rows), each
    row weighted by ``weights_of`` the variant's resolved config."""
    weighting = "source" if variant.source_weights else "class"
    c = dataclasses.replace(
        cfg.resolved(l2=variant.l2, copy_weight=variant.copy_weight, density_alpha=0.0,
                     row_weights=weighting),
        nap_dim=variant.nap_dim, nap_classes=variant.nap_classes,
        nap_per_block=variant.nap_per_block,
    )  # fmt: skip
    mean, scale, coef, intercept = fit_logistic(
        x, y, l2=variant.l2, weights=weights_of(c),
        nuisance=nuisance_of(y, kept, c, col_blocks=col_blocks),
    )  # fmt: skip
    head = LogisticHead(mean, scale, coef, intercept)
    if variant.density_alpha > 0:
        key = hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest()
        memo = {} if densities is None else densities
        if key not in memo:
            memo[key] = fit_density(x, y, dim=cfg.density_dim)
        head = head.with_density(memo[key], variant.density_alpha)
    return head


def raw_parts(head: LogisticHead, x: np.ndarray, col_blocks: np.ndarray) -> dict[str, np.ndarray]:
    """The additive parts of the raw logit of each row of ``x`` (sum = ``head.raw_logit``)."""
    terms = (x - head.mean) / head.scale * head.coef
    out = {b: terms[:, col_blocks == b].sum(axis=1) for b in BLOCK_PARTS}
    out["intercept"] = np.full(x.shape[0], head.intercept)
    dens = head.density.z(x) * head.density_alpha if head.density is not None else 0.0
    out["density"] = np.zeros(x.shape[0]) + dens
    return out


def calibrated_head(
    head: LogisticHead, cal: Sequence[CorpusRow], inf: dict[str, ClipFeatures], quantile: float
) -> LogisticHead:
    """``head`` with Platt scaling fitted on the pooled ``inf`` scores of ``cal``."""
    s = np.asarray([pooled_log_odds(head, inf[r.id], quantile=quantile) for r in cal])
    y = np.asarray([r.label == "robot" for r in cal], dtype=np.int64)
    a, b = fit_platt(s, y) if M.has_both_classes(y) else (1.0, 0.0)
    return head.with_calibration(a, b)


def score_fold(
    head: LogisticHead,
    held: Sequence[CorpusRow],
    *,
    tel: dict[str, ClipFeatures],
    inf: dict[str, ClipFeatures],
    col_blocks: np.ndarray,
    quantile: float,
) -> list[dict[str, Any]]:
    """One record per held-out row with a ``tel`` window: its calibrated log-odds on that window,
    on its pooled ``inf`` windows (None without them) and its raw logit's parts."""
    out = []
    for r in held:
        if r.id not in tel:
            continue
        x = tel[r.id].x
        parts = raw_parts(head, x, col_blocks)
        out.append({
            "id": r.id, "source": r.source, "label": r.label, "language": r.language,
            "group": ci_group(r), "y": int(r.label == "robot"),
            "tel": float(head.log_odds(x)[0]),
            "inf": pooled_log_odds(head, inf[r.id], quantile=quantile) if r.id in inf else None,
            "parts": {k: float(v[0]) for k, v in parts.items()},
        })  # fmt: skip
    return out


@dataclass(frozen=True, slots=True)
class FoldData:
    """What every fold of one variant reads."""

    pool: list[CorpusRow]  # the rows the shipped head fits on
    calibration: list[CorpusRow]  # dev select rows and mixtures with call-path features
    links: list[CorpusRow]  # every row and mixture (to find the rows tied to a source)
    tel: dict[str, ClipFeatures]  # the variant's columns
    inf: dict[str, ClipFeatures]
    col_blocks: np.ndarray
    quantile: float
    densities: dict[str, PeopleDensity] = dataclasses.field(default_factory=dict)  # fit_fold's


def fold_key(
    variant: Variant, fit: Sequence[CorpusRow], cal: Sequence[CorpusRow], extra: str
) -> str:
    """Cache key of a fold's head: the variant, its rows, the fitting code and ``extra``."""
    from models.training import synth_fit

    fitting = (fit_fold, fit_head, calibrated_head, variant_columns, group_standardise,
               transform_features)  # fmt: skip
    code = "".join(inspect.getsource(f) for f in fitting)
    h = hashlib.sha256()
    for part in (SALT, json.dumps(dataclasses.asdict(variant), sort_keys=True), code,
                 inspect.getsource(synth_fit), extra, *sorted(r.id for r in fit), "|",
                 *sorted(r.id for r in cal)):  # fmt: skip
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:24]


def run_folds(
    variant: Variant,
    sources: dict[str, list[CorpusRow]],
    data: FoldData,
    cfg: TrainConfig,
    *,
    cache: Path | None,
    extra: str = "",
    fitter: Callable[..., LogisticHead] = fit_fold,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Every source held out in turn: fit without the rows tied to it, calibrate, score its
    sample. Returns the records and, per source, the fold's facts (rows, Platt, the mean raw
    logit parts of the fold's training people and robots, fit seconds when not cached).
    ``fitter``: :func:`fit_fold` or one with its signature (``extra`` must then name it: the
    cache key holds :func:`fit_fold`'s code, not the fitter's)."""
    records: list[dict[str, Any]] = []
    folds: dict[str, dict[str, Any]] = {}
    for source, held in sources.items():
        tied = tied_to_source(data.links, source)
        fit = [r for r in data.pool if r.id not in tied]
        cal = [r for r in data.calibration if r.id not in tied]
        path = cache / f"{fold_key(variant, fit, cal, extra)}.npz" if cache else None
        seconds = None
        if path is not None and path.is_file():
            head = LogisticHead.load(path)
        else:
            started = time.monotonic()
            fitted = fitter(variant, fit, data.tel, cfg, col_blocks=data.col_blocks,
                            densities=data.densities)  # fmt: skip
            head = calibrated_head(fitted, cal, data.inf, data.quantile)
            seconds = round(time.monotonic() - started, 2)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                head.save(path)
        x, y, _ = stack(data.tel, fit)
        parts = raw_parts(head, x, data.col_blocks)
        folds[source] = {
            "train_rows": int(y.size), "calibration_rows": len(cal), "fit_s": seconds,
            "platt": [head.platt_a, head.platt_b],
            **{f"train_{label}": {k: float(v[y == cls].mean()) for k, v in parts.items()}
               for label, cls in (("people", 0), ("robots", 1))},
        }  # fmt: skip
        records += score_fold(head, held, tel=data.tel, inf=data.inf, col_blocks=data.col_blocks,
                              quantile=data.quantile)  # fmt: skip
    return records, folds


# ---------------------------------------------------------------------------------------------
# Figures


def figures(
    records: Sequence[dict[str, Any]],
    *,
    language: str,
    sources: set[str] | None = None,
    key: str = "tel",
) -> dict[str, Any]:
    """People against robots of ``language`` (of ``sources``, all if None), each scored by the
    fold that held its source out: AUC and EER with 95 % intervals resampling speakers (people)
    and engine families (robots), and each class's share called robot at the head's 0.5."""
    members = [
        r
        for r in records
        if r["language"] == language
        and r[key] is not None
        and (sources is None or r["source"] in sources)
    ]
    y = np.asarray([r["y"] for r in members], dtype=np.int64)
    s = np.asarray([r[key] for r in members], dtype=np.float64)
    groups = [r["group"] for r in members]
    out: dict[str, Any] = {
        "people": int((y == 0).sum()),
        "robots": int(y.sum()),
        "people_sources": len({r["source"] for r in members if not r["y"]}),
        "robot_sources": len({r["source"] for r in members if r["y"]}),
        "speakers": len({g for g, label in zip(groups, y, strict=True) if not label}),
        "engines": len({g for g, label in zip(groups, y, strict=True) if label}),
        "people_called_robot": float((s[y == 0] >= 0).mean()) if (y == 0).any() else math.nan,
        "robots_called_robot": float((s[y == 1] >= 0).mean()) if y.any() else math.nan,
    }
    if M.has_both_classes(y):
        ci = M.bootstrap_ci(y, s, groups=groups)
        out |= {
            "auc": M.roc_auc(y, s),
            "auc_ci": ci["auc"],
            "eer": M.eer(y, s)[0],
            "eer_ci": ci["eer"],
        }
    return out


def summary(records: Sequence[dict[str, Any]], halves: dict[str, str]) -> dict[str, Any]:
    """``{scope: {path: {language: figures}}}``, scope each half and ``all``, path tel or inf."""
    scopes = {h: {s for s, v in halves.items() if v == h} for h in HALVES}
    return {
        scope: {
            key: {
                lang: figures(records, language=lang, sources=members, key=key)
                for lang in LANGUAGES
            }
            for key in ("tel", "inf")
        }
        for scope, members in [*scopes.items(), ("all", None)]
    }


def criterion(figs: dict[str, Any]) -> float:
    """A variant's selection number: the mean over languages of the choose half's AUC."""
    aucs = [figs["choose"]["tel"][lang].get("auc", math.nan) for lang in LANGUAGES]
    return float(np.mean(aucs))


def choose(summaries: dict[str, dict[str, Any]]) -> str:
    """The variant with the highest :func:`criterion` (ties and nan: the earlier one)."""
    best, best_value = next(iter(summaries)), -math.inf
    for name, figs in summaries.items():
        value = criterion(figs)
        if value > best_value:
            best, best_value = name, value
    return best


def paired_deltas(
    a: Sequence[dict[str, Any]], b: Sequence[dict[str, Any]], sources: set[str]
) -> dict[str, list[float]]:
    """Per language, EER of ``a`` minus EER of ``b`` on the rows both scored from ``sources``
    (tel), with a 95 % interval from one cluster bootstrap (``aasist_scores.paired_eer_delta``)."""
    from models.training.aasist_scores import paired_eer_delta

    by_id = {r["id"]: r for r in b}
    out = {}
    for lang in LANGUAGES:
        pairs = [(r, by_id[r["id"]]) for r in a if r["id"] in by_id and r["language"] == lang
                 and r["source"] in sources]  # fmt: skip
        y = np.asarray([p["y"] for p, _ in pairs], dtype=np.int64)
        if M.has_both_classes(y):
            a_s = np.asarray([p["tel"] for p, _ in pairs])
            b_s = np.asarray([q["tel"] for _, q in pairs])
            groups = [p["group"] for p, _ in pairs]
            out[lang] = list(paired_eer_delta(y, a_s, b_s, groups=groups))
    return out


def paired_figures(
    a: Sequence[dict[str, Any]],
    b: Sequence[dict[str, Any]],
    sources: set[str] | None,
    *,
    rounds: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """AUC and EER of ``a`` minus those of ``b`` per language, and the mean over languages of
    the AUC change (the selection's number), on the rows both scored from ``sources`` (all if
    None; tel), each ``[delta, low, high]``: 95 % intervals from one cluster bootstrap per
    round applied to both (speakers and engine families, each language drawn on its own)."""
    from models.training.aasist_scores import cluster_draw

    by_id = {r["id"]: r for r in b}
    rng = np.random.default_rng(seed)
    cells = {}
    for lang in LANGUAGES:
        pairs = [(r, by_id[r["id"]]) for r in a if r["id"] in by_id and r["language"] == lang
                 and (sources is None or r["source"] in sources)]  # fmt: skip
        y = np.asarray([p["y"] for p, _ in pairs], dtype=np.int64)
        if M.has_both_classes(y):
            s_a = np.asarray([p["tel"] for p, _ in pairs])
            s_b = np.asarray([q["tel"] for _, q in pairs])
            groups = np.asarray([p["group"] for p, _ in pairs], dtype=object)
            cells[lang] = (y, s_a, s_b, groups)
    if not cells:
        return {}
    draws = np.empty((rounds, len(cells), 2))
    for k in range(rounds):
        for j, (y, s_a, s_b, groups) in enumerate(cells.values()):
            w = cluster_draw(y, groups, rng)
            draws[k, j] = (M.roc_auc(y, s_a, weights=w) - M.roc_auc(y, s_b, weights=w),
                           M.eer(y, s_a, weights=w)[0] - M.eer(y, s_b, weights=w)[0])  # fmt: skip
    point = np.asarray([(M.roc_auc(y, s_a) - M.roc_auc(y, s_b), M.eer(y, s_a)[0] - M.eer(y, s_b)[0])
                        for y, s_a, s_b, _ in cells.values()])  # fmt: skip

    def triple(value: float, values: np.ndarray) -> list[float]:
        low, high = np.percentile(values, [2.5, 97.5])
        return [float(value), float(low), float(high)]

    out: dict[str, Any] = {
        lang: {m: triple(point[j, i], draws[:, j, i]) for i, m in enumerate(("auc", "eer"))}
        for j, lang in enumerate(cells)
    }
    out["mean_auc"] = triple(point[:, 0].mean(), draws[:, :, 0].mean(axis=1))
    return out


def appended_columns(widths: dict[str, int], start: int) -> dict[str, np.ndarray]:
    """Column indices of blocks of ``widths`` appended, in order, after ``start`` columns."""
    bounds = np.cumsum([start, *widths.values()])
    return {b: np.arange(bounds[i], bounds[i + 1]) for i, b in enumerate(widths)}


def source_projection(variant: Variant, col_blocks: np.ndarray) -> Any:
    """An sklearn transformer projecting out ``variant``'s nuisance directions of standardised
    rows, learnt in ``fit`` from the scatter of the rows' sources (its ``y``: all people) over
    ``col_blocks`` (the block of each column), so a cross-validation fold learns it on its own
    training speakers."""
    from sklearn.base import BaseEstimator, TransformerMixin

    class SourceProjection(TransformerMixin, BaseEstimator):  # type: ignore[misc]
        def __init__(self, dim: int = 0, blocks: np.ndarray | None = None) -> None:
            self.dim = dim
            self.blocks = blocks

        def fit(self, x: np.ndarray, y: np.ndarray) -> SourceProjection:
            people = np.zeros(len(y), dtype=np.int64)
            self.directions_ = nuisance_directions(x, people, list(y), dim=self.dim,
                                                   col_blocks=self.blocks)  # fmt: skip
            return self

        def transform(self, x: np.ndarray) -> np.ndarray:
            return project_out(np.asarray(x, dtype=np.float64), self.directions_)

    return SourceProjection(variant.nap_dim, col_blocks if variant.nap_per_block else None)


def source_probe(
    rows: Sequence[CorpusRow],
    tel: dict[str, ClipFeatures],
    layout: dict[str, np.ndarray],
    *,
    nap: Variant | None = None,
    min_rows: int = 20,
    min_speakers: int = 3,
) -> dict[str, dict[str, float]]:
    """How well each feature group tells one people source (recording chain) from another for
    speakers it never saw: a standardised logistic regression, 5-fold cross-validation grouped
    by speaker, balanced accuracy against chance (1 / sources). ``nap``: each block and all
    blocks after that variant's projection (:func:`source_projection`, of the people sources'
    scatter whatever its ``nap_classes``: the probe has no robots), learnt inside each fold."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    people = [r for r in rows if r.label == "human" and r.id in tel]
    speakers: dict[str, set[str]] = {}
    for r in people:
        speakers.setdefault(r.source, set()).add(r.speaker)
    n = Counter(r.source for r in people)
    kept = [
        r for r in people if n[r.source] >= min_rows and len(speakers[r.source]) >= min_speakers
    ]
    x_all = np.stack([tel[r.id].x[0] for r in kept])
    target = np.asarray([r.source for r in kept])
    subsets = {name: cols for name, cols in layout.items()}
    subsets["all blocks"] = np.concatenate(list(layout.values()))
    if "lfcc" in layout and nap is None:
        lfcc = layout["lfcc"]
        subsets["lfcc static means"] = lfcc[:LFCC_COEFS]
        subsets["level: lfcc c0 mean and std"] = lfcc[[0, 3 * LFCC_COEFS]]
    names = np.empty(x_all.shape[1], dtype=object)
    for block, cols in layout.items():
        names[cols] = block
    folds = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=0)
    out = {}
    for name, cols in subsets.items():
        steps = [] if nap is None else [source_projection(nap, names[cols])]
        model = make_pipeline(StandardScaler(), *steps, LogisticRegression(C=0.1, max_iter=2000))
        guess = cross_val_predict(
            model, x_all[:, cols], target, cv=folds, groups=[r.speaker for r in kept]
        )
        out[name] = {
            "balanced_accuracy": float(balanced_accuracy_score(target, guess)),
            "chance": 1.0 / len(set(target)), "sources": len(set(target)), "rows": len(kept),
        }  # fmt: skip
    return out


# ---------------------------------------------------------------------------------------------
# The run


def shipped_config() -> TrainConfig:
    """The shipped head's training config (its resolved settings)."""
    from models.training.evaluate import config_from_head

    return config_from_head(LogisticHead.load(shipped_head_path()))


def cache_dir() -> Path:
    from models.training.synth_data import features_cache_dir

    return features_cache_dir().parent / "loso_voice"


def ge2e_inputs(*, progress: bool = False) -> Any:
    """``eval_sources.FoldInputs`` whose features are the GE2E blocks alone (no Whisper, LFCC or
    AASIST: nothing else need be cached), for the rows a fold reads: the fit pool and the
    scored sample (telephone path), the dev select half and the scored dev/test clips (call
    path, each clip's own speech windows)."""
    from models.diarize import load_voice_encoder
    from models.training.eval_sources import FoldInputs
    from models.training.ge2e_features import ge2e_only
    from models.training.synth_data import mixed_rows, select_rows, train_ids

    cfg = shipped_config()
    shipped = LogisticHead.load(shipped_head_path())
    rows, calls = select_rows(cfg), mixed_rows(cfg)
    scored = {r.id for m in held_out_sources(rows).values() for r in scored_sample(m)}
    select = {k for k, v in dev_halves([*rows, *calls]).items() if v == "select"}
    fit = train_ids(rows, cfg)
    encoder = load_voice_encoder()
    tel = ge2e_only([r for r in rows if r.id in fit | scored], path="telephone", cfg=cfg,
                    encoder=encoder, progress=progress)  # fmt: skip
    on_call = [r for r in [*rows, *calls] if (r.id in select and not is_copy(r, cfg))
               or (r.id in scored and r.split in ("dev", "test"))]  # fmt: skip
    inf = ge2e_only(on_call, path="inference", cfg=cfg, encoder=encoder, progress=progress)
    return FoldInputs(shipped, cfg, rows, calls, tel, inf)


def pair_with_reference(
    variants: dict[str, dict[str, Any]], base: str, halves: dict[str, str]
) -> None:
    """Each variant's ``paired`` figures against ``base``'s records, by half and over all
    sources (:func:`paired_figures`), set in place."""
    scopes = {h: {s for s, v in halves.items() if v == h} for h in HALVES}
    for name, v in variants.items():
        if name != base:
            v["paired"] = {
                scope: paired_figures(v["records"], variants[base]["records"], members)
                for scope, members in [*scopes.items(), ("all", None)]
            }


def run(
    variants: Sequence[Variant],
    *,
    base: str = "shipped",
    ge2e_alone: bool = False,
    compute: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Every variant's leave-one-source-out records, figures and folds, the source halves,
    the chosen variant, each variant's paired change against ``base`` (``paired_figures``, by
    half) and the diagnosis; plain data. Reads cached head features only (a missing feature
    raises: the whisper block needs an encoder); the GE2E blocks, when a variant has one, are
    computed on a cache miss (``ge2e_features.with_ge2e``). ``ge2e_alone``: no head features
    at all, only the GE2E blocks on each path's own windows (:func:`ge2e_inputs`), for
    variants made of GE2E blocks alone. ``compute``: head features not yet cached are computed
    (the Whisper encoder loads; the AASIST checkpoint too on a miss) instead of raising."""
    from models.training.eval_sources import fold_inputs
    from models.training.synth_data import manifest_sha256, train_ids

    started = time.monotonic()
    if ge2e_alone:
        inputs = ge2e_inputs(progress=progress)
    else:
        from models.loading import load_synth_encoder

        inputs = fold_inputs(load_synth_encoder() if compute else None)
    shipped, cfg, rows, calls = inputs.shipped, inputs.cfg, inputs.rows, inputs.calls
    tel, inf = inputs.tel, inputs.inf
    fit_ids = train_ids(rows, cfg)
    select = {k for k, v in dev_halves([*rows, *calls]).items() if v == "select"}
    # GE2E alone has features only for the rows a fold reads: the sources from every row
    sources = held_out_sources(rows if ge2e_alone else [r for r in rows if r.id in tel])
    samples = {s: scored_sample(members) for s, members in sources.items()}
    strata = {s: source_stratum(members) for s, members in sources.items()}
    halves = source_halves(strata)
    source_of = {r.id: r.source for r in [*rows, *calls]}
    calibration = [
        r for r in [*rows, *calls] if r.id in select and r.id in inf and not is_copy(r, cfg)
    ]
    width = next(iter(tel.values())).x.shape[1]
    if ge2e_alone:
        from models.training.ge2e_features import BLOCK_WIDTHS

        layout = appended_columns(BLOCK_WIDTHS, 0)
    else:
        layout = block_columns(cfg.spec.blocks, width)
    if not ge2e_alone and any(b in GE2E_BLOCKS for v in variants for b in v.blocks):
        from models.diarize import load_voice_encoder
        from models.training.ge2e_features import BLOCK_WIDTHS, with_ge2e

        # Only the rows a fold reads (its pool, calibration and scored sample; the same folds
        # as without the blocks), so the source probe sees fewer people here.
        scored = {r.id for m in samples.values() for r in m}
        used = fit_ids | scored | {r.id for r in calibration}
        encoder = load_voice_encoder()
        tel = with_ge2e({k: f for k, f in tel.items() if k in used}, rows, path="telephone",
                        cfg=cfg, encoder=encoder, progress=progress)  # fmt: skip
        inf = with_ge2e({k: f for k, f in inf.items() if k in used}, [*rows, *calls],
                        path="inference", cfg=cfg, encoder=encoder, progress=progress)  # fmt: skip
        layout |= appended_columns(BLOCK_WIDTHS, width)
    extra = json.dumps([shipped.pool_quantile, sorted(manifest_sha256(cfg).values())])
    out: dict[str, Any] = {
        "head": shipped.arrays_sha256(), "strata": strata, "halves": halves,
        "samples": {s: Counter(f"{r.label} {r.language}" for r in m) for s, m in samples.items()},
        "variants": {}, "probe": source_probe(rows, tel, layout),
    }  # fmt: skip
    for variant in variants:
        cols, col_blocks = variant_columns(variant, layout)
        data = FoldData(
            pool=[r for r in rows if r.id in fit_ids and r.id in tel],
            calibration=calibration,
            links=[*rows, *calls],
            tel=transform_features(tel, source_of, cols, norm=variant.source_norm),
            inf=transform_features(inf, source_of, cols, norm=variant.source_norm),
            col_blocks=col_blocks,
            quantile=shipped.pool_quantile,
        )
        records, folds = run_folds(variant, samples, data, cfg, cache=cache_dir(), extra=extra)
        out["variants"][variant.name] = {
            "variant": dataclasses.asdict(variant), "records": records, "folds": folds,
            "summary": summary(records, halves),
        }  # fmt: skip
        if progress:
            log.warning("%s: %.0f s", variant.name, time.monotonic() - started)
    figs = {name: v["summary"] for name, v in out["variants"].items()}
    for v in out["variants"].values():
        v["criterion"] = criterion(v["summary"])
    chosen = choose(figs)
    picked = next(v for v in variants if v.name == chosen)
    if picked.nap_dim > 0:  # can the chain of an unseen speaker still be named after it?
        out["probe_projected"] = source_probe(rows, tel, layout, nap=picked)
    report = {s for s, h in halves.items() if h == "report"}
    reference = out["variants"].get(base)
    out["chosen"] = chosen
    out["base"] = base
    if reference is not None:
        out["delta_report"] = paired_deltas(
            out["variants"][chosen]["records"], reference["records"], report
        )
        pair_with_reference(out["variants"], base, halves)
    out["seconds"] = round(time.monotonic() - started, 1)
    return out


# ---------------------------------------------------------------------------------------------
# Command


def main(argv: Sequence[str] | None = None) -> int:
    from models.training.loso_voice_report import render
    from models.training.text_report import write_generated

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", action="append", default=[], help="a variant's name, "
                        "repeatable (names hold commas; default: all)")  # fmt: skip
    parser.add_argument(
        "--ge2e",
        action="store_true",
        help="the GE2E study instead "
        "(ge2e_variants, against the shipped settings; report under runs/)",
    )
    parser.add_argument(
        "--nap",
        action="store_true",
        help="the nuisance attribute projection study instead (nap_variants, against the "
        "shipped settings; report in the second generated part of the default report)",
    )
    parser.add_argument(
        "--ge2e-alone",
        action="store_true",
        help="with --ge2e: only the variants of GE2E blocks alone, from no other cached feature",
    )
    parser.add_argument(
        "--compute-features",
        action="store_true",
        help="compute head features missing from the cache (slow: a Whisper encoder pass a row)",
    )
    parser.add_argument("--results", type=Path, default=None, help=f"default {RESULTS}")
    parser.add_argument("--report", type=Path, default=None, help=f"default {REPORT}")
    parser.add_argument("--render", action="store_true", help="only rewrite the report's "
                        "generated part from --results")  # fmt: skip
    args = parser.parse_args(argv)
    if args.ge2e_alone and not args.ge2e:
        parser.error("--ge2e-alone goes with --ge2e")
    if args.nap and args.ge2e:
        parser.error("--nap and --ge2e are separate studies")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    results = args.results or (GE2E_RESULTS if args.ge2e else NAP_RESULTS if args.nap else RESULTS)
    report = args.report or (GE2E_REPORT if args.ge2e else REPORT)
    if args.render:
        out = json.loads(results.read_text())
    else:
        candidates: tuple[Variant, ...] = VARIANTS
        base = "shipped"
        if args.ge2e:
            candidates, base = ge2e_variants(shipped_config()), GE2E_BASE
        if args.nap:
            candidates, base = nap_variants(shipped_config()), NAP_BASE
        if args.ge2e_alone:
            candidates = tuple(v for v in candidates if set(v.blocks) <= set(GE2E_BLOCKS))
        wanted = [n.strip() for n in args.variant]
        unknown = sorted(set(wanted) - {v.name for v in candidates})
        if unknown:
            parser.error(f"unknown variants: {unknown}")
        chosen = [v for v in candidates if not wanted or v.name in wanted]
        out = run(chosen, base=base, ge2e_alone=args.ge2e_alone,
                  compute=args.compute_features, progress=True)  # fmt: skip
        out["command"] = " ".join(["python -m models.training.loso_voice", *(argv or sys.argv[1:])])
        results.parent.mkdir(parents=True, exist_ok=True)
        results.write_text(json.dumps(out, indent=1, default=float))
    # the findings outside the markers stay; the NAP study has its own markers
    write_generated(render(out), report, name=NAP_MARK if args.nap else "")
    log.warning("wrote %s and %s", report, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
