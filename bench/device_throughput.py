"""Calls per hour of one batch worker on each device: CPU, and CUDA when there is a GPU.

    .venv/bin/python bench/device_throughput.py [--repeat 3] [--devices cpu,cuda]

One 60 s clip (``bench/bench_pipeline.py``'s: the bundled examples, Mandarin and English,
robot and human) goes through exactly what a batch worker does per call
(``service.batch.analyse.analyse_call``: decode, ASR, cues, text head, voice head, fusion,
landmark fingerprint) with the detector ``models.loading.load_detector`` builds for
``--device``; each device in its own process. After one warm-up call, ``--repeat`` calls are
timed; prints wall and CPU seconds per call, times real time, and calls per hour for one
worker. A device that is not there (``cuda`` without a GPU) is reported as skipped, not failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))


def measure(device: str, clip: Path, repeat: int) -> dict[str, object]:
    from models.loading import load_detector, resolve_device
    from pipeline.config import AsrConfig, DetectorConfig
    from service.batch.analyse import analyse_call
    from service.batch.inputs import CallRecord

    if device == "cuda" and resolve_device("auto", "faster") != "cuda":
        return {"device": device, "skipped": "no CUDA device visible to CTranslate2"}
    started = time.perf_counter()
    detector = load_detector(DetectorConfig(asr=AsrConfig(device=device)))
    load_s = time.perf_counter() - started
    record = CallRecord(call_id="clip", path=str(clip))
    analyse_call(detector, record)  # warm-up
    walls, cpus = [], []
    for _ in range(repeat):
        row = analyse_call(detector, record)
        if row["status"] != "ok":
            raise RuntimeError(f"{row['error_code']}: {row['error_message']}")
        walls.append(row["elapsed_s"])
        cpus.append(row["cpu_s"])
    wall = sum(walls) / len(walls)
    return {
        "device": device,
        "load_s": round(load_s, 1),
        "wall_s_per_call": round(wall, 2),
        "cpu_s_per_call": round(sum(cpus) / len(cpus), 2),
        "x_real_time": round(60.0 / wall, 1),
        "calls_per_hour": round(3600.0 / wall),
        "threads": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", default="cpu,cuda")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a child: this device
    parser.add_argument("--clip", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.clip, args.repeat)), flush=True)
        return
    from bench_pipeline import build_clip

    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip60.wav"
        build_clip(clip)
        print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        for device in args.devices.split(","):
            subprocess.run([sys.executable, __file__, "--one", device, "--clip", str(clip),
                            "--repeat", str(args.repeat)], check=True, cwd=REPO)  # fmt: skip


if __name__ == "__main__":
    main()
