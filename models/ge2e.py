"""Resemblyzer's GE2E speaker encoder run in NumPy, so mono diarisation starts cheaply (issue 17).

The two-party diarizer (:mod:`models.diarize`) embeds one-second windows with the GE2E encoder
(Wan et al. 2018) that ships inside the ``resemblyzer`` wheel (``pretrained.pt``, Apache-2.0):
a 3-layer LSTM (40 mel bands -> 256), a 256 -> 256 linear layer, ReLU and L2 normalisation of
the last hidden state. Run through ``resemblyzer`` itself, its first use in a process cost
~2.4 s: importing torch (~1.05 s), importing ``librosa.feature`` whose numba kernels compile at
import (~1.09 s) for the mel spectrogram, and the embeddings (~0.24 s). Here:

- the mel front end is NumPy plus ``librosa.filters.mel``'s matrix, cached on disk by
  :mod:`pipeline.melbank` (so a warm process never imports librosa), computing what
  ``resemblyzer.audio.wav_to_mel_spectrogram`` does: power (not log) mel energies, 40 Slaney
  bands, 400-sample (25 ms) periodic-Hann frames every 160 samples (10 ms) at 16 kHz, centred
  (200 zeros of padding at each end);
- the LSTM is a NumPy loop over frames whose weights are read from ``pretrained.pt`` with torch
  once and cached as ``.npz`` under ``ROBOCALL_CACHE_DIR`` keyed by the checkpoint's sha256
  (as :mod:`models.loading` caches converted Whisper weights), so later processes never import
  torch.

``tests/models/test_ge2e.py`` checks both against ``resemblyzer`` on speech.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import ModelNotAvailableError
from pipeline.files import atomic_path, cache_dir
from pipeline.melbank import mel_filterbank

log = logging.getLogger(__name__)

SAMPLE_RATE_HZ = 16_000
N_FFT = 400  # 25 ms frames at 16 kHz
HOP = 160  # 10 ms
MEL_BANDS = 40
HIDDEN = 256  # LSTM width and embedding size
LAYERS = 3
CACHE_FORMAT = 1  # bump when the cached arrays change meaning
_BLOCK_FRAMES = 4096  # STFT frames per block: bounds memory on 30-minute calls


@functools.cache
def _hann() -> np.ndarray:
    """Periodic Hann window (the STFT convention, as ``scipy.signal.get_window`` gives)."""
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)


@functools.cache
def _mel_bank() -> np.ndarray:
    bank = mel_filterbank(sample_rate_hz=SAMPLE_RATE_HZ, n_fft=N_FFT, n_mels=MEL_BANDS)
    return np.asarray(bank, dtype=np.float64)


def mel_spectrogram(samples: np.ndarray) -> np.ndarray:
    """Power mel spectrogram as GE2E was trained on it.

    Parameters
    ----------
    samples : np.ndarray [shape=(n,)], float at 16 kHz

    Returns
    -------
    np.ndarray [shape=(1 + n // 160, 40)], float32
        Mel-band power of centred 25 ms frames every 10 ms (not in dB).
    """
    pad = N_FFT // 2
    y = np.pad(np.asarray(samples, dtype=np.float64), (pad, pad))
    frames = np.lib.stride_tricks.sliding_window_view(y, N_FFT)[::HOP]
    bank = _mel_bank()
    out = np.empty((len(frames), MEL_BANDS), dtype=np.float32)
    for i in range(0, len(frames), _BLOCK_FRAMES):
        spec = np.fft.rfft(frames[i : i + _BLOCK_FRAMES] * _hann(), axis=1)
        out[i : i + _BLOCK_FRAMES] = (spec.real**2 + spec.imag**2) @ bank.T
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(0.5 * np.tanh(0.5 * x) + 0.5)  # the exact identity; no overflow


@dataclass(frozen=True, slots=True, eq=False)
class Ge2eEncoder:
    """GE2E weights as NumPy arrays; call it on mel windows to get unit speaker embeddings.

    Each LSTM layer holds its input and recurrent weights transposed (``(in, 4H)``, ``(H, 4H)``)
    and the two biases summed, with the gate blocks reordered from torch's (input, forget, cell,
    output) to (input, forget, output, cell) so one sigmoid covers the first three.
    """

    layers: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]  # (w_in, w_rec, bias) each
    linear_w: np.ndarray  # (256, 256), transposed: embedding = relu(h @ linear_w + linear_b)
    linear_b: np.ndarray  # (256,)
    sha256: str  # of the source pretrained.pt

    def __call__(self, mels: np.ndarray) -> np.ndarray:
        """Embed a batch of mel windows.

        Parameters
        ----------
        mels : np.ndarray [shape=(batch, frames, 40)], float32, from :func:`mel_spectrogram`

        Returns
        -------
        np.ndarray [shape=(batch, 256)], float32, unit L2 norm, non-negative
        """
        from threadpoolctl import threadpool_limits

        # One BLAS thread: the recurrence is ~300 small matrix products, each too short to share;
        # with OpenBLAS's default (one thread per core) 100 windows took 18.5 s instead of 1.4 s
        # on the shared 2-core machine (load average ~28).
        with threadpool_limits(limits=1, user_api="blas"):
            return self._embed(np.asarray(mels, dtype=np.float32))

    def _embed(self, x: np.ndarray) -> np.ndarray:
        h = np.zeros((x.shape[0], HIDDEN), dtype=np.float32)
        for depth, (w_in, w_rec, bias) in enumerate(self.layers):
            gates_in = x @ w_in + bias  # every frame's input term at once: (batch, frames, 4H)
            last = depth == len(self.layers) - 1
            seq = None if last else np.empty((x.shape[0], x.shape[1], HIDDEN), np.float32)
            h = np.zeros((x.shape[0], HIDDEN), dtype=np.float32)
            c = np.zeros_like(h)
            for t in range(x.shape[1]):
                gates = gates_in[:, t] + h @ w_rec
                i, f, o = np.split(_sigmoid(gates[:, : 3 * HIDDEN]), 3, axis=1)
                c = f * c + i * np.tanh(gates[:, 3 * HIDDEN :])
                h = o * np.tanh(c)
                if seq is not None:
                    seq[:, t] = h
            if seq is not None:
                x = seq
        emb = np.maximum(h @ self.linear_w + self.linear_b, 0.0)
        norm = np.linalg.norm(emb, axis=1, keepdims=True)
        return np.asarray(emb / np.maximum(norm, 1e-12), dtype=np.float32)


def weights_path() -> Path:
    """``pretrained.pt`` inside the installed ``resemblyzer`` package, found without importing it
    (its ``__init__`` imports torch).

    Raises
    ------
    ModelNotAvailableError
        ``resemblyzer`` is not installed or lacks the file.
    """
    spec = importlib.util.find_spec("resemblyzer")
    locations = list(spec.submodule_search_locations or []) if spec else []
    path = Path(locations[0]) / "pretrained.pt" if locations else None
    if path is None or not path.is_file():
        raise ModelNotAvailableError(
            "mono diarisation needs the resemblyzer package (pip install resemblyzer "
            "webrtcvad-wheels): its GE2E weights ship inside the wheel"
        )
    return path


def _gate_order(rows: np.ndarray) -> np.ndarray:
    """torch's (i, f, g, o) gate blocks along axis 0 -> (i, f, o, g)."""
    i, f, g, o = np.split(rows, 4, axis=0)
    return np.concatenate([i, f, o, g], axis=0)


def _convert(source: Path, digest: str, target: Path) -> None:
    """Read the LSTM and linear weights with torch (first use only) and save them as ``.npz``."""
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ModelNotAvailableError(
            "the first mono diarisation converts Resemblyzer's weights with torch "
            "(pip install torch); later runs read the cached copy"
        ) from exc
    state = torch.load(source, map_location="cpu", weights_only=True)["model_state"]
    arrays: dict[str, np.ndarray] = {}
    for k in range(LAYERS):
        w_in = state[f"lstm.weight_ih_l{k}"].numpy()
        w_rec = state[f"lstm.weight_hh_l{k}"].numpy()
        bias = (state[f"lstm.bias_ih_l{k}"] + state[f"lstm.bias_hh_l{k}"]).numpy()
        arrays[f"w_in_{k}"] = np.ascontiguousarray(_gate_order(w_in).T)
        arrays[f"w_rec_{k}"] = np.ascontiguousarray(_gate_order(w_rec).T)
        arrays[f"bias_{k}"] = _gate_order(bias)
    arrays["linear_w"] = np.ascontiguousarray(state["linear.weight"].numpy().T)
    arrays["linear_b"] = state["linear.bias"].numpy()
    arrays["source_sha256"] = np.array(digest)
    arrays["format"] = np.array(CACHE_FORMAT)
    with atomic_path(target, suffix=".tmp.npz") as tmp:
        np.savez(tmp, allow_pickle=False, **arrays)
    log.info("cached GE2E weights as %s (pretrained.pt sha256 %s)", target, digest[:16])


@functools.cache
def load_ge2e(path: Path | None = None) -> Ge2eEncoder:
    """The GE2E encoder from ``path`` (default: :func:`weights_path`), via the ``.npz`` cache.

    The first call for a given checkpoint converts it with torch and writes
    ``$ROBOCALL_CACHE_DIR/ge2e-<sha256[:16]>.npz``; later calls, in any process, read that file
    (NumPy only). A cache entry whose recorded sha256 or format differs is rebuilt.

    Raises
    ------
    ModelNotAvailableError
        No ``resemblyzer`` package (or no torch for the first conversion).
    """
    source = path or weights_path()
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    target = cache_dir() / f"ge2e-{digest[:16]}.npz"
    encoder = _read(target, digest)
    if encoder is None:
        _convert(source, digest, target)
        encoder = _read(target, digest)
    if encoder is None:  # pragma: no cover - only if the cache directory misbehaves
        raise ModelNotAvailableError(f"could not read back the GE2E weights cached at {target}")
    return encoder


def _read(target: Path, digest: str) -> Ge2eEncoder | None:
    """The cached encoder, or None when absent or made from another checkpoint or format."""
    if not target.is_file():
        return None
    with np.load(target) as data:
        if str(data["source_sha256"]) != digest or int(data["format"]) != CACHE_FORMAT:
            return None
        layers = tuple(
            (data[f"w_in_{k}"], data[f"w_rec_{k}"], data[f"bias_{k}"]) for k in range(LAYERS)
        )
        return Ge2eEncoder(layers, data["linear_w"], data["linear_b"], digest)
