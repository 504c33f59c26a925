"""The compressor comparison table (issue 8, `make bench-compare`).

Every compressor registered in `longvid.compressors.registry.COMPRESSORS` (LongVA's pooling,
Zhang et al. 2024 §3; LLaMA-VID's context + content tokens, Li et al. 2024 §3.2; PPLLaVA's
prompt-guided pooling, Liu et al. 2024 §3; MiniGPT4-Video's neighbour merge, Ataallah et al.
2024 §3; and ``none``) runs on **the same model** (``tiny-longva``: every compressor builds on
its dims with default parameters, the ones with weights get random ones, seeded), the same
videos, the same questions and the same V-NIAH grid, and is measured for:

* visual tokens per frame (mean over the frames; PPLLaVA pools pairs of frames, so some
  frames carry none) and visual / prompt tokens of the QA clips (mean);
* accuracy on multiple-choice questions about the real footage in ``shared/assets/video``
  (`QUESTIONS`, written for this table; 8 frames at 1 fps; the option whose letter has the
  highest next-token logit after the prompt) and on a small V-NIAH grid
  (`longvid.bench.vniah.VNIAHTask`, rendered needles spliced into the asset haystack,
  teacher-forced scoring as in LongVA);
* prefill time: the language model's forward pass over the assembled QA prompt, median of 3
  (after one warm-up), mean over the clips;
* peak memory: each compressor runs in its own process; the growth of the process's peak
  resident set (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) from after the model and the
  cached features are loaded to after building the compressor (its weights) and every
  compress + prefill of the run. A high-water mark,
  so it is the extra memory the compressor's work needed beyond what loading already touched
  (0 when it fit in it); torch's CPU allocations are invisible to tracemalloc, hence RSS.
  The process's whole peak RSS is reported beside it.

With the tiny *untrained* model the accuracy columns are chance and the table says so; the
token, time and memory columns are real. The section ``## Compressor comparison (make
bench-compare)`` of docs/benchmarks.md is replaced (the others are kept) and the plot of
accuracy against visual tokens per frame goes to docs/compressor_comparison.png.

    python benchmarks/compare.py [--no-write] [--frames 8,16,32] [--depths 0,0.5,1]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _docs  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
ASSETS = REPO_ROOT.parent / "shared" / "assets" / "video"
DOCS_FILE = REPO_ROOT / "docs" / "benchmarks.md"
PLOT_FILE = REPO_ROOT / "docs" / "compressor_comparison.png"
CACHE = REPO_ROOT / "build" / "bench-compare" / "features"
HEADING = "## Compressor comparison (make bench-compare)"
MODEL = "tiny-longva"
QA_FRAMES = 8
LETTERS = "ABCD"

QUESTIONS: list[tuple[str, str, list[str], str]] = [
    # (asset, question, options, answer letter): what is plainly visible in the real footage.
    (
        "oa4_launch.webm",
        "What does the video show?",
        ["A rocket launch", "A cooking show", "A football match", "A cat asleep"],
        "A",
    ),
    (
        "cockatoo.mp4",
        "Which animal is in the video?",
        ["A dog", "A cockatoo", "A horse", "A fish"],
        "B",
    ),
    (
        "cityCC0.mpg",
        "When was this filmed?",
        ["At noon on a beach", "In a snowy forest", "At night in a city", "Underwater"],
        "C",
    ),
    (
        "diver.mov",
        "Where does the video take place?",
        ["In a desert", "On a stage", "In a kitchen", "Underwater"],
        "D",
    ),
    (
        "balle-jbart.mp4",
        "What is thrown in the video?",
        ["A ball", "A paper plane", "A hat", "A shoe"],
        "A",
    ),
]


@dataclass
class Row:
    """One compressor's figures (means over the QA clips where per clip)."""

    compressor: str
    model: str
    tokens_per_frame: float
    visual_tokens: float
    prompt_tokens: float
    qa_accuracy: float
    vniah_accuracy: float
    prefill_ms: float
    peak_kb: float
    peak_rss_mb: float


def _question_text(question: str, options: list[str]) -> str:
    lines = [question] + [f"{LETTERS[i]}. {o}" for i, o in enumerate(options)]
    return "\n".join(lines) + "\nAnswer with the option's letter from the given choices directly."


def _sampler():
    from longvid.io.video import fps

    return fps(1.0, max_frames=QA_FRAMES)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def warm_cache(frames: list[int]) -> None:
    """Encode the QA clips and the V-NIAH haystack once into the feature cache (so no child
    process pays for encoding inside its memory window)."""
    from longvid.bench.vniah import haystack_features
    from longvid.encoders.feature_cache import encode_video
    from longvid.generate import load_model

    model = load_model(MODEL)
    for asset, *_ in QUESTIONS:
        encode_video(model, ASSETS / asset, _sampler(), folder=CACHE)
    haystack_features(model, max(frames), cache_folder=CACHE)


def measure(name: str, frames: list[int], depths: list[float], repeats: int = 3) -> Row:
    """All figures of compressor ``name`` (run in a process of its own for the memory)."""
    import torch

    from longvid.bench.grid import Cell
    from longvid.bench.vniah import VNIAHTask
    from longvid.compressors.registry import build_compressor
    from longvid.encoders.feature_cache import encode_video
    from longvid.generate import load_model
    from longvid.prompting.prompt import assemble, build_video_prompt
    from longvid.prompting.templates import get_template

    torch.set_num_threads(1)
    model = load_model(MODEL)
    clips = [encode_video(model, ASSETS / a, _sampler(), folder=CACHE) for a, *_ in QUESTIONS]
    task = VNIAHTask(model, frames=frames, depths=depths, cache_folder=CACHE)
    task._prepare()  # haystack (cache hit) and needle features, outside the memory window
    template = get_template(model.config.chat_template)
    letter_ids = [
        model.tokenizer(letter, add_special_tokens=False)["input_ids"][0] for letter in LETTERS
    ]
    baseline = _rss_mb()
    # The compressor (and its weights) is built inside the memory window.
    torch.manual_seed(0)
    compressor = build_compressor(name, {}, model.compressor.dims).eval()
    task._compressor = compressor  # V-NIAH runs the same seeded weights as the QA

    per_frame, visual, prompt_tokens, correct, prefill = [], [], [], [], []
    with torch.no_grad():
        for (features, info), (_, question, options, answer) in zip(clips, QUESTIONS, strict=True):
            text = _question_text(question, options)
            compressed = compressor(
                features, projector=model.project, frame_times=info.timestamps, question=text
            )
            prompt = build_video_prompt(
                template, text, info.timestamps.tolist(), compressed.tokens_per_frame
            )
            assembled = assemble(
                prompt,
                model.tokenizer,
                model.embed_tokens,
                compressed.tokens.to(model.dtype),
                model.config.context_length,
                info.path,
            )
            times = []
            for k in range(repeats + 1):
                clock = time.perf_counter()
                logits = model.language_model(
                    inputs_embeds=assembled.inputs_embeds,
                    attention_mask=assembled.attention_mask,
                ).logits
                if k:  # the first pass is a warm-up
                    times.append(time.perf_counter() - clock)
            prefill.append(statistics.median(times))
            choice = int(logits[0, -1, letter_ids].argmax())
            correct.append(LETTERS[choice] == answer)
            per_frame.append(sum(compressed.tokens_per_frame) / len(compressed.tokens_per_frame))
            visual.append(assembled.visual_token_count)
            prompt_tokens.append(assembled.token_count)
        vniah = [task.score(Cell(f, d))["accuracy"] for f in frames for d in depths]
    return Row(
        compressor=name,
        model=MODEL,
        tokens_per_frame=statistics.mean(per_frame),
        visual_tokens=statistics.mean(visual),
        prompt_tokens=statistics.mean(prompt_tokens),
        qa_accuracy=sum(correct) / len(correct),
        vniah_accuracy=statistics.mean(vniah),
        prefill_ms=1000 * statistics.mean(prefill),
        peak_kb=max(0.0, 1024 * (_rss_mb() - baseline)),
        peak_rss_mb=_rss_mb(),
    )


def markdown(rows: list[Row], frames: list[int], depths: list[float], trained: bool) -> str:
    """The section (heading, how it was measured, table, plot link) for docs/benchmarks.md."""
    import torch

    chance = (
        ""
        if trained
        else (
            f" **The model is `{MODEL}` with random weights: both accuracy columns are chance** "
            f"(QA: 1 in {len(LETTERS)} options over {len(QUESTIONS)} questions; V-NIAH: a "
            "teacher-forced exact answer, near 0). They become meaningful with the trained "
            "default model; the token, time and memory columns are real."
        )
    )
    lines = [
        HEADING,
        "",
        f"Run on {date.today().isoformat()}; {platform.machine()}, {platform.system()}, torch "
        f"{torch.__version__} (CPU, float32, 1 thread), Python {platform.python_version()}. "
        f"Every registered compressor on the same model (`{MODEL}`; default parameters, "
        "weights random and seeded), the same clips and questions (5 multiple-choice questions "
        f"about real footage in `shared/assets/video`, {QA_FRAMES} frames at 1 fps) and the "
        f"same V-NIAH grid (`longvid.bench.vniah`: frames {frames}, depths {depths}, rendered "
        "needles in the asset haystack). Tokens are means over the QA clips; prefill = the "
        "LLM's forward over the QA prompt, median of 3 (after a warm-up), mean over clips; "
        "peak memory growth = growth of the process's peak RSS (`getrusage` ru_maxrss, KiB, "
        "one process per compressor) over building the compressor (its weights) and every "
        "compress + prefill, after the model and the cached features are loaded (0: it all "
        "fit in memory that loading had already touched); process peak RSS = the whole "
        "process, Python, torch and transformers included." + chance,
        "",
        "| compressor | model | visual tokens / frame | visual tokens | prompt tokens "
        "| QA accuracy | V-NIAH accuracy | prefill ms | peak memory growth KiB "
        "| process peak RSS MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.compressor} | {r.model} | {r.tokens_per_frame:.1f} | {r.visual_tokens:.0f} "
            f"| {r.prompt_tokens:.0f} | {r.qa_accuracy:.2f} | {r.vniah_accuracy:.2f} "
            f"| {r.prefill_ms:.2f} | {r.peak_kb:.0f} | {r.peak_rss_mb:.0f} |"
        )
    lines += ["", f"![accuracy vs visual tokens per frame]({PLOT_FILE.name})", ""]
    return "\n".join(lines)


def replace_section(document: str, section: str, heading: str = HEADING) -> str:
    """``document`` with this benchmark's section replaced by ``section`` (others kept)."""
    return _docs.replace_section(document, section, heading)


def plot(rows: list[Row], path: Path, trained: bool) -> None:
    """Accuracy (QA and V-NIAH) against visual tokens per frame, one point per compressor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    xs = [max(r.tokens_per_frame, 0.1) for r in rows]
    ax.scatter(xs, [r.qa_accuracy for r in rows], marker="o", label="QA (5 questions)")
    ax.scatter(xs, [r.vniah_accuracy for r in rows], marker="s", label="V-NIAH grid")
    labels: dict[tuple[float, float], list[str]] = {}
    for x, r in zip(xs, rows, strict=True):  # compressors on the same point share one label
        labels.setdefault((x, r.qa_accuracy), []).append(r.compressor)
    for (x, y), names in labels.items():
        ax.annotate(" / ".join(names), (x, y), textcoords="offset points", xytext=(4, 6))
    ax.set_xscale("log", base=2)
    ax.set_xlabel("visual tokens per frame (mean)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.05, 1.05)
    title = f"Compressors on {MODEL}"
    ax.set_title(title if trained else title + " (untrained: accuracy is chance)")
    ax.legend(loc="upper right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", default="8,16,32", help="V-NIAH frame counts")
    parser.add_argument("--depths", default="0,0.5,1", help="V-NIAH depths")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child: measure one compressor
    parser.add_argument("--json-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    frames = [int(v) for v in _floats(args.frames)]
    depths = _floats(args.depths)

    if args.one:
        row = measure(args.one, frames, depths, args.repeats)
        Path(args.json_out).write_text(json.dumps(asdict(row)))
        return 0

    from rich.console import Console

    from longvid.compressors.registry import COMPRESSORS
    from longvid.generate import load_model

    console = Console()
    console.print(f"warming the feature cache in {CACHE.relative_to(REPO_ROOT)}")
    warm_cache(frames)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in COMPRESSORS:
            out = Path(tmp) / f"{name}.json"
            console.print(f"measuring {name} ...")
            command = [sys.executable, __file__, "--one", name, "--json-out", str(out)]
            command += ["--frames", args.frames, "--depths", args.depths]
            command += ["--repeats", str(args.repeats)]
            subprocess.run(command, check=True)
            rows.append(Row(**json.loads(out.read_text())))
    trained = bool(load_model(MODEL).config.trained)
    section = markdown(rows, frames, depths, trained)
    print(section, flush=True)
    if not args.no_write:
        plot(rows, PLOT_FILE, trained)
        DOCS_FILE.write_text(replace_section(DOCS_FILE.read_text(), section))
        console.print(f"written to {DOCS_FILE.relative_to(REPO_ROOT)} and {PLOT_FILE.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
