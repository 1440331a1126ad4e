"""Campaigns: the prompt index, clustering through codecs, the evidence cue, table and HTML."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import math
import sqlite3
from collections import defaultdict
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import models.loading
from pipeline.audio import load_audio
from pipeline.config import AudioLimits, DetectorConfig
from pipeline.detector import Detector
from pipeline.fingerprint import landmarks, landmarks_to_bytes, match_landmarks
from pipeline.text_cues import RuleTextClassifier
from pipeline.types import Verdict
from service.batch.analyse import analyse_call
from service.batch.driver import BatchOptions, run_batch
from service.batch.inputs import discover_calls
from service.batch.journal import VOLATILE_COLUMNS, Journal, journal_path, read_rows
from service.campaigns.heard_before import (
    Turns,
    assign_campaign,
    leave_one_out,
    prompt_evidence,
    prompt_seen_before,
    verdict_caller_turns,
)
from service.campaigns.index import (
    CALL_MIN_ALIGNED,
    REPLAY_SHARE_FULL,
    REPLAY_SHARE_NONE,
    CallPrint,
    PromptIndex,
    PromptMatch,
)
from service.campaigns.report import campaign_table
from service.cli import main
from service.commands import batch as batch_cmd
from tests.fakes import FakeTranscriber
from tests.service.batch.batch_fakes import FakeFactory, make_call, make_corpus, synth_prompt

VARIANTS = (("wav_mulaw", 0.0, 0.2), ("amr_nb", -12.0, 0.9), ("mp3", -6.0, 0.0),
            ("wav_alaw", -20.0, 1.4))  # fmt: skip
SCRIPT = "您好，我是城南置业的顾问，我们新开盘的学区房首付只要三十万，您近期有看房的打算吗？"


def _print(path: Path, *, caller: str, transcript: str = "") -> CallPrint:
    audio = load_audio(path, limits=AudioLimits())
    return CallPrint(
        call_key=audio.info.sha256,
        landmarks=landmarks(audio.caller(), sample_rate_hz=audio.sample_rate_hz),
        transcript=transcript,
        caller_number=caller,
        start_time="2026-01-01T00:00:00+00:00",
    )


@pytest.fixture(scope="module")
def prints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[CallPrint]]:
    """3 prompts x 4 codec/level variants (each from its own number), and 2 unique calls."""
    folder = tmp_path_factory.mktemp("prints")
    out: dict[str, list[CallPrint]] = defaultdict(list)
    for k in range(3):
        prompt = synth_prompt(200 + k, duration_s=6.0)
        for j, (fmt, gain_db, lead_s) in enumerate(VARIANTS):
            path = make_call(folder / f"p{k}_{j}", prompt, fmt=fmt, gain_db=gain_db,
                             lead_s=lead_s, seed=7 * k + j)  # fmt: skip
            out[f"p{k}"].append(_print(path, caller=f"+86100{k}{j}"))
    for k in range(2):
        path = make_call(folder / f"live{k}", synth_prompt(300 + k, duration_s=6.0), fmt="mp3")
        out["live"].append(_print(path, caller=f"+86200{k}"))
    return out


def test_same_prompt_through_codecs_clusters_different_prompts_do_not(
    prints: dict[str, list[CallPrint]], tmp_path: Path
) -> None:
    with PromptIndex(tmp_path / "index.sqlite") as index:
        found = {group: [index.add(p)[0] for p in calls] for group, calls in prints.items()}
        for k in range(3):
            assert len(set(found[f"p{k}"])) == 1, found[f"p{k}"]
        campaigns = [found[f"p{k}"][0] for k in range(3)] + found["live"]
        assert len(set(campaigns)) == 5
        seen = index.sightings(found["p0"][0], exclude_call_key=prints["p0"][0].call_key)
        assert (seen.other_calls, seen.other_numbers) == (3, 3)
        for j, call in enumerate(prints["p0"]):  # recorded before it: the calls added earlier
            earlier = index.sightings(found["p0"][0], exclude_call_key=call.call_key, before=True)
            assert (earlier.other_calls, earlier.other_numbers) == (j, j)
        # the same audio again is the same sighting, not a new one
        assert index.add(prints["p0"][1])[0] == found["p0"][0]
        assert index.sightings(found["p0"][0]).other_calls == 4


def test_the_index_persists_between_runs(
    prints: dict[str, list[CallPrint]], tmp_path: Path
) -> None:
    path = tmp_path / "sub" / "index.sqlite"
    with PromptIndex(path) as index:
        first, match = index.add(prints["p1"][0])
        assert match is None and first.startswith("cmp-")
    with PromptIndex(path) as index:
        again = index.match(prints["p1"][3])  # A-law at -20 dB, never seen by this index
        assert again is not None and again.campaign_id == first and again.method == "audio"
        assert index.match(prints["p2"][0]) is None


def test_text_near_duplicates_join_when_audio_does_not(tmp_path: Path) -> None:
    empty = np.zeros(0, dtype=np.uint32)
    with PromptIndex(tmp_path / "i.sqlite") as index:
        a, _ = index.add(CallPrint("a", empty, SCRIPT, "+1"))
        b, found = index.add(CallPrint("b", empty, SCRIPT.replace("城南", "城北"), "+2"))
        assert b == a and found is not None and found.method == "text" and found.score >= 0.6
        c, _ = index.add(
            CallPrint("c", empty, "打扰您一下，地铁口的精装公寓现在特价，每平米直降两千元。")
        )
        assert c != a
        short1, _ = index.add(CallPrint("d", empty, "喂，你好"))
        short2, _ = index.add(CallPrint("e", empty, "喂，你好"))
        assert short1 != short2  # too short to say anything
        # a call seen before matches as it first did: the same evidence on every re-run
        again, how = index.add(CallPrint("b", empty, SCRIPT.replace("城南", "城北"), "+2"))
        assert again == a and how is not None and how.method == "text"
        assert index.add(CallPrint("a", empty, SCRIPT, "+1")) == (a, None)
        # the founder is looked up as the others joined it: the same script, not the same audio
        founder = index.match(CallPrint("a", empty, SCRIPT, "+1"))
        assert founder is not None and founder.method == "text" and founder.share == 1.0


def test_prompt_seen_before_is_structure_evidence(tmp_path: Path) -> None:
    prompt = synth_prompt(400, duration_s=6.0)
    paths = [make_call(tmp_path / f"c{j}", prompt, fmt=fmt, gain_db=gain, lead_s=lead, seed=j)
             for j, (fmt, gain, lead) in enumerate(VARIANTS)]  # fmt: skip
    limits = AudioLimits()
    with PromptIndex(tmp_path / "i.sqlite") as index:
        first = load_audio(paths[0], limits=limits)
        assert prompt_seen_before(first, index=index) is None  # empty index
        assert prompt_seen_before(first, index=index, record=True, caller_number="+1") is None
        for j, path in enumerate(paths[1:3], start=2):
            prompt_seen_before(load_audio(path, limits=limits), index=index, record=True,
                               caller_number=f"+{j}")  # fmt: skip
        new = load_audio(paths[3], limits=limits)
        evidence = prompt_seen_before(new, index=index)
        assert evidence is not None
        assert (evidence.source, evidence.name, evidence.value) == (
            "structure",
            "prompt_seen_before",
            3.0,
        )
        assert 0.0 < evidence.weight <= 2.0
        assert "3 other call(s) from 3 caller number(s)" in evidence.detail
        assert "3 个来电号码" in evidence.detail_zh
        unrelated = load_audio(
            make_call(tmp_path / "u", synth_prompt(401, duration_s=6.0)), limits=limits
        )
        assert prompt_seen_before(unrelated, index=index) is None


def test_leave_one_out_counts_the_other_calls_of_a_prompt_and_never_the_call(
    tmp_path: Path,
) -> None:
    prompt = synth_prompt(500, duration_s=6.0)
    limits = AudioLimits()
    replayed = [
        load_audio(make_call(tmp_path / f"r{j}", prompt, fmt=fmt, gain_db=gain, lead_s=lead,
                             seed=j), limits=limits)
        for j, (fmt, gain, lead) in enumerate(VARIANTS[:3])
    ]  # fmt: skip
    live = [
        load_audio(make_call(tmp_path / f"l{k}", synth_prompt(510 + k, duration_s=6.0)),
                   limits=limits)
        for k in range(2)
    ]  # fmt: skip
    calls = [(a, "") for a in (*replayed, *live)]
    got = leave_one_out(calls)
    assert len(got) == 5
    for evidence in got[:3]:  # each replay sees the two others, never itself
        assert evidence is not None and evidence.name == "prompt_seen_before"
        assert evidence.value == 2.0
    assert got[3:] == [None, None]  # a call said once is in no other call
    alone = leave_one_out(calls[:1])  # nothing else in the index
    assert alone == [None]
    # the same as looking each call up in an index that holds only the others
    with PromptIndex() as index:
        for audio, _ in calls[1:]:
            prompt_seen_before(audio, index=index, record=True)
        assert prompt_seen_before(replayed[0], index=index) == got[0]
    # a mono call's caller turns count in its share; one per call
    none_heard = leave_one_out(calls, caller_turns=[((0.0, 0.1),)] + [None] * 4)
    assert none_heard[0] is not None and dict(none_heard[0].params)["share"] == 0.0
    assert none_heard[1:] == got[1:]
    with pytest.raises(ValueError, match="2 caller turns for 5 calls"):
        leave_one_out(calls, caller_turns=[None, None])


@pytest.fixture
def fake_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """``robocall analyze`` with a fake transcriber instead of Whisper (real cues and fusion)."""

    def load(config: DetectorConfig) -> Detector:
        return Detector(FakeTranscriber(SCRIPT), RuleTextClassifier(), config)

    monkeypatch.setattr(models.loading, "load_detector", load)


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _counts(path: Path) -> tuple[int, int]:
    with sqlite3.connect(path) as db:
        return (db.execute("SELECT COUNT(*) FROM sightings").fetchone()[0],
                db.execute("SELECT COUNT(*) FROM prompts").fetchone()[0])  # fmt: skip


def test_analyze_with_a_prompt_index_adds_the_evidence_and_records_nothing(
    fake_models: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompt = synth_prompt(500, duration_s=6.0)
    paths = [make_call(tmp_path / f"c{j}", prompt, fmt=fmt, gain_db=gain, lead_s=lead, seed=j)
             for j, (fmt, gain, lead) in enumerate(VARIANTS[:3])]  # fmt: skip
    index = tmp_path / "prompts.sqlite"
    with PromptIndex(index) as writer:  # two earlier calls of the campaign, from two numbers
        for j, path in enumerate(paths[:2]):
            prompt_seen_before(load_audio(path, limits=AudioLimits()), index=writer, record=True,
                               caller_number=f"+86{j}")  # fmt: skip
    counts = _counts(index)

    def analyse(*flags: str) -> dict[str, Any]:
        assert main(["analyze", str(paths[2]), "--json", *flags]) == 0
        verdict: dict[str, Any] = json.loads(capsys.readouterr().out)["verdict"]
        return verdict

    plain, seen = analyse(), analyse("--prompt-index", str(index))
    assert not any(e["name"] == "prompt_seen_before" for e in plain["evidence"])
    (cue,) = [e for e in seen["evidence"] if e["name"] == "prompt_seen_before"]
    assert (cue["source"], cue["value"]) == ("structure", 2.0) and cue["weight"] > 0
    assert "2 other call(s) from 2 caller number(s)" in cue["detail"]
    # fused as the (hand-set) fusion says: the same verdict plus the cue's weight in logit units
    assert [e for e in seen["evidence"] if e != cue] == plain["evidence"]
    gain = _logit(seen["robot_probability"]) - _logit(plain["robot_probability"])
    assert gain == pytest.approx(cue["weight"])
    assert _counts(index) == counts  # read only: analysing a call never records it
    assert main(["analyze", str(paths[2]), "--prompt-index", str(tmp_path / "none.sqlite")]) == 2
    assert not (tmp_path / "none.sqlite").exists()
    assert "no such prompt index" in capsys.readouterr().err


def test_read_only_index_looks_up_and_records_nothing(
    prints: dict[str, list[CallPrint]], tmp_path: Path
) -> None:
    path = tmp_path / "i.sqlite"
    with pytest.raises(FileNotFoundError, match="no such prompt index"):
        PromptIndex(path, read_only=True)
    assert not path.exists()
    with PromptIndex(path) as index:
        campaign, _ = index.add(prints["p0"][0])
    with PromptIndex(path, read_only=True) as index:
        found = index.match(prints["p0"][1])
        assert found is not None and found.campaign_id == campaign
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            index.add(prints["p0"][2])
    with sqlite3.connect(path) as db:  # an index written before sightings kept their method
        db.execute("ALTER TABLE sightings DROP COLUMN method")
    with PromptIndex(path, read_only=True) as index:
        assert index.match(prints["p0"][0]) == PromptMatch(campaign, "audio", math.inf, 1.0)
    with PromptIndex(path) as index:  # opened for writing: the column comes back
        assert index.add(prints["p0"][2])[0] == campaign
        assert index.sightings(campaign).other_calls == 2


def test_an_index_of_another_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    PromptIndex(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value='landmarks-v0' WHERE key='format'")
    with pytest.raises(ValueError, match="format"):
        PromptIndex(path)


# --- through a batch ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def batch_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A batch over 3 prompts x 3 replays, 2 live calls and 3 bad rows; returns (out, index)."""
    folder = tmp_path_factory.mktemp("batch")
    manifest = make_corpus(folder, prompts=3, replays=3, live=2)
    out, index = folder / "results.parquet", folder / "prompts.sqlite"
    options = BatchOptions(out=out, workers=2, prompt_index=str(index))
    run_batch(
        discover_calls(manifest), options, config=DetectorConfig(), detector_factory=FakeFactory()
    )
    return out, index


def test_batch_assigns_campaigns_by_prompt(batch_run: tuple[Path, Path]) -> None:
    rows = read_rows(batch_run[0])
    by_group: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        if row["status"] == "ok":
            by_group[row["call_id"].split("_")[0]].add(row["campaign_id"])
            replay = row["call_id"].startswith("p")
            assert row["prompt_other_calls"] == (2 if replay else 0)
            assert row["prompt_other_numbers"] == (2 if replay else 0)
            assert row["campaign_match"] in ("new", "audio")
        else:
            assert row["campaign_id"] is None
    assert all(len(ids) == 1 for ids in by_group.values()), by_group
    assert len(set().union(*by_group.values())) == 5  # p0, p1, p2, live0, live1


def _prompt_cue(row: dict[str, Any]) -> dict[str, Any] | None:
    evidence = json.loads(row["verdict_json"])["evidence"]
    cues = [e for e in evidence if e["name"] == "prompt_seen_before"]
    assert len(cues) <= 1
    return cues[0] if cues else None


def test_batch_verdicts_carry_the_prompt_heard_in_earlier_calls(
    batch_run: tuple[Path, Path],
) -> None:
    detector = FakeFactory()(DetectorConfig())
    rows = [r for r in read_rows(batch_run[0]) if r["status"] == "ok"]
    for row in rows:
        cue = _prompt_cue(row)
        earlier = int(row["call_id"].split("_")[1]) if row["call_id"].startswith("p") else 0
        if not earlier:  # the first call of a prompt (or a unique call): nothing heard before
            assert cue is None
            continue
        assert cue is not None and cue["value"] == earlier
        assert f"{earlier} earlier call(s) from {earlier} caller number(s)" in cue["detail"]
        assert "prompt_seen_before" in [c["name"] for c in row["top_cues"]]
        # the worker's verdict, fused again with the cue's (hand-set) weight
        worker = detector.detect_audio(load_audio(row["path"], limits=AudioLimits()))
        gain = _logit(row["robot_probability"]) - _logit(worker.robot_probability)
        assert gain == pytest.approx(cue["weight"])
        verdict = Verdict.from_dict(json.loads(row["verdict_json"]))
        assert row["label"] == verdict.label and verdict.provenance == worker.provenance
    assert sum(_prompt_cue(r) is not None for r in rows) == 6  # second and third of 3 prompts


def test_resume_and_rerun_with_a_prompt_index_give_the_rows_of_one_run(
    batch_run: tuple[Path, Path], tmp_path: Path
) -> None:
    whole, _ = batch_run
    calls = discover_calls(whole.parent / "manifest.csv")
    out = tmp_path / "resumed.parquet"
    journal = Journal(journal_path(out))  # a run that died after these calls (not in order)
    detector = FakeFactory()(DetectorConfig())
    journal.append([analyse_call(detector, c) for c in calls[4:9]])
    journal.close()
    options = BatchOptions(out=out, workers=1, prompt_index=str(tmp_path / "prompts.sqlite"))

    def stable(path: Path) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k not in VOLATILE_COLUMNS} for r in read_rows(path)]

    for skipped in (5, len(calls)):  # resume; then everything done, finalised again
        summary = run_batch(calls, options, config=DetectorConfig(), detector_factory=FakeFactory())
        assert summary.skipped == skipped
        assert stable(out) == stable(whole)


def test_a_later_batch_recognises_an_earlier_prompt(
    batch_run: tuple[Path, Path], tmp_path: Path
) -> None:
    out, index = batch_run
    earlier = {r["call_id"]: r["campaign_id"] for r in read_rows(out)}
    (tmp_path / "calls").mkdir()
    make_call(
        tmp_path / "calls" / "again",
        synth_prompt(1000, duration_s=6.0),
        fmt="wav_alaw",
        gain_db=-9.0,
        lead_s=1.3,
        seed=99,
    )  # fmt: skip  (prompt p0 of make_corpus)
    later = tmp_path / "later.parquet"
    options = BatchOptions(out=later, workers=1, prompt_index=str(index))
    run_batch(discover_calls(tmp_path / "calls"), options, config=DetectorConfig(),
              detector_factory=FakeFactory())  # fmt: skip
    (row,) = read_rows(later)
    assert row["campaign_id"] == earlier["p0_0"] and row["campaign_match"] == "audio"
    assert row["prompt_other_calls"] == 3 and row["prompt_other_numbers"] == 3
    cue = _prompt_cue(row)  # the three calls of the earlier batch
    assert cue is not None and cue["value"] == 3.0 and "3 earlier call(s)" in cue["detail"]


def test_campaign_table_and_html_summary(batch_run: tuple[Path, Path], tmp_path: Path) -> None:
    out, _ = batch_run
    table, page = tmp_path / "c.csv", tmp_path / "c.html"
    parser = argparse.ArgumentParser()
    batch_cmd.register(parser.add_subparsers())
    args = parser.parse_args(["campaigns", str(out), "--table", str(table), "--html", str(page)])
    stdout = io.StringIO()
    with redirect_stdout(stdout):
        assert args.func(args) == 0
    assert json.loads(stdout.getvalue())["campaigns"] == 3
    with table.open() as fh:
        listed = list(csv.DictReader(fh))
    assert len(listed) == 3
    for c in listed:
        assert int(c["calls"]) == 3 and int(c["distinct_callers"]) == 3
        assert c["first_seen"] < c["last_seen"]
        assert int(c["robot_calls"]) + int(c["human_calls"]) + int(c["uncertain_calls"]) == 3
        assert c["topic"] and c["representative_transcript"].startswith("call ")
    html = page.read_text()
    assert html.count("src='data:image/png;base64,") == 4
    assert "<script" not in html and "http://" not in html and "https://" not in html
    every = campaign_table(read_rows(out), min_calls=1)
    assert len(every) == 5 and every[0].calls >= every[-1].calls


def test_the_campaign_table_counts_cannot_tell_apart_from_people() -> None:
    # An uncertain verdict carries the label human_sales_pitch; counted by label it would pass
    # for a live person. Rows from before caller_certainty existed still count by label.
    def row(i: int, label: str, certainty: str | None) -> dict[str, Any]:
        out = {"campaign_id": "c1", "label": label, "status": "ok", "transcript": f"call {i}"}
        return out | ({"caller_certainty": certainty} if certainty else {})

    human, robot = "human_sales_pitch", "electronic_sales_robot"
    rows = [row(0, robot, "robot"), row(1, human, "uncertain"), row(2, human, "person"),
            row(3, robot, None), row(4, human, None)]  # fmt: skip
    (summary,) = campaign_table(rows)
    assert (summary.robot_calls, summary.uncertain_calls, summary.human_calls) == (2, 1, 2)
    assert summary.robot_share == 0.4


def _crop(path: Path, parts: list[np.ndarray], *, fmt: str, seed: int) -> CallPrint:
    """A 30-s call crop: ``parts`` one after another (prompts, other speech, pauses)."""
    return _print(make_call(path, np.concatenate(parts), fmt=fmt, seed=seed), caller=path.name)


def _pause(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * 16_000), dtype=np.float32)


def test_a_prompt_replayed_inside_a_longer_call_matches_the_call_that_founded_it(
    tmp_path: Path,
) -> None:
    """Issue 13: a robot's greeting among other prompts and the callee, at another offset in
    each call: too small a share of either call for ``is_same_prompt``, but one offset agrees."""
    greeting = synth_prompt(600, duration_s=2.0)
    first = _crop(tmp_path / "a", [greeting, _pause(1.5), synth_prompt(601, duration_s=13.0),
                                   _pause(0.5), synth_prompt(602, duration_s=13.0)],
                  fmt="wav_mulaw", seed=1)  # fmt: skip
    later = _crop(tmp_path / "b", [_pause(2.3), greeting, _pause(0.7),
                                   synth_prompt(603, duration_s=13.0), _pause(0.5),
                                   synth_prompt(604, duration_s=12.0)],
                  fmt="amr_nb", seed=2)  # fmt: skip
    m = match_landmarks(first.landmarks, later.landmarks)
    assert not m.is_same_prompt and m.aligned >= CALL_MIN_ALIGNED  # the case the rule is for
    with PromptIndex() as index:
        campaign, _ = index.add(first)
        found = index.match(later)
    assert found is not None and found.campaign_id == campaign and found.method == "audio"


def test_a_new_recording_of_the_same_words_does_not_match(tmp_path: Path) -> None:
    """A near miss: the same words said again (slightly slower, half a semitone higher), as an
    agent reading the same script twice says them; only a replay of the same audio matches."""
    import librosa

    script = synth_prompt(610, duration_s=6.0)
    again = librosa.effects.pitch_shift(
        librosa.effects.time_stretch(script, rate=0.96), sr=16_000, n_steps=0.5
    )
    first = _crop(tmp_path / "a", [script, _pause(1.0), synth_prompt(611, duration_s=20.0)],
                  fmt="wav_mulaw", seed=3)  # fmt: skip
    later = _crop(tmp_path / "b", [_pause(1.2), again.astype(np.float32), _pause(0.8),
                                   synth_prompt(612, duration_s=20.0)],
                  fmt="wav_alaw", seed=4)  # fmt: skip
    with PromptIndex() as index:
        index.add(first)
        assert index.match(later) is None


def test_a_shared_notice_among_live_speech_does_not_count_a_replayed_script_does(
    tmp_path: Path,
) -> None:
    """A call centre plays one recorded notice before each live agent: the index still joins
    the calls, but the notice is a small share of what the caller says, so it weighs nothing.
    A robot's calls replay their prompts at other offsets and little else: full weight."""
    notice = synth_prompt(700, duration_s=2.5)
    agents = [
        _crop(tmp_path / f"agent{k}", [notice, _pause(0.5), synth_prompt(710 + k, duration_s=14.0)],
              fmt=fmt, seed=k)
        for k, (fmt, _, _) in enumerate(VARIANTS)
    ]  # fmt: skip
    greeting, pitch, goodbye = (synth_prompt(720 + k, duration_s=d) for k, d in
                                enumerate((2.0, 6.0, 3.0)))  # fmt: skip
    robots = [
        _crop(tmp_path / f"robot{k}", [greeting, _pause(1.0 + 0.4 * k), pitch,
                                       _pause(2.0 - 0.3 * k), goodbye], fmt=fmt, seed=10 + k)
        for k, (fmt, _, _) in enumerate(VARIANTS)
    ]  # fmt: skip
    got = {}
    for name, calls in (("agent", agents), ("robot", robots)):
        with PromptIndex() as index:
            for call in calls[:3]:
                index.add(call)
            found = index.match(calls[3])
            assert found is not None and found.method == "audio"  # joined either way
            seen = index.sightings(found.campaign_id, exclude_call_key=calls[3].call_key)
            got[name] = (found.share, prompt_evidence(seen, "audio", share=found.share))
    share, evidence = got["agent"]
    assert share < REPLAY_SHARE_NONE
    assert evidence is not None and evidence.weight == 0.0
    assert "does not count" in evidence.detail and "3 个来电号码" in evidence.detail_zh
    share, evidence = got["robot"]
    assert share >= REPLAY_SHARE_FULL
    assert evidence is not None and evidence.weight == pytest.approx(math.log1p(3), abs=1e-4)
    assert "makes up" in evidence.detail


def test_a_sighting_keeps_its_share_and_the_founder_takes_the_largest(tmp_path: Path) -> None:
    notice = synth_prompt(730, duration_s=2.5)
    calls = [
        _crop(tmp_path / f"c{k}", [notice, _pause(0.5), synth_prompt(740 + k, duration_s=14.0)],
              fmt=fmt, seed=20 + k)
        for k, (fmt, _, _) in enumerate(VARIANTS[:3])
    ]  # fmt: skip
    with PromptIndex(tmp_path / "i.sqlite") as index:
        index.add(calls[0])
        _, first = index.add(calls[1])
        _, other = index.add(calls[2])
        assert first is not None and other is not None
        again = index.match(calls[1])  # seen before: the share it had then
        assert again is not None and again.share == first.share
        founder = index.match(calls[0])
        assert founder is not None and founder.share == max(first.share, other.share)


def test_the_campaign_table_gives_the_median_replayed_share() -> None:
    """A call centre's campaign (its notice a small share of each call) and a robot's read
    apart; a call with no audio match (the first, or a text match) does not count."""

    def row(campaign: str, share: float | None, method: str = "audio") -> dict[str, Any]:
        evidence = [] if share is None else [{"name": "prompt_seen_before", "params": [
            ["calls", 2.0], ["method", method], ["share", share]]}]  # fmt: skip
        return {"campaign_id": campaign, "label": "human_sales_pitch", "status": "ok",
                "verdict_json": json.dumps({"evidence": evidence})}  # fmt: skip

    rows = [row("notice", None), row("notice", 0.1), row("notice", 0.12), row("notice", 0.3),
            row("robot", None), row("robot", 0.9), row("robot", 1.0, "text"),
            row("plain", None), row("plain", None)]  # fmt: skip
    shares = {c.campaign_id: c.replayed_share for c in campaign_table(rows)}
    assert shares == {"notice": 0.12, "robot": 0.9, "plain": None}


def test_the_share_counts_the_prompts_of_every_exemplar_of_the_campaign(tmp_path: Path) -> None:
    """A robot call whose prompts two exemplars of its campaign hold between them (the first call
    heard its objection handler, a longer later call its pitches) replays all of its speech."""
    greeting, objection, pitch, goodbye, pitch2 = (
        synth_prompt(750 + k, duration_s=d) for k, d in enumerate((3.0, 6.0, 6.0, 4.0, 6.0))
    )
    first = _crop(tmp_path / "a", [greeting, _pause(0.8), objection], fmt="wav_mulaw", seed=30)
    longer = _crop(tmp_path / "b", [greeting, _pause(0.6), pitch, _pause(1.1), goodbye,
                                    _pause(0.9), pitch2], fmt="amr_nb", seed=31)  # fmt: skip
    call = _crop(tmp_path / "c", [greeting, _pause(1.0), objection, _pause(0.7), goodbye,
                                  _pause(1.2), pitch2], fmt="mp3", seed=32)  # fmt: skip
    with PromptIndex() as index:
        campaign, _ = index.add(first)
        assert index.add(longer)[0] == campaign
        (exemplars,) = index.query("SELECT COUNT(*) FROM prompts WHERE campaign_id=?", (campaign,))
        assert exemplars == (2,)
        found = index.match(call)
    assert found is not None and found.campaign_id == campaign
    assert found.share > 0.9  # one exemplar alone holds at most two thirds of it


def _mono_robot_calls(folder: Path) -> tuple[list[CallPrint], list[Turns]]:
    """Four mono calls of one robot: its three prompts, each followed by 7 s of a callee's
    reply (other words in every call), and the caller's turns of each (the prompts)."""
    greeting, pitch, goodbye = (synth_prompt(760 + k, duration_s=d) for k, d in
                                enumerate((2.0, 6.0, 3.0)))  # fmt: skip
    calls, turns = [], []
    for k, (fmt, _, _) in enumerate(VARIANTS):
        replies = [synth_prompt(770 + 3 * k + j, duration_s=7.0) for j in range(3)]
        parts = [greeting, _pause(0.5), replies[0], _pause(0.5), pitch, _pause(0.5), replies[1],
                 _pause(0.5), goodbye, _pause(0.5), replies[2]]  # fmt: skip
        starts = 0.5 + np.cumsum([0] + [p.size / 16_000 for p in parts])  # make_call's lead
        turns.append(tuple((float(starts[i]), float(starts[i + 1])) for i in (0, 4, 8)))
        calls.append(_crop(folder / f"mono{k}", parts, fmt=fmt, seed=40 + k))
    return calls, turns


def test_a_mono_robot_s_share_counts_only_the_caller_turns(tmp_path: Path) -> None:
    """On a mono recording the callee's replies are in the fingerprint too: over the whole mix
    a robot's replayed prompts are a small share; over the caller's turns (the verdict's
    ``caller_turns``) they are nearly all of it."""
    calls, turns = _mono_robot_calls(tmp_path)
    with PromptIndex() as index:
        for call in calls[:3]:
            index.add(call)
        whole = index.match(calls[3])
        own = index.match(dataclasses.replace(calls[3], caller_turns=turns[3]))
    assert whole is not None and own is not None and whole.campaign_id == own.campaign_id
    assert whole.share < REPLAY_SHARE_FULL <= 0.9 < own.share


def test_a_batch_row_s_share_counts_the_caller_turns_of_its_verdict(tmp_path: Path) -> None:
    calls, turns = _mono_robot_calls(tmp_path)

    def row(call: CallPrint, caller_turns: Turns | None) -> dict[str, Any]:
        verdict = {"label": "human_sales_pitch", "caller_turns": caller_turns}
        return {"status": "ok", "audio_sha256": call.call_key,
                "audio_fingerprint": landmarks_to_bytes(call.landmarks),
                "verdict_json": json.dumps(verdict),
                "caller_number": call.caller_number}  # fmt: skip

    shares = []
    for own in (None, turns[3]):
        with PromptIndex() as index:
            for call, caller_turns in zip(calls[:3], turns, strict=False):
                assign_campaign(row(call, caller_turns), index=index)
            evidence = assign_campaign(row(calls[3], own), index=index)
        assert evidence is not None
        shares.append(float(str(dict(evidence.params)["share"])))
    assert shares[0] < REPLAY_SHARE_FULL <= 0.9 < shares[1]
    assert verdict_caller_turns(None) is None
    assert verdict_caller_turns(json.dumps({"caller_turns": [[0.5, 2.0]]})) == ((0.5, 2.0),)
