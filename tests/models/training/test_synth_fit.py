"""The voice head's fitting helpers: the report sets, the row weightings of the recipe and
their grid (``models.training.synth_fit``, ``synth_data.TrainConfig``, ``evaluate.nested_fit``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from models.synth_head import LogisticHead
from models.training.corpus import CorpusRow
from models.training.evaluate import config_from_head, nested_fit
from models.training.synth_data import ROW_WEIGHTINGS, TrainConfig
from models.training.synth_fit import (
    fit_head,
    fit_weights,
    report_sets,
    row_weights,
    source_balanced_weights,
)
from tests.models.training.test_synth_select import row


def test_report_sets_keep_every_person_and_split_the_robots_by_kind() -> None:
    people = [
        row("p_en", label="human"),
        dataclasses.replace(row("p_zh", label="human"), language="zh"),
    ]
    tts = row("t", label="robot", family="espeak-ng")
    copy = row("c", label="robot", family="world", kind="resynthesis")
    commercial = dataclasses.replace(
        row("m", label="robot", family="polly"), source="commercial_tts"
    )
    mix = row("x", label="robot", family="espeak-ng")
    sets = report_sets([*people, tts, copy, commercial], TrainConfig(), mixtures=[mix])

    def ids(name: str) -> set[str]:
        return {r.id for r in sets[name]}

    assert ids("test TTS/VC") == {"p_en", "p_zh", "t", "m"}
    assert ids("test copy synthesis") == {"p_en", "p_zh", "c"}
    assert ids("held-out commercial") == {"p_en", "p_zh", "m"}
    assert ids("test call mixtures") == {"x"}
    assert ids("test TTS/VC en") == {"p_en", "t", "m"} and ids("test TTS/VC zh") == {"p_zh"}
    assert "test call mixtures" not in report_sets(people, TrainConfig())


def _weighted_world() -> list[CorpusRow]:
    """30 people of one source and 1 of another; 5 TTS and 5 copy-synthesis robots."""
    rows = [row(f"a{i}", label="human", source="big") for i in range(30)]
    rows += [row("b0", label="human", source="small")]
    rows += [row(f"r{i}", label="robot", family="tts", source="tts") for i in range(5)]
    rows += [
        row(f"c{i}", label="robot", family="world", kind="resynthesis", source="resynth")
        for i in range(5)
    ]
    return rows


def _totals(rows: list[CorpusRow], w: np.ndarray) -> dict[str, float]:
    total: dict[str, float] = {}
    for r, v in zip(rows, w, strict=True):
        total[r.source] = total.get(r.source, 0.0) + float(v)
    return total


def test_source_balanced_weights_give_each_source_of_a_class_the_same_total() -> None:
    rows = _weighted_world()
    w = source_balanced_weights(rows, TrainConfig().resolved(l2=0.1, copy_weight=0.3))
    total = _totals(rows, w)
    assert total["big"] == pytest.approx(total["small"])  # 30 rows weigh as much as 1
    assert total["resynth"] == pytest.approx(0.3 * total["tts"])  # copies still down-weighted
    assert total["big"] + total["small"] == pytest.approx(total["tts"] + total["resynth"])
    assert w.mean() == pytest.approx(1.0)


def test_row_weights_follow_the_resolved_weighting() -> None:
    rows = _weighted_world()
    base = TrainConfig().resolved(l2=0.1, copy_weight=0.3)
    by_class = row_weights(rows, base.resolved(l2=0.1, copy_weight=0.3, row_weights="class"))
    by_source = row_weights(rows, base.resolved(l2=0.1, copy_weight=0.3, row_weights="source"))
    np.testing.assert_array_equal(by_class, fit_weights(rows, base))
    np.testing.assert_array_equal(by_source, source_balanced_weights(rows, base))
    np.testing.assert_array_equal(row_weights(rows, base), by_class)  # still a grid: "class"
    for w in (by_class, by_source):
        total = _totals(rows, w)
        assert total["big"] + total["small"] == pytest.approx(total["tts"] + total["resynth"])
    assert _totals(rows, by_class)["big"] == pytest.approx(30 * _totals(rows, by_class)["small"])


def test_row_weighting_is_a_grid_resolved_to_one_value_and_old_configs_read_as_class() -> None:
    cfg = TrainConfig()
    assert cfg.row_weights_grid == ROW_WEIGHTINGS == ("class", "source")
    assert cfg.row_weights == "class"
    one = cfg.resolved(l2=0.1, copy_weight=0.3, row_weights="source")
    assert one.row_weights_grid == ("source",) and one.row_weights == "source"
    assert cfg.resolved(l2=0.1, copy_weight=0.3).row_weights_grid == ROW_WEIGHTINGS
    assert TrainConfig.from_dict(one.to_dict()) == one
    old = one.to_dict()
    del old["row_weights_grid"]
    assert TrainConfig.from_dict(old).row_weights_grid == ("class",)
    head = LogisticHead(
        np.zeros(2), np.ones(2), np.zeros(2), 0.0, meta={"training": {"config": old}}
    )
    assert config_from_head(head).row_weights == "class"
    for bad in ((), ("speaker",)):
        with pytest.raises(ValueError, match="row_weights_grid"):
            TrainConfig(row_weights_grid=bad)


def test_nested_fit_chooses_the_row_weighting_inside_the_fold(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [row(f"p{i}", label="human", source="big" if i < 40 else "small") for i in range(48)]
    rows += [row(f"r{i}", label="robot", family="tts", source="tts") for i in range(24)]
    y = np.asarray([r.label == "robot" for r in rows], dtype=np.int64)
    x = rng.normal(size=(len(rows), 3)) + y[:, None] * np.asarray([1.5, 0.0, 0.0])
    x[40:48, 1] += 2.0  # the small people source sits apart
    cfg = TrainConfig(density_alpha_grid=(0.0,))
    for weighting in ROW_WEIGHTINGS:
        only = TrainConfig(l2_grid=(0.1,), copy_weight_grid=(0.3,), row_weights_grid=(weighting,))
        monkeypatch.setattr("models.training.evaluate.NESTED_GRID", only)
        head, name = nested_fit(x, y, rows, cfg)
        expected = fit_head(
            x, y, rows=rows,
            cfg=cfg.resolved(l2=0.1, copy_weight=0.3, density_alpha=0.0, row_weights=weighting),
        )  # fmt: skip
        np.testing.assert_allclose(head.coef, expected.coef)
        assert name.endswith("source-balanced") == (weighting == "source")
    monkeypatch.setattr(
        "models.training.evaluate.NESTED_GRID", TrainConfig(l2_grid=(0.1,), copy_weight_grid=(0.3,))
    )
    head, name = nested_fit(x, y, rows, cfg)
    picked = "source" if name.endswith("source-balanced") else "class"
    refit = fit_head(
        x, y, rows=rows,
        cfg=cfg.resolved(l2=0.1, copy_weight=0.3, density_alpha=0.0, row_weights=picked),
    )  # fmt: skip
    np.testing.assert_allclose(head.coef, refit.coef)
