"""MiniGPT4-Video subtitle alignment: every case and path of subtitle_alignment.json exactly,
the TVQA loader, the missing-subtitle probe, and the corrected default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from longvid.errors import SamplingError
from longvid.io.subtitle_alignment import (
    REFERENCE_BUDGETS,
    align_captions,
    align_video,
    reference_alignment,
    tvqa_alignment,
    tvqa_user_text,
)
from longvid.io.subtitles import Cue, Subtitles, load_subtitles

PARITY = Path(__file__).resolve().parents[2].parent / "shared" / "parity" / "minigpt4video"


def _load() -> dict:
    path = PARITY / "subtitle_alignment.json"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return json.loads(path.read_text())


DATA = json.loads((PARITY / "subtitle_alignment.json").read_text()) if PARITY.is_dir() else {}
RUNS = [
    (case["name"], path)
    for case in DATA.get("cases", [])
    if "fps" in case["input"]
    for path in case["output"]
]


def _cues(raw: list[dict]) -> list[Cue]:
    return [Cue(c["start"], c["end"], c["text"]) for c in raw]


@pytest.mark.parametrize(("name", "path"), RUNS)
def test_reference_paths_exactly(name, path):
    case = next(c for c in _load()["cases"] if c["name"] == name)
    inp, expected = case["input"], case["output"][path]
    got = reference_alignment(
        f"minigpt4video-{path}",
        n_frames=inp["n_frames"],
        fps=inp["fps"],
        duration=inp["duration"],
        cues=_cues(inp["cues"]),
        llm=inp["llm"],
    )
    assert got.frame_indices == expected["frame_indices"]
    assert got.n_images == expected["n_images"]
    assert got.captions == expected["per_image_caption"]
    assert got.user_text(inp["instruction"]) == expected["user_text"]
    if "sampling_interval" in expected:
        assert got.sampling_interval == expected["sampling_interval"]
    if path == "goldfish":
        assert got.conversation == expected["conversation"]
        assert got.prefix == expected["prefix"]


def test_every_case_and_path_is_covered():
    data = _load()
    runs = sum(len(c["output"]) for c in data["cases"] if "fps" in c["input"])
    assert len(RUNS) == runs == 36


@pytest.mark.parametrize("index", [0, 1])
def test_tvqa_loader_exactly(index):
    case = _load()["tvqa_cases"][index]
    inp, expected = case["input"], case["output"]["tvqa_eval"]
    got = tvqa_alignment(inp["n_frames"], _cues(inp["cues"]), inp["llm"])
    assert got.frame_indices == expected["frame_indices"]
    assert got.n_images == expected["n_images"]
    assert got.captions == expected["per_image_caption"]
    choices = [f"choice {i}" for i in range(5)]
    assert tvqa_user_text(got, inp["instruction"], choices) == expected["user_text"]


def test_missing_subtitles_are_a_normal_case_not_a_crash():
    """The reference's inference path raises TypeError without a subtitle file (probe case);
    here every path runs and gives exactly the no-subtitle output."""
    data = _load()
    probe = next(c for c in data["cases"] if c["name"] == "probe_inference_subtitle_path_None")
    assert "TypeError" in probe["output"]["inference"]["inference_without_subtitles"]
    no_cues = next(c for c in data["cases"] if c["name"] == "no_cues")
    inp = no_cues["input"]
    for path, expected in no_cues["output"].items():
        got = reference_alignment(
            f"minigpt4video-{path}",
            n_frames=inp["n_frames"],
            fps=inp["fps"],
            duration=inp["duration"],
            cues=None,
            llm=inp["llm"],
        )
        assert got.user_text(inp["instruction"]) == expected["user_text"]
        assert got.captions == [None] * expected["n_images"]
    assert align_captions(None, [0.0, 1.0]) == [None, None]


def test_reference_budgets():
    assert REFERENCE_BUDGETS["llama2"].n_frames == 45
    assert REFERENCE_BUDGETS["llama2"].word_budget == 400
    assert REFERENCE_BUDGETS["mistral"].n_frames == 90
    assert REFERENCE_BUDGETS["mistral"].word_budget == 800
    with pytest.raises(SamplingError, match="unknown reference LLM"):
        reference_alignment("minigpt4video-eval", n_frames=10, fps=10, duration=1, cues=[], llm="x")
    with pytest.raises(SamplingError, match="not one of"):
        reference_alignment("longvid", n_frames=10, fps=10, duration=1, cues=[])


# --- the default ------------------------------------------------------------------------------


def test_default_keeps_overlapping_cues_and_repeats():
    subs = Subtitles(
        [
            Cue(0.0, 10.0, "long narration"),
            Cue(2.0, 3.0, "interjection A"),
            Cue(4.0, 5.0, "interjection B"),
            Cue(12.0, 13.0, "long narration"),
        ]
    )
    captions = align_captions(subs, [0.0, 2.5, 4.5, 12.5])
    assert captions == ["long narration ", "interjection A ", "interjection B ", "long narration "]


def test_default_uses_real_timestamps_not_truncated_fps():
    """ntsc_29p97_late_cues: at 29.97 fps frame 1716 is 57.26 s, not 59.17 s (int fps); the
    cue at 57.9 s belongs after the frame at 57.93 s, which is where the default puts it."""
    subs = Subtitles([Cue(57.9, 58.6, "near the end"), Cue(59.5, 60.0, "very last words")])
    times = [57.26, 57.93, 59.93]
    assert align_captions(subs, times) == [None, "near the end ", "very last words "]


def test_default_token_budget_never_overshoots():
    tokenizer_calls = []

    class Tok:
        def __call__(self, text, add_special_tokens=True):
            tokenizer_calls.append(text)
            return {"input_ids": list(range(len(text)))}  # one token per character

    subs = Subtitles([Cue(0, 1, "abcd"), Cue(1, 2, "efghijklmn"), Cue(2, 3, "xy")])
    captions = align_captions(subs, [0.5, 1.5, 2.5], token_budget=9, tokenizer=Tok())
    # "abcd " is 5 tokens, "efghijklmn " 11 would overshoot 9 and is left out, "xy " fits.
    assert captions == ["abcd ", None, "xy "]
    assert tokenizer_calls


# --- on real video ----------------------------------------------------------------------------


def test_align_video_default_and_reference_on_a_real_file(assets, tmp_path):
    video = assets / "video" / "movie-hello.mpeg"  # 249 frames at 29.97 fps, 8.3 s
    srt = tmp_path / "hello.srt"
    srt.write_text(
        "1\n00:00:00,500 --> 00:00:02,000\nHello there.\n\n"
        "2\n00:00:01,500 --> 00:00:03,000\n<i>Overlapping</i> line\n\n"
        "3\n00:00:07,000 --> 00:00:08,000\nThe end.\n",
        encoding="utf-8",
    )
    clip, aligned = align_video(video, srt, n_frames=6, size=32)
    assert len(clip) == aligned.n_images == 6
    assert aligned.timestamps == pytest.approx(clip.timestamps.tolist())
    # Spread over the whole video (segment centres), not a prefix.
    assert aligned.frame_indices[0] < 249 / 6 and aligned.frame_indices[-1] > 249 * 5 / 6
    text = "".join(c for c in aligned.captions if c)
    assert "Hello there." in text and "Overlapping line" in text and "The end." in text

    ref_clip, ref = align_video(video, load_subtitles(srt), "minigpt4video-inference", size=32)
    expected = reference_alignment(
        "minigpt4video-inference",
        n_frames=249,
        fps=clip.info.avg_fps,
        duration=clip.info.duration,
        cues=load_subtitles(srt),
    )
    assert ref.frame_indices == expected.frame_indices
    assert ref.captions == expected.captions
    assert ref_clip.frames.shape[0] == ref.n_images
    assert ref_clip.indices.tolist() == ref.frame_indices
    # The reference sees only a prefix: its last slot is well before the end.
    assert ref.frame_indices[-1] < 248
    with pytest.raises(SamplingError, match="unknown alignment"):
        align_video(video, None, "minigpt4video-tvqa")


# --- edge details (README §4) -----------------------------------------------------------------


def test_cue_time_arithmetic_of_each_path():
    from longvid.io.subtitle_alignment import _inference_ms, _parts_seconds

    assert _inference_ms(1.001) == 1000  # truncated through the HH:MM:SS.sss string
    assert _inference_ms(3723.5) == 3723500
    assert _parts_seconds(1.36) == 1.3599999999999999
    assert _parts_seconds(2.28) == 2.2800000000000002


def test_a_cue_exactly_on_a_frame_is_lost_by_float_parts_but_kept_by_default():
    """2.280 s becomes 2.2800000000000002 in the eval path, just after frame 57 at 25 fps, so
    a zero-length cue there matches no frame; the default gives it to frame 57."""
    cue = Cue(2.28, 2.28, "blink")
    ref = reference_alignment(
        "minigpt4video-eval", n_frames=100, fps=25.0, duration=4.0, cues=[cue]
    )
    assert all(c is None for c in ref.captions)
    assert align_captions(Subtitles([cue]), [2.2, 2.28, 2.32]) == [None, "blink ", None]


def test_tags_are_stripped_and_empty_cues_skipped():
    cues = [Cue(0.0, 1.0, "<i>Tagged</i> words"), Cue(1.0, 2.0, "<b></b>")]
    for path in ("inference", "goldfish", "train", "eval"):
        got = reference_alignment(
            f"minigpt4video-{path}", n_frames=90, fps=30.0, duration=3.0, cues=cues
        )
        assert got.captions[0] == "Tagged words ", path
        assert all(c is None for c in got.captions[1:]), path
