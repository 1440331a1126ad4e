"""How often ``pipeline.audio`` picks the caller's channel of a simulated stereo call.

Every stereo call of the simulated calls v3 (``fusion_calls.select_calls``, all of a split) is
cropped as the fusion's call evidence crops it (``fusion_calls.crop_flac``), decoded as
``robocall analyze`` decodes it, and its channel chosen by
``pipeline.audio.choose_caller_channel`` for each noise margin
(``pipeline.audio.CHANNEL_ABOVE_NOISE_DB``; "none": the level gate alone). Prints, per margin
and split, the calls whose chosen channel is the simulator's caller channel, with a 95 %
bootstrap interval over caller voices, and the count per caller kind. The margin is chosen on
dev (most calls right; a tie goes to the middle of the tied range); test is reported.

    python bench/caller_channel.py
"""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np

import pipeline.audio as audio_module
from models.training import metrics as M
from models.training.fusion_calls import crop_flac, layout, robot_kind, select_calls
from models.training.leakage import simulated_calls
from pipeline.audio import choose_caller_channel, load_audio
from pipeline.config import DetectorConfig

MARGINS_DB = (None, 3.0, 4.5, 6.0, 8.0, 10.0, 12.0, 15.0)


def main() -> None:
    limits = DetectorConfig().audio
    calls = []
    for split in ("dev", "test"):
        for row in select_calls(simulated_calls(), split=split, per_cell=None):
            if layout(row) != "stereo":
                continue
            true = int(dict(row.extra)["caller_channel"])
            decoded = load_audio(crop_flac(row), limits=limits, name=row.id, caller_channel=true)
            calls.append((split, robot_kind(row), true, decoded.samples, row.speaker))
    out: dict[str, dict[str, object]] = {}
    for margin in MARGINS_DB:
        audio_module.CHANNEL_ABOVE_NOISE_DB = margin
        got: dict[str, list[tuple[bool, str, str]]] = defaultdict(list)
        for split, kind, true, samples, voice in calls:
            got[split].append((choose_caller_channel(samples)[0] == true, kind, voice))
        for split, rows in got.items():
            hit = np.array([h for h, _, _ in rows])
            low, high = M.rate_ci(hit, [v for _, _, v in rows])
            kinds = sorted({k for _, k, _ in rows})
            out[f"{'none' if margin is None else margin} | {split}"] = {
                "right": int(hit.sum()), "calls": int(hit.size),
                "share": round(float(hit.mean()), 3), "ci": [round(low, 3), round(high, 3)],
                "by_kind": {k: f"{sum(h for h, kk, _ in rows if kk == k)}/"
                               f"{sum(1 for _, kk, _ in rows if kk == k)}" for k in kinds},
            }  # fmt: skip
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
