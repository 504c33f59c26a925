"""Procedural long-video QA: timelines of rendered events over real footage, with questions.

A `Timeline` is a video described, not encoded: a duration, a few background shots (real
footage frames from `longvid.train.render.Backgrounds`, slowly panned), cards with words that
appear and disappear, groups of coloured shapes (whose count may change once) and optional
subtitle cues. `make_sample` draws a timeline from ``(seed, split)``, asks one question about it
(`QUESTION_KINDS`: what / when / order / count / subtitle, in the spirit of the temporal
question types of MVBench, Li et al. 2024, and Video-MME, Fu et al. 2024) and renders frames at
the `uniform` sampler's timestamps, so training never decodes a video. Events are placed on
the sampler's slots, so whatever a question asks about is on screen in at least one sampled
frame. `write_clip` encodes a timeline to an H.264 mp4 (plus an .srt), for the demo and V-NIAH.

Splits use disjoint seed ranges (`split_seeds`) and the test/val splits draw their backgrounds
from footage the training split never sees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pysubs2
from PIL import Image

from longvid.errors import ConfigError
from longvid.train.render import (
    COLORS,
    FRAMES_PER_VIDEO,
    SHAPES,
    WORDS,
    Backgrounds,
    Card,
    Scene,
    Shapes,
    caption,
    distract,
    random_card,
    random_scene,
    random_shapes,
    render,
    vary_background,
)

QUESTION_KINDS: tuple[str, ...] = ("what", "when", "order", "count", "subtitle")
SPLITS: tuple[str, ...] = ("train", "val", "test")
SEEDS_PER_SPLIT = 1 << 40
"""Split ``i`` owns the seeds ``[i * SEEDS_PER_SPLIT, (i + 1) * SEEDS_PER_SPLIT)``."""

LETTERS = "ABCD"
MIN_EVENT_SECONDS = 2.0
"""Shortest a card or shape group stays on screen where the timeline has room (so a clip
written at a few frames per second shows it)."""
ORDINALS = ("first", "second", "third", "fourth", "fifth")
NEEDLE_QUESTION = "What word was written on the card?"
"""V-NIAH's question (`longvid.bench.mini_eval`), also asked of the training needle clips."""
OPEN_ANSWER = "Answer with a word or a short phrase."

_SUBJECTS = ("the train", "the bus", "the ferry", "the shop", "the museum", "the bakery",
             "the library", "the market", "the last boat", "the night bus")  # fmt: skip
_VERBS = ("leaves at", "opens at", "closes at", "arrives at", "stops at")
_TIMES = ("noon", "midnight", "six", "seven", "nine", "ten", "dawn", "dusk")


# --------------------------------------------------------------------------------------------
# Seeds and splits


def _split_index(split: str) -> int:
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r} (expected one of {', '.join(SPLITS)})")
    return SPLITS.index(split)


def split_seeds(split: str, n: int, start: int = 0) -> list[int]:
    """``n`` seeds of ``split`` from its ``start``-th on; the splits' ranges are disjoint."""
    base = _split_index(split) * SEEDS_PER_SPLIT
    if n < 0 or start < 0 or start + n > SEEDS_PER_SPLIT:
        raise ConfigError(f"seeds {start}..{start + n} are outside the {split} split's range")
    return list(range(base + start, base + start + n))


def _rng(seed: int, split: str, purpose: int) -> np.random.Generator:
    index = _split_index(split)
    if not index * SEEDS_PER_SPLIT <= seed < (index + 1) * SEEDS_PER_SPLIT:
        raise ConfigError(f"seed {seed} is not a {split} seed (use split_seeds({split!r}, n))")
    return np.random.default_rng([seed, index, purpose])


# --------------------------------------------------------------------------------------------
# Timelines


@dataclass(frozen=True)
class CardEvent:
    """A card on screen from ``start`` (inclusive) to ``end`` (exclusive), in seconds."""

    card: Card
    start: float
    end: float


@dataclass(frozen=True)
class ShapeEvent:
    """A shape group on screen from ``start`` to ``end``; consecutive events of one group
    (same shape and colour) with different counts are a count change."""

    shapes: Shapes
    start: float
    end: float


@dataclass(frozen=True)
class Shot:
    """A background shot: footage frame ``frame`` of the split's `Backgrounds`, a square crop
    of ``zoom`` of its side panning from ``pan_from`` to ``pan_to`` (fractions of the free
    space, left/top) over ``[start, end)``."""

    start: float
    end: float
    frame: int
    zoom: float
    pan_from: tuple[float, float]
    pan_to: tuple[float, float]


@dataclass(frozen=True)
class Timeline:
    """A procedural video: what is on screen when, and the subtitle cues (start, end, text)."""

    duration: float
    split: str
    shots: tuple[Shot, ...]
    cards: tuple[CardEvent, ...]
    shapes: tuple[ShapeEvent, ...]
    subtitles: tuple[tuple[float, float, str], ...]

    def scene_at(self, t: float) -> Scene:
        """The card and shape group on screen at time ``t``."""
        card = next((e.card for e in self.cards if e.start <= t < e.end), None)
        shapes = next((e.shapes for e in self.shapes if e.start <= t < e.end), None)
        return Scene(card, shapes)

    def shot_at(self, t: float) -> Shot:
        """The background shot at time ``t``."""
        return next((s for s in self.shots if s.start <= t < s.end), self.shots[-1])

    def card_of(self, word: str) -> CardEvent:
        """The card event showing ``word``."""
        return next(e for e in self.cards if e.card.word == word)


def _slot_ranges(
    rng: np.random.Generator, n_slots: int, k: int, dt: float
) -> list[tuple[int, int]]:
    """``k`` disjoint slot ranges ``[a, b)`` in time order, one per equal chunk of the slots.

    Each range is at most half its chunk (at least 3 slots allowed), lasts at least
    `MIN_EVENT_SECONDS` where the chunk has room, and never fills its whole chunk (so events
    are separated)."""
    edges = np.linspace(0, n_slots, k + 1).round().astype(int)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        room = hi - lo
        fit = max(1, room - 1)
        shortest = min(fit, max(1, math.ceil(MIN_EVENT_SECONDS / dt)))
        longest = max(shortest, min(fit, max(3, room // 2)))
        length = int(rng.integers(shortest, longest + 1))
        a = lo + int(rng.integers(room - length + 1))
        out.append((a, a + length))
    return out


def _span(rng: np.random.Generator, a: int, b: int, dt: float) -> tuple[float, float]:
    """Times covering the centres of slots a..b-1 (slot k's centre is ``(k + 0.5) * dt``)."""
    return float(a * dt + rng.uniform(0, 0.25) * dt), float(b * dt - rng.uniform(0, 0.25) * dt)


def _sentences(rng: np.random.Generator, n: int) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        s = f"{_SUBJECTS[rng.integers(len(_SUBJECTS))]} {_VERBS[rng.integers(len(_VERBS))]} "
        s += _TIMES[int(rng.integers(len(_TIMES)))]
        if s not in out:
            out.append(s)
    return out


def make_timeline(
    rng: np.random.Generator,
    split: str,
    *,
    n_slots: int = 16,
    duration: float | None = None,
    subtitles: bool = False,
) -> Timeline:
    """A random timeline whose events each cover the centre of at least one of ``n_slots``
    equal time slots (the timestamps of ``uniform(n_slots)``). 2-4 cards with distinct words,
    1-2 shape groups (distinct shape/colour; the count may change once), 1-3 background
    shots, and with ``subtitles`` a cue per card plus up to two cues between cards."""
    if n_slots < 6:
        raise ConfigError(f"n_frames must be at least 6 for a QA timeline, got {n_slots}")
    _split_index(split)
    duration = float(rng.uniform(20.0, 120.0)) if duration is None else float(duration)
    if not duration > 0:
        raise ConfigError(f"duration must be positive, got {duration}")
    dt = duration / n_slots

    k = int(rng.integers(2, min(4, n_slots // 3) + 1))
    words = rng.choice(len(WORDS), size=k, replace=False)
    cards = []
    for w, (a, b) in zip(words, _slot_ranges(rng, n_slots, k, dt), strict=True):
        start, end = _span(rng, a, b, dt)
        cards.append(CardEvent(random_card(rng, WORDS[int(w)], top=True), start, end))

    g = int(rng.integers(1, 3))
    kinds = rng.choice(len(SHAPES) * len(COLORS), size=g, replace=False)
    shapes = []
    for kind, (a, b) in zip(kinds, _slot_ranges(rng, n_slots, g, dt), strict=True):
        shape, color = SHAPES[int(kind) % len(SHAPES)], tuple(COLORS)[int(kind) // len(SHAPES)]
        group = random_shapes(rng, bottom=True, shape=shape, color=color)
        start, end = _span(rng, a, b, dt)
        if b - a >= 2 and rng.integers(2):
            cut = float(int(rng.integers(a + 1, b)) * dt)
            other = int(rng.choice([c for c in range(1, 6) if c != group.count]))
            second = Shapes(shape, color, other, group.x, group.y, group.size)
            shapes += [ShapeEvent(group, start, cut), ShapeEvent(second, cut, end)]
        else:
            shapes.append(ShapeEvent(group, start, end))

    cues: list[tuple[float, float, str]] = []
    if subtitles:
        gaps = [(cards[i].end, cards[i + 1].start) for i in range(k - 1)]
        gaps = [(s, e) for s, e in gaps if e - s > 1.0][:2]
        texts = _sentences(rng, k + len(gaps))
        cues = [(e.start, e.end, texts[i]) for i, e in enumerate(cards)]
        cues += [(s + 0.2, e - 0.2, texts[k + i]) for i, (s, e) in enumerate(gaps)]
        cues.sort()

    n_shots = int(rng.integers(1, 4))
    cuts = [0.0, *sorted(float(x) for x in rng.uniform(0, duration, n_shots - 1)), duration]
    shots = tuple(
        Shot(
            start=cuts[i],
            end=cuts[i + 1],
            frame=int(rng.integers(1 << 16)),
            zoom=float(rng.uniform(0.65, 0.9)),
            pan_from=(float(rng.uniform()), float(rng.uniform())),
            pan_to=(float(rng.uniform()), float(rng.uniform())),
        )
        for i in range(n_shots)
    )
    return Timeline(duration, split, shots, tuple(cards), tuple(shapes), tuple(cues))


def _background_size(width: int, height: int) -> int:
    side = max(width, height)
    return 160 if side <= 160 else 320 if side <= 320 else 640


def background_at(
    timeline: Timeline, t: float, backgrounds: Backgrounds, size: tuple[int, int]
) -> np.ndarray:
    """The footage at time ``t``: the shot's frame, cropped and panned, ``(H, W, 3)``."""
    width, height = size
    shot = timeline.shot_at(t)
    frame = backgrounds.frame(shot.frame)
    side = frame.shape[0]
    cw = shot.zoom * side
    ch = min(side, cw * height / width)
    u = 0.0 if shot.end <= shot.start else (t - shot.start) / (shot.end - shot.start)
    fx = shot.pan_from[0] + u * (shot.pan_to[0] - shot.pan_from[0])
    fy = shot.pan_from[1] + u * (shot.pan_to[1] - shot.pan_from[1])
    left, top = fx * (side - cw), fy * (side - ch)
    img = Image.fromarray(frame).resize(
        (width, height), Image.Resampling.BILINEAR, box=(left, top, left + cw, top + ch)
    )
    return np.asarray(img)


def render_timeline(
    timeline: Timeline,
    times: list[float] | np.ndarray,
    size: int | tuple[int, int] = 128,
    backgrounds: Backgrounds | None = None,
) -> np.ndarray:
    """Frames ``(T, H, W, 3)`` uint8 of ``timeline`` at ``times``; ``size`` is an int for
    square frames or ``(width, height)``. Backgrounds default to the timeline's split's."""
    wh = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if backgrounds is None:
        backgrounds = Backgrounds.load(timeline.split, size=_background_size(*wh))
    frames = [
        render(timeline.scene_at(float(t)), background_at(timeline, float(t), backgrounds, wh), wh)
        for t in times
    ]
    return np.stack(frames) if frames else np.zeros((0, wh[1], wh[0], 3), np.uint8)


def uniform_times(duration: float, n: int) -> list[float]:
    """The centres of ``n`` equal segments of ``[0, duration)``, as `uniform` samples them."""
    return [(k + 0.5) * duration / n for k in range(n)]


# --------------------------------------------------------------------------------------------
# Questions


@dataclass
class VideoQASample:
    """One procedural video-QA example: a question about a timeline, its answer, and frames
    rendered at ``timestamps``. For multiple choice, ``answer`` is a letter (A-D) and
    ``answer_text`` the option it names; otherwise both are the short answer."""

    seed: int
    split: str
    kind: str
    question: str
    answer: str
    options: list[str] | None
    frames: np.ndarray
    timestamps: list[float]
    subtitles: list[tuple[float, float, str]]
    duration: float
    timeline: Timeline
    answer_text: str = ""

    def prompt(self) -> str:
        """The question as asked: with lettered options and an instruction for multiple
        choice, else with a request for a short answer."""
        if self.options is None:
            return open_prompt(self.question)
        lines = [f"{LETTERS[i]}. {o}" for i, o in enumerate(self.options)]
        return "\n".join([self.question, *lines, "Answer with the option's letter."])


def open_prompt(question: str) -> str:
    """An open question as asked: the question and a request for a short answer."""
    return f"{question}\n{OPEN_ANSWER}"


def _distractors(answer: str, pool: list[str], n: int = 3) -> list[str]:
    """The first ``n`` distinct entries of ``pool`` other than ``answer``."""
    out: list[str] = []
    for p in pool:
        if p != answer and p not in out and len(out) < n:
            out.append(p)
    return out


def _time_options(rng: np.random.Generator, answer: int, duration: float) -> list[str]:
    gap = max(2, math.ceil(duration / 8))
    candidates = [t for t in range(0, int(duration) + 1) if abs(t - answer) >= gap]
    picked: list[int] = []
    for t in rng.permutation(candidates):
        if all(abs(int(t) - p) >= gap for p in picked):
            picked.append(int(t))
        if len(picked) == 3:
            break
    return [f"{t} s" for t in picked]


def _third(e: CardEvent, duration: float) -> str | None:
    parts = ("the beginning", "the middle", "the end")
    a, b = int(3 * e.start // duration), int(3 * min(e.end, duration - 1e-9) // duration)
    return parts[a] if a == b else None


def _ask(rng: np.random.Generator, tl: Timeline, kind: str) -> tuple[str, str, list[str]]:
    """(question, short answer, wrong options) of ``kind`` about ``tl``."""
    cards = list(tl.cards)
    words = [e.card.word for e in cards]
    others = [w for w in (WORDS[int(i)] for i in rng.permutation(len(WORDS))) if w not in words]
    if kind == "what":
        i = int(rng.integers(len(cards)))
        colours = [e.card.card_color for e in cards]
        if colours.count(colours[i]) == 1 and rng.integers(2):
            q = f"What word was written on the {colours[i]} card?"
        else:
            q = f"What was the {ORDINALS[i]} word shown on a card?"
        pool = [w for w in words if w != words[i]] + others
        return q, words[i], _distractors(words[i], pool)
    if kind == "when":
        e = cards[int(rng.integers(len(cards)))]
        third = _third(e, tl.duration)
        if third is not None and rng.integers(2):
            q = f'When did the word "{e.card.word}" appear: at the beginning, in the middle or '
            q += "at the end of the video?"
            return q, third, [p for p in ("the beginning", "the middle", "the end") if p != third]
        answer = round(e.start)
        q = f'At about what time (in seconds) did the word "{e.card.word}" appear?'
        return q, f"{answer} s", _time_options(rng, answer, tl.duration)
    if kind == "order":
        i, j = sorted(int(x) for x in rng.choice(len(cards), size=2, replace=False))
        pair = [words[i], words[j]] if rng.integers(2) else [words[j], words[i]]
        q = f'Which word appeared first, "{pair[0]}" or "{pair[1]}"?'
        return q, words[i], [words[j]]
    if kind == "count":
        groups: dict[tuple[str, str], list[ShapeEvent]] = {}
        for ev in tl.shapes:
            groups.setdefault((ev.shapes.color, ev.shapes.shape), []).append(ev)
        (color, shape), evs = list(groups.items())[int(rng.integers(len(groups)))]
        if len(evs) == 1:
            q = f"How many {color} {shape}s were shown?"
        else:
            q = f"How many {color} {shape}s were shown after their number changed?"
        answer = str(evs[-1].shapes.count)
        wrong = [str(c) for c in rng.permutation(np.arange(1, 6)) if str(c) != answer]
        return q, answer, wrong[:3]
    if kind == "subtitle":
        if not tl.subtitles:
            raise ConfigError("a subtitle question needs a timeline with subtitles")
        e = cards[int(rng.integers(len(cards)))]
        said = next(text for s, end, text in tl.subtitles if s == e.start and end == e.end)
        q = f'What did the subtitle say while the word "{e.card.word}" was on screen?'
        pool = [text for *_, text in tl.subtitles if text != said]
        pool += [s for s in _sentences(rng, 6) if s != said]
        return q, said, _distractors(said, pool)
    raise ConfigError(f"unknown question kind {kind!r} (expected one of {QUESTION_KINDS})")


def make_sample(
    seed: int,
    split: str,
    *,
    kind: str | None = None,
    n_frames: int = 16,
    size: int = 128,
    duration: float | None = None,
    multiple_choice: bool = False,
    subtitles: bool | None = None,
) -> VideoQASample:
    """One QA example, deterministic in ``(seed, split)`` and the arguments. ``kind`` None
    picks one at random; ``subtitles`` None adds cues with probability 1/2 (always for a
    subtitle question). Frames are rendered at ``uniform(n_frames)``'s timestamps."""
    rng = _rng(seed, split, 0)
    if kind is None:
        kind = QUESTION_KINDS[int(rng.integers(len(QUESTION_KINDS)))]
    if kind not in QUESTION_KINDS:
        raise ConfigError(f"unknown question kind {kind!r} (expected one of {QUESTION_KINDS})")
    if subtitles is None:
        subtitles = kind == "subtitle" or bool(rng.integers(2))
    if kind == "subtitle" and not subtitles:
        raise ConfigError("a subtitle question needs subtitles=True (or None)")
    tl = make_timeline(rng, split, n_slots=n_frames, duration=duration, subtitles=subtitles)
    question, answer, wrong = _ask(rng, tl, kind)
    options = None
    answer_text = answer
    if multiple_choice:
        options = [answer, *wrong[:3]]
        options = [options[int(i)] for i in rng.permutation(len(options))]
        answer = LETTERS[options.index(answer_text)]
    times = uniform_times(tl.duration, n_frames)
    return VideoQASample(
        seed=seed,
        split=split,
        kind=kind,
        question=question,
        answer=answer,
        options=options,
        frames=render_timeline(tl, times, size),
        timestamps=times,
        subtitles=list(tl.subtitles),
        duration=tl.duration,
        timeline=tl,
        answer_text=answer_text,
    )


def caption_sample(seed: int, split: str, size: int = 128) -> tuple[np.ndarray, str, Scene]:
    """One rendered frame over the split's footage, its caption and its scene (stage-1 and
    contrastive data), deterministic in ``(seed, split)``."""
    rng = _rng(seed, split, 1)
    background = Backgrounds.load(split, size=_background_size(size, size)).sample(rng, size)
    scene = random_scene(rng)
    return render(scene, background, size), caption(scene), scene


def needle_card(word: str, size: int | tuple[int, int] = 128, seed: int = 0) -> np.ndarray:
    """An image of one card showing ``word`` on a plain grey ground (a V-NIAH needle)."""
    rng = np.random.default_rng([seed, 3])
    card = random_card(rng, word)
    card = Card(card.word, card.text_color, card.card_color, card.font, card.size, 0.5, 0.5)
    wh = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    ground = np.full((wh[1], wh[0], 3), 128, np.uint8)
    return render(Scene(card, None), ground, wh)


def needle_clip(
    seed: int,
    split: str,
    n_haystack: int = 8,
    size: int = 128,
    *,
    footage_frames: int = FRAMES_PER_VIDEO,
    photos: bool = False,
    extra: bool = False,
    vary: bool = False,
    distractors: bool = False,
) -> tuple[np.ndarray, list[float], str]:
    """A short clip in V-NIAH's form: ``n_haystack`` frames of the split's footage at one frame
    per second with one `needle_card` (a random word, a random style) spliced in at a random
    place. Returns ``(frames (n_haystack + 1, size, size, 3), times, word)``; the times count
    seconds from 0, as V-NIAH's do. Deterministic in ``(seed, split)``. The footage is
    ``Backgrounds.load(split, frames_per_video=footage_frames, photos=photos, extra=extra)``;
    ``vary`` passes each haystack frame through `vary_background` (colours, mirror);
    ``distractors`` turns a third of the haystack frames into card-free `distract` frames
    (coloured blobs, raised saturation).

    The haystack walks through the footage from a random frame, each frame a random crop, and in
    half the clips a third of the frames carry a shape group: the split has only ~100 footage
    frames, and a model trained on them alone mistook unseen footage for the needle.
    """
    if n_haystack < 1:
        raise ConfigError(f"a needle clip needs at least one haystack frame, got {n_haystack}")
    rng = _rng(seed, split, 2)
    look = _rng(seed, split, 3)  # its own stream: ``vary`` keeps the word, crops and shapes
    decoy = _rng(seed, split, 4)  # and so does ``distractors``
    footage = Backgrounds.load(
        split,
        size=_background_size(size, size),
        frames_per_video=footage_frames,
        photos=photos,
        extra=extra,
    )
    start = int(rng.integers(len(footage.frames)))
    with_shapes = bool(rng.integers(2))
    haystack = []
    for k in range(n_haystack):
        side = footage.frame(start + k).shape[0]
        crop = round(side * float(rng.uniform(0.6, 1.0)))
        left, top = (int(rng.integers(side - crop + 1)) for _ in range(2))
        frame = Image.fromarray(footage.frame(start + k)).resize(
            (size, size), Image.Resampling.BILINEAR, box=(left, top, left + crop, top + crop)
        )
        ground = vary_background(look, np.asarray(frame)) if vary else np.asarray(frame)
        if distractors and decoy.random() < 1 / 3:
            ground = distract(decoy, ground)
        shapes = random_shapes(rng) if with_shapes and rng.random() < 1 / 3 else None
        haystack.append(render(Scene(None, shapes), ground, size))
    word = WORDS[int(rng.integers(len(WORDS)))]
    card = needle_card(word, size, seed=int(rng.integers(1, 1 << 31)))
    haystack.insert(int(rng.integers(n_haystack + 1)), card)
    return np.stack(haystack), [float(k) for k in range(n_haystack + 1)], word


# --------------------------------------------------------------------------------------------
# Writing clips


def write_clip(
    sample: VideoQASample | Timeline,
    path: Path,
    fps: float = 4.0,
    size: tuple[int, int] = (320, 180),
) -> Path:
    """Render a timeline at ``fps`` into an H.264 mp4 of ``size`` (width, height; even) at
    ``path``; its subtitles, if any, go beside it as ``path.with_suffix(".srt")``."""
    tl = sample.timeline if isinstance(sample, VideoQASample) else sample
    width, height = int(size[0]), int(size[1])
    if width % 2 or height % 2 or width <= 0 or height <= 0:
        raise ConfigError(f"clip size must be positive and even for yuv420p, got {size}")
    if not fps > 0:
        raise ConfigError(f"fps must be positive, got {fps}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1001)
    n = max(1, math.ceil(tl.duration * float(rate) - 1e-9))
    backgrounds = Backgrounds.load(tl.split, size=_background_size(width, height))
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.time_base = 1 / rate
        stream.options = {"preset": "veryfast", "crf": "23"}
        for k in range(n):
            rgb = render_timeline(tl, [k / float(rate)], (width, height), backgrounds)[0]
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = k
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    if tl.subtitles:
        subs = pysubs2.SSAFile()
        for start, end, text in tl.subtitles:
            event = pysubs2.SSAEvent(start=round(start * 1000), end=round(end * 1000), text=text)
            subs.append(event)
        subs.save(str(path.with_suffix(".srt")), format_="srt")
    return path
