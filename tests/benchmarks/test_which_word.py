"""benchmarks/which_word.py: question forms and the rows it reports."""

from __future__ import annotations

import pytest

from longvid.bench.mini_eval import QAItem
from longvid.train.videoqa import make_sample, split_seeds
from tests.benchmarks import benchmark_script


@pytest.fixture(scope="module")
def which_word():
    with benchmark_script("which_word") as module:
        yield module


def test_every_which_word_question_has_its_form(which_word) -> None:
    forms = set()
    for seed in split_seeds("test", 30):
        sample = make_sample(seed, "test", kind="what", n_frames=8, size=32)
        colours = [e.card.card_color for e in sample.timeline.cards]
        named = [c for c in colours if f" {c} card?" in sample.question]
        forms.add(which_word.question_form(sample.question))
        assert (which_word.question_form(sample.question) == "colour") == bool(named)
    assert set(forms) == {"ordinal", "colour"}


def _item(
    seed: int, question: str, mc: bool, correct: bool, blind: bool, said: str = "A"
) -> QAItem:
    return QAItem(seed, "what", mc, question, "A", said, correct, "B", blind, 0.25, 10, 0.1)


def test_a_row_splits_forms_and_keeps_the_baseline(which_word) -> None:
    colour = "What word was written on the red card?"
    ordinal = "What was the first word shown on a card?"
    seeds = split_seeds("test", 5)
    samples = [make_sample(s, "test", kind="what", n_frames=8, size=32) for s in seeds]
    shown = samples[3].timeline.cards[0].card.word
    items = [
        _item(seeds[0], ordinal, True, True, False),
        _item(seeds[1], ordinal, True, False, False),
        _item(seeds[2], ordinal, False, True, True),
        _item(seeds[3], colour, False, False, False, said=f" {shown.upper()}."),
        _item(seeds[4], colour, False, False, False, said="unicorn"),
    ]
    cells = ["50% (2)", "100% (1)", "-", "0% (2)", "40% (5)", "20%", "1 of 2"]
    expected = ["m", "off", "options", *cells]
    assert which_word.row("m", "off", "options", items, samples) == expected
    with pytest.raises(ValueError, match="not the same questions"):
        which_word.row("m", "off", "options", items, samples[::-1])


def test_its_section_is_one_table_under_its_heading(which_word, tmp_path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## Other\n\nkept\n")
    rows = [["m", "on", "letter", "50% (2)", "100% (1)", "-", "0% (1)", "50% (4)", "25%", "1 of 1"]]
    which_word.write_table_section(
        which_word.HEADING, "python x.py", "About it.", list(which_word.COLUMNS), rows, path=doc
    )
    text = doc.read_text()
    assert "## Other\n\nkept" in text and text.count(which_word.HEADING) == 1
    assert "`python x.py`. About it." in text
    header = "|---" + "|---:" * 9 + "|\n"
    assert header + "| m | on | letter | 50% (2) |" in text
