"""``longvid ask`` with LLaMA-VID: answer, token count and the relevance plot."""

from __future__ import annotations

from pathlib import Path

import pytest
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


@pytest.mark.slow
def test_compressor_override_on_a_longva_model(assets: Path) -> None:
    """``--compressor llamavid`` on another model: a fresh (random, bert-base) Q-Former."""
    video = str(assets / "video" / "cockatoo.mp4")
    args = ["ask", video, "What animal?", "--model", "tiny-longva", "--frames", "4"]
    result = runner.invoke(app, [*args, "--compressor", "llamavid", "--max-new-tokens", "2"])
    assert result.exit_code == 0, result.output
    assert "tokens: 8 visual" in result.output
