"""Hold music inside two-party calls: the simulated live-agent test calls with music looping on
the caller's leg after the agent's first turn, through the whole shipped detector with the hold
rule (``Detector._without_hold``) and without it.

    PYTHONPATH=. nice -n 5 .venv/bin/python bench/hold_music_agents.py [--music FILE] [--plays 2.5]
        [--walk SECONDS]

The music (a recording looped end to end, ``--plays`` times its length; the bench's chord loop,
10 s then 6 s, without ``--music``; with ``--walk``, music that never repeats, played once:
``queue_announcements.chord_walk``, which no replay rule can find) starts 0.3 s after the end of
the agent's first turn, at half the agent's level, between 0.5 s of the line's sound either side
(``queue_announcements.line_sound``: noise shaped like the leg's quietest frames, a new draw for
each piece); the rest of the call moves on by as much, and in a stereo call the callee's leg
gets the line's sound meanwhile. A mono call gets the music in its one channel, at the mix's
level. No call is a robot, so every call called robot is a person lost. Needs the generated
calls (``make corpus``); about 10 min.
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import logging
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import soundfile as sf

from models.training.corpus import MANIFEST_DIR, CorpusRow, read_clip, read_manifest, resolve_path
from pipeline.config import load_config
from pipeline.detector import Detector
from pipeline.types import ANALYSIS_RATE_HZ as SR
from service.detector import load_detector

sys.path.insert(0, str(Path(__file__).resolve().parent))
from queue_announcements import (  # noqa: E402 (a sibling bench script)
    chord_loop,
    chord_walk,
    judge,
    line_sound,
    music_loop,
    unchanged,
)

CALLS = MANIFEST_DIR / "calls" / "calls.jsonl"


def hold_music(path: Path | None, plays: float, walk_s: float | None = None) -> np.ndarray:
    if walk_s is not None:
        return chord_walk(walk_s)
    if path is None:
        return np.concatenate([chord_loop(10.0), chord_loop(6.0)])
    return music_loop(path, plays * read_clip(path).size / SR)


def read_call(row: CorpusRow) -> tuple[np.ndarray, int]:
    """A simulated call's samples (n, channels) as stored, and the caller's channel."""
    x, sr = sf.read(resolve_path(row), dtype="float32", always_2d=True)
    if sr != SR:
        raise ValueError(f"{row.id}: {sr} Hz, the calls are stored at {SR}")
    caller = int(dict(row.extra).get("caller_channel", "0")) if x.shape[1] == 2 else 0
    return x, caller


def on_hold(row: CorpusRow, music: np.ndarray) -> bytes:
    """The call of ``row`` with ``music`` on the caller's leg after the agent's first turn (WAV)."""
    extra = dict(row.extra)
    x, caller = read_call(row)
    turns = [
        s for s in json.loads(extra["segments"]) if s["role"] == "caller" and s["kind"] == "turn"
    ]
    at = int((min(t["end_s"] for t in turns) + 0.3) * SR)
    legs = []
    for c in range(x.shape[1]):
        leg = x[:, c]
        if c == caller:
            loud = music / np.abs(music).max() * float(np.percentile(np.abs(leg), 99)) * 0.5
            held = [
                line_sound(leg, 1),
                loud + line_sound(leg, 2, loud.size / SR),
                line_sound(leg, 3),
            ]
        else:
            held = [line_sound(leg, 4, music.size / SR + 1.0)]
        legs.append(np.concatenate([leg[:at], *held, leg[at:]]))
    buf = io.BytesIO()
    sf.write(buf, np.stack(legs, axis=1), SR, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--music", type=Path, help="real music to loop (default: a chord loop)")
    parser.add_argument("--plays", type=float, default=2.5, help="times through --music")
    parser.add_argument("--walk", type=float, help="this many seconds of music that never repeats")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    detector = load_detector(load_config())
    music = hold_music(args.music, args.plays, args.walk)
    table: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for row in read_manifest(CALLS):
        extra = dict(row.extra)
        if row.split != "test" or extra.get("caller_kind") != "human_agent":
            continue
        wav = on_hold(row, music)
        results = {"as recorded": judge(detector, resolve_path(row).read_bytes(), row.id),
                   "rule": judge(detector, wav, row.id)}  # fmt: skip
        with mock.patch.object(Detector, "_without_hold", unchanged):
            results["no rule"] = judge(detector, wav, row.id)
        cell = table[extra["layout"]]
        cell["calls"] += 1
        for key, result in results.items():
            cell[f"{key}: robot"] += bool(result.get("robot"))
            cell[f"{key}: refused"] += "refused" in result
        cell["rule: aside"] += bool(results["rule"].get("aside"))
        print(row.id, results, flush=True)
    columns = ["calls", "as recorded: robot", "no rule: robot", "rule: robot", "rule: aside",
               "rule: refused"]  # fmt: skip
    print("| layout | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for layout, cell in sorted(table.items()):
        print(f"| {layout} | " + " | ".join(str(cell[c]) for c in columns) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
