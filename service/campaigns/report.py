"""The campaign table and the HTML summary of a batch (``robocall campaigns results.parquet``).

Reads the rows of a results file (campaigns were assigned as the batch ran, see
:func:`service.campaigns.heard_before.assign_campaign`). The HTML comes from the jinja2 template
``templates/campaigns.html.j2`` (autoescaped) and is one self-contained file: charts are matplotlib
PNGs embedded as data URIs, no script, no CDN, so it opens offline and can be mailed.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import datetime as dt
import io
import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from pipeline.files import write_atomic
from pipeline.fingerprint import normalise_text
from service.campaigns.index import EVIDENCE_NAME

TOP_N = 15  # bars in the "top campaigns" and "top caller numbers" charts
TABLE_ROWS = 100  # campaigns listed in the HTML (the CSV/Parquet table has all)
ROBOT = "electronic_sales_robot"
# same in every chart; "uncertain": the verdict could not tell (Verdict.caller_certainty)
COLOURS = {"robot": "#c0392b", "uncertain": "#e6a23c", "human": "#2980b9", "error": "#7f8c8d"}


@dataclass(frozen=True, slots=True)
class CampaignSummary:
    campaign_id: str
    calls: int
    distinct_callers: int
    first_seen: str | None  # ISO 8601 start time of the earliest call (None: no times given)
    last_seen: str | None
    robot_calls: int  # the caller decided a robot
    human_calls: int  # decided a live person
    uncertain_calls: int  # the verdict could not tell (counted in neither of the two above)
    robot_share: float  # robot_calls / calls
    # median share of the caller's speech that replays earlier calls, over the calls matched by
    # audio (None: none was): a robot's calls near 1, a call centre's recorded notice small
    replayed_share: float | None
    topic: str  # most common topic
    top_callers: str  # "number (calls), ..." for the three busiest numbers
    representative_transcript: str  # the most common transcript (the longest on a tie)


def campaign_table(rows: Sequence[dict[str, Any]], *, min_calls: int = 2) -> list[CampaignSummary]:
    """One summary per campaign with at least ``min_calls`` calls, largest first."""
    members: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row.get("campaign_id"):
            members[row["campaign_id"]].append(row)
    out = []
    for campaign_id, calls in members.items():
        if len(calls) < min_calls:
            continue
        times = sorted(r["start_time"] for r in calls if r.get("start_time"))
        callers = Counter(r.get("caller_number") or "unknown" for r in calls)
        kinds = Counter(_caller(r) for r in calls)
        robots = kinds["robot"]
        out.append(
            CampaignSummary(
                campaign_id=campaign_id,
                calls=len(calls),
                distinct_callers=len({r["caller_number"] for r in calls if r.get("caller_number")}),
                first_seen=times[0] if times else None,
                last_seen=times[-1] if times else None,
                robot_calls=robots,
                human_calls=kinds["human"],
                uncertain_calls=kinds["uncertain"],
                robot_share=round(robots / len(calls), 4),
                replayed_share=_median_share(calls),
                topic=Counter(r.get("topic") or "none" for r in calls).most_common(1)[0][0],
                top_callers=", ".join(f"{n} ({c})" for n, c in callers.most_common(3)),
                representative_transcript=_representative(
                    [r.get("transcript") or "" for r in calls]
                ),
            )
        )
    out.sort(key=lambda c: (-c.calls, c.first_seen or "", c.campaign_id))
    return out


def _median_share(calls: Sequence[dict[str, Any]]) -> float | None:
    """Median replayed share of the calls whose verdict holds an audio ``prompt_seen_before``."""
    shares = []
    for row in calls:
        text = row.get("verdict_json") or ""
        if EVIDENCE_NAME not in text:  # most rows: no need to parse
            continue
        for evidence in json.loads(text).get("evidence", ()):
            params = dict(evidence.get("params") or ())
            if evidence.get("name") == EVIDENCE_NAME and params.get("method") == "audio":
                shares.append(float(params.get("share", 1.0)))
    return round(statistics.median(shares), 3) if shares else None


def _representative(transcripts: list[str]) -> str:
    counts = Counter(normalise_text(t) for t in transcripts if t.strip())
    if not counts:
        return ""
    best = max(counts, key=lambda k: (counts[k], len(k)))
    return next(t for t in transcripts if normalise_text(t) == best)


def write_table(path: Path, campaigns: Sequence[CampaignSummary]) -> None:
    """Write the table as CSV, or Parquet when ``path`` ends in ``.parquet``."""
    records = [dataclasses.asdict(c) for c in campaigns]
    names = [f.name for f in dataclasses.fields(CampaignSummary)]
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(
            pa.Table.from_pylist(records) if records else pa.table({n: [] for n in names}), path
        )
        return
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=names)
        writer.writeheader()
        writer.writerows(records)


def write_html(
    path: Path, rows: Sequence[dict[str, Any]], campaigns: Sequence[CampaignSummary], *, title: str
) -> None:
    """A self-contained HTML summary: counts, four charts, the largest campaigns."""
    analysed = [r for r in rows if r.get("status") == "ok"]
    kinds = Counter(_caller(r) for r in analysed)
    facts = [
        ("calls", len(rows)),
        ("analysed", len(analysed)),
        ("errors", len(rows) - len(analysed)),
        ("robot verdicts", kinds["robot"]),
        ("cannot tell (listen before reporting)", kinds["uncertain"]),
        ("campaigns", len(campaigns)),
        ("calls in campaigns", sum(c.calls for c in campaigns)),
    ]
    charts = [
        ("Calls per verdict over time", _chart_over_time(rows, key=_verdict_of)),
        (
            "Calls per topic over time",
            _chart_over_time(analysed, key=lambda r: r.get("topic") or "none"),
        ),
        ("Top campaigns", _chart_top(campaigns)),
        ("Top caller numbers", _chart_callers(analysed)),
    ]
    columns = ("campaign", "calls", "numbers", "first seen", "last seen", "robot share",
               "replayed share of caller speech", "topic", "busiest numbers",
               "representative transcript")  # fmt: skip
    table = [
        (c.campaign_id, c.calls, c.distinct_callers, c.first_seen or "", c.last_seen or "",
         f"{c.robot_share:.0%}", "" if c.replayed_share is None else f"{c.replayed_share:.0%}",
         c.topic, c.top_callers, c.representative_transcript[:300])
        for c in campaigns[:TABLE_ROWS]
    ]  # fmt: skip
    page = _template().render(
        title=title,
        facts=facts,
        charts=[(caption, base64.b64encode(png).decode()) for caption, png in charts if png],
        columns=columns,
        rows=table,
        hidden=max(0, len(campaigns) - TABLE_ROWS),
        generated=f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M}",
    )
    write_atomic(path, page.encode("utf-8"))


def _template() -> jinja2.Template:
    # Autoescaping on: transcripts, topics and numbers come from the calls.
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("service.campaigns", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    return env.get_template("campaigns.html.j2")


def _caller(row: dict[str, Any]) -> str:
    """The verdict's decided caller, from ``caller_certainty``: robot, human or uncertain.

    Rows written before that column read from ``label``, which had no uncertain band then.
    """
    certainty = row.get("caller_certainty")
    if certainty:
        return {"robot": "robot", "uncertain": "uncertain"}.get(str(certainty), "human")
    return "robot" if row.get("label") == ROBOT else "human"


def _verdict_of(row: dict[str, Any]) -> str:
    return _caller(row) if row.get("status") == "ok" else "error"


def _figure() -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(6.4, 3.6), dpi=100)


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _chart_over_time(rows: Sequence[dict[str, Any]], *, key: Any) -> bytes | None:
    """Stacked bars of calls per day (per hour when the calls span under two days)."""
    stamps = [
        (dt.datetime.fromisoformat(r["start_time"]), key(r)) for r in rows if r.get("start_time")
    ]
    if not stamps:
        return None
    span = max(s for s, _ in stamps) - min(s for s, _ in stamps)
    hourly = span < dt.timedelta(days=2)
    fmt = "%m-%d %H:00" if hourly else "%Y-%m-%d"
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for stamp, group in stamps:
        counts[stamp.strftime(fmt)][group] += 1
    buckets = sorted(counts)
    groups = [g for g, _ in Counter(g for _, g in stamps).most_common(8)]
    fig, ax = _figure()
    bottom = [0] * len(buckets)
    for group in groups:
        heights = [counts[b][group] for b in buckets]
        ax.bar(buckets, heights, bottom=bottom, label=group, color=COLOURS.get(group))
        bottom = [x + h for x, h in zip(bottom, heights, strict=True)]
    ax.set_ylabel("calls")
    ax.set_xlabel("start hour (UTC)" if hourly else "start day (UTC)")
    ax.tick_params(axis="x", labelrotation=60, labelsize=7)
    ax.legend(fontsize=7)
    return _png(fig)


def _chart_top(campaigns: Sequence[CampaignSummary]) -> bytes | None:
    top = list(campaigns[:TOP_N])[::-1]
    if not top:
        return None
    fig, ax = _figure()
    names = [f"{c.campaign_id} ({c.topic})" for c in top]
    _stacked(ax, names, {"robot": [c.robot_calls for c in top],
                         "uncertain": [c.uncertain_calls for c in top],
                         "human": [c.human_calls for c in top]})  # fmt: skip
    ax.set_xlabel("calls")
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(fontsize=7)
    return _png(fig)


def _stacked(ax: Any, names: Sequence[str], counts: dict[str, list[int]]) -> None:
    """Horizontal bars stacked in the order of ``counts``, each kind in its colour."""
    left = [0] * len(names)
    for kind, values in counts.items():
        ax.barh(names, values, left=left, label=kind, color=COLOURS[kind])
        left = [a + b for a, b in zip(left, values, strict=True)]


def _chart_callers(rows: Sequence[dict[str, Any]]) -> bytes | None:
    per: dict[str, Counter[str]] = defaultdict(Counter)
    for r in rows:
        if r.get("caller_number"):
            per[r["caller_number"]][_verdict_of(r)] += 1
    if not per:
        return None
    top = sorted(per, key=lambda n: (-sum(per[n].values()), n))[:TOP_N][::-1]
    fig, ax = _figure()
    _stacked(ax, top, {k: [per[n][k] for n in top] for k in ("robot", "uncertain", "human")})
    ax.set_xlabel("calls")
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(fontsize=7)
    return _png(fig)
