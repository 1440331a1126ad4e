"""A recording that changes language: which stretches are decoded again (no Whisper model)."""

from __future__ import annotations

from models.asr import LanguageRun, WindowLanguage, most_heard, other_language_runs


def window(
    start_s: float, language: str, p: float = 0.99, content_s: float = 30.0
) -> WindowLanguage:
    return WindowLanguage(start_s, content_s, language, p)


def test_adjacent_windows_of_one_other_language_make_one_run_to_the_next_window() -> None:
    windows = [window(0, "en"), window(28, "zh", 0.97), window(57, "zh", 0.95), window(85, "en")]
    assert other_language_runs(windows, "en", 100.0) == [LanguageRun(28, 85, "zh", 0.95)]


def test_the_last_window_runs_to_the_end_and_repeats_count_once() -> None:
    windows = [window(0, "en"), window(29, "zh", content_s=20.0), window(29, "zh", content_s=20.0)]
    assert other_language_runs(windows, "en", 49.0) == [LanguageRun(29, 49.0, "zh", 0.99)]


def test_unsure_or_short_windows_keep_the_recording_s_language() -> None:
    windows = [window(0, "en"), window(30, "zh", p=0.85), window(60, "zh", content_s=4.0)]
    assert other_language_runs(windows, "en", 64.0) == []
    assert other_language_runs([window(0, "en")], "en", 30.0) == []


def test_the_language_of_most_of_the_speech_is_the_transcript_s() -> None:
    samples_s = 16_000
    assert most_heard([], "en", 0.8, 90 * samples_s) == ("en", 0.8)
    zh_most = [LanguageRun(20, 90, "zh", 0.93)]
    assert most_heard(zh_most, "en", 0.8, 90 * samples_s) == ("zh", 0.93)
    assert most_heard([LanguageRun(60, 90, "zh", 0.93)], "en", 0.8, 90 * samples_s) == ("en", 0.8)


def test_a_window_is_found_where_it_starts_not_at_an_earlier_frame_like_its_first() -> None:
    import numpy as np

    from models.asr import _window_start

    rng = np.random.default_rng(0)
    features = rng.standard_normal((4, 50)).astype(np.float32)
    features[:, 10:14] = features[:, 30:34] = -1.5  # digital silence: the same frames twice
    window = np.zeros((4, 30), np.float32)  # the decoder's cut from frame 30, padded to 30
    window[:, :20] = features[:, 30:]
    assert _window_start(features, window[:, :8], after=0) == 30
    assert _window_start(features, window[:, :8], after=31) is None
    assert _window_start(features, features[:, 45:53], after=20) == 45  # the last, short window
