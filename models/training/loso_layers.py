"""Which Whisper encoder layer holds on unseen recording sources: the leave-one-source-out
study of ``docs/unseen_sources.md`` with the head's Whisper block replaced by one layer's
statistics (issue 12).

    python -m models.training.loso_layers [--variant NAME ...] [--render]

The harness is ``loso_voice``'s (its folds, halves, figures, fold cache and report); the
variants are fixed in :func:`layer_variants` and listed in the docs before any result. The
per-layer features (``layer_features.py``: conv stem and layers 1-6 of the converted encoder in
float32, one forward per window, on the head's own telephone and call-path audio) are computed
on a cache miss, single-threaded; the rest is read from the head's feature caches.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.training.corpus import REPO_DIR, dev_halves
from models.training.loso_voice import (
    REPORT,
    FoldData,
    Variant,
    appended_columns,
    choose,
    criterion,
    held_out_sources,
    pair_with_reference,
    paired_deltas,
    run_folds,
    scored_sample,
    shipped_config,
    shipped_variant,
    source_halves,
    source_probe,
    source_stratum,
    summary,
    transform_features,
    variant_columns,
)
from models.training.synth_config import TrainConfig

log = logging.getLogger(__name__)

LAYERS_BASE = "shipped (session 7)"  # the reference: the shipped head's own settings
LAYERS_MARK = "layers"  # this study's generated part of REPORT
LAYERS_RESULTS = REPO_DIR / "runs" / "loso_voice" / "layers.json"
PAIRED_WITH_SHIPPED = (1, 3)  # the layers also tried beside the shipped block


def layer_variants(cfg: TrainConfig) -> tuple[Variant, ...]:
    """The study's candidates (fixed, and listed in ``docs/unseen_sources.md``, before any
    result): the shipped head's resolved settings (``cfg``), then its Whisper block replaced by
    layer k's statistics for k = 1..6 (layer 6 is the shipped block in float32), then the
    shipped block with layer 1 or layer 3 appended (:data:`PAIRED_WITH_SHIPPED`)."""
    ref = shipped_variant(cfg, LAYERS_BASE)
    others = tuple(b for b in ref.blocks if b != "whisper")
    singles = [dataclasses.replace(ref, name=f"layer {k}", blocks=(f"layer{k}", *others))
               for k in range(1, 7)]  # fmt: skip
    pairs = [dataclasses.replace(ref, name=f"shipped + layer {k}",
                                 blocks=("whisper", f"layer{k}", *others))
             for k in PAIRED_WITH_SHIPPED]  # fmt: skip
    return (ref, *singles, *pairs)


def as_whisper_parts(col_blocks: np.ndarray) -> np.ndarray:
    """``col_blocks`` with every layer column counted as the ``whisper`` part (the raw logit's
    parts: the layer stands where the Whisper block stood)."""
    return np.where(np.char.startswith(col_blocks.astype(str), "layer"), "whisper", col_blocks)


def run(variants: Sequence[Variant], *, progress: bool = False) -> dict[str, Any]:
    """Every variant's leave-one-source-out records, figures and folds, the halves, the chosen
    variant, each variant's paired change against :data:`LAYERS_BASE` and the source probe of
    every layer; plain data, in ``loso_voice.run``'s layout (its report renders it)."""
    import torch

    from models.training.eval_sources import fold_inputs
    from models.training.layer_features import (
        BLOCK_WIDTHS,
        FEATURE_VERSION,
        load_layer_encoder,
        with_layers,
    )
    from models.training.loso_voice import cache_dir
    from models.training.synth_data import manifest_sha256, train_ids
    from models.training.synth_fit import block_columns, is_copy

    torch.set_num_threads(1)  # the machine is shared: one core for the encoder
    started = time.monotonic()
    inputs = fold_inputs(None)
    shipped, cfg, rows, calls = inputs.shipped, inputs.cfg, inputs.rows, inputs.calls
    fit_ids = train_ids(rows, cfg)
    select = {k for k, v in dev_halves([*rows, *calls]).items() if v == "select"}
    sources = held_out_sources([r for r in rows if r.id in inputs.tel])
    samples = {s: scored_sample(members) for s, members in sources.items()}
    strata = {s: source_stratum(members) for s, members in sources.items()}
    halves = source_halves(strata)
    calibration = [r for r in [*rows, *calls]
                   if r.id in select and r.id in inputs.inf and not is_copy(r, cfg)]  # fmt: skip
    scored = {r.id for m in samples.values() for r in m}
    on_call = {r.id for r in calibration} | scored
    encoder = load_layer_encoder()
    tel = with_layers(inputs.tel, rows, path="telephone", cfg=cfg, encoder=encoder,
                      progress=progress)  # fmt: skip
    inf = with_layers({k: f for k, f in inputs.inf.items() if k in on_call}, [*rows, *calls],
                      path="inference", cfg=cfg, encoder=encoder, progress=progress)  # fmt: skip
    features_s = round(time.monotonic() - started, 1)
    width = next(iter(inputs.tel.values())).x.shape[1]
    layout = block_columns(cfg.spec.blocks, width) | appended_columns(BLOCK_WIDTHS, width)
    source_of = {r.id: r.source for r in [*rows, *calls]}
    base_extra = json.dumps([shipped.pool_quantile, sorted(manifest_sha256(cfg).values())])
    layer_extra = f"{base_extra}|whisper layers v{FEATURE_VERSION} {encoder.checkpoint[:16]}"
    probe_layout = {b: layout[b] for b in ("whisper", *BLOCK_WIDTHS)}
    out: dict[str, Any] = {
        "head": shipped.arrays_sha256(), "strata": strata, "halves": halves,
        "samples": {s: Counter(f"{r.label} {r.language}" for r in m) for s, m in samples.items()},
        "variants": {}, "features_s": features_s,
        "probe": source_probe(rows, tel, probe_layout),
    }  # fmt: skip
    for variant in variants:
        cols, col_blocks = variant_columns(variant, layout)
        data = FoldData(
            pool=[r for r in rows if r.id in fit_ids and r.id in tel],
            calibration=calibration,
            links=[*rows, *calls],
            tel=transform_features(tel, source_of, cols, norm=False),
            inf=transform_features(inf, source_of, cols, norm=False),
            col_blocks=as_whisper_parts(col_blocks),
            quantile=shipped.pool_quantile,
        )
        extra = layer_extra if any(b in BLOCK_WIDTHS for b in variant.blocks) else base_extra
        records, folds = run_folds(variant, samples, data, cfg, cache=cache_dir(), extra=extra)
        figs = summary(records, halves)
        out["variants"][variant.name] = {
            "variant": dataclasses.asdict(variant), "records": records, "folds": folds,
            "summary": figs, "criterion": criterion(figs),
        }  # fmt: skip
        if progress:
            log.warning("%s: %.0f s", variant.name, time.monotonic() - started)
    out["chosen"] = choose({name: v["summary"] for name, v in out["variants"].items()})
    out["base"] = LAYERS_BASE
    reference = out["variants"][LAYERS_BASE]
    report = {s for s, h in halves.items() if h == "report"}
    out["delta_report"] = paired_deltas(
        out["variants"][out["chosen"]]["records"], reference["records"], report
    )
    pair_with_reference(out["variants"], LAYERS_BASE, halves)
    out["seconds"] = round(time.monotonic() - started, 1)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    from models.training.loso_voice_report import render
    from models.training.text_report import write_generated

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", action="append", default=[], help="a variant's name, "
                        "repeatable (default: all; the reference always runs)")  # fmt: skip
    parser.add_argument("--results", type=Path, default=LAYERS_RESULTS, help="results JSON")
    parser.add_argument("--report", type=Path, default=REPORT, help="the page it writes to")
    parser.add_argument("--render", action="store_true", help="only rewrite the report's "
                        "generated part from --results")  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    results = args.results
    if args.render:
        out = json.loads(results.read_text())
    else:
        candidates = layer_variants(shipped_config())
        wanted = [n.strip() for n in args.variant]
        unknown = sorted(set(wanted) - {v.name for v in candidates})
        if unknown:
            parser.error(f"unknown variants: {unknown}")
        chosen = [v for v in candidates if not wanted or v.name in (*wanted, LAYERS_BASE)]
        out = run(chosen, progress=True)
        out["command"] = " ".join(
            ["python -m models.training.loso_layers", *(argv if argv is not None else sys.argv[1:])]
        )
        results.parent.mkdir(parents=True, exist_ok=True)
        results.write_text(json.dumps(out, indent=1, default=float))
    write_generated(render(out), args.report, name=LAYERS_MARK)
    log.warning("wrote %s and %s", args.report, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
