"""False hold-music finds: the hold check of the shipped detector (``Detector._without_hold``,
``pipeline/queue.py``) on the simulated calls and call mixtures, none of which holds music, so
every stretch it sets aside there is a robot's replay taken away.

    PYTHONPATH=. nice -n 5 .venv/bin/python bench/hold_music_calls.py [--set calls|mixed]
        [--splits train,dev,test] [--cache DIR]

Each call is checked whole and in its first 30 s (what the call figures analyse), on the channel
the detector takes for the caller (a mono mix as it is). Only a call with a replay needs the
ASR; transcripts are kept in ``--cache`` (``fusion_calls.CachedTranscriber``), so a rerun after
a change to the rule costs no ASR. Prints the calls found, then a table of counts per split,
crop and label. Needs the generated calls (``make corpus``).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import io
import logging
import sys
from pathlib import Path

import soundfile as sf

from models.training.corpus import MANIFEST_DIR, read_manifest, resolve_path
from models.training.fusion_calls import CachedTranscriber
from pipeline.acoustic import acoustic_cues
from pipeline.audio import load_audio
from pipeline.config import load_config
from service.detector import load_detector

MANIFESTS = {"calls": MANIFEST_DIR / "calls" / "calls.jsonl", "mixed": MANIFEST_DIR / "mixed.jsonl"}
CROPS = {"whole": None, "30s": 30}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", choices=sorted(MANIFESTS), default="calls")
    parser.add_argument("--splits", default="train,dev,test")
    parser.add_argument("--cache", type=Path, default=Path("out/hold_music_calls"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    detector = load_detector(load_config())
    detector = dataclasses.replace(
        detector, transcriber=CachedTranscriber(detector.transcriber, cache_dir=args.cache)
    )
    splits = args.splits.split(",")
    counts: collections.Counter[tuple[str, str, str, str]] = collections.Counter()
    for row in read_manifest(MANIFESTS[args.set]):
        if row.split not in splits:
            continue
        samples, sr = sf.read(resolve_path(row), dtype="float32", always_2d=True)
        for crop, seconds in CROPS.items():
            buf = io.BytesIO()
            sf.write(buf, samples if seconds is None else samples[: seconds * sr], sr,
                     format="WAV", subtype="PCM_16")  # fmt: skip
            audio = load_audio(buf.getvalue(), limits=detector.config.audio, name=row.id)
            cues = acoustic_cues(audio)
            key = (row.split, crop, row.label)
            counts[(*key, "calls")] += 1
            if not cues.repeats:
                continue
            counts[(*key, "with a replay")] += 1
            transcript = detector.transcriber.transcribe(audio.caller())
            *_, set_aside = detector._without_hold(audio, transcript, None, cues)
            if set_aside:
                counts[(*key, "found")] += 1
                print(f"{row.id} ({crop}): set aside {set_aside}", flush=True)
    print("| split | crop | label | calls | with a replay | set aside |")
    print("|---|---|---|---|---|---|")
    for split, crop, label in sorted({k[:3] for k in counts}):
        cell = [counts[(split, crop, label, c)] for c in ("calls", "with a replay", "found")]
        print(f"| {split} | {crop} | {label} | " + " | ".join(map(str, cell)) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
