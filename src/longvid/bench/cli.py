"""``longvid bench``: the V-NIAH and text NIAH grids from the command line.

LongVA (Zhang et al. 2024) §4 / Figure 4 protocol via `longvid.bench.vniah` and
`longvid.bench.textniah`, both on the one grid runner of `longvid.bench.grid`. Each command
writes ``results.jsonl`` (one line per scored cell, resumable), ``heatmap.png`` and
``run.json`` (the settings; a rerun into the same folder with other settings is refused, so
results of different runs never mix) into ``--out`` and prints the accuracy table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from longvid.console import err as _err
from longvid.console import fail
from longvid.errors import ConfigError, LongvidError

__all__ = ["bench_app"]

bench_app = typer.Typer(
    help="Benchmarks: V-NIAH and text NIAH grids (resumable; heatmap + table).",
    no_args_is_help=True,
    add_completion=False,
)
_out = Console()


def _check_settings(folder: Path, settings: dict[str, Any]) -> None:
    """Write ``run.json``, or refuse when the folder holds results made with other settings."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = folder / "run.json"
    if stamp.exists() and (folder / "results.jsonl").exists():
        before = json.loads(stamp.read_text(encoding="utf-8"))
        fixed = {k: v for k, v in before.items() if k not in ("frames", "depths", "lengths")}
        now = {k: v for k, v in settings.items() if k not in ("frames", "depths", "lengths")}
        if fixed != now:
            raise ConfigError(
                f"holds results made with other settings ({fixed}); use another --out", folder
            )
    stamp.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")


def _run(task: Any, folder: Path, progress: bool, title: str) -> None:
    from longvid.bench.grid import load_results, run_grid, summary_table, write_heatmap

    results = folder / "results.jsonl"
    interrupted = False
    try:
        run_grid(task, results, progress=progress)
    except KeyboardInterrupt:
        interrupted = True
    key = task.size_key
    records = [r for r in load_results(results) if key in r]
    wanted = {(c.size, c.depth) for c in task.cells()}
    records = [r for r in records if (int(r[key]), float(r["depth"])) in wanted]
    if records:
        heatmap = write_heatmap(
            records, folder / "heatmap.png", size_key=key, size_label=task.size_label, title=title
        )
        _out.print(summary_table(records, size_key=key, title=title))
        _out.print(f"results: {results}\nheatmap: {heatmap}")
    if interrupted:
        _err.print(
            f"[bold yellow]interrupted:[/] {len(records)} of {len(wanted)} cells saved in "
            f"{results}; rerun the same command to finish"
        )
        raise typer.Exit(code=130)


@bench_app.command("vniah")
def vniah_command(
    model: Annotated[str, typer.Option(help="Registered model name or checkpoint folder.")] = (
        "tiny-longva"
    ),
    compressor: Annotated[
        str | None, typer.Option(help="Compressor to use instead of the model's own.")
    ] = None,
    frames: Annotated[str, typer.Option(help="Frame counts start:stop:step (stop included).")] = (
        "200:3000:200"
    ),
    depths: Annotated[str, typer.Option(help="Depths start:stop:step (stop included).")] = (
        "0:1:0.2"
    ),
    out: Annotated[Path, typer.Option(help="Folder for results.jsonl and heatmap.png.")] = Path(
        "results/vniah"
    ),
    video: Annotated[
        list[Path] | None,
        typer.Option(help="Haystack video (repeatable); default: the asset footage."),
    ] = None,
    reference_scalar_pad: Annotated[
        bool, typer.Option(help="Score like the reference: scalar-pad vectors, zigzag shards.")
    ] = False,
    world: Annotated[int, typer.Option(help="Shards for --reference-scalar-pad.")] = 1,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    throttle: Annotated[float, typer.Option(hidden=True)] = 0.0,
) -> None:
    """V-NIAH (LongVA): find a rendered needle frame in a long haystack; frames x depth grid."""
    from longvid.bench.grid import depth_range, int_range
    from longvid.bench.vniah import VNIAHTask
    from longvid.generate import load_model

    try:
        frame_list, depth_list = int_range(frames), depth_range(depths)
        _check_settings(
            out,
            {
                "task": "vniah",
                "model": model,
                "compressor": compressor,
                "videos": [str(v) for v in video or []],
                "reference_scalar_pad": reference_scalar_pad,
                "world": world,
                "frames": frames,
                "depths": depths,
            },
        )
        lm = load_model(model)
        task = VNIAHTask(
            lm,
            frame_list,
            depth_list,
            videos=video or None,
            compressor=compressor,
            reference_scalar_pad=reference_scalar_pad,
            world=world,
            throttle=throttle,
        )
        _run(task, out, progress, f"V-NIAH {model}" + (f" / {compressor}" if compressor else ""))
    except LongvidError as exc:
        fail(exc)


@bench_app.command("textniah")
def textniah_command(
    model: Annotated[str, typer.Option(help="Registered model name or checkpoint folder.")] = (
        "tiny-longva"
    ),
    lengths: Annotated[
        str, typer.Option(help="Haystack lengths in tokens start:stop:step (stop included).")
    ] = "256:1024:256",
    depths: Annotated[str, typer.Option(help="Depths start:stop:step (stop included).")] = (
        "0:1:0.1"
    ),
    out: Annotated[Path, typer.Option(help="Folder for results.jsonl and heatmap.png.")] = Path(
        "results/textniah"
    ),
    needles: Annotated[int, typer.Option(help="Needles (7-digit numbers) per cell.")] = 5,
    distractors: Annotated[int, typer.Option(help="Distractor sentences per prompt.")] = 0,
    seed: Annotated[int, typer.Option(help="numpy seed.")] = 0,
    reference_period_ids: Annotated[
        bool, typer.Option(help="Use the reference's Llama-2 period ids (29889, 869).")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Text NIAH (LongVA): a 7-digit number hidden in filler text; length x depth grid."""
    from longvid.bench.grid import depth_range, int_range
    from longvid.bench.textniah import TextNIAHTask
    from longvid.generate import load_model

    try:
        length_list, depth_list = int_range(lengths), depth_range(depths)
        _check_settings(
            out,
            {
                "task": "textniah",
                "model": model,
                "needles": needles,
                "distractors": distractors,
                "seed": seed,
                "reference_period_ids": reference_period_ids,
                "lengths": lengths,
                "depths": depths,
            },
        )
        task = TextNIAHTask(
            load_model(model),
            length_list,
            depth_list,
            needles=needles,
            distractors=distractors,
            seed=seed,
            reference_period_ids=reference_period_ids,
        )
        _run(task, out, progress, f"text NIAH {model}")
    except LongvidError as exc:
        fail(exc)
