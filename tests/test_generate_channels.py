"""Text channels of `longvid.generate` and `longvid ask`: on-screen text (OCR) and subtitles /
speech interleaved after their frames, with timestamps, on the tiny random LongVA."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from typer.testing import CliRunner

from longvid.cli import app
from longvid.errors import ConfigError
from longvid.generate import generate, load_model
from longvid.io.ocr import ocr_available
from longvid.io.subtitles import Cue, Subtitles
from longvid.io.video import uniform

needs_ocr = pytest.mark.skipif(not ocr_available(), reason="rapidocr-onnxruntime missing")


@pytest.fixture(scope="module")
def tiny():
    return load_model("tiny-longva")


def _card(photo: Path, words: str) -> np.ndarray:
    image = Image.open(photo).convert("RGB").resize((640, 360))
    draw = ImageDraw.Draw(image)
    draw.rectangle((40, 40, 600, 120), fill=(255, 255, 255))
    draw.text((60, 50), words, fill=(0, 0, 0), font=ImageFont.load_default(size=52))
    return np.asarray(image)


@pytest.fixture(scope="module")
def text_video(assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 s at 10 fps over a real photo: "OPEN DAILY" for 2 s, then "EXIT 12" for 2 s."""
    path = tmp_path_factory.mktemp("channels") / "cards.mp4"
    photo = assets / "images" / "coffee.png"
    cards = [_card(photo, "OPEN DAILY"), _card(photo, "EXIT 12")]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        for i in range(40):
            frame = av.VideoFrame.from_ndarray(cards[i // 20], format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


SPEECH = Subtitles(cues=[Cue(2.0, 2.4, "hello there")], format="whisper")


@needs_ocr
def test_ocr_text_follows_its_frame_with_its_time(tiny, text_video: Path) -> None:
    answer = generate(
        tiny, text_video, "What does the sign say?", uniform(4), max_new_tokens=2, ocr=True
    )
    times = answer.timestamps
    assert len(times) == 4 and times[0] < 2.0 <= times[2]
    # New text only: each card once, on the first frame that shows it.
    # Each line with its colours: black on the white band, named from the decoded pixels.
    assert answer.channel_text == [
        (times[0], "ocr", '"OPEN DAILY" in black on a white card'),
        (times[2], "ocr", '"EXIT 12" in black on a white card'),
    ]
    assert answer.channels == ["frames", "ocr"]
    expected = f'[{times[0]:.1f} s] on screen: "OPEN DAILY" in black on a white card'
    assert expected in answer.prompt_layout
    layout = answer.prompt_layout.splitlines()
    first = next(i for i, line in enumerate(layout) if line.startswith("[frame"))
    assert "OPEN DAILY" in layout[first + 1]  # right after the first frame's tokens
    assert "ocr" in answer.timings and answer.timings["ocr"] > 0


@needs_ocr
def test_ocr_and_speech_share_one_caption_per_frame(tiny, text_video: Path) -> None:
    answer = generate(
        tiny, text_video, "Who?", uniform(4), max_new_tokens=2, ocr=True, subtitles=SPEECH
    )
    times = answer.timestamps
    assert answer.channels == ["frames", "ocr", "speech"]
    assert (times[2], "ocr", '"EXIT 12" in black on a white card') in answer.channel_text
    assert (times[2], "speech", "hello there") in answer.channel_text
    caption = f'[{times[2]:.1f} s] on screen: "EXIT 12" in black on a white card | said: '
    caption += '"hello there"'
    assert caption in answer.prompt_layout


@needs_ocr
def test_ocr_reads_frames_even_when_features_come_from_the_cache(tiny, text_video: Path) -> None:
    first = generate(tiny, text_video, "Sign?", uniform(3), max_new_tokens=2, ocr=False)
    again = generate(tiny, text_video, "Sign?", uniform(3), max_new_tokens=2, ocr=True)
    assert first.channel_text == [] and first.channels == ["frames"]
    texts = [text for _, _, text in again.channel_text]
    assert texts == [
        '"OPEN DAILY" in black on a white card',
        '"EXIT 12" in black on a white card',
    ]


def test_channels_off_give_frames_only(tiny, text_video: Path) -> None:
    answer = generate(tiny, text_video, "Anything?", uniform(4), max_new_tokens=2)
    assert answer.channels == ["frames"] and answer.channel_text == []
    assert "on screen" not in answer.prompt_layout and "ocr" not in answer.timings


def test_subtitles_alone_keep_their_plain_caption_and_are_listed(tiny, text_video: Path) -> None:
    subs = Subtitles(cues=[Cue(0.0, 1.0, "first line")])
    answer = generate(tiny, text_video, "Said?", uniform(4), max_new_tokens=2, subtitles=subs)
    assert answer.channels == ["frames", "subtitles"]
    assert answer.channel_text == [(answer.timestamps[0], "subtitles", "first line")]
    assert "subtitle: first line" in answer.prompt_layout and "said:" not in answer.prompt_layout


def test_ocr_with_a_reference_alignment_is_a_config_error(tiny, text_video: Path) -> None:
    with pytest.raises(ConfigError, match="alignment='longvid'"):
        generate(tiny, text_video, "?", ocr=True, alignment="minigpt4video-inference")


@needs_ocr
def test_cli_ask_prints_channels_and_their_text(text_video: Path) -> None:
    runner = CliRunner()
    args = ["ask", str(text_video), "Sign?", "--model", "tiny-longva", "--sampler", "uniform"]
    args += ["--frames", "2"]
    args += ["--max-new-tokens", "2", "--ocr"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["channels"] == ["frames", "ocr"]
    assert [row[1:] for row in payload["channel_text"]] == [
        ["ocr", '"OPEN DAILY" in black on a white card'],
        ["ocr", '"EXIT 12" in black on a white card'],
    ]
    shown = runner.invoke(app, args)
    assert shown.exit_code == 0, shown.output
    assert "channels: frames, ocr" in shown.output
    assert 'ocr: "EXIT 12" in black on a white card' in " ".join(shown.output.split())
    plain = runner.invoke(app, [*args[:-1], "--no-ocr"])
    assert "channels: frames\n" in plain.output and "OPEN DAILY" not in plain.output
