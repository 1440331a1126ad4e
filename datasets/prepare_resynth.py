"""Synthetic copies of human clips (ASVspoof style): WORLD and Griffin-Lim resynthesis.

Each selected human clip of ``datasets/manifests/shared.jsonl`` (zh and en) is analysed and
resynthesised by one method, chosen by hash: WORLD (PyPI ``pyworld``: DIO + StoneMask f0,
CheapTrick envelope, D4C aperiodicity, 5 ms frames) or Griffin-Lim (librosa, 512-point STFT,
32 iterations, seeded). The copy keeps the speaker, utterance (``group_id``) and split of its
source and is labelled ``robot``: the same voice then appears on both sides of the label, so a
model cannot win by recognising the voice (AISHELL S0150 is one speaker with 500 clips).
Level is matched to the source. Audio: ``$ROBOCALL_CACHE_DIR/corpus/resynth``.

    nice -n 10 python datasets/prepare_resynth.py [--fraction 0.25] [--limit N]
"""

from __future__ import annotations

import importlib.metadata
import logging
import sys
import types
from typing import Any

import numpy as np

from models.training.copies import (
    build_copies,
    clips_to_copy,
    copy_builder_args,
    copy_id,
    copy_row,
)
from models.training.corpus import STORE_RATE_HZ, CorpusRow, hash_unit, read_manifest

log = logging.getLogger("prepare_resynth")
NAME = "resynth"
METHODS = ("world", "griffinlim")
LANGUAGES = ("zh", "en")


def import_pyworld() -> Any:
    """``import pyworld``; pyworld 0.3.5 imports ``pkg_resources``, gone from setuptools >= 81.

    When that import is what fails, a stand-in answering ``get_distribution(name).version``
    (the only use) is registered, rather than pinning an old setuptools for everyone.
    """
    try:
        import pyworld
    except ModuleNotFoundError as error:
        if error.name != "pkg_resources":
            raise
        shim = types.ModuleType("pkg_resources")
        shim.get_distribution = lambda name: types.SimpleNamespace(  # type: ignore[attr-defined]
            version=importlib.metadata.version(name)
        )
        sys.modules["pkg_resources"] = shim
        import pyworld
    return pyworld


def world_copy(x: np.ndarray, sr: int) -> np.ndarray:
    pw = import_pyworld()
    x64 = x.astype(np.float64)
    f0, times = pw.dio(x64, sr, frame_period=5.0)
    f0 = pw.stonemask(x64, f0, times, sr)
    envelope = pw.cheaptrick(x64, f0, times, sr)
    aperiodicity = pw.d4c(x64, f0, times, sr)
    return np.asarray(pw.synthesize(f0, envelope, aperiodicity, sr, 5.0))


def griffinlim_copy(x: np.ndarray, seed: int) -> np.ndarray:
    import librosa

    magnitude = np.abs(librosa.stft(x, n_fft=512, hop_length=128))
    return np.asarray(
        librosa.griffinlim(magnitude, n_iter=32, hop_length=128, n_fft=512, random_state=seed)
    )


def resynthesise(x: np.ndarray, method: str, *, seed: int) -> np.ndarray:
    """A copy of 16 kHz ``x`` by ``method``, same length and RMS as the source."""
    y = world_copy(x, STORE_RATE_HZ) if method == "world" else griffinlim_copy(x, seed)
    out = np.zeros(x.size)
    out[: min(x.size, y.size)] = y[: x.size]
    rms_in, rms_out = (float(np.sqrt(np.mean(v.astype(np.float64) ** 2))) for v in (x, out))
    return out * (rms_in / rms_out if rms_out > 0 else 1.0)


def select_sources(
    rows: list[CorpusRow], *, fraction: float, max_per_speaker: int
) -> list[tuple[CorpusRow, str]]:
    """(human row, method) for the clips :func:`clips_to_copy` picks; the method alternates,
    from a hashed start per speaker.
    """
    picked = clips_to_copy(
        rows, languages=LANGUAGES, fraction=fraction, max_per_speaker=max_per_speaker, salt=NAME
    )
    chosen = []
    for speaker, clips in picked.items():
        first = int(hash_unit(speaker, salt=f"{NAME}:method") * 2)  # one-clip speakers vary too
        chosen += [(row, METHODS[(first + i) % 2]) for i, row in enumerate(clips)]
    return chosen


def make_row(source: CorpusRow, method: str, duration_s: float) -> CorpusRow:
    return copy_row(
        source,
        name=NAME,
        kind="resynthesis",
        engine=method,
        engine_family=method,
        licence=f"derived from {source.id}: {source.licence}",
        duration_s=duration_s,
    )


def main(argv: list[str] | None = None) -> int:
    args = copy_builder_args(__doc__.splitlines()[0], name=NAME, argv=argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")

    def copy_audio(source: CorpusRow, method: str, samples: np.ndarray) -> np.ndarray:
        row_id = copy_id(source, name=NAME, engine_family=method)
        return resynthesise(samples, method, seed=int(hash_unit(row_id, salt=NAME) * 2**31))

    jobs = select_sources(
        read_manifest(args.source_manifest),
        fraction=args.fraction,
        max_per_speaker=args.max_per_speaker,
    )
    build_copies(args, jobs, name=NAME, copy_audio=copy_audio, make_row=make_row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
