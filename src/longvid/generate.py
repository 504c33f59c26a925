"""Ask a question about a video: the whole pipeline in one call.

decode and sample (`longvid.io`) -> CLIP preprocessing and the vision tower (`encoders`,
`LongVideoLM.encode_images`) -> projector -> compressor (`compressors`) -> prompt assembly under
the model's chat template (`prompting`) -> the language model's greedy generation. The answer
comes back with what it drew on: the frames and their timestamps, the visual token count, the
prompt length, the time each stage took and the text channels beside the frames (subtitles or
the speech transcript, and with ``ocr=True`` the on-screen text of the sampled frames,
`longvid.io.ocr`), each interleaved after its frame with its timestamp. ``on_text`` receives the
answer as it is generated.

    model = load_model("tiny-longva")          # a registry name or a checkpoint directory
    answer = generate(model, "clip.mp4", "What happens?", sampler=uniform(16))
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers.generation.streamers import BaseStreamer

from longvid.compressors.registry import CompressedVideo, build_compressor
from longvid.encoders.anyres import preprocess_video
from longvid.encoders.feature_cache import ClipInfo, encode_video
from longvid.errors import ConfigError
from longvid.io.subtitles import Subtitles
from longvid.io.video import Clip, Sampler, fps, sample
from longvid.models.modeling import LongVideoLM
from longvid.models.registry import (
    SHIPPED_MODELS,
    create_model,
    list_configs,
    shipped_model_dir,
)
from longvid.prompting.minigpt4video import video_prompt
from longvid.prompting.prompt import AssembledPrompt, FitPolicy, assemble
from longvid.prompting.templates import get_template
from longvid.prompting.tokenizer import byte_level_tokenizer

__all__ = [
    "Answer",
    "PreparedPrompt",
    "generate",
    "load_model",
    "prepare_prompt",
    "score_choices",
]

Progress = Callable[[int, int], None]


@dataclass
class Answer:
    """The generated text and what it drew on.

    ``frames``/``timestamps``: the frames the prompt holds (after any dropped to fit) and their
    times in seconds; ``visual_tokens``/``prompt_tokens``/``new_tokens``: token counts;
    ``timings``: seconds per stage; ``trained``: False when the weights are random, in which
    case the text is noise.
    """

    text: str
    frames: list[int]
    timestamps: list[float]
    visual_tokens: int
    prompt_tokens: int
    new_tokens: int
    trained: bool
    timings: dict[str, float] = field(default_factory=dict)
    dropped_frames: list[int] = field(default_factory=list)
    note: str | None = None
    relevance: list[float] | None = None
    """Per *sampled* frame (at ``relevance_times``; a compressor that pools frames together
    may put no tokens of its own on some of them, so they need not all be in ``frames``): the
    compressor's relevance to the question (PPLLaVA: the best patch's CLIP cosine with the
    question); None when the compressor computes none."""
    relevance_times: list[float] | None = None
    prompt_layout: str | None = None
    """The assembled prompt, text verbatim and each frame's tokens as ``[frame k @ t s: n
    tokens]`` (`longvid.prompting.minigpt4video.describe_layout`; ``longvid ask
    --show-prompt``)."""
    channels: list[str] = field(default_factory=lambda: ["frames"])
    """What the prompt drew on: ``"frames"``, then ``"ocr"`` (on-screen text), ``"speech"`` (a
    transcript) or ``"subtitles"`` (a subtitle file) for each text channel that put text in it."""
    channel_text: list[tuple[float, str, str]] = field(default_factory=list)
    """The text of those channels as it went into the prompt: (frame time in s, channel, text),
    in time order."""
    choice_scores: list[float] | None = None
    """With ``generate(choices=...)``: each choice's log-probability as the whole answer
    (`score_choices`), in the order given; ``text`` is the best one."""


@dataclass
class PreparedPrompt:
    """A question about a video assembled into the language model's input, before any answer
    (`prepare_prompt`). ``clip``: the sampled frames' indices, times and path; ``channels`` and
    ``channel_text``: as in `Answer`; ``timings``: seconds per stage so far."""

    assembled: AssembledPrompt
    clip: Clip | ClipInfo
    compressed: CompressedVideo
    channel_text: list[tuple[float, str, str]]
    timings: dict[str, float]

    @property
    def channels(self) -> list[str]:
        """What the prompt drew on, as `Answer.channels`: ``"frames"``, then each text
        channel that put text in it."""
        named = {channel for _, channel, _ in self.channel_text}
        return ["frames"] + [c for c in ("ocr", "speech", "subtitles") if c in named]


def score_choices(
    model: LongVideoLM, inputs_embeds: torch.Tensor, choices: list[str]
) -> list[float]:
    """Each choice's log-probability as the whole answer to the prompt ``inputs_embeds (1, L,
    D)``: its tokens, then the template's stop string, so that a choice which begins a longer
    one is not favoured for being short. This is the cloze form of multiple choice that small
    LLMs are evaluated with: the model never has to map an option to its letter."""
    if not choices:
        raise ConfigError("choices must name at least one answer")
    stop = get_template(model.config.chat_template).stop_strings[0]
    scored = model.continuation_logprobs(inputs_embeds, [c.strip() + stop for c in choices])
    return [logprob for logprob, _ in scored]


def load_model(name_or_dir: str | os.PathLike[str]) -> LongVideoLM:
    """A shipped trained model (``"longvid-mini"``, ...; `longvid.models.registry.
    SHIPPED_MODELS`), a checkpoint directory (`LongVideoLM.from_pretrained`) or a registry
    name (random weights, with the offline byte-level tokenizer when the config ships none)."""
    path = Path(name_or_dir)
    if str(name_or_dir) in SHIPPED_MODELS:
        model = LongVideoLM.from_pretrained(shipped_model_dir(str(name_or_dir)))
    elif path.is_dir():
        model = LongVideoLM.from_pretrained(path)
    else:
        if str(name_or_dir) not in list_configs():
            raise ConfigError(
                f"{name_or_dir!r} is neither a checkpoint directory nor a registered model "
                f"(registered: {', '.join(list_configs())})"
            )
        torch.manual_seed(0)
        model = create_model(str(name_or_dir))
    if model.tokenizer is None:
        model.tokenizer = byte_level_tokenizer()
    return model.eval()


class _TextStreamer(BaseStreamer):
    """Hands each newly decoded piece of the answer to a callback as tokens arrive."""

    def __init__(self, tokenizer, on_text: Callable[[str], None]) -> None:
        self.tokenizer = tokenizer
        self.on_text = on_text
        self.ids: list[int] = []
        self.shown = ""

    def put(self, value: torch.Tensor) -> None:
        self.ids.extend(int(i) for i in value.reshape(-1).tolist())
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if len(text) > len(self.shown) and not text.endswith("\ufffd"):
            # (a trailing U+FFFD may be half a multi-byte character: wait for the rest)
            self.on_text(text[len(self.shown) :])
            self.shown = text

    def end(self) -> None:
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if len(text) > len(self.shown):
            self.on_text(text[len(self.shown) :])
        self.shown = text


@torch.no_grad()
def prepare_prompt(
    model: LongVideoLM,
    video: str | os.PathLike[str],
    question: str,
    sampler: Sampler | None = None,
    *,
    max_new_tokens: int = 64,
    timestamps: bool | None = None,
    fit: FitPolicy = "error",
    compressor: str | None = None,
    chunk_size: int = 16,
    progress: Progress | None = None,
    subtitles: str | os.PathLike[str] | Subtitles | None = None,
    alignment: str = "longvid",
    fit_frames: bool = False,
    cache: bool = True,
    ocr: bool = False,
) -> PreparedPrompt:
    """Everything `generate` does before it answers: frames sampled and encoded, compressed,
    assembled with the question, the text channels and the chat template into the language
    model's input (``max_new_tokens`` kept free in the context). The arguments are
    `generate`'s. Likelihood scoring (`score_choices`, the lmms-eval plugin's
    ``loglikelihood``) reads the same prompt that decoding would."""
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    config = model.config
    if timestamps is None:
        timestamps = config.timestamps
    subs = _load_subtitles(video, subtitles)
    said = "speech" if subs is not None and subs.format == "whisper" else "subtitles"
    features: torch.Tensor | None = None  # set here when the feature cache supplies them
    captions: list[str | None] | None = None
    channel_text: list[tuple[float, str, str]] = []
    if ocr and alignment != "longvid":
        raise ConfigError(
            f"on-screen text (ocr) needs alignment='longvid', not {alignment!r} (the reference "
            "alignments reproduce MiniGPT4-Video, which reads subtitles only)"
        )
    if alignment != "longvid":
        from longvid.io.subtitle_alignment import align_video

        llm = "mistral" if config.language_model.get("model_type") == "mistral" else "llama2"
        clip, aligned = align_video(video, subs, alignment, llm=llm)
        captions = aligned.captions
        channel_text = _caption_text(captions, clip.timestamps, said)
    else:
        if fit_frames:
            sampler = _fitted_sampler(
                model, video, question, subs, max_new_tokens, compressor, timestamps, ocr
            )
        sampler = sampler or fps(1.0, max_frames=32)
        if cache:
            features, clip = encode_video(
                model, video, sampler, chunk_size=chunk_size, progress=progress
            )
        else:
            clip = sample(video, sampler)
        if ocr:
            started = time.perf_counter()
            # Cached features come without frames: decode the same samples again for OCR.
            frames = getattr(clip, "frames", None)
            frames = sample(video, sampler).frames if frames is None else frames
            captions, channel_text = _channel_captions(model, clip.timestamps, frames, subs, said)
            timings["ocr"] = time.perf_counter() - started
        elif subs is not None:
            from longvid.io.subtitle_alignment import align_captions

            captions = align_captions(
                subs,
                clip.timestamps,
                token_budget=_subtitle_budget(model, subs),
                tokenizer=model.tokenizer,
            )
            channel_text = _caption_text(captions, clip.timestamps, said)
    timings["decode"] = time.perf_counter() - clock - timings.get("ocr", 0.0)

    clock = time.perf_counter()
    if features is None:
        pixels = preprocess_video(clip.frames, config.image_processing.image_processor())
        features = model.encode_images(pixels, chunk_size=chunk_size, progress=progress)
    timings["encode"] = time.perf_counter() - clock

    clock = time.perf_counter()
    if compressor is not None and compressor != config.compressor.name:
        other = build_compressor(compressor, {}, model.compressor.dims).to(model.device)
        compressed = other(
            features, projector=model.project, frame_times=clip.timestamps, question=question
        )
    else:
        compressed = model.compress(features, clip.timestamps, question)
    timings["compress"] = time.perf_counter() - clock

    clock = time.perf_counter()
    template = get_template(config.chat_template)
    prompt = video_prompt(
        template,
        question,
        clip.timestamps.tolist(),
        compressed.tokens_per_frame,
        captions,
        timestamps=timestamps,
    )
    assembled = assemble(
        prompt,
        model.tokenizer,
        model.embed_tokens,
        compressed.tokens.to(model.dtype),
        config.context_length,
        clip.path,
        reserve_new_tokens=max_new_tokens,
        fit=fit,
    )
    timings["prompt"] = time.perf_counter() - clock
    return PreparedPrompt(assembled, clip, compressed, channel_text, timings)


@torch.no_grad()
def generate(
    model: LongVideoLM,
    video: str | os.PathLike[str],
    question: str,
    sampler: Sampler | None = None,
    *,
    max_new_tokens: int = 64,
    timestamps: bool | None = None,
    fit: FitPolicy = "error",
    compressor: str | None = None,
    chunk_size: int = 16,
    on_text: Callable[[str], None] | None = None,
    progress: Progress | None = None,
    subtitles: str | os.PathLike[str] | Subtitles | None = None,
    alignment: str = "longvid",
    fit_frames: bool = False,
    preset: str | None = None,
    cache: bool = True,
    ocr: bool = False,
    choices: list[str] | None = None,
) -> Answer:
    """Answer ``question`` about ``video`` with ``model`` (greedy decoding).

    ``sampler`` defaults to ``fps(1.0, max_frames=32)``. ``compressor`` replaces the model's
    compressor with a freshly built one of that name (default parameters; a compressor with
    weights then has random ones). ``timestamps=True`` puts "frame at 12.5 s:" before each
    frame's tokens (None: as the model was trained, ``config.timestamps``).
    ``fit="drop_frames"`` drops frames evenly when the prompt would not fit the context (else
    `ContextOverflowError`). ``progress(done, total)`` follows the vision tower over the frames.

    ``subtitles`` (a subtitle file, loaded `Subtitles`, or ``"auto"`` where
    `longvid.io.speech` is installed) are interleaved MiniGPT4-Video style: each frame followed
    by the text said since the previous one, in the template's subtitle format, capped at a
    quarter of the context in tokens of the model's tokenizer. ``alignment`` picks the frames
    and captions (`longvid.io.subtitle_alignment`: ``"longvid"``, the default, uses
    ``sampler``; a ``"minigpt4video-*"`` reference path replaces it). ``fit_frames=True``
    replaces the sampler by ``uniform(N)`` with N from `longvid.prompting.budget.
    frames_for_budget` (the context, the compressor's tokens per frame, the prompt text, the
    subtitle budget and ``max_new_tokens``), so any video fits any model. ``preset`` names a
    decoding preset (`longvid.prompting.minigpt4video.GENERATION_PRESETS`); the default is the
    template's (MiniGPT4-Video: greedy with ``repetition_penalty=1.5``), else greedy.

    ``cache=True`` takes the vision features from the on-disk feature cache
    (`longvid.encoders.feature_cache`, keyed by file, sampler and tower weights), computing and
    storing them on a miss, so asking again about the same video skips decoding and the tower
    (the ``decode`` timing then holds the cache read, ``encode`` nothing).

    ``ocr=True`` adds the on-screen text channel: `longvid.io.ocr.read_frames` on the sampled
    frames (decoded again when the feature cache supplied their features; frames that barely
    changed or hold no text edges are not OCRed), of which each frame gets only the text that was
    not on the previous one, each line with its colours where it sits on a solid ground. Each
    frame's caption then names its time and channels, e.g. ``[12.0 s] on screen: "OPEN" in
    white on red | said: "hello there"``, in the same caption slot and under the same
    quarter-context token budget as subtitles (without OCR, subtitles keep the plain form
    above). Only with ``alignment="longvid"`` (the reference paths reproduce the reference).
    The ``ocr`` timing holds the OCR and that second decode.

    ``choices`` makes it a multiple-choice answer: instead of decoding, every choice is scored
    as the whole answer (`score_choices`) and ``text`` is the most likely one; ask the question
    as an open one (the choices are not shown to the model).
    """
    prepared = prepare_prompt(
        model,
        video,
        question,
        sampler,
        max_new_tokens=max_new_tokens,
        timestamps=timestamps,
        fit=fit,
        compressor=compressor,
        chunk_size=chunk_size,
        progress=progress,
        subtitles=subtitles,
        alignment=alignment,
        fit_frames=fit_frames,
        cache=cache,
        ocr=ocr,
    )
    assembled, clip, compressed = prepared.assembled, prepared.clip, prepared.compressed
    timings, config = prepared.timings, model.config
    template = get_template(config.chat_template)
    clock = time.perf_counter()
    choice_scores = None
    if choices is not None:
        choice_scores = score_choices(model, assembled.inputs_embeds, choices)
        text = choices[int(np.argmax(choice_scores))].strip()
        new_ids = np.zeros(0, dtype=np.int64)
        if on_text is not None:
            on_text(text)
    else:
        tokenizer = model.tokenizer
        stop_ids = [tokenizer.convert_tokens_to_ids(s) for s in template.stop_strings]
        stop_ids = [i for i in stop_ids if isinstance(i, int) and i != tokenizer.unk_token_id]
        with warnings.catch_warnings():
            # The prompt is embeddings only, so a repetition penalty (MiniGPT4-Video's preset)
            # sees the generated tokens alone, exactly as in the reference: not worth a warning.
            warnings.filterwarnings("ignore", message="Passing `repetition_penalty`")
            output = model.language_model.generate(
                inputs_embeds=assembled.inputs_embeds,
                attention_mask=assembled.attention_mask,
                max_new_tokens=max_new_tokens,
                **_preset_kwargs(preset, config.chat_template),
                eos_token_id=stop_ids or tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
                streamer=_TextStreamer(tokenizer, on_text) if on_text is not None else None,
            )
        new_ids = output[0]
        text = tokenizer.decode(new_ids, skip_special_tokens=True)
    timings["generate"] = time.perf_counter() - clock

    kept = list(assembled.frames) or list(range(len(clip.indices)))
    return Answer(
        text=text,
        frames=[int(clip.indices[k]) for k in kept],
        timestamps=[float(clip.timestamps[k]) for k in kept],
        visual_tokens=assembled.visual_token_count,
        prompt_tokens=assembled.token_count,
        new_tokens=int(np.asarray(new_ids).shape[-1]),
        trained=bool(config.trained),
        timings=timings,
        dropped_frames=[int(clip.indices[k]) for k in assembled.dropped_frames],
        note=assembled.note,
        relevance=_frame_relevance(compressed.relevance),
        relevance_times=None if compressed.relevance is None else clip.timestamps.tolist(),
        prompt_layout=_describe(assembled.prompt),
        channels=prepared.channels,
        channel_text=prepared.channel_text,
        choice_scores=choice_scores,
    )


def _frame_relevance(relevance: torch.Tensor | None) -> list[float] | None:
    """One score per sampled frame: ``(T,)`` as is, ``(T, ...)`` by its maximum over patches."""
    if relevance is None:
        return None
    per_frame = relevance.detach().float().reshape(relevance.shape[0], -1).amax(dim=1)
    return [float(v) for v in per_frame]


# --------------------------------------------------------------------------------------------
# Subtitles, frame budget and decoding preset (MiniGPT4-Video, usable by every model)


def _load_subtitles(
    video: str | os.PathLike[str], subtitles: str | os.PathLike[str] | Subtitles | None
) -> Subtitles | None:
    """Loaded subtitles, or None; ``"auto"`` goes to `longvid.io.speech` when it exists."""
    if subtitles is None or isinstance(subtitles, Subtitles):
        return subtitles
    if str(subtitles) == "auto":
        import importlib.util

        if importlib.util.find_spec("longvid.io.speech") is None:
            raise ConfigError("--subtitles auto needs longvid.io.speech, which is not installed")
        from longvid.io.speech import subtitles_for

        return subtitles_for(video, "auto")
    from longvid.io.subtitles import load_subtitles

    return load_subtitles(subtitles)


def _count_tokens(model: LongVideoLM, text: str) -> int:
    return len(model.tokenizer(text, add_special_tokens=False)["input_ids"])


def _subtitle_budget(model: LongVideoLM, subs: Subtitles | None) -> int:
    """Tokens of all subtitle text (as the template writes it), capped at a quarter of the
    context; 0 without subtitles."""
    if subs is None or not len(subs):
        return 0
    fmt = get_template(model.config.chat_template).subtitle_format
    text = "".join(fmt.format(text=" ".join(c.text.split()), time=c.start) for c in subs.cues)
    return min(_count_tokens(model, text), model.config.context_length // 4)


def _fitted_sampler(
    model: LongVideoLM,
    video: str | os.PathLike[str],
    question: str,
    subs: Subtitles | None,
    max_new_tokens: int,
    compressor: str | None,
    timestamps: bool = False,
    ocr: bool = False,
) -> Sampler:
    """``uniform(N)`` with N = `frames_for_budget` of this model, question and subtitles; with
    ``ocr`` the on-screen text is unknown before sampling, so the captions' cap (a quarter of
    the context) is reserved."""
    from longvid.io.video import probe, uniform
    from longvid.prompting.budget import frames_for_budget
    from longvid.prompting.prompt import TIME_MARK_FORMAT
    from longvid.prompting.templates import render_parts

    config = model.config
    active = model.compressor
    if compressor is not None and compressor != config.compressor.name:
        active = build_compressor(compressor, {}, model.compressor.dims).to(model.device)
    width = model.vision_tower.config.hidden_size
    probe_features = torch.zeros(1, model.tokens_per_image, width, device=model.device)
    per_frame = active(
        probe_features, projector=model.project, frame_times=np.zeros(1), question=question
    ).tokens_per_frame[0]
    template = get_template(config.chat_template)
    before, after = render_parts(template, question)
    marks = TIME_MARK_FORMAT.format(seconds=99999.9) if timestamps else ""
    n = frames_for_budget(
        config.context_length,
        max(1, per_frame),
        config.context_length // 4 if ocr else _subtitle_budget(model, subs),
        max_new_tokens,
        prompt_tokens=_count_tokens(model, before + after) + 1,
        per_frame_text_tokens=_count_tokens(model, template.frame_prefix + marks),
        max_frames=probe(video, count_frames=False).frame_count or None,
    )
    return uniform(n)


def _caption_text(
    captions: list[str | None], times: np.ndarray | list[float], channel: str
) -> list[tuple[float, str, str]]:
    """(time, channel, text) of each frame's caption that went into the prompt."""
    return [
        (float(t), channel, " ".join(c.split()))
        for t, c in zip(times, captions, strict=True)
        if c and c.strip()
    ]


def _channel_captions(
    model: LongVideoLM,
    times: np.ndarray,
    frames: np.ndarray,
    subs: Subtitles | None,
    said: str,
) -> tuple[list[str | None], list[tuple[float, str, str]]]:
    """Each frame's caption from its new on-screen text and the subtitle/speech text since the
    previous frame, marked with its time and channels (``[12.0 s] on screen: "OPEN" in white
    on red | said: "hi"``), in reference form (trailing space); captions are taken in time
    order while their tokens fit ``min(all of them, context / 4)``, one that would overshoot
    is left out (the rule of `longvid.io.subtitle_alignment.align_captions`). Also the (time,
    channel, text) of what was kept."""
    from longvid.io.ocr import new_text, read_frames
    from longvid.io.subtitles import align
    from longvid.prompting.channels import channel_captions

    screen = new_text(read_frames(frames, times.tolist()))
    speech = align(subs, times) if subs is not None else [""] * len(times)
    texts, parts = channel_captions(times.tolist(), screen, speech, said)
    costs = [_count_tokens(model, text) if text else 0 for text in texts]
    budget = min(sum(costs), model.config.context_length // 4)
    used = 0
    captions: list[str | None] = []
    kept: list[tuple[float, str, str]] = []
    for t, text, cost, found in zip(times.tolist(), texts, costs, parts, strict=True):
        if text is None or used + cost > budget:
            captions.append(None)
            continue
        used += cost
        captions.append(text)
        kept.extend((float(t), channel, piece) for channel, piece in found)
    return captions, kept


def _preset_kwargs(preset: str | None, chat_template: str) -> dict:
    from longvid.prompting.minigpt4video import GENERATION_PRESETS

    if preset is None:
        preset = "minigpt4video" if chat_template.startswith("minigpt4video") else "greedy"
    if preset not in GENERATION_PRESETS:
        raise ConfigError(
            f"unknown generation preset {preset!r} (known: {', '.join(GENERATION_PRESETS)})"
        )
    return GENERATION_PRESETS[preset].kwargs()


def _describe(prompt) -> str:
    from longvid.prompting.minigpt4video import describe_layout

    return describe_layout(prompt)
