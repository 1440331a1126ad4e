"""The `robocall` CLI contract: exit codes, JSON lines, readable summary, lazy imports."""

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import models.loading
from pipeline.config import DetectorConfig
from pipeline.detector import Detector
from pipeline.text_cues import RuleTextClassifier
from pipeline.types import Label
from service.cli import main
from service.http.schemas import VerdictJSON
from tests.fakes import FakeTranscriber


@pytest.fixture
def fake_models(monkeypatch: pytest.MonkeyPatch) -> list[DetectorConfig]:
    """Replace the real model loader; returns the configs it was asked for."""
    seen: list[DetectorConfig] = []

    def load(config: DetectorConfig) -> Detector:
        seen.append(config)
        return Detector(FakeTranscriber("您好，请按1了解贷款详情。"), RuleTextClassifier(), config)

    monkeypatch.setattr(models.loading, "load_detector", load)
    return seen


def test_help_is_fast_and_loads_no_model() -> None:
    # Every command builds the whole parser: what a command alone needs (SQLAlchemy for
    # apikeys, the report and pack for evidence) is imported when it runs (issue 17).
    heavy = ("torch", "sqlalchemy", "pipeline.report", "service.evidence.pack", "scipy")
    code = (
        "import sys; from service.cli import main; main(['--help']); "
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("[]")
    assert "analyze" in out.stdout


def test_usage_errors_exit_2(fake_models: list[DetectorConfig]) -> None:
    assert main(["analyze"]) == 2
    assert main(["analyze", "x.wav", "--backend", "vosk"]) == 2
    assert main(["analyze", "x.wav", "--threshold", "2"]) == 2
    assert fake_models == []


def test_json_lines_validate_against_the_verdict_schema(
    fake_models: list[DetectorConfig],
    make_wav: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = make_wav(kind="robot", sr=8000, duration_s=4.0)
    assert main(["analyze", str(path), "--json", "--languages", "zh"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["input"] == str(path)
    VerdictJSON.model_validate_json(json.dumps(record["verdict"]), strict=True)
    assert fake_models[0].asr.languages == ("zh",)


def test_a_bad_file_never_stops_the_others(
    fake_models: list[DetectorConfig],
    make_wav: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good = make_wav(kind="robot", duration_s=3.0)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp3"
    text.write_text("not a recording\n")
    missing = tmp_path / "missing.amr"
    argv = ["analyze", str(empty), str(good), str(text), str(missing), "--json"]
    assert main(argv) == 1
    records = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert [r["input"] for r in records] == argv[1:5]
    codes = [r.get("error", {}).get("code") for r in records]
    assert codes == ["empty_audio", None, "not_audio", "unreadable"]
    assert records[1]["verdict"]["label"] in ("electronic_sales_robot", "human_sales_pitch")


def test_readable_summary(
    fake_models: list[DetectorConfig],
    make_wav: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = make_wav(kind="robot", duration_s=4.0)
    assert main(["analyze", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Verdict:" in out and "robot probability" in out and "\u2013" in out
    assert "请按1" in out  # the transcript
    assert "Why (+ towards robot" in out and "not calibrated" in out
    assert main(["analyze", str(path), "--lang", "zh"]) == 0
    out = capsys.readouterr().out
    assert "判断：" in out and "机器人概率" in out and "依据" in out
    assert "log-odds" not in out and "100 %" not in out


def test_summary_of_an_uncertain_verdict_says_it_cannot_tell_and_shows_the_band() -> None:
    import dataclasses

    from service.commands.analyze import format_summary
    from tests.pipeline.test_report import make_verdict

    verdict = dataclasses.replace(
        make_verdict(label=Label.HUMAN), robot_probability=0.63, threshold=0.9,
        person_threshold=0.1,
    )  # fmt: skip
    en, zh = format_summary(verdict, lang="en"), format_summary(verdict, lang="zh")
    assert "Verdict: Cannot tell whether a robot or a live person called (leans robot, 63 %)" in en
    assert "listen before reporting" in en
    assert "(robot at 90 % or more; cannot tell from 10 %)" in en
    assert "无法判断来电的是机器人还是真人" in zh and "10 % 至 90 % 之间无法判断" in zh
    no_band = format_summary(dataclasses.replace(verdict, person_threshold=None), lang="en")
    assert "cannot tell" not in no_band.lower() and "(robot at 90 % or more)" in no_band


def test_summary_of_a_mono_call_names_the_voice_taken_as_the_caller() -> None:
    import dataclasses

    from service.commands.analyze import format_summary
    from tests.pipeline.test_report import make_verdict

    plain = make_verdict(label=Label.HUMAN)
    assert plain.audio.channels == 1 and "two voices" not in format_summary(plain)
    mono = dataclasses.replace(plain, caller_turns=((2.0, 5.5), (9.0, 12.0), (70.0, 71.5)))
    en, zh = format_summary(mono, lang="en"), format_summary(mono, lang="zh")
    assert "the caller is taken to be the one speaking 8 s in 3 turn(s), first at 0:02.0" in en
    assert "来电方判为说话 8 秒、共 3 段、首次在 0:02.0" in zh
    assert "callee: 您好，现在有一笔低息贷款" in en  # 0.5-3.0 s: 1 s in the caller's turns
    assert "接听方: 您好，现在有一笔低息贷款" in zh


def test_summary_says_which_queue_announcement_was_set_aside() -> None:
    import dataclasses

    from service.commands.analyze import format_summary
    from tests.pipeline.test_queue import queue_evidence
    from tests.pipeline.test_report import make_verdict

    plain = make_verdict()
    assert "queue announcement" not in format_summary(plain)
    note = queue_evidence()
    held = dataclasses.replace(plain, evidence=(*plain.evidence, note))
    en, zh = format_summary(held, lang="en"), format_summary(held, lang="zh")
    assert "A recorded queue announcement played 2 times (14.6 s in all, first at 0:05.4" in en
    assert "排队录音" in zh


def test_summary_says_that_looping_hold_music_was_set_aside() -> None:
    import dataclasses

    from service.commands.analyze import format_summary
    from tests.pipeline.test_queue import hold_music_evidence
    from tests.pipeline.test_report import make_verdict

    plain = make_verdict()
    held = dataclasses.replace(plain, evidence=(*plain.evidence, hold_music_evidence()))
    en, zh = format_summary(held, lang="en"), format_summary(held, lang="zh")
    assert "12.0 s of sound with no words repeats itself exactly (first at 0:03.6)" in en
    assert "not counted as the caller's voice" in en and "hold music" in en
    assert "有 12.0 秒没有话语的声音在原样循环" in zh and "等候音乐" in zh


def test_summary_says_which_telephone_tones_were_left_out() -> None:
    import dataclasses

    from service.commands.analyze import format_summary
    from tests.pipeline.test_report import make_verdict

    plain = make_verdict()
    assert "tones" not in format_summary(plain)
    rang = dataclasses.replace(plain, tones=((0.0, 2.0), (6.0, 8.0)))
    en, zh = format_summary(rang, lang="en"), format_summary(rang, lang="zh")
    assert "Telephone tones (ringing, a busy tone or beeps) for 4.0 s, first at 0:00.0" in en
    assert "left out of the analysis" in en
    assert "电话信号音（回铃音、忙音或提示音）共 4.0 秒、首次在 0:00.0" in zh


def test_summary_of_a_stereo_call_names_the_caller_s_channel() -> None:
    import dataclasses

    from service.commands.analyze import format_summary
    from tests.pipeline.test_report import make_verdict

    stereo = make_verdict(stereo=True)
    reasons = {
        "caller_channel_reason": "channel 0 speaks first (0.4 s) and most (9.8 s of 16.8 s)",
        "caller_channel_reason_zh": "第 0 声道最先开口（0.4 秒）且说话最多",
    }
    stereo = dataclasses.replace(stereo, audio=dataclasses.replace(stereo.audio, **reasons))
    assert "Caller on channel 0: channel 0 speaks first (0.4 s)" in format_summary(
        stereo, lang="en"
    )
    assert "来电方在第 0 声道：第 0 声道最先开口（0.4 秒）" in format_summary(stereo, lang="zh")
    old = dataclasses.replace(
        stereo, audio=dataclasses.replace(stereo.audio, caller_channel_reason_zh="")
    )
    assert "来电方在第 0 声道：channel 0 speaks first" in format_summary(
        old, lang="zh"
    )  # schema < 5
