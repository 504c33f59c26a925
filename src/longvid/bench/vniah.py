"""V-NIAH, the visual needle-in-a-haystack benchmark of LongVA.

Zhang et al. 2024, "Long Context Transfer from Language to Vision" (LongVA), §4 and Figure 4;
reference ``vision_niah/eval_vision_niah.py`` (contracts: ``shared/parity/longva/README.md``
§5, §6 as far as scoring needs it, §9 "V-NIAH protocol" and §10).

The protocol: a haystack video sampled at 1 frame/s, every frame through the CLIP **pad**
view (§8b), the vision tower and the compressor; a needle image (a rendered fact with a
multiple-choice question) inserted as an *extra* frame at index ``int(depth * num_frames)``;
the prompt ``preprompt ++ frames ++ question ++ postprompt``; and teacher-forced scoring: the
answer is appended and the cell scores 1 only if the argmax at every answer position predicts
the next answer token (no generation, no partial credit). A cell's accuracy is the mean over
the needles. The default grid is the reference run's: frames 200..3000 step 200, depths
``np.arange(0, 1.2, 0.2)``.

The reference's haystack is a film users cannot get, and its needles come from a hub data set;
here the haystack is any video the user gives (default: the real footage in
``shared/assets/video``, concatenated and looped to the needed length) and the needles are
rendered with Pillow (`render_needles`). The haystack's vision features are computed once
through the shared feature cache (`longvid.encoders.feature_cache`, keyed by video, the
pad-view sampler and the encoder); each cell only splices the needle's features in and runs
the compressor on the spliced sequence, so a full grid costs one haystack encode and any
compressor (including question-guided ones) sees the needle in place.

Reference defects (README §10) and how they are handled:

| defect | faithful option | default |
|---|---|---|
| §10.7 scalar-pad vectors, 2*world of them on a multiple | ``reference_scalar_pad=True`` | no pad |

§10.7 in full: the reference pads the scored sequence with vectors *filled with the scalar pad
id* (not the pad token's embedding) up to a multiple of ``2*world``, adding a full ``2*world``
when the length already is one, and scores it in zigzag shards (``world``). The default runs
one forward pass over the prompt and answer alone, which gives the same score under causal
attention.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from longvid.bench.grid import Cell
from longvid.errors import ConfigError, ContextOverflowError, LongvidError

__all__ = [
    "ASSET_VIDEO_DIR",
    "Needle",
    "VNIAHTask",
    "extract_local",
    "haystack_features",
    "input_embeds",
    "insert_needle",
    "query_frame_idx",
    "render_needles",
    "score_teacher_forced",
    "undo_extract_local",
    "vniah_depth_grid",
    "vniah_frame_grid",
]

ASSET_VIDEO_DIR = Path(__file__).resolve().parents[4] / "shared" / "assets" / "video"
"""The real footage beside the checkout (``<root>/../shared/assets/video``)."""

# -- the grid (README §5) -------------------------------------------------------------------


def vniah_frame_grid(
    min_frames: int = 200, max_frames: int = 3000, interval: int = 200
) -> list[int]:
    """``range(min_frames, max_frames + 1, interval)``, the reference's frame counts."""
    return list(range(min_frames, max_frames + 1, interval))


def vniah_depth_grid(interval: float = 0.2) -> list[float]:
    """``np.arange(0, 1 + interval, interval)`` exactly as the reference computes it."""
    return [float(d) for d in np.arange(0, 1 + interval, interval)]


def query_frame_idx(depth: float, num_frames: int) -> int:
    """Where the needle goes: ``int(depth * num_frames)`` (truncation), as in the reference."""
    return int(depth * num_frames)


def insert_needle(haystack: Tensor, needle: Tensor, num_frames: int, depth: float) -> Tensor:
    """``haystack[:idx] ++ [needle] ++ haystack[idx:num_frames]``: ``(num_frames + 1, ...)``.

    ``haystack`` is ``(F, ...)`` per-frame features or tokens, ``needle`` one frame's
    ``(...)``. The needle is added, not substituted; depth 1.0 puts it after the last frame.
    """
    if num_frames > haystack.shape[0]:
        raise ConfigError(
            f"the haystack has {haystack.shape[0]} frames, the cell needs {num_frames}"
        )
    idx = query_frame_idx(depth, num_frames)
    return torch.cat([haystack[:idx], needle.unsqueeze(0), haystack[idx:num_frames]])


def input_embeds(preprompt: Tensor, frames: Tensor, question: Tensor, postprompt: Tensor) -> Tensor:
    """``preprompt ++ frames ++ question ++ postprompt`` along the sequence: ``(1, L, D)``.

    ``frames`` is ``(F, tokens, D)`` (flattened frame-major) or already ``(N, D)``; the text
    parts are ``(1, n, D)``.
    """
    flat = frames.reshape(-1, frames.shape[-1]).unsqueeze(0)
    return torch.cat([preprompt, flat.to(preprompt.dtype), question, postprompt], dim=1)


# -- zigzag sharding (README §6), as far as scoring needs it ------------------------------


def extract_local(value: Tensor, rank: int, world: int, dim: int = 1) -> Tensor:
    """Rank ``rank``'s zigzag shard: chunks ``rank`` and ``2*world-1-rank`` of ``2*world``."""
    chunks = value.chunk(2 * world, dim=dim)
    return torch.cat([chunks[rank], chunks[2 * world - 1 - rank]], dim=dim)


def undo_extract_local(gathered: Tensor, world: int, dim: int = 1) -> Tensor:
    """The sequence order back from rank shards concatenated in rank order."""
    pieces = gathered.chunk(2 * world, dim=dim)
    ordered: list[Tensor | None] = [None] * (2 * world)
    for i in range(world):
        ordered[i] = pieces[2 * i]
        ordered[2 * world - 1 - i] = pieces[2 * i + 1]
    return torch.cat(ordered, dim=dim)  # type: ignore[arg-type]


# -- scoring (README §5, eval_forward) ------------------------------------------------------

Forward = Callable[[Tensor, Tensor], Tensor]
"""``forward(inputs_embeds (1, L, D), position_ids (1, L)) -> logits (1, L, V)``."""


@torch.no_grad()
def score_teacher_forced(
    forward: Forward,
    prompt_embeds: Tensor,
    answer_ids: Tensor,
    answer_embeds: Tensor,
    *,
    reference_scalar_pad: bool = False,
    pad_id: int = 0,
    world: int = 1,
) -> int:
    """1 if every answer token is the argmax at the position before it, else 0.

    ``x = prompt ++ answer_embeds``; ``pred = argmax(logits)[P-1 : P+A-1]`` is compared with
    ``answer_ids (1, A)``. ``reference_scalar_pad=True`` reproduces the reference: ``x`` is
    padded with ``2*world - len % (2*world)`` vectors filled with ``pad_id`` and scored in
    ``world`` zigzag shards (each shard run on its own, then gathered and un-zigzagged: only
    equal to the unsharded result for a model that acts per position, as the parity stand-in
    does; the reference uses ring attention across the shards). The default runs one forward
    pass over ``x`` alone, which is what the padding amounts to under causal attention.
    """
    if world < 1:
        raise ConfigError(f"world must be >= 1, got {world}")
    if world > 1 and not reference_scalar_pad:
        raise ConfigError("world > 1 is the reference's sharded scoring: set reference_scalar_pad")
    x = torch.cat([prompt_embeds, answer_embeds.to(prompt_embeds.dtype)], dim=1)
    prompt_len, answer_len = prompt_embeds.shape[1], answer_ids.shape[1]
    if reference_scalar_pad:
        extra = 2 * world - x.shape[1] % (2 * world)
        pad = x.new_full((x.shape[0], extra, x.shape[2]), float(pad_id))
        x = torch.cat([x, pad], dim=1)
    positions = torch.arange(x.shape[1], device=x.device).unsqueeze(0)
    if reference_scalar_pad:
        shards = [
            forward(extract_local(x, r, world), extract_local(positions, r, world)).argmax(-1)
            for r in range(world)
        ]
        pred_all = undo_extract_local(torch.cat(shards, dim=1), world)
    else:
        pred_all = forward(x, positions).argmax(-1)
    pred = pred_all[:, prompt_len - 1 : prompt_len + answer_len - 1]
    return int(bool((pred.cpu() == answer_ids.cpu()).all()))


# -- needles ------------------------------------------------------------------------------


@dataclass
class Needle:
    """A needle image with its multiple-choice question and answer (the option letter)."""

    name: str
    image: Image.Image
    question: str
    answer: str


_SUFFIX = "\nAnswer with the option's letter from the given choices directly."


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _centred_text(
    draw: ImageDraw.ImageDraw,
    box: tuple[int, int, int, int],
    text: str,
    size: int,
    fill: tuple[int, int, int],
) -> None:
    font = _font(size)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    x = box[0] + (box[2] - box[0] - (right - left)) // 2 - left
    y = box[1] + (box[3] - box[1] - (bottom - top)) // 2 - top
    draw.text((x, y), text, font=font, fill=fill)


def render_needles(size: int = 336) -> list[Needle]:
    """Four distinct needles drawn with Pillow (no downloads): a word on a sign, a number on a
    badge, a yellow balloon and a red kite, each with a four-option question."""
    needles = []

    sign = Image.new("RGB", (size, size), (24, 60, 40))
    draw = ImageDraw.Draw(sign)
    draw.rectangle((size // 10, size // 3, size - size // 10, 2 * size // 3), fill=(245, 240, 220))
    _centred_text(draw, (0, size // 3, size, 2 * size // 3), "LANTERN", size // 7, (20, 20, 20))
    needles.append(
        Needle(
            "word",
            sign,
            "Find the frame with a sign showing one word. What is the word?\n"
            "A. Harbour\nB. Lantern\nC. Meadow\nD. Copper" + _SUFFIX,
            "B",
        )
    )

    badge = Image.new("RGB", (size, size), (230, 230, 235))
    draw = ImageDraw.Draw(badge)
    draw.ellipse((size // 8, size // 8, size - size // 8, size - size // 8), fill=(30, 60, 160))
    _centred_text(draw, (0, 0, size, size), "4721", size // 5, (255, 255, 255))
    needles.append(
        Needle(
            "number",
            badge,
            "Find the frame with a blue badge showing a number. What is the number?\n"
            "A. 4127\nB. 7421\nC. 4721\nD. 2174" + _SUFFIX,
            "C",
        )
    )

    balloon = Image.new("RGB", (size, size), (150, 200, 250))
    draw = ImageDraw.Draw(balloon)
    r = size // 5
    cx, cy = size // 2, size // 2 - size // 10
    draw.ellipse((cx - r, cy - int(r * 1.2), cx + r, cy + int(r * 1.2)), fill=(250, 215, 30))
    draw.line((cx, cy + int(r * 1.2), cx, size - size // 10), fill=(60, 60, 60), width=3)
    needles.append(
        Needle(
            "colour",
            balloon,
            "Find the frame with a balloon in the sky. What colour is the balloon?\n"
            "A. Red\nB. Blue\nC. Green\nD. Yellow" + _SUFFIX,
            "D",
        )
    )

    kite = Image.new("RGB", (size, size), (200, 230, 255))
    draw = ImageDraw.Draw(kite)
    c = size // 2
    draw.polygon(
        [(c, size // 8), (c + size // 5, c), (c, size - size // 4), (c - size // 5, c)],
        fill=(210, 30, 40),
    )
    draw.line((c, size - size // 4, c - size // 8, size - size // 16), fill=(40, 40, 40), width=3)
    needles.append(
        Needle(
            "object",
            kite,
            "Find the frame showing a flying object. What is it?\n"
            "A. A red kite\nB. A paper plane\nC. A bird\nD. A drone" + _SUFFIX,
            "A",
        )
    )
    return needles


# -- the haystack -------------------------------------------------------------------------


@dataclass(frozen=True)
class _PadView:
    """A sampler whose frames go through the CLIP pad view: its description keys the cache."""

    sampler: Any

    def describe(self) -> str:
        return f"vniah-pad[{self.sampler.describe()}]"


def default_videos() -> list[Path]:
    """The real footage in ``shared/assets/video``, sorted by name."""
    if not ASSET_VIDEO_DIR.is_dir():
        raise ConfigError(f"no haystack videos given and {ASSET_VIDEO_DIR} does not exist")
    return sorted(p for p in ASSET_VIDEO_DIR.iterdir() if p.is_file())


def haystack_features(
    model: Any,
    num_frames: int,
    videos: Sequence[str | os.PathLike[str]] | None = None,
    *,
    rate: float = 1.0,
    chunk_size: int = 32,
    cache_folder: Path | None = None,
) -> Tensor:
    """``(num_frames, P, Dv)`` vision features of the haystack: ``videos`` (default: the
    asset footage) sampled at ``rate`` fps through the pad view, concatenated in order and
    looped until there are ``num_frames``. Each video's features come from the feature cache
    (computed on the first call only); a video that does not decode is skipped with a warning.
    """
    from longvid.encoders.anyres import preprocess_pad
    from longvid.encoders.feature_cache import cached_features
    from longvid.io.video import fps, sample

    paths = [Path(v) for v in videos] if videos else default_videos()
    view = _PadView(fps(rate, max_frames=None))
    processor = model.config.image_processing.image_processor()
    parts: list[Tensor] = []
    total = 0
    for path in paths:
        if total >= num_frames:
            break

        def compute(path: Path = path) -> tuple[Tensor, Any]:
            clip = sample(path, view.sampler)
            pixels = torch.cat([preprocess_pad(frame, processor) for frame in clip.frames])
            return model.encode_images(pixels, chunk_size=chunk_size), clip

        try:
            features, _ = cached_features(path, view, model, compute, folder=cache_folder)
        except LongvidError as exc:
            if videos:
                raise
            warnings.warn(f"V-NIAH haystack: skipping {path.name}: {exc}", stacklevel=2)
            continue
        if features.shape[0]:
            parts.append(features)
            total += features.shape[0]
    if not parts:
        raise ConfigError("no haystack frames: none of the videos decoded")
    loop = torch.cat(parts)
    repeats = -(-num_frames // loop.shape[0])
    return loop.repeat(repeats, *([1] * (loop.dim() - 1)))[:num_frames]


# -- the task -------------------------------------------------------------------------------


@dataclass
class VNIAHTask:
    """The V-NIAH grid as a `longvid.bench.grid.GridTask` on a `LongVideoLM`.

    ``frames``/``depths``: the grid (defaults: the reference run); ``videos``: the haystack
    (default: the asset footage); ``compressor``: a registered compressor name to use instead
    of the model's own (default parameters); ``needles``: default `render_needles()`;
    ``reference_scalar_pad``/``world``: the reference's padded, sharded scoring (§10.7);
    ``rate``: haystack frames per second (the reference: 1); ``throttle``: seconds to sleep
    after each cell (demos and interrupt tests).
    """

    model: Any
    frames: list[int] = field(default_factory=vniah_frame_grid)
    depths: list[float] = field(default_factory=vniah_depth_grid)
    videos: Sequence[str | os.PathLike[str]] | None = None
    compressor: str | None = None
    needles: list[Needle] | None = None
    reference_scalar_pad: bool = False
    world: int = 1
    cache_folder: Path | None = None
    chunk_size: int = 32
    rate: float = 1.0
    throttle: float = 0.0

    name = "V-NIAH"
    size_key = "frames"
    size_label = "Frames"

    def __post_init__(self) -> None:
        self._haystack: Tensor | None = None
        self._needle_features: Tensor | None = None
        self._compressor: Any = None

    def cells(self) -> list[Cell]:
        """Frame count outer, depth inner: the reference's loop order."""
        return [Cell(int(f), float(d)) for f in self.frames for d in self.depths]

    def _prepare(self) -> None:
        if self._haystack is not None:
            return
        from longvid.compressors.registry import build_compressor
        from longvid.encoders.anyres import preprocess_pad

        model = self.model
        if self.needles is None:
            self.needles = render_needles()
        # the haystack moves to the model's device once (cached entries load on the CPU)
        self._haystack = haystack_features(
            model,
            max(self.frames),
            self.videos,
            rate=self.rate,
            chunk_size=self.chunk_size,
            cache_folder=self.cache_folder,
        ).to(model.device)
        processor = model.config.image_processing.image_processor()
        pixels = torch.cat([preprocess_pad(n.image, processor) for n in self.needles])
        needles = model.encode_images(pixels, chunk_size=self.chunk_size)
        self._needle_features = needles.to(self._haystack.device, self._haystack.dtype)
        if self.compressor is not None and self.compressor != model.config.compressor.name:
            self._compressor = build_compressor(self.compressor, {}, model.compressor.dims).to(
                model.device
            )
        else:
            self._compressor = model.compressor

    def _text_embeds(self, text: str) -> Tensor:
        ids = self.model.tokenizer(text, add_special_tokens=False)["input_ids"]
        tensor = torch.tensor([ids], dtype=torch.long, device=self.model.device)
        return self.model.embed_tokens(tensor)

    @torch.no_grad()
    def score(self, cell: Cell) -> dict[str, Any]:
        """Score every needle at this cell; ``accuracy`` is their mean."""
        from longvid.prompting.templates import render_parts

        self._prepare()
        model = self.model
        assert self._haystack is not None and self._needle_features is not None
        template = model.config.chat_template
        per_needle: dict[str, int] = {}
        tokens_used = 0
        for needle, features in zip(self.needles or [], self._needle_features, strict=True):
            frames = insert_needle(self._haystack, features, cell.size, cell.depth)
            compressed = self._compressor(
                frames,
                projector=model.project,
                frame_times=np.arange(frames.shape[0], dtype=np.float64) / self.rate,
                question=needle.question,
            )
            before, after = render_parts(template, needle.question)
            preprompt = self._text_embeds(before)
            prompt = input_embeds(  # ``after`` holds the question and the postprompt
                preprompt,
                compressed.tokens.to(model.dtype),
                self._text_embeds(after),
                preprompt[:, :0],
            )
            answer = model.tokenizer(needle.answer, add_special_tokens=False)["input_ids"]
            answer_ids = torch.tensor([answer], dtype=torch.long, device=model.device)
            tokens_used = prompt.shape[1] + answer_ids.shape[1]
            if tokens_used > model.config.context_length:
                raise ContextOverflowError(
                    tokens_used,
                    model.config.context_length,
                    f"V-NIAH cell ({cell.size} frames)",
                )
            per_needle[needle.name] = score_teacher_forced(
                self._forward,
                prompt,
                answer_ids,
                model.embed_tokens(answer_ids),
                reference_scalar_pad=self.reference_scalar_pad,
                pad_id=int(model.tokenizer.pad_token_id or 0),
                world=self.world,
            )
        if self.throttle:
            time.sleep(self.throttle)
        return {
            "accuracy": float(np.mean(list(per_needle.values()))),
            "needles": per_needle,
            "query_frame_idx": query_frame_idx(cell.depth, cell.size),
            "prompt_tokens": tokens_used,
        }

    def _forward(self, embeds: Tensor, positions: Tensor) -> Tensor:
        return self.model.language_model(inputs_embeds=embeds, position_ids=positions).logits
