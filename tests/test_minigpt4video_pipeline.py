"""`longvid ask` with MiniGPT4-Video: a real clip, a real subtitle file shifted onto it, the
interleaved prompt layout; the frame count fitted to the context."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from longvid.cli import app
from longvid.io.subtitles import load_subtitles

runner = CliRunner()


def _srt_time(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


@pytest.fixture(scope="module")
def clip_and_subtitles(assets: Path, tmp_path_factory) -> tuple[Path, Path]:
    """cockatoo.mp4 (14 s) with Elephants Dream's English captions moved 15 s earlier, so
    its first lines fall on the clip."""
    video = assets / "video" / "cockatoo.mp4"
    subs = load_subtitles(assets / "subtitles" / "elephantsdream_captions.en.vtt").shifted(-15.0)
    cues = [c for c in subs.cues if c.start < 14.0]
    assert len(cues) >= 4
    path = tmp_path_factory.mktemp("subs") / "cockatoo.srt"
    path.write_text(
        "\n".join(
            f"{i}\n{_srt_time(c.start)} --> {_srt_time(c.end)}\n{c.text}\n"
            for i, c in enumerate(cues, start=1)
        ),
        encoding="utf-8",
    )
    return video, path


def test_ask_prints_answer_and_interleaved_layout(clip_and_subtitles):
    video, srt = clip_and_subtitles
    result = runner.invoke(
        app,
        [
            "ask", str(video), "What is said?",
            "--model", "tiny-minigpt4video",
            "--subtitles", str(srt),
            "--show-prompt",
            "--sampler", "uniform", "--frames", "6",
            "--max-new-tokens", "4",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = result.output
    assert "frames (6)" in out
    assert "384 visual" in out  # 6 frames x 64 tokens
    layout = out.split("prompt layout:", 1)[1]
    lines = layout.strip().splitlines()
    assert lines[0] == "<s>[INST] "
    assert lines[1] == "<Img>"
    assert lines[2].startswith("[frame 0 @ ") and lines[2].endswith(": 64 tokens]")
    assert "<Cap>At the left we can see... " in layout
    assert "<Cap>Everything is safe. Perfectly safe. " in layout
    assert layout.count("<Img>") == 6
    assert "\\nWhat is said? [/INST]" in layout
    # Captions come right after the frame they belong to, never before the first frame.
    assert layout.index("<Cap>") > layout.index("[frame 0")


def test_ask_json_with_reference_alignment(assets, clip_and_subtitles):
    from longvid.io.subtitle_alignment import reference_interval
    from longvid.io.video import probe

    _, srt = clip_and_subtitles
    video = assets / "video" / "movie-hello.mpeg"  # 8.3 s at 29.97 fps, 640x480
    result = runner.invoke(
        app,
        [
            "ask", str(video), "What is said?",
            "--model", "tiny-minigpt4video",
            "--subtitles", str(srt),
            "--alignment", "minigpt4video-eval",
            "--max-new-tokens", "2",
            "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    info = probe(video)
    step = reference_interval(info.avg_fps, info.duration, 45)
    # The eval path: 45 slots every ``step`` frames from frame 0 (a prefix of the video).
    assert answer["frames"] == list(range(0, 45 * step, step))
    assert answer["visual_tokens"] == 45 * 64
    assert "<Cap>At the left we can see... " in answer["prompt_layout"]


def test_ask_refuses_unknown_alignment(clip_and_subtitles):
    video, srt = clip_and_subtitles
    result = runner.invoke(
        app,
        ["ask", str(video), "Q", "--model", "tiny-minigpt4video", "--alignment", "bogus"],
    )
    assert result.exit_code == 2
    assert "unknown alignment" in result.output


def test_fit_frames_fills_a_small_context(clip_and_subtitles):
    from longvid.generate import generate, load_model
    from longvid.prompting.budget import frames_for_budget

    video, srt = clip_and_subtitles
    model = load_model("tiny-minigpt4video")
    model.config.language_model["max_position_embeddings"] = 1024
    answer = generate(model, video, "Who?", max_new_tokens=8, subtitles=srt, fit_frames=True)
    assert answer.prompt_tokens + 8 <= 1024
    # The byte-level tokenizer: one token per byte. Prompt text "<s>[INST] " and
    # "\nWho? [/INST]" (+1 for a BOS), "<Img>" per frame, the captions as "<Cap>{text} ",
    # capped at a quarter of the context.
    cues = load_subtitles(srt).cues
    captions = sum(len(f"<Cap>{' '.join(c.text.split())} ".encode()) for c in cues)
    expected = frames_for_budget(
        1024,
        64,
        min(captions, 256),
        8,
        prompt_tokens=len("<s>[INST] ") + len("\nWho? [/INST]") + 1,
        per_frame_text_tokens=len("<Img>"),
    )
    assert len(answer.frames) == expected
    assert 5 <= expected < 1024 // 64
