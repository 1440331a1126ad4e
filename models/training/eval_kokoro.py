"""The shipped detector on Kokoro-82M v1.0, a 2025 neural TTS no model here saw (issue 12).

    OMP_NUM_THREADS=1 nice -n 10 python -m models.training.eval_kokoro [--out runs/eval_kokoro]

Kokoro's clips (``datasets/prepare_kokoro.py``, a held-out source: trained on and chosen by
nothing) against as many **test-split people of the same language**, picked as
``eval_sources`` picks its clips (:func:`eval_sources.spread_sample` of the non-dev shared
clips, round robin over speakers). Every clip goes through ``eval_sources.clip_evidence``: the
one telephone-channel draw per clip, then the detector as ``robocall analyze`` builds it (real
ASR, every cue, the fitted fusion), with no fold head: the shipped head scores both classes.

Per language, scored three ways: (a) the voice head's pooled log-odds, (b) the fused verdict's
logit (all Kokoro clips, and its neutral and sales texts apart, each against all the people),
(c) the published AASIST as it ships (``aasist_scores``, the telephone variant). AUC and EER with
95 % bootstrap intervals resampling whole voices (Kokoro) and speakers (people); the share
called robot at the shipped threshold (fused) and at 0.5 (voice head), with intervals.

Is it speech? Each Kokoro clip's clean 16 kHz decode is transcribed by the shipped ASR
(faster-whisper base) and compared with the text it was made from (``bench/asr_quality``'s
normalisation: CER for Mandarin, WER for English); the telephone-channel transcript of the
detector pass is scored the same way.

``--as-uploaded`` runs the detector pass on each clip's file as ``robocall analyze`` reads it,
without the channel draw (``eval_sources.uploaded_audio``), into ``runs/eval_kokoro_as_uploaded``;
AASIST already scores the detector's own deterministic channel, the same in both runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.training import metrics as M
from models.training.corpus import (
    KOKORO_MANIFEST,
    REPO_DIR,
    CorpusRow,
    read_clip,
    read_manifest,
    read_manifests,
    resolve_path,
)
from models.training.eval_sources import (
    LANGUAGES,
    candidate_rows,
    clip_evidence,
    example,
    fused_logit,
    pooled_row,
    spread_sample,
)

log = logging.getLogger(__name__)
OUT = REPO_DIR / "runs" / "eval_kokoro"
OUT_AS_UPLOADED = REPO_DIR / "runs" / "eval_kokoro_as_uploaded"
SALT = "eval-kokoro-v1"  # the people's sample


def people_sample(rows: Sequence[CorpusRow], language: str, n: int) -> list[CorpusRow]:
    """``n`` test-split people of ``language``, spread over speakers as eval_sources spreads."""
    people = [
        r
        for r in candidate_rows(rows)
        if r.label == "human" and r.split == "test" and r.language == language
    ]
    return spread_sample(people, n, salt=SALT)


def kind_of(row: CorpusRow) -> str:
    return dict(row.extra).get("kind", "human") if row.label == "robot" else "human"


def score_rows(
    rows: Sequence[CorpusRow], *, progress: bool, as_uploaded: bool = False
) -> list[dict[str, Any]]:
    """One record per clip: the detector's fused logit, the voice head's log-odds, the
    caller's transcript (or the error code). ``as_uploaded``: no channel draw."""
    from models.loading import load_fusion
    from models.training.fusion_calls import analyze_detector

    detector = analyze_detector()
    fusion = load_fusion()
    records = []
    started = time.monotonic()
    for i, row in enumerate(rows):
        got = clip_evidence(detector, row, as_uploaded=as_uploaded)
        rec: dict[str, Any] = {
            "id": row.id,
            "y": int(row.label == "robot"),
            "language": row.language,
            "group": row.speaker,
            "kind": kind_of(row),
            "text": row.text,
        }
        if "error" in got:
            rec["error"] = got["error"]
        else:
            rec["logit"] = fused_logit(fusion, example(row, got, text_source=row.source))
            rec["voice_log_odds"] = got.get("voice_log_odds")
            rec["channel_text"] = got["caller_text"]
        records.append(rec)
        if progress and (i + 1) % 10 == 0:
            log.warning(
                "detector: %d/%d clips, %.0f s", i + 1, len(rows), time.monotonic() - started
            )
    return records


def clean_transcripts(rows: Sequence[CorpusRow]) -> dict[str, tuple[str, str]]:
    """``{id: (language, text)}`` of the shipped ASR on each clip's clean 16 kHz decode."""
    from models.loading import load_transcriber
    from pipeline.config import AsrConfig

    transcriber = load_transcriber(AsrConfig())
    out = {}
    for row in rows:
        got = transcriber.transcribe(read_clip(resolve_path(row)))
        out[row.id] = (got.language, got.text)
    return out


def intelligibility(
    rows: Sequence[CorpusRow], clean: dict[str, tuple[str, str]], records: Sequence[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Per language and text kind: CER (zh) / WER (en) of the clean and the channel transcripts,
    and the share of clips the ASR heard in the wrong language."""
    sys.path.insert(0, str(REPO_DIR / "bench"))
    from asr_quality import error_rate, normalise

    heard = {
        "clean": {k: text for k, (_, text) in clean.items()},
        "channel": {r["id"]: r.get("channel_text", "") for r in records},
    }
    out: dict[str, dict[str, Any]] = {}
    for language in LANGUAGES:
        unit = "cer" if language == "zh" else "wer"
        for kind in ("neutral", "sales", "all"):
            mine = [r for r in rows if r.language == language and kind in ("all", kind_of(r))]
            if not mine:
                continue
            refs = [normalise(r.text, unit=unit, language=language) for r in mine]
            cell: dict[str, Any] = {"unit": unit, "n": len(mine)}
            for path, texts in heard.items():
                hyps = [normalise(texts.get(r.id, ""), unit=unit, language=language) for r in mine]
                cell[path] = error_rate(refs, hyps, unit=unit)
            cell["wrong_language"] = float(np.mean([clean[r.id][0] != language for r in mine]))
            out[f"{language}/{kind}"] = cell
    return out


def called_robot(flags: np.ndarray, groups: Sequence[str]) -> dict[str, Any]:
    rate = float(flags.mean()) if flags.size else float("nan")
    return {"rate": rate, "ci": M.rate_ci(flags, groups), "n": int(flags.size)}


def tables(
    records: Sequence[dict[str, Any]], aasist: dict[str, float], *, threshold: float
) -> dict[str, Any]:
    """Per language: the three scores' separation and the called-robot shares by class."""
    from pipeline.fuse import sigmoid

    out: dict[str, Any] = {}
    for language in LANGUAGES:
        ok = [r for r in records if r["language"] == language and "error" not in r]
        scored = [r for r in ok if r["voice_log_odds"] is not None]
        part: dict[str, Any] = {
            "errors": sum(r["language"] == language and "error" in r for r in records),
            "no_voice_window": len(ok) - len(scored),
        }
        for name, members, key in (
            ("voice head", scored, "voice_log_odds"),
            ("fused", ok, "logit"),
            ("fused, neutral texts", [r for r in ok if r["kind"] in ("human", "neutral")], "logit"),
            ("fused, sales texts", [r for r in ok if r["kind"] in ("human", "sales")], "logit"),
            ("AASIST (telephone)", [r for r in ok if r["id"] in aasist], "aasist"),
        ):
            y = np.array([r["y"] for r in members])
            s = np.array([aasist[r["id"]] if key == "aasist" else r[key] for r in members])
            groups = [r["group"] for r in members]
            row = pooled_row(y, s, groups)  # intervals by voice / speaker here
            if key != "aasist":
                cut = threshold if key == "logit" else 0.5
                flags = sigmoid(s) >= cut
                for cls, label in ((1, "kokoro"), (0, "people")):
                    mask = y == cls
                    picked = [g for g, m in zip(groups, mask, strict=True) if m]
                    row[f"{label}_called_robot"] = called_robot(flags[mask], picked)
            part[name] = row
        out[language] = part
    return out


def run(*, progress: bool, as_uploaded: bool = False) -> dict[str, Any]:
    from models.loading import load_detector, load_fusion
    from models.training.aasist_scores import aasist_scores
    from pipeline.config import DetectorConfig
    from pipeline.fuse import operating_point

    kokoro = read_manifest(KOKORO_MANIFEST)
    corpus = read_manifests()
    people = [
        r
        for language in LANGUAGES
        for r in people_sample(corpus, language, sum(k.language == language for k in kokoro))
    ]
    rows = [*kokoro, *people]
    seconds: dict[str, float] = {}
    started = time.monotonic()
    clean = clean_transcripts(kokoro)
    seconds["asr_clean"] = time.monotonic() - started
    started = time.monotonic()
    records = score_rows(rows, progress=progress, as_uploaded=as_uploaded)
    seconds["detector"] = time.monotonic() - started
    started = time.monotonic()
    aasist = aasist_scores(rows, variants=("telephone",), progress=progress)["telephone"]
    seconds["aasist"] = time.monotonic() - started
    threshold, _ = operating_point(load_detector(DetectorConfig()).config.fusion, load_fusion())
    return {
        "condition": "as uploaded" if as_uploaded else "telephone channel",
        "threshold": threshold,
        "n_kokoro": len(kokoro),
        "people_sources": sorted({r.source for r in people}),
        "intelligibility": intelligibility(kokoro, clean, records),
        "tables": tables(records, aasist, threshold=threshold),
        "records": [{**r, "aasist": aasist.get(r["id"])} for r in records],
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
    }


def _ci(pair: Sequence[float], *, pct: bool) -> str:
    return "-".join(M.format_metric(v).removesuffix(" %") if pct else f"{v:.2f}" for v in pair)


def markdown(out: dict[str, Any]) -> str:
    """The run's tables as Markdown (the docs page quotes them)."""
    lines = [
        "| language | score | n people / Kokoro | AUC [95 % CI] | EER [95 % CI] "
        "| Kokoro called robot | people called robot |",
        "|---|---|---|---|---|---|---|",
    ]
    for language, part in out["tables"].items():
        for name, row in part.items():
            if not isinstance(row, dict) or "auc" not in row:
                continue
            rates = [
                f"{M.format_metric(c['rate'])} [{_ci(c['ci'], pct=True)}]" if c else "-"
                for c in (row.get("kokoro_called_robot"), row.get("people_called_robot"))
            ]
            lines.append(
                f"| {language} | {name} | {row['n_human']} / {row['n_robot']} "
                f"| {row['auc']:.2f} [{_ci(row['auc_ci'], pct=False)}] "
                f"| {M.format_metric(row['eer'])} [{_ci(row['eer_ci'], pct=True)}] "
                f"| {rates[0]} | {rates[1]} |"
            )
    condition = out.get("condition", "telephone channel")
    lines += ["", f"| language / texts | unit | n | clean clip | {condition} | "
              "heard as another language |", "|---|---|---|---|---|---|"]  # fmt: skip
    for key, cell in out["intelligibility"].items():
        lines.append(
            f"| {key} | {cell['unit'].upper()} | {cell['n']} | {M.format_metric(cell['clean'])} "
            f"| {M.format_metric(cell['channel'])} | {M.format_metric(cell['wrong_language'])} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help=f"folder for results.json (default {OUT.name}, "
                        f"{OUT_AS_UPLOADED.name} with --as-uploaded)")  # fmt: skip
    parser.add_argument("--as-uploaded", action="store_true", help="each clip decoded as "
                        "`robocall analyze` reads its file, no telephone-channel draw")  # fmt: skip
    parser.add_argument("--render", action="store_true", help="only print the tables of "
                        "the last results.json")  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    folder = args.out or (OUT_AS_UPLOADED if args.as_uploaded else OUT)
    path = folder / "results.json"
    if args.render:
        sys.stdout.write(markdown(json.loads(path.read_text())))
        return 0
    out = run(progress=True, as_uploaded=args.as_uploaded)
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1, sort_keys=True, ensure_ascii=False, default=float))
    sys.stdout.write(markdown(out))
    log.warning("wrote %s (%s)", path, out["seconds"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
