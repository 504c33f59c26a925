"""How many frames fit a language model's context: the frame count from the token budget.

Paper: Ataallah et al., "MiniGPT4-Video", 2024, §3: the number of sampled frames N is set by
the LLM's context window (45 frames for Llama-2 with 4K tokens, 90 for Mistral with 8K) because
every frame costs a fixed number of visual tokens (64) and the subtitles and the answer share
the same window. `frames_for_budget` is that arithmetic for any compressor and any model:

    N = (context_length - prompt_tokens - subtitle_budget - answer_reserve)
        // (tokens_per_frame + per_frame_text_tokens)

`PAPER_FRAME_BUDGETS` holds the settings that give the paper's figures: 64 visual tokens per
frame and the reference's subtitle budgets (400 / 800 words; `longvid.io.subtitle_alignment.
REFERENCE_BUDGETS`) counted at 3 tokens per word, a safe upper bound for Llama / Mistral
SentencePiece on English. The paper states N, not its derivation, and the reference keeps no
room for the answer (it cuts the prompt to 3700 / 7500 positions and generates into what is
left); these settings reproduce N exactly (tested), they are not a quote.
`longvid.generate` uses the function with the model's real figures (its context, the
compressor's tokens per frame, the template's text, the subtitles' tokens, ``max_new_tokens``).
"""

from __future__ import annotations

from dataclasses import dataclass

from longvid.errors import ContextOverflowError

__all__ = ["PAPER_FRAME_BUDGETS", "FrameBudget", "frames_for_budget"]


def frames_for_budget(
    context_length: int,
    tokens_per_frame: int,
    subtitle_budget: int = 0,
    answer_reserve: int = 0,
    *,
    prompt_tokens: int = 0,
    per_frame_text_tokens: int = 0,
    max_frames: int | None = None,
) -> int:
    """The most frames whose tokens fit ``context_length`` beside the rest of the prompt.

    ``tokens_per_frame``: visual tokens one frame costs (the compressor's; 64 for
    MiniGPT4-Video, 144 for LongVA at 336 px, 2 for LLaMA-VID); ``per_frame_text_tokens``: text
    the prompt writes for every frame (``<Img>``, a time mark); ``subtitle_budget``: tokens set
    aside for subtitle text; ``answer_reserve``: tokens kept free for the answer;
    ``prompt_tokens``: the template and question. ``max_frames`` caps the result (e.g. the
    video's frame count). Raises `ContextOverflowError` when not even one frame fits.
    """
    for name, value in (
        ("context_length", context_length),
        ("subtitle_budget", subtitle_budget),
        ("answer_reserve", answer_reserve),
        ("prompt_tokens", prompt_tokens),
        ("per_frame_text_tokens", per_frame_text_tokens),
    ):
        if value < 0:
            raise ValueError(f"frames_for_budget: {name} must be >= 0, got {value}")
    per_frame = tokens_per_frame + per_frame_text_tokens
    if tokens_per_frame < 1 or per_frame < 1:
        raise ValueError(
            f"frames_for_budget: tokens_per_frame must be >= 1, got {tokens_per_frame}"
        )
    fixed = prompt_tokens + subtitle_budget + answer_reserve
    n = (context_length - fixed) // per_frame
    if n < 1:
        raise ContextOverflowError(
            fixed + per_frame,
            context_length,
            f"one frame ({per_frame} tokens) beside {prompt_tokens} prompt + {subtitle_budget} "
            f"subtitle + {answer_reserve} answer tokens",
        )
    if max_frames is not None:
        n = min(n, max(1, int(max_frames)))
    return int(n)


@dataclass(frozen=True)
class FrameBudget:
    """The arguments of `frames_for_budget` for one setting; `frames` applies them."""

    context_length: int
    tokens_per_frame: int
    subtitle_budget: int = 0
    answer_reserve: int = 0

    def frames(self) -> int:
        """N for this setting."""
        return frames_for_budget(
            self.context_length, self.tokens_per_frame, self.subtitle_budget, self.answer_reserve
        )


#: The paper's settings: Llama-2 (4096 tokens) -> 45 frames, Mistral (8192) -> 90.
PAPER_FRAME_BUDGETS: dict[str, FrameBudget] = {
    "llama2": FrameBudget(context_length=4096, tokens_per_frame=64, subtitle_budget=3 * 400),
    "mistral": FrameBudget(context_length=8192, tokens_per_frame=64, subtitle_budget=3 * 800),
}
