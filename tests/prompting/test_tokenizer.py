"""Tests of longvid.prompting.tokenizer: the offline byte-level tokenizer of the tiny models."""

from __future__ import annotations

from pathlib import Path

import pytest
from tokenizers import pre_tokenizers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from longvid.prompting.tokenizer import (
    CHATML_SPECIAL_TOKENS,
    MAX_VOCAB,
    byte_level_tokenizer,
    byte_symbols,
)

TEXTS = [
    "Hello, world! What happens at 12.5 s?\n\tTabs  and  spaces ",
    "この動画では何が起きていますか？猫が走っています。",
    "mixed: café naïve 🎬 — ok",
    "",
]


@pytest.fixture(scope="module")
def tok() -> PreTrainedTokenizerFast:
    return byte_level_tokenizer()


def test_byte_symbols_are_the_byte_level_alphabet() -> None:
    symbols = byte_symbols()
    assert len(symbols) == len(set(symbols)) == 256
    assert set(symbols) == set(pre_tokenizers.ByteLevel.alphabet())


def test_ids_are_bytes_and_specials_follow(tok: PreTrainedTokenizerFast) -> None:
    assert len(tok) == 256 + len(CHATML_SPECIAL_TOKENS) <= MAX_VOCAB
    text = "héllo 猫"
    assert tok(text)["input_ids"] == list(text.encode("utf-8"))
    for offset, special in enumerate(CHATML_SPECIAL_TOKENS):
        assert tok.convert_tokens_to_ids(special) == 256 + offset
    assert tok.eos_token == "<|im_end|>" and tok.eos_token_id == 258
    assert tok.pad_token == "<|endoftext|>" and tok.pad_token_id == 256
    assert tok.bos_token_id is None


@pytest.mark.parametrize("text", TEXTS)
def test_round_trip_is_identity(tok: PreTrainedTokenizerFast, text: str) -> None:
    ids = tok(text)["input_ids"]
    assert len(ids) == len(text.encode("utf-8"))
    assert tok.decode(ids) == text


def test_special_tokens_stay_single_ids(tok: PreTrainedTokenizerFast) -> None:
    text = "<|im_start|>user\n猫<|im_end|>\n<|im_start|>assistant\n<|endoftext|>"
    ids = tok(text)["input_ids"]

    def b(s: str) -> list[int]:
        return list(s.encode("utf-8"))

    assert ids == [257, *b("user\n猫"), 258, *b("\n"), 257, *b("assistant\n"), 256]
    assert tok.decode(ids) == text
    assert tok.decode(ids, skip_special_tokens=True) == "user\n猫\nassistant\n"


def test_save_and_load_from_local_dir(
    tok: PreTrainedTokenizerFast, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tok.save_pretrained(tmp_path)
    for loaded in (
        AutoTokenizer.from_pretrained(tmp_path),
        PreTrainedTokenizerFast.from_pretrained(tmp_path),
    ):
        assert len(loaded) == len(tok)
        assert loaded.eos_token_id == tok.eos_token_id
        assert loaded.pad_token_id == tok.pad_token_id
        for text in [*TEXTS, "<|im_start|>system\nhi<|im_end|>"]:
            ids = tok(text)["input_ids"]
            assert loaded(text)["input_ids"] == ids
            assert loaded.decode(ids) == text


def test_custom_specials_and_bos() -> None:
    tok = byte_level_tokenizer(
        ["<s>", "</s>", "<pad>"], bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (256, 257, 258)
    assert tok.decode(tok("<s>hi</s>")["input_ids"]) == "<s>hi</s>"


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="not one of the special tokens"):
        byte_level_tokenizer(["<a>"], eos_token="<b>", pad_token=None)
    with pytest.raises(ValueError, match="exceed"):
        byte_level_tokenizer([f"<t{i}>" for i in range(MAX_VOCAB)], eos_token=None, pad_token=None)
    with pytest.raises(ValueError, match="repeat"):
        byte_level_tokenizer(["<a>", "<a>"], eos_token=None, pad_token=None)
