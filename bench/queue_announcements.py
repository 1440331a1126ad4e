"""Recorded queue announcements and hold music (``pipeline/queue.py``): a call-centre hold
message played twice with hold music, or the hold music alone, between the halves of a test
clip, through the whole shipped detector, with the rule and without it.

    PYTHONPATH=. nice -n 5 .venv/bin/python bench/queue_announcements.py [--people 16] [--robots 10]
        [--music FILE]

Each test clip (``signalling_tones.test_rows``: test-split people and robots of the shared data
and English TTS, at most 3 per source and language) is cut in two, and between the halves go: a
hold message, 10 s of a synthetic chord loop (hold music), the same message, 6 s of the loop (it
starts over, as a looping track does), at the clip's own level. The message is "Thank you for
holding. Your call is important to us. Please stay on the line, and the next available agent
will be with you shortly." read by flite's slt voice for English clips, and its Mandarin
counterpart read by ttskit's Mellotron for Mandarin clips (without ttskit, Mandarin clips get
the music alone: ``datasets/README.md``, "ttskit"). The music alone is the same loop, 10 s then
6 s, with no message. ``--music`` takes a recording of real music instead of the chord loop,
repeated end to end to fill each 10 s (a 7 s track comes round again 3 s into the first loop).
Each clip is judged plain, and with each hold inserted with the rule
(``Detector._without_hold``) and without it. Nothing is fitted here; prints a table.
"""

from __future__ import annotations

import argparse
import collections
import io
import logging
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import soundfile as sf
from scipy import signal

from models.training.corpus import read_clip, resolve_path
from pipeline.config import load_config
from pipeline.detector import Detector
from pipeline.errors import RobocallError
from pipeline.types import ANALYSIS_RATE_HZ as SR
from pipeline.types import Label
from service.detector import load_detector

sys.path.insert(0, str(Path(__file__).resolve().parent))
from signalling_tones import test_rows  # noqa: E402 (a sibling bench script)

MESSAGE = {
    "en": "Thank you for holding. Your call is important to us. Please stay on the line, and "
    "the next available agent will be with you shortly.",
    "zh": "感谢您的耐心等待，您的来电对我们非常重要，请不要挂机，我们将尽快为您接通人工服务",
}
CHORDS = (
    (261.6, 329.6, 392.0),
    (220.0, 261.6, 329.6),
    (174.6, 220.0, 261.6),
    (196.0, 246.9, 293.7),
)


def english_message(text: str = MESSAGE["en"]) -> np.ndarray:
    """``text`` read by flite's slt voice, at 16 kHz."""
    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        subprocess.run(["flite", "-voice", "slt", "-t", text, "-o", f.name], check=True)
        x, sr = sf.read(f.name, dtype="float32")
    return np.asarray(signal.resample_poly(x, SR, sr), dtype=np.float32)


def mandarin_message(text: str = MESSAGE["zh"], name: str = "queue") -> np.ndarray | None:
    """``text`` read by ttskit's Mellotron a clause at a time (``name`` seeds its voice), 0.1 s
    apart; None without ttskit."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "datasets"))
    try:
        from prepare_ttskit import Ttskit
    except ModuleNotFoundError:
        return None
    tts = Ttskit()
    parts = []
    for clause in text.split("，"):
        parts += [tts.speak(clause, name, seed=1), np.zeros(SR // 10)]
    return np.concatenate(parts).astype(np.float32)


def chord_loop(seconds: float) -> np.ndarray:
    """A looping chord pattern with harmonics and a bass note per beat (the same every time)."""
    beat, out = 0.5, np.zeros(int(seconds * SR))
    t = np.arange(int(2 * SR)) / SR
    env = np.exp(-t * 2.5) * (1 - np.exp(-t * 200))
    for i in range(int(seconds / beat)):
        chord = CHORDS[(i // 4) % 4]
        notes = chord if i % 4 == 0 else chord[i % 3 : i % 3 + 1]
        tone = _harmonics(notes, t) + 0.8 * np.sin(2 * np.pi * chord[0] / 2 * t)
        _strike(out, i * beat, env * tone)
    return out.astype(np.float32)


def chord_walk(seconds: float, seed: int = 0) -> np.ndarray:
    """Music that never repeats: each beat (0.3-0.7 s) a chord or one of its notes, drawn at
    random from seven roots over two octaves, with its own decay and phases (seeded), so no
    stretch of it plays twice, as in a long hold track that does not loop within the wait."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * SR))
    t = np.arange(int(2 * SR)) / SR
    at = 0.0
    while at < seconds - 1.0:
        root = float(rng.choice(CHORDS[0] + CHORDS[3] + (146.8,))) * float(rng.choice([0.5, 1.0]))
        chord = (root, root * 2 ** (int(rng.choice([3, 4])) / 12), root * 2 ** (7 / 12))
        notes = chord if rng.random() < 0.4 else (float(rng.choice(chord)),)
        env = np.exp(-t * rng.uniform(1.5, 4.0)) * (1 - np.exp(-t * 200))
        _strike(out, at, env * _harmonics(notes, t, rng.uniform(0, 2 * np.pi, (len(notes), 4))))
        at += float(rng.uniform(0.3, 0.7))
    return out.astype(np.float32)


def _harmonics(notes: Sequence[float], t: np.ndarray, phases: np.ndarray | None = None) -> Any:
    """Four harmonics of each note, each 0.6 times the one below."""
    ph = np.zeros((len(notes), 4)) if phases is None else phases
    return sum(
        0.6**k * np.sin(2 * np.pi * f * (k + 1) * t + ph[j, k])
        for j, f in enumerate(notes)
        for k in range(4)
    )


def _strike(out: np.ndarray, at_s: float, sound: np.ndarray) -> None:
    """Add ``sound`` into ``out`` from ``at_s``, cut at its end."""
    a = int(at_s * SR)
    b = min(a + sound.size, out.size)
    out[a:b] += sound[: b - a]


def music_loop(path: Path | None, seconds: float = 10.0) -> np.ndarray:
    """``seconds`` of the chord loop, or of the music in ``path`` repeated end to end."""
    if path is None:
        return chord_loop(seconds)
    track = read_clip(path)
    return np.tile(track, int(np.ceil(seconds * SR / track.size)))[: int(seconds * SR)]


def line_sound(clip: np.ndarray, seed: int, seconds: float = 0.5) -> np.ndarray:
    """``seconds`` of noise with the spectrum and level of ``clip``'s quietest 20-ms frames (a
    tenth of them: its own line or room sound), a new draw for each ``seed``, for the gaps
    around a hold. Digital zeros there fired the digital-silence cue, which a phone line never
    does; one stretch of the clip copied into every gap was itself replayed, and in a short clip
    it held speech."""
    frame, n = SR // 50, int(seconds * SR)
    if clip.size < frame:
        return np.zeros(n, np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(clip, frame)[:: frame // 2]
    quiet = frames[np.argsort(np.sqrt((frames**2).mean(axis=1)))[: max(1, len(frames) // 10)]]
    power = (np.abs(np.fft.rfft(quiet * np.hanning(frame), axis=1)) ** 2).mean(axis=0)
    bins = np.interp(np.linspace(0, 1, n // 2 + 1), np.linspace(0, 1, power.size), power)
    phase = np.exp(2j * np.pi * np.random.default_rng(seed).random(bins.size))
    noise = np.fft.irfft(np.sqrt(bins) * phase, n)
    rms = float(np.sqrt((noise**2).mean()))
    target = float(np.sqrt((quiet**2).mean()))
    return np.asarray(noise * (target / rms if rms > 0 else 0.0), dtype=np.float32)


def held(clip: np.ndarray, message: np.ndarray | None, music: np.ndarray) -> np.ndarray:
    """``clip`` with the hold in its middle: the message, 10 s of ``music``, the message, the
    music again (cut at 6 s), apart by 0.5 s of the line's sound (:func:`line_sound`, each gap
    its own); the music alone when ``message`` is None."""
    level = float(np.percentile(np.abs(clip), 99))
    loop = music / np.abs(music).max() * level * 0.5
    msg = [] if message is None else [message / np.abs(message).max() * level]
    hold = [*msg, loop, *msg, loop[: 6 * SR]]
    h = clip.size // 2
    parts = [clip[:h]]
    for seed, piece in enumerate(hold):
        parts += [line_sound(clip, seed), piece]
    parts += [line_sound(clip, len(hold)), clip[h:]]
    return np.concatenate(parts).astype(np.float32)


def judge(detector: Detector, audio: np.ndarray | bytes, name: str) -> dict[str, Any]:
    """The verdict on ``audio`` (16 kHz samples, or a file's bytes): robot or not, its
    probability, whether anything was set aside; or why it was refused."""
    if isinstance(audio, np.ndarray):
        buf = io.BytesIO()
        sf.write(buf, audio, SR, format="WAV", subtype="PCM_16")
        audio = buf.getvalue()
    try:
        verdict = detector.detect(audio, name=name)
    except RobocallError as exc:
        return {"refused": exc.code}
    return {"robot": verdict.label is Label.ROBOT, "p": verdict.robot_probability,
            "aside": bool(verdict.set_aside)}  # fmt: skip


def unchanged(self: Detector, audio: Any, transcript: Any, synth: Any, cues: Any) -> Any:
    return transcript, synth, cues, ()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=16)
    parser.add_argument("--robots", type=int, default=10)
    parser.add_argument("--music", type=Path, help="real music to loop (default: a chord loop)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    detector = load_detector(load_config())
    messages = {"en": english_message(), "zh": mandarin_message()}
    music = music_loop(args.music)
    table: dict[tuple[str, str], collections.Counter[str]] = collections.defaultdict(
        collections.Counter
    )
    for label, n in (("human", args.people), ("robot", args.robots)):
        for row in test_rows(label, n):
            clip = read_clip(resolve_path(row))
            name = f"{row.id}.wav"
            results = {"plain": judge(detector, clip, name)}
            for hold, message in (("held", messages[row.language]), ("music", None)):
                if hold == "held" and message is None:
                    continue
                samples = held(clip, message, music)
                results[f"{hold}, rule"] = judge(detector, samples, name)
                with mock.patch.object(Detector, "_without_hold", unchanged):
                    results[f"{hold}, no rule"] = judge(detector, samples, name)
            cell = table[(label, row.language)]
            cell["clips"] += 1
            for key, result in results.items():
                cell[f"{key}: robot"] += bool(result.get("robot"))
                cell[f"{key}: refused"] += "refused" in result
                cell[f"{key}: aside"] += bool(result.get("aside"))
            print(row.id, label, row.language, results, flush=True)
    columns = ["clips", "plain: robot", "plain: refused", "held, no rule: robot",
               "held, rule: robot", "held, rule: aside", "music, no rule: robot",
               "music, rule: robot", "music, rule: aside"]  # fmt: skip
    print("| label | language | " + " | ".join(columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    for (label, lang), cell in sorted(table.items()):
        print(f"| {label} | {lang} | " + " | ".join(str(cell[c]) for c in columns) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
