"""What an earlier Whisper layer would cost the synthetic-voice head on a 60 s call (issue 12,
``docs/unseen_sources.md``, "Which Whisper encoder layer").

    .venv/bin/python bench/whisper_layer_cost.py [--repeat 3] [--threads 1] [--asr]

Today the head's Whisper block is the last layer of the CTranslate2 int8 encoder pass over the
call's speech (30 s windows padded to 3000 mel frames), a pass of the head's own over the
``call_channel`` copy (the ASR encodes the decoded audio: ``models/weights/SYNTH_HEAD.md``, step
3). A head on layer k would run instead the conv stem and the first k blocks of the same weights
(converted to openai-whisper, float32 torch: CTranslate2's ``Whisper.encode`` has no way to stop
early). On the same speech of ``bench_pipeline.py``'s 60 s clip (after ``call_channel`` and the
Silero VAD, as the head's call path), this times side by side, in one process and alternated
in each round: the full int8 pass, and the float32 pass to depth k = 1..6. With ``--asr`` also
the bare faster-whisper transcription of the clip (the cost target's denominator: the voice
stage adds at most 25 % of it). Best of ``--repeat`` rounds, wall and process CPU seconds,
each as a ratio of the int8 pass. Both runtimes get ``--threads`` threads.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]  # this checkout's code, then bench_pipeline


def clock(work: Callable[[], Any]) -> tuple[float, float]:
    """(wall s, process CPU s) of one call of ``work``."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def shallow_pass(layers: Any, mels: list[Any], depth: int) -> list[Any]:
    """The stem and the first ``depth`` blocks over each 30 s window."""
    return [layers.layer_frames(m, depth=depth) for m in mels]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="rounds; each case's best counts")
    parser.add_argument("--threads", type=int, default=1, help="threads of both runtimes")
    parser.add_argument("--asr", action="store_true", help="also the bare ASR of the clip")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()

    import torch
    from bench_pipeline import build_clip

    from models.asr import encode_windows, vad_speech
    from models.loading import load_transcriber
    from models.training.layer_features import load_layer_encoder
    from pipeline.audio import load_audio
    from pipeline.config import AsrConfig, AudioLimits
    from pipeline.telephone import call_channel

    torch.set_num_threads(args.threads)
    asr = load_transcriber(AsrConfig(cpu_threads=args.threads))
    layers = load_layer_encoder()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip60.wav"
        build_clip(path)
        audio = load_audio(path, limits=AudioLimits())
    caller = audio.caller()
    speech, _ = vad_speech(call_channel(caller))
    mels = layers.padded_windows(speech)
    model = asr.model  # type: ignore[attr-defined]
    cases: dict[str, Callable[[], Any]] = {
        "ct2 int8, 6 layers": lambda: encode_windows(model, speech)
    }
    for k in range(1, 7):
        cases[f"torch fp32, stem + {k}"] = functools.partial(shallow_pass, layers, mels, k)
    if args.asr:
        cases["bare ASR (faster-whisper int8)"] = lambda: asr.transcribe(caller)
    for work in cases.values():  # warm up
        work()
    best = {name: (math.inf, math.inf) for name in cases}
    for _ in range(args.repeat):
        for name, work in cases.items():
            wall, cpu = clock(work)
            best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
    ref_wall, ref_cpu = best["ct2 int8, 6 layers"]
    print(f"60 s clip: {speech.size / 16_000:.1f} s of speech, {len(mels)} encoder windows "
          f"of 30 s; {args.threads} thread(s), best of {args.repeat}")  # fmt: skip
    print(f"{'case':34s} {'wall s':>8s} {'cpu s':>8s} {'wall x':>7s} {'cpu x':>7s}")
    for name, (wall, cpu) in best.items():
        print(f"{name:34s} {wall:8.3f} {cpu:8.3f} {wall / ref_wall:7.2f} {cpu / ref_cpu:7.2f}")
    if args.json:
        figures = {"speech_s": speech.size / 16_000, "windows": len(mels),
                   "threads": args.threads, "best": best}  # fmt: skip
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
