"""Named model configurations and ``create_model(name)`` (the timm / open_clip registry habit).

A registered name maps to a function returning a fresh `LongVideoConfig`; ``create_model(name)``
builds a randomly initialised `LongVideoLM` from it (``trained=False``: its answers are noise).
Real shapes (``longva-7b``) build with random weights for shape, memory and speed tests; build
them under ``torch.device("meta")`` to count parameters without allocating them.

Entries:

- ``tiny-longva``: the tiny shapes of the LongVA parity files (``shared/parity/longva/README.md``
  section 8): CLIP 56 px / patch 14 (4x4 patches per crop, 16 wide, 3 layers), a 2-layer Qwen2
  (hidden 32, 2 heads / 1 KV head, RoPE theta 1e9), ``mlp2x_gelu``, LongVA pooling. Builds and
  runs a forward on CPU in well under a second.
- ``longva-7b``: LongVA-7B (Zhang et al. 2024; README section 9): CLIP ViT-L/14-336 (1024 wide,
  24 layers, 577 positions, ``select_layer=-2``) + Qwen2-7B-Instruct-224K (hidden 3584, 28
  layers, 28 heads / 4 KV heads, intermediate 18944, vocab 152064, theta 1e9, 224000
  positions) + ``mlp2x_gelu``, anyres with the 200 LongVA pinpoints, 2x2 average pooling.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from longvid.encoders.anyres import longva_pinpoints
from longvid.errors import ConfigError
from longvid.models.config import (
    CompressorConfig,
    ImageProcessingConfig,
    LongVideoConfig,
    VisionTowerConfig,
)

if TYPE_CHECKING:
    from longvid.models.modeling import LongVideoLM

__all__ = ["create_model", "get_config", "list_configs", "register"]

_REGISTRY: dict[str, Callable[[], LongVideoConfig]] = {}


def register(name: str) -> Callable[[Callable[[], LongVideoConfig]], Callable[[], LongVideoConfig]]:
    """Decorator: register a function returning a `LongVideoConfig` under ``name``."""

    def decorator(fn: Callable[[], LongVideoConfig]) -> Callable[[], LongVideoConfig]:
        if name in _REGISTRY:
            raise ValueError(f"model config {name!r} is already registered")
        _REGISTRY[name] = fn
        return fn

    return decorator


def list_configs() -> list[str]:
    """The registered names, sorted."""
    return sorted(_REGISTRY)


def get_config(name: str) -> LongVideoConfig:
    """A fresh copy of the named config (callers may modify it); `ConfigError` if unknown."""
    if name not in _REGISTRY:
        raise ConfigError(
            f"unknown model config {name!r} (registered: {', '.join(list_configs())})"
        )
    config = _REGISTRY[name]()
    config.name = name
    return config


def create_model(name: str) -> LongVideoLM:
    """A randomly initialised `LongVideoLM` of the named config (``trained`` is False).

    Build under ``with torch.device("meta"):`` to get shapes without allocating weights.
    """
    from longvid.models.modeling import LongVideoLM

    return LongVideoLM(get_config(name))


# --------------------------------------------------------------------------------------------
# Entries

_TINY_PINPOINTS = [(56, 112), (112, 56), (112, 112), (168, 56), (56, 168)]


@register("tiny-longva")
def tiny_longva() -> LongVideoConfig:
    """Tiny LongVA-shaped model for tests and the CLI smoke path (random weights)."""
    return LongVideoConfig(
        vision_tower=VisionTowerConfig(
            config={
                "model_type": "clip_vision_model",
                "hidden_size": 16,
                "intermediate_size": 32,
                "num_hidden_layers": 3,
                "num_attention_heads": 2,
                "image_size": 56,
                "patch_size": 14,
                "hidden_act": "quick_gelu",
                "layer_norm_eps": 1e-5,
            },
            select_layer=-2,
            select_feature="patch",
        ),
        projector="mlp2x_gelu",
        compressor=CompressorConfig(name="longva", params={"stride": 2, "mode": "average"}),
        language_model={
            "model_type": "qwen2",
            "vocab_size": 512,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "max_position_embeddings": 4096,
            "rope_theta": 1e9,
            "rms_norm_eps": 1e-6,
            "tie_word_embeddings": False,
        },
        image_processing=ImageProcessingConfig(
            image_aspect_ratio="anyres",
            image_grid_pinpoints=list(_TINY_PINPOINTS),
            shortest_edge=56,
            crop_size=56,
        ),
        chat_template="qwen_1_5",
        trained=False,
    )


@register("longva-7b")
def longva_7b() -> LongVideoConfig:
    """LongVA-7B's shapes (README section 9); random weights unless loaded from a checkpoint."""
    return LongVideoConfig(
        vision_tower=VisionTowerConfig(
            config={
                # openai/clip-vit-large-patch14-336, vision half.
                "model_type": "clip_vision_model",
                "hidden_size": 1024,
                "intermediate_size": 4096,
                "num_hidden_layers": 24,
                "num_attention_heads": 16,
                "image_size": 336,
                "patch_size": 14,
                "projection_dim": 768,
                "hidden_act": "quick_gelu",
                "layer_norm_eps": 1e-5,
            },
            select_layer=-2,
            select_feature="patch",
        ),
        projector="mlp2x_gelu",
        compressor=CompressorConfig(name="longva", params={"stride": 2, "mode": "average"}),
        language_model={
            # lmms-lab/Qwen2-7B-Instruct-224K: Qwen2-7B-Instruct with theta 1e9, 224000 positions.
            "model_type": "qwen2",
            "vocab_size": 152064,
            "hidden_size": 3584,
            "intermediate_size": 18944,
            "num_hidden_layers": 28,
            "num_attention_heads": 28,
            "num_key_value_heads": 4,
            "max_position_embeddings": 224000,
            "rope_theta": 1e9,
            "rms_norm_eps": 1e-6,
            "tie_word_embeddings": False,
            "use_sliding_window": False,
            "bos_token_id": 151643,
            "eos_token_id": 151645,
        },
        image_processing=ImageProcessingConfig(
            image_aspect_ratio="anyres",
            image_grid_pinpoints=longva_pinpoints(336),
            shortest_edge=336,
            crop_size=336,
        ),
        chat_template="qwen_1_5",
        trained=False,
    )
