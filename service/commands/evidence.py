"""``robocall evidence FILE --out PACK.zip`` builds a signed evidence pack; ``robocall stamp``
adds an RFC 3161 timestamp from a TSA; ``robocall verify`` checks one (the pack itself:
:mod:`service.evidence.pack`)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from pipeline.errors import RobocallError
from pipeline.files import write_atomic
from service.commands.analyze import add_detector_options, config_from_args
from service.detector import load_detector
from service.evidence.timestamp import (
    DEFAULT_TIMEOUT_S,
    TimestampError,
    check_timestamp_reply,
    parse_timestamp_request,
    send_request,
)

# The report, pack, signing and verify modules are imported by the commands that use them: every
# `robocall` command builds this parser, and `robocall analyze` on one call should not pay for
# them (issue 17).


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ev = sub.add_parser(
        "evidence",
        help="analyse a recording and build a signed evidence pack for a complaint",
        description="Analyse a call recording and write a signed, verifiable evidence pack (zip) "
        "with a bilingual PDF report, JSON, complaint-form fields (12321, FTC) and the original "
        "recording. The callee's personal data is masked in the report.",
    )
    ev.add_argument("file", type=Path, metavar="FILE")
    ev.add_argument("--out", type=Path, required=True, metavar="PACK.zip")
    ev.add_argument(
        "--caller", default="", metavar="NUMBER", help="the number that called (as you saw it)"
    )
    ev.add_argument(
        "--caller-id-name", default="", metavar="NAME", help="the name your phone showed, if any"
    )
    ev.add_argument(
        "--callee",
        default="",
        metavar="NUMBER",
        help="your own number (masked in the pack; the FTC form and 12321 ask for it)",
    )
    ev.add_argument(
        "--callee-name",
        action="append",
        default=[],
        metavar="NAME",
        help="your name, masked wherever it is said (repeatable)",
    )
    ev.add_argument(
        "--time",
        default="",
        metavar="ISO8601",
        help="when the call came, with its time zone, e.g. 2024-05-01T14:30+08:00",
    )
    ev.add_argument(
        "--region",
        default="",
        metavar="CC",
        help="country of numbers given without +country code (ISO 3166, e.g. CN, US; "
        "default: try CN, then US)",
    )
    ev.add_argument(
        "--on-dnc-list",
        action=argparse.BooleanOptionalAction,
        help="your number is on a do-not-call registry (FTC form)",
    )
    ev.add_argument(
        "--asked-to-stop",
        action=argparse.BooleanOptionalAction,
        help="you asked the caller to stop calling (FTC form)",
    )
    ev.add_argument("--lang", choices=("zh", "en"), help="language that leads the report")
    ev.add_argument(
        "--unmasked",
        action="store_true",
        help="also write your unmasked copy (report and complaint fields with your full number) "
        "to PACK.private.zip, outside the signed pack: do not share it",
    )
    add_detector_options(ev)
    ev.set_defaults(func=run_evidence)

    stamp = sub.add_parser(
        "stamp",
        help="get a trusted RFC 3161 timestamp for an evidence pack from a timestamp authority",
        description="Send the pack's timestamp request (manifest.tsq) to a timestamp authority "
        "(TSA), check the reply and store it in the pack as manifest.tsr. The timestamp proves "
        "the pack existed at that time; 'robocall verify' checks it.",
    )
    stamp.add_argument("pack", type=Path, metavar="PACK.zip")
    stamp.add_argument("--tsa", required=True, metavar="URL", help="the TSA's RFC 3161 URL")
    stamp.add_argument(
        "--tsa-ca",
        type=Path,
        action="append",
        default=[],
        metavar="PEM",
        help="CA certificate the TSA must chain to (repeatable)",
    )
    stamp.add_argument(
        "--out", type=Path, metavar="PACK.zip", help="write here instead of replacing PACK.zip"
    )
    stamp.add_argument(
        "--timeout-s", type=float, default=DEFAULT_TIMEOUT_S, help="seconds to wait for the TSA"
    )
    stamp.set_defaults(func=run_stamp)

    ver = sub.add_parser(
        "verify",
        help="check an evidence pack: hashes, signature, agreement of its files, timestamp",
        description="Check that nothing in an evidence pack changed since it was signed, that "
        "its files agree with each other, and a stored RFC 3161 timestamp. The signature proves "
        "integrity since signing by whoever holds the key in the pack; pin the signer's key "
        "with --public-key or --fingerprint to know it is theirs.",
    )
    ver.add_argument("pack", type=Path, metavar="PACK.zip")
    ver.add_argument(
        "--public-key",
        type=Path,
        metavar="PEM",
        help="require the pack to be signed with this public key",
    )
    ver.add_argument(
        "--fingerprint",
        metavar="SHA256",
        help="require the signing key to have this fingerprint ('robocall keys show')",
    )
    ver.add_argument(
        "--tsa-ca",
        type=Path,
        action="append",
        default=[],
        metavar="PEM",
        help="CA certificate a stored timestamp must chain to (repeatable)",
    )
    ver.add_argument("--json", action="store_true", help="print the checks as JSON")
    ver.set_defaults(func=run_verify)


def _out(line: str = "") -> None:
    sys.stdout.write(line + "\n")


def _err(command: str, line: str) -> None:
    sys.stderr.write(f"robocall {command}: {line}\n")


def run_evidence(args: argparse.Namespace) -> int:
    from pipeline import report as rp
    from service.evidence import signing
    from service.evidence.pack import build_evidence

    try:
        case = rp.CaseInfo(
            caller_number=args.caller,
            callee_number=args.callee,
            call_time=args.time,
            lang=args.lang or "",
            callee_names=tuple(args.callee_name),
            caller_id_name=args.caller_id_name,
            on_do_not_call_list=args.on_dnc_list,
            asked_to_stop=args.asked_to_stop,
            region=args.region,
        )
        config = config_from_args(args)
    except ValueError as exc:
        _err("evidence", str(exc))
        return 2
    try:
        original = args.file.read_bytes()
    except OSError as exc:
        _err("evidence", f"{args.file}: {exc.strerror or exc}")
        return 1
    from pipeline.audio import load_audio
    from service.evidence.pdf import find_cjk_font

    try:
        find_cjk_font()  # fail before minutes of analysis, not after
        signing_key, created = signing.load_or_create_signing_key()
        if created:
            _err(
                "evidence",
                f"created a signing key in {signing.key_dir()} (see 'robocall keys show')",
            )
        detector = load_detector(config)
        audio = load_audio(
            original, limits=config.audio, name=args.file.name, caller_channel=config.caller_channel
        )
        verdict = detector.detect_audio(audio)
        pack, private = build_evidence(
            original,
            verdict,
            case,
            signing_key=signing_key,
            private_copy=args.unmasked,
            audio=audio,
            settings=dataclasses.asdict(config),
        )
    except RobocallError as exc:
        _err("evidence", f"[{exc.code}] {exc.message}")
        return 1
    except ValueError as exc:  # the stated call time is after the analysis
        _err("evidence", str(exc))
        return 2
    write_atomic(args.out, pack)
    private_path = private_copy_path(args.out)
    if private is not None:
        write_atomic(private_path, private, mode=0o600)
    fp = signing.fingerprint(signing_key.public_key())
    lang = rp.lead_lang(verdict, case)
    _out(f"Evidence pack: {args.out} ({len(pack) / 1024:.0f} KiB)")
    _out(rp.verdict_sentence(verdict, lang))
    _out(
        f"Open report.pdf inside the pack to read the report. Signed with key "
        f"{signing.readable_fingerprint(fp)[:39]}…"
    )
    _out(f"Check it any time with: robocall verify {args.out}")
    if private is not None:
        _out(f"Your unmasked copy, outside the signed pack (do not share it): {private_path}")
    return 0


def private_copy_path(pack: Path) -> Path:
    """``case.zip`` -> ``case.private.zip``: the complainant's copy sits next to the pack."""
    return pack.with_name(f"{pack.stem}.private{pack.suffix or '.zip'}")


def run_stamp(args: argparse.Namespace) -> int:
    from service.evidence.verify import add_timestamp_reply, stored_timestamp_request

    try:
        data = args.pack.read_bytes()
        roots = tuple(path.read_bytes() for path in args.tsa_ca)
    except OSError as exc:
        _err("stamp", f"{exc.filename}: {exc.strerror or exc}")
        return 1
    try:
        tsq = stored_timestamp_request(data)
        request = parse_timestamp_request(tsq)
    except ValueError as exc:
        _err("stamp", f"{args.pack}: {exc}")
        return 1
    try:
        tsr = send_request(tsq, args.tsa, timeout_s=args.timeout_s)
    except TimestampError as exc:
        _err("stamp", f"[{exc.code}] {exc.message}")
        return 1
    stamp = check_timestamp_reply(
        tsr, digest=request.digest, nonce=request.nonce, trusted_roots=roots
    )
    if not stamp.ok:
        _err("stamp", f"the reply from {args.tsa} does not check out: {'; '.join(stamp.problems)}")
        return 1
    out = args.out or args.pack
    write_atomic(out, add_timestamp_reply(data, tsr))
    when = stamp.gen_time.isoformat() if stamp.gen_time else "?"
    _out(f"Timestamped {out}: {when} by {stamp.tsa} (stored as manifest.tsr)")
    _out(f"Check it with: robocall verify {out}")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from service.evidence import signing
    from service.evidence.verify import KEY_IN_PACK_NOTE, verify_pack

    try:
        data = args.pack.read_bytes()
        trusted = args.public_key.read_bytes() if args.public_key else None
        roots = tuple(path.read_bytes() for path in args.tsa_ca)
    except OSError as exc:
        _err("verify", f"{exc.filename}: {exc.strerror or exc}")
        return 1
    try:
        result = verify_pack(
            data, trusted_public_key=trusted, trusted_fingerprint=args.fingerprint, tsa_roots=roots
        )
    except ValueError as exc:  # --public-key is not an Ed25519 PEM, --fingerprint no sha256
        _err("verify", str(exc))
        return 2
    pinned = trusted is not None or args.fingerprint is not None
    if args.json:
        _out(
            json.dumps(
                {
                    "pack": str(args.pack),
                    "intact": result.ok,
                    "public_key_sha256": result.fingerprint,
                    "key_pinned": pinned,
                    "timestamp_utc": result.timestamp.gen_time.isoformat()
                    if result.timestamp is not None and result.timestamp.gen_time
                    else None,
                    "checks": [
                        {"path": c.path or "(archive)", "ok": c.ok, "message": c.message}
                        for c in result.checks
                    ],
                },
                ensure_ascii=False,
            )
        )
        return 0 if result.ok else 1
    _out(f"Checking {args.pack}")
    width = max((len(c.path) for c in result.checks), default=10)
    for c in result.checks:
        _out(f"  {'OK  ' if c.ok else 'FAIL'}  {(c.path or '(archive)').ljust(width)}  {c.message}")
    if result.fingerprint:
        _out(
            f"Signing key fingerprint (SHA-256): {signing.readable_fingerprint(result.fingerprint)}"
        )
    if result.ok:
        _out("INTACT: every file matches the signed manifest and the files agree with each other.")
        if not pinned:
            _out(f"Note: {KEY_IN_PACK_NOTE}.")
        return 0
    bad = ", ".join(dict.fromkeys(c.path or "(archive)" for c in result.problems))
    _out(f"NOT INTACT: {len(result.problems)} problem(s) in: {bad}")
    return 1
