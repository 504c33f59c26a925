"""``longvid bench qa``: multiple-choice / open video QA on a local Video-MME-style dataset.

The Video-MME protocol (Fu et al., 2024, sections 3-4) through `longvid.bench.qa`: scores each
question, appends one line per question to ``<out>/qa-<dataset>-<model>-<hash>.jsonl``
(resumable: a rerun skips what is done; Ctrl-C loses nothing scored), writes the summary as
JSON beside it and prints the accuracy table (overall, by duration, by task type).
`register_qa` adds the command to the ``longvid bench`` sub-app.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from longvid.errors import LongvidError

__all__ = ["qa_command", "register_qa"]

_out = Console()
_err = Console(stderr=True)


def qa_command(
    model: Annotated[
        str, typer.Option(help="A registered model name or a checkpoint directory.")
    ] = "tiny-longva",
    data: Annotated[
        str,
        typer.Option(
            help="Dataset file (.json, .jsonl, .parquet); 'sample' is the real-media sample set "
            "that ships with longvid."
        ),
    ] = "sample",
    out: Annotated[Path, typer.Option(help="Folder for the results and the summary.")] = Path(
        "results"
    ),
    assets: Annotated[
        Path | None,
        typer.Option(
            help="Root that '{assets}/...' paths in the dataset resolve against (default: "
            "$LONGVID_ASSETS, else shared/assets beside the checkout)."
        ),
    ] = None,
    compressor: Annotated[
        str | None, typer.Option(help="Override the model's compressor (longva, llamavid, ...).")
    ] = None,
    frames: Annotated[int, typer.Option(help="Frames per video, sampled uniformly.")] = 16,
    subtitles: Annotated[
        bool,
        typer.Option(
            "--subtitles/--no-subtitles",
            help="Interleave each question's subtitle file with the frames (Video-MME 'w/ subs').",
        ),
    ] = False,
    max_new_tokens: Annotated[int, typer.Option(help="Longest answer, in tokens.")] = 16,
    limit: Annotated[int | None, typer.Option(help="Only the first N questions.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Score a model on video QA; resumable results, accuracy by duration and task type."""
    from longvid.bench.qa import (
        SAMPLE_DATASET,
        QASettings,
        load_items,
        model_answerer,
        run_qa,
        summarize,
        summary_table,
    )
    from longvid.generate import load_model

    dataset = SAMPLE_DATASET if data == "sample" else Path(data)
    settings = QASettings(
        model=model,
        compressor=compressor,
        frames=frames,
        subtitles=subtitles,
        max_new_tokens=max_new_tokens,
        extra={"dataset": str(Path(dataset).resolve())},
    )
    results = out / settings.results_name(dataset)
    interrupted = False
    try:
        items = load_items(dataset, assets=assets)
        if limit is not None:
            items = items[: max(0, limit)]
        loaded: list[Any] = []

        def answerer(item: Any, prompt: str) -> str:
            # the model loads on the first question still to score: a finished rerun needs none
            if not loaded:
                lm = load_model(model)
                if not lm.config.trained and not as_json:
                    _err.print(
                        f"[yellow]note:[/] {model} has untrained (random) weights: "
                        "expect chance-level accuracy"
                    )
                loaded.append(model_answerer(lm, settings))
            return loaded[0](item, prompt)

        def show(record: dict[str, Any], resumed: bool) -> None:
            if as_json:
                return
            mark = "[green]right[/]" if record["correct"] else "[red]wrong[/]"
            note = " (resumed)" if resumed else ""
            _err.print(
                f"{record['id']}: {mark} choice={record['choice']} answer={record['answer']}{note}",
                highlight=False,
            )

        try:
            records = run_qa(items, answerer, results, settings=settings, on_record=show)
        except KeyboardInterrupt:
            interrupted = True
            from longvid.bench.qa import ResultsLog

            done = ResultsLog(results).records
            records = [done[i.id] for i in items if i.id in done]
    except LongvidError as exc:
        _err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None
    summary = summarize(records, settings)
    summary["results"] = str(results)
    summary_path = results.with_suffix(".summary.json")
    if records:
        summary_path.parent.mkdir(parents=True, exist_ok=True)
        summary_path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        _out.print(summary_table(summary, title=f"video QA: {model} on {Path(dataset).name}"))
        if summary["unparsed"] or summary["errors"]:
            _out.print(
                f"{summary['unparsed']} answers named no option, {summary['errors']} questions "
                "failed (both counted wrong)"
            )
        _out.print(f"results: {results}\nsummary: {summary_path}", highlight=False)
    if interrupted:
        _err.print(
            f"[bold yellow]interrupted:[/] {len(records)} of {len(items)} questions saved in "
            f"{results}; rerun the same command to finish"
        )
        raise typer.Exit(code=130)


def register_qa(bench_app: typer.Typer) -> None:
    """Add ``qa`` to the ``longvid bench`` sub-app (once)."""
    names = {getattr(c, "name", None) for c in bench_app.registered_commands}
    if "qa" not in names:
        bench_app.command("qa")(qa_command)
