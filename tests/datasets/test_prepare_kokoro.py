"""The Kokoro builder's pure parts: the seeded draw; the training build's voices, lines and
splits (the model files and phonemes: ``tests/models/training/test_kokoro_tts.py``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.training.corpus import KOKORO_TRAIN_MANIFEST as KOKORO_TRAIN
from models.training.corpus import shared_data_dir

from .test_builders import load_builder
from .test_corpus import row

K = load_builder("prepare_kokoro")
SHARED_MANIFEST = shared_data_dir() / "manifest.csv"


def texts(language: str, n: int) -> list:
    return [
        K.Text(language, "neutral", f"{language}/{i}", f"line {i}", "authored") for i in range(n)
    ]


def test_plan_is_seeded_and_deals_every_voice_in_turn() -> None:
    voices = K.all_voices(["jf_alpha", "jf_nezumi", "jf_gongitsune", "jf_tebukuro", "jm_kumo"])
    assert len(voices) == 8  # five tables and three blends
    lines = texts("en", 16) + texts("zh", 16)
    first = K.plan(lines, voices)
    assert first == K.plan(lines, voices)  # the same draw on every run
    # the same speed for a (voice, line) pair whatever the input order
    speeds = {(t.group_id, v.name): s for t, v, s in first}
    again = K.plan(list(reversed(lines)), voices)
    assert all(speeds.get((t.group_id, v.name), s) == s for t, v, s in again)
    for language in ("en", "zh"):
        dealt = [v.name for t, v, _ in first if t.language == language]
        assert sorted(set(dealt)) == sorted(v.name for v in voices)
        assert all(dealt.count(v) == 2 for v in set(dealt))
    assert all(K.SPEED_RANGE[0] <= s <= K.SPEED_RANGE[1] for *_, s in first + again)


def test_by_hash_does_not_depend_on_the_input_order() -> None:
    lines = texts("zh", 30)
    assert K.by_hash(lines, 5) == K.by_hash(list(reversed(lines)), 5)
    assert len(K.by_hash(lines, 50)) == 30


def test_a_blend_voice_is_the_mean_of_its_tables() -> None:
    tables = {"a": np.zeros((510, 1, 256)), "b": np.ones((510, 1, 256))}
    blend = K.Voice("a+b", ("a", "b"))
    assert blend.style(tables).shape == (510, 256)
    assert np.allclose(blend.style(tables), 0.5)


TABLES = ["jf_alpha", "jf_nezumi", "jf_gongitsune", "jf_tebukuro", "jm_kumo"]


def test_training_voices_are_none_of_the_test_voices() -> None:
    rng = np.random.default_rng(0)
    tables = {t: rng.normal(size=(510, 1, 256)).astype(np.float32) for t in TABLES}
    test = K.all_voices(tables)
    train = K.training_voices(tables)
    assert len(train) == 2 * 10 + 10  # each pair both ways, each three tables
    assert not {v.name for v in train} & {v.name for v in test}
    test_styles = [v.style(tables) for v in test]
    for voice in train:
        style = voice.style(tables)
        assert not any(np.allclose(style, s) for s in test_styles), voice.name
    weighted = next(v for v in train if v.name == "jf_alpha25+jf_nezumi75")
    expected = 0.25 * tables["jf_alpha"] + 0.75 * tables["jf_nezumi"]
    assert np.allclose(weighted.style(tables), expected.reshape(510, 256), atol=1e-6)


def test_voice_splits_put_a_fifth_of_the_voices_in_dev_whatever_the_order() -> None:
    voices = K.training_voices(TABLES)
    splits = K.voice_splits(voices)
    assert splits == K.voice_splits(list(reversed(voices)))
    assert sorted(splits) == sorted(v.name for v in voices)
    assert list(splits.values()).count("dev") == round(len(voices) * K.TRAIN_DEV_SHARE)
    assert set(splits.values()) == {"train", "dev"}


def test_training_plan_gives_dev_lines_to_dev_voices_only() -> None:
    voices = K.training_voices(TABLES)
    splits = K.voice_splits(voices)
    lines = [
        dataclasses.replace(t, split="dev" if i % 5 == 0 else "train")
        for i, t in enumerate(texts("en", 40) + texts("zh", 40))
    ]
    jobs = K.training_plan(lines, voices)
    assert len(jobs) == len(lines)
    assert all(splits[voice.name] == text.split for text, voice, _ in jobs)
    assert jobs == K.training_plan(lines, voices)  # the same draw on every run
    first = jobs[: len(jobs) // 4]  # a build stopped early still holds both languages and splits
    assert {(t.language, t.split) for t, _, _ in first} == {
        ("en", "train"),
        ("en", "dev"),
        ("zh", "train"),
        ("zh", "dev"),
    }


def test_a_line_inside_a_test_line_is_tied_to_it() -> None:
    lines = {"设定二十九度我想听歌", "didyoufeedthedog"}
    assert K.tied_to_test("设定二十九度。", lines)
    assert K.tied_to_test("Did you feed the dog?", lines)
    assert not K.tied_to_test("Did you walk the dog?", lines)


def test_mandarin_lines_with_latin_letters_or_digits_are_not_read() -> None:
    assert not K.readable("火鸟I I概念车使用全自动驾驶", "zh")
    assert not K.readable("设定29度", "zh")
    assert K.readable("设定二十九度。", "zh") and K.readable("Press 1 now.", "en")


@pytest.mark.skipif(not SHARED_MANIFEST.is_file(), reason="shared data not laid out")
def test_training_texts_keep_test_lines_and_test_campaigns_out() -> None:
    from models.training.corpus import KOKORO_MANIFEST, read_manifest, read_manifests
    from models.training.leakage import held_out_keys, normalise_line, simulated_calls

    texts_ = K.read_training_texts(100)
    for language in ("en", "zh"):
        mine = [t for t in texts_ if t.language == language]
        assert len(mine) == 100
        assert sum(t.kind == "neutral" for t in mine) == 75
        assert {t.split for t in mine} == {"train", "dev"}
    rows = read_manifests()
    every = [*rows, *simulated_calls(), *read_manifest(KOKORO_MANIFEST)]
    test_lines = [k.removeprefix("line:") for k in held_out_keys(every) if k.startswith("line:")]
    campaigns: dict[str, set[str]] = {}
    for r in rows:
        if r.campaign:
            campaigns.setdefault(f"{r.language}/{r.campaign}", set()).add(r.split)
    for t in texts_:
        assert not any(normalise_line(t.text) in line for line in test_lines), t.group_id
        if t.kind == "sales":  # a sales line keeps its campaign's split
            assert campaigns[f"{t.language}/{t.campaign}"] == {t.split}
    assert len({t.group_id for t in texts_}) == len(texts_)


def training_row(voice: str, i: int, split: str) -> Any:
    text = K.Text("en", "neutral", f"authored/en/x/{i}", f"line {i}", "authored", split=split)
    return K.make_row(
        text,
        K.Voice(voice, (voice,)),
        rel=f"{K.TRAIN_NAME}/en/{voice}/{i}.flac",
        duration_s=2.0,
        settings={"speed": "1.0"},
        name=K.TRAIN_NAME,
        source=K.TRAIN_SOURCE,
    )


def test_training_rows_are_their_own_engine_family_and_get_a_leave_one_out_fold() -> None:
    from models.training.corpus import HELD_OUT_SOURCES, leave_one_out_folds

    kokoro = [training_row("jf_alpha25+jm_kumo75", i, "train") for i in range(24)]
    assert {(r.engine, r.engine_family, r.source) for r in kokoro} == {
        ("kokoro", "kokoro", "kokoro_train")
    }
    assert K.TRAIN_SOURCE not in HELD_OUT_SOURCES
    others = [
        row(i, label="robot", kind="tts", engine="piper", engine_family="piper") for i in range(24)
    ]
    people = [row(100 + i, split="test" if i % 4 else "train") for i in range(24)]
    folds = {held: test for held, _, test in leave_one_out_folds([*kokoro, *others, *people])}
    assert set(folds) == {"kokoro", "piper"}
    assert {i for i in folds["kokoro"] if i < len(kokoro)} == set(range(len(kokoro)))


def test_select_rows_reads_the_training_build_when_named(tmp_path: Path) -> None:
    from models.training.corpus import KOKORO_TRAIN_MANIFEST, MANIFEST_DIR, write_manifest
    from models.training.synth_config import TrainConfig
    from models.training.synth_data import select_rows

    name = KOKORO_TRAIN_MANIFEST.relative_to(MANIFEST_DIR).with_suffix("").as_posix()
    rows = [training_row("jf_alpha25+jm_kumo75", i, "dev") for i in range(3)]
    write_manifest(rows, tmp_path / f"{name}.jsonl")
    cfg = TrainConfig(manifests=(name,), manifest_dir=str(tmp_path))
    assert [r.id for r in select_rows(cfg)] == sorted(r.id for r in rows)


@pytest.mark.skipif(not KOKORO_TRAIN.is_file(), reason="training build not committed")
def test_the_committed_training_build_is_clean() -> None:
    """Voices split by voice and none a test voice; no key of a training row meets a test key
    of the training manifests and simulated calls; against the held-out Kokoro set only its
    engine (on purpose: the build's point) and campaigns (that set drew its sales lines from
    every campaign, train ones included) are shared, no speaker, utterance or line."""
    from models.training.corpus import (
        KOKORO_MANIFEST,
        check_disjoint,
        read_manifest,
        read_manifests,
    )
    from models.training.leakage import audio_leaks, simulated_calls

    rows = read_manifest(KOKORO_TRAIN)
    assert rows and {r.split for r in rows} <= {"train", "dev"}
    assert check_disjoint(rows, "speaker") == []
    assert check_disjoint(rows, "group_id") == []
    test_voices = {r.speaker for r in read_manifest(KOKORO_MANIFEST)}
    assert not {r.speaker for r in rows} & test_voices
    assert audio_leaks(rows, [*rows, *read_manifests(), *simulated_calls()]) == []
    shared = audio_leaks(rows, [*rows, *read_manifest(KOKORO_MANIFEST)])
    assert {leak.split(": ")[1].split(":")[0] for leak in shared} <= {"engine", "campaign"}


@pytest.mark.skipif(not SHARED_MANIFEST.is_file(), reason="shared data not laid out")
def test_the_training_draw_gives_the_committed_build_its_lines() -> None:
    """A fresh machine rebuilds the committed training build: lines added to the text corpus
    later (the call-centre agent lines) do not move its draw."""
    from models.training.corpus import read_manifest

    drawn = {(t.language, t.group_id, t.split, t.text) for t in K.read_training_texts(100)}
    committed = {(r.language, r.group_id, r.split, r.text) for r in read_manifest(KOKORO_TRAIN)}
    assert drawn == committed
