"""Tests of the procedural long-video QA: seeds and splits, questions, frames, written clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from longvid.errors import ConfigError
from longvid.io.subtitles import load_subtitles
from longvid.io.video import probe
from longvid.train.render import COLORS, WORDS, caption
from longvid.train.videoqa import (
    LETTERS,
    MIN_EVENT_SECONDS,
    QUESTION_KINDS,
    SEEDS_PER_SPLIT,
    SPLITS,
    Timeline,
    VideoQASample,
    caption_sample,
    make_sample,
    needle_card,
    needle_clip,
    split_seeds,
    uniform_times,
    write_clip,
)

pytestmark = pytest.mark.usefixtures("assets")

TEST0 = split_seeds("test", 1)[0]


@given(
    st.sampled_from(SPLITS),
    st.sampled_from(SPLITS),
    st.integers(0, SEEDS_PER_SPLIT - 200),
    st.integers(0, SEEDS_PER_SPLIT - 200),
    st.integers(0, 100),
)
def test_split_seeds_are_disjoint(a: str, b: str, start_a: int, start_b: int, n: int) -> None:
    sa = split_seeds(a, n, start_a)
    sb = split_seeds(b, n, start_b)
    assert len(set(sa)) == n
    if a != b:
        assert not set(sa) & set(sb)


def test_split_seeds_refuse_bad_arguments() -> None:
    with pytest.raises(ConfigError):
        split_seeds("dev", 3)
    with pytest.raises(ConfigError):
        split_seeds("train", 2, SEEDS_PER_SPLIT - 1)


def test_seed_of_another_split_is_refused() -> None:
    with pytest.raises(ConfigError, match="not a test seed"):
        make_sample(split_seeds("train", 1)[0], "test")


def test_same_seed_gives_the_same_sample() -> None:
    a = make_sample(TEST0, "test", n_frames=8, size=64)
    b = make_sample(TEST0, "test", n_frames=8, size=64)
    assert (a.kind, a.question, a.answer, a.timestamps) == (
        b.kind,
        b.question,
        b.answer,
        b.timestamps,
    )
    assert np.array_equal(a.frames, b.frames)
    assert a.frames.shape == (8, 64, 64, 3) and a.frames.dtype == np.uint8


def test_different_splits_and_seeds_differ() -> None:
    train = make_sample(split_seeds("train", 1, 7)[0], "train", kind="what", n_frames=8, size=64)
    val = make_sample(split_seeds("val", 1, 7)[0], "val", kind="what", n_frames=8, size=64)
    test = make_sample(split_seeds("test", 1, 7)[0], "test", kind="what", n_frames=8, size=64)
    assert not np.array_equal(train.frames, val.frames)
    assert not np.array_equal(val.frames, test.frames)
    assert val.timeline != test.timeline


def _visible_words(sample: VideoQASample) -> set[str]:
    scenes = [sample.timeline.scene_at(t) for t in sample.timestamps]
    return {s.card.word for s in scenes if s.card is not None}


def _check_answerable(s: VideoQASample, multiple_choice: bool) -> None:
    tl = s.timeline
    assert s.timestamps == uniform_times(s.duration, len(s.timestamps))
    words = [e.card.word for e in tl.cards]
    visible = _visible_words(s)
    assert set(words) == visible  # every card is on screen in some sampled frame
    assert len(set(words)) == len(words)
    assert [e.start for e in tl.cards] == sorted(e.start for e in tl.cards)
    if multiple_choice:
        assert s.options is not None and 2 <= len(s.options) <= 4
        assert len(set(s.options)) == len(s.options)
        assert s.answer in LETTERS[: len(s.options)]
        assert s.options[LETTERS.index(s.answer)] == s.answer_text
        assert s.prompt().count("\n") == len(s.options) + 1
    else:
        assert s.options is None and s.answer == s.answer_text
    ans = s.answer_text
    if s.kind == "what":
        assert ans in words
        if "first" in s.question:
            assert ans == words[0]
    elif s.kind == "when":
        word = s.question.split('"')[1]
        event = tl.card_of(word)
        if ans.endswith(" s"):
            assert abs(int(ans[:-2]) - event.start) <= 0.5
        else:
            third = {"the beginning": 0, "the middle": 1, "the end": 2}[ans]
            assert third * s.duration / 3 <= event.start < (third + 1) * s.duration / 3
    elif s.kind == "order":
        x, y = s.question.split('"')[1], s.question.split('"')[3]
        first = min((tl.card_of(x), tl.card_of(y)), key=lambda e: e.start)
        assert ans == first.card.word
    elif s.kind == "count":
        color, shape = s.question.split()[2], s.question.split()[3][:-1]
        assert color in COLORS
        group = [e for e in tl.shapes if (e.shapes.color, e.shapes.shape) == (color, shape)]
        assert ans == str(group[-1].shapes.count)
        # the final count is on screen in some sampled frame
        shown = [tl.scene_at(t).shapes for t in s.timestamps]
        assert group[-1].shapes in shown
    else:
        word = s.question.split('"')[1]
        event = tl.card_of(word)
        cue = [c for c in s.subtitles if c[2] == ans]
        assert len(cue) == 1 and cue[0][0] == event.start
        assert any(cue[0][0] <= t < cue[0][1] for t in s.timestamps)


@pytest.mark.parametrize("kind", QUESTION_KINDS)
@pytest.mark.parametrize("multiple_choice", [False, True])
def test_every_kind_is_answerable(kind: str, multiple_choice: bool) -> None:
    for seed in split_seeds("test", 4, 100):
        s = make_sample(
            seed, "test", kind=kind, n_frames=8, size=48, multiple_choice=multiple_choice
        )
        assert s.kind == kind
        _check_answerable(s, multiple_choice)


@given(st.integers(0, 10**9), st.booleans(), st.integers(6, 24))
@settings(max_examples=25, deadline=None)
def test_random_samples_are_answerable(start: int, mc: bool, n_frames: int) -> None:
    seed = split_seeds("val", 1, start)[0]
    s = make_sample(seed, "val", n_frames=n_frames, size=32, multiple_choice=mc)
    assert s.frames.shape == (n_frames, 32, 32, 3)
    _check_answerable(s, mc)


def test_sampled_frames_show_the_cards() -> None:
    s = make_sample(TEST0, "test", kind="what", n_frames=8, size=64)
    for t, frame in zip(s.timestamps, s.frames, strict=True):
        card = s.timeline.scene_at(t).card
        if card is not None:
            colour = np.array(COLORS[card.card_color], np.uint8)
            assert np.all(frame == colour, axis=-1).sum() > 60


def test_subtitle_question_needs_subtitles() -> None:
    with pytest.raises(ConfigError, match="subtitle"):
        make_sample(TEST0, "test", kind="subtitle", subtitles=False)
    with pytest.raises(ConfigError, match="kind"):
        make_sample(TEST0, "test", kind="why")
    no_subs = make_sample(TEST0, "test", kind="what", subtitles=False, n_frames=8, size=32)
    assert no_subs.subtitles == []


def test_caption_sample_is_deterministic_and_captioned() -> None:
    seed = split_seeds("train", 1, 3)[0]
    frame, text, scene = caption_sample(seed, "train")
    again, text2, _ = caption_sample(seed, "train")
    assert frame.shape == (128, 128, 3) and np.array_equal(frame, again)
    assert text == text2 == caption(scene)
    texts = {caption_sample(s, "train", size=32)[1] for s in split_seeds("train", 20)}
    assert len(texts) > 10


def test_needle_card_shows_the_card() -> None:
    img = needle_card("apple", 96, seed=2)
    assert img.shape == (96, 96, 3)
    assert np.array_equal(img, needle_card("apple", 96, seed=2))
    assert not np.array_equal(img, needle_card("honey", 96, seed=2))
    assert np.any(img != 128, axis=-1).mean() > 0.1
    assert needle_card("apple", (160, 90)).shape == (90, 160, 3)


def test_needle_clip_splices_one_card_into_footage() -> None:
    seed = split_seeds("train", 1, start=77)[0]
    frames, times, word = needle_clip(seed, "train", n_haystack=5, size=64)
    assert frames.shape == (6, 64, 64, 3) and times == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert word in WORDS
    again, _, word2 = needle_clip(seed, "train", n_haystack=5, size=64)
    assert np.array_equal(frames, again) and word == word2
    # The needle is the one frame whose ground is the plain grey of `needle_card`.
    grey = (frames == 128).all(axis=-1).mean(axis=(1, 2))
    assert (grey > 0.3).sum() == 1 and (grey < 0.1).sum() == 5
    words = {needle_clip(s, "train", 3, 32)[2] for s in split_seeds("train", 30)}
    assert len(words) > 10
    test = needle_clip(split_seeds("test", 1)[0], "test", n_haystack=5, size=64)[0]
    assert not np.array_equal(test, frames)
    with pytest.raises(ConfigError, match="haystack"):
        needle_clip(seed, "train", n_haystack=0)


def test_write_clip_round_trips(tmp_path: Path) -> None:
    s = make_sample(TEST0, "test", kind="subtitle", duration=6.0, n_frames=8, size=32)
    path = write_clip(s, tmp_path / "clip.mp4", fps=4.0, size=(160, 90))
    info = probe(path)
    assert info.codec == "h264" and (info.width, info.height) == (160, 90)
    assert info.frame_count == 24
    assert abs(info.duration - 6.0) < 0.3
    subs = load_subtitles(path.with_suffix(".srt"))
    assert [c.text for c in subs.cues] == [c[2] for c in s.subtitles]
    for cue, (start, end, _) in zip(subs.cues, s.subtitles, strict=True):
        assert abs(cue.start - start) < 0.01 and abs(cue.end - end) < 0.01


def test_write_clip_of_a_timeline_without_subtitles(tmp_path: Path) -> None:
    s = make_sample(TEST0, "test", kind="order", duration=3.0, subtitles=False, n_frames=6, size=32)
    assert isinstance(s.timeline, Timeline)
    path = write_clip(s.timeline, tmp_path / "order.mp4", fps=2.0, size=(64, 64))
    assert probe(path).frame_count == 6
    assert not path.with_suffix(".srt").exists()
    with pytest.raises(ConfigError, match="even"):
        write_clip(s.timeline, tmp_path / "odd.mp4", size=(63, 64))


def test_words_in_questions_come_from_the_vocabulary() -> None:
    s = make_sample(TEST0, "test", kind="order", n_frames=8, size=32)
    assert all(w in WORDS for w in (s.question.split('"')[1], s.question.split('"')[3]))


def test_events_last_long_enough_for_a_written_clip() -> None:
    for seed in split_seeds("test", 3, 50):
        s = make_sample(seed, "test", n_frames=64, size=32, duration=90.0)
        slack = 0.5 * s.duration / 64
        spans = [(e.start, e.end) for e in s.timeline.cards]
        groups: dict[tuple[str, str], list[float]] = {}
        for e in s.timeline.shapes:  # a count change splits a group's span in two
            groups.setdefault((e.shapes.color, e.shapes.shape), []).extend([e.start, e.end])
        spans += [(min(g), max(g)) for g in groups.values()]
        assert all(end - start >= MIN_EVENT_SECONDS - slack for start, end in spans)


def test_random_kinds_cover_every_kind() -> None:
    kinds = {make_sample(seed, "val", n_frames=6, size=16).kind for seed in split_seeds("val", 40)}
    assert kinds == set(QUESTION_KINDS)
