"""What a carrier's prompt index makes of a call centre's recorded notice (issue 13).

A live agent's calls share nothing bit for bit, except what a call centre's dialer plays before
the agent speaks ("this call may be recorded"). The simulated agent calls with such a notice
(``datasets/prepare_calls.py --notice``: every agent call of a language and split opens with
the same recording) are put beside the robot calls of their split, language and layout, and
each call is looked up in an index of the others, as ``robocall batch`` and ``train_fusion``'s
carrier mode do (``service.campaigns.heard_before.leave_one_out``). Printed per split, layout
and caller kind: the calls the index joins to another, the share of the caller's sounding time
that replays the matched call (``pipeline.fingerprint.replayed_share``), and the weight of
``prompt_seen_before`` as the index gives it now (scaled by that share,
``heard_before.share_factor``) and as it was before the share counted.

``--verdicts``: the fused verdict of each call of the chosen splits, as ``robocall analyze``
makes it on the call (real ASR, every cue, the fitted fusion), then with the cue of either
weight added as the batch driver adds it (``pipeline.fuse.add_evidence``): how many agents a
carrier would call robots, and how many robots it catches, before and after; and again as if
each campaign had LARGE_CAMPAIGN other calls from as many numbers (the weight's cap of 2
logits), the size a call centre's notice reaches in a carrier's index within a day. The rule's two
shares were chosen on the train and dev calls; test is read with it fixed.

    PYTHONPATH=. .venv/bin/python bench/notice_index.py [--splits train,dev,test] \
        [--crop-s 30] [--verdicts test] [--json OUT] [--plot PNG] [--whole-mix]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.training.corpus import MANIFEST_DIR, CorpusRow, read_manifest, resolve_path
from models.training.fusion_calls import analyze_detector, caching_detector, crop_flac
from pipeline.audio import load_audio
from pipeline.config import AudioLimits
from pipeline.detector import Detector
from pipeline.fuse import add_evidence
from pipeline.types import Audio, Evidence
from service.campaigns.heard_before import leave_one_out, prompt_evidence
from service.campaigns.index import MatchMethod, Sightings

NOTICE_PREFIX = "calls_notice/"
LARGE_CAMPAIGN = 1000  # other calls and numbers of a carrier-sized campaign: the weight's cap


def layout(row: CorpusRow) -> str:
    return dict(row.extra)["layout"]


def caller_kind(row: CorpusRow) -> str:
    kind = dict(row.extra)["caller_kind"]
    return "notice_agent" if row.id.startswith(NOTICE_PREFIX) else kind


def read_calls(splits: Sequence[str]) -> list[CorpusRow]:
    """The robot calls and the agent calls with a notice of ``splits`` (plain agents left out:
    nothing of theirs is in another call, docs/evaluation_calls.md)."""
    notice_path = MANIFEST_DIR / "calls" / "notice.jsonl"
    if not notice_path.is_file():
        raise SystemExit(f"{notice_path} is missing: run datasets/prepare_calls.py --notice")
    rows = read_manifest(MANIFEST_DIR / "calls" / "calls.jsonl") + read_manifest(notice_path)
    return [r for r in rows if r.split in splits and caller_kind(r) != "human_agent"]


def decode(row: CorpusRow, crop_s: float) -> Audio:
    data = crop_flac(row, crop_s=crop_s) if crop_s > 0 else resolve_path(row).read_bytes()
    return load_audio(data, limits=AudioLimits(), name=row.id)


def reweighed(
    evidence: Evidence, *, share: bool = True, calls: int | None = None
) -> Evidence | None:
    """The same match weighed again: ``share=False`` as the index weighed it before the
    replayed share counted; ``calls``: as if the campaign had that many other calls, from as
    many numbers (a carrier's campaign of thousands of calls: the weight's cap)."""
    p = dict(evidence.params)
    seen = Sightings(
        str(p["campaign"]),
        calls or int(float(str(p["calls"]))),
        calls or int(float(str(p["numbers"]))),
        None,
        None,
    )
    method: MatchMethod = "text" if p["method"] == "text" else "audio"
    return prompt_evidence(seen, method, share=float(str(p["share"])) if share else 1.0)


def carrier_cues(
    rows: Sequence[CorpusRow], crop_s: float, *, detector: Detector | None = None
) -> dict[str, Evidence | None]:
    """Each call's ``prompt_seen_before`` from an index of the other calls of its split,
    language and layout (robots and agents with a notice together: one carrier sees both).
    ``detector``: a mono call's share counts the caller turns it finds (``caller_turns``), as
    in ``robocall batch``; None: over the whole mix (before the verdict named the turns)."""
    groups: dict[tuple[str, str, str], list[CorpusRow]] = defaultdict(list)
    for row in rows:
        groups[(row.split, row.language, layout(row))].append(row)
    out: dict[str, Evidence | None] = {}
    for members in groups.values():
        calls = [(decode(r, crop_s), "") for r in members]
        turns = [None if detector is None else detector.caller_turns(a) for a, _ in calls]
        for row, evidence in zip(members, leave_one_out(calls, caller_turns=turns), strict=True):
            out[row.id] = evidence
    return out


def index_table(rows: Sequence[CorpusRow], cues: dict[str, Evidence | None]) -> list[str]:
    cells: dict[tuple[str, str, str], list[Evidence | None]] = defaultdict(list)
    for row in rows:
        split = "test" if row.split == "test" else "train+dev"
        cells[(split, layout(row), caller_kind(row))].append(cues[row.id])
    lines = [
        "| calls | layout | caller | calls | joined to another | replayed share: median [min-max] "
        "| weight before: mean / max | weight now: mean / max | weighted before -> now |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (split, lay, kind), got in sorted(cells.items()):
        matched = [e for e in got if e is not None]
        shares = [float(str(dict(e.params)["share"])) for e in matched]
        before = [(reweighed(e, share=False) or e).weight if e else 0.0 for e in got]
        now = [e.weight if e else 0.0 for e in got]
        share = f"{np.median(shares):.2f} [{min(shares):.2f}-{max(shares):.2f}]" if shares else "-"
        lines.append(
            f"| {split} | {lay} | {kind} | {len(got)} | {len(matched)} | {share} "
            f"| {np.mean(before):.2f} / {max(before):.2f} | {np.mean(now):.2f} / {max(now):.2f} "
            f"| {sum(w > 0 for w in before)} -> {sum(w > 0 for w in now)} |"
        )
    return lines


def verdict_rows(
    rows: Sequence[CorpusRow], cues: dict[str, Evidence | None], crop_s: float, base: Detector
) -> list[dict[str, Any]]:
    """Robot probability of each call alone, with the cue as weighed before, and as now
    (``base``: the detector as ``robocall analyze`` builds it)."""
    detector = dataclasses.replace(caching_detector(base), fusion=base.fusion)
    out = []
    for row in rows:
        verdict = detector.detect_audio(decode(row, crop_s))
        cue = cues[row.id]
        probs = {"alone": verdict.robot_probability}
        for name, extra in (
            ("before", cue and reweighed(cue, share=False)),
            ("now", cue),
            ("before_large", cue and reweighed(cue, share=False, calls=LARGE_CAMPAIGN)),
            ("now_large", cue and reweighed(cue, calls=LARGE_CAMPAIGN)),
        ):
            fused = add_evidence(
                verdict, () if extra is None else (extra,), config=base.config, model=base.fusion
            )
            probs[name] = fused.robot_probability
        out.append(
            {"id": row.id, "kind": caller_kind(row), "layout": layout(row),
             "language": row.language, "threshold": verdict.threshold, **probs}
        )  # fmt: skip
    return out


def verdict_table(found: Sequence[dict[str, Any]]) -> list[str]:
    cells: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for v in found:
        cells[(v["layout"], v["kind"])].append(v)
    keys = ("alone", "before", "now", "before_large", "now_large")
    lines = [
        "| layout | caller | calls | single upload | carrier: cue before | cue now "
        f"| {LARGE_CAMPAIGN:,} other calls: cue before | cue now |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (lay, kind), got in sorted(cells.items()):
        shown = []
        for k in keys:
            called = sum(v[k] >= v["threshold"] for v in got)
            shown.append(f"{called} ({called / len(got):.0%}), max p {max(v[k] for v in got):.2f}")
        lines.append(f"| {lay} | {kind} | {len(got)} | " + " | ".join(shown) + " |")
    return lines


def share_plot(
    path: Path, rows: Sequence[CorpusRow], cues: dict[str, Evidence | None], *, crop_s: float
) -> None:
    """Replayed share of every joined call, by caller kind and layout, test apart, with the
    rule's ramp shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from service.campaigns.index import REPLAY_SHARE_FULL, REPLAY_SHARE_NONE

    kinds = ("notice_agent", "recorded_robot", "tts_robot")
    fig, axes = plt.subplots(1, 2, figsize=(8.0, 3.2), dpi=100, sharey=True)
    for ax, lay in zip(axes, ("stereo", "mono"), strict=True):
        ax.axvspan(REPLAY_SHARE_NONE, REPLAY_SHARE_FULL, color="#dddddd", label="partial weight")
        for y, kind in enumerate(kinds):
            for test in (False, True):
                xs = [
                    float(str(dict(e.params)["share"]))
                    for r in rows
                    if (e := cues[r.id]) is not None
                    and caller_kind(r) == kind
                    and layout(r) == lay
                    and (r.split == "test") == test
                ]
                name = "test" if test else "train + dev"
                ax.scatter(xs, [y + (0.15 if test else -0.15)] * len(xs), s=12, alpha=0.7,
                           color="#c0392b" if test else "#2980b9",
                           label=name if y == 0 else None)  # fmt: skip
        ax.set_title(lay)
        ax.set_xlim(0, 1.02)
        ax.set_yticks(range(len(kinds)), [k.replace("_", " ") for k in kinds])
    axes[0].legend(fontsize=7, loc="lower right")
    heard = "whole calls" if crop_s <= 0 else f"first {crop_s:g} s"
    fig.supxlabel(f"share of the caller's speech replaying the matched call ({heard})", size=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", default="train,dev,test")
    parser.add_argument("--crop-s", type=float, default=30.0, help="0: whole calls")
    parser.add_argument("--verdicts", default="", help="splits to fuse verdicts on, e.g. test")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--plot", type=Path, default=None, help="PNG of the replayed shares")
    parser.add_argument(
        "--whole-mix", action="store_true", help="mono: the share over the mix, not caller turns"
    )
    args = parser.parse_args(argv)
    rows = read_calls(args.splits.split(","))
    base = analyze_detector()
    cues = carrier_cues(rows, args.crop_s, detector=None if args.whole_mix else base)
    print(f"Calls cut to the first {args.crop_s:g} s" if args.crop_s > 0 else "Whole calls")
    print("\n".join(index_table(rows, cues)))
    result: dict[str, Any] = {
        "crop_s": args.crop_s,
        "cues": {k: None if e is None else dict(e.params) | {"weight": e.weight}
                 for k, e in cues.items()},
    }  # fmt: skip
    if args.verdicts:
        chosen = [r for r in rows if r.split in args.verdicts.split(",")]
        result["verdicts"] = verdict_rows(chosen, cues, args.crop_s, base)
        print("\n".join(verdict_table(result["verdicts"])))
    if args.plot:
        share_plot(args.plot, rows, cues, crop_s=args.crop_s)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
