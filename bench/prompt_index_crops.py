"""How often the carrier's prompt index matches a simulated call on the verdict's 30-s crop.

Each chosen call of a split (``fusion_calls.select_calls``, every call of the split by default)
is cropped as the fusion's call evidence crops it (``fusion_calls.crop_flac``), decoded as
``robocall analyze`` decodes it, and looked up, as ``heard_before.leave_one_out`` does, in an
index of the other calls of its split, language and layout. Prints, per split, caller kind and
layout, the calls matched and the share with a 95 % bootstrap interval over caller voices (a
robot campaign's voice). Transcripts are left empty: the audio rule alone is measured.

``--rule same-prompt`` measures the index with the single-prompt rule alone
(``pipeline.fingerprint.is_same_prompt``, the rule before the call rule was added);
``--true-channel`` fingerprints the caller's channel of each stereo call as the simulator
recorded it instead of the one ``pipeline.audio`` picks (what ``channel_layout`` gives a batch).
Agent calls that open with a call centre's recorded notice: ``bench/notice_index.py``.

    python bench/prompt_index_crops.py [--split dev] [--rule same-prompt] [--true-channel]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

import numpy as np

import service.campaigns.index as index_module
from models.training import metrics as M
from models.training.fusion_calls import crop_flac, layout, robot_kind, select_calls
from models.training.leakage import simulated_calls
from pipeline.audio import load_audio
from pipeline.config import DetectorConfig
from pipeline.fingerprint import is_same_prompt, landmarks
from service.campaigns.index import CallPrint, PromptIndex


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", action="append", help="dev, test (default: both)")
    parser.add_argument("--rule", choices=("index", "same-prompt"), default="index")
    parser.add_argument("--true-channel", action="store_true")
    args = parser.parse_args()
    if args.rule == "same-prompt":
        index_module.is_replayed = is_same_prompt  # the rule of the index before issue 13
    config = DetectorConfig()
    out: dict[str, dict[str, object]] = {}
    for split in args.split or ("dev", "test"):
        groups: dict[tuple[str, str], list[tuple[CallPrint, str, str]]] = defaultdict(list)
        for row in select_calls(simulated_calls(), split=split, per_cell=None):
            forced = int(dict(row.extra)["caller_channel"]) if args.true_channel else None
            audio = load_audio(
                crop_flac(row), limits=config.audio, name=row.id, caller_channel=forced
            )
            marks = landmarks(audio.caller(), sample_rate_hz=audio.sample_rate_hz)
            cell = f"{robot_kind(row)} | {layout(row)}"
            groups[(row.language, layout(row))].append(
                (CallPrint(audio.info.sha256, marks), cell, row.speaker)
            )
        flags: dict[str, list[tuple[bool, str]]] = defaultdict(list)
        for members in groups.values():
            for i, (call, cell, voice) in enumerate(members):
                with PromptIndex() as index:
                    for j, (other, _, _) in enumerate(members):
                        if j != i:
                            index.add(other, commit=False)
                    flags[cell].append((index.match(call) is not None, voice))
        for cell, got in sorted(flags.items()):
            hit = np.array([h for h, _ in got])
            low, high = M.rate_ci(hit, [v for _, v in got])
            out[f"{split} | {cell}"] = {
                "matched": int(hit.sum()), "calls": int(hit.size),
                "share": round(float(hit.mean()), 3), "ci": [round(low, 3), round(high, 3)],
                "voices": len({v for _, v in got}),
            }  # fmt: skip
    print(json.dumps(out, indent=1))  # noqa: T201 - a measurement script's result


if __name__ == "__main__":
    main()
