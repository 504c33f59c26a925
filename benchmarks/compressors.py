"""Compressor benchmark: the cost of each visual-token compressor next to the vision encoder.

What it measures
    For each model size and each number of frames N in 8, 32, 128 (CPU, float32, no grad):

    * ``encoder`` -- the vision tower on N preprocessed frames (``hidden_states[-2]``, CLS
      dropped), in chunks of 32 frames as `LongVideoLM.encode_images` runs it.
    * each compressor's ``forward(features, projector=..., frame_times=..., question=...)`` on
      those features: ``none`` (the projector on every patch), ``longva`` (projector + 2x2
      pooling), ``ppllava`` (CLIP alignment, the CLIP text tower on a 248-token question,
      the joint softmax, the projector, the weighted 3-D pooling), and any compressor added
      to `COMPRESSOR_PARAMS` later.

    Times are medians of ``--repeats`` runs (default 3), interleaved: every repeat runs the
    encoder and then every compressor once. Every compressor includes the projector (LLaVA's
    2-layer MLP on every patch), which none of them can skip, so two ratios are printed:
    ``total`` = compressor / encoder, and ``overhead`` = (compressor - none) / encoder, the
    cost the compression method adds on top of projecting the patches. The target of the issue
    (compressor <= 5 % of the encoder) is checked on the overhead, and PASS / FAIL printed.

Sizes
    * ``tiny``: the ``tiny-ppllava`` registry shapes (CLIP 84 px / patch 14, width 32, 3
      layers; LLM width 48; CLIP text width 24).
    * ``medium``: a CLIP-B/16-sized tower at 224 px (width 768, 12 layers, 12 heads: 14x14
      patches), an LLM width of 2048, a CLIP-B-sized text tower (width 512, 12 layers, 8 heads,
      vocabulary 49408) and projection dim 512. Random weights: speed does not depend on them.

How to run
    ``make bench-compressors``, or ``.venv/bin/python benchmarks/compressors.py [--sizes tiny
    medium] [--frames 8 32 128] [--repeats 3] [--threads N] [--clock wall|cpu] [--no-write]``.
    On a machine shared with other work, ``--threads 1 --clock cpu`` times this process's CPU
    time on one thread, which other processes do not inflate. Unless ``--no-write`` is given
    the table replaces the section ``## Compressors (benchmarks/compressors.py)`` of
    ``docs/benchmarks.md`` (other sections are kept).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _docs import write_section  # noqa: E402

from longvid.compressors.registry import ModelDims, build_compressor  # noqa: E402
from longvid.models.modeling import build_projector  # noqa: E402

DOCS_FILE = REPO_ROOT / "docs" / "benchmarks.md"
SECTION_HEADING = "## Compressors (benchmarks/compressors.py)"
TARGET = 0.05
QUESTION = "What does the person put on the table after opening the fridge?"


@dataclass(frozen=True)
class Size:
    """One model size: the vision tower, the LLM width and the PPLLaVA text tower."""

    name: str
    vision: dict
    text_width: int
    ppllava_text: dict
    projection_dim: int


SIZES = {
    "tiny": Size(
        "tiny",
        {
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 3,
            "num_attention_heads": 2,
            "image_size": 84,
            "patch_size": 14,
        },
        48,
        {
            "vocab_size": 258,
            "hidden_size": 24,
            "intermediate_size": 48,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
        },
        16,
    ),
    "medium": Size(
        "medium",
        {
            "hidden_size": 768,
            "intermediate_size": 3072,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "image_size": 224,
            "patch_size": 16,
        },
        2048,
        {
            "vocab_size": 49408,
            "hidden_size": 512,
            "intermediate_size": 2048,
            "num_hidden_layers": 12,
            "num_attention_heads": 8,
        },
        512,
    ),
}


def compressor_params(size: Size) -> dict[str, dict]:
    """Name -> parameters of every compressor timed (add new ones here)."""
    return {
        "none": {},
        "longva": {"stride": 2, "mode": "average"},
        "ppllava": {"text_config": size.ppllava_text, "projection_dim": size.projection_dim},
        "llamavid": _llamavid_params(size),
        "minigpt4video": {},
    }


def _llamavid_params(size: Size) -> dict:
    """LLaMA-VID: a bert-base Q-Former with 32 queries (the released shape) at ``medium``, a
    3-layer 32-wide one with 6 queries (``tiny-llamavid``) at ``tiny``; ``mean``: 2 tokens
    per frame."""
    if size.name == "tiny":
        qformer = {
            "hidden_size": 32,
            "num_hidden_layers": 3,
            "num_attention_heads": 4,
            "intermediate_size": 48,
            "vocab_size": 62,
            "max_position_embeddings": 256,
        }
        return {"num_query": 6, "qformer": qformer, "compress_type": "mean"}
    return {"num_query": 32, "compress_type": "mean"}


def tokens_per_hour(console: Console) -> list[dict]:
    """Visual tokens for one hour of video at 1 fps (3,600 frames) with each compressor, at
    the 24x24 patch grid of CLIP ViT-L/14-336 (LongVA's and PPLLaVA's tower; LLaMA-VID gives 2
    per frame at any grid). Counts depend on the grid, not the widths, so tiny widths are used
    and every compressor really runs on 3,600 frames of random features."""
    size = SIZES["tiny"]
    frames, side, width = 3600, 24, size.vision["hidden_size"]
    dims = ModelDims(width, size.text_width, side)
    projector = build_projector("mlp2x_gelu", width, size.text_width).eval()
    features = torch.randn(frames, side * side, width)
    times = np.arange(frames, dtype=np.float64)
    rows = []
    with torch.no_grad():
        for name, params in compressor_params(size).items():
            comp = build_compressor(name, params, dims).eval()
            out = comp(features, projector=projector, frame_times=times, question=QUESTION)
            count = out.n_tokens
            rows.append({"compressor": name, "tokens": count, "per_frame": count / frames})
    table = Table(title="Visual tokens per hour of video (1 fps, 24x24 patches per frame)")
    for col in ("compressor", "tokens per hour", "tokens per frame"):
        table.add_column(col, justify="left" if col == "compressor" else "right")
    for r in rows:
        table.add_row(r["compressor"], f"{r['tokens']:,}", f"{r['per_frame']:g}")
    console.print(table)
    return rows


def tokens_per_hour_markdown(rows: list[dict]) -> str:
    """The per-hour token table as markdown (appended to this benchmark's docs section)."""
    lines = [
        "Visual tokens for one hour of video at 1 fps (3,600 frames, 24x24 patches per frame as "
        "CLIP ViT-L/14-336 gives; every compressor run on 3,600 frames of random features):",
        "",
        "| compressor | tokens per hour | tokens per frame |",
        "|---|---:|---:|",
    ]
    lines += [f"| {r['compressor']} | {r['tokens']:,} | {r['per_frame']:g} |" for r in rows]
    return "\n".join(lines) + "\n"


CLOCK: list[Callable[[], float]] = [time.perf_counter]
"""The clock `_timed` reads: wall (``perf_counter``) or this process's CPU time
(``process_time``, with ``--clock cpu``: robust to other processes on a shared machine)."""


def _timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[float, Any]:
    """``(seconds, fn(*args, **kwargs))``."""
    start = CLOCK[0]()
    result = fn(*args, **kwargs)
    return CLOCK[0]() - start, result


def _encode(tower: Any, pixels: torch.Tensor) -> torch.Tensor:
    """``hidden_states[-2]`` without CLS, 32 frames at a time (as ``encode_images``)."""
    chunks = []
    for i in range(0, pixels.shape[0], 32):
        out = tower(pixel_values=pixels[i : i + 32], output_hidden_states=True)
        chunks.append(out.hidden_states[-2][:, 1:])
    return torch.cat(chunks)


def run(
    sizes: list[str],
    frame_counts: list[int],
    repeats: int,
    console: Console,
    medium_max_frames: int | None = None,
) -> list[dict]:
    """Time the encoder and every compressor; one row per (size, frames, compressor).
    ``medium_max_frames`` skips the larger frame counts at the non-tiny sizes (a 1024-frame
    CLIP-B encode takes minutes per run on 2 CPU cores)."""
    from transformers import CLIPVisionConfig, CLIPVisionModel

    rows = []
    for size_name in sizes:
        size = SIZES[size_name]
        torch.manual_seed(0)
        tower = CLIPVisionModel(
            CLIPVisionConfig(**size.vision, hidden_act="quick_gelu", layer_norm_eps=1e-5)
        ).eval()
        width = size.vision["hidden_size"]
        side = size.vision["image_size"] // size.vision["patch_size"]
        dims = ModelDims(width, size.text_width, side)
        projector = build_projector("mlp2x_gelu", width, size.text_width).eval()
        compressors = {
            name: build_compressor(name, params, dims).eval()
            for name, params in compressor_params(size).items()
        }
        for n in frame_counts:
            if size_name != "tiny" and medium_max_frames and n > medium_max_frames:
                continue
            pixels = torch.randn(n, 3, size.vision["image_size"], size.vision["image_size"])
            times = np.arange(n, dtype=np.float64) * 0.5
            samples: dict[str, list[float]] = {"encoder": []} | {k: [] for k in compressors}
            tokens: dict[str, int] = {}
            kwargs = {"projector": projector, "frame_times": times, "question": QUESTION}
            with torch.no_grad():
                features = _encode(tower, pixels)  # warm-up (allocator, kernels), not timed
                for comp in compressors.values():
                    comp(features, **kwargs)
                for _ in range(repeats):
                    seconds, features = _timed(_encode, tower, pixels)
                    samples["encoder"].append(seconds)
                    for name, comp in compressors.items():
                        seconds, compressed = _timed(comp, features, **kwargs)
                        samples[name].append(seconds)
                        tokens[name] = compressed.n_tokens
            enc = statistics.median(samples["encoder"])
            base = statistics.median(samples["none"])
            for name in compressors:
                t = statistics.median(samples[name])
                rows.append(
                    {
                        "size": size_name,
                        "frames": n,
                        "compressor": name,
                        "tokens": tokens[name],
                        "encoder_s": enc,
                        "compressor_s": t,
                        "total": t / enc,
                        "overhead": max(t - base, 0.0) / enc,
                    }
                )
            console.print(f"[dim]{size_name} x {n} frames done (encoder {enc:.3f} s)[/]")
    return rows


def _verdict(row: dict) -> str:
    if row["compressor"] == "none":
        return "-"
    return "PASS" if row["overhead"] <= TARGET else "FAIL"


def render(rows: list[dict], console: Console) -> None:
    """Print the rows as a rich table."""
    table = Table(title=f"Compressor vs vision encoder (target overhead <= {TARGET:.0%})")
    for col in (
        "size",
        "frames",
        "compressor",
        "tokens",
        "encoder s",
        "compressor s",
        "total",
        "overhead",
        "target",
    ):
        table.add_column(col, justify="right" if col not in ("size", "compressor") else "left")
    for r in rows:
        table.add_row(
            r["size"],
            str(r["frames"]),
            r["compressor"],
            str(r["tokens"]),
            f"{r['encoder_s']:.4f}",
            f"{r['compressor_s']:.4f}",
            f"{r['total']:.1%}",
            f"{r['overhead']:.1%}",
            _verdict(r),
        )
    console.print(table)


def markdown(rows: list[dict], repeats: int) -> str:
    """The docs section for these rows."""
    cpu = platform.processor() or platform.machine()
    lines = [
        SECTION_HEADING,
        "",
        f"Run on {_dt.date.today().isoformat()}; {cpu}, {os.cpu_count()} cores, "
        f"{platform.system()}; torch {torch.__version__} (CPU, float32, "
        f"{torch.get_num_threads()} threads), Python {platform.python_version()}. "
        f"Clock: {'process CPU time' if CLOCK[0] is time.process_time else 'wall'}. "
        f"Medians of {repeats} runs. `total` = compressor / encoder time; `overhead` = "
        "(compressor - `none`) / encoder time, the cost beyond projecting every patch with the "
        f"MLP, which every compressor includes. Target: overhead <= {TARGET:.0%}.",
        "",
        "| size | frames | compressor | tokens | encoder s | compressor s | total | overhead "
        "| target |",
        "|---|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['size']} | {r['frames']} | {r['compressor']} | {r['tokens']} | "
            f"{r['encoder_s']:.4f} | {r['compressor_s']:.4f} | {r['total']:.1%} | "
            f"{r['overhead']:.1%} | {_verdict(r)} |"
        )
    return "\n".join(lines) + "\n"


def write_docs(section: str, path: Path = DOCS_FILE) -> None:
    """Replace (or append) this benchmark's section of ``docs/benchmarks.md``, keeping the rest."""
    write_section(section, SECTION_HEADING, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--frames", nargs="+", type=int, default=[8, 32, 128, 1024])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--medium-max-frames",
        type=int,
        default=128,
        help="Largest frame count timed at the medium size (0: no limit).",
    )
    parser.add_argument("--no-write", action="store_true", help="Do not update the docs.")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads.")
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="wall time, or process CPU time (for a machine shared with other work; "
        "use with --threads 1).",
    )
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.clock == "cpu":
        CLOCK[0] = time.process_time
    if args.repeats < 3:
        parser.error("--repeats must be at least 3 (medians of >= 3 runs)")
    console = Console(width=max(Console().width, 120))  # the table has 9 columns
    rows = run(args.sizes, args.frames, args.repeats, console, args.medium_max_frames)
    render(rows, console)
    hour_rows = tokens_per_hour(console)
    if not args.no_write:
        write_docs(markdown(rows, args.repeats) + "\n" + tokens_per_hour_markdown(hour_rows))
        console.print(f"written to {DOCS_FILE.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
