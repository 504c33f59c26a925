"""Ask a question about a video: the whole pipeline in one call.

decode and sample (`longvid.io`) -> CLIP preprocessing and the vision tower (`encoders`,
`LongVideoLM.encode_images`) -> projector -> compressor (`compressors`) -> prompt assembly under
the model's chat template (`prompting`) -> the language model's greedy generation. The answer
comes back with what it drew on: the frames and their timestamps, the visual token count, the
prompt length and the time each stage took. ``on_text`` receives the answer as it is generated.

    model = load_model("tiny-longva")          # a registry name or a checkpoint directory
    answer = generate(model, "clip.mp4", "What happens?", sampler=uniform(16))
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers.generation.streamers import BaseStreamer

from longvid.compressors.registry import build_compressor
from longvid.encoders.anyres import preprocess_video
from longvid.io.video import Sampler, fps, sample
from longvid.models.modeling import LongVideoLM
from longvid.models.registry import create_model, list_configs
from longvid.prompting.prompt import FitPolicy, assemble, build_video_prompt
from longvid.prompting.templates import get_template
from longvid.prompting.tokenizer import byte_level_tokenizer

__all__ = ["Answer", "generate", "load_model"]

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


def load_model(name_or_dir: str | os.PathLike[str]) -> LongVideoLM:
    """A checkpoint directory (`LongVideoLM.from_pretrained`) or a registry name (random
    weights, with the offline byte-level tokenizer when the config ships none)."""
    path = Path(name_or_dir)
    if path.is_dir():
        model = LongVideoLM.from_pretrained(path)
    else:
        if str(name_or_dir) not in list_configs():
            from longvid.errors import ConfigError

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
def generate(
    model: LongVideoLM,
    video: str | os.PathLike[str],
    question: str,
    sampler: Sampler | None = None,
    *,
    max_new_tokens: int = 64,
    timestamps: bool = False,
    fit: FitPolicy = "error",
    compressor: str | None = None,
    chunk_size: int = 16,
    on_text: Callable[[str], None] | None = None,
    progress: Progress | None = None,
) -> Answer:
    """Answer ``question`` about ``video`` with ``model`` (greedy decoding).

    ``sampler`` defaults to ``fps(1.0, max_frames=32)``. ``compressor`` replaces the model's
    compressor with a freshly built one of that name (default parameters; a compressor with
    weights then has random ones). ``timestamps=True`` puts "frame at
    12.5 s:" before each frame's tokens. ``fit="drop_frames"`` drops frames evenly when the
    prompt would not fit the context (else `ContextOverflowError`). ``progress(done, total)``
    follows the vision tower over the frames.
    """
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    config = model.config
    clip = sample(video, sampler or fps(1.0, max_frames=32))
    timings["decode"] = time.perf_counter() - clock

    clock = time.perf_counter()
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
    prompt = build_video_prompt(
        template, question, clip.timestamps.tolist(), compressed.tokens_per_frame, timestamps
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

    clock = time.perf_counter()
    tokenizer = model.tokenizer
    stop_ids = [tokenizer.convert_tokens_to_ids(s) for s in template.stop_strings]
    stop_ids = [i for i in stop_ids if isinstance(i, int) and i != tokenizer.unk_token_id]
    output = model.language_model.generate(
        inputs_embeds=assembled.inputs_embeds,
        attention_mask=assembled.attention_mask,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        eos_token_id=stop_ids or tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        streamer=_TextStreamer(tokenizer, on_text) if on_text is not None else None,
    )
    new_ids = output[0]
    text = tokenizer.decode(new_ids, skip_special_tokens=True)
    timings["generate"] = time.perf_counter() - clock

    kept = list(assembled.frames) or list(range(len(clip)))
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
    )
