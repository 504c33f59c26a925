"""On-screen text of sampled frames, read by OCR only where text may have appeared.

The on-screen text channel of ``longvid ask --ocr``: each sampled frame's visible text (title
cards, signs, slides, burnt-in captions) becomes text interleaved after the frame's tokens, the
way MiniGPT4-Video (Ataallah et al., 2024, §3) interleaves subtitles. The reader is RapidOCR
(``rapidocr-onnxruntime``: PP-OCRv4 detection and recognition as ONNX models shipped in the
wheel, CPU, about 0.3 s per 720p frame), loaded once per process (`ocr_engine`).

OCR is the slow part, so two cheap numpy tests run first, on a grey, block-averaged copy of the
frame (`_grey`):

- **unchanged**: the frame barely differs from the last frame that was OCRed; its text is reused.
  The measure (`changed_fraction`) cuts a copy at most ``change_side`` px long into 4 x 4 tiles
  and takes the largest fraction of a tile's pixels whose grey level moved by more than
  ``change_level``; below ``min_changed`` the frame counts as unchanged. A pixel fraction, not a
  mean difference, so codec noise (a few grey levels everywhere) is no change, and per tile, so
  one changed digit of a 52 px caption on a 640x360 frame (1.6 % of its tile) is one.
- **no-text**: too little high-contrast edge structure to hold text. Text is dense strokes with
  sharp contrast: the measure is the fraction of pixels (on a copy at most ``edge_side`` px on
  its long side) where the horizontal or vertical grey step exceeds ``edge_level``; below
  ``min_edges`` the frame is skipped (blank, dark, blurred or flat frames).

The defaults were set on frames of ``shared/assets``: title cards of ``trailer_bbb.mp4`` have edge
fractions of 0.006 to 0.03, a screen recording 0.02 to 0.04, a photo with a rendered caption
about 0.02, dark or blurred frames under 0.004 and a flat frame 0; uniform noise of +-6 grey
levels changes no pixel, a changed digit 1.6 % of its tile.

Each line found on a solid-coloured ground (a sign, a card, a slide) also carries its colours,
named among the basic colour terms (`BASIC_COLOURS`; `line_colours`), so the prompt can say
``"EXIT" in white on a green card`` and a question about "the green sign" has its answer in text
(`line_phrase`). Text over footage, where no one colour holds most of the line's box, is given
without them.
"""

from __future__ import annotations

import functools
import importlib.util
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any

import numpy as np

from longvid.errors import ConfigError, SamplingError

__all__ = [
    "BASIC_COLOURS",
    "FrameText",
    "TextLine",
    "changed_fraction",
    "edge_fraction",
    "line_colours",
    "line_phrase",
    "new_text",
    "ocr_available",
    "ocr_engine",
    "read_frames",
]

_INSTALL = "pip install rapidocr-onnxruntime==1.4.4"


@dataclass(frozen=True)
class TextLine:
    """One line of text found in a frame: its text, the recogniser's confidence (0-1) and its
    box as four (x, y) corners in the frame's pixels, clockwise from top left; ``colours`` the
    named (text, ground) colours where the line sits on a solid ground (`line_colours`)."""

    text: str
    score: float
    box: tuple[tuple[float, float], ...]
    colours: tuple[str, str] | None = None

    @property
    def phrase(self) -> str:
        """The line as the on-screen text channel gives it (`line_phrase`)."""
        return line_phrase(self.text, self.colours)


@dataclass
class FrameText:
    """The on-screen text of one sampled frame at ``timestamp`` seconds.

    ``skipped`` says why OCR did not run on it: ``"unchanged"`` (``lines`` are those of the
    last OCRed frame, which it barely differs from), ``"no-text"`` (too few edges to hold text;
    ``lines`` is empty) or None (OCRed).
    """

    timestamp: float
    lines: list[TextLine] = field(default_factory=list)
    skipped: str | None = None

    @property
    def text(self) -> str:
        """The lines in reading order, joined with spaces."""
        return " ".join(line.text for line in self.lines)


def ocr_available() -> bool:
    """Whether the OCR engine (``rapidocr_onnxruntime``) is installed."""
    return importlib.util.find_spec("rapidocr_onnxruntime") is not None


@functools.cache
def ocr_engine() -> Any:
    """The process's RapidOCR engine (built on first use, about 0.5 s); `ConfigError` with the
    install line when the package is missing."""
    if not ocr_available():
        raise ConfigError(f"on-screen text (OCR) needs rapidocr-onnxruntime: {_INSTALL}")
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR()


def _grey(frame: np.ndarray, side: int) -> np.ndarray:
    """``frame`` (H, W, 3) uint8 as float32 grey levels, block-averaged so that its long side is
    at most about ``side`` px (cheap and alias-free enough for the two tests)."""
    grey = frame.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    step = max(1, -(-max(grey.shape) // side))
    if step > 1:
        h, w = (grey.shape[0] // step) * step, (grey.shape[1] // step) * step
        grey = grey[:h, :w].reshape(h // step, step, w // step, step).mean(axis=(1, 3))
    return grey


def edge_fraction(frame: np.ndarray, *, level: float = 48.0, side: int = 640) -> float:
    """Fraction of pixels of ``frame`` whose right or lower neighbour differs by more than
    ``level`` grey levels, on a copy at most ``side`` px long: the text-presence measure."""
    grey = _grey(frame, side)
    if min(grey.shape) < 2:
        return 0.0
    strong = np.zeros(grey.shape, dtype=bool)
    strong[:, :-1] |= np.abs(np.diff(grey, axis=1)) > level
    strong[:-1, :] |= np.abs(np.diff(grey, axis=0)) > level
    return float(strong.mean())


def changed_fraction(
    a: np.ndarray, b: np.ndarray, *, level: float = 24.0, side: int = 256, grid: int = 4
) -> float:
    """The change measure between frames ``a`` and ``b`` (same size): on copies at most
    ``side`` px long cut into ``grid`` x ``grid`` tiles, the largest fraction of a tile's pixels
    whose grey level differs by more than ``level``. Per tile, so that one changed word (a
    clock, a score) counts as much as it does in its own corner of the picture."""
    moved = np.abs(_grey(a, side) - _grey(b, side)) > level
    h, w = moved.shape
    rows = [moved[i * h // grid : (i + 1) * h // grid] for i in range(grid)]
    tiles = [r[:, j * w // grid : (j + 1) * w // grid] for r in rows for j in range(grid)]
    return max((float(t.mean()) for t in tiles if t.size), default=0.0)


BASIC_COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (15, 15, 15),
    "white": (245, 245, 245),
    "red": (220, 30, 30),
    "green": (30, 170, 60),
    "yellow": (250, 220, 30),
    "blue": (30, 80, 230),
    "brown": (130, 80, 35),
    "purple": (140, 50, 180),
    "pink": (245, 140, 190),
    "orange": (250, 140, 20),
    "grey": (128, 128, 128),
}
"""The eleven basic colour terms of English (Berlin and Kay, 1969) with a typical RGB each; a
pixel is named by the nearest one."""

_PALETTE = np.array(list(BASIC_COLOURS.values()), dtype=np.float32)
_NAMES = tuple(BASIC_COLOURS)


def _nearest_colour(pixels: np.ndarray) -> np.ndarray:
    """Index into `BASIC_COLOURS` of the colour nearest each RGB row of ``pixels`` (N, 3)."""
    return np.argmin(((pixels[:, None, :] - _PALETTE[None]) ** 2).sum(-1), axis=1)


def line_colours(
    frame: np.ndarray,
    box: Sequence[tuple[float, float]],
    *,
    min_ground: float = 0.4,
    min_border: float = 0.3,
    min_ink: float = 0.05,
) -> tuple[str, str] | None:
    """The named (text, ground) colours of the line in ``box`` of ``frame`` (H, W, 3) uint8, or
    None when no one colour names at least ``min_ground`` of the box's pixels (text over
    footage), that colour is under ``min_border`` of the box's outline (no ground around the
    line: a row of filled shapes that OCR read as ``000``; on rendered cards the outline is
    0.35-1.0 the card's colour, on rows of circles 0.11-0.25) or the text's colour is under
    ``min_ink`` of the box's pixels.

    The ground is the colour most pixels are nearest to. The text is read from the pixels
    farthest from the ground (the upper quarter of distances), so the blend at the strokes'
    edges (grey between black and white) does not outvote the strokes themselves.
    """
    xs = [x for x, _ in box]
    ys = [y for _, y in box]
    h, w = frame.shape[:2]
    x0, x1 = max(0, int(min(xs))), min(w, int(np.ceil(max(xs))))
    y0, y1 = max(0, int(min(ys))), min(h, int(np.ceil(max(ys))))
    patch = frame[y0:y1, x0:x1].astype(np.float32)
    pixels = patch.reshape(-1, 3)
    if len(pixels) < 16:
        return None
    nearest = _nearest_colour(pixels)
    votes = np.bincount(nearest, minlength=len(_NAMES))
    ground = int(votes.argmax())
    if votes[ground] < min_ground * len(pixels):
        return None
    outline = np.concatenate([patch[0], patch[-1], patch[1:-1, 0], patch[1:-1, -1]])
    if (_nearest_colour(outline) == ground).mean() < min_border:
        return None
    away = np.sqrt(((pixels - _PALETTE[ground]) ** 2).sum(-1))
    far = away >= np.quantile(away, 0.75)
    ink_votes = np.bincount(nearest[far], minlength=len(_NAMES))
    ink_votes[ground] = 0
    ink = int(ink_votes.argmax())
    if ink_votes[ink] < min_ink * len(pixels):
        return None
    return _NAMES[ink], _NAMES[ground]


def line_phrase(text: str, colours: tuple[str, str] | None = None) -> str:
    """One line of on-screen text as the prompt gives it: quoted, then when its colours are
    known the text's colour and the solid panel it sits on (a sign, a slide, a title card:
    "card", as the vision captions of training name it), e.g. ``"EXIT" in white on a green
    card``. Named as a card, the ground's colour is told from the text's: longvid-mini
    answered 80% of 160 held-out which-word questions with the text channels on, against
    73% for ``"EXIT" in white on green``, where it took the text's colour for the card's
    (docs/benchmarks.md, "The OCR line's wording")."""
    quoted = f'"{" ".join(text.split())}"'
    if not colours:
        return quoted
    ink, ground = colours
    article = "an" if ground[0] in "aeiou" else "a"
    return f"{quoted} in {ink} on {article} {ground} card"


def _is_text(text: str) -> bool:
    """Whether a recognised line holds a letter or a digit: PP-OCR also "reads" drawn shapes
    as symbols (``★★``, ``■``, ``△△``), which are no text to quote."""
    return any(unicodedata.category(c)[0] in "LN" for c in text)


def _lines(result: Any, min_score: float, frame: np.ndarray) -> list[TextLine]:
    """RapidOCR's ``[[box, text, score], ...]`` (or None) on ``frame`` as `TextLine`s, with
    their colours, in reading order; lines of symbols alone are left out (`_is_text`)."""
    found = []
    for box, text, score in result or []:
        if float(score) < min_score or not _is_text(str(text)):
            continue
        corners = tuple((float(x), float(y)) for x, y in box)
        found.append(
            TextLine(str(text).strip(), float(score), corners, line_colours(frame, corners))
        )
    # Reading order: by top edge, then left edge.
    found.sort(key=lambda line: (min(y for _, y in line.box), min(x for x, _ in line.box)))
    return found


def read_frames(
    frames: np.ndarray,
    timestamps: Sequence[float],
    *,
    min_score: float = 0.8,
    min_edges: float = 0.004,
    edge_level: float = 48.0,
    edge_side: int = 640,
    min_changed: float = 0.005,
    change_level: float = 24.0,
    change_side: int = 256,
    upright: bool = True,
) -> list[FrameText]:
    """The on-screen text of each frame of ``frames`` (T, H, W, 3) uint8 RGB.

    A frame whose `changed_fraction` against the last OCRed frame is below ``min_changed`` is
    ``"unchanged"`` and reuses that frame's lines; one whose `edge_fraction` is below
    ``min_edges`` is ``"no-text"``; the rest are OCRed and keep lines recognised with a score
    of at least ``min_score`` that hold a letter or digit. The default score was set on 8
    frames of each of 12 asset videos and on rendered cards: real text scored 0.8-1.0 (card
    words 0.90 and up), while shapes and textures misread as letters (``U``, ``FN``, ``0000``
    for four circles) scored 0.5-0.8; some rows of circles score higher (``00`` at 0.95) and
    stay, without a sign's colours (`line_colours`). ``min_changed=0`` OCRs every frame with
    edges; ``min_edges=0`` every changed frame. ``upright`` skips RapidOCR's text-direction
    classifier, which turns a line it judges upside down by 180 degrees before reading it: on
    video frames text is upright, and the classifier judged italic words upside down
    (``piano`` read as ``oupid``, ``goat`` as ``4D06``). `SamplingError` when the frames are
    not (T, H, W, 3) uint8 or the timestamps do not match them; `ConfigError` when the OCR
    package is missing.
    """
    frames = np.asarray(frames)
    times = [float(t) for t in timestamps]
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise SamplingError(
            f"read_frames: frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}"
        )
    if len(times) != len(frames):
        raise SamplingError(f"read_frames: {len(frames)} frames but {len(times)} timestamps")
    engine = ocr_engine() if len(frames) else None
    out: list[FrameText] = []
    last: tuple[np.ndarray, list[TextLine]] | None = None  # last OCRed frame and its lines
    for frame, seconds in zip(frames, times, strict=True):
        if (
            last is not None
            and changed_fraction(frame, last[0], level=change_level, side=change_side) < min_changed
        ):
            out.append(FrameText(seconds, list(last[1]), "unchanged"))
            continue
        if edge_fraction(frame, level=edge_level, side=edge_side) < min_edges:
            out.append(FrameText(seconds, [], "no-text"))
            continue
        # RapidOCR wants BGR.
        result, _elapsed = engine(np.ascontiguousarray(frame[..., ::-1]), use_cls=not upright)
        lines = _lines(result, min_score, frame)
        out.append(FrameText(seconds, lines))
        last = (frame, lines)
    return out


SAME_LINE_RATIO = 0.85
"""Least `difflib` similarity of two reads (letters and digits, without case) taken for one line
on screen: one character in seven may differ, so OCR's frame-to-frame jitter on a line that
stays (``Hello world...``, ``Helloworld..``, ``Hello worid...``) does not make it new text, while
short words one letter apart (``cat``, ``car``) stay different."""


def _letters(text: str) -> str:
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def _same_line(a: str, b: str) -> bool:
    return a == b or SequenceMatcher(None, a, b).ratio() >= SAME_LINE_RATIO


def new_text(frame_texts: Sequence[FrameText]) -> list[str]:
    """Per frame, the on-screen lines that were not on the previous frame (`SAME_LINE_RATIO`
    says when two reads are one line), as their `TextLine.phrase` joined with ``", "``; ``""``
    when nothing is new. Text that stays on screen is given once, at the frame where it
    appeared; text that leaves and comes back is given again."""
    out: list[str] = []
    before: list[str] = []
    for frame in frame_texts:
        now = [_letters(line.text) for line in frame.lines]
        fresh = [
            line.phrase
            for line, key in zip(frame.lines, now, strict=True)
            if not any(_same_line(key, seen) for seen in before)
        ]
        out.append(", ".join(fresh))
        before = now
    return out
