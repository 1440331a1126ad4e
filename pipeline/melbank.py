"""Mel filterbank matrices from ``librosa.filters.mel``, cached on disk: warm calls skip librosa.

The acoustic cues and the GE2E diarizer each need one fixed mel matrix. ``import librosa.filters``
costs about 1.3 s of CPU on our 2-core machine (it pulls numba in through ``librosa.util``) for a
matrix that takes milliseconds to compute and never changes, so a one-call ``robocall analyze``
paid it every time (issue 17). The matrix is computed by librosa once, saved under
``$ROBOCALL_CACHE_DIR/melbank/``, keyed by the parameters and librosa's installed version (read
from package metadata, without importing it), and read back bit for bit afterwards.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from importlib import metadata
from typing import Literal

import numpy as np

from pipeline.files import atomic_path, cache_dir

logger = logging.getLogger(__name__)

CACHE_FORMAT = 1  # bump when the cached file changes meaning


@functools.cache
def mel_filterbank(
    *,
    sample_rate_hz: int,
    n_fft: int,
    n_mels: int,
    fmin_hz: float = 0.0,
    fmax_hz: float | None = None,
    htk: bool = False,
    norm: Literal["slaney"] | None = "slaney",
) -> np.ndarray:
    """``librosa.filters.mel`` with these arguments, from the disk cache when it holds them.

    Parameters
    ----------
    sample_rate_hz : int
        Sampling rate of the signal the STFT frames come from.
    n_fft : int
        FFT length in samples; the matrix has ``n_fft // 2 + 1`` columns.
    n_mels : int
        Number of mel bands (rows).
    fmin_hz, fmax_hz : float
        Band edges in Hz; ``fmax_hz=None`` means ``sample_rate_hz / 2``.
    htk : bool
        HTK mel scale instead of Slaney's.
    norm : {"slaney", None}
        Area normalisation of the triangles, as librosa takes it.

    Returns
    -------
    np.ndarray [shape=(n_mels, n_fft // 2 + 1)], float32, read-only
        Exactly what librosa returns (the cache stores its array unchanged).
    """
    args = (sample_rate_hz, n_fft, n_mels, fmin_hz, fmax_hz, htk, norm)
    try:
        version = metadata.version("librosa")
    except metadata.PackageNotFoundError:
        version = "absent"  # computing below raises the ImportError that names the package
    key = json.dumps({"args": args, "librosa": version, "format": CACHE_FORMAT}, sort_keys=True)
    path = cache_dir() / "melbank" / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.npy"
    try:
        bank: np.ndarray = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        logger.debug("mel bank not cached at %s (%s): computing it", path, exc)
        import librosa.filters  # the slow import this module exists to avoid on warm runs

        bank = librosa.filters.mel(
            sr=sample_rate_hz,
            n_fft=n_fft,
            n_mels=n_mels,
            fmin=fmin_hz,
            fmax=fmax_hz,
            htk=htk,
            norm=norm,
        )
        try:
            with atomic_path(path, suffix=".tmp.npy") as tmp:
                np.save(tmp, bank, allow_pickle=False)
        except OSError as write_exc:  # a read-only cache only costs the next run the import
            logger.warning("could not cache the mel bank at %s: %s", path, write_exc)
    bank.flags.writeable = False
    return bank
