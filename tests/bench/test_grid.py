"""The shared NIAH grid runner: ranges, streaming + resume, Ctrl-C, heatmap and table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from longvid.bench import grid
from longvid.bench.grid import Cell, depth_range, int_range, load_results, run_grid
from longvid.errors import ConfigError


class FakeTask:
    """3 sizes x 3 depths; accuracy = size/100 + depth/10; optional Ctrl-C at one cell."""

    name = "fake"
    size_key = "frames"
    size_label = "Frames"

    def __init__(self, interrupt_at: Cell | None = None) -> None:
        self.interrupt_at = interrupt_at
        self.scored: list[Cell] = []

    def cells(self) -> list[Cell]:
        return [Cell(s, d) for s in (8, 16, 24) for d in (0.0, 0.5, 1.0)]

    def score(self, cell: Cell) -> dict:
        if cell == self.interrupt_at:
            raise KeyboardInterrupt
        self.scored.append(cell)
        return {"accuracy": cell.size / 100 + cell.depth / 10}


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def test_ranges_follow_the_reference_expressions() -> None:
    assert int_range("8:64:8") == list(range(8, 65, 8))
    assert int_range("200:3000:200") == list(range(200, 3001, 200))
    assert int_range("32") == [32]
    assert depth_range("0:1:0.2") == [float(d) for d in np.arange(0, 1.2, 0.2)]
    assert depth_range("0:1:0.2")[3] == 0.6000000000000001
    assert depth_range("0:1:0.25") == [0.0, 0.25, 0.5, 0.75, 1.0]
    for bad in ("8:4:2", "a:b:c", "0:10:0"):
        with pytest.raises(ConfigError):
            int_range(bad)
    with pytest.raises(ConfigError):
        depth_range("0:2:0.5")


def test_interrupt_keeps_scored_cells_and_rerun_scores_only_the_rest(tmp_path: Path) -> None:
    out = tmp_path / "r" / "results.jsonl"
    first = FakeTask(interrupt_at=Cell(16, 0.5))
    with pytest.raises(KeyboardInterrupt):
        run_grid(first, out, progress=False)
    assert len(first.scored) == 4
    assert len(_lines(out)) == 4  # everything scored before Ctrl-C is on disk
    saved = _lines(out)

    second = FakeTask()
    records = run_grid(second, out, progress=False)
    assert second.scored == FakeTask().cells()[4:]  # only the missing cells
    lines = _lines(out)
    assert lines[:4] == saved and len(lines) == 9
    assert {(r["frames"], r["depth"]) for r in records} == {
        (c.size, c.depth) for c in FakeTask().cells()
    }

    third = FakeTask()
    run_grid(third, out, progress=False)
    assert third.scored == [] and len(_lines(out)) == 9


def test_torn_last_line_is_rescored(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    out.write_text(
        json.dumps({"frames": 8, "depth": 0.0, "accuracy": 0.08})
        + "\n"
        + '{"frames": 8, "depth": 0.',
        encoding="utf-8",
    )
    task = FakeTask()
    run_grid(task, out, progress=False)
    assert task.scored == FakeTask().cells()[1:]
    records = load_results(out)
    assert len(records) == 9
    assert len({(r["frames"], r["depth"]) for r in records}) == 9
    assert len(_lines(out)) == 9


def test_heatmap_receives_the_grid_matrix(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "results.jsonl"
    records = run_grid(FakeTask(), out, progress=False)
    seen = {}
    real = grid.plot_heatmap

    def spy(sizes, depths, matrix, path, **kw):
        seen.update(sizes=sizes, depths=depths, matrix=matrix.copy())
        return real(sizes, depths, matrix, path, **kw)

    monkeypatch.setattr(grid, "plot_heatmap", spy)
    png = grid.write_heatmap(records, tmp_path / "heatmap.png", title="fake")
    assert seen["sizes"] == [8, 16, 24]  # x axis
    assert seen["depths"] == [0.0, 0.5, 1.0]  # y axis
    expected = np.array([[s / 100 + d / 10 for s in (8, 16, 24)] for d in (0.0, 0.5, 1.0)])
    np.testing.assert_allclose(seen["matrix"], expected)
    with Image.open(png) as image:
        assert image.format == "PNG"
        assert image.size == (600, 300)  # figsize (6, 3) at 100 dpi for a 3x3 grid


def test_missing_cells_are_nan_and_table_average(tmp_path: Path) -> None:
    records = [
        {"frames": 8, "depth": 0.0, "accuracy": 1.0},
        {"frames": 16, "depth": 0.5, "accuracy": 0.0},
    ]
    sizes, depths, matrix = grid.heatmap_matrix(records)
    assert sizes == [8, 16] and depths == [0.0, 0.5]
    assert matrix[0, 0] == 1.0 and matrix[1, 1] == 0.0 and np.isnan(matrix[0, 1])
    table = grid.summary_table(records)
    assert table.average == 0.5
    assert "average 0.5000 over 2 cells" in str(table.caption)
    assert len(table.columns) == 3 and table.row_count == 2
