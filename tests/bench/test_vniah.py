"""V-NIAH: parity with longva_vniah / longva_zigzag, one haystack encode per grid, needles,
and a real CLI run interrupted with SIGINT and resumed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from longvid.bench import vniah
from longvid.bench.grid import load_results, run_grid
from longvid.errors import ConfigError

PARITY = Path(__file__).resolve().parents[2].parent / "shared" / "parity" / "longva"
CASES = {
    "a": (6, 0.6000000000000001),
    "b": (6, 0.0),
    "c": (6, 1.0),
    "d": (10, 0.6000000000000001),
}


@pytest.fixture(scope="module")
def ref() -> dict[str, torch.Tensor]:
    path = PARITY / "longva_vniah.safetensors"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return load_file(str(path))


def test_grid_and_query_index_table(ref) -> None:
    frames = vniah.vniah_frame_grid()
    depths = vniah.vniah_depth_grid()
    assert frames == ref["num_frames_grid"].tolist()
    assert depths == ref["depth_grid"].tolist()  # float64 values, bit for bit
    table = torch.tensor([[vniah.query_frame_idx(d, n) for d in depths] for n in frames])
    assert torch.equal(table, ref["query_frame_idx_table"])


@pytest.mark.parametrize("case", sorted(CASES))
def test_needle_insertion_and_input_embeds(ref, case: str) -> None:
    num_frames, depth = CASES[case]
    assert vniah.query_frame_idx(depth, num_frames) == int(ref[f"query_frame_idx_{case}"])
    frames = vniah.insert_needle(ref["haystack"], ref["needle"], num_frames, depth)
    assert frames.shape[0] == num_frames + 1  # added, not replacing
    embeds = vniah.input_embeds(ref["preprompt"], frames, ref["question"], ref["postprompt"])
    assert torch.equal(embeds, ref[f"input_embeds_{case}"])


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"reference_scalar_pad": True},
        {"reference_scalar_pad": True, "world": 2, "pad_id": 7},
        {"reference_scalar_pad": True, "world": 4},
    ],
)
def test_teacher_forced_scores(ref, options: dict) -> None:
    def forward(embeds, positions):
        return embeds @ ref["score_W"]

    for kind in ("correct", "wrong"):
        ids = ref[f"score_answer_ids_{kind}"]
        got = vniah.score_teacher_forced(
            forward, ref["score_prompt_embeds"], ids, ref["score_embed_table"][ids], **options
        )
        assert got == int(ref[f"score_result_{kind}"])


def test_sharded_scoring_needs_the_reference_option(ref) -> None:
    ids = ref["score_answer_ids_correct"]
    with pytest.raises(ConfigError):
        vniah.score_teacher_forced(
            lambda e, p: e @ ref["score_W"],
            ref["score_prompt_embeds"],
            ids,
            ref["score_embed_table"][ids],
            world=2,
        )


def test_zigzag_shards_and_undo() -> None:
    path = PARITY / "longva_zigzag.safetensors"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    z = load_file(str(path))
    for world in (2, 4):
        shards = torch.stack([vniah.extract_local(z["seq"], r, world) for r in range(world)])
        assert torch.equal(shards, z[f"shards_ws{world}"])
        gathered = torch.cat(list(z[f"shards_ws{world}"]), dim=1)
        assert torch.equal(vniah.undo_extract_local(gathered, world), z[f"undo_ws{world}"])


def test_insert_beyond_haystack_is_refused() -> None:
    with pytest.raises(ConfigError):
        vniah.insert_needle(torch.zeros(3, 2, 2), torch.ones(2, 2), 4, 0.5)


def test_needles_are_distinct_with_letter_answers() -> None:
    needles = vniah.render_needles(112)
    assert len(needles) >= 3
    arrays = [np.asarray(n.image) for n in needles]
    assert all(a.shape == (112, 112, 3) for a in arrays)
    for i in range(len(arrays)):
        for j in range(i + 1, len(arrays)):
            assert not np.array_equal(arrays[i], arrays[j])
    for needle in needles:
        assert f"\n{needle.answer}. " in needle.question
    assert len({n.name for n in needles}) == len(needles)


def test_one_haystack_encode_per_grid(tiny, assets: Path, tmp_path: Path, monkeypatch) -> None:
    calls: list[int] = []
    real = tiny.encode_images

    def counting(pixels, *args, **kwargs):
        calls.append(int(pixels.shape[0]))
        return real(pixels, *args, **kwargs)

    monkeypatch.setattr(tiny, "encode_images", counting)
    video = assets / "video" / "cityCC0.mpg"
    needles = vniah.render_needles(56)[:2]
    task = vniah.VNIAHTask(
        tiny,
        [4, 12],
        [0.0, 1.0],
        videos=[video],
        needles=needles,
        cache_folder=tmp_path / "cache",
    )
    records = run_grid(task, tmp_path / "results.jsonl", progress=False)
    n_needles = len(needles)
    # one haystack encode (the whole video, looped to 12 frames) + one batch of needles
    assert len(calls) == 2 and calls[1] == n_needles
    assert len(records) == 4
    assert {r["query_frame_idx"] for r in records} == {0, 4, 12}
    assert all(0.0 <= r["accuracy"] <= 1.0 and len(r["needles"]) == n_needles for r in records)

    calls.clear()  # a new grid on the same video: the haystack comes from the cache
    again = vniah.VNIAHTask(
        tiny, [8], [0.5], videos=[video], needles=needles, cache_folder=tmp_path / "cache"
    )
    run_grid(again, tmp_path / "other.jsonl", progress=False)
    assert calls == [n_needles]


def test_haystack_loops_the_video(tiny, assets: Path, tmp_path: Path) -> None:
    video = assets / "video" / "balle1-vp9.avi"  # under 2 s: 2 frames at 1 fps
    features = vniah.haystack_features(tiny, 5, [video], cache_folder=tmp_path)
    assert features.shape[0] == 5
    period = vniah.haystack_features(tiny, 1, [video], cache_folder=tmp_path).shape[0]
    first = vniah.haystack_features(tiny, 2, [video], cache_folder=tmp_path)
    assert period == 1 and torch.equal(features[:2], first)
    assert torch.equal(features[2:4], first)


@pytest.mark.slow  # two CLI start-ups (torch + transformers imports): about 20 s
def test_cli_sigint_then_resume(assets: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    results = out / "results.jsonl"
    env = dict(os.environ, LONGVID_CACHE=str(tmp_path / "cache"))
    cmd = [
        sys.executable,
        "-m",
        "longvid",
        "bench",
        "vniah",
        "--model",
        "tiny-longva",
        "--frames",
        "4:12:4",
        "--depths",
        "0:1:0.5",
        "--out",
        str(out),
        "--no-progress",
        "--video",
        str(assets / "video" / "cityCC0.mpg"),
    ]
    proc = subprocess.Popen(
        cmd + ["--throttle", "0.5"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # a background shell starts jobs with SIGINT ignored: give the child Python's handler
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if results.exists() and len(results.read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    saved = results.read_text().splitlines()
    assert 2 <= len(saved) < 9
    assert b"interrupted" in err

    done = subprocess.run(cmd, env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    lines = results.read_text().splitlines()
    assert lines[: len(saved)] == saved  # nothing scored was lost or rescored
    assert len(lines) == 9
    records = load_results(results)
    assert len({(r["frames"], r["depth"]) for r in records}) == 9
    assert (out / "heatmap.png").is_file()
    assert b"average" in done.stdout


def test_reference_scalar_pad_gives_the_same_scores_on_a_causal_lm(tiny) -> None:
    """§10.7: the reference's pad vectors sit after the answer, so a causal LM scores alike."""

    def forward(embeds, positions):
        return tiny.language_model(inputs_embeds=embeds, position_ids=positions).logits

    prompt = tiny.embed_tokens(torch.tensor([[1, 2, 5, 6, 7]]))
    first = forward(prompt, torch.arange(5).unsqueeze(0)).argmax(-1)[:, -1:]
    second = forward(
        torch.cat([prompt, tiny.embed_tokens(first)], 1), torch.arange(6).unsqueeze(0)
    ).argmax(-1)[:, -1:]
    right = torch.cat([first, second], 1)  # the model's own greedy continuation
    wrong_first = torch.cat([(first + 1) % 512, second], 1)
    wrong_second = torch.cat([first, (second + 1) % 512], 1)
    for answer, expected in ((right, 1), (wrong_first, 0), (wrong_second, 0)):
        for options in ({}, {"reference_scalar_pad": True, "pad_id": 151645}):
            got = vniah.score_teacher_forced(
                forward, prompt, answer, tiny.embed_tokens(answer), **options
            )
            assert got == expected, (answer, options)


def test_cli_vniah_in_process(assets: Path, tmp_path: Path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from longvid.cli import app

    monkeypatch.setenv("LONGVID_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    args = ["bench", "vniah", "--model", "tiny-longva", "--compressor", "none",
            "--frames", "2:4:2", "--depths", "0:1:1", "--out", str(out), "--no-progress",
            "--video", str(assets / "video" / "cityCC0.mpg")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "average" in result.output and "heatmap.png" in result.output
    records = load_results(out / "results.jsonl")
    assert [(r["frames"], r["depth"]) for r in records] == [(2, 0.0), (2, 1.0), (4, 0.0), (4, 1.0)]
    assert (out / "heatmap.png").is_file()
    bad = CliRunner().invoke(app, [*args[:8], "--depths", "0:2:1"])
    assert bad.exit_code == 2 and "depths must lie in [0, 1]" in bad.output
