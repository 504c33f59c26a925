"""PPLLaVA's prompt-guided pooling: CLIP text-visual scores steer a weighted 3-D average pool.

Paper: Liu et al., "PPLLaVA: Varied Video Sequence Understanding With Prompt Guidance", 2024,
section 3.2 ("Prompt-Guided Pooling") and 3.3 (the CLIP context extension, after Long-CLIP:
Zhang et al., "Long-CLIP: Unlocking the Long-Text Capability of CLIP", 2024, section 3.1).
The contracts are ``shared/parity/ppllava/README.md`` sections 1-3 and 5.

The pipeline, per video of ``T`` frames of ``H x W`` patch features ``(T, H*W, Dv)``:

1. CLIP alignment: the vision post-LayerNorm and visual projection map every patch into CLIP's
   joint space; the question goes through a CLIP text tower whose positions were stretched from
   77 to 248 (`extend_text_positions`, `ExtendedTextEmbeddings`). The cosine of every patch
   with the text is the *relevance* (``(T, H, W)``, returned with the tokens).
2. ``softmax(exp(logit_scale) * cosine)`` over all ``T*H*W`` positions jointly.
3. The LLaVA MLP projects every patch (the model's ``projector``).
4. `weighted_adaptive_pool3d` of those values with the step-2 weights (a second, per-window
   softmax with temperature 0.01), to the configured ``(t, h, w)`` grid, flattened ``t, h, w``
   (w fastest): 32 frames of 24x24 with kernel = stride = (2, 3, 3) give 16x8x8 = 1024 tokens.

**MiniLM question embedding** (``text_encoder="minilm"``, longvid-mini): step 1's text side is
the frozen MiniLM sentence embedding of the question (`longvid.encoders.minilm`, 384-d, shared
through `get_minilm` and never saved), and its visual side a learned ``visual_ln`` +
``visual_projection`` (Linear ``Dv -> 384`` per patch, which the vision tower's contrastive head
into MiniLM space can initialise); steps 2-4 are unchanged. No CLIP text tower is built.

Reference defects (README sections 1 and 5c) and how they are exposed here:

============================================  ============================  ======================
defect                                        faithful option               default
============================================  ============================  ======================
kernel + stride mode silently drops the tail  ``tail="ppllava"``            ``tail="pad"``: a last
of an axis (9 frames, k=s=2: frame 9 unused)                                partial window covers
                                                                            the tail (its softmax
                                                                            runs over the real
                                                                            elements only)
without weights, the default weight map is    ``ppllava_default_weights=``  uniform weights of the
built ``(N, D, W, H)``: fails unless H == W   ``True`` (raises for H != W)  right shape
============================================  ============================  ======================

The output-size + kernel mode can also leave a tail unused (README 5c); it is kept as the
reference resolves it, since the caller chose both sizes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from longvid.compressors.registry import CompressedVideo, Compressor, ModelDims
from longvid.errors import ConfigError

__all__ = [
    "KEEP_POSITIONS",
    "ExtendedTextEmbeddings",
    "PPLLaVACompressor",
    "PPLLaVAConfig",
    "PoolGeometry",
    "extend_text_positions",
    "resolve_pool_geometry",
    "weighted_adaptive_pool3d",
]

KEEP_POSITIONS = 20
"""Long-CLIP keeps the first 20 text positions as they were trained (``keep_len``)."""

TailMode = Literal["pad", "ppllava"]
TextEncoder = Literal["clip", "minilm"]
Triple = tuple[int, int, int]


# --------------------------------------------------------------------------------------------
# 1. Weighted adaptive 3-D pooling


@dataclass(frozen=True)
class PoolGeometry:
    """The resolved window grid: ``output_size``, ``kernel`` and ``stride`` per axis (D, H, W),
    and ``padded``: how many virtual elements each axis gets at its end (``tail="pad"``)."""

    output_size: Triple
    kernel: Triple
    stride: Triple
    padded: Triple = (0, 0, 0)


def _triple(value: int | Sequence[int] | None, name: str) -> Triple | None:
    if value is None:
        return None
    items = [value] * 3 if isinstance(value, int) else list(value)
    if len(items) != 3 or any(isinstance(v, bool) or not isinstance(v, int) for v in items):
        raise ValueError(f"{name} must be an int or 3 ints, got {value!r}")
    if any(v < 1 for v in items):
        raise ValueError(f"{name} must be positive, got {value!r}")
    return (int(items[0]), int(items[1]), int(items[2]))


def resolve_pool_geometry(
    input_size: Sequence[int],
    output_size: int | Sequence[int] | None = None,
    kernel: int | Sequence[int] | None = None,
    stride: int | Sequence[int] | None = None,
    *,
    tail: TailMode = "pad",
) -> PoolGeometry:
    """Resolve PPLLaVA's pooling geometry per axis (README section 1, ``get_size``).

    Exactly one mode applies: output size only (``stride = I // O``, ``kernel = I - (O-1)*stride``:
    windows cover the axis, overlapping when ``O`` does not divide ``I``); kernel + stride
    (``O = (I - k)//s + 1``); output size + stride (``k = I - (O-1)*s``); output size + kernel
    (``s = (I - k)//(O-1)``, needs ``O > 1``). In kernel + stride mode the reference drops the
    leftover tail (``tail="ppllava"``); ``tail="pad"`` adds one window over it instead.
    """
    sizes = tuple(int(v) for v in input_size)
    if len(sizes) != 3 or any(v < 1 for v in sizes):
        raise ValueError(f"input size must be 3 positive ints (D, H, W), got {input_size!r}")
    out, ker, st = (
        _triple(output_size, "output_size"),
        _triple(kernel, "kernel"),
        _triple(stride, "stride"),
    )
    if tail not in ("pad", "ppllava"):
        raise ValueError(f"tail must be 'pad' or 'ppllava', got {tail!r}")
    o_res, k_res, s_res, pad = [], [], [], []
    for axis, size in enumerate(sizes):
        o = out[axis] if out else None
        k = ker[axis] if ker else None
        s = st[axis] if st else None
        extra = 0
        if o is not None and k is None and s is None:
            if o > size:
                raise ValueError(f"axis {axis}: output size {o} exceeds the input length {size}")
            s = size // o
            k = size - (o - 1) * s
        elif o is None and k is not None and s is not None:
            if k > size and tail == "pad":  # e.g. a 1-frame video with a 2-frame kernel
                o, extra = 1, k - size
            elif k > size:
                raise ValueError(f"axis {axis}: kernel {k} exceeds the input length {size}")
            else:
                o = (size - k) // s + 1
                left = size - ((o - 1) * s + k)
                if left > 0 and tail == "pad":
                    o += 1
                    extra = (o - 1) * s + k - size
        elif o is not None and s is not None and k is None:
            k = size - (o - 1) * s
            if k < 1:
                raise ValueError(f"axis {axis}: {o} windows of stride {s} overrun length {size}")
        elif o is not None and k is not None and s is None:
            if o < 2:
                raise ValueError(f"axis {axis}: output size + kernel mode needs output size > 1")
            if k > size:
                raise ValueError(f"axis {axis}: kernel {k} exceeds the input length {size}")
            s = (size - k) // (o - 1)
            if s < 1:
                raise ValueError(f"axis {axis}: {o} windows of kernel {k} do not fit length {size}")
        else:
            raise ValueError(
                "give exactly one of: output_size; kernel and stride; output_size and stride; "
                "output_size and kernel"
            )
        o_res.append(o)
        k_res.append(k)
        s_res.append(s)
        pad.append(extra)
    return PoolGeometry(tuple(o_res), tuple(k_res), tuple(s_res), tuple(pad))  # type: ignore[arg-type]


def weighted_adaptive_pool3d(
    x: Tensor,
    weights: Tensor | None = None,
    output_size: int | Sequence[int] | None = None,
    kernel: int | Sequence[int] | None = None,
    stride: int | Sequence[int] | None = None,
    temperature: float = 0.01,
    *,
    tail: TailMode = "pad",
    ppllava_default_weights: bool = False,
) -> Tensor:
    """PPLLaVA's prompt-guided 3-D pooling (``weighted_adaptive_avg_pool3d_unfold``).

    Args:
        x: values ``(N, C, D, H, W)`` (D = time).
        weights: ``(N, D, H, W)`` scores; each window takes ``softmax(weights / temperature)``
            over its own ``kD*kH*kW`` elements. None: equal weights (plain average pooling).
        output_size, kernel, stride: the geometry, see `resolve_pool_geometry`.
        temperature: divides the weights before the per-window softmax (PPLLaVA: 0.01).
        tail: ``"pad"`` (default) covers the tail that kernel + stride mode leaves; ``"ppllava"``
            drops it as the reference does.
        ppllava_default_weights: reproduce the reference's ``(N, D, W, H)`` default weights,
            which refuse ``H != W``.

    Returns:
        ``(N, C, oD, oH, oW)`` in ``x``'s dtype.
    """
    if x.ndim != 5:
        raise ValueError(f"expected x of shape (N, C, D, H, W), got {tuple(x.shape)}")
    n, _, d, h, w = x.shape
    if weights is None:
        if ppllava_default_weights and h != w:
            raise ValueError(
                f"PPLLaVA's default weights are (N, D, W, H) = {(n, d, w, h)} and do not fit a "
                f"{h}x{w} grid (ppllava_default_weights=True reproduces this)"
            )
        weights = x.new_zeros((n, d, h, w))
    elif weights.shape != (n, d, h, w):
        raise ValueError(
            f"weights must be (N, D, H, W) = {(n, d, h, w)}, got {tuple(weights.shape)}"
        )
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    geo = resolve_pool_geometry((d, h, w), output_size, kernel, stride, tail=tail)
    scores = weights.to(x.dtype) / temperature
    if any(geo.padded):
        pd, ph, pw = geo.padded
        x = F.pad(x, (0, pw, 0, ph, 0, pd))
        scores = F.pad(scores, (0, pw, 0, ph, 0, pd), value=-math.inf)
    (kd, kh, kw), (sd, sh, sw) = geo.kernel, geo.stride
    od, oh, ow = geo.output_size
    # Windows as the last three dims: x (N, C, oD, oH, oW, kD, kH, kW), scores (N, oD, ..., kW).
    xs = x.unfold(2, kd, sd).unfold(3, kh, sh).unfold(4, kw, sw)[:, :, :od, :oh, :ow]
    ws = scores.unfold(1, kd, sd).unfold(2, kh, sh).unfold(3, kw, sw)[:, :od, :oh, :ow]
    probs = torch.softmax(ws.reshape(n, od, oh, ow, kd * kh * kw), dim=-1)
    values = xs.reshape(*xs.shape[:5], kd * kh * kw)
    return torch.einsum("ncdhwk,ndhwk->ncdhw", values, probs)


# --------------------------------------------------------------------------------------------
# 2. Long-CLIP text positions


def extend_text_positions(table: Tensor, keep: int = KEEP_POSITIONS) -> Tensor:
    """Stretch a CLIP text position table from ``L`` to ``4L - 3*keep`` rows (77 -> 248; SigLIP
    64 -> 196): rows below ``keep`` are copied, each later gap is interpolated at 0, 1/4, 2/4,
    3/4, and the last 4 rows extrapolate past the final row (Long-CLIP section 3.1)."""
    if table.ndim != 2 or table.shape[0] < keep + 2:
        raise ValueError(
            f"expected a (L > {keep + 1}, dim) position table, got {tuple(table.shape)}"
        )
    length = table.shape[0]
    head = table[:keep]
    left, right = table[keep : length - 1], table[keep + 1 :]
    fractions = torch.arange(4, dtype=table.dtype, device=table.device) / 4
    inner = left[:, None] + fractions[None, :, None] * (right - left)[:, None]
    last, step = table[-1], table[-1] - table[-2]
    tail = last[None] + fractions[:, None] * step[None]
    return torch.cat([head, inner.reshape(-1, table.shape[1]), tail])


class ExtendedTextEmbeddings(nn.Module):
    """CLIP text embeddings with Long-CLIP's split position tables.

    ``position_embedding`` (frozen: a buffer-like parameter with ``requires_grad=False``) serves
    positions below ``keep``; ``position_embedding_res`` (trainable) serves the rest. Positions
    always start at 0; a ``position_ids`` argument is ignored, as in the reference.
    """

    def __init__(self, vocab_size: int, hidden_size: int, positions: int, keep: int = 20) -> None:
        super().__init__()
        self.keep = keep
        self.token_embedding = nn.Embedding(vocab_size, hidden_size)
        table = torch.randn(positions, hidden_size) * 0.01  # CLIP's init; both start equal
        self.position_embedding = nn.Parameter(table.clone(), requires_grad=False)
        self.position_embedding_res = nn.Parameter(table)

    @classmethod
    def from_table(
        cls, token_embedding: Tensor, table: Tensor, keep: int = KEEP_POSITIONS
    ) -> ExtendedTextEmbeddings:
        """From a stock CLIP token table and its (77-row) position table, extended."""
        extended = extend_text_positions(table, keep)
        module = cls(token_embedding.shape[0], token_embedding.shape[1], extended.shape[0], keep)
        with torch.no_grad():
            module.token_embedding.weight.copy_(token_embedding)
            module.position_embedding.copy_(extended)
            module.position_embedding_res.copy_(extended)
        return module

    def forward(
        self,
        input_ids: Tensor | None = None,
        position_ids: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
    ) -> Tensor:
        if inputs_embeds is None:
            inputs_embeds = self.token_embedding(input_ids)
        length = inputs_embeds.shape[-2]
        if length > self.position_embedding.shape[0]:
            raise ValueError(
                f"text of {length} tokens is longer than {self.position_embedding.shape[0]}"
            )
        keep = min(self.keep, length)
        positions = torch.cat(
            [self.position_embedding[:keep], self.position_embedding_res[keep:length]]
        )
        return inputs_embeds + positions.to(inputs_embeds.dtype)


# --------------------------------------------------------------------------------------------
# 3. The prompt-guided compressor


def _default_text_config() -> dict[str, Any]:
    return {
        "vocab_size": 258,
        "hidden_size": 24,
        "intermediate_size": 48,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "hidden_act": "quick_gelu",
        "layer_norm_eps": 1e-5,
    }


@dataclass
class PPLLaVAConfig:
    """The ``ppllava`` compressor's parameters (``compressor.params`` of a model config).

    ``text_config``: the CLIP text tower (transformers ``CLIPTextConfig`` keys; its position
    table has ``text_positions`` rows, 248 after the Long-CLIP extension). ``projection_dim``:
    CLIP's joint space (768 for CLIP-L). ``frame_shape``: the patch grid (H, W); None takes the
    model's square grid. ``pooling_*``: video geometry (give a kernel and stride, or an output
    size, see `resolve_pool_geometry`); ``image_pooling_*``: the image (anyres crops) kernel.
    ``logit_scale``: initial ``log`` of CLIP's scale (log 100). ``tail``: see the module table.
    ``text_encoder``: ``"clip"`` (the paper's) or ``"minilm"`` (the question's MiniLM sentence
    embedding; ``text_config``, ``text_positions`` and ``projection_dim`` are then unused);
    ``minilm_path``: another sentence-transformers BERT folder (None: all-MiniLM-L6-v2).
    """

    text_config: dict[str, Any] = field(default_factory=_default_text_config)
    text_positions: int = 248
    projection_dim: int = 16
    frame_shape: tuple[int, int] | None = None
    pooling_kernel: Triple | None = (2, 3, 3)
    pooling_stride: Triple | None = (2, 3, 3)
    pooling_output_size: Triple | None = None
    image_pooling_kernel: Triple | None = (1, 3, 3)
    image_pooling_stride: Triple | None = (1, 3, 3)
    image_pooling_output_size: Triple | None = None
    temperature: float = 0.01
    logit_scale: float = math.log(100.0)
    tail: TailMode = "pad"
    text_encoder: TextEncoder = "clip"
    minilm_path: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.text_config, dict):
            raise ConfigError("compressor 'ppllava': text_config must be an object")
        for name in ("text_positions", "projection_dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"compressor 'ppllava': {name} must be a positive int")
        if self.text_positions <= KEEP_POSITIONS:
            raise ConfigError(f"compressor 'ppllava': text_positions must exceed {KEEP_POSITIONS}")
        try:
            for name in (
                "pooling_kernel",
                "pooling_stride",
                "pooling_output_size",
                "image_pooling_kernel",
                "image_pooling_stride",
                "image_pooling_output_size",
            ):
                setattr(self, name, _triple(getattr(self, name), name))
            if self.frame_shape is not None:
                shape = tuple(self.frame_shape)
                if len(shape) != 2 or any(not isinstance(v, int) or v < 1 for v in shape):
                    raise ValueError(f"frame_shape must be 2 positive ints, got {shape!r}")
                self.frame_shape = shape  # type: ignore[assignment]
        except ValueError as exc:
            raise ConfigError(f"compressor 'ppllava': {exc}") from None
        if not (isinstance(self.temperature, (int, float)) and self.temperature > 0):
            raise ConfigError("compressor 'ppllava': temperature must be a positive number")
        if self.tail not in ("pad", "ppllava"):
            raise ConfigError(
                f"compressor 'ppllava': tail must be 'pad' or 'ppllava', got {self.tail!r}"
            )
        if self.text_encoder not in ("clip", "minilm"):
            raise ConfigError(
                f"compressor 'ppllava': text_encoder must be 'clip' or 'minilm', "
                f"got {self.text_encoder!r}"
            )
        vocab = self.text_config.get("vocab_size", 49408)
        if not isinstance(vocab, int) or vocab < 3:
            raise ConfigError("compressor 'ppllava': text_config.vocab_size must be an int > 2")

    @property
    def eos_id(self) -> int:
        """EOS is the largest id (README 5b), also the padding id."""
        return int(self.text_config.get("vocab_size", 49408)) - 1

    @property
    def bos_id(self) -> int:
        return self.eos_id - 1


class PPLLaVACompressor(Compressor):
    """``ppllava``: prompt-guided 3-D pooling of the projected patches (module docstring).

    Own weights (saved with the model): ``clip_visual_ln``, ``clip_visual_projection``,
    ``clip_text_model`` (transformers ``CLIPTextModel`` with `ExtendedTextEmbeddings`),
    ``clip_text_projection`` and ``logit_scale``; the model's ``projector`` (LLaVA's
    ``mlp2x_gelu``) gives the values. ``text_tokenizer`` (optional, not saved) turns the
    question into CLIP ids; without one the question's UTF-8 bytes are the ids (ids 0..255,
    which every CLIP vocabulary holds), between BOS and EOS: right for tiny random towers,
    noise for a trained one, which needs its CLIP tokenizer attached.

    With ``text_encoder="minilm"`` the own weights are ``visual_ln``, ``visual_projection``
    (``Dv -> 384``) and ``logit_scale``; the question goes through the shared frozen MiniLM.
    """

    name = "ppllava"

    def __init__(self, dims: ModelDims, config: PPLLaVAConfig | None = None) -> None:
        super().__init__(dims)
        self.config = config = config or PPLLaVAConfig()
        self.text_tokenizer: Any = None
        if config.text_encoder == "minilm":
            from longvid.encoders.minilm import minilm_width

            width = dims.vision_width
            self.visual_ln = nn.LayerNorm(width, eps=1e-5)
            self.visual_projection = nn.Linear(width, minilm_width(config.minilm_path))
            self.logit_scale = nn.Parameter(torch.tensor(float(config.logit_scale)))
            return
        from transformers import CLIPTextConfig, CLIPTextModel

        settings = {**_default_text_config(), **config.text_config}
        settings["max_position_embeddings"] = config.text_positions
        settings.setdefault("projection_dim", config.projection_dim)
        vocab = int(settings["vocab_size"])
        settings.update(bos_token_id=vocab - 2, eos_token_id=vocab - 1, pad_token_id=vocab - 1)
        try:
            text_config = CLIPTextConfig(**settings)
        except Exception as exc:  # transformers' strict config checks
            raise ConfigError(f"compressor 'ppllava': bad text_config: {exc}") from None
        self.text_config = text_config
        width, text_width = dims.vision_width, text_config.hidden_size
        self.clip_visual_ln = nn.LayerNorm(width, eps=text_config.layer_norm_eps)
        self.clip_visual_projection = nn.Linear(width, config.projection_dim, bias=False)
        self.clip_text_model = CLIPTextModel(text_config)
        self.clip_text_model.embeddings = ExtendedTextEmbeddings(
            vocab, text_width, config.text_positions
        )
        self.clip_text_projection = nn.Linear(text_width, config.projection_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(float(config.logit_scale)))

    @classmethod
    def from_params(cls, params: Mapping[str, Any], dims: ModelDims) -> PPLLaVACompressor:
        """From ``compressor.params`` of a model config (the fields of `PPLLaVAConfig`)."""
        try:
            return cls(dims, PPLLaVAConfig(**params))
        except TypeError as exc:
            raise ConfigError(f"compressor 'ppllava': {exc}") from None

    # -- text ----------------------------------------------------------------------------------

    def question_embedding(self, question: str | None) -> Tensor:
        """The question's text embedding ``(1, P)``: the projected CLIP embedding, or the
        MiniLM sentence embedding (``text_encoder="minilm"``; None is the empty text)."""
        if self.config.text_encoder == "minilm":
            from longvid.encoders.minilm import get_minilm

            embedding = get_minilm(self.config.minilm_path).embed([question or ""])
            return embedding.to(self.logit_scale.device)
        return self.text_embedding(*self.tokenize(question))

    def tokenize(self, question: str | None) -> tuple[Tensor, Tensor]:
        """CLIP ids and mask ``(1, text_positions)``: BOS, the question, EOS, padded with EOS
        (truncated to fit, EOS kept), as the reference's CLIP tokenizer pads to 248."""
        length, eos, bos = self.config.text_positions, self.config.eos_id, self.config.bos_id
        text = question or ""
        if self.text_tokenizer is not None:
            body = list(self.text_tokenizer(text, add_special_tokens=False)["input_ids"])
        else:
            if bos < 256:
                raise ConfigError(
                    f"compressor 'ppllava': a CLIP vocabulary of {eos + 1} ids cannot hold the "
                    "256 byte ids; attach a CLIP tokenizer as `text_tokenizer`"
                )
            body = list(text.encode("utf-8"))
        ids = [bos, *body[: length - 2], eos]
        mask = [1] * len(ids) + [0] * (length - len(ids))
        ids += [eos] * (length - len(ids))
        device = self.logit_scale.device
        return (
            torch.tensor([ids], dtype=torch.long, device=device),
            torch.tensor([mask], dtype=torch.long, device=device),
        )

    def text_embedding(self, clip_ids: Tensor, clip_mask: Tensor | None = None) -> Tensor:
        """Projected CLIP text embedding ``(B, projection_dim)``: the final-LayerNorm state at
        the first EOS. The text tower is causal, so neither the mask nor anything after the
        first EOS changes it: only the ids up to the last sequence's first EOS are run (a
        short question costs ~20 positions instead of 248; the numbers are the same)."""
        first_eos = (clip_ids == self.config.eos_id).int().argmax(dim=-1)
        length = int(first_eos.max()) + 1
        clip_ids = clip_ids[:, :length]
        clip_mask = None if clip_mask is None else clip_mask[:, :length]
        out = self.clip_text_model(input_ids=clip_ids, attention_mask=clip_mask)
        hidden = out.last_hidden_state
        pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), first_eos]
        return self.clip_text_projection(pooled)

    # -- the projector -------------------------------------------------------------------------

    def scores(self, features: Tensor, text_embeds: Tensor) -> Tensor:
        """Cosine of every patch with the text, ``(T, L)`` (README step 3)."""
        if self.config.text_encoder == "minilm":
            visual = self.visual_projection(self.visual_ln(features))
        else:
            visual = self.clip_visual_projection(self.clip_visual_ln(features))
        visual = F.normalize(visual.flatten(0, 1), dim=-1)
        text = F.normalize(text_embeds, dim=-1)
        return (visual @ text.reshape(-1, 1)).reshape(features.shape[:2])

    def pool(
        self,
        features: Tensor,
        projector: Any,
        clip_ids: Tensor,
        clip_mask: Tensor | None = None,
        *,
        video: bool = True,
    ) -> tuple[Tensor, Tensor]:
        """The reference projector's forward: ``(T, L, Dv)`` features -> pooled tokens
        ``(oT*oH*oW, D_text)`` ((t, h, w) order, w fastest) and the cosines ``(T, H, W)``."""
        text = self.text_embedding(clip_ids, clip_mask)
        return self.pool_embedded(features, projector, text, video=video)

    def pool_embedded(
        self, features: Tensor, projector: Any, text: Tensor, *, video: bool = True
    ) -> tuple[Tensor, Tensor]:
        """`pool` given the text embedding ``(1, P)`` (`question_embedding`)."""
        frames, length, _ = features.shape
        height, width = self.config.frame_shape or (self.dims.patches_per_side,) * 2
        if height * width != length:
            raise ValueError(f"{length} patches per frame do not form a {height}x{width} grid")
        cosine = self.scores(features, text)
        weights = torch.softmax(self.logit_scale.exp() * cosine.reshape(1, -1), dim=-1)
        weights = weights.reshape(1, frames, height, width)
        values = projector(features)  # (T, L, D)
        values = values.permute(2, 0, 1).reshape(1, -1, frames, height, width)
        cfg = self.config
        if video:
            geometry = (cfg.pooling_output_size, cfg.pooling_kernel, cfg.pooling_stride)
        else:
            geometry = (
                cfg.image_pooling_output_size,
                cfg.image_pooling_kernel,
                cfg.image_pooling_stride,
            )
        output_size, kernel, stride = geometry
        if output_size is not None:
            kernel = stride = None  # output size takes precedence over a default kernel
        pooled = weighted_adaptive_pool3d(
            values,
            weights.to(values.dtype),
            output_size,
            kernel,
            stride,
            cfg.temperature,
            tail=cfg.tail,
        )
        tokens = pooled[0].flatten(1).transpose(0, 1)
        return tokens, cosine.reshape(frames, height, width)

    def forward(self, features, *, projector, frame_times, question=None) -> CompressedVideo:
        text = self.question_embedding(question)
        tokens, cosine = self.pool_embedded(features, projector, text)
        frames = features.shape[0]
        height, width = cosine.shape[1:]
        cfg = self.config
        geo = resolve_pool_geometry(
            (frames, height, width),
            cfg.pooling_output_size,
            None if cfg.pooling_output_size else cfg.pooling_kernel,
            None if cfg.pooling_output_size else cfg.pooling_stride,
            tail=cfg.tail,
        )
        # A pooled token spans several frames; it is told to the prompt as the first of them.
        per_window = tokens.shape[0] // geo.output_size[0]
        counts = [0] * frames
        for k in range(geo.output_size[0]):
            counts[k * geo.stride[0]] += per_window
        first = torch.arange(frames).repeat_interleave(torch.tensor(counts))
        times = torch.as_tensor(np.asarray(frame_times, dtype=np.float64))[first]
        return CompressedVideo(tokens, first, times, counts, cosine.detach())
