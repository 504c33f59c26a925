"""LLaVA-NeXT / LongVA "anyres" image geometry and the pixel crops a CLIP tower sees.

An image is fitted into the best of a list of candidate canvases ("pinpoints", multiples of the
tower's input size), resized to fit inside it, padded with black, and cut into tower-sized tiles;
a base view (the whole image squashed to one tile) goes first. LongVA (Zhang et al., "Long
Context Transfer from Language to Vision", 2024, §3, UniRes) uses this geometry with a 200-entry
pinpoint list of up to 7x7 tiles. The contract is section 1 and 8b of
``shared/parity/longva/README.md``; ``pad`` (square canvas filled with the mean colour) is the
path V-NIAH uses for its needle and haystack frames, and ``preprocess_video`` the plain
shortest-edge-resize-and-center-crop path of video inference.

Sizes are ``(width, height)`` throughout; grids are ``(columns, rows)``.

CLIP preprocessing is transformers' PIL-backed ``CLIPImageProcessorPil`` (the "slow" path the
reference used), configured explicitly by :func:`clip_image_processor`.

Reference defects that concern this file (``README §10``):

====  =======================================  ==============================  ====================
§10   defect                                   faithful option                 default
====  =======================================  ==============================  ====================
3     a square/tiny image never gets a single  pass ``LONGVA_PINPOINTS`` (no    the pinpoints are
      crop: (336, 336) is not a LongVA         (336, 336)): what the           data; the caller
      pinpoint, so it pays for 2 crops         checkpoint was trained on       chooses the list
4     ``ceil`` of a float64 product can        ``reference_ceil_bug=True``     exact integer
      overshoot by 1 px (700x300 -> 785 wide)  (``ceil(W * (Ht / H))``)        ceiling (784)
8     V-NIAH frames use the pad path while     ``preprocess_pad``              ``preprocess_video``
      video inference center-crops             (V-NIAH reproduction)           for inference
====  =======================================  ==============================  ====================

The base view (§10.1: computed by CLIP, then dropped by UniRes) is kept by default because
LLaVA-NeXT merges other than UniRes use it; pass ``include_base=False`` to skip its CLIP cost
with the UniRes merge (``longvid.compressors.longva.unires_merge`` accepts both crop counts).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

if TYPE_CHECKING:  # transformers takes seconds to import; geometry alone does not need it
    from transformers import CLIPImageProcessorPil

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "LLAVA_NEXT_PINPOINTS",
    "LONGVA_PINPOINTS",
    "anyres_crops",
    "anyres_grid_shape",
    "clip_image_processor",
    "divide_to_crops",
    "expand_to_square",
    "longva_pinpoints",
    "preprocess_anyres",
    "preprocess_pad",
    "preprocess_video",
    "resize_and_pad_geometry",
    "resize_and_pad_image",
    "select_best_resolution",
]

Size = tuple[int, int]
"""``(width, height)`` in pixels."""

ImageLike = Image.Image | np.ndarray | torch.Tensor
"""A PIL image, or a ``uint8`` array / tensor laid out ``(H, W, 3)``."""

CLIP_MEAN: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)


def longva_pinpoints(unit: int = 336, max_tiles: int = 49) -> list[Size]:
    """LongVA's ``--image_grid_pinpoints`` (``scripts/finetune.sh``), scaled to ``unit`` px.

    Every ``(w*unit, h*unit)`` whose tile count ``w*h`` lies in ``[2, max_tiles]``, sorted by
    width then height (the order decides ties in :func:`select_best_resolution`). With the
    defaults that is 200 entries from 336 to 16464 px; ``(unit, unit)`` is never in it.
    """
    return [
        (cols * unit, rows * unit)
        for cols in range(1, max_tiles + 1)
        for rows in range(1, max_tiles + 1)
        if 2 <= cols * rows <= max_tiles
    ]


LONGVA_PINPOINTS: tuple[Size, ...] = tuple(longva_pinpoints())
"""The 200 LongVA pinpoints at 336 px (the released LongVA-7B)."""

LLAVA_NEXT_PINPOINTS: tuple[Size, ...] = (
    (336, 672),
    (672, 336),
    (672, 672),
    (1008, 336),
    (336, 1008),
)
"""The classic LLaVA-NeXT list (LongVA's ``scripts/dpo.sh``)."""


def select_best_resolution(size: Size, pinpoints: Sequence[Sequence[int]]) -> Size:
    """The pinpoint ``(W, H)`` that keeps the most of an image of ``size`` with the least waste.

    For each candidate, in list order, the image is scaled (float64) to fit inside it and the
    scaled sides are truncated to int; the effective resolution is that area, capped at the
    original area, and the waste is the rest of the candidate. The first candidate with the
    highest effective resolution, then the lowest waste, wins (strict comparisons: the earliest
    candidate wins an exact tie).
    """
    width, height = int(size[0]), int(size[1])
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {size}")
    best: Size | None = None
    max_effective = 0
    min_waste = math.inf
    for cand_w, cand_h in pinpoints:
        cand_w, cand_h = int(cand_w), int(cand_h)
        scale = min(cand_w / width, cand_h / height)
        effective = min(int(width * scale) * int(height * scale), width * height)
        waste = cand_w * cand_h - effective
        if effective > max_effective or (effective == max_effective and waste < min_waste):
            best, max_effective, min_waste = (cand_w, cand_h), effective, waste
    if best is None:
        raise ValueError("no pinpoints given")
    return best


def anyres_grid_shape(size: Size, pinpoints: Sequence[Sequence[int]], crop_size: int) -> Size:
    """``(columns, rows)`` of tiles for an image of ``size``: the best pinpoint // ``crop_size``.

    ``crop_size`` is the vision tower's input side (336 for CLIP ViT-L/14-336).
    """
    best_w, best_h = select_best_resolution(size, pinpoints)
    return best_w // crop_size, best_h // crop_size


def resize_and_pad_geometry(
    size: Size, target: Size, *, reference_ceil_bug: bool = False
) -> tuple[int, int, int, int]:
    """``(new_w, new_h, paste_x, paste_y)``: fit ``size`` inside ``target`` keeping its aspect.

    The side with the smaller scale factor fills the target; the other is rounded up and capped
    at the target. The resized image is pasted centred (offsets floored).

    ``reference_ceil_bug=True`` reproduces the reference's ``ceil(W * (Ht / H))`` on a float64
    product, which can land just above an integer and add a pixel (700x300 into 1008x336 gives
    785 instead of 784, README §10.4). The default computes the same ceiling exactly in integers.
    """
    width, height = int(size[0]), int(size[1])
    target_w, target_h = int(target[0]), int(target[1])
    if reference_ceil_bug:
        scale_w, scale_h = target_w / width, target_h / height
        if scale_w < scale_h:
            new_w, new_h = target_w, min(math.ceil(height * scale_w), target_h)
        else:
            new_w, new_h = min(math.ceil(width * scale_h), target_w), target_h
    elif target_w * height < target_h * width:  # exact form of target_w/width < target_h/height
        new_w, new_h = target_w, min(-(-height * target_w // width), target_h)
    else:
        new_w, new_h = min(-(-width * target_h // height), target_w), target_h
    return new_w, new_h, (target_w - new_w) // 2, (target_h - new_h) // 2


def _to_pil(image: ImageLike) -> Image.Image:
    """RGB PIL image from a PIL image or a ``uint8 (H, W, 3)`` array / tensor."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(
                f"expected a uint8 (H, W, 3) image, got {image.dtype} {tuple(image.shape)}"
            )
        return Image.fromarray(np.ascontiguousarray(image))
    if image.mode != "RGB":
        return image.convert("RGB")
    return image


def resize_and_pad_image(
    image: ImageLike, target: Size, *, reference_ceil_bug: bool = False
) -> Image.Image:
    """Resize ``image`` (bicubic) to fit ``target`` and paste it centred on a black canvas."""
    pil = _to_pil(image)
    new_w, new_h, x, y = resize_and_pad_geometry(
        pil.size, target, reference_ceil_bug=reference_ceil_bug
    )
    canvas = Image.new("RGB", (int(target[0]), int(target[1])), (0, 0, 0))
    canvas.paste(pil.resize((new_w, new_h), Image.Resampling.BICUBIC), (x, y))
    return canvas


def divide_to_crops(image: Image.Image, crop_size: int) -> list[Image.Image]:
    """Cut ``image`` into ``crop_size`` squares, row of tiles by row of tiles, left to right."""
    width, height = image.size
    return [
        image.crop((left, top, left + crop_size, top + crop_size))
        for top in range(0, height, crop_size)
        for left in range(0, width, crop_size)
    ]


def expand_to_square(image: ImageLike, background: Sequence[int]) -> Image.Image:
    """Paste ``image`` centred on a square of side ``max(w, h)`` filled with ``background``."""
    pil = _to_pil(image)
    width, height = pil.size
    if width == height:
        return pil
    side = max(width, height)
    canvas = Image.new("RGB", (side, side), tuple(int(c) for c in background))
    canvas.paste(pil, ((side - width) // 2, (side - height) // 2))
    return canvas


def anyres_crops(
    image: ImageLike,
    pinpoints: Sequence[Sequence[int]],
    crop_size: int,
    *,
    include_base: bool = True,
    reference_ceil_bug: bool = False,
) -> list[Image.Image]:
    """The anyres views of one image: ``[base, tile_0, tile_1, ...]`` as RGB PIL images.

    The tiles cover the image resized-and-padded into its best pinpoint, row-major; the base
    view is the whole image resized straight to ``crop_size`` square (aspect-distorted, no
    padding). ``include_base=False`` leaves it out (UniRes never uses it, README §10.1).
    """
    pil = _to_pil(image)
    best = select_best_resolution(pil.size, pinpoints)
    padded = resize_and_pad_image(pil, best, reference_ceil_bug=reference_ceil_bug)
    tiles = divide_to_crops(padded, crop_size)
    if not include_base:
        return tiles
    return [pil.resize((crop_size, crop_size), Image.Resampling.BICUBIC), *tiles]


def clip_image_processor(
    crop_size: int = 336,
    image_mean: Sequence[float] = CLIP_MEAN,
    image_std: Sequence[float] = CLIP_STD,
) -> CLIPImageProcessorPil:
    """OpenAI-CLIP preprocessing for a ``crop_size`` tower, every setting spelled out.

    Shortest edge to ``crop_size`` (bicubic, the long side truncated), center crop
    ``crop_size`` square, ``uint8 * (1/255)``, per-channel normalisation, CHW float32. The PIL
    backend is chosen on purpose: it is the one that reproduces the reference pixels exactly
    (the torchvision backend resizes differently).
    """
    from transformers import CLIPImageProcessorPil

    return CLIPImageProcessorPil(
        do_convert_rgb=True,
        do_resize=True,
        size={"shortest_edge": crop_size},
        resample=3,  # PIL bicubic
        do_center_crop=True,
        crop_size={"height": crop_size, "width": crop_size},
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=list(image_mean),
        image_std=list(image_std),
    )


def _crop_side(processor: CLIPImageProcessorPil) -> int:
    crop = processor.crop_size
    height = crop["height"] if isinstance(crop, dict) else crop.height
    return int(height)


def _pixels(processor: CLIPImageProcessorPil, images: list[Image.Image]) -> torch.Tensor:
    out = processor(images=images, return_tensors="pt")["pixel_values"]
    return out.to(torch.float32)


def preprocess_anyres(
    image: ImageLike,
    pinpoints: Sequence[Sequence[int]],
    processor: CLIPImageProcessorPil,
    *,
    include_base: bool = True,
    reference_ceil_bug: bool = False,
) -> torch.Tensor:
    """CLIP pixels of the anyres views of one image: ``(1 + cols*rows, 3, S, S)`` float32.

    ``S`` is the processor's crop size; the first view is the base one unless
    ``include_base=False`` (then ``(cols*rows, 3, S, S)``).
    """
    crops = anyres_crops(
        image,
        pinpoints,
        _crop_side(processor),
        include_base=include_base,
        reference_ceil_bug=reference_ceil_bug,
    )
    return _pixels(processor, crops)


def preprocess_pad(image: ImageLike, processor: CLIPImageProcessorPil) -> torch.Tensor:
    """CLIP pixels of the "pad" view: ``(1, 3, S, S)``.

    The image is expanded to a square filled with the processor's mean colour
    (``int(m * 255)`` per channel, (122, 116, 104) for CLIP) and then preprocessed. V-NIAH uses
    this for its needle and for every haystack frame (README §8b, §10.8).
    """
    background = [int(m * 255) for m in processor.image_mean]
    return _pixels(processor, [expand_to_square(image, background)])


def preprocess_video(
    frames: np.ndarray | torch.Tensor, processor: CLIPImageProcessorPil
) -> torch.Tensor:
    """CLIP pixels of video frames ``uint8 (T, H, W, 3)``: ``(T, 3, S, S)`` float32.

    Each frame is preprocessed on its own (shortest edge, center crop): no anyres, no padding.
    """
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu().numpy()
    if frames.ndim != 4:
        raise ValueError(f"expected frames (T, H, W, 3), got shape {tuple(frames.shape)}")
    return _pixels(processor, [_to_pil(frame) for frame in frames])
