"""Simulated calls for the fusion: disk caches, the choice of calls, and their tables."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from models.asr import SpeechFrames
from models.synth_head import WindowChoice
from models.training.corpus import REPO_DIR, CorpusRow
from models.training.fusion_calls import (
    BASE_CODE,
    HEAD_CODE,
    CachedFrameEncoder,
    CachedTranscriber,
    call_evidence,
    call_tables,
    crop_flac,
    cue_contributions,
    cue_presence,
    fit_cues_only,
    select_calls,
    verdict_row,
)
from models.training.fusion_fit import SALT as FUSION_SALT
from models.training.fusion_fit import TEXT_CUES, Example, source_digest
from pipeline.behaviour import PartyTurns
from pipeline.config import DetectorConfig
from pipeline.detector import Detector
from tests.fakes import FakeTextClassifier, FakeTranscriber


class CountingEncoder:
    """A frame encoder that returns fixed frames over the first half of its input."""

    model_id = "fake-encoder"

    def __init__(self, *, silent: bool = False) -> None:
        self.calls = 0
        self.choices: list[WindowChoice | None] = []
        self.silent = silent

    def frames(self, samples: np.ndarray) -> np.ndarray:
        return np.ones((samples.size // 320, 4), dtype=np.float32)

    def speech_frames(
        self, samples: np.ndarray, *, choice: WindowChoice | None = None
    ) -> SpeechFrames | None:
        self.calls += 1
        self.choices.append(choice)
        if self.silent:
            return None
        frames = np.arange(samples.size // 640 * 4, dtype=np.float32).reshape(-1, 4) / 7
        return SpeechFrames(frames=frames, chunks=((0, samples.size // 2),))


def test_cached_transcriber_runs_the_asr_once_per_input_and_model(tmp_path: Path) -> None:
    inner = FakeTranscriber("hello there", language="en")
    cached = CachedTranscriber(inner, cache_dir=tmp_path)
    a = np.linspace(-0.5, 0.5, 16_000, dtype=np.float32)
    first, again = cached.transcribe(a), cached.transcribe(a.copy())
    assert first == again and len(inner.calls) == 1
    cached.transcribe(a[::-1].copy())
    assert len(inner.calls) == 2
    # Another model (sha256) must never read the first model's transcript.
    other = FakeTranscriber("something else", language="en")
    other.model_info = type(inner.model_info)("asr", "fake-asr", "1" * 64)
    assert CachedTranscriber(other, cache_dir=tmp_path).transcribe(a).text == "something else"


@pytest.mark.parametrize("silent", [False, True])
def test_cached_encoder_returns_the_same_frames(tmp_path: Path, silent: bool) -> None:
    inner = CountingEncoder(silent=silent)
    cached = CachedFrameEncoder(inner, cache_dir=tmp_path)
    x = np.sin(np.arange(32_000, dtype=np.float32) / 9)
    first, again = cached.speech_frames(x), cached.speech_frames(x)
    assert inner.calls == 1
    if silent:
        assert first is None and again is None
        return
    assert first is not None and again is not None
    np.testing.assert_array_equal(first.frames, again.frames)
    assert first.chunks == again.chunks and again.frames.dtype == np.float32
    # A choice that keeps all the speech (within one pass) reads the same frames ...
    windows = ((0.0, 0.05), (0.5, 0.55))
    same = cached.speech_frames(x, choice=WindowChoice(windows, "spread"))
    assert same is not None and same.chunks == first.chunks and inner.calls == 1
    np.testing.assert_array_equal(same.frames, first.frames)
    # ... one that keeps part of it (a long call) is another pass, kept apart.
    part = WindowChoice(windows, "spread", budget_s=0.06)
    cached.speech_frames(x, choice=part)
    cached.speech_frames(x, choice=part)
    assert inner.calls == 2 and inner.choices == [None, part]


def _call(i: int, *, split: str, kind: str, layout: str, language: str = "en") -> CorpusRow:
    group = f"calls/{language}/{kind}/{split}/{i:04d}"
    return CorpusRow(
        id=f"calls/{layout}/{language}/{kind}/{split}/{i:04d}",
        path=f"calls/{layout}/{language}/{kind}/{split}/{i:04d}.flac",
        root="cache",
        label="human" if kind == "human_agent" else "robot",
        kind=f"call_{kind}",
        language=language,
        speaker=f"test-voice-{kind}-{i}",
        engine="",
        engine_family="",
        source="calls",
        group_id=group,
        campaign="",
        split=split,
        duration_s=40.0,
        orig_sr_hz=16_000,
        licence="test",
        extra=(("layout", layout), ("caller_channel", "0")),
    )


def test_select_calls_takes_both_layouts_of_the_same_calls() -> None:
    rows = [
        _call(i, split="test", kind=kind, layout=layout)
        for i in range(10)
        for kind in ("human_agent", "tts_robot")
        for layout in ("stereo", "mono")
    ]
    chosen = select_calls(rows, split="test", per_cell=3)
    assert Counter(r.kind for r in chosen) == {"call_human_agent": 6, "call_tts_robot": 6}
    by_group = Counter(r.group_id for r in chosen)
    assert set(by_group.values()) == {2}  # stereo and mono of each chosen call
    assert chosen == select_calls(list(reversed(rows)), split="test", per_cell=3)


def test_select_calls_without_a_cap_takes_every_call_of_the_split() -> None:
    rows = [
        _call(i, split=split, kind="tts_robot", layout=layout)
        for i in range(7)
        for split in ("test", "train")
        for layout in ("stereo", "mono")
    ]
    chosen = select_calls(rows, split="test", per_cell=None)
    assert sorted(r.id for r in chosen) == sorted(r.id for r in rows if r.split == "test")


def test_select_calls_never_fits_on_a_call_that_shares_a_voice_with_a_test_call() -> None:
    shared = _call(0, split="test", kind="human_agent", layout="stereo")
    tied = [
        CorpusRow.from_dict(
            {**json.loads(_call(1, split="dev", kind="human_agent", layout=lay).to_json()),
             "speaker": shared.speaker}
        )
        for lay in ("stereo", "mono")
    ]  # fmt: skip
    clean = [_call(2, split="dev", kind="human_agent", layout=lay) for lay in ("stereo", "mono")]
    chosen = select_calls([shared, *tied, *clean], split="dev", per_cell=5)
    assert {r.id for r in chosen} == {r.id for r in clean}


def test_fit_cues_only_drops_the_text_and_voice_cues() -> None:
    cues = tuple((n, 1.0) for n in (*TEXT_CUES, "synthetic_voice", "reply_latency_spread_s"))
    ex = Example("a", "", 1, "en", "tts_robot", "simulated call", cues, layout="stereo")
    assert [n for n, _ in fit_cues_only(ex).cues] == ["reply_latency_spread_s"]
    assert fit_cues_only(ex).layout == "stereo"


def _examples(rng: np.random.Generator) -> tuple[list[Example], np.ndarray]:
    out, logits = [], []
    for kind, mean in (("human_agent", -2.0), ("recorded_robot", 1.0), ("tts_robot", 3.0)):
        for layout in ("stereo", "mono"):
            for language in ("en", "zh"):
                for i in range(6):
                    out.append(
                        Example(
                            f"{kind}/{layout}/{language}/{i}", "", int(kind != "human_agent"),
                            language, kind, "simulated call", (), layout=layout,
                            group=f"{kind}-{language}-{i % 3}",
                            sales_probability=0.9 if kind == "tts_robot" else 0.1,
                        )
                    )  # fmt: skip
                    logits.append(mean + rng.normal(0, 1.0))
    return out, np.array(logits)


def test_cue_contributions_add_up_to_each_cell_s_mean_logit() -> None:
    from models.training.fusion_fit import fusion_logit, make_model

    model = make_model(
        ["synthetic_voice:-", "backchannel_rate_per_min:+", "pitch_std_st:+"],
        -1.0,
        np.array([2.0, 1.5, 1.0]),
        caps={"synthetic_voice:-": 0.25},
    )
    robot = (("synthetic_voice", -3.0), ("backchannel_rate_per_min", 0.8))
    examples = [
        Example("r", "", 1, "en", "recorded_robot", "s", robot, layout="stereo"),
        Example(
            "a", "", 0, "en", "human_agent", "s", (("synthetic_voice", -1.0),), layout="stereo"
        ),
        Example("b", "", 0, "en", "human_agent", "s", (("pitch_std_st", 0.0),), layout="stereo"),
    ]
    got = cue_contributions(model, examples)
    assert got["cells"] == {"human_agent | stereo": 2, "recorded_robot | stereo": 1}
    assert "pitch_std_st" not in got["cues"]  # adds nothing anywhere
    assert got["cues"]["synthetic_voice"]["recorded_robot | stereo"] == pytest.approx(-0.5)
    for cell, members in (
        ("human_agent | stereo", examples[1:]),
        ("recorded_robot | stereo", examples[:1]),
    ):
        total = got["bias"] + sum(v[cell] for v in got["cues"].values())
        assert total == pytest.approx(got["total"][cell])
        assert got["total"][cell] == pytest.approx(float(np.mean(fusion_logit(model, members))))


def test_cue_contributions_by_any_key_show_what_the_turn_taking_cap_took() -> None:
    from models.training.fusion_fit import fusion_logit, make_model

    model = dataclasses.replace(
        make_model(["reply_latency_spread_s:+", "replayed_speech_s:+"], -1.0, np.ones(2)),
        turn_taking_cap=0.5,
    )
    cues = (("reply_latency_spread_s", 2.0), ("replayed_speech_s", 1.0))
    examples = [
        Example("z", "", 1, "zh", "tts_robot", "s", cues, layout="mono"),
        Example("e", "", 1, "en", "tts_robot", "s", cues[1:], layout="stereo"),
    ]
    got = cue_contributions(model, examples, by=lambda ex: ex.language)
    assert got["cells"] == {"en": 1, "zh": 1}
    assert got["turn_taking_cap"] == pytest.approx({"en": 0.0, "zh": -1.5})
    for cell, ex in (("en", examples[1]), ("zh", examples[0])):
        parts = got["bias"] + sum(v[cell] for v in got["cues"].values())
        assert parts + got["turn_taking_cap"][cell] == pytest.approx(got["total"][cell])
        assert got["total"][cell] == pytest.approx(fusion_logit(model, [ex])[0])


def test_cue_presence_counts_only_non_zero_weights_per_cell() -> None:
    def ex(kind: str, layout: str, *cues: tuple[str, float]) -> Example:
        return Example("x", "", int(kind != "human_agent"), "en", kind, "s", cues, layout=layout)

    examples = [
        ex("recorded_robot", "mono", ("reply_latency_spread_s", 0.5), ("pitch_std_st", 0.0)),
        ex("recorded_robot", "mono", ("reply_latency_spread_s", 1.0)),
        ex("recorded_robot", "mono"),
        ex("human_agent", "stereo", ("reply_latency_spread_s", -1.0)),
    ]
    got = cue_presence(examples)
    assert got["cells"] == {"human_agent | stereo | en": 1, "recorded_robot | mono | en": 3}
    assert set(got["cues"]) == {"reply_latency_spread_s"}  # a weight of 0 teaches the fit nothing
    robot = got["cues"]["reply_latency_spread_s"]["recorded_robot | mono | en"]
    assert robot["present"] == pytest.approx(2 / 3)
    assert robot["mean_weight"] == pytest.approx(0.75)
    agent = got["cues"]["reply_latency_spread_s"]["human_agent | stereo | en"]
    assert agent == {"present": 1.0, "mean_weight": -1.0}


def test_call_tables_cover_every_cell_and_count_every_call(rng: np.random.Generator) -> None:
    examples, logit = _examples(rng)
    t = call_tables(examples, logit, threshold=0.5, sales_threshold=0.5)
    assert sum(sum(row.values()) for row in t["confusion"].values()) == len(examples)
    tts = t["confusion"]["tts_robot | stereo"]
    assert tts["robot, sales"] + tts["person, sales"] == 12  # every tts call heard as sales
    assert t["confusion"]["human_agent | mono"]["robot, sales"] == 0
    row = t["pairs"]["recorded_robot | stereo | both languages"]
    assert (row["n_robot"], row["n_human"]) == (12, 12)
    assert row["eer_ci"][0] <= row["eer"] <= row["eer_ci"][1]
    assert 0.0 <= row["auc"] <= 1.0
    assert t["pairs"]["any robot | both layouts | both languages"]["n_robot"] == 48


def test_recall_at_five_percent_of_people() -> None:
    y = np.array([0] * 20 + [1] * 4)
    people = np.arange(20, dtype=float) - 10  # one of 20 may score above the cut: 8 is the cut
    robots = np.array([7.5, 8.5, 9.5, 20.0])
    row = verdict_row(y, np.concatenate([people, robots]), [str(i) for i in range(24)], 0.5)
    assert row["robots_called_at_5pct"] == pytest.approx(0.75)
    assert row["people_called"] == pytest.approx(10 / 20)  # logit >= 0 is probability >= 0.5
    assert row["robots_called"] == 1.0


def _stereo_call_on_disk(tmp_path: Path, make_wav: Any) -> CorpusRow:
    import soundfile as sf

    row = _call(0, split="test", kind="tts_robot", layout="stereo")
    target = tmp_path / "corpus" / row.path
    target.parent.mkdir(parents=True)
    wav = make_wav(tmp_path, kind=("robot", "human"), channels=2, duration_s=6.0)
    x, sr = sf.read(wav, always_2d=True)
    sf.write(target, x, sr, format="FLAC")
    return row


def _lfcc_scorer(rng: np.random.Generator) -> Any:
    from models.synth_head import FeatureSpec, LogisticHead, SynthVoiceScorer
    from pipeline.types import ModelInfo

    spec = FeatureSpec(blocks=("lfcc",))
    head = LogisticHead(
        np.zeros(120), np.ones(120), rng.normal(0, 0.1, 120), 0.2,
        meta={"feature_spec": spec.to_dict()},
    )  # fmt: skip
    return SynthVoiceScorer(head, encoder=None, model_info=ModelInfo("synth", "t", "1" * 64))


def test_call_evidence_is_the_whole_detectors_evidence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_wav: Any, rng: np.random.Generator
) -> None:
    """Cached without heads, heads applied anew: the same cues as one ``Detector.detect``."""
    from pipeline.types import Evidence, ModelInfo, TextScore

    monkeypatch.setenv("ROBOCALL_CACHE_DIR", str(tmp_path))
    row = _stereo_call_on_disk(tmp_path, make_wav)
    text = TextScore(
        0.8, "car", (("car", 0.8),),
        (Evidence("text", "robot_script_text", 1.0, 1.25, "Reads like a script.", None),),
    )  # fmt: skip
    transcriber = FakeTranscriber("press one to speak to an agent", language="en")
    detector = Detector(
        transcriber, FakeTextClassifier(text), DetectorConfig(), synth_scorer=_lfcc_scorer(rng)
    )
    full = detector.detect(crop_flac(row, crop_s=4.0), name=row.id)
    got = call_evidence(detector, row, crop_s=4.0, cache_dir=tmp_path / "cache")
    assert got["cues"] == {e.name: e.weight for e in full.evidence}
    assert "synthetic_voice" in got["cues"] and got["cues"]["robot_script_text"] == 1.25
    assert got["sales_probability"] == 0.8
    assert transcriber.calls and max(transcriber.calls) <= 4 * 16_000  # cropped
    n = len(transcriber.calls)
    other = FakeTextClassifier(
        dataclasses.replace(text, sales_probability=0.1, evidence=()),
        model_info=ModelInfo("text", "fake-text-2", "2" * 64),  # new weights: scored anew
    )
    again = call_evidence(
        dataclasses.replace(detector, text_classifier=other), row, crop_s=4.0,
        cache_dir=tmp_path / "cache",
    )  # fmt: skip
    assert len(transcriber.calls) == n  # from the cache: no ASR, no acoustic run
    assert again["sales_probability"] == 0.1 and "robot_script_text" not in again["cues"]
    assert other.calls  # the new text head did score the kept transcript
    n_other = len(other.calls)
    repeat = call_evidence(
        dataclasses.replace(detector, text_classifier=other), row, crop_s=4.0,
        cache_dir=tmp_path / "cache",
    )  # fmt: skip
    assert repeat == again and len(other.calls) == n_other  # same heads: kept result


def test_carrier_mode_adds_the_prompt_index_over_the_other_calls_of_a_language_and_layout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_wav: Any
) -> None:
    """Each call gets the evidence the lookup gives it among the calls of its language and
    layout (the service's leave-one-out in production); calls without evidence get no cue."""
    import soundfile as sf

    from models.training import fusion_calls
    from pipeline.types import Evidence

    monkeypatch.setenv("ROBOCALL_CACHE_DIR", str(tmp_path))
    rows = []
    for i, (language, layout) in enumerate((("en", "stereo"), ("en", "stereo"), ("zh", "mono"))):
        row = _call(i, split="dev", kind="recorded_robot", layout=layout, language=language)
        stereo = layout == "stereo"  # two parties: identical channels would decode as mono
        wav = make_wav(tmp_path, kind=("robot", "human") if stereo else "robot",
                       channels=2 if stereo else 1, duration_s=2.0 + i)  # fmt: skip
        x, sr = sf.read(wav, always_2d=True)
        (tmp_path / "corpus" / row.path).parent.mkdir(parents=True, exist_ok=True)
        sf.write(tmp_path / "corpus" / row.path, x, sr, format="FLAC")
        rows.append(row)
    monkeypatch.setattr(fusion_calls, "simulated_calls", lambda: rows)
    examples = [
        Example(r.id, "", 1, r.language, "recorded_robot", "simulated call", (("a", 1.0),),
                layout=dict(r.extra)["layout"], group=r.speaker)
        for r in rows
    ]  # fmt: skip
    seen: list[list[tuple[str, str]]] = []
    turns: list[Any] = []

    def lookup(calls: Any, *, caller_turns: Any = None) -> list[Evidence | None]:
        seen.append([(audio.info.name, text) for audio, text in calls])
        turns.append(caller_turns)
        return [
            Evidence("structure", "prompt_seen_before", 1.0, 0.35, "heard before", None)
            if len(calls) > 1 else None
            for _ in calls
        ]  # fmt: skip

    mono_caller = ((0.5, 1.5),)

    def diarizer(samples: Any) -> PartyTurns:
        return PartyTurns(mono_caller, ((1.6, 2.0),), "the party with more speech time")

    detector = Detector(FakeTranscriber("x"), FakeTextClassifier(), DetectorConfig(),
                        diarizer=diarizer)  # fmt: skip
    out = fusion_calls.with_prompt_index(
        detector, examples, ["t0", "t1", "t2"], lookup, crop_s=10.0
    )
    assert sorted(seen) == sorted([[(rows[0].id, "t0"), (rows[1].id, "t1")], [(rows[2].id, "t2")]])
    # each mono call's caller turns as the detector splits them; stereo calls have none
    assert sorted(turns, key=len) == [[mono_caller], [None, None]]
    assert [dict(ex.cues).get("prompt_seen_before") for ex in out] == [0.35, 0.35, None]
    assert [dict(ex.cues)["a"] for ex in out] == [1.0, 1.0, 1.0]  # the other cues kept
    assert examples[0].cues == (("a", 1.0),)  # the single-upload examples are left alone


def test_write_outputs_renders_the_calls_report(tmp_path: Path, rng: np.random.Generator) -> None:
    from models.training.calls_report import CALLS_REPORT
    from models.training.fusion_fit import Result, make_model, scores_table
    from models.training.fusion_report import write_outputs

    examples, logit = _examples(rng)
    y = np.array([ex.y for ex in examples], dtype=np.float64)
    table = call_tables(examples, logit, threshold=0.5, sales_threshold=0.5)
    table_row = scores_table(y, logit)
    counts = {
        "fit": {"examples": 10, "clips": 5, "texts": 4, "robot": 5, "human": 5},
        "eval": {"examples": 10, "clips": 5, "texts": 4, "robot": 5, "human": 5},
        "fit_calls": {"examples": 24, "robot": 16, "human": 8, "clips": 24, "texts": 1},
        "test_calls": {"examples": len(examples), "robot": 48, "human": 24, "clips": 72},
    }
    meta = {"failed": {"dev": 0, "test": 1}, "callers_heard": 7, "per_cell": 6, "crop_s": 30.0}
    ns = verdict_row(y.astype(np.int64), logit, [ex.group for ex in examples], 0.5)
    model = make_model(["reply_latency_spread_s:+"], -0.5, np.array([1.2]))
    result = Result(
        model=model,
        names=["reply_latency_spread_s:+"],
        counts=counts,
        tables={
            "headline": {"fitted, test calls (composed)": table_row},
            "kind": {},
            "language": {},
            "text_source": {},
        },
        cue_rows=[],
        ablations={"all cues": table_row},
        e2e={
            "all": {"fitted": table_row},
            "source": {},
            "kind": {},
            "skipped": 0,
            "non_sales": ns,
            "non_sales_contributions": cue_contributions(
                model, examples, by=lambda ex: f"{'robot' if ex.y else 'person'} | {ex.language}"
            ),
        },  # fmt: skip
        eval_examples=examples,
        seconds=1.0,
        calls={
            "all cues": table,
            "hand-set sum": table,
            "contributions": cue_contributions(model, examples),
            "contributions_language": {
                "dev": cue_contributions(model, examples[:4], by=lambda ex: ex.language),
                "test": cue_contributions(model, [], by=lambda ex: ex.language),
            },
            "presence": {
                "dev": cue_presence(examples[:4]),
                "test": cue_presence(
                    [dataclasses.replace(examples[0], cues=(("turn_restart_count", 1.5),))]
                ),
            },
            "meta": {**meta, "diarizer": False},
        },
        cap_cv={
            "chosen": 0.5,
            "weighting": "as drawn",
            "folds": 5,
            "rows": [
                {"cap": c, "weighting": "as drawn", "composed": 0.1, "calls": 0.9}
                | {"auc_recorded_stereo": 0.7, "auc_recorded_mono": float("nan")}
                for c in (0.5, None)
            ],
        },
    )
    summary = write_outputs(result, weights=tmp_path / "fusion.json", report=tmp_path / "f.md")
    text = (tmp_path / CALLS_REPORT).read_text()
    assert summary["calls_report"] == str(tmp_path / CALLS_REPORT)
    assert "no diarizer" in text and "7 of the 72 test calls" in text and "may differ" in text
    assert "| recorded_robot | mono | both languages |" in text
    assert "| human_agent | mono | 0 | 0 | 0 | 12 |" in text  # the confusion: read, not sold
    assert "### hand-set sum" in text and "TTS robots reading non-sales text" in text
    assert "## Why the calls score as they do" in text and "| **robot logit** |" in text
    assert "| cue | human_agent, mono (12) | human_agent, stereo (12) |" in text
    assert "### dev calls" in text and "### test calls" in text
    assert "### By caller and language" in text and "| cue | en (4) |" in text
    assert "| cue | person, en (" in text  # why the non-sales robots score as they do
    assert "| `turn_restart_count` | 100 % +1.50 |" in text
    assert "every dev call" in text  # meta has no dev_per_cell: the fit took them all
    assert (tmp_path / "FUSION.md").is_file() and (tmp_path / "f.md").is_file()
    card = (tmp_path / "FUSION.md").read_text()
    assert (
        "## A human voice is capped" in card
        and "| as drawn | none | 0.100 | 0.900 | 0.700 |" in card
    )


def test_with_cached_frames_wraps_the_encoder_once(tmp_path: Path) -> None:
    from models.synth_head import FeatureSpec, LogisticHead, SynthVoiceScorer
    from models.training.fusion_calls import with_cached_frames
    from pipeline.types import ModelInfo

    spec = FeatureSpec(blocks=("lfcc",))
    head = LogisticHead(
        np.zeros(120), np.ones(120), np.zeros(120), 0.0, meta={"feature_spec": spec.to_dict()}
    )
    scorer = SynthVoiceScorer(head, encoder=CountingEncoder(), model_info=ModelInfo("s", "s", "0"))
    wrapped = with_cached_frames(scorer, cache_dir=tmp_path)
    assert isinstance(wrapped, SynthVoiceScorer)
    assert isinstance(wrapped.encoder, CachedFrameEncoder) and wrapped.head is head
    assert with_cached_frames(wrapped, cache_dir=tmp_path) is wrapped


def _key_layout(salt: str, files: tuple[str, ...], *shas: str) -> str:
    """The key layout the existing ASR caches were written under (changing it orphans them):
    the first 16 hex digits of sha256(salt + each file's bytes + each model sha256)."""
    code = b"".join((REPO_DIR / rel).read_bytes() for rel in files)
    return hashlib.sha256(salt.encode() + code + "".join(shas).encode()).hexdigest()[:16]


def _with_model(sha256: str) -> SimpleNamespace:
    return SimpleNamespace(model_info=SimpleNamespace(sha256=sha256))


@pytest.mark.parametrize("has_synth", [True, False])
def test_cache_digests_keep_the_layout_of_the_existing_caches(has_synth: bool) -> None:
    from models.training import fusion_calls, train_fusion

    text, synth, asr = "a" * 64, "b" * 64, "c" * 64
    detector: Any = SimpleNamespace(
        text_classifier=_with_model(text),
        synth_scorer=_with_model(synth) if has_synth else None,
        transcriber=_with_model(asr),
    )
    head_shas = (text, synth) if has_synth else (text,)
    salt = fusion_calls.SALT
    assert fusion_calls._head_digest(detector) == _key_layout(salt, HEAD_CODE, *head_shas)
    assert fusion_calls._base_digest(detector) == _key_layout(salt, BASE_CODE, asr)
    scorer: Any = _with_model(synth)
    code = _key_layout(FUSION_SALT, train_fusion.AUDIO_CODE, synth)
    assert train_fusion._code_digest(scorer) == code
    # each input moves the key: another model, or the files in another order
    assert source_digest(salt, BASE_CODE, [text]) != source_digest(salt, BASE_CODE, [asr])
    assert source_digest(salt, BASE_CODE[::-1], [asr]) != source_digest(salt, BASE_CODE, [asr])


def test_with_cached_frames_keeps_the_aasist_embedder(tmp_path: Path) -> None:
    """A head with the aasist block still gets its clip embedder once the encoder is cached."""
    from models.synth_head import SynthVoiceScorer
    from models.training.fusion_calls import with_cached_frames
    from pipeline.types import ModelInfo
    from tests.models.support import ZeroAasistEmbedder, aasist_head

    embedder = ZeroAasistEmbedder()
    scorer = SynthVoiceScorer(
        aasist_head(),
        encoder=CountingEncoder(),
        model_info=ModelInfo("s", "s", "0"),
        embedder=embedder,
    )
    wrapped = with_cached_frames(scorer, cache_dir=tmp_path)
    assert isinstance(wrapped, SynthVoiceScorer) and wrapped.embedder is embedder


def test_index_hits_and_the_carrier_section_of_the_calls_page(rng: np.random.Generator) -> None:
    from models.training.calls_report import carrier_lines
    from models.training.fusion_calls import index_hits
    from models.training.fusion_fit import PROMPT_CUE, PROMPT_MAX_SCALE
    from models.training.train_fusion import carrier_tables
    from pipeline.fuse import FusionModel

    examples, _ = _examples(rng)
    carrier = [
        dataclasses.replace(ex, cues=((PROMPT_CUE, 1.2),))
        if ex.kind == "recorded_robot" and ex.audio_id.endswith(("0", "1", "2"))
        else ex
        for ex in examples
    ]
    hits = index_hits(carrier)
    assert hits["recorded_robot | stereo"]["calls"] == 12
    assert hits["recorded_robot | stereo"]["matched"] == 6
    assert hits["human_agent | mono"]["matched"] == 0 and hits["human_agent | mono"]["share"] == 0
    low, high = hits["recorded_robot | stereo"]["share_ci"]
    assert 0.0 <= low <= 0.5 <= high <= 1.0
    model = FusionModel(
        bias=-1.0, scales=((f"{PROMPT_CUE}:+", 2.5),), default_scale=1.0, method="test"
    )
    handset = FusionModel(bias=-1.0, scales=(), default_scale=1.0, method="test")
    tables = carrier_tables(model, handset, carrier, carrier, sales_threshold=0.5)
    assert tables["scale"] == 2.5 and tables["hits"]["test"] == hits
    pairs = tables["fitted"]["pairs"]["recorded_robot | stereo | both languages"]
    assert pairs["people_called"] == 0.0 and pairs["robots_called"] == 0.5
    result = SimpleNamespace(calls={"carrier": tables}, model=model)
    text = "\n".join(carrier_lines(result))  # type: ignore[arg-type]
    assert "Fitted scale of `prompt_seen_before`: **2.50**" in text
    assert "| recorded_robot | stereo | 6 / 12 | 6 / 12 |" in text
    assert "| recorded_robot | stereo | both languages | 12 | 12 |" in text
    assert "carrier's test calls (robots vs agents)" in text
    none = "\n".join(carrier_lines(SimpleNamespace(calls={}, model=model)))  # type: ignore[arg-type]
    assert "Not run" in none and "hand-set weight" in none
    bounded = SimpleNamespace(calls={"carrier": dict(tables, scale=PROMPT_MAX_SCALE)}, model=model)
    assert "the fit's upper bound" in "\n".join(carrier_lines(bounded))  # type: ignore[arg-type]
    below = SimpleNamespace(calls={"carrier": dict(tables, scale=0.8)}, model=model)
    assert "upper bound" not in "\n".join(carrier_lines(below))  # type: ignore[arg-type]


def test_audio_evidence_judges_what_the_detector_judges_with_hold_music_set_aside(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    """Cached without heads, heads applied anew: the voice head scores the caller with the
    hold music silenced, as ``Detector.detect`` does, so the cues are the same."""
    from models.training.fusion_calls import audio_evidence
    from pipeline.audio import load_audio
    from tests.pipeline.test_queue import _TimedTranscriber, music_call

    path, _, transcript, _ = music_call(tmp_path)
    audio = load_audio(path.read_bytes(), limits=DetectorConfig().audio, name="music.wav")
    text = FakeTextClassifier()
    detector = Detector(
        _TimedTranscriber(transcript), text, DetectorConfig(), synth_scorer=_lfcc_scorer(rng)
    )
    full = detector.detect_audio(audio)
    assert full.set_aside and "hold_music" in {e.name for e in full.evidence}
    got = audio_evidence(detector, audio, key="held", cache_dir=tmp_path / "cache")
    assert got["cues"] == {e.name: e.weight for e in full.evidence}
    assert text.calls[-1][0] == text.calls[0][0]  # the words the detector judged
