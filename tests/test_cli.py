"""The `longvid` command line, and every command the README shows."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from longvid.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def test_probe_table_and_json(assets: Path) -> None:
    video = assets / "video" / "movie-hello.mpeg"
    table = run("probe", str(video))
    assert table.exit_code == 0, table.output
    assert "29.970" in table.output and "mpeg2video" in table.output
    fields = json.loads(run("probe", str(video), "--json").output)
    assert fields["width"] == 640 and fields["height"] == 480
    assert fields["frame_count"] == 249
    assert fields["time_base"] == "1/90000"
    assert fields["has_audio"] is True


def test_frames_json_lists_index_and_timestamp(assets: Path) -> None:
    video = assets / "video" / "trailer_bbb.mp4"
    result = run("frames", str(video), "--sampler", "fps", "--rate", "0.5", "--max", "32", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    frames = payload["frames"]
    assert len(frames) == 28  # 55.1 s at one frame every 2 s
    assert [f["index"] for f in frames[:3]] == [0, 48, 96]  # 24 fps
    assert frames[1]["timestamp"] == pytest.approx(2.0)
    assert payload["sampler"] == "fps(rate=0.5, max_frames=32)"


def test_frames_writes_contact_sheet(assets: Path, tmp_path: Path) -> None:
    sheet = tmp_path / "nested" / "sheet.png"
    video = assets / "video" / "cockatoo.mp4"
    result = run(
        "frames",
        str(video),
        "--sampler",
        "uniform",
        "--n",
        "6",
        "--size",
        "120",
        "--out",
        str(sheet),
    )
    assert result.exit_code == 0, result.output
    with Image.open(sheet) as image:
        assert image.format == "PNG"
        assert image.width > 3 * 120 and image.height > 2 * 60


def test_bad_input_is_one_line_error_with_exit_code_2(tmp_path: Path, assets: Path) -> None:
    missing = tmp_path / "nope.mp4"
    result = runner.invoke(app, ["probe", str(missing)])
    assert result.exit_code == 2
    assert "nope.mp4" in result.output and "no such file" in result.output
    assert "Traceback" not in result.output
    video = assets / "video" / "cockatoo.mp4"
    stray = runner.invoke(app, ["frames", str(video), "--sampler", "uniform", "--rate", "2"])
    assert stray.exit_code == 2 and "--rate" in stray.output


def _readme_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    lines = re.findall(r"^\.venv/bin/longvid (.+)$", text, flags=re.MULTILINE)
    return [shlex.split(line, comments=True) for line in lines]


@pytest.fixture(scope="module")
def readme_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the README's ``results/...`` files go; shared, since a later command (``ask``)
    reads what an earlier one (``clip``) wrote."""
    return tmp_path_factory.mktemp("readme_results")


@pytest.mark.parametrize("args", _readme_commands(), ids=lambda a: " ".join(a[:2]))
def test_readme_cli_commands_run(
    args: list[str], tmp_path: Path, assets: Path, readme_results: Path
) -> None:
    fixed = [
        str(assets.parent / a.removeprefix("../shared/")) if a.startswith("../shared/") else a
        for a in args
    ]
    fixed = [
        str(readme_results / a.removeprefix("results/")) if a.startswith("results/") else a
        for a in fixed
    ]
    fixed = [str(tmp_path / a) if a.endswith(".png") else a for a in fixed]
    result = run(*fixed)
    assert result.exit_code == 0, result.output


def test_readme_python_example_runs(assets: Path) -> None:
    text = (ROOT / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, flags=re.DOTALL).group(1)
    video = assets / "video" / "cockatoo.mp4"
    namespace: dict[str, object] = {}
    exec(code.replace('"video.mp4"', repr(str(video))), namespace)  # noqa: S102
    clip = namespace["clip"]
    assert clip.frames.shape == (32, 336, 597, 3)
    assert len(clip.timestamps) == 32
