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
from pipeline.types import Label, Transcript, Verdict
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
        "amr) and print whether each is an electronic sales robot or a human sales pitch.",
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    add_detector_options(parser)
    parser.add_argument(
        "--json", action="store_true", help='one JSON line per file: {"input", "verdict"|"error"}'
    )
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
    parser.add_argument("--threshold", type=float, help="robot probability decision threshold")


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
        from service.campaigns.index import PromptCue

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
            print(format_summary(verdict))
    return 1 if failed else 0


def _print_json(obj: dict[str, Any]) -> None:
    print(json.dumps(obj, ensure_ascii=False))


def format_summary(verdict: Verdict) -> str:
    """A person-readable summary: verdict, probability, top reasons, transcript."""
    info = verdict.audio
    what = "ELECTRONIC SALES ROBOT" if verdict.label is Label.ROBOT else "HUMAN SALES PITCH (live)"
    lines = [
        f"== {info.name}  ({info.duration_s:.1f} s, {info.codec} {info.sample_rate_hz} Hz, "
        f"{info.channels} ch)",
        f"Verdict: {what}   robot probability {verdict.robot_probability:.2f} "
        f"(threshold {verdict.threshold:.2f})",
        f"Sales pitch probability {verdict.sales_probability:.2f}; topic: {verdict.topic}",
    ]
    if info.channels > 1:
        lines.append(f"Caller on channel {info.caller_channel}: {info.caller_channel_reason}")
    lines.append("Top reasons (+ towards robot, - towards human):")
    shown = [e for e in verdict.evidence if e.weight != 0.0][:TOP_REASONS]
    for e in shown or verdict.evidence[:TOP_REASONS]:
        where = f" [{e.span_s[0]:.1f}-{e.span_s[1]:.1f} s]" if e.span_s else ""
        lines.append(f"  {e.weight:+.2f}  {e.detail}{where}")
    lines.append(f"Transcript ({_transcript_header(verdict.transcript)}):")
    lines.extend(_transcript_lines(verdict.transcript, verdict.other_party_transcript))
    lines.append(f"Note: fusion uses {verdict.provenance.fusion_method}.")
    return "\n".join(lines) + "\n"


def _transcript_header(transcript: Transcript) -> str:
    header = f"{transcript.language}, p={transcript.language_probability:.2f}"
    if transcript.dropped_segments:
        header += f", {transcript.dropped_segments} hallucinated segment(s) dropped"
    return header


def _transcript_lines(caller: Transcript, callee: Transcript | None) -> list[str]:
    """Both parties' segments interleaved by start time."""
    turns = [(s, "caller") for s in caller.segments]
    if callee is not None:
        turns += [(s, "callee") for s in callee.segments]
    if not turns:
        return ["  (no speech recognised)"]
    turns.sort(key=lambda t: t[0].start_s)
    return [f"  [{s.start_s:6.1f}-{s.end_s:6.1f}] {who}: {s.text}" for s, who in turns]
