"""Frozen, validated configuration records.

``robocall.toml`` (or any TOML file with the same sections) is the base; CLI flags override single
fields with :func:`dataclasses.replace`. Every field is hashable so a config can key a cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Backend = Literal["faster", "openai"]


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")


@dataclass(frozen=True, slots=True)
class AudioLimits:
    max_bytes: int = 200 * 1024 * 1024  # refuse uploads larger than this before decoding
    max_duration_s: float = 30 * 60.0  # refuse calls longer than this (header probe, then decode)
    max_channels: int = 2  # one party per channel at most
    min_sample_rate_hz: int = 4_000  # below this nothing intelligible is left
    max_sample_rate_hz: int = 384_000  # above this the header is lying or the file is not a call
    min_duration_s: float = 0.3  # shorter than this cannot be analysed
    silence_rms_dbfs: float = -70.0  # a channel whose speech-band RMS stays below is silent
    # A recording whose loudest speech-band frame stays below quiet_dbfs is raised so that frame
    # reaches raise_to_dbfs (sample peaks kept under full scale) before anything measures it:
    # the speech detector ignores frames under -55 dBFS (pipeline/vad.py), so the quieter
    # syllables of such a recording were lost and a call full of speech was "too short to judge".
    quiet_dbfs: float = -40.0
    raise_to_dbfs: float = -20.0

    def __post_init__(self) -> None:
        if self.max_bytes <= 0:
            raise ValueError(f"max_bytes must be > 0, got {self.max_bytes}")
        _check_range("max_duration_s", self.max_duration_s, 1.0, 24 * 3600.0)
        _check_range("max_channels", self.max_channels, 1, 8)
        _check_range("min_sample_rate_hz", self.min_sample_rate_hz, 1_000, 48_000)
        _check_range("max_sample_rate_hz", self.max_sample_rate_hz, self.min_sample_rate_hz, 1e6)
        _check_range("min_duration_s", self.min_duration_s, 0.0, self.max_duration_s)
        _check_range("silence_rms_dbfs", self.silence_rms_dbfs, -150.0, 0.0)
        _check_range("quiet_dbfs", self.quiet_dbfs, self.silence_rms_dbfs, 0.0)
        _check_range("raise_to_dbfs", self.raise_to_dbfs, self.quiet_dbfs, 0.0)


@dataclass(frozen=True, slots=True)
class AsrConfig:
    backend: Backend = "faster"  # "faster" (CTranslate2, int8) or "openai" (openai-whisper)
    languages: tuple[str, ...] = ("zh", "en")  # language detection is restricted to these
    device: str = "auto"  # "auto" | "cpu" | "cuda"
    compute_type: str = "int8"  # faster backend only; CPU -> int8, CUDA -> float16
    beam_size: int = 1  # greedy decoding: 2-3x faster than beam 5, adequate for cues
    word_timestamps: bool = True  # per-word times for evidence spans and latency
    vad_filter: bool = True  # decode only the speech Silero VAD finds (both backends)
    no_speech_threshold: float = 0.6  # drop a segment above this no-speech probability...
    logprob_threshold: float = -1.0  # ...when its average log-probability is also below this
    compression_ratio_threshold: float = 2.4  # drop looping / repeated-token segments
    cpu_threads: int = 0  # 0 = library default (all cores)

    def __post_init__(self) -> None:
        if self.backend not in ("faster", "openai"):
            raise ValueError(f"backend must be 'faster' or 'openai', got {self.backend!r}")
        if not self.languages:
            raise ValueError("languages must name at least one language")
        _check_range("beam_size", self.beam_size, 1, 10)
        _check_range("no_speech_threshold", self.no_speech_threshold, 0.0, 1.0)
        _check_range("compression_ratio_threshold", self.compression_ratio_threshold, 1.0, 10.0)
        _check_range("cpu_threads", self.cpu_threads, 0, 256)


@dataclass(frozen=True, slots=True)
class FusionConfig:
    # robot_probability >= threshold -> electronic_sales_robot; None = the fitted fusion's
    # operating point (chosen on dev, models/weights/FUSION.md), 0.5 without a fitted fusion
    threshold: float | None = None
    bias: float = -0.5  # prior logit of the hand-set sum (a fitted fusion model has its own)
    weight_scale: float = 1.0  # multiplies every cue contribution (1 = as fitted / as hand-set)
    sales_threshold: float = 0.5  # sales_probability >= this -> "a sales pitch was heard"

    def __post_init__(self) -> None:
        if self.threshold is not None:
            _check_range("threshold", self.threshold, 0.0, 1.0)
        _check_range("sales_threshold", self.sales_threshold, 0.0, 1.0)
        _check_range("weight_scale", self.weight_scale, 0.0, 10.0)


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    audio: AudioLimits = field(default_factory=AudioLimits)
    asr: AsrConfig = field(default_factory=AsrConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    caller_channel: int | None = None  # force the caller's channel; None = decide from speech

    def __post_init__(self) -> None:
        if self.caller_channel is not None and self.caller_channel not in (0, 1):
            raise ValueError(f"caller_channel must be 0, 1 or None, got {self.caller_channel}")

    def config_hash(self) -> str:
        """sha256 of the canonical JSON of every field (first 16 hex digits)."""
        blob = json.dumps(dataclasses.asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


_SECTIONS: dict[str, type[Any]] = {"audio": AudioLimits, "asr": AsrConfig, "fusion": FusionConfig}


def load_config(path: Path | None = None, **overrides: Any) -> DetectorConfig:
    """Read a TOML file (sections ``[audio]``, ``[asr]``, ``[fusion]``) and apply overrides.

    Parameters
    ----------
    path : Path or None
        TOML file; None uses the defaults.
    **overrides
        ``section__field=value`` pairs (e.g. ``asr__backend="openai"``); None values are ignored.

    Raises
    ------
    ValueError
        Unknown section or field, or a value out of range.
    """
    raw: dict[str, Any] = tomllib.loads(path.read_text()) if path else {}
    top = {k: v for k, v in raw.items() if k not in _SECTIONS}
    for key, value in overrides.items():
        if value is None:
            continue
        section, _, name = key.partition("__")
        if name:
            raw.setdefault(section, {})[name] = value
        else:
            top[key] = value
    parts: dict[str, Any] = {}
    for section, cls in _SECTIONS.items():
        values = dict(raw.get(section, {}))
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown field(s) in [{section}]: {', '.join(sorted(unknown))}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        parts[section] = cls(**values)
    unknown_top = set(top) - {"caller_channel"}
    if unknown_top:
        raise ValueError(f"unknown setting(s): {', '.join(sorted(unknown_top))}")
    return DetectorConfig(**parts, **top)
