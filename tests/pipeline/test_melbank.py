"""The on-disk mel bank cache gives librosa's matrices bit for bit; warm runs skip librosa."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import librosa
import numpy as np
import pytest

from pipeline import acoustic
from pipeline.audio import load_audio
from pipeline.config import AudioLimits
from pipeline.melbank import mel_filterbank
from pipeline.types import Transcript

ROOT = Path(__file__).resolve().parents[2]
EMPTY = Transcript(language="en", language_probability=1.0, segments=())
# The two banks a call uses: the acoustic cues' (HTK, telephone band) and GE2E's (Slaney, 16 kHz).
BANKS: tuple[dict[str, object], ...] = (
    {"sample_rate_hz": acoustic.RATE_HZ, "n_fft": acoustic.N_FFT, "n_mels": acoustic.N_MELS,
     "fmin_hz": acoustic.BAND_HZ[0], "fmax_hz": acoustic.BAND_HZ[1], "htk": True, "norm": None},
    {"sample_rate_hz": 16_000, "n_fft": 400, "n_mels": 40},
)  # fmt: skip


@pytest.fixture
def cold_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("ROBOCALL_CACHE_DIR", str(tmp_path))
    mel_filterbank.cache_clear()
    yield tmp_path
    mel_filterbank.cache_clear()


def _librosa_args(kw: dict[str, object]) -> dict[str, object]:
    names = {"sample_rate_hz": "sr", "fmin_hz": "fmin", "fmax_hz": "fmax"}
    return {names.get(k, k): v for k, v in kw.items()}


@pytest.mark.parametrize("kw", BANKS)
def test_cold_and_warm_banks_equal_librosa_exactly(cold_cache: Path, kw: dict[str, object]) -> None:
    expected = librosa.filters.mel(**_librosa_args(kw))
    cold = mel_filterbank(**kw)
    assert len(list((cold_cache / "melbank").glob("*.npy"))) == 1
    mel_filterbank.cache_clear()  # the next call reads the file
    warm = mel_filterbank(**kw)
    for bank in (cold, warm):
        assert bank.dtype == expected.dtype and bank.shape == expected.shape
        assert np.array_equal(bank, expected)
        assert not bank.flags.writeable  # shared by every caller in the process


def test_parameters_key_the_cache(cold_cache: Path) -> None:
    a = mel_filterbank(**BANKS[0])
    b = mel_filterbank(**{**BANKS[0], "n_mels": 20})
    assert a.shape[0] == acoustic.N_MELS and b.shape[0] == 20
    assert len(list((cold_cache / "melbank").glob("*.npy"))) == 2


def test_a_damaged_cache_file_is_recomputed(cold_cache: Path) -> None:
    mel_filterbank(**BANKS[1])
    (path,) = (cold_cache / "melbank").glob("*.npy")
    path.write_bytes(b"not an array")
    mel_filterbank.cache_clear()
    bank = mel_filterbank(**BANKS[1])
    assert np.array_equal(bank, librosa.filters.mel(**_librosa_args(BANKS[1])))
    mel_filterbank.cache_clear()
    assert np.array_equal(mel_filterbank(**BANKS[1]), bank)  # and written back whole


def test_an_unwritable_cache_still_gives_the_bank(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache directory should be")
    monkeypatch.setenv("ROBOCALL_CACHE_DIR", str(blocker))
    mel_filterbank.cache_clear()
    try:
        bank = mel_filterbank(**BANKS[0])
    finally:
        mel_filterbank.cache_clear()
    assert np.array_equal(bank, librosa.filters.mel(**_librosa_args(BANKS[0])))
    assert "could not cache the mel bank" in caplog.text


def test_acoustic_banks_are_the_ones_the_cues_use(cold_cache: Path) -> None:
    assert np.array_equal(acoustic._mel_filterbank(), mel_filterbank(**BANKS[0]))
    assert len(list((cold_cache / "melbank").glob("*.npy"))) == 1


@pytest.mark.parametrize("name", ["robot_en.mp3", "human_zh.mp3", "robot_zh.amr"])
def test_example_cues_identical_from_librosa_and_from_the_cache(
    cold_cache: Path, name: str
) -> None:
    audio = load_audio(ROOT / "examples" / name, limits=AudioLimits())
    computed = acoustic.acoustic_cues(audio)
    mel_filterbank.cache_clear()  # from here on the bank comes from the file
    cached = acoustic.acoustic_cues(audio)
    assert cached == computed  # every value, weight and span, exactly


def test_a_warm_process_never_imports_librosa(cold_cache: Path) -> None:
    probe = (
        "import sys, numpy as np\n"
        "from pipeline.acoustic import log_mel_db\n"
        "from models.ge2e import mel_spectrogram\n"
        "x = np.sin(np.arange(16000) / 5.0).astype(np.float32)\n"
        "log_mel_db(x); mel_spectrogram(x)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('librosa', 'numba')))\n"
    )
    env = {**os.environ, "ROBOCALL_CACHE_DIR": str(cold_cache)}

    def run() -> str:
        done = subprocess.run(
            [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert "librosa" in run()  # cold: librosa computes the banks once
    assert run() == "[]"  # warm: read from disk
