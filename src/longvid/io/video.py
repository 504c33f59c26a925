"""Frame-accurate video decoding through PyAV, with the exact presentation time of every frame.

What it gives the pipeline is a `Clip`: frames ``uint8 (T, H, W, 3)`` plus, for each frame, its
index in the decoded sequence and its presentation timestamp in seconds. Later stages never
re-derive times from a frame rate, which is what makes 29.97 fps and variable-frame-rate files
come out right.

How frames are found. Opening a file demuxes its video packets once (no decoding) into a
`Timeline`: the presentation timestamp and keyframe flag of every frame. Frame *i* is the *i*-th
frame of a full sequential decode, i.e. the *i*-th smallest packet timestamp. Sparse reads then
*plan*: targets are grouped by the keyframe that precedes them; the decoder runs forward through
a GOP while the next target lies in it and seeks only across GOPs; only target frames are
converted to RGB (and resized on the way, so a long video never sits in memory at full
resolution). The result equals a full sequential decode at the same indices, frame by frame
(tested on every real asset). ``exact=False`` snaps each target to its nearest keyframe and
decodes keyframes only; the returned indices and timestamps are those of the frames returned.

Timestamps are seconds on the player's clock: ``pts * time_base`` minus the container's start
time (so the first frame is at 0.0 for most files, and subtitles line up as a player shows them).

Samplers (each a named function returning a `Sampler`; registry `SAMPLERS`):

- `fps(rate, max_frames)`: the frame on screen at 0, 1/rate, 2/rate, ... s, spread evenly
  when that exceeds ``max_frames``. The default here.
- `uniform(n)`: the frame on screen at the centre of each of n equal time segments.
- `window(start, end, n=, rate=)`: as `uniform` / `fps` (or every frame) inside ``[start, end)``.
- `longva_uniform(n)`: ``np.linspace(0, frames - 1, n)`` truncated to int, over frame indices.
  LongVA inference, its demo and lmms-eval (decord).
- `llamavid_fps(rate)`: every ``round(avg_fps / rate)``-th frame (Python's banker's rounding).
  LLaMA-VID training, CLI and movie feature extraction.
- `ppllava_segments(n)`: the middle of n segments of ``frames - 1``:
  ``int(seg / 2) + round(seg * k)``. PPLLaVA (inherited from PLLaVA).
- `prefix_interval(n, interval)`: frames ``0, interval, ..., (n - 1) * interval``, a prefix of
  the video. MiniGPT4-Video (its parity README, section 2).

A sampler asked for more frames than the video has returns every frame it can (each once) and
the clip is flagged ``exhausted``. A truncated file returns the frames that decode, flagged
``truncated``, with a warning.
"""

from __future__ import annotations

import itertools
import math
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import av.error
import numpy as np
from av.video.reformatter import VideoReformatter

from longvid.errors import InputFileError, SamplingError, VideoDecodeError

Size = int | tuple[int, int] | None
"""Resize on decode: None keeps the decoded size; an int sets the short side (aspect kept);
``(height, width)`` sets both."""

SEEK_GAP = 12
"""Seek only when the target's keyframe lies more than this many frames past the decoder's
position; closer targets are reached faster by decoding forward (a seek flushes the decoder)."""

FrameCountSource = Literal["container", "counted", "estimated"]


# --------------------------------------------------------------------------------------------
# Probing


@dataclass(frozen=True)
class VideoInfo:
    """What a video file says about itself, as `probe` reads it.

    ``frame_count_source`` tells how far to trust ``frame_count``: ``"container"`` (the file's
    own sample index), ``"counted"`` (video packets counted by demuxing, no decode) or
    ``"estimated"`` (duration x average rate).
    """

    path: str
    container: str
    codec: str
    pix_fmt: str | None
    width: int
    height: int
    rotation: int
    duration: float
    avg_fps: float
    real_fps: float
    frame_count: int
    frame_count_source: FrameCountSource
    time_base: Fraction
    start_time: float
    has_audio: bool
    audio_codec: str | None = None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready fields (time base as ``"num/den"``)."""
        out = dict(self.__dict__)
        out["time_base"] = f"{self.time_base.numerator}/{self.time_base.denominator}"
        return out


def _check_file(path: str | os.PathLike[str]) -> Path:
    file = Path(path)
    if not file.exists():
        raise InputFileError("no such file", file)
    if file.is_dir():
        raise InputFileError("is a directory, not a video file", file)
    if file.stat().st_size == 0:
        raise InputFileError("file is empty (0 bytes)", file)
    return file


def _open(file: Path) -> av.container.InputContainer:
    try:
        container = av.open(str(file), mode="r", metadata_errors="ignore")
    except av.error.InvalidDataError as exc:
        raise VideoDecodeError(
            f"not a media file FFmpeg can read ({exc.strerror or 'invalid data'})", file
        ) from exc
    except av.error.FFmpegError as exc:
        raise VideoDecodeError(f"cannot open: {exc.strerror or exc}", file) from exc
    if not container.streams.video:
        kinds = ", ".join(sorted({s.type for s in container.streams})) or "no streams"
        container.close()
        raise VideoDecodeError(f"no video stream (the file has: {kinds})", file)
    stream = container.streams.video[0]
    if stream.codec_context is None:
        container.close()
        raise VideoDecodeError("FFmpeg has no decoder for this video stream", file)
    return container


def _rate(value: Fraction | None) -> float:
    return float(value) if value else 0.0


def probe(path: str | os.PathLike[str], count_frames: bool = True) -> VideoInfo:
    """Read a video's facts: duration, rates, frame count, size, rotation, time base, audio.

    The first frame is decoded, so a file whose video FFmpeg cannot decode fails here with a
    `VideoDecodeError` rather than later. Where the container keeps no sample index (Matroska,
    MPEG-PS, ...), frames are counted by demuxing packets unless ``count_frames=False``, in which
    case the count is estimated from duration and average rate.
    """
    file = _check_file(path)
    with _open(file) as container:
        stream = container.streams.video[0]
        first = _first_frame(container, stream, file)
        count, source = _container_frame_count(container, stream)
        if count is None:
            if count_frames:
                count, source = _count_packets(file), "counted"
            else:
                count = round(_duration(container, stream) * _rate(stream.average_rate))
                source = "estimated"
        audio = container.streams.audio[0] if container.streams.audio else None
        return VideoInfo(
            path=str(file),
            container=container.format.name,
            codec=stream.codec_context.name,
            pix_fmt=stream.codec_context.pix_fmt,
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            rotation=int(first.rotation or 0) % 360,
            duration=_duration(container, stream),
            avg_fps=_rate(stream.average_rate),
            real_fps=_rate(stream.base_rate),
            frame_count=int(count),
            frame_count_source=source,
            time_base=stream.time_base,
            start_time=(container.start_time or 0) / av.time_base,
            has_audio=audio is not None,
            audio_codec=audio.codec_context.name if audio is not None else None,
        )


def _first_frame(container, stream, file: Path) -> av.VideoFrame:
    try:
        for frame in container.decode(stream):
            return frame
    except av.error.FFmpegError as exc:
        raise VideoDecodeError(
            f"video stream cannot be decoded ({exc.strerror or exc})", file
        ) from exc
    raise VideoDecodeError(
        f"video stream ({stream.codec_context.name}) yields no decodable frame", file
    )


def _container_frame_count(container, stream) -> tuple[int | None, FrameCountSource]:
    """The frame count from a complete sample index (MP4/MOV, AVI), else None."""
    entries = stream.index_entries
    if entries is not None and stream.frames and len(entries) >= 0.9 * stream.frames:
        # AVI counts hidden VP9 frames as entries of size 0; they are not decoded frames.
        return sum(1 for entry in entries if entry.size > 0), "container"
    return None, "counted"


def _count_packets(file: Path) -> int:
    with av.open(str(file)) as container:
        stream = container.streams.video[0]
        try:
            return sum(1 for p in container.demux(stream) if p.size and p.pts is not None)
        except av.error.FFmpegError:
            return 0


def _duration(container, stream) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return 0.0


# --------------------------------------------------------------------------------------------
# The timeline: every frame's timestamp and keyframe flag, from packets alone


@dataclass(frozen=True)
class Timeline:
    """Every frame of a video in presentation order, from demuxed packets (no decoding).

    ``timestamps[i]`` is frame i's presentation time in seconds; ``keyframes`` are the indices of
    frames that start a decodable run; ``duration`` runs to the end of the last frame.
    """

    pts: np.ndarray
    timestamps: np.ndarray
    keyframes: np.ndarray
    duration: float
    avg_fps: float
    complete: bool = True

    def __len__(self) -> int:
        return len(self.pts)

    def at_times(self, times: np.ndarray) -> np.ndarray:
        """Index of the frame on screen at each time (the last frame starting at or before it)."""
        idx = np.searchsorted(self.timestamps, np.asarray(times, dtype=np.float64), side="right")
        return np.clip(idx - 1, 0, len(self) - 1)

    def anchor(self, index: np.ndarray | int) -> np.ndarray:
        """Index of the keyframe a decoder must start from to reach each frame exactly."""
        pos = np.searchsorted(self.keyframes, index, side="right") - 1
        return self.keyframes[np.maximum(pos, 0)]

    def nearest_keyframe(self, index: np.ndarray) -> np.ndarray:
        """Index of the keyframe closest in time to each frame (ties go to the earlier one)."""
        key_times = self.timestamps[self.keyframes]
        times = self.timestamps[np.asarray(index)]
        right = np.clip(np.searchsorted(key_times, times), 0, len(key_times) - 1)
        left = np.maximum(right - 1, 0)
        take_left = np.abs(times - key_times[left]) <= np.abs(key_times[right] - times)
        return self.keyframes[np.where(take_left, left, right)]


def _build_timeline(container, stream, file: Path, prime: bool = False) -> Timeline:
    """Demux every video packet once. With ``prime``, the first packet is also decoded, so the
    decoder learns what only the stream's first packet says (x264 writes its version there, and
    FFmpeg's H.264 decoder needs it to decode old x264 4:4:4 streams as a full decode does)."""
    pts: list[int] = []
    keys: list[int] = []
    durations: list[int] = []
    complete = True
    try:
        for packet in container.demux(stream):
            if not packet.size or packet.pts is None:
                continue
            if prime and not pts:
                stream.codec_context.decode(packet)
            pts.append(packet.pts)
            if packet.is_keyframe:
                keys.append(packet.pts)
            if packet.duration:
                durations.append(packet.duration)
    except av.error.FFmpegError:
        complete = False
    if not pts:
        raise VideoDecodeError("no video frames with timestamps found", file)
    pts_arr = np.unique(np.asarray(pts, dtype=np.int64))
    key_idx = np.searchsorted(pts_arr, np.unique(np.asarray(keys, dtype=np.int64)))
    if len(key_idx) == 0 or key_idx[0] != 0:
        key_idx = np.concatenate([[0], key_idx]).astype(np.int64)
    tb = stream.time_base
    # The player's zero: the earliest start of any stream, exactly (no microsecond rounding).
    starts = [
        Fraction(s.start_time) * s.time_base
        for s in container.streams
        if s.start_time is not None and s.time_base is not None
    ]
    origin = min([Fraction(int(pts_arr[0])) * tb, *starts]) / tb
    timestamps = (pts_arr - float(origin)) * float(tb)
    if durations:
        last = float(np.median(durations) * tb)
    elif len(timestamps) > 1:
        last = float(np.median(np.diff(timestamps)))
    else:
        last = 1.0 / _rate(stream.average_rate) if stream.average_rate else 0.0
    duration = float(timestamps[-1] + last)
    avg_fps = _rate(stream.average_rate) or (len(pts_arr) / duration if duration else 0.0)
    return Timeline(pts_arr, timestamps, key_idx, duration, avg_fps, complete)


# --------------------------------------------------------------------------------------------
# Samplers


@dataclass(frozen=True)
class Sampler:
    """A named rule that picks frame indices from a `Timeline`.

    ``describe()`` is stable text (name and arguments) used in cache keys and reports.
    """

    name: str
    args: tuple[tuple[str, object], ...]
    pick: Callable[[Timeline], np.ndarray] = field(compare=False, repr=False)
    wants: int | None = None

    def __call__(self, timeline: Timeline) -> np.ndarray:
        return self.pick(timeline)

    def describe(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.args)
        return f"{self.name}({inner})"


def _positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise SamplingError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _time(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise SamplingError(f"{name} must be a finite time >= 0 s, got {value!r}")
    return value


def _positive_rate(value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise SamplingError(f"rate must be a finite number of frames per second > 0, got {value!r}")
    return value


def _ticks(start: float, stop: float, rate: float) -> np.ndarray:
    """Times ``start + k / rate`` strictly before ``stop`` (``np.arange`` can overshoot it)."""
    times = start + np.arange(math.ceil((stop - start) * rate) + 1) / rate
    return times[times < stop]


def _segment_centres(start: float, end: float, n: int) -> np.ndarray:
    centres = start + (np.arange(n) + 0.5) * (end - start) / n
    return np.minimum(centres, np.nextafter(end, start))  # rounding must not reach ``end``


def uniform(n: int) -> Sampler:
    """n frames evenly spread in time: the frame on screen at the centre of n equal segments."""
    n = _positive_int("n", n)

    def pick(tl: Timeline) -> np.ndarray:
        return tl.at_times(_segment_centres(0.0, tl.duration, n))

    return Sampler("uniform", (("n", n),), pick, wants=n)


def fps(rate: float = 1.0, max_frames: int | None = 64) -> Sampler:
    """The frame on screen at 0, 1/rate, 2/rate, ... seconds; the sensible default.

    When that gives more than ``max_frames``, the frames are spread evenly over the whole
    video instead (as `uniform(max_frames)`), so a long video still fits a model's budget.
    """
    rate = _positive_rate(rate)
    if max_frames is not None:
        max_frames = _positive_int("max_frames", max_frames)

    def pick(tl: Timeline) -> np.ndarray:
        times = _ticks(0.0, tl.duration, rate)
        if max_frames is not None and len(times) > max_frames:
            times = _segment_centres(0.0, tl.duration, max_frames)
        return tl.at_times(times)

    return Sampler("fps", (("rate", rate), ("max_frames", max_frames)), pick)


def window(start: float, end: float, n: int | None = None, rate: float | None = None) -> Sampler:
    """Frames inside ``[start, end)`` seconds: n evenly spread, or at ``rate`` fps, or all.

    A window reaching past the end of the video is cut at the end; one that starts after it
    is a `SamplingError`.
    """
    start, end = _time("start", start), _time("end", end)
    if end <= start:
        raise SamplingError(f"window end ({end} s) must be after its start ({start} s)")
    if n is not None and rate is not None:
        raise SamplingError("window takes n or rate, not both")
    n = _positive_int("n", n) if n is not None else None
    rate = _positive_rate(rate) if rate is not None else None

    def pick(tl: Timeline) -> np.ndarray:
        if start >= tl.duration:
            raise SamplingError(
                f"window {start:g}-{end:g} s starts after the end of the video "
                f"({tl.duration:.3f} s)"
            )
        stop = min(end, tl.duration)
        if n is not None:
            return tl.at_times(_segment_centres(start, stop, n))
        if rate is not None:
            return tl.at_times(_ticks(start, stop, rate))
        inside = (tl.timestamps >= start) & (tl.timestamps < stop)
        return np.flatnonzero(inside) if inside.any() else tl.at_times(np.array([start]))

    args = (("start", start), ("end", end), ("n", n), ("rate", rate))
    return Sampler("window", args, pick, wants=n)


def longva_uniform(n: int) -> Sampler:
    """LongVA's video sampling: ``np.linspace(0, frames - 1, n, dtype=int)`` over indices."""
    n = _positive_int("n", n)

    def pick(tl: Timeline) -> np.ndarray:
        return np.linspace(0, len(tl) - 1, n, dtype=int)

    return Sampler("longva_uniform", (("n", n),), pick, wants=n)


def llamavid_fps(rate: float = 1.0) -> Sampler:
    """LLaMA-VID's sampling: every ``round(avg_fps / rate)``-th frame from frame 0.

    Faithful to the reference, including Python's round-half-even (12.5 fps at 1 fps steps by
    12) and the drift it causes at 29.97 fps; the timestamps returned are the true ones.
    """
    rate = _positive_rate(rate)

    def pick(tl: Timeline) -> np.ndarray:
        step = round(tl.avg_fps / rate)
        if step < 1:
            raise SamplingError(
                f"llamavid_fps: round(avg_fps {tl.avg_fps:g} / rate {rate:g}) is 0; "
                "the reference fails here too"
            )
        return np.arange(0, len(tl), step)

    return Sampler("llamavid_fps", (("rate", rate),), pick)


def ppllava_segments(n: int) -> Sampler:
    """PPLLaVA's sampling (from PLLaVA): the middle frame of n segments of ``frames - 1``."""
    n = _positive_int("n", n)

    def pick(tl: Timeline) -> np.ndarray:
        seg = (len(tl) - 1) / n
        offsets = [int(seg / 2) + int(np.round(seg * k)) for k in range(n)]
        return np.clip(np.asarray(offsets, dtype=np.int64), 0, len(tl) - 1)

    return Sampler("ppllava_segments", (("n", n),), pick, wants=n)


def prefix_interval(n: int, interval: int) -> Sampler:
    """Frames ``0, interval, ..., (n-1)*interval``: MiniGPT4-Video's decoding primitive.

    The reference computes ``interval = max(1, int(int(duration * fps) / n))`` and stops after n
    slots, so it can cover only a prefix of the video; that rule belongs to its compressor.
    """
    n, interval = _positive_int("n", n), _positive_int("interval", interval)

    def pick(tl: Timeline) -> np.ndarray:
        idx = np.arange(n, dtype=np.int64) * interval
        return idx[idx < len(tl)]

    return Sampler("prefix_interval", (("n", n), ("interval", interval)), pick, wants=n)


SAMPLERS: dict[str, Callable[..., Sampler]] = {
    "fps": fps,
    "uniform": uniform,
    "window": window,
    "longva_uniform": longva_uniform,
    "llamavid_fps": llamavid_fps,
    "ppllava_segments": ppllava_segments,
    "prefix_interval": prefix_interval,
}


def get_sampler(name: str, **kwargs: object) -> Sampler:
    """Build a registered sampler by name (``get_sampler("fps", rate=0.5, max_frames=32)``)."""
    if name not in SAMPLERS:
        raise SamplingError(f"unknown sampler {name!r}; known: {', '.join(SAMPLERS)}")
    try:
        return SAMPLERS[name](**kwargs)
    except TypeError as exc:
        raise SamplingError(f"sampler {name!r}: {exc}") from exc


# --------------------------------------------------------------------------------------------
# Clips and the reader


@dataclass
class Clip:
    """Sampled frames of one video with the exact time of each.

    ``exhausted``: the sampler asked for more frames than the video has, so every frame it
    could use is here, each once. ``truncated``: the file ended or broke before some targets;
    the frames that decoded are here.
    """

    frames: np.ndarray
    timestamps: np.ndarray
    indices: np.ndarray
    path: str
    info: VideoInfo
    sampler: str = ""
    exhausted: bool = False
    truncated: bool = False

    def __len__(self) -> int:
        return len(self.indices)


def _check_size(size: Size) -> Size:
    """Refuse resize targets that describe no image, before any decoding starts."""
    sides = size if isinstance(size, tuple) else (size,) if size is not None else ()
    if isinstance(size, tuple) and len(size) != 2:
        raise SamplingError(f"resize size must be (height, width), got {size!r}")
    for side in sides:
        if isinstance(side, bool) or not isinstance(side, (int, np.integer)) or side < 1:
            raise SamplingError(f"resize sides must be whole numbers of pixels >= 1, got {size!r}")
    return tuple(int(x) for x in size) if isinstance(size, tuple) else size


class _IndexMismatch(Exception):
    """Decoded timestamps disagree with the demuxed index; fall back to a sequential decode."""


class VideoReader:
    """An open video with its timeline, for repeated sparse reads.

    Use as a context manager; `sample` and `read_frames` open and close one for you.
    ``skip_nonref`` lets the decoder skip frames that no other frame refers to (B-frames,
    mostly) on its way to a target; it changes no output and roughly halves the work.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        size: Size = None,
        threads: int = 0,
        interpolation: str = "BILINEAR",
        skip_nonref: bool = True,
    ) -> None:
        self.file = _check_file(path)
        self.size = _check_size(size)
        self.threads = threads
        self.interpolation = interpolation
        self.skip_nonref = skip_nonref
        self.info = probe(self.file, count_frames=False)
        self._container = _open(self.file)
        self._stream = self._prepare_stream()
        self.timeline = _build_timeline(self._container, self._stream, self.file, prime=True)
        self._index_of = {int(p): i for i, p in enumerate(self.timeline.pts)}
        self._truncated = not self.timeline.complete
        listed = self.info.frame_count if self.info.frame_count_source == "container" else 0
        if len(self.timeline) < listed or self._truncated:
            self._truncated = True
            warnings.warn(
                f"{self.file}: file is truncated or damaged; {len(self.timeline)} frames are "
                f"readable" + (f" of the {listed} its index lists" if listed else ""),
                stacklevel=2,
            )
        self._progress: Callable[[int, int], None] | None = None
        self._done = 0
        self._reformatter = VideoReformatter()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the file."""
        self._container.close()

    # -- decoder plumbing ------------------------------------------------------------------
    def _prepare_stream(self) -> av.video.stream.VideoStream:
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = self.threads
        return stream

    def _seek(self, keyframe: int) -> None:
        """Put the demuxer at (or before) the keyframe with this frame index; reset the decoder."""
        if keyframe == 0:
            self._container.close()
            self._container = _open(self.file)
            self._stream = self._prepare_stream()
        else:
            pts = int(self.timeline.pts[keyframe])
            self._container.seek(pts, stream=self._stream, backward=True, any_frame=False)
        self._stream.codec_context.flush_buffers()

    def _packets_from(self, keyframe: int) -> Iterator[av.Packet]:
        """Video packets from a keyframe on; decoding always starts on a keyframe packet.

        Where a container's seek lands past the keyframe (an imprecise index), step back a
        keyframe at a time, down to the start of the file.
        """
        keyframes = self.timeline.keyframes
        pos = int(np.searchsorted(keyframes, keyframe))
        while True:
            self._seek(int(keyframes[pos]))
            packets = (
                p for p in self._container.demux(self._stream) if p.size and p.pts is not None
            )
            first = next((p for p in packets if p.is_keyframe), None)
            if first is None and pos == 0:
                return
            if first is not None and (first.pts <= self.timeline.pts[keyframes[pos]] or pos == 0):
                yield first
                yield from packets
                return
            pos -= 1

    def _collect(
        self, frames: Sequence[av.VideoFrame], wanted: dict[int, int], out: dict[int, np.ndarray]
    ) -> None:
        for frame in frames:
            if frame.pts is None:
                continue
            if frame.pts not in self._index_of:
                raise _IndexMismatch(frame.pts)
            index = wanted.get(frame.pts)
            if index is not None and index not in out:
                out[index] = self._to_rgb(frame)
                self._done += 1
                if self._progress is not None:
                    self._progress(self._done, self._total)

    def _run(
        self, keyframe: int, targets: Sequence[int], out: dict[int, np.ndarray], mode: str
    ) -> None:
        """Decode forward from a keyframe until every target's packet is in, then drain.

        ``mode``: ``"keyframes"`` feeds only the target (key)frames' packets; ``"skip"`` lets
        the decoder drop frames nothing refers to unless they are targets; ``"full"`` decodes
        every frame.
        """
        wanted = {int(self.timeline.pts[t]): int(t) for t in targets}
        pending = set(wanted)
        try:
            packets = self._packets_from(keyframe)
            first = next(packets, None)  # seeks, and may reopen the file: take the context after
            ctx = self._stream.codec_context
            ctx.skip_frame = "DEFAULT"
            for packet in itertools.chain([first] if first is not None else [], packets):
                is_target = packet.pts in pending
                if mode == "keyframes" and not is_target:
                    continue
                if mode == "skip":
                    ctx.skip_frame = "DEFAULT" if is_target else "NONREF"
                self._collect(ctx.decode(packet), wanted, out)
                pending.discard(packet.pts)
                if not pending:
                    break
            ctx.skip_frame = "DEFAULT"
            self._collect(ctx.decode(None), wanted, out)
        except av.error.FFmpegError:
            self._truncated = True

    def _plan(self, targets: np.ndarray) -> list[tuple[int, list[int]]]:
        """Group ascending targets into runs: (keyframe to seek to, targets decoded in one go).

        A target joins the current run when its keyframe lies at most `SEEK_GAP` frames past
        the previous target, i.e. when decoding on is cheaper than seeking.
        """
        runs: list[tuple[int, list[int]]] = []
        anchors = self.timeline.anchor(targets).tolist()
        for target, anchor in zip(targets.tolist(), anchors, strict=True):
            if runs and anchor <= runs[-1][1][-1] + SEEK_GAP:
                runs[-1][1].append(target)
            else:
                runs.append((anchor, [target]))
        return runs

    # -- conversion ------------------------------------------------------------------------
    def _output_size(self) -> tuple[int, int] | None:
        """(height, width) before rotation, or None to keep the decoded size."""
        if self.size is None:
            return None
        rotated = self.info.rotation in (90, 270)
        w, h = self.info.width, self.info.height
        if isinstance(self.size, tuple):
            out_h, out_w = self.size
            return (out_w, out_h) if rotated else (out_h, out_w)
        scale = self.size / min(w, h)
        return max(1, round(h * scale)), max(1, round(w * scale))

    def _to_rgb(self, frame: av.VideoFrame) -> np.ndarray:
        # One reformatter for the whole read: its scaler is set up once, not per frame (x10).
        out = self._output_size()
        if out is None:
            rgb = self._reformatter.reformat(frame, format="rgb24").to_ndarray()
        else:
            rgb = self._reformatter.reformat(
                frame, format="rgb24", height=out[0], width=out[1], interpolation=self.interpolation
            ).to_ndarray()
        if self.info.rotation:
            rgb = np.ascontiguousarray(np.rot90(rgb, k=self.info.rotation // 90))
        return rgb

    def _empty(self) -> np.ndarray:
        height, width = self._output_size() or (self.info.height, self.info.width)
        if self.info.rotation in (90, 270):
            height, width = width, height
        return np.zeros((0, height, width, 3), dtype=np.uint8)

    # -- public reads ----------------------------------------------------------------------
    def read(
        self,
        indices: Sequence[int] | np.ndarray,
        exact: bool = True,
        progress: Callable[[int, int], None] | None = None,
    ) -> Clip:
        """Decode the frames at these indices, returned in the order given (repeats allowed).

        ``exact=False`` returns, for each index, the keyframe nearest to it (decoding keyframes
        only); the clip's indices and timestamps say which frames those are. ``progress`` is
        called as ``progress(done, total)`` after each frame is decoded (for progress bars).
        """
        wanted = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(self.timeline)
        if len(wanted) and (wanted.min() < 0 or wanted.max() >= n):
            raise SamplingError(f"frame indices must lie in 0..{n - 1}", self.file)
        if not exact:
            wanted = self.timeline.nearest_keyframe(wanted)
        targets = np.unique(wanted)
        self._progress, self._done, self._total = progress, 0, len(targets)
        decoded: dict[int, np.ndarray] = {}
        mode = "keyframes" if not exact else ("skip" if self.skip_nonref else "full")
        try:
            for keyframe, group in self._plan(targets):
                self._run(keyframe, group, decoded, mode)
            missed = np.asarray([t for t in targets if t not in decoded], dtype=np.int64)
            if len(missed) and mode != "full" and not self._truncated:
                # A packet's timestamp did not name its frame: decode those again in full.
                for keyframe, group in self._plan(missed):
                    self._run(keyframe, group, decoded, "full")
        except _IndexMismatch:
            decoded = self._decode_sequential(targets)
        got = np.asarray([i for i in wanted if i in decoded], dtype=np.int64)
        if len(got) < len(wanted):
            self._truncated = True
            warnings.warn(
                f"{self.file}: file ends early or is damaged; "
                f"{len(got)} of {len(wanted)} frames decoded",
                stacklevel=2,
            )
        frames = np.stack([decoded[i] for i in got]) if len(got) else self._empty()
        return Clip(
            frames=frames,
            timestamps=self.timeline.timestamps[got],
            indices=got,
            path=str(self.file),
            info=self.info,
            truncated=self._truncated,
        )

    def _frames_from(self, keyframe: int) -> Iterator[tuple[int, av.VideoFrame]]:
        """Every frame from a keyframe on, in presentation order, with its index."""
        try:
            packets = self._packets_from(keyframe)
            first = next(packets, None)  # seeks, and may reopen the file: take the context after
            ctx = self._stream.codec_context
            ctx.skip_frame = "DEFAULT"
            for packet in itertools.chain([first] if first is not None else [], packets, [None]):
                for frame in ctx.decode(packet):
                    index = self._index_of.get(frame.pts) if frame.pts is not None else None
                    if index is not None:
                        yield index, frame
        except av.error.FFmpegError:
            self._truncated = True

    def _decode_sequential(self, targets: np.ndarray) -> dict[int, np.ndarray]:
        """Decode from the start, counting frames; the fallback when timestamps mislead."""
        wanted = {int(t) for t in targets}
        decoded: dict[int, np.ndarray] = {}
        self._seek(0)
        try:
            for index, frame in enumerate(self._container.decode(self._stream)):
                if index in wanted:
                    decoded[index] = self._to_rgb(frame)
                    if len(decoded) == len(wanted):
                        break
        except av.error.FFmpegError:
            self._truncated = True
        return decoded

    def iter_frames(
        self, start: int = 0, stop: int | None = None, every: int = 1
    ) -> Iterator[tuple[int, float, np.ndarray]]:
        """Decode sequentially from frame ``start`` and yield ``(index, seconds, rgb)`` for
        every ``every``-th frame before ``stop``: streaming access for frame-by-frame loops
        (MiniGPT4-Video's subtitle walk) without holding the video in memory."""
        every = _positive_int("every", every)
        stop = len(self.timeline) if stop is None else min(stop, len(self.timeline))
        if not 0 <= start < stop:
            raise SamplingError(f"start frame {start} outside 0..{stop - 1}", self.file)
        for index, frame in self._frames_from(int(self.timeline.anchor(start))):
            if index >= stop:
                return
            if index >= start and (index - start) % every == 0:
                yield index, float(self.timeline.timestamps[index]), self._to_rgb(frame)


def sample(
    path: str | os.PathLike[str],
    sampler: Sampler | str = "fps",
    size: Size = None,
    exact: bool = True,
    threads: int = 0,
    progress: Callable[[int, int], None] | None = None,
    **sampler_args: object,
) -> Clip:
    """Open a video, pick frames with a sampler, and decode them with their timestamps.

    ``sampler`` is a `Sampler` (``uniform(32)``) or a registered name with its arguments
    (``sample(path, "fps", rate=0.5, max_frames=32)``); the default is ``fps(1.0, 64)``.
    """
    if isinstance(sampler, str):
        sampler = get_sampler(sampler, **sampler_args)
    elif sampler_args:
        raise SamplingError("sampler arguments go to the sampler when it is given by name")
    with VideoReader(path, size=size, threads=threads) as reader:
        try:
            indices = sampler(reader.timeline)
        except SamplingError as exc:
            if exc.path is not None:
                raise
            raise SamplingError(exc.problem, reader.file) from exc
        unique = np.unique(indices)
        exhausted = sampler.wants is not None and len(unique) < sampler.wants
        if exhausted:
            warnings.warn(
                f"{reader.file}: {sampler.describe()} asks for {sampler.wants} frames but the "
                f"video has {len(reader.timeline)} to offer; returning {len(unique)}",
                stacklevel=2,
            )
        clip = reader.read(unique, exact=exact, progress=progress)
    clip.sampler = sampler.describe()
    clip.exhausted = exhausted
    return clip


def read_frames(
    path: str | os.PathLike[str],
    indices: Sequence[int] | np.ndarray,
    size: Size = None,
    exact: bool = True,
) -> Clip:
    """Decode the frames at the given indices (frame i = the i-th frame of a full decode)."""
    with VideoReader(path, size=size) as reader:
        return reader.read(indices, exact=exact)
