"""Risk-weighted sampling from CDRs: more robots for the same budget, an unbiased rate estimate."""

from __future__ import annotations

import statistics

import pytest

from service.batch.inputs import CallRecord, sample_calls
from service.batch.risk import (
    estimate_robot_rate,
    number_risks,
    sample_by_risk,
    wilson_interval,
)
from tests.service.batch.cdr_sim import SimulatedDay, simulate_day


@pytest.fixture(scope="module")
def day() -> SimulatedDay:
    """A smaller day than the bench's (about 15,000 calls), same kinds of callers."""
    return simulate_day(3, people=4_000, call_centres=12, campaigns=3, snowshoe_numbers=80)


def test_the_same_budget_finds_at_least_three_times_the_robots(day: SimulatedDay) -> None:
    for fraction in (0.01, 0.05):
        risky = sample_by_risk(day.calls, fraction, seed=5)
        uniform = sample_calls(day.calls, fraction, seed=5)
        assert len(risky.calls) == len(uniform)
        found = sum(day.robot[c.call_id] for c in risky.calls)
        baseline = sum(day.robot[c.call_id] for c in uniform)
        assert found >= 3 * baseline, (fraction, found, baseline)


def test_the_riskiest_numbers_are_the_dialers(day: SimulatedDay) -> None:
    risks = number_risks(day.calls)
    robot_numbers = {c.caller_number for c in day.calls if day.robot[c.call_id]}
    top = [r.caller_number for r in risks[:10]]
    assert all(n in robot_numbers for n in top)
    assert all(0.0 <= r.short_share <= 1.0 and 0.0 <= r.sequential_share <= 1.0 for r in risks)


def test_the_rate_estimate_is_unbiased_and_its_interval_covers_95_percent(
    day: SimulatedDay,
) -> None:
    """Design-based: one day, 400 draws; the truth is the robot share of that day's calls."""
    risks = number_risks(day.calls)
    truth = day.robot_rate
    estimates, covered = [], 0
    for seed in range(400):
        sample = sample_by_risk(day.calls, 0.05, seed=seed, risks=risks)
        labels = {c.call_id: day.robot[c.call_id] for c in sample.calls}
        estimate = estimate_robot_rate(sample, labels)
        assert estimate is not None and estimate.low <= estimate.rate <= estimate.high
        estimates.append(estimate.rate)
        covered += estimate.low <= truth <= estimate.high
    spread = statistics.stdev(estimates)
    assert abs(statistics.fmean(estimates) - truth) < 3 * spread / len(estimates) ** 0.5
    assert 0.92 <= covered / len(estimates) <= 0.99


def test_error_rows_are_left_out_and_no_uniform_rows_means_no_estimate(day: SimulatedDay) -> None:
    sample = sample_by_risk(day.calls, 0.02, seed=1)
    labels = {c.call_id: day.robot[c.call_id] for c in sample.calls}
    uniform = [i for i, s in sample.strata.items() if s == "uniform"]
    assert estimate_robot_rate(sample, {i: labels[i] for i in labels if i not in uniform}) is None
    some = {i: v for n, (i, v) in enumerate(labels.items()) if n % 7}  # every 7th call failed
    estimate = estimate_robot_rate(sample, some)
    assert estimate is not None
    assert estimate.uniform_calls + estimate.risk_calls == len(some)


def test_sampling_is_reproducible_exact_in_size_and_validated(day: SimulatedDay) -> None:
    a = sample_by_risk(day.calls, 0.03, seed=9)
    b = sample_by_risk(day.calls, 0.03, seed=9)
    c = sample_by_risk(day.calls, 0.03, seed=10)
    assert a.calls == b.calls and a.calls != c.calls
    assert len(a.calls) == round(0.03 * len(day.calls))
    assert [x.seq for x in a.calls] == sorted(x.seq for x in a.calls)  # input order
    shares = list(a.strata.values())
    assert shares.count("uniform") == round(0.2 * len(a.calls))
    per_number: dict[str | None, int] = {}
    for call in a.calls:
        if a.strata[call.call_id] == "risk":
            per_number[call.caller_number] = per_number.get(call.caller_number, 0) + 1
    assert max(per_number.values()) <= 25
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="sample-by-risk"):
            sample_by_risk(day.calls, bad)
    with pytest.raises(ValueError, match="uniform share"):
        sample_by_risk(day.calls, 0.1, uniform_share=0.0)


def test_a_census_has_no_sampling_error() -> None:
    calls = [CallRecord(call_id=f"c{i}", path="x", seq=i, caller_number=f"+86{i % 4}")
             for i in range(40)]  # fmt: skip
    sample = sample_by_risk(calls, 1.0, uniform_share=1.0)
    assert len(sample.calls) == 40
    labels = {c.call_id: c.seq % 4 == 0 for c in calls}
    estimate = estimate_robot_rate(sample, labels)
    assert estimate is not None and estimate.rate == pytest.approx(0.25)
    low, high = wilson_interval(10, 40)
    assert low < 0.25 < high
