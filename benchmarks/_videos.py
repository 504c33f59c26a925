"""Long test videos for the benchmarks, built from the real assets in ``shared/assets/video``.

`build_long_video(minutes, out_dir)` re-encodes every asset end to end, looping over the list
until the requested length is reached, into one H.264 file:

* libx264 through PyAV, preset ``veryfast``, 640x360, ``yuv420p``, constant 24 fps
  (time base 1/24, one frame every tick);
* a fixed GOP of 250 frames (``keyint=250:min-keyint=250:scenecut=0``, so a keyframe every
  250 frames and nowhere else); B-frames and everything else left at x264's defaults;
* every source is retimed to 24 fps by its real presentation timestamps: output frame ``k`` of
  an asset, at local time ``k / 24``, shows the source frame on screen at that time (frames are
  repeated or dropped as needed; this also handles the variable-frame-rate sources);
* every frame is scaled (stretched, aspect ratio not kept) to 640x360 -- a benchmark of the
  decoder, not of the picture, so no letterboxing;
* no audio.

The result is cached as ``long_{minutes}min.mp4`` in ``out_dir`` (written under a temporary
name, then renamed) and reused when it exists. A source that fails to decode is skipped with a
printed note.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import av.error
from av.video.frame import PictureType, VideoFrame

FPS = 24
WIDTH = 640
HEIGHT = 360
GOP = 250
PRESET = "veryfast"

ASSETS_DIR = Path(__file__).resolve().parents[2] / "shared" / "assets" / "video"
REPO_ROOT = Path(__file__).resolve().parents[1]
CACHE_DIR = REPO_ROOT / "build" / "bench-videos"

_VIDEO_SUFFIXES = {".mp4", ".mkv", ".webm", ".mov", ".avi", ".mpg", ".mpeg", ".m4v", ".ts"}


def video_name(minutes: float) -> str:
    """File name of the cached video, e.g. ``long_10min.mp4`` or ``long_0.5min.mp4``."""
    text = f"{minutes:g}"
    return f"long_{text}min.mp4"


def list_assets(assets_dir: Path = ASSETS_DIR) -> list[Path]:
    """The source videos, sorted by name (the loop order of the long video)."""
    if not assets_dir.is_dir():
        raise FileNotFoundError(f"asset folder not found: {assets_dir}")
    paths = sorted(
        p for p in assets_dir.iterdir() if p.is_file() and p.suffix.lower() in _VIDEO_SUFFIXES
    )
    if not paths:
        raise FileNotFoundError(f"no videos in {assets_dir}")
    return paths


def _source_frames(path: Path) -> Iterator[tuple[float, VideoFrame]]:
    """Yield ``(time_s, frame)`` for every decoded frame of ``path``, times from the first frame.

    Times are the frames' presentation timestamps; where a frame has none, the previous time plus
    one nominal frame duration is used. Times are forced non-decreasing. After the last frame a
    final ``(end_time, None)`` marks when the last frame stops being shown.
    """
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        nominal = 1.0 / float(rate)
        first: float | None = None
        prev_t: float | None = None
        last_dur = nominal
        for frame in container.decode(stream):
            t_abs = frame.time
            if t_abs is None:
                t = 0.0 if prev_t is None else prev_t + nominal
            else:
                if first is None:
                    first = t_abs
                t = t_abs - first
            if prev_t is not None and t < prev_t:
                t = prev_t
            if prev_t is not None and t > prev_t:
                last_dur = t - prev_t
            dur = frame.duration
            if dur and frame.time_base is not None:
                last_dur = float(dur * frame.time_base)
            prev_t = t
            yield t, frame
        if prev_t is not None:
            yield prev_t + last_dur, None  # type: ignore[misc]


def _convert(frame: VideoFrame) -> VideoFrame:
    out = frame.reformat(width=WIDTH, height=HEIGHT, format="yuv420p")
    # reformat copies the frame properties; a source I-frame would force an x264 keyframe.
    out.pict_type = PictureType.NONE
    return out


class _Progress:
    def __init__(self, total: int, label: str) -> None:
        self.total = total
        self.label = label
        self.next_tenth = 1
        self.start = time.perf_counter()

    def update(self, done: int) -> None:
        while self.next_tenth <= 10 and done * 10 >= self.total * self.next_tenth:
            elapsed = time.perf_counter() - self.start
            print(
                f"  {self.label}: {self.next_tenth * 10:3d}% ({done}/{self.total} frames, "
                f"{elapsed:.0f} s)",
                flush=True,
            )
            self.next_tenth += 1


def _encode(out_path: Path, total_frames: int, assets: list[Path], label: str) -> None:
    progress = _Progress(total_frames, label)
    with av.open(str(out_path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width = WIDTH
        stream.height = HEIGHT
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, FPS)
        stream.codec_context.gop_size = GOP
        stream.options = {
            "preset": PRESET,
            "x264-params": f"keyint={GOP}:min-keyint={GOP}:scenecut=0",
        }
        tb = Fraction(1, FPS)

        k = 0  # global output frame index
        failed: set[Path] = set()
        while k < total_frames:
            produced_in_pass = 0
            for src in assets:
                if k >= total_frames:
                    break
                if src in failed:
                    continue
                j = 0  # output frame index local to this asset: local time j / FPS
                held: VideoFrame | None = None
                try:
                    for t, frame in _source_frames(src):
                        # Output frames before time t show the previously displayed frame.
                        while held is not None and j / FPS < t and k < total_frames:
                            held.pts = k
                            held.time_base = tb
                            for packet in stream.encode(held):
                                out.mux(packet)
                            j += 1
                            k += 1
                            progress.update(k)
                        if k >= total_frames or frame is None:
                            break
                        held = _convert(frame)
                except (av.error.FFmpegError, ValueError) as exc:
                    print(f"  note: skipping the rest of {src.name}: {exc}", flush=True)
                    failed.add(src)
                produced_in_pass += j
            if produced_in_pass == 0:
                raise RuntimeError("no source video could be decoded")
        for packet in stream.encode(None):
            out.mux(packet)


def check_video(path: Path, minutes: float) -> tuple[int, float]:
    """Check the frame count (``minutes * 60 * 24``) and duration of a built video.

    Returns ``(frames, duration_s)``; raises ``RuntimeError`` if either is off.
    """
    expected = round(minutes * 60 * FPS)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = stream.frames
        if not frames:  # count packets if the container does not say
            frames = sum(1 for p in container.demux(stream) if p.size)
        duration = float(stream.duration * stream.time_base) if stream.duration else 0.0
        rate = stream.average_rate
        width, height = stream.codec_context.width, stream.codec_context.height
    if frames != expected:
        raise RuntimeError(f"{path.name}: {frames} frames, expected {expected}")
    if abs(duration - expected / FPS) > 1.5 / FPS:
        raise RuntimeError(f"{path.name}: duration {duration:.3f} s, expected {expected / FPS} s")
    if rate != FPS or (width, height) != (WIDTH, HEIGHT):
        raise RuntimeError(f"{path.name}: {width}x{height} at {rate} fps")
    return frames, duration


def build_long_video(minutes: float, out_dir: Path = CACHE_DIR) -> Path:
    """Build (or reuse) a ``minutes``-long 640x360 24 fps H.264 video in ``out_dir``."""
    if minutes <= 0:
        raise ValueError("minutes must be positive")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / video_name(minutes)
    if final.exists():
        return final
    total_frames = round(minutes * 60 * FPS)
    assets = list_assets()
    tmp = out_dir / f".{final.stem}.{os.getpid()}.tmp.mp4"
    print(
        f"building {final} ({minutes:g} min, {total_frames} frames) from {len(assets)} assets",
        flush=True,
    )
    start = time.perf_counter()
    try:
        _encode(tmp, total_frames, assets, final.name)
        frames, duration = check_video(tmp, minutes)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()
    print(
        f"built {final.name}: {frames} frames, {duration:.1f} s, "
        f"{final.stat().st_size / 1e6:.1f} MB in {time.perf_counter() - start:.0f} s",
        flush=True,
    )
    return final


if __name__ == "__main__":
    import sys

    for arg in sys.argv[1:] or ["1"]:
        print(build_long_video(float(arg)))
