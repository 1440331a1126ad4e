"""Whole-process time of ``robocall analyze`` on one call against bare faster-whisper (issue 17).

What a user waits for when they analyse one call from the shell: interpreter start, imports,
model loading, the first sentence embedding and the analysis itself, against a process that does
nothing but load the same Whisper base int8 weights with faster-whisper and transcribe the same
file with the same decoding options (greedy, temperature 0, Silero VAD, word timestamps,
automatic language detection). Both run as subprocesses on the same 51 s call (built from the
bundled examples, as ``bench/bench_pipeline.py`` builds its 60 s clip), alternating so that load
on the machine hits both alike; the median of ``--repeat`` runs counts. Beside the wall time it
reports each process's CPU time (user + system, all threads): on a shared machine the wall time
moves with the other jobs' load, the CPU time much less, so the two together say whether a change
did less work or only overlapped it.

    python bench/whole_process.py [--repeat 5] [--json out.json]

A measurement to read side by side, never a timed assertion in the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
CLIP_S = 51.0
PARTS = ("robot_zh.amr", "human_zh.mp3", "robot_en.mp3", "robot_zh.amr")

# Bare faster-whisper: the packaged Whisper base weights (models/manifest.toml), nothing of ours
# on the path of the call beyond finding those files.
BARE = """
import sys
from faster_whisper import WhisperModel, decode_audio
from models.loading import packaged_whisper_source, read_model_bin
src = packaged_whisper_source()
files = {"model.bin": read_model_bin(src), "config.json": src.config_json.read_bytes(),
         src.vocabulary.name: src.vocabulary.read_bytes(),
         "tokenizer.json": src.tokenizer_json.read_bytes()}
model = WhisperModel("memory://whisper-base", device="cpu", compute_type="int8", files=files)
segments, _ = model.transcribe(decode_audio(sys.argv[1]), beam_size=1, temperature=0.0,
                               vad_filter=True, word_timestamps=True,
                               condition_on_previous_text=False)
print(sum(1 for _ in segments), "segments")
"""


def build_clip(path: Path) -> None:
    from pipeline.audio import load_audio
    from pipeline.config import AudioLimits

    pieces = [load_audio(ROOT / "examples" / p, limits=AudioLimits()).caller() for p in PARTS]
    samples = np.concatenate(pieces)[: int(CLIP_S * 16_000)]
    sf.write(path, samples, 16_000, subtype="PCM_16")


def timed(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one subprocess."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    wall_s = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed ({done.returncode}): {done.stderr[-2000:]}")
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall_s, cpu_s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs of each (median counts)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    robocall = str(Path(sys.executable).with_name("robocall"))
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "call_51s.wav"
        build_clip(clip)
        cases = {
            "bare": [sys.executable, "-c", BARE, str(clip)],
            "analyze": [robocall, "analyze", "--json", str(clip)],
        }
        for command in cases.values():  # warm the page cache and the on-disk caches once
            timed(command)
        load_before = os.getloadavg()
        wall: dict[str, list[float]] = {name: [] for name in cases}
        cpu: dict[str, list[float]] = {name: [] for name in cases}
        for i in range(args.repeat):
            order = list(cases) if i % 2 == 0 else list(reversed(cases))
            for name in order:
                wall_s, cpu_s = timed(cases[name])
                wall[name].append(round(wall_s, 2))
                cpu[name].append(round(cpu_s, 2))
                print(f"run {i + 1} {name:8s} {wall_s:6.2f} s, CPU {cpu_s:6.2f} s", file=sys.stderr)
    load_after = os.getloadavg()
    median = {name: statistics.median(values) for name, values in wall.items()}
    median_cpu = {name: statistics.median(values) for name, values in cpu.items()}
    ratio = median["analyze"] / median["bare"]
    ratio_cpu = median_cpu["analyze"] / median_cpu["bare"]
    print(f"clip: {CLIP_S:.0f} s; {args.repeat} alternating runs each; median wall (CPU) time")
    print(f"(a) bare faster-whisper process : {median['bare']:.2f} s ({median_cpu['bare']:.2f})")
    print(f"(b) robocall analyze process    : {median['analyze']:.2f} s "
          f"({median_cpu['analyze']:.2f})")  # fmt: skip
    print(f"ratio b/a (whole process, start-up included): {ratio:.2f}  (target <= 1.5)")
    print(f"CPU time ratio b/a: {ratio_cpu:.2f}")
    print(f"runs (wall s): {wall}")
    print(f"load average (1 min) before the timed runs {load_before[0]:.2f}, after "
          f"{load_after[0]:.2f}")  # fmt: skip
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "clip_s": CLIP_S,
                    "wall_s": wall,
                    "cpu_s": cpu,
                    "median_wall_s": median,
                    "median_cpu_s": median_cpu,
                    "ratio": ratio,
                    "ratio_cpu": ratio_cpu,
                    "load_average_1min": [load_before[0], load_after[0]],
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
