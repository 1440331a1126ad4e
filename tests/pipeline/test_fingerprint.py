"""Landmark and transcript fingerprints: invariants, and robustness to codecs and levels."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from pipeline.audio import load_audio
from pipeline.config import AudioLimits
from pipeline.fingerprint import (
    HOP_S,
    best_offsets,
    frames_within,
    landmark_frames,
    landmarks,
    landmarks_from_bytes,
    landmarks_to_bytes,
    match_landmarks,
    minhash_similarity,
    normalise_text,
    replayed_share,
    text_minhash,
    text_shingles,
)
from tests.service.batch.batch_fakes import make_call, synth_prompt

RATE = 16_000
# (codec, level dB, leading silence s): G.711 both laws, MP3, AMR-NB, from -20 dB to 0 dB
VARIANTS = (("wav_mulaw", -6.0, 0.3), ("wav_alaw", -20.0, 1.1), ("mp3", 0.0, 0.0),
            ("amr_nb", -12.0, 0.8))  # fmt: skip


@pytest.fixture(scope="module")
def coded(tmp_path_factory: pytest.TempPathFactory) -> dict[int, list[np.ndarray]]:
    """Landmarks of 3 prompts x 4 codec/level variants, decoded by the real decoder."""
    folder = tmp_path_factory.mktemp("coded")
    out: dict[int, list[np.ndarray]] = {}
    for seed in (1, 2, 3):
        prompt = synth_prompt(seed, duration_s=8.0)
        out[seed] = []
        for i, (fmt, gain_db, lead_s) in enumerate(VARIANTS):
            path = make_call(folder / f"p{seed}_{i}", prompt, fmt=fmt, gain_db=gain_db,
                             lead_s=lead_s, seed=10 * seed + i)  # fmt: skip
            audio = load_audio(path, limits=AudioLimits())
            out[seed].append(landmarks(audio.caller(), sample_rate_hz=RATE))
    return out


def test_landmarks_are_sorted_uint32_with_frames_in_range() -> None:
    marks = landmarks(synth_prompt(7, duration_s=3.0), sample_rate_hz=RATE)
    assert marks.dtype == np.uint32
    assert len(marks) > 50
    assert np.all(np.diff(marks.astype(np.int64)) >= 0)
    frames = landmark_frames(marks)
    assert frames.min() >= 0 and frames.max() * HOP_S <= 3.0


@pytest.mark.parametrize("samples", [np.zeros(RATE * 2), np.zeros(100), np.ones(0)])
def test_silence_and_tiny_input_give_no_landmarks(samples: np.ndarray) -> None:
    assert len(landmarks(samples, sample_rate_hz=RATE)) == 0
    assert (
        match_landmarks(landmarks(samples, sample_rate_hz=RATE), np.ones(5, np.uint32)).aligned == 0
    )


def test_level_does_not_change_the_landmarks() -> None:
    x = synth_prompt(4, duration_s=3.0).astype(np.float64)
    loud, quiet = (landmarks(x * g, sample_rate_hz=RATE) for g in (1.0, 0.01))
    assert match_landmarks(loud, quiet).coverage > 0.95


def test_any_sample_rate_is_accepted() -> None:
    x = synth_prompt(5, duration_s=3.0)
    at_16k = landmarks(x, sample_rate_hz=RATE)
    at_8k = landmarks(x[::2], sample_rate_hz=8_000)
    assert match_landmarks(at_16k, at_8k).is_same_prompt


def test_offset_is_where_the_prompt_starts() -> None:
    prompt = synth_prompt(6, duration_s=3.0)
    early = np.concatenate([np.zeros(int(0.2 * RATE)), prompt])
    late = np.concatenate([np.zeros(int(1.0 * RATE)), prompt])
    m = match_landmarks(landmarks(late, sample_rate_hz=RATE), landmarks(early, sample_rate_hz=RATE))
    assert m.offset_s == pytest.approx(0.8, abs=2 * HOP_S)


def _ringback(seconds: float = 12.0) -> np.ndarray:
    """North America's ringback, 440 + 480 Hz, 2 s on and 4 s off, at -20 dBFS."""
    t = np.arange(int(seconds * RATE)) / RATE
    tone = (np.sin(2 * np.pi * 440.0 * t) + np.sin(2 * np.pi * 480.0 * t)) * 0.1 / np.sqrt(2)
    return np.asarray(tone * ((t % 6.0) < 2.0))


def test_the_same_ringing_before_two_prompts_does_not_make_them_one() -> None:
    # every call recorded from the dial carries the same ringback: it must not be a "prompt"
    ring = _ringback()
    a, b = (np.concatenate([ring, synth_prompt(s, duration_s=4.0)]) for s in (11, 12))
    assert not match_landmarks(
        landmarks(a, sample_rate_hz=RATE), landmarks(b, sample_rate_hz=RATE)
    ).is_same_prompt
    assert len(landmarks(ring, sample_rate_hz=RATE)) == 0
    plain = landmarks(synth_prompt(11, duration_s=4.0), sample_rate_hz=RATE)
    assert match_landmarks(landmarks(a, sample_rate_hz=RATE), plain).is_same_prompt
    assert len(landmarks(a[::2], sample_rate_hz=8_000)) > 0  # other rates: the tones found too
    assert not match_landmarks(
        landmarks(a[::2], sample_rate_hz=8_000), landmarks(b[::2], sample_rate_hz=8_000)
    ).is_same_prompt


def test_bytes_round_trip() -> None:
    marks = landmarks(synth_prompt(8, duration_s=2.0), sample_rate_hz=RATE)
    assert np.array_equal(landmarks_from_bytes(landmarks_to_bytes(marks)), marks)
    assert len(landmarks_from_bytes(None)) == 0 and len(landmarks_from_bytes(b"")) == 0


def test_best_offsets_counts_neighbouring_offsets_per_group() -> None:
    groups = np.array([0, 0, 0, 0, 1, 1, 1])
    offsets = np.array([5, 6, 5, 40, -3, 9, 9])
    frames = np.array([10, 50, 30, 99, 0, 7, 20])
    votes = best_offsets(groups, offsets, frames)
    assert votes.groups.tolist() == [0, 1]
    assert votes.aligned.tolist() == [3, 2]  # offsets 5, 5 and 6 (+-1); 9 twice
    assert votes.offsets[1] == 9 and votes.offsets[0] in (5, 6)
    assert votes.spans.tolist() == [40, 13]  # frames 10..50 (not 99: another offset); 7..20


def test_same_prompt_matches_through_codecs_and_levels(coded: dict[int, list[np.ndarray]]) -> None:
    for seed, variants in coded.items():
        for a, b in itertools.combinations(range(len(variants)), 2):
            m = match_landmarks(variants[a], variants[b])
            assert m.is_same_prompt, (seed, VARIANTS[a][0], VARIANTS[b][0], m)


def test_different_prompts_do_not_match(coded: dict[int, list[np.ndarray]]) -> None:
    for s1, s2 in itertools.combinations(coded, 2):
        for a, b in itertools.product(coded[s1], coded[s2]):
            m = match_landmarks(a, b)
            assert not m.is_same_prompt, (s1, s2, m)


def test_normalise_text_drops_case_space_punctuation() -> None:
    assert normalise_text("Hello, World!  Press 1.") == "helloworldpress1"
    assert normalise_text("您好，我是城南置业的顾问。") == "您好我是城南置业的顾问"
    assert text_shingles("") == set()


ZH = "您好，我是城南置业的顾问，我们新开盘的学区房首付只要三十万，您近期有看房的打算吗？"
EN = "Hello, this is an important message about your car's extended warranty. Press 1 now."


def test_minhash_finds_near_duplicate_scripts() -> None:
    same = minhash_similarity(text_minhash(ZH), text_minhash(ZH))
    slot = minhash_similarity(text_minhash(ZH), text_minhash(ZH.replace("城南", "城北")))
    other = minhash_similarity(
        text_minhash(ZH), text_minhash("打扰您一下，地铁口的精装公寓现在特价。")
    )
    english = minhash_similarity(text_minhash(EN), text_minhash(EN.lower().replace(".", "")))
    assert same == 1.0
    assert slot >= 0.6 and english >= 0.9
    assert other < 0.3


def test_minhash_signatures_must_have_one_length() -> None:
    with pytest.raises(ValueError, match="length"):
        minhash_similarity(np.zeros(3, np.uint64), np.zeros(4, np.uint64))


def test_long_calls_are_cut_to_the_first_minute(tmp_path: Path) -> None:
    x = np.tile(synth_prompt(9, duration_s=10.0), 8)  # 80 s
    frames = landmark_frames(landmarks(x, sample_rate_hz=RATE))
    assert frames.max() * HOP_S <= 65.0


def test_replayed_share_counts_every_offset_and_skips_lone_pairs() -> None:
    """Two stretches replay the reference at two offsets (a robot's greeting and pitch); a lone
    pair far away at the first offset agrees by chance and must not stretch it over the call."""
    query = np.arange(0, 621, 2)  # sounding from frame 0 to 620: 21 bins of 31 frames
    a = np.arange(0, 121, 6)  # 21 pairs at offset 100, frames 0..120 (bins 0-3)
    b = np.arange(300, 421, 6)  # 21 pairs at offset -50, frames 300..420 (bins 9-13)
    weak = np.arange(500, 560, 6)  # 10 pairs at offset 7: too few to count
    offsets = np.concatenate([np.full(a.size, 100), np.full(b.size, -50), [100], np.full(10, 7)])
    frames = np.concatenate([a, b, [600], weak])
    assert replayed_share(offsets, frames, query) == pytest.approx(9 / 21)
    assert replayed_share(offsets[: a.size], frames[: a.size], query) == pytest.approx(4 / 21)
    assert replayed_share(np.zeros(0), np.zeros(0), query) == 0.0
    assert replayed_share(offsets, frames, np.zeros(0)) == 0.0
    # the caller's turns of a mono call: the replayed stretches and the bins between them
    turns = frames_within(query, [(0.0, 121 * HOP_S), (300 * HOP_S, 421 * HOP_S)])
    assert replayed_share(offsets, frames, turns) == pytest.approx(1.0)


def test_frames_within_keeps_the_frames_inside_any_interval() -> None:
    frames = np.array([0, 10, 20, 30, 40])
    got = frames_within(frames, [(9 * HOP_S, 20 * HOP_S), (39.5 * HOP_S, 50 * HOP_S)])
    assert got.tolist() == [10, 40]  # an interval's end is outside it
    assert frames_within(frames, []).size == 0
