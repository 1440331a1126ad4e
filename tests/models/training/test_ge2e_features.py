"""GE2E blocks of the head's windows: the statistics, the recomputed windows and their cache,
with a stand-in encoder (the real one is checked against Resemblyzer: tests/models/test_ge2e.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.synth_head import cut, speech_windows
from models.training.corpus import CorpusRow, read_clip, resolve_path, write_clip
from models.training.ge2e_features import (
    BLOCK_WIDTHS,
    GE2E_DIM,
    ge2e_only,
    row_stats,
    window_stats,
    with_ge2e,
)
from models.training.synth_config import TrainConfig
from models.training.synth_data import ClipFeatures, telephone_windows
from pipeline.telephone import call_channel
from tests.models.support import corpus_row

SR = 16_000
WIDTH = GE2E_DIM + BLOCK_WIDTHS["ge2e_spread"]


class SpectrumVoice:
    """A GE2E stand-in: each window's mean mel spectrum, zero-padded to 256 and normalised, so
    a change of tone is a change of "voice"."""

    sha256 = "0123456789abcdef" * 4

    def __init__(self) -> None:
        self.windows = 0

    def __call__(self, mels: np.ndarray) -> np.ndarray:
        self.windows += len(mels)
        v = np.zeros((len(mels), GE2E_DIM), dtype=np.float32)
        v[:, : mels.shape[2]] = np.sqrt(mels.mean(axis=1))
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def syllables(tones_hz: list[float], rng: np.random.Generator) -> np.ndarray:
    """0.75 s tones with a 3 % vibrato (a steady one is a telephone tone, which the VAD leaves
    out), each followed by 0.25 s of faint noise (so the VAD hears pauses)."""
    t = np.arange(int(0.75 * SR)) / SR
    parts = []
    for f in tones_hz:
        phase = 2 * np.pi * np.cumsum(f * (1 + 0.03 * np.sin(2 * np.pi * 5 * t))) / SR
        parts += [0.3 * np.sin(phase), rng.normal(0, 1e-3, SR // 4)]
    return np.concatenate(parts).astype(np.float32)


def test_window_stats_one_steady_voice_has_no_spread(rng: np.random.Generator) -> None:
    voice = SpectrumVoice()
    x = window_stats(syllables([440.0] * 6, rng), encoder=voice)
    assert x.shape == (WIDTH,) and voice.windows >= 4
    assert np.isclose(np.linalg.norm(x[:GE2E_DIM]), 1.0)
    assert x[GE2E_DIM] < 0.02 and x[GE2E_DIM + 1] < 0.02


def test_window_stats_a_changing_voice_spreads_and_drifts(rng: np.random.Generator) -> None:
    steady = window_stats(syllables([440.0] * 6, rng), encoder=SpectrumVoice())
    changing = window_stats(syllables([440.0, 1500.0] * 3, rng), encoder=SpectrumVoice())
    assert changing[GE2E_DIM] > steady[GE2E_DIM] + 0.05
    assert changing[GE2E_DIM + 1] > steady[GE2E_DIM + 1] + 0.05


def test_window_stats_under_a_second_is_one_window(rng: np.random.Generator) -> None:
    voice = SpectrumVoice()
    x = window_stats(syllables([440.0], rng)[: SR // 2], encoder=voice)
    assert voice.windows == 1 and x[GE2E_DIM] == pytest.approx(0.0, abs=1e-6)
    assert x[GE2E_DIM + 1] == 0.0


@pytest.fixture
def clip_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rng: np.random.Generator
) -> CorpusRow:
    monkeypatch.setenv("ROBOCALL_CACHE_DIR", str(tmp_path / "cache"))
    row = corpus_row("a", root="cache", path="ge2e/a.flac", duration_s=10.0)
    write_clip(resolve_path(row), syllables([440.0, 700.0] * 5, rng), sample_rate_hz=SR)
    return row


def test_row_stats_recompute_the_telephone_crop_and_cache_it(clip_row: CorpusRow) -> None:
    cfg = TrainConfig()
    crops = telephone_windows(read_clip(resolve_path(clip_row)), clip_row, cfg)
    windows = np.asarray([w for w, _ in crops])
    voice = SpectrumVoice()
    got, x = row_stats(clip_row, path="telephone", windows=windows, cfg=cfg, encoder=voice)
    assert x.shape == (1, WIDTH) and np.array_equal(got, windows)
    np.testing.assert_allclose(x[0], window_stats(crops[0][1], encoder=SpectrumVoice()))
    used = voice.windows
    _, again = row_stats(clip_row, path="telephone", windows=windows, cfg=cfg, encoder=voice)
    assert voice.windows == used  # read from the cache
    np.testing.assert_array_equal(again, x)
    own, _ = row_stats(clip_row, path="telephone", windows=None, cfg=cfg, encoder=voice)
    assert voice.windows == used and np.array_equal(own, windows)  # the crop is the path's own
    with pytest.raises(ValueError, match="not the cached one"):
        row_stats(clip_row, path="telephone", windows=windows + 0.5, cfg=cfg, encoder=voice)


def test_row_stats_and_with_ge2e_on_the_call_path(clip_row: CorpusRow) -> None:
    cfg = TrainConfig()
    windows = np.asarray([[0.0, 3.8], [4.0, 7.8]])
    _, x = row_stats(clip_row, path="inference", windows=windows, cfg=cfg, encoder=SpectrumVoice())
    y = call_channel(read_clip(resolve_path(clip_row)))
    np.testing.assert_allclose(
        x[1], window_stats(cut(y, (4.0, 7.8)), encoder=SpectrumVoice()), rtol=1e-6
    )
    head = {clip_row.id: ClipFeatures(clip_row.id, windows, np.ones((2, 3)))}
    got = with_ge2e(head, [clip_row], path="inference", cfg=cfg, encoder=SpectrumVoice())
    assert got[clip_row.id].x.shape == (2, 3 + WIDTH)
    np.testing.assert_array_equal(got[clip_row.id].x[:, :3], 1.0)
    np.testing.assert_allclose(got[clip_row.id].x[:, 3:], x)


def test_ge2e_only_takes_each_path_s_own_windows(clip_row: CorpusRow) -> None:
    cfg = TrainConfig()
    silent = corpus_row("quiet", root="cache", path="ge2e/quiet.flac")
    write_clip(resolve_path(silent), np.zeros(3 * SR, dtype=np.float32), sample_rate_hz=SR)
    voice = SpectrumVoice()
    call = ge2e_only([clip_row, silent], path="inference", cfg=cfg, encoder=voice)
    assert set(call) == {clip_row.id}  # no speech, no row
    y = call_channel(read_clip(resolve_path(clip_row)))
    np.testing.assert_allclose(call[clip_row.id].windows, speech_windows(y))
    assert call[clip_row.id].x.shape == (len(speech_windows(y)), WIDTH)
    tel = ge2e_only([clip_row], path="telephone", cfg=cfg, encoder=voice)
    assert tel[clip_row.id].x.shape == (1, WIDTH)
