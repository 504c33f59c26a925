"""Procedurally rendered frames over real footage: the training images of longvid-mini.

A frame is a `Scene` drawn with Pillow over a real-footage background: optionally a `Card` (one
common English word in a contrasting colour on a coloured card) and optionally a group of
`Shapes` (1-5 coloured circles, squares, triangles or stars in a row). `caption` describes a
scene in one short English sentence; the vision tower of longvid-mini is trained contrastively
against MiniLM embeddings of these captions (the LLaVA stage-1 recipe, Liu et al. 2023,
"Visual Instruction Tuning", section 4.2, with rendered images in place of CC3M), and the
procedural long-video QA of `longvid.train.videoqa` places these scenes on timelines.

Everything is deterministic given its inputs (a seeded `numpy.random.Generator` for the random
parts), and nothing depends on system fonts: the DejaVu fonts that matplotlib ships are used.
Every word of `WORDS` is one token of the SmolLM2 tokenizer when preceded by a space and has at
most five letters, so a card's word stays legible at 128 px (font size >= 20% of the frame).

Backgrounds come from the real clips in ``shared/assets/video`` (see `Backgrounds`), with
different source videos for the train and test splits.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from longvid.cache import cache_dir
from longvid.errors import ConfigError, InputFileError
from longvid.io.ocr import BASIC_COLOURS

WORDS: tuple[str, ...] = (
    "apple", "bread", "chair", "dog", "egg", "fish", "goat", "house", "king", "lemon",
    "moon", "nest", "ocean", "piano", "queen", "river", "sun", "tree", "water", "wind",
    "yard", "zebra", "ball", "cat", "bird", "book", "boat", "car", "cake", "door",
    "fire", "frog",
)  # fmt: skip
"""Card words: 32 short common nouns, each one SmolLM2 token as ``" " + word``, none a colour
or shape name, at most five letters. The closed vocabulary longvid-mini learns to read: a
from-scratch 2M-parameter tower on two CPU cores reads 32 words after ~100k frames; 108 were
beyond that budget (see models/longvid-mini/README.md)."""

COLORS: dict[str, tuple[int, int, int]] = {
    name: BASIC_COLOURS[name]
    for name in ("red", "green", "blue", "yellow", "white", "black", "orange", "purple")
}
"""The eight named colours of cards, text and shapes (RGB): the typical colours of those basic
terms that OCR names text by (`longvid.io.ocr.BASIC_COLOURS`), so a card's colours read back as
the names its captions use."""

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star")
COUNTS: tuple[int, ...] = (1, 2, 3, 4, 5)
NUMBER_WORDS: dict[int, str] = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}

MIN_CONTRAST = 3.0
"""Least WCAG contrast ratio between a card's text and the card (3:1, large text)."""

MIN_FONT = 0.2
"""Least font size (em) of a card's word, as a fraction of the frame height."""

_FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
FONTS: tuple[Path, ...] = tuple(
    _FONT_DIR / name
    for name in (
        "DejaVuSans.ttf",
        "DejaVuSans-Bold.ttf",
        "DejaVuSans-Oblique.ttf",
        "DejaVuSans-BoldOblique.ttf",
        "DejaVuSerif.ttf",
        "DejaVuSerif-Bold.ttf",
        "DejaVuSerif-Italic.ttf",
        "DejaVuSansMono.ttf",
        "DejaVuSansMono-Bold.ttf",
    )
)
"""The fonts cards are written in: the DejaVu TTFs matplotlib ships (no system fonts)."""


# --------------------------------------------------------------------------------------------
# Scenes


@dataclass(frozen=True)
class Card:
    """A word written on a coloured card. ``size`` is the font size (em) and ``x``, ``y`` the
    card's centre, as fractions of the frame height / width / height."""

    word: str
    text_color: str
    card_color: str
    font: Path
    size: float
    x: float
    y: float


@dataclass(frozen=True)
class Shapes:
    """``count`` shapes of one kind and colour in a row centred at (``x``, ``y``); ``size`` is
    each shape's diameter, as a fraction of the frame height."""

    shape: str
    color: str
    count: int
    x: float
    y: float
    size: float


@dataclass(frozen=True)
class Scene:
    """What is drawn over the background: a card, a shape group, both or neither."""

    card: Card | None
    shapes: Shapes | None


def _luminance(rgb: tuple[int, int, int]) -> float:
    def channel(c: int) -> float:
        v = c / 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio (1-21) between two named colours."""
    la, lb = sorted((_luminance(COLORS[a]), _luminance(COLORS[b])), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def text_colors(card_color: str) -> list[str]:
    """The colours a word may be written in on a card of ``card_color`` (contrast >= 3:1)."""
    return [c for c in COLORS if c != card_color and contrast(c, card_color) >= MIN_CONTRAST]


@functools.lru_cache(maxsize=512)
def _font(path: Path, px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), px)


def _fit_font(word: str, font: Path, size: float, height: int, width: int) -> int:
    """Pixel font size for ``word``: ``size`` of the frame height, shrunk (not below
    `MIN_FONT`) until the word fits in 90% of the frame width."""
    px = max(1, round(size * height))
    floor = max(1, round(MIN_FONT * height))
    while px > floor and _font(font, px).getlength(word) > 0.9 * width - 0.3 * px:
        px -= 1
    return px


def _pick(rng: np.random.Generator, items: list[str] | tuple[str, ...]) -> str:
    return items[int(rng.integers(len(items)))]


def random_card(rng: np.random.Generator, word: str | None = None, *, top: bool = False) -> Card:
    """A random card (``word`` if given); ``top`` keeps it in the upper half of the frame."""
    card_color = _pick(rng, tuple(COLORS))
    text_color = _pick(rng, text_colors(card_color))
    font = FONTS[int(rng.integers(len(FONTS)))]
    size = float(rng.uniform(MIN_FONT, 0.28))
    y = float(rng.uniform(0.25, 0.38)) if top else float(rng.uniform(0.3, 0.7))
    return Card(
        word=word if word is not None else _pick(rng, WORDS),
        text_color=text_color,
        card_color=card_color,
        font=font,
        size=size,
        x=float(rng.uniform(0.45, 0.55)),
        y=y,
    )


def random_shapes(
    rng: np.random.Generator,
    *,
    bottom: bool = False,
    shape: str | None = None,
    color: str | None = None,
    count: int | None = None,
) -> Shapes:
    """A random shape group (fixed parts as given); ``bottom`` keeps it in the lower band."""
    count = count if count is not None else int(rng.integers(1, 6))
    # As large as fits: the row of ``count`` shapes (0.3 gaps) stays within 90% of a square.
    size = min(float(rng.uniform(0.13, 0.19)), 0.9 / (count + 0.3 * (count - 1)))
    return Shapes(
        shape=shape if shape is not None else _pick(rng, SHAPES),
        color=color if color is not None else _pick(rng, tuple(COLORS)),
        count=count,
        x=float(rng.uniform(0.45, 0.55)),
        y=float(rng.uniform(0.76, 0.84)) if bottom else float(rng.uniform(0.3, 0.7)),
        size=size,
    )


def random_scene(
    rng: np.random.Generator,
    *,
    card: bool | None = None,
    shapes: bool | None = None,
    word: str | None = None,
) -> Scene:
    """A random scene; ``card`` / ``shapes`` None means a coin flip, ``word`` fixes the word.

    When both are present the card sits in the upper part and the shapes in the lower band, so
    they never overlap.
    """
    has_card = bool(rng.integers(2)) if card is None else card
    has_shapes = bool(rng.integers(2)) if shapes is None else shapes
    both = has_card and has_shapes
    return Scene(
        card=random_card(rng, word, top=both) if has_card else None,
        shapes=random_shapes(rng, bottom=both) if has_shapes else None,
    )


def shapes_phrase(color: str, shape: str, count: int) -> str:
    """``"three blue circles"`` / ``"one red star"``."""
    return f"{NUMBER_WORDS[count]} {color} {shape}{'s' if count != 1 else ''}"


def caption(scene: Scene) -> str:
    """One short English sentence naming the word, colours, shape and count of a scene."""
    parts = []
    if scene.card is not None:
        c = scene.card
        article = "an" if c.card_color[0] in "aeiou" else "a"
        parts.append(f'the word "{c.word}" in {c.text_color} on {article} {c.card_color} card')
    if scene.shapes is not None:
        s = scene.shapes
        parts.append(shapes_phrase(s.color, s.shape, s.count))
    return ", ".join(parts) if parts else "real footage with nothing drawn on it"


# --------------------------------------------------------------------------------------------
# Drawing


def _star(cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    angles = -np.pi / 2 + np.arange(10) * np.pi / 5
    radii = np.where(np.arange(10) % 2 == 0, r, 0.45 * r)
    return list(zip(cx + radii * np.cos(angles), cy + radii * np.sin(angles), strict=True))


def _draw_shapes(draw: ImageDraw.ImageDraw, s: Shapes, width: int, height: int) -> None:
    d = s.size * height
    gap = 0.3 * d
    row = s.count * d + (s.count - 1) * gap
    x0 = s.x * width - row / 2
    cy = s.y * height
    fill = COLORS[s.color]
    outline = COLORS["white"] if s.color == "black" else COLORS["black"]
    for i in range(s.count):
        cx = x0 + i * (d + gap) + d / 2
        r = d / 2
        box = (cx - r, cy - r, cx + r, cy + r)
        if s.shape == "circle":
            draw.ellipse(box, fill=fill, outline=outline, width=1)
        elif s.shape == "square":
            draw.rectangle(box, fill=fill, outline=outline, width=1)
        elif s.shape == "triangle":
            draw.polygon(
                [(cx, cy - r), (cx + r, cy + r * 0.8), (cx - r, cy + r * 0.8)],
                fill=fill,
                outline=outline,
            )
        else:
            draw.polygon(_star(cx, cy, r), fill=fill, outline=outline)


def _draw_card(draw: ImageDraw.ImageDraw, c: Card, width: int, height: int) -> None:
    px = _fit_font(c.word, c.font, c.size, height, width)
    font = _font(c.font, px)
    left, top, right, bottom = font.getbbox(c.word, anchor="mm")
    pad = 0.15 * px
    w = right - left + 2 * pad
    h = bottom - top + 2 * pad
    cx = min(max(c.x * width, w / 2), width - w / 2)
    cy = min(max(c.y * height, h / 2), height - h / 2)
    draw.rounded_rectangle(
        (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2),
        radius=max(1, round(pad)),
        fill=COLORS[c.card_color],
    )
    # anchor "mm" centres the ink box's middle; shift so the ink box is centred on the card.
    draw.text(
        (cx - (left + right) / 2, cy - (top + bottom) / 2),
        c.word,
        fill=COLORS[c.text_color],
        font=font,
        anchor="mm",
    )


def _frame_size(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def fit_background(background: np.ndarray, size: int | tuple[int, int]) -> Image.Image:
    """Centre-crop ``background`` (H, W, 3 uint8) to the aspect of ``size`` (an int for a
    square, or ``(width, height)``) and resize it to that size."""
    width, height = _frame_size(size)
    img = Image.fromarray(np.ascontiguousarray(background[..., :3]))
    bw, bh = img.size
    if (bw, bh) == (width, height):
        return img
    scale = min(bw / width, bh / height)
    cw, ch = width * scale, height * scale
    left, top = (bw - cw) / 2, (bh - ch) / 2
    return img.resize(
        (width, height), Image.Resampling.BILINEAR, box=(left, top, left + cw, top + ch)
    )


def render(scene: Scene, background: np.ndarray, size: int | tuple[int, int] = 128) -> np.ndarray:
    """Draw ``scene`` over ``background`` (resized/cropped to ``size`` first): an
    ``(H, W, 3)`` uint8 frame; ``size`` is an int for a square or ``(width, height)``.
    Positions are fractions of the width (x) and height (y, sizes)."""
    img = fit_background(background, size)
    if scene.card is not None or scene.shapes is not None:
        draw = ImageDraw.Draw(img)
        if scene.shapes is not None:
            _draw_shapes(draw, scene.shapes, img.width, img.height)
        if scene.card is not None:
            _draw_card(draw, scene.card, img.width, img.height)
    return np.asarray(img)


# --------------------------------------------------------------------------------------------
# Real-footage backgrounds

BACKGROUND_VIDEOS: dict[str, tuple[str, ...]] = {
    "train": (
        "diver.mov",
        "cockatoo.mp4",
        "balle-jbart.mp4",
        "oa4_launch.webm",
        "big_buck_bunny_0_30.webm",
        "display-dual-monitors.webm",
    ),
    "test": ("cityCC0.mpg", "movie-hello.mpeg", "fire2.mp4", "win005.mkv", "movie.avi"),
}
"""Source clips (in ``shared/assets/video``) of the backgrounds of each split: the held-out
("test") scenes are drawn over footage the training never saw. The "val" split uses the test
footage."""

EXTRA_VIDEOS: tuple[str, ...] = ("intro.mpg", "soundwave.mp4", "balle1-vp9.avi", "bigbuckbunny.mp4")
"""Clips (in ``shared/assets/video``) that neither split's backgrounds use, which
`Backgrounds.load` may add to the *train* split: kinds of footage the train clips lack and
unseen footage has (3D-rendered animation, a bright graphic on black, a high-speed camera
indoors), for needle-clip haystacks that teach a model what is not a card."""

BACKGROUND_PHOTOS: tuple[str, ...] = (
    "IMG_1054.JPG",
    "astronaut.png",
    "camera.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
)
"""Still photos (in ``shared/assets/images``) that `Backgrounds.load` may add to the *train*
split: real camera pictures, which the train clips (half of them animation) have few of."""

PHOTO_CROPS = 3
"""Square crops (80% of the short side) taken from each photo, from its top-left corner to
its bottom-right along the diagonal."""

FRAMES_PER_VIDEO = 16
"""Frames decoded per source clip (`uniform` sampling)."""


def shared_dir() -> Path:
    """The shared folder: ``$LONGVID_SHARED`` or ``<checkout root>/../shared``."""
    default = Path(__file__).resolve().parents[3].parent / "shared"
    return Path(os.environ.get("LONGVID_SHARED", default))


def _square(frames: np.ndarray) -> np.ndarray:
    h, w = frames.shape[1:3]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return frames[:, top : top + side, left : left + side]


def _video_split(split: str) -> str:
    if split not in ("train", "val", "test"):
        raise ConfigError(f"unknown split {split!r} (expected train, val or test)")
    return "train" if split == "train" else "test"


@dataclass(frozen=True)
class Backgrounds:
    """Square real-footage frames ``(N, S, S, 3)`` uint8 of one split, and their sources."""

    split: str
    frames: np.ndarray
    sources: tuple[str, ...]

    @classmethod
    def load(
        cls,
        split: str = "train",
        size: int = 160,
        *,
        frames_per_video: int = FRAMES_PER_VIDEO,
        photos: bool = False,
        extra: bool = False,
    ) -> Backgrounds:
        """Decode (once; then from the cache) the split's source clips into ``size``-pixel
        square frames: ``frames_per_video`` uniformly sampled frames per clip, short side
        scaled to ``size``, centre crop; with ``photos`` (train split only) also `PHOTO_CROPS`
        square crops of each of `BACKGROUND_PHOTOS`, with ``extra`` (train split only) also
        the clips of `EXTRA_VIDEOS`. Raises `InputFileError` if the assets folder or a source
        is missing, `ConfigError` for photos or extra clips outside the train split."""
        if frames_per_video < 1:
            raise ConfigError(f"frames_per_video must be >= 1, got {frames_per_video}")
        video_split = _video_split(split)
        if photos and video_split != "train":
            raise ConfigError(f"the background photos belong to the train split, not {split!r}")
        if extra and video_split != "train":
            raise ConfigError(f"the extra clips belong to the train split, not {split!r}")
        return _load_backgrounds(
            video_split, int(size), int(frames_per_video), bool(photos), bool(extra)
        )

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` (modulo the number of frames)."""
        return self.frames[index % len(self.frames)]

    def sample(self, rng: np.random.Generator, size: int | None = None) -> np.ndarray:
        """A random crop (60-100% of a random frame's side, random place), resized to
        ``size`` pixels square (default: the stored size)."""
        frame = self.frames[int(rng.integers(len(self.frames)))]
        side = frame.shape[0]
        crop = max(8, round(side * float(rng.uniform(0.6, 1.0))))
        top, left = (int(rng.integers(side - crop + 1)) for _ in range(2))
        out = size or side
        img = Image.fromarray(frame).resize(
            (out, out), Image.Resampling.BILINEAR, box=(left, top, left + crop, top + crop)
        )
        return np.asarray(img)


def _photo_squares(path: Path, size: int) -> list[np.ndarray]:
    """`PHOTO_CROPS` square crops along the diagonal of the photo at ``path``, at ``size``."""
    try:
        img = Image.open(path).convert("RGB")
    except OSError as exc:
        raise InputFileError(f"background photo cannot be read ({exc})", path) from exc
    w, h = img.size
    side = round(0.8 * min(w, h))
    squares = []
    for k in range(PHOTO_CROPS):
        left, top = (round(k * (extent - side) / (PHOTO_CROPS - 1)) for extent in (w, h))
        box = (left, top, left + side, top + side)
        squares.append(np.asarray(img.resize((size, size), Image.Resampling.BILINEAR, box=box)))
    return squares


def grey_levels(frame: np.ndarray) -> np.ndarray:
    """The grey level (ITU-R BT.601 luma) of each pixel of ``frame`` ``(..., 3)``, float32."""
    return frame.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def vary_background(rng: np.random.Generator, frame: np.ndarray) -> np.ndarray:
    """A photometric and mirror variant of a background frame ``(H, W, 3)`` uint8: mirrored
    half the time, its colour channels permuted half the time, greyscale one time in five,
    brightness and contrast scaled by 0.6-1.4. Applied to the background only (before a card
    or shapes are drawn), so the colours the captions name stay true; it keeps a tower from
    learning its few training clips by heart."""
    x = frame.astype(np.float32)
    if rng.random() < 0.5:
        x = x[:, ::-1]
    if rng.random() < 0.5:
        x = x[..., rng.permutation(3)]
    if rng.random() < 0.2:
        x = np.repeat(grey_levels(x), 3).reshape(x.shape)
    mean = x.mean()
    x = (x - mean) * float(rng.uniform(0.6, 1.4)) + mean * float(rng.uniform(0.6, 1.4))
    return np.clip(x, 0, 255).astype(np.uint8)


def distract(rng: np.random.Generator, frame: np.ndarray) -> np.ndarray:
    """A card-free distractor made from a haystack frame ``(H, W, 3)`` uint8: half the time
    6-29 blobs in the named colours (`COLORS`, dimmed or brightened) scattered over it, half
    the time its colour saturation raised 1.5-3 times. Both look like what the shipped model
    mistook for a card: rendered animation of saturated, spotted figures (the test clip
    `win005.mkv`), whose tokens are as strong as a card's."""
    if rng.random() < 0.5:
        x = frame.astype(np.float32)
        grey = grey_levels(x)[..., None]
        x = grey + (x - grey) * float(rng.uniform(1.5, 3.0))
        return np.clip(x, 0, 255).astype(np.uint8)
    img = Image.fromarray(frame)
    draw = ImageDraw.Draw(img)
    side = min(img.size)
    names = list(COLORS)
    for _ in range(int(rng.integers(6, 30))):
        radius = side * float(rng.uniform(0.03, 0.2))
        x, y = (float(v) for v in rng.uniform(0, side, 2))
        stretch = float(rng.uniform(0.6, 1.4))
        rgb = np.array(COLORS[names[int(rng.integers(len(names)))]]) * rng.uniform(0.5, 1.1)
        fill = tuple(int(v) for v in np.clip(rgb, 0, 255))
        draw.ellipse((x - radius, y - radius * stretch, x + radius, y + radius * stretch), fill)
    return np.asarray(img)


@functools.lru_cache(maxsize=8)
def _load_backgrounds(
    split: str, size: int, frames_per_video: int, photos: bool, extra: bool
) -> Backgrounds:
    from longvid.io.video import sample, uniform

    videos = BACKGROUND_VIDEOS[split] + (EXTRA_VIDEOS if extra else ())
    names = videos + (BACKGROUND_PHOTOS if photos else ())
    suffix = ("_photos" if photos else "") + ("_extra" if extra else "")
    name = f"{split}_{size}px_{frames_per_video}{suffix}.npy"
    cached = cache_dir("backgrounds") / name
    if cached.is_file():
        return Backgrounds(split, np.load(cached), names)
    assets = shared_dir() / "assets"
    if not (assets / "video").is_dir():
        raise InputFileError(
            "real-footage assets folder not found (set LONGVID_SHARED to the shared folder)",
            assets / "video",
        )
    parts = []
    for name in videos:
        path = assets / "video" / name
        if not path.is_file():
            raise InputFileError(f"background video of the {split} split is missing", path)
        clip = sample(path, uniform(frames_per_video), size=size)
        parts.append(_square(clip.frames))
    for name in BACKGROUND_PHOTOS if photos else ():
        path = assets / "images" / name
        if not path.is_file():
            raise InputFileError(f"background photo of the {split} split is missing", path)
        parts.append(np.stack(_photo_squares(path, size)))
    frames = np.ascontiguousarray(np.concatenate(parts))
    tmp = cached.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, frames)
    tmp.replace(cached)
    return Backgrounds(split, frames, names)
