"""The fusion's operating point in words and tables: the robot threshold and the uncertain band
chosen on dev, the band's other rules, the turn-taking cap, and what each does on the test
populations. Shared by the model card (``fusion_report``) and the calls page (``calls_report``).
"""

from __future__ import annotations

from typing import Any

from models.training import operating_point as OP
from models.training.fusion_fit import Result
from models.training.metrics import format_metric as _f
from models.training.metrics import format_with_ci
from models.training.tables import markdown_table


def _pct(v: float) -> str:
    return _f(v) if v == v else "-"


def _rate(row: dict[str, Any], key: str) -> str:
    """``"12.5 % [3.1, 25.0]"``: a share with its 95 % interval by voice."""
    return format_with_ci(row[key], row[f"{key}_ci"])


def operating_point_lines(result: Result) -> list[str]:
    """The operating point: the rules, the chosen values and the dev rows they came from."""
    op = result.operating
    model = result.model
    dev = op["dev"]
    return [
        "A 'robot' verdict goes into complaints to regulators: calling a live person a robot is "
        "the costliest error, a missed robot costs less (the user can still listen). So the "
        "verdict is not decided at 0.5 (issue 13). Rules, applied to held-out dev scores (the "
        f"whole fit repeated with each of {result.cap_cv['folds']} voice-grouped folds of dev "
        "left out: the fit's own rows score better than new calls), per dev population "
        "(composed dev calls; simulated dev calls, stereo and mono apart; "
        + unseen_population_text(dev.get("unseen_sources", {}))
        + "; each also per language), the strictest population with at least "
        f"{OP.MIN_POPULATION} people deciding (a smaller one cannot show "
        f"{100 * OP.MAX_PEOPLE_CALLED_ROBOT:.0f} %: it is listed and does not count):",
        "",
        f"- **Robot threshold {model.threshold:.3f}**: the lowest probability at which at most "
        f"{100 * OP.MAX_PEOPLE_CALLED_ROBOT:.0f} % of the dev people are called robot, and never "
        "below 0.5.",
        f"- **Uncertain band [{model.person_threshold:.3f}, {model.threshold:.3f})**: below "
        f"{model.person_threshold:.3f} the caller is called a live person; "
        + (
            "the edge is even odds, so the band lies only on the robot side (the rule at 5 % of "
            "the dev robots called a person let the recorded-prompt robots, real people's "
            "voices, push the edge so low that almost every person fell in the band; the table "
            "of other rules below shows the trade-off)."
            if OP.MAX_ROBOTS_CALLED_PERSON is None
            else f"the edge is the highest probability at which at most "
            f"{100 * OP.MAX_ROBOTS_CALLED_PERSON:.0f} % of the dev robots are called a person, "
            "and never above 0.5."
        )
        + " In between the verdict says it "
        'cannot tell (`Verdict.caller_certainty == "uncertain"`, label `human_sales_pitch`), '
        "and an evidence pack marks it as not sufficient alone for a complaint.",
        "",
        *markdown_table(
            ("dev population", "people", "robots", "its robot threshold", "counts")
            + ("its band edge", "people called robot", "robots called person", "in the band"),
            (
                (
                    name,
                    f"{r['n_people']:.0f}",
                    f"{r['n_robots']:.0f}",
                    f"{r['robot_threshold']:.3f}"
                    + (
                        " (sets it)"
                        if r["robot_threshold"] == model.threshold and r.get("sets_threshold", 1.0)
                        else ""
                    ),
                    "yes" if r.get("sets_threshold", 1.0) else f"no (< {OP.MIN_POPULATION})",
                    f"{r['person_threshold']:.3f}",
                    _pct(r["people_called_robot"]),
                    _pct(r["robots_called_person"]),
                    _pct(r["uncertain"]),
                )
                for name, r in dev["rows"].items()
            ),
        ),  # fmt: skip
    ]


def unseen_population_text(counts: dict[str, dict[str, int]]) -> str:
    """The dev population of people from sources no voice model saw, in words."""
    if not counts:
        return "no population of people from sources no voice model saw"
    judged = sum(c["judged"] for c in counts.values())
    return (
        f"the dev people of {len(counts)} sources no voice model saw, {judged} clips through "
        "the whole detector with the voice head retrained without their source "
        "(`eval_sources.dev_people_examples`)"
    )


def band_alternative_lines(result: Result) -> list[str]:
    """The band's lower edge under other rules, and what each does on the test populations."""
    rows = result.operating["band_alternatives"]
    names = list(rows[0]["test"]) if rows else []
    shipped = OP.MAX_ROBOTS_CALLED_PERSON
    return [
        "The band's lower edge under other rules (the robot threshold unchanged), chosen on the "
        "same dev scores, and on each test population the share of calls in the band / of "
        "robots called a live person. The shipped rule is marked; *none* = no band below 0.5. "
        "A wider band accuses no one more but decides fewer calls; a narrower one calls more "
        "robots 'live person' (a missed robot: the user can still listen).",
        "",
        *markdown_table(
            ("edge rule: dev robots called person <=", "band edge")
            + tuple(f"{n}: in band / robots called person" for n in names),
            (
                (
                    ("none" if r["rule"] is None else f"{100 * r['rule']:.0f} %")
                    + (" (shipped)" if r["rule"] == shipped else ""),
                    f"{r['person_threshold']:.3f}",
                    *(
                        f"{_pct(r['test'][n]['uncertain'])} / "
                        f"{_pct(r['test'][n]['robots_called_person'])}"
                        for n in names
                    ),
                )
                for r in rows
            ),
        ),
    ]


def turn_cap_lines(result: Result) -> list[str]:
    """The cap of the turn-taking cues: what it is, how it was chosen, the cross-validation."""
    cv = result.operating["turn_cap"]
    cap = result.model.turn_taking_cap
    applied = "no cap" if cap is None else f"{cap:g} (robot-logit units, after scaling)"
    return [
        "A live agent who simply talks in a regular rhythm shows several turn-taking cues at "
        "once (steady reply delay, no backchannel in a short call, ...); together they must not "
        "call a person a robot without the voice or the words. So the summed contribution of "
        "the turn-taking cues towards robot (`pipeline.fuse.TURN_TAKING_CUES`: reply latency, "
        "talking over the callee, backchannels, barge-in, prompt restarts, share of the "
        "talking) is capped; when the cap bites each of their robot-side contributions shrinks "
        "by the same factor, so the reasons shown still add up to the probability. Cap: "
        f"{applied}. Chosen on the {cv['calls']} dev calls' held-out scores (same folds): the "
        f"share of dev robots caught at the strictest threshold that calls at most "
        f"{100 * OP.MAX_PEOPLE_CALLED_ROBOT:.0f} % of the dev people robot; the smallest cap "
        f"within {100 * OP.TURN_CAP_TOLERANCE:.0f} points of the best wins.",
        "",
        *markdown_table(
            ("cap", "dev robots caught, <= 5 % people", "dev people called @0.5", "dev AUC"),
            (
                (
                    "none" if r["cap"] is None else f"{r['cap']:g}",
                    _pct(r["robots_caught_at_5pct"]),
                    _pct(r["people_called_at_half"]),
                    _f(r["auc"], False),
                )
                for r in cv["rows"]
            ),
        ),  # fmt: skip
    ]


def operating_table(rows: dict[str, dict[str, Any]], title: str, threshold: float) -> list[str]:
    """Test rows at 0.5 and at the operating point, with intervals, and the uncertain band."""
    at = f"{threshold:.3f}"
    return markdown_table(
        (title, "people", "robots", "people called robot @0.5", f"@{at}")
        + ("robots caught @0.5", f"@{at}", "uncertain: people", "robots", "all"),
        (
            (
                name.replace(" | ", ", "), str(r["n_people"]), str(r["n_robots"]),
                _rate(r, "people_called_half"), _rate(r, "people_called_point"),
                _rate(r, "robots_caught_half"), _rate(r, "robots_caught_point"),
                _pct(r["uncertain_people"]), _pct(r["uncertain_robots"]), _pct(r["uncertain"]),
            )
            for name, r in rows.items()
        ),
    )  # fmt: skip


# The simulated-call rows the model card shows (the calls report shows every cell).
CALLS_OPERATING_HEADLINE = (
    "any robot | both layouts | both languages",
    "any robot | stereo | both languages",
    "any robot | mono | both languages",
    "recorded_robot | stereo | both languages",
    "recorded_robot | mono | both languages",
    "tts_robot | both layouts | both languages",
)


def test_operating_lines(
    result: Result,
    populations: tuple[str, ...],
    *,
    calls_rows: tuple[str, ...] | None = None,
    intro: bool = True,
) -> list[str]:
    """The test tables of ``populations`` (after a paragraph saying what they hold, with
    ``intro``); ``calls_rows``: only these simulated-call cells."""
    test = dict(result.operating["test"])
    if calls_rows is not None and "calls" in test:
        test["calls"] = {k: v for k, v in test["calls"].items() if k in calls_rows}
    titles = {
        "composed": "composed test calls",
        "end_to_end": "end-to-end mixtures",
        "calls": "simulated test calls (robots vs agents)",
    }
    lines = [
        "Before (0.5) and after (the dev-chosen threshold): the share of people called robot "
        "and of robots caught, with 95 % bootstrap intervals over voices (the speaker of a "
        "clip, the caller of a call); and the share of people, robots and all calls in the "
        "uncertain band (the verdict says it cannot tell).",
        "",
    ][: 2 if intro else 0]
    for population in populations:
        if population in test:
            lines += [
                *operating_table(test[population], titles[population], result.model.threshold),
                "",
            ]
    return lines
