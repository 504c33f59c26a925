"""The compressor registry: every paper's compressor behind one call and one output shape.

A compressor takes a video's projected per-frame tokens ``(T, P, D)`` (P = patches per frame,
row-major) and returns a `CompressedVideo`: the visual tokens ``(N, D)`` and, for each, the frame
it came from, so prompting, plots and the server never care which paper made them (DESIGN.md,
"The values that travel"). Adding a paper = one file in this package and one line in
`COMPRESSORS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from longvid.compressors.longva import LongVAPoolConfig, pool_video_tokens
from longvid.errors import ConfigError

__all__ = ["COMPRESSORS", "CompressedVideo", "Compressor", "get_compressor"]


@dataclass
class CompressedVideo:
    """Visual tokens ready for the prompt, with the frame and time each came from.

    ``tokens_per_frame[t]`` tokens belong to frame t, in frame order; ``times`` are seconds.
    """

    tokens: Tensor
    frame_of_token: Tensor
    times: Tensor
    tokens_per_frame: list[int]

    @property
    def n_tokens(self) -> int:
        return int(self.tokens.shape[0])


Compressor = Callable[[Tensor, int, np.ndarray], CompressedVideo]
"""``compressor(frame_tokens (T, P, D), patches_per_side, frame_times (T,)) -> CompressedVideo``."""


def _per_frame(tokens: Tensor, frame_times: np.ndarray) -> CompressedVideo:
    """Flatten ``(T, n, D)`` frame-major and label every token with its frame."""
    frames, per_frame, dim = tokens.shape
    frame_of_token = torch.arange(frames).repeat_interleave(per_frame)
    times = torch.as_tensor(np.asarray(frame_times, dtype=np.float64))[frame_of_token]
    return CompressedVideo(
        tokens.reshape(frames * per_frame, dim), frame_of_token, times, [per_frame] * frames
    )


def no_compression(params: Mapping[str, Any]) -> Compressor:
    """``none``: every patch token of every frame, as a plain LLaVA would feed them."""
    if params:
        raise ConfigError(f"compressor 'none' takes no parameters, got {sorted(params)}")

    def compress(frame_tokens: Tensor, patches_per_side: int, frame_times: np.ndarray):
        return _per_frame(frame_tokens, frame_times)

    return compress


def longva(params: Mapping[str, Any]) -> Compressor:
    """``longva``: LongVA's per-frame 2x2 pooling (144 tokens per 336-px frame)."""
    try:
        config = LongVAPoolConfig(**params)
    except TypeError as exc:
        raise ConfigError(f"compressor 'longva': {exc}") from exc

    def compress(frame_tokens: Tensor, patches_per_side: int, frame_times: np.ndarray):
        return _per_frame(pool_video_tokens(frame_tokens, patches_per_side, config), frame_times)

    return compress


COMPRESSORS: dict[str, Callable[[Mapping[str, Any]], Compressor]] = {
    "none": no_compression,
    "longva": longva,
}


def get_compressor(name: str, params: Mapping[str, Any] | None = None) -> Compressor:
    """Build the named compressor with its parameters; `ConfigError` names what is wrong."""
    if name not in COMPRESSORS:
        raise ConfigError(f"unknown compressor {name!r} (known: {', '.join(COMPRESSORS)})")
    return COMPRESSORS[name](dict(params or {}))
