"""The telephone channel removes the recording-chain shortcuts that follow the label.

A deliberately shortcut-laden set is made at test time: both classes share one "speech"
generator, but each class gets its own recording chain (sample rate, bit depth, loudness,
leading/trailing silence, bandwidth), as in the shared data (README "Warnings"). A logistic
regression on chain features alone separates the classes before the channel and is near chance
after it.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pipeline.telephone import ChannelConfig, inference_channel, telephone_channel

N_PER_CLASS = 40


def speech_like(
    rng: np.random.Generator, *, duration_s: float, sr: int, top_hz: float
) -> np.ndarray:
    """Harmonic source with jittered f0, syllable envelope and pauses; harmonics up to top_hz."""
    n = int(duration_s * sr)
    t = np.arange(n) / sr
    knots = max(int(duration_s * 4), 2)
    grid = np.linspace(0, duration_s, knots)
    f0 = rng.uniform(100, 220) * (1 + 0.1 * np.interp(t, grid, rng.standard_normal(knots)))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    top = int(min(top_hz, sr / 2 - 100) / f0.max())  # the same spectrum up to top_hz
    source = sum(np.sin(k * phase) / k for k in range(1, top + 1))
    envelope = np.interp(t, grid, (rng.uniform(0, 1, knots) > 0.25) * rng.uniform(0.3, 1, knots))
    return source * envelope


def recorded(rng: np.random.Generator, *, robot: bool) -> tuple[np.ndarray, int]:
    """One clip as its class's recording chain would deliver it."""
    duration_s = rng.uniform(1.0, 3.0)  # same content distribution for both classes
    if robot:  # wideband TTS: high rate, float32, loud, no leading silence
        sr = int(rng.choice([22_050, 24_000, 44_100]))
        x = speech_like(rng, duration_s=duration_s, sr=sr, top_hz=sr / 2)
        level_dbfs, lead_s, tail_s = rng.uniform(-12, -6), rng.uniform(0, 0.05), 0.02
    else:  # telephone / microphone human: low rate, band-limited, quiet, long silences
        sr = int(rng.choice([8_000, 16_000]))
        x = speech_like(rng, duration_s=duration_s, sr=sr, top_hz=3_800)
        level_dbfs, lead_s, tail_s = rng.uniform(-36, -28), rng.uniform(0.4, 1.2), 0.8
    x = x / np.sqrt(np.mean(x**2)) * 10 ** (level_dbfs / 20)
    x = np.concatenate([np.zeros(int(lead_s * sr)), x, np.zeros(int(tail_s * sr))])
    if robot:
        return x.astype(np.float32), sr
    x = x + rng.standard_normal(x.size) * 10 ** (-66 / 20)  # a faint line-noise floor
    if rng.uniform() < 0.5:
        return np.round(x * 127 + 128).clip(0, 255).astype(np.uint8), sr  # 8-bit
    return np.round(x * 32767).astype(np.int16), sr


def chain_features(samples: np.ndarray, sr: int) -> list[float]:
    """Sample rate, peak, RMS, duration, leading silence and 95 % spectral roll-off."""
    if samples.dtype == np.uint8:
        x = (samples.astype(np.float64) - 128) / 128
    elif samples.dtype == np.int16:
        x = samples / 32768.0
    else:
        x = samples.astype(np.float64)
    hop = sr // 50
    levels = 10 * np.log10(np.mean(x[: x.size // hop * hop].reshape(-1, hop) ** 2, axis=1) + 1e-15)
    lead_s = np.argmax(levels > levels.max() - 20) * hop / sr
    power = np.abs(np.fft.rfft(x)) ** 2
    rolloff_hz = np.searchsorted(np.cumsum(power), 0.95 * power.sum()) * sr / x.size
    return [
        float(sr),
        20 * np.log10(np.abs(x).max() + 1e-12),
        10 * np.log10(np.mean(x**2) + 1e-15),
        x.size / sr,
        lead_s,
        rolloff_hz,
    ]


def cross_validated_auc(features: list[list[float]], labels: np.ndarray) -> float:
    model = make_pipeline(StandardScaler(), LogisticRegression(C=10.0, max_iter=1000))
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    scores = cross_val_predict(model, np.array(features), labels, cv=folds, method="predict_proba")[
        :, 1
    ]
    return float(roc_auc_score(labels, scores))


@pytest.fixture(scope="module")
def shortcut_set() -> tuple[list[tuple[np.ndarray, int]], np.ndarray]:
    rng = np.random.default_rng(20240501)
    labels = np.array([1, 0] * N_PER_CLASS)
    return [recorded(rng, robot=bool(y)) for y in labels], labels


def test_chain_features_separate_the_raw_clips(shortcut_set) -> None:
    clips, labels = shortcut_set
    auc = cross_validated_auc([chain_features(x, sr) for x, sr in clips], labels)
    assert auc >= 0.95


@pytest.mark.parametrize("path", ["training", "inference"])
def test_chain_features_are_near_chance_after_the_channel(shortcut_set, path: str) -> None:
    clips, labels = shortcut_set
    config = ChannelConfig()
    features = []
    for i, (x, sr) in enumerate(clips):
        if path == "training":
            y = telephone_channel(x, sample_rate_hz=sr, rng=np.random.default_rng(i), config=config)
        else:
            y = inference_channel(x, sample_rate_hz=sr)
        features.append(chain_features(y, 16_000))
    auc = cross_validated_auc(features, labels)
    assert abs(auc - 0.5) <= 0.15, auc
