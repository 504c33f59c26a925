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
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _docs import write_table_section  # noqa: E402

from longvid.bench.mini_eval import qa_samples, upscale_for_ocr  # noqa: E402
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


def measure(n_per_form: int) -> dict[str, list[float]]:
    """Per way of reading, the counts of `COLUMNS` (after the first) over the clips."""
    counts = {way: [0.0] * 6 for way in WAYS}
    for sample in qa_samples(n_per_form, text_channels=True, kinds=["what"]):
        frames = upscale_for_ocr(sample.frames)
        cards = [sample.timeline.scene_at(t).card for t in sample.timestamps]
        for way, upright in WAYS.items():
            clock = time.perf_counter()
            read = read_frames(frames, sample.timestamps, min_changed=0, upright=upright)
            row = counts[way]
            row[5] += time.perf_counter() - clock
            for card, frame in zip(cards, read, strict=True):
                row[0] += card is not None
                for line in frame.lines:
                    if card is not None and line.text.casefold() == card.word:
                        row[1] += 1
                        row[2] += line.colours == (card.text_color, card.card_color)
                    else:
                        row[3] += 1
                        row[4] += line.colours is not None
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-per-form", type=int, default=10, help="clips per mc/open form")
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/")
    args = parser.parse_args()
    counts = measure(args.n_per_form)
    n_frames = 2 * args.n_per_form * 16
    rows = []
    for way, (cards, word, both, other, coloured, seconds) in counts.items():
        rows.append(
            [
                way,
                f"{cards:.0f}",
                f"{word:.0f} ({word / max(cards, 1):.1%})",
                f"{both:.0f} ({both / max(cards, 1):.1%})",
                f"{other:.0f}",
                f"{coloured:.0f}",
                f"{seconds / n_frames:.3f}",
            ]
        )
    table = Table(title=f"OCR of the cards, {2 * args.n_per_form} held-out clips x 16 frames")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column == "reading" else "right")
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    if not args.no_write:
        write_table_section(
            HEADING,
            f"python benchmarks/ocr_cards.py --n-per-form {args.n_per_form}",
            f"Held-out which-word test clips ({2 * args.n_per_form}, 16 frames each, upscaled "
            "as `longvid ask --ocr` reads them), every frame OCRed (`min_changed=0`). `word "
            "read`: frames with a card whose word is among the lines; `word and colours "
            "right`: with the card's (text, card) colours too; `other lines`: lines that are "
            "not the card on screen (footage text, shapes read as digits), and of them those "
            "claiming a sign's colours. Both ways of reading ran in the same pass.",
            COLUMNS,
            rows,
        )


if __name__ == "__main__":
    main()
