"""LLaMA-VID token generation and the Q-Former against the reference vectors (README §1)."""

from __future__ import annotations

import dataclasses
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
