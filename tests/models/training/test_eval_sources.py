"""Leave-one-source-out through the whole detector: the sample, the fold heads, the tables."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from models.synth_head import FeatureSpec, LogisticHead
from models.training.corpus import CorpusRow
from models.training.eval_sources import (
    condition_change,
    dev_people_samples,
    diagnose,
    fold_head,
    held_out_samples,
    main,
    source_tables,
    spread_sample,
    tied_to_source,
)
from models.training.eval_sources_report import render
from models.training.fusion_fit import Example
from models.training.synth_config import TrainConfig
from models.training.synth_data import ClipFeatures
from models.training.text_features import MARK_BEGIN, MARK_END
from pipeline.fuse import FusionModel
from tests.models.support import corpus_row as row
from tests.models.support import fold_world_rows


def test_dev_people_samples_take_dev_people_clips_only_spread_over_speakers() -> None:
    rows = [row(f"a{i}", source="a", speaker=f"A{i % 3}", split="dev") for i in range(12)]
    rows += [row(f"b{i}", source="b", language="zh", split="dev") for i in range(2)]
    rows += [row(f"a_test{i}", source="a", split="test") for i in range(5)]
    rows += [row(f"a_train{i}", source="a") for i in range(5)]
    rows += [row("a_robot", source="a", label="robot", engine="e", split="dev")]
    rows += [row("a_copy", source="a", label="robot", parts=("src/a0",), split="dev")]
    rows += [row("a_mix", source="a", parts=("src/a0", "src/a1"), split="dev")]
    rows += [row("c_ko", source="c", language="ko", split="dev")]
    rows += [row("tts", source="mixed", root="cache", split="dev")]  # built here, not a source
    got = dev_people_samples(rows, per_source=6)
    assert set(got) == {"a", "b"}
    assert all(
        r.split == "dev" and r.label == "human" and not r.parts for s in got.values() for r in s
    )
    assert len(got["a"]) == 6 and Counter(r.speaker for r in got["a"]) == {
        "A0": 2,
        "A1": 2,
        "A2": 2,
    }
    assert len(got["b"]) == 2
    assert dev_people_samples(rows[::-1], per_source=6) == got  # seeded, order-free


def test_spread_sample_takes_every_voice_before_a_second_clip_of_any() -> None:
    rows = [row(f"a{i}", speaker="A") for i in range(10)]
    rows += [row("b0", speaker="B"), row("c0", speaker="C"), row("c1", speaker="C")]
    got = spread_sample(rows, 4)
    voices = Counter(r.speaker for r in got)
    assert len(got) == 4 and set(voices) == {"A", "B", "C"} and max(voices.values()) == 2
    assert spread_sample(rows, 4) == got  # seeded, not random
    assert sorted(r.id for r in spread_sample(rows, 100)) == sorted(r.id for r in rows)
    robots = [row(f"r{i}", label="robot", engine="e1" if i else "e2") for i in range(5)]
    assert {r.engine for r in spread_sample(robots, 2)} == {"e1", "e2"}  # robots by engine


def test_held_out_samples_skip_dev_other_languages_and_small_cells() -> None:
    rows = [row(f"h{i}", split="test" if i % 2 else "train") for i in range(9)]
    rows += [row(f"d{i}", split="dev") for i in range(20)]  # the fusion fitted on dev clips
    rows += [row(f"k{i}", language="ko") for i in range(20)]
    rows += [row(f"s{i}", source="small", label="robot", engine="x") for i in range(3)]
    rows += [row(f"t{i}", source="tts_en", root="cache", label="robot") for i in range(9)]
    rows += [row(f"v{i}", source="vocoded", root="cache", label="robot") for i in range(9)]
    got = held_out_samples(rows, per_label=5, min_clips=8)
    assert set(got) == {"src", "tts_en"}  # small: 3 < 8; vocoded: built here, not shared
    assert all(r.split != "dev" and r.language == "en" for s in got.values() for r in s)
    assert len(got["src"]) == 5


def test_tied_to_source_follows_speakers_utterances_and_mixture_parts() -> None:
    held = row("h0", source="held", speaker="voice")
    copy = row("c0", source="vocoded", label="robot", speaker="voice", group_id="g")
    same_line = row("c1", source="other", group_id="h0")
    mix = row("m0", source="mixed", parts=("src/h0",), speaker="mix", group_id="m")
    free = row("f0", source="other")
    tied = tied_to_source([held, copy, same_line, mix, free], "held")
    assert tied == {held.id, copy.id, same_line.id, mix.id}


def _features(rows: list[CorpusRow], rng: np.random.Generator, *, poison: set[str]) -> dict:
    out = {}
    for r in rows:
        x = rng.normal(size=(1, 6)) + (1.5 if r.label == "robot" else 0.0)
        if r.id in poison:
            x[:] = np.nan  # any use of this row would make the head NaN
        out[r.id] = ClipFeatures(r.id, np.asarray([[0.0, 2.0]]), x)
    return out


def test_fold_head_never_fits_on_the_held_out_source_and_keeps_the_shipped_settings(
    rng: np.random.Generator,
) -> None:
    rows = fold_world_rows()
    rows.append(row("copy", label="robot", kind="tts", source="tts", speaker="spk_trainr0"))
    cfg = TrainConfig(spec=FeatureSpec(blocks=("lfcc",)), density_alpha_grid=(0.0,))
    poison = tied_to_source(rows, "held")
    assert "src/copy" in poison  # a copy of a held-out voice is tied to it
    tel = _features(rows, rng, poison=poison)
    inf = _features([r for r in rows if r.split == "dev"], rng, poison=set())
    shipped = LogisticHead(np.zeros(6), np.ones(6), np.zeros(6), 0.0).with_meta(
        feature_spec=cfg.spec.to_dict(), pool_quantile=0.75, threshold=0.5,
        log_odds_clip=3.0, label_map={"0": "human", "1": "robot"},
    )  # fmt: skip
    head, info = fold_head(shipped, "held", rows=rows, calls=[], tel=tel, inf=inf, cfg=cfg)
    assert np.isfinite(head.coef).all() and np.isfinite([head.platt_a, head.platt_b]).all()
    assert head.pool_quantile == 0.75 and head.spec == cfg.spec
    assert info["train_rows"] == sum(r.split == "train" and r.id not in poison for r in rows)
    assert info["chosen"].startswith("l2=")
    x = np.stack([tel[r.id].x[0] for r in rows if r.id not in poison])
    y = np.array([r.label == "robot" for r in rows if r.id not in poison])
    assert head.log_odds(x[y]).mean() > head.log_odds(x[~y]).mean()


def _record(i: int, source: str, *, y: int, logit: float, language: str = "en") -> dict:
    return {
        "id": f"{source}/{i}",
        "source": source,
        "label": "robot" if y else "human",
        "y": y,
        "language": language,
        "voice": f"{source}-{i % 3}",
        "text_seen": i == 0,
        "cues": {"synthetic_voice": logit},
        "logit": logit,
        "voice_log_odds": logit / 2,
    }


def test_source_tables_pool_by_language_and_count_refusals() -> None:
    rng = np.random.default_rng(1)
    records = [
        _record(i, s, y=0, logit=float(rng.normal(-1)))
        for s in ("p1", "p2") for i in range(8)
    ] + [
        _record(i, s, y=1, logit=float(rng.normal(1))) for s in ("r1", "r2") for i in range(8)
    ] + [
        _record(i, "commercial_tts", y=1, logit=float(rng.normal(0))) for i in range(6)
    ]  # fmt: skip
    records.append({**_record(99, "r1", y=1, logit=0.0), "error": "too_short"})
    for r in records[-1:]:
        del r["logit"], r["cues"]
    folds = {"r1": {"chosen": "l2=0.1 copy=0", "train_rows": 100}}
    t = source_tables(records, folds, threshold=0.5)
    assert set(t["pooled"]) == {"en | unseen sources", "en | held-out commercial voices"}
    fused = t["pooled"]["en | unseen sources"]["fused"]
    assert fused["n_sources"] == 4 and fused["n_robot"] == 16
    assert fused["eer_ci"][0] <= fused["eer"] <= fused["eer_ci"][1]
    r1 = t["per_source"]["r1 | robot | en"]
    assert r1["sampled"] == 9 and r1["no_verdict"] == 1 and r1["n"] == 8 and r1["text_seen"] == 1
    assert r1["train_rows"] == 100
    for cell in t["per_source"].values():
        assert 0 <= cell["called_robot"] <= 1 and 0 <= cell["voice_called_robot"] <= 1
    out = {"tables": t, "per_label": 40, "seconds": 1.0, "head": "ab" * 32, "fusion": None}
    text = render(out)
    assert "| r1 | robot | en | 9 |" in text and "commercial" in text and "nan" not in text


def test_diagnose_names_the_cue_that_pushes_each_class_the_wrong_way() -> None:
    model = FusionModel(bias=0.0, scales=(), default_scale=1.0, method="test")
    examples = []
    for i in range(20):
        y = i % 2
        cues = (("good", 1.0 if y else -1.0), ("wrong", -2.0 if y else 2.0 * (i % 4 == 0)))
        examples.append(Example(f"m{i}", "", y, "en", "k", "src", cues, group=f"g{i}"))
    voice = {ex.audio_id: (1.0 if ex.y else -1.0) for ex in examples}
    d = diagnose(model, examples, voice)
    assert d["eer"]["voice head alone (unclipped log-odds)"] == 0.0
    wrong, good = d["cues"]["wrong"], d["cues"]["good"]
    assert wrong["robots_pushed_to_person"] == 1.0 and good["robots_pushed_to_person"] == 0.0
    assert wrong["eer_without"] == 0.0 <= good["eer_without"]
    assert d["eer"]["fitted fusion"] > 0.0
    assert not math.isnan(d["by_source"]["src | robot"]["fused"])
    text = render({"per_label": 4, "seconds": 1.0, "head": "h", "fusion": "f", "mixtures_dev": d})
    assert "| wrong | 100.0 % |" in text and "Per source" not in text


def test_render_only_rewrites_the_generated_part(tmp_path: Path) -> None:
    records = [_record(i, "p", y=0, logit=-1.0 + i / 10) for i in range(4)]
    records += [_record(i, "r", y=1, logit=i / 10) for i in range(4)]
    tables = source_tables(records, {}, threshold=0.5)
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"tables": tables, "per_label": 4, "seconds": 2.0,
                                   "head": "h", "fusion": "f"}))  # fmt: skip
    report = tmp_path / "report.md"
    report.write_text(f"# Title\n\nFindings by hand.\n\n{MARK_BEGIN}\nold\n{MARK_END}\n\nEnd.\n")
    assert main(["--render", "--results", str(results), "--report", str(report)]) == 0
    text = report.read_text()
    assert text.startswith("# Title\n\nFindings by hand.") and text.endswith("End.\n")
    assert "\nold\n" not in text and "| p | human | en | 4 |" in text


def test_a_fold_scorer_of_an_aasist_head_gets_the_shipped_embedder() -> None:
    """A fold head with the aasist block scores with the shipped scorer's clip embedder (the
    run stopped at the first fold without it)."""
    from models.synth_head import SynthVoiceScorer
    from models.training.eval_sources import fold_scorer
    from tests.models.support import ZeroAasistEmbedder, aasist_head

    head = aasist_head()
    embedder = ZeroAasistEmbedder()
    scorer = fold_scorer(head, encoder=None, embedder=embedder, source="librispeech")
    assert isinstance(scorer, SynthVoiceScorer) and scorer.embedder is embedder
    assert scorer.model_info.sha256 == head.arrays_sha256()


def test_a_clip_the_voice_head_did_not_score_is_not_called_synthetic() -> None:
    from models.training.eval_sources import verdict_rates

    y = np.asarray([0, 0, 0])
    rates = verdict_rates(y, np.asarray([0.1, 0.2, 0.9]), np.asarray([np.nan, -2.0, 1.0]), 0.5)
    assert rates["called_robot"] == pytest.approx(1 / 3)
    assert rates["voice_called_robot"] == pytest.approx(1 / 2)  # of the two the head scored
    none = verdict_rates(y[:1], np.asarray([0.1]), np.asarray([np.nan]), 0.5)
    assert math.isnan(none["voice_called_robot"])


def _run(records: list[dict], **extra: object) -> dict:
    return {"records": records, "head": "h", "fusion": "f", "per_label": 4, **extra}


def test_condition_change_pairs_clips_and_bounds_the_change() -> None:
    """Only clips judged under both conditions are compared; a condition that separates the
    classes better shows as a positive AUC change, and identical runs change nothing."""
    people = [_record(i, f"p{i % 4}", y=0, logit=-0.5 + (i % 5) / 4) for i in range(20)]
    robots = [_record(i, f"r{i % 4}", y=1, logit=-0.25 + (i % 5) / 4) for i in range(20)]
    drawn = _run([*people, *robots])
    same = condition_change(drawn, _run([*people, *robots]))
    row = same["pooled"]["en | unseen sources"]
    assert (row["n_human"], row["n_robot"]) == (20, 20) and same["paired"] == 40
    assert row["fused"]["auc"]["change"] == 0.0 and row["voice"]["eer"]["change"] == 0.0
    apart = [{**r, "logit": r["logit"] + (2.0 if r["y"] else -2.0)} for r in [*people, *robots]]
    apart[0] = {k: v for k, v in apart[0].items() if k != "logit"}  # refused when uploaded
    better = condition_change(drawn, _run(apart))
    fused = better["pooled"]["en | unseen sources"]["fused"]["auc"]
    assert better["paired"] == 39 and better["judged_drawn_only"] == 1
    assert fused["uploaded"] == 1.0 and fused["change"] > 0 and fused["low"] <= fused["change"]


def test_condition_change_refuses_runs_of_other_models() -> None:
    records = [_record(0, "p", y=0, logit=-1.0), _record(0, "r", y=1, logit=1.0)]
    assert "error" in condition_change(_run(records), _run(records, head="other"))


def test_render_as_uploaded_writes_its_own_part_beside_the_drawn_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import models.training.eval_sources as es

    people = [_record(i, f"p{i % 3}", y=0, logit=-1.0 + i / 10) for i in range(9)]
    robots = [_record(i, f"r{i % 3}", y=1, logit=i / 10) for i in range(9)]
    tables = source_tables([*people, *robots], {}, threshold=0.5)
    drawn = tmp_path / "results.json"
    drawn.write_text(json.dumps(_run([*people, *robots], tables=tables, seconds=2.0)))
    uploaded = tmp_path / "results_as_uploaded.json"
    uploaded.write_text(json.dumps(_run([*people, *robots], tables=tables, seconds=3.0,
                                        condition="as uploaded")))  # fmt: skip
    monkeypatch.setattr(es, "RESULTS", drawn)
    report = tmp_path / "report.md"
    report.write_text(f"# Title\n\n{MARK_BEGIN}\nkept\n{MARK_END}\n")
    args = ["--render", "--as-uploaded", "--results", str(uploaded), "--report", str(report)]
    assert main(args) == 0
    text = report.read_text()
    assert "\nkept\n" in text  # the draws' part is not touched
    part = text.split("<!-- generated:as_uploaded:begin -->")[1]
    assert "As uploaded against one channel draw" in part and "without a telephone" in part
    assert "| en | unseen sources | 9 | 9 | 1.000 -> 1.000 (+0.000" in part


def test_a_clip_as_uploaded_is_the_file_decoded_and_a_refused_file_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--as-uploaded`` reads the file as ``robocall analyze`` does (its rate and length
    kept, no channel draw); a file the CLI refuses comes back as that error, not a crash."""
    from types import SimpleNamespace

    import soundfile as sf

    from models.training.eval_sources import clip_evidence, uploaded_audio
    from pipeline.config import DetectorConfig

    monkeypatch.setenv("ROBOCALL_SHARED_DATA", str(tmp_path))
    (tmp_path / "audio" / "src").mkdir(parents=True)
    t = np.arange(3 * 22_050) / 22_050
    tone = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2
    sf.write(tmp_path / "audio" / "src" / "ok.flac", tone, 22_050)
    (tmp_path / "audio" / "src" / "empty.flac").write_bytes(b"")
    detector = SimpleNamespace(config=DetectorConfig())
    audio = uploaded_audio(detector, row("ok"))  # type: ignore[arg-type]
    assert audio.info.sample_rate_hz == 22_050 and audio.info.duration_s == pytest.approx(3.0)
    got = clip_evidence(detector, row("empty"), as_uploaded=True)  # type: ignore[arg-type]
    assert got == {"error": "empty_audio"}
