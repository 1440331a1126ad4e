"""The synthetic-voice head with its AASIST block fitted on drawn copies, leave one source out
(issue 12).

    python -m models.training.loso_aasist_drawn [--render]

A study on ``loso_voice``'s harness (its halves, folds, figures and report). The head's AASIST
vector is computed on the clean whole clip; its Whisper and LFCC windows on a random codec and
noise draw (``aasist_drawn``). Here every held-out clip is scored as an upload that went through
that channel, on both: its ``tel`` window and the AASIST vector of its drawn copy; the call
path (``inf``: dev and test clips, pooled windows, the clean vector) is a clean upload. The
candidates, fixed before any result, all on the shipped head's settings:

- ``clean vectors`` (the reference): fitted on the clean vectors, as shipped;
- ``drawn vectors``: fitted on the drawn vectors instead;
- ``clean + drawn x1`` / ``x0.5``: every training row twice, with its clean and with its drawn
  vector, the second at that share of the row's weight (each class then rescaled to the same
  total);

and, for information only (not a candidate), ``clean vectors, scored clean``: the reference's
heads with the held-out clips' clean vectors, the harness as the earlier studies ran it.

The choice: the best mean per-language AUC on the *choose* half (``tel``), reported on the
*report* half paired against the reference. Adoption rule (``docs/unseen_sources.md``, "AASIST on
drawn copies"): the report-half AUC change is positive in both languages with the 95 % interval
excluding 0 in at least one, and the call path (a clean upload) loses in neither language with
an interval below 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import inspect
import json
import logging
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.synth_head import AASIST_DIM, LogisticHead, PeopleDensity
from models.training.corpus import REPO_DIR, CorpusRow, dev_halves
from models.training.loso_voice import (
    HALVES,
    NAP_BASE,
    FoldData,
    Variant,
    cache_dir,
    choose,
    criterion,
    fit_head,
    held_out_sources,
    paired_deltas,
    paired_figures,
    run_folds,
    scored_sample,
    shipped_variant,
    source_halves,
    source_probe,
    source_stratum,
    summary,
    transform_features,
    variant_columns,
)
from models.training.synth_config import TrainConfig
from models.training.synth_data import ClipFeatures
from models.training.synth_fit import block_columns, is_copy, row_weights, stack

log = logging.getLogger(__name__)

RESULTS = REPO_DIR / "runs" / "loso_voice" / "aasist_drawn.json"
MARK = "aasistdrawn"  # this study's generated part of docs/unseen_sources.md
REFERENCE = "clean vectors"
SCORED_CLEAN = "clean vectors, scored clean"


@dataclass(frozen=True, slots=True)
class DrawnVariant:
    """The shipped settings fitted on the clean vectors, the drawn ones, or both."""

    base: Variant
    fit_on: str  # "clean", "drawn" or "both"
    drawn_weight: float = 1.0  # with "both": the drawn row's share of its row's weight

    @property
    def name(self) -> str:
        return self.base.name


def drawn_variants(cfg: TrainConfig) -> tuple[DrawnVariant, ...]:
    """The candidates, fixed before any result; the first is the reference."""
    ref = shipped_variant(cfg, NAP_BASE)
    return (
        DrawnVariant(dataclasses.replace(ref, name=REFERENCE), "clean"),
        DrawnVariant(dataclasses.replace(ref, name="drawn vectors"), "drawn"),
        DrawnVariant(dataclasses.replace(ref, name="clean + drawn x1"), "both", 1.0),
        DrawnVariant(dataclasses.replace(ref, name="clean + drawn x0.5"), "both", 0.5),
    )


def with_vectors(
    feats: dict[str, ClipFeatures], vectors: dict[str, np.ndarray]
) -> dict[str, ClipFeatures]:
    """Each row's features with its AASIST columns (the last ``AASIST_DIM``) replaced by its
    vector in ``vectors``; rows without one are left out."""
    return {
        k: ClipFeatures(
            k,
            f.windows,
            np.concatenate(
                [f.x[:, :-AASIST_DIM], np.broadcast_to(vectors[k], (f.x.shape[0], AASIST_DIM))],
                axis=1,
            ),
        )
        for k, f in feats.items()
        if k in vectors
    }


def fit_drawn(
    variant: Variant,
    rows: Sequence[CorpusRow],
    tel: dict[str, ClipFeatures],
    cfg: TrainConfig,
    *,
    col_blocks: np.ndarray | None = None,
    densities: dict[str, PeopleDensity] | None = None,
    clean: dict[str, ClipFeatures],
    fit_on: str,
    drawn_weight: float,
) -> LogisticHead:
    """``loso_voice.fit_fold`` with the training rows' AASIST columns taken from ``clean`` (the
    clean vectors), from ``tel`` (the drawn ones) or from both, each row then twice: its
    clean row at its weight, its drawn row at ``drawn_weight`` of it, rescaled so the mean
    weight stays 1 (the recipe's weights are class-balanced, so the classes stay balanced)."""
    both = [r for r in rows if r.id in tel and r.id in clean]
    if fit_on != "both":
        x, y, kept = stack(clean if fit_on == "clean" else tel, both)
        return fit_head(variant, cfg, x, y, kept, lambda c: row_weights(kept, c),
                        col_blocks=col_blocks, densities=densities)  # fmt: skip
    x_c, y_c, kept = stack(clean, both)
    x_d, y_d, _ = stack(tel, kept)

    def weights(c: TrainConfig) -> np.ndarray:
        base = row_weights(kept, c)
        return np.concatenate([base, drawn_weight * base]) * 2 / (1 + drawn_weight)

    return fit_head(variant, cfg, np.concatenate([x_c, x_d]), np.concatenate([y_c, y_d]),
                    [*kept, *kept], weights, col_blocks=col_blocks,
                    densities=densities)  # fmt: skip


def call_path(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records scored on the call path, with that score where ``paired_figures`` reads."""
    return [r | {"tel": r["inf"]} for r in records if r["inf"] is not None]


def run(*, progress: bool = False) -> dict[str, Any]:
    """Every candidate's leave-one-source-out records, figures and folds, the choice and the
    paired changes against the reference, on the telephone path (drawn uploads) and the call
    path (clean uploads); plain data. Reads cached features only, the drawn vectors included
    (``python -m models.training.aasist_drawn`` fills them; a miss computes one)."""
    from models.training.aasist_drawn import DRAW_TAG, collect_drawn
    from models.training.eval_sources import fold_inputs
    from models.training.synth_data import manifest_sha256, train_ids

    started = time.monotonic()
    inputs = fold_inputs(None)
    shipped, cfg, rows, calls = inputs.shipped, inputs.cfg, inputs.rows, inputs.calls
    have = [r for r in rows if r.id in inputs.tel]
    drawn = with_vectors(inputs.tel, collect_drawn(have, cfg, progress=progress))
    fit_ids = train_ids(rows, cfg)
    select = {k for k, v in dev_halves([*rows, *calls]).items() if v == "select"}
    sources = held_out_sources([r for r in rows if r.id in drawn])
    samples = {s: scored_sample(members) for s, members in sources.items()}
    halves = source_halves({s: source_stratum(m) for s, m in sources.items()})
    source_of = {r.id: r.source for r in [*rows, *calls]}
    calibration = [r for r in [*rows, *calls]
                   if r.id in select and r.id in inputs.inf and not is_copy(r, cfg)]  # fmt: skip
    layout = block_columns(cfg.spec.blocks, next(iter(inputs.tel.values())).x.shape[1])
    extra = json.dumps([shipped.pool_quantile, sorted(manifest_sha256(cfg).values()), DRAW_TAG,
                        inspect.getsource(fit_drawn), inspect.getsource(with_vectors)])  # fmt: skip
    out: dict[str, Any] = {
        "head": shipped.arrays_sha256(), "halves": halves,
        "strata": {s: source_stratum(m) for s, m in sources.items()},
        "samples": {s: Counter(f"{r.label} {r.language}" for r in m) for s, m in samples.items()},
        "variants": {}, "probe": source_probe(rows, drawn, layout),
        "probe_clean": source_probe([r for r in rows if r.id in drawn], inputs.tel, layout),
        "drawn_rows": len(drawn), "rows": len(have),
    }  # fmt: skip
    candidates = drawn_variants(cfg)
    # the reference's own heads (the same fold keys) once more, scoring the clean vectors
    runs = [(v.name, v, drawn) for v in candidates] + [(SCORED_CLEAN, candidates[0], inputs.tel)]
    for name, v, scored in runs:
        cols, col_blocks = variant_columns(v.base, layout)
        data = FoldData(
            pool=[r for r in rows if r.id in fit_ids and r.id in drawn],
            calibration=calibration,
            links=[*rows, *calls],
            tel=transform_features(scored, source_of, cols, norm=False),
            inf=transform_features(inputs.inf, source_of, cols, norm=False),
            col_blocks=col_blocks,
            quantile=shipped.pool_quantile,
        )
        clean = transform_features(inputs.tel, source_of, cols, norm=False)
        fitter = functools.partial(fit_drawn, clean=clean, fit_on=v.fit_on,
                                   drawn_weight=v.drawn_weight)  # fmt: skip
        key = json.dumps([v.fit_on, v.drawn_weight])
        records, folds = run_folds(v.base, samples, data, cfg, cache=cache_dir(),
                                   extra=extra + key, fitter=fitter)  # fmt: skip
        out["variants"][name] = {
            "variant": {**dataclasses.asdict(v.base), "name": name, "fit_on": v.fit_on,
                        "drawn_weight": v.drawn_weight},
            "records": records, "folds": folds, "summary": summary(records, halves),
        }  # fmt: skip
        if progress:
            log.warning("%s: %.0f s", name, time.monotonic() - started)
    variants = out["variants"]
    for entry in variants.values():
        entry["criterion"] = criterion(entry["summary"])
    out["chosen"] = choose({v.name: variants[v.name]["summary"] for v in candidates})
    out["base"] = REFERENCE
    reference = variants[REFERENCE]["records"]
    report = {s for s, h in halves.items() if h == "report"}
    out["delta_report"] = paired_deltas(variants[out["chosen"]]["records"], reference, report)
    scopes = {h: {s for s, x in halves.items() if x == h} for h in HALVES}
    for name, entry in variants.items():
        if name != REFERENCE:
            entry["paired"] = {
                scope: paired_figures(entry["records"], reference, members)
                for scope, members in [*scopes.items(), ("all", None)]
            }
            entry["paired_call_path"] = paired_figures(
                call_path(entry["records"]), call_path(reference), None
            )
    out["seconds"] = round(time.monotonic() - started, 1)
    return out


def render(out: dict[str, Any]) -> str:
    """This study's generated part of ``docs/unseen_sources.md``: ``loso_voice_report``'s
    tables, the call path's paired changes and the source probe on the drawn vectors."""
    from models.training.loso_voice_report import probe_table
    from models.training.loso_voice_report import render as render_study
    from models.training.tables import markdown_table

    # loso_voice_report's own first line names its command; this part's names the study's
    body = ("\n" + render_study(out).split("\n", 2)[2]).replace("\n### ", "\n#### ")
    lines = [
        f"Generated by `{out.get('command', 'python -m models.training.loso_aasist_drawn')}` "
        f"({out['seconds']:.0f} s; shipped head arrays sha256 {out['head'][:12]}; drawn AASIST "
        f"vectors for {out['drawn_rows']} of {out['rows']} rows); this part is rewritten by "
        "each run.",
        "",
        body,
        "#### Call path (clean uploads, dev and test clips), paired against the reference",
        "",
    ]
    cells = []
    for name, entry in out["variants"].items():
        for lang, figs in entry.get("paired_call_path", {}).items():
            if lang != "mean_auc":
                d, lo, hi = figs["auc"]
                cells.append([name, lang, f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]"])
    lines += markdown_table(["variant", "language", "AUC change [95 % CI]"], cells)
    lines += ["", "#### Which features name the recording chain, clean vectors (the same people)",
              ""]  # fmt: skip
    lines += probe_table(out["probe_clean"])
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run (or, with ``--render``, only render) the study: its results file and its generated
    part of ``docs/unseen_sources.md``."""
    from models.training.loso_voice import REPORT
    from models.training.text_report import write_generated

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--render", action="store_true", help="only rewrite the report's "
                        "generated part from the study's results file")  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    if args.render:
        out = json.loads(RESULTS.read_text())
    else:
        out = run(progress=True)
        out["command"] = " ".join(["python -m models.training.loso_aasist_drawn",
                                   *(argv or sys.argv[1:])])  # fmt: skip
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(out, indent=1, default=float))
    write_generated(render(out), REPORT, name=MARK)
    log.warning("wrote %s and %s", REPORT, RESULTS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
