"""Speed and memory of the pipeline against bare ASR, side by side in one run.

The same 60 s clip (built from the bundled examples: Mandarin robot, Mandarin human, English
robot) goes through

  (a) bare faster-whisper transcription of the decoded array (the same int8 model and decoding
      options as the pipeline: greedy, VAD, word timestamps, automatic language detection),
  (b) the full pipeline on the ``faster`` backend (decode, ASR, cues, text, fusion),
  (c) the full pipeline on the ``openai`` backend,
  (d) with ``--synth-head PATH``: (b) with that synthetic-voice head instead of the committed one
      (issue 12: a head with the AASIST block against the shipped one, in the same run),

each in its own process so that peak RSS is its own. For (b) and (d) the voice stage (the
synthetic-voice head's work, beside the ASR in the pipeline) is also timed alone, whole and part
by part (channel copy, Silero VAD, the head's encoder pass, the AASIST window, windows + head),
in CPU seconds of the process (the share of the bare ASR's CPU time is printed beside the wall
time's: on a loaded machine it moves less). Model loading is timed apart; each case runs
once on a 5 s clip to warm up, then ``--repeat`` times on the 60 s clip (the best run counts).
``--rounds N`` runs the whole set N times, alternating the cases, and keeps each case's best, so
that a change of load hits every case alike. ``--window-rules all,spread`` times the voice stage
of (b) and (d) under each rule of ``models.synth_head.choose_windows`` (which speech windows the
head encodes when they hold more than one encoder pass of speech), the rules alternated within
each repeat; without it, the head's shipped rule only.

    python bench/bench_pipeline.py [--repeat 2] [--rounds 1] [--no-openai] [--synth-head H.npz]
                                   [--window-rules R,...] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
CLIP_S = 60.0
PARTS = ("robot_zh.amr", "human_zh.mp3", "robot_en.mp3", "robot_zh.amr")


def build_clip(path: Path) -> None:
    from pipeline.audio import load_audio
    from pipeline.config import AudioLimits

    pieces = [load_audio(ROOT / "examples" / p, limits=AudioLimits()).caller() for p in PARTS]
    samples = np.concatenate(pieces)[: int(CLIP_S * 16_000)]
    sf.write(path, samples, 16_000, subtype="PCM_16")


def run_case(
    case: str,
    clip: Path,
    warm: Path,
    repeat: int,
    head: Path | None = None,
    rules: tuple[str, ...] = (),
) -> dict[str, Any]:
    t0, cpu0 = time.perf_counter(), time.process_time()
    if case == "bare":
        from models.asr import DECODE_TEMPERATURE
        from models.loading import load_transcriber
        from pipeline.audio import load_audio
        from pipeline.config import AsrConfig, AudioLimits

        model = load_transcriber(AsrConfig()).model  # the same CT2 int8 WhisperModel as (b)
        load_s, load_cpu_s = time.perf_counter() - t0, time.process_time() - cpu0

        def once(path: Path) -> None:
            samples = load_audio(path, limits=AudioLimits()).caller()
            segments, _ = model.transcribe(
                samples,
                beam_size=1,
                temperature=DECODE_TEMPERATURE,  # the pipeline's decoding options, so b/a
                vad_filter=True,  # measures what the pipeline adds around the ASR
                word_timestamps=True,
                condition_on_previous_text=False,
            )
            list(segments)

    else:
        import dataclasses

        from models.loading import load_detector, load_synth_head_from
        from pipeline.config import load_config

        cfg = load_config(asr__backend=case)
        detector = load_detector(cfg)
        if head is not None:
            scorer = load_synth_head_from(head, asr=cfg.asr)
            detector = dataclasses.replace(detector, synth_scorer=scorer)
        load_s, load_cpu_s = time.perf_counter() - t0, time.process_time() - cpu0

        def once(path: Path) -> None:
            detector.detect(path)

    once(warm)
    times, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        once(clip)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out: dict[str, Any] = {"load_s": load_s, "load_cpu_s": load_cpu_s, "run_s": min(times)}
    out |= {"run_cpu_s": min(cpu), "peak_rss_mb": peak_mb}
    if case != "bare" and detector.synth_scorer is not None:
        # The voice stage alone (channel, the head's encoder pass, AASIST if any, the head), as
        # it would cost run after the ASR; in the pipeline it runs beside it.
        from models.synth_head import SynthVoiceScorer
        from pipeline.audio import load_audio
        from pipeline.config import AudioLimits

        shipped = detector.synth_scorer
        if not isinstance(shipped, SynthVoiceScorer):
            raise TypeError(f"the voice stage is not a SynthVoiceScorer: {shipped!r}")
        scorers = {
            rule: SynthVoiceScorer(
                shipped.head,
                encoder=shipped.encoder,
                model_info=shipped.model_info,
                embedder=shipped.embedder,
                window_rule=rule,
            )
            for rule in rules or (shipped.window_rule,)
        }
        caller = load_audio(clip, limits=AudioLimits()).caller()
        voice: dict[str, list[tuple[float, float]]] = {rule: [] for rule in scorers}
        for _ in range(repeat):
            for rule, scorer in scorers.items():  # alternated, so load changes hit each alike
                start, start_cpu = time.perf_counter(), time.process_time()
                scorer.score(caller)
                voice[rule].append((time.perf_counter() - start, time.process_time() - start_cpu))
        out["rules"] = {
            rule: {
                "voice_s": min(t for t, _ in voice[rule]),
                "voice_cpu_s": min(c for _, c in voice[rule]),
                **voice_parts(scorer, caller, repeat),
            }
            for rule, scorer in scorers.items()
        }
        out["window_rule"] = shipped.window_rule
        out |= out["rules"].get(shipped.window_rule, next(iter(out["rules"].values())))
    return out


def voice_parts(scorer: Any, caller: np.ndarray, repeat: int) -> dict[str, float]:
    """CPU seconds (all threads of this process, best of ``repeat``) of each part of the voice
    stage on ``caller``, run one after the other as ``SynthVoiceScorer.score`` runs them."""
    from models.asr import encode_windows, speech_within, vad_speech
    from models.synth_head import WindowChoice, speech_windows
    from pipeline.telephone import call_channel

    parts: dict[str, float] = {}

    def clock(name: str, work: Callable[[], Any]) -> Any:
        best, out = math.inf, None
        for _ in range(repeat):
            start = time.process_time()
            out = work()
            best = min(best, time.process_time() - start)
        parts[f"cpu_{name}_s"] = best
        return out

    y = clock("channel", lambda: call_channel(caller))
    speech, chunks = clock("vad", lambda: vad_speech(y))
    every = speech_windows(y, max_window_s=scorer.head.spec.max_window_s)
    choice = WindowChoice(tuple(every), scorer.window_rule)
    spans = choice.spans(chunks)
    if spans is not None:  # the speech of the chosen windows only (``SynthVoiceScorer.score``)
        speech = speech_within(y, chunks, spans)[0]
    parts["encoded_speech_s"] = speech.size / 16_000
    clock("encoder", lambda: encode_windows(scorer.encoder.model, speech))
    if scorer.embedder is not None:
        clock("aasist", lambda: scorer.embedding(y, every))
    frames = scorer.encoder.speech_frames(y, choice=choice)
    embedding = scorer.embedding(y, every)
    clock("windows_head", lambda: scorer.score_channelled(y, frames, embedding, windows=every))
    clock("total", lambda: scorer.score(caller))
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--rounds", type=int, default=1, help="alternated rounds of every case")
    parser.add_argument("--no-openai", action="store_true", help="leave case (c) out")
    parser.add_argument("--synth-head", type=Path, help="case (d): (b) with this head")
    parser.add_argument(
        "--window-rules", default="", help="time the voice stage under these rules, e.g. all,spread"
    )
    parser.add_argument("--head", type=Path, help=argparse.SUPPRESS)  # internal: case (d)
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case in-process
    parser.add_argument("--clip", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--warm", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        rules = tuple(r for r in args.window_rules.split(",") if r)
        print(json.dumps(run_case(args.case, args.clip, args.warm, args.repeat, args.head, rules)))
        return

    labels = {
        "bare": "(a) bare faster-whisper",
        "faster": "(b) pipeline, faster",
        "openai": "(c) pipeline, openai",
        "head": "(d) (b), --synth-head",
    }
    cases = [c for c in labels if not (c == "openai" and args.no_openai)]
    cases = [c for c in cases if c != "head" or args.synth_head is not None]
    results: dict[str, dict[str, Any]] = {}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        clip, warm = Path(tmp) / "clip60.wav", Path(tmp) / "warm5.wav"
        build_clip(clip)
        samples, rate = sf.read(clip, dtype="float32")
        sf.write(warm, samples[: 5 * rate], rate, subtype="PCM_16")
        for _ in range(args.rounds):
            for case in cases:
                cmd = [sys.executable, __file__, "--clip", str(clip)]
                cmd += ["--case", "faster" if case == "head" else case]
                cmd += ["--warm", str(warm), "--repeat", str(args.repeat)]
                cmd += ["--head", str(args.synth_head)] if case == "head" else []
                cmd += ["--window-rules", args.window_rules]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True)
                got = json.loads(out.stdout.strip().splitlines()[-1])
                if case not in results or got["run_s"] < results[case]["run_s"]:
                    results[case] = got
    load_after = os.getloadavg()

    print(
        f"clip {CLIP_S:.0f} s; best of {args.repeat} runs after a warm-up, {args.rounds} round(s)"
    )
    print(f"load average before {load_before}, after {load_after}")
    print(
        f"{'case':28} {'load s':>7} {'(CPU s)':>7} {'run s':>7} {'x real time':>12} "
        f"{'peak RSS MB':>12}"
    )
    for case, r in results.items():
        r["rtf_x"] = CLIP_S / r["run_s"]
        print(
            f"{labels[case]:28} {r['load_s']:7.2f} {r['load_cpu_s']:7.2f} {r['run_s']:7.2f} "
            f"{r['rtf_x']:12.1f} {r['peak_rss_mb']:12.0f}"
        )
    ratios = {"b_over_a": results["faster"]["run_s"] / results["bare"]["run_s"]}
    print(f"ratio b/a (pipeline cost over bare ASR): {ratios['b_over_a']:.2f}  (target <= 1.25)")
    if "openai" in results:
        ratios["c_over_b"] = results["openai"]["run_s"] / results["faster"]["run_s"]
        print(f"ratio c/b (openai over faster backend):   {ratios['c_over_b']:.2f}")
    bare_s, bare_cpu_s = results["bare"]["run_s"], results["bare"]["run_cpu_s"]
    for case in ("faster", "head"):
        for rule, r in results.get(case, {}).get("rules", {}).items():
            tag = "" if rule == results[case]["window_rule"] else f"_{rule}"
            share, cpu_share = r["voice_s"] / bare_s, r["voice_cpu_s"] / bare_cpu_s
            ratios[f"voice_{case}{tag}_over_a"] = share
            # CPU seconds move much less with other jobs' load than wall seconds.
            ratios[f"voice_cpu_{case}{tag}_over_a"] = cpu_share
            print(f"voice stage alone, {labels[case]}, window rule {rule} "
                  f"({r['encoded_speech_s']:.1f} s of speech encoded): {r['voice_s']:.2f} s = "
                  f"{100 * share:.0f} % of bare ASR (target <= 25 %)")  # fmt: skip
            print(f"  in CPU time: {r['voice_cpu_s']:.2f} of bare ASR's {bare_cpu_s:.2f} s = "
                  f"{100 * cpu_share:.0f} %")  # fmt: skip
            cpu = {k[4:-2]: v for k, v in r.items() if k.startswith("cpu_")}
            print("  parts, CPU s (each best of the repeats): "
                  + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items()))  # fmt: skip
    if "head" in results:
        ratios["d_over_a"] = results["head"]["run_s"] / results["bare"]["run_s"]
        ratios["d_over_b"] = results["head"]["run_s"] / results["faster"]["run_s"]
        print(f"ratio d/a (pipeline, given head, over bare ASR): {ratios['d_over_a']:.2f}")
        print(f"ratio d/b (given head over the committed one):   {ratios['d_over_b']:.2f}")
    print("targets: (b) >= 10x real time, peak RSS <= 1500 MB")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "ratios": ratios}, indent=2))


if __name__ == "__main__":
    main()
