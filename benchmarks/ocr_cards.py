"""How well the OCR channel reads the cards of held-out which-word clips (issue 9).

The text channels answer which-word questions only as well as OCR gives the cards: on every
sampled frame of held-out test clips (`longvid.bench.mini_eval.qa_samples`, 16 frames,
upscaled as `longvid ask --ocr` sees them), whether the card on screen is read with its word
and its (text, card) colours, and how many other lines OCR gives (footage text, shapes misread
as digits) and how many of those claim a sign's colours. Run two ways in the same pass:
frames read upright (`read_frames`' default) and with RapidOCR's text-direction classifier,
which turned italic words over. The section ``## OCR of the cards (benchmarks/ocr_cards.py)``
of docs/benchmarks.md is replaced unless ``--no-write``.

    python benchmarks/ocr_cards.py [--n-per-form 10]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _docs import write_table_section  # noqa: E402

from longvid.bench.mini_eval import MAX_QA_FRAMES, qa_samples, upscale_for_ocr  # noqa: E402
from longvid.io.ocr import read_frames  # noqa: E402

HEADING = "## OCR of the cards (benchmarks/ocr_cards.py)"
COLUMNS = [
    "reading",
    "frames with a card",
    "word read",
    "word and colours right",
    "other lines",
    "other lines with colours",
    "s per frame",
]
WAYS = {"upright (default)": True, "direction classifier": False}


@dataclass
class Tally:
    """One way of reading's counts over the clips (`COLUMNS`)."""

    frames: int = 0
    cards: int = 0
    word: int = 0
    word_and_colours: int = 0
    other: int = 0
    other_coloured: int = 0
    seconds: float = 0.0

    def row(self, way: str) -> list[str]:
        cards = max(self.cards, 1)
        return [
            way,
            str(self.cards),
            f"{self.word} ({self.word / cards:.1%})",
            f"{self.word_and_colours} ({self.word_and_colours / cards:.1%})",
            str(self.other),
            str(self.other_coloured),
            f"{self.seconds / max(self.frames, 1):.3f}",
        ]


def measure(n_per_form: int) -> dict[str, Tally]:
    """Per way of reading (`WAYS`), its tally over the clips."""
    tallies = {way: Tally() for way in WAYS}
    for sample in qa_samples(n_per_form, text_channels=True, kinds=["what"]):
        frames = upscale_for_ocr(sample.frames)
        cards = [sample.timeline.scene_at(t).card for t in sample.timestamps]
        for way, upright in WAYS.items():
            clock = time.perf_counter()
            read = read_frames(frames, sample.timestamps, min_changed=0, upright=upright)
            tally = tallies[way]
            tally.seconds += time.perf_counter() - clock
            tally.frames += len(read)
            for card, frame in zip(cards, read, strict=True):
                tally.cards += card is not None
                for line in frame.lines:
                    if card is not None and line.text.casefold() == card.word:
                        tally.word += 1
                        right = (card.text_color, card.card_color)
                        tally.word_and_colours += line.colours == right
                    else:
                        tally.other += 1
                        tally.other_coloured += line.colours is not None
    return tallies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-per-form", type=int, default=10, help="clips per mc/open form")
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/")
    args = parser.parse_args()
    rows = [tally.row(way) for way, tally in measure(args.n_per_form).items()]
    table = Table(title=f"OCR of the cards, {2 * args.n_per_form} held-out clips")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column == "reading" else "right")
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    if not args.no_write:
        write_table_section(
            HEADING,
            f"python benchmarks/ocr_cards.py --n-per-form {args.n_per_form}",
            f"Held-out which-word test clips ({2 * args.n_per_form}, {MAX_QA_FRAMES} frames "
            "each, upscaled as `longvid ask --ocr` reads them), every frame OCRed "
            "(`min_changed=0`). `word read`: frames with a card whose word is among the "
            "lines; `word and colours right`: with the card's (text, card) colours too; "
            "`other lines`: lines that are not the card on screen (footage text, shapes read "
            "as digits), and of them those claiming a sign's colours. Both ways of reading "
            "ran in the same pass.",
            COLUMNS,
            rows,
        )


if __name__ == "__main__":
    main()
