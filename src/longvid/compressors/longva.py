"""LongVA's visual token layout: per-frame 2x2 pooling for video, the UniRes merge for images.

Paper: Zhang et al., "Long Context Transfer from Language to Vision" (LongVA), 2024, §3 (the
UniRes encoding, which treats a video like the crops of one image). A frame, or one anyres tile
of an image, is a 24x24 grid of projected CLIP ViT-L/14-336 patch tokens; LongVA average-pools
it 2x2 to 12x12 = 144 tokens. A video is its frames' pooled grids one after another; an image is
its tiles' pooled grids one after another (the base view is dropped; no stitching, no newline
tokens). Every function here works on features that already went through the projector: the
reference pools *after* projecting, and pooling first gives different numbers.

The contract is sections 2 and 3 of ``shared/parity/longva/README.md`` (the reference's
``LlavaMetaForCausalLM.get_2dPool`` and the ``"unires"`` branch of
``prepare_inputs_labels_for_multimodal``); the sequence assembly that follows lives in
``longvid.prompting.longva_sequence``, the crop geometry in ``longvid.encoders.anyres``.

Reference defects and surprises (``README §10``) that concern these functions:

====  ========================================  ==========================  =====================
§10   defect                                    faithful option             default
====  ========================================  ==========================  =====================
1     UniRes computes the base view with CLIP   pass ``1 + rows*cols``      also accepts
      and throws it away                        crops; crop 0 is dropped    ``rows*cols`` crops
                                                                            (encode with
                                                                            ``include_base=False``
                                                                            and skip its cost)
2     no newline tokens, no tile stitching      the only layout (the        same: the checkpoint
                                                checkpoint has no           was trained on it
                                                ``image_newline``)
5     pooling follows projection; the UniRes    ``unires_merge(stride=2)``  same (what the
      image kernel is hard-coded to 2 (always   and ``LongVAPoolConfig``    checkpoint expects);
      average) while the video stride and mode  for video                   both are parameters
      come from the config
====  ========================================  ==========================  =====================

Row 3 (no single-crop pinpoint) and row 4 (the ``ceil`` overshoot) are in
``longvid.encoders.anyres``; row 6 (the batch-global image counter) in
``longvid.prompting.longva_sequence``; row 11 (float32 RoPE) in ``longvid.models.rope``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch.nn.functional as F
from torch import Tensor

from longvid.compressors.registry import CompressedVideo, Compressor, ModelDims, per_frame_tokens
from longvid.errors import ConfigError

__all__ = [
    "LongVACompressor",
    "LongVAPoolConfig",
    "merge_visual_item",
    "pool_2d",
    "pool_video_tokens",
    "unires_merge",
]

PoolMode = Literal["average", "max"]


@dataclass(frozen=True)
class LongVAPoolConfig:
    """LongVA's video pooling: ``mm_spatial_pool_stride`` and ``mm_spatial_pool_mode``.

    Kernel = stride (non-overlapping windows, floor mode). The released LongVA-7B uses the
    defaults: 2x2 average, 24x24 -> 12x12 = 144 tokens per frame.
    """

    stride: int = 2
    mode: PoolMode = "average"

    def __post_init__(self) -> None:
        if isinstance(self.stride, bool) or not isinstance(self.stride, int) or self.stride < 1:
            raise ConfigError(f"LongVA pool stride must be a positive int, got {self.stride!r}")
        if self.mode not in ("average", "max"):
            raise ConfigError(f"LongVA pool mode must be 'average' or 'max', got {self.mode!r}")


def pool_2d(grid_features: Tensor, stride: int = 2, mode: PoolMode = "average") -> Tensor:
    """Pool each ``(h, w)`` grid over non-overlapping ``stride x stride`` windows.

    Args:
        grid_features: ``(T, h, w, D)`` token grids (one per frame or tile).
        stride: window side and step; trailing rows/columns that do not fill a window are
            dropped (floor mode, as ``torch.nn.functional.avg_pool2d``).
        mode: ``"average"`` (mean per channel) or ``"max"``.

    Returns:
        ``(T, h // stride, w // stride, D)``, same dtype and device.
    """
    if grid_features.ndim != 4:
        raise ValueError(f"expected (T, h, w, D) features, got shape {tuple(grid_features.shape)}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    height, width = grid_features.shape[1:3]
    if height < stride or width < stride:
        raise ValueError(f"a {height}x{width} grid is smaller than the {stride}x{stride} window")
    # Channels-first and contiguous, like the reference, so the pooling kernel (and therefore
    # the float32 summation order) is the same one.
    x = grid_features.permute(0, 3, 1, 2).contiguous()
    if mode == "average":
        x = F.avg_pool2d(x, stride)
    elif mode == "max":
        x = F.max_pool2d(x, stride)
    else:
        raise ValueError(f"pool mode must be 'average' or 'max', got {mode!r}")
    return x.permute(0, 2, 3, 1).contiguous()


def pool_video_tokens(
    features: Tensor, grid: int, config: LongVAPoolConfig | None = None
) -> Tensor:
    """LongVA's per-frame pooling (``get_2dPool``): ``(T, grid*grid, D) -> (T, (grid//s)^2, D)``.

    Args:
        features: projected patch tokens of ``T`` frames, row-major within each frame.
        grid: the tower's patches per side (24 for CLIP ViT-L/14-336), taken from the vision
            config, not inferred from the token count.
        config: stride and mode; ``LongVAPoolConfig()`` (2x2 average) by default.

    Returns:
        Pooled tokens, row-major within each frame: 144 per frame for LongVA-7B.
    """
    config = config or LongVAPoolConfig()
    if features.ndim != 3 or features.shape[1] != grid * grid:
        raise ValueError(
            f"expected (T, {grid}*{grid}={grid * grid}, D) features, got {tuple(features.shape)}"
        )
    frames, _, dim = features.shape
    pooled = pool_2d(features.reshape(frames, grid, grid, dim), config.stride, config.mode)
    return pooled.reshape(frames, -1, dim)


def unires_merge(
    crop_features: Tensor,
    grid: tuple[int, int],
    patches_per_side: int,
    *,
    stride: int = 2,
) -> Tensor:
    """UniRes layout of one image's anyres crops: each tile pooled on its own, tile after tile.

    Args:
        crop_features: projected patch tokens ``(K, patches_per_side**2, D)`` of the crops in
            the order ``longvid.encoders.anyres`` cuts them. ``K = 1 + cols*rows`` (the
            reference layout: crop 0 is the base view and is dropped) or ``K = cols*rows``
            (encoded with ``include_base=False``).
        grid: ``(cols, rows)`` from ``anyres_grid_shape(image_size, pinpoints, crop_size)``.
        patches_per_side: 24 for CLIP ViT-L/14-336.
        stride: average-pool window; the reference hard-codes 2 for images (README §10.5).

    Returns:
        ``(cols*rows*(patches_per_side//stride)**2, D)``: tile 0's pooled grid row-major,
        then tile 1's, ... (tiles in row-major order over the image). No stitching across
        tiles, no newline tokens, no unpadding.
    """
    cols, rows = int(grid[0]), int(grid[1])
    tiles = cols * rows
    if crop_features.ndim != 3 or crop_features.shape[1] != patches_per_side**2:
        raise ValueError(
            f"expected (K, {patches_per_side}**2, D) crop features, "
            f"got {tuple(crop_features.shape)}"
        )
    count = crop_features.shape[0]
    if count == tiles + 1:
        crop_features = crop_features[1:]
    elif count != tiles:
        raise ValueError(
            f"a {cols}x{rows} anyres grid needs {tiles + 1} crops (base + tiles) or {tiles} "
            f"(tiles only), got {count}"
        )
    dim = crop_features.shape[-1]
    grids = crop_features.reshape(tiles, patches_per_side, patches_per_side, dim)
    return pool_2d(grids, stride, "average").reshape(-1, dim)


def merge_visual_item(
    features: Tensor,
    modality: Literal["image", "video"],
    *,
    patches_per_side: int,
    grid: tuple[int, int] | None = None,
    config: LongVAPoolConfig | None = None,
) -> Tensor:
    """The visual token sequence of one batch item, as LongVA's ``"unires"`` path builds it.

    Args:
        features: projected patch tokens ``(K, patches_per_side**2, D)``: the frames of a
            video, or the anyres crops of an image.
        modality: ``"video"``: every frame pooled with ``config``, frames concatenated
            (``T * 144`` tokens for LongVA-7B). ``"image"``: :func:`unires_merge` over
            ``grid``; an image given as a single crop with ``grid=None`` keeps its unpooled
            tokens (the reference's one-crop branch).
        patches_per_side: the tower's patches per side (24).
        grid: ``(cols, rows)`` of an anyres image.
        config: video pooling (stride, mode); default 2x2 average.

    Returns:
        ``(N, D)`` tokens in sequence order.
    """
    if modality == "video":
        return pool_video_tokens(features, patches_per_side, config).flatten(0, 1)
    if modality != "image":
        raise ValueError(f"modality must be 'image' or 'video', got {modality!r}")
    if grid is None:
        if features.shape[0] != 1:
            raise ValueError(
                f"an image with {features.shape[0]} crops needs its anyres grid (cols, rows)"
            )
        return features[0]
    return unires_merge(features, grid, patches_per_side)


class LongVACompressor(Compressor):
    """``longva``: project every patch, then pool each frame 2x2 (144 tokens per 336-px frame).

    No weights of its own: the model's projector runs first, as in the reference.
    """

    name = "longva"

    def __init__(self, dims: ModelDims, config: LongVAPoolConfig | None = None) -> None:
        super().__init__(dims)
        self.config = config or LongVAPoolConfig()

    @classmethod
    def from_params(cls, params: Mapping[str, Any], dims: ModelDims) -> LongVACompressor:
        """From ``compressor.params`` of a model config (``stride``, ``mode``)."""
        try:
            return cls(dims, LongVAPoolConfig(**params))
        except TypeError as exc:
            raise ConfigError(f"compressor 'longva': {exc}") from exc

    def forward(self, features, *, projector, frame_times, question=None) -> CompressedVideo:
        pooled = pool_video_tokens(projector(features), self.dims.patches_per_side, self.config)
        return per_frame_tokens(pooled, frame_times)
