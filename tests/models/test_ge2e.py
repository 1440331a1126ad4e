"""The NumPy GE2E encoder against Resemblyzer itself, on speech made with espeak-ng at test time,
and the promise it exists for: once its weights are cached, diarizing a mono call imports
neither torch nor ``librosa.feature``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from models.ge2e import CACHE_FORMAT, HOP, load_ge2e, mel_spectrogram, weights_path

pytest.importorskip("resemblyzer")
torch = pytest.importorskip("torch")
ESPEAK = shutil.which("espeak-ng")
needs_espeak = pytest.mark.skipif(ESPEAK is None, reason="espeak-ng is not installed")
SR = 16_000
ROOT = Path(__file__).resolve().parents[2]
LINES = (
    ("en-us", "Hello, this is an automated courtesy call about your vehicle warranty."),
    ("en+f3", "Sorry, who is this? I did not ask anyone to call me today."),
    ("cmn", "您好，这里是客服中心，我们有一款低息贷款产品想向您介绍一下。"),
)


def speak(tmp_path: Path, voice: str, text: str) -> np.ndarray:
    """espeak-ng speech, resampled to 16 kHz float32."""
    wav = tmp_path / f"{voice}.wav"
    subprocess.run([ESPEAK, "-v", voice, "-w", str(wav), text], check=True, capture_output=True)
    samples, rate = sf.read(wav, dtype="float32")
    return np.asarray(signal.resample_poly(samples, SR, rate), dtype=np.float32)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[np.ndarray]:
    if ESPEAK is None:
        pytest.skip("espeak-ng is not installed")
    folder = tmp_path_factory.mktemp("speech")
    return [speak(folder, voice, text) for voice, text in LINES]


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("ROBOCALL_CACHE_DIR", str(tmp_path / "cache"))
    load_ge2e.cache_clear()
    yield tmp_path / "cache"
    load_ge2e.cache_clear()


@needs_espeak
def test_mel_matches_resemblyzer(clips: list[np.ndarray], rng: np.random.Generator) -> None:
    from resemblyzer.audio import wav_to_mel_spectrogram

    # the last clip spans more than one block of STFT frames (4096 frames, ~41 s)
    long = np.concatenate([*clips, 0.05 * rng.standard_normal(42 * SR).astype(np.float32)])
    for x in [*clips, long]:
        ours, theirs = mel_spectrogram(x), wav_to_mel_spectrogram(x)
        assert ours.shape == theirs.shape == (1 + x.size // HOP, 40)
        assert ours.dtype == np.float32
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5 * float(theirs.max()))


@needs_espeak
def test_embeddings_match_the_voice_encoder(clips: list[np.ndarray], fresh_cache: Path) -> None:
    from resemblyzer import VoiceEncoder

    ours = load_ge2e()
    reference = VoiceEncoder(device="cpu", verbose=False)
    for x in clips:
        x = x * (10 ** (-30 / 20) / float(np.sqrt(np.mean(x**2))))  # -30 dBFS, as diarize does
        mel = mel_spectrogram(x)
        windows = np.stack([mel[s : s + 100] for s in range(0, len(mel) - 100, 100)])
        got = ours(windows)
        with torch.no_grad():
            want = reference(torch.from_numpy(windows)).numpy()
        assert got.shape == (len(windows), 256) and got.dtype == np.float32
        np.testing.assert_allclose(got, want, atol=1e-4)
        assert float(np.min(np.sum(got * want, axis=1))) > 0.9999
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-5)
        assert float(got.min()) >= 0.0  # ReLU before the norm


def test_cache_is_keyed_by_the_checkpoint_and_stale_entries_are_rebuilt(
    fresh_cache: Path,
) -> None:
    first = load_ge2e()
    (entry,) = fresh_cache.glob("ge2e-*.npz")
    assert entry.name == f"ge2e-{first.sha256[:16]}.npz"
    with np.load(entry) as data:
        arrays = {k: data[k] for k in data.files}
    np.savez(entry, **{**arrays, "source_sha256": np.array("0" * 64)})
    load_ge2e.cache_clear()
    rebuilt = load_ge2e()
    with np.load(entry) as data:
        assert str(data["source_sha256"]) == rebuilt.sha256 == first.sha256
        assert int(data["format"]) == CACHE_FORMAT
    for (a, b, c), (d, e, f) in zip(first.layers, rebuilt.layers, strict=True):
        assert np.array_equal(a, d) and np.array_equal(b, e) and np.array_equal(c, f)


def test_weights_path_finds_the_wheel_file_without_importing_it() -> None:
    path = weights_path()
    assert path.name == "pretrained.pt" and path.is_file()


PROBE = """
import json, sys
import numpy as np
from models.diarize import TwoPartyDiarizer, load_voice_encoder
mix = np.load(sys.argv[1])
turns = TwoPartyDiarizer()(mix)
print(json.dumps({"encoder_loaded": load_voice_encoder.cache_info().currsize,
                  "caller_s": sum(b - a for a, b in turns.caller),
                  "imported": sorted(m for m in ("torch", "librosa.feature", "resemblyzer")
                                     if m in sys.modules)}))
"""


@needs_espeak
def test_a_cached_encoder_diarizes_without_torch_or_librosa_feature(
    clips: list[np.ndarray], fresh_cache: Path, tmp_path: Path
) -> None:
    load_ge2e()  # builds the cache (this process may import torch; the next one must not)
    gap = np.zeros(SR // 2, np.float32)
    mix = np.concatenate([clips[0], gap, clips[1], gap, clips[0], gap, clips[1]])
    np.save(tmp_path / "mix.npy", mix)
    env = {**os.environ, "ROBOCALL_CACHE_DIR": str(fresh_cache)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "mix.npy")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["encoder_loaded"] == 1 and report["caller_s"] > 0
    assert report["imported"] == []
