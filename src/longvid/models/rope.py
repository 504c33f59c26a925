"""RoPE cos/sin tables for a Qwen2 LLM at any ``rope_theta``, from transformers' own class.

LongVA (Zhang et al., "Long Context Transfer from Language to Vision", 2024, §3, training the
long language model) stretches Qwen2-7B-Instruct to 224K tokens by raising the RoPE base from
1e6 to 1e9. The tables here come from ``transformers``' ``Qwen2RotaryEmbedding`` (nothing is
re-derived), which reproduces the reference bit for bit (``shared/parity/longva`` README §4):
``inv_freq`` from torch's float32 ``pow`` and a single float32 ``position * inv_freq`` product,
rotate-half layout.

Reference surprises (``README §10``) that concern this file:

====  =============================================  =======================  ===================
§10   surprise                                       faithful option          default
====  =============================================  =======================  ===================
11    float32 RoPE: at 224K positions the angles     float32 tables (the      same: the model
      carry ~1e-2 rad of rounding noise, and         only mode)               was trained with
      ``inv_freq`` depends on torch's float32 pow                             this noise
====  =============================================  =======================  ===================

Do not "improve" the tables with a float64 or correctly rounded ``inv_freq``: one ulp moves the
angle at position 1e6 by ~0.05 rad away from what the checkpoint saw.
"""

from __future__ import annotations

import torch
from torch import Tensor
from transformers import Qwen2Config
from transformers.models.qwen2.modeling_qwen2 import (
    Qwen2RotaryEmbedding,
    apply_rotary_pos_emb,
)

__all__ = ["apply_rotary_pos_emb", "rope_cos_sin", "rope_inv_freq", "rotary_embedding"]


def rotary_embedding(head_dim: int, rope_theta: float) -> Qwen2RotaryEmbedding:
    """transformers' Qwen2 rotary module for ``head_dim`` and base ``rope_theta`` (default RoPE)."""
    if head_dim <= 0 or head_dim % 2:
        raise ValueError(f"head_dim must be a positive even number, got {head_dim}")
    config = Qwen2Config(
        hidden_size=head_dim,
        num_attention_heads=1,
        num_key_value_heads=1,
        head_dim=head_dim,
        rope_parameters={"rope_type": "default", "rope_theta": float(rope_theta)},
    )
    return Qwen2RotaryEmbedding(config)


def rope_inv_freq(head_dim: int, rope_theta: float) -> Tensor:
    """``(head_dim // 2,)`` float32 inverse frequencies ``1 / theta^(2i / head_dim)``."""
    return rotary_embedding(head_dim, rope_theta).inv_freq.clone()


def rope_cos_sin(
    position_ids: Tensor,
    head_dim: int,
    rope_theta: float,
    dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, Tensor]:
    """cos and sin tables ``(B, L, head_dim)`` for integer ``position_ids (B, L)``.

    Computed in float32 (as the reference) and cast to ``dtype``. Apply them to queries and
    keys laid out ``(B, heads, L, head_dim)`` with :func:`apply_rotary_pos_emb` (transformers').
    """
    if position_ids.ndim == 1:
        position_ids = position_ids[None]
    module = rotary_embedding(head_dim, rope_theta).to(position_ids.device)
    probe = torch.empty(0, dtype=dtype, device=position_ids.device)
    return module(probe, position_ids)
