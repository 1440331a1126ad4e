"""The notice helper of bench/prompt_index_crops.py (the bench itself reads the simulated calls)."""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import soundfile as sf

from tests.bench.support import load_bench

B = load_bench("prompt_index_crops")
SR = 16_000


def _flac(x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, SR, format="FLAC")
    return buf.getvalue()


def test_the_notice_leads_the_callers_channel_only() -> None:
    rng = np.random.default_rng(0)
    call = (0.1 * rng.standard_normal((SR, 2))).astype(np.float32)
    notice = (0.2 * rng.standard_normal(SR // 2)).astype(np.float32)
    row = SimpleNamespace(extra=(("caller_channel", "1"),))
    out, rate = sf.read(io.BytesIO(B.with_notice(_flac(call), row, notice)), always_2d=True)
    lead = notice.size + int(B.NOTICE_GAP_S * SR)
    assert rate == SR and out.shape == (lead + SR, 2)
    np.testing.assert_allclose(out[: notice.size, 1], notice, atol=1e-4)
    assert not np.any(out[:lead, 0]) and not np.any(out[notice.size : lead, 1])
    np.testing.assert_allclose(out[lead:], call, atol=1e-4)


def test_a_mono_call_gets_the_notice_on_its_one_channel() -> None:
    call = np.full((SR, 1), 0.05, np.float32)
    notice = np.full(SR // 4, 0.1, np.float32)
    row = SimpleNamespace(extra=(("caller_channel", "0"),))
    out, _ = sf.read(io.BytesIO(B.with_notice(_flac(call), row, notice)), always_2d=True)
    assert out.shape[1] == 1
    np.testing.assert_allclose(out[: notice.size, 0], notice, atol=1e-4)
