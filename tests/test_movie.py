"""LLaMA-VID movie mode end to end on a real video with subtitles (tiny model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from longvid.generate import load_model
from longvid.movie import ask_movie


def test_ask_movie_two_tokens_per_second_with_subtitles_and_cache(
    assets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LONGVID_CACHE", str(tmp_path))
    model = load_model("tiny-llamavid")
    video = assets / "video" / "movie-hello.mpeg"  # 8.3 s: 9 frames at 1 fps
    subs = assets / "subtitles" / "moviepy_subtitles.srt"
    answer = ask_movie(model, video, "What colour?", subtitles=subs, max_new_tokens=3)
    frames = len(answer.timestamps)
    assert frames == 9
    assert answer.visual_tokens == 2 * frames
    assert len(answer.relevance) == frames
    entries = list((tmp_path / "features").glob("*.safetensors"))
    assert len(entries) == 1  # features written once ...
    again = ask_movie(model, video, "Which colour comes last?", max_new_tokens=2)
    assert again.timestamps == answer.timestamps
    assert again.timings["encode"] < answer.timings["encode"]  # ... and read back
    assert answer.prompt_tokens > again.prompt_tokens  # the subtitles were in the prompt
