"""The relevance timeline plot and ``longvid ask --relevance-plot`` end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from longvid.cli import app
from longvid.viz import plot_relevance_timeline

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_plot_writes_png(tmp_path: Path) -> None:
    times = np.arange(6) * 2.0
    out = plot_relevance_timeline(times, torch.rand(6, 4, 4), tmp_path / "a" / "rel.png")
    assert out.read_bytes()[:8] == PNG_MAGIC
    out1 = plot_relevance_timeline(times, [0.1, 0.5, 0.2, 0.9, 0.3, 0.0], tmp_path / "b.png")
    assert out1.stat().st_size > 1000
    with pytest.raises(ValueError, match="relevance"):
        plot_relevance_timeline(times, np.zeros(5), tmp_path / "c.png")


def test_ask_writes_relevance_plot(assets: Path, tmp_path: Path) -> None:
    video = next(p for p in (assets / "video").glob("cockatoo.mp4"))
    out = tmp_path / "out.png"
    result = CliRunner().invoke(
        app,
        [
            "ask",
            str(video),
            "What animal is this?",
            "--model",
            "tiny-ppllava",
            "--frames",
            "6",
            "--max-new-tokens",
            "4",
            "--relevance-plot",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert "relevance plot" in result.output


def test_ask_relevance_plot_needs_a_scoring_compressor(assets: Path, tmp_path: Path) -> None:
    video = assets / "video" / "cockatoo.mp4"
    result = CliRunner().invoke(
        app,
        [
            "ask",
            str(video),
            "What?",
            "--model",
            "tiny-longva",
            "--frames",
            "2",
            "--max-new-tokens",
            "2",
            "--relevance-plot",
            str(tmp_path / "x.png"),
        ],
    )
    assert result.exit_code == 2
    assert "no relevance" in result.output
    assert not (tmp_path / "x.png").exists()
