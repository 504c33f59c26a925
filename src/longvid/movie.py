"""LLaMA-VID's movie mode end to end: an hour of video at 1 fps, 2 tokens per frame, subtitles.

Paper: Li, Wang and Jia, "LLaMA-VID: An Image is Worth 2 Tokens in Large Language Models"
(ECCV 2024), §3.2 (long-video tuning) and the long-video experiments of §4 (hour-long video:
every frame at 1 fps as a context and a content token, with the subtitles between frames, in
a 64K-token context). The reference pre-extracts
the features of a movie into a file; here `longvid.encoders.feature_cache.encode_video` does it
transparently on the first question and reads them back for every later one.

    model = load_model("llama-vid-7b-full-224-long-video")  # or "tiny-llamavid"
    answer = ask_movie(model, "movie.mp4", "Why does she leave?", subtitles="movie.srt")

The prompt is ``run_llamavid_movie.py``'s (README §3; `llamavid_movie_prompt`): the movie
wrapper sentences, then per frame its tokens and the subtitle text attached to it
(``rule="start"`` by default, ``"llamavid"`` for the reference's end-time rule).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch

from longvid.encoders.feature_cache import encode_video
from longvid.generate import Answer
from longvid.io.subtitles import load_subtitles
from longvid.io.video import Sampler, fps
from longvid.prompting.llamavid_prompts import TimedText, llamavid_movie_prompt
from longvid.prompting.prompt import assemble

__all__ = ["ask_movie"]


@torch.no_grad()
def ask_movie(
    model: Any,
    video: str | os.PathLike[str],
    question: str,
    *,
    subtitles: str | os.PathLike[str] | None = None,
    sampler: Sampler | None = None,
    rule: Literal["start", "llamavid"] = "start",
    max_new_tokens: int = 64,
    chunk_size: int = 32,
    progress: Callable[[int, int], None] | None = None,
) -> Answer:
    """Answer ``question`` about a whole movie with a LLaMA-VID model (greedy decoding).

    ``sampler`` defaults to ``fps(1.0, max_frames=None)``: every second, uncapped, as the
    reference. Features are cached (see the module docstring); a prompt longer than the
    model's context raises `ContextOverflowError`.
    """
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    sampler = sampler or fps(1.0, max_frames=None)
    features, info = encode_video(model, video, sampler, chunk_size=chunk_size, progress=progress)
    timings["encode"] = time.perf_counter() - clock

    clock = time.perf_counter()
    compressed = model.compress(features, info.timestamps, question)
    per_frame = compressed.tokens_per_frame[0] if compressed.tokens_per_frame else 2
    timings["compress"] = time.perf_counter() - clock

    subs = None
    if subtitles is not None:
        cues = load_subtitles(subtitles).cues
        subs = [TimedText(c.start, c.end, " ".join(c.text.split("\n"))) for c in cues]
    prompt = llamavid_movie_prompt(question, info.timestamps.tolist(), per_frame, subs, rule)
    assembled = assemble(
        prompt,
        model.tokenizer,
        model.embed_tokens,
        compressed.tokens.to(model.dtype),
        model.config.context_length,
        video,
        reserve_new_tokens=max_new_tokens,
    )
    tokenizer = model.tokenizer
    clock = time.perf_counter()
    output = model.language_model.generate(
        inputs_embeds=assembled.inputs_embeds,
        attention_mask=assembled.attention_mask,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    timings["generate"] = time.perf_counter() - clock
    new_ids = output[0]
    relevance = compressed.relevance
    return Answer(
        text=tokenizer.decode(new_ids, skip_special_tokens=True),
        frames=[int(i) for i in info.indices],
        timestamps=[float(t) for t in info.timestamps],
        visual_tokens=assembled.visual_token_count,
        prompt_tokens=assembled.token_count,
        new_tokens=int(np.asarray(new_ids).shape[-1]),
        trained=bool(model.config.trained),
        timings=timings,
        relevance=None if relevance is None else [float(r) for r in relevance],
        relevance_times=[float(t) for t in info.timestamps],
    )
