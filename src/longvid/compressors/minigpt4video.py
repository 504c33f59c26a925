"""MiniGPT4-Video's visual tokens: LayerNorm, 4 neighbouring patches concatenated, one Linear.

Paper: Ataallah et al., "MiniGPT4-Video: Advancing Multimodal LLMs for Video Understanding with
Interleaved Visual-Textual Tokens", 2024, §3.1: the 256 EVA-CLIP patch tokens of a 224-px frame
become 64 tokens by concatenating every 4 adjacent tokens along the channels, and a linear layer
(``llama_proj``, 4*1408 -> 4096) maps them into the LLM's embedding space. The contract is
section 1 of ``shared/parity/minigpt4video/README.md`` (the reference's ``encode_img`` with
``token_pooling=True``, ``blip2.LayerNorm``):

1. ``ln_vision``: LayerNorm over the channels, computed in float32 and cast back to the input
   dtype (so a bf16 tower gets an fp32-accurate norm);
2. CLS dropped; the 256 row-major patch tokens reshaped to ``(64, 4*C)`` with no permute, so
   merged token ``j`` is patches ``4j .. 4j+3``: a **horizontal 1x4 strip** of one patch row,
   not a 2x2 block (README §1b);
3. ``llama_proj``: ``Linear(4*C, H)``.

The compressor owns ``ln_vision`` and ``llama_proj`` (its weights are saved with the model) and
ignores the model's projector, as the reference has none besides ``llama_proj``. The vision tower
(EVA-CLIP-g in the release) must return its last block's tokens without a final norm
(``select_layer=-1``), which ``ln_vision`` then normalises.

No reference defect concerns these steps; the frame sampling and subtitle defects are in
`longvid.io.subtitle_alignment`, the prompt ones in `longvid.prompting.minigpt4video`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from longvid.compressors.registry import CompressedVideo, Compressor, ModelDims, per_frame_tokens
from longvid.errors import ConfigError

__all__ = [
    "FP32LayerNorm",
    "MiniGPT4VideoCompressor",
    "MiniGPT4VideoConfig",
    "merge_adjacent_tokens",
    "source_patch_index",
]


@dataclass(frozen=True)
class MiniGPT4VideoConfig:
    """``group``: consecutive patch tokens concatenated into one (4: 256 -> 64 at 224 px);
    ``ln_eps``: the LayerNorm epsilon (1e-5, ``nn.LayerNorm``'s default as BLIP-2 uses it)."""

    group: int = 4
    ln_eps: float = 1e-5

    def __post_init__(self) -> None:
        if isinstance(self.group, bool) or not isinstance(self.group, int) or self.group < 1:
            raise ConfigError(
                f"compressor 'minigpt4video': group must be an int >= 1, got {self.group!r}"
            )
        if not isinstance(self.ln_eps, (int, float)) or not self.ln_eps > 0:
            raise ConfigError(
                f"compressor 'minigpt4video': ln_eps must be > 0, got {self.ln_eps!r}"
            )


class FP32LayerNorm(nn.LayerNorm):
    """``nn.LayerNorm`` computed in float32 and cast back to the input's dtype (BLIP-2's)."""

    def forward(self, x: Tensor) -> Tensor:
        out = nn.functional.layer_norm(
            x.float(),
            self.normalized_shape,
            None if self.weight is None else self.weight.float(),
            None if self.bias is None else self.bias.float(),
            self.eps,
        )
        return out.to(x.dtype)


def merge_adjacent_tokens(tokens: Tensor, group: int = 4) -> Tensor:
    """``(..., P, C) -> (..., P // group, group * C)``: each run of ``group`` consecutive tokens
    concatenated along the channels in token order (a reshape; no permute).

    With row-major patches of a 16x16 grid and ``group=4``, merged token j is the 1x4 strip of
    patches 4j..4j+3 in patch row ``j // 4``. ``P`` must be a multiple of ``group``.
    """
    *lead, patches, channels = tokens.shape
    if patches % group:
        raise ValueError(
            f"merge_adjacent_tokens: {patches} tokens do not split into groups of {group}"
        )
    return tokens.reshape(*lead, patches // group, group * channels)


def source_patch_index(patches: int, group: int = 4, with_cls: bool = True) -> Tensor:
    """``(patches // group, group)`` int64: which input tokens make each merged token
    (counting CLS as token 0 when ``with_cls``), for layout checks and relevance plots."""
    index = torch.arange(patches).reshape(patches // group, group)
    return index + int(with_cls)


class MiniGPT4VideoCompressor(Compressor):
    """``minigpt4video``: ``ln_vision`` -> 1x4 concatenation -> ``llama_proj`` (64 tokens per
    224-px frame); replaces the model's projector."""

    name = "minigpt4video"

    def __init__(self, dims: ModelDims, config: MiniGPT4VideoConfig | None = None) -> None:
        super().__init__(dims)
        self.config = config or MiniGPT4VideoConfig()
        patches = dims.patches_per_side**2
        if patches % self.config.group:
            raise ConfigError(
                f"compressor 'minigpt4video': {patches} patches per frame "
                f"({dims.patches_per_side}x{dims.patches_per_side}) do not split into groups of "
                f"{self.config.group}"
            )
        self.ln_vision = FP32LayerNorm(dims.vision_width, eps=self.config.ln_eps)
        self.llama_proj = nn.Linear(self.config.group * dims.vision_width, dims.text_width)

    @classmethod
    def from_params(cls, params: Mapping[str, Any], dims: ModelDims) -> MiniGPT4VideoCompressor:
        """From ``compressor.params`` of a model config (``group``, ``ln_eps``)."""
        try:
            return cls(dims, MiniGPT4VideoConfig(**params))
        except TypeError as exc:
            raise ConfigError(f"compressor 'minigpt4video': {exc}") from exc

    @property
    def tokens_per_frame(self) -> int:
        """Visual tokens per frame (64 for 16x16 patches)."""
        return self.dims.patches_per_side**2 // self.config.group

    def encode(self, features: Tensor) -> Tensor:
        """Patch features ``(T, P, C)`` (CLS already dropped) -> ``(T, P/4, D_text)``."""
        weight = self.llama_proj.weight
        normed = self.ln_vision(features.to(weight.device))
        merged = merge_adjacent_tokens(normed, self.config.group)
        return self.llama_proj(merged.to(weight.dtype))

    def encode_img(self, vit_tokens: Tensor) -> tuple[Tensor, Tensor]:
        """The reference's ``encode_img`` on ViT output *with* CLS ``(N, 1 + P, C)``: the
        tokens ``(N, P/4, D_text)`` and the all-ones int64 attention ``(N, P/4)``."""
        normed = self.ln_vision(vit_tokens.to(self.llama_proj.weight.device))
        merged = merge_adjacent_tokens(normed[:, 1:], self.config.group)
        out = self.llama_proj(merged.to(self.llama_proj.weight.dtype))
        return out, torch.ones(out.shape[:-1], dtype=torch.long, device=out.device)

    def forward(self, features, *, projector, frame_times, question=None) -> CompressedVideo:
        return per_frame_tokens(self.encode(features), frame_times)
