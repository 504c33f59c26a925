"""benchmarks/train_time.py: the recipe's step times, projected to its wall time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.benchmarks import benchmark_script
from tests.train.test_train_cli import tiny_recipe  # noqa: F401 (the fixture)


def test_step_seconds_are_read_from_the_loop_log(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    rows = [{"stage": "s", "step": i, "loss": 1.0, "lr": 0.1, "seconds": 0.5 * i} for i in range(3)]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with benchmark_script("train_time") as script:
        assert script.step_seconds(log) == [0.0, 0.5, 1.0]


@pytest.mark.slow
def test_it_projects_every_part_of_the_recipe(assets: Path, tiny_recipe, capsys) -> None:  # noqa: F811
    with benchmark_script("train_time") as script:
        assert script.main(["--steps", "2", "--no-write"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for part in ("vision tower", "longva stage1", "longva stage2", "longva stage3", "all"):
        assert part in out
