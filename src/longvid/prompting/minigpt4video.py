"""MiniGPT4-Video's interleaved prompt: text, frame, its subtitle, frame, ..., the question.

Paper: Ataallah et al., "MiniGPT4-Video", 2024, §3 (each frame's 64 visual tokens followed by
the subtitle text of that moment, then the instruction). The contract is sections 1c-1e and 3
of ``shared/parity/minigpt4video/README.md``:

- **Templates** (data in `longvid.prompting.templates`): inference ``<s>[INST] U [/INST]``
  (``minigpt4video``), eval with two spaces after ``[INST]`` (``minigpt4video_eval``), training
  ``[INST] U[/INST]`` (``minigpt4video_train``), where ``U`` is the user text
  (``<Img><ImageHere><Cap>text ...`` + ``"\\n"`` + instruction; see
  `longvid.io.subtitle_alignment.AlignedFrames.user_text`). `prompt_text` writes them,
  `split_segments` / `prompt_layout` split them at ``<ImageHere>``.
- **Inference assembly** (`interleave_inference`, the reference's ``generate``): per sample,
  segment 0 tokenized *with* special tokens (BOS), later segments without; frame k's rows
  between segments k and k+1; the batch **left**-padded with zero vectors; then only the
  **last** ``context_window`` positions kept (3700 for Llama-2, 7500 for Mistral;
  `CONTEXT_WINDOWS`).
- **Training assembly** (`prompt_wrap_train`, ``prompt_wrap``): every segment without BOS (the
  trainer prepends BOS as an embedding), **right**-padded with the pad token's embedding to
  exactly ``max_context_len``; longer sequences keep their **first** ``max_context_len`` rows.
- **Generation defaults** (`GENERATION_PRESETS["minigpt4video"]`): greedy (``do_sample=False``,
  ``num_beams=1``, ``temperature=1``) with ``repetition_penalty=1.5``, the reference
  signature's default.

For the pipeline (`longvid.generate`), `build_interleaved_prompt` makes the same layout as a
`longvid.prompting.prompt.Prompt` (``<Img>`` text, a `Visual` per frame, a `Subtitle` written
``<Cap>{text} ``), which `longvid.prompting.prompt.assemble` checks against the context instead
of cutting it. `describe_layout` prints it for ``longvid ask --show-prompt``.

Reference defects and what the default does instead:

=======================================  =========================  ============================
defect                                   faithful option            default
=======================================  =========================  ============================
a prompt over the window loses its       `interleave_inference`     `assemble` keeps the whole
*start* (BOS, instruction head, first    (``context_window``)       prompt or refuses it, or
frames), silently                                                   drops whole frames
                                                                    (``fit="drop_frames"``);
                                                                    `frames_for_budget` sizes N
training keeps the first                 `prompt_wrap_train`        (training only; kept as is)
``max_context_len`` rows: the question
is what is lost
literal ``<s>`` in the text *and* BOS    the ``minigpt4video``      same (what the checkpoint
from special tokens (probably two BOS    template + BOS rule        saw); untestable offline
with the real Llama tokenizer)
a prompt without ``<ImageHere>`` raises  none                       text-only prompts work
=======================================  =========================  ============================
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from longvid.prompting.prompt import (
    TIME_MARK_FORMAT,
    Prompt,
    Segment,
    Subtitle,
    Text,
    Visual,
    build_video_prompt,
    frame_segments,
)
from longvid.prompting.templates import ChatTemplate, get_template, render_parts

__all__ = [
    "CONTEXT_WINDOWS",
    "GENERATION_PRESETS",
    "IMAGE_PLACEHOLDER",
    "TEMPLATE_OF_MODE",
    "GenerationPreset",
    "build_interleaved_prompt",
    "describe_layout",
    "goldfish_clean_text",
    "interleave_inference",
    "prompt_layout",
    "prompt_text",
    "prompt_wrap_train",
    "split_segments",
]

IMAGE_PLACEHOLDER = "<ImageHere>"

#: The reference keeps the last this-many positions of an inference prompt.
CONTEXT_WINDOWS: dict[str, int] = {"llama2": 3700, "mistral": 7500}

#: Which registered template each use of the reference applies.
TEMPLATE_OF_MODE: dict[str, str] = {
    "inference": "minigpt4video",
    "eval": "minigpt4video_eval",
    "train": "minigpt4video_train",
}


@dataclass(frozen=True)
class GenerationPreset:
    """Decoding settings of a reference, as ``transformers`` ``generate`` keywords."""

    do_sample: bool = False
    num_beams: int = 1
    temperature: float = 1.0
    repetition_penalty: float = 1.0

    def kwargs(self) -> dict[str, Any]:
        """The keywords for ``generate`` (``temperature`` left out when greedy, where
        transformers ignores it and warns)."""
        out = asdict(self)
        if not self.do_sample:
            out.pop("temperature")
        return out


#: Named decoding presets; ``"minigpt4video"`` is the reference's ``generate`` default.
GENERATION_PRESETS: dict[str, GenerationPreset] = {
    "greedy": GenerationPreset(),
    "minigpt4video": GenerationPreset(repetition_penalty=1.5),
}


# --------------------------------------------------------------------------------------------
# Strings


def prompt_text(user_text: str, mode: str = "inference") -> str:
    """The reference's prompt string for ``user_text`` (``mode``: inference, eval, train)."""
    if mode not in TEMPLATE_OF_MODE:
        raise ValueError(f"prompt_text: mode must be one of {', '.join(TEMPLATE_OF_MODE)}")
    t = get_template(TEMPLATE_OF_MODE[mode])
    return t.system + t.user_prefix + user_text + t.user_suffix + t.assistant_prefix


def split_segments(text: str, placeholder: str = IMAGE_PLACEHOLDER) -> list[str]:
    """The text pieces around the image slots: slot k sits between piece k and piece k+1."""
    return text.split(placeholder)


def prompt_layout(text: str, placeholder: str = IMAGE_PLACEHOLDER) -> list[dict[str, Any]]:
    """The prompt as an ordered list: ``{"text": piece}`` and ``{"image": k}`` entries."""
    out: list[dict[str, Any]] = []
    for k, piece in enumerate(split_segments(text, placeholder)):
        if k:
            out.append({"image": k - 1})
        out.append({"text": piece})
    return out


# --------------------------------------------------------------------------------------------
# Embedding assembly (the reference's generate and prompt_wrap)


def _ids(tokenizer: Any, text: str, special: bool) -> list[int]:
    return [int(i) for i in tokenizer(text, add_special_tokens=special)["input_ids"]]


def _interleave(
    text: str,
    frames: Tensor | None,
    tokenizer: Any,
    embed_tokens: Callable[[Tensor], Tensor],
    bos_on_first: bool,
) -> Tensor:
    pieces = split_segments(text)
    n_slots = len(pieces) - 1
    n_frames = 0 if frames is None else int(frames.shape[0])
    if n_slots != n_frames:
        raise ValueError(f"the prompt has {n_slots} {IMAGE_PLACEHOLDER} but {n_frames} frames")
    parts: list[Tensor] = []
    for k, piece in enumerate(pieces):
        ids = _ids(tokenizer, piece, special=bos_on_first and k == 0)
        device = frames.device if frames is not None else None
        parts.append(embed_tokens(torch.tensor(ids, dtype=torch.long, device=device)))
        if k < n_slots:
            parts.append(frames[k].to(parts[-1].dtype))  # type: ignore[index]
    return torch.cat(parts)


def _frames_of(frame_embeds: Sequence[Tensor | None] | Tensor | None, i: int) -> Tensor | None:
    if frame_embeds is None:
        return None
    return frame_embeds[i]


def interleave_inference(
    texts: Sequence[str],
    frame_embeds: Sequence[Tensor | None] | None,
    tokenizer: Any,
    embed_tokens: Callable[[Tensor], Tensor],
    context_window: int | None = 3700,
) -> tuple[Tensor, Tensor]:
    """The reference's batched inference input: ``(inputs_embeds (B, L, D), attention_mask
    (B, L) int32)``.

    ``texts[b]`` holds one ``<ImageHere>`` per frame of ``frame_embeds[b]`` (``(n_b, 64, D)``:
    the compressor's tokens of that sample's frames, only the first ``n_b`` used; None or zero
    frames for a text-only prompt, which the reference refuses). Segment 0 is tokenized with
    special tokens, the others without; samples are left-padded with zeros to the longest; when
    ``context_window`` is set and the padded length is over it, only the last
    ``context_window`` positions are kept (the faithful cut; see the module table).
    """
    if not texts:
        raise ValueError("interleave_inference: no prompts given")
    rows = [
        _interleave(text, _frames_of(frame_embeds, b), tokenizer, embed_tokens, True)
        for b, text in enumerate(texts)
    ]
    length = max(r.shape[0] for r in rows)
    width = rows[0].shape[1]
    embeds = rows[0].new_zeros((len(rows), length, width))
    mask = torch.zeros((len(rows), length), dtype=torch.int32, device=rows[0].device)
    for b, r in enumerate(rows):
        embeds[b, length - r.shape[0] :] = r
        mask[b, length - r.shape[0] :] = 1
    if context_window is not None and length > context_window:
        embeds, mask = embeds[:, -context_window:], mask[:, -context_window:]
    return embeds, mask


def prompt_wrap_train(
    instructions: Sequence[str],
    frame_embeds: Sequence[Tensor | None] | None,
    tokenizer: Any,
    embed_tokens: Callable[[Tensor], Tensor],
    max_context_len: int,
    pad_token_id: int,
) -> tuple[Tensor, Tensor]:
    """The reference's training ``prompt_wrap``: ``(embeds (B, max_context_len, D), atts (B,
    max_context_len) int32)``.

    Every segment without special tokens, frames interleaved as in `interleave_inference`;
    each sample right-padded with the embedding of ``pad_token_id`` to exactly
    ``max_context_len``, or cut to its first ``max_context_len`` rows (the end of the prompt,
    the question, is what a cut loses).
    """
    if not instructions:
        raise ValueError("prompt_wrap_train: no instructions given")
    rows = [
        _interleave(text, _frames_of(frame_embeds, b), tokenizer, embed_tokens, False)
        for b, text in enumerate(instructions)
    ]
    device = rows[0].device
    pad = embed_tokens(torch.tensor([pad_token_id], dtype=torch.long, device=device))[0]
    embeds = pad.expand(len(rows), max_context_len, pad.shape[-1]).clone()
    atts = torch.zeros((len(rows), max_context_len), dtype=torch.int32, device=device)
    for b, r in enumerate(rows):
        n = min(r.shape[0], max_context_len)
        embeds[b, :n] = r[:n].to(embeds.dtype)
        atts[b, :n] = 1
    return embeds, atts


# --------------------------------------------------------------------------------------------
# The pipeline's Prompt


def video_prompt(
    template: ChatTemplate | str,
    question: str,
    frame_times: Sequence[float],
    tokens_per_frame: int | Sequence[int],
    captions: Sequence[str | None] | None,
    *,
    timestamps: bool = False,
) -> Prompt:
    """The prompt ``longvid ask`` builds (and longvid-mini trains on): frames interleaved with
    their captions when there are any (`build_interleaved_prompt`), else `build_video_prompt`."""
    if captions is not None:
        return build_interleaved_prompt(
            template, question, frame_times, tokens_per_frame, captions, timestamps=timestamps
        )
    return build_video_prompt(template, question, frame_times, tokens_per_frame, timestamps)


def build_interleaved_prompt(
    template: ChatTemplate | str,
    question: str,
    frame_times: Sequence[float],
    tokens_per_frame: int | Sequence[int],
    captions: Sequence[str | None] | None = None,
    *,
    timestamps: bool = False,
    time_format: str = TIME_MARK_FORMAT,
) -> Prompt:
    """The interleaved `Prompt`: ``before``, then per frame ``<Img>`` (the template's
    ``frame_prefix``), its `Visual`, its caption as a `Subtitle` (``<Cap>{text} ``), then the
    question part. Rendered with ``<ImageHere>`` it is the reference's prompt string for the same
    frames and captions (captions in reference form, trailing space, as
    `longvid.io.subtitle_alignment` gives them). A dropped frame (``fit="drop_frames"``) takes
    its ``<Img>`` with it; its caption stays, attached to the frame before.
    ``timestamps=True`` puts a `TimeMark` (``"frame at 12.5 s:"``) before each frame, an option
    beyond the reference.
    """
    t = get_template(template)
    times = [float(s) for s in frame_times]
    counts = (
        [int(tokens_per_frame)] * len(times)
        if isinstance(tokens_per_frame, int)
        else [int(c) for c in tokens_per_frame]
    )
    caps = list(captions) if captions is not None else [None] * len(times)
    if not len(counts) == len(caps) == len(times):
        raise ValueError(
            f"build_interleaved_prompt: {len(times)} frames, {len(counts)} token counts, "
            f"{len(caps)} captions"
        )
    before, after = render_parts(t, question)
    segments: list[Segment] = [Text(before)] if before else []
    for i, (seconds, count, cap) in enumerate(zip(times, counts, caps, strict=True)):
        segments.extend(frame_segments(t, i, seconds, count, timestamps, time_format))
        if cap:
            # Reference-form captions end with one space, which MiniGPT4-Video's format
            # ("<Cap>{text} ") writes back; other templates get the bare text.
            text = cap[:-1] if cap.endswith(" ") else cap
            segments.append(Subtitle(text, seconds, t.subtitle_format))
    if after:
        segments.append(Text(after))
    return Prompt(tuple(segments), t.stop_strings, t.name)


def describe_layout(prompt: Prompt, max_text: int = 160) -> str:
    """A readable picture of a prompt: its text verbatim (long pieces shortened in the middle)
    and each visual segment as ``[frame k @ 12.50 s: 64 tokens]``, for ``--show-prompt``."""
    lines: list[str] = []
    for segment in prompt.segments:
        if isinstance(segment, Visual):
            if segment.frame_index is not None and segment.n_tokens:
                frames = sorted(set(segment.frame_index.tolist()))
                label = (
                    f"frame {frames[0]}" if len(frames) == 1 else f"frames {frames[0]}-{frames[-1]}"
                )
            else:
                label = segment.key
            when = (
                f" @ {float(segment.times[0]):.2f} s"
                if segment.times is not None and segment.n_tokens
                else ""
            )
            lines.append(f"[{label}{when}: {segment.n_tokens} tokens]")
        else:
            text = segment.render()
            if len(text) > max_text:
                half = max_text // 2
                text = text[:half] + " ... " + text[-half:]
            lines.append(repr(text)[1:-1])
    return "\n".join(lines)


_NOT_KEPT = re.compile(r"[^A-Za-z0-9\s']")
_SPACES = re.compile(r"\s+")


def goldfish_clean_text(text: str) -> str:
    """Goldfish's ``clean_text`` for the retrieved context of its answer prompt (README §3):
    keeps ASCII letters and digits, whitespace (any Unicode whitespace) and ``'``, collapses
    whitespace runs to one space, strips. So ``_``, accented letters and non-ASCII digits go.
    Only the cleaning is here; Goldfish's retrieval over clips is out of scope."""
    return _SPACES.sub(" ", _NOT_KEPT.sub("", text)).strip()
