"""The ``longvid`` command line: a thin layer over the Python API (typer + rich).

Every command prints a human table by default and machine-readable JSON with ``--json``. Bad
input ends with a one-line error naming the file and the problem (exit code 2), never a
traceback.
"""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from longvid.console import err, fail
from longvid.errors import LongvidError, SamplingError
from longvid.io.video import SAMPLERS, Clip, get_sampler, probe, sample
from longvid.io.video import fps as fps_default
from longvid.viz import format_time, save_contact_sheet

app = typer.Typer(
    help="longvid: understand long videos with multimodal LLMs.",
    no_args_is_help=True,
    add_completion=False,
)
out = Console()


@app.command("probe")
def probe_command(
    video: Annotated[Path, typer.Argument(help="Video file (any container FFmpeg reads).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the fields as JSON.")] = False,
) -> None:
    """Show a video's duration, frame rates, frame count, size, rotation and audio."""
    try:
        info = probe(video)
    except LongvidError as exc:
        fail(exc)
    if as_json:
        print(json.dumps(info.as_dict(), indent=2))
        return
    table = Table(title=str(video), show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value")
    rows = {
        "container": info.container,
        "codec": f"{info.codec} ({info.pix_fmt})",
        "resolution": f"{info.width}x{info.height}"
        + (f", rotated {info.rotation} deg" if info.rotation else ""),
        "duration": f"{format_time(info.duration)} ({info.duration:.3f} s)",
        "frame rate": f"{info.avg_fps:.3f} avg, {info.real_fps:.3f} real",
        "frames": f"{info.frame_count} ({info.frame_count_source})",
        "time base": f"{info.time_base.numerator}/{info.time_base.denominator}",
        "start time": f"{info.start_time:.3f} s",
        "audio": info.audio_codec or "none",
    }
    for name, value in rows.items():
        table.add_row(name, value)
    out.print(table)


def _sampler_args(name: str, **given: object) -> dict[str, object]:
    """Keep the options this sampler takes; refuse ones it does not."""
    if name not in SAMPLERS:
        raise SamplingError(f"unknown sampler {name!r}; known: {', '.join(SAMPLERS)}")
    accepted = inspect.signature(SAMPLERS[name]).parameters
    chosen = {k: v for k, v in given.items() if v is not None}
    stray = [k for k in chosen if k not in accepted]
    if stray:
        flags = ", ".join("--" + k.replace("max_frames", "max") for k in stray)
        raise SamplingError(f"sampler {name!r} does not take {flags}")
    return chosen


def _progress_bar(verb: str) -> Progress:
    """A transient bar on stderr, so ``--json`` output on stdout stays clean."""
    return Progress(
        TextColumn(f"[bold]{verb}[/] {{task.description}}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


def _decode_with_progress(video: Path, sampler_name: str, args: dict, **kw: object) -> Clip:
    with _progress_bar("decoding") as bar:
        task = bar.add_task(video.name, total=None)

        def report(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return sample(video, get_sampler(sampler_name, **args), progress=report, **kw)


@app.command("frames")
def frames_command(
    video: Annotated[Path, typer.Argument(help="Video file.")],
    sampler: Annotated[
        str, typer.Option(help=f"Sampler: {', '.join(SAMPLERS)}.", show_default=True)
    ] = "fps",
    rate: Annotated[float | None, typer.Option(help="Frames per second (fps, window).")] = None,
    max_frames: Annotated[
        int | None, typer.Option("--max", help="Most frames to keep (fps; default 64).")
    ] = None,
    n: Annotated[int | None, typer.Option("--n", help="Number of frames (uniform, ...).")] = None,
    start: Annotated[float | None, typer.Option(help="Window start, seconds.")] = None,
    end: Annotated[float | None, typer.Option(help="Window end, seconds.")] = None,
    interval: Annotated[int | None, typer.Option(help="Frame step (prefix_interval).")] = None,
    size: Annotated[
        int | None, typer.Option(help="Resize on decode: short side in pixels.")
    ] = None,
    fast: Annotated[
        bool, typer.Option("--fast", help="Snap each target to its nearest keyframe.")
    ] = False,
    sheet: Annotated[
        Path | None, typer.Option("--out", help="Write a contact sheet PNG here.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print each frame's index and timestamp as JSON.")
    ] = False,
) -> None:
    """Sample frames with their exact timestamps; optionally draw a contact sheet."""
    try:
        args = _sampler_args(
            sampler,
            rate=rate,
            max_frames=max_frames,
            n=n,
            start=start,
            end=end,
            interval=interval,
        )
        clip = _decode_with_progress(video, sampler, args, size=size, exact=not fast)
        written = save_contact_sheet(clip, sheet) if sheet is not None else None
    except LongvidError as exc:
        fail(exc)
    if as_json:
        payload = {
            "video": str(video),
            "sampler": clip.sampler,
            "exact": not fast,
            "exhausted": clip.exhausted,
            "truncated": clip.truncated,
            "frames": [
                {"index": int(i), "timestamp": float(t)}
                for i, t in zip(clip.indices, clip.timestamps, strict=True)
            ],
            "sheet": str(written) if written else None,
        }
        print(json.dumps(payload, indent=2))
        return
    table = Table(title=f"{video.name}: {clip.sampler}", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("frame", justify="right")
    table.add_column("time", justify="right")
    table.add_column("seconds", justify="right")
    for k, (index, seconds) in enumerate(zip(clip.indices, clip.timestamps, strict=True)):
        table.add_row(str(k), str(int(index)), format_time(float(seconds)), f"{seconds:.3f}")
    out.print(table)
    h, w = clip.frames.shape[1:3] if len(clip) else (0, 0)
    out.print(f"{len(clip)} frames of {w}x{h}")
    if written is not None:
        out.print(f"contact sheet: [bold]{written}[/]")


@app.command("ask")
def ask_command(
    video: Annotated[Path, typer.Argument(help="Video file.")],
    question: Annotated[str, typer.Argument(help="What to ask about the video.")],
    model: Annotated[
        str,
        typer.Option(help="A shipped or registered model name, or a checkpoint directory."),
    ] = "longvid-mini",
    sampler: Annotated[str, typer.Option(help=f"Sampler: {', '.join(SAMPLERS)}.")] = "fps",
    frames: Annotated[
        int, typer.Option(help="Most frames (fps: max_frames; uniform-style samplers: n).")
    ] = 32,
    rate: Annotated[float | None, typer.Option(help="Frames per second (fps).")] = None,
    compressor: Annotated[
        str | None, typer.Option(help="Override the model's compressor (longva, llamavid, ...).")
    ] = None,
    max_new_tokens: Annotated[int, typer.Option(help="Longest answer, in tokens.")] = 64,
    timestamps: Annotated[
        bool | None,
        typer.Option(
            "--timestamps/--no-timestamps",
            help="Put 'frame at 12.5 s:' before each frame (default: as the model was trained).",
        ),
    ] = None,
    drop_frames: Annotated[
        bool,
        typer.Option("--drop-frames", help="Drop frames evenly if the prompt would overflow."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
    relevance_plot: Annotated[
        Path | None,
        typer.Option(
            "--relevance-plot",
            help="Write a PNG of per-frame relevance to the question over time (compressors "
            "that score relevance, e.g. ppllava, llamavid).",
        ),
    ] = None,
    subtitles: Annotated[
        str | None,
        typer.Option(
            help="Subtitle file (srt, vtt, ass, ...) to interleave with the frames, or 'auto' "
            "(the adjacent .srt/.vtt, else speech; needs longvid.io.speech)."
        ),
    ] = None,
    alignment: Annotated[
        str,
        typer.Option(
            help="Frames and subtitle alignment: longvid (default: --sampler, real timestamps) "
            "or a MiniGPT4-Video reference path (minigpt4video-inference, -goldfish, -train, "
            "-eval)."
        ),
    ] = "longvid",
    fit_frames: Annotated[
        bool,
        typer.Option(
            "--fit-frames",
            help="Choose the frame count from the model's context (tokens per frame, prompt, "
            "subtitles, --max-new-tokens) and sample that many uniformly.",
        ),
    ] = False,
    show_prompt: Annotated[
        bool,
        typer.Option("--show-prompt", help="Print the prompt layout (text, frames, subtitles)."),
    ] = False,
    ocr: Annotated[
        bool,
        typer.Option(
            "--ocr/--no-ocr",
            help="Read on-screen text in the sampled frames (OCR) and put each frame's new text "
            "after it, with its time. Speech: --subtitles auto.",
        ),
    ] = False,
    choice: Annotated[
        list[str] | None,
        typer.Option(
            "--choice",
            help="A candidate answer (repeat for each): the answer is the one the model finds "
            "most likely, each scored as the whole answer to the question asked open.",
        ),
    ] = None,
) -> None:
    """Answer a question about a video; shows the frames used and the visual token count."""
    from longvid.generate import generate, load_model

    try:
        sampler_args: dict[str, object] = {"rate": rate} if rate is not None else {}
        if sampler == "fps":
            sampler_args["max_frames"] = frames
        elif "n" in inspect.signature(SAMPLERS.get(sampler, fps_default)).parameters:
            sampler_args["n"] = frames
        chosen = get_sampler(sampler, **_sampler_args(sampler, **sampler_args))
        loaded = load_model(model)
        if not loaded.config.trained and not as_json:
            err.print(
                f"[yellow]note:[/] {model} has untrained (random) weights: its answers are noise"
            )
        stream = None if as_json else (lambda piece: out.print(piece, end="", highlight=False))
        with _progress_bar("encoding") as bar:
            task = bar.add_task(video.name, total=None)

            def report(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)
                if done >= total:
                    bar.stop()  # the answer streams next, on the same terminal

            answer = generate(
                loaded,
                video,
                question,
                chosen,
                max_new_tokens=max_new_tokens,
                timestamps=timestamps,
                fit="drop_frames" if drop_frames else "error",
                compressor=compressor,
                on_text=stream,
                progress=report,
                subtitles=subtitles,
                alignment=alignment,
                fit_frames=fit_frames,
                ocr=ocr,
                choices=choice or None,
            )
        plotted = _write_relevance_plot(answer, relevance_plot, video, question, compressor)
    except LongvidError as exc:
        fail(exc)
    if as_json:
        print(json.dumps(answer.__dict__, indent=2))
        return
    out.print()
    times = ", ".join(format_time(t) for t in answer.timestamps)
    out.print(f"[bold]frames[/] ({len(answer.frames)}): {times}", highlight=False)
    out.print(
        f"[bold]tokens[/]: {answer.visual_tokens} visual, {answer.prompt_tokens} in the prompt, "
        f"{answer.new_tokens} generated"
    )
    if answer.note:
        out.print(f"[yellow]{answer.note}[/]")
    for text, score in zip(choice or [], answer.choice_scores or [], strict=True):
        out.print(f"  log p = {score:8.3f}  {text}", highlight=False, markup=False)
    out.print(f"[bold]channels[/]: {', '.join(answer.channels)}", highlight=False)
    for seconds, channel, text in answer.channel_text:
        out.print(f"  {format_time(seconds)} {channel}: {text}", highlight=False, markup=False)
    if show_prompt and answer.prompt_layout is not None:
        out.print("[bold]prompt layout[/]:")
        out.print(answer.prompt_layout, highlight=False, markup=False)
    if not answer.trained:
        out.print("[yellow]untrained model: the answer above is noise[/]")
    if plotted is not None:
        out.print(f"relevance plot: [bold]{plotted}[/]")


def _write_relevance_plot(
    answer: object, path: Path | None, video: Path, question: str, compressor: str | None
) -> Path | None:
    """Draw ``answer.relevance`` to ``path`` (None: nothing asked); a `ConfigError` when the
    compressor that ran scores no relevance."""
    if path is None:
        return None
    from longvid.errors import ConfigError
    from longvid.viz import plot_relevance_timeline

    relevance = getattr(answer, "relevance", None)
    if relevance is None:
        raise ConfigError(
            f"--relevance-plot: the compressor{' ' + repr(compressor) if compressor else ''} "
            "returned no relevance scores; use a model or --compressor that computes them "
            "(ppllava)",
            video,
        )
    times = getattr(answer, "relevance_times", None) or getattr(answer, "timestamps", [])
    return plot_relevance_timeline(times, relevance, path, title=f"{video.name}: {question}")


@app.command("clip")
def clip_command(
    out_path: Annotated[Path, typer.Argument(help="Where to write the clip (.mp4).")],
    seed: Annotated[int, typer.Option(help="Which clip (deterministic; test-split seeds).")] = 0,
    kind: Annotated[
        str, typer.Option(help="Question kind: what, when, order, count or subtitle.")
    ] = "what",
    multiple_choice: Annotated[
        bool, typer.Option("--multiple-choice", help="Ask with lettered options.")
    ] = False,
    size: Annotated[int, typer.Option(help="Frame side in pixels (square).")] = 256,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print question and answer as JSON.")
    ] = False,
) -> None:
    """Write a procedural clip (rendered cards and shapes over real footage) whose answer is
    known, with its subtitles beside it, and print the question to ask and the answer."""
    from longvid.train.videoqa import QUESTION_KINDS, make_sample, split_seeds, write_clip

    if kind not in QUESTION_KINDS:
        fail(SamplingError(f"unknown question kind {kind!r}; one of {', '.join(QUESTION_KINDS)}"))
    try:
        sample = make_sample(
            split_seeds("test", 1, start=seed)[0],
            "test",
            kind=kind,
            multiple_choice=multiple_choice,
            subtitles=kind == "subtitle",
        )
        path = write_clip(sample, out_path, size=(size, size))
    except LongvidError as exc:
        fail(exc)
    info = {
        "video": str(path),
        "subtitles": str(path.with_suffix(".srt")) if sample.subtitles else None,
        "question": sample.prompt(),
        "answer": sample.answer,
        "duration": sample.duration,
    }
    if as_json:
        print(json.dumps(info, indent=2))
        return
    out.print(f"[bold]clip[/] {path} ({sample.duration:.1f} s)")
    out.print(f"[bold]question[/] {sample.prompt()}")
    out.print(f"[bold]answer[/] {sample.answer}")


@app.command("extract")
def extract_command(
    videos: Annotated[
        str, typer.Option("--videos", help="A folder of videos, a glob pattern or one file.")
    ],
    features_dir: Annotated[Path, typer.Option("--out", help="The feature cache folder to fill.")],
    model: Annotated[
        str, typer.Option(help="A registered model name or a checkpoint directory.")
    ] = "tiny-longva",
    sampler: Annotated[str, typer.Option(help=f"Sampler: {', '.join(SAMPLERS)}.")] = "fps",
    rate: Annotated[float | None, typer.Option(help="Frames per second (fps).")] = 1.0,
    max_frames: Annotated[
        int | None, typer.Option("--max", help="Most frames per video (fps: max_frames).")
    ] = 64,
    n: Annotated[int | None, typer.Option(help="Frames (uniform-style samplers).")] = None,
    address: Annotated[
        str | None, typer.Option(help="A Ray cluster to join (default: a local Ray).")
    ] = None,
    cpus: Annotated[int, typer.Option(help="CPUs of the local Ray.")] = 2,
) -> None:
    """Encode many videos into the feature cache on Ray Data (resumable; bad files are
    reported and skipped)."""
    from longvid.bench.extract import extract_features

    try:
        is_fps = sampler == "fps"
        args = _sampler_args(
            sampler,
            rate=rate if is_fps else None,
            max_frames=max_frames if is_fps else None,
            n=n,
        )
        chosen = get_sampler(sampler, **args)
        with _progress_bar("extracting") as bar:
            task = bar.add_task("videos", total=None)

            def on_result(result, total: int) -> None:
                bar.update(task, advance=1, total=total)
                if result.status == "failed":
                    err.print(f"[red]failed:[/] {result.error}", highlight=False, soft_wrap=True)

            summary = extract_features(
                videos,
                features_dir,
                model=model,
                sampler=chosen,
                address=address,
                num_cpus=cpus,
                on_result=on_result,
            )
    except LongvidError as exc:
        fail(exc)
    out.print(summary.line(), highlight=False)
    if summary.failed:
        raise typer.Exit(code=1)


def _add_bench_app() -> None:
    """``longvid bench vniah|textniah`` (the NIAH grids live in `longvid.bench.cli`)."""
    from longvid.bench.cli import bench_app
    from longvid.bench.qa_cli import register_qa

    register_qa(bench_app)  # ``longvid bench qa`` (video QA, `longvid.bench.qa`)
    app.add_typer(bench_app, name="bench")


_add_bench_app()
from longvid.train.cli import train_app  # noqa: E402  (``longvid train``: longvid-mini's recipe)

app.add_typer(train_app, name="train")


def main() -> None:
    """Entry point for ``python -m longvid``."""
    app(prog_name="longvid")


if __name__ == "__main__":
    sys.exit(main())
