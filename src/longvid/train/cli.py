"""``longvid train``: build longvid-mini from the command line.

Three commands over the recipe of `longvid.train`: ``vision`` trains the contrastive vision
tower (locked-text tuning against MiniLM, `longvid.train.vision`, after Zhai et al., "LiT",
CVPR 2022) and reports its zero-shot retrieval; ``compressor`` trains one compressor's projector
and LoRA adapter on SmolLM2 (LLaVA's two stages, Liu et al. 2023, section 4.2,
`longvid.train.mini`); ``mini`` runs the whole recipe into ``build/longvid-mini`` (what
``make train-mini`` does; the shipped ``models/longvid-mini`` is left alone); ``continue``
runs stage 3 on a finished package (how the shipped longvid-mini got its stage 3 on a GPU).
Defaults come from `longvid.train.mini.RECIPE`, stage 3 sized to the machine
(`longvid.train.mini.recipe_stage`).

Every part resumes: the training loop restarts from its last checkpoint in the work folder, and
``mini`` skips the parts already finished (the tower when ``tower.safetensors`` and
``retrieval.json`` are there, a compressor when its package folder holds ``config.json``). A
package is written into a staging folder and renamed when complete, so a folder with
``config.json`` is never half written. Bad input ends with a one-line error (exit code 2).
torch and the models are imported only when a command runs, so ``longvid --help`` stays fast.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from longvid.console import fail
from longvid.errors import ConfigError, InputFileError, LongvidError

if TYPE_CHECKING:
    from longvid.train.mini import StageConfig

__all__ = ["package_staged", "train_app", "train_compressor_package", "train_vision"]

TOWER_FILE = "tower.safetensors"
RETRIEVAL_FILE = "retrieval.json"
TIMINGS_FILE = "timings.json"

train_app = typer.Typer(
    help="Train longvid-mini: its vision tower, then each compressor (resumable).",
    no_args_is_help=True,
    add_completion=False,
)
_out = Console()


# --------------------------------------------------------------------------------------------
# The parts, as plain functions


def train_vision(
    out: Path,
    work: Path,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    background_frames: int,
    photos: bool,
    augment: bool,
    eval_images: int = 400,
) -> dict[str, float]:
    """Train the contrastive tower of `registry.MINI_TOWER` (resuming from ``work``; the
    backgrounds as `vision.train_tower` takes them), save its state dict as
    ``out/tower.safetensors``, evaluate it and write ``out/retrieval.json``. Returns the
    retrieval figures (fractions) with ``chance`` and the training ``seconds``."""
    import torch
    from safetensors.torch import save_file

    from longvid.models import registry
    from longvid.train.vision import build_tower, evaluate_retrieval, train_tower

    if steps < 1 or batch_size < 2 or eval_images < 1:
        raise ConfigError(
            f"need steps >= 1, batch size >= 2 (a contrastive batch) and >= 1 evaluation "
            f"image, got {steps}, {batch_size} and {eval_images}"
        )
    torch.manual_seed(seed)
    model = build_tower(registry.MINI_TOWER)
    result = train_tower(
        model,
        work,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        background_frames=background_frames,
        photos=photos,
        augment=augment,
    )
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(out / f".{TOWER_FILE}.tmp"), metadata={"format": "pt"})
    (out / f".{TOWER_FILE}.tmp").replace(out / TOWER_FILE)
    report = evaluate_retrieval(model, n_images=eval_images)
    figures = {**asdict(report), "chance": report.chance(), "seconds": result.seconds}
    (out / RETRIEVAL_FILE).write_text(json.dumps(figures, indent=2) + "\n")
    return figures


def train_compressor_package(
    compressor: str,
    tower: Path,
    work: Path,
    target: Path,
    stage1: StageConfig,
    stage2: StageConfig,
    stage3: StageConfig | None = None,
) -> Path:
    """`longvid.train.mini.train_compressor` into ``target`` through `package_staged`. The
    package is named as `registry.SHIPPED_MODELS` names it (``longvid-mini`` for LongVA,
    ``longvid-mini-<compressor>`` for the others)."""
    from longvid.models import registry
    from longvid.train import mini

    _check_compressors([compressor])
    if not tower.is_file():
        raise InputFileError("no tower weights here (`longvid train vision` makes them)", tower)
    names = {c: n for n, c in registry.SHIPPED_MODELS.items()}
    name = names.get(compressor, f"longvid-mini-{compressor}")
    return package_staged(
        target,
        lambda staging: mini.train_compressor(
            compressor, tower, work, staging, stage1, stage2, stage3, name=name
        ),
    )


def package_staged(target: Path, write: Callable[[Path], object]) -> Path:
    """Let ``write(staging)`` build a package in a staging folder beside ``target``, then
    rename it to ``target``, so a folder with ``config.json`` is never half written (``target``
    may be the package being trained on: it is read before it is replaced). A ``target`` that
    exists and is not a longvid checkpoint is refused before anything runs."""
    if target.exists() and not (target / "config.json").is_file() and any(target.iterdir()):
        raise ConfigError("exists and is not a longvid checkpoint: choose another --out", target)
    staging = target.parent / f".{target.name}.partial"
    if staging.exists():
        shutil.rmtree(staging)
    write(staging)
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    return target


def _check_compressors(chosen: list[str]) -> None:
    from longvid.models.registry import MINI_COMPRESSORS

    unknown = [c for c in chosen if c not in MINI_COMPRESSORS]
    if unknown or not chosen:
        raise ConfigError(
            f"longvid-mini has no compressor {', '.join(map(repr, unknown)) or '(none given)'} "
            f"(known: {', '.join(MINI_COMPRESSORS)})"
        )


def _stage(name: str, **given: float | bool | None) -> StageConfig:
    """The recipe's config of stage ``name`` for this machine (`recipe_stage`) with the
    options given on the command line."""
    from longvid.train.mini import recipe_stage

    return replace(recipe_stage(name), **{k: v for k, v in given.items() if v is not None})


# --------------------------------------------------------------------------------------------
# Output


def _retrieval_table(figures: dict, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("probe", style="bold")
    table.add_column("accuracy", justify="right")
    table.add_column("chance", justify="right")
    for probe in figures["chance"]:  # every probe has a chance figure
        table.add_row(probe, f"{figures[probe]:.1%}", f"{figures['chance'][probe]:.1%}")
    return table


def _stage_table(work: Path) -> Table:
    """First and last losses of each stage and its training time (the steps' wall time summed
    over every run that resumed it), from the loop's logs."""
    table = Table(title="training loss", title_justify="left")
    for column in ("stage", "steps", "first 10 (mean)", "last 10 (mean)", "minutes"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for stage in ("stage1", "stage2", "stage3"):
        log = work / stage / "log.jsonl"
        rows = [json.loads(x) for x in log.read_text().splitlines()] if log.is_file() else []
        if rows:
            losses = [row["loss"] for row in rows]
            first, last = losses[:10], losses[-10:]
            timed = all("seconds" in row for row in rows)  # logs older than the field: no time
            table.add_row(
                stage,
                str(len(losses)),
                f"{sum(first) / len(first):.3f}",
                f"{sum(last) / len(last):.3f}",
                f"{sum(row['seconds'] for row in rows) / 60:.1f}" if timed else "-",
            )
    return table


def _record_time(out: Path, part: str, seconds: float) -> None:
    """Keep each part's wall time in ``out/timings.json`` (the model card quotes them)."""
    path = out / TIMINGS_FILE
    timings = json.loads(path.read_text()) if path.is_file() else {}
    timings[part] = round(seconds, 1)
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(timings, indent=2) + "\n")


# --------------------------------------------------------------------------------------------
# Commands


@train_app.command("vision")
def vision_command(
    out: Annotated[Path, typer.Option("--out", help="Folder for tower.safetensors etc.")],
    steps: Annotated[int | None, typer.Option("--steps", help="Optimizer steps.")] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Images per contrastive batch.")
    ] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Peak learning rate.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of init and data.")] = None,
    background_frames: Annotated[
        int | None,
        typer.Option("--background-frames", help="Background frames taken from each train clip."),
    ] = None,
    photos: Annotated[
        bool | None,
        typer.Option("--photos/--no-photos", help="Add the asset photos to the backgrounds."),
    ] = None,
    augment: Annotated[
        bool | None,
        typer.Option("--augment/--no-augment", help="Vary each background (colour, mirror)."),
    ] = None,
    eval_images: Annotated[
        int, typer.Option("--eval-images", help="Held-out scenes for the retrieval probes.")
    ] = 400,
) -> None:
    """Train the contrastive vision tower; save it and its zero-shot retrieval accuracy.

    Options not given take the recipe's values; a rerun resumes from the checkpoint in OUT.
    """
    from longvid.train.mini import RECIPE

    recipe = dict(RECIPE["vision"])
    given = {
        "steps": steps,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "background_frames": background_frames,
        "photos": photos,
        "augment": augment,
    }
    recipe.update({k: v for k, v in given.items() if v is not None})
    try:
        figures = train_vision(out, out, eval_images=eval_images, **recipe)
    except LongvidError as exc:
        fail(exc)
    _out.print(_retrieval_table(figures, f"vision tower: {out / TOWER_FILE}"))
    _out.print(f"trained in {figures['seconds']:.0f} s; figures in {out / RETRIEVAL_FILE}")


@train_app.command("compressor")
def compressor_command(
    compressor: Annotated[str, typer.Argument(help="longva, llamavid, ppllava, minigpt4video.")],
    tower: Annotated[Path, typer.Option("--tower", help="tower.safetensors of `vision`.")],
    work: Annotated[Path, typer.Option("--work", help="Checkpoints and logs (resumable).")],
    out: Annotated[Path, typer.Option("--out", help="The packaged checkpoint folder.")],
    stage1_steps: Annotated[int | None, typer.Option("--stage1-steps")] = None,
    stage2_steps: Annotated[int | None, typer.Option("--stage2-steps")] = None,
    stage3_steps: Annotated[
        int | None,
        typer.Option(
            "--stage3-steps",
            help="0 skips stage 3 (default: the recipe's, cut on a machine without a GPU).",
        ),
    ] = None,
    batch: Annotated[int | None, typer.Option("--batch", help="Samples per step.")] = None,
    seed: Annotated[int | None, typer.Option("--seed")] = None,
) -> None:
    """Train one compressor (stage 1 captions, stages 2 and 3 video QA with LoRA) and package
    it.

    Options not given take the recipe's values; a rerun resumes from the checkpoints in WORK.
    """
    clock = time.perf_counter()
    try:
        stage1 = _stage("stage1", steps=stage1_steps, batch=batch, seed=seed)
        stage2 = _stage("stage2", steps=stage2_steps, batch=batch, seed=seed)
        stage3 = _stage("stage3", steps=stage3_steps, batch=batch)
        target = train_compressor_package(compressor, tower, work, out, stage1, stage2, stage3)
    except LongvidError as exc:
        fail(exc)
    _out.print(_stage_table(work))
    _out.print(f"{compressor}: packaged at {target} in {time.perf_counter() - clock:.0f} s")


@train_app.command("mini")
def mini_command(
    work: Annotated[Path, typer.Option("--work", help="Checkpoints and logs (resumable).")],
    out: Annotated[Path, typer.Option("--out", help="Where the models go.")] = Path(
        "build/longvid-mini"
    ),
    compressors: Annotated[
        str | None,
        typer.Option("--compressors", help="Comma-separated, in training order (default: all)."),
    ] = None,
    eval_images: Annotated[
        int, typer.Option("--eval-images", help="Held-out scenes for the retrieval probes.")
    ] = 400,
    stage3_steps: Annotated[
        int | None,
        typer.Option(
            "--stage3-steps",
            help="0 skips stage 3 (default: the recipe's, cut on a machine without a GPU).",
        ),
    ] = None,
) -> None:
    """The whole longvid-mini recipe: the vision tower, then each compressor.

    The tower goes to OUT/tower.safetensors, each compressor to OUT/<compressor>. A rerun skips
    the finished parts and resumes the interrupted one.
    """
    from longvid.models.registry import MINI_COMPRESSORS

    if compressors is None:
        chosen = list(MINI_COMPRESSORS)
    else:
        chosen = [c.strip() for c in compressors.split(",") if c.strip()]
    try:
        _check_compressors(chosen)
        rows = [_vision_part(work, out, eval_images)]
        for compressor in chosen:
            rows.append(_compressor_part(compressor, work, out, stage3_steps))
    except LongvidError as exc:
        fail(exc)
    table = Table(title=f"longvid-mini: {out}", title_justify="left")
    for column in ("part", "status", "seconds", "output"):
        table.add_column(column, justify="right" if column == "seconds" else "left")
    for row in rows:
        table.add_row(*row)
    _out.print(table)


def _vision_part(work: Path, out: Path, eval_images: int) -> tuple[str, str, str, str]:
    if (out / TOWER_FILE).is_file() and (out / RETRIEVAL_FILE).is_file():
        return "vision", "done before", "-", str(out / TOWER_FILE)
    from longvid.train.mini import RECIPE

    clock = time.perf_counter()
    figures = train_vision(out, work / "vision", eval_images=eval_images, **RECIPE["vision"])
    seconds = time.perf_counter() - clock
    _record_time(out, "vision", seconds)
    _out.print(_retrieval_table(figures, "vision tower"))
    return "vision", "trained", f"{seconds:.0f}", str(out / TOWER_FILE)


def _compressor_part(
    compressor: str, work: Path, out: Path, stage3_steps: int | None
) -> tuple[str, str, str, str]:
    target = out / compressor
    if (target / "config.json").is_file():
        return compressor, "done before", "-", str(target)
    clock = time.perf_counter()
    stages = (_stage("stage1"), _stage("stage2"), _stage("stage3", steps=stage3_steps))
    train_compressor_package(compressor, out / TOWER_FILE, work / compressor, target, *stages)
    seconds = time.perf_counter() - clock
    _record_time(out, compressor, seconds)
    _out.print(_stage_table(work / compressor))
    _out.print(f"{compressor}: packaged at {target} in {seconds:.0f} s")
    return compressor, "trained", f"{seconds:.0f}", str(target)


@train_app.command("continue")
def continue_command(
    package: Annotated[Path, typer.Argument(help="A longvid-mini package folder to train on.")],
    work: Annotated[Path, typer.Option("--work", help="Checkpoints and logs (resumable).")],
    out: Annotated[Path, typer.Option("--out", help="The packaged checkpoint folder.")],
    steps: Annotated[int | None, typer.Option("--steps", help="Optimizer steps.")] = None,
    batch: Annotated[int | None, typer.Option("--batch", help="Samples per step.")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Peak learning rate.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Picks the stage's data.")] = None,
    needle_share: Annotated[
        float | None, typer.Option("--needle-share", help="Share of V-NIAH-form needle clips.")
    ] = None,
    what_share: Annotated[
        float | None, typer.Option("--what-share", help="Share of extra which-word questions.")
    ] = None,
    what_screen_share: Annotated[
        float | None,
        typer.Option(
            "--what-screen-share",
            help="Share of the extra which-word questions asked with the on-screen text (OCR) "
            "and subtitle channels on.",
        ),
    ] = None,
    tower_lr_scale: Annotated[
        float | None,
        typer.Option(
            "--tower-lr-scale",
            help="Train the vision tower too, at this fraction of the learning rate (0: frozen).",
        ),
    ] = None,
    position_skip: Annotated[
        int | None,
        typer.Option(
            "--position-skip",
            help="Open a random gap of up to this many positions in each prompt (PoSE).",
        ),
    ] = None,
    varied_haystacks: Annotated[
        bool | None,
        typer.Option(
            "--varied-haystacks/--plain-haystacks",
            help="Needle clips' footage from the vision tower's backgrounds (64 frames a clip, "
            "photos) or 16 frames a clip.",
        ),
    ] = None,
    hard_haystacks: Annotated[
        bool | None,
        typer.Option(
            "--hard-haystacks/--no-hard-haystacks",
            help="Needle clips' footage also from clips the tower never saw (animation, a "
            "graphic on black), colour-varied.",
        ),
    ] = None,
    distractor_haystacks: Annotated[
        bool | None,
        typer.Option(
            "--distractor-haystacks/--no-distractor-haystacks",
            help="A third of needle clips' haystack frames become card-free decoys (coloured "
            "blobs, raised saturation).",
        ),
    ] = None,
) -> None:
    """Stage 3: train a finished package on (fresh video QA, padded batches of 16; sized for a
    GPU) and package the result in OUT (which may be PACKAGE itself: it is replaced only when
    the new package is complete).

    Options not given take the recipe's values; a rerun resumes from the checkpoints in WORK.
    """
    from longvid.train.mini import continue_package

    clock = time.perf_counter()
    try:
        stage = _stage(
            "stage3",
            steps=steps,
            batch=batch,
            lr=lr,
            seed=seed,
            needle_share=needle_share,
            what_share=what_share,
            what_screen_share=what_screen_share,
            tower_lr_scale=tower_lr_scale,
            position_skip=position_skip,
            varied_haystacks=varied_haystacks,
            hard_haystacks=hard_haystacks,
            distractor_haystacks=distractor_haystacks,
        )
        package_staged(out, lambda staging: continue_package(package, work, staging, stage))
    except LongvidError as exc:
        fail(exc)
    _out.print(_stage_table(work))
    _out.print(f"stage 3: packaged at {out} in {time.perf_counter() - clock:.0f} s")
