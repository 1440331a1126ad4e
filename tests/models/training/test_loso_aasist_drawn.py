"""The AASIST block on drawn copies: the copy, its cache, the candidates and their fits."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.synth_head import AASIST_DIM, FeatureSpec
from models.training.aasist_drawn import drawn_copy, drawn_vector
from models.training.loso_aasist_drawn import (
    REFERENCE,
    call_path,
    drawn_variants,
    fit_drawn,
    with_vectors,
)
from models.training.loso_voice import Variant
from models.training.synth_config import TrainConfig
from models.training.synth_data import ClipFeatures
from pipeline.telephone import call_channel
from tests.models.support import ZeroAasistEmbedder, fold_world_rows, voiced_clip_row
from tests.models.support import corpus_row as row


def test_a_drawn_copy_is_seeded_by_its_row_and_keeps_the_timeline(
    rng: np.random.Generator,
) -> None:
    t = np.arange(3 * 16_000) / 16_000
    samples = (0.2 * np.sin(2 * np.pi * 180 * t) * (t > 0.5)).astype(np.float32)
    cfg = TrainConfig()
    a, b = row("a"), row("b")
    first = drawn_copy(samples, a, cfg)
    assert np.array_equal(first, drawn_copy(samples, a, cfg))
    assert first.size == call_channel(samples).size  # untrimmed, like an upload
    assert not np.allclose(first, drawn_copy(samples, b, cfg))
    assert not np.allclose(first, call_channel(samples))


class _CountingEmbedder(ZeroAasistEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def embed(self, samples: np.ndarray) -> np.ndarray:
        self.calls += 1
        return np.full(AASIST_DIM, float(np.std(samples)), np.float32)


def test_a_drawn_vector_is_cached_apart_from_the_clean_one(
    rng: np.random.Generator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = voiced_clip_row(rng, tmp_path, monkeypatch)
    cfg = TrainConfig(spec=FeatureSpec(blocks=("lfcc", "aasist")))
    embedder = _CountingEmbedder()
    first = drawn_vector(r, cfg, embedder)  # type: ignore[arg-type]
    again = drawn_vector(r, cfg, embedder)  # type: ignore[arg-type]
    assert first is not None and again is not None and np.array_equal(first, again)
    assert embedder.calls == 1
    other = drawn_vector(r, dataclasses.replace(cfg, salt="other"), embedder)  # type: ignore[arg-type]
    assert other is not None and embedder.calls == 2
    with pytest.raises(ValueError, match="spec wants"):
        drawn_vector(row("new", path=r.path), dataclasses.replace(
            cfg, spec=dataclasses.replace(cfg.spec, aasist_id="other/0")), embedder)  # type: ignore[arg-type]  # fmt: skip


def test_with_vectors_swaps_the_aasist_columns_only() -> None:
    x = np.arange(2 * (3 + AASIST_DIM), dtype=float).reshape(2, -1)
    feats = {
        "a": ClipFeatures("a", np.zeros((2, 2)), x),
        "b": ClipFeatures("b", np.zeros((2, 2)), x),
    }
    out = with_vectors(feats, {"a": np.full(AASIST_DIM, -1.0)})
    assert list(out) == ["a"]
    assert np.array_equal(out["a"].x[:, :3], x[:, :3])
    assert np.array_equal(out["a"].x[:, 3:], np.full((2, AASIST_DIM), -1.0))


def _worlds(rng: np.random.Generator) -> tuple[list[Any], dict[str, Any], dict[str, Any]]:
    rows = [r for r in fold_world_rows() if r.split == "train"]
    clean = {r.id: ClipFeatures(r.id, np.zeros((1, 2)),
                                rng.normal(size=(1, 4)) + (r.label == "robot"))
             for r in rows}  # fmt: skip
    drawn = {k: ClipFeatures(k, f.windows, f.x + rng.normal(size=f.x.shape))
             for k, f in clean.items()}  # fmt: skip
    return rows, clean, drawn


def test_the_fits_read_the_vectors_they_name(rng: np.random.Generator) -> None:
    rows, clean, drawn = _worlds(rng)
    variant, cfg = Variant("v", density_alpha=0.0), TrainConfig()
    on_clean = fit_drawn(variant, rows, drawn, cfg, clean=clean, fit_on="clean", drawn_weight=1)
    plain = fit_drawn(variant, rows, clean, cfg, clean=clean, fit_on="drawn", drawn_weight=1)
    assert np.allclose(on_clean.coef, plain.coef)
    on_drawn = fit_drawn(variant, rows, drawn, cfg, clean=clean, fit_on="drawn", drawn_weight=1)
    assert not np.allclose(on_drawn.coef, on_clean.coef)
    both = fit_drawn(variant, rows, drawn, cfg, clean=clean, fit_on="both", drawn_weight=1)
    assert not np.allclose(both.coef, on_clean.coef)


def test_the_candidates_keep_the_shipped_settings_and_differ_in_the_vectors_only() -> None:
    cfg = TrainConfig(row_weights_grid=("source",), l2_grid=(0.1,), density_alpha_grid=(1.0,),
                      spec=FeatureSpec(blocks=("whisper", "lfcc", "aasist")))  # fmt: skip
    candidates = drawn_variants(cfg)
    assert candidates[0].name == REFERENCE and candidates[0].fit_on == "clean"
    assert {(v.fit_on, v.drawn_weight) for v in candidates[1:]} == {
        ("drawn", 1.0), ("both", 1.0), ("both", 0.5)}  # fmt: skip
    settings = {dataclasses.replace(v.base, name="") for v in candidates}
    assert len(settings) == 1
    (only,) = settings
    assert (only.l2, only.density_alpha, only.source_weights) == (0.1, 1.0, True)


def test_the_call_path_records_carry_their_call_path_score() -> None:
    records = [{"id": "a", "tel": 1.0, "inf": -2.0}, {"id": "b", "tel": 0.5, "inf": None}]
    assert call_path(records) == [{"id": "a", "tel": -2.0, "inf": -2.0}]
