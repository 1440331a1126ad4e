"""The voice head's fitting helpers: the report sets, the row weightings of the recipe and
their grid, the nuisance attribute projection (``models.training.synth_fit``,
``synth_config.TrainConfig``, ``evaluate.nested_fit``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from models.synth_head import LogisticHead
from models.training import metrics as M
from models.training.corpus import CorpusRow
from models.training.evaluate import config_from_head, nested_fit
from models.training.synth_config import ROW_WEIGHTINGS, TrainConfig
from models.training.synth_fit import (
    fit_head,
    fit_logistic,
    fit_weights,
    nuisance_directions,
    nuisance_of,
    project_out,
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


def _channel_world(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[CorpusRow]]:
    """Four people and two robot sources; the class lies along column 0, each source's
    recording chain shifts it along column 1 (a nuisance direction the sources share; the
    training people's chains happen to sit above the robots', so a plain fit credits it),
    columns 2-3 are noise."""
    offsets = {"p0": 0.5, "p1": 1.0, "p2": 1.5, "p3": 2.0, "r0": -1.0, "r1": -0.5}
    rows = [row(f"{s}_{i}", label="robot" if s[0] == "r" else "human", family=s, source=s)
            for s in offsets for i in range(100)]  # fmt: skip
    y = np.asarray([r.label == "robot" for r in rows], dtype=np.int64)
    x = rng.normal(size=(len(rows), 4))
    x[:, 0] += 2.0 * y
    x[:, 1] += 4.0 * np.asarray([offsets[r.source] for r in rows])
    return x, y, rows


def _standardised(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(axis=0)) / x.std(axis=0)


def _standardised_world(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """:func:`_channel_world` standardised: rows, labels and each row's source."""
    x, y, rows = _channel_world(rng)
    return _standardised(x), y, [r.source for r in rows]


def test_nuisance_directions_remove_the_shared_source_direction_and_keep_the_class(
    rng: np.random.Generator,
) -> None:
    z, y, groups = _standardised_world(rng)
    u = nuisance_directions(z, y, groups, dim=1)
    assert u.shape == (1, 4)
    assert abs(u[0, 1]) > 0.95 and abs(u[0, 0]) < 0.1  # the chain's direction, not the class
    np.testing.assert_allclose(u @ u.T, np.eye(1), atol=1e-12)
    projected = project_out(z, u)
    source = np.asarray(groups)

    def spread(values: np.ndarray) -> float:  # of the people sources' means
        return float(np.std([values[(source == s) & (y == 0)].mean() for s in set(source[y == 0])]))

    assert spread(projected[:, 1]) < 0.1 * spread(z[:, 1])  # the chains' offsets are gone
    np.testing.assert_allclose(projected[:, 0], z[:, 0], atol=0.2)  # the class column stays
    assert M.roc_auc(y, projected[:, 0]) > 0.9
    again = nuisance_directions(z.copy(), y.copy(), list(groups), dim=1)
    np.testing.assert_array_equal(again, u)  # deterministic


def test_nuisance_directions_stop_at_the_scatter_rank_and_count_robots_only_when_asked(
    rng: np.random.Generator,
) -> None:
    z, y, groups = _standardised_world(rng)
    assert nuisance_directions(z, y, groups, dim=10).shape == (3, 4)  # 4 people sources
    assert nuisance_directions(z, y, groups, dim=10, classes="both").shape == (4, 4)  # + 2 - 1
    assert nuisance_directions(z, y, groups, dim=0).shape == (0, 4)
    people = y == 0
    alone = nuisance_directions(z[people], y[people], list(np.asarray(groups)[people]), dim=10)
    with_robots = nuisance_directions(z, y, groups, dim=10)
    np.testing.assert_allclose(np.abs(alone), np.abs(with_robots))  # robot rows do not count
    blocks = np.asarray(["a", "a", "b", "b"], dtype=object)
    per_block = nuisance_directions(z, y, groups, dim=1, col_blocks=blocks)
    assert per_block.shape == (2, 4)
    assert not per_block[0, 2:].any() and not per_block[1, :2].any()  # zero outside its block
    assert abs(per_block[0, 1]) > 0.95


def test_projected_fit_has_no_coefficient_along_the_directions_and_is_the_identity_when_off(
    rng: np.random.Generator,
) -> None:
    x, y, rows = _channel_world(rng)
    cfg = TrainConfig().resolved(l2=0.01, copy_weight=0.3, density_alpha=0.0, row_weights="source")
    plain = fit_head(x, y, cfg=cfg, rows=rows)
    assert nuisance_of(y, rows, cfg, col_blocks=None) is None
    mean, scale, coef, intercept = fit_logistic(x, y, l2=0.01, weights=row_weights(rows, cfg))
    np.testing.assert_array_equal(plain.coef, coef)  # nap_dim 0: the fit as before
    assert plain.intercept == intercept
    np.testing.assert_array_equal(project_out(x, np.zeros((0, 4))), x)
    projected = fit_head(x, y, cfg=dataclasses.replace(cfg, nap_dim=1), rows=rows)
    u = nuisance_directions(_standardised(x), y, [r.source for r in rows], dim=1)
    assert abs(float(projected.coef @ u[0])) < 1e-12
    assert abs(projected.coef[1]) < 0.2 * abs(plain.coef[1])  # the chain's credit goes
    assert projected.coef[0] > 1.0  # the class keeps its weight
    again = fit_head(x, y, cfg=dataclasses.replace(cfg, nap_dim=1), rows=rows)
    np.testing.assert_array_equal(again.coef, projected.coef)
    per_block = dataclasses.replace(cfg, nap_dim=1, nap_per_block=True)
    with pytest.raises(ValueError, match="block of each column"):
        nuisance_of(y, rows, per_block, col_blocks=None)


def test_projection_settings_are_validated_and_recorded_old_configs_read_as_off() -> None:
    cfg = TrainConfig(nap_dim=8, nap_classes="both", nap_per_block=True)
    again = TrainConfig.from_dict(cfg.to_dict())
    assert (again.nap_dim, again.nap_classes, again.nap_per_block) == (8, "both", True)
    old = TrainConfig().to_dict()
    for key in ("nap_dim", "nap_classes", "nap_per_block"):
        del old[key]
    assert TrainConfig.from_dict(old).nap_dim == 0
    head = LogisticHead(
        np.zeros(2), np.ones(2), np.zeros(2), 0.0, meta={"training": {"config": old}}
    )
    assert config_from_head(head).nap_dim == 0
    with pytest.raises(ValueError, match="nap_dim"):
        TrainConfig(nap_dim=-1)
    with pytest.raises(ValueError, match="nap_classes"):
        TrainConfig(nap_classes="robots")
