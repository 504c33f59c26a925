"""The one exception hierarchy of longvid.

Every error a user can cause with bad input (a file, a config, a prompt) is a `LongvidError`,
so callers can catch one type; each subclass names the stage that refused the input. Messages
name the file (or object) and the problem, e.g. ``"clip.mp4: no video stream (audio only)"``.
"""

from __future__ import annotations

import os


class LongvidError(Exception):
    """Base class of every error longvid raises on bad input.

    ``path`` is the file the problem is about (or None when no file is involved); the message
    starts with it so a log line alone says what to fix.
    """

    def __init__(self, message: str, path: str | os.PathLike[str] | None = None) -> None:
        self.path = os.fspath(path) if path is not None else None
        self.problem = message
        super().__init__(f"{self.path}: {message}" if self.path is not None else message)


class InputFileError(LongvidError):
    """A file is missing, is a directory, is empty or cannot be read."""


class VideoDecodeError(LongvidError):
    """A video cannot be opened or decoded: not a media file, no video stream, unknown codec."""


class SamplingError(LongvidError):
    """A sampler was given arguments that describe no frames (negative or NaN times, n < 1)."""


class SubtitleError(LongvidError):
    """A subtitle file cannot be read: unknown format, broken timestamps, undecodable text."""


class SpeechError(LongvidError):
    """Speech cannot be transcribed: the file has no audio track, the audio does not decode,
    or the speech model is missing or fails its checksum."""


class ConfigError(LongvidError):
    """A configuration (file or object) is malformed or names something that does not exist."""


class CheckpointError(LongvidError):
    """A checkpoint is missing weights, has unexpected shapes, or is in an unsafe format."""


class ContextOverflowError(LongvidError):
    """A prompt needs more tokens than the model's context window holds."""

    def __init__(
        self, needed: int, context: int, what: str = "prompt", path: str | None = None
    ) -> None:
        self.needed = needed
        self.context = context
        super().__init__(
            f"{what} needs {needed} tokens but the model's context holds {context} "
            f"({needed - context} over)",
            path,
        )
