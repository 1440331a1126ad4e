"""Figures for the evidence report: waveform, spectrogram with pitch track, reasons on a timeline.

Drawn with matplotlib's object API on an Agg canvas (no pyplot, no global backend state), so it
is safe in the API's worker threads. Input is the decoded :class:`Audio` and the report's reasons
(:func:`pipeline.report.reasons`), so the marks ``R1``, ``R2``... match the PDF's table.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from pathlib import Path

import librosa
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties

from pipeline import report as rp
from pipeline.acoustic import pitch_track
from pipeline.highlights import highlight_spans
from pipeline.messages import Lang
from pipeline.report import Reason
from pipeline.types import Audio, Verdict

log = logging.getLogger(__name__)

MAX_FRAMES = 2_400  # time columns of the spectrogram and pitch track, whatever the call length
N_FFT = 512  # 32 ms at 16 kHz
FMIN_HZ, FMAX_HZ = 60.0, 4_000.0  # spectrogram range: the telephone band
ROBOT_COLOUR, HUMAN_COLOUR, NEUTRAL_COLOUR = "#c62828", "#2e7d32", "#757575"
PITCH_COLOUR = "#00e5ff"  # cyan: visible on the magma colour map, unlike the robot red
_Label = Callable[[str], str]  # key -> the figure's label text

_LABELS: dict[str, tuple[str, str]] = {
    "waveform": ("波形", "Waveform"),
    "spectrogram": ("频谱图与音高（青线）", "Spectrogram with pitch (cyan line)"),
    "reasons": ("依据在录音中的位置", "Where the reasons were seen"),
    "time": ("时间（分:秒）", "Time (min:s)"),
    "freq": ("频率（Hz）", "Frequency (Hz)"),
    "caller": ("来电方", "caller"),
    "callee": ("接听方", "callee"),
    "no_spans": ("没有与特定时刻相关的依据", "No reason is tied to a particular moment"),
}


def render_overview(
    audio: Audio, verdict: Verdict, *, lang: Lang, font_path: Path | None = None
) -> bytes:
    """PNG of the whole call: waveform, spectrogram + pitch, and the reasons' spans.

    Parameters
    ----------
    audio : Audio
        Decoded recording (16 kHz); the caller's channel is drawn, the callee's (stereo) in grey.
    verdict : Verdict
        Its reasons (:func:`pipeline.report.reasons`, so ``R1``... match the PDF's table) are
        placed on the timeline; the spans of :func:`pipeline.highlights.highlight_spans` (the
        cues that decided the verdict, cut to the caller's lines) are shaded on the waveform and
        the spectrogram, as on the web page.
    lang : "zh" or "en"
        Leading language of the labels (both are shown).
    font_path : Path, optional
        A font with CJK glyphs for the Chinese labels; without one the labels are English only.

    Returns
    -------
    bytes
        PNG, about 1200 x 1000 pixels.
    """
    font = FontProperties(fname=str(font_path)) if font_path else None

    def label(key: str) -> str:
        zh, en = _LABELS[key]
        if font is None:  # no CJK glyphs: English only rather than boxes
            return en
        return f"{zh} / {en}" if lang == "zh" else f"{en} / {zh}"

    samples = audio.caller().astype(np.float32)
    rate = audio.sample_rate_hz
    duration_s = max(samples.size / rate, 1e-3)
    fig = Figure(figsize=(8.0, 8.4), dpi=150, layout="constrained")
    FigureCanvasAgg(fig)
    ax_wave, ax_spec, ax_why = fig.subplots(
        3, 1, sharex=True, gridspec_kw={"height_ratios": [1.0, 2.0, 1.1]}
    )
    _draw_waveform(ax_wave, samples, audio.other_party(), rate, label, font)
    _draw_spectrogram(ax_spec, samples, rate, label, font)
    reasons = rp.reasons(verdict, lang)
    _draw_reasons(ax_why, reasons, duration_s, label, font)
    for h in highlight_spans(verdict):  # shade the waveform, mark the spectrogram's top
        colour = ROBOT_COLOUR if h.weight > 0 else HUMAN_COLOUR
        ax_wave.axvspan(*h.span_s, color=colour, alpha=0.12, lw=0)
        ax_spec.axvspan(*h.span_s, ymin=0.97, ymax=1.0, color=colour, lw=0)
    ax_why.set_xlim(0.0, duration_s)
    ax_why.xaxis.set_major_formatter(lambda x, _pos: _clock(x))
    ax_why.set_xlabel(label("time"), fontproperties=font)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _draw_waveform(
    ax: Axes,
    samples: np.ndarray,
    other: np.ndarray | None,
    rate: int,
    label: _Label,
    font: FontProperties | None,
) -> None:
    if other is not None:
        t, low, high = _envelope(other, rate)
        ax.fill_between(t, low, high, color="#9e9e9e", lw=0, label=label("callee"))
    t, low, high = _envelope(samples, rate)
    ax.fill_between(t, low, high, color="#1565c0", lw=0, label=label("caller"))
    peak = float(max(np.max(np.abs(samples)) if samples.size else 0.0, 1e-3))
    ax.set_ylim(-peak * 1.05, peak * 1.05)
    ax.set_yticks([])
    ax.set_title(label("waveform"), loc="left", fontproperties=font, fontsize=10)
    if other is not None:
        ax.legend(loc="upper right", prop=font, fontsize=7, framealpha=0.8)


def _draw_spectrogram(
    ax: Axes, samples: np.ndarray, rate: int, label: _Label, font: FontProperties | None
) -> None:
    hop = max(160, int(np.ceil(samples.size / MAX_FRAMES)))
    if samples.size < N_FFT:
        ax.set_title(label("spectrogram"), loc="left", fontproperties=font, fontsize=10)
        return
    spec = np.abs(librosa.stft(samples, n_fft=N_FFT, hop_length=hop, center=True))
    db = librosa.amplitude_to_db(spec, ref=np.max(spec) if spec.size else 1.0, top_db=70.0)
    freqs = librosa.fft_frequencies(sr=rate, n_fft=N_FFT)
    times = librosa.frames_to_time(np.arange(db.shape[1]), sr=rate, hop_length=hop)
    keep = (freqs >= FMIN_HZ * 0.9) & (freqs <= FMAX_HZ)
    ax.pcolormesh(times, freqs[keep], db[keep], shading="auto", cmap="magma", rasterized=True)
    ax.set_yscale("log")
    ax.set_ylim(FMIN_HZ, FMAX_HZ)
    ax.set_yticks([100, 200, 500, 1000, 2000, 4000], ["100", "200", "500", "1k", "2k", "4k"])
    ax.minorticks_off()
    ax.set_ylabel(label("freq"), fontproperties=font, fontsize=8)
    ax.set_title(label("spectrogram"), loc="left", fontproperties=font, fontsize=10)
    # The track the pitch cues measured (pipeline.acoustic), not a second estimate that could
    # disagree with the numbers in the report; thinned to at most MAX_FRAMES points.
    f0_times, f0 = pitch_track(samples)
    step = max(1, int(np.ceil(f0.size / MAX_FRAMES)))
    ax.plot(f0_times[::step], f0[::step], color=PITCH_COLOUR, lw=1.4)


def _draw_reasons(
    ax: Axes,
    reasons: tuple[Reason, ...],
    duration_s: float,
    label: _Label,
    font: FontProperties | None,
) -> None:
    placed = [(r, r.span_s) for r in reasons if r.span_s is not None][:8]
    ax.set_title(label("reasons"), loc="left", fontproperties=font, fontsize=10)
    ax.set_yticks([])
    if not placed:
        ax.text(
            0.5,
            0.5,
            label("no_spans"),
            ha="center",
            va="center",
            transform=ax.transAxes,
            fontproperties=font,
            fontsize=8,
            color=NEUTRAL_COLOUR,
        )
        return
    for row, (r, (start, end)) in enumerate(placed):
        width = max(end - start, duration_s / 200.0)
        colour = ROBOT_COLOUR if r.weight > 0 else HUMAN_COLOUR if r.weight < 0 else NEUTRAL_COLOUR
        ax.broken_barh([(start, width)], (row - 0.35, 0.7), color=colour, alpha=0.85)
        name = f"R{r.rank} {r.title}" if font is not None else f"R{r.rank}"
        gap = duration_s * 0.01
        if start + width < duration_s * 0.6:  # room on the right of the bar
            ax.text(
                start + width + gap,
                row,
                name,
                va="center",
                ha="left",
                fontsize=7,
                color=colour,
                fontproperties=font,
            )
        elif start > duration_s * 0.4:  # room on the left
            ax.text(
                start - gap,
                row,
                name,
                va="center",
                ha="right",
                fontsize=7,
                color=colour,
                fontproperties=font,
            )
        else:  # a bar across most of the call: write on it
            ax.text(
                start + gap,
                row,
                name,
                va="center",
                ha="left",
                fontsize=7,
                color="white",
                fontproperties=font,
            )
    ax.set_ylim(len(placed) - 0.5, -0.5)


def _envelope(samples: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Min/max per column so that a 30-minute call draws as fast as a 10-second one."""
    columns = 1_600
    n = samples.size
    if n == 0:
        return np.zeros(1), np.zeros(1), np.zeros(1)
    step = max(1, n // columns)
    usable = (n // step) * step
    blocks = samples[:usable].reshape(-1, step)
    t = (np.arange(blocks.shape[0]) * step + step / 2) / rate
    return t, blocks.min(axis=1), blocks.max(axis=1)


def _clock(seconds: float) -> str:
    minutes, rest = divmod(max(0.0, seconds), 60.0)
    return f"{int(minutes)}:{int(rest):02d}"
