"""Risk-weighted sampling from call detail records (``robocall batch --sample-by-risk F``).

A carrier has a call detail record (CDR) for every call and audio for few. The manifest's
metadata alone (caller, callee, start time, duration) says which caller numbers behave like an
auto-dialer; the audio budget goes to those first, and a seeded uniform share keeps an unbiased
estimate of the robot rate of all the calls.

**Design.** ``F`` of the ``N`` calls are analysed (``n = round(F N)``), split in two strata:

- the **risk stratum** ``R``: the calls of the riskiest caller numbers (highest
  :func:`number_risks` score first, at most ``max_calls_per_number`` calls of each, drawn by a
  seeded hash) until ``n - n_u`` calls; it is fixed by the CDRs, so it is a census: its robots
  are counted, not estimated;
- the **uniform stratum**: a simple random sample (seeded) of ``n_u = uniform_share x n`` of the
  other ``N_U = N - |R|`` calls.

The robot count is ``robots(R) + N_U x p_U`` with ``p_U`` the robot share of the uniform sample:
unbiased for any risk score (a census plus a simple random sample; a stratified estimator with
one stratum fully observed). Its 95 % interval is the Wilson score interval of ``p_U`` moved to
the rate; Wilson because robots can be rare among the rest, where the normal interval covers
too little. ``tests/service/batch/test_risk.py`` checks the coverage over many seeds.

**The score** (hand-set: there are no labelled CDRs to fit it on) per caller number, from its
calls in the manifest::

    ln(1 + peak calls in one hour) x (0.5 + distinct callees / calls)
      + 2 x share of calls under 10 s x min(1, calls / 10)
      + 3 x share of sequential callees (consecutive in time, numbers within 100)
      + share of calls at night (22:00-08:00 at ``tz_offset_h``) x min(1, calls / 10)

Volume times spread is what an auto-dialer does (one agent cannot place 80 calls an hour to 80
people); short calls are people hanging up on a recording; sequential callees are a dialer
walking a number range; night calls are what a person rarely does. Shares count only with
enough calls (a single 5 s call says little).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from service.batch.inputs import CallRecord

SHORT_CALL_S = 10.0  # a call shorter than this counts as short (hang-up on a recording)
SEQUENTIAL_WITHIN = 100  # callee numbers this close, one after the other, count as sequential
NIGHT_HOURS = frozenset((22, 23, 0, 1, 2, 3, 4, 5, 6, 7))  # local time

Stratum = Literal["risk", "uniform"]


@dataclass(frozen=True, slots=True)
class NumberRisk:
    """What the CDRs say about one caller number, and its score (see the module doc)."""

    caller_number: str
    calls: int
    peak_calls_per_hour: int
    distinct_callee_share: float  # distinct callees / calls
    short_share: float  # calls under SHORT_CALL_S (with a known duration)
    sequential_share: float  # consecutive calls to numbers within SEQUENTIAL_WITHIN
    night_share: float  # calls in NIGHT_HOURS, local time
    score: float


@dataclass(frozen=True, slots=True)
class RiskSample:
    """The calls to analyse, their strata, and the sizes the estimate needs."""

    calls: tuple[CallRecord, ...]  # in input order
    strata: Mapping[str, Stratum]  # call_id -> stratum
    population: int  # N: calls in the manifest
    rest: int  # N_U: calls outside the risk stratum
    risks: tuple[NumberRisk, ...]  # every caller number, riskiest first


@dataclass(frozen=True, slots=True)
class RateEstimate:
    """The robot rate of all the calls in the manifest, with its 95 % interval."""

    rate: float
    low: float
    high: float
    robots_in_risk_stratum: int  # counted
    risk_calls: int  # analysed without error
    uniform_robots: int
    uniform_calls: int  # analysed without error
    population: int

    def to_dict(self) -> dict[str, object]:
        return {
            "robot_rate": round(self.rate, 6),
            "ci95": [round(self.low, 6), round(self.high, 6)],
            "estimated_robot_calls": round(self.rate * self.population, 1),
            "risk_stratum": {"calls": self.risk_calls, "robots": self.robots_in_risk_stratum},
            "uniform_sample": {"calls": self.uniform_calls, "robots": self.uniform_robots},
            "population": self.population,
            "method": "census of the risk stratum + simple random sample of the rest, "
            "Wilson 95 % interval with finite-population correction",
        }


def number_risks(calls: Sequence[CallRecord], *, tz_offset_h: float = 8.0) -> list[NumberRisk]:
    """Score every caller number of ``calls`` from its CDRs; riskiest first.

    Calls without a caller number are one group (``""``); without a start time they count for
    volume and spread but not for the hourly peak, night or sequence.
    """
    by_number: dict[str, list[CallRecord]] = defaultdict(list)
    for call in calls:
        by_number[call.caller_number or ""].append(call)
    risks = [_risk(number, group, tz_offset_h) for number, group in by_number.items()]
    return sorted(risks, key=lambda r: (-r.score, r.caller_number))


def _risk(number: str, group: list[CallRecord], tz_offset_h: float) -> NumberRisk:
    n = len(group)
    stamps = [(_epoch(c.start_time), c) for c in group]
    timed = sorted(((t, c) for t, c in stamps if t is not None), key=lambda tc: tc[0])
    hours = [int(t // 3600) for t, _ in timed]
    peak = max(np.unique(hours, return_counts=True)[1], default=0) if hours else 0
    distinct = len({c.callee_number for c in group if c.callee_number}) / n
    durations = [c.duration_s for c in group if c.duration_s is not None]
    short = sum(d < SHORT_CALL_S for d in durations) / len(durations) if durations else 0.0
    callees = [_digits(c.callee_number) for _, c in timed]
    pairs = [(a, b) for a, b in zip(callees, callees[1:], strict=False) if a and b]
    sequential = (
        sum(0 < abs(b - a) <= SEQUENTIAL_WITHIN for a, b in pairs) / len(pairs) if pairs else 0.0
    )
    local_hours = [int(((t / 3600.0) + tz_offset_h) % 24) for t, _ in timed]
    night = sum(h in NIGHT_HOURS for h in local_hours) / len(local_hours) if local_hours else 0.0
    weight = min(1.0, n / 10)
    score = (
        math.log1p(peak) * (0.5 + distinct)
        + 2.0 * short * weight
        + 3.0 * sequential
        + night * weight
    )
    return NumberRisk(number, n, int(peak), distinct, short, sequential, night, round(score, 6))


def _epoch(iso: str | None) -> float | None:
    return dt.datetime.fromisoformat(iso).timestamp() if iso else None


_DIGITS = re.compile(r"\d+")


def _digits(number: str | None) -> int | None:
    digits = "".join(_DIGITS.findall(number or ""))
    return int(digits) if digits else None


def sample_by_risk(
    calls: Sequence[CallRecord],
    fraction: float,
    *,
    seed: int = 0,
    uniform_share: float = 0.2,
    max_calls_per_number: int = 25,
    tz_offset_h: float = 8.0,
    risks: Sequence[NumberRisk] | None = None,
) -> RiskSample:
    """Spend ``fraction`` of the calls on the riskiest numbers, keeping a uniform share.

    Parameters
    ----------
    calls : sequence of CallRecord
        Every call of the manifest (its CDR fields are what is scored).
    fraction : float
        The audio budget, in (0, 1]: ``round(fraction x len(calls))`` calls are analysed.
    seed : int
        Draws the uniform sample and which calls of a risky number are taken; same seed, same
        sample.
    uniform_share : float
        Part of the budget drawn uniformly from the calls outside the risk stratum, in (0, 1]
        (1 = plain uniform sampling). The narrower the interval wanted, the larger.
    max_calls_per_number : int
        Calls of one number in the risk stratum (a few prove a robot; the rest of the budget
        goes to the next numbers).
    tz_offset_h : float
        Local time of the callers, hours from UTC (night calls).
    risks : sequence of NumberRisk, optional
        :func:`number_risks` of these calls, when already computed (several draws of one day).

    Returns
    -------
    RiskSample
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"--sample-by-risk must be in (0, 1], got {fraction}")
    if not 0.0 < uniform_share <= 1.0:
        raise ValueError(f"uniform share must be in (0, 1], got {uniform_share}")
    if max_calls_per_number < 1:
        raise ValueError(f"max calls per number must be >= 1, got {max_calls_per_number}")
    budget = round(fraction * len(calls))
    n_uniform = min(budget, max(1, round(uniform_share * budget))) if budget else 0
    if risks is None:
        risks = number_risks(calls, tz_offset_h=tz_offset_h)
    by_number: dict[str, list[CallRecord]] = defaultdict(list)
    for call in calls:
        by_number[call.caller_number or ""].append(call)
    strata: dict[str, Stratum] = {}
    room = budget - n_uniform
    for risk in risks:
        if room <= 0:
            break
        group = sorted(
            by_number[risk.caller_number], key=lambda c: _rank(seed, "number", c.call_id)
        )
        for call in group[: min(room, max_calls_per_number)]:
            strata[call.call_id] = "risk"
            room -= 1
    rest = [c for c in calls if c.call_id not in strata]
    # Another hash than for the calls of a number: with the same one, the calls a risky number
    # kept out of the risk stratum would be those ranked last, and never drawn here (biased).
    for call in sorted(rest, key=lambda c: _rank(seed, "uniform", c.call_id))[:n_uniform]:
        strata[call.call_id] = "uniform"
    chosen = tuple(c for c in calls if c.call_id in strata)
    return RiskSample(chosen, strata, len(calls), len(rest), tuple(risks))


def _rank(seed: int, kind: str, key: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}\0{kind}\0{key}".encode()).digest()[:8], "big")


def estimate_robot_rate(sample: RiskSample, robot: Mapping[str, bool]) -> RateEstimate | None:
    """The robot rate of all ``sample.population`` calls from the analysed sample.

    Parameters
    ----------
    sample : RiskSample
    robot : mapping
        ``call_id`` -> whether the call was judged a robot, for the calls analysed without
        error (error rows are left out: taken as missing at random within their stratum).

    Returns
    -------
    RateEstimate or None
        None when no call of the uniform sample was analysed (no unbiased estimate).
    """
    risk = [robot[i] for i, s in sample.strata.items() if s == "risk" and i in robot]
    uniform = [robot[i] for i, s in sample.strata.items() if s == "uniform" and i in robot]
    if not uniform:
        return None
    risk_total = sum(s == "risk" for s in sample.strata.values())
    # Risk-stratum calls that failed are estimated from the others of that stratum.
    robots_risk = sum(risk) * risk_total / len(risk) if risk else 0.0
    n, hits = len(uniform), sum(uniform)
    low, high = wilson_interval(hits, n)
    total = sample.population
    return RateEstimate(
        rate=(robots_risk + sample.rest * hits / n) / total,
        low=(robots_risk + sample.rest * low) / total,
        high=(robots_risk + sample.rest * high) / total,
        robots_in_risk_stratum=sum(risk),
        risk_calls=len(risk),
        uniform_robots=hits,
        uniform_calls=n,
        population=total,
    )


def wilson_interval(hits: int, n: int) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion (``scipy.stats.binomtest``). Without the
    finite-population correction: the uniform sample is a small part of the rest of the calls,
    and leaving it out only widens the interval."""
    from scipy.stats import binomtest

    ci = binomtest(hits, n).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)
