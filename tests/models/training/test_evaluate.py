"""The evaluation's block comparison, result cache and cost timing on synthetic inputs.

Features are generated here (no audio, no encoder): a ``whisper`` block that separates robots
from people, an ``lfcc`` block of noise and a weakly informative ``aasist`` block, laid end to
end as the feature cache lays out the shipped head's blocks.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.synth_head import FeatureSpec
from models.training import evaluate as E
from models.training.corpus import CorpusRow, corpus_cache_dir, write_clip
from models.training.evaluate_report import cost_lines
from models.training.synth_config import TrainConfig
from models.training.synth_data import ClipFeatures
from tests.models.training.test_synth_select import row

WIDTHS = {"whisper": 6, "lfcc": 4, "aasist": 3}
BLOCKS = ("whisper", "lfcc", "aasist")


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROBOCALL_CACHE_DIR", str(tmp_path / "cache"))


def config() -> TrainConfig:
    return TrainConfig(
        spec=FeatureSpec(blocks=BLOCKS),
        aasist_grid=(True,),
        l2_grid=(0.1,),
        copy_weight_grid=(0.3,),
        density_alpha_grid=(0.0,),
        quick=True,
    )


def corpus() -> tuple[list[CorpusRow], list[CorpusRow]]:
    rows = []
    for split in ("train", "dev", "test"):
        rows += [row(f"{split}_h{i}", label="human", split=split) for i in range(10)]
        for family in ("fam_a", "fam_b", "fam_c"):
            rows += [
                row(f"{split}_{family}_{i}", label="robot", family=family, split=split)
                for i in range(4)
            ]
    calls = [
        dataclasses.replace(
            row(f"call_{split}_{label}_{i}", label=label, split=split, source="mixed"),
            kind=f"two_party_{label}",
        )
        for split in ("dev", "test")
        for label in ("human", "robot")
        for i in range(5)
    ]
    return rows, calls


def features(rows: list[CorpusRow], *, windows: int, seed: int) -> dict[str, ClipFeatures]:
    rng = np.random.default_rng(seed)
    out = {}
    for r in rows:
        y = float(r.label == "robot")
        whisper = rng.normal(1.5 * y, 1.0, (windows, WIDTHS["whisper"]))
        lfcc = rng.normal(0.0, 1.0, (windows, WIDTHS["lfcc"]))
        aasist = np.broadcast_to(rng.normal(0.3 * y, 1.0, WIDTHS["aasist"]), (windows, 3))
        starts = np.arange(windows, dtype=np.float64) * 2.0
        out[r.id] = ClipFeatures(
            row_id=r.id,
            windows=np.stack([starts, starts + 1.5], axis=1),
            x=np.concatenate([whisper, lfcc, aasist], axis=1),
        )
    return out


def aasist_scores(rows: list[CorpusRow]) -> dict[str, dict[str, float]]:
    """AASIST stand-in scoring what ``--aasist all`` scores: the test split and the folds'
    rows (every robot here), so the dev people go without."""
    rng = np.random.default_rng(5)
    test = [r for r in rows if r.split == "test" or r.label == "robot"]
    return {
        v: {r.id: float(r.label == "robot") + float(rng.normal()) for r in test}
        for v in ("raw", "telephone")
    }


def compare(**overrides: Any) -> dict[str, dict[str, float]]:
    rows, calls = corpus()
    kwargs: dict[str, Any] = {
        "telephone": features(rows, windows=1, seed=1),
        "inference": features([*rows, *calls], windows=3, seed=2),
        "widths": WIDTHS,
        "quantile": 0.75,
        "aasist": aasist_scores([*rows, *calls]),
    } | overrides
    return E.compare_blocks(rows, calls, config(), **kwargs)


def test_candidates_are_the_shipped_set_without_aasist_and_each_block_alone() -> None:
    assert E.candidate_blocks(BLOCKS) == [
        BLOCKS,
        ("whisper", "lfcc"),
        ("whisper",),
        ("lfcc",),
        ("aasist",),
    ]
    assert E.candidate_blocks(("whisper", "lfcc")) == [("whisper", "lfcc"), ("whisper",), ("lfcc",)]
    assert E.candidate_blocks(("lfcc",)) == [("lfcc",)]


def test_block_columns_pick_each_block_where_the_cache_lays_it() -> None:
    assert E.block_columns(BLOCKS, WIDTHS, ("lfcc",)).tolist() == [6, 7, 8, 9]
    assert E.block_columns(BLOCKS, WIDTHS, ("whisper", "aasist")).tolist() == [
        *range(6),
        10,
        11,
        12,
    ]


def test_compare_blocks_reports_every_set_with_intervals_and_aasist_beside() -> None:
    out = compare()
    names = ["+".join(b) for b in E.candidate_blocks(BLOCKS)]
    assert list(out) == [*names, "AASIST raw", "AASIST channel"]
    assert [out[n]["dims"] for n in names] == [13, 10, 6, 4, 3]
    for name in names:
        c = out[name]
        for part in ("dev_eer", "test_eer", "test_auc", "calls_test_eer"):
            assert c[f"{part}_lo"] <= c[part] <= c[f"{part}_hi"], (name, part)
        assert c["loeo_folds"] == 3 and 0.0 <= c["loeo_mean_eer"] <= 1.0
        assert c["train_rows"] == 22  # every train row (quick): 10 people, 12 robots
    # The informative block beats the noise block, on clips and on calls.
    assert out["whisper"]["test_eer"] < out["lfcc"]["test_eer"]
    assert out["whisper"]["calls_test_eer"] < out["lfcc"]["calls_test_eer"]
    # AASIST did not score the dev people: its dev column stays empty rather than partial.
    for ref in ("AASIST raw", "AASIST channel"):
        assert math.isnan(out[ref]["dev_eer"])
        assert 0.0 <= out[ref]["test_eer"] <= 1.0 and 0.0 <= out[ref]["loeo_mean_eer"] <= 1.0


def test_compare_blocks_fixed_folds_make_no_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the comparison's folds must not search settings")

    monkeypatch.setattr(E, "nested_fit", refuse)
    assert compare(candidates=[("whisper",)])["whisper"]["loeo_folds"] == 3


def test_compare_blocks_reads_back_what_did_not_change(monkeypatch: pytest.MonkeyPatch) -> None:
    first = compare(candidates=[("whisper",), ("lfcc",)])
    calls: list[str] = []
    real = E.leave_one_out

    def counted(*args: Any, **kwargs: Any) -> list[E.Fold]:
        calls.append("fold")
        return real(*args, **kwargs)

    monkeypatch.setattr(E, "leave_one_out", counted)
    again = compare(candidates=[("whisper",), ("lfcc",)])
    assert calls == []
    assert again["whisper"] == pytest.approx(first["whisper"], nan_ok=True)
    # Another pooling quantile changes every candidate; a new candidate is computed alone.
    compare(candidates=[("whisper",)], quantile=0.5)
    assert calls == ["fold"]
    compare(candidates=[("whisper",), ("lfcc",), ("aasist",)])
    assert calls == ["fold", "fold"]


def test_cached_folds_survive_an_interrupted_run_and_miss_on_changed_features(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows, _ = corpus()
    feats = features(rows, windows=1, seed=1)
    cfg = config()
    fits: list[int] = []
    real = E.nested_fit

    def counted(*args: Any, **kwargs: Any) -> Any:
        fits.append(1)
        if len(fits) == 2 and interrupt:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    def folds(feats: dict[str, ClipFeatures]) -> list[E.Fold]:
        return E.leave_one_out(rows, feats, cfg, field="engine_family", min_rows=2, cache=True)

    monkeypatch.setattr(E, "nested_fit", counted)
    interrupt = True
    with pytest.raises(KeyboardInterrupt):
        folds(feats)
    interrupt = False
    fits.clear()
    first = folds(feats)
    assert [f.held_out for f in first] == ["fam_a", "fam_b", "fam_c"]
    assert all(f.chosen.startswith("l2=") for f in first)  # nested: chosen inside the fold
    assert len(fits) == 2  # the fold finished before the interruption was read back
    fits.clear()
    assert folds(feats) == first and not fits
    # A dev person is in no fold: nothing to redo. A training person is in every fold.
    for rid, refits in (("dev_h0", 0), ("train_h0", 3)):
        changed = dict(feats)
        changed[rid] = dataclasses.replace(feats[rid], x=feats[rid].x + 0.01)
        fits.clear()
        folds(changed)
        assert len(fits) == refits, rid
    plain = E.leave_one_out(rows, feats, cfg, field="engine_family", min_rows=2, nested=False)
    assert {f.chosen for f in plain} == {"fixed"}


def spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


class FakeAsrModel:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def transcribe(self, samples: np.ndarray, **options: Any) -> tuple[Any, None]:
        assert options["vad_filter"] and options["word_timestamps"]
        self.log.append("asr")

        def segments() -> Any:
            spin(0.04)
            yield from ()

        return segments(), None


def test_measure_cost_alternates_the_two_and_reports_medians(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log: list[str] = []
    transcriber = type("T", (), {"model": FakeAsrModel(log)})()

    class Scorer:
        def score(self, samples: np.ndarray) -> None:
            log.append("voice")
            spin(0.01)

    monkeypatch.setattr("models.loading.load_transcriber", lambda cfg: transcriber)
    monkeypatch.setattr("models.loading.load_synth_head_from", lambda path: Scorer())
    out = E.measure_cost(Path("head.npz"), np.zeros(16_000, np.float32), rounds=3)
    # warm-up, then the order flips every round
    assert log == ["asr", "voice", "asr", "voice", "voice", "asr", "asr", "voice"]
    assert out["audio_s"] == 1.0 and out["rounds"] == 3
    assert out["asr_wall_s"] >= 0.04 and out["voice_wall_s"] >= 0.01
    assert 0.0 < out["voice_over_asr_wall"] < 1.0
    assert out["voice_over_asr_cpu"] > 0.0


def test_cost_call_joins_the_test_calls_first(tmp_path: Path) -> None:
    calls = []
    for split, i in (("dev", 0), ("test", 1), ("test", 2), ("test", 3)):
        rel = f"calls/{split}_{i}.flac"
        level = np.full(25 * 16_000, 0.01 * (i + 1), np.float32)
        write_clip(corpus_cache_dir() / rel, level, sample_rate_hz=16_000)
        calls.append(
            dataclasses.replace(
                row(f"c{i}", label="robot", split=split, source="mixed"),
                kind="two_party_robot",
                path=rel,
            )
        )
    samples = E.cost_call(calls)
    assert samples.shape == (60 * 16_000,) and samples.dtype == np.float32
    assert np.all(samples > 0.015)  # the dev call (level 0.01) was not needed
    with pytest.raises(ValueError, match="hold 50 s"):
        E.cost_call(calls[:2])


@pytest.mark.parametrize(("cpu", "verdict"), [(0.2, "CPU **met**"), (0.37, "CPU **not met**")])
def test_cost_lines_say_whether_the_target_is_met(cpu: float, verdict: str) -> None:
    c = {
        "audio_s": 60.0, "rounds": 3.0, "load_before": 2.0, "load_after": 2.5,
        "asr_wall_s": 8.0, "asr_cpu_s": 6.4, "voice_wall_s": 2.4, "voice_cpu_s": 6.4 * cpu,
        "voice_over_asr_wall": 0.3, "voice_over_asr_cpu": cpu,
    }  # fmt: skip
    text = "\n".join(cost_lines(c))
    assert verdict in text and "wall **not met**" in text
    assert f"{100 * cpu:.0f} %" in text
