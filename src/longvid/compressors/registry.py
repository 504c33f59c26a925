"""The compressor registry: every paper's compressor behind one call and one output shape.

A compressor is an ``nn.Module`` owned by `longvid.models.LongVideoLM` (so any weights it has
are saved and loaded with the model). It takes a video's vision features ``(T, P, Dv)`` (P patch
tokens per frame, row-major, *before* the projector) and returns a `CompressedVideo`: the visual
tokens ``(N, D_text)`` and, for each, the frame it came from, plus an optional per-frame
relevance to the question, so prompting, plots and the server never care which paper made
them (DESIGN.md, "The values that travel"). Each compressor decides whether the model's
projector runs (LongVA projects then pools; LLaMA-VID, PPLLaVA and MiniGPT4-Video bring their
own projections). Adding a paper = one file in this package and one entry in `COMPRESSORS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from longvid.errors import ConfigError

__all__ = [
    "COMPRESSORS",
    "CompressedVideo",
    "Compressor",
    "ModelDims",
    "build_compressor",
    "per_frame_tokens",
]


@dataclass
class CompressedVideo:
    """Visual tokens ready for the prompt, with the frame and time each came from.

    ``tokens_per_frame[t]`` tokens belong to frame t, in frame order; ``times`` are seconds.
    ``relevance``: optional ``(T,)`` or ``(T, h, w)`` scores of each frame (or patch) for the
    question, for relevance plots; compressors that compute none leave it None.
    """

    tokens: Tensor
    frame_of_token: Tensor
    times: Tensor
    tokens_per_frame: list[int]
    relevance: Tensor | None = None

    @property
    def n_tokens(self) -> int:
        return int(self.tokens.shape[0])


@dataclass(frozen=True)
class ModelDims:
    """What a compressor needs to know of the model it sits in."""

    vision_width: int
    text_width: int
    patches_per_side: int


class Compressor(nn.Module):
    """Base class: ``forward(features, *, projector, frame_times, question) -> CompressedVideo``.

    ``features``: ``(T, P, Dv)`` vision features; ``projector``: the model's vision-to-text
    projector (use it or not); ``frame_times``: ``(T,)`` seconds; ``question``: the user's
    text, for compressors guided by it (None when there is none).
    """

    name = "base"

    def __init__(self, dims: ModelDims) -> None:
        super().__init__()
        self.dims = dims

    def forward(
        self,
        features: Tensor,
        *,
        projector: nn.Module,
        frame_times: np.ndarray | Tensor,
        question: str | None = None,
    ) -> CompressedVideo:
        raise NotImplementedError


def per_frame_tokens(
    tokens: Tensor, frame_times: np.ndarray | Tensor, relevance: Tensor | None = None
) -> CompressedVideo:
    """Flatten ``(T, n, D)`` frame-major tokens and label each with its frame and time."""
    frames, per_frame, dim = tokens.shape
    frame_of_token = torch.arange(frames).repeat_interleave(per_frame)
    times = torch.as_tensor(np.asarray(frame_times, dtype=np.float64))[frame_of_token]
    return CompressedVideo(
        tokens.reshape(frames * per_frame, dim),
        frame_of_token,
        times,
        [per_frame] * frames,
        relevance,
    )


class NoCompression(Compressor):
    """``none``: every projected patch token of every frame, as a plain LLaVA feeds them."""

    name = "none"

    def forward(self, features, *, projector, frame_times, question=None) -> CompressedVideo:
        return per_frame_tokens(projector(features), frame_times)


def _no_params(params: Mapping[str, Any], dims: ModelDims) -> Compressor:
    if params:
        raise ConfigError(f"compressor 'none' takes no parameters, got {sorted(params)}")
    return NoCompression(dims)


def _longva(params: Mapping[str, Any], dims: ModelDims) -> Compressor:
    from longvid.compressors.longva import LongVACompressor

    return LongVACompressor.from_params(params, dims)


def _llamavid(params: Mapping[str, Any], dims: ModelDims) -> Compressor:
    from longvid.compressors.llamavid import LlamaVidCompressor

    return LlamaVidCompressor.from_params(params, dims)


def _minigpt4video(params: Mapping[str, Any], dims: ModelDims) -> Compressor:
    from longvid.compressors.minigpt4video import MiniGPT4VideoCompressor

    return MiniGPT4VideoCompressor.from_params(params, dims)


def _ppllava(params: Mapping[str, Any], dims: ModelDims) -> Compressor:
    from longvid.compressors.ppllava import PPLLaVACompressor

    return PPLLaVACompressor.from_params(params, dims)


COMPRESSORS: dict[str, Callable[[Mapping[str, Any], ModelDims], Compressor]] = {
    "none": _no_params,
    "longva": _longva,
    "llamavid": _llamavid,
    "minigpt4video": _minigpt4video,
    "ppllava": _ppllava,
}
"""Name -> factory ``(params, dims) -> Compressor``; factories import their module lazily."""


def build_compressor(name: str, params: Mapping[str, Any] | None, dims: ModelDims) -> Compressor:
    """Build the named compressor with its parameters; `ConfigError` names what is wrong."""
    if name not in COMPRESSORS:
        raise ConfigError(f"unknown compressor {name!r} (known: {', '.join(COMPRESSORS)})")
    return COMPRESSORS[name](dict(params or {}), dims)
