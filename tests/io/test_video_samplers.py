"""Tests of the frame samplers of longvid.io.video on hand-built timelines (no video needed),
their properties under hypothesis, and `sample`'s exhaustion, naming and progress on real files.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from longvid.errors import SamplingError
from longvid.io.video import (
    SAMPLERS,
    Timeline,
    VideoReader,
    fps,
    get_sampler,
    llamavid_fps,
    longva_uniform,
    ppllava_segments,
    prefix_interval,
    sample,
    uniform,
    window,
)


def cfr(n: int, rate: float, start: float = 0.0) -> Timeline:
    """A constant-frame-rate timeline: frame i at start + i / rate."""
    ts = start + np.arange(n, dtype=np.float64) / rate
    return Timeline(
        pts=np.arange(n, dtype=np.int64),
        timestamps=ts,
        keyframes=np.array([0], dtype=np.int64),
        duration=float(start + n / rate),
        avg_fps=float(rate),
    )


def vfr(timestamps, duration: float) -> Timeline:
    ts = np.asarray(timestamps, dtype=np.float64)
    return Timeline(
        pts=np.arange(len(ts), dtype=np.int64),
        timestamps=ts,
        keyframes=np.array([0], dtype=np.int64),
        duration=float(duration),
        avg_fps=len(ts) / duration,
    )


def ppllava_reference(n_frames: int, n: int) -> list[int]:
    seg = (n_frames - 1) / n
    return [int(seg / 2) + int(np.round(seg * k)) for k in range(n)]


# --------------------------------------------------------------------------------------------
# Exact picks on hand-built timelines


def test_longva_uniform() -> None:
    assert longva_uniform(4)(cfr(10, 25)).tolist() == [0, 3, 6, 9]
    assert longva_uniform(3)(cfr(10, 25)).tolist() == [0, 4, 9]
    assert longva_uniform(1)(cfr(10, 25)).tolist() == [0]
    # more asked than there are frames: repeats (the reference's behaviour), in range
    assert longva_uniform(5)(cfr(3, 25)).tolist() == [0, 0, 1, 1, 2]


def test_llamavid_fps_steps_by_rounded_rate() -> None:
    ntsc = cfr(249, 30000 / 1001)
    assert llamavid_fps(1.0)(ntsc).tolist() == list(range(0, 249, 30))
    # banker's rounding: round(12.5) == 12, round(2.5) == 2, round(3.5) == 4
    assert llamavid_fps(1.0)(cfr(100, 12.5)).tolist() == list(range(0, 100, 12))
    assert llamavid_fps(1.0)(cfr(20, 2.5)).tolist() == list(range(0, 20, 2))
    assert llamavid_fps(1.0)(cfr(20, 3.5)).tolist() == list(range(0, 20, 4))
    assert llamavid_fps(2.0)(cfr(100, 25)).tolist() == list(range(0, 100, 12))


def test_llamavid_fps_step_zero_is_an_error() -> None:
    with pytest.raises(SamplingError, match="round"):
        llamavid_fps(10.0)(cfr(10, 4))  # round(0.4) == 0


def test_ppllava_segments() -> None:
    tl = cfr(100, 25)
    assert ppllava_segments(8)(tl).tolist() == [6, 18, 31, 43, 56, 68, 80, 93]
    assert ppllava_segments(8)(tl).tolist() == ppllava_reference(100, 8)
    assert ppllava_segments(3)(cfr(1, 25)).tolist() == [0, 0, 0]


def test_prefix_interval() -> None:
    assert prefix_interval(45, 3)(cfr(200, 25)).tolist() == list(range(0, 135, 3))
    assert prefix_interval(45, 3)(cfr(200, 25))[-1] == 132
    # a short video: only the prefix that exists
    assert prefix_interval(45, 3)(cfr(100, 25)).tolist() == list(range(0, 100, 3))


def test_uniform_takes_segment_centres() -> None:
    # 10 frames at 10 fps (1 s): centres 0.125, 0.375, 0.625, 0.875 s
    assert uniform(4)(cfr(10, 10)).tolist() == [1, 3, 6, 8]
    assert uniform(1)(cfr(10, 10)).tolist() == [5]
    # VFR: the frame on screen at each centre (centres 1.25, 3.75 s of a 5 s video)
    assert uniform(2)(vfr([0.0, 1.0, 3.0, 4.0], duration=5.0)).tolist() == [1, 2]
    # two centres on one long frame: the same frame twice
    assert uniform(2)(vfr([0.0, 1.0, 1.2, 4.0], duration=5.0)).tolist() == [2, 2]


def test_fps_takes_the_frame_on_screen_at_each_step() -> None:
    assert fps(1.0)(cfr(95, 10)).tolist() == list(range(0, 95, 10))
    assert fps(2.0, max_frames=None)(cfr(40, 10)).tolist() == list(range(0, 40, 5))
    # 50 steps > max_frames: spread as uniform(3) (centres 16.67, 50, 83.33 s)
    assert fps(0.5, max_frames=3)(cfr(1000, 10)).tolist() == [166, 500, 833]


def test_window() -> None:
    tl = cfr(95, 10)  # 9.5 s
    assert window(2.0, 3.0)(tl).tolist() == list(range(20, 30))
    assert window(2.0, 3.0, n=2)(tl).tolist() == [22, 27]
    assert window(2.0, 3.0, rate=4)(tl).tolist() == [20, 22, 25, 27]
    assert window(9.0, 100.0)(tl).tolist() == [90, 91, 92, 93, 94]  # cut at the end
    # no frame starts inside: the frame on screen at the start
    assert window(1.0, 2.0)(vfr([0.0, 5.0, 10.0], duration=11.0)).tolist() == [0]
    with pytest.raises(SamplingError, match="after the end"):
        window(9.5, 12.0)(tl)


def test_describe_is_stable_text() -> None:
    assert fps(0.5, 32).describe() == "fps(rate=0.5, max_frames=32)"
    assert fps(1).describe() == "fps(rate=1.0, max_frames=64)"
    assert fps(2.0, None).describe() == "fps(rate=2.0, max_frames=None)"
    assert uniform(8).describe() == "uniform(n=8)"
    assert uniform(np.int64(8)).describe() == "uniform(n=8)"
    assert window(1, 2).describe() == "window(start=1.0, end=2.0, n=None, rate=None)"
    assert window(0, 10, n=4).describe() == "window(start=0.0, end=10.0, n=4, rate=None)"
    assert longva_uniform(32).describe() == "longva_uniform(n=32)"
    assert llamavid_fps().describe() == "llamavid_fps(rate=1.0)"
    assert ppllava_segments(16).describe() == "ppllava_segments(n=16)"
    assert prefix_interval(45, 3).describe() == "prefix_interval(n=45, interval=3)"


def test_registry_and_get_sampler() -> None:
    assert set(SAMPLERS) == {
        "fps",
        "uniform",
        "window",
        "longva_uniform",
        "llamavid_fps",
        "ppllava_segments",
        "prefix_interval",
    }
    assert SAMPLERS["uniform"] is uniform
    built = get_sampler("fps", rate=0.5, max_frames=32)
    assert built.describe() == "fps(rate=0.5, max_frames=32)"
    assert built == fps(0.5, 32)  # samplers compare by name and arguments
    assert built != fps(0.5, 31)
    tl = cfr(300, 25)
    for name, kwargs in [
        ("uniform", {"n": 7}),
        ("window", {"start": 1.0, "end": 4.0, "n": 3}),
        ("longva_uniform", {"n": 5}),
        ("llamavid_fps", {"rate": 2.0}),
        ("ppllava_segments", {"n": 6}),
        ("prefix_interval", {"n": 4, "interval": 9}),
    ]:
        assert np.array_equal(get_sampler(name, **kwargs)(tl), SAMPLERS[name](**kwargs)(tl))
    with pytest.raises(SamplingError, match="unknown sampler 'nope'"):
        get_sampler("nope")
    with pytest.raises(SamplingError, match="fps"):
        get_sampler("fps", frames=3)


# --------------------------------------------------------------------------------------------
# Properties


@st.composite
def timelines(draw, constant_rate: bool | None = None, start: float | None = None) -> Timeline:
    n = draw(st.integers(1, 400))
    if start is None:
        start = draw(st.sampled_from([0.0, 0.0094, 0.5]))
    is_cfr = draw(st.booleans()) if constant_rate is None else constant_rate
    if is_cfr:
        rate = draw(
            st.one_of(
                st.sampled_from([10.505, 12.0, 23.976, 24.0, 25.0, 30000 / 1001, 60.0, 187.35]),
                st.floats(1.0, 240.0),
            )
        )
        return cfr(n, rate, start)
    gaps = np.asarray(draw(st.lists(st.floats(1e-3, 2.0), min_size=n, max_size=n)))
    ts = start + np.concatenate([[0.0], np.cumsum(gaps[:-1])])
    return vfr(ts, duration=float(ts[-1] + gaps[-1]))


def check_in_range(idx: np.ndarray, tl: Timeline) -> None:
    assert idx.dtype.kind == "i"
    if len(idx):
        assert idx.min() >= 0 and idx.max() < len(tl)


@settings(max_examples=150, deadline=None)
@given(
    tl=timelines(),
    n=st.integers(1, 600),
    rate=st.floats(0.01, 50.0),
    interval=st.integers(1, 50),
)
def test_every_sampler_stays_in_range(tl: Timeline, n: int, rate: float, interval: int) -> None:
    for sampler in [
        uniform(n),
        fps(rate, n),
        fps(rate, None),
        longva_uniform(n),
        ppllava_segments(n),
        prefix_interval(n, interval),
    ]:
        idx = np.asarray(sampler(tl))
        check_in_range(idx, tl)
    if round(tl.avg_fps / rate) >= 1:
        check_in_range(np.asarray(llamavid_fps(rate)(tl)), tl)
    else:
        with pytest.raises(SamplingError):
            llamavid_fps(rate)(tl)


@settings(max_examples=150, deadline=None)
@given(tl=timelines(), n=st.integers(1, 600), rate=st.floats(0.01, 50.0), data=st.data())
def test_time_samplers_are_non_decreasing(tl: Timeline, n: int, rate: float, data) -> None:
    start = data.draw(st.floats(0.0, tl.duration, exclude_max=True))
    end = data.draw(st.floats(start, start + 100.0, exclude_min=True))
    for sampler in [
        uniform(n),
        fps(rate, n),
        window(start, end),
        window(start, end, n=n),
        window(start, end, rate=rate),
    ]:
        idx = np.asarray(sampler(tl))
        check_in_range(idx, tl)
        assert len(idx) > 0
        assert np.all(np.diff(idx) >= 0)


@settings(max_examples=200, deadline=None)
@given(tl=timelines(constant_rate=True, start=0.0), data=st.data())
def test_uniform_on_cfr_gives_distinct_frames(tl: Timeline, data) -> None:
    n = data.draw(st.integers(1, len(tl)))
    idx = uniform(n)(tl)
    assert len(idx) == n
    assert len(np.unique(idx)) == n


@settings(max_examples=150, deadline=None)
@given(tl=timelines(), rate=st.floats(0.01, 200.0), max_frames=st.integers(1, 100))
def test_fps_never_exceeds_max_frames(tl: Timeline, rate: float, max_frames: int) -> None:
    idx = fps(rate, max_frames)(tl)
    steps = len(np.arange(0.0, tl.duration, 1.0 / rate))
    assert len(idx) == min(steps, max_frames)
    assert len(idx) <= max_frames


@settings(max_examples=200, deadline=None)
@given(tl=timelines(), data=st.data())
def test_window_frames_lie_inside_the_window(tl: Timeline, data) -> None:
    start = data.draw(st.floats(0.0, tl.duration, exclude_max=True))
    end = data.draw(st.floats(start, start + 50.0, exclude_min=True))
    stop = min(end, tl.duration)
    ts = tl.timestamps
    idx = window(start, end)(tl)
    inside = np.flatnonzero((ts >= start) & (ts < stop))
    if len(inside):
        # every frame that starts in [start, end), and only those
        assert idx.tolist() == inside.tolist()
        assert np.all((ts[idx] >= start) & (ts[idx] < end))
    else:
        # none starts there: the one frame on screen at `start` (or the first frame)
        assert len(idx) == 1
        assert ts[idx[0]] <= start or idx[0] == 0
        assert idx[0] == len(tl) - 1 or ts[idx[0] + 1] > start
    # n= / rate=: the frame on screen at each sample time, so on screen during the window
    for picked in (window(start, end, n=5)(tl), window(start, end, rate=3.0)(tl)):
        for i in picked.tolist():
            assert ts[i] < stop or i == 0
            assert i == len(tl) - 1 or ts[i + 1] > start


@settings(max_examples=150, deadline=None)
@given(tl=timelines(), n=st.integers(1, 500), interval=st.integers(1, 40))
def test_index_samplers_follow_their_references(tl: Timeline, n: int, interval: int) -> None:
    frames = len(tl)
    assert longva_uniform(n)(tl).tolist() == [int(x) for x in np.linspace(0, frames - 1, n)]
    expected = np.clip(ppllava_reference(frames, n), 0, frames - 1).tolist()
    assert ppllava_segments(n)(tl).tolist() == expected
    assert prefix_interval(n, interval)(tl).tolist() == [
        k * interval for k in range(n) if k * interval < frames
    ]


# --------------------------------------------------------------------------------------------
# `sample` on real files: exhaustion, names, progress


def test_asking_more_frames_than_the_video_has(assets: Path) -> None:
    path = assets / "video" / "movie.avi"  # 68 frames
    with pytest.warns(UserWarning, match="asks for 10000 frames"):
        clip = sample(path, uniform(10_000))
    assert clip.exhausted is True
    assert clip.truncated is False
    assert clip.indices.tolist() == list(range(68))  # every frame, once
    assert clip.frames.shape == (68, 120, 160, 3)
    assert np.all(np.diff(clip.timestamps) > 0)
    assert clip.sampler == "uniform(n=10000)"


def test_prefix_longer_than_the_video_is_exhausted(assets: Path) -> None:
    with pytest.warns(UserWarning, match="asks for 45 frames"):
        clip = sample(assets / "video" / "movie.avi", prefix_interval(45, 3))
    assert clip.exhausted is True
    assert clip.indices.tolist() == list(range(0, 68, 3))


def test_enough_frames_is_not_exhausted(assets: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        clip = sample(assets / "video" / "movie.avi", longva_uniform(8))
    assert clip.exhausted is False and clip.truncated is False
    assert clip.indices.tolist() == [int(x) for x in np.linspace(0, 67, 8)]


def test_sampler_by_name_equals_sampler_object(assets: Path) -> None:
    path = assets / "video" / "balle1-vp9.avi"
    by_name = sample(path, "uniform", n=6, size=32)
    by_object = sample(path, uniform(6), size=32)
    assert by_name.sampler == by_object.sampler == "uniform(n=6)"
    assert by_name.indices.tolist() == by_object.indices.tolist()
    assert np.array_equal(by_name.frames, by_object.frames)
    with VideoReader(path) as reader:
        assert by_name.indices.tolist() == uniform(6)(reader.timeline).tolist()
        assert np.array_equal(by_name.timestamps, reader.timeline.timestamps[by_name.indices])
    assert sample(path).sampler == "fps(rate=1.0, max_frames=64)"  # the default


def test_fast_sample_returns_keyframes(assets: Path) -> None:
    path = assets / "video" / "intro.mpg"
    clip = sample(path, uniform(10), exact=False)
    with VideoReader(path) as reader:
        keyframes = set(reader.timeline.keyframes.tolist())
        assert np.array_equal(clip.timestamps, reader.timeline.timestamps[clip.indices])
    assert 0 < len(clip) <= 10
    assert set(clip.indices.tolist()) <= keyframes


def test_progress_is_reported(assets: Path) -> None:
    calls: list[tuple[int, int]] = []
    clip = sample(
        assets / "video" / "oa4_launch.webm", uniform(5), progress=lambda d, t: calls.append((d, t))
    )
    assert len(clip) == 5
    assert calls == [(k, 5) for k in range(1, 6)]


def test_sample_the_whole_short_video_at_its_own_rate(assets: Path) -> None:
    """fps at the video's own rate with no cap picks (almost) every frame of a CFR file."""
    path = assets / "video" / "balle1-vp9.avi"
    with VideoReader(path) as reader:
        tl = reader.timeline
    idx = fps(tl.avg_fps, None)(tl)
    assert len(idx) == len(np.arange(0.0, tl.duration, 1.0 / tl.avg_fps))
    assert len(np.unique(idx)) >= 0.95 * len(tl)
    assert math.isclose(tl.avg_fps, 78125 / 417, rel_tol=1e-9)
