"""Tests of longvid.prompting.templates: every registered string equals its reference's, as the
parity READMEs and their JSON files state it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from longvid.errors import ConfigError, LongvidError
from longvid.prompting.templates import TEMPLATES, ChatTemplate, get_template, render, render_parts

PARITY = Path(__file__).resolve().parents[2].parent / "shared" / "parity"

LONGVA_PROMPT = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<image>\n"
    "{question}<|im_end|>\n<|im_start|>assistant\n"
)
VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. The assistant gives "
    "helpful, detailed, and polite answers to the user's questions."
)


def _parity_file(*parts: str) -> Path:
    path = PARITY.joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"parity file {path} not found (expected beside the checkout)")
    return path


def test_chatml_is_longva_string_exactly() -> None:
    question = "What is happening in this video?"
    expected = LONGVA_PROMPT.replace("{question}", question)
    assert render("chatml", question) == expected
    assert render("qwen_1_5", question) == expected
    assert TEMPLATES["qwen_1_5"] is TEMPLATES["chatml"]
    assert TEMPLATES["chatml"].stop_strings == ("<|im_end|>",)


def test_chatml_matches_longva_readme_text() -> None:
    """The string of ``shared/parity/longva/README.md`` §9, read from the README itself."""
    text = _parity_file("longva", "README.md").read_text(encoding="utf-8")
    found = re.findall(r'`"(<\|im_start\|>system[^`]*?\{question\}[^`]*?)"`', text)
    assert found, "LongVA README §9 prompt string not found"
    readme_prompt = found[0].replace("\\n", "\n")
    assert readme_prompt == LONGVA_PROMPT
    assert render("qwen_1_5", "{question}") == readme_prompt


def test_vicuna_v1_matches_llamavid_prompt_file() -> None:
    prompts = json.loads(_parity_file("llamavid", "movie_and_prompts.json").read_text("utf-8"))
    case = prompts["prompts"]["short_video_eval_vicuna_v1"]
    assert render("vicuna_v1", case["question"]) == case["prompt"]
    assert render("imgsp_v1", case["question"]) == case["prompt"]
    expected = f"{VICUNA_SYSTEM} USER: <image>\nWhat is the man doing in the video? ASSISTANT:"
    assert render("llamavid", "What is the man doing in the video?") == expected
    assert TEMPLATES["vicuna_v1"].stop_strings == ("</s>",)


@pytest.mark.parametrize(
    ("kind", "template"),
    [
        ("inference_prompt", "minigpt4video"),
        ("eval_prompt", "minigpt4video_eval"),
        ("train_prompt", "minigpt4video_train"),
    ],
)
def test_minigpt4video_matches_prompt_assembly_file(kind: str, template: str) -> None:
    data = json.loads(_parity_file("minigpt4video", "prompt_assembly.json").read_text("utf-8"))
    for case in data["conversation_cases"]:
        placeholders, _, question = case["user_text"].rpartition("\n")
        assert render(template, question, placeholder=placeholders) == case[kind]["text"]


def test_minigpt4video_strings_literal() -> None:
    user = "<Img><ImageHere><Img><ImageHere>"
    assert render("minigpt4video", "Q?", user) == f"<s>[INST] {user}\nQ? [/INST]"
    assert render("minigpt4video_eval", "Q?", user) == f"<s>[INST]  {user}\nQ? [/INST]"
    assert render("minigpt4video_train", "Q?", user) == f"[INST] {user}\nQ?[/INST]"


def test_render_parts_surround_placeholder_and_keep_braces() -> None:
    question = "What does {x} mean? <image>"
    before, after = render_parts("chatml", question)
    assert before + "<image>" + after == render("chatml", question)
    assert before.endswith("<|im_start|>user\n")
    assert after == f"\n{question}<|im_end|>\n<|im_start|>assistant\n"


def test_get_template_unknown_name_lists_known() -> None:
    with pytest.raises(ConfigError, match="known: .*chatml") as info:
        get_template("chatmll")
    assert isinstance(info.value, LongvidError)
    custom = ChatTemplate("mine", "", "U: ", "\n", "A: ", ("\n",))
    assert get_template(custom) is custom
    assert render(custom, "hi") == "U: <image>\nhi\nA: "
