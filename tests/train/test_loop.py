"""Tests of the training loop: it learns, resumes bit for bit, refuses foreign or corrupt
checkpoints, logs, plots and follows its warm-up + cosine schedule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from longvid.errors import CheckpointError
from longvid.train.loop import LoopConfig, learning_rate, run_loop

TRUE_W = torch.tensor([[2.0, -1.0, 0.5, 3.0]])


class Interrupt(Exception):
    """Stands in for a crash or a Ctrl-C in the middle of a run."""


def toy_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Dropout(0.1), nn.Linear(8, 1))


def toy_loss(model: nn.Module, interrupt_at: int | None = None):
    """A regression batch that is a pure function of the step (as the loop asks)."""

    def loss_fn(step: int) -> Tensor:
        if step == interrupt_at:
            raise Interrupt
        gen = torch.Generator().manual_seed(step)
        x = torch.randn(32, 4, generator=gen)
        y = x @ TRUE_W.T
        return nn.functional.mse_loss(model(x), y)

    return loss_fn


def config(**kw) -> LoopConfig:
    base = {"steps": 12, "lr": 3e-2, "warmup": 2, "checkpoint_every": 4, "seed": 3}
    return LoopConfig(**{**base, **kw})


def test_the_loss_falls_and_everything_is_written(tmp_path: Path) -> None:
    model = toy_model()
    result = run_loop("toy", model, toy_loss(model), config(steps=40), tmp_path, progress=False)
    assert len(result.losses) == 40 and result.resumed_from == 0
    assert sum(result.losses[-5:]) / 5 < 0.5 * sum(result.losses[:5]) / 5
    rows = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(40))
    assert [r["loss"] for r in rows] == result.losses
    assert {r["stage"] for r in rows} == {"toy"}
    assert all(0 < r["seconds"] <= result.seconds for r in rows)  # each step's wall time
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["stage"] == "toy" and state["step"] == 40
    assert (tmp_path / "checkpoint.safetensors").is_file()
    assert (tmp_path / "optimizer.pt").is_file()
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not model.training  # left in eval mode


def test_a_resumed_run_ends_exactly_where_an_uninterrupted_one_does(tmp_path: Path) -> None:
    whole = toy_model()
    reference = run_loop("toy", whole, toy_loss(whole), config(), tmp_path / "a", progress=False)

    # Crash at step 6: steps 0-3 are checkpointed, 4 and 5 are logged but not (recomputed).
    broken = toy_model()
    with pytest.raises(Interrupt):
        run_loop("toy", broken, toy_loss(broken, 6), config(), tmp_path / "b", progress=False)
    assert json.loads((tmp_path / "b" / "state.json").read_text())["step"] == 4
    resumed = toy_model()
    with torch.no_grad():  # the checkpoint, not the fresh weights, must decide where it goes on
        for p in resumed.parameters():
            p.add_(1.0)
    result = run_loop("toy", resumed, toy_loss(resumed), config(), tmp_path / "b", progress=False)

    assert result.resumed_from == 4
    assert result.losses == reference.losses
    for (name, a), (_, b) in zip(
        whole.state_dict().items(), resumed.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    steps = [json.loads(x)["step"] for x in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert steps == list(range(12))  # no duplicated lines from the crashed run


def test_a_finished_stage_returns_at_once(tmp_path: Path) -> None:
    model = toy_model()
    first = run_loop("toy", model, toy_loss(model), config(), tmp_path, progress=False)
    again = run_loop("toy", model, toy_loss(model, interrupt_at=0), config(), tmp_path)
    assert again.resumed_from == 12 and again.losses == first.losses


def test_a_checkpoint_of_another_stage_is_refused(tmp_path: Path) -> None:
    model = toy_model()
    run_loop("stage-a", model, toy_loss(model), config(steps=4), tmp_path, progress=False)
    with pytest.raises(CheckpointError, match="'stage-a', not 'stage-b'") as info:
        run_loop("stage-b", model, toy_loss(model), config(steps=4), tmp_path, progress=False)
    assert info.value.path == str(tmp_path / "state.json")


@pytest.mark.parametrize("name", ["checkpoint.safetensors", "optimizer.pt", "state.json"])
def test_a_corrupt_checkpoint_names_the_file(tmp_path: Path, name: str) -> None:
    model = toy_model()
    run_loop("toy", model, toy_loss(model), config(steps=4), tmp_path, progress=False)
    (tmp_path / name).write_bytes(b"\x00not what it should be")
    with pytest.raises(CheckpointError, match="cannot resume") as info:
        run_loop("toy", model, toy_loss(model), config(steps=8), tmp_path, progress=False)
    assert info.value.path == str(tmp_path / name)


def test_a_checkpoint_of_other_tensors_is_refused(tmp_path: Path) -> None:
    model = toy_model()
    run_loop("toy", model, toy_loss(model), config(steps=4), tmp_path, progress=False)
    model[0].requires_grad_(False)  # another recipe trains fewer tensors
    with pytest.raises(CheckpointError, match="trainable tensors differ"):
        run_loop("toy", model, toy_loss(model), config(steps=8), tmp_path, progress=False)


def test_a_non_finite_loss_stops_the_run(tmp_path: Path) -> None:
    model = toy_model()

    def loss_fn(step: int) -> Tensor:
        return model(torch.ones(1, 4)).sum() * float("nan")

    with pytest.raises(FloatingPointError, match="stage 'toy': loss is nan at step 0"):
        run_loop("toy", model, loss_fn, config(), tmp_path, progress=False)


def test_nothing_to_train_is_an_error(tmp_path: Path) -> None:
    model = toy_model().requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        run_loop("toy", model, toy_loss(model), config(), tmp_path, progress=False)


def test_schedule_shape() -> None:
    cfg = LoopConfig(steps=100, lr=1.0, warmup=10, min_lr_ratio=0.1)
    lrs = [learning_rate(cfg, s) for s in range(101)]
    assert lrs[:10] == pytest.approx([(s + 1) / 10 for s in range(10)])  # linear warm-up
    assert lrs[10] == pytest.approx(1.0)  # the peak
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))  # then only down
    assert lrs[55] == pytest.approx(0.55)  # half-way down the cosine: mean of peak and floor
    assert lrs[100] == pytest.approx(0.1)  # the floor at the last step


@settings(max_examples=50, deadline=None)
@given(
    steps=st.integers(1, 500),
    warmup=st.integers(1, 50),
    lr=st.floats(1e-6, 1.0),
    ratio=st.floats(0.0, 1.0),
    step=st.integers(0, 600),
)
def test_schedule_stays_between_zero_and_the_peak(
    steps: int, warmup: int, lr: float, ratio: float, step: int
) -> None:
    cfg = LoopConfig(steps=steps, lr=lr, warmup=warmup, min_lr_ratio=ratio)
    value = learning_rate(cfg, step)
    assert 0 < value <= lr * (1 + 1e-9) or (ratio == 0 and value == pytest.approx(0, abs=1e-12))
    if step >= warmup:
        assert value >= lr * ratio * (1 - 1e-9)  # never under the floor after warm-up
    if step >= max(steps, warmup + 1):
        assert value == pytest.approx(lr * ratio)


def test_lr_scales_slow_the_named_parameters(tmp_path: Path) -> None:
    """A prefix scaled to 0 never moves; one scaled to 0.1 moves, less than at full rate;
    a resumed run with the scales ends where an uninterrupted one does."""
    start = toy_model().state_dict()

    def moved(scales: dict[str, float], out: Path, interrupt_at: int | None = None) -> dict:
        model = toy_model()
        cfg = config(lr_scales=scales)
        try:
            run_loop("toy", model, toy_loss(model, interrupt_at), cfg, out, progress=False)
        except Interrupt:
            model = toy_model()
            run_loop("toy", model, toy_loss(model), cfg, out, progress=False)
        state = model.state_dict()
        return {k: float((state[k] - start[k]).abs().max()) for k in state} | {"state": state}

    full = moved({}, tmp_path / "full")
    slow = moved({"0.": 0.1, "3.": 0.0}, tmp_path / "slow")
    assert slow["3.weight"] == 0.0 and slow["3.bias"] == 0.0
    assert 0 < slow["0.weight"] < full["0.weight"]
    resumed = moved({"0.": 0.1, "3.": 0.0}, tmp_path / "resumed", interrupt_at=6)
    for name, value in slow["state"].items():
        torch.testing.assert_close(resumed["state"][name], value)
