"""Which from-scratch vision tower learns to read card words on two CPU cores?

longvid-mini's tower must read the word on a card (`longvid.train.render`) or no which-word
question can be answered from frames. This benchmark trains each candidate tower, from random
weights, on the same stream of rendered frames with the same plain supervised objective (a linear
classifier over the mean of its patch tokens, cross-entropy over the 32 `WORDS`), and reports the
word accuracy on held-out frames over the *test* footage at several points, in one run:

* ``resnet``: `registry.MINI_TOWER`, the transformers ResNet longvid-mini ships (1.5M params);
* ``vit``: a CLIP ViT of the same budget and token grid (width 192, 4 layers, 16-px patches at
  128 px: 2.0M params), longvid-mini's first tower.

The supervised objective isolates the architecture: the tower's own recipe
(`longvid.train.vision`) adds captions and the other attributes on top.

    python benchmarks/tower_arch.py [--steps 400] [--batch 64] [--eval-every 100]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

from longvid.encoders.anyres import CLIP_MEAN, CLIP_STD
from longvid.models.registry import MINI_TOWER
from longvid.train.render import WORDS, Backgrounds
from longvid.train.vision import build_tower, held_out_scenes, rendered_batch, to_pixels

VIT = {
    "model_type": "clip_vision_model",
    "hidden_size": 192,
    "intermediate_size": 768,
    "num_hidden_layers": 4,
    "num_attention_heads": 3,
    "image_size": 128,
    "patch_size": 16,
}
CANDIDATES = {"resnet": MINI_TOWER, "vit": VIT}


def held_out(n: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` frames with a card over the test footage, and their word indices."""
    frames, scenes = held_out_scenes(n, size, seed=5)
    words = torch.tensor([WORDS.index(s.card.word) for s in scenes])
    return to_pixels(frames, CLIP_MEAN, CLIP_STD), words


def train_one(
    name: str, steps: int, batch: int, lr: float, eval_every: int, test: tuple
) -> dict[str, object]:
    """Train candidate ``name`` and return its parameter count, seconds per step and the
    held-out word accuracy after every ``eval_every`` steps."""
    torch.manual_seed(0)
    model = build_tower(CANDIDATES[name])
    size = model.tower.config.image_size
    classifier = torch.nn.Linear(model.tower.config.hidden_size, len(WORDS))
    params = list(model.tower.parameters()) + list(classifier.parameters())
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.05)
    backgrounds = Backgrounds.load("train", size=size)
    pixels, words = test
    accuracy: dict[int, float] = {}
    seconds = 0.0
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / 30)
        frames, scenes = rendered_batch(np.random.default_rng(step), backgrounds, size, batch)
        keep = [i for i, s in enumerate(scenes) if s.card is not None]
        target = torch.tensor([WORDS.index(scenes[i].card.word) for i in keep])
        clock = time.perf_counter()
        model.train()
        logits = classifier(
            model.patch_features(to_pixels(frames[keep], CLIP_MEAN, CLIP_STD)).mean(1)
        )
        loss = F.cross_entropy(logits, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seconds += time.perf_counter() - clock
        if (step + 1) % eval_every == 0 or step + 1 == steps:
            model.eval()
            with torch.no_grad():
                guess = classifier(model.patch_features(pixels).mean(1)).argmax(1)
            accuracy[step + 1] = float((guess == words).float().mean())
    return {
        "params": sum(p.numel() for p in model.tower.parameters()),
        "s_per_step": seconds / steps,
        "accuracy": accuracy,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--test-frames", type=int, default=300)
    parser.add_argument("--candidates", nargs="+", choices=list(CANDIDATES), default=None)
    args = parser.parse_args()
    test = held_out(args.test_frames, 128)
    results = {
        name: train_one(name, args.steps, args.batch, args.lr, args.eval_every, test)
        for name in args.candidates or CANDIDATES
    }
    checkpoints = sorted({s for r in results.values() for s in r["accuracy"]})
    table = Table(
        title=f"held-out word accuracy (chance {1 / len(WORDS):.1%}), "
        f"{args.batch} frames/step, lr {args.lr:g}",
        title_justify="left",
    )
    for column in ("tower", "params", "s/step", *(f"step {s}" for s in checkpoints)):
        table.add_column(column, justify="left" if column == "tower" else "right")
    for name, r in results.items():
        table.add_row(
            name,
            f"{r['params'] / 1e6:.2f}M",
            f"{r['s_per_step']:.2f}",
            *(f"{r['accuracy'][s]:.1%}" for s in checkpoints),
        )
    Console().print(table)


if __name__ == "__main__":
    main()
