"""Recording-chain, quiet and redrawn copies: tied to their originals, weighted as fixed, cached."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from models.synth_head import AASIST_DIM, FeatureSpec, LogisticHead
from models.training.chain_copies import (
    COMBINED,
    KINDS,
    add_kind_options,
    copy_digest,
    copy_features,
    copy_id,
    copy_row,
    original_id,
    with_original_aasist,
)
from models.training.eval_sources import tied_to_source
from models.training.loso_chainaug import (
    augmented_weights,
    chain_variants,
    channel_variants,
    copies_of,
    fit_with_copies,
)
from models.training.loso_voice import FoldData, Variant, run_folds
from models.training.synth_config import TrainConfig
from models.training.synth_data import ClipFeatures, clip_features, telephone_windows
from tests.models.support import fold_world_rows, voiced_clip_row


def test_a_copy_is_tied_to_whatever_its_original_is_tied_to() -> None:
    rows = fold_world_rows()
    copies = [copy_row(r) for r in rows]
    assert all(
        original_id(c.id) == r.id and c.id == copy_id(r.id)
        for c, r in zip(copies, rows, strict=True)
    )
    assert all((c.source, c.speaker, c.group_id, c.label, c.split)
               == (r.source, r.speaker, r.group_id, r.label, r.split)
               for c, r in zip(copies, rows, strict=True))  # fmt: skip
    tied = tied_to_source([*rows, *copies], "held")
    held = {r.id for r in rows if r.source == "held"}
    assert {original_id(k) for k in tied} == tied_to_source(rows, "held")
    assert {copy_id(k) for k in held} <= tied


def test_augmented_weights_give_each_copy_its_share_and_balance_the_classes() -> None:
    rows = fold_world_rows()
    train = [r for r in rows if r.split == "train"]
    people_copies = [copy_row(r) for r in train if r.label == "human"]
    cfg = TrainConfig(row_weights_grid=("source",))
    base = augmented_weights(train, [], cfg, weight=0.5)
    w = augmented_weights(train, people_copies, cfg, weight=0.5)
    n = len(train)
    y = np.asarray([r.label == "robot" for r in [*train, *people_copies]])
    assert w[y].sum() == pytest.approx(w[~y].sum()) and w.mean() == pytest.approx(1.0)
    index = {r.id: i for i, r in enumerate(train)}
    for j, c in enumerate(people_copies):
        assert w[n + j] == pytest.approx(0.5 * w[index[original_id(c.id)]])
    robots = y[:n]  # no robot copies: the robots keep their shares among themselves
    assert np.allclose(w[:n][robots] / w[:n][robots].sum(), base[robots] / base[robots].sum())


def test_folds_with_copies_never_fit_on_a_held_out_sources_copies(
    rng: np.random.Generator, tmp_path: Path
) -> None:
    rows = fold_world_rows()
    copies = [copy_row(r) for r in rows if r.split == "train"]
    links = [*rows, *copies]
    tied = tied_to_source(links, "held")
    feats = {}
    for r in links:
        x = rng.normal(size=(1, 6)) + (1.5 if r.label == "robot" else 0.0)
        poisoned = r.id in tied and r.id != original_id(r.id)
        feats[r.id] = ClipFeatures(r.id, np.asarray([[0.0, 2.0]]),
                                   np.full_like(x, np.nan) if poisoned else x)  # fmt: skip
    held = {"held": [r for r in rows if r.source == "held"]}
    pool = [r for r in links if r.split == "train"]
    cfg = TrainConfig(density_alpha_grid=(0.0,))
    data = FoldData(
        pool=pool, calibration=[r for r in rows if r.split == "dev" and r.source != "held"],
        links=links, tel=feats, inf=feats, col_blocks=np.asarray(["whisper"] * 3 + ["lfcc"] * 3),
        quantile=0.5,
    )  # fmt: skip
    fitter = lambda *a, **k: fit_with_copies(*a, **k, weight=1.0, people_only=False)  # noqa: E731
    records, folds = run_folds(Variant("v", density_alpha=0.5, source_weights=True), held, data,
                               cfg, cache=tmp_path, extra="copies", fitter=fitter)  # fmt: skip
    kept = sum(r.id not in tied for r in pool)
    assert folds["held"]["train_rows"] == kept
    head = LogisticHead.load(next(tmp_path.iterdir()))
    assert np.isfinite(head.coef).all() and head.density is not None
    assert {r["id"] for r in records} == {r.id for r in held["held"]}


def test_people_only_leaves_the_robots_copies_out(rng: np.random.Generator) -> None:
    rows = [r for r in fold_world_rows() if r.split == "train"]
    copies = [copy_row(r) for r in rows]
    tel = {r.id: ClipFeatures(r.id, np.zeros((1, 2)),
                              rng.normal(size=(1, 4)) + (r.label == "robot"))
           for r in [*rows, *copies]}  # fmt: skip
    variant = Variant("v", density_alpha=0.0)
    cfg = TrainConfig()
    both = fit_with_copies(variant, [*rows, *copies], tel, cfg, weight=1.0, people_only=False)
    people = fit_with_copies(variant, [*rows, *copies], tel, cfg, weight=1.0, people_only=True)
    robots_dropped = [*rows, *(c for c in copies if c.label == "human")]
    same = fit_with_copies(variant, robots_dropped, tel, cfg, weight=1.0, people_only=False)
    assert np.allclose(people.coef, same.coef) and not np.allclose(people.coef, both.coef)


def test_copies_carry_their_originals_aasist_vector() -> None:
    orig = ClipFeatures("a", np.zeros((1, 2)), np.arange(10 + AASIST_DIM, dtype=float)[None])
    copy = ClipFeatures(copy_id("a"), np.zeros((1, 2)), -np.ones((1, 10)))
    stray = ClipFeatures(copy_id("b"), np.zeros((1, 2)), -np.ones((1, 10)))
    out = with_original_aasist({copy.row_id: copy, stray.row_id: stray}, {"a": orig})
    assert list(out) == [copy_id("a")]
    assert np.array_equal(out[copy_id("a")].x[0, :10], -np.ones(10))
    assert np.array_equal(out[copy_id("a")].x[0, 10:], orig.x[0, -AASIST_DIM:])


def test_a_copy_has_its_originals_telephone_window_and_is_cached(
    rng: np.random.Generator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = voiced_clip_row(rng, tmp_path, monkeypatch)
    cfg = TrainConfig(spec=FeatureSpec(blocks=("lfcc",)))
    original = clip_features(r, variant="telephone", cfg=cfg, encoder=None)
    first = copy_features(r, cfg=cfg, encoder=None)
    assert original is not None and first is not None
    assert first.row_id == copy_id(r.id)
    assert np.array_equal(first.windows, original.windows)
    assert first.x.shape == original.x.shape and not np.allclose(first.x, original.x)
    cached = list((tmp_path / "cache").rglob("*.npz"))
    again = copy_features(r, cfg=cfg, encoder=None)
    assert again is not None and np.array_equal(again.x, first.x)
    assert list((tmp_path / "cache").rglob("*.npz")) == cached
    with pytest.raises(FileNotFoundError, match="no cached chain copy"):
        copy_features(r, cfg=dataclasses.replace(cfg, spec=FeatureSpec()),
                      encoder=None)  # fmt: skip


def test_the_arms_keep_the_shipped_settings_and_differ_in_the_copies_only() -> None:
    cfg = TrainConfig(row_weights_grid=("source",), l2_grid=(0.01,), density_alpha_grid=(0.5,),
                      spec=FeatureSpec(blocks=("whisper", "lfcc", "aasist")))  # fmt: skip
    arms = chain_variants(cfg)
    assert list(arms) == ["all blocks", "whisper+lfcc"]
    for arm, variants in arms.items():
        ref = variants[0]
        assert ref.copy_weight == 0.0
        assert [(v.copy_weight, v.people_only) for v in variants[1:]] == [
            (1.0, False), (0.5, False), (1.0, True)]  # fmt: skip
        for v in variants:
            assert dataclasses.replace(v.base, name=ref.name) == ref.base
            assert ("aasist" in v.base.blocks) == (arm == "all blocks")
        assert ref.base.l2 == 0.01 and ref.base.density_alpha == 0.5 and ref.base.source_weights


def test_a_quiet_window_is_the_rows_window_without_its_noise(
    rng: np.random.Generator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = voiced_clip_row(rng, tmp_path, monkeypatch)
    samples = sf.read(tmp_path / "shared" / r.path, dtype="float32")[0]
    cfg = TrainConfig()
    ((span, noisy),) = telephone_windows(samples, r, cfg)
    ((quiet_span, quiet),) = telephone_windows(samples, r, cfg, channel="quiet")
    assert quiet_span == span and quiet.shape == noisy.shape  # the same crop
    # What the quiet window lacks is the drawn noise alone: a residual within the channel's
    # SNR range (15-40 dB below the speech), not a different crop, codec or level.
    snr_db = 10 * np.log10(np.mean(quiet.astype(np.float64) ** 2)
                           / np.mean((noisy.astype(np.float64) - quiet) ** 2))  # fmt: skip
    assert 12.0 < snr_db < 43.0
    ((_, again),) = telephone_windows(samples, r, cfg, channel="quiet")
    assert np.array_equal(again, quiet)
    ((redrawn_span, redrawn),) = telephone_windows(samples, r, cfg, channel="redrawn")
    assert redrawn_span == span and not np.array_equal(redrawn, noisy)  # a second draw
    with pytest.raises(ValueError, match="channel must be one of"):
        telephone_windows(samples, r, cfg, channel="loud")


def test_quiet_copies_are_cached_apart_from_chain_copies(
    rng: np.random.Generator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = voiced_clip_row(rng, tmp_path, monkeypatch)
    cfg = TrainConfig(spec=FeatureSpec(blocks=("lfcc",)))
    chain_copy = copy_features(r, cfg=cfg, encoder=None)
    quiet = copy_features(r, cfg=cfg, encoder=None, kind="quiet")
    assert chain_copy is not None and quiet is not None
    assert quiet.row_id == copy_id(r.id, "quiet") and chain_copy.row_id == copy_id(r.id)
    assert np.array_equal(quiet.windows, chain_copy.windows)
    assert not np.allclose(quiet.x, chain_copy.x)
    folders = {p.parent.parent.name for p in (tmp_path / "cache").rglob("*.npz")}
    assert {f.rsplit("-", 1)[0] for f in folders} >= {"telephone-chain", "telephone-quiet"}
    with pytest.raises(FileNotFoundError, match="no cached quiet copy"):
        copy_features(r, cfg=dataclasses.replace(cfg, spec=FeatureSpec()), encoder=None,
                      kind="quiet")  # fmt: skip
    with pytest.raises(ValueError, match="kind must be one of"):
        copy_digest("loud")


@pytest.mark.parametrize("kind", ["quiet", "redrawn", COMBINED])
def test_a_channel_arm_weighs_both_classes_copies_on_the_shipped_settings(kind: str) -> None:
    cfg = TrainConfig(spec=FeatureSpec(blocks=("whisper", "lfcc", "aasist")))
    ((arm, variants),) = channel_variants(cfg, kind).items()
    assert variants[1].name == f"+ {kind} copies x1"
    ref = variants[0]
    assert arm == "all blocks" and ref.copy_weight == 0.0 and "aasist" in ref.base.blocks
    assert [(v.copy_weight, v.people_only) for v in variants[1:]] == [(1.0, False), (0.5, False)]
    for v in variants:
        assert dataclasses.replace(v.base, name=ref.name) == ref.base


def test_the_copy_kind_options_default_to_chain_and_take_one_kind() -> None:
    parser = argparse.ArgumentParser()
    add_kind_options(parser)
    assert [parser.parse_args(a).kind for a in ([], ["--quiet"], ["--redrawn"])] == list(KINDS)
    with pytest.raises(SystemExit):
        parser.parse_args(["--quiet", "--redrawn"])
    with pytest.raises(SystemExit):  # copies are computed one kind at a time
        parser.parse_args(["--quiet-redrawn"])
    study = argparse.ArgumentParser()
    add_kind_options(study, combined=True)
    assert study.parse_args(["--quiet-redrawn"]).kind == COMBINED


def test_a_row_may_have_a_copy_of_each_kind_each_weighed_and_tied_as_one() -> None:
    """The combined study: every training row with a quiet and a redrawn copy; ids apart, both
    back to the original, each at its share of the original's weight, rows' order kept."""
    rows = fold_world_rows()
    train = [r for r in rows if r.split == "train"]
    ids = {copy_id(r.id, k) for r in train for k in KINDS}
    assert len(ids) == 3 * len(train) and {original_id(i) for i in ids} == {r.id for r in train}
    assert original_id("a#b") == "a#b"  # only a copy kind's tag is taken off
    copies = {copy_id(r.id, k): None for r in train[::-1] for k in ("redrawn", "quiet")}
    both = copies_of(rows, copies)  # type: ignore[arg-type]
    assert [c.id for c in both] == [copy_id(r.id, k) for r in train for k in ("quiet", "redrawn")]
    cfg = TrainConfig(row_weights_grid=("source",))
    w = augmented_weights(train, both, cfg, weight=0.5)
    index = {r.id: i for i, r in enumerate(train)}
    for j, c in enumerate(both):
        assert w[len(train) + j] == pytest.approx(0.5 * w[index[original_id(c.id)]])
    tied = tied_to_source([*rows, *both], "held")
    assert {
        copy_id(r.id, k) for r in train if r.source == "held" for k in ("quiet", "redrawn")
    } <= tied
