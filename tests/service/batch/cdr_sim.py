"""A simulated day of call detail records: ordinary traffic with a few robot campaigns.

Seeded; every call gets a ``CallRecord`` (path ``sim://<call_id>``, no audio) and a ground-truth
label. Used by ``tests/service/batch/test_risk.py`` and ``bench/risk_sampling.py``.

Who calls (local time UTC+8, the day of 2026-03-02):

- **people**: ``people`` numbers, each 1-6 calls (geometric), mostly 08:00-22:00, to mostly
  different people with a few repeats, lasting minutes (log-normal, median 100 s, some under 10 s);
- **businesses with human agents** (hard negatives): ``call_centres`` numbers placing 15-40
  calls an hour in office hours to distinct customers, 40 % of them under 10 s (no answer,
  voicemail), callees not sequential;
- **robot campaigns**: ``campaigns`` campaigns, each dialling from 3-12 numbers; a number places
  20-120 calls an hour for 1-3 hours, half of them short (people hang up on the recording),
  walking a number block (sequential callees, skipping some), some into the evening;
- **snowshoe robots** (hard positives): ``snowshoe_numbers`` numbers of one more campaign, each
  placing only 1-4 calls, like a person would.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from service.batch.inputs import CallRecord

DAY0_UTC = dt.datetime(2026, 3, 1, 16, 0, tzinfo=dt.UTC)  # 2026-03-02 00:00 at UTC+8


@dataclass(frozen=True)
class SimulatedDay:
    calls: list[CallRecord]  # in start-time order
    robot: dict[str, bool]  # call_id -> placed by a robot

    @property
    def robot_rate(self) -> float:
        return sum(self.robot.values()) / len(self.robot)


def simulate_day(
    seed: int = 0,
    *,
    people: int = 20_000,
    call_centres: int = 40,
    campaigns: int = 5,
    snowshoe_numbers: int = 300,
) -> SimulatedDay:
    rng = np.random.default_rng(seed)
    raw: list[tuple[float, str, str, float, bool]] = []  # (hour, caller, callee, duration, robot)

    def person_number() -> str:
        return f"+861{int(rng.integers(30, 90))}{int(rng.integers(10**8)):08d}"

    for _ in range(people):
        caller = person_number()
        contacts = [person_number() for _ in range(3)]
        for _ in range(int(rng.geometric(0.4))):
            hour = float(np.clip(rng.normal(14.5, 3.5), 0, 23.99))
            callee = contacts[int(rng.integers(3))] if rng.random() < 0.5 else person_number()
            duration = float(rng.lognormal(np.log(100), 1.0))
            raw.append((hour, caller, callee, duration, False))
    for _ in range(call_centres):
        caller = f"+86400{int(rng.integers(10**7)):07d}"
        start = float(rng.uniform(9, 11))
        for hour_index in range(int(rng.integers(4, 8))):
            for _ in range(int(rng.integers(15, 41))):
                hour = start + hour_index + float(rng.random())
                short = rng.random() < 0.4
                duration = float(rng.uniform(2, 10) if short else rng.lognormal(np.log(150), 0.6))
                raw.append((min(hour, 23.99), caller, person_number(), duration, False))
    for _ in range(campaigns):
        block = int(rng.integers(10**7, 9 * 10**7))
        start = float(rng.uniform(9, 17))
        for _ in range(int(rng.integers(3, 13))):
            caller = f"+86{int(rng.integers(150, 190))}{int(rng.integers(10**8)):08d}"
            rate = int(rng.integers(20, 121))
            hours = float(rng.uniform(1, 3))
            for k in range(int(rate * hours)):
                block += int(rng.integers(1, 4))
                hour = start + hours * k / (rate * hours) + float(rng.uniform(0, 0.2))
                short = rng.random() < 0.5
                duration = float(rng.uniform(1, 9) if short else rng.uniform(15, 70))
                raw.append((min(hour, 23.99), caller, f"+861{block:010d}", duration, True))
    for _ in range(snowshoe_numbers):
        caller = person_number()
        for _ in range(int(rng.integers(1, 5))):
            hour = float(rng.uniform(9, 20))
            short = rng.random() < 0.5
            duration = float(rng.uniform(1, 9) if short else rng.uniform(15, 60))
            raw.append((hour, caller, person_number(), duration, True))
    raw.sort(key=lambda r: r[0])
    calls, robot = [], {}
    for i, (hour, caller, callee, duration, is_robot) in enumerate(raw):
        call_id = f"cdr-{i:07d}"
        start = DAY0_UTC + dt.timedelta(hours=hour)
        calls.append(
            CallRecord(
                call_id=call_id,
                path=f"sim://{call_id}",
                seq=i,
                caller_number=caller,
                callee_number=callee,
                start_time=start.isoformat(),
                duration_s=round(duration, 1),
            )
        )
        robot[call_id] = is_robot
    return SimulatedDay(calls, robot)
