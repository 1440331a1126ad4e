"""The one way every entry point (CLI analyze/evidence, HTTP API, batch workers) gets a detector.

The configuration is ``robocall.toml`` (``--config``, else ``ROBOCALL_CONFIG``, else defaults)
with flag or deployment overrides on top (:func:`resolve_config`); the detector is built by
``models.loading.load_detector`` (cached on the frozen config) and nothing else, then given the
mono two-party diarizer (``models.diarize``), whose voice encoder loads on the first mono
recording that needs it.
"""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.config import DetectorConfig, load_config
from service.settings import get_settings

if TYPE_CHECKING:
    from pipeline.detector import Detector


def resolve_config(config_path: Path | None = None, **overrides: Any) -> DetectorConfig:
    """``DetectorConfig`` from a TOML file plus overrides (``section__field=value``; None = unset).

    Parameters
    ----------
    config_path : Path, optional
        ``robocall.toml``; default ``ROBOCALL_CONFIG`` (:func:`service.settings.get_settings`).
    """
    path = config_path if config_path is not None else get_settings().config_path
    return load_config(path, **overrides)


def load_detector(config: DetectorConfig) -> Detector:
    """``models.loading.load_detector(config)``, imported only now (heavy: torch, Whisper).

    Looked up on the module at call time, so tests can replace ``models.loading.load_detector``.
    A detector without a diarizer gets ``models.diarize.TwoPartyDiarizer()`` (issue 13: a mono
    call-recorder file holds both parties); it costs nothing until a mono recording has speech
    enough for two parties.

    Raises
    ------
    ModelNotAvailableError
        Missing weights (from ``models.loading``).
    """
    loading: Any = importlib.import_module("models.loading")
    detector: Detector = loading.load_detector(config)
    if detector.diarizer is None:
        diarize: Any = importlib.import_module("models.diarize")
        detector = dataclasses.replace(detector, diarizer=diarize.TwoPartyDiarizer())
    return detector
