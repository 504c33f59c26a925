"""The on-disk cache of frame features that every compressor, the CLI and V-NIAH share.

LLaMA-VID (Li, Wang and Jia 2024, §4, long-video setting) pre-extracts an hour of EVA-ViT-g
features per movie into files before the LLM sees them; here that is transparent: the first
call computes the features of (video, sampler, encoder) and writes them, later calls read them
back (DESIGN.md, "The values that travel": Features are cached by file identity, sampler and
its arguments, encoder name and weights hash).

Key = sha256 of: the video's resolved path, size and mtime (ns); ``Sampler.describe()``; the
encoder's name and a hash of its weights. A changed file (new size or mtime), another sampler
or other weights miss. One ``<key>.safetensors`` per entry under ``cache_dir("features")``
holds ``features``, ``timestamps`` (float64 seconds) and ``indices`` (int64 source frames),
with the key's parts in the metadata; files are written to a temporary name and renamed, so a
crash never leaves a half-written entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from longvid.cache import cache_dir
from longvid.errors import InputFileError

__all__ = [
    "ClipInfo",
    "cached_features",
    "encode_video",
    "encoder_identity",
    "feature_key",
    "weights_hash",
]


@dataclass(frozen=True)
class ClipInfo:
    """What the features were computed from: the video path, each frame's time (s) and its
    index in the source."""

    path: str
    timestamps: np.ndarray
    indices: np.ndarray


def weights_hash(module: nn.Module) -> str:
    """sha256 (16 hex digits) over a module's tensors (names, shapes, dtypes, bytes).

    Computed once per module object and remembered on it; meta tensors hash by shape only.
    """
    cached = getattr(module, "_longvid_weights_hash", None)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        if tensor.device.type != "meta":
            # flattened: a 0-dim tensor (BatchNorm's num_batches_tracked) has no byte view
            data = tensor.detach().to("cpu").contiguous().reshape(-1)
            digest.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    value = digest.hexdigest()[:16]
    object.__setattr__(module, "_longvid_weights_hash", value)
    return value


def encoder_identity(model: Any) -> str:
    """``"<name>:<weights hash>"`` of a `LongVideoLM`'s vision tower (or any module)."""
    tower = getattr(model, "vision_tower", model)
    config = getattr(model, "config", None)
    name = getattr(config, "name", None) or type(tower).__name__
    select = getattr(config, "vision_tower", None)
    if select is not None:
        name += f"[{select.select_layer},{select.select_feature}]"
    return f"{name}:{weights_hash(tower)}"


def feature_key(video: str | os.PathLike[str], sampler: Any, encoder: str) -> tuple[str, dict]:
    """The cache key of (video file identity, sampler description, encoder identity)."""
    path = Path(video)
    try:
        stat = path.stat()
    except OSError as err:
        raise InputFileError(f"cannot read the video: {err.strerror}", path) from None
    parts = {
        "path": str(path.resolve()),
        "size": str(stat.st_size),
        "mtime_ns": str(stat.st_mtime_ns),
        "sampler": sampler.describe() if hasattr(sampler, "describe") else str(sampler),
        "encoder": encoder,
    }
    key = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]
    return key, parts


@contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Hold a Ctrl-C (SIGINT) that arrives inside the block and raise it as KeyboardInterrupt
    once the block is done. safetensors' loader can turn an interrupt that lands inside it
    into an unrelated ValueError, which would end a benchmark with a crash instead of its
    clean stop (exit 130, every scored line kept). Only where Python's own handler is installed
    and only in the main thread; elsewhere the block runs as it is."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    received: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, _frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if received:
        raise KeyboardInterrupt


def cached_features(
    video: str | os.PathLike[str],
    sampler: Any,
    model: Any,
    compute: Callable[[], tuple[Tensor, Any]],
    *,
    folder: Path | None = None,
) -> tuple[Tensor, ClipInfo]:
    """The features of ``video`` under ``sampler`` and ``model``'s encoder, from the cache or
    from ``compute()``.

    ``compute()`` returns ``(features, clip)``, ``clip`` having ``timestamps`` and
    ``indices`` (a `longvid.io.video.Clip`). On a miss the result is written (atomically) and
    returned; on a hit the stored tensors come back on the CPU. ``folder`` overrides
    ``cache_dir("features")``. An unreadable entry is recomputed and replaced.
    """
    key, parts = feature_key(video, sampler, encoder_identity(model))
    folder = folder or cache_dir("features")
    entry = folder / f"{key}.safetensors"
    if entry.is_file():
        try:
            with _interrupts_deferred():
                stored = load_file(str(entry))
            return stored["features"], ClipInfo(
                parts["path"],
                stored["timestamps"].numpy(),
                stored["indices"].numpy(),
            )
        except (SafetensorError, OSError, KeyError):
            pass  # corrupt: recompute below
    features, clip = compute()
    info = ClipInfo(
        parts["path"],
        np.asarray(clip.timestamps, dtype=np.float64),
        np.asarray(clip.indices, dtype=np.int64),
    )
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {
        "features": features.detach().to("cpu").contiguous(),
        "timestamps": torch.from_numpy(info.timestamps.copy()),
        "indices": torch.from_numpy(info.indices.copy()),
    }
    handle, tmp = tempfile.mkstemp(dir=folder, prefix=f".{key}.", suffix=".tmp")
    os.close(handle)
    try:
        save_file(tensors, tmp, metadata=parts)
        os.replace(tmp, entry)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return features, info


def encode_video(
    model: Any,
    video: str | os.PathLike[str],
    sampler: Any,
    *,
    chunk_size: int = 32,
    progress: Callable[[int, int], None] | None = None,
    folder: Path | None = None,
) -> tuple[Tensor, ClipInfo]:
    """Vision features of ``video`` under ``sampler`` with a `LongVideoLM`'s tower, cached.

    The movie path of LLaMA-VID in one call: the first call decodes, preprocesses and encodes
    (``chunk_size`` frames at a time, ``progress(done, total)`` after each chunk) and stores
    the features; later calls with the same file, sampler and weights only read them.
    """
    from longvid.encoders.anyres import preprocess_video
    from longvid.io.video import sample

    def compute() -> tuple[Tensor, Any]:
        clip = sample(video, sampler)
        processor = model.config.image_processing.image_processor()
        pixels = preprocess_video(clip.frames, processor)
        return model.encode_images(pixels, chunk_size=chunk_size, progress=progress), clip

    return cached_features(video, sampler, model, compute, folder=folder)
