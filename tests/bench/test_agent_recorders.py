"""The pure helpers of bench/agent_recorders.py (the bench itself reads the simulated calls)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from models.training.corpus import CorpusRow
from tests.bench.support import load_bench

B = load_bench("agent_recorders")


def _row(channels: int, speaker: str = "agent", callee: str = "callee") -> CorpusRow:
    return CorpusRow(
        id="calls/stereo/en/human_agent/test/0000", path="call.flac", root="cache",
        label="human", kind="call_human_agent", language="en", speaker=speaker, engine="",
        engine_family="", source="calls", group_id="g", campaign="", split="test",
        duration_s=4.0, orig_sr_hz=16_000, licence="",
        extra=(("layout", "stereo" if channels == 2 else "mono"), ("caller_channel", "1"),
               ("callee_speaker", callee), ("segments", json.dumps([]))),
    )  # fmt: skip


def _leg() -> np.ndarray:
    """4 s of line noise at -60 dBFS, a 'word' (a 200-Hz tone at -14 dBFS) from 1 to 2 s."""
    rng = np.random.default_rng(0)
    leg = (rng.standard_normal(4 * B.SR) * 1e-3).astype(np.float32)
    t = np.arange(B.SR) / B.SR
    leg[B.SR : 2 * B.SR] += (0.2 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    return leg


def test_mu_law_keeps_speech_and_turns_the_faintest_noise_into_exact_zeros() -> None:
    loud = np.linspace(-0.5, 0.5, 1001, dtype=np.float32)
    assert np.allclose(B.mu_law(loud), loud, rtol=0.05, atol=1e-3)
    faint = np.full(100, 1e-5, np.float32)  # under half of mu-law's smallest step
    assert np.all(B.mu_law(faint) == 0.0)


def test_the_gate_empties_the_leg_outside_its_speech_and_keeps_the_speech() -> None:
    leg = _leg()
    gated = B.gate(leg)
    hang = int(B.HANGOVER_S * B.SR) + int(B.FADE_S * B.SR) + 1
    assert np.all(gated[: B.SR - hang] == 0.0)
    assert np.all(gated[2 * B.SR + hang :] == 0.0)
    word = slice(B.SR + B.SR // 10, 2 * B.SR - B.SR // 10)
    assert np.allclose(gated[word], leg[word], atol=0.01)
    # the hangover keeps the line's own noise either side of the word (not zero)
    assert np.abs(gated[B.SR - hang // 2 : B.SR - hang // 4]).max() > 0.0


def test_the_gate_gives_the_detector_digital_silence_that_the_line_noise_hid() -> None:
    from pipeline.acoustic import _digital_silence_cues
    from pipeline.vad import frame_rms_dbfs, voiced_intervals

    leg = np.concatenate([_leg(), _leg()])  # two words 3 s apart
    for samples, expect_silence in ((leg, False), (B.gate(leg), True)):
        (cue,) = _digital_silence_cues(samples, frame_rms_dbfs(samples), voiced_intervals(samples))
        assert (cue.value > 2.0) is expect_silence


def _pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[CorpusRow]:
    """Clips of four speakers in the corpus cache: the agent, the callee and two others."""
    monkeypatch.setenv("ROBOCALL_CACHE_DIR", str(tmp_path))
    (tmp_path / "corpus").mkdir()
    rows = []
    for i, speaker in enumerate(("agent", "callee", "other1", "other2")):
        t = np.arange(2 * B.SR) / B.SR
        sf.write(tmp_path / "corpus" / f"{speaker}.flac",
                 0.1 * np.sin(2 * np.pi * (300 + 500 * i) * t), B.SR)  # fmt: skip
        row = CorpusRow(
            id=f"people/{speaker}", path=f"{speaker}.flac", root="cache", label="human",
            kind="read_speech", language="en", speaker=speaker, engine="", engine_family="",
            source="people", group_id=speaker, campaign="", split="test", duration_s=2.0,
            orig_sr_hz=16_000, licence="", extra=(),
        )  # fmt: skip
        rows.append(row)
    return rows


def test_the_babble_is_other_people_only_band_limited_at_unit_level(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    noise = B.babble(_row(2), _pool(tmp_path, monkeypatch), 5 * B.SR)
    assert noise.size == 5 * B.SR
    assert np.sqrt(np.mean(noise.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-3)
    spectrum = np.abs(np.fft.rfft(noise[B.SR :]))
    freqs = np.fft.rfftfreq(4 * B.SR, 1 / B.SR)

    def level(hz: float) -> float:
        return float(spectrum[np.argmin(np.abs(freqs - hz))])

    # the two others (1,300 Hz and 1,800 Hz) are heard; the agent's and callee's tones are not
    assert level(1300) > 100 * level(300) and level(1800) > 100 * level(800)


def test_a_babble_condition_adds_the_talkers_under_the_agent_s_speech_level(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = _pool(tmp_path, monkeypatch)
    x = np.stack([_leg() * 0.5, _leg()], axis=1)
    sf.write(tmp_path / "corpus" / "call.flac", x, B.SR)
    y = B.condition(_row(2), "babble", {("test", "en"): pool}, 20.0)
    assert y is not None
    added = y[:, 1] - sf.read(tmp_path / "corpus" / "call.flac", dtype="float32")[0][:, 1]
    ratio = B.speech_level(x[:, 1]) / np.sqrt(np.mean(added.astype(np.float64) ** 2))
    assert 20 * np.log10(ratio) == pytest.approx(20.0, abs=0.5)
    assert np.allclose(y[:, 0], sf.read(tmp_path / "corpus" / "call.flac")[0][:, 0], atol=1e-6)


def test_a_mono_call_is_not_gated_its_callee_line_fills_the_pauses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROBOCALL_CACHE_DIR", str(tmp_path))
    (tmp_path / "corpus").mkdir()
    sf.write(tmp_path / "corpus" / "call.flac", _leg(), B.SR)
    assert B.condition(_row(1), "gated", {}, 15.0) is None
    assert B.condition(_row(1), "echo", {}, 15.0) is None
    with pytest.raises(ValueError, match="unknown condition"):
        B.condition(_row(1), "loud", {}, 15.0)


def test_the_echo_is_the_callee_s_leg_late_and_quiet_on_the_agent_s_leg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROBOCALL_CACHE_DIR", str(tmp_path))
    (tmp_path / "corpus").mkdir()
    x = np.stack([_leg(), np.zeros(4 * B.SR, np.float32)], axis=1)  # callee on 0, agent on 1
    sf.write(tmp_path / "corpus" / "call.flac", x, B.SR)
    x, _ = sf.read(tmp_path / "corpus" / "call.flac", dtype="float32")  # as stored (16 bits)
    y = B.condition(_row(2), "echo", {}, 15.0)
    assert y is not None
    delay = int(B.ECHO_DELAY_S * B.SR)
    expected = x[: x.shape[0] - delay, 0] * 10 ** (-B.ECHO_DB / 20)
    assert np.allclose(y[delay:, 1], expected, atol=1e-6)
    assert np.all(y[:delay, 1] == 0.0)
    assert np.array_equal(y[:, 0], x[:, 0])
