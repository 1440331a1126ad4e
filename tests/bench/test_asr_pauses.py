"""bench/asr_pauses.py's recordings and paired change (the bench itself runs Whisper)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.bench.support import load_bench

B = load_bench("asr_pauses")


def _rows(n: int, seconds: float) -> tuple[list[object], dict[str, np.ndarray]]:
    from models.training.corpus import CorpusRow

    rows = [
        CorpusRow(id=f"tts_en/{i}", path="", root="cache", label="robot", kind="tts",
                  language="en", speaker="", engine="", engine_family="", source="tts_en",
                  group_id=f"g{i}", campaign="", split="test", duration_s=seconds,
                  orig_sr_hz=16_000, licence="", text=f"word{i}", parts=(), extra=())
        for i in range(n)
    ]  # fmt: skip
    audio = {r.id: np.full(int(seconds * 16_000), 0.5, np.float32) for r in rows}
    return rows, audio


def test_each_recording_holds_its_share_of_clips_once_between_pauses() -> None:
    rows, audio = _rows(10, 2.0)
    recs = B.joined_recordings(
        "en TTS sales", rows, audio, count=3, speech_s=5.0, rng=np.random.default_rng(0)
    )
    assert [len(r.ids) for r in recs] == [3, 3, 3]  # 6 s each: the clip that passes 5 s is in
    ids = [i for r in recs for i in r.ids]
    assert len(set(ids)) == len(ids)
    for r in recs:
        assert r.reference == " ".join(f"word{i.split('/')[1]}" for i in r.ids)
        clip = r.samples == 0.5
        assert clip.sum() == 3 * 32_000  # the clips whole; the rest is hiss, far below them
        assert not clip[0] and not clip[-1]
        assert np.abs(r.samples[~clip]).max() < 0.02
        # four pauses, each 0.3-6 s
        assert 4 * 0.3 * 16_000 <= (~clip).sum() <= 4 * 6.0 * 16_000


def test_paired_change_draws_the_same_recordings_for_both(monkeypatch: pytest.MonkeyPatch) -> None:
    # A stand-in error rate (share of recordings not word for word right): jiwer and cn2an,
    # which the bench scores with, belong to the `train` extra.
    def share_wrong(recordings: list[object], hyps: list[str], set_name: str) -> float:
        return float(np.mean([h != r.reference for r, h in zip(recordings, hyps, strict=True)]))  # type: ignore[attr-defined]

    monkeypatch.setattr(B, "score", share_wrong)
    rows, audio = _rows(4, 1.0)
    recs = B.joined_recordings(
        "en TTS sales", rows, audio, count=4, speech_s=1.0, rng=np.random.default_rng(1)
    )
    right = [r.reference for r in recs]
    assert B.paired_change(recs, right, right, "en TTS sales", rng=np.random.default_rng(2)) == (
        0.0, 0.0, 0.0,
    )  # fmt: skip
    one_wrong = ["nothing", *right[1:]]
    change, low, high = B.paired_change(
        recs, right, one_wrong, "en TTS sales", rng=np.random.default_rng(2), draws=200
    )
    assert change == pytest.approx(0.25)  # one recording of four
    # paired: a draw without the wrong recording changes nothing, never less than nothing
    assert low == 0.0 and change < high <= 1.0
