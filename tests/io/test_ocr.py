"""On-screen text (`longvid.io.ocr`): RapidOCR on real frames, and the cheap skip tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageDraw, ImageFont

from longvid.errors import ConfigError, SamplingError
from longvid.io import ocr
from longvid.io.ocr import (
    FrameText,
    TextLine,
    changed_fraction,
    edge_fraction,
    new_text,
    read_frames,
)
from longvid.io.video import sample, window

pytestmark = pytest.mark.skipif(not ocr.ocr_available(), reason="rapidocr-onnxruntime missing")


def _card(photo: Path, words: str, size: tuple[int, int] = (640, 360)) -> np.ndarray:
    """A real photo with ``words`` rendered in black on a white band."""
    image = Image.open(photo).convert("RGB").resize(size)
    draw = ImageDraw.Draw(image)
    draw.rectangle((40, 40, 600, 120), fill=(255, 255, 255))
    draw.text((60, 50), words, fill=(0, 0, 0), font=ImageFont.load_default(size=52))
    return np.asarray(image)


@pytest.fixture(scope="module")
def coffee(assets: Path) -> Path:
    return assets / "images" / "coffee.png"


class _Counting:
    """The real engine, counting its calls."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.calls = 0

    def __call__(self, image: np.ndarray, **options):
        self.calls += 1
        return self.engine(image, **options)


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> _Counting:
    spy = _Counting(ocr.ocr_engine())
    monkeypatch.setattr(ocr, "ocr_engine", lambda: spy)
    return spy


def test_rendered_words_on_a_real_photo_are_read_back(coffee: Path) -> None:
    frame = _card(coffee, "OPEN DAILY")
    (found,) = read_frames(frame[None], [12.0])
    assert found.skipped is None and found.timestamp == 12.0
    assert found.text == "OPEN DAILY"
    (line,) = found.lines
    assert line.score > 0.9
    xs, ys = [x for x, _ in line.box], [y for _, y in line.box]
    assert min(xs) >= 40 and max(xs) <= 620 and min(ys) >= 30 and max(ys) <= 130


def test_title_card_of_a_real_trailer_is_read(assets: Path) -> None:
    clip = sample(assets / "video" / "trailer_bbb.mp4", window(10.2, 10.4, n=1))
    (found,) = read_frames(clip.frames, clip.timestamps.tolist())
    assert found.skipped is None
    assert "unlucky bird" in found.text.lower()


def test_a_repeated_frame_reuses_the_text_and_a_blank_frame_is_skipped(
    coffee: Path, counting: _Counting
) -> None:
    frame = _card(coffee, "EXIT 12")
    noise = np.random.default_rng(0).integers(-6, 7, frame.shape)  # codec-like noise
    noisy = np.clip(frame.astype(np.int16) + noise, 0, 255)
    blank = np.full_like(frame, 128)
    frames = np.stack([frame, noisy.astype(np.uint8), blank, frame])
    found = read_frames(frames, [0.0, 1.0, 2.0, 3.0])
    assert [f.skipped for f in found] == [None, "unchanged", "no-text", "unchanged"]
    assert counting.calls == 1
    assert found[0].text == found[1].text == found[3].text == "EXIT 12"
    assert found[2].lines == []


def test_a_changed_caption_is_read_again(coffee: Path, counting: _Counting) -> None:
    frames = np.stack([_card(coffee, "EXIT 12"), _card(coffee, "EXIT 13")])
    found = read_frames(frames, [0.0, 1.0])
    assert [f.skipped for f in found] == [None, None] and counting.calls == 2
    assert [f.text for f in found] == ["EXIT 12", "EXIT 13"]


def test_thresholds_are_parameters(coffee: Path, counting: _Counting) -> None:
    frame = _card(coffee, "EXIT 12")
    found = read_frames(np.stack([frame, frame]), [0.0, 1.0], min_changed=0.0)
    assert counting.calls == 2 and [f.skipped for f in found] == [None, None]
    found = read_frames(frame[None], [0.0], min_edges=1.0)
    assert found[0].skipped == "no-text" and counting.calls == 2


def test_edge_and_change_measures_on_real_and_flat_frames(coffee: Path) -> None:
    card = _card(coffee, "OPEN DAILY")
    flat = np.full_like(card, 200)
    assert edge_fraction(card) > 0.01 > edge_fraction(flat) == 0.0
    assert changed_fraction(card, card) == 0.0
    assert changed_fraction(card, _card(coffee, "OPEN DAILZ")) > 0.005


def test_missing_package_is_a_config_error_with_the_install_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ocr, "ocr_available", lambda: False)
    ocr.ocr_engine.cache_clear()
    try:
        with pytest.raises(ConfigError, match="pip install rapidocr-onnxruntime"):
            ocr.ocr_engine()
    finally:
        ocr.ocr_engine.cache_clear()


@pytest.mark.parametrize(
    ("frames", "times"),
    [
        (np.zeros((2, 8, 8), np.uint8), [0.0, 1.0]),
        (np.zeros((2, 8, 8, 3), np.float32), [0.0, 1.0]),
        (np.zeros((2, 8, 8, 3), np.uint8), [0.0]),
    ],
)
def test_bad_frames_are_a_sampling_error(frames: np.ndarray, times: list[float]) -> None:
    with pytest.raises(SamplingError, match="read_frames"):
        read_frames(frames, times)


def _frame(t: float, *texts: str) -> FrameText:
    return FrameText(t, [TextLine(s, 1.0, ((0, 0), (1, 0), (1, 1), (0, 1))) for s in texts])


def test_new_text_gives_lines_once_while_they_stay_on_screen() -> None:
    frames = [
        _frame(0.0, "TITLE"),
        _frame(1.0, "title", "Chapter 1"),
        _frame(2.0, "Chapter 1"),
        _frame(3.0),
        _frame(4.0, "Chapter 1"),
    ]
    assert new_text(frames) == ['"TITLE"', '"Chapter 1"', "", "", '"Chapter 1"']


def test_jittery_reads_of_a_line_that_stays_are_one_line() -> None:
    """OCR reads a line that stays on screen a little differently from frame to frame (the
    test footage's title: ``Hello world...``, ``Helloworld..``, ``Hello worid...``); it is given
    once. Short words one letter apart are different lines."""
    frames = [
        _frame(0.0, "Hello world..."),
        _frame(1.0, "Helloworld.."),
        _frame(2.0, "Hello worid...", "cat"),
        _frame(3.0, "HELLO WORLD", "car"),
    ]
    assert new_text(frames) == ['"Hello world..."', "", '"cat"', '"car"']


@given(st.lists(st.sets(st.sampled_from(["A", "B", "C", "D"])), max_size=8))
def test_new_text_holds_exactly_the_lines_absent_from_the_previous_frame(
    shown: list[set[str]],
) -> None:
    frames = [_frame(float(k), *sorted(s)) for k, s in enumerate(shown)]
    got = new_text(frames)
    assert len(got) == len(frames)
    for k, words in enumerate(shown):
        previous = shown[k - 1] if k else set()
        given_now = {phrase.strip('"') for phrase in got[k].split(", ") if phrase}
        assert given_now == {w for w in words if w not in previous}


def test_a_line_is_phrased_with_its_colours_when_they_are_known() -> None:
    assert ocr.line_phrase("EXIT  12", ("white", "green")) == '"EXIT 12" in white on a green card'
    assert ocr.line_phrase("egg", ("blue", "orange")) == '"egg" in blue on an orange card'
    assert TextLine("EXIT", 0.9, ((0, 0), (1, 0), (1, 1), (0, 1))).phrase == '"EXIT"'


def _sign(ground: tuple[int, int, int], ink: tuple[int, int, int]) -> np.ndarray:
    image = Image.new("RGB", (160, 60), ground)
    ImageDraw.Draw(image).text((8, 8), "lemon", fill=ink, font=ImageFont.load_default(size=36))
    return np.asarray(image)


def test_colours_name_every_card_of_the_training_renderer() -> None:
    """The names OCR gives a card's colours are the ones training captions use
    (`longvid.train.render.COLORS`), for every text/card pair the renderer may draw."""
    from longvid.train.render import COLORS, text_colors

    box = ((0.0, 0.0), (160.0, 0.0), (160.0, 60.0), (0.0, 60.0))
    for card in COLORS:
        for text in text_colors(card):
            sign = _sign(COLORS[card], COLORS[text])
            assert ocr.line_colours(sign, box) == (text, card), (text, card)


def test_text_over_footage_has_no_colours(coffee: Path) -> None:
    photo = np.asarray(Image.open(coffee).convert("RGB").resize((320, 180)))
    noise = np.random.default_rng(0).integers(0, 256, (60, 160, 3), dtype=np.uint8)
    box = ((0.0, 0.0), (160.0, 0.0), (160.0, 60.0), (0.0, 60.0))
    assert ocr.line_colours(noise, box) is None
    assert ocr.line_colours(photo[:4, :3], box) is None  # too few pixels to tell


def test_a_row_of_filled_shapes_has_no_ground(coffee: Path) -> None:
    """OCR reads a row of filled circles as ``000``; their colour fills most of the box, but
    not its outline, so no sign's colours are claimed."""
    image = Image.open(coffee).convert("RGB").resize((320, 180))
    draw = ImageDraw.Draw(image)
    for k in range(3):
        draw.ellipse((40 + 50 * k, 60, 88 + 50 * k, 108), fill=(245, 245, 245))
    box = ((40.0, 60.0), (188.0, 60.0), (188.0, 108.0), (40.0, 108.0))
    assert ocr.line_colours(np.asarray(image), box) is None
    assert ocr.line_colours(np.asarray(image), box, min_border=0.0) is not None


def test_ocr_reads_a_signs_colours(coffee: Path) -> None:
    image = Image.open(coffee).convert("RGB").resize((640, 360))
    draw = ImageDraw.Draw(image)
    draw.rectangle((40, 40, 600, 120), fill=(30, 170, 60))
    draw.text((60, 50), "EXIT 12", fill=(250, 250, 250), font=ImageFont.load_default(size=52))
    (frame,) = read_frames(np.asarray(image)[None], [0.0])
    assert [(line.text, line.colours) for line in frame.lines] == [("EXIT 12", ("white", "green"))]


def test_symbols_and_unsure_reads_are_no_text() -> None:
    """Shapes PP-OCR "reads" (``★★``) and low-score misreads are left out; words stay."""
    box = [[0, 0], [20, 0], [20, 10], [0, 10]]
    result = [[box, "★★", 0.99], [box, "EXIT 12", 0.95], [box, "U", 0.6], [box, "■", 0.97]]
    frame = np.zeros((10, 20, 3), dtype=np.uint8)
    assert [line.text for line in ocr._lines(result, 0.8, frame)] == ["EXIT 12"]


def test_italic_card_words_are_read_upright(coffee: Path) -> None:
    """RapidOCR's text-direction classifier took these italic words for upside-down lines and
    read them turned over (``piano`` as ``oupid``); frames are read upright by default."""
    from longvid.train.render import FONTS, Card, Scene, render

    photo = np.asarray(Image.open(coffee).convert("RGB"))
    italic = next(font for font in FONTS if font.name == "DejaVuSerif-Italic.ttf")
    words = ("nest", "goat", "piano")
    frames = np.stack(
        [
            render(Scene(Card(word, "black", "green", italic, 0.25, 0.5, 0.4), None), photo, 192)
            for word in words
        ]
    )
    found = read_frames(frames, [0.0, 1.0, 2.0], min_changed=0)
    assert [(frame.text, frame.lines[0].colours) for frame in found] == [
        (word, ("black", "green")) for word in words
    ]
