"""The model registry: named configs, random-init models, real shapes on the meta device."""

from __future__ import annotations

import pytest
import torch

from longvid.compressors.longva import LongVAPoolConfig, merge_visual_item
from longvid.errors import ConfigError
from longvid.models.config import LongVideoConfig
from longvid.models.modeling import LongVideoLM
from longvid.models.registry import create_model, get_config, list_configs, register
from longvid.prompting.longva_sequence import assemble_multimodal_sequence


def test_list_and_get() -> None:
    assert {"tiny-longva", "longva-7b"} <= set(list_configs())
    config = get_config("tiny-longva")
    assert isinstance(config, LongVideoConfig) and config.name == "tiny-longva"
    config.language_model["num_hidden_layers"] = 7  # a fresh copy each time
    assert get_config("tiny-longva").language_model["num_hidden_layers"] == 2
    with pytest.raises(ConfigError, match="unknown model config 'nope'.*tiny-longva"):
        get_config("nope")


def test_register_refuses_a_duplicate_name() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register("tiny-longva")(lambda: get_config("tiny-longva"))


@torch.no_grad()
def test_tiny_longva_runs_a_video_forward() -> None:
    torch.manual_seed(0)
    model = create_model("tiny-longva").eval()
    assert isinstance(model, LongVideoLM) and not model.config.trained
    frames = torch.randn(3, 3, 56, 56)  # 3 frames, already CLIP-normalised
    features = model.encode_images(frames, chunk_size=2)
    assert features.shape == (3, 16, 16)  # 4x4 patches, CLS dropped, CLIP width 16
    tokens = model.project(features)
    assert tokens.shape == (3, 16, 32)
    visual = merge_visual_item(
        tokens,
        "video",
        patches_per_side=model.config.patches_per_side,
        config=LongVAPoolConfig(**model.config.compressor.params),
    )
    assert visual.shape == (3 * 4, 32)  # 2x2 pooling: 4 tokens per frame
    ids = torch.tensor([[1, 2, -200, 3, 4]])
    seq = assemble_multimodal_sequence(ids, [visual], model.embed_tokens)
    logits = model(inputs_embeds=seq.inputs_embeds, attention_mask=seq.attention_mask).logits
    assert logits.shape == (1, 4 + 12, 512)
    assert torch.isfinite(logits).all()


def _clip_params(v: dict) -> int:
    d, inner, layers = v["hidden_size"], v["intermediate_size"], v["num_hidden_layers"]
    p = v["patch_size"]
    positions = (v["image_size"] // p) ** 2 + 1
    embeddings = d + 3 * p * p * d + positions * d  # class, patch conv (no bias), positions
    layer = 4 * (d * d + d) + (d * inner + inner) + (inner * d + d) + 2 * 2 * d
    return embeddings + 2 * 2 * d + layers * layer  # + pre / post LayerNorm


def _qwen2_params(t: dict) -> int:
    h, inner, layers, vocab = (
        t["hidden_size"],
        t["intermediate_size"],
        t["num_hidden_layers"],
        t["vocab_size"],
    )
    kv = t["num_key_value_heads"] * (h // t["num_attention_heads"])
    attention = (h * h + h) + 2 * (h * kv + kv) + h * h  # q, k, v with biases; o without
    layer = attention + 3 * h * inner + 2 * h
    return 2 * vocab * h + h + layers * layer  # untied embedding + lm_head, final norm


def test_longva_7b_builds_on_meta_with_the_right_size() -> None:
    config = get_config("longva-7b")
    with torch.device("meta"):
        model = create_model("longva-7b")
    assert next(model.parameters()).device.type == "meta"
    vision, text = config.vision_tower.config, config.language_model
    projector = (1024 * 3584 + 3584) + (3584 * 3584 + 3584)
    expected = _clip_params(vision) + _qwen2_params(text) + projector
    count = sum(p.numel() for p in model.parameters())
    assert count == expected
    assert 7_930_000_000 < count < 7_940_000_000  # 7.936 B: 0.3035 CLIP-L + 7.6156 LLM + 0.0165
    assert sum(p.numel() for p in model.vision_tower.parameters()) == 303_507_456
    assert model.projector[0].weight.shape == (3584, 1024)
    assert model.vision_tower.embeddings.position_embedding.weight.shape == (577, 1024)
    assert model.language_model.get_input_embeddings().weight.shape == (152064, 3584)
    assert model.language_model.config.num_key_value_heads == 4
    assert model.language_model.config.rope_parameters["rope_theta"] == 1e9
    assert model.tokens_per_image == 576


def test_longva_7b_rope_tables_match_the_parity_file() -> None:
    """The config's theta reaches transformers' rotary module: LongVA's float32 inv_freq."""
    from pathlib import Path

    from safetensors.torch import load_file
    from transformers.models.qwen2.modeling_qwen2 import Qwen2RotaryEmbedding

    path = (
        Path(__file__).resolve().parents[3]
        / "shared/parity/longva/longva_rope_theta1e9.safetensors"
    )
    if not path.is_file():
        pytest.skip(f"{path} not found")
    rotary = Qwen2RotaryEmbedding(get_config("longva-7b").text_config())
    assert torch.equal(rotary.inv_freq, load_file(path)["inv_freq_theta1e9"])
