"""LLaMA-VID's prompt strings, movie inputs with subtitles, and frame sampling rules.

Paper: Li, Wang and Jia, "LLaMA-VID: An Image is Worth 2 Tokens in Large Language Models"
(ECCV 2024), §3.2 (training data, including the long-video / movie instruction data) and
§4 (evaluation). Contract:
``shared/parity/llamavid/README.md`` §3-5 (``movie_and_prompts.json``).

- Conversations: ``vicuna_v1`` (eval, movie) and ``imgsp_v1`` (training) render the same text;
  `conversation_text` renders turns, `eval_prompt` one question about an image / short video
  (Q-Former prompt: the raw question).
- Movie mode: `align_subtitles` attaches subtitle text to frames and gives the movie ``inputs``
  string (``"<image>"`` + text per frame); `movie_cli_prompt` is ``run_llamavid_movie.py``'s
  prompt (every ``<image>`` repeated ``video_token`` = 2 times, one per visual token);
  `movie_demo_prompt` the demo worker's; `movie_training_conversation` the training form;
  `llamavid_movie_prompt` builds the movie prompt as a `longvid.prompting.prompt.Prompt` (text,
  per-frame visual segments and subtitles), so `assemble` runs it with the model's tokens.
- Subtitle sources: `parse_movienet_srt` (MovieNet ``.srt``), `whisper_subtitles`,
  `movienet_frame_times`.
- `frame_indices`: the reference's four frame-sampling code paths, for comparison with
  `longvid.io.video.llamavid_fps` (which decodes at exact timestamps).

Reference defects (README §3-5) and what the default does instead:

===============================  ==========================================  ====================
defect                           faithful option                             default
===============================  ==========================================  ====================
subtitle misattachment: a cue    ``align_subtitles(rule="llamavid")``        ``rule="start"``:
goes after the last frame                                                    after the last frame
strictly before its *end*; one                                               at or before its
ending before the first frame                                                start (cues sorted;
lands on the last frame; the                                                 one before frame 0
pointer never moves back                                                     goes with frame 0)
a subtitle line of digits only   ``parse_movienet_srt(digit_lines=           ``"keep"``: a digit
is taken for a cue number and    "llamavid-drop")``                          line is a cue number
its text is lost                                                             only before a timing
                                                                             line
the demo worker does not repeat  ``movie_demo_prompt(placeholders=           ``"per-token"``: one
``<image>`` per token (T         "llamavid-demo")``                          ``<image>`` per
placeholders for 2T tokens)                                                  visual token
round-half-even frame step       ``frame_indices(path="cli" / ...)``         ``path="exact"``:
(12.5 fps at 1 fps steps 12;                                                 the frame nearest
the eval worker ignores the                                                  each ``k/target``
requested fps)                                                               second
training Q-Former prompts        ``training_qformer_prompts(newlines=        ``"space"``: each
delete every ``\\n`` without a    "llamavid-delete")``                        newline becomes one
space                                                                        space
===============================  ==========================================  ====================
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from longvid.errors import SamplingError, SubtitleError
from longvid.prompting.templates import get_template

__all__ = [
    "MOVIE_CLI_END",
    "MOVIE_CLI_START",
    "TimedText",
    "align_subtitles",
    "conversation_text",
    "eval_prompt",
    "frame_indices",
    "llamavid_movie_prompt",
    "movie_cli_prompt",
    "movie_demo_prompt",
    "movie_training_conversation",
    "movienet_frame_times",
    "parse_movienet_srt",
    "training_qformer_prompts",
    "whisper_subtitles",
]

IMAGE = "<image>"
MOVIE_CLI_START = (
    "Below is a movie. Memorize the content and answer my question after watching this movie."
)
MOVIE_CLI_END = "Now the movie end."
MOVIE_DEMO_START = (
    "Below is a part of movie. Memorize the content and answer my question after this movie "
    "part. The movie part start.\n"
)
MOVIE_DEMO_END = "\nThe movie part end.\n"


@dataclass(frozen=True)
class TimedText:
    """A subtitle: ``start_time`` and ``end_time`` in seconds, ``text``."""

    start_time: float
    end_time: float
    text: str


# --------------------------------------------------------------------------------------------
# Conversations


def conversation_text(turns: Sequence[tuple[str, str | None]], template: str = "vicuna_v1") -> str:
    """The vicuna_v1 / imgsp_v1 conversation text of ``(user, assistant)`` turns.

    An assistant message of None ends the prompt with ``" ASSISTANT:"`` (generation); a given
    one is followed by ``"</s>"`` and the next turn starts ``"USER: "`` right after it.
    """
    t = get_template(template)
    text = t.system
    sep = " "
    for user, answer in turns:
        text += sep + "USER: " + user + " ASSISTANT:"
        if answer is None:
            return text
        text += " " + answer + "</s>"
        sep = ""
    return text


def eval_prompt(question: str) -> tuple[str, list[list[str]]]:
    """Short-video / image eval: the prompt (``"<image>\\n" + question``) and the Q-Former
    prompts (``[[question]]``)."""
    return conversation_text([(IMAGE + "\n" + question, None)]), [[question]]


def movie_cli_prompt(
    inputs: str, question: str, video_token: int = 2
) -> tuple[str, list[list[str]]]:
    """``run_llamavid_movie.py``: ``inputs`` (one ``<image>`` per frame, subtitles between)
    with every ``<image>`` repeated ``video_token`` times, wrapped without spaces in the
    start and end sentences, then ``"\\n" + question``. Q-Former prompt: the question only."""
    expanded = inputs.replace(IMAGE, IMAGE * video_token)
    msg = MOVIE_CLI_START + expanded + MOVIE_CLI_END + "\n" + question
    return conversation_text([(msg, None)]), [[question]]


def movie_demo_prompt(
    prompt_in: str,
    inputs: str,
    *,
    tokens_per_frame: int = 2,
    placeholders: Literal["per-token", "llamavid-demo"] = "per-token",
) -> str:
    """The demo worker's movie prompt: ``"<image>\\n"`` of ``prompt_in`` replaced by its
    movie-part wrapper around ``inputs``. ``"llamavid-demo"`` keeps one ``<image>`` per frame
    (the reference's count mismatch with 2-token frames); the default repeats it
    ``tokens_per_frame`` times."""
    if placeholders != "llamavid-demo":
        inputs = inputs.replace(IMAGE, IMAGE * tokens_per_frame)
    return prompt_in.replace(IMAGE + "\n", MOVIE_DEMO_START + inputs + MOVIE_DEMO_END, 1)


def movie_training_conversation(
    pkl_inputs: str, conversation: Sequence[Mapping[str, str]], video_token: int = 2
) -> tuple[str, list[dict[str, str]], list[str]]:
    """Training from a movie pickle: ``'...'`` removed from the inputs, ``<image>`` repeated
    ``video_token`` times, substituted for the human turn's ``<image>``. Returns the expanded
    inputs, the conversation and the Q-Former prompts (human turns without ``<image>``,
    stripped)."""
    expanded = pkl_inputs.replace("...", "").replace(IMAGE, IMAGE * video_token)
    out, prompts = [], []
    for turn in conversation:
        value = turn["value"]
        if turn["from"] == "human":
            prompts.append(value.replace(IMAGE, "").strip())
            value = value.replace(IMAGE, expanded)
        out.append({"from": turn["from"], "value": value})
    return expanded, out, prompts


def training_qformer_prompts(
    human_turns: Sequence[str], newlines: Literal["space", "llamavid-delete"] = "space"
) -> list[str]:
    """The Q-Former prompt of each human turn in training: ``<image>`` removed and every
    newline deleted (``"llamavid-delete"``, the reference: ``"a.\\nB"`` -> ``"a.B"``) or
    turned into a space (default), then stripped."""
    glue = "" if newlines == "llamavid-delete" else " "
    return [t.replace(IMAGE, "").replace("\n", glue).strip() for t in human_turns]


# --------------------------------------------------------------------------------------------
# Subtitles


def align_subtitles(
    frame_times: Sequence[float],
    subtitles: Sequence[TimedText | Sequence[Any]],
    rule: Literal["start", "llamavid"] = "start",
) -> str:
    """The movie ``inputs`` string: per frame ``"<image>"`` then its subtitles joined by spaces.

    ``rule="llamavid"`` (the reference's ``load_video_input``): for each subtitle in list
    order, advance a pointer while ``frame_time[p] < end``, attach to frame ``p - 1`` (index -1
    is the last frame). ``rule="start"``: a subtitle goes with the last frame at or before its
    start (frame 0 if it starts earlier), subtitles taken in start order.
    """
    subs = [s if isinstance(s, TimedText) else TimedText(*s) for s in subtitles]
    times = [float(t) for t in frame_times]
    texts: list[list[str]] = [[] for _ in times]
    if not times:
        return ""
    if rule == "llamavid":
        p = 0
        for sub in subs:
            while p < len(times) and times[p] < sub.end_time:
                p += 1
            texts[p - 1].append(sub.text)
    else:
        arr = np.asarray(times)
        for sub in sorted(subs, key=lambda s: s.start_time):
            k = int(np.searchsorted(arr, sub.start_time, side="right")) - 1
            texts[max(k, 0)].append(sub.text)
    return "".join(IMAGE + " ".join(t) for t in texts)


def _seconds(stamp: str) -> float:
    hms, _, ms = stamp.strip().partition(",")
    h, m, s = (int(x) for x in hms.split(":"))
    return h * 3600 + m * 60 + s + int(ms or 0) / 1000


def parse_movienet_srt(
    text: str,
    digit_lines: Literal["keep", "llamavid-drop"] = "keep",
    path: str | None = None,
) -> list[TimedText]:
    """MovieNet's ``.srt`` reading (README §5): each line loses ``\\x00``, is stripped, loses
    ``'...'`` and is stripped again; blank lines are skipped; ``" --> "`` sets the times;
    text lines join with a space; a cue closes at the next cue number (when it has text and
    times) and at the end. A cue without text merges into the next one.

    ``digit_lines="llamavid-drop"``: every digits-only line is a cue number (a subtitle that
    reads ``"42"`` is lost). Default: only a digit line followed by a timing line is.
    """
    lines = [ln.replace("\x00", "").strip().replace("...", "").strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    out: list[TimedText] = []
    start = end = None
    words: list[str] = []

    def close() -> None:
        nonlocal start, end, words
        if words and start is not None and end is not None:
            out.append(TimedText(start, end, " ".join(words)))
            start = end = None
            words = []

    for i, line in enumerate(lines):
        is_number = line.isdigit()
        if is_number and digit_lines != "llamavid-drop":
            is_number = i + 1 < len(lines) and " --> " in lines[i + 1]
        if is_number:
            close()
        elif " --> " in line:
            a, _, b = line.partition(" --> ")
            try:
                start, end = _seconds(a), _seconds(b)
            except ValueError:
                raise SubtitleError(f"bad srt timing line {line!r}", path) from None
        else:
            words.append(line)
    close()
    return out


def whisper_subtitles(
    segments: Sequence[Mapping[str, Any]], min_avg_logprob: float = -2.0
) -> list[TimedText]:
    """Whisper segments kept at ``avg_logprob >= min_avg_logprob``, one leading space removed."""
    out = []
    for seg in segments:
        if seg["avg_logprob"] >= min_avg_logprob:
            text = seg["text"]
            out.append(
                TimedText(
                    float(seg["start"]),
                    float(seg["end"]),
                    text[1:] if text.startswith(" ") else text,
                )
            )
    return out


def movienet_frame_times(shot_text: str, runtime: str) -> tuple[list[int], int, float, list[float]]:
    """MovieNet keyframe times: ``(frame_idx, num_frames, fps, frame_time)`` from a shot file
    (keyframes = the integers after the second field of each line; frame count = the second
    field of the last line) and the IMDb runtime (first integer, minutes)."""
    rows = [ln.split() for ln in shot_text.splitlines() if ln.strip()]
    if not rows:
        raise SubtitleError("empty MovieNet shot file")
    frame_idx = [int(x) for row in rows for x in row[2:]]
    num_frames = int(rows[-1][1])
    found = re.search(r"\d+", runtime)
    if found is None:
        raise SubtitleError(f"no minutes in runtime {runtime!r}")
    fps = num_frames / (int(found.group()) * 60)
    return frame_idx, num_frames, fps, [i / fps for i in frame_idx]


# --------------------------------------------------------------------------------------------
# Frame sampling


def frame_indices(
    n_frames: int,
    avg_fps: float,
    target_fps: float = 1.0,
    path: Literal[
        "exact", "train_dataset", "cli", "extract_features_subtitles", "eval_msvd_and_short_worker"
    ] = "exact",
) -> tuple[list[int], list[float]]:
    """Frame indices and their times (``index / avg_fps``) by one of the reference's paths.

    ``train_dataset`` / ``cli`` / ``extract_features_subtitles``: step
    ``round(avg_fps / target_fps)`` (banker's rounding); ``eval_msvd_and_short_worker``: step
    ``round(avg_fps)`` whatever ``target_fps`` is. A step of 0 is a `SamplingError` (the
    reference raises ``ValueError``). ``"exact"``: the frame nearest each ``k / target_fps``
    second, so 12.5 fps gives 1 fps, not 1.04.
    """
    if path == "exact":
        if avg_fps <= 0 or target_fps <= 0:
            raise SamplingError(f"fps must be positive (avg {avg_fps}, target {target_fps})")
        duration = n_frames / avg_fps
        times = np.arange(0.0, duration, 1.0 / target_fps)
        idx = np.unique(np.minimum(np.rint(times * avg_fps).astype(int), n_frames - 1))
        indices = idx.tolist()
    else:
        rate = avg_fps if path == "eval_msvd_and_short_worker" else avg_fps / target_fps
        step = round(rate)
        if step == 0:
            raise SamplingError(
                f"round({rate:g}) is 0: no frame step (the reference raises ValueError here)"
            )
        indices = list(range(0, n_frames, step))
    return indices, [i / avg_fps for i in indices]


# --------------------------------------------------------------------------------------------
# The movie prompt as segments


def llamavid_movie_prompt(
    question: str,
    frame_times: Sequence[float],
    tokens_per_frame: int = 2,
    subtitles: Sequence[TimedText] | None = None,
    rule: Literal["start", "llamavid"] = "start",
) -> Any:
    """``run_llamavid_movie``'s prompt as a `Prompt` (text, one visual segment per frame,
    each frame's subtitle text after it), ready for `longvid.prompting.prompt.assemble`."""
    import torch

    from longvid.prompting.prompt import Prompt, Text, Visual

    inputs = align_subtitles(frame_times, subtitles or [], rule)
    before = conversation_text([("\x00", None)])
    head, _, tail = before.partition("\x00")
    segments: list[Any] = [Text(head + MOVIE_CLI_START)]
    pieces = inputs.split(IMAGE)[1:]
    for i, (seconds, text) in enumerate(zip(frame_times, pieces, strict=True)):
        segments.append(
            Visual(
                tokens_per_frame,
                torch.full((tokens_per_frame,), float(seconds), dtype=torch.float32),
                "video",
                torch.full((tokens_per_frame,), i, dtype=torch.long),
            )
        )
        if text:
            segments.append(Text(text, i))
    segments.append(Text(MOVIE_CLI_END + "\n" + question + tail))
    t = get_template("vicuna_v1")
    return Prompt(tuple(segments), t.stop_strings, t.name)
