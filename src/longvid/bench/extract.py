"""Corpus-scale feature extraction: many videos into the shared feature cache on Ray Data.

LLaMA-VID (Li, Wang and Jia 2024, §4, long-video setting) pre-extracts the vision features of
every movie before training and evaluation; issue 8 ("Corpus scale") asks the same of a whole
folder of videos, spread over a Ray cluster. Each video is decoded, sampled and encoded with
`longvid.encoders.feature_cache.encode_video`, so the files written to ``FEATURES_DIR`` are
exactly the entries `cached_features` reads back later (same key: file identity, sampler,
encoder name and weights hash).

* **Ray Data**: the videos still to do become a dataset of paths (one block each); ``map``
  encodes them in Ray tasks of one CPU each, every worker process loading the model once and
  keeping it for the next videos. Local Ray by default (``num_cpus`` CPUs,
  no dashboard); ``address`` joins a running cluster. Ray is an optional extra
  (``pip install 'longvid[corpus]'``).
* **Resumable**: a video whose cache entry exists is skipped before any work is sent to Ray,
  so a rerun after a crash or Ctrl-C only does what is missing (entries are written
  atomically, so none is ever half-written).
* **One failure per bad video**: a worker catches the error of one file and returns it as a
  `LongvidError` message naming that file; the job goes on. The `ExtractSummary` lists done,
  skipped and failed videos.
"""

from __future__ import annotations

import glob
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longvid.errors import ConfigError, InputFileError, LongvidError
from longvid.io.video import Sampler, fps

__all__ = [
    "VIDEO_SUFFIXES",
    "ExtractSummary",
    "VideoResult",
    "extract_features",
    "find_videos",
    "is_cached",
]

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".flv", ".wmv"}
)
"""File endings a folder scan takes as videos (a glob or a named file takes anything)."""


@dataclass(frozen=True)
class VideoResult:
    """The outcome for one video: ``status`` is ``"done"``, ``"skipped"`` or ``"failed"``;
    ``error`` the message naming the file when it failed; ``frames`` the frames encoded."""

    path: str
    status: str
    seconds: float = 0.0
    frames: int = 0
    error: str | None = None


@dataclass
class ExtractSummary:
    """What a run did, video by video, and how long it took (seconds, wall clock)."""

    results: list[VideoResult] = field(default_factory=list)
    seconds: float = 0.0

    def _with(self, status: str) -> list[VideoResult]:
        return [r for r in self.results if r.status == status]

    @property
    def done(self) -> list[VideoResult]:
        return self._with("done")

    @property
    def skipped(self) -> list[VideoResult]:
        return self._with("skipped")

    @property
    def failed(self) -> list[VideoResult]:
        return self._with("failed")

    def line(self) -> str:
        """``"done 3, skipped 1, failed 1 of 5 videos in 12.3 s"``."""
        return (
            f"done {len(self.done)}, skipped {len(self.skipped)}, failed {len(self.failed)} "
            f"of {len(self.results)} videos in {self.seconds:.1f} s"
        )


def find_videos(spec: str | os.PathLike[str]) -> list[Path]:
    """The videos named by ``spec``: a folder (its files with a video ending, recursively), a
    glob pattern (every file it matches) or one file; sorted, without duplicates.

    Raises `InputFileError` when nothing matches, so a typo never runs an empty job.
    """
    text = os.fspath(spec)
    path = Path(text).expanduser()
    if path.is_dir():
        found = [p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES]
        if not found:
            raise InputFileError("no video files in this folder", path)
    elif path.is_file():
        found = [path]
    else:
        found = [Path(p) for p in glob.glob(os.path.expanduser(text), recursive=True)]
        found = [p for p in found if p.is_file()]
        if not found:
            raise InputFileError("matches no file (not a folder, a file or a glob)", text)
    return sorted({p.resolve() for p in found})


def is_cached(video: str | os.PathLike[str], sampler: Sampler, model: Any, folder: Path) -> bool:
    """Whether ``folder`` already holds the features of ``video`` under ``sampler`` and
    ``model``'s encoder (the same key `cached_features` uses)."""
    from longvid.encoders.feature_cache import encoder_identity, feature_key

    key, _ = feature_key(video, sampler, encoder_identity(model))
    return (Path(folder) / f"{key}.safetensors").is_file()


def _load(model: str | os.PathLike[str]) -> Any:
    from longvid.generate import load_model

    return load_model(model)


def _encode_one(model: Any, video: str, sampler: Sampler, folder: Path) -> VideoResult:
    """Encode one video into the cache; any error becomes a failed result naming the file."""
    from longvid.encoders.feature_cache import encode_video

    clock = time.perf_counter()
    try:
        features, _ = encode_video(model, video, sampler, folder=folder)
    except LongvidError as exc:
        message = str(exc) if exc.path else str(LongvidError(exc.problem, video))
        return VideoResult(video, "failed", time.perf_counter() - clock, error=message)
    except Exception as exc:  # noqa: BLE001 - one bad file must not stop the corpus
        message = str(LongvidError(f"{type(exc).__name__}: {exc}", video))
        return VideoResult(video, "failed", time.perf_counter() - clock, error=message)
    return VideoResult(video, "done", time.perf_counter() - clock, frames=int(features.shape[0]))


_MODELS: dict[str, Any] = {}
"""Per Ray worker process: the models loaded so far, by name (a worker is reused across the
videos and runs of one Ray session, so each process loads a model once)."""


def _encode_row(
    row: dict[str, Any], *, model: str, sampler: Sampler, folder: str, threads: int
) -> dict[str, Any]:
    """The Ray Data UDF: encode the video of one row with this process's copy of the model."""
    if model not in _MODELS:
        import torch

        torch.set_num_threads(max(1, threads))
        _MODELS[model] = _load(model)
    result = _encode_one(_MODELS[model], str(row["path"]), sampler, Path(folder))
    return {
        "path": result.path,
        "status": result.status,
        "seconds": result.seconds,
        "frames": result.frames,
        "error": result.error or "",
    }


def _start_ray(address: str | None, num_cpus: int) -> bool:
    """Connect to ``address`` or start a local Ray; True when this call started it."""
    try:
        import ray
    except ImportError:
        raise ConfigError("longvid extract needs Ray Data: pip install 'longvid[corpus]'") from None
    if ray.is_initialized():
        return False
    # Workers must import longvid the way the driver does (a src checkout included).
    src = str(Path(__file__).resolve().parents[2])
    env = {"env_vars": {"PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}}
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": logging.WARNING,
        "runtime_env": env,
    }
    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(num_cpus=num_cpus, **kwargs)
    return True


def extract_features(
    videos: str | os.PathLike[str] | list[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    model: str | os.PathLike[str] = "tiny-longva",
    sampler: Sampler | None = None,
    address: str | None = None,
    num_cpus: int = 2,
    on_result: Callable[[VideoResult, int], None] | None = None,
) -> ExtractSummary:
    """Encode every video of ``videos`` (a folder, glob or file, or a list of files) with
    ``model``'s vision tower under ``sampler`` (default ``fps(1.0, max_frames=64)``) into the
    feature cache at ``out``, on Ray Data.

    Videos already in the cache are skipped without touching Ray. ``address`` joins a Ray
    cluster; otherwise a local Ray with ``num_cpus`` CPUs is started (and stopped at the end).
    Each Ray task takes one CPU and one video (torch with one thread), so a local run
    encodes ``num_cpus`` videos at once; each worker process loads the model once.
    ``on_result(result, total)`` is called as each video finishes (skipped ones first), for
    progress bars; failures are also logged, one line per bad video.
    """
    clock = time.perf_counter()
    sampler = sampler or fps(1.0, max_frames=64)
    paths = (
        sorted({Path(p).resolve() for p in videos})
        if isinstance(videos, list)
        else find_videos(videos)
    )
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    summary = ExtractSummary()

    def report(result: VideoResult) -> None:
        summary.results.append(result)
        if result.status == "failed":
            log.warning("%s", result.error)
        if on_result is not None:
            on_result(result, len(paths))

    driver_model = _load(model)
    todo: list[str] = []
    for path in paths:
        try:
            cached = is_cached(path, sampler, driver_model, folder)
        except LongvidError as exc:
            report(VideoResult(str(path), "failed", error=str(exc)))
            continue
        if cached:
            report(VideoResult(str(path), "skipped"))
        else:
            todo.append(str(path))

    if todo:
        started = _start_ray(address, num_cpus)
        try:
            _run_on_ray(todo, model, sampler, folder, report)
        finally:
            if started:
                import ray

                ray.shutdown()
    summary.seconds = time.perf_counter() - clock
    return summary


def _run_on_ray(
    todo: list[str],
    model: str | os.PathLike[str],
    sampler: Sampler,
    folder: Path,
    report: Callable[[VideoResult], None],
) -> None:
    """Map `_encode_row` over the paths with Ray Data, reporting rows as they stream back."""
    import ray.data

    logging.getLogger("ray.data").setLevel(logging.WARNING)  # our progress bar reports
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # ours (rich) is the one the user sees
    context.print_on_execution_start = False
    dataset = ray.data.from_items([{"path": p} for p in todo], override_num_blocks=len(todo))
    mapped = dataset.map(
        _encode_row,
        fn_kwargs={
            "model": os.fspath(model),
            "sampler": sampler,
            "folder": str(folder.resolve()),
            "threads": 1,
        },
        num_cpus=1,
    )
    for row in mapped.iter_rows():
        report(
            VideoResult(
                path=str(row["path"]),
                status=str(row["status"]),
                seconds=float(row["seconds"]),
                frames=int(row["frames"]),
                error=str(row["error"]) or None,
            )
        )
