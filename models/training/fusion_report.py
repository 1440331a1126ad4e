"""Outputs of ``train_fusion.py``: the weights file, its model card, the report and a plot.

The card (``models/weights/FUSION.md``) and the report (``docs/evaluation_fusion.md``) are
generated whole: rerun ``python -m models.training.train_fusion`` rather than editing them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from models.fusion_file import write_fusion
from models.training import metrics as M
from models.training.metrics import format_metric as _f

if TYPE_CHECKING:
    from models.training.train_fusion import Result

COMMAND = "python -m models.training.train_fusion --e2e 120"


def _table(title: str, rows: dict[str, dict[str, float]]) -> list[str]:
    out = [
        f"| {title} | humans | robots | EER | AUC | FPR @0.5 | miss @0.5 | ECE | ECE even prior |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        out.append(
            f"| {name} | {r['n_human']:.0f} | {r['n_robot']:.0f} | {_f(r['eer'])} | "
            f"{_f(r['auc'], False)} | {_f(r['fpr'])} | {_f(r['miss'])} | "
            f"{_f(r['ece'], False)} | {_f(r['ece_even'], False)} |"
        )
    return out


def _plot(result: Result, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from models.training.train_fusion import fusion_logit, handset_logit
    from pipeline.fuse import sigmoid

    ex = result.eval_examples
    y = np.array([e.y for e in ex], dtype=np.float64)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4.2))
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--")
    for label, logit in (
        ("fitted fusion", fusion_logit(result.model, ex)),
        ("hand-set sum", handset_logit(ex)),
    ):
        bins = M.calibration_bins(y, sigmoid(logit), weights=_even(y))
        pts = [(b.mean_probability, b.positive_rate) for b in bins if b.count > 0]
        ax.plot(*zip(*pts, strict=True), marker="o", label=label)
    ax.set_xlabel("predicted robot probability")
    ax.set_ylabel("share of robots (classes weighted equally)")
    ax.set_title("Reliability, composed test calls")
    ax.legend()
    names = [r["cue"] for r in result.cue_rows]
    ax2 = np.arange(len(names))
    bx.barh(ax2, [r["scale"] for r in result.cue_rows], color="tab:blue")
    bx.axvline(1.0, color="0.5", lw=1, ls="--")
    bx.set_yticks(ax2, names, fontsize=7)
    bx.set_xlabel("fitted scale (1 = hand-set weight)")
    bx.set_title("How much each cue counts")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _even(y: np.ndarray) -> np.ndarray:
    from models.training.train_fusion import balanced

    return balanced(y)


def _meta(result: Result) -> dict[str, Any]:
    from models.training import train_fusion as T
    from models.training.corpus import audio_manifest_paths
    from models.training.train_text import CORPUS

    manifests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in audio_manifest_paths()}
    manifests[CORPUS.name] = hashlib.sha256(CORPUS.read_bytes()).hexdigest()
    head = result.tables["headline"]["fitted, test calls (composed)"]
    return {
        "command": COMMAND,
        "salt": T.SALT,
        "pairs": T.PAIRS,
        "human_sales_share": T.HUMAN_SALES_SHARE,
        "l2": T.L2,
        "max_scale": T.MAX_SCALE,
        "fixed_cues": list(T.STEREO_CUES),
        "manifests_sha256": manifests,
        "counts": result.counts,
        "test_metrics": {k: round(float(v), 4) for k, v in head.items()},
    }


def write_outputs(result: Result, *, weights: Path, report: Path) -> dict[str, Any]:
    """Write weights, card, report and plot; returns a summary for the console."""
    sha = write_fusion(result.model, _meta(result), weights)
    img = report.parent / "img" / "fusion_reliability.png"
    _plot(result, img)
    card_path = weights.parent / "FUSION.md"
    card_path.write_text(_card(result, sha, weights))
    report.write_text(_report(result, sha, img.relative_to(report.parent)))
    return {
        "weights": str(weights),
        "sha256": sha,
        "report": str(report),
        "headline": result.tables["headline"],
        "seconds": round(result.seconds, 1),
    }


def _scales_table(result: Result) -> list[str]:
    out = [
        "| cue, direction | fitted scale | present in | mean contribution, robots | mean, people |",
        "|---|---|---|---|---|",
    ]
    for r in result.cue_rows:
        out.append(
            f"| `{r['cue']}` | {r['scale']:.2f} | {100 * r['present']:.0f} % | "
            f"{r['robot_mean']:+.2f} | {r['human_mean']:+.2f} |"
        )
    return out


def _card(result: Result, sha: str, weights: Path) -> str:
    c = result.counts
    head = result.tables["headline"]["fitted, test calls (composed)"]
    lines = [
        "# Model card: fitted fusion (`fusion.json`)",
        "",
        f"Generated by `{COMMAND}`; do not edit by hand. sha256 of `{weights.name}`: `{sha}`.",
        "",
        "**What it is.** The verdict's robot logit = bias + the sum of each cue's hand-set weight "
        "times a fitted, non-negative scale, one per cue and direction (towards robot, towards "
        "human; `pipeline/fuse.py`). Fitted by class-balanced "
        "logistic regression (L2 on the scales, bounds [0, 5]) on composed dev calls: the "
        "acoustic cues and synthetic-voice head of a dev clip joined to the text cues of a text "
        "of the same class and language (half of a person's texts are human sales calls). "
        f"Bias {result.model.bias:+.3f}. Cues the fit cannot see (stereo-only: "
        "`no_reaction_to_callee`, `response_latency_std_s`, `talk_over_fraction`) keep scale "
        f"{result.model.default_scale:g}.",
        "",
        f"**Data.** Fit: {c['fit']['examples']} composed calls ({c['fit']['clips']} dev clips "
        f"x {c['fit']['texts']} texts of the fit half). Test: {c['eval']['examples']} "
        f"({c['eval']['clips']} test clips x {c['eval']['texts']} texts of the other half). "
        "Audio split by speaker, engine and campaign (`models/training/corpus.py`); "
        "texts halved by fold "
        "group (campaign, script block, speaker, dialogue file); the text head's scores are "
        "out-of-fold.",
        "",
        f"**Test metrics (composed calls, threshold 0.5).** EER {_f(head['eer'])}, AUC "
        f"{_f(head['auc'], False)}, FPR {_f(head['fpr'])}, miss {_f(head['miss'])}, ECE "
        f"{_f(head['ece'], False)} as drawn, {_f(head['ece_even'], False)} at even prior. "
        "Full report: `docs/evaluation_fusion.md`.",
        "",
        "## Scales",
        "",
        *_scales_table(result),
        "",
        "## Limits",
        "",
        "- Calibrated at even prior on composed calls: if one call in ten is a robot, 0.9 means "
        "less than 90 %. The composition assumes the acoustic and text halves are independent "
        "given the class; the end-to-end rows of the report test that on real mixed calls.",
        "- Fitted for sales calls: robots in the fit population speak sales scripts or real "
        "robocall text. A robot whose words read like ordinary speech (not a script) is pulled "
        "towards human by the text head, and only a confident synthetic-voice score outweighs "
        "that; see the end-to-end rows of the report, where the test mixtures' robots that read "
        "news or novels (Mandarin TTS demo sentences, vocoder copies of read speech) are mostly "
        "missed while those speaking sales lines are caught.",
        "- The human sales texts are 92 lines written by us; no recording of a person selling "
        "exists in the corpus, so the acoustic half of a 'human sales call' is a person reading "
        "or chatting.",
        "- The synthetic-voice head's Platt scaling was fitted on the same dev clips the fusion "
        "is fitted on; the fusion's own numbers are on the test split.",
        "",
    ]
    return "\n".join(lines)


def _report(result: Result, sha: str, img: Path) -> str:
    lines = [
        "# Fusion of all cues: evaluation",
        "",
        f"Generated by `{COMMAND}` in {result.seconds:.0f} s (2 cores; audio cues cached after "
        f"the first run). Weights `models/weights/fusion.json` (sha256 `{sha[:16]}...`), model "
        "card `models/weights/FUSION.md`; method in the docstring of "
        "`models/training/train_fusion.py`.",
        "",
        "Composed calls: a clip's acoustic cues and synthetic-voice head, after the telephone "
        "channel, joined to the text cues of a text of the same class and language (a person's "
        "texts: half human sales calls). Fit on dev clips with one half of the texts, tested "
        "on test clips with the other half. ECE uses 10 equal-width bins; *even prior* weights "
        "the classes equally, which is what the probability is calibrated for.",
        "",
        "## Headline",
        "",
        *_table("population", result.tables["headline"]),
        "",
        f"![Reliability and scales]({img.as_posix()})",
        "",
        "## What each cue brings (refitted with a subset, same test calls)",
        "",
        *_table("cues", result.ablations),
        "",
        "## Fitted scales",
        "",
        "Mean contribution = scale x hand-set weight, averaged over the composed test calls "
        "(robot logit units; 0 where the cue is absent).",
        "",
        *_scales_table(result),
        "",
        "## By clip kind, language and text source (fitted fusion, composed test calls)",
        "",
        *_table("clip kind", result.tables["kind"]),
        "",
        *_table("language", result.tables["language"]),
        "",
        *_table("text source", result.tables["text_source"]),
        "",
    ]
    if result.e2e:
        e = result.e2e
        lines += [
            "## End to end: real calls through the whole detector",
            "",
            "The test-split call mixtures (`datasets/manifests/mixed.jsonl`: dialer calls, "
            "two-party robot calls, and human calls of the same shapes), each through the "
            "telephone channel and then the whole `Detector`, ASR included "
            f"({e['skipped']} call(s) without recognised words skipped; each call's evidence is "
            "cached by the code and weights that produce it). "
            "Both fusions read the same evidence.",
            "",
            *_table("fusion", e["all"]),
            "",
            *_table("prompt source (fitted)", e["source"]),
            "",
            *_table("call kind (fitted)", e["kind"]),
            "",
        ]
    return "\n".join(lines)
