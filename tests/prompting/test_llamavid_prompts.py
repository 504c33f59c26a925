"""LLaMA-VID prompts, subtitles and frame sampling against ``movie_and_prompts.json``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from longvid.errors import SamplingError
from longvid.prompting.llamavid_prompts import (
    align_subtitles,
    conversation_text,
    eval_prompt,
    frame_indices,
    llamavid_movie_prompt,
    movie_cli_prompt,
    movie_demo_prompt,
    movie_training_conversation,
    movienet_frame_times,
    parse_movienet_srt,
    training_qformer_prompts,
    whisper_subtitles,
)
from longvid.prompting.llamavid_sequence import tokenizer_image_token
from longvid.prompting.prompt import assemble
from longvid.prompting.tokenizer import byte_level_tokenizer

PARITY = Path(__file__).resolve().parents[2].parent / "shared" / "parity" / "llamavid"
DATA = json.loads((PARITY / "movie_and_prompts.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", DATA["frame_sampling"], ids=lambda c: str(c["input"]))
def test_frame_sampling_paths(case: dict) -> None:
    given = case["input"]
    for path, want in case["output"].items():
        if isinstance(want, dict):
            assert want["raises"] == "ValueError"
            with pytest.raises(SamplingError):
                frame_indices(given["n_frames"], given["avg_fps"], given["target_fps"], path)
            continue
        indices, times = frame_indices(
            given["n_frames"], given["avg_fps"], given["target_fps"], path
        )
        assert ([indices, times] if path == "extract_features_subtitles" else indices) == want


def test_exact_sampling_is_the_default() -> None:
    indices, times = frame_indices(100, 12.5, 1.0)
    assert indices == [0, 12, 25, 38, 50, 62, 75, 88]  # 1 fps, not every 12th frame
    assert times[2] == 2.0


@pytest.mark.parametrize("case", DATA["subtitle_alignment"]["cases"], ids=lambda c: c["name"])
def test_subtitle_alignment(case: dict) -> None:
    assert align_subtitles(case["frame_time"], case["subs"], rule="llamavid") == case["video_input"]


def test_subtitle_alignment_default_uses_start_times() -> None:
    subs = [(0.1, 0.5, "Too early."), (1.2, 2.5, "Second.")]
    assert align_subtitles([1.0, 2.0, 3.0], subs) == "<image>Too early. Second.<image><image>"
    subs = [(0.0, 5.0, "A"), (6.0, 9.0, "B"), (1.0, 1.5, "C")]
    assert align_subtitles([0, 2, 4], subs) == "<image>A C<image><image>B"


def test_srt_whisper_and_movienet() -> None:
    srt = DATA["srt_parsing"]
    got = parse_movienet_srt(srt["srt_text"], digit_lines="llamavid-drop")
    assert [vars(c) for c in got] == srt["output"]
    kept = parse_movienet_srt(srt["srt_text"])
    assert [c.text for c in kept] == ["Hello there.", "42", "Wait what?", "Last line"]
    whisper = DATA["whisper_subtitles"]
    assert [vars(c) for c in whisper_subtitles(whisper["segments"])] == whisper["output"]
    m = DATA["movienet_frame_time"]
    assert movienet_frame_times(m["shot_file"], m["runtime"]) == (
        m["frame_idx"], m["num_frames"], m["fps"], m["frame_time"]
    )  # fmt: skip


def test_prompt_strings() -> None:
    p = DATA["prompts"]
    case = p["short_video_eval_vicuna_v1"]
    assert eval_prompt(case["question"]) == (case["prompt"], case["qformer_prompts"])
    case = p["movie_cli_run_llamavid_movie"]
    got = movie_cli_prompt(case["pkl_inputs"], case["question"], case["video_token"])
    assert got == (case["prompt"], case["qformer_prompts"])
    case = p["movie_demo_model_worker"]
    faithful = movie_demo_prompt(
        case["prompt_in"], case["pkl_inputs"], placeholders="llamavid-demo"
    )
    assert faithful == case["prompt"]
    fixed = movie_demo_prompt(case["prompt_in"], case["pkl_inputs"])
    assert fixed.count("<image>") == 2 * case["pkl_inputs"].count("<image>")
    case = p["movie_training_pkl"]
    human = {"from": "human", "value": "<image>\nHow many people are there?"}
    expanded, conv, prompts = movie_training_conversation(
        case["pkl_inputs"], [human, {"from": "gpt", "value": "Two."}]
    )
    assert expanded == case["expanded_inputs"]
    assert [conv] == case["conversation_out"] and [prompts] == case["qformer_prompts"]
    case = p["imgsp_v1_training"]
    turns = case["sources"][0]
    humans = [turns[0]["value"], turns[2]["value"]]
    assert (
        training_qformer_prompts(humans, newlines="llamavid-delete")
        == case["guided_prompts(qformer_prompts)"]
    )
    assert training_qformer_prompts(humans)[1] == "Describe the scene. Answer briefly."
    # The random <image> placement of the stored example is data: turn 2 got "\n<image>".
    text = conversation_text(
        [
            (turns[0]["value"], turns[1]["value"]),
            (turns[2]["value"] + "\n<image>", turns[3]["value"]),
        ]
    )
    assert text == case["conversation_text"]
    ids = tokenizer_image_token(
        text, lambda t: [1] + [b + 3 for b in t.encode()], bos_token_id=1
    )  # the parity files' byte tokenizer (BOS 1, byte + 3)
    assert [i for i, v in enumerate(ids) if v == -200] == case["image_token_positions"]


def test_movie_prompt_segments_assemble_like_the_cli_string() -> None:
    case = DATA["prompts"]["movie_cli_run_llamavid_movie"]
    subs = DATA["subtitle_alignment"]["cases"][0]
    prompt = llamavid_movie_prompt(
        case["question"], subs["frame_time"], 2, subs["subs"], "llamavid"
    )
    tokenizer = byte_level_tokenizer()
    table = torch.randn(300, 4)
    visual = torch.randn(12, 4)
    out = assemble(prompt, tokenizer, lambda ids: table[ids], visual, 4096)
    text, _ = movie_cli_prompt(subs["video_input"], case["question"])
    pieces = text.split("<image>")
    ids = [tokenizer.encode(piece, add_special_tokens=False) for piece in pieces]
    assert out.token_count == sum(map(len, ids)) + 12
    assert out.visual_token_count == 12
