"""``robocall train --quick`` and ``robocall evaluate`` end to end on a handful of generated clips.

LFCC features only (no Whisper weights): robot-like (flat f0, clockwork phrases) and human-like
(jittered f0, random pauses) test signals written as a tiny corpus with the real manifest format.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from models.synth_head import (
    AASIST_DIM,
    AASIST_ID,
    FeatureSpec,
    LogisticHead,
    aasist_input,
    speech_windows,
)
from models.training.aasist_scores import aasist_embed_path, row_key
from models.training.corpus import (
    CorpusRow,
    corpus_cache_dir,
    hash_unit,
    read_clip,
    read_manifest,
    resolve_path,
    write_clip,
    write_manifest,
)
from models.training.synth_config import ROW_WEIGHTINGS, TrainConfig
from models.training.synth_data import clip_features, select_rows
from models.training.train_synth import choose_setting, recalibrate, train
from pipeline.telephone import call_channel
from service.cli import main

PER_SPLIT_LABEL = 4


@pytest.fixture
def tiny_corpus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, synth: Callable[..., np.ndarray]
) -> Path:
    monkeypatch.setenv("ROBOCALL_CACHE_DIR", str(tmp_path / "cache"))
    rows = []
    for split in ("train", "dev", "test"):
        for label in ("human", "robot"):
            for i in range(PER_SPLIT_LABEL):
                family = "fam_a" if i % 2 else "fam_b"
                name = f"{split}_{label}_{i}"
                rng = np.random.default_rng(zlib.crc32(name.encode()))
                kind = "robot" if label == "robot" else "human"
                x = synth(kind, duration_s=2.0, f0_hz=float(rng.uniform(110, 200)))
                x = x + rng.normal(0, 0.003, x.size).astype(np.float32)
                rel = f"tiny/{name}.flac"
                duration = write_clip(corpus_cache_dir() / rel, x, sample_rate_hz=16_000)
                rows.append(
                    CorpusRow(
                        id=f"tiny/{name}",
                        path=rel,
                        root="cache",
                        label=label,
                        kind="tts" if label == "robot" else "read_speech",
                        language="zh" if i < 2 else "en",
                        speaker=f"tiny:{name}",
                        engine=family if label == "robot" else "",
                        engine_family=family if label == "robot" else "",
                        source="tiny_tts" if label == "robot" else f"tiny_human_{i % 2}",
                        group_id=name,
                        campaign="",
                        split=split,
                        duration_s=duration,
                        orig_sr_hz=16_000,
                        licence="generated in the test",
                    )
                )
    manifests = tmp_path / "manifests"
    write_manifest(rows, manifests / "shared.jsonl")
    return manifests


def fake_aasist(
    rows: Sequence[CorpusRow], *, progress: bool = False
) -> dict[str, dict[str, float]]:
    """Stands in for the AASIST checkpoint (slow on CPU; tested in tests/models/test_aasist.py):
    a score per row and variant, higher for robots, so the columns have something to show."""
    return {
        variant: {
            r.id: (1.0 if r.label == "robot" else 0.0) + hash_unit(r.id + variant) for r in rows
        }
        for variant in ("raw", "telephone")
    }


def test_quick_train_then_evaluate(
    tiny_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("models.training.evaluate.aasist_scores", fake_aasist)
    run = tmp_path / "run"
    args = ["train", "--quick", "--features", "lfcc", "--manifest-dir", str(tiny_corpus)]
    args += ["--manifests", "shared,vocoded"]  # a manifest not built yet is skipped, not fatal
    assert main([*args, "--out", str(run)]) == 0
    for name in ("config.json", "metrics.json", "scores.jsonl", "synth_head.npz"):
        assert (run / name).is_file(), name
    config = json.loads((run / "config.json").read_text())
    assert config["quick"] is True and config["spec"]["blocks"] == ["lfcc"]
    assert config["manifests"] == ["shared", "vocoded"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["test_inference"]["eer"] <= 1.0
    head = LogisticHead.load(run / "synth_head.npz")
    assert head.meta["training"]["config"]["quick"] is True
    assert head.meta["training"]["manifests_sha256"].keys() == {"shared"}
    assert 0.0 < head.threshold < 1.0 and 0.5 <= head.pool_quantile <= 1.0
    scores = [json.loads(line) for line in (run / "scores.jsonl").read_text().splitlines()]
    assert {s["variant"] for s in scores} == {"inference", "telephone"}
    assert all(0.0 <= s["probability"] <= 1.0 for s in scores)

    # Deterministic: a second run (features now cached) writes byte-identical weights.
    again = tmp_path / "run2"
    assert main([*args, "--out", str(again)]) == 0
    assert (again / "synth_head.npz").read_bytes() == (run / "synth_head.npz").read_bytes()

    docs = tmp_path / "docs"
    weights = run / "synth_head.npz"
    assert main(["evaluate", "--weights", str(weights), "--out", str(docs), "--no-cost"]) == 0
    report = (docs / "evaluation.md").read_text()
    for needle in (
        "## Targets",
        "Leave one engine out",
        "fam_a",
        "Worst errors",
        "lfcc",
        "people sources",
    ):
        assert needle in report, needle
    # Intervals beside every EER, and AASIST on the same rows (raw and after the channel).
    headline = json.loads((docs / "img" / "synth_evaluation.json").read_text())["tables"][
        "headline"
    ]
    test_row = headline["test, inference channel"]
    assert test_row["eer_lo"] <= test_row["eer"] <= test_row["eer_hi"]
    for variant in ("raw", "telephone"):
        assert 0.0 <= test_row[f"aasist_{variant}_eer"] <= 1.0
        assert 0.0 <= test_row[f"aasist_{variant}_auc"] <= 1.0
    assert "AASIST raw EER" in report and "AASIST channel EER" in report
    for png in ("synth_det_roc.png", "synth_calibration.png", "synth_confusion.png"):
        assert (docs / "img" / png).stat().st_size > 1000, png
    folds = json.loads((docs / "img" / "synth_evaluation.json").read_text())["folds_engine"]
    assert folds and all(f["aasist"] for f in folds)
    mean_row = next(line for line in report.splitlines() if line.startswith("| **mean over"))
    assert mean_row.count(" / ") == 2, mean_row  # AASIST's mean EER / AUC, raw and channel
    # The block comparison (on by default): the head's one block set, AASIST beside it.
    comparison = json.loads((docs / "img" / "synth_evaluation.json").read_text())["comparison"]
    assert set(comparison) == {"lfcc", "AASIST raw", "AASIST channel"}
    assert comparison["lfcc"]["test_eer_lo"] <= comparison["lfcc"]["test_eer"]
    assert "## Features: which blocks the head needs" in report and "| lfcc (shipped) |" in report

    # --aasist test: AASIST scores the test split only; the folds go without the column.
    scored: list[str] = []

    def test_only(
        rows: Sequence[CorpusRow], *, progress: bool = False
    ) -> dict[str, dict[str, float]]:
        scored.extend(r.split for r in rows)
        return fake_aasist(rows, progress=progress)

    monkeypatch.setattr("models.training.evaluate.aasist_scores", test_only)
    docs = tmp_path / "docs_test"
    args = ["evaluate", "--weights", str(weights), "--out", str(docs), "--no-cost", "--no-compare"]
    assert main([*args, "--aasist", "test"]) == 0
    assert scored and set(scored) == {"test"}
    ev = json.loads((docs / "img" / "synth_evaluation.json").read_text())
    assert "aasist_raw_eer" in ev["tables"]["headline"]["test, inference channel"]
    assert ev["folds_engine"] and not any(f["aasist"] for f in ev["folds_engine"])
    report = (docs / "evaluation.md").read_text()
    assert "`--aasist test`" in report
    assert (
        f"Generated by `robocall evaluate --weights {weights} --no-compare --no-cost --aasist test`"
        in report
    )


def test_train_takes_a_fixed_l2_and_density(tiny_corpus: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = ["train", "--quick", "--features", "lfcc", "--manifest-dir", str(tiny_corpus)]
    assert main([*args, "--l2", "0.1", "--density", "0.5", "--out", str(run)]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["l2_grid"] == [0.1] and config["density_alpha_grid"] == [0.5]


def test_train_refuses_a_bad_l2_or_density() -> None:
    with pytest.raises(ValueError, match="selection_tolerance"):
        TrainConfig(selection_tolerance=-0.1)
    assert main(["train", "--quick", "--features", "lfcc", "--l2", "-1"]) == 2
    assert main(["train", "--quick", "--features", "lfcc", "--density", "-1"]) == 2


def test_train_refuses_a_bad_projection() -> None:
    assert main(["train", "--quick", "--features", "lfcc", "--nap-dim", "-1"]) == 2
    assert main(["train", "--quick", "--features", "lfcc", "--nap-classes", "both"]) == 2
    assert main(["train", "--quick", "--features", "lfcc", "--nap-dim", "2",
                 "--nap-classes", "robots"]) == 2  # fmt: skip
    assert main(["train", "--quick", "--aasist-pad", "-1"]) == 2


class SpectrumEmbedder:
    """Stands in for AASIST as the aasist block: 160 log-spectrum bins of the clip's start."""

    model_id = AASIST_ID

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, samples: np.ndarray) -> np.ndarray:
        self.calls += 1
        return np.log1p(np.abs(np.fft.rfft(samples[: 4 * AASIST_DIM]))[:AASIST_DIM]).astype(
            np.float32
        )


def test_train_chooses_between_the_blocks_with_and_without_aasist(
    tiny_corpus: Path, tmp_path: Path
) -> None:
    cfg = TrainConfig(
        quick=True,
        manifest_dir=str(tiny_corpus),
        spec=FeatureSpec(blocks=("lfcc",)),
        aasist_grid=(False, True),
        row_weights_grid=("class",),
    )
    embedder = SpectrumEmbedder()
    first = train(cfg, run_dir=tmp_path / "a", weights_path=tmp_path / "a.npz", encoder=None,
                  embedder=embedder)  # fmt: skip
    assert embedder.calls == len(select_rows(cfg))  # each clip embedded once, then cached
    table = first.head.meta["training"]["selection_table"]
    assert {key.split()[0] for key in table} == {"blocks=lfcc", "blocks=lfcc+aasist"}
    chosen = first.head.meta["training"]["config"]
    with_aasist = "aasist" in first.head.spec.blocks
    assert list(chosen["aasist_grid"]) == [with_aasist] and chosen["spec"]["blocks"][0] == "lfcc"
    assert first.head.coef.size == 120 + AASIST_DIM * with_aasist
    criteria = {
        on: min(v["criterion"] for k, v in table.items() if ("aasist" in k.split()[0]) == on)
        for on in (False, True)
    }
    assert criteria[with_aasist] <= criteria[not with_aasist]

    # From the cache alone (the embedder is not asked again): the same bytes.
    again = train(cfg, run_dir=tmp_path / "b", weights_path=tmp_path / "b.npz", encoder=None,
                  embedder=embedder)  # fmt: skip
    assert embedder.calls == len(select_rows(cfg))
    assert (tmp_path / "b.npz").read_bytes() == (tmp_path / "a.npz").read_bytes()
    assert again.weights_sha256 == first.weights_sha256


def test_train_chooses_the_row_weighting_and_records_it(tiny_corpus: Path, tmp_path: Path) -> None:
    cfg = TrainConfig(
        manifest_dir=str(tiny_corpus),
        spec=FeatureSpec(blocks=("lfcc",)),
        aasist_grid=(False,),
        l2_grid=(0.1, 1.0),
        density_alpha_grid=(0.0,),
    )
    assert cfg.row_weights_grid == ("class", "source")
    both = train(cfg, run_dir=tmp_path / "both", weights_path=tmp_path / "both.npz", encoder=None)
    training = both.head.meta["training"]
    table = training["selection_table"]
    for weighting in ("class", "source"):
        assert sum(k.endswith(f" rows={weighting}") for k in table) == 2, table.keys()
    chosen = list(training["config"]["row_weights_grid"])
    best = {
        w: min(v["criterion"] for k, v in table.items() if k.endswith(f" rows={w}"))
        for w in ("class", "source")
    }
    # The lower criterion wins; a tie goes to class weights.
    assert chosen == (["class"] if best["class"] <= best["source"] else ["source"])
    written = json.loads((tmp_path / "both" / "config.json").read_text())
    assert written["row_weights_grid"] == chosen
    saved = LogisticHead.load(tmp_path / "both.npz").meta["training"]["config"]
    assert saved["row_weights_grid"] == chosen

    # One value: no choice, and the head is fitted (and labelled) with it.
    source = dataclasses.replace(cfg, l2_grid=(0.1,), row_weights_grid=("source",))
    one = train(source, run_dir=tmp_path / "one", weights_path=tmp_path / "one.npz", encoder=None)
    assert list(one.head.meta["training"]["config"]["row_weights_grid"]) == ["source"]
    assert one.head.meta["training"]["selection_table"] == {}

    # The nuisance projection is fitted in and recorded with the head (off: the head above).
    assert one.head.meta["training"]["config"]["nap_dim"] == 0
    nap = dataclasses.replace(source, nap_dim=1)
    projected = train(nap, run_dir=tmp_path / "nap", weights_path=tmp_path / "nap.npz",
                      encoder=None)  # fmt: skip
    saved = LogisticHead.load(tmp_path / "nap.npz").meta["training"]["config"]
    assert (saved["nap_dim"], saved["nap_classes"], saved["nap_per_block"]) == (1, "people", False)
    assert not np.allclose(projected.head.coef, one.head.coef)


def test_the_incumbent_is_kept_when_it_is_within_the_tolerance_of_the_best() -> None:
    def entry(criterion: float, l2: float, density: float) -> tuple:
        return (
            criterion,
            -l2,
            0.3,
            density,
            ROW_WEIGHTINGS.index("source"),
            f"head {l2} {density}",
        )

    results = [entry(0.180, 0.01, 0.5), entry(0.184, 0.1, 1.0), entry(0.183, 0.1, 0.0)]
    cfg = TrainConfig(incumbent=(0.1, 0.3, 1.0, "source"), selection_tolerance=0.006)
    assert choose_setting(results, cfg)[5] == "head 0.1 1.0"
    # Beyond the tolerance the lowest criterion wins, and so it does without the incumbent.
    assert choose_setting(results, dataclasses.replace(cfg, selection_tolerance=0.003))[5] == (
        "head 0.01 0.5"
    )
    assert (
        choose_setting(results, dataclasses.replace(cfg, incumbent=(1.0, 0.3, 1.0, "source")))[5]
        == "head 0.01 0.5"
    )
    # Exact ties without the incumbent: the stronger penalty, then the smaller density.
    tied = [entry(0.18, 0.01, 0.5), entry(0.18, 0.1, 1.0), entry(0.18, 0.1, 0.0)]
    no_incumbent = dataclasses.replace(cfg, incumbent=(1.0, 0.3, 1.0, "source"))
    assert choose_setting(tied, no_incumbent)[5] == "head 0.1 0.0"


def test_train_keeps_the_incumbent_of_the_grid(tiny_corpus: Path, tmp_path: Path) -> None:
    # On the tiny corpus both penalties score a criterion of 0: the exact-tie order picks the
    # stronger penalty, the incumbent rule the incumbent.
    cfg = TrainConfig(
        manifest_dir=str(tiny_corpus),
        spec=FeatureSpec(blocks=("lfcc",)),
        aasist_grid=(False,),
        l2_grid=(0.01, 1.0),
        density_alpha_grid=(0.0,),
        row_weights_grid=("class",),
    )
    for incumbent, expected in (((0.5, 0.3, 0.0, "class"), 1.0), ((0.01, 0.3, 0.0, "class"), 0.01)):
        c = dataclasses.replace(cfg, incumbent=incumbent)
        run = train(c, run_dir=tmp_path / "run", weights_path=tmp_path / "h.npz", encoder=None)
        table = run.head.meta["training"]["selection_table"]
        assert {v["criterion"] for v in table.values()} == {0.0}
        assert list(run.head.meta["training"]["config"]["l2_grid"]) == [expected]


def test_clip_features_append_the_cached_embedding_to_every_window(tiny_corpus: Path) -> None:
    base = TrainConfig(quick=True, manifest_dir=str(tiny_corpus), spec=FeatureSpec(("lfcc",)))
    cfg = base.with_aasist(True)
    assert cfg.spec.blocks == ("lfcc", "aasist") and cfg.aasist_grid == (True,)
    row = next(r for r in select_rows(cfg) if r.split == "test")
    embedder = SpectrumEmbedder()
    feats = clip_features(row, variant="inference", cfg=cfg, encoder=None, embedder=embedder)
    assert feats is not None and feats.x.shape[1] == 120 + AASIST_DIM
    expected = embedder.embed(call_channel(read_clip(resolve_path(row))))
    np.testing.assert_allclose(feats.x[:, 120:], np.tile(expected, (feats.x.shape[0], 1)))
    lfcc_only = clip_features(row, variant="inference", cfg=cfg.with_aasist(False), encoder=None)
    assert lfcc_only is not None
    np.testing.assert_array_equal(feats.x[:, :120], lfcc_only.x)
    # The telephone (training) variant carries the same clip vector, read from the cache.
    tel = clip_features(row, variant="telephone", cfg=cfg, encoder=None, embedder=embedder)
    assert tel is not None and embedder.calls == 2  # the one above and the check's own
    np.testing.assert_allclose(tel.x[0, 120:], expected)
    with pytest.raises(ValueError, match="aasist_grid"):
        TrainConfig(spec=FeatureSpec(blocks=("lfcc", "aasist")), aasist_grid=(False, True))


def test_the_aasist_block_reads_only_what_its_own_embedder_wrote(tiny_corpus: Path) -> None:
    """``robocall evaluate``'s AASIST pass (torch) caches window embeddings of the same rows; the
    head's block (the embedder ``robocall analyze`` runs) never reads them: when one file served
    both, a rerun of the recipe after an evaluation gave other bytes."""
    base = TrainConfig(quick=True, manifest_dir=str(tiny_corpus), spec=FeatureSpec(("lfcc",)))
    cfg = base.with_aasist(True)
    row = next(r for r in select_rows(cfg) if r.split == "train")
    theirs = aasist_embed_path(AASIST_ID.rsplit("/", 1)[-1], "telephone", row_key(row))
    theirs.parent.mkdir(parents=True, exist_ok=True)
    np.save(theirs, np.full((1, AASIST_DIM), 7.0, np.float32))
    embedder = SpectrumEmbedder()
    feats = clip_features(row, variant="telephone", cfg=cfg, encoder=None, embedder=embedder)
    assert feats is not None and embedder.calls == 1
    y = call_channel(read_clip(resolve_path(row)))
    np.testing.assert_array_equal(feats.x[0, 120:], embedder.embed(y).astype(np.float64))
    # Cut from the speech span: its own file when the cut removes audio, else the whole copy's.
    for pad_s in (0.0, 30.0):
        spec = dataclasses.replace(cfg.spec, aasist_pad_s=pad_s)
        calls = embedder.calls
        feats = clip_features(row, variant="telephone", cfg=dataclasses.replace(cfg, spec=spec),
                              encoder=None, embedder=embedder)  # fmt: skip
        cut = aasist_input(y, speech_windows(y), spec=spec)
        assert feats is not None and embedder.calls == calls + (cut.size < y.size)
        np.testing.assert_array_equal(feats.x[0, 120:], embedder.embed(cut).astype(np.float64))


def _write_mixtures(manifests: Path, *, clip_index: int) -> None:
    """Stand-in call mixtures: each dev/test clip ``clip_index``/``+1`` under a mixture id (the
    same ids in every version, other audio, as a rebuild of datasets/prepare_mixed.py makes)."""
    shared = {r.id: r for r in read_manifest(manifests / "shared.jsonl")}
    rows = []
    for split in ("dev", "test"):
        for label in ("human", "robot"):
            for n, i in enumerate((clip_index, clip_index + 1)):
                part = shared[f"tiny/{split}_{label}_{i}"]
                rows.append(
                    dataclasses.replace(
                        part,
                        id=f"mixed/call/{split}/{label}{n}",
                        kind="human_call" if label == "human" else "dialer_call",
                        source="mixed",
                        group_id=f"mixed/call/{split}/{label}{n}",
                        parts=(part.id,),
                    )
                )
    write_manifest(rows, manifests / "mixed.jsonl")


def test_recalibrate_redoes_only_what_the_mixtures_decide(
    tiny_corpus: Path, tmp_path: Path
) -> None:
    cfg = TrainConfig(
        manifest_dir=str(tiny_corpus),
        spec=FeatureSpec(blocks=("lfcc",)),
        aasist_grid=(False,),
        l2_grid=(0.1,),
        density_alpha_grid=(1.0,),
        density_dim=4,
    )  # a resolved recipe, as the shipped head's
    _write_mixtures(tiny_corpus, clip_index=0)
    old = train(cfg, run_dir=tmp_path / "old", weights_path=tmp_path / "old.npz", encoder=None)
    _write_mixtures(tiny_corpus, clip_index=2)  # the mixtures are rebuilt
    fresh = train(cfg, run_dir=tmp_path / "new", weights_path=tmp_path / "new.npz", encoder=None)
    shutil.copy(tmp_path / "old.npz", tmp_path / "recal.npz")
    recal = recalibrate(
        run_dir=tmp_path / "recal",
        weights_path=tmp_path / "recal.npz",
        encoder=None,
        manifest_dir=str(tiny_corpus),
    )
    # The fit on the training rows is kept; the pooling and Platt scaling are what a full run
    # on the new mixtures picks, and so are the figures.
    for name in ("mean", "scale", "coef"):
        np.testing.assert_array_equal(getattr(recal.head, name), getattr(old.head, name))
    assert recal.head.intercept == old.head.intercept
    assert recal.head.pool_quantile == fresh.head.pool_quantile
    assert (recal.head.platt_a, recal.head.platt_b) == pytest.approx(
        (fresh.head.platt_a, fresh.head.platt_b)
    )
    same = json.dumps(recal.head.meta["metrics"]) == json.dumps(fresh.head.meta["metrics"])
    assert same  # (as JSON: an undefined F1 is nan, unequal to itself)
    assert recal.head.meta["metrics"]["mixed_test_inference"]["eer_ci95"][0] >= 0.0
    training = recal.head.meta["training"]
    assert training["manifests_sha256"] == fresh.head.meta["training"]["manifests_sha256"]
    assert training["trained_on_manifests_sha256"] == old.head.meta["training"]["manifests_sha256"]
    assert training["manifests_sha256"]["mixed"] != training["trained_on_manifests_sha256"]["mixed"]
    assert "--recalibrate" in training["recalibrated"]
    assert recal.metrics["recalibrated_from"]["weights_sha256"] == old.weights_sha256
    assert LogisticHead.load(tmp_path / "recal.npz").arrays_sha256() == recal.head.arrays_sha256()


def test_recalibrate_keeps_the_recipe_on_the_command_line(tmp_path: Path) -> None:
    args = ["train", "--stage", "synth", "--recalibrate", "--weights", str(tmp_path / "h.npz")]
    assert main([*args, "--l2", "0.1"]) == 2
    assert main([*args, "--density", "1"]) == 2
    assert main(["train", "--recalibrate"]) == 2  # every stage: the text and fusion too
    assert main(args) == 1  # no such head: said, not a traceback
