"""Issue 12: heads on frozen AASIST embeddings beside the Whisper + LFCC head, on the same rows.

Usage: ``.venv/bin/python bench/aasist_probe.py [--copy-weight 0.3] [--json OUT.json]``;
``--compare-heads OLD.npz NEW.npz``: two trained heads (each with its own blocks, pooling and
calibration, as ``robocall analyze`` runs them) on the same test sets, the EER difference under
one paired bootstrap (issue 12: the head with the aasist block against the one before it).

Reads, never computes, the 160-d last hidden layer (the input of ``out_layer``) of the official
ASVspoof 2019 LA checkpoint (``models/aasist.py``) for each corpus row and call mixture: one
window, the middle 4.04 s of the whole clip after ``call_channel`` (the channel ``robocall
analyze`` applies), cached by ``models/training/aasist_scores.py`` (``robocall evaluate
--aasist`` fills it). A row enters only if it has every feature the candidates read, so all are
compared on the same rows (the counts are printed):

- ``whisper+lfcc``: the shipped head's features. Fitted, like the shipped head, on each train
  row's seeded telephone window (random crop, codec, noise); dev and test scored on the call
  path (the whole clip through ``call_channel``, the shared encoder pass), windows pooled at
  the 0.75 duration-weighted quantile, as the shipped head pools;
- ``aasist``: a logistic probe on the embedding alone (train and test: the call-channel window);
- ``stacked``: both, each call-path window of ours with the clip's AASIST embedding appended;
- ``aasist MLP``: one hidden layer on the embedding (width and L2 from the grid).

Each candidate's setting (L2 for the logistic heads; width x L2 for the MLP) is chosen by the
selection criterion of the shipped head (``models/training/synth_select.py``: family folds
inside the train + dev select rows, and the dev select clips and calls; while the embedding
cache holds only part of the train rows, a family needs ``min_fold_robots`` times that share, at
least 5, to be held out); copy-synthesis rows at ``--copy-weight``, classes balanced; no people
density and no calibration (EER and AUC do not need it). Test only reports: people vs TTS/VC
(English, Mandarin), the held-out commercial voices, copy synthesis, the call mixtures, with 95
% cluster-bootstrap intervals (speakers, engine families) and the EER difference to
``whisper+lfcc`` under one paired bootstrap. Two references on the same rows: AASIST's own
ASVspoof head and the shipped head as it ships (since session 4 with the aasist block:
``models/weights/SYNTH_HEAD.md``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from models.synth_head import LogisticHead, pool_log_odds
from models.training import metrics as M
from models.training.aasist_scores import (
    cached_embeddings,
    mlp_fitter,
    paired_eer_delta,
    single_window,
    with_embedding,
)
from models.training.corpus import CorpusRow, dev_halves
from models.training.evaluate import ci_group
from models.training.synth_config import TrainConfig
from models.training.synth_data import (
    WEIGHTS_PATH,
    ClipFeatures,
    collect_features,
    mixed_rows,
    select_rows,
    train_ids,
)
from models.training.synth_fit import fit_head, is_copy, report_sets, stack
from models.training.synth_select import (
    Fitter,
    Scorer,
    criterion,
    fold_eers,
    selection_folds,
    selection_pool,
)

POOL_QUANTILE = 0.75  # the shipped head's pooling (chosen on the dev calls)


@dataclass(frozen=True)
class Candidate:
    """Features to fit on (single telephone windows), to score (call-path windows), settings."""

    name: str
    fit_feats: dict[str, ClipFeatures]
    eval_feats: dict[str, ClipFeatures]
    settings: tuple[tuple[str, Fitter], ...]


def pooled(
    scorer: Scorer,
    feats: dict[str, ClipFeatures],
    rows: Sequence[CorpusRow],
    *,
    quantile: float = POOL_QUANTILE,
) -> np.ndarray:
    out = []
    for r in rows:
        f = feats[r.id]
        out.append(pool_log_odds(scorer(f.x), f.windows[:, 1] - f.windows[:, 0], quantile=quantile))
    return np.asarray(out)


def labels(rows: Sequence[CorpusRow]) -> np.ndarray:
    return np.asarray([r.label == "robot" for r in rows], dtype=np.int64)


def logistic(cfg: TrainConfig) -> Fitter:
    def fit(x: np.ndarray, y: np.ndarray, rows: list[CorpusRow]) -> Scorer:
        return fit_head(x, y, cfg=cfg, rows=rows).raw_logit

    return fit


def choose(
    cand: Candidate,
    pool: list[CorpusRow],
    train_rows: list[CorpusRow],
    dev_sets: list[list[CorpusRow]],
    cfg: TrainConfig,
) -> tuple[str, Scorer, list[dict[str, object]]]:
    """The setting with the lowest criterion (ties: the earlier, i.e. the stronger penalty)."""
    folds = list(selection_folds(pool, cfg))
    print(f"  {cand.name}: {len(folds)} family folds: {', '.join(f.held_out for f in folds)}")
    x, y, fit_rows = stack(cand.fit_feats, train_rows)
    table: list[dict[str, object]] = []
    best: tuple[float, str, Scorer] | None = None
    for label, fit in cand.settings:
        scorer = fit(x, y, fit_rows)
        dev = [M.eer(labels(s), pooled(scorer, cand.eval_feats, s))[0] for s in dev_sets]
        by_fold = fold_eers(pool, cand.fit_feats, folds, fit)
        crit = criterion(by_fold, float(np.mean(dev)) if dev else None)
        table.append({
            "setting": label, "criterion": round(crit, 4), "folds": len(by_fold),
            "folds_mean": round(float(np.mean(list(by_fold.values()))), 4) if by_fold else None,
            "folds_worst": max(by_fold.items(), key=lambda kv: kv[1]) if by_fold else None,
            "dev": [round(float(d), 4) for d in dev],
        })  # fmt: skip
        print(f"  {cand.name} {label}: criterion {100 * crit:.1f} {table[-1]}", flush=True)
        if best is None or crit < best[0]:
            best = (crit, label, scorer)
    if best is None:
        raise SystemExit(f"{cand.name}: no setting to fit")
    return best[1], best[2], table


@dataclass(frozen=True)
class Figures:
    """One candidate on one test set."""

    people: int
    robots: int
    eer: float
    eer_ci: tuple[float, float]
    auc: float
    delta_vs_ours: tuple[float, float, float] | None  # EER minus whisper+lfcc's, 95 % CI

    def __str__(self) -> str:
        lo, hi = self.eer_ci
        text = f"{100 * self.eer:.1f} % [{100 * lo:.1f}-{100 * hi:.1f}], AUC {self.auc:.3f}"
        if self.delta_vs_ours is not None:
            d, dlo, dhi = self.delta_vs_ours
            text += f"; vs ours {100 * d:+.1f} [{100 * dlo:+.1f}, {100 * dhi:+.1f}]"
        return f"{text} ({self.people} / {self.robots})"


def report(rows: Sequence[CorpusRow], scores: np.ndarray, ref: np.ndarray | None) -> Figures | None:
    y = labels(rows)
    if not M.has_both_classes(y):
        return None
    groups = [ci_group(r) for r in rows]
    return Figures(
        people=int((y == 0).sum()), robots=int(y.sum()), eer=M.eer(y, scores)[0],
        eer_ci=M.bootstrap_ci(y, scores, groups=groups)["eer"], auc=M.roc_auc(y, scores),
        delta_vs_ours=None if ref is None else paired_eer_delta(y, scores, ref, groups=groups),
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--copy-weight", type=float, default=0.3)
    parser.add_argument("--mlp-hidden", default="16,64", help="MLP widths to choose from")
    parser.add_argument("--mlp-l2", default="0.1,1,10", help="MLP L2 (sklearn alpha) grid")
    parser.add_argument("--json", type=Path, help="write every figure and table here")
    parser.add_argument(
        "--compare-heads", nargs=2, type=Path, metavar=("OLD", "NEW"), help="instead: two heads"
    )
    parser.add_argument(
        "--cost",
        type=int,
        metavar="REPEAT",
        help="instead: time AASIST on a 60 s call (1, 4, every window) beside the bare ASR",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.cost:
        return cost(args.cost)
    if args.compare_heads:
        return compare_heads(*args.compare_heads, out=args.json)
    # One BLAS thread: on 2 shared cores under load, two spinning OpenBLAS threads made one small
    # MLP fit take minutes instead of seconds.
    with threadpool_limits(limits=1):
        return run(args)


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    base = TrainConfig()
    rows, calls = select_rows(base), mixed_rows(base)
    tel = collect_features(rows, variant="telephone", cfg=base, encoder=None)
    eval_rows = [r for r in rows if r.split in ("dev", "test")]
    inf = collect_features([*eval_rows, *calls], variant="inference", cfg=base, encoder=None)
    emb = cached_embeddings([*rows, *calls])
    fit_ids = train_ids(rows, base)
    kept = [
        r for r in rows
        if r.id in emb and r.id in tel and (r.id in fit_ids if r.split == "train" else r.id in inf)
    ]  # fmt: skip
    kept_calls = [r for r in calls if r.id in emb and r.id in inf]
    usable = [r for r in rows if r.split != "train" or r.id in fit_ids]
    counts = {
        s: f"{sum(r.split == s for r in kept)} of {sum(r.split == s for r in usable)}"
        for s in ("train", "dev", "test")
    }
    counts["calls"] = f"{len(kept_calls)} of {len(calls)}"
    print(f"rows with every feature (of those the shipped head uses): {counts}", flush=True)

    select = {k for k, v in dev_halves([*rows, *calls]).items() if v == "select"}
    dev_sets = [
        [r for r in kept if r.id in select and r.split == "dev" and not is_copy(r, base)],
        [r for r in kept_calls if r.id in select],
    ]
    dev_sets = [s for s in dev_sets if M.has_both_classes(labels(s))]
    train_rows = [r for r in kept if r.id in fit_ids]
    # On a sample of the train rows (the cache still filling), a family needs proportionally
    # fewer rows to be held out as a fold, so the folds stay the shipped criterion's families.
    folds_cfg = dataclasses.replace(
        base,
        min_fold_robots=max(5, math.ceil(base.min_fold_robots * len(train_rows) / len(fit_ids))),
    )
    test = [r for r in kept if r.split == "test"]
    sets = report_sets(test, base, mixtures=[r for r in kept_calls if r.split == "test"])

    def resolved(l2: float) -> TrainConfig:
        return base.resolved(l2=l2, copy_weight=args.copy_weight, density_alpha=0.0)

    l2_settings = tuple(
        (f"l2={l2:g}", logistic(resolved(l2))) for l2 in sorted(base.l2_grid, reverse=True)
    )
    aasist_1 = {r.id: single_window(r.id, emb[r.id]) for r in [*kept, *kept_calls]}
    ours_fit = {r.id: tel[r.id] for r in kept}
    ours_eval = {r.id: inf[r.id] for r in [*kept, *kept_calls] if r.id in inf}
    mlp_settings = tuple(
        (f"hidden={h} l2={a:g}", mlp_fitter(resolved(base.l2), hidden=h, alpha=a))
        for a in sorted((float(v) for v in args.mlp_l2.split(",")), reverse=True)
        for h in (int(v) for v in args.mlp_hidden.split(","))
    )
    candidates = [
        Candidate("whisper+lfcc", ours_fit, ours_eval, l2_settings),
        Candidate("aasist", aasist_1, aasist_1, l2_settings),
        Candidate(
            "stacked",
            {k: with_embedding(v, emb[k]) for k, v in ours_fit.items()},
            {k: with_embedding(v, emb[k]) for k, v in ours_eval.items()},
            l2_settings,
        ),
        Candidate("aasist MLP", aasist_1, aasist_1, mlp_settings),
    ]
    results: dict[str, object] = {
        "rows": counts,
        "copy_weight": args.copy_weight,
        "min_fold_robots": folds_cfg.min_fold_robots,
    }
    test_scores: dict[str, dict[str, np.ndarray]] = {}
    for cand in candidates:
        pool = selection_pool(kept, cand.fit_feats, fit_ids=fit_ids, select_ids=select)
        setting, scorer, table = choose(cand, pool, train_rows, dev_sets, folds_cfg)
        test_scores[cand.name] = {n: pooled(scorer, cand.eval_feats, m) for n, m in sets.items()}
        results[cand.name] = {"chosen": setting, "selection": table}
        print(f"== {cand.name}: chosen {setting} ({time.monotonic() - started:.0f} s)", flush=True)

    # References on the same rows, not chosen here: AASIST's own head (log-odds from the cached
    # embedding through out_layer: linear, so the mean over windows equals the cached score) and
    # the shipped head as it ships (its own blocks, density, Platt and pooling; since session 4
    # it has the aasist block, the stacked candidate's features).
    from models.aasist import embedding_log_odds, load_aasist

    model = load_aasist()
    shipped = LogisticHead.load(WEIGHTS_PATH)
    shipped_eval = candidates[2].eval_feats if "aasist" in shipped.spec.blocks else ours_eval
    test_scores["AASIST as shipped (ASVspoof 2019 LA head)"] = {
        n: embedding_log_odds(model, np.stack([emb[r.id] for r in m])) for n, m in sets.items()
    }
    test_scores["shipped head (calibrated)"] = {
        n: pooled(shipped.log_odds, shipped_eval, m, quantile=shipped.pool_quantile)
        for n, m in sets.items()
    }
    figures: dict[str, dict[str, object]] = {}
    for name, by_set in test_scores.items():
        print(f"== test: {name}")
        figures[name] = {}
        for set_name, members in sets.items():
            ref = test_scores["whisper+lfcc"][set_name] if name != "whisper+lfcc" else None
            fig = report(members, by_set[set_name], ref)
            figures[name][set_name] = None if fig is None else dataclasses.asdict(fig)
            print(f"  {set_name}: {fig if fig is not None else '-'}", flush=True)
    results["test"] = figures
    results["wall_s"] = round(time.monotonic() - started)
    print(f"wall {results['wall_s']} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


def compare_heads(old_path: Path, new_path: Path, *, out: Path | None) -> int:
    """Test figures of two heads on the call path, on the rows both score; NEW minus OLD."""
    from models.training.evaluate import config_from_head

    heads = {"old": LogisticHead.load(old_path), "new": LogisticHead.load(new_path)}
    base = config_from_head(heads["old"])
    rows, calls = select_rows(base), mixed_rows(base)
    test = [r for r in [*rows, *calls] if r.split == "test"]
    feats = {
        name: collect_features(test, variant="inference", cfg=config_from_head(h), encoder=None)
        for name, h in heads.items()
    }
    kept = [r for r in test if all(r.id in f for f in feats.values())]
    print(f"test rows scored by both heads: {len(kept)} of {len(test)}")
    sets = report_sets(
        [r for r in kept if r.source != "mixed"], base,
        mixtures=[r for r in kept if r.source == "mixed"],
    )  # fmt: skip
    results: dict[str, dict[str, object]] = {}
    for set_name, members in sets.items():
        scores = {
            name: np.asarray(
                [pooled(h.log_odds, feats[name], [r], quantile=h.pool_quantile)[0] for r in members]
            )
            for name, h in heads.items()
        }
        old = report(members, scores["old"], None)
        new = report(members, scores["new"], scores["old"])
        results[set_name] = {
            "old": None if old is None else dataclasses.asdict(old),
            "new": None if new is None else dataclasses.asdict(new),
        }
        print(f"{set_name}:\n  old {old if old else '-'}\n  new {new if new else '-'}", flush=True)
    if out:
        out.write_text(
            json.dumps({"old": str(old_path), "new": str(new_path), **results}, indent=1)
        )
    return 0


def cost(repeat: int) -> int:
    """Seconds (wall and this process's CPU) of the bare ASR and of AASIST's embedding on the
    same 60 s call built from the examples (as ``bench/bench_pipeline.py``), the cases
    alternated ``repeat`` times so load hits them alike; min and median printed."""
    import os
    import statistics

    from models.aasist import clip_windows, load_aasist, window_embeddings
    from models.asr import DECODE_TEMPERATURE
    from models.loading import load_transcriber
    from pipeline.audio import load_audio
    from pipeline.config import AsrConfig, AudioLimits
    from pipeline.telephone import call_channel

    root = Path(__file__).resolve().parent.parent
    parts = ("robot_zh.amr", "human_zh.mp3", "robot_en.mp3", "robot_zh.amr")
    pieces = [load_audio(root / "examples" / p, limits=AudioLimits()).caller() for p in parts]
    samples = np.concatenate(pieces)[: 60 * 16_000].astype(np.float32)
    asr = load_transcriber(AsrConfig()).model  # type: ignore[attr-defined]  # the CT2 model
    model = load_aasist()

    def bare_asr() -> None:
        segments, _ = asr.transcribe(
            samples, beam_size=1, temperature=DECODE_TEMPERATURE, vad_filter=True,
            word_timestamps=True, condition_on_previous_text=False,
        )  # fmt: skip
        list(segments)

    def aasist(n: int | None) -> None:
        window_embeddings(model, clip_windows(call_channel(samples), max_windows=n))

    n_all = len(clip_windows(samples))
    cases: dict[str, Callable[[], None]] = {
        "bare ASR (faster-whisper base int8)": bare_asr,
        "AASIST 1 window": lambda: aasist(1),
        "AASIST 4 windows": lambda: aasist(4),
        f"AASIST every window ({n_all})": lambda: aasist(None),
    }
    for case in cases.values():  # warm-up
        case()
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in cases}
    load_before = os.getloadavg()
    for _ in range(repeat):
        for name, case in cases.items():
            wall, cpu = time.perf_counter(), time.process_time()
            case()
            times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    load_after = os.getloadavg()
    print(f"60 s call, {repeat} alternated repeats; load average {load_before} -> {load_after}")
    bare = times["bare ASR (faster-whisper base int8)"]
    asr_wall, asr_cpu = (statistics.median(v[i] for v in bare) for i in (0, 1))
    for name, values in times.items():
        wall, cpu = (statistics.median(v[i] for v in values) for i in (0, 1))
        print(
            f"  {name}: wall median {wall:.2f} s (min {min(w for w, _ in values):.2f}), "
            f"CPU median {cpu:.2f} s; of the bare ASR's: {100 * wall / asr_wall:.0f} % wall, "
            f"{100 * cpu / asr_cpu:.0f} % CPU"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
