"""No test-split speaker, engine, campaign or script line reaches a shipped model's training rows.

The shipped models: the synthetic-voice head, the text heads, and the fusion (composed calls and
the simulated two-party dev calls); the test split: test clips and simulated test calls.

Run on the committed manifests (text only, no audio needed): the rows each training stage would
fit on, computed by the same functions the stages call.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from models.training.corpus import (
    HELD_OUT_SOURCES,
    audio_manifest_paths,
    dev_halves,
    read_manifests,
)
from models.training.fusion_calls import PER_CELL, select_calls
from models.training.leakage import (
    audio_leaks,
    held_out_keys,
    held_out_people,
    normalise_line,
    simulated_calls,
    text_keys,
    tied_to_test,
)
from models.training.synth_config import TrainConfig
from models.training.synth_data import mixed_rows, select_rows, train_ids
from models.training.text_features import CORPUS, TextRow, read_rows
from models.training.train_fusion import compose, fusion_fit_clips, text_half
from models.training.train_text import trainable_rows

pytestmark = pytest.mark.skipif(not audio_manifest_paths(), reason="no manifests built")


def test_synth_head_training_rows_meet_no_test_key() -> None:
    cfg = TrainConfig()
    rows = select_rows(cfg)
    train = [r for r in rows if r.id in train_ids(rows, cfg)]
    assert train
    every = read_manifests()
    assert audio_leaks(train, every) == []
    assert not any(r.source in HELD_OUT_SOURCES for r in train)


def test_selection_and_fusion_halves_of_dev_are_disjoint() -> None:
    """The head chooses on one half of dev; the fusion fits on the other half's scores."""
    every = read_manifests()
    halves = dev_halves(every)
    cfg = TrainConfig()
    selected = {*(r.id for r in select_rows(cfg)), *(r.id for r in mixed_rows(cfg))}
    select = [r for r in every if halves.get(r.id) == "select" and r.id in selected]
    fusion = [r for r in every if halves.get(r.id) == "fusion"]
    assert select and fusion
    keys = {k for r in select for k in (f"speaker:{r.speaker}", f"group:{r.group_id}", *r.parts)}
    assert not [r.id for r in fusion if {f"speaker:{r.speaker}", f"group:{r.group_id}"} & keys]
    assert all(r.split == "dev" for r in [*select, *fusion])


def test_text_heads_never_train_on_test_lines_clips_or_campaigns() -> None:
    if not CORPUS.is_file():
        pytest.skip("no text corpus")
    texts = read_rows()
    keep = trainable_rows(texts)
    audio = read_manifests()
    test_rows = [r for r in audio if r.split == "test"]
    # Written out plainly, apart from leakage.text_keys: the three ways a text meets the test.
    test_lines = {normalise_line(r.text) for r in test_rows} - {""}
    test_clips = {r.id for r in test_rows}
    test_campaigns = {f"{r.language}/{r.campaign}" for r in test_rows if r.campaign}
    fitted = [t for t, k in zip(texts, keep, strict=True) if k]
    assert not [t.id for t in fitted if normalise_line(t.text) in test_lines]
    assert not [t.id for t in fitted if t.id.removeprefix("asr/") in test_clips]
    assert not [
        t.id
        for t in fitted
        if t.group.startswith("script/") and "/".join(t.group.split("/")[1:3]) in test_campaigns
    ]
    assert (~keep).sum() > 0  # the corpus does hold such rows: the guard is exercised


def test_held_out_engines_are_test_keys() -> None:
    keys = held_out_keys(read_manifests())
    engines = {k for k in keys if k.startswith("engine:")}
    assert engines  # the commercial voices (Polly, Edge/Azure, iFlytek, ChatTTS)


def test_fusion_fit_rows_meet_no_test_key() -> None:
    """The fusion's audio fit rows (the dev "fusion" half and the simulated dev calls it runs)
    share no voice, utterance, campaign or line with a test clip or a test call."""
    every = read_manifests()
    calls = simulated_calls()
    fit_clips = fusion_fit_clips(every)
    fit_calls = select_calls(calls, split="dev", per_cell=PER_CELL) if calls else []
    assert fit_clips
    assert audio_leaks([*fit_clips, *fit_calls], [*every, *calls]) == []
    assert all(r.split == "dev" for r in [*fit_clips, *fit_calls])


def test_fusion_fit_texts_meet_no_test_key() -> None:
    """The composed fit calls draw their texts from the "fit" half, never a test-tied text."""
    if not CORPUS.is_file():
        pytest.skip("no text corpus")
    texts = read_rows()
    tied = tied_to_test(texts, read_manifests())
    skip = frozenset(t.id for t, k in zip(texts, tied, strict=True) if k)
    assert skip  # the corpus holds test-tied texts in both halves: the guard is exercised
    assert {text_half(t) for t in texts if t.id in skip} == {"fit", "eval"}
    audio = [r for r in read_manifests() if r.split == "dev"][:200]
    cues = {r.id: {"x": 1.0} for r in audio}
    weights = [{"robot_script_text": 0.5} for _ in texts]
    drawn = {ex.text_id for ex in compose(audio, cues, texts, weights, half="fit", skip=skip)}
    assert drawn and not drawn & skip


def test_text_heads_never_train_on_a_simulated_test_call() -> None:
    """The simulated test calls, reported end to end, are test material for the text heads too:
    no trained text is a line or a transcript of a clip spoken in one."""
    calls = simulated_calls()
    if not CORPUS.is_file() or not calls:
        pytest.skip("no text corpus or no simulated calls")
    texts = read_rows()
    keep = trainable_rows(texts)
    audio = read_manifests()
    by_id = {r.id: r for r in [*audio, *calls]}
    test_keys = held_out_keys([*audio, *calls])
    fitted = [t for t, k in zip(texts, keep, strict=True) if k]
    assert not [t.id for t in fitted if text_keys(t, by_id) & test_keys]


def test_shipped_text_heads_held_out_every_test_tied_text() -> None:
    """The weights, not only the code: the shipped heads held out at least the rows tied to the
    test split now (``trained_on.held_out_rows`` of ``text_heads.json``, per source). More is
    allowed: rebuilt simulated calls (issue 13, calls now follow the corpus splits) tie fewer
    rows than when the heads were trained, and a row held out needlessly leaks nothing."""
    from models.text_clf import WEIGHTS_JSON

    if not CORPUS.is_file():
        pytest.skip("no text corpus")
    held = json.loads(WEIGHTS_JSON.read_text())["trained_on"]["held_out_rows"]["per_source"]
    texts = read_rows()
    tied = tied_to_test(texts, read_manifests())
    now = Counter(t.source for t, k in zip(texts, tied, strict=True) if k)
    assert not now - Counter(held), f"tied to test but trained on: {now - Counter(held)}"


def test_people_recorded_in_pypi_packages_are_held_out_of_every_training_stage() -> None:
    """Issue 12: none of their speakers or recordings is in a training manifest, and a text row
    with their words is tied to the test split (the text heads never fit on it)."""
    people = held_out_people()
    if not people:
        pytest.skip("no PyPI speech manifest")
    every = read_manifests()
    assert {r.split for r in people} == {"test"}
    train = [r for r in every if r.split != "test"]
    assert audio_leaks(train, [*every, *people]) == audio_leaks(train, every)
    heard = people[0]
    fields = {"language": "en", "source": "probe", "group": "probe", "topic": "none"}
    words = [TextRow(id="probe/0", text=heard.text, is_pitch=0, is_robot=0, origin="", **fields)]
    assert tied_to_test(words, every).tolist() == [True]
