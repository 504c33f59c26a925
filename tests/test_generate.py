"""The whole pipeline: `longvid.generate` and `longvid ask` with the tiny random LongVA."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from longvid.cli import app
from longvid.errors import ConfigError, ContextOverflowError
from longvid.generate import generate, load_model
from longvid.io.video import uniform


@pytest.fixture(scope="module")
def tiny():
    return load_model("tiny-longva")


@pytest.fixture(scope="module")
def video(assets: Path) -> Path:
    return assets / "video" / "cockatoo.mp4"


def test_answer_carries_frames_times_and_token_counts(tiny, video: Path) -> None:
    answer = generate(tiny, video, "What is on screen?", uniform(6), max_new_tokens=5)
    assert len(answer.frames) == 6 and len(answer.timestamps) == 6
    assert answer.timestamps == sorted(answer.timestamps)
    assert answer.visual_tokens == 6 * 4  # 56 px / patch 14 = 4x4 patches, pooled 2x2
    assert 0 < answer.new_tokens <= 5
    assert answer.prompt_tokens > answer.visual_tokens
    assert answer.trained is False
    assert set(answer.timings) == {"decode", "encode", "compress", "prompt", "generate"}


def test_streamed_pieces_add_up_to_the_answer(tiny, video: Path) -> None:
    pieces: list[str] = []
    answer = generate(
        tiny, video, "Describe it.", uniform(3), max_new_tokens=8, on_text=pieces.append
    )
    assert "".join(pieces) == answer.text


def test_compressor_override_changes_the_visual_token_count(tiny, video: Path) -> None:
    answer = generate(tiny, video, "?", uniform(3), max_new_tokens=1, compressor="none")
    assert answer.visual_tokens == 3 * 16


def test_timestamps_option_lengthens_the_prompt(tiny, video: Path) -> None:
    plain = generate(tiny, video, "?", uniform(4), max_new_tokens=1)
    marked = generate(tiny, video, "?", uniform(4), max_new_tokens=1, timestamps=True)
    assert marked.prompt_tokens > plain.prompt_tokens
    assert marked.visual_tokens == plain.visual_tokens


def test_prompt_over_the_context_is_refused_or_fitted(video: Path) -> None:
    model = load_model("tiny-longva")
    model.config.language_model["max_position_embeddings"] = 150
    with pytest.raises(ContextOverflowError) as info:
        generate(model, video, "?", uniform(32), max_new_tokens=16)
    assert info.value.context == 150 and info.value.needed > 150
    assert "cockatoo.mp4" in str(info.value)
    fitted = generate(model, video, "?", uniform(32), max_new_tokens=16, fit="drop_frames")
    assert 0 < len(fitted.frames) < 32 and fitted.dropped_frames
    assert fitted.prompt_tokens + 16 <= 150


def test_unknown_model_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="neither a checkpoint directory nor a registered"):
        load_model("no-such-model")


def test_saved_model_answers_the_same(tiny, video: Path, tmp_path: Path) -> None:
    tiny.save_pretrained(tmp_path / "ckpt")
    again = load_model(tmp_path / "ckpt")
    first = generate(tiny, video, "Same?", uniform(2), max_new_tokens=6)
    second = generate(again, video, "Same?", uniform(2), max_new_tokens=6)
    assert first.text == second.text and first.frames == second.frames


def test_cli_ask_json_and_untrained_notice(video: Path) -> None:
    runner = CliRunner()
    args = ["ask", str(video), "What bird is this?", "--model", "tiny-longva", "--frames", "5"]
    args += ["--max-new-tokens", "3"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert len(payload["frames"]) == 5 and payload["visual_tokens"] == 20
    assert payload["trained"] is False
    shown = runner.invoke(app, args)
    assert shown.exit_code == 0, shown.output
    assert "untrained" in shown.output and "20 visual" in shown.output


def test_choices_are_scored_as_whole_answers_and_the_likeliest_is_the_answer(
    tiny, video: Path
) -> None:
    import numpy as np
    import torch

    from longvid.generate import score_choices

    choices = ["a cockatoo", "a", "a dog on a beach"]
    pieces: list[str] = []
    answer = generate(tiny, video, "What?", uniform(3), choices=choices, on_text=pieces.append)
    assert answer.text == choices[int(np.argmax(answer.choice_scores))]
    assert pieces == [answer.text] and answer.new_tokens == 0
    assert len(answer.choice_scores) == 3 and all(s < 0 for s in answer.choice_scores)
    reordered = generate(tiny, video, "What?", uniform(3), choices=choices[::-1])
    np.testing.assert_allclose(reordered.choice_scores[::-1], answer.choice_scores, rtol=1e-5)
    # A choice scores as its tokens followed by the template's stop string.
    torch.manual_seed(0)
    prompt = torch.randn(1, 5, tiny.language_model.config.hidden_size)
    expected = [lp for lp, _ in tiny.continuation_logprobs(prompt, ["a<|im_end|>", "b<|im_end|>"])]
    assert score_choices(tiny, prompt, [" a ", "b"]) == pytest.approx(expected)
    with pytest.raises(ConfigError, match="at least one"):
        score_choices(tiny, prompt, [])


def test_cli_ask_with_choices_prints_each_score(video: Path) -> None:
    args = ["ask", str(video), "What bird is this?", "--model", "tiny-longva", "--frames", "3"]
    result = CliRunner().invoke(app, [*args, "--choice", "cockatoo", "--choice", "parrot"])
    assert result.exit_code == 0, result.output
    scores = [line for line in result.output.splitlines() if "log p =" in line]
    assert len(scores) == 2 and scores[0].endswith("cockatoo") and scores[1].endswith("parrot")
