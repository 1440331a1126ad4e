"""``robocall analyze FILE...``: one verdict per recording, readable or JSON."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.config import DetectorConfig
from pipeline.errors import RobocallError
from pipeline.messages import (
    Lang,
    evidence_sentence,
    format_clock,
    format_probability,
    format_robot_probability,
    format_threshold_percent,
    headline,
    recording_notes,
)
from pipeline.types import Transcript, Verdict
from service.detector import load_detector, resolve_config

if TYPE_CHECKING:
    from service.campaigns.index import PromptIndex

log = logging.getLogger(__name__)

TOP_REASONS = 5


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "analyze",
        help="analyse recordings and print a verdict for each",
        description="Analyse one or more call recordings (wav, flac, mp3, m4a, ogg, opus, webm, "
        "amr) and print for each whether the caller is a robot or a live person, and whether a "
        "sales pitch was heard.",
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    add_detector_options(parser)
    parser.add_argument(
        "--json", action="store_true", help='one JSON line per file: {"input", "verdict"|"error"}'
    )
    parser.add_argument(
        "--lang", choices=("en", "zh"), default="en", help="language of the readable summary "
        "(default en; --json carries both)",
    )  # fmt: skip
    parser.add_argument(
        "--prompt-index", type=Path, metavar="SQLITE", help="prompt index of earlier calls (e.g. "
        "from robocall batch): a call whose prompt it holds gets 'heard in N other calls' as "
        "evidence; read only, the files analysed are not added (default: no index, no such "
        "evidence)",
    )  # fmt: skip
    parser.set_defaults(func=run)


def add_detector_options(parser: argparse.ArgumentParser) -> None:
    """Flags that mirror ``DetectorConfig`` fields (shared by analyze and other commands)."""
    parser.add_argument("--config", type=Path, help="TOML file with [audio] [asr] [fusion]")
    parser.add_argument("--backend", choices=("faster", "openai"), help="Whisper backend")
    parser.add_argument(
        "--languages", help="comma-separated languages Whisper may detect (default zh,en)"
    )
    parser.add_argument("--device", help="auto | cpu | cuda")
    parser.add_argument("--caller-channel", type=int, choices=(0, 1), help="force caller channel")
    parser.add_argument("--max-duration-s", type=float, help="refuse longer recordings")
    parser.add_argument(
        "--threshold",
        type=float,
        help="robot probability decision threshold (default: the fitted fusion's, chosen on dev)",
    )


def config_from_args(args: argparse.Namespace) -> DetectorConfig:
    languages = tuple(x.strip() for x in args.languages.split(",")) if args.languages else None
    return resolve_config(
        args.config,
        asr__backend=args.backend,
        asr__languages=languages,
        asr__device=args.device,
        audio__max_duration_s=args.max_duration_s,
        fusion__threshold=args.threshold,
        caller_channel=args.caller_channel,
    )


def run(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"robocall analyze: {exc}", file=sys.stderr)
        return 2
    index = None
    if args.prompt_index is not None:
        from service.campaigns.index import PromptIndex

        try:
            index = PromptIndex(args.prompt_index, read_only=True)
        except (OSError, ValueError) as exc:
            print(f"robocall analyze: {exc}", file=sys.stderr)
            return 2
    try:
        return _analyse(args, config, index)
    finally:
        if index is not None:
            index.close()


def _analyse(args: argparse.Namespace, config: DetectorConfig, index: PromptIndex | None) -> int:
    try:
        detector = load_detector(config)
    except RobocallError as exc:
        print(f"robocall analyze: {exc.message}", file=sys.stderr)
        return 1
    if index is not None:
        from service.campaigns.heard_before import PromptCue

        cues = (*detector.context_cues, PromptCue(index))
        detector = dataclasses.replace(detector, context_cues=cues)
    failed = 0
    for path in args.files:
        try:
            verdict = detector.detect(path)
        except RobocallError as exc:
            failed += 1
            log.warning("%s: %s", path, exc.code)
            if args.json:
                _print_json({"input": str(path), "error": exc.to_dict()})
            else:
                print(f"{path}: error [{exc.code}] {exc.message}\n")
            continue
        except OSError as exc:  # unreadable path: permissions, a directory, vanished file
            failed += 1
            error = {"code": "unreadable", "message": f"{path}: {exc.strerror or exc}"}
            if args.json:
                _print_json({"input": str(path), "error": error})
            else:
                print(f"{path}: error [unreadable] {error['message']}\n")
            continue
        if args.json:
            _print_json({"input": str(path), "verdict": verdict.to_dict()})
        else:
            print(format_summary(verdict, lang=args.lang))
    return 1 if failed else 0


def _print_json(obj: dict[str, Any]) -> None:
    print(json.dumps(obj, ensure_ascii=False))


# fixed strings of the summary: (English, Chinese)
_SUMMARY: dict[str, tuple[str, str]] = {
    "verdict": ("Verdict: {h}", "判断：{h}"),
    "probabilities": (
        "  robot probability {p} (robot at {t} or more{band}); probability of a sales pitch {s}",
        "  机器人概率 {p}（{t} 及以上判为机器人{band}）；是推销的概率 {s}",
    ),
    "band": ("; cannot tell from {l}", "；{l} 至 {t} 之间无法判断"),
    "reasons": (
        "Why (+ towards robot, - towards a live person):",
        "依据（+ 更像机器人，- 更像真人）：",
    ),
    "transcript": ("Transcript ({h}):", "通话文字（{h}）："),
    "note": ("Note: fusion uses {m}.", "说明：综合方法为{m}。"),
}


def _say(key: str, lang: Lang, **values: object) -> str:
    en, zh = _SUMMARY[key]
    return (en if lang == "en" else zh).format(**values)


def format_summary(verdict: Verdict, *, lang: Lang = "en") -> str:
    """A person-readable summary: headline, probabilities, top reasons in plain words, transcript.

    The headline and reasons come from ``pipeline.messages`` (the catalogue every renderer uses).
    """
    info = verdict.audio
    p = format_probability
    lower = verdict.person_threshold
    cut = format_threshold_percent
    band = (
        _say("band", lang, l=cut(lower), t=cut(verdict.threshold))
        if lower is not None and lower < verdict.threshold
        else ""
    )
    lines = [
        f"== {info.name}  ({info.duration_s:.1f} s, {info.codec} {info.sample_rate_hz} Hz, "
        f"{info.channels} ch)",
        _say("verdict", lang, h=headline(verdict, lang)),
        _say(
            "probabilities",
            lang,
            p=format_robot_probability(verdict),
            t=cut(verdict.threshold),
            band=band,
            s=p(verdict.sales_probability),
        ),
    ]
    lines.extend(recording_notes(verdict, lang))
    lines.append(_say("reasons", lang))
    shown = [e for e in verdict.evidence if e.weight != 0.0][:TOP_REASONS]
    for e in shown or verdict.evidence[:TOP_REASONS]:
        where = f" [{format_clock(e.span_s[0])}-{format_clock(e.span_s[1])}]" if e.span_s else ""
        lines.append(f"  {e.weight:+.2f}  {evidence_sentence(e, lang)}{where}")
    lines.append(_say("transcript", lang, h=_transcript_header(verdict.transcript)))
    lines.extend(_transcript_lines(verdict, lang))
    method = verdict.provenance.fusion_method
    if lang == "zh":  # the method line is English provenance; say what it means in Chinese
        fitted = method.lower().startswith("fitted")
        method = "经过训练和校准的融合模型" if fitted else "人工设定的权重（未经校准）"
    lines.append(_say("note", lang, m=method))
    return "\n".join(lines) + "\n"


def _transcript_header(transcript: Transcript) -> str:
    header = f"{transcript.language}, p={transcript.language_probability:.2f}"
    if transcript.dropped_segments:
        header += f", {transcript.dropped_segments} hallucinated segment(s) dropped"
    return header


def _transcript_lines(verdict: Verdict, lang: Lang) -> list[str]:
    """Both parties' segments interleaved by start time, each with its speaker."""
    from pipeline.report import text, transcript_rows  # phonenumbers: not for --help

    rows = transcript_rows(verdict)
    if not rows:
        return ["  (no speech recognised)"]
    who = {s: s if lang == "en" else text(s, lang) for s in ("caller", "callee")}
    return [f"  [{r.start_s:6.1f}-{r.end_s:6.1f}] {who[r.speaker]}: {r.text}" for r in rows]
