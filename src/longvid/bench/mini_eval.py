"""Measured benchmarks of longvid-mini: held-out procedural video QA and V-NIAH with word cards.

Held-out QA (`evaluate_qa`): the test split of `longvid.train.videoqa` (seeds and background
footage the training split never sees), every question kind, multiple-choice and open
separately, answered by greedy generation from exactly the training prompt
(`longvid.train.mini.prompt_embeds`; LLaVA, Liu et al. 2023, evaluates the same way) and scored
by normalised exact match: the option letter for multiple choice, the short answer for open
questions. Two baselines run on the same questions: chance (one over the options; 0 for open
answers) and text-only, the same LLM with the model's LoRA and the same prompt with zero visual
tokens, which shows how much of the accuracy the frames carry (the "blind" baseline of
Video-MME, Fu et al. 2024, section 3). With ``text_channels`` the subtitle channel is on and the
on-screen text of the frames (OCR) goes into the captions the way ``longvid ask --ocr`` puts it
there.

V-NIAH (`MiniVNIAH`): LongVA's visual needle in a haystack (Zhang et al. 2024, section 4,
`longvid.bench.vniah`) for longvid-mini: the needle is a rendered word card
(`longvid.train.videoqa.needle_card`) spliced as an extra frame into real footage (the test
split's background frames at 1 frame/s, or any videos through `vniah.haystack_features`), the
question "What word was written on the card?" in the training prompt, scored teacher-forced on
the word. `scaled_rope` raises the language model's RoPE base (LongVA's long-context trick,
section 3.1) to measure its effect on the same grid.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import time
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from longvid.bench.grid import Cell
from longvid.errors import ConfigError, ContextOverflowError
from longvid.models.modeling import LongVideoLM
from longvid.prompting.prompt import Prompt, Text, Visual, assemble, build_video_prompt
from longvid.prompting.templates import get_template, render_parts
from longvid.train import videoqa
from longvid.train.mini import Example, prompt_embeds
from longvid.train.videoqa import (
    QUESTION_KINDS,
    VideoQASample,
    make_sample,
    open_prompt,
    split_seeds,
)

__all__ = [
    "NEEDLE_QUESTION",
    "MiniVNIAH",
    "QAItem",
    "QAReport",
    "answer_letter",
    "evaluate_qa",
    "greedy_answer",
    "is_correct",
    "max_vniah_frames",
    "normalise_answer",
    "qa_samples",
    "scaled_rope",
    "text_only_embeds",
    "vniah_frames",
    "VNIAH_SIZES",
]

MAX_QA_FRAMES = 16
"""The issue caps QA clips at 16 frames (training used 6-12)."""
NEEDLE_QUESTION = open_prompt(videoqa.NEEDLE_QUESTION)
"""The V-NIAH question, in the form the training prompts ask open questions
(`VideoQASample.prompt`, and stage 2's needle clips, `longvid.train.mini.needle_example`)."""
NEEDLE_WORDS: tuple[str, ...] = ("lemon", "piano", "zebra")
OCR_SIDE = 192
"""Frames are upscaled to this side before OCR: on 12 test clips PP-OCR read every card word at
128 and 192 px (fewer spurious reads at 192: 5 frames against 10), and missed more as frames
grow (42/45 words at 256 px, 27/45 at 384)."""

# --------------------------------------------------------------------------------------------
# Scoring


def normalise_answer(text: str) -> str:
    """Lower case, NFKC, punctuation and quotes to spaces, whitespace collapsed: ``" Apple."``
    and ``"apple"`` both give ``"apple"``."""
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


def answer_letter(text: str, letters: str = "ABCD") -> str | None:
    """The option letter a multiple-choice answer starts with (``"B."``, ``"(b)"``, ``"B
    apple"`` -> ``"B"``), or None."""
    words = normalise_answer(text).split()
    if words and len(words[0]) == 1 and words[0].upper() in letters:
        return words[0].upper()
    return None


def is_correct(predicted: str, expected: str, multiple_choice: bool) -> bool:
    """Normalised exact match: the letter for multiple choice, the whole answer otherwise."""
    if multiple_choice:
        return answer_letter(predicted) == expected.strip().upper()
    return normalise_answer(predicted) == normalise_answer(expected) != ""


# --------------------------------------------------------------------------------------------
# Prompts and generation


def text_only_embeds(model: LongVideoLM, question: str) -> tuple[Tensor, int]:
    """The training prompt of ``question`` with zero visual tokens (the text-only baseline):
    ``(inputs_embeds (1, L, D), visual token count)``."""
    template = get_template(model.config.chat_template)
    before, after = render_parts(template, question)
    prompt = Prompt((Text(before), Visual(0), Text(after)), template.stop_strings, template.name)
    width = model.language_model.get_input_embeddings().weight.shape[1]
    assembled = assemble(
        prompt,
        model.tokenizer,
        model.embed_tokens,
        torch.zeros(0, width, dtype=model.dtype, device=model.device),
        model.config.context_length,
    )
    return assembled.inputs_embeds, assembled.visual_token_count


def greedy_answer(model: LongVideoLM, embeds: Tensor, max_new_tokens: int = 8) -> str:
    """Greedy decoding from ``embeds (1, L, D)`` with the KV cache, up to ``max_new_tokens``
    or the template's stop string (cut off), stripped."""
    return _greedy(model, embeds, max_new_tokens)[0]


@torch.no_grad()
def _greedy(model: LongVideoLM, embeds: Tensor, max_new_tokens: int) -> tuple[str, float]:
    """`greedy_answer` and the seconds its prefill (the forward pass over the prompt) took."""
    tokenizer = model.tokenizer
    stops = [s for s in get_template(model.config.chat_template).stop_strings if s]
    eos = tokenizer.eos_token_id
    lm = model.language_model
    started = time.perf_counter()
    out = lm(inputs_embeds=embeds, use_cache=True)
    prefill = time.perf_counter() - started
    ids: list[int] = []
    text = ""
    for _ in range(max_new_tokens):
        token = int(out.logits[0, -1].argmax())
        ids.append(token)
        text = tokenizer.decode(ids, skip_special_tokens=False)
        if token == eos or any(s in text for s in stops):
            break
        step = torch.tensor([[token]], device=embeds.device)
        out = lm(input_ids=step, cache=out.cache, use_cache=True)
    for stop in stops:
        text = text.split(stop)[0]
    if tokenizer.eos_token:
        text = text.split(tokenizer.eos_token)[0]
    return text.strip(), prefill


def _choose(model: LongVideoLM, embeds: Tensor, options: list[str]) -> str:
    """The most likely option as ``"B. lemon"`` (`longvid.generate.score_choices`)."""
    from longvid.generate import score_choices

    best = int(np.argmax(score_choices(model, embeds, options)))
    return f"{videoqa.LETTERS[best]}. {options[best]}"


def upscale_for_ocr(frames: np.ndarray) -> np.ndarray:
    """Rendered frames (T, S, S, 3) at `OCR_SIDE` px (bicubic) when smaller: the 128-px frames
    the tower sees are too small for PP-OCR, as a user's decoded video is not."""
    from PIL import Image

    if frames.shape[1] >= OCR_SIDE:
        return frames
    side = (OCR_SIDE, OCR_SIDE)
    return np.stack(
        [np.asarray(Image.fromarray(f).resize(side, Image.Resampling.BICUBIC)) for f in frames]
    )


def _ocr_captions(model: LongVideoLM, example: Example) -> list[str | None]:
    """Each frame's caption with its new on-screen text and subtitle, as ``generate(ocr=True)``
    writes them (`longvid.generate._channel_captions`), OCR on frames upscaled to `OCR_SIDE`."""
    from longvid.generate import _channel_captions
    from longvid.io.subtitles import Cue, Subtitles

    frames = upscale_for_ocr(example.frames)
    subs = Subtitles([Cue(float(a), float(b), t) for a, b, t in example.subtitles or []])
    times = np.asarray(example.times, dtype=np.float64)
    captions, _ = _channel_captions(model, times, frames, subs, "subtitles")
    return captions


def _captioned_embeds(model: LongVideoLM, example: Example, captions: list[str | None]) -> Tensor:
    """`prompt_embeds` with given per-frame captions instead of the plain subtitle ones."""
    from longvid.prompting.minigpt4video import build_interleaved_prompt
    from longvid.train.vision import to_pixels

    config = model.config
    pixels = to_pixels(
        example.frames, config.image_processing.image_mean, config.image_processing.image_std
    )
    times = np.asarray(example.times, dtype=np.float64)
    compressed = model.compressor(
        model.encode_images(pixels),
        projector=model.project,
        frame_times=times,
        question=example.question,
    )
    prompt = build_interleaved_prompt(
        get_template(config.chat_template),
        example.question,
        times.tolist(),
        compressed.tokens_per_frame,
        captions,
        timestamps=True,
    )
    return assemble(
        prompt,
        model.tokenizer,
        model.embed_tokens,
        compressed.tokens.to(model.dtype),
        config.context_length,
    ).inputs_embeds


# --------------------------------------------------------------------------------------------
# Held-out QA


@dataclass
class QAItem:
    """One test question: what was asked and expected, the model's and the text-only
    baseline's answers, chance, prompt length and prefill seconds of the video prompt (NaN
    where the options were scored instead of an answer decoded)."""

    seed: int
    kind: str
    multiple_choice: bool
    question: str
    expected: str
    predicted: str
    correct: bool
    text_only: str
    text_only_correct: bool
    chance: float
    prompt_tokens: int
    prefill_s: float


@dataclass
class QAReport:
    """The items of one `evaluate_qa` run, with accuracy per kind and form."""

    text_channels: bool
    n_frames: int
    items: list[QAItem] = field(default_factory=list)

    def accuracy(
        self, method: str = "model", *, kind: str | None = None, mc: bool | None = None
    ) -> float:
        """Mean score of ``method`` (``"model"``, ``"text_only"`` or ``"chance"``) over the
        items of ``kind`` and form (``mc`` True: multiple choice; None: both); NaN if none."""
        picked = [
            i
            for i in self.items
            if (kind is None or i.kind == kind) and (mc is None or i.multiple_choice == mc)
        ]
        if not picked:
            return float("nan")
        value = {
            "model": lambda i: float(i.correct),
            "text_only": lambda i: float(i.text_only_correct),
            "chance": lambda i: i.chance,
        }
        if method not in value:
            raise ConfigError(f"unknown method {method!r} (model, text_only or chance)")
        return float(np.mean([value[method](i) for i in picked]))

    @property
    def kinds(self) -> list[str]:
        """The question kinds asked, in `QUESTION_KINDS` order."""
        return [k for k in QUESTION_KINDS if any(i.kind == k for i in self.items)]

    def rows(self) -> list[dict[str, Any]]:
        """One row per kind and form (``"mc"``/``"open"``) plus an ``"all"`` row: n and the
        accuracy of the model, the text-only baseline and chance."""
        out = []
        for kind in [*self.kinds, None]:
            for mc in (True, False):
                n = sum(
                    1
                    for i in self.items
                    if (kind is None or i.kind == kind) and i.multiple_choice == mc
                )
                if not n:
                    continue
                out.append(
                    {
                        "kind": kind or "all",
                        "form": "mc" if mc else "open",
                        "n": n,
                        **{m: self.accuracy(m, kind=kind, mc=mc) for m in _METHODS},
                    }
                )
        return out

    @property
    def what(self) -> float:
        """Accuracy on the "what" (which word) questions, both forms (target: >= 0.9)."""
        return self.accuracy(kind="what")

    @property
    def mean_prefill_s(self) -> float:
        """Mean prefill seconds of the video prompts that were decoded from; NaN if none."""
        timed = [i.prefill_s for i in self.items if not math.isnan(i.prefill_s)]
        return float(np.mean(timed)) if timed else math.nan


_METHODS = ("model", "text_only", "chance")
MC_SCORING = ("letter", "options")
"""How `evaluate_qa` answers multiple choice: the decoded letter, or the most likely option."""


def qa_samples(
    n_per_kind: int,
    *,
    split: str = "test",
    text_channels: bool,
    n_frames: int = MAX_QA_FRAMES,
    seed: int = 0,
    kinds: Sequence[str] | None = None,
) -> Iterator[VideoQASample]:
    """``n_per_kind`` samples of every kind of ``kinds`` (default: all; never subtitle
    questions without the text channels) in each form, multiple choice first, from
    the block of ``split``'s seeds that (``seed``, kind, form) owns."""
    if not 6 <= n_frames <= MAX_QA_FRAMES:
        raise ConfigError(f"QA clips have 6 to {MAX_QA_FRAMES} frames, got n_frames={n_frames}")
    if not 1 <= n_per_kind <= _SEED_BLOCK:
        raise ConfigError(f"n_per_kind must be in 1..{_SEED_BLOCK}, got {n_per_kind}")
    unknown = set(kinds or ()) - set(QUESTION_KINDS)
    if unknown:
        raise ConfigError(f"unknown question kinds {sorted(unknown)} (one of {QUESTION_KINDS})")
    kinds = [
        k
        for k in QUESTION_KINDS
        if (kinds is None or k in kinds) and (text_channels or k != "subtitle")
    ]
    for kind in kinds:
        for form, mc in enumerate((True, False)):
            block = (seed * len(QUESTION_KINDS) + QUESTION_KINDS.index(kind)) * 2 + form
            for s in split_seeds(split, n_per_kind, start=block * _SEED_BLOCK):
                yield make_sample(
                    s,
                    split,
                    kind=kind,
                    n_frames=n_frames,
                    multiple_choice=mc,
                    subtitles=text_channels,
                )


_SEED_BLOCK = 10**5
"""Each (seed, kind, form) owns a block of test seeds, so a question stays the same whatever
``n_per_kind`` or the kinds asked."""


@torch.no_grad()
def evaluate_qa(
    model: LongVideoLM,
    *,
    n_per_kind: int,
    split: str = "test",
    text_channels: bool,
    n_frames: int = MAX_QA_FRAMES,
    seed: int = 0,
    ocr: bool = True,
    max_new_tokens: int = 8,
    kinds: Sequence[str] | None = None,
    mc_scoring: str = "letter",
) -> QAReport:
    """Held-out QA accuracy of ``model`` per question kind and form, with the chance and
    text-only baselines on the same questions.

    ``text_channels=False``: frames only, no subtitle questions. ``text_channels=True``: the
    subtitle channel interleaved after each frame, plus (``ocr=True``) the frames' on-screen
    text read by OCR, in ``generate(ocr=True)``'s caption form; ``ocr=False`` gives exactly the
    training prompt's plain subtitle captions. ``kinds`` limits the question kinds.

    ``mc_scoring`` is how multiple-choice questions are answered, by the model and the text-only
    baseline alike: ``"letter"`` (the training prompt, lettered options, the letter decoded
    greedily) or ``"options"`` (the cloze form: the question asked open, each option scored as
    the whole answer by `longvid.generate.score_choices`, the most likely one taken).
    """
    if mc_scoring not in MC_SCORING:
        raise ConfigError(f"unknown mc_scoring {mc_scoring!r} (one of {MC_SCORING})")
    report = QAReport(text_channels, n_frames)
    for sample in qa_samples(
        n_per_kind,
        split=split,
        text_channels=text_channels,
        n_frames=n_frames,
        seed=seed,
        kinds=kinds,
    ):
        mc = sample.options is not None
        cloze = mc and mc_scoring == "options"
        example = Example(
            sample.frames,
            list(sample.timestamps),
            open_prompt(sample.question) if cloze else sample.prompt(),
            sample.answer,
            list(sample.subtitles) if text_channels else None,
        )
        if text_channels and ocr:
            embeds = _captioned_embeds(model, example, _ocr_captions(model, example))
        else:
            embeds, _ = prompt_embeds(model, example)
        blind, _ = text_only_embeds(model, example.question)
        if cloze:
            predicted, prefill = _choose(model, embeds, sample.options), math.nan
            text_only = _choose(model, blind, sample.options)
        else:
            predicted, prefill = _greedy(model, embeds, max_new_tokens)
            text_only = greedy_answer(model, blind, max_new_tokens)
        report.items.append(
            QAItem(
                seed=sample.seed,
                kind=sample.kind,
                multiple_choice=mc,
                question=example.question,
                expected=sample.answer,
                predicted=predicted,
                correct=is_correct(predicted, sample.answer, mc),
                text_only=text_only,
                text_only_correct=is_correct(text_only, sample.answer, mc),
                chance=1.0 / len(sample.options) if mc else 0.0,
                prompt_tokens=int(embeds.shape[1]),
                prefill_s=prefill,
            )
        )
    return report


# --------------------------------------------------------------------------------------------
# RoPE base


def _rotary_modules(model: LongVideoLM) -> list[torch.nn.Module]:
    return [
        m
        for m in model.language_model.modules()
        if isinstance(getattr(m, "inv_freq", None), Tensor)
    ]


def _rope_theta(config: Any) -> float:
    params = getattr(config, "rope_parameters", None) or {}
    theta = params.get("rope_theta", getattr(config, "rope_theta", None))
    if theta is None:
        raise ConfigError("the language model's config has no rope_theta")
    return float(theta)


def _set_rope_theta(model: LongVideoLM, theta: float) -> None:
    """Rescale every rotary module's ``inv_freq = theta ** (-2i / d)`` to the new base (default
    RoPE) and record the base in the language model's config."""
    config = model.language_model.config
    old = _rope_theta(config)
    power = math.log(theta) / math.log(old)
    for module in _rotary_modules(model):
        module.inv_freq = module.inv_freq.double().pow(power).to(module.inv_freq.dtype)
        if isinstance(getattr(module, "original_inv_freq", None), Tensor):
            module.original_inv_freq = module.inv_freq.clone()
    params = getattr(config, "rope_parameters", None)
    if isinstance(params, dict):
        params["rope_theta"] = float(theta)
    if hasattr(config, "rope_theta"):
        config.rope_theta = float(theta)


@contextlib.contextmanager
def scaled_rope(model: LongVideoLM, factor: float) -> Iterator[float]:
    """Run with the language model's RoPE base multiplied by ``factor`` (LongVA's longer
    context at inference: a larger base slows every rotation); restored on exit. Yields the
    base in use."""
    if not factor > 0:
        raise ConfigError(f"the RoPE factor must be positive, got {factor}")
    if not _rotary_modules(model):
        raise ConfigError("the language model has no rotary embedding to rescale")
    base = _rope_theta(model.language_model.config)
    if factor != 1.0:
        _set_rope_theta(model, base * factor)
    try:
        yield base * factor
    finally:
        if factor != 1.0:
            _set_rope_theta(model, base)


# --------------------------------------------------------------------------------------------
# V-NIAH


def _frame_pixels(model: LongVideoLM, frames: np.ndarray) -> Tensor:
    """``(N, S, S, 3)`` uint8 frames resized to the tower's side and normalised."""
    from PIL import Image

    from longvid.train.vision import to_pixels

    side = int(model.vision_tower.config.image_size)
    if frames.shape[1:3] != (side, side):
        frames = np.stack(
            [
                np.asarray(Image.fromarray(f).resize((side, side), Image.Resampling.BILINEAR))
                for f in frames
            ]
        )
    processing = model.config.image_processing
    return to_pixels(frames, processing.image_mean, processing.image_std).to(model.device)


def max_vniah_frames(model: LongVideoLM, question: str = NEEDLE_QUESTION) -> int:
    """The most haystack frames whose tokens, with the needle frame, the question, the time
    marks and the answer, fit the context (`longvid.prompting.budget.frames_for_budget`)."""
    from longvid.prompting.budget import frames_for_budget
    from longvid.prompting.prompt import TIME_MARK_FORMAT

    width = model.vision_tower.config.hidden_size
    probe = torch.zeros(1, model.tokens_per_image, width, device=model.device)
    per_frame = model.compressor(
        probe, projector=model.project, frame_times=np.zeros(1), question=question
    ).tokens_per_frame[0]
    template = get_template(model.config.chat_template)
    before, after = render_parts(template, question)

    def count(text: str) -> int:
        return len(model.tokenizer(text, add_special_tokens=False)["input_ids"])

    fit = frames_for_budget(
        model.config.context_length,
        max(1, int(per_frame)),
        0,
        8,
        prompt_tokens=count(before + after) + 1,
        per_frame_text_tokens=count(
            template.frame_prefix + TIME_MARK_FORMAT.format(seconds=9999.9)
        ),
    )
    return max(1, fit - 1)


VNIAH_SIZES: tuple[int, ...] = (8, 16, 32, 64, 192)
"""V-NIAH's default frame counts below the context limit: dense at the short end, where the
16-frame training length is left behind."""


def vniah_frames(model: LongVideoLM, sizes: Sequence[int] = VNIAH_SIZES) -> list[int]:
    """The default frame grid: ``sizes`` below what fits, then the most that fits."""
    top = max_vniah_frames(model)
    return sorted({s for s in sizes if s < top} | {top})


@dataclass
class MiniVNIAH:
    """V-NIAH on longvid-mini as a `longvid.bench.grid.GridTask`: word-card needles in a
    real-footage haystack, the training prompt, teacher-forced scoring of the word.

    ``frames``/``depths``: the grid (haystack frames without the needle; depth 0 puts the
    needle first, 1 last); ``words``: one needle per word (a cell's accuracy is their mean);
    ``videos``: haystack videos through `vniah.haystack_features`; ``haystack``: the haystack
    frames themselves ``(F, H, W, 3)`` uint8, ``F >= max(frames)`` (neither: the test split's
    background footage, one frame per second); ``rope_factor``: the RoPE base multiplier for
    the whole run (`scaled_rope`).
    """

    model: LongVideoLM
    frames: list[int]
    depths: list[float] = field(default_factory=lambda: [0.0, 0.5, 1.0])
    words: Sequence[str] = NEEDLE_WORDS[:2]
    videos: Sequence[str | os.PathLike[str]] | None = None
    haystack: np.ndarray | None = None
    rope_factor: float = 1.0

    name = "V-NIAH (longvid-mini)"
    size_key = "frames"
    size_label = "Frames"

    def __post_init__(self) -> None:
        if not self.frames or min(self.frames) < 1:
            raise ConfigError(f"V-NIAH frames must be positive, got {self.frames}")
        if self.haystack is not None and self.videos is not None:
            raise ConfigError("V-NIAH takes haystack videos or haystack frames, not both")
        if self.haystack is not None and len(self.haystack) < max(self.frames):
            raise ConfigError(
                f"the haystack has {len(self.haystack)} frames, the grid needs {max(self.frames)}"
            )
        self._haystack: Tensor | None = None
        self._needles: Tensor | None = None

    def cells(self) -> list[Cell]:
        """Frame count outer, depth inner (the reference's order)."""
        return [Cell(int(f), float(d)) for f in self.frames for d in self.depths]

    @torch.no_grad()
    def _prepare(self) -> None:
        if self._haystack is not None:
            return
        from longvid.train.videoqa import needle_card

        model = self.model
        side = int(model.vision_tower.config.image_size)
        count = max(self.frames)
        if self.haystack is not None:
            self._haystack = model.encode_images(_frame_pixels(model, self.haystack[:count]))
        elif self.videos is None:
            from longvid.train.render import Backgrounds

            footage = Backgrounds.load("test", size=max(side, 160))
            frames = np.stack([footage.frame(i) for i in range(count)])
            self._haystack = model.encode_images(_frame_pixels(model, frames))
        else:
            from longvid.bench.vniah import haystack_features

            self._haystack = haystack_features(model, count, self.videos).to(model.device)
        cards = np.stack([needle_card(w, side) for w in self.words])
        needles = model.encode_images(_frame_pixels(model, cards))
        self._needles = needles.to(self._haystack.dtype)

    @torch.no_grad()
    def score(self, cell: Cell) -> dict[str, Any]:
        """Every needle at this cell: ``accuracy`` (their mean), per word, prompt tokens."""
        from longvid.bench.vniah import insert_needle, query_frame_idx, score_teacher_forced

        self._prepare()
        assert self._haystack is not None and self._needles is not None
        model = self.model
        template = get_template(model.config.chat_template)
        per_word: dict[str, int] = {}
        tokens = 0
        with scaled_rope(model, self.rope_factor):
            for word, needle in zip(self.words, self._needles, strict=True):
                frames = insert_needle(self._haystack, needle, cell.size, cell.depth)
                times = np.arange(frames.shape[0], dtype=np.float64)
                compressed = model.compressor(
                    frames, projector=model.project, frame_times=times, question=NEEDLE_QUESTION
                )
                prompt = build_video_prompt(
                    template,
                    NEEDLE_QUESTION,
                    times.tolist(),
                    compressed.tokens_per_frame,
                    model.config.timestamps,
                )
                ids = model.tokenizer(word, add_special_tokens=False)["input_ids"]
                answer = torch.tensor([ids], dtype=torch.long, device=model.device)
                try:
                    assembled = assemble(
                        prompt,
                        model.tokenizer,
                        model.embed_tokens,
                        compressed.tokens.to(model.dtype),
                        model.config.context_length,
                        reserve_new_tokens=answer.shape[1],
                    )
                except ContextOverflowError as err:
                    raise ConfigError(
                        f"V-NIAH cell of {cell.size} frames does not fit the context: {err} "
                        f"(at most {max_vniah_frames(model)} frames fit)"
                    ) from err
                tokens = assembled.token_count
                per_word[word] = score_teacher_forced(
                    self._forward, assembled.inputs_embeds, answer, model.embed_tokens(answer)
                )
        return {
            "accuracy": float(np.mean(list(per_word.values()))),
            "needles": per_word,
            "query_frame_idx": query_frame_idx(cell.depth, cell.size),
            "prompt_tokens": tokens,
            "rope_factor": self.rope_factor,
        }

    def _forward(self, embeds: Tensor, positions: Tensor) -> Tensor:
        return self.model.language_model(inputs_embeds=embeds, position_ids=positions).logits
