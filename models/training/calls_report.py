"""``docs/evaluation_calls_verdict.md``: the fused verdict on the simulated two-party test calls
(issue 13), with the carrier's rows (a batch's prompt index) and why the calls score as they do.
Written by ``fusion_report.write_outputs`` when the fusion fit ran on simulated calls.
"""

from __future__ import annotations

from typing import Any

from models.training import fusion_fit as T
from models.training.fusion_fit import MAX_SCALE, PROMPT_MAX_SCALE, Result
from models.training.metrics import format_metric as _f
from models.training.metrics import format_with_ci
from models.training.operating_report import (
    CALLS_OPERATING_HEADLINE,
    operating_table,
    test_operating_lines,
)
from models.training.tables import markdown_table
from pipeline.fuse import FusionModel

CALLS_REPORT = "evaluation_calls_verdict.md"
# The targets: recorded-prompt robots vs live agents, stereo and mono apart.
CALLS_HEADLINE = (
    "recorded_robot | stereo | both languages",
    "recorded_robot | mono | both languages",
    "tts_robot | stereo | both languages",
    "tts_robot | mono | both languages",
    "tts_robot | stereo | zh",  # Mandarin TTS robots read demo sentences, not sales
    "tts_robot | mono | zh",
    "any robot | both layouts | both languages",
)


def _pairs_table(pairs: dict[str, dict[str, Any]], keys: list[str]) -> list[str]:
    return markdown_table(
        ("robots vs human agents", "layout", "language", "robots", "people", "EER [95 % CI]")
        + ("AUC [95 % CI]", "robots called", "people called", "robots called, <= 5 % people"),
        (
            (
                *k.split(" | "), str(pairs[k]["n_robot"]), str(pairs[k]["n_human"]),
                format_with_ci(pairs[k]["eer"], pairs[k]["eer_ci"]),
                format_with_ci(pairs[k]["auc"], pairs[k]["auc_ci"], False),
                _f(pairs[k]["robots_called"]), _f(pairs[k]["people_called"]),
                _f(pairs[k]["robots_called_at_5pct"]),
            )
            for k in keys
            if k in pairs
        ),
    )  # fmt: skip


def _contribution_lines(calls: dict[str, Any]) -> list[str]:
    c = calls["contributions"]
    return [
        "Mean contribution of each cue to the robot logit on the test calls (fitted fusion, "
        "as applied: scaled, a human voice capped; 0 where a call lacks the cue), by caller "
        f"and layout; the bias ({c['bias']:+.2f}), what the turn-taking cap took off, and the "
        "total at the end. Cues that add nothing anywhere are left out.",
        "",
        *_contribution_table(c),
        "",
    ]


def _contribution_table(c: dict[str, Any]) -> list[str]:
    """Rows: each cue's mean contribution per cell of ``fusion_calls.cue_contributions``, what
    the turn-taking cap took off (when it bit anywhere), the mean robot logit."""
    cells = list(c["cells"])
    capped = c.get("turn_taking_cap", {})
    cap_row = (
        [("turn-taking cap", *(f"{round(capped[cell], 2) + 0.0:+.2f}" for cell in cells))]
        if any(abs(v) >= 0.005 for v in capped.values())
        else []
    )
    return markdown_table(
        ("cue", *(f"{cell.replace(' | ', ', ')} ({c['cells'][cell]})" for cell in cells)),
        [
            *(
                (f"`{name}`", *(f"{v[cell]:+.2f}" for cell in cells))
                for name, v in c["cues"].items()
            ),
            *cap_row,
            ("**robot logit**", *(f"**{c['total'][cell]:+.2f}**" for cell in cells)),
        ],
    )


def _language_contribution_lines(calls: dict[str, Any], model: FusionModel) -> list[str]:
    """The contributions by caller and language, dev and test calls (issue 13's diagnosis)."""
    voice = dict(model.caps).get(T.CAPPED_CUE)
    lines = [
        "### By caller and language",
        "",
        "The same, both layouts together, by caller and language: dev calls (where the "
        "diagnosis is read) and test calls. A call without robot-like words and with a "
        f"human-sounding voice starts at the bias ({model.bias:+.2f}) plus the voice "
        f"({'not capped' if voice is None else f'at most {-voice:+.2f}'}); the turn-taking "
        f"cues together add at most {_cap_text(model.turn_taking_cap)}; what else moves it "
        "is in the other rows (a prompt replayed within the call, no reaction to the callee).",
        "",
    ]
    for split, c in calls["contributions_language"].items():
        if c["cells"]:
            lines += [f"{split} calls:", "", *_contribution_table(c), ""]
    return lines


def _cap_text(cap: float | None) -> str:
    return "any amount" if cap is None else f"{cap:+.2f}"


def _diagnosis_lines() -> list[str]:
    """Why the fused verdict on calls used to ignore the dialer's behaviour (issue 13)."""
    return [
        "## Why behaviour used to count for nothing (issue 13)",
        "",
        "Before this fit the recorded-prompt robots scored at chance against the agents (EER "
        "50.0 % stereo, 45.0 % mono on these test calls) although the behaviour cues alone "
        "tell them apart far better (`docs/evaluation_calls.md`). What the tables below show:",
        "",
        "- **A behaviour cue is seen on simulated calls only.** The composed fit rows are single "
        "clips and carry none, so the behaviour scales came from 10 dev calls per cell (80 "
        "rows beside 828 composed ones), and two cues had a hand-set weight of 0 (the reply "
        "latency spread, talking on through a barge-in) that no scale can move. A mono call's "
        "only turn-taking cues are that latency spread and prompt restarts (rare in 30 s), so "
        "mono had no weighted behaviour cue at all. Now every dev call is in the fit, the two "
        "cues carry hand-set weights (`pipeline/behaviour.py`), and the scales of the cues no "
        "composed clip carries are refitted on the dev calls scored as the verdict scores "
        "them, voice and words included, everything else fixed (`fusion_fit.fit_on_calls`): "
        "the behaviour has to carry what a human-sounding voice leaves open, and no composed "
        "call's score moves.",
        "- **Dev confounded the voice with the class (calls v2).** Every English dev "
        "recorded-prompt robot replayed hyke IVR prompts (a voice talent recorded in a studio), "
        "every English dev agent was a LibriSpeech reader, and Mandarin dev held agent calls "
        "only (one speaker). The "
        "voice head calls the studio voice *more* human than the readers (`synthetic_voice` "
        "rows below), so on dev a human-sounding voice ranks recorded robots below agents, and "
        "the fused AUC of recorded robots vs agents on dev was under 0.5 for every cap of the "
        "human voice; the cap chosen there (`models/weights/FUSION.md`) is what limits it.",
        "- **30 s show less than a whole call.** A robot's prompt has rarely come back within "
        "the first 30 s: cut to 25 s, in-call replay is at chance and the mono behaviour cues "
        "without a prompt index nearly so (`docs/evaluation_calls.md`, 'Cut to the first "
        "25 s').",
        "- **No prompt index in a single upload.** A single `robocall analyze` has none unless "
        "`--prompt-index` is given; `robocall batch` builds one over the calls of the run "
        "(`service/campaigns`, `prompt_seen_before`). The tables above and below score the "
        "calls without it, as a single upload is; the carrier's rows, with an index over the "
        "other calls, are the section 'Carrier mode' (when the fit ran in carrier mode).",
        "",
    ]


def carrier_lines(result: Result) -> list[str]:
    """The carrier's rows of the calls page: the index's hits, the fitted scale of
    ``prompt_seen_before`` and the test calls as a batch with a prompt index scores them."""
    carrier = result.calls.get("carrier")
    if not carrier:
        return [
            "## Carrier mode (a batch's prompt index)",
            "",
            "Not run: this fit had no prompt index (`robocall train --stage fusion` passes the "
            "service's; `python -m models.training.train_fusion` cannot, as training code does "
            "not import the service), so `prompt_seen_before` keeps its hand-set weight.",
            "",
        ]
    hits = carrier["hits"]
    cells = sorted({c for split in hits.values() for c in split})
    return [
        "## Carrier mode (a batch's prompt index)",
        "",
        "A carrier checking a run of calls has what a single upload lacks: `robocall batch` "
        "indexes the caller side of every call and adds `prompt_seen_before` (\"this prompt was "
        "heard in N other calls\") to the verdict of a call whose prompt it has heard. Here each "
        "simulated call is scored with the evidence of the service's index "
        "(`service.campaigns.heard_before.leave_one_out`) over the other chosen calls of its "
        "split, language and layout, the call left out, on the same 30-s crops. The dev calls "
        "fit the cue's scale alone, every other scale, cap, the bias and the operating point "
        "held (`fusion_fit.fit_prompt_scale`): the single-upload rows above do not change, and "
        "no single-upload row carries the cue. "
        f"Fitted scale of `prompt_seen_before`: **{carrier['scale']:.2f}** (hand-set 1; the "
        "hand-set weight is at most 2 logits, `service/campaigns/heard_before.py`)"
        + (
            f", **the fit's upper bound** ({PROMPT_MAX_SCALE:g}, the hand-set scale): no dev "
            "agent carries the cue, so these calls cannot bound it (unbounded, the fit ran to "
            f"{MAX_SCALE:g}, up to {2 * MAX_SCALE:g} logits). The simulated agents here never "
            "replay audio; a live agent whose dialer plays a recorded greeting or compliance "
            "notice does, and a carrier's index matches it across that call centre's calls: "
            "such calls are measured apart (`bench/notice_index.py`, docs/batch.md, \"A call "
            "centre's recorded notice\"), where the cue counts only as far as replayed audio "
            "makes up the caller's speech. The cue alone may move a verdict by at most 2 "
            "logits (`fusion_fit.PROMPT_MAX_SCALE`)."
            if carrier["scale"] >= PROMPT_MAX_SCALE
            else "."
        ),
        "",
        "Calls the index matched to another call (robots: what it should find; agents: false "
        "alarms), share with a 95 % bootstrap interval over caller voices:",
        "",
        *markdown_table(
            ("caller", "layout", *(f"{split}: matched / calls" for split in hits),
             *(f"{split}: share [95 % CI]" for split in hits)),
            (
                (
                    *cell.split(" | "),
                    *(f"{hits[s][cell]['matched']} / {hits[s][cell]['calls']}"
                      if cell in hits[s] else "-" for s in hits),
                    *(format_with_ci(hits[s][cell]["share"], hits[s][cell]["share_ci"])
                      if cell in hits[s] else "-" for s in hits),
                )
                for cell in cells
            ),
        ),
        "",
        "Test calls as a carrier's batch scores them, fitted scale:",
        "",
        *_pairs_table(carrier["fitted"]["pairs"], list(CALLS_HEADLINE)),
        "",
        "The same with `prompt_seen_before` at its hand-set weight (scale 1, what "
        "`robocall batch` adds with a fusion that never saw the cue):",
        "",
        *_pairs_table(carrier["hand-set scale"]["pairs"], list(CALLS_HEADLINE)),
        "",
        "People called robot and robots caught at the operating point, carrier rows (fitted "
        "scale):",
        "",
        *operating_table(
            {k: v for k, v in carrier["operating"].items() if k in CALLS_OPERATING_HEADLINE},
            "carrier's test calls (robots vs agents)",
            result.model.threshold,
        ),
        "",
    ]  # fmt: skip


def _presence_lines(presence: dict[str, Any]) -> list[str]:
    lines = [
        "## Which cues each kind of call shows (dev and test calls)",
        "",
        "Share of calls where the cue has a non-zero hand-set weight, and its mean hand-set "
        "weight there (before the fusion's scale), by caller, layout and language. The fit learns "
        "a cue's scale only from the rows where it is non-zero: a behaviour cue is measured on "
        "the simulated calls alone (the composed calls are single clips), so these rows are all "
        "the fusion sees of it.",
        "",
    ]
    for split, table in presence.items():
        cells = list(table["cells"])
        lines += [
            f"### {split} calls",
            "",
            *markdown_table(
                ("cue", *(f"{c.replace(' | ', ', ')} ({table['cells'][c]})" for c in cells)),
                (
                    (
                        f"`{name}`",
                        *(
                            f"{100 * v[c]['present']:.0f} % {v[c]['mean_weight']:+.2f}"
                            if v[c]["present"]
                            else "-"
                            for c in cells
                        ),
                    )
                    for name, v in table["cues"].items()
                ),
            ),
            "",
        ]
    return lines


def calls_report(result: Result, sha: str) -> str:
    """``docs/evaluation_calls_verdict.md``: the fused verdict on the simulated test calls."""
    calls = result.calls
    meta = calls["meta"]
    fitted = calls["all cues"]
    pairs = fitted["pairs"]
    n = result.counts["test_calls"]
    layouts = [
        f"{robots} | {lay} | {lang}"
        for robots in ("recorded_robot", "tts_robot", "any robot")
        for lay in ("stereo", "mono", "both layouts")
        for lang in ("both languages", "en", "zh")
    ]
    lines = [
        "# The fused verdict on simulated two-party calls",
        "",
        f"Generated by `{result.command}`; do not edit by hand. "
        f"Fusion `models/weights/fusion.json` (sha256 `{sha[:16]}...`).",
        "",
        "**What ran.** The simulated calls of `datasets/manifests/calls/calls.jsonl` "
        "(`datasets/prepare_calls.py`; per call a stereo and a mono copy), "
        f"{meta['per_cell']} test calls per (language, caller kind) chosen by seeded hash "
        + (
            "and every dev call"
            if meta.get("dev_per_cell") is None
            else f"and {meta['dev_per_cell']} dev calls per cell"
        )
        + f", both layouts of each, **cropped to the first {meta['crop_s']:g} s**, each through "
        "`Detector.detect` as `robocall analyze` runs it: channel choice, real ASR "
        "(faster-whisper on the decoded audio), every acoustic and behaviour cue, the "
        "synthetic-voice and text heads"
        + ("" if meta["diarizer"] else " (**no diarizer**: mono calls have no behaviour cues)")
        + f". Test: {n['examples']} calls ({n['robot']} robot, {n['human']} human agent; "
        f"{meta['failed']['test']} without a verdict). The fusion was fitted on "
        f"{result.counts['fit_calls']['examples']} dev calls (those sharing no voice, "
        "utterance or line with any test clip or test call) beside the composed calls; see "
        "`docs/evaluation_fusion.md`.",
        "",
        "Intervals: 95 % bootstrap over caller voices (1000 rounds, stratified by class). "
        f"Called robot: robot probability >= {fitted['threshold']:.3f}, the shipped threshold "
        "chosen on dev (`models/weights/FUSION.md`; *all cues, at 0.5* below is the same fusion "
        "decided at 0.5). "
        "*Robots called, <= 5 % people*: the share of robots above the strictest threshold "
        "that calls at most 5 % of these people robot, read off the test calls themselves (an "
        "operating point, not a shipped setting).",
        "",
        "**Read with care.** "
        + (
            f"{meta['callers_heard']} of the {n['examples']} test calls have a caller whose "
            "clips (voice or utterance) are in the synthetic-voice head's training rows: their "
            "`synthetic_voice` cue is not a held-out figure (the rows *all cues but "
            "synthetic_voice* below are the figure without it). "
            if meta["callers_heard"]
            else "No test call's caller speaks a clip of the synthetic-voice head's training "
            "rows (counted, `fusion_calls.callers_heard_in_training`). "
        )
        + "Each cell holds few voices: the intervals are wide. The simulator's robots and "
        "agents behave as it was programmed from how dialers work (`datasets/prepare_calls.py`); "
        "real calls may differ.",
        "",
        "## Targets (issue 13): single upload",
        "",
        *_pairs_table(pairs, list(CALLS_HEADLINE)),
        "",
        "A single upload: no prompt index (the carrier's rows, with one, are in 'Carrier "
        "mode' below). "
        "Targets: recorded-prompt robots vs live agents, EER <= 5 %, stereo and mono apart; TTS "
        "robots reading non-sales text >= 90 % called robot at <= 5 % of people called robot "
        "(the Mandarin TTS robots of the simulated calls read TTS demo sentences, not sales: "
        "rows `tts_robot | zh`; the call mixtures below are the larger set).",
        "",
    ]
    if result.e2e:
        ns = result.e2e["non_sales"]
        lines += [
            "### TTS robots reading non-sales text",
            "",
            "Test-split call mixtures (`datasets/manifests/mixed.jsonl`, whole detector, real "
            "ASR; see the end-to-end rows of `docs/evaluation_fusion.md`) whose robot prompts "
            "are Mandarin TTS demo sentences (the `zh_*` sources) or vocoder copies of read "
            "speech (`umelgan_demo`), against every person in those mixtures. Target: >= 90 % "
            "called robot at <= 5 % of live people called robot.",
            "",
            *markdown_table(
                ("robots", "people", "EER [95 % CI]", "AUC [95 % CI]", "robots called")
                + ("people called", "robots called, <= 5 % people"),
                [
                    (
                        str(ns["n_robot"]),
                        str(ns["n_human"]),
                        format_with_ci(ns["eer"], ns["eer_ci"]),
                        format_with_ci(ns["auc"], ns["auc_ci"], False),
                        _f(ns["robots_called"]),
                        _f(ns["people_called"]),
                        _f(ns["robots_called_at_5pct"]),
                    )
                ],
            ),  # fmt: skip
            "",
            "Why (fitted fusion, each cue's mean contribution to the robot logit, as in 'Why the "
            "calls score as they do' below):",
            "",
            *_contribution_table(result.e2e["non_sales_contributions"]),
            "",
        ]
    if result.operating:
        lines += [
            "## The operating point: before (0.5) and after, and the uncertain band",
            "",
            f"The shipped fusion decides robot at >= {result.model.threshold:.3f} and leaves "
            f'the caller open ("cannot tell") from {result.model.person_threshold:.3f} up to '
            "it, both chosen on dev (`models/weights/FUSION.md`). Each row: a robot kind against "
            "every human agent of the layout and language.",
            "",
            *test_operating_lines(result, ("calls",), intro=False),
        ]
    lines += [
        *carrier_lines(result),
        "## By robot kind, layout and language (fitted fusion, all cues)",
        "",
        *_pairs_table(pairs, layouts),
        "",
        "## Fusion variants (refitted with a subset of cues, same test calls)",
        "",
    ]
    for label, table in calls.items():
        if label in ("meta", "all cues", "presence", "carrier") or label.startswith("contrib"):
            continue
        lines += [f"### {label}", "", *_pairs_table(table["pairs"], list(CALLS_HEADLINE)), ""]
    if "contributions" in calls:
        lines += ["## Why the calls score as they do", "", *_contribution_lines(calls)]
    if "contributions_language" in calls:
        lines += _language_contribution_lines(calls, result.model)
    if "presence" in calls:
        lines += [*_diagnosis_lines(), *_presence_lines(calls["presence"])]
    lines += [
        "## Robot/person x sales/not (fitted fusion, all cues)",
        "",
        f"Called robot: probability >= {fitted['threshold']:.3f} (below it, the uncertain band "
        "included, a call counts as *person* here; the band's shares are in the operating-point "
        "table above); sales: the verdict's sales "
        f"probability >= {fitted['sales_threshold']:g}. What the callers say "
        "(`datasets/prepare_calls.py`): the English TTS robots speak sales lines written for "
        "the project (`tts_en`); the Mandarin TTS robots read TTS demo sentences; the "
        "recorded-prompt robots replay a person's clips (IVR prompts or read sentences); the "
        "human agents read books or demo-page sentences. Only the English TTS robots sell, so "
        "every other call belongs in a *not sales* column.",
        "",
        *markdown_table(
            ("caller", "layout", "robot, sales", "robot, not sales", "person, sales")
            + ("person, not sales",),
            (
                (*k.split(" | "), *(str(v) for v in row.values()))
                for k, row in fitted["confusion"].items()
            ),
        ),
        "",
    ]
    return "\n".join(lines)
