"""How the OCR line's wording changes longvid-mini's which-word answers (issue 9).

With the text channels on, OCR gives each card as a line with its colours, and the small LLM
must bind a question's colour ("the yellow card") to the right line. This runs the held-out
which-word questions (`longvid.bench.mini_eval.evaluate_qa`, 16 frames, channels on,
multiple choice in the cloze form) with each wording of `longvid.io.ocr.line_phrase`: the
default, the ground named as a card (``"EXIT" in white on a green card``), and the one before
it (``"EXIT" in white on green``), on one or more blocks of question seeds (``--seeds``: block
0 is the questions of `benchmarks/which_word.py`). The section
``## The OCR line's wording (benchmarks/ocr_phrasing.py)`` of docs/benchmarks.md is replaced
unless ``--no-write``.

    python benchmarks/ocr_phrasing.py [--model longvid-mini] [--n-per-form 40] [--seeds 0 1]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from unittest import mock

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _docs import write_table_section  # noqa: E402
from which_word import cell, form_cells, load  # noqa: E402

from longvid.bench.mini_eval import QAItem, evaluate_qa  # noqa: E402
from longvid.io import ocr  # noqa: E402

HEADING = "## The OCR line's wording (benchmarks/ocr_phrasing.py)"
COLUMNS = ["wording", "questions", "ordinal mc", "ordinal open", "colour mc", "colour open", "all"]


DEFAULT = ocr.line_phrase  # bound here: the runs patch ``ocr.line_phrase``


def text_colour_first(text: str, colours: tuple[str, str] | None = None) -> str:
    """The wording before 2026-12-07: ``"EXIT" in white on green``."""
    quoted = DEFAULT(text)  # the line quoted as the default quotes it
    return f"{quoted} in {colours[0]} on {colours[1]}" if colours else quoted


WORDINGS: dict[str, Callable[..., str]] = {
    '`"EXIT" in white on a green card` (default)': DEFAULT,
    '`"EXIT" in white on green` (before)': text_colour_first,
}


def row(wording: str, block: str, items: list[QAItem]) -> list[str]:
    """Accuracy per form x (mc, open) and over all ``items``."""
    return [wording, block, *form_cells(items), cell(items)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="longvid-mini")
    parser.add_argument("--n-per-form", type=int, default=40, help="Questions per mc/open form.")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="Question blocks.")
    parser.add_argument("--no-write", action="store_true", help="Leave docs/benchmarks.md.")
    args = parser.parse_args(argv)
    console = Console()
    label, model = load(args.model)
    rows = []
    for wording, phrase in WORDINGS.items():
        every: list[QAItem] = []
        for seed in args.seeds:
            with mock.patch.object(ocr, "line_phrase", phrase):
                report = evaluate_qa(
                    model,
                    n_per_kind=args.n_per_form,
                    text_channels=True,
                    kinds=["what"],
                    mc_scoring="options",
                    seed=seed,
                )
            every += report.items
            rows.append(row(wording, f"block {seed}", report.items))
            console.print(f"{wording}, block {seed}: {rows[-1][-1]}")
        if len(args.seeds) > 1:
            rows.append(row(wording, "all blocks", every))
    table = Table(title=f"{label}: which-word questions with the text channels on")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column == "wording" else "right")
    for r in rows:
        table.add_row(*r)
    console.print(table)
    if not args.no_write:
        command = f"python benchmarks/ocr_phrasing.py --model {args.model} "
        command += f"--n-per-form {args.n_per_form} --seeds {' '.join(map(str, args.seeds))}"
        text = f"`{label}`, held-out which-word questions ({args.n_per_form} per form and "
        text += "mc/open, each block its own seeds; block 0 is `benchmarks/which_word.py`'s), "
        text += "16 frames, the text channels on (subtitles and OCR), multiple choice scored "
        text += "in the cloze form; only the wording of a coloured OCR line differs. Each cell "
        text += "is accuracy (questions)."
        write_table_section(HEADING, command, text, COLUMNS, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
