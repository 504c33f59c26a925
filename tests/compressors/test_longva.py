"""Tests of longvid.compressors.longva (2-D pooling, UniRes merge) and of the sequence assembly in
longvid.prompting.longva_sequence, against every case of the LongVA parity files
``longva_video_2dpool`` (README §3) and ``longva_unires_merge`` (README §2), exact in float32,
plus properties of the pooling under hypothesis.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from longvid.compressors.longva import (
    LongVAPoolConfig,
    merge_visual_item,
    pool_2d,
    pool_video_tokens,
    unires_merge,
)
from longvid.encoders.anyres import LONGVA_PINPOINTS, anyres_grid_shape
from longvid.errors import ConfigError
from longvid.prompting.longva_sequence import (
    IGNORE_INDEX,
    IMAGE_TOKEN_INDEX,
    assemble_multimodal_sequence,
)

PARITY = Path(__file__).resolve().parents[2].parent / "shared" / "parity" / "longva"


def _load(name: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    path = PARITY / f"{name}.safetensors"
    if not path.is_file():
        pytest.skip(f"LongVA parity file {path} not found (expected beside the checkout)")
    return load_file(path)


def _report(name: str, got: torch.Tensor, want: torch.Tensor) -> float:
    assert got.shape == want.shape, f"{name}: {tuple(got.shape)} != {tuple(want.shape)}"
    diff = (got.float() - want.float()).abs().max().item() if got.numel() else 0.0
    print(f"\nPARITY {name}: max abs diff {diff}")
    return diff


@pytest.fixture(scope="module")
def pool_case() -> dict[str, torch.Tensor]:
    return _load("longva_video_2dpool")


@pytest.fixture(scope="module")
def merge_case() -> dict[str, torch.Tensor]:
    return _load("longva_unires_merge")


# --- parity: longva_video_2dpool ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "source", "side", "stride", "mode"),
    [
        ("avg_s2", "x", 24, 2, "average"),
        ("avg_s3", "x", 24, 3, "average"),
        ("max_s2", "x", 24, 2, "max"),
        ("side5_avg_s2", "x_side5", 5, 2, "average"),
    ],
)
def test_2dpool_every_case(pool_case, key, source, side, stride, mode):
    got = pool_video_tokens(pool_case[source], side, LongVAPoolConfig(stride=stride, mode=mode))
    _report(f"longva_video_2dpool {key}", got, pool_case[key])
    assert torch.equal(got, pool_case[key])


def test_144_tokens_per_frame_at_336(pool_case):
    assert pool_video_tokens(pool_case["x"], 24).shape == (4, 144, 16)


# --- parity: longva_unires_merge ----------------------------------------------------------------


def _projector(case: dict[str, torch.Tensor]) -> nn.Sequential:
    """The reference's ``mlp2x_gelu``: Linear -> GELU(erf) -> Linear, weights from the file."""
    out_dim, in_dim = case["proj.0.weight"].shape
    proj = nn.Sequential(nn.Linear(in_dim, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim))
    proj.load_state_dict({k[len("proj.") :]: v for k, v in case.items() if k.startswith("proj.")})
    return proj


def _visual_items(case: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    modalities = ["image", "image", "video"]
    with torch.no_grad():
        projected = _projector(case)(case["vision_feats"])  # project first, all crops at once
    items = torch.split(projected, case["crop_counts"].tolist())
    out = []
    for i, (features, modality) in enumerate(zip(items, modalities, strict=True)):
        grid = None
        if modality == "image":
            grid = anyres_grid_shape(
                tuple(case["image_sizes_wh"][i].tolist()), LONGVA_PINPOINTS, 336
            )
        out.append(merge_visual_item(features, modality, patches_per_side=24, grid=grid))
    return out


def test_unires_grids_from_image_sizes(merge_case):
    grids = [
        anyres_grid_shape(tuple(size), LONGVA_PINPOINTS, 336)
        for size in merge_case["image_sizes_wh"][:2].tolist()
    ]
    assert grids == [tuple(g) for g in merge_case["grid_wh"].tolist()] == [(2, 2), (3, 1)]


def test_unires_visual_tokens_every_item(merge_case):
    items = _visual_items(merge_case)
    for k, item in enumerate(items):
        _report(f"longva_unires_merge visual_tokens_{k}", item, merge_case[f"visual_tokens_{k}"])
    for k, item in enumerate(items):
        assert torch.equal(item, merge_case[f"visual_tokens_{k}"]), k


def test_unires_without_the_base_crop_is_identical(merge_case):
    with torch.no_grad():
        projected = _projector(merge_case)(merge_case["vision_feats"])
    image0 = projected[:5]
    assert torch.equal(unires_merge(image0[1:], (2, 2), 24), unires_merge(image0, (2, 2), 24))
    assert torch.equal(unires_merge(image0, (2, 2), 24), merge_case["visual_tokens_0"])


def test_sequence_assembly(merge_case):
    embed = nn.Embedding.from_pretrained(merge_case["embed_tokens.weight"])
    seq = assemble_multimodal_sequence(
        merge_case["input_ids"],
        _visual_items(merge_case),
        embed,
        attention_mask=merge_case["attention_mask"],
    )
    _report(
        "longva_unires_merge out_inputs_embeds", seq.inputs_embeds, merge_case["out_inputs_embeds"]
    )
    mask_off = (seq.attention_mask != merge_case["out_attention_mask"]).sum().item()
    print(f"\nPARITY longva_unires_merge out_attention_mask: {mask_off} positions differ")
    assert torch.equal(seq.inputs_embeds, merge_case["out_inputs_embeds"])
    assert torch.equal(seq.attention_mask, merge_case["out_attention_mask"])
    assert seq.attention_mask.sum(1).tolist() == [581, 435, 294]
    assert seq.labels is None
    assert seq.position_ids[1, :435].tolist() == list(range(435))


# --- sequence assembly behaviour ----------------------------------------------------------------


def _toy_embed() -> nn.Embedding:
    return nn.Embedding.from_pretrained(torch.arange(40, dtype=torch.float32).reshape(10, 4))


def test_assembly_left_padding_labels_and_truncation():
    ids = torch.tensor([[1, IMAGE_TOKEN_INDEX, 2], [3, 4, 0]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    visual = [torch.full((3, 4), -1.0)]
    seq = assemble_multimodal_sequence(
        ids, visual, _toy_embed(), attention_mask=mask, labels=ids.clone(), padding_side="left"
    )
    assert seq.inputs_embeds.shape == (2, 5, 4)
    assert seq.attention_mask.tolist() == [[True] * 5, [False, False, False, True, True]]
    assert seq.position_ids[1].tolist() == [0, 0, 0, 0, 1]
    assert seq.labels.tolist() == [
        [1, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, 2],
        [IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, 3, 4],
    ]
    assert torch.equal(seq.inputs_embeds[1, :3], torch.zeros(3, 4))
    short = assemble_multimodal_sequence(
        ids, visual, _toy_embed(), attention_mask=mask, max_length=3
    )
    assert short.inputs_embeds.shape == (2, 3, 4)
    assert torch.equal(short.inputs_embeds[0, 1:], visual[0][:2])


def test_assembly_placeholder_modes():
    ids = torch.tensor([[1, 2, 3], [4, IMAGE_TOKEN_INDEX, 5]])
    a, b = torch.full((2, 4), -1.0), torch.full((2, 4), -2.0)
    strict = assemble_multimodal_sequence(ids, [a], _toy_embed())
    assert torch.equal(strict.inputs_embeds[1, 1:3], a)
    with pytest.raises(ValueError, match="placeholders"):
        assemble_multimodal_sequence(ids, [a, b], _toy_embed())
    # README §10.6: the text-only row 0 consumes item 0, so row 1's placeholder takes item 1.
    ref = assemble_multimodal_sequence(ids, [a, b], _toy_embed(), placeholders="longva-reference")
    assert torch.equal(ref.inputs_embeds[1, 1:3], b)
    assert ref.attention_mask[0].tolist() == [True, True, True, False]


# --- behaviour and properties of the pooling ----------------------------------------------------


def test_config_validation():
    with pytest.raises(ConfigError):
        LongVAPoolConfig(mode="median")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        LongVAPoolConfig(stride=0)


def test_shape_errors():
    with pytest.raises(ValueError):
        pool_video_tokens(torch.zeros(2, 575, 4), 24)
    with pytest.raises(ValueError, match="needs 5 crops"):
        unires_merge(torch.zeros(3, 16, 4), (2, 2), 4)
    with pytest.raises(ValueError):
        merge_visual_item(torch.zeros(3, 16, 4), "image", patches_per_side=4)
    single = torch.randn(1, 16, 4)
    assert torch.equal(merge_visual_item(single, "image", patches_per_side=4), single[0])


@settings(max_examples=60, deadline=None)
@given(
    frames=st.integers(1, 3),
    side=st.integers(1, 13),
    stride=st.integers(1, 4),
    dim=st.integers(1, 5),
    mode=st.sampled_from(["average", "max"]),
)
def test_pool_shape(frames, side, stride, dim, mode):
    if side < stride:
        with pytest.raises(ValueError):
            pool_video_tokens(
                torch.zeros(frames, side * side, dim), side, LongVAPoolConfig(stride, mode)
            )
        return
    out = pool_video_tokens(
        torch.randn(frames, side * side, dim), side, LongVAPoolConfig(stride, mode)
    )
    assert out.shape == (frames, (side // stride) ** 2, dim)


@settings(max_examples=60, deadline=None)
@given(
    value=st.floats(-1e3, 1e3, allow_nan=False, width=32),
    side=st.integers(2, 12),
    stride=st.integers(1, 2),
)
def test_average_of_a_constant_is_the_constant(value, side, stride):
    x = torch.full((2, side * side, 3), value, dtype=torch.float32)
    out = pool_video_tokens(x, side, LongVAPoolConfig(stride, "average"))
    torch.testing.assert_close(out, torch.full_like(out, value), rtol=1e-6, atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(side=st.integers(2, 10), seed=st.integers(0, 2**16))
def test_max_bounds_average_and_windows_are_row_major(side, seed):
    x = torch.randn(1, side, side, 2, generator=torch.Generator().manual_seed(seed))
    avg, mx = pool_2d(x, 2, "average"), pool_2d(x, 2, "max")
    assert (mx >= avg - 1e-6).all()
    # Token (i, j) of the output pools input rows 2i..2i+1 and columns 2j..2j+1.
    torch.testing.assert_close(avg[0, 0, 0], x[0, :2, :2].mean((0, 1)))
