"""How long `make train-mini` takes on this machine (issue 9, point 5: a few hours on 2 cores).

Runs each part of the longvid-mini recipe (`longvid.train.mini.RECIPE`) for a few steps with
the recipe's batch sizes, data and options, stage 3 as this machine would run it
(`longvid.train.mini.recipe_stage`: cut where there is no GPU), and projects the whole
recipe from the median step time the training loop logs: the vision tower, then stages 1-3
of each compressor named. Loading and packaging time is measured too (the run's wall time
less its steps). The section ``## Training time of the recipe (benchmarks/train_time.py)``
of docs/benchmarks.md is replaced unless ``--no-write``.

    python benchmarks/train_time.py [--steps 8] [--compressors longva]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _docs import write_table_section  # noqa: E402

from longvid.train.cli import train_compressor_package, train_vision  # noqa: E402
from longvid.train.mini import RECIPE, recipe_stage  # noqa: E402

HEADING = "## Training time of the recipe (benchmarks/train_time.py)"
COLUMNS = ["part", "recipe steps", "x batch", "s per step (median)", "projected minutes"]
STAGES = ("stage1", "stage2", "stage3")


def step_seconds(log: Path) -> list[float]:
    """Each step's wall time from a training loop's ``log.jsonl``."""
    return [json.loads(line)["seconds"] for line in log.read_text().splitlines()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8, help="Steps run of each part.")
    parser.add_argument("--compressors", nargs="+", default=["longva"])
    parser.add_argument("--no-write", action="store_true", help="Leave docs/benchmarks.md.")
    args = parser.parse_args(argv)
    console = Console()
    rows: list[list[str]] = []
    total = 0.0
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        vision = RECIPE["vision"]
        clock = time.perf_counter()
        train_vision(
            work / "out", work / "vision", eval_images=8, **{**vision, "steps": args.steps}
        )
        overhead = time.perf_counter() - clock - sum(step_seconds(work / "vision" / "log.jsonl"))
        median = statistics.median(step_seconds(work / "vision" / "log.jsonl"))
        minutes = (vision["steps"] * median + overhead) / 60
        total += minutes
        rows.append(
            ["vision tower", str(vision["steps"]), str(vision["batch_size"]), f"{median:.2f}",
             f"{minutes:.0f}"]
        )  # fmt: skip
        console.print(rows[-1])
        for compressor in args.compressors:
            stages = [replace(recipe_stage(s), steps=args.steps) for s in STAGES]
            clock = time.perf_counter()
            train_compressor_package(
                compressor,
                work / "out" / "tower.safetensors",
                work / compressor,
                work / "out" / compressor,
                *stages,
            )
            logs = [work / compressor / stage / "log.jsonl" for stage in STAGES]
            overhead = time.perf_counter() - clock - sum(sum(step_seconds(p)) for p in logs)
            for stage, log in zip(STAGES, logs, strict=True):
                recipe = recipe_stage(stage)
                median = statistics.median(step_seconds(log))
                minutes = recipe.steps * median / 60
                total += minutes
                rows.append(
                    [f"{compressor} {stage}", str(recipe.steps), str(recipe.batch),
                     f"{median:.2f}", f"{minutes:.0f}"]
                )  # fmt: skip
                console.print(rows[-1])
            total += overhead / 60
            rows.append([f"{compressor} loading, packaging", "-", "-", "-", f"{overhead / 60:.1f}"])
    rows.append(["all", "-", "-", "-", f"**{total:.0f}** ({total / 60:.1f} h)"])
    table = Table(title="the longvid-mini recipe on this machine, projected")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column == "part" else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    if not args.no_write:
        gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
        command = f"python benchmarks/train_time.py --steps {args.steps} "
        command += f"--compressors {' '.join(args.compressors)}"
        text = f"{gpu}. Each part of the recipe run for {args.steps} steps with its batch, "
        text += "data and options (stage 3 as `recipe_stage` sizes it for this machine), the "
        text += "median step time times the recipe's steps; loading and packaging as measured "
        text += "(the vision row includes them, and its 8-scene retrieval check)."
        write_table_section(HEADING, command, text, COLUMNS, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
