"""Tests of ``longvid train``: vision on the real mini tower (a few steps), the whole recipe on
a tiny model (resumable, skipping finished parts), and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors import safe_open
from typer.testing import CliRunner

from longvid.cli import app
from longvid.models import registry
from longvid.models.modeling import LongVideoLM
from longvid.train import mini, vision
from longvid.train.mini import StageConfig
from tests.train.test_mini import TINY_TOWER, tiny_config

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, ["train", *args])


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.output.strip().startswith("error:")
    text = " ".join(result.output.split())
    for fragment in fragments:
        assert fragment in text, text


@pytest.fixture
def tiny_recipe(monkeypatch: pytest.MonkeyPatch) -> None:
    """A few steps of everything on the tiny tower and LLM of the recipe tests."""
    monkeypatch.setattr(registry, "MINI_TOWER", dict(TINY_TOWER))
    monkeypatch.setattr(mini, "mini_config", tiny_config)
    monkeypatch.setattr(
        mini,
        "RECIPE",
        {
            "vision": {
                "steps": 2,
                "batch_size": 4,
                "lr": 1e-3,
                "seed": 0,
                "background_frames": 16,
                "photos": True,
                "augment": True,
            },
            "stage1": StageConfig(steps=2, batch=1, lr=1e-2),
            "stage2": StageConfig(steps=2, batch=1, lr=1e-2, lora_rank=4),
            "stage3": StageConfig(steps=2, batch=2, lr=1e-2, lora_rank=4, seed=1, padded=True),
            "stage3_cpu": StageConfig(steps=2, batch=2, lr=1e-2, lora_rank=4, seed=1, padded=True),
        },
    )


@pytest.mark.slow
def test_vision_trains_the_real_mini_tower(
    assets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "vision"
    seen = []
    train_tower = vision.train_tower

    def spy(*args, **kwargs):
        seen.append(kwargs)
        return train_tower(*args, **kwargs)

    monkeypatch.setattr(vision, "train_tower", spy)
    result = invoke(
        "vision", "--out", str(out), "--steps", "2", "--batch-size", "4", "--eval-images", "8",
        "--background-frames", "4", "--photos", "--augment",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(seen) == 1
    assert {k: seen[0][k] for k in ("background_frames", "photos", "augment")} == {
        "background_frames": 4,
        "photos": True,
        "augment": True,
    }
    with safe_open(str(out / "tower.safetensors"), "pt") as f:
        keys = set(f.keys())
        head = f.get_tensor("head.weight")
    assert head.shape == (384, registry.MINI_TOWER["hidden_size"])
    assert "logit_scale" in keys and "tower.embedder.embedder.convolution.weight" in keys
    figures = json.loads((out / "retrieval.json").read_text())
    assert figures["n_images"] == 8 and figures["chance"]["caption_top1"] == pytest.approx(1 / 8)
    assert all(0 <= figures[p] <= 1 for p in figures["chance"])
    log = (out / "log.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in log] == [0, 1]  # --steps, not the recipe's
    for probe in ("word", "shape_color", "caption_top5", "chance"):
        assert probe in result.output


def test_the_whole_recipe_then_a_rerun_skips_it(assets: Path, tmp_path: Path, tiny_recipe) -> None:
    work, out = tmp_path / "work", tmp_path / "models"
    args = ("mini", "--work", str(work), "--out", str(out), "--compressors", "longva")
    result = invoke(*args, "--eval-images", "8")
    assert result.exit_code == 0, result.output
    assert (out / "tower.safetensors").is_file() and (out / "retrieval.json").is_file()
    assert (work / "vision" / "log.jsonl").is_file()  # the loop's files stay in the work folder
    package = out / "longva"
    config = json.loads((package / "config.json").read_text())
    assert config["name"] == "longvid-mini" and config["trained"] is True
    assert not (package / "adapter").exists()  # no base LLM named: stored, LoRA merged
    assert sorted(p.name for p in out.iterdir()) == [
        "longva",
        "retrieval.json",
        "timings.json",
        "tower.safetensors",
    ]  # no staging folder left
    timings = json.loads((out / "timings.json").read_text())
    assert set(timings) == {"vision", "longva"} and all(t > 0 for t in timings.values())
    assert "trained" in result.output and "seconds" in result.output
    model = LongVideoLM.from_pretrained(package)
    assert model.config.trained and model.config.compressor.name == "longva"

    stamp = (package / "model.safetensors").stat().st_mtime_ns
    again = invoke(*args)
    assert again.exit_code == 0, again.output
    assert again.output.count("done before") == 2
    assert (package / "model.safetensors").stat().st_mtime_ns == stamp


def test_compressor_packages_and_repackages(assets: Path, tmp_path: Path, tiny_recipe) -> None:
    from tests.train.test_mini import tiny_tower_file

    tower = tiny_tower_file(tmp_path / "tower.safetensors")
    target = tmp_path / "out" / "mg"
    args = ["compressor", "minigpt4video", "--tower", str(tower), "--work", str(tmp_path / "w")]
    args += ["--out", str(target), "--stage1-steps", "1", "--stage2-steps", "3", "--batch", "1"]
    args += ["--stage3-steps", "2"]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    config = json.loads((target / "config.json").read_text())
    assert config["name"] == "longvid-mini-minigpt4video"
    steps = [
        len((tmp_path / "w" / s / "log.jsonl").read_text().splitlines())
        for s in ("stage1", "stage2", "stage3")
    ]
    assert steps == [1, 3, 2]
    assert "stage2" in result.output and "packaged at" in result.output
    assert "minutes" in result.output  # each stage's training time, from the step times logged
    # A rerun resumes (nothing left to train) and packages the same weights again.
    again = invoke(*args)
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in target.parent.iterdir()) == ["mg"]


def test_errors_are_one_line(tmp_path: Path) -> None:
    tower = tmp_path / "tower.safetensors"
    result = invoke(
        "compressor", "tokenmerge", "--tower", str(tower), "--work", str(tmp_path), "--out", "x"
    )
    assert_one_line_error(result, "no compressor 'tokenmerge'", "longva, llamavid")
    result = invoke(
        "compressor", "longva", "--tower", str(tower), "--work", str(tmp_path), "--out", "x"
    )
    assert_one_line_error(result, str(tower), "longvid train vision")
    result = invoke("mini", "--work", str(tmp_path), "--compressors", "longva,nope")
    assert_one_line_error(result, "no compressor 'nope'")
    result = invoke("vision", "--out", str(tmp_path), "--batch-size", "1")
    assert_one_line_error(result, "batch size >= 2")


def test_a_foreign_out_folder_is_refused(tmp_path: Path) -> None:
    tower = tmp_path / "tower.safetensors"
    tower.write_bytes(b"")
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    result = invoke(
        "compressor", "longva", "--tower", str(tower), "--work", str(tmp_path / "w"),
        "--out", str(target),
    )  # fmt: skip
    assert_one_line_error(result, str(target), "not a longvid checkpoint")
    assert (target / "notes.txt").read_text() == "keep me"


def test_continue_trains_a_package_on_in_place(tmp_path: Path, tiny_recipe) -> None:
    import shutil

    from tests.train.test_mini import tiny_package

    package = tiny_package(tmp_path)
    before = (package / "adapter" / "adapter_model.safetensors").read_bytes()
    args = ["continue", str(package), "--work", str(tmp_path / "w"), "--out", str(package)]
    result = invoke(*args, "--steps", "3")
    assert result.exit_code == 0, result.output
    assert "stage3" in result.output and "packaged at" in result.output
    assert len((tmp_path / "w" / "stage3" / "log.jsonl").read_text().splitlines()) == 3
    assert (package / "adapter" / "adapter_model.safetensors").read_bytes() != before
    assert sorted(p.name for p in package.parent.iterdir() if p.name.startswith(".")) == []
    tuned = tmp_path / "tuned"
    work = str(tmp_path / "w4")
    result = invoke(*args[:2], "--work", work, "--out", str(tuned), "--tower-lr-scale", "1")
    assert result.exit_code == 0, result.output
    towers = [LongVideoLM.from_pretrained(p).vision_tower.state_dict() for p in (package, tuned)]
    assert any(not a.equal(towers[1][name]) for name, a in towers[0].items())
    result = invoke(*args, "--needle-share", "0.6", "--what-share", "0.6")
    assert_one_line_error(result, "sum to at most 1", "(0.6, 0.6)")
    result = invoke(*args, "--what-share", "0.5", "--what-screen-share", "1.5")
    assert_one_line_error(result, "what_screen_share must be in [0, 1]", "1.5")
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    result = invoke("continue", str(package), "--work", str(tmp_path / "w3"), "--out", str(foreign))
    assert_one_line_error(result, str(foreign), "not a longvid checkpoint")
    assert (foreign / "notes.txt").read_text() == "keep me"
    shutil.rmtree(package / "adapter")
    result = invoke("continue", str(package), "--work", str(tmp_path / "w2"), "--out", "x")
    assert_one_line_error(result, str(package / "adapter" / "adapter_config.json"))


def test_continue_passes_its_data_options_to_the_stage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from longvid.errors import ConfigError

    seen: list[StageConfig] = []

    def record(package, work, out, stage: StageConfig) -> None:
        seen.append(stage)
        raise ConfigError("recorded")

    monkeypatch.setattr(mini, "continue_package", record)
    base = ["continue", str(tmp_path / "pkg"), "--work", str(tmp_path / "w")]
    base += ["--out", str(tmp_path / "out")]
    options = ["--position-skip", "900", "--hard-haystacks", "--varied-haystacks"]
    result = invoke(*base, *options, "--distractor-haystacks")
    assert_one_line_error(result, "recorded")
    first = seen[0]
    assert (first.position_skip, first.hard_haystacks, first.varied_haystacks) == (900, True, True)
    assert first.distractor_haystacks
    assert invoke(*base).exit_code == 2
    recipe = mini.recipe_stage("stage3")
    assert (seen[1].steps, seen[1].batch, seen[1].lr) == (recipe.steps, recipe.batch, recipe.lr)
    assert (
        seen[1].position_skip,
        seen[1].hard_haystacks,
        seen[1].distractor_haystacks,
        seen[1].tower_lr_scale,
    ) == (
        recipe.position_skip,
        recipe.hard_haystacks,
        recipe.distractor_haystacks,
        recipe.tower_lr_scale,
    )


def test_stage3_is_cut_on_a_machine_without_a_gpu() -> None:
    gpu = mini.recipe_stage("stage3", accelerated=True)
    cpu = mini.recipe_stage("stage3", accelerated=False)
    assert gpu == mini.RECIPE["stage3"]
    assert cpu.steps * cpu.batch <= gpu.steps * gpu.batch / 8  # hours, not a day, on two cores
    mix = ("needle_share", "what_share", "seed", "position_skip", "hard_haystacks")
    mix += ("distractor_haystacks", "tower_lr_scale", "lora_rank")
    assert all(getattr(cpu, field) == getattr(gpu, field) for field in mix)
    for stage in ("stage1", "stage2"):
        assert mini.recipe_stage(stage, accelerated=False) == mini.RECIPE[stage]
