"""The page's view of a verdict (service.http.display): which side is the caller, who said what."""

from __future__ import annotations

import dataclasses

from service.http.display import DisplayOut, display_json
from tests.pipeline.test_report import make_verdict


def test_a_split_mono_call_names_the_caller_s_voice_and_the_callee_s_lines() -> None:
    """The default transcript is 0.5-3.0 s and 6.0-9.0 s; the caller's voice speaks 6-9 s."""
    verdict = dataclasses.replace(make_verdict(), caller_turns=((6.0, 9.0),))
    display = DisplayOut.model_validate(display_json(verdict))
    assert display.speakers == ["callee", "caller"]
    assert display.caller_side is not None
    assert display.caller_side.en.endswith("speaking 3 s in 1 turn(s), first at 0:06.0")
    assert "来电方判为说话 3 秒、共 1 段、首次在 0:06.0" in display.caller_side.zh
    caller_lines = {i for h in display.highlights for i in h.caller_segments}
    assert 0 not in caller_lines


def test_stereo_names_the_channel_and_one_voice_mono_names_nothing() -> None:
    stereo = DisplayOut.model_validate(display_json(make_verdict(stereo=True)))
    assert stereo.caller_side is not None and stereo.caller_side.en.startswith(
        "Caller on channel 0"
    )
    assert stereo.speakers == ["caller", "caller"]  # the callee's line is its own transcript's
    mono = DisplayOut.model_validate(display_json(make_verdict()))
    assert mono.caller_side is None and mono.speakers == ["caller", "caller"]


def test_telephone_tones_are_named_in_both_languages_or_not_at_all() -> None:
    assert DisplayOut.model_validate(display_json(make_verdict())).tones is None
    verdict = dataclasses.replace(make_verdict(), tones=((0.0, 2.0),))
    tones = DisplayOut.model_validate(display_json(verdict)).tones
    assert tones is not None
    assert tones.en.startswith("Telephone tones (ringing, a busy tone or beeps) for 2.0 s")
    assert tones.zh.startswith("电话信号音（回铃音、忙音或提示音）共 2.0 秒")


def test_a_set_aside_queue_announcement_is_named_in_both_languages_or_not_at_all() -> None:
    from tests.pipeline.test_queue import queue_evidence

    assert DisplayOut.model_validate(display_json(make_verdict())).queue is None
    note = queue_evidence()
    verdict = make_verdict()
    verdict = dataclasses.replace(verdict, evidence=(*verdict.evidence, note))
    queue = DisplayOut.model_validate(display_json(verdict)).queue
    assert queue is not None
    assert queue.en.startswith("A recorded queue announcement played 2 times (14.6 s in all")
    assert queue.zh.startswith("来电方线路上播放了 2 次排队录音")
