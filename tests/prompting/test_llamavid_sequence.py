"""LLaMA-VID sequence assembly against the reference vectors (README §2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from longvid.prompting.llamavid_sequence import (
    BatchedInferenceError,
    prepare_multimodal_inputs,
    tokenizer_image_token,
)

PARITY = Path(__file__).resolve().parents[2].parent / "shared" / "parity" / "llamavid"


@pytest.fixture(scope="module")
def vectors() -> tuple[dict, dict, torch.Tensor]:
    tensors = load_file(PARITY / "sequence_assembly.safetensors")
    with safe_open(str(PARITY / "sequence_assembly.safetensors"), "pt") as handle:
        cases = json.loads(handle.metadata()["cases"])
    table = load_file(PARITY / "tiny_weights.safetensors")["model.embed_tokens.weight"]
    return tensors, cases, table


def _fake_tokenize(text: str) -> list[int]:
    """The parity files' LLM tokenizer: BOS 1, then utf-8 byte + 3."""
    return [1] + [b + 3 for b in text.encode("utf-8")]


def test_tokenizer_image_token_rebuilds_the_ids(vectors) -> None:
    t, cases, _ = vectors
    for name in ("short_video", "movie"):
        ids = tokenizer_image_token(cases[name]["prompt"], _fake_tokenize, bos_token_id=1)
        assert ids == t[f"{name}.input_ids"][0].tolist()
    assert tokenizer_image_token("a<image><image>b", _fake_tokenize, bos_token_id=1) == [
        1, ord("a") + 3, -200, -200, ord("b") + 3
    ]  # fmt: skip
    for row, text in zip(t["train.input_ids"], cases["train"]["prompts_text"], strict=True):
        ids = tokenizer_image_token(text, _fake_tokenize, bos_token_id=1)
        assert row[: len(ids)].tolist() == ids and (row[len(ids) :] == 0).all()


@pytest.mark.parametrize("name", ["short_video", "movie"])
def test_short_video_and_movie(vectors, name: str) -> None:
    t, _, table = vectors
    out = prepare_multimodal_inputs(
        t[f"{name}.input_ids"],
        [t[f"{name}.visual_tokens"]],
        lambda ids: table[ids],
        attention_mask=t.get(f"{name}.attention_mask_in"),
        long_video=name == "movie",
    )
    torch.testing.assert_close(out.inputs_embeds, t[f"{name}.inputs_embeds"], atol=1e-5, rtol=1e-4)
    assert torch.equal(out.attention_mask.long(), t[f"{name}.attention_mask"])
    assert out.labels is None


def test_training_batch_with_labels_and_padding(vectors) -> None:
    t, _, table = vectors
    visual = [t[f"train.visual_tokens.sample{s}"] for s in range(3)]
    out = prepare_multimodal_inputs(
        t["train.input_ids"],
        visual,
        lambda ids: table[ids],
        attention_mask=t["train.attention_mask_in"],
        labels=t["train.labels_in"],
    )
    torch.testing.assert_close(out.inputs_embeds, t["train.inputs_embeds"], atol=1e-5, rtol=1e-4)
    assert torch.equal(out.attention_mask.long(), t["train.attention_mask"])
    assert torch.equal(out.labels, t["train.labels"])


def test_batched_inference_with_unequal_lengths(vectors) -> None:
    t, cases, table = vectors
    assert cases["batched_inference_unequal_no_labels"]["raises"] == "UnboundLocalError"
    visual = [t[f"train.visual_tokens.sample{s}"] for s in range(3)]
    args = (t["train.input_ids"], visual, lambda ids: table[ids])
    with pytest.raises(BatchedInferenceError, match="UnboundLocalError"):
        prepare_multimodal_inputs(
            *args,
            attention_mask=t["train.attention_mask_in"],
            unequal_without_labels="llamavid-raise",
        )
    out = prepare_multimodal_inputs(*args, attention_mask=t["train.attention_mask_in"])
    torch.testing.assert_close(out.inputs_embeds, t["train.inputs_embeds"], atol=1e-5, rtol=1e-4)
    assert torch.equal(out.attention_mask.long(), t["train.attention_mask"])
    assert out.labels is None


def test_movie_placeholder_count_must_match(vectors) -> None:
    t, _, table = vectors
    with pytest.raises(ValueError, match="placeholders"):
        prepare_multimodal_inputs(
            t["movie.input_ids"],
            [t["movie.visual_tokens"][:, :10]],
            lambda ids: table[ids],
            long_video=True,
        )
