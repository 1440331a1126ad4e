"""Risk-weighted vs uniform sampling on a simulated day of call detail records.

    .venv/bin/python bench/risk_sampling.py [--seed 0] [--draws 200]

Simulates one day (``tests/service/batch/cdr_sim.py``: ordinary callers, call centres with
human agents, robot campaigns, snowshoe robots), then for each audio budget F draws the
risk-weighted sample (``service.batch.risk.sample_by_risk``, defaults: 20 % uniform share, 25
calls per number) and the uniform sample of ``robocall batch --sample`` (stratified by caller
number) with the same seed, and prints the robot calls and robot numbers each finds. With the
ground-truth labels standing in for the detector's verdicts, it then repeats the risk-weighted
draw ``--draws`` times (seeds 0..draws-1) and prints the mean of the robot-rate estimates, the
spread, and how often the 95 % interval held the true rate.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from service.batch.inputs import sample_calls  # noqa: E402
from service.batch.risk import estimate_robot_rate, number_risks, sample_by_risk  # noqa: E402
from tests.service.batch.cdr_sim import simulate_day  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="the simulated day")
    parser.add_argument("--budgets", default="0.01,0.02,0.05")
    parser.add_argument("--draws", type=int, default=200)
    args = parser.parse_args()

    started = time.perf_counter()
    day = simulate_day(args.seed)
    robots = sum(day.robot.values())
    robot_numbers = {c.caller_number for c in day.calls if day.robot[c.call_id]}
    numbers = len({c.caller_number for c in day.calls})
    print(f"day: {len(day.calls)} calls, {robots} by robots ({day.robot_rate:.2%}) from "
          f"{len(robot_numbers)} of {numbers} numbers")  # fmt: skip
    risks = number_risks(day.calls)
    print(
        f"scoring {len(risks)} numbers: {time.perf_counter() - started:.1f} s (with the simulation)"
    )
    print(
        "| budget F | calls | robots found, risk-weighted | robots found, uniform | ratio "
        "| robot numbers, risk / uniform | estimate (95 % CI) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for fraction in (float(f) for f in args.budgets.split(",")):
        risky = sample_by_risk(day.calls, fraction, seed=args.seed, risks=risks)
        uniform = sample_calls(day.calls, fraction, seed=args.seed)
        found = sum(day.robot[c.call_id] for c in risky.calls)
        base = sum(day.robot[c.call_id] for c in uniform)
        numbers = len({c.caller_number for c in risky.calls if day.robot[c.call_id]})
        base_numbers = len({c.caller_number for c in uniform if day.robot[c.call_id]})
        estimate = estimate_robot_rate(
            risky, {c.call_id: day.robot[c.call_id] for c in risky.calls}
        )
        assert estimate is not None
        print(f"| {fraction:.0%} | {len(risky.calls)} | {found} | {base} | "
              f"{found / max(1, base):.1f}x | {numbers} / {base_numbers} | {estimate.rate:.2%} "
              f"({estimate.low:.2%}-{estimate.high:.2%}) |")  # fmt: skip
    for fraction in (float(f) for f in args.budgets.split(",")):
        rates, covered = [], 0
        for seed in range(args.draws):
            sample = sample_by_risk(day.calls, fraction, seed=seed, risks=risks)
            labels = {c.call_id: day.robot[c.call_id] for c in sample.calls}
            estimate = estimate_robot_rate(sample, labels)
            assert estimate is not None
            rates.append(estimate.rate)
            covered += estimate.low <= day.robot_rate <= estimate.high
        print(f"F={fraction:.0%}, {args.draws} draws: mean estimate {statistics.fmean(rates):.3%} "
              f"(true {day.robot_rate:.3%}), sd {statistics.stdev(rates):.3%}, "
              f"95 % interval held the true rate in {covered / args.draws:.1%}")  # fmt: skip


if __name__ == "__main__":
    main()
