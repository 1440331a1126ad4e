"""The evaluation rewrites its own sections of error_rates.json; the loader reads them back."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from models.training.error_rates import update_error_rates
from pipeline.limits import ERROR_RATES_PATH, load_error_rates


def test_each_run_rewrites_its_sections_and_keeps_the_others(tmp_path: Path) -> None:
    path = tmp_path / "error_rates.json"
    shutil.copy(ERROR_RATES_PATH, path)
    before = json.loads(path.read_text())
    update_error_rates(
        {"unseen_engines": {"eer": 0.41234, "source": "docs/evaluation.md"}},
        command="robocall evaluate",
        path=path,
    )
    update_error_rates(
        {"end_to_end": {**before["end_to_end"], "robots_missed": 0.5}},
        command="python -m models.training.train_fusion",
        path=path,
    )
    after = json.loads(path.read_text())
    assert after["composed_calls"] == before["composed_calls"]
    assert after["unseen_engines"]["eer"] == 0.412
    assert "robocall evaluate" in after["generated"] and "train_fusion" in after["generated"]
    load_error_rates.cache_clear()
    rates = load_error_rates(path)
    assert rates is not None
    assert (rates.unseen_engine_eer, rates.e2e_robots_missed) == (0.412, 0.5)


def test_a_missing_file_is_written_whole(tmp_path: Path) -> None:
    path = tmp_path / "error_rates.json"
    update_error_rates({"threshold": 0.5}, command="x", path=path)
    assert json.loads(path.read_text())["schema"] == "robocall-error-rates"


def test_a_rerun_replaces_its_own_entry_in_generated(tmp_path: Path) -> None:
    path = tmp_path / "error_rates.json"
    update_error_rates({"threshold": 0.5}, command="robocall evaluate --no-aasist", path=path)
    for e2e in (25, 50):
        update_error_rates(
            {"threshold": 0.5},
            command=f"python -m models.training.train_fusion --e2e {e2e}",
            path=path,
        )
    assert json.loads(path.read_text())["generated"] == (
        "written by python -m models.training.train_fusion --e2e 50; "
        "written by robocall evaluate --no-aasist"
    )
