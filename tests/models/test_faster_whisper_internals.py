"""faster-whisper internals that ``models/asr.py`` relies on (``EncoderMemo``, ``encode_windows``).

faster-whisper is pinned in ``pyproject.toml`` because these are not its public API: the memo
answers the decoder's ``self.encode(segment)`` calls, which only works while the decoder looks
``encode`` up on the instance and cuts and pads its 30 s windows as :func:`encode_windows` does.
When an upgrade breaks one of these, the test names the pinned version and the internal.
"""

from __future__ import annotations

import inspect
import re
import tomllib
from pathlib import Path

import faster_whisper
from faster_whisper import transcribe as fw_transcribe

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _pinned() -> str:
    deps = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    pins = [d.split("==", 1)[1] for d in deps if re.match(r"faster-whisper\s*==", d)]
    assert pins, "pyproject.toml must pin faster-whisper with == (EncoderMemo uses its internals)"
    return pins[0].strip()


def _need(condition: bool, internal: str) -> None:
    assert condition, (
        f"faster-whisper {faster_whisper.__version__} (pinned {_pinned()}) changed {internal}: "
        "models/asr.py EncoderMemo / encode_windows rely on it; re-check them before re-pinning"
    )


def test_installed_version_is_the_pinned_one() -> None:
    assert faster_whisper.__version__ == _pinned(), (
        f"faster-whisper {faster_whisper.__version__} is installed but {_pinned()} is pinned: "
        "models/asr.py EncoderMemo relies on its internals (WhisperModel.encode, "
        "generate_segments' window cuts); check them, then update the pin"
    )


def test_decoder_calls_encode_on_the_instance() -> None:
    model = fw_transcribe.WhisperModel
    _need(list(inspect.signature(model.encode).parameters) == ["self", "features"],
          "WhisperModel.encode(self, features)")  # fmt: skip
    src = inspect.getsource(model.generate_segments)
    _need("self.encode(segment)" in src, "WhisperModel.generate_segments calling self.encode")


def test_decoder_cuts_windows_as_encode_windows_does() -> None:
    src = inspect.getsource(fw_transcribe.WhisperModel)
    _need("content_frames = features.shape[-1] - 1" in src, "the dropped last feature frame")
    _need("segment = features[:, seek : seek + segment_size]" in src, "the window cut")
    _need("segment = pad_or_trim(segment)" in src, "pad_or_trim of each window")
    _need("self.feature_extractor.nb_max_frames" in src, "feature_extractor.nb_max_frames")
    from faster_whisper.feature_extractor import FeatureExtractor

    _need(FeatureExtractor().nb_max_frames == 3000, "FeatureExtractor.nb_max_frames == 3000")


def test_helpers_asr_imports_exist() -> None:
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    _need(callable(pad_or_trim), "faster_whisper.audio.pad_or_trim")
    _need(callable(get_speech_timestamps) and VadOptions() is not None, "faster_whisper.vad")
    from faster_whisper.vad import SpeechTimestampsMap

    params = list(inspect.signature(SpeechTimestampsMap.get_original_time).parameters)
    _need(
        params == ["self", "time", "chunk_index", "is_end"], "SpeechTimestampsMap.get_original_time"
    )
    _need(callable(SpeechTimestampsMap.get_chunk_index), "SpeechTimestampsMap.get_chunk_index")


def test_what_decoding_a_stretch_in_another_language_uses() -> None:
    params = inspect.signature(fw_transcribe.WhisperModel.transcribe).parameters
    _need("clip_timestamps" in params, "WhisperModel.transcribe(clip_timestamps=[start, end])")
    from faster_whisper.feature_extractor import FeatureExtractor
    from faster_whisper.vad import SpeechTimestampsMap

    _need(FeatureExtractor().time_per_frame == 0.01, "FeatureExtractor.time_per_frame == 0.01")
    chunks = [{"start": 16_000, "end": 32_000}]
    _need(SpeechTimestampsMap(chunks, 16_000).get_original_time(0.5) == 1.5,
          "SpeechTimestampsMap.get_original_time")  # fmt: skip
