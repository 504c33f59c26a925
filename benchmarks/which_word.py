"""Which-word questions by form: where longvid-mini's "what" accuracy is lost (issue 9).

The "what" questions of `longvid.train.videoqa` come in two forms, each multiple-choice or open:
*ordinal* ("What was the second word shown on a card?": find the cards in time order, read
one) and *colour* ("What word was written on the yellow card?": bind a card's colour to its
word). `benchmarks/mini.py` reports them together; this script splits them, with the text
channels off (frames only, the visual path) and on (``--channels``: subtitles and the OCR of the
on-screen text interleaved, as ``longvid ask --ocr``), on held-out test questions, for several
models in one run: shipped names
(``longvid-mini``) or package folders (``LABEL=PATH``, e.g. one written by
``longvid train continue``), beside the text-only baseline (the same LLM and LoRA without
frames) and chance. Multiple choice is answered both ways of `evaluate_qa`'s ``mc_scoring``
(``--mc-scoring``): the letter decoded from the lettered prompt the model trained on, and the
cloze form (each option scored as the whole answer to the open question); open questions are
the same either way. The section ``## Which-word questions by form (benchmarks/which_word.py)``
of docs/benchmarks.md is replaced unless ``--no-write``.

    python benchmarks/which_word.py --models longvid-mini more=results/longva-more \\
        [--n-per-form 40] [--mc-scoring letter options] [--channels off on]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _docs import write_table_section  # noqa: E402

from longvid.bench.mini_eval import (  # noqa: E402
    MC_SCORING,
    QAItem,
    evaluate_qa,
    normalise_answer,
    qa_samples,
)
from longvid.train.videoqa import VideoQASample  # noqa: E402

HEADING = "## Which-word questions by form (benchmarks/which_word.py)"
COLOUR_FORM = re.compile(r"What word was written on the \w+ card\?")
FORMS = ("ordinal", "colour")
CHANNELS = ("off", "on")
COLUMNS = (
    "model",
    "text channels",
    "mc by",
    "ordinal mc",
    "ordinal open",
    "colour mc",
    "colour open",
    "all",
    "text-only",
    "wrong open: another card",
)


def question_form(question: str) -> str:
    """``"colour"`` for a which-word question naming the card's colour, else ``"ordinal"``."""
    return "colour" if COLOUR_FORM.match(question) else "ordinal"


def load(spec: str):
    """A shipped model by name, or ``LABEL=PATH``: the package folder at PATH."""
    from longvid.generate import load_model
    from longvid.models.modeling import LongVideoLM

    if "=" in spec:
        label, path = spec.split("=", 1)
        return label, LongVideoLM.from_pretrained(path).eval()
    return spec, load_model(spec).eval()


def cell(items: list[QAItem]) -> str:
    """Accuracy and count of ``items``, e.g. ``45% (20)``."""
    if not items:
        return "-"
    return f"{100 * sum(i.correct for i in items) / len(items):.0f}% ({len(items)})"


def another_card(items: list[QAItem], samples: list[VideoQASample]) -> str:
    """Of the wrong open answers, how many name the word of another card in the clip (a card
    read but the wrong one picked) rather than a word the clip does not show, e.g. ``6 of 14``."""
    if [i.seed for i in items] != [s.seed for s in samples]:
        raise ValueError("the items and samples are not the same questions")
    wrong = [(i, s) for i, s in zip(items, samples, strict=True) if not i.multiple_choice]
    wrong = [(i, s) for i, s in wrong if not i.correct]
    shown = [
        normalise_answer(i.predicted) in {e.card.word for e in s.timeline.cards} for i, s in wrong
    ]
    return f"{sum(shown)} of {len(shown)}"


def form_cells(items: list[QAItem]) -> list[str]:
    """The `cell` of each form x (multiple choice, open), in `COLUMNS`' order."""
    return [
        cell([i for i in items if question_form(i.question) == form and i.multiple_choice == mc])
        for form in FORMS
        for mc in (True, False)
    ]


def row(
    label: str, channels: str, mc_scoring: str, items: list[QAItem], samples: list[VideoQASample]
) -> list[str]:
    """One table row: each form x (mc, open), all items, the text-only baseline, and where
    the wrong open answers came from (`another_card`)."""
    cells = form_cells(items)
    blind = sum(i.text_only_correct for i in items) / len(items)
    return [
        label,
        channels,
        mc_scoring,
        *cells,
        cell(items),
        f"{100 * blind:.0f}%",
        another_card(items, samples),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["longvid-mini"])
    parser.add_argument("--n-per-form", type=int, default=40, help="Questions per mc/open form.")
    parser.add_argument("--mc-scoring", nargs="+", choices=MC_SCORING, default=list(MC_SCORING))
    parser.add_argument(
        "--channels",
        nargs="+",
        choices=CHANNELS,
        default=["off"],
        help="Text channels off (frames only) and/or on (subtitles and OCR).",
    )
    parser.add_argument("--no-write", action="store_true", help="Leave docs/benchmarks.md.")
    args = parser.parse_args(argv)
    console = Console()
    table = Table(title=f"which-word questions, {args.n_per_form} per mc/open form")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column == "model" else "right")
    rows = []
    samples = {
        channels: list(qa_samples(args.n_per_form, text_channels=channels == "on", kinds=["what"]))
        for channels in args.channels
    }
    for spec in args.models:
        label, model = load(spec)
        for channels in args.channels:
            for scoring in args.mc_scoring:
                report = evaluate_qa(
                    model,
                    n_per_kind=args.n_per_form,
                    text_channels=channels == "on",
                    kinds=["what"],
                    mc_scoring=scoring,
                )
                rows.append(row(label, channels, scoring, report.items, samples[channels]))
                table.add_row(*rows[-1])
                console.print(f"{label}, channels {channels}, multiple choice by {scoring}: done")
    console.print(table)
    chance = "multiple choice 25%, open 0%"
    if not args.no_write:
        command = f"python benchmarks/which_word.py --models {' '.join(args.models)} "
        command += f"--n-per-form {args.n_per_form} --mc-scoring {' '.join(args.mc_scoring)} "
        command += f"--channels {' '.join(args.channels)}"
        text = "Held-out test questions (the same ones for every model), 16 frames; `text "
        text += "channels` off: frames only (the visual path), on: subtitles and the OCR of the "
        text += "on-screen text interleaved with the frames (`longvid ask --ocr`); each cell is "
        text += f"accuracy (questions). Chance: {chance}. `mc by`: "
        text += "`letter`, the option letter decoded from the lettered prompt the model trained "
        text += "on; `options`, the cloze form: the question asked open and each option scored "
        text += "as the whole answer (`longvid.generate.score_choices`), the most likely taken. "
        text += "Open questions are asked the same way in both rows; `wrong open: another "
        text += "card`: of the open answers that were wrong, those naming the word of another "
        text += "card in the clip (the rest name a word the clip never shows)."
        write_table_section(HEADING, command, text, list(COLUMNS), rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
