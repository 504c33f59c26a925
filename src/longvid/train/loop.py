"""The training loop every longvid training stage runs: seeded, resumable, observable.

One small function in the nanoGPT manner rather than a trainer framework: AdamW with linear
warm-up and cosine decay, gradient clipping, a rich progress bar showing the loss, a JSON-lines
log, a loss-curve plot and checkpoints that a rerun of the same command resumes from. Device
placement and mixed precision come from accelerate, so the same call trains on a laptop CPU and
on a GPU. Batches are a pure function of ``(seed, step)``, so a resumed run sees exactly the
batches an uninterrupted run would have seen.

Checkpoints hold only the trainable tensors (safetensors) and the optimizer state
(``torch.load(weights_only=True)`` reads it back), never pickled code.
"""

from __future__ import annotations

import json
import math
import pickle
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from longvid.errors import CheckpointError

__all__ = ["LoopConfig", "LoopResult", "plot_curve", "run_loop"]

CHECKPOINT = "checkpoint.safetensors"
OPTIMIZER = "optimizer.pt"
STATE = "state.json"
LOG = "log.jsonl"
CURVE = "curve.png"


@dataclass
class LoopConfig:
    """How long and how fast one stage trains. ``lr`` peaks after ``warmup`` steps and decays
    along a cosine to ``lr * min_lr_ratio`` at ``steps``."""

    steps: int
    lr: float = 1e-3
    warmup: int = 20
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    seed: int = 0
    checkpoint_every: int = 100
    mixed_precision: str = "no"  # accelerate's choice: "no", "bf16", "fp16"
    lr_scales: dict[str, float] = field(default_factory=dict)
    """Parameter-name prefix -> multiplier of the schedule's learning rate for those
    parameters (a pretrained part fine-tuned more gently than new ones)."""


@dataclass
class LoopResult:
    """What a stage did: the loss of every step (resumed steps included, read from the log),
    the step it resumed from (0 for a fresh run) and its wall time in seconds."""

    losses: list[float]
    resumed_from: int
    seconds: float


def learning_rate(config: LoopConfig, step: int) -> float:
    """The schedule's learning rate at ``step`` (0-based)."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    span = max(1, config.steps - config.warmup)
    progress = min(1.0, (step - config.warmup) / span)
    floor = config.lr * config.min_lr_ratio
    return floor + (config.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def run_loop(
    name: str,
    model: nn.Module,
    loss_fn: Callable[[int], Tensor],
    config: LoopConfig,
    out_dir: str | Path,
    *,
    progress: bool = True,
) -> LoopResult:
    """Train the parameters of ``model`` that require grad for ``config.steps`` steps.

    ``loss_fn(step)`` builds the step's batch (deterministically from the step) and returns
    its scalar loss. ``out_dir`` receives the checkpoint, the log and ``curve.png``; when it
    already holds a checkpoint of the same stage ``name``, training resumes after its step
    (a finished stage returns at once). Returns the losses of all steps.
    """
    from accelerate import Accelerator

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    accelerator = Accelerator(mixed_precision=config.mixed_precision, cpu=not _has_gpu())
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    if not params:
        raise ValueError(f"stage {name!r}: the model has no trainable parameters")
    groups: dict[float, list[nn.Parameter]] = {}
    for param_name, param in params.items():
        scales = [v for prefix, v in config.lr_scales.items() if param_name.startswith(prefix)]
        groups.setdefault(scales[0] if scales else 1.0, []).append(param)
    optimizer = torch.optim.AdamW(
        [{"params": group, "lr_scale": scale} for scale, group in groups.items()],
        lr=config.lr,
        weight_decay=config.weight_decay,
    )
    model, optimizer = accelerator.prepare(model, optimizer)
    start = _resume(name, out, params, optimizer, config)
    losses = _logged_losses(out, start)
    clock = time.perf_counter()
    show = progress and start < config.steps  # a finished stage has nothing to show
    bar, task = _progress_bar(name, config.steps, start) if show else (None, None)
    try:
        model.train()
        for step in range(start, config.steps):
            began = time.perf_counter()
            torch.manual_seed(config.seed * 1_000_003 + step)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config, step) * group["lr_scale"]
            with accelerator.autocast():
                loss = loss_fn(step)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"stage {name!r}: loss is {loss.item()} at step {step}")
            accelerator.backward(loss)
            if config.grad_clip:
                accelerator.clip_grad_norm_(list(params.values()), config.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            value = float(loss.detach())
            losses.append(value)
            _append_log(
                out,
                {
                    "stage": name,
                    "step": step,
                    "loss": value,
                    "lr": learning_rate(config, step),
                    "seconds": round(time.perf_counter() - began, 3),
                },
            )
            done = step + 1
            if done % config.checkpoint_every == 0 or done == config.steps:
                _save(name, out, params, optimizer, config, done)
            if bar is not None:
                recent = losses[-20:]
                bar.update(task, completed=done, loss=sum(recent) / len(recent))
    finally:
        if bar is not None:
            bar.stop()
        model.eval()
    plot_curve([out / LOG], out / CURVE)
    return LoopResult(losses, start, time.perf_counter() - clock)


def plot_curve(logs: list[Path], target: Path) -> Path:
    """Draw the loss of every stage in the JSON-lines ``logs`` (raw and smoothed), one panel
    per stage, to ``target``; returns it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages: dict[str, tuple[list[int], list[float]]] = {}
    lines = [line for log in logs if log.is_file() for line in log.read_text().splitlines()]
    for line in lines:
        row = json.loads(line)
        steps, values = stages.setdefault(row["stage"], ([], []))
        steps.append(row["step"])
        values.append(row["loss"])
    fig, axes = plt.subplots(1, max(1, len(stages)), figsize=(4.5 * max(1, len(stages)), 3.2))
    axes = [axes] if not hasattr(axes, "__len__") else list(axes)
    for ax, (stage, (steps, values)) in zip(axes, stages.items(), strict=False):
        ax.plot(steps, values, color="#9ab", linewidth=0.8, label="step")
        window = max(1, len(values) // 25)
        smooth = [
            sum(values[max(0, i - window + 1) : i + 1])
            / len(values[max(0, i - window + 1) : i + 1])
            for i in range(len(values))
        ]
        ax.plot(steps, smooth, color="#c33", linewidth=1.6, label=f"mean of {window}")
        ax.set_title(stage)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.legend(fontsize=7)
    fig.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, dpi=110)
    plt.close(fig)
    return target


# --------------------------------------------------------------------------------------------
# Checkpoints and logs


def _has_gpu() -> bool:
    return torch.cuda.is_available()


def _save(
    name: str,
    out: Path,
    params: dict[str, nn.Parameter],
    optimizer: Any,
    config: LoopConfig,
    step: int,
) -> None:
    """Write the checkpoint atomically: tensors, optimizer, then the state that points to them."""
    tensors = {n: p.detach().to("cpu").contiguous() for n, p in params.items()}
    save_file(tensors, out / f".{CHECKPOINT}.tmp", metadata={"stage": name})
    torch.save(optimizer.state_dict(), out / f".{OPTIMIZER}.tmp")
    (out / f".{CHECKPOINT}.tmp").replace(out / CHECKPOINT)
    (out / f".{OPTIMIZER}.tmp").replace(out / OPTIMIZER)
    state = {"stage": name, "step": step, "config": asdict(config)}
    (out / STATE).write_text(json.dumps(state, indent=2) + "\n")


def _resume(
    name: str, out: Path, params: dict[str, nn.Parameter], optimizer: Any, config: LoopConfig
) -> int:
    """The step to start from: after the saved one when ``out`` holds this stage's checkpoint."""
    state_path = out / STATE
    if not state_path.is_file():
        (out / LOG).unlink(missing_ok=True)
        return 0
    try:
        state = json.loads(state_path.read_text())
        stage, step = state["stage"], int(state["step"])
    except (OSError, KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"cannot resume from this checkpoint: {err}", state_path) from None
    if stage != name:
        raise CheckpointError(
            f"holds a checkpoint of stage {stage!r}, not {name!r}: use another output folder",
            state_path,
        )
    # Each file is named on its own: a corrupt one says which (delete the folder to restart).
    try:
        tensors = load_file(out / CHECKPOINT)
    except (OSError, SafetensorError) as err:
        raise CheckpointError(
            f"cannot resume from this checkpoint: {err}", out / CHECKPOINT
        ) from None
    try:
        optimizer_state = torch.load(out / OPTIMIZER, weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as err:
        raise CheckpointError(
            f"cannot resume from this optimizer state: {err}", out / OPTIMIZER
        ) from None
    if set(tensors) != set(params):
        raise CheckpointError(
            "its trainable tensors differ from the model's (another recipe?)", out / CHECKPOINT
        )
    with torch.no_grad():
        for n, p in params.items():
            p.copy_(tensors[n])
    optimizer.load_state_dict(optimizer_state)
    return min(step, config.steps)


def _logged_losses(out: Path, start: int) -> list[float]:
    """The losses of steps before ``start`` from the log; later lines (from an interrupted
    run past its last checkpoint) are dropped so they are recomputed."""
    log = out / LOG
    if not log.is_file():
        return []
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    kept = [row for row in rows if row["step"] < start]
    log.write_text("".join(json.dumps(row) + "\n" for row in kept))
    return [row["loss"] for row in kept]


def _append_log(out: Path, row: dict[str, Any]) -> None:
    with (out / LOG).open("a") as handle:
        handle.write(json.dumps(row) + "\n")


def _progress_bar(name: str, total: int, start: int) -> tuple[Any, Any]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn(f"[bold]{name}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TimeRemainingColumn(),
    )
    task = bar.add_task(name, total=total, completed=start, loss=float("nan"))
    bar.start()
    return bar, task
