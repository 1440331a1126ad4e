"""Two-party diarisation with a fake voice encoder (no GE2E weights loaded), alone and through
the detector the service builds."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
import soundfile as sf

import models.diarize
import models.loading
from models.diarize import (
    CALLER_REASONS,
    CALLER_RULE,
    CALLER_RULES,
    CALLER_WEIGHTS,
    MIN_PARTY_SPEECH_S,
    ONE_VOICE,
    TWO_VOICE_BIAS,
    TWO_VOICE_WEIGHTS,
    DiarizerConfig,
    TwoPartyDiarizer,
    caller_contrast,
    caller_logit,
    choose_caller,
    diarize,
    label_persistence,
    load_voice_encoder,
    own_speech,
    party_runs,
    two_clusters,
    two_voices,
)
from pipeline.behaviour import (
    BEHAVIOUR_RULES,
    MIX_NOISE_MARGIN_DB,
    reply_latencies,
    speech_intervals,
)
from pipeline.config import DetectorConfig
from pipeline.detector import Detector
from pipeline.errors import ModelNotAvailableError
from service.detector import load_detector
from tests.fakes import FakeTextClassifier, FakeTranscriber

SR = 16_000


class FakeEncoder:
    """Embeds a mel window as its unit mean spectrum: two tones are two 'voices'."""

    def __call__(self, mels: np.ndarray) -> np.ndarray:
        mean = mels.mean(axis=1)
        emb = np.pad(mean - mean.mean(axis=1, keepdims=True), ((0, 0), (0, 216)))
        return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-9)


def voice(f0: float, seconds: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
    env = 0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)
    return (0.1 * x * env + 0.001 * rng.standard_normal(t.size)).astype(np.float32)


def call(rng: np.random.Generator) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """Caller (low voice, 4 s turns) and callee (high voice, 1.5 s turns) alternating."""
    parts, truth, t = [], [], 0.0
    for _ in range(4):
        for who, f0, dur in (("caller", 150.0, 4.0), ("callee", 900.0, 1.5)):
            parts += [voice(f0, dur, rng), np.zeros(int(0.6 * SR), np.float32)]
            truth.append((t, t + dur, who))
            t += dur + 0.6
    return np.concatenate(parts), truth


def test_two_voices_are_told_apart_and_the_caller_has_the_long_turns(
    rng: np.random.Generator,
) -> None:
    x, truth = call(rng)
    turns = diarize(x, encoder=FakeEncoder())
    assert turns.caller_reason == CALLER_REASONS[CALLER_RULE]
    right = total = 0.0
    for a, b, who in truth:
        mine = turns.caller if who == "caller" else turns.callee
        inner = (a + 0.3, b - 0.3)  # turn edges are blurred by the window
        right += sum(max(0.0, min(e, inner[1]) - max(s, inner[0])) for s, e in mine)
        total += inner[1] - inner[0]
    assert right / total > 0.9
    assert 0.0 < turns.separation <= 2.0


def test_silence_and_one_short_voice(rng: np.random.Generator) -> None:
    silent = diarize(np.zeros(SR * 3, np.float32), encoder=FakeEncoder())
    assert silent.caller == () and silent.callee == ()
    short = diarize(voice(150.0, 1.5, rng), encoder=FakeEncoder())
    assert short.callee == ()


def test_caller_rules() -> None:
    a = ((0.0, 0.5),)  # says hello first
    b = ((1.0, 6.0), (8.0, 12.0))
    assert choose_caller(a, b, "first")[0] == a
    assert choose_caller(a, b, "most")[0] == b
    assert choose_caller(a, b, "longest_turns")[0] == b
    assert choose_caller(a, b, "turns")[0] == b
    assert choose_caller(a, b, "combined")[0] == b
    assert set(CALLER_RULES) == set(CALLER_REASONS) and CALLER_RULE in CALLER_RULES
    assert set(CALLER_WEIGHTS) <= set(CALLER_RULES)
    # each rule says why, whichever side the caller is on
    for rule in CALLER_RULES:
        assert choose_caller(a, b, rule)[2] == choose_caller(b, a, rule)[2] == CALLER_REASONS[rule]
    # a pitch broken at its pauses outweighs one long answer of as much speech time under the
    # runs rule; the speech-time rule reads the answer as the caller
    pitch = ((0.0, 2.0), (2.5, 4.5), (5.0, 7.0), (7.5, 9.5))
    answer = ((10.0, 18.0),)
    assert choose_caller(answer, pitch, "turns")[0] == pitch
    assert choose_caller(answer, pitch, "most")[0] == answer
    with pytest.raises(ValueError, match="caller_rule"):
        DiarizerConfig(caller_rule="loudest")


def test_caller_logit_is_antisymmetric() -> None:
    pitch = ((0.0, 2.0), (2.5, 4.5), (5.0, 7.0), (7.5, 9.5))
    answer = ((10.0, 12.0),)
    assert caller_contrast(pitch, answer) == pytest.approx(-caller_contrast(answer, pitch))
    assert caller_contrast(pitch, answer)[3] == 1.0  # the pitch speaks first
    for rule in CALLER_WEIGHTS:
        assert caller_logit(pitch, answer, rule) == pytest.approx(
            -caller_logit(answer, pitch, rule)
        )
        assert caller_logit(pitch, answer, rule) > 0  # more speech, runs and a longer one
        assert caller_logit(pitch, (), rule) > 0 > caller_logit((), pitch, rule)


def test_two_clusters_separates_two_directions(rng: np.random.Generator) -> None:
    e = np.concatenate(
        [
            np.eye(4)[0] + 0.05 * rng.standard_normal((10, 4)),
            np.eye(4)[1] + 0.05 * rng.standard_normal((6, 4)),
        ]
    )
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    labels, _ = two_clusters(e)
    assert len(set(labels[:10])) == 1 and len(set(labels[10:])) == 1 and labels[0] != labels[10]


def one_voice(rng: np.random.Generator) -> np.ndarray:
    """One low voice: eight 4 s turns with pauses (a robot's side alone, a voicemail)."""
    parts = []
    for _ in range(8):
        parts += [voice(150.0, 4.0, rng), np.zeros(int(0.8 * SR), np.float32)]
    return np.concatenate(parts)


def test_one_voice_with_pauses_is_not_split_in_two(rng: np.random.Generator) -> None:
    turns = diarize(one_voice(rng), encoder=FakeEncoder())
    assert turns.callee == () and turns.caller_reason == ONE_VOICE
    assert sum(b - a for a, b in turns.caller) > 25.0  # all the speech stays the caller's


def _wav(samples: np.ndarray) -> bytes:
    out = io.BytesIO()
    sf.write(out, samples, SR, format="WAV", subtype="PCM_16")
    return out.getvalue()


def test_detector_measures_turn_taking_on_a_mono_mix_and_not_on_one_voice(
    rng: np.random.Generator,
) -> None:
    detector = Detector(
        FakeTranscriber(),
        FakeTextClassifier(),
        DetectorConfig(),
        diarizer=TwoPartyDiarizer(encoder=FakeEncoder()),
    )
    mix, _ = call(rng)
    two = {e.name: e for e in detector.detect(_wav(mix), name="mix.wav").evidence}
    assert two["caller_talk_share"].source == "structure"
    assert 0.6 < two["caller_talk_share"].value < 0.9  # 4 s caller turns vs 1.5 s callee turns
    one = detector.detect(_wav(one_voice(rng)), name="one.wav").evidence
    assert not {e.name for e in one} & set(BEHAVIOUR_RULES)
    # the caller pitches in sentences broken at pauses; the callee answers at length and talks
    # more: the shipped rule (more speech time) takes the callee for the caller; a detector
    # configured with another rule (who speaks first) takes the pitcher
    assert CALLER_RULE == "most"
    pitch = {e.name: e for e in detector.detect(_wav(pitch_call(rng)), name="p.wav").evidence}
    assert 0.5 < pitch["caller_talk_share"].value < 0.7
    by_first = Detector(
        FakeTranscriber(),
        FakeTextClassifier(),
        DetectorConfig(),
        diarizer=TwoPartyDiarizer(DiarizerConfig(caller_rule="first"), encoder=FakeEncoder()),
    )
    pitch = {e.name: e for e in by_first.detect(_wav(pitch_call(rng)), name="p.wav").evidence}
    assert 0.3 < pitch["caller_talk_share"].value < 0.5


def pitch_call(rng: np.random.Generator) -> np.ndarray:
    """Four rounds: three 1 s caller sentences (low voice), then one 4 s callee answer (high)."""
    parts = []
    for _ in range(4):
        for f0, dur in ((150.0, 1.0), (150.0, 1.0), (150.0, 1.0), (900.0, 4.0)):
            parts += [voice(f0, dur, rng), np.zeros(int(0.7 * SR), np.float32)]
    return np.concatenate(parts)


def test_service_detector_gets_a_diarizer_that_loads_nothing_until_needed(
    monkeypatch: pytest.MonkeyPatch, rng: np.random.Generator
) -> None:
    monkeypatch.setattr(
        models.loading,
        "load_detector",
        lambda config: Detector(FakeTranscriber(), FakeTextClassifier(), config),
    )
    load_voice_encoder.cache_clear()
    detector = load_detector(DetectorConfig())
    assert isinstance(detector.diarizer, TwoPartyDiarizer)
    assert load_voice_encoder.cache_info().currsize == 0
    # a mono recording with too little speech for two parties still loads no encoder
    turns = detector.diarizer(np.concatenate([np.zeros(SR, np.float32), voice(150.0, 2.0, rng)]))
    assert turns.callee == () and load_voice_encoder.cache_info().currsize == 0
    # a detector that brings its own diarizer keeps it
    own = TwoPartyDiarizer(encoder=FakeEncoder())
    monkeypatch.setattr(
        models.loading,
        "load_detector",
        lambda config: Detector(FakeTranscriber(), FakeTextClassifier(), config, diarizer=own),
    )
    assert load_detector(DetectorConfig()).diarizer is own


def test_a_missing_encoder_package_leaves_mono_calls_one_voice(
    monkeypatch: pytest.MonkeyPatch, rng: np.random.Generator
) -> None:
    def unavailable() -> None:
        raise ModelNotAvailableError("resemblyzer is not installed")

    monkeypatch.setattr(models.diarize, "load_voice_encoder", unavailable)
    mix, _ = call(rng)
    turns = TwoPartyDiarizer()(mix)
    assert turns.callee == () and turns.caller


def test_two_voices_needs_spread_persistence_and_speech_on_both_sides(
    rng: np.random.Generator,
) -> None:
    long_, other, short = ((0.0, 5.0),), ((6.0, 9.0),), ((6.0, 6.0 + MIN_PARTY_SPEECH_S / 2),)
    w_spread, w_persist = TWO_VOICE_WEIGHTS
    edge = -(TWO_VOICE_BIAS + w_persist) / w_spread  # the spread that just passes in runs
    assert two_voices(edge + 0.01, 1.0, long_, other)
    assert not two_voices(edge - 0.01, 1.0, long_, other)
    assert not two_voices(edge + 0.01, 0.0, long_, other)  # the same spread, labels at random
    assert not two_voices(1.0, 1.0, long_, short)
    split = party_runs(call(rng)[0], encoder=FakeEncoder())
    assert split.two_voices and split.persistence > 0.8
    assert sum(b - a for a, b in split.speech) >= sum(
        b - a for a, b in (*split.first, *split.second)
    )


def test_label_persistence_tells_turns_from_flips(rng: np.random.Generator) -> None:
    starts = np.arange(200) * 0.25
    turns = (np.arange(200) // 20) % 2  # two parties, 5 s each in turn
    assert label_persistence(starts, turns, hop_s=0.25) > 0.85
    flips = rng.integers(0, 2, 200)  # one voice cut in two at random
    assert abs(label_persistence(starts, flips, hop_s=0.25)) < 0.2
    assert label_persistence(starts, np.zeros(200, dtype=int), hop_s=0.25) == 0.0
    apart = np.arange(200) * 0.5  # no two windows one hop apart
    assert label_persistence(apart, turns, hop_s=0.25) == 0.0


def test_windows_cached_on_a_finer_grid_give_the_same_split(rng: np.random.Generator) -> None:
    """An evaluation embeds every 0.25 s once; a 0.5 s hop reads its rows from that grid."""
    from models.diarize import (
        speech_frames,
        window_embeddings,
        window_starts,
        windows_at,
    )
    from pipeline.behaviour import speech_intervals

    x, _ = call(rng)
    grid = DiarizerConfig(hop_s=0.25)
    speech = speech_frames(speech_intervals(x, margin_db=MIX_NOISE_MARGIN_DB), int(x.size / 320))
    starts = window_starts(speech, config=grid)
    windows = (starts, window_embeddings(x, starts_s=starts, config=grid, encoder=FakeEncoder()))
    config = DiarizerConfig(hop_s=0.5)
    assert party_runs(x, config=config, windows=windows) == party_runs(
        x, config=config, encoder=FakeEncoder()
    )
    with pytest.raises(ValueError, match="grid"):
        windows_at(windows, np.array([0.1]))


def quick_replies(
    rng: np.random.Generator, gap_s: float
) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """Caller (low voice, 4 s) and callee (high voice, 1.5 s) turns alternating, each turn
    ``gap_s`` after the other party's; and the true turns."""
    parts, truth, t = [], [], 0.0
    for _ in range(4):
        for who, f0, dur in (("caller", 150.0, 4.0), ("callee", 900.0, 1.5)):
            parts += [voice(f0, dur, rng), 0.001 * rng.standard_normal(int(gap_s * SR))]
            truth.append((t, t + dur, who))
            t += dur + gap_s
    return np.concatenate(parts).astype(np.float32), truth


def test_own_speech_reopens_a_pause_the_mix_vad_bridged(rng: np.random.Generator) -> None:
    x, truth = quick_replies(rng, gap_s=0.15)
    assert len(speech_intervals(x, margin_db=MIX_NOISE_MARGIN_DB)) == 1  # pauses bridged
    # the parties' runs as the labels cut that one interval: touching in the middle of a pause
    mids = [(b + a2) / 2 for (_, b, _), (a2, _, _) in itertools.pairwise(truth)]
    cuts = [0.0, *mids, 25.0]
    runs = [(cuts[i], cuts[i + 1], who) for i, (_, _, who) in enumerate(truth)]
    first = [(a, b) for a, b, who in runs if who == "caller"]
    second = [(a, b) for a, b, who in runs if who == "callee"]
    a, b = own_speech(x, first, second)
    assert len(a) == len(first) and len(b) == len(second)
    mine = {"caller": list(a), "callee": list(b)}
    ordered = sorted((s, e) for side in mine.values() for s, e in side)
    gaps = [s2 - e1 for (_, e1), (s2, _) in itertools.pairwise(ordered)]
    assert min(gaps) >= 0.08 and max(gaps) <= 0.3  # each pause is nobody's again
    for start, end, who in truth:  # each party keeps its own speech
        kept = sum(max(0.0, min(e, end) - max(s, start)) for s, e in mine[who])
        assert kept >= 0.9 * (end - start)
    assert own_speech(x, first, []) == (tuple(first), ())


def test_mono_replies_are_not_zero_seconds_late(rng: np.random.Generator) -> None:
    x, truth = quick_replies(rng, gap_s=0.2)
    assert len(speech_intervals(x, margin_db=MIX_NOISE_MARGIN_DB)) == 1  # pauses bridged
    turns = diarize(x, encoder=FakeEncoder())
    assert turns.caller_reason != ONE_VOICE
    latencies = sorted(lat for lat, _ in reply_latencies(turns))
    assert len(latencies) == sum(who == "caller" for _, _, who in truth[1:])
    # each reply after its pause, as two legs would show (a label boundary off the pause
    # may still close one); without own_speech all would read 0.0 s
    assert latencies[len(latencies) // 2] == pytest.approx(0.2, abs=0.06)
