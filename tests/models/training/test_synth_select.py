"""The synthetic-voice head's selection criterion: family and people-source folds inside the
non-test rows."""

from __future__ import annotations

import numpy as np
import pytest

from models.training.corpus import CorpusRow, row_links
from models.training.synth_config import TrainConfig
from models.training.synth_data import ClipFeatures
from models.training.synth_fit import fit_logistic
from models.training.synth_select import (
    Scorer,
    criterion,
    fold_eers,
    fold_scores,
    people_source,
    selection_folds,
    selection_pool,
    source_eers,
    source_folds,
)

CFG = TrainConfig(min_fold_robots=3, people_folds=2)


def row(
    rid: str, *, label: str, family: str = "", speaker: str = "", group: str = "",
    kind: str = "", split: str = "train", source: str = "",
) -> CorpusRow:  # fmt: skip
    return CorpusRow(
        id=rid,
        path=f"{rid}.flac",
        root="cache",
        label=label,
        kind=kind or ("tts" if label == "robot" else "read_speech"),
        language="en",
        speaker=speaker or f"spk:{rid}",
        engine=family,
        engine_family=family,
        source=source or ("src_robot" if label == "robot" else "src_people"),
        group_id=group or rid,
        campaign="",
        split=split,
        duration_s=2.0,
        orig_sr_hz=16_000,
        licence="generated in the test",
    )


def corpus() -> list[CorpusRow]:
    rows = [row(f"h{i}", label="human", speaker=f"person{i}") for i in range(12)]
    rows += [row(f"a{i}", label="robot", family="fam_a") for i in range(4)]
    rows += [row(f"b{i}", label="robot", family="fam_b") for i in range(3)]
    rows += [row("c0", label="robot", family="fam_c")]  # too few rows to be a fold
    # a vocoded copy of person 0: a copy family, never held out, dropped with its speaker
    rows += [row(f"v{i}", label="robot", family="vocoder", kind="resynthesis") for i in range(5)]
    rows += [row("v_p0", label="robot", family="vocoder", kind="resynthesis", speaker="person0")]
    # fam_a's first robot reads the same line as person 1
    rows[12] = row("a0", label="robot", family="fam_a", group="h1")
    return rows


def features(rows: list[CorpusRow], *, separable: bool) -> dict[str, ClipFeatures]:
    rng = np.random.default_rng(0)
    out = {}
    for r in rows:
        shift = 3.0 if separable and r.label == "robot" else 0.0
        x = rng.normal(shift, 1.0, (1, 4))
        out[r.id] = ClipFeatures(r.id, np.asarray([[0.0, 2.0]]), x)
    return out


def test_each_tts_family_is_one_fold_beside_a_group_of_people() -> None:
    pool = corpus()
    folds = list(selection_folds(pool, CFG))
    assert [f.held_out for f in folds] == ["fam_a", "fam_b"]
    held_people = []
    for fold in folds:
        test = [pool[i] for i in fold.test]
        robots = {r.engine_family for r in test if r.label == "robot"}
        assert robots == {fold.held_out}
        people = {r.id for r in test if r.label == "human"}
        assert people, "every fold scores some people"
        held_people.append(people)
        # nothing the head is fitted on shares a speaker or an utterance with a held-out row
        keys = {k for r in test for k in row_links(r)}
        train = [pool[i] for i in fold.train]
        assert not any(set(row_links(r)) & keys for r in train)
        assert not set(fold.train) & set(fold.test)
    assert not held_people[0] & held_people[1], "the two folds hold out different people"
    assert list(selection_folds(pool, CFG)) == folds, "deterministic"


def test_a_copy_of_a_held_out_person_leaves_the_training_rows() -> None:
    pool = corpus()
    for fold in selection_folds(pool, CFG):
        people = {pool[i].speaker for i in fold.test if pool[i].label == "human"}
        train_ids = {pool[i].id for i in fold.train}
        assert ("v_p0" in train_ids) == ("person0" not in people)
        if "h1" in {pool[i].id for i in fold.test}:
            assert "a0" not in train_ids  # shares person 1's utterance


def test_pool_is_train_and_dev_select_only() -> None:
    rows = [*corpus(), row("t0", label="human", split="test"), row("d0", label="human")]
    feats = features(rows, separable=False)
    pool = selection_pool(rows, feats, fit_ids={"h0", "a1"}, select_ids={"d0"})
    assert [r.id for r in pool] == ["h0", "a1", "d0"]


def logistic(x: np.ndarray, y: np.ndarray, rows: list[CorpusRow]) -> Scorer:
    mean, scale, coef, b = fit_logistic(x, y, l2=0.1)
    return lambda z: ((z - mean) / scale) @ coef + b


def test_fold_eers_follow_how_separable_the_classes_are() -> None:
    pool = corpus()
    folds = list(selection_folds(pool, CFG))
    easy = fold_eers(pool, features(pool, separable=True), folds, logistic)
    hard = fold_eers(pool, features(pool, separable=False), folds, logistic)
    assert set(easy) == {"fam_a", "fam_b"}
    assert max(easy.values()) == 0.0
    assert np.mean(list(hard.values())) > 0.2


def test_criterion_weighs_its_three_parts_the_same() -> None:
    families, sources = {"a": 0.2, "b": 0.4}, {"people:x": 0.5, "people:y": 0.7}
    assert criterion(families, 0.1, sources) == pytest.approx((0.3 + 0.6 + 0.1) / 3)
    # a part that does not exist is left out, not counted as 0
    assert criterion(families, 0.1) == pytest.approx(0.2)
    assert criterion(families, None, sources) == pytest.approx(0.45)
    assert criterion({}, None, sources) == pytest.approx(0.6)
    assert criterion({}, 0.1) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="neither"):
        criterion({}, None, {})


def test_people_sources_group_the_demo_pages_and_the_mandarin_repositories() -> None:
    def source_of(source: str) -> str:
        return people_source(row("x", label="human", source=source))

    assert source_of("aishell") == "aishell"
    assert source_of("hyke_ivr") == "hyke_ivr"
    assert source_of("zh_HemingwayLee_mandarin-magicdata-viewer") == "magicdata"
    demo = ["umelgan_demo", "zh_babysor_MockingBird", "zh_thuhcsi_secap_demo"]
    assert {source_of(s) for s in demo} == {"tts_demo_pages"}
    assert source_of("zh_wu-jingtao_training-data") == "zh_repositories"


SOURCE_CFG = TrainConfig(min_fold_robots=3, people_folds=2, min_fold_people=3)


def source_corpus() -> list[CorpusRow]:
    """Three human sources (one too small to be a fold) and robots, with a copy of one person
    from source "librispeech", a robot reading one aishell line and a speaker in two sources."""
    rows = [
        row(f"ls{i}", label="human", speaker=f"ls_spk{i % 3}", source="librispeech")
        for i in range(6)
    ]
    rows += [row(f"ai{i}", label="human", speaker="ai_spk", source="aishell") for i in range(4)]
    rows += [row("tiny0", label="human", speaker="tiny_spk", source="hyke_ivr")]
    rows += [row("tiny1", label="human", speaker="ls_spk0", source="hyke_ivr")]
    rows += [row(f"a{i}", label="robot", family="fam_a") for i in range(4)]
    rows += [row("a_line", label="robot", family="fam_a", group="ai0")]
    rows += [row(f"b{i}", label="robot", family="fam_b") for i in range(4)]
    rows += [row("v_ls1", label="robot", family="vocoder", kind="resynthesis", speaker="ls_spk1")]
    return rows


def test_each_source_is_held_out_once_with_all_its_speakers_and_nothing_linked_is_fitted() -> None:
    pool = source_corpus()
    folds = list(source_folds(pool, SOURCE_CFG))
    assert [f.held_out for f in folds] == ["people:aishell", "people:librispeech"]
    for fold in folds:
        test = [pool[i] for i in fold.test]
        source = fold.held_out.removeprefix("people:")
        assert all(r.label == "human" for r in test), "no robot is held out"
        assert {r.id for r in test} == {
            r.id for r in pool if r.label == "human" and people_source(r) == source
        }
        train = [pool[i] for i in fold.train]
        keys = {k for r in test for k in row_links(r)}
        assert not any(set(row_links(r)) & keys for r in train), "no speaker/utterance shared"
        assert not {r.source for r in train if r.label == "human"} & {source}
    by_name = {f.held_out: {pool[i].id for i in f.train} for f in folds}
    assert "a_line" not in by_name["people:aishell"]  # reads an aishell line
    assert "a_line" in by_name["people:librispeech"]
    assert "v_ls1" not in by_name["people:librispeech"]  # a copy of a held-out person
    assert "tiny1" not in by_name["people:librispeech"]  # same speaker in another source
    assert list(source_folds(pool, SOURCE_CFG)) == folds, "deterministic"


def test_source_eers_rank_held_out_people_against_the_family_folds_robots() -> None:
    robots = {"fam_a": (np.asarray([0, 0, 1, 1]), np.asarray([-1.0, -2.0, 2.0, 3.0]))}
    sources = {
        "people:fine": (np.asarray([0, 0]), np.asarray([-3.0, 0.0])),
        "people:called_robot": (np.asarray([0, 0]), np.asarray([4.0, 5.0])),
    }
    eers = source_eers(robots, sources)
    assert eers["people:fine"] == 0.0
    assert eers["people:called_robot"] == 1.0
    assert source_eers({}, sources) == {}


def test_source_folds_score_through_fold_scores_without_robots_held_out() -> None:
    pool = source_corpus()
    feats = features(pool, separable=True)
    folds = [*selection_folds(pool, SOURCE_CFG), *source_folds(pool, SOURCE_CFG)]
    scored = fold_scores(pool, feats, folds, logistic)
    assert {"people:aishell", "people:librispeech"} <= set(scored)
    families = {k: v for k, v in scored.items() if not k.startswith("people:")}
    people = {k: v for k, v in scored.items() if k.startswith("people:")}
    assert all(not y.any() for y, _ in people.values())
    assert max(source_eers(families, people).values()) == 0.0
