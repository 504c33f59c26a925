"""`longvid.bench.extract`: the real assets into the feature cache on a local Ray Data."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from longvid.bench.extract import extract_features, find_videos, is_cached
from longvid.cli import app
from longvid.encoders.anyres import preprocess_video
from longvid.encoders.feature_cache import encode_video
from longvid.errors import InputFileError
from longvid.generate import load_model
from longvid.io.video import fps, sample

# Small real clips (seconds of video each) so the job stays quick.
SMALL = ["movie.avi", "fire2.mp4", "balle1-vp9.avi"]
SAMPLER = fps(1.0, max_frames=4)


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module (2 CPUs); extract_features joins it rather than starting
    its own, so the two runs below share warm workers."""
    ray = pytest.importorskip(
        "ray", reason="Ray Data is the optional [corpus] extra: pip install -e '.[corpus]'"
    )
    pytest.importorskip("ray.data")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_find_videos(tmp_path: Path, assets: Path) -> None:
    (tmp_path / "a.mp4").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("not a video")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.MKV").write_bytes(b"x")
    assert [p.name for p in find_videos(tmp_path)] == ["a.mp4", "b.MKV"]
    assert [p.name for p in find_videos(str(tmp_path / "*.txt"))] == ["notes.txt"]
    one = assets / "video" / "movie.avi"
    assert find_videos(one) == [one.resolve()]
    with pytest.raises(InputFileError, match="matches no file"):
        find_videos(str(tmp_path / "nothing-*.mp4"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFileError, match="no video files"):
        find_videos(tmp_path / "empty")


@pytest.mark.slow
def test_extract_on_local_ray(tmp_path: Path, assets: Path, local_ray) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in SMALL:
        shutil.copy(assets / "video" / name, inputs / name)
    corrupt = inputs / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    out = tmp_path / "features"
    seen: list[str] = []

    summary = extract_features(
        inputs, out, sampler=SAMPLER, on_result=lambda r, total: seen.append(r.status)
    )
    assert sorted(Path(r.path).name for r in summary.done) == sorted(SMALL)
    assert [Path(r.path).name for r in summary.failed] == ["corrupt.mp4"]
    error = summary.failed[0].error
    assert error is not None and str(corrupt) in error
    assert len(seen) == 4 and "failed" in seen
    assert len(list(out.glob("*.safetensors"))) == 3
    assert "done 3, skipped 0, failed 1 of 4" in summary.line()

    # The entries are what the shared cache reads back: same key, same features.
    model = load_model("tiny-longva")
    for name in SMALL:
        assert is_cached(inputs / name, SAMPLER, model, out)
    features, info = encode_video(model, inputs / "movie.avi", SAMPLER, folder=out)
    assert features.shape[0] == len(info.timestamps) == 4
    clip = sample(inputs / "movie.avi", SAMPLER)
    pixels = preprocess_video(clip.frames, model.config.image_processing.image_processor())
    fresh = model.encode_images(pixels)
    torch.testing.assert_close(features, fresh)

    # A rerun (through the CLI) skips every cached video; only the corrupt one is tried
    # again, fails again, and makes the exit status 1.
    again = CliRunner().invoke(
        app,
        ["extract", "--videos", str(inputs), "--out", str(out), "--rate", "1", "--max", "4"],
    )
    assert again.exit_code == 1, again.output
    assert "done 0, skipped 3, failed 1 of 4 videos" in again.output
    assert f"{corrupt}: not a media file" in " ".join(again.output.split())
