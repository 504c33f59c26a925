"""Where longvid-mini's V-NIAH breaks: the haystack's length or its content (issue 9, point 4).

`benchmarks/mini.py` builds each V-NIAH haystack from the first N frames of the test split's
footage (`longvid.train.render.Backgrounds`: 16 frames from each source clip in turn), so a
longer haystack is also a haystack of *other* footage. This script separates the two. Each row
is one haystack, scored at the same frame counts, depths and needle words as bench-mini
(`longvid.bench.mini_eval.MiniVNIAH`, teacher-forced):

* ``footage``: the first N frames (bench-mini's haystack);
* ``<source>``: the 16 frames of one source clip, looped to N (that footage alone, any length);
* ``black``: N black frames (length with nothing to read);
* ``<source>:<variant>`` (only when named in ``--rows``): what about a clip is misread,
  ``one``/``two`` its first frame(s) then black frames, ``grey`` greyscale, ``bgr`` colour
  channels reversed, ``mirror`` mirrored left to right, ``dark`` at half brightness.

If a row stays high at every length while ``footage`` falls, length is not what breaks
transfer. Each cell is the share of (word, depth) needles found; for the longest haystack the
needles found at each depth, and for the missed ones the first token the model put in the
word's place (the most frequent first). The model's section ``## V-NIAH haystack: length or
content, MODEL (benchmarks/vniah_haystack.py)`` of docs/benchmarks.md is replaced unless
``--no-write``.

    python benchmarks/vniah_haystack.py [--model longvid-mini] [--frames 16 32 64 128]
        [--rows footage black win005:one win005:grey]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _docs import write_table_section  # noqa: E402

from longvid.bench.grid import Cell  # noqa: E402
from longvid.bench.mini_eval import NEEDLE_WORDS, MiniVNIAH  # noqa: E402
from longvid.generate import load_model  # noqa: E402
from longvid.train.render import FRAMES_PER_VIDEO, Backgrounds, grey_levels  # noqa: E402

HEADING = "## V-NIAH haystack: length or content, {model} (benchmarks/vniah_haystack.py)"
DEPTHS = (0.0, 0.5, 1.0)


class _WatchedVNIAH(MiniVNIAH):
    """`MiniVNIAH` that keeps each scoring pass's argmax tokens (one pass per needle word, in
    `words` order), to tell what the model put where the word belongs."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.argmax_rows: list[torch.Tensor] = []

    def _forward(self, embeds: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        logits = super()._forward(embeds, positions)
        self.argmax_rows.append(logits[0].argmax(-1))
        return logits


def haystacks(count: int) -> dict[str, np.ndarray]:
    """Every row's haystack of ``count`` frames, from the test split's footage."""
    footage = Backgrounds.load("test")
    rows = {"footage": footage.frames[np.arange(count) % len(footage.frames)]}
    for k, source in enumerate(footage.sources):
        clip = footage.frames[k * FRAMES_PER_VIDEO : (k + 1) * FRAMES_PER_VIDEO]
        rows[Path(source).stem] = clip[np.arange(count) % len(clip)]
    rows["black"] = np.zeros_like(rows["footage"])
    return rows


def _grey(clip: np.ndarray) -> np.ndarray:
    return np.repeat(grey_levels(clip)[..., None], 3, axis=-1).round().astype(np.uint8)


def _leading(clip: np.ndarray, kept: int) -> np.ndarray:
    out = np.zeros_like(clip)
    out[:kept] = clip[:kept]
    return out


#: Probes of one clip's looped haystack, named ``<source>:<variant>`` in ``--rows``.
VARIANTS = {
    "one": lambda clip: _leading(clip, 1),
    "two": lambda clip: _leading(clip, 2),
    "grey": _grey,
    "bgr": lambda clip: np.ascontiguousarray(clip[..., ::-1]),
    "mirror": lambda clip: np.ascontiguousarray(clip[:, :, ::-1]),
    "dark": lambda clip: clip // 2,
}


def variant_rows(names: list[str], base: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The ``<source>:<variant>`` haystacks among ``names``, made from ``base``'s rows."""
    rows = {}
    for name in names:
        source, _, kind = name.partition(":")
        if kind and source in base and kind in VARIANTS:
            rows[name] = VARIANTS[kind](base[source])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="longvid-mini")
    parser.add_argument("--frames", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument(
        "--rows", nargs="+", default=None, help="Haystacks to score (default: every one)."
    )
    parser.add_argument("--no-write", action="store_true", help="Leave docs/benchmarks.md.")
    args = parser.parse_args(argv)
    console = Console()
    frames = sorted(set(args.frames))
    every = haystacks(max(frames))
    every |= variant_rows(args.rows or [], every)
    unknown = sorted(set(args.rows or []) - set(every))
    if unknown:
        parser.error(
            f"unknown haystacks {unknown} (known: {', '.join(every)}, and "
            f"<source>:<variant> with a variant of {', '.join(VARIANTS)})"
        )
    model = load_model(args.model)
    words = list(NEEDLE_WORDS)
    longest = frames[-1]
    columns = [
        "haystack",
        *(f"{n} frames" for n in frames),
        f"found at {longest} by depth ({' / '.join(map(str, DEPTHS))})",
        f"said at {longest} (missed)",
    ]
    rows: list[list[str]] = []
    for name, haystack in every.items():
        if args.rows and name not in args.rows:
            continue
        task = _WatchedVNIAH(model, frames, list(DEPTHS), words=words, haystack=haystack)
        row = [name]
        missed: Counter[str] = Counter()
        by_depth: list[int] = []
        for n in frames:
            hits = []
            for depth in DEPTHS:
                task.argmax_rows.clear()
                found = task.score(Cell(n, depth))["needles"]
                if n == longest:
                    by_depth.append(sum(found.values()))
                for word, argmax in zip(words, task.argmax_rows, strict=True):
                    hits.append(found[word])
                    if n == longest and not found[word]:
                        size = len(model.tokenizer(word, add_special_tokens=False)["input_ids"])
                        said = model.tokenizer.decode([int(argmax[-size - 1])]).strip()
                        missed[said or "(blank)"] += 1
            row.append(f"{np.mean(hits):.0%} ({sum(hits)}/{len(hits)})")
        row.append(" / ".join(f"{k}/{len(words)}" for k in by_depth))
        row.append(", ".join(f"{w} x{c}" for w, c in missed.most_common(3)) or "-")
        rows.append(row)
        console.print(" | ".join(row))
    table = Table(title=f"V-NIAH haystack: length or content ({args.model})")
    for c in columns:
        table.add_column(c)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    if not args.no_write:
        command = "python benchmarks/vniah_haystack.py " + " ".join(argv or sys.argv[1:])
        text = (
            f"{args.model}, needle words {', '.join(words)} at depths "
            f"{', '.join(map(str, DEPTHS))}; teacher-forced as in bench-mini. Rows: `footage` is "
            "bench-mini's haystack (the first N test-footage frames, 16 per source clip in turn); "
            "a source's name is that clip's 16 frames looped to N; `black` is N black frames; "
            "`<source>:<variant>` is a probe of that row (the script's docstring). "
            "Each cell: needles found (of words x depths)."
        )
        write_table_section(HEADING.format(model=args.model), command.strip(), text, columns, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
