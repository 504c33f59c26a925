"""The PPLLaVA checkpoint layout loader and the PPLLaVA registry entries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModel

from longvid.compressors.ppllava import PPLLaVACompressor, resolve_pool_geometry
from longvid.encoders.btadapter import BTAdapterVisionModel
from longvid.errors import CheckpointError
from longvid.models.ppllava_checkpoint import load_ppllava_parts, ppllava_key_mapping
from longvid.models.registry import create_model, get_config

PARITY = Path(__file__).resolve().parents[2].parent / "shared" / "parity" / "ppllava"
PROJECTOR_FILE = PARITY / "prompt_guided_projector.safetensors"


def _parts() -> tuple[nn.Module, PPLLaVACompressor]:
    model = create_model("tiny-ppllava")  # vision 32, LLM 48, text 24: the parity widths
    compressor = model.compressor
    # the parity tower's vocabulary is 64, the tiny model's 258: rebuild with the file's
    params = dict(model.config.compressor.params)
    params["text_config"] = {**params["text_config"], "vocab_size": 64}
    return model.projector, PPLLaVACompressor.from_params(params, compressor.dims)


def _weights() -> dict[str, torch.Tensor]:
    if not PROJECTOR_FILE.is_file():
        pytest.skip("parity file not present")
    f = safe_open(str(PROJECTOR_FILE), framework="pt")
    names = f.keys()
    return {k[len("weights.") :]: f.get_tensor(k) for k in names if k.startswith("weights.")}


def test_key_mapping() -> None:
    names = [
        "multi_modal_projector.linear_1.weight",
        "multi_modal_projector.linear_2.bias",
        "multi_modal_projector.logit_scale",
        "multi_modal_projector.clip_text_model.final_layer_norm.weight",
        "vision_tower.vision_model.btadapter_cls_token",
        "language_model.lm_head.weight",
        "something.else",
    ]
    assert ppllava_key_mapping(names) == {
        names[0]: "projector.0.weight",
        names[1]: "projector.2.bias",
        names[2]: "compressor.logit_scale",
        names[3]: "compressor.clip_text_model.final_layer_norm.weight",
        names[4]: "vision_tower.btadapter_cls_token",
        names[5]: "language_model.lm_head.weight",
    }


def test_loads_released_layout(tmp_path: Path) -> None:
    weights = _weights()
    file = tmp_path / "model.safetensors"
    save_file(weights, str(file))
    projector, compressor = _parts()
    load_ppllava_parts(file, projector=projector, compressor=compressor)
    torch.testing.assert_close(
        projector[0].weight, weights["multi_modal_projector.linear_1.weight"]
    )
    torch.testing.assert_close(
        compressor.clip_text_model.embeddings.position_embedding_res,
        weights["multi_modal_projector.clip_text_model.embeddings.position_embedding_res"],
    )
    assert float(compressor.logit_scale.detach().exp()) == pytest.approx(100.0, rel=1e-5)


def test_mis_shaped_tensor_is_refused(tmp_path: Path) -> None:
    weights = _weights()
    weights["multi_modal_projector.clip_visual_projection.weight"] = torch.zeros(16, 31)
    file = tmp_path / "bad.safetensors"
    save_file(weights, str(file))
    projector, compressor = _parts()
    before = projector[0].weight.clone()
    with pytest.raises(CheckpointError, match="mis-shaped") as info:
        load_ppllava_parts(file, projector=projector, compressor=compressor)
    assert "bad.safetensors" in str(info.value)
    assert "clip_visual_projection" in str(info.value)
    torch.testing.assert_close(projector[0].weight, before)  # nothing copied


def test_missing_and_foreign_tensors_are_refused(tmp_path: Path) -> None:
    weights = _weights()
    del weights["multi_modal_projector.logit_scale"]
    file = tmp_path / "missing.safetensors"
    save_file(weights, str(file))
    projector, compressor = _parts()
    with pytest.raises(CheckpointError, match="missing"):
        load_ppllava_parts(file, projector=projector, compressor=compressor)
    save_file({"foo.bar": torch.zeros(1)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(CheckpointError, match="outside the PPLLaVA layout"):
        load_ppllava_parts(tmp_path / "foreign.safetensors", projector=projector)


def test_btadapter_weights_need_a_btadapter_tower() -> None:
    file = PARITY / "btadapter_vision.safetensors"
    if not file.is_file():
        pytest.skip("parity file not present")
    f = safe_open(str(file), framework="pt")
    tiny = json.loads(f.metadata()["tiny_config"])
    tiny.pop("depth"), tiny.pop("max_T")
    plain = CLIPVisionModel(CLIPVisionConfig(**tiny))
    with pytest.raises(CheckpointError, match="unexpected"):
        load_ppllava_parts(file, vision_tower=plain, prefix="weights.")
    tower = BTAdapterVisionModel(CLIPVisionConfig(**tiny), depth=2, max_frames=8)
    load_ppllava_parts(file, vision_tower=tower, prefix="weights.")


def test_tiny_ppllava_builds_and_compresses() -> None:
    model = create_model("tiny-ppllava").eval()
    assert model.config.compressor.name == "ppllava"
    pixels = torch.randn(8, 3, 84, 84)
    with torch.no_grad():
        features = model.encode_images(pixels)
        out = model.compress(features, torch.arange(8) * 0.5, "what is it?")
    assert features.shape == (8, 36, 32)
    assert out.tokens.shape == (4 * 2 * 2, 48)
    assert out.relevance.shape == (8, 6, 6)


def test_ppllava_7b_parameter_count_on_meta() -> None:
    config = get_config("ppllava-7b")
    with torch.device("meta"):
        model = create_model("ppllava-7b")
    assert isinstance(model.vision_tower, BTAdapterVisionModel)
    counts = {n: sum(p.numel() for p in c.parameters()) for n, c in model.named_children()}
    assert counts["language_model"] == 6_738_415_616  # Vicuna-7B (Llama-2-7B shapes)
    clip_l = 303_507_456  # CLIP ViT-L/14-336 vision
    assert counts["projector"] == 1024 * 4096 + 4096 + 4096 * 4096 + 4096
    # CLIP-L text (123.06M with 77 positions) with two 248-row tables, + projections, ln, scale
    assert counts["compressor"] == 123_060_480 - 77 * 768 + 2 * 248 * 768 + 768 * 768 + (
        1024 * 768 + 2 * 1024 + 1
    )
    extra = counts["vision_tower"] - clip_l
    assert extra == 4 * (12_596_224 + 5_250_048) + 64 * 1024 + 1024  # 4 BT-Adapter blocks
    # 32 frames of 24x24 with (2, 3, 3) windows: 1024 tokens
    params = config.compressor.params
    geo = resolve_pool_geometry(
        (32, 24, 24), None, params["pooling_kernel"], params["pooling_stride"]
    )
    assert geo.output_size == (16, 8, 8)


def test_whole_model_with_the_parity_btadapter_tower_reproduces_its_video_features() -> None:
    """A `LongVideoLM` whose config asks for a BT-Adapter tower builds one, loads the parity
    tower's released-layout weights, and `encode_images` (a video, one clip) reproduces the
    reference's hidden state at ``select_layer`` with CLS dropped."""
    file = PARITY / "btadapter_vision.safetensors"
    if not file.is_file():
        pytest.skip("parity file not present")
    f = safe_open(str(file), framework="pt")
    tiny = json.loads(f.metadata()["tiny_config"])
    depth, max_frames = tiny.pop("depth"), tiny.pop("max_T")
    config = get_config("tiny-ppllava")
    config.vision_tower.config = {"model_type": "clip_vision_model", **tiny}
    config.vision_tower.btadapter = {"depth": depth, "max_frames": max_frames}
    from longvid.models.modeling import LongVideoLM

    model = LongVideoLM(config).eval()
    assert isinstance(model.vision_tower, BTAdapterVisionModel)
    load_ppllava_parts(file, vision_tower=model.vision_tower, prefix="weights.")
    pixels = f.get_tensor("video.pixel_values")[0]  # (T, 3, 28, 28): one clip
    features = model.encode_images(pixels, chunk_size=8)
    expected = f.get_tensor(f"video.hidden_states.{4 + config.vision_tower.select_layer + 1}")
    torch.testing.assert_close(features, expected[:, 1:], atol=1e-5, rtol=1e-4)


def test_whole_checkpoint_round_trip_in_the_released_layout(tmp_path: Path) -> None:
    """tiny-ppllava's weights written under the released key names load back into a fresh
    model through `load_ppllava_checkpoint` and give identical logits."""
    from longvid.models.ppllava_checkpoint import _PREFIXES, load_ppllava_checkpoint

    torch.manual_seed(1)
    source = create_model("tiny-ppllava").eval()
    released = {}
    for name, tensor in source.state_dict().items():
        for old, new in _PREFIXES:
            if name.startswith(new):
                released[old + name[len(new) :]] = tensor.contiguous()
                break
    file = tmp_path / "model.safetensors"
    save_file(released, str(file))
    torch.manual_seed(2)
    target = create_model("tiny-ppllava").eval()
    load_ppllava_checkpoint(target, file)
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        assert torch.equal(source(input_ids=ids).logits, target(input_ids=ids).logits)
    for (name, a), b in zip(source.state_dict().items(), target.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
