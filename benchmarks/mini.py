"""longvid-mini's measured targets (issue 9, `make bench-mini`).

For each shipped longvid-mini compressor whose weights are in ``models/longvid-mini/``
(`longvid.models.registry.SHIPPED_MODELS`):

* held-out QA (`longvid.bench.mini_eval.evaluate_qa`): the test split's procedural questions,
  every kind, multiple-choice and open, with the text channels off (frames only) and on
  (subtitles + OCR of the on-screen text), beside chance and the text-only baseline (the same
  LLM and LoRA, the same prompt with zero visual tokens); the "what" (which word) accuracy is
  the issue's target (>= 90%);
* V-NIAH (`longvid.bench.mini_eval.MiniVNIAH`): word-card needles in the test split's real
  footage, from 8 frames up to what fits the 8K context, at several depths, scored
  teacher-forced, once per RoPE base factor (1 = as trained; more: LongVA's base extension);
  a heatmap per compressor and factor goes under docs/;
* a summary per compressor: visual tokens per frame, accuracy, the mean prefill time of the
  16-frame QA prompts and the process's peak resident memory so far (a high-water mark over the
  whole run, so it only grows from one compressor to the next).

Tables are printed with rich; the section ``## longvid-mini (make bench-mini)`` of
docs/benchmarks.md is replaced (others kept). ``--untrained`` measures the untrained students
instead (real SmolLM2, random tower and projector): near-chance numbers that check the harness.

    python benchmarks/mini.py [--quick] [--n-per-kind 5] [--compressors longva ppllava]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
from datetime import date
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _docs import write_section  # noqa: E402

from longvid.bench import mini_eval  # noqa: E402
from longvid.bench.grid import load_results, run_grid, summary_table, write_heatmap  # noqa: E402
from longvid.models.registry import MINI_DIR, SHIPPED_MODELS  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCS_FILE = REPO_ROOT / "docs" / "benchmarks.md"
WORK = REPO_ROOT / "build" / "bench-mini"
HEADING = "## longvid-mini (make bench-mini)"
NAMES = {compressor: name for name, compressor in SHIPPED_MODELS.items()}


def available() -> list[str]:
    """The compressors whose trained weights are in ``models/longvid-mini/``."""
    return [c for c in NAMES if (MINI_DIR / c / "config.json").is_file()]


def load(compressor: str, untrained: bool) -> Any:
    """The shipped model of ``compressor``, or its untrained student."""
    if untrained:
        from longvid.train.mini import build_student

        torch.manual_seed(0)
        return build_student(compressor).eval()
    from longvid.generate import load_model

    return load_model(NAMES[compressor])


def tokens_per_frame(model: Any, frames: int = 16) -> float:
    """Mean visual tokens per frame the compressor gives for ``frames`` frames."""
    import numpy as np

    width = model.vision_tower.config.hidden_size
    probe = torch.zeros(frames, model.tokens_per_image, width, device=model.device)
    with torch.no_grad():
        out = model.compressor(
            probe,
            projector=model.project,
            frame_times=np.arange(frames, dtype=np.float64),
            question=mini_eval.NEEDLE_QUESTION,
        )
    return float(np.mean(out.tokens_per_frame))


def peak_rss_mb() -> float:
    """The process's peak resident set so far, MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_vniah(
    model: Any, compressor: str, args: argparse.Namespace, console: Console
) -> dict[float, dict[str, Any]]:
    """The V-NIAH grid once per RoPE factor: records, average and heatmap path of each."""
    frames = args.vniah_frames or mini_eval.vniah_frames(model, sizes=args.vniah_sizes)
    results = {}
    for factor in args.rope_factors:
        task = mini_eval.MiniVNIAH(
            model,
            frames=frames,
            depths=args.depths,
            words=mini_eval.NEEDLE_WORDS[: args.needles],
            rope_factor=factor,
        )
        out = vniah_records(compressor, factor)
        out.unlink(missing_ok=True)  # fresh: the weights may have changed since the last run
        records = run_grid(task, out)
        suffix = "" if factor == 1 else f"_rope{factor:g}"
        png = REPO_ROOT / "docs" / f"vniah_{NAMES[compressor]}{suffix}.png"
        title = vniah_title(compressor, factor)
        table = summary_table(records, title=title)
        console.print(table)
        if not args.no_write:
            write_heatmap(records, png, title=title)
        results[factor] = {"records": records, "average": table.average, "png": png}
    return results


def qa_table(compressor: str, off: Any, on: Any) -> Table:
    """Per kind and form: the model with channels off and on, text-only and chance."""
    table = Table(title=f"Held-out QA, {NAMES[compressor]} (test split)")
    for col in ("kind", "form", "n", "frames", "frames+text", "text-only", "chance"):
        table.add_column(col, justify="left" if col in ("kind", "form") else "right")
    for row in qa_rows(off, on):
        table.add_row(*row)
    return table


def qa_rows(off: Any, on: Any) -> list[list[str]]:
    """The cells of `qa_table` (also the markdown's)."""
    on_rows = {(r["kind"], r["form"]): r for r in on.rows()}
    rows = []
    for r in off.rows():
        other = on_rows.get((r["kind"], r["form"]))
        rows.append(
            [
                r["kind"],
                r["form"],
                str(r["n"]),
                f"{r['model']:.0%}",
                "-" if other is None else f"{other['model']:.0%}",
                f"{r['text_only']:.0%}",
                f"{r['chance']:.0%}",
            ]
        )
    for key, r in on_rows.items():  # subtitle questions: channels on only
        if key[0] == "subtitle":
            rows.append([*key, str(r["n"]), "-", f"{r['model']:.0%}", f"{r['text_only']:.0%}", "-"])
    return rows


ROW_FILE = "row.json"


def vniah_records(compressor: str, factor: float) -> Path:
    """Where the V-NIAH grid records of ``compressor`` at RoPE base ``factor`` are kept."""
    return WORK / compressor / f"vniah_rope{factor:g}.jsonl"


def vniah_title(compressor: str, factor: float) -> str:
    """The title of that grid's table and heatmap."""
    return f"V-NIAH {NAMES[compressor]} (RoPE base x{factor:g})"


def save_row(row: dict[str, Any]) -> dict[str, Any]:
    """Keep one compressor's figures, so ``--reuse`` can report them without rerunning."""
    folder = WORK / row["compressor"]
    folder.mkdir(parents=True, exist_ok=True)
    data = {
        **row,
        "vniah": {str(f): v for f, v in row["vniah"].items()},
        "vniah_png": {str(f): str(p) for f, p in row["vniah_png"].items()},
    }
    (folder / ROW_FILE).write_text(json.dumps(data, indent=2) + "\n")
    return row


def load_row(compressor: str, redraw: bool) -> dict[str, Any]:
    """The figures `save_row` kept for ``compressor``; ``redraw`` draws its V-NIAH heatmaps
    again from the grid records kept beside them (a run with ``--no-write`` drew none)."""
    data = json.loads((WORK / compressor / ROW_FILE).read_text())
    data["vniah"] = {float(f): v for f, v in data["vniah"].items()}
    data["vniah_png"] = {float(f): Path(p) for f, p in data["vniah_png"].items()}
    for factor, png in data["vniah_png"].items() if redraw else ():
        records = load_results(vniah_records(compressor, factor))
        write_heatmap(records, png, title=vniah_title(compressor, factor))
    return data


def measure(compressor: str, args: argparse.Namespace, console: Console) -> dict[str, Any]:
    """Everything bench-mini reports for one compressor."""
    console.rule(f"{NAMES[compressor]} ({compressor})")
    model = load(compressor, args.untrained)
    common = {"n_per_kind": args.n_per_kind, "n_frames": args.qa_frames, "seed": args.seed}
    common["mc_scoring"] = args.mc_scoring
    off = mini_eval.evaluate_qa(model, text_channels=False, **common)
    on = mini_eval.evaluate_qa(model, text_channels=True, **common)
    console.print(qa_table(compressor, off, on))
    common["mc_scoring"] = other_scoring(args.mc_scoring)
    what_other = mini_eval.evaluate_qa(model, text_channels=False, kinds=["what"], **common)
    vniah = run_vniah(model, compressor, args, console)
    return {
        "compressor": compressor,
        "name": NAMES[compressor],
        "trained": bool(model.config.trained),
        "tokens_per_frame": tokens_per_frame(model),
        "qa_off": off.accuracy(),
        "qa_on": on.accuracy(),
        "what": off.what,
        "what_on": on.what,
        "mc_scoring": args.mc_scoring,
        "what_other": what_other.what,
        "text_only": off.accuracy("text_only"),
        "chance": off.accuracy("chance"),
        "vniah": {f: v["average"] for f, v in vniah.items()},
        "vniah_png": {f: v["png"] for f, v in vniah.items()},
        "vniah_frames": sorted({r["frames"] for r in vniah[args.rope_factors[0]]["records"]}),
        "vniah_depths": list(args.depths),
        "vniah_needles": list(mini_eval.NEEDLE_WORDS[: args.needles]),
        "n_per_kind": args.n_per_kind,
        "prefill_s": off.mean_prefill_s,
        "peak_rss_mb": peak_rss_mb(),
        "qa_rows": qa_rows(off, on),
        "measured": date.today().isoformat(),
        "threads": torch.get_num_threads(),
    }


def other_scoring(mc_scoring: str) -> str:
    """The multiple-choice scoring a run reports beside its own, for the "what" questions."""
    return "letter" if mc_scoring == "options" else "options"


def summary(rows: list[dict[str, Any]], factors: list[float], mc_scoring: str) -> Table:
    """One row per compressor: tokens, accuracy, V-NIAH, prefill and memory."""
    table = Table(title="longvid-mini: measured targets")
    cols = _summary_header(factors, mc_scoring)
    for col in cols:
        table.add_column(col, justify="left" if col == "model" else "right")
    for r in rows:
        table.add_row(*summary_cells(r, factors))
    return table


def summary_cells(r: dict[str, Any], factors: list[float]) -> list[str]:
    """The cells of one `summary` row (also the markdown's)."""
    return [
        r["name"] + ("" if r["trained"] else " (untrained)"),
        f"{r['tokens_per_frame']:.1f}",
        f"{r['qa_off']:.1%}",
        f"{r['qa_on']:.1%}",
        f"{r['what']:.1%}",
        f"{r['what_other']:.1%}",
        f"{r['text_only']:.1%}",
        f"{r['chance']:.1%}",
        *[f"{r['vniah'][f]:.1%}" if f in r["vniah"] else "-" for f in factors],
        f"{r['prefill_s']:.3f}",
        f"{r['peak_rss_mb']:.0f}",
    ]


def markdown(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    """The docs section."""
    factors = args.rope_factors
    cpu = platform.processor() or platform.machine()
    lines = [
        HEADING,
        "",
        f"Run on {date.today().isoformat()}; {cpu}, torch {torch.__version__} (CPU; when "
        "each model was measured, and on how many threads, is under it: a model's prefill "
        "time compares with another's only at the same). Held-out QA: test-split questions "
        f"(how many per kind and form: under each model), {args.qa_frames} frames, greedy "
        "answers from the training prompt, normalised exact match; multiple choice "
        + (
            "by options (the cloze form: the question asked open, each option scored as the "
            "whole answer, the likeliest taken)"
            if args.mc_scoring == "options"
            else "by letter (the option letter decoded from the lettered prompt)"
        )
        + ". `QA frames`: "
        "text channels off (no subtitle questions); `QA +text`: subtitles and OCR of the "
        'on-screen text on; `"what"`: which-word questions, channels off (target >= 90%), '
        f"the second such column with multiple choice by {other_scoring(args.mc_scoring)}; "
        "text-only: the same LLM and LoRA with zero visual tokens; chance: 1/options "
        "(0 for open answers). V-NIAH: word cards in the test split's footage, "
        "needle words, frame counts and depths under each model, teacher-forced, mean over "
        "the grid, per RoPE base factor. Prefill: mean seconds of "
        "the forward pass over a QA prompt that was decoded from (channels off; the open "
        "questions only when multiple choice is scored by options). Peak RSS: the process's "
        "high-water "
        "mark after that model's run (cumulative over the run).",
        "",
        "| " + " | ".join(_summary_header(factors, args.mc_scoring)) + " |",
        "|---|" + "---:|" * (len(_summary_header(factors, args.mc_scoring)) - 1),
    ]
    lines += ["| " + " | ".join(summary_cells(r, factors)) + " |" for r in rows]
    for r in rows:
        lines += [
            "",
            f"### {r['name']}",
            "",
            (
                f"Measured on {r['measured']} with {r['threads']} torch thread(s). "
                if "threads" in r
                else ""
            )
            + f"{r['n_per_kind']} questions per kind and form. V-NIAH frames: "
            f"{', '.join(map(str, r['vniah_frames']))}; depths: "
            f"{', '.join(f'{d:g}' for d in r.get('vniah_depths', args.depths))}"
            + (f"; needles: {', '.join(r['vniah_needles'])}." if "vniah_needles" in r else "."),
            "",
            "| kind | form | n | frames | frames+text | text-only | chance |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        lines += ["| " + " | ".join(cells) + " |" for cells in r["qa_rows"]]
        lines.append("")
        for f, png in r["vniah_png"].items():
            rel = png.relative_to(REPO_ROOT / "docs")
            lines.append(f"![V-NIAH {r['name']} RoPE x{f:g}]({rel})")
    if any(not r["trained"] for r in rows):
        lines += ["", "Untrained students (random tower and projector): chance-level by design."]
    return "\n".join(lines) + "\n"


def _summary_header(factors: list[float], mc_scoring: str) -> list[str]:
    return [
        "model",
        "tokens/frame",
        "QA frames",
        "QA +text",
        f'"what", mc by {mc_scoring}',
        f'"what", mc by {other_scoring(mc_scoring)}',
        "text-only",
        "chance",
        *[f"V-NIAH RoPE x{f:g}" for f in factors],
        "prefill s",
        "peak RSS MB",
    ]


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compressors", nargs="+", choices=list(NAMES), default=None)
    parser.add_argument("--n-per-kind", type=int, default=5)
    parser.add_argument("--qa-frames", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--mc-scoring",
        choices=mini_eval.MC_SCORING,
        default="options",
        help="how multiple choice is answered (the other way is reported for 'what' too)",
    )
    parser.add_argument(
        "--vniah-frames", type=_ints, default=None, help="e.g. 8,64,192 (default: auto)"
    )
    parser.add_argument(
        "--vniah-sizes",
        type=_ints,
        default=list(mini_eval.VNIAH_SIZES),
        help="frame counts below the most that fit, which the auto grid ends with",
    )
    parser.add_argument("--depths", type=_floats, default=[0.0, 0.5, 1.0])
    parser.add_argument("--needles", type=int, default=2, choices=[1, 2, 3])
    parser.add_argument("--rope-factors", type=_floats, default=[1.0, 4.0])
    parser.add_argument(
        "--quick", action="store_true", help="2 questions per kind, a 2x2 V-NIAH grid, 1 needle"
    )
    parser.add_argument("--untrained", action="store_true", help="the untrained students")
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="take a compressor's figures from its last run (build/bench-mini/<c>/row.json) "
        "instead of measuring it again, so one table can gather runs made at different times",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.n_per_kind = min(args.n_per_kind, 2)
        args.vniah_frames = args.vniah_frames or [8, 64]
        args.depths = [0.0, 1.0]
        args.needles = 1
    console = Console(width=max(Console().width, 130))
    compressors = args.compressors or (list(NAMES) if args.untrained else available())
    missing = [c for c in compressors if not args.untrained and c not in available()]
    if missing or not compressors:
        console.print(
            f"no trained weights for {', '.join(missing) or 'any compressor'} in {MINI_DIR}: "
            "`make train-mini` trains them (or pass --untrained)"
        )
        return 1
    rows = [
        load_row(c, redraw=not args.no_write)
        if args.reuse and (WORK / c / ROW_FILE).is_file()
        else save_row(measure(c, args, console))
        for c in compressors
    ]
    mixed = [r["name"] for r in rows if r.get("mc_scoring", "letter") != args.mc_scoring]
    if mixed:
        console.print(
            f"--reuse: {', '.join(mixed)} was measured with multiple choice scored otherwise "
            f"than --mc-scoring {args.mc_scoring}: measure it again or pass its scoring"
        )
        return 1
    console.print(summary(rows, args.rope_factors, args.mc_scoring))
    if not args.no_write:
        write_section(markdown(rows, args), HEADING, DOCS_FILE)
        console.print(f"written to {DOCS_FILE.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
