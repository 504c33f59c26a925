"""Text NIAH: parity with longva_text_niah_prompt, the period-id defect option, and the task
and CLI on the tiny model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from longvid.bench import textniah
from longvid.bench.grid import load_results, run_grid
from longvid.errors import ConfigError

PARITY = Path(__file__).resolve().parents[2].parent / "shared" / "parity" / "longva"


@pytest.fixture(scope="module")
def ref() -> dict[str, torch.Tensor]:
    path = PARITY / "longva_text_niah_prompt.safetensors"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return load_file(str(path))


@pytest.mark.parametrize("case", range(4))
def test_prompts_match_the_reference(ref, case: int) -> None:
    context_length, seed = ref[f"case_{case}"].tolist()
    depth = float(ref[f"case_{case}_depth"])
    prompt = textniah.construct_prompt(
        ref["haystack"].tolist(),
        ref["prefix"].tolist(),
        ref["postfix"].tolist(),
        ref["needle"].tolist(),
        ref["distractors"].tolist(),
        context_length,
        depth,
        np.random.RandomState(seed),  # == np.random.seed(seed) before the call
        textniah.REFERENCE_PERIOD_IDS,
    )
    expected = ref[f"prompt_{case}"]
    assert torch.equal(torch.tensor(prompt, dtype=torch.int64), expected)
    assert len(prompt) == 3 + context_length + 5 + 6 + 4


def test_needle_goes_after_the_next_period() -> None:
    hay = [5, 5, 5, 9, 5, 5, 5, 5]
    prompt = textniah.construct_prompt(
        hay, [], [], [1], [], 8, 0.25, np.random.RandomState(0), period_ids=[9]
    )
    assert prompt == [5, 5, 5, 9, 1, 5, 5, 5, 5]
    plain = textniah.construct_prompt(
        hay, [], [], [1], [], 8, 0.25, np.random.RandomState(0), period_ids=[]
    )
    assert plain == [5, 5, 1, 5, 9, 5, 5, 5, 5]
    with pytest.raises(ConfigError):
        textniah.construct_prompt(hay, [], [], [1], [], 9, 0.5, np.random.RandomState(0), [9])


def test_period_ids_come_from_the_tokenizer(tiny) -> None:
    ids = textniah.tokenizer_period_ids(tiny.tokenizer)
    dot = tiny.tokenizer(".", add_special_tokens=False)["input_ids"]
    assert dot[0] in ids
    assert not set(ids) & set(textniah.REFERENCE_PERIOD_IDS)


def test_task_runs_on_the_grid(tiny, tmp_path: Path) -> None:
    task = textniah.TextNIAHTask(tiny, [64, 128], [0.0, 1.0], needles=2, distractors=2)
    out = tmp_path / "results.jsonl"
    records = run_grid(task, out, progress=False)
    assert [(r["context_length"], r["depth"]) for r in records] == [
        (64, 0.0),
        (64, 1.0),
        (128, 0.0),
        (128, 1.0),
    ]
    ids = lambda text: tiny.tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    needle = len(ids(textniah.NEEDLE.format(city="Singapore", number=1234567)))
    fixed = len(ids(textniah.PREFIX)) + len(ids(textniah.POSTFIX)) + needle + 7
    for r in records:
        assert 0.0 <= r["accuracy"] <= 1.0 and len(r["hits"]) == 2
        assert r["prompt_tokens"] > fixed + r["context_length"]  # + the two distractors
    with pytest.raises(ConfigError):
        textniah.TextNIAHTask(tiny, distractors=7)


def test_cli_textniah_writes_results_heatmap_and_table(tmp_path: Path) -> None:
    from longvid.cli import app

    out = tmp_path / "out"
    args = [
        "bench",
        "textniah",
        "--model",
        "tiny-longva",
        "--lengths",
        "64:128:64",
        "--depths",
        "0:1:0.5",
        "--needles",
        "1",
        "--out",
        str(out),
        "--no-progress",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "average" in result.output
    assert len(load_results(out / "results.jsonl")) == 6
    assert (out / "heatmap.png").is_file()
    again = CliRunner().invoke(app, args)  # resumes: nothing new to score
    assert again.exit_code == 0
    assert len((out / "results.jsonl").read_text().splitlines()) == 6
    clash = CliRunner().invoke(app, [*args, "--seed", "3"])
    assert clash.exit_code == 2 and "other settings" in clash.output
