"""``--device``: "auto" resolves once to CUDA when CTranslate2 sees a GPU, else CPU (the default
and the tested path); the batch passes the device through to the loaded model."""

from __future__ import annotations

import types
from collections.abc import Iterator
from pathlib import Path

import pytest

import models.loading as loading
from pipeline.config import AsrConfig, DetectorConfig

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fresh_resolution() -> Iterator[None]:
    loading.resolve_device.cache_clear()
    yield
    loading.resolve_device.cache_clear()


def _fake_ctranslate2(monkeypatch: pytest.MonkeyPatch, gpus: int) -> list[int]:
    calls: list[int] = []

    def count() -> int:
        calls.append(gpus)
        return gpus

    fake = types.SimpleNamespace(get_cuda_device_count=count)
    monkeypatch.setattr(loading, "_require", lambda name: fake)
    return calls


@pytest.mark.usefixtures("fresh_resolution")
def test_auto_is_cpu_without_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_ctranslate2(monkeypatch, 0)
    assert loading.resolve_device("auto", "faster") == "cpu"
    assert loading.resolve_device("auto", "faster") == "cpu"
    assert len(calls) == 1  # resolved once per process
    assert loading.resolve_compute_type(AsrConfig(), "cpu") == "int8"


@pytest.mark.usefixtures("fresh_resolution")
def test_auto_is_cuda_with_a_gpu_in_float16(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_ctranslate2(monkeypatch, 2)
    assert loading.resolve_device("auto", "faster") == "cuda"
    assert loading.resolve_compute_type(AsrConfig(), "cuda") == "float16"
    # an explicit choice is kept without asking the runtime
    assert loading.resolve_device("cpu", "faster") == "cpu"


def test_the_default_config_asks_for_auto_and_this_machine_gets_cpu() -> None:
    ctranslate2 = pytest.importorskip("ctranslate2")
    assert DetectorConfig().asr.device == "auto"
    if ctranslate2.get_cuda_device_count() == 0:
        assert loading.resolve_device("auto", "faster") == "cpu"


def test_batch_device_flag_reaches_the_config() -> None:
    import argparse

    from service.commands import batch as batch_cmd
    from service.commands.analyze import config_from_args

    parser = argparse.ArgumentParser()
    batch_cmd.register(parser.add_subparsers())
    for device in ("cpu", "cuda", "auto"):
        args = parser.parse_args(["batch", "calls/", "--out", "o.parquet", "--device", device])
        assert config_from_args(args).asr.device == device


@pytest.mark.gpu
@pytest.mark.slow
def test_the_real_detector_runs_on_cuda() -> None:
    from service.batch.analyse import analyse_call
    from service.batch.inputs import CallRecord

    detector = loading.load_detector(DetectorConfig(asr=AsrConfig(device="cuda")))
    row = analyse_call(detector, CallRecord(call_id="r", path=str(ROOT / "examples/robot_zh.amr")))
    assert row["status"] == "ok" and row["transcript"]
