"""The released LongVA checkpoint layout, and end-to-end parity (parity README section 8).

From the raw uint8 image and video stored in ``longva_e2e_tiny.safetensors`` and the weights of
``longva_e2e_tiny_weights.safetensors`` (``LlavaQwenForCausalLM`` key names), the pipeline
reproduces the reference's pixel values, CLIP features, ``inputs_embeds`` and logits at the
README's tolerances: pixels and embeddings ``atol=1e-5``, logits ``atol=2e-5, rtol=1e-4``.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from longvid.compressors.longva import LongVAPoolConfig, merge_visual_item, pool_video_tokens
from longvid.encoders.anyres import (
    anyres_grid_shape,
    preprocess_anyres,
    preprocess_pad,
    preprocess_video,
)
from longvid.errors import CheckpointError, ConfigError
from longvid.models.longva_checkpoint import (
    load_longva_checkpoint,
    longva_config_from_dict,
    longva_key_mapping,
)
from longvid.models.modeling import LongVideoLM
from longvid.models.registry import get_config
from longvid.prompting.longva_sequence import assemble_multimodal_sequence

# tests/models/<file> -> parents[2] = checkout root; the parity files sit beside it.
PARITY = Path(__file__).resolve().parents[3] / "shared" / "parity" / "longva"
CONFIG = PARITY / "longva_e2e_tiny_config.json"
WEIGHTS = PARITY / "longva_e2e_tiny_weights.safetensors"
VECTORS = PARITY / "longva_e2e_tiny.safetensors"


@pytest.fixture(scope="module")
def parity() -> dict[str, torch.Tensor]:
    if not VECTORS.is_file():
        pytest.skip(f"LongVA parity files not found at {PARITY}")
    return load_file(VECTORS)


@pytest.fixture(scope="module")
def model(parity: dict[str, torch.Tensor]) -> LongVideoLM:
    return load_longva_checkpoint(CONFIG, WEIGHTS, trained=False)


@pytest.fixture
def checkpoint_dir(parity: dict[str, torch.Tensor], tmp_path: Path) -> Path:
    """The tiny checkpoint laid out as a released one: config.json + model.safetensors."""
    shutil.copy(CONFIG, tmp_path / "config.json")
    shutil.copy(WEIGHTS, tmp_path / "model.safetensors")
    return tmp_path


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


@torch.no_grad()
def test_end_to_end_parity(model: LongVideoLM, parity: dict[str, torch.Tensor]) -> None:
    config = model.config
    processing = config.image_processing
    processor = processing.image_processor()
    image = parity["raw_image_hwc_uint8"].numpy()  # (40, 90, 3): a 90x40 image
    video = parity["raw_video_thwc_uint8"].numpy()  # (3, 50, 70, 3)
    diffs: dict[str, float] = {}

    # Pixels (README 8b): anyres for the image (the reference's float64 ceil), plain CLIP
    # preprocessing for each video frame, and the V-NIAH pad path.
    pixels_image = preprocess_anyres(
        image, processing.image_grid_pinpoints, processor, reference_ceil_bug=True
    )
    pixels_video = preprocess_video(video, processor)
    pixels_pad = preprocess_pad(image, processor)
    for name, pixels in (
        ("pixels_image_anyres", pixels_image),
        ("pixels_video", pixels_video),
        ("pixels_image_pad", pixels_pad),
    ):
        torch.testing.assert_close(pixels, parity[name], atol=1e-5, rtol=0)
        diffs[name] = _max_diff(pixels, parity[name])

    # CLIP layer -2 patch features (README 8c).
    feats_image = model.encode_images(pixels_image, chunk_size=2)
    feats_video = model.encode_images(pixels_video)
    for name, feats in (("vision_feats_image", feats_image), ("vision_feats_video", feats_video)):
        torch.testing.assert_close(feats, parity[name], atol=1e-5, rtol=0)
        diffs[name] = _max_diff(feats, parity[name])

    # Project, then UniRes for the image and 2x2 pooling for the video (README 2, 3).
    side = config.patches_per_side
    grid = anyres_grid_shape(
        (image.shape[1], image.shape[0]), processing.image_grid_pinpoints, processing.crop_size
    )
    assert grid == (2, 1)
    pool = LongVAPoolConfig(**config.compressor.params)
    image_tokens = merge_visual_item(
        model.project(feats_image), "image", patches_per_side=side, grid=grid
    )
    video_tokens = merge_visual_item(
        model.project(feats_video), "video", patches_per_side=side, config=pool
    )
    assert image_tokens.shape == (8, 32) and video_tokens.shape == (12, 32)
    needle = pool_video_tokens(model.project(model.encode_images(pixels_pad)), side, pool)
    torch.testing.assert_close(needle[0], parity["needle_embedding_pad_pool2"], atol=1e-5, rtol=0)
    diffs["needle_embedding_pad_pool2"] = _max_diff(needle[0], parity["needle_embedding_pad_pool2"])

    # Sequence assembly (README 2 step 5-7, 8d) and the Qwen2 decoder.
    seq = assemble_multimodal_sequence(
        parity["input_ids"],
        [image_tokens, video_tokens],
        model.embed_tokens,
        attention_mask=parity["attention_mask"],
    )
    assert torch.equal(seq.attention_mask, parity["out_attention_mask"])
    torch.testing.assert_close(seq.inputs_embeds, parity["out_inputs_embeds"], atol=1e-5, rtol=0)
    diffs["out_inputs_embeds"] = _max_diff(seq.inputs_embeds, parity["out_inputs_embeds"])
    logits = model(inputs_embeds=seq.inputs_embeds, attention_mask=seq.attention_mask).logits
    torch.testing.assert_close(logits, parity["out_logits"], atol=2e-5, rtol=1e-4)
    real = seq.attention_mask
    diffs["out_logits (real)"] = _max_diff(logits[real], parity["out_logits"][real])
    diffs["out_logits (padded)"] = _max_diff(logits[~real], parity["out_logits"][~real])
    print("\nLongVA e2e parity, max abs diff:", json.dumps(diffs, indent=1))


def test_config_translation(model: LongVideoLM) -> None:
    config = model.config
    assert config.trained is False and config.projector == "mlp2x_gelu"
    assert config.rope_theta == 1e9 and config.context_length == 4096
    assert config.vision_tower.select_layer == -2 and config.vision_tower.select_feature == "patch"
    assert config.compressor.name == "longva"
    assert config.compressor.params == {"stride": 2, "mode": "average"}
    assert config.image_processing.image_aspect_ratio == "anyres"
    assert config.image_processing.image_grid_pinpoints[0] == (56, 112)
    assert config.image_processing.crop_size == config.image_processing.shortest_edge == 56
    assert model.language_model.config.tie_word_embeddings is False


def test_directory_and_from_pretrained_dispatch(
    model: LongVideoLM, checkpoint_dir: Path, parity: dict[str, torch.Tensor]
) -> None:
    from_dir = load_longva_checkpoint(checkpoint_dir, trained=False)
    via_generic = LongVideoLM.from_pretrained(checkpoint_dir)  # sees model_type llava_qwen
    assert via_generic.config.trained is True  # a released checkpoint is trained by default
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        expected = model(input_ids=ids).logits
        assert torch.equal(from_dir(input_ids=ids).logits, expected)
        assert torch.equal(via_generic(input_ids=ids).logits, expected)


def test_saved_as_longvid_and_back(model: LongVideoLM, tmp_path: Path) -> None:
    model.save_pretrained(tmp_path)
    again = LongVideoLM.from_pretrained(tmp_path)
    assert again.config == model.config
    ids = torch.tensor([[3, 1, 4, 1, 5]])
    with torch.no_grad():
        assert torch.equal(again(input_ids=ids).logits, model(input_ids=ids).logits)


def test_unexpected_and_missing_keys_are_listed(checkpoint_dir: Path) -> None:
    tensors = load_file(checkpoint_dir / "model.safetensors")
    tensors["model.image_newline"] = torch.zeros(32)
    del tensors["model.mm_projector.2.bias"]
    tensors["model.rotary_emb.inv_freq"] = torch.zeros(8)  # stale buffer: ignored
    save_file(tensors, checkpoint_dir / "model.safetensors")
    with pytest.raises(CheckpointError) as info:
        load_longva_checkpoint(checkpoint_dir)
    text = str(info.value)
    assert text.startswith(str(checkpoint_dir / "model.safetensors"))
    assert "unexpected: model.image_newline (32)" in text
    assert "missing: projector.2.bias (32)" in text
    assert "inv_freq" not in text


def test_pickle_only_longva_dir_needs_opt_in(checkpoint_dir: Path) -> None:
    tensors = load_file(checkpoint_dir / "model.safetensors")
    (checkpoint_dir / "model.safetensors").unlink()
    torch.save(tensors, checkpoint_dir / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="allow_pickle=True"):
        load_longva_checkpoint(checkpoint_dir)
    assert isinstance(load_longva_checkpoint(checkpoint_dir, allow_pickle=True), LongVideoLM)


BAD_LONGVA_CONFIGS = [
    ("hidden_size", None, "missing key 'hidden_size'"),
    ("num_hidden_layers", "1", "key 'num_hidden_layers': expected int, got str"),
    ("mm_projector_type", "mlp3x_gelu", "key 'mm_projector_type': unknown projector"),
    ("mm_patch_merge_type", "spatial_unpad", "key 'mm_patch_merge_type'"),
    ("mm_hidden_size", 1024, "key 'mm_hidden_size': 1024 is not the vision tower's width 16"),
    ("mm_vision_select_layer", "last", "key 'mm_vision_select_layer'"),
    ("mm_spatial_pool_mode", "bilinear", "key 'mm_spatial_pool_mode'"),
    ("model_type", "llava_llama", "key 'model_type'"),
    ("vision_tower_config", None, "key 'mm_vision_tower': '<tiny clip"),
    ("image_aspect_ratio", "anyres_max_9", "key 'image_aspect_ratio'"),
]


@pytest.mark.parametrize(
    ("key", "value", "message"), BAD_LONGVA_CONFIGS, ids=[c[0] for c in BAD_LONGVA_CONFIGS]
)
def test_malformed_longva_config(checkpoint_dir: Path, key: str, value: Any, message: str) -> None:
    data = json.loads((checkpoint_dir / "config.json").read_text())
    if value is None:
        del data[key]
    else:
        data[key] = value
    (checkpoint_dir / "config.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError) as info:
        load_longva_checkpoint(checkpoint_dir)
    assert str(info.value).startswith(str(checkpoint_dir / "config.json") + ": ")
    assert message in str(info.value)


def _released_config() -> dict[str, Any]:
    """What LongVA-7B's config.json carries (README section 9)."""
    from longvid.encoders.anyres import longva_pinpoints

    return {
        "architectures": ["LlavaQwenForCausalLM"],
        "model_type": "llava_qwen",
        "vocab_size": 152064,
        "hidden_size": 3584,
        "intermediate_size": 18944,
        "num_hidden_layers": 28,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "max_position_embeddings": 224000,
        "rope_theta": 1000000000.0,
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": False,
        "use_sliding_window": False,
        "bos_token_id": 151643,
        "eos_token_id": 151645,
        "mm_vision_tower": "openai/clip-vit-large-patch14-336",
        "mm_hidden_size": 1024,
        "mm_projector_type": "mlp2x_gelu",
        "mm_vision_select_layer": -2,
        "mm_vision_select_feature": "patch",
        "mm_patch_merge_type": "unires",
        "image_aspect_ratio": "anyres",
        "image_grid_pinpoints": [list(p) for p in longva_pinpoints(336)],
        "mm_spatial_pool_stride": 2,
        "mm_spatial_pool_mode": "average",
        "mm_use_im_start_end": False,
        "mm_use_im_patch_token": False,
        "tokenizer_model_max_length": 32768,
        "tokenizer_padding_side": "right",
    }


def test_released_config_maps_to_the_registry_shapes() -> None:
    config = longva_config_from_dict(_released_config())
    reference = get_config("longva-7b")
    assert config.vision_tower == reference.vision_tower
    assert config.language_model == reference.language_model
    assert config.image_processing == reference.image_processing
    assert config.compressor == reference.compressor
    assert config.projector == reference.projector and config.trained is True


def test_released_key_layout_covers_the_7b_model() -> None:
    """Every LongVA-7B checkpoint key (README 8a) maps onto a LongVideoLM tensor, and back."""
    with safe_open(str(WEIGHTS), "pt") as f:
        tiny_keys = list(f.keys())
    keys: set[str] = set()
    for key in tiny_keys:  # the tiny file has 1 LLM layer and 3 CLIP layers; the 7B has 28 / 24
        if re.match(r"model\.layers\.0\.", key):
            keys.update(key.replace("layers.0.", f"layers.{i}.", 1) for i in range(28))
        elif ".encoder.layers." in key:
            keys.update(re.sub(r"layers\.\d+\.", f"layers.{i}.", key) for i in range(24))
        else:
            keys.add(key)
    with torch.device("meta"):
        model = LongVideoLM(longva_config_from_dict(_released_config()))
    mapping = longva_key_mapping(sorted(keys), model)
    assert set(mapping) == keys
    assert set(mapping.values()) == set(model.state_dict())
