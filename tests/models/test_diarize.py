"""Two-party diarisation with a fake voice encoder (no GE2E weights loaded)."""

from __future__ import annotations

import numpy as np
import pytest

from models.diarize import CALLER_RULES, DiarizerConfig, choose_caller, diarize, two_clusters

pytest.importorskip("resemblyzer")
torch = pytest.importorskip("torch")
SR = 16_000


class FakeEncoder:
    """Embeds a mel window as its unit mean spectrum: two tones are two 'voices'."""

    device = "cpu"

    def __call__(self, mels: torch.Tensor) -> torch.Tensor:
        mean = mels.mean(dim=1)
        emb = torch.nn.functional.pad(mean - mean.mean(dim=1, keepdim=True), (0, 216))
        return emb / emb.norm(dim=1, keepdim=True).clamp_min(1e-9)


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


def test_two_voices_are_told_apart_and_the_caller_talks_most(rng: np.random.Generator) -> None:
    x, truth = call(rng)
    turns = diarize(x, encoder=FakeEncoder())
    assert turns.caller_reason == "the party with more speech time"
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
    a = [(0.0, 0.5)]  # says hello first
    b = [(1.0, 6.0), (8.0, 12.0)]
    assert choose_caller(a, b, "first")[0] == a
    assert choose_caller(a, b, "most")[0] == b
    assert choose_caller(a, b, "longest_turns")[0] == b
    assert set(CALLER_RULES) == {"most", "first", "longest_turns"}
    with pytest.raises(ValueError, match="caller_rule"):
        DiarizerConfig(caller_rule="loudest")


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
