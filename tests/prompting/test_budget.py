"""The frame count from the context budget (MiniGPT4-Video §3: 45 frames at 4K, 90 at 8K)."""

from __future__ import annotations

import pytest

from longvid.errors import ContextOverflowError
from longvid.prompting.budget import PAPER_FRAME_BUDGETS, frames_for_budget


def test_paper_figures():
    assert PAPER_FRAME_BUDGETS["llama2"].frames() == 45
    assert PAPER_FRAME_BUDGETS["mistral"].frames() == 90
    assert frames_for_budget(4096, 64, 1200, 0) == 45
    assert frames_for_budget(8192, 64, 2400, 0) == 90


def test_every_term_counts():
    assert frames_for_budget(1000, 100) == 10
    assert frames_for_budget(1000, 100, subtitle_budget=100) == 9
    assert frames_for_budget(1000, 100, answer_reserve=101) == 8
    assert frames_for_budget(1000, 100, prompt_tokens=1) == 9
    assert frames_for_budget(1000, 96, per_frame_text_tokens=4) == 10
    assert frames_for_budget(1000, 95, per_frame_text_tokens=4) == 10
    assert frames_for_budget(1000, 100, max_frames=3) == 3
    # LongVA's 144 tokens per frame in a 224K context, LLaMA-VID's 2 tokens in 64K.
    assert frames_for_budget(224000, 144, answer_reserve=1024) == 1548
    assert frames_for_budget(65536, 2, answer_reserve=512) == 32512


def test_overflow_and_bad_arguments():
    with pytest.raises(ContextOverflowError, match="one frame"):
        frames_for_budget(100, 64, subtitle_budget=50)
    with pytest.raises(ValueError, match="tokens_per_frame"):
        frames_for_budget(100, 0)
    with pytest.raises(ValueError, match="answer_reserve"):
        frames_for_budget(100, 1, answer_reserve=-1)
