"""Does stage 1 align the projector? Captions of held-out frames after a stage-1 run.

longvid-mini's QA stays at the text-only baseline even where its tower reads the frame
(models/longvid-mini/README.md). This benchmark isolates stage 1 (`longvid.train.mini`): it
trains one compressor's projector on captions from the given tower, with the given steps and
learning rate, then greedily captions held-out frames (test footage, test seeds) and scores the
captions against the truth: exact, the card's word, the card's colour and the shapes' colour,
each over the frames that have that part.

    python benchmarks/stage1_captions.py --tower models/longvid-mini/tower.safetensors \
        --compressor llamavid --steps 400 --lr 3e-3 [--frames 20] [--work DIR]

``--work`` keeps the stage's checkpoints in DIR; given the ``stage1`` folder of a
``longvid train compressor`` run with that run's steps, it captions with those weights and
trains nothing.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from longvid.bench.mini_eval import greedy_answer
from longvid.train.mini import (
    CAPTION_QUESTION,
    Example,
    StageConfig,
    build_student,
    prompt_embeds,
    train_stage1,
)
from longvid.train.render import Scene
from longvid.train.videoqa import caption_sample, split_seeds

PARTS = {
    # part -> (the scene's part it needs, how the caption says it, the true value)
    "word": (lambda s: s.card, r'the word "(\w+)"', lambda s: s.card.word),
    "card colour": (lambda s: s.card, r"on an? (\w+) card", lambda s: s.card.card_color),
    "shape colour": (
        lambda s: s.shapes,
        r"(\w+) (?:circle|square|triangle|star)",
        lambda s: s.shapes.color,
    ),
}


def score(captions: list[tuple[str, str, Scene]]) -> dict[str, tuple[int, int]]:
    """(correct, asked) per part, and for the exact caption."""
    result = {"exact": (sum(out.strip() == truth for out, truth, _ in captions), len(captions))}
    for part, (present, pattern, truth_of) in PARTS.items():
        asked = [(out, scene) for out, _, scene in captions if present(scene) is not None]
        correct = 0
        for out, scene in asked:
            found = re.search(pattern, out)
            correct += found is not None and found.group(1) == truth_of(scene)
        result[part] = (correct, len(asked))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tower", type=Path, required=True)
    parser.add_argument("--compressor", default="llamavid")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=None, help="checkpoint folder (resumable)")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    model = build_student(args.compressor, args.tower)
    stage = StageConfig(steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed)
    with tempfile.TemporaryDirectory() as scratch:
        result = train_stage1(model, args.work or scratch, stage)
    model.eval()
    captions = []
    for seed in split_seeds("test", args.frames):
        frame, truth, scene = caption_sample(seed, "test")
        embeds, _ = prompt_embeds(model, Example(frame[None], [0.0], CAPTION_QUESTION, truth))
        captions.append((greedy_answer(model, embeds, 30), truth, scene))
    table = Table(
        title=f"stage 1 of {args.compressor}: {args.steps} steps x {args.batch}, lr {args.lr:g}, "
        f"last 10 losses {sum(result.losses[-10:]) / len(result.losses[-10:]):.3f}; "
        f"{args.frames} held-out frames",
        title_justify="left",
    )
    for column in ("part", "correct", "of", "accuracy"):
        table.add_column(column, justify="left" if column == "part" else "right")
    for part, (correct, asked) in score(captions).items():
        table.add_row(part, str(correct), str(asked), f"{correct / asked:.0%}" if asked else "-")
    console = Console()
    console.print(table)
    for out, truth, _ in captions[:5]:
        console.print(f"{truth!r} -> {out!r}", highlight=False)


if __name__ == "__main__":
    main()
