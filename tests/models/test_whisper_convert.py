"""Our CT2 -> openai-whisper converter against CTranslate2 itself, on a tiny random Whisper.

The reference is independent of our code: transformers builds the network, CTranslate2's own
``TransformersConverter`` writes ``model.bin``, CTranslate2's C++ runtime runs it. Our reader and
mapping must then make openai-whisper compute the same encoder states and decoder logits.

Tolerance: both sides compute in float32 on the same weights (float16 weights are widened by both),
so only summation order differs. Measured max |diff| is ~3e-6 for activations of magnitude ~5;
``ATOL = 1e-4`` leaves a 30x margin and still catches any mis-mapped tensor (those give O(1)).
"""

from __future__ import annotations

import json
import struct
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from models.whisper_convert import (
    CHECKPOINT_FORMAT,
    ConversionError,
    convert_ct2_whisper,
    convert_to_file,
    read_ct2_model,
)
from tests.models.support import TINY_DIMS, TinyCt2

ctranslate2 = pytest.importorskip("ctranslate2")
torch = pytest.importorskip("torch")
whisper_model = pytest.importorskip("whisper.model")

ATOL = 1e-4
SOT_PROMPT = [
    50258,
    50260,
    50359,
    50363,
]  # <|startoftranscript|><|zh|><|transcribe|><|notimestamps|>


def load_openai(model_dir: Path) -> tuple[object, dict[str, int]]:
    config = json.loads((model_dir / "config.json").read_text())
    converted = convert_ct2_whisper(
        read_ct2_model((model_dir / "model.bin").read_bytes()),
        alignment_heads=config["alignment_heads"],
    )
    model = whisper_model.Whisper(whisper_model.ModelDimensions(**converted.dims))
    model.load_state_dict(converted.state_dict, strict=True)
    return model.eval(), converted.dims


@pytest.fixture(scope="module")
def mel() -> np.ndarray:
    # Log-mel-like values (Whisper's features lie in about [-1, 1.5]); random is enough here.
    return (np.random.default_rng(7).standard_normal((1, 80, 3000)) * 0.5).astype(np.float32)


def test_reader_sees_the_layout_ctranslate2_writes(tiny_ct2_f16: Path) -> None:
    ct2 = read_ct2_model((tiny_ct2_f16 / "model.bin").read_bytes())
    assert (ct2.binary_version, ct2.spec_name, ct2.spec_revision) == (6, "WhisperSpec", 3)
    assert ct2.aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}
    d = TINY_DIMS["d_model"]
    assert ct2.variables["encoder/layer_0/self_attention/linear_0/weight"].shape == (3 * d, d)
    assert ct2.variables["decoder/layer_0/attention/linear_1/weight"].shape == (2 * d, d)
    assert ct2.variables["encoder/conv1/weight"].dtype == np.float16
    assert int(ct2.variables["encoder/num_heads"]) == TINY_DIMS["heads"]


def test_encoder_and_decoder_match_ctranslate2(tiny_ct2: TinyCt2, mel: np.ndarray) -> None:
    model, dims = load_openai(tiny_ct2.path)
    assert dims["n_audio_layer"] == dims["n_text_layer"] == TINY_DIMS["layers"]
    assert dims["n_vocab"] == 51865 and dims["n_mels"] == 80
    reference = ctranslate2.models.Whisper(str(tiny_ct2.path), compute_type="float32")

    ct2_states = np.asarray(reference.encode(ctranslate2.StorageView.from_array(mel), to_cpu=True))
    with torch.inference_mode():
        states = model.encoder(torch.from_numpy(mel))
    np.testing.assert_allclose(states.numpy(), ct2_states, rtol=0, atol=ATOL)

    result = reference.generate(
        ctranslate2.StorageView.from_array(mel),
        [SOT_PROMPT],
        beam_size=1,
        max_length=6,
        return_logits_vocab=True,
        suppress_blank=False,
        suppress_tokens=[],
    )[0]
    generated = result.sequences_ids[0]
    assert generated, "CTranslate2 generated nothing to compare"
    tokens = torch.tensor([SOT_PROMPT + generated])
    with torch.inference_mode():
        logits = model.decoder(tokens, states)[0].numpy()
    for step, ct2_logits in enumerate(result.logits[0]):
        ours = logits[len(SOT_PROMPT) - 1 + step]
        np.testing.assert_allclose(ours, np.asarray(ct2_logits), rtol=0, atol=ATOL)
        if step < len(generated):
            assert int(ours.argmax()) == generated[step]


def test_every_ct2_variable_must_be_used(tiny_ct2_f16: Path) -> None:
    ct2 = read_ct2_model((tiny_ct2_f16 / "model.bin").read_bytes())
    extra = replace(ct2, variables={**ct2.variables, "encoder/extra/weight": np.zeros(3)})
    with pytest.raises(ConversionError, match="not mapped.*encoder/extra/weight"):
        convert_ct2_whisper(extra)


def test_every_openai_parameter_must_be_filled(tiny_ct2_f16: Path) -> None:
    ct2 = read_ct2_model((tiny_ct2_f16 / "model.bin").read_bytes())
    name = "decoder/layer_1/attention/linear_2/bias"
    missing = replace(ct2, variables={k: v for k, v in ct2.variables.items() if k != name})
    with pytest.raises(ConversionError, match=f"{name} is missing"):
        convert_ct2_whisper(missing)


def test_untied_projection_and_wrong_flags_are_refused(tiny_ct2_f16: Path) -> None:
    ct2 = read_ct2_model((tiny_ct2_f16 / "model.bin").read_bytes())
    embedding = ct2.variables["decoder/embeddings/weight"]
    untied = replace(
        ct2,
        variables={**ct2.variables, "decoder/projection/weight": embedding + np.float16(1)},
        aliases={},
    )
    with pytest.raises(ConversionError, match="not tied"):
        convert_ct2_whisper(untied)
    relu = replace(ct2, variables={**ct2.variables, "decoder/activation": np.int8(0)})
    with pytest.raises(ConversionError, match="decoder/activation"):
        convert_ct2_whisper(relu)


def test_quantized_export_is_refused(tiny_hf_dir: Path, tmp_path: Path) -> None:
    ctranslate2.converters.TransformersConverter(str(tiny_hf_dir)).convert(
        str(tmp_path / "int8"), quantization="int8"
    )
    ct2 = read_ct2_model((tmp_path / "int8" / "model.bin").read_bytes())
    with pytest.raises(ConversionError, match="quantized"):
        convert_ct2_whisper(ct2)


def test_bad_binaries_are_refused(tiny_ct2_f16: Path) -> None:
    data = (tiny_ct2_f16 / "model.bin").read_bytes()
    with pytest.raises(ConversionError, match="version 5"):
        read_ct2_model(struct.pack("<I", 5) + data[4:])
    for cut in (3, 40, len(data) // 2):  # inside the header, a name, a tensor
        with pytest.raises(ConversionError, match="truncated|malformed"):
            read_ct2_model(data[:cut])
    with pytest.raises(ConversionError, match="trailing"):
        read_ct2_model(data + b"\0")


def test_checkpoint_is_what_whisper_load_model_reads(tiny_ct2_f16: Path, tmp_path: Path) -> None:
    import whisper

    config = json.loads((tiny_ct2_f16 / "config.json").read_text())
    path = convert_to_file(
        (tiny_ct2_f16 / "model.bin").read_bytes(),
        source_sha256="ab" * 32,
        config=config,
        path=tmp_path / "cache" / "tiny.pt",
    )
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    assert checkpoint["format"] == CHECKPOINT_FORMAT
    assert checkpoint["source_sha256"] == "ab" * 32
    assert checkpoint["alignment_heads"] == config["alignment_heads"]
    assert all(t.dtype == torch.float32 for t in checkpoint["model_state_dict"].values())
    model = whisper.load_model(str(path), device="cpu")  # openai-whisper's own loader
    assert model.dims.n_text_state == TINY_DIMS["d_model"]
    assert not list(path.parent.glob("*.tmp"))
