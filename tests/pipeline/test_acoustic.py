"""Acoustic and structure cues on synthetic calls built at test time (no files, seeded)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import signal

from pipeline.acoustic import (
    CUE_RULES,
    LATENCY_MERGE_GAP_S,
    MAX_WEIGHT,
    REPEAT_MAX_S,
    REPEAT_MIN_CORR,
    CueRule,
    above_floor_db,
    acoustic_cues,
    find_repeats,
    latency_cues,
    log_mel_db,
    pitch_track,
    replay_search,
)
from pipeline.types import AcousticCues, Audio, AudioInfo, Evidence, Transcript
from pipeline.vad import MERGE_GAP_S, voiced_intervals

SR = 16_000
EMPTY = Transcript(language="zh", language_probability=1.0, segments=())


def make_audio(*channels: np.ndarray) -> Audio:
    samples = np.stack([np.asarray(c, dtype=np.float32) for c in channels])
    info = AudioInfo(
        name="synthetic.wav",
        sha256="0" * 64,
        size_bytes=int(samples.nbytes),
        container="wav",
        codec="pcm_f32le",
        sample_rate_hz=SR,
        channels=samples.shape[0],
        duration_s=samples.shape[1] / SR,
        caller_channel=0,
        caller_channel_reason="test",
    )
    return Audio(info=info, samples=samples)


def cues_of(*channels: np.ndarray) -> AcousticCues:
    return acoustic_cues(make_audio(*channels))


def by_name(cues: AcousticCues) -> dict[str, Evidence]:
    return {e.name: e for e in cues.evidence}


def utterance(
    rng: np.random.Generator, *, n_syllables: int, robot: bool, level: float = 0.1
) -> np.ndarray:
    """A voiced utterance: glottal pulses through per-syllable formant resonators.

    Robot: flat 200 Hz, exactly periodic, equal 0.2 s syllables. Human: gliding f0 with 2 %
    cycle jitter and 10 % shimmer, syllables of 0.12-0.35 s.
    """
    pieces = []
    phase_s = 0.0
    for _ in range(n_syllables):
        dur_s = 0.2 if robot else float(rng.uniform(0.12, 0.35))
        n = int(dur_s * SR)
        source = np.zeros(n)
        t = 0.0
        while t < dur_s:
            glide_st = 3.0 * math.sin(2.0 * math.pi * 0.7 * phase_s)  # intonation, semitones
            f0 = 200.0 if robot else 140.0 * 2 ** (glide_st / 12)
            period = 1.0 / f0 * (1.0 if robot else 1.0 + 0.02 * rng.standard_normal())
            source[min(int(t * SR), n - 1)] = 1.0 if robot else 1.0 + 0.1 * rng.standard_normal()
            t += period
            phase_s += period
        voiced = np.zeros(n)
        for formant_hz in (rng.uniform(350, 900), rng.uniform(1000, 2500)):
            b, a = signal.iirpeak(formant_hz, Q=8.0, fs=SR)
            voiced += signal.lfilter(b, a, source)
        pieces.append(voiced * np.hanning(n) ** 0.5)
    out = np.concatenate(pieces)
    return level * out / np.sqrt(np.mean(out**2))


def assemble(chunks: list[np.ndarray], gaps_s: list[float], floor: np.ndarray | None = None):
    """Chunks separated by silent gaps (leading gap first); returns samples and chunk spans."""
    parts, spans, t = [], [], 0.0
    for gap_s, chunk in zip(gaps_s, chunks, strict=True):
        parts += [np.zeros(int(gap_s * SR)), chunk]
        t += int(gap_s * SR) / SR
        spans.append((t, t + chunk.size / SR))
        t += chunk.size / SR
    parts.append(np.zeros(int(0.5 * SR)))
    samples = np.concatenate(parts)
    if floor is not None:
        samples = samples + floor[: samples.size]
    return samples.astype(np.float32), spans


@pytest.fixture(scope="module")
def robot_call() -> tuple[np.ndarray, list[tuple[float, float]]]:
    rng = np.random.default_rng(7)
    prompts = [utterance(rng, n_syllables=10, robot=True) for _ in range(4)]
    chunks = [prompts[0], prompts[1], prompts[2], prompts[0], prompts[3]]  # prompt 0 replayed
    return assemble(chunks, [0.5, 0.8, 0.8, 0.8, 0.8])  # digital zeros, equal gaps


@pytest.fixture(scope="module")
def human_call() -> tuple[np.ndarray, list[tuple[float, float]]]:
    rng = np.random.default_rng(8)
    chunks = [
        utterance(
            rng,
            n_syllables=int(rng.integers(6, 12)),
            robot=False,
            level=0.1 * 10 ** (rng.uniform(-6, 6) / 20),
        )
        for _ in range(5)
    ]
    floor = 10 ** (-50 / 20) * rng.standard_normal(20 * SR)  # -50 dBFS line noise
    return assemble(chunks, [0.5, 0.35, 1.6, 0.6, 2.2], floor)


def test_robot_signal_outweighs_human_signal(robot_call, human_call) -> None:
    robot, human = cues_of(robot_call[0]), cues_of(human_call[0])
    robot_sum = sum(e.weight for e in robot.evidence)
    human_sum = sum(e.weight for e in human.evidence)
    assert robot_sum > human_sum
    assert robot_sum > 1.0
    robot_cues, human_cues = by_name(robot), by_name(human)
    assert robot_cues["pitch_std_st"].value < human_cues["pitch_std_st"].value
    assert robot_cues["jitter_local_pct"].value < human_cues["jitter_local_pct"].value
    assert robot_cues["pause_cv"].value < human_cues["pause_cv"].value


def test_speech_seconds_match_the_voiced_chunks(robot_call) -> None:
    samples, spans = robot_call
    speech_s = cues_of(samples).speech_s
    assert speech_s == pytest.approx(sum(b - a for a, b in spans), abs=0.5)


def test_replayed_chunk_is_found_with_its_spans(robot_call, human_call) -> None:
    samples, spans = robot_call
    repeats = find_repeats(samples)
    assert len(repeats) == 1
    (rep,) = repeats
    assert rep.first_s[0] == pytest.approx(spans[0][0], abs=0.1)
    assert rep.again_s[0] == pytest.approx(spans[3][0], abs=0.1)
    assert rep.again_s[1] <= spans[3][1] + 0.1
    assert rep.correlation >= 0.92
    cue = by_name(cues_of(samples))["replayed_speech_s"]
    assert cue.value > 1.2 and cue.weight > 0
    assert cue.span_s == rep.again_s
    assert find_repeats(human_call[0]) == ()
    assert by_name(cues_of(human_call[0]))["replayed_speech_s"].weight == 0.0


def test_the_search_on_log_mel_frames_finds_what_the_detector_finds(robot_call) -> None:
    # Measurement scripts sweep replay_search's settings on log_mel_db frames; at the defaults
    # it must give what find_repeats (the detector's frame analysis) gives.
    samples, _ = robot_call
    assert replay_search(log_mel_db(samples), voiced_intervals(samples)) == find_repeats(samples)


def test_floor_subtraction_zeroes_the_noise_and_keeps_what_stands_above_it() -> None:
    rng = np.random.default_rng(1)
    mel = -60.0 + rng.normal(0.0, 1.0, (200, 4))  # a noise floor near -60 dB in every band
    mel[50:80, 2] = -20.0  # one loud stretch in band 2
    out = above_floor_db(mel, 6.0)
    assert out.min() == 0.0
    assert np.all(out[50:80, 2] > 30.0)
    assert np.mean(out[:50] == 0.0) > 0.9


def test_a_replay_under_fresh_line_noise_is_found_above_the_noise_floor() -> None:
    # Each play carries new noise (7 dB SNR, white): on the raw log-mel the two plays correlate
    # under REPEAT_MIN_CORR; what stands above the noise floor still matches.
    rng = np.random.default_rng(0)
    prompts = [utterance(rng, n_syllables=10, robot=False) for _ in range(3)]
    clean, spans = assemble([prompts[0], prompts[1], prompts[0], prompts[2]], [0.5, 0.7, 0.9, 0.6])
    noise = 0.1 * 10 ** (-7 / 20) * rng.standard_normal(clean.size)
    noisy = (clean + noise).astype(np.float32)
    (rep,) = find_repeats(noisy)
    assert rep.correlation >= REPEAT_MIN_CORR
    lag_s = spans[2][0] - spans[0][0]  # the noise leads into the VAD's first interval
    assert rep.again_s[0] - rep.first_s[0] == pytest.approx(lag_s, abs=0.05)
    intervals = voiced_intervals(noisy)
    raw = replay_search(log_mel_db(noisy), intervals, floor_margin_db=None)
    assert raw == ()


def test_a_prompt_joined_to_other_speech_is_found_by_a_chunk_inside_it(monkeypatch) -> None:
    # Another voice runs straight into the prompt, so the VAD gives both one interval: a chunk
    # starting where the interval starts holds the other voice; one starting a second or two
    # later lies inside the prompt.
    rng = np.random.default_rng(11)
    prompt = utterance(rng, n_syllables=9, robot=True)
    other = utterance(np.random.default_rng(12), n_syllables=8, robot=False)
    fillers = [utterance(rng, n_syllables=8, robot=True) for _ in range(2)]
    joined = np.concatenate([other, prompt])
    x, spans = assemble([joined, fillers[0], prompt, fillers[1]], [0.5, 0.8, 0.8, 0.8])
    (rep,) = find_repeats(x)
    prompt_start_s = spans[0][0] + other.size / SR
    assert prompt_start_s <= rep.first_s[0] < rep.first_s[1] <= spans[0][1] + 0.05
    lag_s = spans[2][0] - prompt_start_s
    assert rep.again_s[0] - rep.first_s[0] == pytest.approx(lag_s, abs=0.05)
    monkeypatch.setattr("pipeline.acoustic.REPEAT_STEP_S", REPEAT_MAX_S)  # one chunk per 3 s
    assert find_repeats(x) == ()


def test_a_long_replayed_prompt_is_one_match_however_many_chunks_find_it() -> None:
    rng = np.random.default_rng(13)
    long_prompt = utterance(rng, n_syllables=30, robot=True)  # 6 s: chunks overlap every 1 s
    x, spans = assemble([long_prompt, utterance(rng, n_syllables=8, robot=True), long_prompt],
                        [0.5, 0.8, 0.8])  # fmt: skip
    (rep,) = find_repeats(x)
    assert rep.again_s[0] == pytest.approx(spans[2][0], abs=0.1)
    assert rep.again_s[1] == pytest.approx(spans[2][1], abs=0.1)


def test_digital_silence_detects_exact_zeros_but_not_a_noise_floor() -> None:
    rng = np.random.default_rng(3)
    chunks = [utterance(rng, n_syllables=8, robot=False) for _ in range(2)]
    zeros, spans = assemble(chunks, [0.3, 1.0])
    cue = by_name(cues_of(zeros))["digital_silence_s"]
    assert cue.value == pytest.approx(1.0, abs=0.1)
    # shown, never scored: a live agent's muted pauses leave it too (bench/agent_recorders.py)
    assert cue.weight == 0.0 and "counts neither way" in cue.detail
    assert spans[0][1] - 0.05 <= cue.span_s[0] < cue.span_s[1] <= spans[1][0] + 0.05
    floor = 10 ** (-50 / 20) * rng.standard_normal(zeros.size)
    noisy, _ = assemble(chunks, [0.3, 1.0], floor)
    cue = by_name(cues_of(noisy))["digital_silence_s"]
    assert cue.value == 0.0 and cue.weight == 0.0 and cue.span_s is None


def two_party(
    latencies_s: tuple[float, ...], *, seed: int = 5, n_s: float = 30.0
) -> tuple[np.ndarray, np.ndarray]:
    """A robot caller's prompts on one channel, a person's replies on the other; after each
    reply the caller answers ``latencies_s[i]`` seconds after the callee stopped."""
    rng = np.random.default_rng(seed)
    caller, callee = np.zeros(int(n_s * SR)), np.zeros(int(n_s * SR))
    t = 0.3
    for latency_s in (None, *latencies_s):
        if latency_s is not None:  # the callee speaks, then the caller answers after latency_s
            reply = utterance(rng, n_syllables=5, robot=False, level=0.08)
            callee[int(t * SR) : int(t * SR) + reply.size] = reply
            t += reply.size / SR + latency_s
        prompt = utterance(rng, n_syllables=8, robot=True)
        caller[int(t * SR) : int(t * SR) + prompt.size] = prompt
        t += prompt.size / SR + 0.5
    return caller, callee


LATENCY_CUES = {"response_latency_std_s", "response_latency_median_s", "talk_over_fraction"}


@pytest.mark.parametrize(("latencies_s", "sign"), [((0.4,) * 4, 1.0), ((0.1, 1.2, 0.3, 1.6), -1.0)])
def test_latency_cue_appears_only_for_stereo(latencies_s, sign) -> None:
    caller, callee = two_party(latencies_s)
    stereo = by_name(cues_of(caller, callee))
    assert LATENCY_CUES <= set(stereo)
    assert np.sign(stereo["response_latency_std_s"].weight) == sign
    assert stereo["response_latency_median_s"].value == pytest.approx(
        float(np.median(latencies_s)), abs=0.15
    )
    assert stereo["talk_over_fraction"].value == 0.0
    mono = by_name(cues_of(caller))
    assert not LATENCY_CUES & set(mono)


def line_noise(n: int, *, dbfs: float, seed: int) -> np.ndarray:
    return 10 ** (dbfs / 20) * np.random.default_rng(seed).standard_normal(n)


@pytest.mark.parametrize("noisy", [("callee",), ("caller", "callee")])
def test_latency_cues_hold_on_a_noisy_line(noisy) -> None:
    """Issue 13: line noise 20 dB under the speech (inside the level gate's 30 dB) made the
    whole callee channel one turn and the cues vanished; the noise-floor gate recovers them."""
    latencies_s = (0.6, 0.9, 0.7, 1.1)
    caller, callee = two_party(latencies_s)
    channels = {"caller": caller, "callee": callee}
    for i, side in enumerate(noisy):  # speech at about -22 dBFS, noise at -42 dBFS
        channels[side] = channels[side] + line_noise(caller.size, dbfs=-42.0, seed=i)
    caller, callee = (channels[k].astype(np.float32) for k in ("caller", "callee"))
    assert latency_cues(caller, callee, above_noise_db=None) == []  # the level gate alone
    got = {e.name: e.value for e in latency_cues(caller, callee)}
    assert LATENCY_CUES <= set(got)
    # 0.1 s: the noise-floor gate may trim a syllable's faint edges (20-ms frames)
    assert got["response_latency_median_s"] == pytest.approx(float(np.median(latencies_s)), abs=0.1)
    assert got["response_latency_std_s"] == pytest.approx(float(np.std(latencies_s)), abs=0.1)
    assert got["talk_over_fraction"] == 0.0
    assert LATENCY_CUES <= set(by_name(cues_of(caller, callee)))  # the detector's path


def test_a_pause_inside_a_caller_turn_makes_no_false_reply() -> None:
    """Issue 13: a caller turn paused for 0.3 s (a breath, a quiet word on a noisy line) under
    a listener's short "嗯" split into two turns at the 0.25 s merge gap, and the second half
    read as a reply to the "嗯" (latency ~0.1 s). Turns of the latency cues end after
    ``LATENCY_MERGE_GAP_S`` of silence, so the paused turn stays whole."""
    rng = np.random.default_rng(11)
    caller, callee = np.zeros(30 * SR), np.zeros(30 * SR)
    latencies_s = (0.6, 0.9, 0.7, 1.1)
    t = 0.3
    for latency_s in (None, *latencies_s):
        if latency_s is not None:
            reply = utterance(rng, n_syllables=5, robot=False, level=0.08)
            callee[int(t * SR) : int(t * SR) + reply.size] = reply
            t += reply.size / SR + latency_s
        for half in range(2):  # a prompt with a 0.3 s pause, the listener's "嗯" inside it
            prompt = utterance(rng, n_syllables=4, robot=True)
            caller[int(t * SR) : int(t * SR) + prompt.size] = prompt
            t += prompt.size / SR + 0.3
            if half == 0:
                hum = utterance(rng, n_syllables=1, robot=False, level=0.08)[: int(0.15 * SR)]
                callee[int((t - 0.25) * SR) : int((t - 0.25) * SR) + hum.size] = hum
        t += 0.2
    caller = (caller + line_noise(caller.size, dbfs=-42.0, seed=0)).astype(np.float32)
    callee = (callee + line_noise(callee.size, dbfs=-42.0, seed=1)).astype(np.float32)
    split = {e.name: e.value for e in latency_cues(caller, callee, merge_gap_s=MERGE_GAP_S)}
    whole = {e.name: e.value for e in latency_cues(caller, callee)}
    assert split["response_latency_median_s"] < 0.5  # the false replies to each "嗯"
    assert whole["response_latency_median_s"] == pytest.approx(
        float(np.median(latencies_s)), abs=0.1
    )
    assert LATENCY_MERGE_GAP_S > MERGE_GAP_S


def test_latency_cues_unchanged_on_a_clean_line() -> None:
    """Noise 45 dB under the speech: both gates give the same turns, so the same cues."""
    caller, callee = two_party((0.1, 1.2, 0.3, 1.6))
    callee = (callee + line_noise(callee.size, dbfs=-67.0, seed=3)).astype(np.float32)
    caller = caller.astype(np.float32)
    assert latency_cues(caller, callee) == latency_cues(caller, callee, above_noise_db=None) != []


def test_every_evidence_is_finite_and_bounded(robot_call, human_call) -> None:
    n = max(robot_call[0].size, human_call[0].size)
    robot, human = (np.pad(x[0], (0, n - x[0].size)) for x in (robot_call, human_call))
    for samples in (robot, human):
        for cues in (cues_of(samples), cues_of(samples, human), cues_of(samples, robot)):
            assert cues.evidence
            for e in cues.evidence:
                assert e.name in CUE_RULES
                assert e.source == CUE_RULES[e.name].source
                assert math.isfinite(e.value) and math.isfinite(e.weight)
                assert abs(e.weight) <= MAX_WEIGHT
                assert e.detail.endswith(".") and e.detail_zh.endswith("。")
                assert e.code.startswith(e.name)  # a catalogue message, both languages
                assert e.code.endswith(".none") or any(ch.isdigit() for ch in e.detail)


def test_a_quiet_floor_without_zeros_is_no_digital_silence() -> None:
    """Issue 14: "digital silence (0 % exact zero samples)" counted towards robot."""
    rng = np.random.default_rng(4)
    chunks = [utterance(rng, n_syllables=8, robot=False) for _ in range(2)]
    floor = 10 ** (-88 / 20) * rng.standard_normal(10 * SR)  # below -80 dBFS, never zero
    quiet, _ = assemble(chunks, [0.3, 1.0], floor)
    cue = by_name(cues_of(quiet))["digital_silence_s"]
    assert cue.value == 0.0 and cue.weight == 0.0 and cue.span_s is None
    assert cue.code == "digital_silence_s.none" and "no digital silence" in cue.detail
    codec = 1e-5 * rng.standard_normal(10 * SR)  # AMR-decoded zeros: below one 16-bit step
    amr, _ = assemble(chunks, [0.3, 1.0], np.clip(codec, -(2.0**-16), 2.0**-16))
    cue = by_name(cues_of(amr))["digital_silence_s"]
    assert cue.value == pytest.approx(1.0, abs=0.1) and cue.code == "digital_silence_s.found"
    assert "0 %" not in cue.detail and "zero" not in cue.detail  # the zero share is in params
    assert dict(cue.params)["zero_fraction"] < 0.5


def test_short_or_silent_clip_omits_cues_instead_of_faking_them() -> None:
    rng = np.random.default_rng(9)
    short = utterance(rng, n_syllables=3, robot=True)[: SR // 2]
    cues = cues_of(short)
    assert cues.evidence == ()
    assert 0.0 < cues.speech_s <= 0.5
    silent = cues_of(np.zeros(3 * SR))
    assert silent.evidence == () and silent.speech_s == 0.0


def test_cue_rules_map_values_to_bounded_monotonic_weights() -> None:
    for name, rule in CUE_RULES.items():
        points = [rule.robot_full, rule.robot_start, rule.human_start, rule.human_full]
        finite = [p for p in points if math.isfinite(p)] or [0.0]
        values = np.linspace(min(finite) - 1.0, max(finite) + 1.0, 200)
        weights = np.array([rule.weight(float(v)) for v in values])
        assert np.all(np.abs(weights) <= MAX_WEIGHT), name
        steps = np.diff(weights) * (1.0 if rule.robot_full >= rule.human_full else -1.0)
        assert np.all(steps >= -1e-9), name  # a more robot-like value never weighs less robot
    with pytest.raises(ValueError, match="monotonic"):
        CueRule("acoustic", 1.0, 3.0, 2.0, 4.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="robot_weight"):
        CueRule("acoustic", 1.0, 2.0, 3.0, 4.0, 3.0, 1.0)


def test_pitch_track_is_the_track_the_pitch_cues_measure(robot_call, human_call) -> None:
    # The evidence PDF draws pitch_track: its numbers must be the cue's (issue 10).
    for call, _ in (robot_call, human_call):
        times_s, f0_hz = pitch_track(call)
        assert times_s.shape == f0_hz.shape and np.all(np.diff(times_s) > 0)
        voiced = f0_hz[np.isfinite(f0_hz)]
        assert voiced.size and np.all((voiced >= 60.0) & (voiced <= 500.0))
        semis = 12.0 * np.log2(voiced / np.median(voiced))
        std = float(np.std(semis[np.abs(semis) <= 9.0]))
        assert std == pytest.approx(by_name(cues_of(call))["pitch_std_st"].value, abs=1e-3)
