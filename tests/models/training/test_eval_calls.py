"""models/training/eval_calls.py: the window cache and the bootstraps over caller voices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.training import eval_calls
from models.training.metrics import bootstrap_ci
from tests.models.test_diarize import FakeEncoder, call


def test_resample_draws_whole_caller_voices() -> None:
    groups = ["a", "a", "a", "b", "c", "c"]
    rng = np.random.default_rng(0)
    for _ in range(50):
        idx = eval_calls.resample(groups, rng)
        drawn = [groups[i] for i in idx]
        for g in set(drawn):  # a voice comes with all of its calls, as often as it was drawn
            assert drawn.count(g) % groups.count(g) == 0
        assert len({g for g in drawn}) <= 3


def test_windows_are_cached_by_the_samples(tmp_path: Path, rng: np.random.Generator) -> None:
    x, _ = call(rng)
    windows = eval_calls.Windows(tmp_path)
    windows._encoder = FakeEncoder()
    starts, emb = windows(x)
    assert starts.size == emb.shape[0] > 4 and np.allclose(np.diff(starts) % 0.25, 0.0)
    assert len(list(tmp_path.glob("*.npz"))) == 1

    class Refuses:
        def __call__(self, mels: np.ndarray) -> np.ndarray:
            raise AssertionError("a cached recording is embedded again")

    again = eval_calls.Windows(tmp_path)
    again._encoder = Refuses()
    starts2, emb2 = again(x)
    assert np.array_equal(starts, starts2) and np.array_equal(emb, emb2)
    with pytest.raises(AssertionError, match="again"):
        again(x[: x.size // 2])  # other samples: not cached


def test_eer_intervals_come_from_the_shared_stratified_bootstrap() -> None:
    """The calls page draws caller voices within each class, as every other page does."""
    rng = np.random.default_rng(1)
    kinds = ("tts_robot", "recorded_robot", "human_agent")
    test = []
    for i in range(36):
        kind = kinds[i % 3]
        label = "human" if kind == "human_agent" else "robot"
        test.append(
            {
                "kind": kind,
                "label": label,
                "language": ("en", "zh")[i % 2],
                "caller": f"voice{i % 9}",  # each voice plays one kind
                "score_x": float(rng.normal(float(label == "robot"))),
            }
        )
    out: dict[str, dict[str, dict[str, object]]] = {"test": {}}
    eval_calls._eer_rows(out, test, "x")
    y = np.array([f["label"] == "robot" for f in test], dtype=int)
    s = np.array([f["score_x"] for f in test])
    expected = bootstrap_ci(y, s, groups=[f["caller"] for f in test], rounds=eval_calls.N_BOOT)
    row = out["test"]["x/robot_vs_human/all"]
    assert row["ci95"] == [round(v, 4) for v in expected["eer"]]
    low, high = expected["eer"]
    assert 0.0 <= low <= high <= 1.0
    assert {"x/recorded_vs_agent/en", "x/tts_vs_agent/zh"} <= set(out["test"])


def test_index_hits_count_the_calls_matched_to_another_call() -> None:
    def feat(kind: str, stereo: float, mono: float) -> dict[str, object]:
        return {
            "split": "dev",
            "language": "en",
            "kind": kind,
            "stereo": {"prompt_index_calls": stereo},
            "mono": {"prompt_index_calls": mono},
        }

    hits = eval_calls.index_hits(
        [
            feat("recorded_robot", 3.0, 2.0),
            feat("recorded_robot", 0.0, 1.0),
            feat("human_agent", 0.0, 0.0),
        ]
    )
    assert hits == {
        "dev/en/human_agent/mono": {"calls": 1, "matched": 0},
        "dev/en/human_agent/stereo": {"calls": 1, "matched": 0},
        "dev/en/recorded_robot/mono": {"calls": 2, "matched": 2},
        "dev/en/recorded_robot/stereo": {"calls": 2, "matched": 1},
    }


def test_feature_cache_key_follows_every_cue_module(tmp_path, monkeypatch):
    """An edit to a cue module (not only the diarizer) must invalidate the cached features."""
    import pipeline.behaviour

    before = eval_calls.feature_code_digest()
    edited = tmp_path / "behaviour.py"
    edited.write_bytes(Path(pipeline.behaviour.__file__).read_bytes() + b"\n# edited\n")
    monkeypatch.setattr(pipeline.behaviour, "__file__", str(edited))
    assert eval_calls.feature_code_digest() != before
