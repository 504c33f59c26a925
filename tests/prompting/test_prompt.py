"""Tests of longvid.prompting.prompt: segment layout, tokenization the reference's way, splicing
of the visual rows, timestamps, subtitles, and the context-window check and frame dropping.

The LLaMA-VID sequence-assembly parity vectors check the piece-wise tokenization (BOS kept on
the first piece only) and the splicing against the reference's own outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from longvid.errors import ContextOverflowError, LongvidError
from longvid.prompting.prompt import (
    IMAGE_TOKEN_INDEX,
    Prompt,
    Subtitle,
    Text,
    TimeMark,
    Visual,
    assemble,
    build_video_prompt,
    frames_that_fit,
    tokenize_with_placeholders,
    uniform_subsample,
)
from longvid.prompting.templates import render, render_parts
from longvid.prompting.tokenizer import byte_level_tokenizer

PARITY = Path(__file__).resolve().parents[2].parent / "shared" / "parity"
D = 6

TOK = byte_level_tokenizer()
EMBED = torch.nn.Embedding(len(TOK), D)
torch.nn.init.normal_(EMBED.weight, generator=torch.Generator().manual_seed(0))
QUESTION = "What is the man doing?"


def _ids(text: str) -> list[int]:
    return TOK(text)["input_ids"]


def _visual(n: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, D, generator=torch.Generator().manual_seed(seed))


# --- layout ---------------------------------------------------------------------------------------


def test_default_layout_is_one_placeholder_for_the_whole_video() -> None:
    times = [0.0, 0.5, 1.0]
    prompt = build_video_prompt("qwen_1_5", QUESTION, times, 4)
    assert prompt.render() == render("qwen_1_5", QUESTION)
    assert len(prompt.visuals) == 1 and prompt.n_visual_tokens == 12
    assert prompt.stop_strings == ("<|im_end|>",)

    visual = _visual(12)
    out = assemble(prompt, TOK, EMBED, visual, context_length=4096)
    before, after = render_parts("qwen_1_5", QUESTION)
    expected = _ids(before) + [IMAGE_TOKEN_INDEX] * 12 + _ids(after)
    assert out.input_ids.tolist() == [expected]
    assert out.token_count == len(expected) == out.text_token_count + 12
    assert out.visual_token_count == 12
    n_before = len(_ids(before))
    assert out.visual_positions.tolist() == list(range(n_before, n_before + 12))
    assert out.inputs_embeds.shape == (1, len(expected), D)
    assert out.attention_mask.tolist() == [[1] * len(expected)]
    assert out.visual_times.tolist() == [0.0] * 4 + [0.5] * 4 + [1.0] * 4
    assert out.frames == (0, 1, 2) and out.dropped_frames == () and out.note is None


def test_embeds_rows_are_text_embeddings_and_visual_rows() -> None:
    prompt = build_video_prompt("chatml", QUESTION, [0.0, 1.0], 3, timestamps=True)
    visual = _visual(6)
    out = assemble(prompt, TOK, EMBED, visual, context_length=4096)
    ids = out.input_ids[0]
    text_mask = ids != IMAGE_TOKEN_INDEX
    with torch.no_grad():
        assert torch.equal(out.inputs_embeds[0][text_mask], EMBED(ids[text_mask]))
    assert torch.equal(out.inputs_embeds[0][out.visual_positions], visual)
    assert torch.equal(~text_mask, torch.isin(torch.arange(len(ids)), out.visual_positions))


def test_timestamps_add_marks_in_order_before_each_frame() -> None:
    times = [0.0, 2.5, 12.5, 61.25]
    prompt = build_video_prompt("chatml", QUESTION, times, 2, timestamps=True)
    marks = [s for s in prompt.segments if isinstance(s, TimeMark)]
    assert [m.seconds for m in marks] == times
    assert [m.frame for m in marks] == [0, 1, 2, 3]
    # Each mark comes right before its own frame's visual segment.
    for i, segment in enumerate(prompt.segments):
        if isinstance(segment, TimeMark):
            nxt = prompt.segments[i + 1]
            assert isinstance(nxt, Visual)
            assert nxt.frame_index.tolist() == [segment.frame] * 2
            assert nxt.times.tolist() == [segment.seconds] * 2
    expected_video = (
        "frame at 0.0 s:<image>frame at 2.5 s:<image>frame at 12.5 s:<image>frame at 61.2 s:<image>"
    )
    assert prompt.render() == render("chatml", QUESTION, placeholder=expected_video)

    out = assemble(prompt, TOK, EMBED, _visual(8), context_length=4096)
    text = TOK.decode([i for i in out.input_ids[0].tolist() if i != IMAGE_TOKEN_INDEX])
    positions = [text.index(f"frame at {t} s:") for t in ("0.0", "2.5", "12.5", "61.2")]
    assert positions == sorted(positions)
    # Marks sit right before each frame's run of -200.
    ids = out.input_ids[0].tolist()
    for t in ("0.0", "2.5", "12.5", "61.2"):
        mark = _ids(f"frame at {t} s:")
        start = next(k for k in range(len(ids)) if ids[k : k + len(mark)] == mark)
        assert ids[start + len(mark) : start + len(mark) + 2] == [IMAGE_TOKEN_INDEX] * 2


def test_custom_time_format() -> None:
    prompt = build_video_prompt(
        "chatml", "Q", [3.0], 1, timestamps=True, time_format="<t={seconds:g}>"
    )
    assert "<t=3><image>" in prompt.render()


def test_subtitles_follow_the_last_frame_at_or_before_their_time() -> None:
    subs = [Subtitle("late", 9.0), Subtitle("early", -1.0), Subtitle("mid", 1.0)]
    prompt = build_video_prompt("chatml", "Q", [0.0, 1.0, 2.0], 1, subtitles=subs)
    video = "subtitle: early\n<image><image>subtitle: mid\n<image>subtitle: late\n"
    assert prompt.render() == render("chatml", "Q", placeholder=video)


def test_subtitles_accept_io_cues() -> None:
    from longvid.io.subtitles import Cue

    prompt = build_video_prompt(
        "vicuna_v1", "Q", [0.0, 2.0], 1, subtitles=[Cue(1.0, 3.0, "Hi\nyou")]
    )
    assert prompt.render() == render("vicuna_v1", "Q", placeholder="<image>Hi you<image>")


def test_minigpt4video_layout_matches_reference_segments() -> None:
    """Per-frame ``<Img>`` slots and ``<Cap>`` subtitles give the reference's text segments."""
    path = PARITY / "minigpt4video" / "prompt_assembly.json"
    if not path.is_file():
        pytest.skip(f"parity file {path} not found")
    cases = {c["name"]: c for c in json.loads(path.read_text("utf-8"))["conversation_cases"]}
    three = cases["three_frames_no_caps"]
    prompt = build_video_prompt("minigpt4video", "Describe the video.", [0.0, 1.0, 2.0], 64)
    assert prompt.text_pieces() == three["inference_prompt"]["segments"]
    assert prompt.render() == three["inference_prompt"]["text"]
    assert [v.n_tokens for v in prompt.visuals] == [64, 64, 64]

    two = cases["two_frames_with_caps"]
    for kind, name in (
        ("inference_prompt", "minigpt4video"),
        ("train_prompt", "minigpt4video_train"),
    ):
        prompt = build_video_prompt(
            name, "What happens?", [0.0, 1.0], 64, subtitles=[Subtitle("Hello there.", 0.5)]
        )
        assert prompt.text_pieces() == two[kind]["segments"]
        assert prompt.render() == two[kind]["text"]


# --- LLaMA-VID parity: tokenizer_image_token and the splice -------------------------------------


class FakeByteBosTokenizer:
    """The parity files' fake tokenizer: id = utf-8 byte + 3, BOS 1 on every tokenized chunk."""

    bos_token_id = 1

    def __call__(self, text: Any) -> dict[str, Any]:
        def enc(s: str) -> list[int]:
            return [1] + [b + 3 for b in s.encode("utf-8")]

        return {"input_ids": [enc(t) for t in text] if isinstance(text, list) else enc(text)}


def _llamavid() -> tuple[dict[str, torch.Tensor], dict[str, Any], torch.Tensor]:
    from safetensors import safe_open
    from safetensors.torch import load_file

    seq = PARITY / "llamavid" / "sequence_assembly.safetensors"
    weights = PARITY / "llamavid" / "tiny_weights.safetensors"
    if not (seq.is_file() and weights.is_file()):
        pytest.skip(f"LLaMA-VID parity files not found under {seq.parent}")
    with safe_open(str(seq), "pt") as f:
        cases = json.loads(f.metadata()["cases"])
    with safe_open(str(weights), "pt") as f:
        table = f.get_tensor("model.embed_tokens.weight")
    return load_file(str(seq)), cases, table


def test_llamavid_short_video_ids_and_embeds() -> None:
    tensors, cases, table = _llamavid()
    case = cases["short_video"]
    tok = FakeByteBosTokenizer()
    assert (
        tokenize_with_placeholders(case["prompt"], tok)
        == tensors["short_video.input_ids"][0].tolist()
    )

    visual = tensors["short_video.visual_tokens"][0]  # 3 frames x 2 tokens
    prompt = build_video_prompt("vicuna_v1", "What is the man doing in the video?", [0, 1, 2], 2)
    assert prompt.render() == case["prompt"]
    out = assemble(prompt, tok, lambda ids: table[ids], visual, context_length=2048)
    expected = tensors["short_video.inputs_embeds"]
    assert out.inputs_embeds.shape == expected.shape
    torch.testing.assert_close(out.inputs_embeds, expected, atol=1e-6, rtol=0)
    assert out.attention_mask.tolist() == tensors["short_video.attention_mask"].tolist()
    assert out.input_ids[0, 0].item() == 1  # the one BOS, at the start


def test_llamavid_movie_consecutive_placeholders() -> None:
    tensors, cases, table = _llamavid()
    text = cases["movie"]["prompt"]
    tok = FakeByteBosTokenizer()
    ids = tokenize_with_placeholders(text, tok)
    assert ids == tensors["movie.input_ids"][0].tolist()
    assert ids.count(IMAGE_TOKEN_INDEX) == 12

    prompt = Prompt.from_text(text, 1)
    out = assemble(prompt, tok, lambda x: table[x], tensors["movie.visual_tokens"][0], 2048)
    assert out.input_ids[0].tolist() == ids
    torch.testing.assert_close(out.inputs_embeds, tensors["movie.inputs_embeds"], atol=1e-6, rtol=0)


def test_qwen_style_tokenizer_strips_nothing() -> None:
    """No BOS (Qwen2): the pieces' ids are concatenated as they are."""
    ids = tokenize_with_placeholders("a<image>b<image><image>", TOK)
    assert ids == [97, IMAGE_TOKEN_INDEX, 98, IMAGE_TOKEN_INDEX, IMAGE_TOKEN_INDEX]


# --- context window -------------------------------------------------------------------------------


def test_overflow_error_states_needed_context_and_path() -> None:
    prompt = build_video_prompt("chatml", QUESTION, [0.0, 1.0, 2.0, 3.0], 50)
    full = assemble(prompt, TOK, EMBED, _visual(200), context_length=10_000)
    needed = full.token_count + 16
    with pytest.raises(ContextOverflowError) as info:
        assemble(prompt, TOK, EMBED, _visual(200), 150, path="clip.mp4", reserve_new_tokens=16)
    err = info.value
    assert isinstance(err, LongvidError)
    assert (err.needed, err.context, err.path) == (needed, 150, "clip.mp4")
    message = str(err)
    assert message.startswith("clip.mp4: ")
    assert f"needs {needed} tokens" in message and "context holds 150" in message
    assert "200 visual tokens from 4 frames" in message and "16 reserved" in message

    with pytest.raises(ContextOverflowError) as info:
        assemble(prompt, TOK, EMBED, _visual(200), 150)
    assert info.value.path is None and not str(info.value).startswith("None")


def test_fits_exactly_at_the_limit() -> None:
    prompt = build_video_prompt("chatml", QUESTION, [0.0, 1.0], 5)
    n = assemble(prompt, TOK, EMBED, _visual(10), 10_000).token_count
    assert assemble(prompt, TOK, EMBED, _visual(10), n + 3, reserve_new_tokens=3).token_count == n
    with pytest.raises(ContextOverflowError):
        assemble(prompt, TOK, EMBED, _visual(10), n + 2, reserve_new_tokens=3)


def test_frames_that_fit_and_uniform_subsample() -> None:
    assert frames_that_fit(1000, 100, 144, reserve=20) == 6
    assert frames_that_fit(100, 100, 144) == 0
    assert frames_that_fit(50, 100, 10) == 0
    with pytest.raises(ValueError):
        frames_that_fit(100, 0, 0)
    assert uniform_subsample(10, 4) == [0, 3, 6, 9]
    assert uniform_subsample(5, 5) == [0, 1, 2, 3, 4]
    assert uniform_subsample(7, 1) == [0]


def test_drop_frames_keeps_exactly_frames_that_fit() -> None:
    n_frames, tpf, reserve = 10, 6, 5
    times = [0.5 * i for i in range(n_frames)]
    prompt = build_video_prompt("chatml", QUESTION, times, tpf)
    visual = _visual(n_frames * tpf)
    text_tokens = assemble(prompt, TOK, EMBED, visual, 10_000).text_token_count
    context = text_tokens + 4 * tpf + 3 + reserve
    k = frames_that_fit(context, text_tokens, tpf, reserve)
    assert k == 4
    with pytest.raises(ContextOverflowError):
        assemble(prompt, TOK, EMBED, visual, context, reserve_new_tokens=reserve)

    out = assemble(
        prompt, TOK, EMBED, visual, context, reserve_new_tokens=reserve, fit="drop_frames"
    )
    assert len(out.frames) == k
    assert out.frames == tuple(uniform_subsample(n_frames, k)) == (0, 3, 6, 9)
    assert out.dropped_frames == (1, 2, 4, 5, 7, 8)
    assert out.token_count + reserve <= context
    assert out.visual_token_count == k * tpf
    assert out.text_token_count == text_tokens
    assert out.note is not None and "dropped 6 of 10 frames" in out.note
    kept_rows = torch.cat([torch.arange(f * tpf, (f + 1) * tpf) for f in out.frames])
    assert torch.equal(out.inputs_embeds[0][out.visual_positions], visual[kept_rows])
    assert out.visual_times.tolist() == [t for f in out.frames for t in [times[f]] * tpf]


def test_drop_frames_with_timestamps_drops_their_marks() -> None:
    times = [float(i) for i in range(12)]
    prompt = build_video_prompt("chatml", QUESTION, times, 4, timestamps=True)
    visual = _visual(48)
    full = assemble(prompt, TOK, EMBED, visual, 10_000)
    context = full.token_count - 60
    out = assemble(prompt, TOK, EMBED, visual, context, fit="drop_frames")
    assert out.token_count <= context
    assert 0 < len(out.frames) < 12
    assert out.frames == tuple(uniform_subsample(12, len(out.frames)))
    marks = [s.frame for s in out.prompt.segments if isinstance(s, TimeMark)]
    assert marks == list(out.frames)
    # One frame more, spread the same way, would not fit: the most frames that fit are kept.
    more, _ = prompt.keep_frames(uniform_subsample(12, len(out.frames) + 1))
    assert assemble(more, TOK, EMBED, _visual(more.n_visual_tokens), 10_000).token_count > context


def test_drop_frames_raises_when_not_even_one_frame_fits() -> None:
    prompt = build_video_prompt("chatml", QUESTION, [0.0, 1.0, 2.0], 100)
    with pytest.raises(ContextOverflowError, match="even cut to 1 frame") as info:
        assemble(prompt, TOK, EMBED, _visual(300), 120, path="v.mkv", fit="drop_frames")
    assert info.value.path == "v.mkv" and info.value.context == 120


def test_bad_arguments() -> None:
    prompt = build_video_prompt("chatml", QUESTION, [0.0, 1.0], 2)
    with pytest.raises(ValueError, match="expected \\(4, D\\)"):
        assemble(prompt, TOK, EMBED, _visual(5), 1000)
    with pytest.raises(ValueError, match="fit"):
        assemble(prompt, TOK, EMBED, _visual(4), 1000, fit="truncate")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-decreasing"):
        build_video_prompt("chatml", QUESTION, [1.0, 0.0], 2)
    with pytest.raises(ValueError, match="3 token counts for 2 frames"):
        build_video_prompt("chatml", QUESTION, [0.0, 1.0], [1, 2, 3])
    with pytest.raises(ValueError, match="shape"):
        Visual(3, times=torch.zeros(2))


def test_variable_tokens_per_frame_and_text_only() -> None:
    prompt = build_video_prompt("chatml", QUESTION, [0.0, 1.0, 2.0], [1, 3, 2], timestamps=True)
    assert [v.n_tokens for v in prompt.visuals] == [1, 3, 2]
    out = assemble(prompt, TOK, EMBED, _visual(6), 1000)
    assert out.visual_token_count == 6
    text_only = Prompt((Text("hello"),))
    out = assemble(text_only, TOK, EMBED, None, 100)
    assert out.input_ids.tolist() == [_ids("hello")] and out.visual_times is None


# --- property: assembled length = text tokens + visual tokens -----------------------------------

_TEXT = st.text(
    alphabet=st.characters(blacklist_characters="<>", blacklist_categories=("Cs",)), max_size=12
)
_SEGMENT = st.one_of(
    st.builds(Text, _TEXT),
    st.builds(Text, st.sampled_from(["<|im_start|>", "<|im_end|>", "<|endoftext|>"])),
    st.builds(Visual, st.integers(0, 5)),
    st.builds(Subtitle, _TEXT, st.floats(0, 1e4)),
    st.builds(TimeMark, st.floats(0, 1e5)),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_SEGMENT, max_size=12))
def test_assembled_length_is_text_plus_visual_tokens(segments: list[Any]) -> None:
    prompt = Prompt(tuple(segments))
    n_visual = sum(s.n_tokens for s in segments if isinstance(s, Visual))
    n_text = sum(len(_ids(s.render())) for s in segments if not isinstance(s, Visual))
    visual = _visual(n_visual)
    out = assemble(prompt, TOK, EMBED, visual, context_length=1 << 20)
    assert out.token_count == out.inputs_embeds.shape[1] == n_text + n_visual
    assert out.text_token_count == n_text and out.visual_token_count == n_visual
    assert (out.input_ids == IMAGE_TOKEN_INDEX).sum().item() == n_visual
    assert torch.equal(out.inputs_embeds[0][out.visual_positions], visual)


def test_drop_frames_per_frame_template_drops_each_frames_own_text() -> None:
    """MiniGPT4-Video's ``<Img>`` before each frame goes with its frame; no orphan slots."""
    tok = FakeByteBosTokenizer()
    table = torch.randn(259, D, generator=torch.Generator().manual_seed(3))
    prompt = build_video_prompt("minigpt4video", "What happens?", [0.0, 1.0, 2.0, 3.0, 4.0], 8)
    full = assemble(prompt, tok, lambda x: table[x], _visual(40), 10_000)
    out = assemble(
        prompt, tok, lambda x: table[x], _visual(40), full.token_count - 20, fit="drop_frames"
    )
    assert out.frames == (0, 2, 4) and out.dropped_frames == (1, 3)
    assert out.prompt.render() == render("minigpt4video", "What happens?", "<Img><ImageHere>" * 3)
    assert out.token_count == full.token_count - 2 * (8 + len("<Img>"))
