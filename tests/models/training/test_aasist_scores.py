"""AASIST embeddings and the heads of issue 12's probe: the cache both score and embedding share,
stacking, the MLP fitter and the paired bootstrap (a random-init model; no real weights)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from models import aasist
from models.training import aasist_scores as A
from models.training import metrics as M
from models.training.corpus import CorpusRow
from models.training.synth_config import TrainConfig
from models.training.synth_data import ClipFeatures, features_cache_dir


def _row(rid: str, *, label: str = "human", kind: str = "") -> CorpusRow:
    return CorpusRow(
        id=rid, path=f"{rid}.flac", root="cache", label=label,
        kind=kind or ("tts" if label == "robot" else "read_speech"), language="en",
        speaker=f"spk:{rid}", engine="e" if label == "robot" else "",
        engine_family="e" if label == "robot" else "", source="src", group_id=rid,
        campaign="", split="train", duration_s=1.0, orig_sr_hz=16_000, licence="test",
    )  # fmt: skip


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ROBOCALL_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(A, "_checkpoint_dir", lambda: "random-init")
    torch.manual_seed(0)
    model = aasist.Aasist().eval()
    monkeypatch.setattr(aasist, "load_aasist", lambda: model)
    return tmp_path


def _write_clip(cache: Path, row: CorpusRow, seed: int) -> None:
    path = cache / "corpus" / row.path
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(16_000) / 16_000
    rng = np.random.default_rng(seed)
    sf.write(
        path,
        0.3 * np.sin(2 * np.pi * (200 + 50 * seed) * t) + 0.01 * rng.standard_normal(t.size),
        16_000,
    )


def test_scores_and_embeddings_cached_together(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [_row("a"), _row("b", label="robot")]
    for i, r in enumerate(rows):
        _write_clip(cache, r, i)
    model = aasist.load_aasist()
    scores = A.aasist_scores(rows, variants=("telephone",))
    emb = A.cached_embeddings(rows)
    assert set(emb) == {"a", "b"} and all(v.shape == (160,) for v in emb.values())
    saved = features_cache_dir() / A.SCORE_DIR / "random-init" / "telephone"
    for r in rows:
        # One window: the cached score is the output layer applied to the cached embedding.
        assert json.loads((saved / f"{A.row_key(r)}.json").read_text()) == scores["telephone"][r.id]
        log_odds = aasist.embedding_log_odds(model, emb[r.id][None, :])
        assert float(log_odds[0]) == pytest.approx(scores["telephone"][r.id], rel=1e-5, abs=1e-5)

    def no_model() -> aasist.Aasist:
        raise AssertionError("a cached row was scored again")

    monkeypatch.setattr(aasist, "load_aasist", no_model)
    assert A.aasist_scores(rows, variants=("telephone",), progress=True) == scores
    with pytest.raises(ValueError, match="variants"):
        A.aasist_scores(rows, variants=("phone",))


def test_embedding_missing_beside_a_score_is_recomputed(cache: Path) -> None:
    row = _row("c")
    _write_clip(cache, row, 3)
    first = A.aasist_scores([row], variants=("raw",))
    A.aasist_embed_path("random-init", "raw", A.row_key(row)).unlink()
    assert "c" not in A.cached_embeddings([row], variant="raw")
    again = A.aasist_scores([row], variants=("raw",))
    assert "c" in A.cached_embeddings([row], variant="raw")
    assert again["raw"]["c"] == pytest.approx(first["raw"]["c"], rel=1e-6)


def test_key_follows_the_clip_bytes(cache: Path) -> None:
    row = _row("d")
    _write_clip(cache, row, 1)
    before = A.row_key(row)
    _write_clip(cache, row, 2)
    assert A.row_key(row) != before
    with pytest.raises(ValueError, match="variant"):
        A.cached_embeddings([row], variant="phone")


def test_with_embedding_appends_the_clip_vector_to_every_window() -> None:
    feats = ClipFeatures("r", np.asarray([[0.0, 2.0], [2.0, 5.0]]), np.arange(6.0).reshape(2, 3))
    joined = A.with_embedding(feats, np.asarray([7.0, 8.0]))
    assert joined.x.shape == (2, 5)
    np.testing.assert_array_equal(joined.x[:, 3:], [[7.0, 8.0], [7.0, 8.0]])
    np.testing.assert_array_equal(joined.windows, feats.windows)
    one = A.single_window("r", np.asarray([1.0, 2.0]))
    assert one.x.shape == (1, 2) and one.windows.shape == (1, 2)


def test_mlp_fitter_is_deterministic_and_learns_a_nonlinear_boundary() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((160, 3))
    y = (np.abs(x[:, 0]) > 0.7).astype(np.int64)  # not linearly separable
    rows = [_row(f"r{i}", label="robot" if v else "human") for i, v in enumerate(y)]
    fit = A.mlp_fitter(TrainConfig(), hidden=8, alpha=0.1)
    s1, s2 = fit(x, y, rows)(x), fit(x, y, rows)(x)
    np.testing.assert_array_equal(s1, s2)
    assert np.isfinite(s1).all()
    assert M.roc_auc(y, s1) > 0.95


def test_paired_eer_delta() -> None:
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], 40)
    groups = [f"g{i % 10}:{v}" for i, v in enumerate(y)]
    good = y + 0.3 * rng.standard_normal(y.size)
    poor = rng.standard_normal(y.size)
    assert A.paired_eer_delta(y, good, good, groups=groups, rounds=50) == (0.0, 0.0, 0.0)
    delta, low, high = A.paired_eer_delta(y, good, poor, groups=groups, rounds=200)
    assert low <= delta <= high < 0
    with pytest.raises(ValueError, match="same length"):
        A.paired_eer_delta(y[:-1], good, poor, groups=groups)


def test_paired_change_of_a_head_with_itself_is_zero() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 40)
    s = rng.normal(size=80) + y
    groups = [f"g{i % 10}" for i in range(80)]
    got = A.paired_change(y, s, s, groups, rounds=50)
    for fig in got.values():
        assert fig["shipped"] == fig["candidate"]
        assert fig["change"] == fig["low"] == fig["high"] == 0.0


def test_paired_change_reads_the_shares_at_even_odds_and_sees_a_better_head() -> None:
    y = np.repeat([0, 1], 40)
    groups = [f"g{i % 10}" for i in range(80)]
    shipped = np.where(np.arange(80) % 2 == 0, 1.0, -1.0)  # no separation: half called each way
    candidate = np.where(y == 1, 2.0, -2.0) + 0.01 * np.arange(80)
    got = A.paired_change(y, shipped, candidate, groups, rounds=50)
    assert got["auc"]["shipped"] == pytest.approx(0.5)
    assert got["auc"]["candidate"] == 1.0
    assert got["auc"]["low"] > 0
    assert got["robots_called"]["shipped"] == 0.5 and got["robots_called"]["candidate"] == 1.0
    assert got["people_called"]["shipped"] == 0.5 and got["people_called"]["candidate"] == 0.0
    assert got["people_called"]["high"] < 0
