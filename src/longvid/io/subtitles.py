"""Subtitle files in, cue text per sampled frame out.

Reads subtitle files (SRT, WebVTT, ASS/SSA, TTML, YouTube SBV, MicroDVD with a frame rate, and
whatever else pysubs2 detects) through pysubs2 into plain-text `Cue`s with times in seconds, and
aligns them to the timestamps of sampled frames (`align`). This is the clean default; the
reference-faithful MiniGPT4-Video variants of the interleaving live elsewhere.

Bad input raises `SubtitleError` naming the file and the problem (unknown format, broken
timestamps, undecodable text); bad times given by the caller raise `SamplingError`.
"""

from __future__ import annotations

import codecs
import html
import math
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pysubs2
from charset_normalizer import from_bytes
from pysubs2.exceptions import FormatAutodetectionError, UnknownFPSError
from pysubs2.formats import FORMAT_IDENTIFIERS, autodetect_format, get_format_class
from pysubs2.time import TIMESTAMP

from longvid.errors import SamplingError, SubtitleError

__all__ = ["Cue", "Subtitles", "align", "cues_between", "load_subtitles"]

# Formats whose cues are "timing line, then text" and which pysubs2 reads with its SubRip parser.
_LINE_FORMATS = ("srt", "vtt", "sbv")
# A YouTube SBV timing line: ``0:00:00.378,0:00:11.378``.
_SBV_TIMING = re.compile(r"^\s*\d+:\d{2}:\d{2}\.\d{3},\d+:\d{2}:\d{2}\.\d{3}\s*$", re.MULTILINE)
# A line meant as a cue timing line: one token, ``-->``, one token, at least one with a digit.
_ARROW_LINE = re.compile(r"^\s*(\S+)\s*-->\s*(\S+)")
# WebVTT inline timestamps (karaoke), e.g. ``<00:05:04.199>``; not tags, so pysubs2 keeps them.
_VTT_INLINE_TIME = re.compile(r"<(?:\d+:)?\d{2}:\d{2}\.\d{3}>")
# A WebVTT cue payload ends at the first blank line; pysubs2 glues what follows (the next cue's
# identifier, NOTE blocks) onto the text.
_BLANK_LINE = re.compile(r"\n[ \t]*\n")


@dataclass(frozen=True)
class Cue:
    """One subtitle cue: plain text shown from ``start`` (inclusive) to ``end`` (exclusive).

    Times are seconds from the start of the video. ``text`` has no markup: override tags,
    ``<c>``/``<i>`` tags and ``{\\...}`` blocks are removed and line breaks are ``"\\n"``.
    """

    start: float
    end: float
    text: str

    def __post_init__(self) -> None:
        if not (math.isfinite(self.start) and math.isfinite(self.end)):
            raise SubtitleError(
                f"cue {self.text!r} has a non-finite time ({self.start}, {self.end})"
            )
        if self.start < 0 or self.end < self.start:
            raise SubtitleError(
                f"cue {self.text!r} has broken times: start {self.start} s, end {self.end} s"
            )


@dataclass
class Subtitles:
    """The cues of one subtitle file, sorted by start then end time.

    ``path`` is the file they came from (None when made in memory), ``format`` the pysubs2
    format id (``"srt"``, ``"vtt"``, ``"ass"``, ...; ``"sbv"`` for YouTube SBV, which pysubs2
    reads as SubRip), ``encoding`` the text encoding the file was decoded with. Cues with empty
    text are dropped and the rest sorted on construction, so hand-made instances hold the same
    invariants as loaded ones.
    """

    cues: list[Cue] = field(default_factory=list)
    path: str | None = None
    format: str = ""
    encoding: str = ""

    def __post_init__(self) -> None:
        self.cues = sorted((c for c in self.cues if c.text), key=lambda c: (c.start, c.end))

    def __len__(self) -> int:
        return len(self.cues)

    def cues_between(self, t0: float, t1: float) -> list[Cue]:
        """Cues shown at some time in the half-open interval ``[t0, t1)``, in start order.

        A cue ``[start, end)`` qualifies when ``start < t1`` and ``end > t0``; a zero-length
        cue counts as the instant ``start``. An empty interval (``t0 == t1``) gives ``[]``.
        ``t1`` may be ``inf``. NaN or negative times, or ``t1 < t0``, raise `SamplingError`.
        """
        for name, t in (("t0", t0), ("t1", t1)):
            if math.isnan(t) or t < 0:
                raise SamplingError(f"cues_between: {name} must be a time >= 0 s, got {t}")
        if t1 < t0:
            raise SamplingError(f"cues_between: t1 ({t1} s) is before t0 ({t0} s)")
        return [c for c in self.cues if c.start < t1 and (c.end > t0 or c.start >= t0)]

    def shifted(self, seconds: float) -> Subtitles:
        """The same cues ``seconds`` later (earlier when negative), e.g. to fit them to a clip.

        Cues that would end at or before 0 s are dropped; a cue straddling 0 s starts at 0 s.
        """
        if not math.isfinite(seconds):
            raise SamplingError(f"shifted: the shift must be finite, got {seconds}")
        moved = [
            Cue(max(c.start + seconds, 0.0), c.end + seconds, c.text)
            for c in self.cues
            if c.end + seconds > 0 or (c.start == c.end and c.start + seconds == 0)
        ]
        return replace(self, cues=moved)

    def scaled(self, factor: float) -> Subtitles:
        """The same cues with every time multiplied by ``factor`` (> 0), e.g. for a frame-rate
        change (25/23.976) or to stretch captions over a clip of another length."""
        if not (math.isfinite(factor) and factor > 0):
            raise SamplingError(f"scaled: the factor must be finite and > 0, got {factor}")
        return replace(
            self, cues=[Cue(c.start * factor, c.end * factor, c.text) for c in self.cues]
        )


def cues_between(subtitles: Subtitles, t0: float, t1: float) -> list[Cue]:
    """Cues of ``subtitles`` shown in ``[t0, t1)``; see `Subtitles.cues_between`."""
    return subtitles.cues_between(t0, t1)


def load_subtitles(
    path: str | os.PathLike[str],
    encoding: str | None = None,
    format: str | None = None,
    fps: float | None = None,
) -> Subtitles:
    """Read a subtitle file into plain-text `Cue`s with times in seconds.

    ``encoding=None`` decodes as UTF-8 (a BOM is allowed; UTF-16/32 with a BOM too). Other
    bytes go to a declared fallback: charset_normalizer guesses the encoding and a
    `UserWarning` names the file and the guess (pass ``encoding=`` to silence it, or when the
    guess is wrong). ``format=None`` lets pysubs2 detect the format from the text; pass a
    pysubs2 format id (or ``"sbv"``) to force one. ``fps`` is needed only for frame-based
    MicroDVD files that do not state their frame rate.

    Comment and drawing lines (ASS) and cues whose text is empty are dropped. A cue that ends
    before it starts, or starts before 0 s, is an error, as is a timing line (``-->``) the
    parser could not read: pysubs2 would skip it silently and glue its text onto the
    previous cue.

    pysubs2 reads WebVTT and SBV with its SubRip parser; three WebVTT repairs keep the text
    clean: inline timestamps (``<00:01.500>``) are removed before parsing (a payload line with
    two of them would be taken for a timing line), a cue's text ends at its first blank line
    (pysubs2 appends the next cue's identifier or a NOTE block), and character references
    (``&lt;``) are decoded.

    Raises `SubtitleError` (message starts with the path) for a missing file, a directory,
    an empty file, text that cannot be decoded, an unknown format and broken timestamps.
    """
    data = _read_bytes(path)
    text, used_encoding = _decode(data, path, encoding)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise SubtitleError("empty subtitle file (only whitespace)", path)
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise SubtitleError(f"fps must be a finite number > 0, got {fps}", path)

    fmt = _parse_format_arg(format, path) or _detect_format(text, path)
    # pysubs2 reads SBV with its SubRip parser (the timing-line pattern accepts "." and ",").
    pysubs2_fmt = "srt" if fmt == "sbv" else fmt
    if fmt in _LINE_FORMATS:
        _check_timing_lines(text, path, get_format_class(pysubs2_fmt).TIMESTAMP)
    parse_text = _VTT_INLINE_TIME.sub("", text) if fmt == "vtt" else text
    try:
        parsed = pysubs2.SSAFile.from_string(parse_text, format_=pysubs2_fmt, fps=fps)
    except UnknownFPSError as exc:
        raise SubtitleError(
            "frame-based (MicroDVD) subtitles need the video frame rate: pass fps=", path
        ) from exc
    except Exception as exc:  # pysubs2's parsers raise ValueError, TypeError, XML errors, ...
        raise SubtitleError(f"cannot parse as {fmt}: {type(exc).__name__}: {exc}", path) from exc
    cues = _to_cues(parsed.events, fmt, path)
    return Subtitles(cues=cues, path=os.fspath(path), format=fmt, encoding=used_encoding)


def align(subtitles: Subtitles, frame_timestamps: Sequence[float] | np.ndarray) -> list[str]:
    """The cue text newly active since the previous sampled frame, one string per frame.

    ``frame_timestamps`` are the presentation times (seconds) of the sampled frames; they must
    be finite, >= 0 and non-decreasing (else `SamplingError`). With frame times
    ``t_0 <= t_1 <= ... <= t_n``, frame ``k`` owns the window ``W_0 = [t_0, t_0]`` for
    ``k = 0`` and ``W_k = (t_{k-1}, t_k]`` after it; the windows tile ``[t_0, t_n]``. Each cue
    (shown over ``[start, end)``; a zero-length cue is the instant ``start``) goes to the
    first frame whose window it touches, so:

    - frame 0 gets the cues showing at ``t_0``; cues that ended at or before ``t_0``, and
      cues starting after ``t_n``, appear nowhere;
    - a cue starting in ``(t_{k-1}, t_k]`` goes to frame ``k``, even when it also ends
      before ``t_k`` (a short cue between two sampled frames is not lost);
    - every cue that overlaps ``[t_0, t_n]`` appears exactly once, on one frame;
      overlapping cues are all kept;
    - several cues on one frame are joined with ``"\\n"`` in (start, end) order; a frame
      with nothing new gets ``""`` (as does a repeated timestamp).

    Returns a list as long as ``frame_timestamps``.
    """
    times = _check_frame_times(frame_timestamps)
    per_frame: list[list[str]] = [[] for _ in range(len(times))]
    if len(times) == 0:
        return []
    first, last = float(times[0]), float(times[-1])
    for cue in subtitles.cues:  # sorted by start
        if cue.start > last:
            break
        if cue.start < first and cue.end <= first:
            continue
        k = int(np.searchsorted(times, max(cue.start, first), side="left"))
        per_frame[k].append(cue.text)
    return ["\n".join(texts) for texts in per_frame]


def _read_bytes(path: str | os.PathLike[str]) -> bytes:
    if os.path.isdir(path):
        raise SubtitleError("is a directory, not a subtitle file", path)
    if not os.path.exists(path):
        raise SubtitleError("no such subtitle file", path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise SubtitleError(f"cannot read the file: {exc.strerror or exc}", path) from exc
    if not data:
        raise SubtitleError("empty subtitle file (0 bytes)", path)
    return data


def _decode(data: bytes, path: str | os.PathLike[str], encoding: str | None) -> tuple[str, str]:
    """Decode ``data``; return the text (no BOM) and the name of the encoding used."""
    if encoding is not None:
        try:
            return data.decode(encoding).lstrip("\ufeff"), encoding
        except LookupError as exc:
            raise SubtitleError(f"unknown text encoding {encoding!r}", path) from exc
        except UnicodeDecodeError as exc:
            raise SubtitleError(
                f"cannot be decoded as {encoding}: byte 0x{data[exc.start]:02x} at offset "
                f"{exc.start} ({exc.reason})",
                path,
            ) from exc

    for bom, name in (
        (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE, whose BOM is its prefix
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return data.decode(name), name
            except UnicodeDecodeError:
                break  # a BOM-like prefix only; let the detector have a go
    try:
        text = data.decode("utf-8-sig")
        return text, "utf-8-sig" if data.startswith(codecs.BOM_UTF8) else "utf-8"
    except UnicodeDecodeError:
        pass

    best = from_bytes(data).best()
    if best is None:
        raise SubtitleError(
            "not UTF-8, and its text encoding could not be detected; pass encoding= "
            "(e.g. encoding='cp1252')",
            path,
        )
    warnings.warn(
        f"{os.fspath(path)}: not UTF-8; decoding as {best.encoding!r} as guessed by "
        "charset_normalizer (pass encoding= to choose)",
        UserWarning,
        stacklevel=3,
    )
    return str(best).lstrip("\ufeff"), best.encoding


def _detect_format(text: str, path: str | os.PathLike[str]) -> str:
    """pysubs2's format detection (on the first 10,000 characters, as pysubs2 does), plus SBV."""
    try:
        fmt = autodetect_format(text[:10_000])
    except FormatAutodetectionError as exc:
        _check_timing_lines(text, path, TIMESTAMP)  # a broken SRT is not an "unknown format"
        found = f" (could be any of {sorted(exc.formats)})" if exc.formats else ""
        raise SubtitleError(f"unknown subtitle format{found}", path) from exc
    if fmt == "srt" and "-->" not in text and _SBV_TIMING.search(text):
        return "sbv"
    return fmt


def _parse_format_arg(format: str | None, path: str | os.PathLike[str]) -> str | None:
    if format is None or format == "sbv":
        return format
    if format not in FORMAT_IDENTIFIERS:
        known = ", ".join(sorted([*FORMAT_IDENTIFIERS, "sbv"]))
        raise SubtitleError(f"unknown subtitle format {format!r} (known: {known})", path)
    return format


def _check_timing_lines(
    text: str, path: str | os.PathLike[str], timestamp: re.Pattern[str]
) -> None:
    """Refuse a ``-->`` timing line the parser cannot read (it would skip it silently)."""
    for lineno, line in enumerate(text.split("\n"), start=1):
        m = _ARROW_LINE.match(line)
        if m is None or not any(ch.isdigit() for ch in m.group(1) + m.group(2)):
            continue
        if len(timestamp.findall(line)) != 2:
            raise SubtitleError(f"broken timestamps on line {lineno}: {line.strip()!r}", path)


def _to_cues(events: list[pysubs2.SSAEvent], fmt: str, path: str | os.PathLike[str]) -> list[Cue]:
    cues = []
    for number, event in enumerate(events, start=1):
        if not event.is_text:  # ASS comments and drawings
            continue
        if event.end < event.start:
            raise SubtitleError(
                f"broken timestamps: cue {number} ends ({event.end / 1000:.3f} s) before it "
                f"starts ({event.start / 1000:.3f} s)",
                path,
            )
        if event.start < 0:
            raise SubtitleError(
                f"broken timestamps: cue {number} starts at a negative time "
                f"({event.start / 1000:.3f} s)",
                path,
            )
        text = event.plaintext
        if fmt == "vtt":
            text = html.unescape(_BLANK_LINE.split(text, maxsplit=1)[0])
        text = text.strip()
        if text:
            cues.append(Cue(event.start / 1000, event.end / 1000, text))
    return cues


def _check_frame_times(frame_timestamps: Sequence[float] | np.ndarray) -> np.ndarray:
    try:
        times = np.asarray(frame_timestamps, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise SamplingError(f"frame timestamps must be numbers: {exc}") from exc
    if times.ndim != 1:
        raise SamplingError(f"frame timestamps must be 1-D, got shape {times.shape}")
    bad = np.flatnonzero(~np.isfinite(times) | (times < 0))
    if bad.size:
        i = int(bad[0])
        raise SamplingError(f"frame timestamp {i} is {times[i]}; times must be finite and >= 0 s")
    down = np.flatnonzero(np.diff(times) < 0)
    if down.size:
        i = int(down[0]) + 1
        raise SamplingError(
            f"frame timestamps decrease at index {i}: {times[i]} s after {times[i - 1]} s"
        )
    return times
