"""One grid runner for needle-in-a-haystack benchmarks: V-NIAH and text NIAH.

LongVA (Zhang et al. 2024, "Long Context Transfer from Language to Vision", §4 and Figure 4)
scores a grid of haystack sizes (frames, or tokens for the text task) x needle depths and
draws it as a heatmap with frame count on x, depth on y and accuracy as colour. This module is
the part both tasks share: a `GridTask` says which cells exist and how to score one; `run_grid`
scores the cells that are not yet in the output JSON-lines file, appending one line per cell
the moment it is scored (flush + fsync), so a rerun resumes and Ctrl-C loses nothing already
scored; `plot_heatmap` and `summary_table` present the results.

Ranges on the command line are ``start:stop:step`` and include ``stop`` like the reference's
``range(min, max + 1, interval)``; depth ranges follow the reference's
``np.arange(start, stop + step, step)`` exactly (``0:1:0.2`` gives numpy's
``0.6000000000000001``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from longvid.errors import ConfigError, InputFileError

__all__ = [
    "Cell",
    "GridTask",
    "depth_range",
    "heatmap_matrix",
    "int_range",
    "load_results",
    "plot_heatmap",
    "run_grid",
    "summary_table",
    "write_heatmap",
]


@dataclass(frozen=True)
class Cell:
    """One grid cell: a haystack ``size`` (frames or tokens) and a needle ``depth`` in [0, 1]."""

    size: int
    depth: float


class GridTask(Protocol):
    """What `run_grid` needs of a benchmark.

    ``name``: shown in the progress bar; ``size_key``: the record field of the x axis
    (``"frames"``, ``"context_length"``); ``size_label``: the axis title; ``cells()``: the
    grid in scoring order; ``score(cell)``: a dict with at least ``"accuracy"`` in [0, 1].
    """

    name: str
    size_key: str
    size_label: str

    def cells(self) -> list[Cell]: ...

    def score(self, cell: Cell) -> dict[str, Any]: ...


def int_range(text: str) -> list[int]:
    """``"8:64:8"`` -> ``[8, 16, ..., 64]`` (stop included); ``"32"`` -> ``[32]``."""
    parts = text.split(":")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise ConfigError(f"range {text!r}: expected integers start:stop:step") from None
    if len(values) == 1:
        values = [values[0], values[0], 1]
    if len(values) != 3 or values[2] < 1 or values[0] < 1 or values[1] < values[0]:
        raise ConfigError(
            f"range {text!r}: expected start:stop:step with 1 <= start <= stop, step >= 1"
        )
    return list(range(values[0], values[1] + 1, values[2]))


def depth_range(text: str) -> list[float]:
    """``"0:1:0.2"`` -> ``np.arange(0, 1 + 0.2, 0.2)`` as floats (the reference's expression);
    ``"0.5"`` -> ``[0.5]``. Every depth must lie in [0, 1]."""
    parts = text.split(":")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ConfigError(f"depth range {text!r}: expected numbers start:stop:step") from None
    if len(values) == 1:
        depths = values
    elif len(values) == 3 and values[2] > 0 and values[1] >= values[0]:
        start, stop, step = values
        depths = [float(d) for d in np.arange(start, stop + step, step)]
    else:
        raise ConfigError(f"depth range {text!r}: expected start:stop:step with step > 0")
    bad = [d for d in depths if not (0.0 <= d <= 1.0 + 1e-9) or math.isnan(d)]
    if bad:
        raise ConfigError(f"depth range {text!r}: depths must lie in [0, 1], got {bad}")
    return depths


def _key(size: Any, depth: Any) -> tuple[int, float]:
    return int(size), float(depth)


def load_results(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of a results file; a torn last line (a crash mid-write) is ignored."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):
                break  # torn final line: that cell is simply scored again
            raise InputFileError(f"line {number} is not JSON", path) from None
    return records


def run_grid(
    task: GridTask,
    out: str | os.PathLike[str],
    *,
    progress: bool = True,
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Score every cell of ``task`` not yet in ``out`` (JSON lines) and return all records.

    Each record is ``{size_key: size, "depth": depth, **task.score(cell)}``, appended and
    fsync'ed as soon as it exists. A rerun with the same ``out`` skips finished cells. A
    ``KeyboardInterrupt`` (Ctrl-C) propagates after the file is closed: everything scored
    before it is on disk. ``progress`` shows a rich bar on stderr.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    records = load_results(out)
    key = task.size_key
    done = {_key(r[key], r["depth"]) for r in records if key in r and "depth" in r}
    todo = [c for c in task.cells() if _key(c.size, c.depth) not in done]
    if out.exists():
        data = out.read_bytes()
        if data and not data.endswith(b"\n"):  # a torn last line: drop it, it is rescored
            with out.open("r+b") as handle:
                handle.truncate(data.rfind(b"\n") + 1)
    bar = _progress() if progress and todo else None
    try:
        if bar is not None:
            bar.start()
            task_id = bar.add_task(task.name, total=len(todo))
        with out.open("a", encoding="utf-8") as handle:
            for cell in todo:
                record = {key: int(cell.size), "depth": float(cell.depth), **task.score(cell)}
                handle.write(json.dumps(record) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
                records.append(record)
                if on_record is not None:
                    on_record(record)
                if bar is not None:
                    bar.advance(task_id)
    finally:
        if bar is not None:
            bar.stop()
    return records


def _progress():
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )


def heatmap_matrix(
    records: Iterable[dict[str, Any]], size_key: str = "frames", metric: str = "accuracy"
) -> tuple[list[int], list[float], np.ndarray]:
    """``(sizes, depths, matrix)``: sorted axes and ``matrix[depth_row, size_col]`` of
    ``metric`` (NaN where a cell has no record)."""
    table = {_key(r[size_key], r["depth"]): float(r[metric]) for r in records}
    sizes = sorted({s for s, _ in table})
    depths = sorted({d for _, d in table})
    matrix = np.full((len(depths), len(sizes)), np.nan)
    for (size, depth), value in table.items():
        matrix[depths.index(depth), sizes.index(size)] = value
    return sizes, depths, matrix


# The paper's palette: red (miss) through yellow to green (found).
_COLOURS = ["#F0496E", "#EBB839", "#0CD79F"]


def plot_heatmap(
    sizes: Sequence[int],
    depths: Sequence[float],
    matrix: np.ndarray,
    path: str | os.PathLike[str],
    *,
    size_label: str = "Frames",
    title: str | None = None,
) -> Path:
    """Draw ``matrix[depth, size]`` (accuracy in [0, 1]) as a PNG heatmap: sizes on x, depth
    (percent, 0 at the top as in the paper) on y. Returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LinearSegmentedColormap

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cmap = LinearSegmentedColormap.from_list("niah", _COLOURS)
    width = max(6.0, 0.5 * len(sizes) + 2.5)
    height = max(3.0, 0.45 * len(depths) + 1.5)
    fig, ax = plt.subplots(figsize=(width, height), dpi=100)
    image = ax.imshow(np.ma.masked_invalid(matrix), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(sizes)), [str(s) for s in sizes], rotation=45)
    ax.set_yticks(range(len(depths)), [f"{round(d * 100)}" for d in depths])
    ax.set_xlabel(size_label)
    ax.set_ylabel("Depth (%)")
    if title:
        ax.set_title(title)
    fig.colorbar(image, ax=ax, label="Accuracy")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_heatmap(
    records: Iterable[dict[str, Any]],
    path: str | os.PathLike[str],
    *,
    size_key: str = "frames",
    size_label: str = "Frames",
    title: str | None = None,
) -> Path:
    """`heatmap_matrix` of ``records`` drawn by `plot_heatmap` to ``path``."""
    sizes, depths, matrix = heatmap_matrix(records, size_key)
    if not sizes:
        raise ConfigError("no results to plot")
    return plot_heatmap(sizes, depths, matrix, path, size_label=size_label, title=title)


def summary_table(
    records: Iterable[dict[str, Any]], *, size_key: str = "frames", title: str = "accuracy"
):
    """A rich ``Table``: one row per depth, one column per size, plus the average of every
    scored cell in the caption."""
    from rich.table import Table

    sizes, depths, matrix = heatmap_matrix(list(records), size_key)
    table = Table(title=title)
    table.add_column("depth", justify="right", style="bold")
    for size in sizes:
        table.add_column(str(size), justify="right")
    for row, depth in enumerate(depths):
        cells = ["-" if np.isnan(v) else f"{v:.2f}" for v in matrix[row]]
        table.add_row(f"{depth:.2f}", *cells)
    scored = matrix[~np.isnan(matrix)]
    average = float(scored.mean()) if scored.size else float("nan")
    table.caption = f"average {average:.4f} over {scored.size} cells"
    table.average = average  # type: ignore[attr-defined]
    return table
