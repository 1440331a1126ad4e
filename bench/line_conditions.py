"""A recording's line and recorder: the simulated calls through the whole shipped detector as
stored, with a recorder's mains hum, and on a wideband line.

    PYTHONPATH=. nice -n 5 .venv/bin/python bench/line_conditions.py [--splits test]
        [--conditions hum,wideband] [--hum-db -45] [--kinds human_agent,recorded_robot,tts_robot]
        [--json OUT] [--resume OUT]

The simulator's telephone channel passes 300-3400 Hz through a narrowband codec, so no simulated
call hums and none is wideband. Conditions:

- ``hum``: a recorder on an analogue line, or a phone charging from a bad supply, adds 50 or 60 Hz
  and its harmonics to everything it records. Seeded by the call: mains 50 or 60 Hz, off by up
  to ``DRIFT_HZ``, harmonics 1-5 at ``HARMONICS`` of the fundamental's amplitude with random
  phases, the fundamental at ``--hum-db`` dBFS RMS, added to every channel.
- ``wideband``: the same call on a wideband line (HD voice, VoLTE, a G.722 softphone: 50-7000 Hz,
  no narrowband codec, the same noise draws): ``datasets/prepare_calls.py --wideband`` builds
  it (``calls/wideband.jsonl``, matched to the stored call by its id).

Prints one line per call and a table per (condition, caller kind, layout): calls, called robot,
hum removed (``audio.hum_hz``), the median robot probability and log-odds change against the
call as stored; and per (condition, layout) the EER of each robot kind against the live agents
(robot probability). ``--resume`` reads an earlier run's ``--json`` and judges only what it
lacks (a long run stopped, or a condition added). Run it at two commits to see what a change
does. Nothing is fitted or chosen here. Needs the generated calls (``make corpus``).
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import math
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from models.training.corpus import MANIFEST_DIR, CorpusRow, read_manifest
from models.training.metrics import eer
from pipeline.config import load_config
from pipeline.types import ANALYSIS_RATE_HZ as SR
from service.detector import load_detector

sys.path.insert(0, str(Path(__file__).resolve().parent))
from agent_recorders import judge, logit  # noqa: E402 (sibling bench scripts)
from hold_music_agents import CALLS, read_call  # noqa: E402

CONDITIONS = ("hum", "wideband")
KINDS = ("human_agent", "recorded_robot", "tts_robot")
WIDEBAND = MANIFEST_DIR / "calls" / "wideband.jsonl"
HARMONICS = (1.0, 0.3, 0.5, 0.15, 0.25)  # amplitudes of harmonics 1-5: a buzz's odd ones lead
DRIFT_HZ = 0.15  # mains frequency is held within about 0.1 Hz


def hum(n: int, *, level_dbfs: float, seed: int) -> np.ndarray:
    """``n`` samples of mains hum whose fundamental is ``level_dbfs`` RMS (full-scale sine:
    -3 dBFS)."""
    rng = np.random.default_rng(seed)
    mains = float(rng.choice([50.0, 60.0])) + rng.uniform(-DRIFT_HZ, DRIFT_HZ)
    t = np.arange(n) / SR
    amplitude = math.sqrt(2.0) * 10.0 ** (level_dbfs / 20.0)
    out = np.zeros(n)
    for k, gain in enumerate(HARMONICS, start=1):
        out += gain * amplitude * np.sin(2.0 * np.pi * k * mains * t + rng.uniform(0, 2 * np.pi))
    return out.astype(np.float32)


def calls_of(splits: list[str], kinds: list[str]) -> list[CorpusRow]:
    """The simulated calls (both layouts) of these splits whose caller is of these kinds."""
    return [
        row
        for row in read_manifest(CALLS)
        if row.split in splits and dict(row.extra).get("caller_kind") in kinds
    ]


def call_key(row: CorpusRow) -> str:
    """``<layout>/<language>/<kind>/<split>/<n>``: a call's id without its variant's name."""
    return row.id.split("/", 1)[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--splits", default="test", help="comma-separated splits of the calls")
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated caller kinds")
    parser.add_argument("--conditions", default="hum", help=f"comma-separated, of {CONDITIONS}")
    parser.add_argument("--hum-db", type=float, default=-45.0, help="fundamental, dBFS RMS")
    parser.add_argument("--json", type=Path, help="write every call's results here")
    parser.add_argument("--resume", type=Path, help="an earlier run's --json: judge only the rest")
    args = parser.parse_args(argv)
    conditions = args.conditions.split(",")
    if unknown := set(conditions) - set(CONDITIONS):
        parser.error(f"unknown conditions {sorted(unknown)}: they are {CONDITIONS}")
    rows = calls_of(args.splits.split(","), args.kinds.split(","))
    logging.basicConfig(level=logging.WARNING)
    detector = load_detector(load_config())
    wideband = (
        {r.id.split("/", 1)[1]: r for r in read_manifest(WIDEBAND)}
        if "wideband" in conditions
        else {}
    )
    results: dict[str, dict[str, Any]] = json.loads(args.resume.read_text()) if args.resume else {}
    for row in rows:
        done = results.setdefault(row.id, {})
        plain, _ = read_call(row)
        for name in ("plain", *conditions):
            if name in done:
                continue
            if name == "plain":
                done[name] = judge(detector, plain, row.id)
            elif name == "hum":
                noise = hum(
                    plain.shape[0], level_dbfs=args.hum_db, seed=zlib.crc32(row.id.encode())
                )
                hummed = np.clip(plain + noise[:, None], -1.0, 1.0)
                done[name] = judge(detector, hummed, f"{row.id}-hum")
            elif call_key(row) in wideband:
                other, _ = read_call(wideband[call_key(row)])
                done[name] = judge(detector, other, f"{row.id}-wideband")
        print(row.id, json.dumps(done), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print_tables(rows, {r.id: results[r.id] for r in rows})
    return 0


def print_tables(rows: list[CorpusRow], results: dict[str, dict[str, Any]]) -> None:
    cells: dict[tuple[str, str, str], list[dict[str, Any]]] = collections.defaultdict(list)
    for row in rows:
        extra = dict(row.extra)
        plain = results[row.id]["plain"]
        for name, result in results[row.id].items():
            if "refused" in result or "refused" in plain:
                continue
            shift = logit(result["p"]) - logit(plain["p"])
            cells[(name, extra["caller_kind"], extra["layout"])].append({**result, "shift": shift})
    print("| condition | caller | layout | calls | called robot | hum removed | median robot p "
          "| median log-odds change |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for (name, kind, layout), cell in sorted(cells.items()):
        print(
            f"| {name} | {kind} | {layout} | {len(cell)} | {sum(r['robot'] for r in cell)} | "
            f"{sum(1 for r in cell if r['hum_hz'])} | {np.median([r['p'] for r in cell]):.3f} | "
            f"{np.median([r['shift'] for r in cell]):+.2f} |"
        )
    print("\n| condition | layout | robots | EER against the live agents |")
    print("|---|---|---|---|")
    for name, layout in sorted({(n, lay) for n, _, lay in cells}):
        agents = [r["p"] for r in cells[(name, "human_agent", layout)]]
        for kind in KINDS[1:]:
            robots = [r["p"] for r in cells[(name, kind, layout)]]
            if not agents or not robots:
                continue
            labels = np.array([0] * len(agents) + [1] * len(robots))
            rate, _ = eer(labels, np.array(agents + robots))
            print(f"| {name} | {layout} | {kind} | {100 * rate:.1f} % |")


if __name__ == "__main__":
    sys.exit(main())
