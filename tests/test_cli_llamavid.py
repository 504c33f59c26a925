"""``longvid ask`` with LLaMA-VID: answer, token count and the relevance plot."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from typer.testing import CliRunner

from longvid.cli import app

runner = CliRunner()


def test_ask_tiny_llamavid_prints_two_tokens_per_frame_and_plots(
    assets: Path, tmp_path: Path
) -> None:
    video = str(assets / "video" / "cockatoo.mp4")
    plot = tmp_path / "relevance.png"
    args = ["ask", video, "What animal is this?", "--model", "tiny-llamavid", "--frames", "6"]
    result = runner.invoke(app, [*args, "--max-new-tokens", "4", "--relevance-plot", str(plot)])
    assert result.exit_code == 0, result.output
    assert "tokens: 12 visual" in result.output
    assert Image.open(plot).size[0] > 100
