"""models.training.corpus: row records, manifests, stable hashing, leakage-free splits and folds."""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from models.training.corpus import (
    PINNED_SPLITS,
    CorpusRow,
    check_disjoint,
    dev_halves,
    half_links,
    hash_unit,
    leave_one_out_folds,
    rank_splits,
    read_manifest,
    row_links,
    seeded_rng,
    split_components,
    split_of,
    write_clip,
    write_manifest,
)


def row(i: int, **fields: object) -> CorpusRow:
    base = {
        "id": f"src/{i:04d}",
        "path": f"audio/{i:04d}.flac",
        "root": "shared",
        "label": "human",
        "kind": "read_speech",
        "language": "en",
        "speaker": f"spk{i}",
        "engine": "",
        "engine_family": "",
        "source": "src",
        "group_id": f"src/{i:04d}",
        "campaign": "",
        "split": "train",
        "duration_s": 1.0,
        "orig_sr_hz": 16_000,
        "licence": "test",
    }
    return CorpusRow(**{**base, **fields})  # type: ignore[arg-type]


def test_hash_unit_is_stable_and_uniform() -> None:
    assert hash_unit("speaker:a") == hash_unit("speaker:a")  # sha1, not Python's hash()
    assert hash_unit("speaker:a") == pytest.approx(
        hash_unit("speaker:a", salt="robocall-splits-v1")
    )
    values = [hash_unit(f"k{i}") for i in range(2000)]
    assert 0.0 <= min(values) and max(values) < 1.0
    assert np.mean(values) == pytest.approx(0.5, abs=0.03)


def test_split_of_follows_the_fractions_and_the_pins() -> None:
    counts = Counter(split_of(f"speaker:{i}") for i in range(3000))
    assert counts["train"] / 3000 == pytest.approx(0.8, abs=0.03)
    assert counts["dev"] / 3000 == pytest.approx(0.1, abs=0.02)
    for key, split in PINNED_SPLITS.items():
        assert split_of(key) == split


def test_rank_splits_gives_every_split_a_key() -> None:
    splits = rank_splits([f"campaign{i}" for i in range(8)], salt="t")
    assert Counter(splits.values()) == {"train": 6, "dev": 1, "test": 1}
    assert rank_splits(reversed(list(splits)), salt="t") == splits  # order-free
    assert set(rank_splits(["a", "b"], salt="t").values()) == {"train"}


def test_components_keep_linked_rows_together() -> None:
    # 0-1 share a speaker, 1-2 share an utterance: one component; 3 is alone.
    links = [
        ("speaker:a", "group:x"),
        ("speaker:a", "group:y"),
        ("speaker:b", "group:y"),
        ("speaker:c", "group:z"),
    ]
    splits = split_components(links)
    assert splits[0] == splits[1] == splits[2]
    pinned = split_components(
        [("speaker:aishell_BAC009S0150", "group:q"), ("speaker:d", "group:q")]
    )
    assert pinned == ["train", "train"]


def test_components_at_scale_never_leak() -> None:
    rng = np.random.default_rng(0)
    rows = [
        row(i, speaker=f"spk{rng.integers(60)}", group_id=f"utt{rng.integers(150)}")
        for i in range(400)
    ]
    splits = split_components([row_links(r) for r in rows])
    rows = [dataclasses.replace(r, split=s) for r, s in zip(rows, splits, strict=True)]
    assert check_disjoint(rows, "speaker") == []
    assert check_disjoint(rows, "group_id") == []


def test_leave_one_out_folds_hold_out_one_engine_without_leaks() -> None:
    rows = [row(i, split=("train", "dev", "test")[i % 3]) for i in range(30)]
    for j, family in enumerate(["world"] * 25 + ["espeak-ng"] * 25):
        speaker = f"spk{j % 30}" if family == "world" else f"espeak:{j % 5}"
        source_split = rows[j % 30].split if family == "world" else "train"
        rows.append(
            row(
                100 + j,
                label="robot",
                engine=family,
                engine_family=family,
                speaker=speaker,
                split=source_split,
                group_id=f"g{100 + j}",
            )
        )
    folds = list(leave_one_out_folds(rows, min_rows=20))
    assert [f[0] for f in folds] == ["espeak-ng", "world"]
    for held_out, train, test in folds:
        assert not set(train) & set(test)
        test_keys = {k for i in test for k in row_links(rows[i])}
        for i in train:
            assert rows[i].engine_family != held_out
            if rows[i].label == "robot":
                assert not test_keys & set(row_links(rows[i]))
            else:
                assert rows[i].split == "train"
        assert {rows[i].label for i in test} == {"human", "robot"}


def test_manifest_round_trip(tmp_path: Path) -> None:
    rows = [row(2, parts=("a", "b"), extra=(("speed", "1.1"),)), row(1, text="你好")]
    path = tmp_path / "m.jsonl"
    assert write_manifest(rows, path) == 2
    back = read_manifest(path)
    assert [r.id for r in back] == ["src/0001", "src/0002"]  # sorted for stable diffs
    assert back[1] == rows[0] and back[0] == rows[1]
    with pytest.raises(ValueError, match="duplicate"):
        write_manifest([row(1), row(1)], path)


def test_row_validation_names_the_field() -> None:
    with pytest.raises(ValueError, match="label"):
        row(1, label="synthetic")
    with pytest.raises(ValueError, match="split"):
        row(1, split="val")


def test_write_clip_stores_16k_pcm16_flac(tmp_path: Path) -> None:
    x = np.sin(2 * np.pi * 440 * np.arange(22_050) / 22_050) * 1.5  # over full scale
    path = tmp_path / "a" / "clip.flac"
    duration_s = write_clip(path, x, sample_rate_hz=22_050)
    info = sf.info(path)
    assert (info.samplerate, info.subtype, info.channels) == (16_000, "PCM_16", 1)
    assert duration_s == pytest.approx(1.0, abs=1e-3)
    assert np.abs(sf.read(path)[0]).max() < 1.0  # scaled, not clipped
    assert not list(path.parent.glob("*.part"))


def dev_corpus() -> list[CorpusRow]:
    """Dev rows of two languages: people (two clips each), TTS robots of two engines per
    language (two voices each), copies of people, and two-party mixtures that pair a robot or
    a person with a person: the mixtures alone would chain every clip of a language together."""
    rows: list[CorpusRow] = []
    for lang in ("en", "zh"):
        people = []
        for p in range(8):
            for _ in range(2):
                people.append(row(len(rows), language=lang, speaker=f"{lang}_p{p}", split="dev"))
                rows.append(people[-1])
        robots = []
        for e in range(2):
            for v in range(2):
                robots.append(
                    row(
                        len(rows),
                        label="robot",
                        kind="tts",
                        language=lang,
                        speaker=f"{lang}_tts{e}:{v}",
                        engine=f"engine{e}",
                        engine_family=f"{lang}_family{e}",
                        split="dev",
                    )
                )
                rows.append(robots[-1])
        for person in people[::4]:
            rows.append(
                row(
                    len(rows),
                    label="robot",
                    kind="resynthesis",
                    language=lang,
                    speaker=person.speaker,
                    group_id=person.group_id,
                    parts=(person.id,),
                    split="dev",
                )
            )
        # person p calls person p + 1 (a ring), robot r calls person r
        pairs = [(people[2 * p], people[(2 * p + 3) % len(people)]) for p in range(8)]
        pairs += [(robot, people[2 * r + 1]) for r, robot in enumerate(robots)]
        for caller, callee in pairs:
            rows.append(
                row(
                    len(rows),
                    label=caller.label,
                    kind="two_party",
                    language=lang,
                    speaker=caller.speaker,
                    parts=(caller.id, callee.id),
                    split="dev",
                )
            )
    rows.append(row(len(rows), split="train", speaker="en_p0"))  # other splits play no part
    return rows


def test_dev_halves_hold_both_languages_people_and_robots() -> None:
    rows = dev_corpus()
    halves = dev_halves(rows)
    for half in ("select", "fusion"):
        held = Counter(
            (r.language, r.label, bool(r.parts)) for r in rows if halves.get(r.id) == half
        )
        for lang in ("en", "zh"):
            for label in ("human", "robot"):
                assert held[(lang, label, False)] >= 2, (half, lang, label)
                assert held[(lang, label, True)] >= 1, (half, lang, label)
    assert set(halves.values()) == {"select", "fusion"}
    assert all(r.split == "dev" for r in rows if r.id in halves)


def test_dev_halves_share_no_speaker_utterance_engine_or_part() -> None:
    rows = dev_corpus()
    by_id = {r.id: r for r in rows}
    halves = dev_halves(rows)
    seen: dict[str, set[str]] = {}
    for r in rows:
        if r.id in halves:
            keys = {*half_links(r), *(k for p in r.parts for k in half_links(by_id[p]))}
            for key in keys:
                seen.setdefault(key, set()).add(halves[r.id])
    assert all(len(h) == 1 for h in seen.values()), [k for k, h in seen.items() if len(h) > 1]
    engines = {k for k in seen if k.startswith("engine:")}
    assert engines == {f"engine:{g}:{g}_family{e}" for g in ("en", "zh") for e in (0, 1)}
    for r in rows:  # a mixture sits with its parts, or in neither half when they straddle
        if r.parts and r.split == "dev":
            part_halves = {halves[p] for p in r.parts}
            assert halves.get(r.id) == (part_halves.pop() if len(part_halves) == 1 else None)
    dropped = [r for r in rows if r.split == "dev" and r.id not in halves]
    assert dropped and all(r.parts for r in dropped)


def test_dev_halves_are_deterministic_and_per_split() -> None:
    rows = dev_corpus()
    halves = dev_halves(rows)
    assert dev_halves(rows[::-1]) == halves
    other = [dataclasses.replace(r, id=f"x/{r.id}", split="test") for r in rows]
    assert dev_halves([*other, *rows]) == halves  # rows of other splits change nothing


def test_seeded_rng_is_reproducible() -> None:
    assert seeded_rng("a", 1).integers(1 << 30) == seeded_rng("a", 1).integers(1 << 30)
    assert seeded_rng("a", 1).integers(1 << 30) != seeded_rng("a", 2).integers(1 << 30)
