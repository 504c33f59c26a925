"""Loading the released MiniGPT4-Video checkpoint layout (llama_proj + LoRA), on a tiny
checkpoint of the same format written here; and the registry entries."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from longvid.errors import CheckpointError
from longvid.models.minigpt4video_checkpoint import load_minigpt4video_checkpoint
from longvid.models.registry import create_model

PEFT = "llama_model.base_model.model."


@pytest.fixture(scope="module")
def base():
    torch.manual_seed(0)
    return create_model("tiny-minigpt4video").eval()


def released_state(model, rank: int = 4, adapter_name: bool = True) -> dict[str, torch.Tensor]:
    """What the reference's trainer saves: llama_proj and LoRA of q_proj / v_proj."""
    g = torch.Generator().manual_seed(1)
    proj = model.compressor.llama_proj
    state = {
        "llama_proj.weight": torch.randn(proj.weight.shape, generator=g),
        "llama_proj.bias": torch.randn(proj.bias.shape, generator=g),
    }
    infix = ".default" if adapter_name else ""
    for i, layer in enumerate(model.language_model.model.layers):
        for name in ("q_proj", "v_proj"):
            out_f, in_f = getattr(layer.self_attn, name).weight.shape
            key = f"{PEFT}model.layers.{i}.self_attn.{name}"
            state[f"{key}.lora_A{infix}.weight"] = torch.randn(rank, in_f, generator=g)
            state[f"{key}.lora_B{infix}.weight"] = torch.randn(out_f, rank, generator=g)
    return state


def fresh(base):
    model = create_model("tiny-minigpt4video").eval()
    model.load_state_dict(base.state_dict())
    return model


def test_loads_pickle_checkpoint_and_merges_lora(base, tmp_path):
    state = released_state(base)
    path = tmp_path / "video_llama_checkpoint_last.pth"
    torch.save({"model": state, "epoch": 3}, path)
    model = fresh(base)
    with pytest.raises(CheckpointError, match="allow_pickle"):
        load_minigpt4video_checkpoint(model, path)
    load_minigpt4video_checkpoint(model, path, allow_pickle=True, lora_alpha=16)

    assert torch.equal(model.compressor.llama_proj.weight, state["llama_proj.weight"])
    assert torch.equal(model.compressor.llama_proj.bias, state["llama_proj.bias"])
    key = f"{PEFT}model.layers.1.self_attn.v_proj"
    a, b = state[f"{key}.lora_A.default.weight"], state[f"{key}.lora_B.default.weight"]
    before = base.language_model.model.layers[1].self_attn.v_proj
    after = model.language_model.model.layers[1].self_attn.v_proj
    torch.testing.assert_close(after.weight, before.weight + (16 / 4) * b @ a)
    # The merged layer computes what peft's unmerged LoRA forward computes (dropout off).
    x = torch.randn(3, before.weight.shape[1])
    lora_forward = before(x) + (16 / 4) * (x @ a.T @ b.T)
    torch.testing.assert_close(after(x), lora_forward, atol=1e-5, rtol=1e-5)
    # Untouched: k_proj, the tower, ln_vision.
    assert torch.equal(
        model.language_model.model.layers[0].self_attn.k_proj.weight,
        base.language_model.model.layers[0].self_attn.k_proj.weight,
    )
    assert torch.equal(model.compressor.ln_vision.weight, base.compressor.ln_vision.weight)


def test_loads_safetensors_without_adapter_name(base, tmp_path):
    state = released_state(base, rank=2, adapter_name=False)
    state["ln_vision.weight"] = torch.full_like(base.compressor.ln_vision.weight, 2.0)
    state["ln_vision.bias"] = torch.zeros_like(base.compressor.ln_vision.bias)
    path = tmp_path / "ckpt.safetensors"
    save_file(state, path)
    model = load_minigpt4video_checkpoint(fresh(base), path)
    assert torch.equal(model.compressor.ln_vision.weight, state["ln_vision.weight"])
    key = f"{PEFT}model.layers.0.self_attn.q_proj"
    delta = 8.0 * state[f"{key}.lora_B.weight"] @ state[f"{key}.lora_A.weight"]
    torch.testing.assert_close(
        model.language_model.model.layers[0].self_attn.q_proj.weight,
        base.language_model.model.layers[0].self_attn.q_proj.weight + delta,
    )


def test_mismatches_are_listed_and_nothing_changes(base, tmp_path):
    state = released_state(base)
    state["llama_proj.weight"] = torch.zeros(3, 3)
    state["qformer.bert.weight"] = torch.zeros(2)
    del state[f"{PEFT}model.layers.0.self_attn.q_proj.lora_B.default.weight"]
    path = tmp_path / "bad.safetensors"
    save_file(state, path)
    model = fresh(base)
    with pytest.raises(CheckpointError) as info:
        load_minigpt4video_checkpoint(model, path)
    message = str(info.value)
    assert str(path) in message
    assert "mis-shaped: compressor.llama_proj.weight" in message
    assert "unexpected: qformer.bert.weight" in message
    assert "lora_B of model.layers.0.self_attn.q_proj" in message
    assert torch.equal(model.compressor.llama_proj.bias, base.compressor.llama_proj.bias)
    with pytest.raises(CheckpointError, match="not found"):
        load_minigpt4video_checkpoint(model, tmp_path / "missing.pth")


def test_needs_the_minigpt4video_compressor(tmp_path):
    model = create_model("tiny-longva")
    path = tmp_path / "x.safetensors"
    save_file({"llama_proj.bias": torch.zeros(1)}, path)
    with pytest.raises(CheckpointError, match="needs 'minigpt4video'"):
        load_minigpt4video_checkpoint(model, path)


@pytest.mark.parametrize(
    ("name", "context", "lm_type"),
    [("minigpt4video-llama2-7b", 4096, "llama"), ("minigpt4video-mistral-7b", 8192, "mistral")],
)
def test_released_shapes_build_on_meta(name, context, lm_type):
    with torch.device("meta"):
        model = create_model(name)
    assert model.config.context_length == context
    assert model.config.language_model["model_type"] == lm_type
    assert model.vision_tower.config.hidden_size == 1408
    assert model.vision_tower.config.num_hidden_layers == 39
    assert model.vision_tower.config.num_attention_heads == 16
    assert model.config.patches_per_side == 16
    assert model.compressor.tokens_per_frame == 64
    assert tuple(model.compressor.llama_proj.weight.shape) == (4096, 5632)
    assert model.config.chat_template == "minigpt4video"


def test_tiny_model_end_to_end_tokens(base):
    pixels = torch.zeros(2, 3, 224, 224)
    with torch.no_grad():
        features = base.encode_images(pixels)
        compressed = base.compress(features, [0.0, 1.0])
    assert features.shape == (2, 256, 16)
    assert compressed.tokens.shape == (128, 32)
    assert compressed.tokens_per_frame == [64, 64]


def test_loaded_weights_survive_save_and_load(base, tmp_path):
    state = released_state(base)
    path = tmp_path / "ckpt.safetensors"
    save_file(state, path)
    model = load_minigpt4video_checkpoint(fresh(base), path)
    from longvid.models.modeling import LongVideoLM

    again = LongVideoLM.from_pretrained(model.save_pretrained(tmp_path / "saved"))
    assert again.config.compressor.name == "minigpt4video"
    assert torch.equal(again.compressor.llama_proj.weight, state["llama_proj.weight"])
    assert torch.equal(
        again.language_model.model.layers[1].self_attn.q_proj.weight,
        model.language_model.model.layers[1].self_attn.q_proj.weight,
    )
