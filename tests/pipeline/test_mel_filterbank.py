"""The acoustic cues' mel filterbank (librosa) equals the hand-written HTK one it replaced."""

from __future__ import annotations

import math

import numpy as np

from pipeline import acoustic as A


def _old_mel_filterbank() -> np.ndarray:
    # The formula pipeline/acoustic.py used until issue 10, kept as the reference.
    lo_mel, hi_mel = (2595.0 * math.log10(1.0 + hz / 700.0) for hz in A.BAND_HZ)
    edges_mel = np.linspace(lo_mel, hi_mel, A.N_MELS + 2)
    edges_hz = 700.0 * (10.0 ** (edges_mel / 2595.0) - 1.0)
    freqs = np.fft.rfftfreq(A.N_FFT, 1.0 / A.RATE_HZ)
    lo, mid, hi = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    tri = np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid))
    return np.maximum(tri, 0.0).astype(np.float32)


def test_librosa_mel_matches_the_old_formula() -> None:
    bank = A._mel_filterbank()
    assert bank.dtype == np.float32 and bank.shape == (A.N_MELS, A.N_FFT // 2 + 1)
    np.testing.assert_allclose(bank, _old_mel_filterbank(), rtol=0, atol=1e-6)
