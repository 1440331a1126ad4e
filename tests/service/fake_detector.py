"""Test helpers for the service: a fake detector, test audio and an app/server factory.

The fake builds a valid :class:`Verdict` directly (no models, no decoding beyond a WAV header), so
the API, store and page tests run in milliseconds. It honours the per-upload hints (caller
channel) through its ``config`` and takes the transcript's language from its (fake) transcriber,
exactly like ``pipeline.detector.Detector``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from pipeline.audio import SNIFF_BYTES, sniff_audio_format
from pipeline.config import AsrConfig, DetectorConfig
from pipeline.errors import NotAudioError, RobocallError
from pipeline.fuse import operating_point
from pipeline.messages import make_evidence
from pipeline.types import (
    ANALYSIS_RATE_HZ,
    Label,
    ModelInfo,
    Verdict,
    Word,
)
from tests import factories
from tests.factories import make_audio_info, make_provenance, make_transcript
from tests.fakes import FakeTranscriber


@dataclass(frozen=True)
class _Model:
    model_info: ModelInfo


@dataclass(frozen=True)
class FakeDetector:
    """``detect(data, name=...) -> Verdict`` without models.

    ``gate``: when given, every call waits for it (to hold jobs in ``running``).
    ``delay_s``: sleep per call. ``error``: raised by every call (what only the analysis can
    find, e.g. no recognised speech; damaged files are refused at upload already).
    """

    config: DetectorConfig = field(default_factory=DetectorConfig)
    gate: threading.Event | None = None
    delay_s: float = 0.0
    error: RobocallError | None = None
    calls: list[str] = field(default_factory=list, compare=False)
    transcriber: FakeTranscriber = field(
        default_factory=lambda: FakeTranscriber(
            model_info=ModelInfo("asr", "fake-whisper", "0" * 64), cfg=AsrConfig()
        ),
        compare=False,
    )
    text_classifier: _Model = _Model(ModelInfo("text", "fake-text", "1" * 64))

    def detect(self, src: bytes, *, name: str | None = None) -> Verdict:
        data = bytes(src)
        if sniff_audio_format(data[:SNIFF_BYTES]) is None:
            raise NotAudioError(f"{name}: not a recording (unknown header)")
        if self.error is not None:
            raise self.error
        self.calls.append(name or "")
        if self.gate is not None:
            self.gate.wait(timeout=30)
        if self.delay_s:
            time.sleep(self.delay_s)
        # The language comes from the transcriber, as in ``pipeline.detector.Detector``, which
        # never reads ``config.asr.languages`` (the transcriber was loaded with its own).
        duration_s = _wav_facts(data)[0]
        heard = self.transcriber.transcribe(
            np.zeros(int(duration_s * ANALYSIS_RATE_HZ), np.float32)
        )
        return make_verdict(
            data, name=name or "upload", config=self.config, language=heard.language
        )


def make_verdict(
    data: bytes, *, name: str, config: DetectorConfig | None = None, language: str = "zh"
) -> Verdict:
    """A plausible verdict for ``data``: robot when the sha256 starts with an even digit.

    ``language`` is the transcript's, as a transcriber reported it (``FakeDetector`` passes its
    fake transcriber's); the Chinese script is used for "zh", its English translation otherwise.
    """
    config = config or DetectorConfig()
    sha = hashlib.sha256(data).hexdigest()
    duration_s, rate, channels = _wav_facts(data)
    is_robot = int(sha[0], 16) % 2 == 0
    lines = (
        ("您好，这里是阳光保险，", "Hello, this is Sunshine Insurance,"),
        ("我们有一款新的理财产品。", "we have a new savings plan for you."),
        ("请问您现在方便吗？", "Is now a good time?"),
    )
    step = duration_s / len(lines)
    transcript = make_transcript(
        language,
        *(
            (round(i * step, 3), round((i + 1) * step, 3), zh if language == "zh" else en)
            for i, (zh, en) in enumerate(lines)
        ),
    )
    transcript = dataclasses.replace(
        transcript,
        segments=tuple(
            dataclasses.replace(
                s, words=(Word(s.start_s, round(s.start_s + step / 2, 3), "x", 0.9),)
            )
            for s in transcript.segments
        ),
    )
    # Real catalogue codes, as the cues write them: both languages, technical figures in
    # params only. The text model's cue spans the whole call (never highlighted), the
    # digital-silence cue was measured and found nothing (weight 0, no span).
    evidence = (
        make_evidence(
            "acoustic",
            "pitch_std_st",
            value=0.9 if is_robot else 3.4,
            weight=1.3 if is_robot else -0.8,
            code="pitch_std_st",
            params={"std_st": 0.9 if is_robot else 3.4, "voiced_s": round(step, 1)},
            span_s=(0.0, round(step, 3)),
        ),
        make_evidence(
            "text",
            "scripted_phrase",
            value=1.0,
            weight=0.9,
            code="scripted_phrase.strong",
            params={"phrases": ("请按1",)},
            span_s=(round(step, 3), round(2 * step, 3)),
        ),
        make_evidence(
            "text",
            "robot_script_text",
            value=7.36 if is_robot else -2.1,
            weight=0.6 if is_robot else 0.0,
            code="robot_script_text.robot" if is_robot else "robot_script_text.neutral",
            params={"log_odds": 7.36 if is_robot else -2.1},
            span_s=(0.0, round(duration_s, 3)),
        ),
        make_evidence(
            "structure",
            "digital_silence_s",
            value=0.0,
            weight=0.0,
            code="digital_silence_s.none",
            params={"silence_s": 0.0, "threshold_dbfs": -90.0},
        ),
    )
    return factories.make_verdict(
        label=Label.ROBOT if is_robot else Label.HUMAN,
        robot_probability=0.87 if is_robot else 0.18,
        threshold=operating_point(config.fusion, None)[0],
        sales_probability=0.95,
        topic="insurance",
        evidence=evidence,
        transcript=transcript,
        audio=make_audio_info(
            name=name,
            sha256=sha,
            size_bytes=len(data),
            container="wav",
            codec="pcm_s16le",
            sample_rate_hz=rate,
            channels=channels,
            duration_s=duration_s,
            caller_channel=config.caller_channel or 0,
            caller_channel_reason="forced"
            if config.caller_channel is not None
            else "mono recording",
        ),
        provenance=make_provenance(
            models=(ModelInfo("asr", "fake-whisper", "0" * 64),),
            config_hash=config.config_hash(),
            fusion_method="fake",
            libraries=(("numpy", np.__version__),),
            analysed_at_utc="2025-01-01T00:00:00Z",
        ),
    )


def _wav_facts(data: bytes) -> tuple[float, int, int]:
    """(duration_s, sample rate, channels) of a WAV, or a 6 s mono 8 kHz guess for anything else."""
    if data.startswith(b"RIFF"):
        with contextlib.suppress(RuntimeError, sf.LibsndfileError):
            info = sf.info(io.BytesIO(data))
            return float(info.duration), int(info.samplerate), int(info.channels)
    return 6.0, 8000, 1


def wav_bytes(
    *, seconds: float = 1.0, rate: int = 8000, freq_hz: float = 220.0, seed: int = 0
) -> bytes:
    """A short mono WAV (sine + a little seeded noise); ``seed`` changes the content hash."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    samples = 0.3 * np.sin(2 * np.pi * freq_hz * t) + 0.01 * rng.standard_normal(t.size)
    buf = io.BytesIO()
    sf.write(buf, samples.astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def live_server(app: Any, *, port: int | None = None) -> Iterator[str]:
    """Run ``app`` under uvicorn on 127.0.0.1 in a thread; yields its base URL."""
    import uvicorn

    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def service_settings(tmp_path: Path, **changes: Any) -> Any:
    """Settings for a test app: data under ``tmp_path``, fast leases, generous limits."""
    from service.settings import Settings

    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "local_mode": True,
        "poll_interval_s": 0.05,
        "job_lease_s": 30.0,
        "shutdown_grace_s": 0.5,
        "rate_limit_per_min": 6000.0,
        "rate_limit_burst": 1000,
        "read_rate_limit_per_min": 60000.0,
    }
    values.update(changes)
    return Settings(**values)
