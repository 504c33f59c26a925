"""Fixtures of the benchmark tests: one tiny model for the whole session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny():
    """``tiny-longva`` with random weights (seeded) and the offline byte-level tokenizer."""
    from longvid.generate import load_model

    return load_model("tiny-longva")
