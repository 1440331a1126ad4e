"""The pure helpers of bench/aasist_window_lead.py (the bench itself runs two head files)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.bench.support import load_bench

B = load_bench("aasist_window_lead")


def test_quiet_goes_in_front_at_the_line_s_level() -> None:
    clip = np.ones(B.SR, dtype=np.float32)
    out = B.quiet_in_front(clip, 2.0, np.random.default_rng(0))
    assert out.size == 3 * B.SR and np.array_equal(out[-B.SR :], clip)
    level = 20 * np.log10(np.std(out[: 2 * B.SR]))
    assert level == pytest.approx(B.NOISE_DBFS, abs=0.2)


def test_the_table_compares_both_windows_per_language_and_lead() -> None:
    scores = []
    for i, (label, lang) in enumerate([("robot", "en"), ("human", "en")] * 2):
        for lead in B.LEADS_S:
            shift = lead * (1 if label == "robot" else -1)
            scores.append(
                {"id": f"c{i}", "label": label, "lang": lang, "lead": lead}
                | {"before": 1.0 + shift if label == "robot" else -1.0 + shift}
                | {"after": 1.0 if label == "robot" else -1.0}
            )
    lines = B.table(scores)
    en = [line for line in lines if line.startswith("| en")]
    assert not any(line.startswith("| zh") for line in lines)  # no Mandarin clip here
    assert len(en) == 3 and en[0].startswith("| en (2 robots, 2 people) | 0 | 1.000 | 1.000 | 0.00")
    assert en[2].endswith("| 5.00 | 0.00 |")
