"""Issue 13: why the robot-script head accuses people who do business by phone, and what was
tried against it. Everything here is read on the *selection* half of the fold groups (dev) or
out of fold; the held-out voicemails are never read here (``train_text business`` reads them).

    python -m models.training.text_variants diagnose   # n-grams and machine markers, dev only
    python -m models.training.text_variants compare [--variants current,gated] [--reuse-oof]
    python -m models.training.text_variants report     # its tables again

``diagnose`` fits the robot head per fold (10 grouped folds) and sums, over the dev half's
human business/sales lines, each n-gram's share of their out-of-fold robot score, and counts
which robocall split groups the machine-specific markers alone
(:func:`pipeline.text_cues.machine_markers`) catch. ``compare`` scores four recipes, each
calibrated and thresholded on dev only (:func:`choose_thresholds`), and reports them on the
other half and under leave-one-campaign-group-out:

- ``current``: the shipped recipe (one threshold: <= 5 % of dev business/sales lines above it);
- ``gated``: the same head, but a transcript without a machine marker needs a higher bar
  (``gate``, :func:`choose_gate`): the fewest dev business/sales lines with robot evidence
  while dev robocall recall stays >= ``GATE_RECALL``;
- ``hardneg``: ``current`` trained with harder negatives (:func:`hard_negatives`);
- ``gated+hardneg``: both.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from models.training.text_eval import (
    EVIDENCE_FAMILIES,
    business_margin,
    evidence_rates,
    is_selection_group,
    rule_robot_weights,
)
from models.training.text_features import (
    RUN_DIR,
    TextRow,
    assign_folds,
    fit_binary,
    fit_tfidf,
    read_rows,
    row_transcript,
    sample_weights,
)

log = logging.getLogger(__name__)

# Dev robocall recall the gate may not push below: 5 points above issue 13's 90 % target, the
# slack for campaigns unlike any on dev.
GATE_RECALL = 0.95
GATE_STEP = 0.05  # grid of the gate, robot-logit units
GATE_MAX = 8.0
HARD_WINDOW_CHARS = 300  # about a robocall transcript's median length (295 characters)
HARD_WINDOWS = 2  # opening windows kept per persuasion dialogue
HARD_SOURCE = "hardneg_persuasion_en"  # no EVIDENCE_FAMILIES prefix: trained on, never reported
VARIANTS = ("current", "gated", "hardneg", "gated+hardneg")
_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+")


def has_markers(rows: Sequence[TextRow]) -> np.ndarray:
    """Whether each row holds a machine-specific marker, shape (n,), bool."""
    from pipeline.text_cues import machine_markers

    return np.array([bool(machine_markers(row_transcript(r))) for r in rows], dtype=bool)


def hard_negatives(rows: Sequence[TextRow]) -> list[TextRow]:
    """The opening ``HARD_WINDOWS`` windows (whole sentences, about ``HARD_WINDOW_CHARS``) of
    every typed persuasion dialogue: a person introducing a charity and asking for money, at the
    length of a voicemail or a robocall. Group ``hardneg/<dialogue day>``; folds follow the
    parent dialogue's (:func:`extended_folds`), so no window is trained on against its own
    dialogue."""
    out = []
    for r in rows:
        if r.source != "persuasion_en":
            continue
        windows, current = [], ""
        for sentence in _SENTENCE_RE.split(r.text):
            current = f"{current} {sentence}".strip()
            if len(current) >= HARD_WINDOW_CHARS:
                windows.append(current)
                current = ""
            if len(windows) == HARD_WINDOWS:
                break
        for i, text in enumerate(windows):
            out.append(
                replace(
                    r,
                    id=f"{r.id}/window{i}",
                    text=text,
                    source=HARD_SOURCE,
                    group=f"hardneg/{r.group}",
                    origin=f"opening window {i} of {r.id}",
                )
            )
    return out


def extended_folds(rows: Sequence[TextRow], extra: Sequence[TextRow], n_folds: int) -> np.ndarray:
    """Folds of ``rows`` followed by ``extra``, each extra row in its parent dialogue's fold."""
    folds = assign_folds(rows, n_folds)
    by_group = {r.group: int(f) for r, f in zip(rows, folds, strict=True)}
    parent = [by_group[e.group.removeprefix("hardneg/")] for e in extra]
    return np.concatenate([folds, np.array(parent, dtype=np.int64)])


def robot_oof(
    rows: Sequence[TextRow], folds: np.ndarray, trainable: np.ndarray, *, fixed_vocabulary: bool
) -> np.ndarray:
    """Out-of-fold raw robot-head scores (TF-IDF n-grams), shape (n,).

    ``fixed_vocabulary``: one vocabulary from all texts (label-free), as ``train --logo`` does.
    """
    y = np.array([r.is_robot for r in rows])
    weights = sample_weights(rows)
    texts = [r.text for r in rows]
    x_all = fit_tfidf(texts).transform(texts) if fixed_vocabulary else None
    out = np.zeros(len(rows))
    for k in sorted(set(folds.tolist())):
        test = np.where(folds == k)[0]
        train = np.where((folds != k) & trainable)[0]
        x = x_all if x_all is not None else fit_tfidf([texts[i] for i in train]).transform(texts)
        out[test] = fit_binary(x[train], y[train], weights[train]).decision_function(x[test])
    return out


@dataclass(frozen=True)
class Thresholds:
    """A recipe's calibration and bars, all chosen on dev: evidence = log-odds - bar > 0."""

    platt: tuple[float, float]  # raw score -> balanced log-odds
    margin: float  # bar for every transcript (<= 5 % of dev business/sales lines above it)
    gate: float  # extra bar for a transcript without a machine marker (0 = no gate)


def platt_fit(scores: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """1-D logistic fit of out-of-fold scores, classes balanced: log-odds = a * score + b."""
    from sklearn.linear_model import LogisticRegression

    fit = LogisticRegression(C=1e4, class_weight="balanced", max_iter=1000)
    fit.fit(scores.reshape(-1, 1), y)
    return float(fit.coef_[0, 0]), float(fit.intercept_[0])


def choose_gate(
    log_odds: np.ndarray,
    marked: np.ndarray,
    robot: np.ndarray,
    business: np.ndarray,
    min_recall: float = GATE_RECALL,
) -> float:
    """The gate, on the ``GATE_STEP`` grid up to ``GATE_MAX``, that leaves the fewest
    ``business`` rows with ``log_odds - gate * ~marked > 0`` while the ``robot`` rows
    (robocalls) keep a recall >= ``min_recall``; the smallest such gate (recall falls as the
    gate rises, so every tie costs nothing on robocalls and the least on marker-less robot
    script lines)."""
    best, best_fp = 0.0, np.inf
    for step in range(round(GATE_MAX / GATE_STEP) + 1):
        gate = round(step * GATE_STEP, 6)
        w = log_odds - gate * ~marked
        if float(np.mean(w[robot] > 0)) < min_recall:
            break
        fp = float(np.mean(w[business] > 0))
        if fp < best_fp:
            best, best_fp = gate, fp
    return best


def choose_thresholds(
    rows: Sequence[TextRow],
    raw: np.ndarray,
    marked: np.ndarray,
    dev: np.ndarray,
    *,
    gated: bool,
) -> Thresholds:
    """Platt on the dev rows, the business margin on dev, and (``gated``) the gate on dev."""
    y = np.array([r.is_robot for r in rows])
    a, b = platt_fit(raw[dev], y[dev])
    log_odds = a * raw + b
    margin = business_margin(log_odds, rows, dev)
    gate = 0.0
    if gated:
        robocall = np.array([r.source == "robocall" for r in rows])
        gate = choose_gate(
            log_odds[dev] - margin, marked[dev], robocall[dev], business_rows(rows)[dev]
        )
    return Thresholds((a, b), margin, gate)


def evidence_weight(raw: np.ndarray, marked: np.ndarray, t: Thresholds) -> np.ndarray:
    """Log-odds above the row's bar (positive = robot-leaning evidence), shape (n,)."""
    a, b = t.platt
    return a * raw + b - t.margin - t.gate * ~marked


def _trainable(rows: Sequence[TextRow]) -> np.ndarray:
    """Rows no head may fit on: tied to the audio test split (as ``train_text`` excludes)."""
    from models.training.corpus import read_manifests
    from models.training.leakage import tied_to_test

    return ~tied_to_test(rows, read_manifests())


def business_rows(rows: Sequence[TextRow]) -> np.ndarray:
    """Mask of the spoken human business/sales lines (the family issue 13's target is on)."""
    prefixes = EVIDENCE_FAMILIES["human business/sales, authored"][0]
    return np.array([r.source.startswith(prefixes) and not r.is_robot for r in rows])


def diagnose(top: int = 25) -> dict[str, Any]:
    """Dev half only: the n-grams that push human business/sales lines robot-ward out of fold,
    the lines pushed furthest, and the robocall split groups the machine markers alone catch."""
    rows = read_rows()
    trainable = _trainable(rows)
    dev = np.array([is_selection_group(r.group) for r in rows])
    business = business_rows(rows) & dev
    folds = assign_folds(rows, 10)
    texts = [r.text for r in rows]
    y = np.array([r.is_robot for r in rows])
    weights = sample_weights(rows)
    push: defaultdict[str, float] = defaultdict(float)
    per_row: dict[int, tuple[float, list[tuple[str, float]]]] = {}
    for k in sorted(set(folds.tolist())):
        test = np.where((folds == k) & business)[0]
        if not test.size:
            continue
        train = np.where((folds != k) & trainable)[0]
        vec = fit_tfidf([texts[i] for i in train])
        x = vec.transform(texts)
        clf = fit_binary(x[train], y[train], weights[train])
        names = vec.get_feature_names_out()
        coef = clf.coef_[0]
        for i in test:
            row = x[i].tocoo()
            parts = sorted(
                (
                    (str(names[j]), float(v * coef[j]))
                    for j, v in zip(row.col, row.data, strict=True)
                ),
                key=lambda p: -p[1],
            )
            per_row[int(i)] = (float(clf.decision_function(x[i])[0]), parts[:8])
            for gram, c in parts:
                push[gram] += c
    robocall = np.array([r.source == "robocall" for r in rows])
    marked = has_markers(rows)
    caught: dict[str, list[bool]] = defaultdict(list)
    for i in np.where(robocall & dev)[0]:
        caught[rows[i].group].append(bool(marked[i]))
    human_marked = Counter(rows[i].source for i in np.where(dev & (y == 0) & marked)[0])
    worst = sorted(per_row.items(), key=lambda kv: -kv[1][0])[:10]
    ranked = sorted(push.items(), key=lambda kv: -kv[1])
    return {
        "n_business_dev": int(business.sum()),
        "top_ngrams_robotward": [(g, round(c, 3)) for g, c in ranked[:top]],
        "top_ngrams_humanward": [(g, round(c, 3)) for g, c in ranked[-10:]],
        "most_robot_like_business_lines": [
            {"id": rows[i].id, "raw_score": round(s, 3), "top": [(g, round(c, 3)) for g, c in p]}
            for i, (s, p) in worst
        ],
        "markers": {
            "dev_robocall_rows": int((robocall & dev).sum()),
            "dev_robocall_rows_caught": int((robocall & dev & marked).sum()),
            "dev_groups": len(caught),
            "dev_groups_all_caught": sum(all(v) for v in caught.values()),
            "dev_groups_none_caught": sorted(g for g, v in caught.items() if not any(v)),
            "dev_human_rows_with_marker": dict(human_marked),
            "dev_human_rows": int((dev & (y == 0)).sum()),
        },
    }


def compare(variants: Sequence[str] = VARIANTS, *, reuse_oof: bool = False) -> dict[str, Any]:
    """Each of ``variants``: thresholds from dev 10-fold scores; rates on dev (choice) and on
    the other half (report), 10-fold and leave-one-campaign-group-out; the dev choice.

    ``reuse_oof``: take the raw out-of-fold scores a previous run saved under ``RUN_DIR``
    (same corpus) instead of refitting; only the thresholds are chosen again.
    """
    from models.text_clf import ROBOT_WEIGHT_CAP

    rows = read_rows()
    trainable = _trainable(rows)
    dev = np.array([is_selection_group(r.group) for r in rows])
    marked = has_markers(rows)
    rules = rule_robot_weights(rows)
    extra = hard_negatives(rows)
    n = len(rows)
    results: dict[str, Any] = {}
    for hard in sorted({"hardneg" in v for v in variants}):
        saved = RUN_DIR / f"variants_oof_hardneg{int(hard)}.npz"
        if reuse_oof and saved.is_file():
            with np.load(saved, allow_pickle=False) as data:
                raw = {"10_fold": data["ten_fold"], "logo": data["logo"]}
        else:
            added = extra if hard else []
            all_rows = [*rows, *added]
            fit_on = np.concatenate([trainable, np.ones(len(added), dtype=bool)])
            raw = {
                "10_fold": robot_oof(
                    all_rows, extended_folds(rows, added, 10), fit_on, fixed_vocabulary=False
                )[:n],
                "logo": robot_oof(
                    all_rows, extended_folds(rows, added, 0), fit_on, fixed_vocabulary=True
                )[:n],
            }
            log.info("hard negatives %s: %d added rows, scored", hard, len(added))
            RUN_DIR.mkdir(parents=True, exist_ok=True)
            np.savez(saved, ten_fold=raw["10_fold"], logo=raw["logo"])
        for gated in (False, True):
            name = "+".join(p for p, on in (("gated", gated), ("hardneg", hard)) if on)
            if (name or "current") not in variants:
                continue
            t = choose_thresholds(rows, raw["10_fold"], marked, trainable & dev, gated=gated)
            entry: dict[str, Any] = {"thresholds": t.__dict__ | {"platt": list(t.platt)}}
            for run, scores in raw.items():
                w = evidence_weight(scores, marked, t)
                entry[run] = {
                    "dev": evidence_rates(rows, w, dev),
                    "report": evidence_rates(rows, w, ~dev),
                    "report_all_text": evidence_rates(
                        rows, np.clip(w, 0.0, ROBOT_WEIGHT_CAP) + rules, ~dev
                    ),
                }
            results[name or "current"] = entry
    results["variants"] = list(variants)
    results["chosen"] = choose_variant(results)
    return results


def choose_variant(results: dict[str, Any]) -> str:
    """Dev only: among variants whose dev 10-fold robocall recall >= ``GATE_RECALL``, the fewest
    dev business/sales lines with robot-leaning evidence, then the fewest chit-chat lines."""

    def rate(name: str, key: str) -> float:
        return float(results[name]["10_fold"]["dev"][key]["rate"])

    ok = [
        str(v)
        for v in results.get("variants", VARIANTS)
        if rate(v, "robocall transcripts (held-out campaigns) (all)") >= GATE_RECALL
    ]
    return min(
        ok,
        key=lambda v: (
            rate(v, "human business/sales, authored (all)"),
            rate(v, "human chit-chat and read text (all)"),
        ),
    )


def _cell(rates: dict[str, Any], key: str) -> str:
    m = rates.get(key)
    if m is None:
        return "n/a"
    low, high = m["ci95"]
    return f"{100 * m['rate']:.1f} ({100 * low:.1f}-{100 * high:.1f}), n={m['n']}"


def render(results: dict[str, Any]) -> str:
    """Markdown tables of :func:`compare`: dev (the choice), then the report half and LOGO."""
    business, chat = "human business/sales, authored", "human chit-chat and read text"
    persuasion = "human persuasion, typed (PersuasionForGood)"
    robocall = "robocall transcripts (held-out campaigns)"
    scripts = "robot script lines and their Whisper transcripts"
    out = [
        "| variant | margin / gate | dev: business/sales | dev: robocall recall |",
        "|---|---|---|---|",
    ]
    shown = results.get("variants", VARIANTS)
    for v in shown:
        t, dev = results[v]["thresholds"], results[v]["10_fold"]["dev"]
        out.append(
            f"| {v} | {t['margin']:.2f} / {t['gate']:.2f} | {_cell(dev, f'{business} (all)')} "
            f"| {_cell(dev, f'{robocall} (all)')} |"
        )
    out += [
        "",
        f"Chosen on dev: **{results['chosen']}**.",
        "",
        "| variant | run | business/sales en | business/sales zh | chit-chat | persuasion "
        "| robocall recall | script lines recall | all text: business/sales |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for v in shown:
        for run in ("10_fold", "logo"):
            r, a = results[v][run]["report"], results[v][run]["report_all_text"]
            out.append(
                f"| {v} | {run.replace('_', '-')} | {_cell(r, f'{business} (en)')} "
                f"| {_cell(r, f'{business} (zh)')} | {_cell(r, f'{chat} (all)')} "
                f"| {_cell(r, f'{persuasion} (all)')} | {_cell(r, f'{robocall} (all)')} "
                f"| {_cell(r, f'{scripts} (all)')} | {_cell(a, f'{business} (all)')} |"
            )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("diagnose", "compare", "report"))
    parser.add_argument("--variants", default=",".join(VARIANTS), help="compare these only")
    parser.add_argument(
        "--reuse-oof", action="store_true", help="compare: reuse the saved out-of-fold scores"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.command == "report":  # the tables again, from the last compare
        saved = json.loads((RUN_DIR / "variants_compare.json").read_text(encoding="utf-8"))
        print(render(saved))  # noqa: T201 - a report command
        return 0
    chosen = [v for v in args.variants.split(",") if v]
    if set(chosen) - set(VARIANTS):
        parser.error(f"unknown variants {sorted(set(chosen) - set(VARIANTS))}; from {VARIANTS}")
    if args.command == "diagnose":
        result = diagnose()
    else:
        result = compare(chosen, reuse_oof=args.reuse_oof)
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    path = RUN_DIR / f"variants_{args.command}.json"
    path.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    log.info("wrote %s", path)
    if args.command == "compare":
        print(render(result))  # noqa: T201 - a report command
    return 0


if __name__ == "__main__":
    sys.exit(main())
