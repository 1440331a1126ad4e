"""The report of ``models/training/loso_voice.py``: the generated part of
``docs/unseen_sources.md``, from a run's results (per-source and per-part tables are read off
its records here; the pooled figures, the halves and the choice come with the results)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from models.training import metrics as M
from models.training.eval_sources import LANGUAGES
from models.training.tables import markdown_table

# the intercept is the fold's own: no shift; the GE2E blocks only where a variant has them
SHOWN_PARTS = ("whisper", "lfcc", "aasist", "ge2e", "ge2e_spread", "density")


def per_source(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per (source, label, language): clips, voices, mean log-odds, share called robot at 0.5,
    and the AUC of these clips against the other class's held-out clips of the language."""
    out = {}
    for key in sorted({(r["source"], r["label"], r["language"]) for r in records}):
        cell = [r for r in records if (r["source"], r["label"], r["language"]) == key]
        other = [r for r in records if r["language"] == key[2] and r["label"] != key[1]]
        s = np.asarray([r["tel"] for r in cell])
        row: dict[str, Any] = {
            "clips": len(cell),
            "voices": len({r["group"] for r in cell}),
            "mean_log_odds": float(s.mean()),
            "called_robot": float((s >= 0).mean()),
        }
        if other:
            both = [*cell, *other]
            y = np.asarray([r["y"] for r in both], dtype=np.int64)
            row["auc"] = M.roc_auc(y, np.asarray([r["tel"] for r in both]))
        out[", ".join(key)] = row
    return out


def part_shifts(
    records: Sequence[dict[str, Any]], folds: dict[str, dict[str, Any]]
) -> dict[str, dict[str, float]]:
    """Per people source, and per language and class pooled: the mean raw-logit part of its
    held-out clips minus that part's mean over the fold's own training clips of the class
    (positive = towards robot): which block moves an unseen person (or robot) and how far."""
    out: dict[str, dict[str, float]] = {}
    cells = [(f"all {label}, {lang}", lang, y, None) for y, label in ((0, "people"), (1, "robots"))
             for lang in LANGUAGES]  # fmt: skip
    cells += sorted(
        {(f"{r['source']}, {r['language']}", r["language"], 0, r["source"]) for r in records
         if not r["y"]}
    )  # fmt: skip
    for name, lang, y, source in cells:
        members = [r for r in records if r["language"] == lang and r["y"] == y
                   and source in (None, r["source"])]  # fmt: skip
        if not members:
            continue
        ref = "train_robots" if y else "train_people"
        shift = {
            p: float(np.mean([r["parts"][p] - folds[r["source"]][ref][p] for r in members]))
            for p in members[0]["parts"]
        }
        out[name] = {**shift, "total": sum(shift.values()), "clips": len(members)}
    return out


def _num(v: Any, *, pct: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{100 * v:.1f} %" if pct else f"{v:.3f}"


def _with_ci(f: dict[str, Any], key: str) -> str:
    if key not in f:
        return "-"
    low, high = f[f"{key}_ci"]
    pct = key == "eer"
    return f"{_num(f[key], pct=pct)} [{_num(low, pct=pct)}-{_num(high, pct=pct)}]"


def _counts(c: dict[str, int]) -> str:
    return ", ".join(f"{k} {n}" for k, n in sorted(c.items()))


def _variants_table(out: dict[str, Any]) -> list[str]:
    rows = []
    for name, v in out["variants"].items():  # in the run's order
        s = v["summary"]
        rep = s["report"]["tel"]
        rows.append([
            f"**{name}**" if name == out.get("chosen") else name,
            *(_num(s["choose"]["tel"][lang].get("auc")) for lang in LANGUAGES),
            _num(v["criterion"]),
            *(_with_ci(rep[lang], "auc") for lang in LANGUAGES),
            *(_num(rep[lang]["people_called_robot"], pct=True) for lang in LANGUAGES),
            *(_num(s["all"]["tel"][lang].get("auc")) for lang in LANGUAGES),
            *(_num(s["all"]["tel"][lang].get("eer"), pct=True) for lang in LANGUAGES),
            *(_num(s["all"]["tel"][lang]["people_called_robot"], pct=True) for lang in LANGUAGES),
            *(_num(s["all"]["inf"][lang].get("auc")) for lang in LANGUAGES),
        ])  # fmt: skip
    header = [
        "variant", "choose: AUC en", "AUC zh", "mean (criterion)", "report: AUC en [95 % CI]",
        "AUC zh [95 % CI]", "people called robot en", "zh", "all sources: AUC en", "AUC zh",
        "EER en", "EER zh", "people called robot en", "zh", "call path (dev/test rows): AUC en",
        "AUC zh",
    ]  # fmt: skip
    return markdown_table(header, rows)


def _delta(d: list[float] | None, *, pct: bool = False) -> str:
    if not d:
        return "-"
    k = 100 if pct else 1
    fmt = "{:+.1f}" if pct else "{:+.3f}"
    return f"{fmt.format(k * d[0])} [{fmt.format(k * d[1])}, {fmt.format(k * d[2])}]"


def _paired_table(out: dict[str, Any], base_name: str) -> list[str]:
    """Each variant's paired change against ``base_name`` (``loso_voice.paired_figures``)."""
    rows = []
    for name, v in out["variants"].items():
        for scope, p in v.get("paired", {}).items():
            rows.append([
                name, scope, *(_delta(p.get(lang, {}).get("auc")) for lang in LANGUAGES),
                _delta(p.get("mean_auc")),
                *(_delta(p.get(lang, {}).get("eer"), pct=True) for lang in LANGUAGES),
            ])  # fmt: skip
    if not rows:
        return []
    header = ["variant", "sources", *(f"AUC change {lang}" for lang in LANGUAGES),
              "mean AUC change", *(f"EER change {lang}, points" for lang in LANGUAGES)]  # fmt: skip
    return [
        "",
        f"### Paired change against {base_name} (telephone path; 95 % intervals from one "
        "cluster bootstrap applied to both)",
        "",
        *markdown_table(header, rows),
    ]


def probe_table(probe: dict[str, dict[str, Any]]) -> list[str]:
    return markdown_table(
        ["features", "balanced accuracy", "chance", "sources", "clips"],
        [[k, _num(v["balanced_accuracy"], pct=True), _num(v["chance"], pct=True),
          str(v["sources"]), str(v["rows"])] for k, v in probe.items()],
    )  # fmt: skip


def render(out: dict[str, Any]) -> str:
    """The generated part of ``docs/unseen_sources.md``."""
    variants = out["variants"]
    chosen = out.get("chosen")
    base_name = out.get("base", "shipped")
    base = variants.get(base_name) or next(iter(variants.values()))
    lines = [
        f"Generated by `{out.get('command', 'python -m models.training.loso_voice')}` "
        f"({out['seconds']:.0f} s; shipped head arrays sha256 {out['head'][:12]}); this part "
        "is rewritten by each run.",
        "",
        "### Sources and halves",
        "",
    ]
    lines += markdown_table(
        ["source", "stratum", "half", "scored clips"],
        [[s, out["strata"][s], out["halves"][s], _counts(c)] for s, c in out["samples"].items()],
    )
    lines += ["", "### What each figure rests on", ""]
    lines += markdown_table(
        ["path", "scope", "language", "people (speakers, sources)", "robots (engines, sources)"],
        [[path, scope, lang, f"{f['people']} ({f['speakers']}, {f['people_sources']})",
          f"{f['robots']} ({f['engines']}, {f['robot_sources']})"]
         for path in ("tel", "inf") for scope in base["summary"]
         for lang, f in base["summary"][scope][path].items()],
    )  # fmt: skip
    lines += ["", "### Variants: chosen on the choose half, reported on the report half", ""]
    lines += _variants_table(out)
    if out.get("delta_report") and chosen != base_name:
        deltas = "; ".join(
            f"{lang} {100 * d:+.1f} points [{100 * lo:+.1f}, {100 * hi:+.1f}]"
            for lang, (d, lo, hi) in out["delta_report"].items()
        )
        lines += ["", f"Report half, EER of **{chosen}** minus {base_name}'s (one "
                  f"cluster bootstrap for both, 95 %): {deltas}."]  # fmt: skip
    lines += _paired_table(out, base_name)
    names = list(dict.fromkeys(n for n in (base_name, chosen) if n in variants))
    tables = {n: per_source(variants[n]["records"]) for n in names}
    lines += ["", "### Per source (telephone path; AUC against the other class's held-out "
              "clips of the language)", ""]  # fmt: skip
    lines += markdown_table(
        ["source, label, language", "clips", "voices",
         *(f"{n}: {c}" for n in names for c in ("mean log-odds", "called robot", "AUC"))],
        [[cell, str(first["clips"]), str(first["voices"]),
          *(x for n in names for x in (f"{tables[n][cell]['mean_log_odds']:+.2f}",
                                       _num(tables[n][cell]["called_robot"], pct=True),
                                       _num(tables[n][cell].get("auc"))))]
         for cell, first in tables[names[0]].items()],
    )  # fmt: skip
    lines += ["", "### Which part of the raw logit moves a held-out clip", "",
              "Mean over the held-out clips of each part minus its mean over the fold's own "
              "training clips of the same class (raw logit, before Platt; positive = towards "
              "robot).", ""]  # fmt: skip
    for name in names:
        shifts = part_shifts(variants[name]["records"], variants[name]["folds"])
        shown = [p for p in SHOWN_PARTS if any(v.get(p) for v in shifts.values())]
        lines += [f"{name}:", ""]
        lines += markdown_table(
            ["held-out clips", "clips", *shown, "total"],
            [[cell, str(v["clips"]), *(f"{v[p]:+.2f}" for p in (*shown, "total"))]
             for cell, v in shifts.items()],
        )  # fmt: skip
        lines += [""]
    lines += ["### Which features name the recording chain (people only, unseen speakers)", ""]
    lines += probe_table(out["probe"])
    if "probe_projected" in out:
        lines += ["", f"After **{chosen}**'s projection (learnt inside each cross-validation fold "
                  "from its own training speakers' sources):", ""]  # fmt: skip
        lines += probe_table(out["probe_projected"])
    fit_s = [f["fit_s"] for f in base["folds"].values() if f["fit_s"] is not None]
    if fit_s:
        lines += ["", f"One fold's fit and calibration ({base['variant']['name']}): "
                  f"{np.median(fit_s):.1f} s median over {len(fit_s)} folds fitted in this run "
                  f"(range {min(fit_s):.1f}-{max(fit_s):.1f} s)."]  # fmt: skip
    return "\n".join(lines) + "\n"
