"""Which frames a MiniGPT4-Video prompt shows, and which subtitle text follows each frame.

Paper: Ataallah et al., "MiniGPT4-Video: Advancing Multimodal LLMs for Video Understanding with
Interleaved Visual-Textual Tokens", 2024, §3 (each sampled frame is followed by the subtitle
text spoken since the previous one: ``<Img><ImageHere><Cap>text``). The contract is section 2 of
``shared/parity/minigpt4video/README.md``.

The reference does this in four slightly different code paths and one more for TVQA; each is
reproduced exactly behind ``alignment=`` (see `ALIGNMENTS`):

==============================  ==============================================================
``alignment``                   reference
==============================  ==============================================================
``"longvid"`` (default)         none: the corrected walk below
``"minigpt4video-inference"``   ``minigpt4_video_inference.py`` / ``minigpt4_video_demo.py``
``"minigpt4video-goldfish"``    ``goldfish_lv.py`` ``GoldFish_LV.prepare_input``
``"minigpt4video-train"``       ``video_datasets.py`` ``VideoChatGPTDataset`` (WebVid, CMD too)
``"minigpt4video-eval"``        ``video_datasets.py`` ``VideoChatGPTEvalDataset``
``"minigpt4video-tvqa"``        ``video_datasets.py`` ``TVQAEVAL`` (a folder of 3-fps JPEGs;
                                `tvqa_alignment`)
==============================  ==============================================================

The reference paths all walk the decoded frames from index 0 with ``interval = max(1,
int(int(duration * fps) / N))`` (N = 45 for Llama-2, 90 for Mistral; `REFERENCE_BUDGETS`),
collect subtitle text at every frame into a buffer, emit a slot at every ``interval``-th frame
(with ``<Cap>`` + buffer while fewer than 400 / 800 "words" were emitted) and stop at N slots.
Reference defects and what the default does instead:

=====================================  ===========================  ===========================
defect (parity case)                   faithful option              default (``"longvid"``)
=====================================  ===========================  ===========================
stops after N slots, so only a prefix  every ``minigpt4video-*``    N frames spread over the
of the video is seen                   path                         whole video (`uniform`)
(``sampling_covers_prefix_only``)
frame times are ``index / int(fps)``:  ``-goldfish``, ``-train``,   real presentation
29.97 fps drifts ~2 s late per         ``-eval``                    timestamps from the decoder
minute (``ntsc_29p97_late_cues``)
one cue per frame (binary search or    ``-inference`` (bsearch),    every cue that overlaps
first match): overlapping cues are     ``-goldfish``/``-eval``      the span since the previous
lost (``overlapping_cues``), a cue     (first match)                frame is kept (`align`)
touching the previous one is delayed
a cue text seen once is never shown    all reference paths          a cue repeated later is
again (``repeated_text_and_gap``)                                   shown again
``train`` drops every word that is a   ``-train``                   the text is kept as written
substring of the buffer or of the
previous caption ("a" after "We are")
budget in space-split "words", one     all reference paths          counted in tokens of the
caption may overshoot it                                            real tokenizer; a caption
                                                                    that does not fit is left
                                                                    out, never overshoots
cue times truncated to whole ms        ``-inference``, and float    cue times as pysubs2 reads
(inference) or rebuilt from parts as   parts in the others          them (integer ms)
floats (1.360 s < frame 34 @ 25 fps)
short videos are padded by repeating   all but ``-inference``       no padding: fewer frames
the last frame (``short_video_         (``-inference`` gives 30     are fewer frames
padding``)                             slots, no padding)
no subtitle file crashes the           never reproduced (a crash    no subtitles is a normal
inference path with ``TypeError``      is not behaviour)            case: frames only
(``probe_inference_subtitle_path_
None``)
=====================================  ===========================  ===========================

The reference paths are pure functions of ``(n_frames, fps, duration, cues)`` (`reference_
alignment`), so the parity tests run them without video; `align_video` runs any path on a real
file through `longvid.io.video.VideoReader.iter_frames` (the frame-by-frame walk, the frames of
the slots kept) and `longvid.io.subtitles.load_subtitles` (pysubs2).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from longvid.errors import SamplingError
from longvid.io.subtitles import Cue, Subtitles, align, load_subtitles

__all__ = [
    "ALIGNMENTS",
    "IMAGE_SLOT",
    "REFERENCE_BUDGETS",
    "TVQA_FPS",
    "AlignedFrames",
    "Alignment",
    "ReferenceBudget",
    "align_captions",
    "align_video",
    "reference_alignment",
    "reference_interval",
    "tvqa_alignment",
    "tvqa_user_text",
]

Alignment = Literal[
    "longvid",
    "minigpt4video-inference",
    "minigpt4video-goldfish",
    "minigpt4video-train",
    "minigpt4video-eval",
    "minigpt4video-tvqa",
]

#: Every ``alignment=`` value; the reference paths are the ones starting ``minigpt4video-``.
ALIGNMENTS: tuple[str, ...] = (
    "longvid",
    "minigpt4video-inference",
    "minigpt4video-goldfish",
    "minigpt4video-train",
    "minigpt4video-eval",
    "minigpt4video-tvqa",
)

#: What the reference writes for one image slot; ``<Cap>`` + text follows it when captioned.
IMAGE_SLOT = "<Img><ImageHere>"
CAPTION_MARK = "<Cap>"

#: TVQA frames are JPEGs extracted at 3 fps.
TVQA_FPS = 3

_TAG = re.compile(r"<.*?>")


@dataclass(frozen=True)
class ReferenceBudget:
    """Frames (image slots) and subtitle words of one reference LLM."""

    n_frames: int
    word_budget: int


#: The reference's settings: Llama-2 (4K context) 45 frames / 400 words, Mistral (8K) 90 / 800.
REFERENCE_BUDGETS: dict[str, ReferenceBudget] = {
    "llama2": ReferenceBudget(45, 400),
    "mistral": ReferenceBudget(90, 800),
}


@dataclass
class AlignedFrames:
    """The image slots of a prompt and the caption after each.

    ``frame_indices``: decode index of every slot (a padded slot repeats the last frame);
    ``captions``: the ``<Cap>`` text after each slot (reference form: trailing space), or None;
    ``timestamps``: each slot's time in seconds where known (the decoder's, or the index over
    the path's fps for the reference paths run without video). ``sampling_interval``: the
    reference's frame step; ``conversation``: Goldfish's concatenation of every cue.
    """

    frame_indices: list[int]
    captions: list[str | None]
    alignment: str
    timestamps: list[float] | None = None
    sampling_interval: int | None = None
    conversation: str | None = None
    prefix: str = ""
    payloads: list[Any] = field(default_factory=list, repr=False)

    @property
    def n_images(self) -> int:
        """The number of image slots (padding included)."""
        return len(self.frame_indices)

    def placeholder(self) -> str:
        """The reference's image string: ``<Img><ImageHere>`` per slot, ``<Cap>text`` after."""
        return "".join(IMAGE_SLOT + (CAPTION_MARK + c if c else "") for c in self.captions)

    def user_text(self, instruction: str) -> str:
        """The full user message: placeholder string, ``"\\n"``, instruction."""
        return self.placeholder() + "\n" + instruction


# --------------------------------------------------------------------------------------------
# Cue times and text as each reference path sees them


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


def _parts(ms: int) -> tuple[int, int, int, int]:
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, milli = divmod(rest, 1000)
    return h, m, s, milli


def _inference_ms(seconds: float) -> int:
    """The inference path: ``HH:MM:SS.sss`` -> ``int((h*3600 + m*60 + float(SS.sss)) * 1000)``."""
    h, m, s, milli = _parts(_ms(seconds))
    return int((h * 3600 + m * 60 + float(f"{s:02d}.{milli:03d}")) * 1000)


def _parts_seconds(seconds: float) -> float:
    """The other paths: ``h*3600 + m*60 + s + ms/1000`` in floating point."""
    h, m, s, milli = _parts(_ms(seconds))
    return h * 3600 + m * 60 + s + milli / 1000


def _clean(text: str) -> str:
    """Tags removed (every shortest ``<...>``), line breaks as spaces, ends stripped."""
    return _TAG.sub("", text).replace("\n", " ").strip()


@dataclass(frozen=True)
class _RefCue:
    start: float
    end: float
    text: str


def _reference_cues(cues: Iterable[Cue], path: str) -> list[_RefCue]:
    out = []
    for cue in cues:
        if path == "minigpt4video-inference":
            out.append(_RefCue(_inference_ms(cue.start), _inference_ms(cue.end), _clean(cue.text)))
        elif path == "minigpt4video-tvqa":  # JSON floats and text, used as they are
            out.append(_RefCue(cue.start, cue.end, cue.text))
        else:
            out.append(
                _RefCue(_parts_seconds(cue.start), _parts_seconds(cue.end), _clean(cue.text))
            )
    return out


# --------------------------------------------------------------------------------------------
# The reference walk


class _Walk:
    """The state the reference keeps while it decodes frame after frame."""

    def __init__(self, path: str, cues: list[_RefCue], word_budget: int) -> None:
        self.path = path
        self.cues = cues
        self.word_budget = word_budget
        self.buffer = ""
        self.seen: set[str] = set()
        self.words = 0
        self.previous_caption = ""

    def collect(self, time: float) -> None:
        """The subtitle step at one decoded frame (time in the path's units)."""
        if self.path == "minigpt4video-inference":
            cue = self._bsearch(time)
            if cue is not None and cue.text and cue.text not in self.seen:
                self.buffer += cue.text + " "
                self.seen.add(cue.text)
        elif self.path == "minigpt4video-train":
            for cue in self.cues:
                if cue.start <= time <= cue.end and cue.text not in self.seen:
                    self.seen.add(cue.text)
                    for word in cue.text.split(" "):
                        if word not in self.buffer and word not in self.previous_caption:
                            self.buffer += word + " "
        else:  # goldfish, eval, tvqa: the first active cue not already in the buffer
            for cue in self.cues:
                if cue.start <= time <= cue.end and cue.text not in self.buffer:
                    if cue.text not in self.seen:
                        self.buffer += cue.text + " "
                        self.seen.add(cue.text)
                    break

    def _bsearch(self, time: float) -> _RefCue | None:
        lo, hi = 0, len(self.cues) - 1
        while lo <= hi:
            mid = (lo + hi) // 2
            cue = self.cues[mid]
            if cue.start <= time <= cue.end:
                return cue
            if time < cue.start:
                hi = mid - 1
            else:
                lo = mid + 1
        return None

    def caption(self) -> str | None:
        """At an image slot: the caption, if there is text and budget left (then cleared)."""
        if self.buffer and self.words < self.word_budget:
            text = self.buffer
            self.words += len(text.split(" "))
            self.previous_caption = text
            self.buffer = ""
            return text
        return None


def _walk(
    frames: Iterable[tuple[int, Any]],
    time_of: Callable[[int], float],
    interval: int,
    n_slots: int,
    cues: list[_RefCue],
    path: str,
    word_budget: int,
    pad: bool,
) -> tuple[list[int], list[str | None], list[Any]]:
    walk = _Walk(path, cues, word_budget)
    indices: list[int] = []
    captions: list[str | None] = []
    payloads: list[Any] = []
    for index, payload in frames:
        walk.collect(time_of(index))
        if index % interval == 0:
            indices.append(index)
            captions.append(walk.caption())
            payloads.append(payload)
            if len(indices) >= n_slots:
                break
    if pad and indices:
        while len(indices) < n_slots:
            indices.append(indices[-1])
            captions.append(None)
            payloads.append(payloads[-1])
    return indices, captions, payloads


def _budget(llm: str | ReferenceBudget) -> ReferenceBudget:
    if isinstance(llm, ReferenceBudget):
        return llm
    if llm not in REFERENCE_BUDGETS:
        raise SamplingError(
            f"unknown reference LLM {llm!r} (known: {', '.join(REFERENCE_BUDGETS)})"
        )
    return REFERENCE_BUDGETS[llm]


def reference_interval(fps: float, duration: float, n_slots: int) -> int:
    """The reference's frame step: ``max(1, int(int(duration * fps) / n_slots))``."""
    return max(1, int(int(duration * fps) / n_slots))


def reference_alignment(
    alignment: str,
    *,
    n_frames: int,
    fps: float,
    duration: float,
    cues: Sequence[Cue] | Subtitles | None,
    llm: str | ReferenceBudget = "llama2",
    frames: Iterable[tuple[int, Any]] | None = None,
) -> AlignedFrames:
    """One of the reference's four video paths, exactly as it runs (README §2).

    ``n_frames``: frames the decoder yields; ``fps``/``duration``: what the reference's video
    library reports (its ``interval`` comes from ``int(duration * fps)``); ``cues`` in file
    order (None: no subtitles, a normal case here, unlike the reference's inference path).
    ``frames``: the decoded frames as ``(index, payload)`` pairs, for a walk over a real video
    (default: the indices alone). The payload of each slot is kept in ``payloads``.
    """
    if alignment not in ALIGNMENTS[1:5]:
        raise SamplingError(
            f"reference_alignment: {alignment!r} is not one of {', '.join(ALIGNMENTS[1:5])}"
        )
    budget = _budget(llm)
    cue_list = list(cues.cues if isinstance(cues, Subtitles) else cues or [])
    ref_cues = _reference_cues(cue_list, alignment)
    interval = reference_interval(fps, duration, budget.n_frames)
    if alignment == "minigpt4video-inference":

        def time_of(i: int) -> float:
            return i / fps * 1000
    else:
        whole_fps = int(fps)
        if whole_fps < 1:
            raise SamplingError(f"{alignment}: int(fps) is 0 for fps={fps}")

        def time_of(i: int) -> float:
            return i / whole_fps

    source = frames if frames is not None else ((i, None) for i in range(n_frames))
    indices, captions, payloads = _walk(
        source,
        time_of,
        interval,
        budget.n_frames,
        ref_cues,
        alignment,
        budget.word_budget,
        pad=alignment != "minigpt4video-inference",
    )
    conversation = None
    if alignment == "minigpt4video-goldfish":
        conversation = "".join(c.text for c in ref_cues)
    slot_fps = fps if alignment == "minigpt4video-inference" else float(int(fps))
    return AlignedFrames(
        frame_indices=indices,
        captions=captions,
        alignment=alignment,
        timestamps=[i / slot_fps for i in indices],
        sampling_interval=interval,
        conversation=conversation,
        payloads=payloads if frames is not None else [],
    )


def tvqa_alignment(
    n_frames: int,
    cues: Sequence[Cue] | None,
    llm: str | ReferenceBudget = "llama2",
    frames: Iterable[tuple[int, Any]] | None = None,
) -> AlignedFrames:
    """The TVQA loader (``TVQAEVAL``): ``n_frames`` JPEGs at 3 fps sorted by name, ``interval
    = max(1, round(n_frames / N))`` (banker's rounding), time ``index / 3``, cues in seconds
    (JSON floats, no re-rounding) matched by the goldfish/eval rule; padded to N slots."""
    budget = _budget(llm)
    ref_cues = _reference_cues(cues or [], "minigpt4video-tvqa")
    interval = max(1, round(n_frames / budget.n_frames))
    source = frames if frames is not None else ((i, None) for i in range(n_frames))
    indices, captions, payloads = _walk(
        source,
        lambda i: i / TVQA_FPS,
        interval,
        budget.n_frames,
        ref_cues,
        "minigpt4video-tvqa",
        budget.word_budget,
        pad=True,
    )
    return AlignedFrames(
        frame_indices=indices,
        captions=captions,
        alignment="minigpt4video-tvqa",
        timestamps=[i / TVQA_FPS for i in indices],
        sampling_interval=interval,
        payloads=payloads if frames is not None else [],
    )


def tvqa_user_text(aligned: AlignedFrames, question: str, choices: Sequence[str]) -> str:
    """The TVQA user message: placeholder, ``"\\n"``, question, the multiple-choice suffix."""
    options = "".join(f"option {i}: {choice} \n\n" for i, choice in enumerate(choices))
    return (
        aligned.placeholder()
        + "\n"
        + question
        + " \n\n As you watched in this video Choose ONE suitable answer from these mutiple "
        "choices \n\n"
        + options
        + "\n Your output should be THE NUMBER OF THE CORRECT ANSWER FROM THE CHOICES FROM 0 TO "
        f"{len(choices) - 1} INCLUSIVE"
    )


# --------------------------------------------------------------------------------------------
# The default


def _count_tokens(text: str, tokenizer: Any | None) -> int:
    if tokenizer is None:
        return len(text.split())
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def align_captions(
    subtitles: Subtitles | None,
    frame_times: Sequence[float] | np.ndarray,
    *,
    token_budget: int | None = None,
    tokenizer: Any | None = None,
) -> list[str | None]:
    """The default: the caption after each frame, from real timestamps.

    Every cue goes to the first frame whose window it touches (`longvid.io.subtitles.align`:
    overlapping cues all kept, a short cue between two frames not lost, a repeated line shown
    again); a frame's cues are joined with spaces (line breaks too). ``token_budget`` caps the
    caption text in tokens of ``tokenizer`` (its ``input_ids`` without special tokens; words when
    None): captions are taken in time order while they fit, one that would overshoot is left
    out. Returns one caption (reference form, trailing space) or None per frame.
    """
    times = np.asarray(frame_times, dtype=np.float64)
    if subtitles is None or len(subtitles) == 0:
        return [None] * len(times)
    used = 0
    captions: list[str | None] = []
    for text in align(subtitles, times):
        clean = " ".join(text.split())
        if not clean:
            captions.append(None)
            continue
        caption = clean + " "
        cost = _count_tokens(caption, tokenizer)
        if token_budget is not None and used + cost > token_budget:
            captions.append(None)
            continue
        used += cost
        captions.append(caption)
    return captions


def align_video(
    video: str | os.PathLike[str],
    subtitles: Subtitles | str | os.PathLike[str] | None,
    alignment: str = "longvid",
    *,
    llm: str | ReferenceBudget = "llama2",
    n_frames: int | None = None,
    token_budget: int | None = None,
    tokenizer: Any | None = None,
    size: int | tuple[int, int] | None = None,
) -> tuple[Any, AlignedFrames]:
    """Decode ``video``'s image slots and align ``subtitles`` (a file or loaded cues) to them.

    Returns a `longvid.io.video.Clip` (one frame per slot, padding repeats included, with the
    decoder's timestamps) and the `AlignedFrames`. ``alignment="longvid"`` samples
    ``n_frames`` (default: the LLM's 45 / 90) uniformly over the whole video and captions them
    with `align_captions` (``token_budget`` in ``tokenizer``'s tokens); a reference path walks
    the decoded frames one by one as the reference does (`reference_alignment`), with the
    fps and duration the probe reports. TVQA's frame folders are not videos: use
    `tvqa_alignment`.
    """
    from longvid.io.video import Clip, VideoReader, uniform

    if alignment not in ALIGNMENTS or alignment == "minigpt4video-tvqa":
        raise SamplingError(
            f"align_video: unknown alignment {alignment!r} (known: {', '.join(ALIGNMENTS[:5])})"
        )
    subs = (
        subtitles
        if isinstance(subtitles, Subtitles) or subtitles is None
        else load_subtitles(subtitles)
    )
    budget = _budget(llm)
    with VideoReader(video, size=size) as reader:
        info = reader.info
        total = len(reader.timeline)
        if alignment == "longvid":
            want = n_frames or budget.n_frames
            indices = np.unique(uniform(want)(reader.timeline))
            clip = reader.read(indices)
            captions = align_captions(
                subs, clip.timestamps, token_budget=token_budget, tokenizer=tokenizer
            )
            aligned = AlignedFrames(
                frame_indices=[int(i) for i in clip.indices],
                captions=captions,
                alignment=alignment,
                timestamps=[float(t) for t in clip.timestamps],
            )
            return clip, aligned
        # Only slot frames are converted to RGB: the reference's walk needs every index (its
        # times come from the index), but pixels only at every ``interval``-th frame.
        interval = reference_interval(info.avg_fps, info.duration, budget.n_frames)
        decoded = reader.iter_frames(every=interval)

        def walked() -> Iterable[tuple[int, Any]]:
            for index in range(total):
                if index % interval:
                    yield index, None
                    continue
                got, seconds, rgb = next(decoded)
                if got != index:
                    raise SamplingError(f"decoder gave frame {got} for {index}", video)
                yield index, (seconds, rgb)

        aligned = reference_alignment(
            alignment,
            n_frames=total,
            fps=info.avg_fps,
            duration=info.duration,
            cues=subs,
            llm=budget,
            frames=walked(),
        )
    payloads = aligned.payloads
    if not payloads:
        raise SamplingError("no frames decoded", video)
    clip = Clip(
        frames=np.stack([rgb for _, rgb in payloads]),
        timestamps=np.array([s for s, _ in payloads], dtype=np.float64),
        indices=np.array(aligned.frame_indices, dtype=np.int64),
        path=os.fspath(video),
        info=info,
        sampler=f"{alignment}(n={budget.n_frames}, interval={aligned.sampling_interval})",
    )
    aligned.timestamps = [float(s) for s, _ in payloads]
    aligned.payloads = []
    return clip, aligned
