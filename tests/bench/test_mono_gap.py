"""The pure helpers of bench/mono_gap.py (the bench itself runs the detector on real calls)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from pipeline.behaviour import PartyTurns
from pipeline.types import SyntheticVoiceScore
from pipeline.vad import FRAME_S
from tests.bench.support import load_bench

NAME = "mono_gap"
SR = 16_000


B = load_bench(NAME)


def test_runs_and_segment_masks_round_trip() -> None:
    segments = [
        {"role": "caller", "start_s": 0.5, "end_s": 2.0},
        {"role": "callee", "start_s": 1.5, "end_s": 3.0},
        {"role": "caller", "start_s": 4.0, "end_s": 4.5},
    ]
    row = SimpleNamespace(extra=(("segments", json.dumps(segments)),))
    caller, callee = B.segment_masks(row, int(5.0 / FRAME_S))
    assert B.runs(caller) == ((0.5, 2.0), (4.0, 4.5))
    assert B.runs(callee) == ((1.5, 3.0),)
    assert B.runs(np.zeros(10, bool)) == ()


def test_oracle_turns_keep_the_mix_vad_and_the_true_parties(rng: np.random.Generator) -> None:
    n = 6 * SR
    mix = (rng.standard_normal(n) * 0.001).astype(np.float32)
    for a, b in ((0.5, 2.0), (1.5, 3.0), (4.0, 5.0)):  # caller, callee (overlapping), caller
        mix[int(a * SR) : int(b * SR)] += (rng.standard_normal(int((b - a) * SR)) * 0.2).astype(
            np.float32
        )
    frames = int(6.0 / FRAME_S)
    caller, callee = np.zeros(frames, bool), np.zeros(frames, bool)
    caller[int(0.5 / FRAME_S) : int(2.0 / FRAME_S)] = True
    caller[int(4.0 / FRAME_S) : int(5.0 / FRAME_S)] = True
    callee[int(1.5 / FRAME_S) : int(3.0 / FRAME_S)] = True
    one = B.oracle_turns(mix, caller, callee, overlap=False)
    both = B.oracle_turns(mix, caller, callee, overlap=True)
    assert one.callee == both.callee
    assert one.callee[0][0] == pytest.approx(1.5) and one.callee[0][1] == pytest.approx(
        3.0, abs=0.1
    )
    # one party per frame: the overlap is the callee's; with overlap it is both parties'
    assert one.caller[0][1] == pytest.approx(1.5)
    assert both.caller[0][1] == pytest.approx(2.0)
    assert one.caller[-1][0] == pytest.approx(4.0, abs=0.05)


def test_swapped_takes_exactly_the_named_cues_from_the_source() -> None:
    mono = {"a": 1.0, "b": 2.0, "c": 3.0}
    stereo = {"a": -1.0, "d": 4.0}
    assert B.swapped(mono, stereo, frozenset({"a", "d"})) == {
        "b": 2.0,
        "c": 3.0,
        "a": -1.0,
        "d": 4.0,
    }
    # a named cue the source lacks is dropped, as the stereo copy would not show it
    assert B.swapped(mono, stereo, frozenset({"b"})) == {"a": 1.0, "c": 3.0}


def test_mean_interval_over_voices_brackets_the_mean(rng: np.random.Generator) -> None:
    values = rng.normal(1.0, 0.5, 40)
    voices = [f"v{i % 8}" for i in range(40)]
    low, high = B._mean_ci(values, voices)
    assert low <= float(values.mean()) <= high
    same = B._mean_ci(np.full(12, 0.7), [f"v{i % 3}" for i in range(12)])
    assert same == pytest.approx((0.7, 0.7))


class _LoudnessScorer:
    """Scores how loud what it is handed is (log-odds = RMS level / 10), or None if silent."""

    def __init__(self) -> None:
        self.heard: list[np.ndarray] = []

    def score(self, samples: np.ndarray) -> SyntheticVoiceScore | None:
        self.heard.append(samples)
        rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
        if rms == 0.0:
            return None
        return SyntheticVoiceScore(20 * np.log10(rms) / 10, 0.5, (), (0.0, 1.0), "test")


def test_leg_voice_scores_the_callers_leg_or_the_whole_mix(rng: np.random.Generator) -> None:
    n = 4 * SR
    mix = (rng.standard_normal(n) * 0.001).astype(np.float32)
    mix[SR : 2 * SR] += (rng.standard_normal(SR) * 0.3).astype(np.float32)  # the loud callee
    scorer = _LoudnessScorer()
    detector = SimpleNamespace(synth_scorer=scorer)
    two = PartyTurns(((0.0, 1.0), (2.0, 4.0)), ((1.0, 2.0),), "t")
    one = PartyTurns(((0.0, 4.0),), (), "one voice")
    quiet, whole = B.leg_voice(detector, mix, two), B.leg_voice(detector, mix, one)
    # the callee's second is turned down in the leg the head hears; one voice: the mix itself
    assert np.array_equal(scorer.heard[1], mix) and not np.array_equal(scorer.heard[0], mix)
    assert quiet["synthetic_voice"] < whole["synthetic_voice"] - 1.0
    assert B.leg_voice(detector, np.zeros(n, np.float32), one) == {}
