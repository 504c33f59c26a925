"""MiniGPT4-Video prompting: parity vectors (README §1c-1e, §3) and the pipeline Prompt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from longvid.compressors.minigpt4video import MiniGPT4VideoCompressor
from longvid.compressors.registry import ModelDims
from longvid.prompting.minigpt4video import (
    CONTEXT_WINDOWS,
    GENERATION_PRESETS,
    build_interleaved_prompt,
    describe_layout,
    goldfish_clean_text,
    interleave_inference,
    prompt_layout,
    prompt_text,
    prompt_wrap_train,
    split_segments,
)
from longvid.prompting.prompt import assemble
from longvid.prompting.tokenizer import byte_level_tokenizer

PARITY = Path(__file__).resolve().parents[2].parent / "shared" / "parity" / "minigpt4video"


class FakeTokenizer:
    """The parity files' stand-in: id = utf8 byte + 3, BOS 1 only with special tokens."""

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        ids = [b + 3 for b in text.encode("utf-8")]
        return {"input_ids": ([1] if add_special_tokens else []) + ids}


@pytest.fixture(scope="module")
def vectors() -> dict[str, torch.Tensor]:
    path = PARITY / "token_merge_and_interleave.safetensors"
    if not path.is_file():
        pytest.skip(f"parity vectors not found at {path}")
    return load_file(str(path))


@pytest.fixture(scope="module")
def meta() -> dict:
    return json.loads((PARITY / "token_merge_and_interleave.meta.json").read_text())


@pytest.fixture(scope="module")
def assembly() -> dict:
    path = PARITY / "prompt_assembly.json"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def frames(vectors) -> torch.Tensor:
    """``gen.images_vit_tokens`` through the ``gen.*`` LN and projection: (2, 3, 64, 4)."""
    comp = MiniGPT4VideoCompressor(ModelDims(8, 4, 16))
    with torch.no_grad():
        comp.ln_vision.weight.copy_(vectors["gen.ln_weight"])
        comp.ln_vision.bias.copy_(vectors["gen.ln_bias"])
        comp.llama_proj.weight.copy_(vectors["gen.proj_weight"])
        comp.llama_proj.bias.copy_(vectors["gen.proj_bias"])
        out, _ = comp.encode_img(vectors["gen.images_vit_tokens"])
    return out.reshape(2, 3, 64, 4)


@pytest.fixture(scope="module")
def embed(vectors) -> torch.nn.Embedding:
    return torch.nn.Embedding.from_pretrained(vectors["gen.embed_table"])


def test_inference_assembly_left_pads(vectors, meta, frames, embed):
    texts, lengths = meta["gen"]["texts"], meta["gen"]["lengths"]
    per_sample = [frames[b, :n] for b, n in enumerate(lengths)]
    with torch.no_grad():
        embeds, mask = interleave_inference(
            texts, per_sample, FakeTokenizer(), embed, CONTEXT_WINDOWS["llama2"]
        )
    torch.testing.assert_close(embeds, vectors["gen.inputs_embeds"], atol=1e-6, rtol=0)
    assert mask.dtype == torch.int32
    assert torch.equal(mask, vectors["gen.attention_mask"])
    assert int(mask[1].argmax()) > 0  # sample 1 is shorter: its padding is on the left


def test_inference_keeps_the_last_3700_positions(vectors, meta, frames, embed):
    text = meta["trunc"]["text"]
    with torch.no_grad():
        full, _ = interleave_inference([text], [frames[0, :1]], FakeTokenizer(), embed, None)
        embeds, mask = interleave_inference([text], [frames[0, :1]], FakeTokenizer(), embed, 3700)
    assert full.shape[1] == meta["trunc"]["untruncated_length"] == 3789
    torch.testing.assert_close(embeds, vectors["trunc.inputs_embeds"], atol=1e-6, rtol=0)
    assert torch.equal(mask, vectors["trunc.attention_mask"])


def test_training_prompt_wrap_right_pads_and_keeps_the_start(vectors, meta, frames, embed):
    train = meta["train"]
    per_sample = [frames[b, :n] for b, n in enumerate(train["lengths"])]
    with torch.no_grad():
        embeds, atts = prompt_wrap_train(
            train["instructions"],
            per_sample,
            FakeTokenizer(),
            embed,
            train["max_context_len"],
            train["pad_token_id"],
        )
    torch.testing.assert_close(embeds, vectors["train.wrapped_embeds"], atol=1e-6, rtol=0)
    assert torch.equal(atts, vectors["train.wrapped_atts"])
    assert atts.sum(dim=1).tolist() == [200, 164]


def test_generation_preset_is_the_reference_default(meta):
    kwargs = meta["gen"]["generate_kwargs"]
    preset = GENERATION_PRESETS["minigpt4video"]
    assert preset.do_sample is kwargs["do_sample"] is False
    assert preset.num_beams == kwargs["num_beams"] == 1
    assert preset.repetition_penalty == kwargs["repetition_penalty"] == 1.5
    assert preset.temperature == kwargs["temperature"] == 1
    assert preset.kwargs() == {"do_sample": False, "num_beams": 1, "repetition_penalty": 1.5}


@pytest.mark.parametrize("mode", ["inference", "eval", "train"])
def test_prompt_strings_segments_and_layout(assembly, mode):
    for case in assembly["conversation_cases"]:
        expected = case[f"{mode}_prompt"]
        text = prompt_text(case["user_text"], mode)
        assert text == expected["text"], case["name"]
        assert split_segments(text) == expected["segments"], case["name"]
        assert prompt_layout(text) == expected["layout"], case["name"]
        assert len(split_segments(text)) - 1 == case["n_images"]


def test_interleaved_prompt_renders_as_the_reference(assembly):
    """The pipeline's Prompt, rendered, is the reference's inference string."""
    case = assembly["conversation_cases"][0]  # two frames, caption after the first
    question = case["user_text"].split("\n", 1)[1]
    prompt = build_interleaved_prompt(
        "minigpt4video", question, [0.0, 2.0], 64, ["Hello there. ", None]
    )
    assert prompt.render() == case["inference_prompt"]["text"]
    assert prompt.text_pieces() == case["inference_prompt"]["segments"]
    layout = describe_layout(prompt)
    assert "[frame 0 @ 0.00 s: 64 tokens]" in layout
    assert "<Cap>Hello there. " in layout
    eval_prompt = build_interleaved_prompt(
        "minigpt4video_eval", question, [0.0, 2.0], 64, ["Hello there. ", None]
    )
    assert eval_prompt.render() == case["eval_prompt"]["text"]


def test_interleaved_prompt_assembles_and_drops_whole_frames():
    tokenizer = byte_level_tokenizer()
    embed = torch.nn.Embedding(300, 4)
    prompt = build_interleaved_prompt(
        "minigpt4video", "Why?", [0.0, 1.0, 2.0, 3.0], 8, ["a ", None, "b ", None]
    )
    with torch.no_grad():
        full = assemble(prompt, tokenizer, embed, torch.zeros(32, 4), 4096)
        text_rows = full.token_count - 32
        cut = assemble(
            prompt, tokenizer, embed, torch.zeros(32, 4), text_rows + 16, fit="drop_frames"
        )
    assert full.visual_token_count == 32
    assert len(cut.frames) < 4 and cut.dropped_frames
    # Captions stay when their frame goes; "<Img>" goes with its frame.
    rendered = cut.prompt.render()
    assert "<Cap>a " in rendered and "<Cap>b " in rendered
    assert rendered.count("<Img>") == len(cut.frames)


def test_text_only_prompts_are_accepted(embed):
    with torch.no_grad():
        embeds, mask = interleave_inference(["<s>[INST] Hi [/INST]"], None, FakeTokenizer(), embed)
    assert embeds.shape == (1, 1 + len("<s>[INST] Hi [/INST]"), 4)
    assert mask.all()


def test_placeholder_count_must_match_frames(embed, frames):
    with pytest.raises(ValueError, match="2 <ImageHere> but 1 frames"):
        interleave_inference(
            ["<Img><ImageHere><Img><ImageHere>"], [frames[0, :1]], FakeTokenizer(), embed
        )


def test_goldfish_clean_text(assembly):
    case = assembly["goldfish"][0]
    assert goldfish_clean_text(case["raw_context"]) == case["clean_text"]
    assert goldfish_clean_text("a_b  café ٣\n x") == "ab caf x"
