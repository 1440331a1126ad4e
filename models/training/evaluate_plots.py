"""The plots of ``docs/evaluation.md``: DET + ROC, reliability, confusion matrices."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.training import metrics as M
from models.training.evaluate import Evaluation, Record


def write_plots(ev: Evaluation, img: Path) -> dict[str, str]:
    """DET + ROC, reliability diagram, confusion matrices; returns Markdown-relative paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.special import ndtri

    def pick(variant: str, split: str, mixed: bool) -> list[Record]:
        return [
            r
            for r in ev.records
            if r["variant"] == variant and r["split"] == split and (r["source"] == "mixed") == mixed
        ]

    curves = {
        "test (inference)": pick("inference", "test", False),
        "test zh": [r for r in pick("inference", "test", False) if r["language"] == "zh"],
        "test en": [r for r in pick("inference", "test", False) if r["language"] == "en"],
        "test (telephone)": pick("telephone", "test", False),
        "calls test": pick("inference", "test", True),
    }
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.5))
    ticks = [0.001, 0.01, 0.05, 0.2, 0.5, 0.8]
    for name, recs in curves.items():
        y = np.asarray([r["y"] for r in recs])
        if not M.has_both_classes(y):
            continue
        s = np.asarray([r["log_odds"] for r in recs])
        fx, fy = M.det_points(y, s)
        ax1.plot(fx, fy, label=f"{name} (EER {100 * M.eer(y, s)[0]:.1f} %)")
        fpr, tpr, _ = M.roc_curve(y, s)
        ax2.plot(fpr, tpr, label=f"{name} (AUC {M.roc_auc(y, s):.3f})")
    for ax in (ax1,):
        ax.set_xticks(ndtri(ticks), [f"{100 * t:g}" for t in ticks])
        ax.set_yticks(ndtri(ticks), [f"{100 * t:g}" for t in ticks])
        ax.set_xlim(ndtri(0.0005), ndtri(0.8))
        ax.set_ylim(ndtri(0.0005), ndtri(0.8))
        ax.plot([-5, 5], [-5, 5], color="0.8", lw=0.8)
        ax.set_xlabel("false alarm: people called robot (%)")
        ax.set_ylabel("miss: robots called human (%)")
        ax.set_title("DET")
    ax2.set_xlabel("false-positive rate")
    ax2.set_ylabel("true-positive rate")
    ax2.set_title("ROC")
    ax1.legend(fontsize=7)
    ax2.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(img / "synth_det_roc.png", dpi=110)
    plt.close(fig)

    bins = ev.tables["calibration"]["bins"]
    fig, ax = plt.subplots(figsize=(4.8, 4.5))
    mids = [b["mean_probability"] for b in bins if b["count"]]
    rates = [b["positive_rate"] for b in bins if b["count"]]
    counts = [b["count"] for b in bins if b["count"]]
    ax.plot([0, 1], [0, 1], color="0.7", lw=0.8)
    ax.plot(mids, rates, "o-", label="test split")
    for m, r, c in zip(mids, rates, counts, strict=True):
        ax.annotate(f"{c:.0f}", (m, r), fontsize=7, xytext=(3, -9), textcoords="offset points")
    ax.set_xlabel("predicted P(robot)")
    ax.set_ylabel("observed share of robots")
    ax.set_title(f"Reliability (ECE {ev.tables['calibration']['ece']:.3f})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(img / "synth_calibration.png", dpi=110)
    plt.close(fig)

    sets = {"test clips": curves["test (inference)"], "test calls": curves["calls test"]}
    sets = {k: v for k, v in sets.items() if v}
    fig, axes = plt.subplots(1, len(sets), figsize=(3.6 * len(sets), 3.4), squeeze=False)
    for ax, (name, recs) in zip(axes[0], sets.items(), strict=True):
        c = M.confusion(
            np.asarray([r["y"] for r in recs]),
            np.asarray([r["p"] for r in recs]),
            threshold=ev.threshold,
        )
        grid = np.asarray(
            [[c.true_negative, c.false_positive], [c.false_negative, c.true_positive]]
        )
        ax.imshow(grid, cmap="Blues")
        for i in range(2):
            for j in range(2):
                ax.text(j, i, str(grid[i, j]), ha="center", va="center", fontsize=12)
        ax.set_xticks([0, 1], ["human", "robot"])
        ax.set_yticks([0, 1], ["human", "robot"])
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(name)
    fig.tight_layout()
    fig.savefig(img / "synth_confusion.png", dpi=110)
    plt.close(fig)
    return {
        "det": "img/synth_det_roc.png",
        "calibration": "img/synth_calibration.png",
        "confusion": "img/synth_confusion.png",
    }
