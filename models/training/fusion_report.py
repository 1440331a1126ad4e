"""Outputs of ``train_fusion.py``: the weights file, its model card, the report and a plot.

The card (``models/weights/FUSION.md``) and the report (``docs/evaluation_fusion.md``) are
generated whole: rerun ``python -m models.training.train_fusion`` rather than editing them. The
operating point's tables live in ``operating_report``, the simulated calls' page in
``calls_report``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from models.fusion_file import FUSION_PATH, write_fusion
from models.training import fusion_fit as T
from models.training import metrics as M
from models.training.calls_report import CALLS_HEADLINE, CALLS_REPORT, calls_report
from models.training.corpus import audio_manifest_paths
from models.training.error_rates import update_error_rates
from models.training.fusion_fit import Result, balanced, fusion_logit, handset_logit
from models.training.metrics import format_metric as _f
from models.training.operating_report import (
    CALLS_OPERATING_HEADLINE,
    band_alternative_lines,
    operating_point_lines,
    test_operating_lines,
    turn_cap_lines,
)
from models.training.tables import markdown_table
from models.training.text_features import CORPUS
from pipeline.fuse import sigmoid


def _table(title: str, rows: dict[str, dict[str, float]]) -> list[str]:
    header = (title, "humans", "robots", "EER", "AUC", "FPR @0.5", "miss @0.5", "ECE")
    return markdown_table(
        (*header, "ECE even prior"),
        (
            (
                name, f"{r['n_human']:.0f}", f"{r['n_robot']:.0f}", _f(r["eer"]),
                _f(r["auc"], False), _f(r["fpr"]), _f(r["miss"]), _f(r["ece"], False),
                _f(r["ece_even"], False),
            )
            for name, r in rows.items()
        ),
    )  # fmt: skip


def _plot(result: Result, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    return balanced(y)


def _meta(result: Result) -> dict[str, Any]:

    manifests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in audio_manifest_paths()}
    manifests[CORPUS.name] = hashlib.sha256(CORPUS.read_bytes()).hexdigest()
    head = result.tables["headline"]["fitted, test calls (composed)"]
    return {
        "command": result.command,
        "salt": T.SALT,
        "pairs": T.PAIRS,
        "human_sales_share": T.HUMAN_SALES_SHARE,
        "l2": T.L2,
        "max_scale": T.MAX_SCALE,
        "calls": result.calls.get("meta", {}),
        "manifests_sha256": manifests,
        "counts": result.counts,
        "test_metrics": {k: round(float(v), 4) for k, v in head.items()},
    }


def write_outputs(result: Result, *, weights: Path, report: Path) -> dict[str, Any]:
    """Write weights, card, report and plot, and (with simulated calls) the calls report next
    to ``report`` (:data:`CALLS_REPORT`); returns a summary for the console."""
    sha = write_fusion(result.model, _meta(result), weights)
    img = report.parent / "img" / "fusion_reliability.png"
    _plot(result, img)
    card_path = weights.parent / "FUSION.md"
    card_path.write_text(_card(result, sha, weights))
    report.write_text(_report(result, sha, img.relative_to(report.parent)))
    summary = {
        "weights": str(weights),
        "sha256": sha,
        "report": str(report),
        "headline": result.tables["headline"],
        "seconds": round(result.seconds, 1),
    }
    if result.calls:
        calls_path = report.parent / CALLS_REPORT
        calls_path.write_text(calls_report(result, sha))
        fitted = result.calls["all cues"]["pairs"]
        summary["calls"] = {k: fitted[k] for k in CALLS_HEADLINE if k in fitted}
        summary["calls_report"] = str(calls_path)
    if result.e2e:
        summary["non_sales"] = result.e2e["non_sales"]
    if weights.resolve() == FUSION_PATH.resolve():  # the shipped fusion: publish its rates
        update_error_rates(_rates(result), command=result.command)
    return summary


def _rates(result: Result) -> dict[str, Any]:
    """The ``error_rates.json`` sections of this run (``pipeline/limits.py`` reads them): the
    rates at the shipped operating point, and the share of calls in the uncertain band."""
    test = result.operating["test"]
    out: dict[str, Any] = {"threshold": result.model.threshold}
    for key, population, cell, source in (
        ("composed_calls", "composed", "both languages", "docs/evaluation_fusion.md, Operating "
         "point: composed test calls"),
        ("end_to_end", "end_to_end", "both languages", "docs/evaluation_fusion.md, Operating "
         "point: end-to-end mixtures (test-split call mixtures through the whole detector)"),
        ("simulated_calls", "calls", "any robot | both layouts | both languages",
         "docs/evaluation_calls_verdict.md, The operating point: any robot, both layouts"),
    ):  # fmt: skip
        if cell not in test.get(population, {}):
            continue
        row = test[population][cell]
        out[key] = {
            "people_called_robots": row["people_called_point"],
            "robots_missed": 1 - row["robots_caught_point"],
            "uncertain": row["uncertain"],
            "humans": row["n_people"],
            "robots": row["n_robots"],
            "source": source,
        }
    return out


def _scales_table(result: Result) -> list[str]:
    return markdown_table(
        ("cue, direction", "fitted scale", "present in (composed test)")
        + ("mean contribution, robots", "mean, people", "present in (simulated test calls)"),
        (
            (
                f"`{r['cue']}`", f"{r['scale']:.2f}", f"{100 * r['present']:.0f} %",
                f"{r['robot_mean']:+.2f}", f"{r['human_mean']:+.2f}",
                f"{100 * r.get('present_calls', 0.0):.0f} %",
            )
            for r in result.cue_rows
        ),
    )  # fmt: skip


def _cap_lines(result: Result) -> list[str]:
    """The cap of a human voice's pull: what it is, how it was chosen, the cross-validation."""
    cv = result.cap_cv
    caps = dict(result.model.caps)
    chosen = cv["chosen"]
    if chosen is None:
        applied = "no cap: a human voice counts as fitted"
    else:
        applied = (
            f"{chosen:g} in hand-set units, {caps.get(T.CAPPED_CUE, 0.0):.2f} after scaling "
            "(the most a human voice moves the robot logit towards 'person')"
        )
    return [
        "Many dialer robots play prompts recorded by a real person (真人录音, issue 13): a "
        "human voice rules out a TTS engine, not a robot. So the voice head's pull towards "
        f"'person' (`{T.CAPPED_CUE}`) is capped and cannot outvote the dialer's behaviour, "
        "while its pull towards 'robot' stays as fitted; the cap is reached smoothly "
        "(`cap tanh(x / cap)`, `pipeline.fuse.soft_cap`), so voices past it keep their order. "
        f"Cap: {applied}. Chosen by "
        f"{cv['folds']}-fold cross-validation on dev, folds by voice (a clip's speaker, a "
        "call's caller), over the composed dev calls and the simulated dev calls (scored with "
        "all their cues), each population's class-balanced log loss apart: the lowest loss on "
        "the dev calls wins among the options whose loss on the composed calls is within "
        f"{100 * T.COMPOSED_TOLERANCE:.0f} % of the lowest (the verdict also judges single "
        "clips; the few dev calls must not buy their fit at the clips' expense); dev-calls "
        f"losses within {100 * T.CALLS_TIE:.0f} % of the lowest are a tie, won by the smallest "
        "cap (a human voice pulls no further towards 'person' than the dev calls show it "
        "must). Chosen with it: how much the "
        "simulated calls count in the fit (one row each, *as drawn*, or all of them as much as "
        f"all composed calls); kept: *{cv['weighting']}*.",
        "",
        *markdown_table(
            ("calls in the fit", "cap (hand-set units)", "log loss, composed dev")
            + ("log loss, dev calls", "AUC recorded robots vs agents, stereo", "AUC, mono"),
            (
                (
                    r["weighting"],
                    "none" if r["cap"] is None else f"{r['cap']:g}",
                    f"{r['composed']:.3f}",
                    f"{r['calls']:.3f}",
                    _f(r["auc_recorded_stereo"], False),
                    _f(r["auc_recorded_mono"], False),
                )
                for r in cv["rows"]
            ),
        ),  # fmt: skip
    ]


def _card(result: Result, sha: str, weights: Path) -> str:
    c = result.counts
    head = result.tables["headline"]["fitted, test calls (composed)"]
    lines = [
        "# Model card: fitted fusion (`fusion.json`)",
        "",
        f"Generated by `{result.command}`; do not edit by hand. sha256 of `{weights.name}`: "
        f"`{sha}`.",
        "",
        "**What it is.** The verdict's robot logit = bias + the sum of each cue's hand-set weight "
        "times a fitted, non-negative scale, one per cue and direction (towards robot, towards "
        "human; `pipeline/fuse.py`). Fitted by class-balanced "
        "logistic regression (L2 on the scales, bounds [0, 5]) on composed dev calls (the "
        "acoustic cues and synthetic-voice head of a dev clip joined to the text cues of a text "
        "of the same class and language; half of a person's texts are human sales calls) and "
        "on simulated two-party dev calls run through the whole detector (their text and "
        "synthetic-voice cues left out of the fit: `models/training/fusion_calls.py` says why), "
        "which bring the stereo and behaviour cues. The scales of the cues no composed clip "
        "carries (the turn-taking cues) are then refitted on the dev calls alone, each call "
        "scored with all its cues, bias and every other scale fixed "
        "(`models/training/fusion_fit.py`, `fit_on_calls`, issue 13). A human voice's pull "
        "towards 'person' is capped (below). "
        f"Bias {result.model.bias:+.3f}. A cue the fit never saw keeps scale "
        f"{result.model.default_scale:g}.",
        "",
        "## A human voice is capped",
        "",
        *_cap_lines(result),
        "",
        *(
            [
                "## Turn-taking alone is capped",
                "",
                *turn_cap_lines(result),
                "",
                "## Operating point: the robot threshold and the uncertain band",
                "",
                *operating_point_lines(result),
                "",
                "On the test populations (`docs/evaluation_fusion.md`, "
                "`docs/evaluation_calls_verdict.md`):",
                "",
                *test_operating_lines(
                    result,
                    ("composed", "end_to_end", "calls"),
                    calls_rows=CALLS_OPERATING_HEADLINE,
                ),
                *band_alternative_lines(result),
                "",
            ]
            if result.operating
            else []
        ),
        f"**Data.** Fit: {c['fit']['examples']} composed calls ({c['fit']['clips']} dev clips "
        f"x {c['fit']['texts']} texts of the fit half) and {c['fit_calls']['examples']} "
        "simulated dev calls. Test: "
        f"{c['eval']['examples']} composed ({c['eval']['clips']} test clips x "
        f"{c['eval']['texts']} texts of the other half) and {c['test_calls']['examples']} "
        "simulated test calls. Audio split by speaker, engine and campaign "
        "(`models/training/corpus.py`); simulated dev calls sharing a voice, utterance or line "
        "with any test clip or call are left out; texts halved by fold group (campaign, script "
        "block, speaker, dialogue file); the text head's scores are out-of-fold.",
        "",
        f"**Test metrics (composed calls, threshold 0.5).** EER {_f(head['eer'])}, AUC "
        f"{_f(head['auc'], False)}, FPR {_f(head['fpr'])}, miss {_f(head['miss'])}, ECE "
        f"{_f(head['ece'], False)} as drawn, {_f(head['ece_even'], False)} at even prior. "
        "Full report: `docs/evaluation_fusion.md`; simulated calls: "
        "`docs/evaluation_calls_verdict.md`.",
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
        "robocall text. The words only ever push towards robot (the text head's weight is "
        "floored at 0: 'not a script' is no sign of a person), but a robot whose words read "
        "like ordinary speech lacks that push, and only its voice or its behaviour can call it "
        "a robot; see the end-to-end rows of the report (robots that read news or novels).",
        "- The human sales texts are 92 lines written by us; no recording of a person selling "
        "exists in the corpus, so the acoustic half of a 'human sales call' is a person reading "
        "or chatting.",
        "- The synthetic-voice head chose its settings on the other half of dev (`select`); the "
        "fusion fits on the `fusion` half's scores. `docs/evaluation_calls_verdict.md` counts "
        "the simulated test calls whose caller the head was trained on.",
        "- The behaviour cues' scales come from the simulated dev calls alone (no composed "
        f"clip carries them: {c['fit_calls']['examples']} rows, both layouts of every dev call), "
        "which hold no Mandarin live agent (Mandarin dev: recorded-prompt robots only) and "
        "behave as the simulator was programmed (`datasets/prepare_calls.py`): real dialers "
        "may differ.",
        "- The cap on a human voice was chosen on simulated calls, whose recorded-prompt robots "
        "replay real people: on the end-to-end mixtures, whose robots are TTS or vocoded, a "
        "human-sounding voice still told robots from people, and the cap costs that ranking "
        "(the report's end-to-end rows, capped against not capped).",
        "",
    ]
    return "\n".join(lines)


def _report(result: Result, sha: str, img: Path) -> str:
    lines = [
        "# Fusion of all cues: evaluation",
        "",
        f"Generated by `{result.command}` in {result.seconds:.0f} s (2 cores; audio cues, ASR "
        "and encoder passes cached after the first run). Weights `models/weights/fusion.json` "
        f"(sha256 `{sha[:16]}...`), model "
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
        "## A human voice is capped",
        "",
        *_cap_lines(result),
        "",
        *(
            [
                "## Turn-taking alone is capped",
                "",
                *turn_cap_lines(result),
                "",
                "## Operating point: the robot threshold and the uncertain band (issue 13)",
                "",
                *operating_point_lines(result),
                "",
                "### On the test populations",
                "",
                *test_operating_lines(result, ("composed", "end_to_end")),
                "### The band's edge under other rules",
                "",
                *band_alternative_lines(result),
                "",
            ]
            if result.operating
            else []
        ),
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
            "Every fusion reads the same evidence; *all cues, human voice not capped* is the "
            "sum refitted on the same data without the cap.",
            "",
            *_table("fusion", e["all"]),
            "",
            *_table("prompt source (fitted)", e["source"]),
            "",
            *_table("call kind (fitted)", e["kind"]),
            "",
        ]
    return "\n".join(lines)
