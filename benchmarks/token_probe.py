"""How much of a card's word and colours survives into longvid-mini's visual tokens (issue 9).

A linear probe: single rendered frames with a card (`longvid.train.videoqa.caption_sample`;
training seeds and footage to fit, held-out test seeds and footage to score) go through the
model's tower, and a softmax classifier on the flattened features predicts the card's word
(32), card colour (8) and text colour (8). Probed twice per model: the tower's patch tokens
(what the compressor receives) and the tokens the LLM receives (compressor + projector, asked
V-NIAH's question). A probe is a lower bound on what a part carries, but a low figure on
held-out footage says the LLM cannot answer which-word questions better than its input allows.
The section ``## Visual-token probe (benchmarks/token_probe.py)`` of docs/benchmarks.md is
replaced unless ``--no-write``.

    python benchmarks/token_probe.py --models longvid-mini [--train 8000 --test 1000]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _docs import write_table_section  # noqa: E402
from which_word import load  # noqa: E402

from longvid.encoders.anyres import CLIP_MEAN, CLIP_STD  # noqa: E402
from longvid.train.render import COLORS, WORDS  # noqa: E402
from longvid.train.videoqa import NEEDLE_QUESTION, caption_sample, split_seeds  # noqa: E402
from longvid.train.vision import to_pixels  # noqa: E402

HEADING = "## Visual-token probe (benchmarks/token_probe.py)"
ATTRIBUTES = {"word": list(WORDS), "card colour": list(COLORS), "text colour": list(COLORS)}
SEED_START = 5000


Encoders = dict[str, Callable[[Tensor], Tensor]]
"""Named parts of a model, each mapping one frame's pixels to the tokens it hands on."""


def package_encoders(model) -> tuple[Encoders, tuple, tuple]:
    """A longvid package's tower tokens and LLM-input tokens (compressor + projector, asked
    V-NIAH's question), with its image mean and std."""

    def llm_input(pixels: Tensor) -> Tensor:
        tower = model.encode_images(pixels)
        return model.compressor(
            tower, projector=model.project, frame_times=np.zeros(1), question=NEEDLE_QUESTION
        ).tokens

    processing = model.config.image_processing
    parts = {"tower": model.encode_images, "LLM input": llm_input}
    return parts, processing.image_mean, processing.image_std


def tower_encoders(path: str) -> tuple[Encoders, tuple, tuple]:
    """The patch tokens of a bare tower from `longvid train vision` (its tower.safetensors):
    what a compressor would receive, before any stage trained on it."""
    from safetensors.torch import load_file

    from longvid.models.registry import MINI_TOWER
    from longvid.train.vision import build_tower

    tower = build_tower(MINI_TOWER)
    tower.load_state_dict(load_file(path))
    return {"tower": tower.eval().patch_features}, CLIP_MEAN, CLIP_STD


@torch.no_grad()
def features(
    parts: Encoders, mean: tuple, std: tuple, split: str, n: int
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Each part's flattened tokens of the frames with a card among ``n`` seeds of ``split``,
    and their labels per attribute."""
    inputs: dict[str, list[Tensor]] = {part: [] for part in parts}
    labels: dict[str, list[int]] = {name: [] for name in ATTRIBUTES}
    for seed in split_seeds(split, n, start=SEED_START):
        frame, _, scene = caption_sample(seed, split)
        if scene.card is None:
            continue
        pixels = to_pixels(frame[None], mean, std)
        for part, encode in parts.items():
            inputs[part].append(encode(pixels).reshape(-1).float())
        card = scene.card
        values = (card.word, card.card_color, card.text_color)
        for name, value in zip(ATTRIBUTES, values, strict=True):
            labels[name].append(ATTRIBUTES[name].index(value))
    return (
        {k: torch.stack(v) for k, v in inputs.items()},
        {k: torch.tensor(v) for k, v in labels.items()},
    )


def probe(x_fit: Tensor, y_fit: Tensor, x_test: Tensor, y_test: Tensor, classes: int) -> float:
    """Held-out accuracy of a softmax classifier fitted on standardised ``x_fit``."""
    torch.manual_seed(0)
    mean, std = x_fit.mean(0), x_fit.std(0) + 1e-4
    x_fit, x_test = (x_fit - mean) / std, (x_test - mean) / std
    linear = torch.nn.Linear(x_fit.shape[1], classes)
    optimizer = torch.optim.AdamW(linear.parameters(), lr=1e-2, weight_decay=0.1)
    for _ in range(300):
        loss = torch.nn.functional.cross_entropy(linear(x_fit), y_fit)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return float((linear(x_test).argmax(1) == y_test).float().mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=["longvid-mini"])
    parser.add_argument(
        "--towers",
        nargs="*",
        default=[],
        metavar="LABEL=PATH",
        help="Bare towers (tower.safetensors of `longvid train vision`): tower tokens only.",
    )
    parser.add_argument("--train", type=int, default=8000, help="Training seeds drawn.")
    parser.add_argument("--test", type=int, default=1000, help="Test seeds drawn.")
    parser.add_argument("--no-write", action="store_true", help="Leave docs/benchmarks.md.")
    args = parser.parse_args(argv)
    columns = ["model", "tokens", "dims", *ATTRIBUTES]
    table = Table(title="linear probe, held-out frames (test footage)")
    for column in columns:
        table.add_column(column, justify="left" if column in ("model", "tokens") else "right")
    rows = []
    subjects = [
        (spec.split("=")[0], lambda spec=spec: package_encoders(load(spec)[1]))
        for spec in args.models
    ]
    for spec in args.towers:
        label, _, path = spec.rpartition("=")
        subjects.append((label or path, lambda path=path: tower_encoders(path)))
    for label, encoders in subjects:
        parts, mean, std = encoders()
        x_fit, y_fit = features(parts, mean, std, "train", args.train)
        x_test, y_test = features(parts, mean, std, "test", args.test)
        for part in x_fit:
            scores = [
                probe(x_fit[part], y_fit[a], x_test[part], y_test[a], len(values))
                for a, values in ATTRIBUTES.items()
            ]
            dims = str(x_fit[part].shape[1])
            rows.append([label, part, dims, *(f"{100 * s:.1f}%" for s in scores)])
            table.add_row(*rows[-1])
    chance = ["chance", "", "", *(f"{100 / len(v):.1f}%" for v in ATTRIBUTES.values())]
    table.add_row(*chance)
    Console().print(table)
    print(f"frames with a card: fit {len(y_fit['word'])}, held out {len(y_test['word'])}")
    if not args.no_write:
        command = f"python benchmarks/token_probe.py --models {' '.join(args.models)} "
        if args.towers:
            command += f"--towers {' '.join(args.towers)} "
        command += f"--train {args.train} --test {args.test}"
        text = f"A softmax probe fitted on {len(y_fit['word'])} training frames with a card, "
        text += f"scored on {len(y_test['word'])} held-out ones (test seeds over test footage)."
        write_table_section(HEADING, command, text, columns, [*rows, chance], left=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
