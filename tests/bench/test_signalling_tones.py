"""The pure helpers of bench/signalling_tones.py (the bench itself reads the corpus)."""

from __future__ import annotations

import numpy as np
import pytest

import pipeline.vad
from tests.bench.support import load_bench

B = load_bench("signalling_tones")


def test_a_cadence_is_on_where_its_pattern_says() -> None:
    x, on = B.cadence((450.0,), (1.0, 4.0), 7.0)
    assert on[: B.SR].all() and not on[B.SR : 5 * B.SR].any() and on[5 * B.SR : 6 * B.SR].all()
    assert np.sqrt(np.mean(x[on] ** 2)) == pytest.approx(1.0, abs=0.01)
    assert not x[~on].any()


def test_the_rule_can_be_switched_off_and_comes_back() -> None:
    ring, _ = B.cadence((440.0, 480.0), (2.0, 4.0), 6.0)
    ring *= np.float32(0.1)
    assert pipeline.vad.voiced_intervals(ring) == []
    with B.tone_rule(False):
        assert pipeline.vad.voiced_intervals(ring) != []
    with B.tone_rule(True):
        assert pipeline.vad.voiced_intervals(ring) == []
    assert pipeline.vad.voiced_intervals(ring) == []


def test_ringing_goes_in_front_at_the_clip_s_level_less_6_db() -> None:
    t = np.arange(B.SR) / B.SR
    clip = (0.1 * np.sin(2 * np.pi * 200 * t * (1 + 0.05 * t))).astype(np.float32)
    out = B.ringing_in_front(clip, B.RINGS[1])
    assert out.size == 10 * B.SR + clip.size and np.array_equal(out[-clip.size :], clip)
    on = out[: B.SR]
    level = 20 * np.log10(np.sqrt(np.mean(on**2)))
    assert level == pytest.approx(np.percentile(B.frame_rms_dbfs(clip), 95) - 6.0, abs=0.1)


def test_an_ivr_beep_is_told_from_another_tone() -> None:
    beep, _ = B.cadence((1400.0,), (0.4, 0.1), 0.5)
    other, _ = B.cadence((450.0,), (0.4, 0.1), 0.5)
    frames = np.zeros(25, dtype=bool)
    frames[3:18] = True
    assert B.is_ivr_beep(beep, frames) and not B.is_ivr_beep(other, frames)
