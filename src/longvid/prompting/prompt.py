"""The Prompt value and its assembly into the language model's ``inputs_embeds``.

A `Prompt` is an ordered tuple of segments: `Text`, `Visual` (a run of visual-token rows),
`Subtitle` (a line of speech with its time) and `TimeMark` (a per-frame "frame at 12.5 s:"
mark). `build_video_prompt` makes one from a chat template (`longvid.prompting.templates`), a
question and the sampled frames' times; `assemble` turns it into what the LLM eats:
``inputs_embeds (1, L, D)``, ``attention_mask (1, L)`` and ``input_ids (1, L)`` with
``IMAGE_TOKEN_INDEX`` (-200) at every visual position, checked against the context window.

Tokenization follows the references' ``tokenizer_image_token`` (LongVA / LLaVA, LLaMA-VID;
``shared/parity/longva/README.md`` §9, ``shared/parity/llamavid/README.md`` §2.1): the text
between two visual segments is one piece, each piece is tokenized **separately** with the
tokenizer's own defaults, and if the first piece starts with the tokenizer's BOS, the BOS each
later piece got is dropped. Qwen2 has no BOS, so nothing is stripped; a Llama tokenizer gives
one BOS at the very start. Every visual segment is then spliced in at its place, row by row,
from ``visual_embeds`` (consumed in order).

Layouts (`build_video_prompt`):

========================  =====================================================================
option                    what the prompt holds where the template's placeholder is
========================  =====================================================================
default                   one `Visual` with all frames' tokens, frame-major, no separators:
                          the LongVA video layout (one ``<image>`` expanding to ``T*144``)
``per_frame`` template    one `Visual` per frame, each after the template's ``frame_prefix``
                          (MiniGPT4-Video: ``<Img>`` + 64 tokens per frame)
``timestamps=True``       beyond the references: before each frame's tokens a `TimeMark`
                          written ``"frame at {seconds:.1f} s:"`` (e.g. ``"frame at 12.5
                          s:"``; the format is ``time_format``), then the frame's `Visual`
``subtitles=[...]``       each `Subtitle` right after the last frame whose time is at or
                          before the subtitle's time (before the first frame if it precedes
                          them all), written with the template's ``subtitle_format``
========================  =====================================================================

Fitting the context (`assemble`): the assembled length plus ``reserve_new_tokens`` (room for
the answer) must not exceed ``context_length``. ``fit="error"`` (default) raises
`ContextOverflowError` stating the tokens needed and the context; ``fit="drop_frames"`` keeps
``k`` frames, uniformly spread over the video (``linspace(0, T-1, k)`` truncated, the sampler
rule of the references), the most that fit (`frames_that_fit` gives the estimate), and records
what it dropped in `AssembledPrompt.dropped_frames` and `AssembledPrompt.note`. Text and
subtitles are kept; a dropped frame's time mark goes with it.

Differences from the references:

===========================================  ==================================================
reference                                    here
===========================================  ==================================================
``<image>`` text in the prompt string marks  visual places are `Visual` segments, so a
the visual places                            question containing the text ``<image>`` stays
                                             text
one ``-200`` per placeholder in              one ``-200`` per visual *row*, so ``input_ids``
``input_ids``, expanded inside the model     lines up with ``inputs_embeds``;
                                             `tokenize_with_placeholders` gives the
                                             reference's compact ids
a prompt over the context is cut (MiniGPT4   the whole prompt is kept or refused, or whole
keeps the last rows) or runs past the        frames are dropped (``fit="drop_frames"``);
trained length silently                      never a cut through a frame or the question
===========================================  ==================================================
"""

from __future__ import annotations

import bisect
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import torch

from longvid.errors import ContextOverflowError
from longvid.prompting.templates import (
    DEFAULT_PLACEHOLDER,
    ChatTemplate,
    get_template,
    render_parts,
)

if TYPE_CHECKING:
    from longvid.io.subtitles import Cue

#: The id the references write at a visual position (LLaVA's ``IMAGE_TOKEN_INDEX``).
IMAGE_TOKEN_INDEX = -200

#: How `TimeMark` writes a frame's time (an option beyond the references).
TIME_MARK_FORMAT = "frame at {seconds:.1f} s:"

FitPolicy = Literal["error", "drop_frames"]


class TextTokenizer(Protocol):
    """What `assemble` needs of a tokenizer: a transformers tokenizer satisfies it.

    Called with a string or a list of strings it returns a mapping whose ``"input_ids"`` is a
    list of ids (a list of lists for a list); ``bos_token_id`` is None when it has no BOS.
    """

    bos_token_id: int | None

    def __call__(self, text: Any) -> Any: ...


# --- segments -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    """Literal prompt text (template delimiters, the question).

    ``frame`` is set for text that belongs to one frame (MiniGPT4-Video's ``<Img>`` before each
    frame), so dropping the frame drops the text too.
    """

    text: str
    frame: int | None = None

    def render(self) -> str:
        """The text as it is tokenized."""
        return self.text


@dataclass(frozen=True, eq=False)
class Visual:
    """``n_tokens`` rows of visual embeddings, spliced in at this place.

    ``times (n_tokens,)``: the time in seconds of the frame each token came from (or None for a
    still image). ``key`` names the source for reports (``"video"``, ``"image 0"``).
    ``frame_index (n_tokens,)`` int64: the index of the source frame of each token, which lets
    ``fit="drop_frames"`` remove whole frames; None makes the segment undroppable.
    """

    n_tokens: int
    times: torch.Tensor | None = None
    key: str = "video"
    frame_index: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.n_tokens < 0:
            raise ValueError(f"Visual {self.key!r}: n_tokens must be >= 0, got {self.n_tokens}")
        for name in ("times", "frame_index"):
            value = getattr(self, name)
            if value is not None and tuple(value.shape) != (self.n_tokens,):
                raise ValueError(
                    f"Visual {self.key!r}: {name} has shape {tuple(value.shape)}, "
                    f"expected ({self.n_tokens},)"
                )


@dataclass(frozen=True)
class Subtitle:
    """A subtitle (or speech) line said at ``time`` seconds, written with ``fmt`` (``{text}``)."""

    text: str
    time: float
    fmt: str = "subtitle: {text}\n"

    def render(self) -> str:
        """The subtitle as it is tokenized."""
        return self.fmt.format(text=self.text, time=self.time)


@dataclass(frozen=True)
class TimeMark:
    """A text mark of a frame's time, before that frame's tokens (``"frame at 12.5 s:"``).

    ``frame`` is the index of the frame it belongs to, so dropping the frame drops its mark.
    """

    seconds: float
    frame: int | None = None
    fmt: str = TIME_MARK_FORMAT

    def render(self) -> str:
        """The mark as it is tokenized."""
        return self.fmt.format(seconds=self.seconds)


Segment = Text | Visual | Subtitle | TimeMark


@dataclass(frozen=True, eq=False)
class Prompt:
    """An ordered list of segments, plus the stop strings of the template that made it."""

    segments: tuple[Segment, ...]
    stop_strings: tuple[str, ...] = ()
    template: str | None = None

    @classmethod
    def from_text(
        cls,
        text: str,
        n_tokens: int | Sequence[int],
        placeholder: str = DEFAULT_PLACEHOLDER,
        stop_strings: tuple[str, ...] = (),
    ) -> Prompt:
        """A prompt from a string with placeholders, each one a `Visual` of ``n_tokens`` rows.

        For prompts a reference writes as one string with several placeholders (LLaMA-VID's
        movie prompt: two ``<image>`` per frame, each one visual row). ``n_tokens`` is one count
        for every placeholder or one per placeholder.
        """
        pieces = text.split(placeholder)
        n_places = len(pieces) - 1
        counts = [n_tokens] * n_places if isinstance(n_tokens, int) else [int(n) for n in n_tokens]
        if len(counts) != n_places:
            raise ValueError(
                f"Prompt.from_text: {len(counts)} token counts, {n_places} placeholders"
            )
        segments: list[Segment] = []
        for k, piece in enumerate(pieces):
            if piece:
                segments.append(Text(piece))
            if k < n_places:
                segments.append(Visual(counts[k], key=f"{placeholder} {k}"))
        return cls(tuple(segments), stop_strings)

    @property
    def visuals(self) -> list[Visual]:
        """The visual segments in order."""
        return [s for s in self.segments if isinstance(s, Visual)]

    @property
    def n_visual_tokens(self) -> int:
        """How many visual-embedding rows the prompt consumes."""
        return sum(v.n_tokens for v in self.visuals)

    def text_pieces(self) -> list[str]:
        """The text between the visual segments: ``len(visuals) + 1`` strings, some maybe empty.

        These are the chunks the reference's ``tokenizer_image_token`` tokenizes one by one.
        """
        pieces = [""]
        for segment in self.segments:
            if isinstance(segment, Visual):
                pieces.append("")
            else:
                pieces[-1] += segment.render()
        return pieces

    def render(self, placeholder: str | None = None) -> str:
        """The prompt as one string with ``placeholder`` for each visual segment.

        The default placeholder is the template's own (``<image>``; MiniGPT4-Video's
        ``<ImageHere>``), so a prompt in a reference's layout renders as that reference's
        prompt string.
        """
        if placeholder is None:
            placeholder = (
                get_template(self.template).placeholder if self.template else DEFAULT_PLACEHOLDER
            )
        return placeholder.join(self.text_pieces())

    def frame_ids(self) -> list[int]:
        """The distinct frame indices of the prompt, in order of first appearance."""
        seen: dict[int, None] = {}
        for segment in self.segments:
            if isinstance(segment, Visual) and segment.frame_index is not None:
                seen.update(dict.fromkeys(segment.frame_index.tolist()))
            elif isinstance(segment, Text | TimeMark) and segment.frame is not None:
                seen[segment.frame] = None
        return list(seen)

    def keep_frames(self, keep: Sequence[int]) -> tuple[Prompt, torch.Tensor]:
        """This prompt with only the frames in ``keep``, and the visual rows that stay.

        Returns the new prompt and ``rows (N',)``, the indices into this prompt's visual rows
        that the new prompt consumes (so ``visual_embeds[rows]`` goes with it). Visual segments
        without ``frame_index``, subtitles and text of no frame are kept; time marks and text of
        dropped frames go.
        """
        keep_t = torch.as_tensor(list(keep), dtype=torch.long)
        keep_set = set(keep_t.tolist())
        segments: list[Segment] = []
        rows: list[torch.Tensor] = []
        offset = 0
        for segment in self.segments:
            if isinstance(segment, Visual):
                n = segment.n_tokens
                if segment.frame_index is None:
                    segments.append(segment)
                    rows.append(torch.arange(offset, offset + n))
                else:
                    mask = torch.isin(segment.frame_index, keep_t)
                    kept = int(mask.sum())
                    if kept:
                        segments.append(
                            Visual(
                                kept,
                                None if segment.times is None else segment.times[mask],
                                segment.key,
                                segment.frame_index[mask],
                            )
                        )
                        rows.append(offset + mask.nonzero().flatten())
                offset += n
            elif isinstance(segment, Text | TimeMark) and segment.frame is not None:
                if segment.frame in keep_set:
                    segments.append(segment)
            else:
                segments.append(segment)
        index = torch.cat(rows) if rows else torch.zeros(0, dtype=torch.long)
        return Prompt(tuple(segments), self.stop_strings, self.template), index


# --- building ------------------------------------------------------------------------------------


def frame_segments(
    template: ChatTemplate,
    frame: int,
    seconds: float,
    n_tokens: int,
    timestamps: bool,
    time_format: str = TIME_MARK_FORMAT,
) -> list[Segment]:
    """One frame's part of a per-frame prompt: its time mark (if asked), the template's frame
    prefix (MiniGPT4-Video's ``<Img>``) and its visual tokens, all tagged with ``frame``."""
    segments: list[Segment] = []
    if timestamps:
        segments.append(TimeMark(seconds, frame, time_format))
    if template.frame_prefix:
        segments.append(Text(template.frame_prefix, frame))
    segments.append(
        Visual(
            n_tokens,
            torch.full((n_tokens,), seconds, dtype=torch.float32),
            "video",
            torch.full((n_tokens,), frame, dtype=torch.long),
        )
    )
    return segments


def build_video_prompt(
    template: ChatTemplate | str,
    question: str,
    frame_times: Sequence[float] | torch.Tensor,
    tokens_per_frame: int | Sequence[int],
    timestamps: bool = False,
    subtitles: Sequence[Subtitle | Cue] | None = None,
    *,
    time_format: str = TIME_MARK_FORMAT,
) -> Prompt:
    """The one-turn prompt asking ``question`` about a video of ``len(frame_times)`` frames.

    ``frame_times`` are the sampled frames' times in seconds (non-decreasing, from the Clip);
    ``tokens_per_frame`` is the compressor's token count per frame (one int, or one per frame).
    The video goes where the template's placeholder is: by default as one `Visual` holding all
    frames' tokens frame-major (LongVA); one `Visual` per frame when the template is
    ``per_frame``, when ``timestamps`` is True (each frame preceded by a `TimeMark` written with
    ``time_format``, an option beyond the references) or when ``subtitles`` are given (each
    after the last frame at or before its time, written with the template's
    ``subtitle_format``; an io `Cue` counts from its ``start``, its line breaks become spaces).
    See the module docstring for the table.
    """
    t = get_template(template)
    times = torch.as_tensor(frame_times, dtype=torch.float64).flatten()
    n_frames = times.numel()
    if n_frames == 0:
        raise ValueError("build_video_prompt: a video prompt needs at least one frame")
    if n_frames > 1 and bool((times[1:] < times[:-1]).any()):
        raise ValueError("build_video_prompt: frame_times must be non-decreasing")
    if isinstance(tokens_per_frame, int):
        counts = [tokens_per_frame] * n_frames
    else:
        counts = [int(c) for c in tokens_per_frame]
        if len(counts) != n_frames:
            raise ValueError(
                f"build_video_prompt: {len(counts)} token counts for {n_frames} frames"
            )
    if any(c < 0 for c in counts):
        raise ValueError(f"build_video_prompt: negative tokens per frame in {counts}")

    before, after = render_parts(t, question)
    segments: list[Segment] = [Text(before)]
    counts_t = torch.tensor(counts, dtype=torch.long)
    per_frame = t.per_frame or timestamps or bool(subtitles)
    if not per_frame:
        segments.append(
            Visual(
                int(counts_t.sum()),
                times.to(torch.float32).repeat_interleave(counts_t),
                "video",
                torch.arange(n_frames).repeat_interleave(counts_t),
            )
        )
    else:
        # Subtitle k goes after frame bisect_right(times, time) - 1 (index -1: before frame 0).
        time_list = times.tolist()
        after_frame: dict[int, list[Subtitle]] = {}
        for sub in sorted(map(_as_subtitle, subtitles or ()), key=lambda s: s.time):
            placed = Subtitle(sub.text, sub.time, t.subtitle_format)
            after_frame.setdefault(bisect.bisect_right(time_list, sub.time) - 1, []).append(placed)
        segments.extend(after_frame.get(-1, []))
        for i, (seconds, count) in enumerate(zip(time_list, counts, strict=True)):
            segments.extend(frame_segments(t, i, seconds, count, timestamps, time_format))
            segments.extend(after_frame.get(i, []))
    segments.append(Text(after))
    kept = tuple(s for s in segments if not (isinstance(s, Text) and not s.text))
    return Prompt(kept, t.stop_strings, t.name)


def _as_subtitle(sub: Subtitle | Cue) -> Subtitle:
    """A `Subtitle` as it is; an io ``Cue`` (``start``, ``end``, ``text``) at its start time."""
    if isinstance(sub, Subtitle):
        return sub
    return Subtitle(" ".join(sub.text.split("\n")), float(sub.start))


# --- tokenizing ----------------------------------------------------------------------------------


def tokenize_pieces(pieces: Sequence[str], tokenizer: TextTokenizer) -> list[list[int]]:
    """Token ids of each text piece, tokenized separately, with the reference's BOS rule.

    Each piece is tokenized with the tokenizer's defaults (so it adds BOS if it normally does).
    If the first piece starts with ``tokenizer.bos_token_id``, a leading BOS is removed from
    every later piece: one BOS at the start of the whole prompt, as ``tokenizer_image_token``
    leaves it. A tokenizer without BOS (Qwen2) is left untouched.
    """
    if not pieces:
        return []
    encoded = tokenizer(list(pieces))["input_ids"]
    ids = [list(map(int, piece_ids)) for piece_ids in encoded]
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is not None and ids[0][:1] == [bos]:
        ids = [ids[0]] + [p[1:] if p[:1] == [bos] else p for p in ids[1:]]
    return ids


def tokenize_with_placeholders(
    text: str,
    tokenizer: TextTokenizer,
    placeholder: str = DEFAULT_PLACEHOLDER,
    image_token_index: int = IMAGE_TOKEN_INDEX,
) -> list[int]:
    """The reference's ``tokenizer_image_token``: ids of ``text`` with one -200 per placeholder.

    ``text`` is split at every ``placeholder``; the pieces are tokenized by `tokenize_pieces`
    and joined with ``image_token_index`` (consecutive placeholders give consecutive -200s).
    This is the compact form the reference feeds its model; `assemble` writes one -200 per
    visual row instead.
    """
    out: list[int] = []
    for k, piece_ids in enumerate(tokenize_pieces(text.split(placeholder), tokenizer)):
        if k:
            out.append(image_token_index)
        out.extend(piece_ids)
    return out


# --- fitting -------------------------------------------------------------------------------------


def frames_that_fit(
    context_length: int, text_tokens: int, tokens_per_frame: int, reserve: int = 0
) -> int:
    """How many frames of ``tokens_per_frame`` tokens fit next to ``text_tokens`` of text.

    ``(context_length - reserve - text_tokens) // tokens_per_frame``, at least 0. With
    timestamps, count a frame's mark in ``tokens_per_frame`` and keep it out of ``text_tokens``.
    """
    if tokens_per_frame < 1:
        raise ValueError(f"frames_that_fit: tokens_per_frame must be >= 1, got {tokens_per_frame}")
    return max(0, (context_length - reserve - text_tokens) // tokens_per_frame)


def uniform_subsample(n: int, k: int) -> list[int]:
    """``k`` of ``range(n)`` spread uniformly, ends included: ``linspace(0, n-1, k)`` truncated.

    The frame-sampling rule of the references (``np.linspace(..., dtype=int)``); the result is
    strictly increasing for ``1 <= k <= n``.
    """
    if not 0 <= k <= n:
        raise ValueError(f"uniform_subsample: need 0 <= k <= n, got k={k}, n={n}")
    if k == 0:
        return []
    if k == 1:
        return [0]
    return [int(math.floor(i * (n - 1) / (k - 1))) for i in range(k)]


# --- assembling ----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class AssembledPrompt:
    """What the language model eats, and how it was made.

    ``inputs_embeds (1, L, D)``, ``attention_mask (1, L)`` (int64 ones) and ``input_ids (1, L)``
    (text ids, ``IMAGE_TOKEN_INDEX`` at visual rows) line up position by position;
    ``visual_positions (N,)`` are the positions of the visual rows in order, ``visual_times
    (N,)`` their frames' times (None when a visual segment has none). ``frames`` are the frame
    indices the prompt holds and ``dropped_frames`` those ``fit="drop_frames"`` removed, with
    ``note`` saying so. ``prompt`` is the prompt actually assembled.
    """

    inputs_embeds: torch.Tensor
    attention_mask: torch.Tensor
    input_ids: torch.Tensor
    visual_positions: torch.Tensor
    token_count: int
    text_token_count: int
    visual_token_count: int
    context_length: int
    reserve_new_tokens: int
    prompt: Prompt
    visual_times: torch.Tensor | None = None
    frames: tuple[int, ...] = ()
    dropped_frames: tuple[int, ...] = ()
    note: str | None = None


def _layout(prompt: Prompt, tokenizer: TextTokenizer, image_token_index: int) -> list[int]:
    """The expanded id sequence: each piece's ids, then ``n_tokens`` placeholders per visual."""
    visuals = prompt.visuals
    ids: list[int] = []
    for k, piece_ids in enumerate(tokenize_pieces(prompt.text_pieces(), tokenizer)):
        ids.extend(piece_ids)
        if k < len(visuals):
            ids.extend([image_token_index] * visuals[k].n_tokens)
    return ids


def _overflow_what(text: int, visual: int, reserve: int, frames: int | None) -> str:
    frames_part = f" from {frames} frame{'s' if frames != 1 else ''}" if frames else ""
    reserve_part = f" + {reserve} reserved for the answer" if reserve else ""
    return f"prompt ({text} text + {visual} visual tokens{frames_part}{reserve_part})"


def assemble(
    prompt: Prompt,
    tokenizer: TextTokenizer,
    embed_tokens: Callable[[torch.Tensor], torch.Tensor],
    visual_embeds: torch.Tensor | None,
    context_length: int,
    path: str | os.PathLike[str] | None = None,
    *,
    reserve_new_tokens: int = 0,
    fit: FitPolicy = "error",
    image_token_index: int = IMAGE_TOKEN_INDEX,
) -> AssembledPrompt:
    """Tokenize ``prompt``, embed its text and splice ``visual_embeds (N, D)`` in, in order.

    ``embed_tokens`` is the LLM's input embedding (called once, on the 1-D tensor of all text
    ids, on ``visual_embeds``' device); the output takes its dtype. ``visual_embeds`` has one
    row per visual token of the prompt (None for a text-only prompt). When ``L +
    reserve_new_tokens > context_length``: ``fit="error"`` raises `ContextOverflowError`
    (needed vs. context, with ``path``, the video, in the message); ``fit="drop_frames"`` keeps
    the most frames that fit (`frames_that_fit`, uniformly subsampled), records the dropped
    ones, and raises only if not even one frame fits.
    """
    if fit not in ("error", "drop_frames"):
        raise ValueError(f"assemble: fit must be 'error' or 'drop_frames', got {fit!r}")
    if reserve_new_tokens < 0:
        raise ValueError(f"assemble: reserve_new_tokens must be >= 0, got {reserve_new_tokens}")
    n_visual = prompt.n_visual_tokens
    if visual_embeds is None:
        if n_visual:
            raise ValueError(f"assemble: the prompt has {n_visual} visual tokens but no embeds")
    elif visual_embeds.dim() != 2 or visual_embeds.shape[0] != n_visual:
        raise ValueError(
            f"assemble: visual_embeds has shape {tuple(visual_embeds.shape)}, "
            f"expected ({n_visual}, D) for this prompt"
        )
    path_str = os.fspath(path) if path is not None else None

    ids = _layout(prompt, tokenizer, image_token_index)
    all_frames = prompt.frame_ids()
    dropped: tuple[int, ...] = ()
    note: str | None = None
    if len(ids) + reserve_new_tokens > context_length:
        if fit == "error" or not all_frames:
            raise ContextOverflowError(
                len(ids) + reserve_new_tokens,
                context_length,
                _overflow_what(len(ids) - n_visual, n_visual, reserve_new_tokens, len(all_frames)),
                path_str,
            )
        prompt, ids, rows = _drop_frames(
            prompt,
            tokenizer,
            ids,
            all_frames,
            context_length,
            reserve_new_tokens,
            image_token_index,
            path_str,
        )
        if visual_embeds is not None:
            visual_embeds = visual_embeds[rows.to(visual_embeds.device)]
        kept_frames = prompt.frame_ids()
        kept_set = set(kept_frames)
        dropped = tuple(f for f in all_frames if f not in kept_set)
        note = (
            f"dropped {len(dropped)} of {len(all_frames)} frames (kept {len(kept_frames)}, "
            f"uniformly spread) to fit the context of {context_length} tokens"
            + (f" with {reserve_new_tokens} reserved for the answer" if reserve_new_tokens else "")
        )
        all_frames = kept_frames

    if visual_embeds is not None:
        device = visual_embeds.device
    elif isinstance(embed_tokens, torch.nn.Module):
        device = next(embed_tokens.parameters(), torch.empty(0)).device
    else:
        device = torch.device("cpu")
    input_ids = torch.tensor(ids, dtype=torch.long, device=device)
    visual_mask = input_ids == image_token_index
    text_ids = input_ids[~visual_mask]
    text_embeds = embed_tokens(text_ids)
    if visual_embeds is not None and text_ids.numel() == 0:
        dtype = visual_embeds.dtype
    else:
        dtype = text_embeds.dtype
    width = text_embeds.shape[-1] if visual_embeds is None else visual_embeds.shape[-1]
    if text_embeds.shape[-1] != width:
        raise ValueError(
            f"assemble: text embeddings are {text_embeds.shape[-1]} wide, visual ones {width}"
        )
    inputs_embeds = torch.empty(len(ids), width, dtype=dtype, device=text_embeds.device)
    inputs_embeds[~visual_mask] = text_embeds.to(dtype)
    if visual_embeds is not None:
        inputs_embeds[visual_mask] = visual_embeds.to(device=inputs_embeds.device, dtype=dtype)

    times = [v.times for v in prompt.visuals]
    visual_times = (
        torch.cat([t for t in times if t is not None])
        if times and all(t is not None for t in times)
        else None
    )
    n_visual = int(visual_mask.sum())
    return AssembledPrompt(
        inputs_embeds=inputs_embeds.unsqueeze(0),
        attention_mask=torch.ones(1, len(ids), dtype=torch.long, device=inputs_embeds.device),
        input_ids=input_ids.unsqueeze(0),
        visual_positions=visual_mask.nonzero().flatten(),
        token_count=len(ids),
        text_token_count=len(ids) - n_visual,
        visual_token_count=n_visual,
        context_length=context_length,
        reserve_new_tokens=reserve_new_tokens,
        prompt=prompt,
        visual_times=visual_times,
        frames=tuple(all_frames),
        dropped_frames=dropped,
        note=note,
    )


def _drop_frames(
    prompt: Prompt,
    tokenizer: TextTokenizer,
    ids: list[int],
    frames: list[int],
    context_length: int,
    reserve: int,
    image_token_index: int,
    path: str | None,
) -> tuple[Prompt, list[int], torch.Tensor]:
    """The prompt with the most uniformly spread frames that fit, its ids and its visual rows.

    A frame costs its visual tokens plus the tokens of its own text (time mark, frame prefix);
    `frames_that_fit` with the dearest frame's cost gives the estimate (exact when every frame
    costs the same). The prompt is then laid out for real: while one frame more still fits it
    is taken, and should the tokenizer join pieces differently so that the estimate does not
    fit, one frame fewer is tried until it does.
    """
    visual_per_frame: dict[int, int] = dict.fromkeys(frames, 0)
    for v in prompt.visuals:
        if v.frame_index is not None:
            for frame, count in zip(*torch.unique(v.frame_index, return_counts=True), strict=True):
                visual_per_frame[int(frame)] += int(count)
    marks = [
        (s.frame, s.render())
        for s in prompt.segments
        if isinstance(s, Text | TimeMark) and s.frame is not None
    ]
    mark_ids = tokenize_pieces([text for _, text in marks], tokenizer)
    mark_per_frame: dict[int, int] = dict.fromkeys(frames, 0)
    for (frame, _), m_ids in zip(marks, mark_ids, strict=True):
        mark_per_frame[frame] += len(m_ids)
    costs = [visual_per_frame[f] + mark_per_frame[f] for f in frames]
    fixed = len(ids) - sum(costs)
    k = min(
        len(frames) - 1,
        frames_that_fit(context_length, fixed, max(1, max(costs)), reserve),
    )
    k = max(k, 1)

    def try_k(k: int) -> tuple[bool, Prompt, list[int], torch.Tensor]:
        keep = [frames[i] for i in uniform_subsample(len(frames), k)]
        smaller, rows = prompt.keep_frames(keep)
        new_ids = _layout(smaller, tokenizer, image_token_index)
        return len(new_ids) + reserve <= context_length, smaller, new_ids, rows

    ok, smaller, new_ids, rows = try_k(k)
    if ok:  # the estimate is a lower bound: take more frames while they still fit
        while k + 1 < len(frames):
            more = try_k(k + 1)
            if not more[0]:
                break
            k, (ok, smaller, new_ids, rows) = k + 1, more
        return smaller, new_ids, rows
    while k > 1:
        k -= 1
        ok, smaller, new_ids, rows = try_k(k)
        if ok:
            return smaller, new_ids, rows
    n_visual = smaller.n_visual_tokens
    raise ContextOverflowError(
        len(new_ids) + reserve,
        context_length,
        "even cut to 1 frame, the " + _overflow_what(len(new_ids) - n_visual, n_visual, reserve, 1),
        path,
    )
