"""EncoderMemo and SpeechFrames without a Whisper model."""

from __future__ import annotations

import numpy as np

from models.asr import EncoderMemo


def test_memo_holds_outputs_only_during_a_session() -> None:
    calls: list[float] = []

    def encode(features: np.ndarray) -> float:
        calls.append(float(features.sum()))
        return float(features.sum())

    memo = EncoderMemo(encode, size=2)
    a, b, c = (np.full((2, 3), v, np.float32) for v in (1.0, 2.0, 3.0))
    memo(a), memo(a)
    assert len(calls) == 2  # no session: every call encodes
    with memo.session():
        assert memo(a) == memo(a.copy()) == 6.0  # same features, one pass
        assert len(calls) == 3
        memo(b), memo(c)  # size 2: a is dropped, the oldest
        memo(a)
        assert len(calls) == 6
        with memo.session():  # overlapping sessions share what is held
            memo(c)
        assert len(calls) == 6
        memo(c)
        assert len(calls) == 6
    memo(c)  # the last session ended: nothing carries over to the next recording
    assert len(calls) == 7


def test_a_watcher_hears_every_window_its_thread_encodes_held_or_not() -> None:
    import threading

    memo = EncoderMemo(lambda f: float(f.sum()))
    seen: list[float] = []
    a, b = (np.full((2, 3), v, np.float32) for v in (1.0, 2.0))
    with memo.session(), memo.watch(lambda features, out: seen.append(out)):
        memo(a), memo(a)  # the second is held: still heard
        worker = threading.Thread(target=memo, args=(b,))  # another thread: not this watcher's
        worker.start()
        worker.join()
    memo(b)  # after the watch: nothing more
    assert seen == [6.0, 6.0]
