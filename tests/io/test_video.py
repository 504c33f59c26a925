"""Tests of longvid.io.video on the real assets: sparse reads equal a full sequential decode,
timestamps are the containers' own, `probe` agrees with ffprobe's manifest, rotation and resizing.

The reference everywhere is a plain sequential decode written here with PyAV
(``container.decode(stream)`` then ``frame.to_ndarray(format="rgb24")``, rotated for display),
compared with ``np.array_equal``. Each asset's reference is decoded once per module (a
module-scoped fixture parametrized over the assets, so pytest runs one asset's tests together and
drops its frames before the next); only the frames the tests compare are kept in memory.
"""

from __future__ import annotations

import json
import math
import warnings
import zlib
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from longvid.io.video import Timeline, VideoReader, probe, read_frames, sample, uniform

ASSET_NAMES = [
    "balle-jbart.mp4",
    "balle1-vp9.avi",
    "big_buck_bunny_0_30.webm",
    "bigbuckbunny.mp4",
    "cityCC0.mpg",
    "cockatoo.mp4",
    "display-dual-monitors.webm",
    "diver.mov",
    "fire2.mp4",
    "intro.mpg",
    "movie-hello.mpeg",
    "movie.avi",
    "oa4_launch.webm",
    "soundwave.mp4",
    "trailer_bbb.mp4",
    "win005.mkv",
]

# Display rotation (degrees counter-clockwise) of each asset; only fire2.mp4 carries one.
ROTATION = {"fire2.mp4": 180}

# Decoded frames differ from video packets only here (VP9 superframes in AVI): README/manifest.
DECODED_FRAMES = {"balle1-vp9.avi": 295}

# Regression (fixed in video.py: _build_timeline(prime=True)): cockatoo.mp4 is H.264 High 4:4:4
# from x264 core 142; only its first packet carries the x264 version SEI, from which FFmpeg's
# decoder turns on its workaround for old x264's 4:4:4 8x8-transform bug (x264 build < 151). A
# fresh reader whose first decode started with a seek never saw that packet and returned frames
# differing from a sequential decode in 98% of pixels. Reads that start at frame 0 hide this, so
# the "cold" set reads, as a fresh reader's first target, a frame past the middle keyframe.
COLD_SEEK_FILES = {"cockatoo.mp4"}

# Regression (fixed in video.py _build_timeline): the origin was
# floor(container.start_time [us] / time_base); start_time had been rounded to microseconds by
# FFmpeg, so for intro.mpg (start 21000/90000 s = 233333.3 us -> 233333) the origin was 20999 and
# every timestamp 1/90000 s (11.1 us) late.
ORIGIN_FILES = {"intro.mpg"}


def read_quietly(reader: VideoReader, indices, exact: bool = True):
    """`reader.read`, with any UserWarning (e.g. 'file ends early') raised as an error: the
    assets are intact files."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        return reader.read(indices, exact=exact)


def nearest_keyframes(tl: Timeline, indices) -> np.ndarray:
    """The keyframe closest in time to each index (ties to the earlier), by brute force."""
    keys = np.asarray(tl.keyframes)
    out = []
    for i in np.asarray(indices).tolist():
        gaps = np.abs(tl.timestamps[keys] - tl.timestamps[i])
        out.append(int(keys[int(np.argmin(gaps))]))  # argmin takes the first (earlier) tie
    return np.asarray(out, dtype=np.int64)


# --------------------------------------------------------------------------------------------
# The reference: one sequential decode per asset


@dataclass
class Reference:
    name: str
    path: Path
    rotation: int  # counter-clockwise degrees, from the decoded frames' display matrix
    coded_hw: tuple[int, int]  # decoded (height, width), before rotation
    pts: np.ndarray  # every frame's pts, in decode output order
    time_base: Fraction
    start_time: int | None  # container.start_time, microseconds
    stream_starts: list[Fraction]  # every stream's start_time, in seconds, exactly
    sets: dict[str, np.ndarray]  # named index sets the tests read
    frames: dict[int, np.ndarray] = field(default_factory=dict)  # rgb24, rotated
    raw: dict[int, av.VideoFrame] = field(default_factory=dict)  # for resizing tests

    @property
    def n(self) -> int:
        return len(self.pts)

    def display_hw(self) -> tuple[int, int]:
        h, w = self.coded_hw
        return (w, h) if self.rotation in (90, 270) else (h, w)


def plan(name: str, tl: Timeline) -> dict[str, np.ndarray]:
    """Index sets to read, from the demuxed timeline (seeded by the file name)."""
    n = len(tl)
    # Note: for every asset the sparse, dense, descending and fast sets start in the first GOP
    # (their first decode runs from frame 0); "cold" is the read that starts with a seek.
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    sparse = np.sort(rng.choice(n, size=min(16, n), replace=False))
    keys = tl.keyframes
    # A run crossing a keyframe in the middle of the file (the middle if there is one GOP).
    k = int(keys[len(keys) // 2]) if len(keys) > 1 else n // 2
    dense = np.arange(max(0, k - 4), min(n, k + 4))
    ends = np.array([0, n - 1])
    desc = sorted(set(sparse[::3].tolist()) | {0, n - 1}, reverse=True)
    descending = np.repeat(np.asarray(desc, dtype=np.int64), 2)  # each twice, in a row
    return {
        "sparse": sparse,
        "dense": dense,
        "ends": ends,
        "descending": descending,
        "fast": nearest_keyframes(tl, sparse),
        # frame 0 first: these test resizing, not a reader's first seek (see COLD_SEEK_FILES)
        "resize": np.array([0, n // 3, (2 * n) // 3]),
        # a frame two past the middle keyframe, the first and only target of a fresh reader
        "cold": np.array([min(n - 1, k + 2)]),
    }


def decode_reference(name: str, path: Path) -> Reference:
    with VideoReader(path) as reader:
        sets = plan(name, reader.timeline)
    keep = set()
    for key, idx in sets.items():
        if key != "resize":
            keep |= set(np.asarray(idx).tolist())
    resize = set(sets["resize"].tolist())
    pts: list[int] = []
    frames: dict[int, np.ndarray] = {}
    raw: dict[int, av.VideoFrame] = {}
    rotation = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        time_base, start_time = stream.time_base, container.start_time
        stream_starts = [
            Fraction(s.start_time) * s.time_base
            for s in container.streams
            if s.start_time is not None and s.time_base is not None
        ]
        coded_hw = (stream.codec_context.height, stream.codec_context.width)
        for i, frame in enumerate(container.decode(stream)):
            if i == 0:
                rotation = int(frame.rotation or 0) % 360
            pts.append(frame.pts)
            if i in keep:
                rgb = frame.to_ndarray(format="rgb24")
                frames[i] = np.rot90(rgb, k=rotation // 90)
            if i in resize:
                raw[i] = frame
    return Reference(
        name=name,
        path=path,
        rotation=rotation,
        coded_hw=coded_hw,
        pts=np.asarray(pts, dtype=np.int64),
        time_base=time_base,
        start_time=start_time,
        stream_starts=stream_starts,
        sets=sets,
        frames=frames,
        raw=raw,
    )


@pytest.fixture(scope="module", params=ASSET_NAMES)
def ref(request: pytest.FixtureRequest, assets: Path) -> Reference:
    name = request.param
    return decode_reference(name, assets / "video" / name)


def assert_frames_equal(ref: Reference, clip, indices) -> None:
    indices = np.asarray(indices, dtype=np.int64)
    assert clip.indices.tolist() == indices.tolist()
    assert clip.frames.dtype == np.uint8
    assert clip.frames.shape == (len(indices), *ref.display_hw(), 3)
    for j, i in enumerate(indices.tolist()):
        assert np.array_equal(clip.frames[j], ref.frames[i]), f"{ref.name}: frame {i} differs"


# --------------------------------------------------------------------------------------------
# 1. Sparse reads equal the sequential decode


def test_frame_count_equals_sequential_decode(ref: Reference, manifest: dict) -> None:
    expected = DECODED_FRAMES.get(ref.name, int(manifest["video"][f"video/{ref.name}"]["frames"]))
    assert ref.n == expected
    with VideoReader(ref.path) as reader:
        assert len(reader.timeline) == ref.n
        assert np.array_equal(reader.timeline.pts, ref.pts)
        assert reader.info.rotation == ref.rotation == ROTATION.get(ref.name, 0)


def test_sparse_random(ref: Reference) -> None:
    with VideoReader(ref.path) as reader:
        clip = read_quietly(reader, ref.sets["sparse"])
    assert_frames_equal(ref, clip, ref.sets["sparse"])
    assert np.array_equal(clip.timestamps, reader.timeline.timestamps[ref.sets["sparse"]])
    assert clip.truncated is False


def test_sparse_random_decoding_every_frame(ref: Reference) -> None:
    """``skip_nonref=False``: the decoder decodes every frame on its way (no skipping)."""
    with VideoReader(ref.path, skip_nonref=False) as reader:
        clip = read_quietly(reader, ref.sets["sparse"])
    assert_frames_equal(ref, clip, ref.sets["sparse"])


def test_first_read_of_a_fresh_reader_seeks(ref: Reference) -> None:
    """A fresh reader whose only target lies past the middle keyframe: the first decode
    starts with a seek (see COLD_SEEK_FILES)."""
    with VideoReader(ref.path) as reader:
        clip = read_quietly(reader, ref.sets["cold"])
    assert_frames_equal(ref, clip, ref.sets["cold"])


def test_dense_run_across_a_keyframe(ref: Reference) -> None:
    with VideoReader(ref.path) as reader:
        clip = read_quietly(reader, ref.sets["dense"])
    assert_frames_equal(ref, clip, ref.sets["dense"])


def test_first_and_last_frame(ref: Reference) -> None:
    with VideoReader(ref.path) as reader:
        clip = read_quietly(reader, ref.sets["ends"])
    assert_frames_equal(ref, clip, ref.sets["ends"])


def test_descending_order_with_repeats(ref: Reference) -> None:
    """`read` returns the frames in the order of the indices given, repeats included."""
    wanted = ref.sets["descending"]
    with VideoReader(ref.path) as reader:
        clip = read_quietly(reader, wanted)
        assert np.array_equal(clip.timestamps, reader.timeline.timestamps[wanted])
    assert_frames_equal(ref, clip, wanted)


def test_fast_mode_returns_nearest_keyframes(ref: Reference) -> None:
    wanted = ref.sets["sparse"]
    with VideoReader(ref.path) as reader:
        clip = read_quietly(reader, wanted, exact=False)
        keyframes = set(reader.timeline.keyframes.tolist())
        assert set(clip.indices.tolist()) <= keyframes
        assert np.array_equal(clip.timestamps, reader.timeline.timestamps[clip.indices])
    # One frame per index asked for, the keyframe nearest in time to it.
    assert clip.indices.tolist() == ref.sets["fast"].tolist()
    assert_frames_equal(ref, clip, clip.indices)


def test_resize_short_side(ref: Reference) -> None:
    wanted = ref.sets["resize"]
    with VideoReader(ref.path, size=64) as reader:
        clip = read_quietly(reader, wanted)
    out_h, out_w = clip.frames.shape[1:3]
    disp_h, disp_w = ref.display_hw()
    assert min(out_h, out_w) == 64
    assert (out_h <= out_w) == (disp_h <= disp_w)
    if disp_h <= disp_w:
        assert abs(out_w - disp_w * 64 / disp_h) <= 1
    else:
        assert abs(out_h - disp_h * 64 / disp_w) <= 1
    # Resized before rotation: the decoder's output is (w, h) swapped for 90/270 degrees.
    coded_h, coded_w = (out_w, out_h) if ref.rotation in (90, 270) else (out_h, out_w)
    for j, i in enumerate(wanted.tolist()):
        expected = ref.raw[i].to_ndarray(
            format="rgb24", width=coded_w, height=coded_h, interpolation="BILINEAR"
        )
        assert np.array_equal(clip.frames[j], np.rot90(expected, k=ref.rotation // 90))


def test_resize_to_height_and_width(ref: Reference) -> None:
    wanted = ref.sets["resize"]
    with VideoReader(ref.path, size=(48, 80)) as reader:
        clip = read_quietly(reader, wanted)
    assert clip.frames.shape == (len(wanted), 48, 80, 3)
    coded_h, coded_w = (80, 48) if ref.rotation in (90, 270) else (48, 80)
    for j, i in enumerate(wanted.tolist()):
        expected = ref.raw[i].to_ndarray(
            format="rgb24", width=coded_w, height=coded_h, interpolation="BILINEAR"
        )
        assert np.array_equal(clip.frames[j], np.rot90(expected, k=ref.rotation // 90))


def test_timestamps_follow_the_packets(ref: Reference) -> None:
    """Between frames, timestamps are exactly the pts differences times the time base."""
    with VideoReader(ref.path) as reader:
        ts = reader.timeline.timestamps
    relative = np.array([float((p - ref.pts[0]) * ref.time_base) for p in ref.pts.tolist()])
    assert np.allclose(ts - ts[0], relative, rtol=0, atol=1e-9)
    assert np.all(np.diff(ts) > 0)


def test_timestamps_are_on_the_players_clock(ref: Reference) -> None:
    """timestamp = pts * time_base - the container's start (the earliest start of any stream).

    Against FFmpeg's ``container.start_time`` (rounded to microseconds) to 1 us; against the
    exact earliest stream start to 1e-9 s (see ORIGIN_FILES)."""
    with VideoReader(ref.path) as reader:
        ts = reader.timeline.timestamps
    start = (ref.start_time or 0) / 1e6
    expected = np.array([float(p * ref.time_base) - start for p in ref.pts.tolist()])
    assert np.allclose(ts, expected, rtol=0, atol=1e-6)
    origin = min(ref.stream_starts)
    exact = np.array([float(p * ref.time_base - origin) for p in ref.pts.tolist()])
    assert np.allclose(ts, exact, rtol=0, atol=1e-9)
    if ref.name in ORIGIN_FILES:  # the video stream starts the file: its first frame is at 0
        assert ts[0] == pytest.approx(0.0, abs=1e-12)


# --------------------------------------------------------------------------------------------
# 2. Timestamps: 29.97 fps and variable frame rate


def test_ntsc_timestamps_step_by_1001_over_30000(assets: Path) -> None:
    path = assets / "video" / "movie-hello.mpeg"
    info = probe(path)
    assert info.avg_fps == pytest.approx(30000 / 1001, abs=1e-6)
    assert info.real_fps == pytest.approx(30000 / 1001, abs=1e-6)
    with VideoReader(path) as reader:
        ts = reader.timeline.timestamps
    assert len(ts) == 249
    assert np.allclose(np.diff(ts), 1001 / 30000, rtol=0, atol=1e-9)
    # 1/29.97 is not 1/30: after 248 frames the drift against a 30 fps clock is 0.27 s.
    assert ts[-1] - ts[0] == pytest.approx(248 * 1001 / 30000, abs=1e-9)


def test_fps_sampler_takes_the_frame_on_screen_at_each_second(assets: Path) -> None:
    path = assets / "video" / "movie-hello.mpeg"
    with VideoReader(path) as reader:
        tl = reader.timeline
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        clip = sample(path, "fps", rate=1.0)
    seconds = range(math.ceil(tl.duration))
    assert len(clip) == len(seconds)
    assert clip.sampler == "fps(rate=1.0, max_frames=64)"
    assert clip.frames.shape == (len(seconds), 480, 640, 3)
    for k, index, t in zip(seconds, clip.indices.tolist(), clip.timestamps.tolist(), strict=True):
        assert t == tl.timestamps[index]
        if tl.timestamps[0] > k:  # nothing on screen yet (the video starts 9.4 ms in)
            assert index == 0
            continue
        # the largest timestamp <= k
        assert t <= k
        assert index == len(tl) - 1 or tl.timestamps[index + 1] > k
    assert clip.indices.tolist() == [0, 29, 59, 89, 119, 149, 179, 209, 239]


def test_vfr_timestamps_are_the_pts(assets: Path, manifest: dict) -> None:
    path = assets / "video" / "fire2.mp4"
    info = probe(path)
    assert info.duration == pytest.approx(2.38, abs=0.01)
    assert info.avg_fps == pytest.approx(
        float(Fraction(manifest["video"]["video/fire2.mp4"]["avg"]))
    )
    assert info.avg_fps == pytest.approx(10.505, abs=1e-3)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        pts = np.array([f.pts for f in container.decode(stream)])
        tb = stream.time_base
    with VideoReader(path) as reader:
        ts = reader.timeline.timestamps
    diffs = np.diff(ts)
    assert not np.allclose(diffs, diffs[0], rtol=0, atol=1e-6)  # variable frame rate
    assert np.allclose(diffs, np.diff(pts) * float(tb), rtol=0, atol=1e-9)
    # 90000 fps (r_frame_rate) is the time base, not a frame rate: no gap is 1/90000 s
    assert diffs.min() > 0.05


# --------------------------------------------------------------------------------------------
# 3. probe against the manifest (ffprobe's figures)


@pytest.mark.parametrize("name", ASSET_NAMES)
def test_probe_matches_manifest(assets: Path, manifest: dict, name: str) -> None:
    row = manifest["video"][f"video/{name}"]
    info = probe(assets / "video" / name)
    width, height = (int(x) for x in row["res"].split("x"))
    assert (info.width, info.height) == (width, height)
    assert info.codec == row["vcodec"]
    assert info.pix_fmt == row["pix"]
    avg = float(Fraction(row["avg"]))
    assert abs(info.duration - float(row["duration"])) <= max(0.1, 2 / avg)
    assert info.avg_fps == pytest.approx(avg, rel=1e-3)
    assert info.has_audio is (row["audio"] != "none")
    if info.has_audio:
        # the decoder's name: "mp3float" for mp3, else the codec's own name
        assert info.audio_codec.startswith(row["audio"].split()[0])
    else:
        assert info.audio_codec is None
    assert info.frame_count == DECODED_FRAMES.get(name, int(row["frames"]))
    assert info.frame_count_source in ("container", "counted")
    assert info.rotation == ROTATION.get(name, 0)
    assert info.path == str(assets / "video" / name)


@pytest.mark.parametrize("name", ["big_buck_bunny_0_30.webm", "win005.mkv", "oa4_launch.webm"])
def test_probe_without_counting_on_matroska(assets: Path, manifest: dict, name: str) -> None:
    info = probe(assets / "video" / name, count_frames=False)
    assert info.frame_count_source in ("estimated", "container")
    true_count = int(manifest["video"][f"video/{name}"]["frames"])
    assert abs(info.frame_count - true_count) <= 0.02 * true_count


@pytest.mark.parametrize("name", ["fire2.mp4", "movie-hello.mpeg", "balle1-vp9.avi"])
def test_probe_as_dict_is_json(assets: Path, name: str) -> None:
    info = probe(assets / "video" / name)
    data = json.loads(json.dumps(info.as_dict()))
    assert data["path"] == info.path
    assert data["frame_count"] == info.frame_count
    assert Fraction(data["time_base"]) == info.time_base
    assert data["rotation"] == info.rotation


# --------------------------------------------------------------------------------------------
# 6. Rotation: a video written here with a display matrix


def _encoder() -> str:
    for codec in ("libx264", "mpeg4"):
        if codec in av.codecs_available:
            return codec
    pytest.skip("neither libx264 nor mpeg4 encoder in this PyAV build")


def write_two_colour_video(path: Path, rotation: int | None, frames: int = 5) -> None:
    """32x16 frames: left half red, right half blue; display matrix rotated ``rotation``
    degrees counter-clockwise."""
    codec = _encoder()
    image = np.zeros((16, 32, 3), dtype=np.uint8)
    image[:, :16] = (255, 0, 0)
    image[:, 16:] = (0, 0, 255)
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream(codec, rate=10)
        stream.width, stream.height = 32, 16
        stream.pix_fmt = "yuv444p" if codec == "libx264" else "yuv420p"
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode())


def colour_at(frame: np.ndarray, y: int, x: int) -> str:
    r, _, b = frame[y, x].astype(int)
    return "red" if r > 200 and b < 60 else "blue" if b > 200 and r < 60 else "other"


@pytest.mark.parametrize("angle", [90, 180, 270, -90])
def test_rotation_is_applied(tmp_path: Path, angle: int) -> None:
    path = tmp_path / f"rot{angle}.mp4"
    write_two_colour_video(path, angle)
    unrotated = tmp_path / "plain.mp4"
    write_two_colour_video(unrotated, None)

    info = probe(path)
    assert info.rotation == angle % 360
    assert (info.width, info.height) == (32, 16)  # coded size; rotation is applied on decode
    clip = read_frames(path, [0, 4])
    plain = read_frames(unrotated, [0, 4])
    assert plain.frames.shape == (2, 16, 32, 3)
    quarter = angle % 180 == 90
    assert clip.frames.shape == ((2, 32, 16, 3) if quarter else (2, 16, 32, 3))
    # FFmpeg's display matrix angle is counter-clockwise, as np.rot90 turns.
    k = (angle % 360) // 90
    for j in range(2):
        assert np.array_equal(clip.frames[j], np.rot90(plain.frames[j], k=k))
    f = clip.frames[0]
    h, w = f.shape[:2]
    if angle % 360 == 90:  # counter-clockwise: the right (blue) half goes to the top
        assert (colour_at(f, 2, w // 2), colour_at(f, h - 3, w // 2)) == ("blue", "red")
    elif angle % 360 == 270:  # clockwise: the left (red) half goes to the top
        assert (colour_at(f, 2, w // 2), colour_at(f, h - 3, w // 2)) == ("red", "blue")
    else:  # 180: left and right swap
        assert (colour_at(f, h // 2, 2), colour_at(f, h // 2, w - 3)) == ("blue", "red")


def test_rotation_with_resize(tmp_path: Path) -> None:
    path = tmp_path / "rot90.mp4"
    write_two_colour_video(path, 90)
    assert read_frames(path, [1], size=(48, 80)).frames.shape == (1, 48, 80, 3)
    assert read_frames(path, [1], size=8).frames.shape == (1, 16, 8, 3)


def test_empty_read_of_rotated_video_has_the_frame_shape(tmp_path: Path) -> None:
    """An empty clip's frames array has the shape real frames have (here, rotated; a regression:
    VideoReader._empty once ignored rotation and gave (0, 16, 32, 3))."""
    path = tmp_path / "rot90.mp4"
    write_two_colour_video(path, 90)
    assert read_frames(path, [1]).frames.shape[1:] == (32, 16, 3)
    assert read_frames(path, []).frames.shape == (0, 32, 16, 3)
    assert read_frames(path, [], size=(48, 80)).frames.shape == (0, 48, 80, 3)
    assert read_frames(path, [], size=8).frames.shape == (0, 16, 8, 3)


def test_empty_read_of_plain_video(assets: Path) -> None:
    clip = read_frames(assets / "video" / "movie.avi", [])
    assert clip.frames.shape == (0, 120, 160, 3)
    assert clip.indices.tolist() == [] and clip.timestamps.tolist() == []


# --------------------------------------------------------------------------------------------
# 7. iter_frames


@pytest.mark.parametrize(
    ("name", "start", "stop", "every"),
    [
        ("cityCC0.mpg", 5, 60, 7),
        ("balle-jbart.mp4", 100, 140, 3),
        ("fire2.mp4", 0, None, 4),
        ("diver.mov", 340, 400, 2),
        ("movie-hello.mpeg", 242, None, 2),  # the last GOP of an MPEG-PS file
        ("cockatoo.mp4", 150, 170, 5),  # a fresh reader's first decode seeks: COLD_SEEK_FILES
    ],
)
def test_iter_frames(assets: Path, name: str, start: int, stop: int | None, every: int) -> None:
    path = assets / "video" / name
    with VideoReader(path) as reader:
        tl = reader.timeline
        got = list(reader.iter_frames(start, stop, every))
    end = len(tl) if stop is None else min(stop, len(tl))
    expected_idx = list(range(start, end, every))
    assert [i for i, _, _ in got] == expected_idx
    assert [t for _, t, _ in got] == tl.timestamps[expected_idx].tolist()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        k = 0
        for i, frame in enumerate(container.decode(stream)):
            if i >= end:
                break
            if i in expected_idx:
                rgb = np.rot90(frame.to_ndarray(format="rgb24"), k=ROTATION.get(name, 0) // 90)
                assert got[k][0] == i
                assert np.array_equal(got[k][2], rgb), f"{name}: frame {i} differs"
                k += 1
        assert k == len(expected_idx)


# --------------------------------------------------------------------------------------------
# Seeking into the last GOP of MPEG-PS files: FFmpeg's seek to the last keyframe lands past every
# decodable packet there, and the reader must step back a keyframe (a regression seen once).

LAST_GOP_FILES = ["cityCC0.mpg", "movie-hello.mpeg"]


@pytest.mark.parametrize("name", LAST_GOP_FILES)
def test_each_frame_of_the_last_gop_reads_alone(assets: Path, name: str) -> None:
    path = assets / "video" / name
    with VideoReader(path) as reader:
        tl = reader.timeline
        last_key = int(tl.keyframes[-1])
        wanted = list(range(last_key, len(tl)))
        got = {}
        for i in wanted:
            clip = read_quietly(reader, [i])
            assert clip.indices.tolist() == [i]
            got[i] = clip.frames[0]
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in got:
                assert np.array_equal(got[i], frame.to_ndarray(format="rgb24")), f"frame {i}"
    assert len(got) == len(wanted) > 0


def test_uniform_sample_reaches_the_last_gop(assets: Path) -> None:
    """uniform(16) on movie-hello.mpeg: its last target (frame 241) lies in the last GOP."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        clip = sample(assets / "video" / "movie-hello.mpeg", uniform(16))
    assert len(clip) == 16
    assert clip.indices[-1] >= 240
    assert clip.truncated is False and clip.exhausted is False
