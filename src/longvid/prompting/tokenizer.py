"""An offline byte-level tokenizer for tiny test models.

Tiny random models (the ``tiny-*`` registry configs) need a real *transformers* tokenizer, one
that ``save_pretrained`` / ``from_pretrained`` handle from a local folder, without anything on a
model hub. `byte_level_tokenizer` builds one with the *tokenizers* library: a byte-level
pre-tokenizer and decoder around a BPE model over the 256 byte symbols with no merges, so every
UTF-8 byte is one token and **token id = byte value** (0..255); the special tokens follow at
ids 256, 257, ... and are always single tokens. Encoding then decoding is the identity for any
text, and the vocabulary stays under 300 entries so embedding tables stay tiny.
"""

from __future__ import annotations

from collections.abc import Sequence

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

#: The Qwen2 (ChatML) special tokens, the default set.
CHATML_SPECIAL_TOKENS: tuple[str, ...] = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")

#: Upper bound on the vocabulary, so a tiny model's embedding table stays tiny.
MAX_VOCAB = 300


def byte_symbols() -> list[str]:
    """The printable character that stands for each byte 0..255 in a byte-level vocabulary.

    This is the GPT-2 byte-to-unicode table that the *tokenizers* ``ByteLevel`` pre-tokenizer
    applies: bytes that are printable Latin-1 characters stand for themselves, every other byte
    (controls, space, ...) is shifted to the code points from 256 upwards, in byte order.
    """
    printable = (
        set(range(ord("!"), ord("~") + 1))
        | set(range(ord("¡"), ord("¬") + 1))
        | set(range(ord("®"), ord("ÿ") + 1))
    )
    symbols: list[str] = []
    shifted = 0
    for byte in range(256):
        if byte in printable:
            symbols.append(chr(byte))
        else:
            symbols.append(chr(256 + shifted))
            shifted += 1
    return symbols


def byte_level_tokenizer(
    special_tokens: Sequence[str] = CHATML_SPECIAL_TOKENS,
    *,
    eos_token: str | None = "<|im_end|>",
    pad_token: str | None = "<|endoftext|>",
    bos_token: str | None = None,
    model_max_length: int = 1 << 20,
) -> PreTrainedTokenizerFast:
    """A transformers fast tokenizer with one token per UTF-8 byte plus ``special_tokens``.

    Ids 0..255 are the bytes, ids 256.. the special tokens in the given order. ``eos_token``,
    ``pad_token`` and ``bos_token`` (each one of ``special_tokens``, or None) set the roles
    transformers reads; the defaults are Qwen2-Instruct's (eos ``<|im_end|>``, pad
    ``<|endoftext|>``, no BOS), so the tokenizer adds no special tokens when encoding, like
    Qwen2's. Nothing is downloaded; ``save_pretrained(dir)`` then
    ``AutoTokenizer.from_pretrained(dir)`` gives the same tokenizer back.
    """
    specials = list(dict.fromkeys(special_tokens))
    if len(specials) != len(special_tokens):
        raise ValueError(f"special tokens repeat: {list(special_tokens)}")
    if 256 + len(specials) > MAX_VOCAB:
        raise ValueError(f"{len(specials)} special tokens make the vocabulary exceed {MAX_VOCAB}")
    for role, token in (
        ("eos_token", eos_token),
        ("pad_token", pad_token),
        ("bos_token", bos_token),
    ):
        if token is not None and token not in specials:
            raise ValueError(f"{role} {token!r} is not one of the special tokens {specials}")

    vocab = {symbol: byte for byte, symbol in enumerate(byte_symbols())}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], fuse_unk=False))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(
        [AddedToken(token, special=True, normalized=False) for token in specials]
    )

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token=eos_token,
        pad_token=pad_token,
        bos_token=bos_token,
        clean_up_tokenization_spaces=False,
        model_max_length=model_max_length,
    )
    return tokenizer
