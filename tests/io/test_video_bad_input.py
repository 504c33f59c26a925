"""Bad input to longvid.io.video: every problem a user can cause is a `LongvidError` subclass
whose message names the file; truncated files give the frames that decode, with a warning."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import av
import numpy as np
import pytest

from longvid.errors import InputFileError, LongvidError, SamplingError, VideoDecodeError
from longvid.io.video import (
    VideoReader,
    fps,
    get_sampler,
    longva_uniform,
    ppllava_segments,
    prefix_interval,
    probe,
    read_frames,
    sample,
    uniform,
    window,
)

OPENERS = {
    "probe": lambda p: probe(p),
    "reader": lambda p: VideoReader(p).close(),
    "sample": lambda p: sample(p, uniform(4)),
    "read_frames": lambda p: read_frames(p, [0]),
}


def assert_refused(path: Path, error: type[LongvidError]) -> list[str]:
    """Every entry point refuses ``path`` with ``error``, naming the file; returns messages."""
    assert issubclass(error, LongvidError)
    messages = []
    for opener in OPENERS.values():
        with pytest.raises(error) as info:
            opener(path)
        assert path.name in str(info.value)
        assert info.value.path == str(path)
        messages.append(str(info.value))
    return messages


# --------------------------------------------------------------------------------------------
# Files that are not videos


def test_missing_file(tmp_path: Path) -> None:
    messages = assert_refused(tmp_path / "nowhere.mp4", InputFileError)
    assert "no such file" in messages[0]


def test_directory(tmp_path: Path) -> None:
    folder = tmp_path / "clips.mp4"
    folder.mkdir()
    messages = assert_refused(folder, InputFileError)
    assert "directory" in messages[0]


def test_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    messages = assert_refused(empty, InputFileError)
    assert "empty" in messages[0]


def test_text_file_named_mp4(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("this is a shopping list, not a video\n" * 20, encoding="utf-8")
    assert_refused(text, VideoDecodeError)


def test_audio_only_file(tmp_path: Path, assets: Path) -> None:
    audio = tmp_path / "audio.m4a"
    with av.open(str(assets / "video" / "bigbuckbunny.mp4")) as src:
        in_stream = src.streams.audio[0]
        with av.open(str(audio), mode="w") as out:
            out_stream = out.add_stream_from_template(in_stream)
            for packet in src.demux(in_stream):
                if packet.dts is None:  # the demuxer's final flush packet
                    continue
                packet.stream = out_stream
                out.mux(packet)
    with av.open(str(audio)) as check:  # a valid audio file
        assert len(check.streams.audio) == 1 and len(check.streams.video) == 0
    messages = assert_refused(audio, VideoDecodeError)
    assert "no video stream" in messages[0]
    assert "audio" in messages[0]


def test_video_stream_ffmpeg_cannot_decode(tmp_path: Path, assets: Path) -> None:
    data = (assets / "video" / "bigbuckbunny.mp4").read_bytes()
    assert data.count(b"avc1") >= 1
    unknown = tmp_path / "fourcc.mp4"
    unknown.write_bytes(data.replace(b"avc1", b"zzzz"))
    messages = assert_refused(unknown, VideoDecodeError)
    assert "decoder" in messages[0] or "decod" in messages[0]


# --------------------------------------------------------------------------------------------
# Truncated files


def test_truncated_mp4_with_moov_first_returns_what_decodes(tmp_path: Path, assets: Path) -> None:
    original = assets / "video" / "fire2.mp4"  # moov atom at the start, 25 frames
    data = original.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")
    half = tmp_path / "half.mp4"
    half.write_bytes(data[: len(data) // 2])

    with pytest.warns(UserWarning) as record:
        clip = sample(half, uniform(25))
    messages = [str(w.message) for w in record]
    assert any("truncated" in m or "ends early" in m for m in messages), messages
    assert all(half.name in m for m in messages)
    assert 0 < len(clip) < 25
    assert clip.truncated is True
    assert clip.frames.shape[0] == len(clip.indices) == len(clip.timestamps)

    with av.open(str(original)) as container:
        reference = {}
        for i, frame in enumerate(container.decode(video=0)):
            if i > clip.indices.max():
                break
            reference[i] = np.rot90(frame.to_ndarray(format="rgb24"), k=2)  # rotation 180
    for j, i in enumerate(clip.indices.tolist()):
        assert np.array_equal(clip.frames[j], reference[i]), f"frame {i} differs"
    full = read_frames(original, clip.indices)
    assert np.array_equal(clip.timestamps, full.timestamps)


def test_truncated_mp4_with_moov_last_is_refused(tmp_path: Path, assets: Path) -> None:
    data = (assets / "video" / "trailer_bbb.mp4").read_bytes()  # moov atom at the end
    assert data.find(b"moov") > data.find(b"mdat")
    half = tmp_path / "half_trailer.mp4"
    half.write_bytes(data[: len(data) // 2])
    assert_refused(half, VideoDecodeError)


# --------------------------------------------------------------------------------------------
# Sampler arguments that describe no frames


@pytest.mark.parametrize(
    "make",
    [
        lambda: window(-1.0, 2.0),
        lambda: window(float("nan"), 2.0),
        lambda: window(0.0, float("nan")),
        lambda: window(0.0, float("inf")),
        lambda: window(float("inf"), float("inf")),
        lambda: window(-5.0, -1.0),
        lambda: window(5.0, 2.0),
        lambda: window(2.0, 2.0),
        lambda: window(0.0, 1.0, n=0),
        lambda: window(0.0, 1.0, rate=0.0),
        lambda: window(0.0, 1.0, n=2, rate=1.0),
        lambda: fps(rate=0),
        lambda: fps(rate=-1.0),
        lambda: fps(rate=float("nan")),
        lambda: fps(rate=float("inf")),
        lambda: fps(1.0, max_frames=0),
        lambda: uniform(0),
        lambda: uniform(-3),
        lambda: uniform(2.5),
        lambda: uniform(True),
        lambda: longva_uniform(0),
        lambda: ppllava_segments(0),
        lambda: prefix_interval(0, 3),
        lambda: prefix_interval(3, 0),
        lambda: get_sampler("nope"),
        lambda: get_sampler("uniform"),  # n missing
        lambda: get_sampler("fps", rate=float("nan")),
    ],
)
def test_bad_sampler_arguments(make) -> None:
    with pytest.raises(SamplingError):
        make()


def test_unknown_sampler_name_through_sample(assets: Path) -> None:
    with pytest.raises(SamplingError, match="unknown sampler"):
        sample(assets / "video" / "movie.avi", "every_frame")


def test_sampler_arguments_without_a_name(assets: Path) -> None:
    with pytest.raises(SamplingError):
        sample(assets / "video" / "movie.avi", uniform(3), n=4)


def test_window_after_the_end_of_the_video(assets: Path) -> None:
    with pytest.raises(SamplingError, match="after the end"):
        sample(assets / "video" / "movie.avi", window(10.0, 20.0))  # a 4.5 s video


def test_window_after_the_end_names_the_file(assets: Path) -> None:
    """A regression: the sampler raised without a path and sample() did not add it."""
    path = assets / "video" / "movie.avi"
    with pytest.raises(SamplingError) as info:
        sample(path, window(10.0, 20.0))
    assert path.name in str(info.value)
    assert info.value.path == str(path)


@pytest.mark.parametrize("indices", [[68], [-1], [0, 5, 1000], [-68]])
def test_out_of_range_indices(assets: Path, indices: list[int]) -> None:
    path = assets / "video" / "movie.avi"  # 68 frames
    with pytest.raises(SamplingError, match=r"0\.\.67") as info:
        read_frames(path, indices)
    assert path.name in str(info.value)
    assert info.value.path == str(path)


@pytest.mark.parametrize(("start", "stop", "every"), [(0, None, 0), (68, None, 1), (-1, 5, 1)])
def test_iter_frames_bad_arguments(assets: Path, start: int, stop, every: int) -> None:
    with VideoReader(assets / "video" / "movie.avi") as reader:
        frames = reader.iter_frames(start, stop, every)
        with pytest.raises(SamplingError):  # raised on first use: iter_frames is a generator
            next(frames)


@pytest.mark.parametrize("size", [0, -5, (0, 10), (10, -1), (10,), (2.5, 3), True, 1.5])
def test_bad_resize_size(assets: Path, size) -> None:
    """A resize target that describes no image is refused, naming the value (a regression:
    (height, width) tuples once reached FFmpeg's scaler, which failed as a 'damaged file')."""
    path = assets / "video" / "movie.avi"
    with pytest.raises(SamplingError):
        read_frames(path, [0], size=size)
    with pytest.raises(SamplingError):
        sample(path, uniform(2), size=size)


def test_copy_of_an_asset_still_reads(tmp_path: Path, assets: Path) -> None:
    """Control for the byte-edited files above: an untouched copy reads fine."""
    copy = tmp_path / "copy.mp4"
    shutil.copyfile(assets / "video" / "bigbuckbunny.mp4", copy)
    clip = read_frames(copy, [0, 131])
    assert clip.frames.shape == (2, 720, 1280, 3)
    assert math.isclose(probe(copy).duration, 5.28, abs_tol=0.05)
