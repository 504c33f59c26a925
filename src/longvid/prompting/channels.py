"""The text channels of a video prompt: on-screen text and speech, marked with time and channel.

Beyond the references: MiniGPT4-Video (Ataallah et al., 2024, section 3) interleaves each
frame with its subtitle text; longvid adds the on-screen text OCR reads (`longvid.io.ocr`) in
the same slot, each piece marked with the frame's time and where it came from, so a small model
can say what was written or said *when*:

    [12.0 s] on screen: "queen" in black on a yellow card | said: "the train leaves at noon"

`generate` builds these captions at inference and `longvid.train.mini` at training time, from
this one function, so both see the same text.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["channel_captions"]

LABELS = {"ocr": "on screen"}
"""How each channel is named in the prompt; every speech-like channel reads ``said``, its text
quoted."""


def channel_captions(
    times: Sequence[float], screen: Sequence[str], speech: Sequence[str], said: str = "subtitles"
) -> tuple[list[str | None], list[list[tuple[str, str]]]]:
    """Per frame: the caption (reference form, trailing space; None when the frame has no new
    text) and the (channel, text) pieces it holds. ``screen`` gives each frame's new on-screen
    text as `longvid.io.ocr.new_text` phrases it (quoted lines with their colours), ``speech``
    its new spoken text (empty: none); ``said`` names the speech channel (``"speech"`` for a
    transcript, ``"subtitles"`` for a file)."""
    captions: list[str | None] = []
    pieces: list[list[tuple[str, str]]] = []
    for t, on_screen, spoken in zip(times, screen, speech, strict=True):
        found = [("ocr", " ".join(on_screen.split())), (said, " ".join(spoken.split()))]
        kept = [(channel, text) for channel, text in found if text]
        pieces.append(kept)
        if not kept:
            captions.append(None)
            continue
        body = " | ".join(
            f"{LABELS['ocr']}: {text}" if c == "ocr" else f'said: "{text}"' for c, text in kept
        )
        captions.append(f"[{float(t):.1f} s] {body} ")
    return captions, pieces
