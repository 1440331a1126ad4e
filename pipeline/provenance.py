"""What produced a verdict: our version, the models' sha256, the config hash, library versions."""

from __future__ import annotations

import datetime as dt
import functools
from importlib import metadata

from pipeline.config import DetectorConfig
from pipeline.types import ModelInfo, Provenance

PACKAGE = "robocall-detector"
# Distributions whose versions change what a verdict says.
_LIBRARIES = ("numpy", "librosa", "av", "faster-whisper", "ctranslate2", "openai-whisper", "torch")


@functools.cache
def _versions() -> tuple[str, tuple[tuple[str, str], ...]]:
    def version(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    libs = tuple((d, v) for d in _LIBRARIES if (v := version(d)) is not None)
    return version(PACKAGE) or "0+unknown", libs


def make_provenance(
    *,
    models: tuple[ModelInfo, ...],
    config: DetectorConfig,
    fusion_method: str,
    asr_input: str = "",
) -> Provenance:
    package_version, libraries = _versions()
    return Provenance(
        package_version=package_version,
        models=models,
        config_hash=config.config_hash(),
        fusion_method=fusion_method,
        libraries=libraries,
        analysed_at_utc=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        asr_input=asr_input,
    )
