"""Tables and generated blocks of ``docs/evaluation_text.md`` and ``models/weights/TEXT_CLF.md``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from models.training.tables import markdown_table
from models.training.text_features import MARK_BEGIN, MARK_END, REPORT

# --- report ---------------------------------------------------------------------------------


def pct(x: float) -> str:
    """A rate as ``"12.3"`` (percent, no sign) or ``"n/a"`` for NaN."""
    return "n/a" if x != x else f"{100 * x:.1f}"


def comparison_table(results: dict[str, dict[str, Any]], head: str, slice_: str) -> str:
    header = ["features", "AUC", "recall @FPR<=2% (rows)", "recall @FPR<=2% (group mean)"]
    header += ["FPR / recall at own threshold", "n pos / n neg"]
    rows = []
    for name, res in results.items():
        m = res[head][slice_]
        rows.append(
            (
                name, f"{m['auc']:.4f}", pct(m["recall_at_fpr2"]),
                pct(m["group_recall_at_fpr2"]),
                f"{pct(m['fpr_at_0'])} / {pct(m['recall_at_0'])}",
                f"{m['n_pos']} / {m['n_neg']}",
            )
        )  # fmt: skip
    return "\n".join(markdown_table(header, rows))


def topic_table(results: dict[str, dict[str, Any]]) -> str:
    fams = ("robocall", "scripts", "human_sales", "all")
    header = ["features", *(f"{f} acc / macro-F1" for f in fams)]
    rows = [
        [name, *(f"{pct(res['topic'][f]['accuracy'])} / {pct(res['topic'][f]['macro_f1'])}"
                 for f in fams)]
        for name, res in results.items()
    ]  # fmt: skip
    return "\n".join(markdown_table(header, rows))


def source_table(res: dict[str, Any]) -> str:
    header = ("source", "n", "pitch @FPR2 thr", "pitch @own thr", "robot @FPR2 thr")
    rows = [
        (source, str(m["n"]), pct(m["pitch_rate_at_fpr2"]), pct(m["pitch_rate_at_0"]),
         pct(m["robot_rate_at_fpr2"]), pct(m["robot_rate_at_0"]))
        for source, m in res["by_source"].items()
    ]  # fmt: skip
    return "\n".join(markdown_table((*header, "robot @own thr"), rows))


def evidence_table(evidence: dict[str, dict[str, Any]]) -> str:
    """Rows: family (language); columns: n, robot head, all text evidence (rate and CI)."""
    header = ("family (language)", "n (groups)", "robot head", "all text evidence")
    head, every = evidence["head"], evidence["all_text"]

    def cell(m: dict[str, Any]) -> str:
        low, high = m["ci95"]
        return f"{pct(m['rate'])} ({pct(low)}-{pct(high)})"

    rows = [
        (key, f"{m['n']} ({m['groups']})", cell(m), cell(every[key])) for key, m in head.items()
    ]
    return "\n".join(markdown_table(header, rows))


def write_generated(text: str, path: Path = REPORT, *, name: str = "") -> None:
    """Replace the part of ``path`` between the generated markers (create it if missing);
    ``name``: a second generated part's own markers (appended at the end when missing)."""
    begin, end = (MARK_BEGIN, MARK_END) if not name else (
        MARK_BEGIN.replace(":begin", f":{name}:begin"), MARK_END.replace(":end", f":{name}:end")
    )  # fmt: skip
    block = f"{begin}\n{text.strip()}\n{end}"
    old = path.read_text(encoding="utf-8") if path.is_file() else f"{begin}\n{end}\n"
    head, found, rest = old.partition(begin)
    if not found:
        head, rest = head.rstrip("\n") + "\n\n", end + "\n"
    _, _, tail = rest.partition(end)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(head + block + tail, encoding="utf-8")


HARD_CASES = (  # (title, head, source, what the rate means)
    ("everyday calls en: pitch FPR", "pitch", "authored_everyday_en"),
    ("everyday calls zh: pitch FPR", "pitch", "authored_everyday_zh"),
    ("human sales en: pitch recall", "pitch", "authored_sales_en"),
    ("human sales zh: pitch recall", "pitch", "authored_sales_zh"),
    ("human sales en: robot FPR", "robot", "authored_sales_en"),
    ("human sales zh: robot FPR", "robot", "authored_sales_zh"),
    ("scripts en: robot recall", "robot", "script_en"),
    ("scripts zh: robot recall", "robot", "script_zh"),
)


def hard_case_table(results: dict[str, dict[str, Any]]) -> str:
    """Rates at each model's own threshold on the sources that are not easy."""
    header = ["features", *(t for t, _, _ in HARD_CASES), "topic acc, human sales"]
    rows = [
        [name, *(pct(res["by_source"][src][f"{head}_rate_at_0"]) for _, head, src in HARD_CASES),
         pct(res["topic"]["human_sales"]["accuracy"])]
        for name, res in results.items()
    ]  # fmt: skip
    return "\n".join(markdown_table(header, rows))


def render_report(header: str, results: dict[str, dict[str, Any]]) -> str:
    sections = [header]
    sections.append(
        "### Hard cases (rates in %, at each model's own threshold, out-of-fold)\n\n"
        + hard_case_table(results)
    )
    for head, title in (("pitch", "Sales pitch vs not"), ("robot", "Robot script vs human")):
        for slice_, what in (
            ("all", "all held-out robocall campaigns"),
            ("held_out_half", "robocall split groups the lexicon was not written from"),
            ("en", "English only"),
            ("zh", "Mandarin only"),
        ):
            sections.append(f"### {title}: {what}\n\n{comparison_table(results, head, slice_)}")
    sections.append(f"### Topic (pitch rows, out-of-fold)\n\n{topic_table(results)}")
    for name in results:
        sections.append(f"### Flag rates per source: {name}\n\n{source_table(results[name])}")
    return "\n\n".join(sections)


def card_block(meta: dict[str, Any], digest: str, metrics: dict[str, Any]) -> str:
    """The generated part of ``models/weights/TEXT_CLF.md``: files, data, held-out numbers."""
    rows, corpus = meta["trained_on"]["rows_per_source"], meta["trained_on"]
    lines = [
        f"- model id: `{meta['model_id']}`; features per head: `{json.dumps(meta['features'])}`",
        f"- `text_heads.npz` sha256: `{digest}`",
        f"- corpus: `{corpus['corpus']}` sha256 `{corpus['corpus_sha256']}`",
        f"- rows: {sum(rows.values())} ({', '.join(f'{k} {v}' for k, v in rows.items())})",
        f"- command: `{meta['command']}`",
        f"- robot evidence threshold: the balanced Platt log-odds must exceed "
        f"{meta.get('robot_margin', 0.0):.2f} (the margin that lets <= 5 % of the selection "
        "half's spoken human business/sales texts through; folded into the stored Platt "
        "intercept, so the shipped log-odds 0 is that threshold); a transcript without a "
        f"machine-specific marker must exceed it by {meta.get('robot_gate', 0.0):.2f} more "
        "(the gate that leaves the fewest selection-half business/sales texts with robot "
        "evidence while >= 95 % of its robocalls keep theirs, issue 13)",
        "- held out of training (scored out of fold, never fitted): "
        + ", ".join(
            f"{k} {v}" for k, v in corpus.get("held_out_rows", {}).get("per_source", {}).items()
        )
        + " rows that share words, a campaign or a clip with the audio test split",
        "- figures: on the half of the fold groups that set no threshold and chose no feature "
        "set; the 2 % thresholds are set on the other half's negatives, so the FPR they reach "
        "here is measured, not 2 % by construction",
        "",
    ]
    for run, res in metrics.items():
        lines += [f"#### {run.replace('_', ' ')}", ""]
        for head, title in (("pitch", "sales pitch"), ("robot", "robot script")):
            lines += [
                f"*{title}* (positives: held-out robocall transcripts)",
                "",
                "| slice | AUC | recall @2% thr | FPR reached @2% thr | group-mean recall "
                "| FPR / recall at p=0.5 |",
                "|---|---|---|---|---|---|",
            ]
            for slice_, m in res[head].items():
                lines.append(
                    f"| {slice_} | {m['auc']:.4f} | {pct(m['recall_at_fpr2'])} | "
                    f"{pct(m['fpr_at_fpr2'])} | {pct(m['group_recall_at_fpr2'])} | "
                    f"{pct(m['fpr_at_0'])} / {pct(m['recall_at_0'])} |"
                )
            lines.append("")
        if "robot_evidence" in res:
            lines += [
                "*robot-leaning text evidence at the shipped threshold* (robot head: calibrated "
                "log-odds > 0; all text: robot head weight + rules-v1 evidence > 0; share of rows "
                "in %, 95 % CI resampling fold groups; false positives for people, recall for "
                "robots)",
                "",
                evidence_table(res["robot_evidence"]),
                "",
            ]
        lines += ["*flag rates per source* (%)", "", source_table(res), ""]
        topic = ", ".join(
            f"{fam} {pct(t['accuracy'])} % acc / {pct(t['macro_f1'])} macro-F1 (n={t['n']})"
            for fam, t in res["topic"].items()
        )
        lines += [f"*topic*: {topic}", ""]
    return "\n".join(lines)
