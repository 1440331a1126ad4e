"""Recording-chain, quiet or redrawn copies in the synthetic-voice head's training, leave one
source out (issue 12).

    python -m models.training.loso_chainaug [--quiet | --redrawn] [--render]

A separate study on ``loso_voice``'s harness (its halves, folds, fold cache, figures and
report): on top of the shipped session-7 recipe, the training pool's rows with or without one
recording-chain copy each (``chain_copies``: colouration, room and RawBoost-style distortion
before the row's own telephone window). A copy is tied to its original (same source, speaker and
utterance), so a held-out source's copies leave its fold with it.

Two arms, their candidates fixed (with the adoption rule, in ``docs/unseen_sources.md``) before
any result: the shipped blocks (Whisper + LFCC + AASIST; a copy carries its original's AASIST
vector, not recomputed) and Whisper + LFCC alone (every block of a copy sees its chain). In each
arm: originals only (the reference), copies of both classes at weight 1 and 0.5 of their
original's, and the people's copies alone at weight 1. The choice in each arm: the best mean
per-language AUC on the *choose* half, reported on the *report* half paired against the arm's
reference.

``--quiet`` / ``--redrawn``: the same harness with quiet copies (``chain_copies``: the row's own
telephone window without its noise) or redrawn ones (the same crop through a second channel
draw) instead, one arm on the shipped blocks (:func:`channel_variants`); results and report
part of their own. ``--quiet-redrawn``: both at once, each row with one copy of each kind.
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

from models.synth_head import LogisticHead, PeopleDensity
from models.training.chain_copies import (
    COMBINED,
    KINDS,
    add_kind_options,
    collect_copies,
    copy_digest,
    copy_id,
    copy_row,
    original_id,
    with_original_aasist,
)
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
from models.training.synth_fit import (
    block_columns,
    is_copy,
    row_weights,
    stack,
)

log = logging.getLogger(__name__)

STUDIES = (*KINDS, COMBINED)
RESULTS = {kind: REPO_DIR / "runs" / "loso_voice" / f"{kind}aug.json" for kind in STUDIES}
MARK = {kind: f"{kind}aug" for kind in STUDIES}  # each study's generated part of unseen_sources.md
WINDOW_BLOCKS_BASE = "whisper+lfcc (session 7)"  # the second arm's reference


@dataclass(frozen=True, slots=True)
class ChainVariant:
    """A recipe of ``loso_voice`` (``base``) fitted with or without the chain copies."""

    base: Variant
    copy_weight: float = 0.0  # a copy's weight relative to its original's (0: no copies)
    people_only: bool = False  # copies of people only

    @property
    def name(self) -> str:
        return self.base.name


def chain_variants(cfg: TrainConfig) -> dict[str, tuple[ChainVariant, ...]]:
    """The two arms, fixed before any result: the shipped settings (``cfg``) on all their
    blocks, and on Whisper + LFCC alone; each without copies (its reference), with both
    classes' copies at weight 1 and 0.5, and with the people's copies alone at weight 1."""
    ref = shipped_variant(cfg, NAP_BASE)
    window = dataclasses.replace(
        ref, name=WINDOW_BLOCKS_BASE, blocks=tuple(b for b in ref.blocks if b != "aasist")
    )
    arms: dict[str, tuple[ChainVariant, ...]] = {}
    for arm, base, prefix in (("all blocks", ref, ""), ("whisper+lfcc", window, "whisper+lfcc ")):
        arms[arm] = (
            ChainVariant(base),
            ChainVariant(dataclasses.replace(base, name=f"{prefix}+ chain copies x1"), 1.0),
            ChainVariant(dataclasses.replace(base, name=f"{prefix}+ chain copies x0.5"), 0.5),
            ChainVariant(
                dataclasses.replace(base, name=f"{prefix}+ people's chain copies x1"), 1.0, True
            ),
        )
    return arms


def channel_variants(cfg: TrainConfig, kind: str) -> dict[str, tuple[ChainVariant, ...]]:
    """One arm, fixed before any result: the shipped settings (``cfg``) on all their blocks,
    without copies (the reference) and with both classes' ``kind`` copies (quiet or redrawn) at
    weight 1 and 0.5. No people-only variant: the chain study found copies of one class make
    their difference a class cue (``docs/unseen_sources.md``, "Recording-chain copies")."""
    ref = shipped_variant(cfg, NAP_BASE)
    return {
        "all blocks": (
            ChainVariant(ref),
            ChainVariant(dataclasses.replace(ref, name=f"+ {kind} copies x1"), 1.0),
            ChainVariant(dataclasses.replace(ref, name=f"+ {kind} copies x0.5"), 0.5),
        )
    }


def augmented_weights(
    originals: Sequence[CorpusRow], copies: Sequence[CorpusRow], cfg: TrainConfig, *, weight: float
) -> np.ndarray:
    """Row weights of ``originals`` then ``copies``: the originals' as the recipe weighs them
    (``synth_fit.row_weights``), each copy ``weight`` times its original's, then each class
    rescaled to the same total (mean weight 1, as the recipe's)."""
    base = row_weights(originals, cfg)
    index = {r.id: i for i, r in enumerate(originals)}
    w = np.concatenate([base, weight * base[[index[original_id(c.id)] for c in copies]]])
    y = np.asarray([r.label == "robot" for r in [*originals, *copies]])
    totals = np.where(y, w[y].sum(), w[~y].sum())
    return np.asarray(w / np.maximum(totals, 1e-12) * len(y) / 2)


def fit_with_copies(
    variant: Variant,
    rows: Sequence[CorpusRow],
    tel: dict[str, ClipFeatures],
    cfg: TrainConfig,
    *,
    col_blocks: np.ndarray | None = None,
    densities: dict[str, PeopleDensity] | None = None,
    weight: float,
    people_only: bool,
) -> LogisticHead:
    """``loso_voice.fit_fold``'s head on the originals among ``rows`` and their chain copies
    (of people only with ``people_only``), weighted by :func:`augmented_weights`; the people
    density, when the variant has one, on the people of both."""
    originals = [r for r in rows if original_id(r.id) == r.id]
    x_o, y_o, kept_o = stack(tel, originals)
    have = {r.id for r in kept_o}
    wanted = [r for r in rows if r.id not in have and original_id(r.id) in have
              and (r.label == "human" or not people_only)]  # fmt: skip
    x_c, y_c, kept_c = stack(tel, wanted)
    x = np.concatenate([x_o, x_c]) if kept_c else x_o
    y = np.concatenate([y_o, y_c])
    return fit_head(variant, cfg, x, y, [*kept_o, *kept_c],
                    lambda c: augmented_weights(kept_o, kept_c, c, weight=weight),
                    col_blocks=col_blocks, densities=densities)  # fmt: skip


def run_arm(
    variants: Sequence[ChainVariant],
    *,
    inputs: Any,
    copies: dict[str, ClipFeatures],
    copies_key: str,
    progress: bool = False,
) -> dict[str, Any]:
    """One arm's records, figures, folds and choice, in ``loso_voice.run``'s layout (its
    ``render`` writes the report); the first variant is the arm's reference. ``copies_key``:
    the copies' recipe (``chain_copies.copy_digest``), part of the fold cache's key."""
    from models.training.synth_data import manifest_sha256, train_ids

    started = time.monotonic()
    shipped, cfg, rows, calls = inputs.shipped, inputs.cfg, inputs.rows, inputs.calls
    fit_ids = train_ids(rows, cfg)
    pool = [r for r in rows if r.id in fit_ids and r.id in inputs.tel]
    copy_rows = copies_of(pool, copies)
    tel = inputs.tel | copies
    select = {k for k, v in dev_halves([*rows, *calls]).items() if v == "select"}
    sources = held_out_sources([r for r in rows if r.id in inputs.tel])
    samples = {s: scored_sample(members) for s, members in sources.items()}
    halves = source_halves({s: source_stratum(m) for s, m in sources.items()})
    source_of = {r.id: r.source for r in [*rows, *calls, *copy_rows]}
    calibration = [r for r in [*rows, *calls]
                   if r.id in select and r.id in inputs.inf and not is_copy(r, cfg)]  # fmt: skip
    layout = block_columns(cfg.spec.blocks, next(iter(inputs.tel.values())).x.shape[1])
    extra = json.dumps([shipped.pool_quantile, sorted(manifest_sha256(cfg).values())])
    out: dict[str, Any] = {
        "head": shipped.arrays_sha256(), "halves": halves,
        "strata": {s: source_stratum(m) for s, m in sources.items()},
        "samples": {s: Counter(f"{r.label} {r.language}" for r in m) for s, m in samples.items()},
        "variants": {}, "probe": source_probe(rows, inputs.tel, layout),
    }  # fmt: skip
    for v in variants:
        cols, col_blocks = variant_columns(v.base, layout)
        data = FoldData(
            pool=pool
            + [
                c
                for c in copy_rows
                if v.copy_weight > 0 and (c.label == "human" or not v.people_only)
            ],  # fmt: skip
            calibration=calibration,
            links=[*rows, *calls, *copy_rows],
            tel=transform_features(tel, source_of, cols, norm=v.base.source_norm),
            inf=transform_features(inputs.inf, source_of, cols, norm=v.base.source_norm),
            col_blocks=col_blocks,
            quantile=shipped.pool_quantile,
        )
        if v.copy_weight > 0:
            fitter = functools.partial(fit_with_copies, weight=v.copy_weight,
                                       people_only=v.people_only)  # fmt: skip
            key = json.dumps([v.copy_weight, v.people_only, copies_key,
                              inspect.getsource(fit_with_copies),
                              inspect.getsource(augmented_weights)])  # fmt: skip
            records, folds = run_folds(v.base, samples, data, cfg, cache=cache_dir(),
                                       extra=extra + key, fitter=fitter)  # fmt: skip
        else:  # the reference: loso_voice's own fit (the NAP study's cached folds)
            records, folds = run_folds(v.base, samples, data, cfg, cache=cache_dir(), extra=extra)
        out["variants"][v.name] = {
            "variant": {**dataclasses.asdict(v.base), "chain_copy_weight": v.copy_weight,
                        "chain_people_only": v.people_only},
            "records": records, "folds": folds, "summary": summary(records, halves),
        }  # fmt: skip
        if progress:
            log.warning("%s: %.0f s", v.name, time.monotonic() - started)
    for entry in out["variants"].values():
        entry["criterion"] = criterion(entry["summary"])
    base = variants[0].name
    out["chosen"] = choose({n: e["summary"] for n, e in out["variants"].items()})
    out["base"] = base
    report = {s for s, h in halves.items() if h == "report"}
    reference = out["variants"][base]["records"]
    out["delta_report"] = paired_deltas(out["variants"][out["chosen"]]["records"], reference,
                                        report)  # fmt: skip
    scopes = {h: {s for s, x in halves.items() if x == h} for h in HALVES}
    for name, entry in out["variants"].items():
        if name != base:
            entry["paired"] = {
                scope: paired_figures(entry["records"], reference, members)
                for scope, members in [*scopes.items(), ("all", None)]
            }
    out["seconds"] = round(time.monotonic() - started, 1)
    return out


def copies_of(rows: Sequence[CorpusRow], copies: dict[str, ClipFeatures]) -> list[CorpusRow]:
    """The copy rows among ``copies`` (by copy id) of ``rows``, in the rows' order, each row's
    kinds in :data:`KINDS` order."""
    return [copy_row(r, kind) for r in rows for kind in KINDS if copy_id(r.id, kind) in copies]


def run(*, kind: str = "chain", progress: bool = False) -> dict[str, Any]:
    """The arms of ``kind``'s copies (:func:`chain_variants`, :func:`channel_variants`) and the
    source probe on the people's copies: can a speaker's recording source still be named once
    a random chain is on top of it (or the noise is gone)?"""
    from models.training.chain_copies import training_pool
    from models.training.eval_sources import fold_inputs

    started = time.monotonic()
    inputs = fold_inputs(None)
    cfg = inputs.cfg
    kinds = kind.split("+")  # COMBINED: a copy of each kind per row
    copies: dict[str, ClipFeatures] = {}
    for one in kinds:
        copies |= collect_copies(training_pool(cfg), cfg=cfg, encoder=None, kind=one)  # cached
    full = with_original_aasist(copies, inputs.tel)
    out: dict[str, Any] = {"arms": {}, "copies": len(full), "kind": kind}
    arms = chain_variants(cfg) if kind == "chain" else channel_variants(cfg, kind)
    copies_key = "+".join(copy_digest(one) for one in kinds)
    for arm, variants in arms.items():
        out["arms"][arm] = run_arm(variants, inputs=inputs, copies=full,
                                   copies_key=copies_key, progress=progress)  # fmt: skip
    copy_rows = copies_of(inputs.rows, full)
    have = {original_id(r.id) for r in copy_rows}
    layout = block_columns(cfg.spec.blocks, next(iter(inputs.tel.values())).x.shape[1])
    window = {b: c for b, c in layout.items() if b != "aasist"}
    out["probe_originals"] = source_probe([r for r in inputs.rows if r.id in have], inputs.tel,
                                          window)  # fmt: skip
    out["probe_copies"] = source_probe(copy_rows, full, window)
    out["seconds"] = round(time.monotonic() - started, 1)
    return out


def render(out: dict[str, Any]) -> str:
    """This study's generated part of ``docs/unseen_sources.md``: each arm's tables
    (``loso_voice_report.render``) and the source probe on the originals and their copies."""
    from models.training.loso_voice_report import probe_table
    from models.training.loso_voice_report import render as render_arm

    kind = out.get("kind", "chain")
    lines = [
        f"Generated by `{out.get('command', 'python -m models.training.loso_chainaug')}` "
        f"({out['seconds']:.0f} s, {out['copies']} {kind} copies); this part is rewritten by "
        "each run.",
        "",
    ]
    for arm, result in out["arms"].items():
        named = result | {"command": f"{out.get('command', 'loso_chainaug')}` arm `{arm}"}
        body = render_arm(named).replace("\n### ", "\n#### ")
        lines += [f"### Arm: {arm}", "", body]
    lines += ["### Is the recording source still named on the copies? (people only, unseen "
              "speakers, Whisper and LFCC blocks)", "", "The originals:", ""]  # fmt: skip
    lines += probe_table(out["probe_originals"])
    lines += ["", f"Their {kind} copies:", ""]
    lines += probe_table(out["probe_copies"])
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run (or, with ``--render``, only render) the study: its ``RESULTS`` file and its
    generated part of ``docs/unseen_sources.md``."""
    from models.training.loso_voice import REPORT
    from models.training.text_report import write_generated

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_kind_options(parser, combined=True)
    parser.add_argument("--render", action="store_true", help="only rewrite the report's "
                        "generated part from the study's results file")  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    kind = args.kind
    results = RESULTS[kind]
    if args.render:
        out = json.loads(results.read_text())
    else:
        out = run(kind=kind, progress=True)
        out["command"] = " ".join(["python -m models.training.loso_chainaug",
                                   *(argv or sys.argv[1:])])  # fmt: skip
        results.parent.mkdir(parents=True, exist_ok=True)
        results.write_text(json.dumps(out, indent=1, default=float))
    write_generated(render(out), REPORT, name=MARK[kind])
    log.warning("wrote %s and %s", REPORT, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
