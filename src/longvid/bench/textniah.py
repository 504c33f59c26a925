"""Text needle-in-a-haystack, LongVA's long-context check of the language model alone.

Zhang et al. 2024, "Long Context Transfer from Language to Vision" (LongVA), §3 (context
extension of the Qwen2 backbone) and its text NIAH figure; reference
``text_extend/eval_text_niah.py::construct_prompt`` (contract: ``shared/parity/longva/README.md``
§7; scoring is the teacher-forced exact match of §5, shared with `longvid.bench.vniah`).

`construct_prompt` builds ``prefix ++ haystack[:context_length] (+ distractors, + needle) ++
postfix`` on token ids: each distractor at a random index (numpy's legacy ``RandomState``, one
``randint(0, len)`` per distractor) moved to just after the next "period" token, then the
needle at ``int(len * depth)`` (length counted with the distractors in), again moved past the
next period. `TextNIAHTask` runs it on the grid runner (`longvid.bench.grid`): x = context
length in tokens, y = depth. The haystack text is generated locally (seeded plain sentences);
nothing is downloaded.

Reference defects (README §10) and how they are handled:

| defect | faithful option | default |
|---|---|---|
| §10.9 Llama-2 period ids 29889, 869 | ``reference_period_ids=True`` | the tokenizer's ids |

§10.9 in full: the reference hard-codes Llama-2's ids of ``.`` and `` .``; in any other
vocabulary they mean something else, so the "insert after a period" rule rarely fires and the
needle lands mid-word. The default looks the ids up in the tokenizer in use
(`tokenizer_period_ids`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from longvid.bench.grid import Cell
from longvid.bench.vniah import score_teacher_forced
from longvid.errors import ConfigError, ContextOverflowError

__all__ = [
    "REFERENCE_PERIOD_IDS",
    "TextNIAHTask",
    "construct_prompt",
    "haystack_text",
    "tokenizer_period_ids",
]

REFERENCE_PERIOD_IDS = (29889, 869)
"""Llama-2's ids of ``.`` and `` .``, hard-coded by the reference."""

NEEDLE = "\nThe special magic {city} number is: {number}.\n"
CITIES = ("Singapore", "New York", "London", "Paris", "Tokyo", "Beijing", "Berlin")
PREFIX = "This is a very long story book: <book>"
POSTFIX = (
    "</book>.\n Based on the content of the book, Question: What is the special magic "
    "Singapore number? Answer: The special magic Singapore number is: "
)


def _next_period(prompt: list[int], start: int, periods: Collection[int]) -> int:
    for i in range(start, len(prompt)):
        if prompt[i] in periods:
            return i + 1
    return start


def construct_prompt(
    haystack: Sequence[int],
    prefix: Sequence[int],
    postfix: Sequence[int],
    needle: Sequence[int],
    distractors: Sequence[Sequence[int]],
    context_length: int,
    depth: float,
    rng: np.random.RandomState,
    period_ids: Collection[int],
) -> list[int]:
    """The reference prompt on token ids (README §7).

    ``rng`` stands for the reference's global numpy state: ``np.random.RandomState(seed)``
    equals ``np.random.seed(seed)`` before the call. ``period_ids``: the tokens after which
    distractors and the needle are moved (`REFERENCE_PERIOD_IDS` for the reference).
    """
    if context_length > len(haystack):
        raise ConfigError(
            f"text NIAH: the haystack has {len(haystack)} tokens, the cell needs {context_length}"
        )
    periods = set(int(p) for p in period_ids)
    prompt = [int(t) for t in haystack[:context_length]]
    for distractor in distractors:
        start = _next_period(prompt, int(rng.randint(0, len(prompt))), periods)
        prompt[start:start] = [int(t) for t in distractor]
    start = 0 if depth == 0 else _next_period(prompt, int(len(prompt) * depth), periods)
    prompt[start:start] = [int(t) for t in needle]
    return [int(t) for t in prefix] + prompt + [int(t) for t in postfix]


def tokenizer_period_ids(tokenizer: Any) -> list[int]:
    """Ids of single tokens that are a full stop (``.``, `` .``, ``.\\n`` ...) in ``tokenizer``."""
    found = set()
    for text in (".", " .", ".\n", ". "):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) == 1:
            found.add(int(ids[0]))
    if not found:  # "." never a token of its own: take the token that ends it
        ids = tokenizer(".", add_special_tokens=False)["input_ids"]
        found.update(int(i) for i in ids[-1:])
    return sorted(found)


_WORDS = [
    "the",
    "river",
    "morning",
    "light",
    "village",
    "old",
    "road",
    "quiet",
    "market",
    "winter",
    "garden",
    "letter",
    "window",
    "mountain",
    "story",
    "travellers",
    "bread",
    "lamp",
    "harbour",
    "field",
    "stone",
    "bridge",
    "evening",
    "clock",
    "teacher",
    "child",
    "music",
    "forest",
    "boat",
    "candle",
    "north",
    "summer",
    "rain",
    "wall",
]


def haystack_text(n_sentences: int, seed: int = 0) -> str:
    """Plain seeded sentences ("The old bridge saw the lamp near a quiet field.") as filler:
    the reference reads essays; any natural-looking text with full stops works."""
    rng = np.random.RandomState(seed)
    sentences = []
    for _ in range(n_sentences):
        words = [_WORDS[i] for i in rng.randint(0, len(_WORDS), size=rng.randint(6, 12))]
        sentences.append(" ".join(words).capitalize() + ".")
    return " ".join(sentences)


@dataclass
class TextNIAHTask:
    """Text NIAH on a model's language model as a `longvid.bench.grid.GridTask`.

    ``lengths``: haystack sizes in tokens (x axis); ``depths``: needle depths; ``needles``:
    how many random 7-digit numbers per cell (accuracy = the fraction found);
    ``distractors``: other-city sentences per prompt (0 to 6); ``seed``: numpy seed of the
    needles, the text and the insertion; ``reference_period_ids``: §10.9.
    """

    model: Any
    lengths: list[int] = field(default_factory=lambda: [256, 512])
    depths: list[float] = field(default_factory=lambda: [0.0, 0.5, 1.0])
    needles: int = 3
    distractors: int = 0
    seed: int = 0
    reference_period_ids: bool = False

    name = "text NIAH"
    size_key = "context_length"
    size_label = "Context length (tokens)"

    def __post_init__(self) -> None:
        if not 0 <= self.distractors < len(CITIES):
            raise ConfigError(f"distractors must be 0..{len(CITIES) - 1}, got {self.distractors}")
        if self.needles < 1:
            raise ConfigError(f"needles must be >= 1, got {self.needles}")
        self._haystack: list[int] | None = None

    def cells(self) -> list[Cell]:
        return [Cell(int(n), float(d)) for n in self.lengths for d in self.depths]

    def _ids(self, text: str) -> list[int]:
        return list(self.model.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _haystack_ids(self) -> list[int]:
        if self._haystack is None:
            need = max(self.lengths)
            sentences = 64
            ids = self._ids(haystack_text(sentences, self.seed))
            while len(ids) < need:
                sentences *= 2
                ids = self._ids(haystack_text(sentences, self.seed))
            self._haystack = ids
        return self._haystack

    @torch.no_grad()
    def score(self, cell: Cell) -> dict[str, Any]:
        """Build and score ``needles`` prompts at this cell; ``accuracy`` is their mean."""
        model = self.model
        periods = (
            REFERENCE_PERIOD_IDS
            if self.reference_period_ids
            else tokenizer_period_ids(model.tokenizer)
        )
        rng = np.random.RandomState(self.seed + cell.size)
        hits = []
        length = 0
        for _ in range(self.needles):
            number = int(rng.randint(1_000_000, 10_000_000))
            others = [
                self._ids(NEEDLE.format(city=city, number=int(rng.randint(1_000_000, 10_000_000))))
                for city in CITIES[1 : 1 + self.distractors]
            ]
            ids = construct_prompt(
                self._haystack_ids(),
                self._ids(PREFIX),
                self._ids(POSTFIX),
                self._ids(NEEDLE.format(city="Singapore", number=number)),
                others,
                cell.size,
                cell.depth,
                rng,
                periods,
            )
            answer = torch.tensor([self._ids(str(number))], device=model.device)
            length = len(ids) + answer.shape[1]
            if length > model.config.context_length:
                raise ContextOverflowError(
                    length, model.config.context_length, f"text NIAH cell ({cell.size} tokens)"
                )
            prompt = model.embed_tokens(torch.tensor([ids], device=model.device))
            hits.append(
                score_teacher_forced(self._forward, prompt, answer, model.embed_tokens(answer))
            )
        return {"accuracy": float(np.mean(hits)), "hits": hits, "prompt_tokens": length}

    def _forward(self, embeds: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return self.model.language_model(inputs_embeds=embeds, position_ids=positions).logits
