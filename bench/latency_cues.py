"""How well the two-party latency cues of a stereo call follow the simulator's turns (issue 13).

Every stereo call of the simulated calls v3 of a split (``fusion_calls.select_calls``, all) is
cropped and decoded as the fusion's call evidence does it (``fusion_calls.crop_flac``, the
simulator's caller channel), and its callee channel transcribed by the detector's Whisper (the
fusion's ASR cache, ``fusion_calls.CachedTranscriber``: a cached call costs no ASR). The latency
cues (``pipeline.acoustic.latency_cues``: median reply latency, talk-over fraction, latency
spread) are measured per variant of the turn gates and compared with the same cues computed
from the simulator's truth turns (``extra["segments"]``, each party's turns inside the crop,
merged as the VAD merges them).

A callee line is "noisy" when its noise floor (10th-percentile 20-ms frame level) lies within
``pipeline.vad.REL_FLOOR_DB`` (30 dB) of its speech (95th percentile): there the level gate
alone passes the noise. Per variant, split and line: the calls whose true cues exist, the share
with the cue present, the median absolute error of the median latency and of the talk-over
fraction (calls with both), and the AUC of the median latency (higher = robot) and of the
latency spread (lower = robot) between robot callers (TTS and recorded) and live agents, with a
95 % bootstrap interval over caller voices.

Variants: the noise-floor margin of each channel's turns (``voiced_intervals(above_noise_db=)``;
"today" is the level gate alone on both, as before issue 13), and the callee filter (a callee
turn must overlap a recognised word, as before issue 13; a Whisper segment; or nothing). The
row "shipped" runs ``pipeline.acoustic.latency_cues`` itself. Rules declared before reading
dev: the margin is the smallest one (with the word filter) whose noisy-line presence is
within 0.05 of the best margin's and whose noisy-line median latency error is within 0.05 s
of the best; the filter is the one with the most cues present over all dev calls whose median
latency error is within 0.01 s of the best filter's. Test is reported, never tuned.

    python bench/latency_cues.py [--split test]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

import numpy as np

from models.training import metrics as M
from models.training.corpus import CorpusRow
from models.training.fusion_calls import (
    CROP_S,
    CachedTranscriber,
    crop_flac,
    layout,
    robot_kind,
    select_calls,
)
from models.training.leakage import simulated_calls
from models.training.synth_data import features_cache_dir
from pipeline.acoustic import (
    LATENCY_ABOVE_NOISE_DB,
    TALK_OVER_S,
    latency_cues,
    reply_latencies,
)
from pipeline.audio import load_audio
from pipeline.config import DetectorConfig
from pipeline.types import Transcript
from pipeline.vad import MERGE_GAP_S, NOISE_PERCENTILE, REL_FLOOR_DB, frame_rms_dbfs
from pipeline.vad import voiced_intervals as vad

MIN_TURNS = 3  # as pipeline.acoustic: fewer replies give no cue
# (name, caller margin dB, callee margin dB, callee filter: a turn must overlap a recognised
# word, a transcript segment, or nothing); margin None: the level gate only
VARIANTS = (
    ("today", None, None, "words"),
    ("callee 10", None, 10.0, "words"),
    *((f"both {m:g}", m, m, "words") for m in (4.5, 6.0, 8.0, 10.0, 12.0, 15.0)),
    *((f"both {m:g}, segments", m, m, "segments") for m in (6.0, 8.0, 10.0, 12.0)),
    *((f"both {m:g}, no filter", m, m, "none") for m in (6.0, 8.0, 10.0, 12.0)),
    ("truth caller, callee 10", "truth", 10.0, "words"),
    ("shipped (latency_cues)", "pipeline", LATENCY_ABOVE_NOISE_DB, "none"),
)


@dataclass(frozen=True)
class Call:
    row: CorpusRow
    caller: np.ndarray
    callee: np.ndarray
    transcript: Transcript
    gap_db: float  # callee line: speech (p95) minus noise floor (p10) frame level


def truth_turns(row: CorpusRow, role: str) -> list[tuple[float, float]]:
    """One party's turns inside the crop, merged across gaps under ``MERGE_GAP_S``."""
    segments = json.loads(dict(row.extra)["segments"])
    spans = sorted(
        (s["start_s"], min(s["end_s"], CROP_S))
        for s in segments
        if s["role"] == role and s["start_s"] < CROP_S
    )
    merged: list[tuple[float, float]] = []
    for a, b in spans:
        if merged and a - merged[-1][1] < MERGE_GAP_S:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def overlapping(
    turns: list[tuple[float, float]], spans: list[tuple[float, float]]
) -> list[tuple[float, float]]:
    """The turns that overlap a span (the callee filter ``pipeline.acoustic`` applied with the
    words of the callee's transcript before issue 13); all of them when there is no span."""
    if not spans:
        return turns
    return [(a, b) for a, b in turns if any(s0 < b and s1 > a for s0, s1 in spans)]


def cues(latencies: list[float]) -> dict[str, float] | None:
    """The values of the three latency cues, as ``pipeline.acoustic.latency_cues`` gives them."""
    if len(latencies) < MIN_TURNS:
        return None
    lat = np.array(latencies)
    over = lat < -TALK_OVER_S
    out = {"median": float(np.median(lat)), "over": float(over.mean())}
    if (~over).sum() >= MIN_TURNS:
        out["std"] = float(np.std(lat[~over]))
    return out


def shipped(call: Call) -> dict[str, float] | None:
    """The cue values ``pipeline.acoustic.latency_cues`` gives (the detector's own code path)."""
    names = {
        "response_latency_median_s": "median",
        "talk_over_fraction": "over",
        "response_latency_std_s": "std",
    }
    got = {names[e.name]: e.value for e in latency_cues(call.caller, call.callee)}
    return got or None


def load(split: str) -> list[Call]:
    from models.loading import load_transcriber

    cfg = DetectorConfig()
    asr = CachedTranscriber(load_transcriber(cfg.asr), cache_dir=features_cache_dir() / "call_asr")
    calls = []
    for row in select_calls(simulated_calls(), split=split, per_cell=None):
        if layout(row) != "stereo":
            continue
        true = int(dict(row.extra)["caller_channel"])
        audio = load_audio(crop_flac(row), limits=cfg.audio, name=row.id, caller_channel=true)
        other = audio.other_party()
        if other is None:
            raise ValueError(f"{row.id}: a stereo call decoded with one channel")
        callee = np.asarray(other, dtype=np.float32)
        levels = frame_rms_dbfs(callee)
        gap = float(np.percentile(levels, 95) - np.percentile(levels, NOISE_PERCENTILE))
        caller = np.asarray(audio.caller(), dtype=np.float32)
        calls.append(Call(row, caller, callee, asr.transcribe(callee), gap))
    return calls


def auc(rows: list[tuple[float, bool, str]], sign: float) -> str:
    if len({r for _, r, _ in rows}) < 2:
        return "n/a"
    y = np.array([r for _, r, _ in rows], dtype=int)
    s = sign * np.array([v for v, _, _ in rows])
    ci = M.bootstrap_ci(y, s, groups=[g for _, _, g in rows])["auc"]
    return f"{M.roc_auc(y, s):.2f} [{ci[0]:.2f}-{ci[1]:.2f}] n={len(rows)}"


def report(calls: list[Call]) -> None:
    truth = {
        c.row.id: cues(reply_latencies(truth_turns(c.row, "caller"), truth_turns(c.row, "callee")))
        for c in calls
    }
    header = ("variant", "line", "calls", "present", "|median err| s", "|talk-over err|")
    print(" | ".join(header) + " | AUC median latency | AUC spread (low = robot)")
    for name, caller_db, callee_db, keep_if in VARIANTS:
        got = {}
        for c in calls:
            if caller_db == "pipeline":
                got[c.row.id] = shipped(c)
                continue
            segments = c.transcript.segments
            spans = {
                "words": [(w.start_s, w.end_s) for s in segments for w in (s.words or ())]
                or [(s.start_s, s.end_s) for s in segments],
                "segments": [(s.start_s, s.end_s) for s in segments],
                "none": [],
            }[keep_if]
            turns = overlapping(vad(c.callee, above_noise_db=callee_db), spans)
            if isinstance(caller_db, str):  # "truth"
                mine = truth_turns(c.row, "caller")
            else:
                mine = vad(c.caller, above_noise_db=caller_db)
            got[c.row.id] = cues(reply_latencies(mine, turns))
        for line, keep in (
            ("noisy", lambda c: c.gap_db < REL_FLOOR_DB),
            ("clean", lambda c: c.gap_db >= REL_FLOOR_DB),
            ("all", lambda c: True),
        ):
            part = [c for c in calls if keep(c) and truth[c.row.id] is not None]
            both = [
                (g, t)
                for c in part
                if (g := got[c.row.id]) is not None and (t := truth[c.row.id]) is not None
            ]
            med = [abs(g["median"] - t["median"]) for g, t in both]
            over = [abs(g["over"] - t["over"]) for g, t in both]
            robot = [
                (got[c.row.id], robot_kind(c.row) != "human_agent", c.row.speaker)
                for c in calls
                if keep(c) and got[c.row.id] is not None
            ]
            cells = (
                name,
                line,
                str(len(part)),
                f"{len(both) / len(part):.2f}" if part else "n/a",
                f"{np.median(med):.3f}" if med else "n/a",
                f"{np.median(over):.3f}" if over else "n/a",
                auc([(g["median"], r, v) for g, r, v in robot if g], 1.0),
                auc([(g["std"], r, v) for g, r, v in robot if g and "std" in g], -1.0),
            )
            print(" | ".join(cells))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=("dev", "test"), default="dev")
    args = parser.parse_args(argv)
    calls = load(args.split)
    gaps = np.array([c.gap_db for c in calls])
    print(
        f"{args.split}: {len(calls)} stereo calls, callee gap speech-noise "
        f"{np.percentile(gaps, 10):.1f}/{np.median(gaps):.1f}/{np.percentile(gaps, 90):.1f} dB "
        f"(p10/median/p90), {int((gaps < REL_FLOOR_DB).sum())} noisy (< {REL_FLOOR_DB:g} dB)"
    )
    report(calls)


if __name__ == "__main__":
    main()
