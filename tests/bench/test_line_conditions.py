"""The pure helpers of bench/line_conditions.py (the bench itself reads the simulated calls)."""

from __future__ import annotations

import numpy as np
import pytest

from models.training.corpus import CorpusRow
from pipeline.hum import hum_lines
from tests.bench.support import load_bench

B = load_bench("line_conditions")


def test_the_hum_is_mains_with_its_harmonics_at_the_level_asked_for() -> None:
    x = B.hum(10 * B.SR, level_dbfs=-45.0, seed=7)
    assert x.dtype == np.float32 and x.size == 10 * B.SR
    power = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(x.size, 1 / B.SR)
    fundamental = freqs[np.argmax(power)]
    assert min(abs(fundamental - 50.0), abs(fundamental - 60.0)) <= B.DRIFT_HZ + 0.1
    # the fundamental's RMS is the level asked for (full-scale sine: -3 dBFS)
    near = np.abs(freqs - fundamental) < 1.0
    rms = np.sqrt(2 * power[near].sum()) / x.size
    assert 20 * np.log10(rms) == pytest.approx(-45.0, abs=0.5)
    found = hum_lines(x + np.random.default_rng(0).normal(0, 1e-4, x.size).astype(np.float32))
    assert found is not None and found[0] == pytest.approx(fundamental, abs=0.1)
    assert np.array_equal(x, B.hum(10 * B.SR, level_dbfs=-45.0, seed=7))


def test_a_call_is_matched_to_its_wideband_copy_by_its_id_without_the_variant() -> None:
    def row(id_: str) -> CorpusRow:
        return CorpusRow(
            id=id_, path="x.flac", root="cache", label="human", kind="call_human_agent",
            language="en", speaker="s", engine="", engine_family="", source="calls",
            group_id="g", campaign="", split="test", duration_s=1.0, orig_sr_hz=16_000,
            licence="",
        )  # fmt: skip

    assert B.call_key(row("calls/stereo/en/human_agent/test/0003")) == B.call_key(
        row("calls_wideband/stereo/en/human_agent/test/0003")
    )
