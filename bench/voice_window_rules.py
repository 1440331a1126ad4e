"""Which speech the synthetic-voice head encodes on long calls: accuracy of each window rule.

    .venv/bin/python bench/voice_window_rules.py [--splits dev,test] [--sources calls,mixed]
                                               [--rules all,spread,longest]
                                               [--scores FILE] [--limit N]

Issue 12's cost target (the voice stage <= 25 % of the bare ASR on a 60 s call) against the
head's own Whisper encoder pass, one padded 30 s pass per 30 s of speech. The rules of
``models.synth_head.choose_windows`` keep every speech window while they hold at most 30 s
of speech and otherwise a subset that fits one pass; each kept window's features are computed
as the scorer computes them (the encoder pass over the kept speech, LFCC, the call's AASIST
embedding), so only inputs with more than 30 s of speech in their windows can move.

Scores every dev/test row of the simulated two-party calls (``calls/calls.jsonl``, full
length: the caller's channel of the stereo copy and the mono mix) and of the call mixtures
(``mixed.jsonl``) with the shipped head under every rule, then prints per set and split: EER
and AUC with 95 % intervals (cluster bootstrap over caller voices,
``models.training.metrics.bootstrap_ci``), the EER change against ``all`` with its paired
interval, and how far each rule's pooled log-odds moves from ``all``'s on the rows where the
rules differ. Per-row scores go to ``--scores`` (JSONL; a rerun scores only rows not in it).
Needs the generated corpus and the shipped weights; run with ``PYTHONPATH`` at the worktree. The
dev split took about 25 min, the test split with ``--rules all,spread`` 14 min (nice 10, 2 shared
cores at load average 6-9).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from models.asr import SpeechFrames, vad_speech
from models.loading import load_synth_head
from models.synth_head import (
    ENCODER_PASS_S,
    WINDOW_RULES,
    SynthVoiceScorer,
    WindowChoice,
    speech_windows,
)
from models.training import metrics as M
from models.training.aasist_scores import paired_eer_delta
from models.training.corpus import MANIFEST_DIR, CorpusRow, read_manifest, resolve_path
from models.training.eval_calls import caller_voice
from pipeline.errors import EmptyAudioError
from pipeline.telephone import call_channel

SETS = ("calls stereo", "calls mono", "mixed")


def read_rows(splits: tuple[str, ...], sources: tuple[str, ...]) -> list[tuple[str, CorpusRow]]:
    """(set, row) of every row of the given splits and manifests ("calls", "mixed")."""
    out: list[tuple[str, CorpusRow]] = []
    if "calls" in sources:
        calls = read_manifest(MANIFEST_DIR / "calls" / "calls.jsonl")
        out += [(f"calls {dict(r.extra)['layout']}", r) for r in calls if r.split in splits]
    if "mixed" in sources:
        out += [("mixed", r) for r in read_manifest(MANIFEST_DIR / "mixed.jsonl")]
    return [(subset, r) for subset, r in out if r.split in splits]


def caller_samples(subset: str, row: CorpusRow) -> np.ndarray:
    """The channel the head scores: the caller's side of a stereo call, else the recording."""
    x, _ = sf.read(resolve_path(row), dtype="float32", always_2d=True)
    column = int(dict(row.extra)["caller_channel"]) if subset == "calls stereo" else 0
    return np.ascontiguousarray(x[:, column] if subset == "calls stereo" else x.mean(axis=1))


def score_rules(
    scorer: SynthVoiceScorer, samples: np.ndarray, rules: tuple[str, ...]
) -> dict[str, Any] | None:
    """Pooled log-odds of ``samples`` under every rule, sharing the channel copy, the AASIST
    embedding and identical encoder passes; None without speech windows."""
    try:
        y = call_channel(samples)
    except EmptyAudioError:
        return None
    every = speech_windows(y, max_window_s=scorer.head.spec.max_window_s)
    if not every or scorer.encoder is None or scorer.embedder is None:
        return None
    embedding = scorer.embedding(y, every)
    _, chunks = vad_speech(y)  # the encoder's VAD, to know which rules share a pass
    passes: dict[tuple[tuple[float, float], ...] | None, SpeechFrames | None] = {}
    out: dict[str, Any] = {"windows": len(every), "vad_speech_s": _seconds(chunks)}
    for rule in rules:
        choice = WindowChoice(tuple(every), rule)
        spans = choice.spans(chunks) if chunks else None
        key = None if spans is None else tuple(spans)
        if key not in passes:
            passes[key] = scorer.encoder.speech_frames(y, choice=None if key is None else choice)
        frames = passes[key]
        score = scorer.score_channelled(y, frames, embedding, windows=every)
        out[rule] = None if score is None else score.log_odds
        out[f"{rule}_kept"] = 0 if score is None else len(score.windows)
        out[f"{rule}_encoded_s"] = 0.0 if frames is None else _seconds(frames.chunks)
    return out


def _seconds(chunks: tuple[tuple[int, int], ...]) -> float:
    return sum(b - a for a, b in chunks) / 16_000


def group_of(subset: str, row: CorpusRow) -> str:
    """Bootstrap unit: the caller's voice (a robot campaign or an agent of the calls, the
    speaker or TTS voice of a mixture)."""
    return caller_voice(row) if subset.startswith("calls") else row.speaker


def report(records: list[dict[str, Any]], rules: tuple[str, ...]) -> None:
    for subset in SETS:
        for split in ("dev", "test"):
            sel = [r for r in records if r["set"] == subset and r["split"] == split]
            sel = [r for r in sel if all(r.get(rule) is not None for rule in rules)]
            if not sel:
                continue
            y = np.array([r["label"] == "robot" for r in sel], dtype=np.int64)
            groups = [r["group"] for r in sel]
            moved = [r for r in sel if r["vad_speech_s"] > ENCODER_PASS_S]
            print(  # noqa: T201
                f"\n## {subset}, {split}: {len(sel)} rows ({int(y.sum())} robot, "
                f"{int((1 - y).sum())} human) of {len(set(groups))} caller voices; "
                f"{len(moved)} with > 30 s of speech (more than one encoder pass) "
                f"({sum(r['label'] == 'robot' for r in moved)} robot)"
            )
            print("| rule | EER [95 % CI] | AUC [95 % CI] | EER - all's [95 % CI] |"  # noqa: T201
                  " abs. change of pooled log-odds on those rows: median / max |")  # fmt: skip
            base = np.array([r["all"] for r in sel])
            for rule in rules:
                s = np.array([r[rule] for r in sel])
                both = M.has_both_classes(y)
                ci = M.bootstrap_ci(y, s, groups=groups) if both else {}
                err = M.eer(y, s)[0] if both else float("nan")
                auc = M.roc_auc(y, s) if both else float("nan")
                delta = "-"
                if both and rule != "all":
                    d, lo, hi = paired_eer_delta(y, s, base, groups=groups)
                    delta = f"{100 * d:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"
                change = "-"
                if moved and rule != "all":
                    diff = np.abs(np.array([r[rule] - r["all"] for r in moved]))
                    change = f"{np.median(diff):.3f} / {diff.max():.3f}"
                eci, aci = ci.get("eer", (np.nan, np.nan)), ci.get("auc", (np.nan, np.nan))
                print(  # noqa: T201
                    f"| {rule} | {100 * err:.1f} % [{100 * eci[0]:.1f}-{100 * eci[1]:.1f}] "
                    f"| {auc:.3f} [{aci[0]:.3f}-{aci[1]:.3f}] | {delta} | {change} |"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", default="dev,test", help="comma-separated splits")
    parser.add_argument("--sources", default="calls,mixed", help="manifests: calls, mixed")
    parser.add_argument("--scores", type=Path, default=Path("voice_window_rules.jsonl"))
    parser.add_argument("--rules", default=",".join(WINDOW_RULES), help="rules to score")
    parser.add_argument("--limit", type=int, default=0, help="first N rows only (0 = all)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    done: dict[str, dict[str, Any]] = {}
    if args.scores.is_file():
        for line in args.scores.read_text().splitlines():
            rec = json.loads(line)
            done[f"{rec['set']}|{rec['id']}"] = rec
    rules = tuple(args.rules.split(","))
    if "all" not in rules or not set(rules) <= set(WINDOW_RULES):
        parser.error(f"--rules: some of {WINDOW_RULES}, with all (the reference)")
    rows = read_rows(tuple(args.splits.split(",")), tuple(args.sources.split(",")))[
        : args.limit or None
    ]
    todo = [(subset, row) for subset, row in rows if f"{subset}|{row.id}" not in done]
    if todo:
        scorer = load_synth_head()
        if not isinstance(scorer, SynthVoiceScorer):
            raise SystemExit("the shipped synthetic-voice head did not load")
        with args.scores.open("a") as out:
            for k, (subset, row) in enumerate(todo, 1):
                got = score_rules(scorer, caller_samples(subset, row), rules)
                rec = {"set": subset, "id": row.id, "split": row.split, "label": row.label}
                rec |= {"group": group_of(subset, row), "kind": row.kind, "language": row.language}
                rec |= {"duration_s": row.duration_s} | (got or {"skipped": True})
                out.write(json.dumps(rec) + "\n")
                out.flush()
                done[f"{subset}|{row.id}"] = rec
                print(f"{k}/{len(todo)} {subset} {row.id}", flush=True)  # noqa: T201
    wanted = {f"{subset}|{row.id}" for subset, row in rows}
    report([r for key, r in done.items() if key in wanted and not r.get("skipped")], rules)


if __name__ == "__main__":
    main()
