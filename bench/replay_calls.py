"""How often ``replayed_speech_s`` finds a replay in the simulated calls, per scoring and
threshold (issue 13).

For every simulated call of a split (``fusion_calls.select_calls``, all of them; a dev call tied
to the test split is left out as the fusion leaves it out), the caller's audio is read as the
detector reads it: on stereo the caller's channel (the manifest's, not the detector's choice),
on mono the whole two-party mix; both cut to the first ``--crop`` seconds (0: the whole call).
``pipeline.acoustic``'s replay search then runs at each ``--thresholds`` value on the raw log-mel
and on the levels above each band's noise floor plus each ``--margins`` value
(``above_floor_db``). Printed per layout and caller kind: the calls with a replay found, apart
for calls whose simulator replays one of its prompts inside the crop and calls where it does
not (an agent never repeats audio). Choices are made on the train and dev calls, read on test.

    PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python bench/replay_calls.py \
        [--split dev] [--crop 30] [--margins 6] [--thresholds 0.80,0.85,0.88,0.92] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from models.training.corpus import CorpusRow, resolve_path
from models.training.fusion_calls import robot_kind, select_calls
from models.training.leakage import simulated_calls
from pipeline import acoustic as A
from pipeline.vad import voiced_intervals

RATE = 16_000


def caller_audio(row: CorpusRow, crop_s: float) -> np.ndarray:
    """The caller's channel of a stereo call, or the mono mix, cut to ``crop_s`` (0: whole)."""
    x, sr = sf.read(resolve_path(row), dtype="float32", always_2d=True)
    assert sr == RATE, f"{row.id}: {sr} Hz"
    extra = dict(row.extra)
    channel = int(extra["caller_channel"]) if extra["layout"] == "stereo" else 0
    samples = np.asarray(x[:, channel], dtype=np.float32)
    return samples[: int(crop_s * RATE)] if crop_s > 0 else samples


def replays_a_prompt(row: CorpusRow, crop_s: float) -> bool:
    """The simulator plays one of the caller's prompts twice, both starts inside the crop."""
    end = crop_s if crop_s > 0 else float("inf")
    segments = json.loads(dict(row.extra)["segments"])
    played = Counter(
        s["prompt_id"]
        for s in segments
        if s["role"] == "caller" and s["prompt_id"] and s["start_s"] < end
    )
    return any(n >= 2 for n in played.values())


def call_scores(
    row: CorpusRow, crop_s: float, scorings: dict[str, float | None], thresholds: list[float]
) -> dict[str, Any]:
    """Seconds replayed, per scoring and threshold, in one call."""
    samples = caller_audio(row, crop_s)
    intervals = voiced_intervals(samples)
    mel = A.log_mel_db(samples)
    found: dict[str, float] = {}
    for name, margin in scorings.items():
        for t in thresholds:
            reps = A.replay_search(mel, intervals, min_corr=t, floor_margin_db=margin)
            found[f"{name}@{t:g}"] = round(sum(r.again_s[1] - r.again_s[0] for r in reps), 2)
    extra = dict(row.extra)
    return {
        "id": row.id,
        "layout": extra["layout"],
        "kind": robot_kind(row),
        "language": row.language,
        "replays_a_prompt": replays_a_prompt(row, crop_s),
        "replayed_s": found,
    }


def summary(calls: list[dict[str, Any]]) -> str:
    keys = list(calls[0]["replayed_s"]) if calls else []
    lines = [
        "calls with a replay found / calls, by whether the simulator replays a prompt in the crop",
        "",
        "| layout | caller | replays a prompt | n | " + " | ".join(keys) + " |",
        "|---|---|---|---|" + "---|" * len(keys),
    ]
    cells: dict[tuple[str, str, bool], list[dict[str, Any]]] = defaultdict(list)
    for c in calls:
        cells[(c["layout"], c["kind"], c["replays_a_prompt"])].append(c)
    for (layout, kind, replays), got in sorted(cells.items()):
        counts = " | ".join(str(sum(c["replayed_s"][k] > 0 for c in got)) for k in keys)
        lines.append(
            f"| {layout} | {kind} | {'yes' if replays else 'no'} | {len(got)} | {counts} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", default="dev", choices=("train", "dev", "test"))
    parser.add_argument("--crop", type=float, default=30.0, help="seconds; 0 = the whole call")
    parser.add_argument("--margins", default="6", help="dB above the floor, comma-separated")
    parser.add_argument("--thresholds", default="0.80,0.85,0.88,0.92")
    parser.add_argument("--json", type=Path, help="write every call's figures here too")
    args = parser.parse_args()
    scorings: dict[str, float | None] = {"raw": None} | {
        f"floor{float(m):g}": float(m) for m in args.margins.split(",")
    }
    thresholds = [float(t) for t in args.thresholds.split(",")]
    rows = select_calls(simulated_calls(), split=args.split, per_cell=None)
    calls = [call_scores(r, args.crop, scorings, thresholds) for r in rows]
    if args.json:
        args.json.write_text(json.dumps({"split": args.split, "crop_s": args.crop, "calls": calls}))
    print(summary(calls))  # noqa: T201 - a measurement script's result


if __name__ == "__main__":
    main()
