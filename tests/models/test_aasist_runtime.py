"""AASIST as an ONNX graph (issue 12's cost): same embedding as torch, cached, and torch-free.

The shipped head's scores on the bundled examples through the graph are pinned against the same
head fed by the torch model (|delta log-odds| < 1e-3); that test needs the real Whisper base and
AASIST weights (``slow``) and skips without them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from models import aasist, aasist_runtime
from models.aasist_runtime import AasistSource
from pipeline.errors import ModelNotAvailableError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir() if p.suffix in {".mp3", ".amr", ".m4a"})


@pytest.fixture(scope="module")
def random_source(tmp_path_factory: pytest.TempPathFactory) -> AasistSource:
    torch.manual_seed(3)
    path = tmp_path_factory.mktemp("aasist") / "random.pth"
    torch.save(aasist.Aasist().state_dict(), path)
    return AasistSource(path, None, "test==0")


def _ramp_tone(n: int) -> np.ndarray:
    t = np.arange(n) / 16_000
    return (np.sin(2 * np.pi * 180 * t) * np.linspace(0.1, 1.0, n)).astype(np.float32)


def test_graph_embeds_the_middle_window_as_torch_does(random_source: AasistSource) -> None:
    embedder = aasist_runtime.load_embedder(random_source, export=aasist.export_checked_graph)
    model = aasist.load_aasist_from(random_source)
    samples = _ramp_tone(3 * aasist_runtime.WINDOW_SAMPLES)
    vector = embedder.embed(samples)
    assert vector.shape == (aasist_runtime.EMBED_DIM,) and vector.dtype == np.float32
    middle = aasist_runtime.clip_windows(samples)[1:2]  # three windows: the middle one
    expected = aasist.window_embeddings(model, middle)[0]
    np.testing.assert_allclose(vector, expected, rtol=1e-4, atol=1e-5)
    digest = aasist_runtime.file_sha256(random_source.path)
    assert embedder.model_id == aasist_runtime.embedder_id(digest)
    assert model.training is False  # the export left the torch model in eval mode


def test_second_load_reads_the_cache_and_a_bad_cache_is_rebuilt(
    random_source: AasistSource,
) -> None:
    exports: list[AasistSource] = []

    def counting(source: AasistSource) -> bytes:
        exports.append(source)
        return aasist.export_checked_graph(source)

    first = aasist_runtime.load_embedder(random_source, export=counting)
    path = aasist_runtime.graph_path(aasist_runtime.file_sha256(random_source.path))
    assert path.is_file()
    exports.clear()  # the first load exported unless the test above had cached the graph
    samples = _ramp_tone(20_000)
    again = aasist_runtime.load_embedder(random_source, export=counting)
    assert exports == []
    np.testing.assert_array_equal(again.embed(samples), first.embed(samples))
    path.write_bytes(b"not a graph")
    rebuilt = aasist_runtime.load_embedder(random_source, export=counting)
    assert exports == [random_source]
    np.testing.assert_array_equal(rebuilt.embed(samples), first.embed(samples))


def test_cache_key_follows_checkpoint_and_network_code() -> None:
    a, b = aasist_runtime.graph_path("a" * 64), aasist_runtime.graph_path("b" * 64)
    assert a != b and a.parent == b.parent
    assert aasist_runtime.code_digest() in a.name


def test_checkpoint_of_another_sha256_is_refused(random_source: AasistSource) -> None:
    wrong = AasistSource(random_source.path, "0" * 64, "test==1")
    with pytest.raises(ModelNotAvailableError, match="sha256"):
        aasist_runtime.load_embedder(wrong, export=aasist.export_checked_graph)


def _installed() -> AasistSource:
    try:
        return aasist_runtime.packaged_source()
    except ModelNotAvailableError as exc:
        pytest.skip(f"real AASIST weights not installed ({exc})")


@pytest.mark.slow
def test_warm_embedder_loads_without_torch(robocall_cache: Path) -> None:
    from models.loading import load_clip_embedder

    load_clip_embedder.cache_clear()
    _installed()
    load_clip_embedder()  # exports into this test session's cache
    code = (
        "import sys; from models.loading import load_clip_embedder; "
        "e = load_clip_embedder(); e.embed(__import__('numpy').ones(8000, 'float32')); "
        "assert 'torch' not in sys.modules and 'onnx' not in sys.modules, 'imported'"
    )
    env = {**__import__("os").environ, "ROBOCALL_CACHE_DIR": str(robocall_cache)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)


class TorchEmbedder:
    """The head's aasist block as it was computed before the graph: the torch model."""

    def __init__(self, model: aasist.Aasist, model_id: str) -> None:
        self.model, self.model_id = model, model_id

    def embed(self, samples: np.ndarray) -> np.ndarray:
        windows = aasist_runtime.clip_windows(samples, max_windows=aasist_runtime.CLIP_WINDOWS)
        torch.set_num_threads(1)
        return np.asarray(aasist.window_embeddings(self.model, windows).mean(axis=0), np.float32)


@pytest.mark.slow
def test_shipped_head_scores_the_examples_as_with_torch() -> None:
    from models.loading import load_clip_embedder, load_synth_encoder, load_synth_head_from
    from models.synth_head import LogisticHead
    from pipeline.audio import load_audio
    from pipeline.config import AudioLimits

    weights = ROOT / "models" / "weights" / "synth_head.npz"
    if not weights.is_file() or "aasist" not in LogisticHead.load(weights).spec.blocks:
        pytest.skip("the committed head has no aasist block")
    source = _installed()
    try:
        encoder = load_synth_encoder()
    except ModelNotAvailableError as exc:
        pytest.skip(str(exc))
    graph = load_clip_embedder()
    old = TorchEmbedder(aasist.load_aasist_from(source), graph.model_id)
    by_graph = load_synth_head_from(weights, encoder=encoder, embedder=graph)
    by_torch = load_synth_head_from(weights, encoder=encoder, embedder=old)
    assert EXAMPLES
    for path in EXAMPLES:
        caller = load_audio(path, limits=AudioLimits()).caller()
        new, before = by_graph.score(caller), by_torch.score(caller)
        assert new is not None and before is not None, path.name
        assert abs(new.log_odds - before.log_odds) < 1e-3, path.name
        assert len(new.windows) == len(before.windows)
        for (a, b, s), (a0, b0, s0) in zip(new.windows, before.windows, strict=True):
            assert (a, b) == (a0, b0) and abs(s - s0) < 1e-3, path.name
