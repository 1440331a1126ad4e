"""A live agent's leg as a call centre's own recorder may keep it: the simulated live-agent calls
through the whole shipped detector as simulated, and under conditions the simulator never makes.

    PYTHONPATH=. nice -n 5 .venv/bin/python bench/agent_recorders.py [--splits test]
        [--conditions gated,babble,echo] [--layouts stereo,mono] [--babble-db 15] [--json OUT]

The simulator puts line noise on every leg, so no simulated agent's silence is ever empty. A
call centre's recorder sits before the phone line: a softphone's noise gate or the PBX's
silence suppression leaves the agent's pauses empty, and an open-plan floor puts other agents'
voices behind the agent's own. Conditions (each on the call as stored, seeded by the call):

- ``gated`` (stereo calls): the agent's leg is kept only where the leg's own speech detector
  (``pipeline.vad.voiced_intervals``) hears speech, plus ``HANGOVER_S`` either side with 10-ms
  fades, and zero elsewhere, then through G.711 mu-law, whose smallest code decodes to an exact
  zero. A mono call sums the callee's line into the same channel, so its pauses are never empty.
- ``echo`` (stereo calls): the callee's leg ``ECHO_DELAY_S`` late and ``ECHO_DB`` down, added to
  the agent's leg: the line or headset echo a weak canceller leaves, so the recorder hears the
  customer faintly on the agent's side too.
- ``babble`` (both layouts): ``TALKERS`` other people of the call's language and split (people
  clips of ``shared.jsonl`` whose speaker is not in the call), each looped and offset, summed,
  band-limited to 300-3400 Hz and added ``--babble-db`` under the agent leg's speech level (the
  whole mix's in mono).

No call is a robot, so every call called robot is a person lost. Prints one line per call and a
table per (condition, layout, language): calls, called robot, digital silence of 1 s or more (shown
in the verdict, not scored, since this bench found what it did to muted agents), the
median robot probability and the median change of the robot log-odds against the plain call.
Nothing is fitted or chosen here. Needs the generated calls (``make corpus``).
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import logging
import math
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from scipy import signal

from models.training.corpus import MANIFEST_DIR, CorpusRow, read_clip, read_manifest, resolve_path
from pipeline.config import load_config
from pipeline.detector import Detector
from pipeline.errors import RobocallError
from pipeline.telephone import codec_round_trip
from pipeline.types import ANALYSIS_RATE_HZ as SR
from pipeline.types import Label
from pipeline.vad import voiced_intervals
from service.detector import load_detector

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hold_music_agents import CALLS, read_call  # noqa: E402 (a sibling bench script)

CONDITIONS = ("gated", "babble", "echo")
ECHO_DELAY_S = 0.04  # a line echo path (hybrid plus network), tens of milliseconds
ECHO_DB = 20.0  # echo return loss a poor canceller leaves
HANGOVER_S = 0.2  # a gate holds open this long around speech (softphone gates: 0.1-0.3 s)
FADE_S = 0.01
TALKERS = 4


def seed_of(row: CorpusRow, what: str) -> int:
    return zlib.crc32(f"{row.id}|{what}".encode())


def mu_law(x: np.ndarray) -> np.ndarray:
    """G.711 mu-law round trip (``pipeline.telephone.codec_round_trip``); a sample under about
    -76 dBFS decodes to an exact 0. G.711 codes each sample alone, so the 16-kHz leg goes
    through it as it is."""
    return np.asarray(codec_round_trip(x, codec="mulaw"), np.float32)


def gate(leg: np.ndarray) -> np.ndarray:
    """``leg`` kept where its speech detector hears speech (plus the hangover), zero elsewhere."""
    keep = np.zeros(leg.size, np.float32)
    for a, b in voiced_intervals(leg):
        lo, hi = max(0, int((a - HANGOVER_S) * SR)), min(leg.size, int((b + HANGOVER_S) * SR))
        keep[lo:hi] = 1.0
    fade = np.hanning(2 * int(FADE_S * SR) + 1)
    keep = np.minimum(signal.convolve(keep, fade / fade.sum(), mode="same"), 1.0)
    return mu_law(leg * keep.astype(np.float32))


def speech_level(leg: np.ndarray) -> float:
    """RMS of the leg's voiced intervals."""
    parts = [leg[int(a * SR) : int(b * SR)] for a, b in voiced_intervals(leg)]
    voiced = np.concatenate(parts) if parts else leg
    return float(np.sqrt(np.mean(voiced.astype(np.float64) ** 2)))


def babble_pool(split: str, language: str) -> list[CorpusRow]:
    return [
        r
        for r in read_manifest(MANIFEST_DIR / "shared.jsonl")
        if r.label == "human" and r.split == split and r.language == language
    ]


def babble(row: CorpusRow, pool: list[CorpusRow], n: int) -> np.ndarray:
    """``TALKERS`` people not in the call, looped from random offsets, band-limited, unit RMS."""
    extra = dict(row.extra)
    in_call = {row.speaker, extra.get("callee_speaker", "")}
    others = [r for r in pool if r.speaker not in in_call]
    rng = np.random.default_rng(seed_of(row, "babble"))
    speakers = sorted({r.speaker for r in others})
    chosen = rng.choice(len(speakers), size=min(TALKERS, len(speakers)), replace=False)
    out = np.zeros(n)
    for i in chosen:
        clips = [r for r in others if r.speaker == speakers[i]]
        clip = read_clip(resolve_path(clips[int(rng.integers(len(clips)))]))
        looped = np.tile(clip, -(-n // clip.size) + 1)
        start = int(rng.integers(clip.size))
        talker = looped[start : start + n]
        out += talker / max(float(np.sqrt(np.mean(talker**2))), 1e-9)
    sos = signal.butter(4, (300, 3400), btype="bandpass", fs=SR, output="sos")
    out = signal.sosfilt(sos, out)
    return np.asarray(out / max(float(np.sqrt(np.mean(out**2))), 1e-9), np.float32)


def condition(row: CorpusRow, name: str, pools: dict[tuple[str, str], list[CorpusRow]],
              babble_db: float) -> np.ndarray | None:  # fmt: skip
    """The call under condition ``name`` (None: the condition does not apply to its layout)."""
    x, caller = read_call(row)
    x = x.copy()
    if name == "gated":
        if x.shape[1] != 2:
            return None
        x[:, caller] = gate(x[:, caller])
    elif name == "echo":
        if x.shape[1] != 2:
            return None
        delay = int(ECHO_DELAY_S * SR)
        echo = np.zeros(x.shape[0], np.float32)
        echo[delay:] = x[: x.shape[0] - delay, 1 - caller] * 10 ** (-ECHO_DB / 20)
        x[:, caller] = np.clip(x[:, caller] + echo, -1.0, 1.0)
    elif name == "babble":
        noise = babble(row, pools[(row.split, row.language)], x.shape[0])
        level = speech_level(x[:, caller]) * 10 ** (-babble_db / 20)
        x[:, caller] = np.clip(x[:, caller] + noise * level, -1.0, 1.0)
    else:
        raise ValueError(f"unknown condition {name!r}")
    return x


def judge(detector: Detector, samples: np.ndarray, name: str) -> dict[str, Any]:
    """The verdict on ``samples``: robot or not, its probability, the digital-silence cue, the
    mains hum removed (``audio.hum_hz``, 0.0 for none)."""
    buf = io.BytesIO()
    sf.write(buf, samples, SR, format="WAV", subtype="PCM_16")
    try:
        verdict = detector.detect(buf.getvalue(), name=name)
    except RobocallError as exc:
        return {"refused": exc.code}
    digital = [e for e in verdict.evidence if e.name == "digital_silence_s"]
    return {
        "robot": verdict.label is Label.ROBOT,
        "p": round(verdict.robot_probability, 4),
        "digital_s": round(digital[0].value, 2) if digital else None,
        "hum_hz": verdict.audio.hum_hz,
    }


def logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--splits", default="test", help="comma-separated splits of the calls")
    parser.add_argument("--conditions", default=",".join(CONDITIONS))
    parser.add_argument("--layouts", default="stereo,mono", help="comma-separated layouts")
    parser.add_argument("--babble-db", type=float, default=15.0)
    parser.add_argument("--json", type=Path, help="write every call's results here")
    args = parser.parse_args(argv)
    splits, conditions = args.splits.split(","), args.conditions.split(",")
    if not set(conditions) <= set(CONDITIONS):
        parser.error(f"conditions are {CONDITIONS}")
    logging.basicConfig(level=logging.WARNING)
    detector = load_detector(load_config())
    rows = [
        r
        for r in read_manifest(CALLS)
        if r.split in splits
        and dict(r.extra).get("caller_kind") == "human_agent"
        and dict(r.extra).get("layout") in args.layouts.split(",")
    ]
    pools = {(s, lang): babble_pool(s, lang) for s in splits for lang in ("en", "zh")}
    results: dict[str, dict[str, Any]] = {}
    for row in rows:
        plain, _ = read_call(row)
        out = {"plain": judge(detector, plain, row.id)}
        for name in conditions:
            samples = condition(row, name, pools, args.babble_db)
            if samples is not None:
                out[name] = judge(detector, samples, f"{row.id}-{name}")
        results[row.id] = out
        print(row.id, json.dumps(out), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print_table(rows, results)
    return 0


def print_table(rows: list[CorpusRow], results: dict[str, dict[str, Any]]) -> None:
    cells: dict[tuple[str, str, str, str], list[dict[str, Any]]] = collections.defaultdict(list)
    for row in rows:
        layout = dict(row.extra)["layout"]
        plain = results[row.id]["plain"]
        for name, result in results[row.id].items():
            if "refused" in result or "refused" in plain:
                continue
            shift = logit(result["p"]) - logit(plain["p"])
            cells[(name, row.split, layout, row.language)].append({**result, "shift": shift})
    print("| condition | split | layout | language | calls | called robot | digital silence "
          ">= 1 s | median robot p | median log-odds change |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for (name, split, layout, lang), cell in sorted(cells.items()):
        fired = sum(1 for r in cell if (r["digital_s"] or 0.0) >= 1.0)
        print(
            f"| {name} | {split} | {layout} | {lang} | {len(cell)} | "
            f"{sum(r['robot'] for r in cell)} | {fired} | "
            f"{np.median([r['p'] for r in cell]):.3f} | "
            f"{np.median([r['shift'] for r in cell]):+.2f} |"
        )


if __name__ == "__main__":
    sys.exit(main())
