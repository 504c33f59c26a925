"""A convolutional (transformers ResNet) vision tower: config checks, tokens, frozen eval mode."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from longvid.errors import ConfigError
from longvid.models.config import LongVideoConfig
from longvid.models.modeling import LongVideoLM, feature_tokens
from longvid.models.registry import MINI_TOWER, get_config

TINY_RESNET = {
    "model_type": "resnet",
    "embedding_size": 8,
    "hidden_sizes": [8, 16],
    "depths": [1, 1],
    "layer_type": "basic",
    "downsample_in_first_stage": False,
    "image_size": 32,
    "patch_size": 8,
    "hidden_size": 16,
}


def resnet_config(**tower: Any) -> LongVideoConfig:
    data = get_config("tiny-longva").to_dict()
    data["vision_tower"]["config"] = {**TINY_RESNET, **tower}
    data["vision_tower"]["select_layer"] = -1
    data["image_processing"].update(
        image_aspect_ratio="square", shortest_edge=32, crop_size=32, image_grid_pinpoints=None
    )
    return LongVideoConfig.from_dict(data)


def test_feature_maps_become_row_major_tokens() -> None:
    maps = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).view(2, 3, 2, 2)
    tokens = feature_tokens(maps, drop_cls=True)
    assert tokens.shape == (2, 4, 3)
    # token 1 is row 0, column 1 of every channel
    assert torch.equal(tokens[0, 1], maps[0, :, 0, 1])
    sequence = torch.randn(2, 5, 3)
    assert torch.equal(feature_tokens(sequence, drop_cls=True), sequence[:, 1:])
    assert torch.equal(feature_tokens(sequence, drop_cls=False), sequence)


def test_resnet_tower_gives_the_declared_token_grid() -> None:
    torch.manual_seed(0)
    config = resnet_config()
    assert config.patches_per_side == 4
    model = LongVideoLM(config)
    features = model.encode_images(torch.randn(3, 3, 32, 32), chunk_size=2)
    assert features.shape == (3, model.tokens_per_image, 16) == (3, 16, 16)


def test_a_frozen_tower_stays_in_eval_mode() -> None:
    model = LongVideoLM(resnet_config())
    model.train()
    assert model.vision_tower.training  # trainable: follows train()
    model.vision_tower.requires_grad_(False)
    model.train()
    assert not model.vision_tower.training
    assert model.projector.training
    before = model.vision_tower.embedder.embedder.normalization.running_mean.clone()
    model.encode_images(torch.randn(2, 3, 32, 32) * 5 + 3)
    after = model.vision_tower.embedder.embedder.normalization.running_mean
    assert torch.equal(before, after)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"patch_size": 16}, "output stride is 8"),
        ({"hidden_size": 8}, "must equal the last of hidden_sizes"),
        ({"image_size": 36}, "multiple of patch_size"),
        ({"image_size": None}, "'vision_tower.config.image_size'"),
    ],
)
def test_resnet_tower_config_must_state_its_grid(change: dict[str, Any], message: str) -> None:
    tower = {**TINY_RESNET, **change}
    tower = {k: v for k, v in tower.items() if v is not None}
    data = get_config("tiny-longva").to_dict()
    data["vision_tower"].update(config=tower, select_layer=-1)
    with pytest.raises(ConfigError, match=message):
        LongVideoConfig.from_dict(data)


def test_resnet_tower_reads_only_its_last_stage() -> None:
    data = get_config("tiny-longva").to_dict()
    data["vision_tower"].update(config=dict(TINY_RESNET), select_layer=-2)
    with pytest.raises(ConfigError, match="last stage"):
        LongVideoConfig.from_dict(data)


def test_the_mini_tower_is_a_valid_resnet_tower() -> None:
    config = resnet_config(**{k: v for k, v in MINI_TOWER.items()})
    assert config.patches_per_side == 8


def test_a_tower_tuned_with_frozen_norms_keeps_its_statistics() -> None:
    """`unfreeze_tower`: the convolutions train, BatchNorm's weights and running statistics
    stay as the tower's own training left them."""
    from longvid.train.mini import unfreeze_tower

    model = LongVideoLM(resnet_config())
    model.vision_tower.requires_grad_(False)
    unfreeze_tower(model)
    norm = model.vision_tower.embedder.embedder.normalization
    conv = model.vision_tower.embedder.embedder.convolution
    assert conv.weight.requires_grad and not norm.weight.requires_grad
    model.train()
    assert not model.vision_tower.training
    before = norm.running_mean.clone()
    model.encode_images(torch.randn(2, 3, 32, 32) * 5 + 3).sum().backward()
    assert conv.weight.grad is not None and norm.weight.grad is None
    assert torch.equal(before, norm.running_mean)
