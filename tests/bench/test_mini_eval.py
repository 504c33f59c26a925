"""longvid-mini's measured benchmarks (`longvid.bench.mini_eval`) on a tiny random student."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from longvid.bench import mini_eval as me
from longvid.bench.grid import run_grid, write_heatmap
from longvid.errors import ConfigError
from longvid.train.videoqa import QUESTION_KINDS


@pytest.fixture(scope="module")
def student():
    """longvid-mini's architecture (128-px ResNet tower, 64 patches, LongVA pooling, qwen_1_5
    template, timestamps) shrunk: a tower with one block per stage, 16 wide at the end, and a
    2-layer Llama 32 wide with the byte-level tokenizer, random weights."""
    from longvid.models.config import VisionTowerConfig
    from longvid.models.registry import mini_config
    from longvid.train.mini import build_student

    config = mini_config("longva")
    tower = dict(
        config.vision_tower.config,
        embedding_size=8,
        hidden_sizes=[8, 8, 16],
        depths=[1, 1, 1],
        hidden_size=16,
    )
    llm = {
        "model_type": "llama",
        "vocab_size": 259,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        "max_position_embeddings": 2048,
        "rope_theta": 100000.0,
        "tie_word_embeddings": False,
    }
    config = dataclasses.replace(
        config,
        vision_tower=VisionTowerConfig(config=tower, select_layer=-1),
        language_model=llm,
        language_model_weights=None,
    )
    torch.manual_seed(0)
    return build_student("longva", config=config).eval()


@pytest.mark.parametrize(
    ("predicted", "expected", "mc", "correct"),
    [
        ("B.", "B", True, True),
        ("(b) apple", "B", True, True),
        ("B", "C", True, False),
        ("Banana", "B", True, False),
        (" Apple", "apple", False, True),
        ('"apple."', "apple", False, True),
        ("12 s", "12 s", False, True),
        ("apples", "apple", False, False),
        ("", "", False, False),
    ],
)
def test_scoring_normalises_case_spaces_and_punctuation(predicted, expected, mc, correct):
    assert me.is_correct(predicted, expected, mc) is correct


@given(st.text(alphabet="abcdefghij", min_size=1, max_size=8), st.sampled_from([" ", ".", "!"]))
def test_open_answers_ignore_case_and_trailing_punctuation(word, tail):
    assert me.is_correct(f"  {word.upper()}{tail}", word, multiple_choice=False)


def test_without_text_channels_there_are_no_subtitle_questions():
    off = list(me.qa_samples(1, text_channels=False, n_frames=6))
    on = list(me.qa_samples(1, text_channels=True, n_frames=6))
    assert [s.kind for s in off] == [k for k in QUESTION_KINDS for _ in range(2) if k != "subtitle"]
    assert all(not s.subtitles for s in off)
    assert "subtitle" in {s.kind for s in on} and all(s.subtitles for s in on)
    assert [s.options is not None for s in off[:2]] == [True, False]
    assert all(s.split == "test" for s in off + on)


def test_questions_do_not_depend_on_how_many_are_asked():
    few = list(me.qa_samples(1, text_channels=False, n_frames=6, kinds=["count"]))
    more = list(me.qa_samples(2, text_channels=False, n_frames=6, kinds=["count", "what"]))
    assert few[0].seed in [s.seed for s in more] and len(more) == 8


def test_bad_qa_arguments_raise_config_errors():
    with pytest.raises(ConfigError, match="n_frames"):
        next(me.qa_samples(1, text_channels=False, n_frames=32))
    with pytest.raises(ConfigError, match="kinds"):
        next(me.qa_samples(1, text_channels=False, kinds=["colour"]))


def test_evaluate_qa_reports_each_kind_and_form(student):
    report = me.evaluate_qa(
        student,
        n_per_kind=2,
        text_channels=False,
        n_frames=6,
        kinds=["what", "order"],
        max_new_tokens=2,
    )
    assert len(report.items) == 8
    rows = {(r["kind"], r["form"]): r for r in report.rows()}
    assert set(rows) == {(k, f) for k in ("what", "order", "all") for f in ("mc", "open")}
    assert rows[("all", "mc")]["n"] == 4 and rows[("what", "open")]["n"] == 2
    assert rows[("what", "mc")]["chance"] == pytest.approx(0.25)
    assert rows[("order", "mc")]["chance"] == pytest.approx(0.5)
    assert rows[("order", "open")]["chance"] == 0.0
    for item in report.items:
        assert item.correct == me.is_correct(item.predicted, item.expected, item.multiple_choice)
        assert item.prompt_tokens > 6 * 16  # six frames of 16 visual tokens each
    assert 0.0 <= report.what <= 1.0
    assert report.accuracy(kind="count") != report.accuracy(kind="count")  # NaN: none asked


def test_options_scoring_takes_the_most_likely_option_of_the_open_question(student):
    from longvid.generate import score_choices
    from longvid.train.mini import Example, prompt_embeds
    from longvid.train.videoqa import LETTERS, open_prompt

    kwargs = dict(n_per_kind=2, text_channels=False, n_frames=6, kinds=["what"])
    report = me.evaluate_qa(student, mc_scoring="options", max_new_tokens=2, **kwargs)
    by_letter = me.evaluate_qa(student, mc_scoring="letter", max_new_tokens=2, **kwargs)
    samples = list(me.qa_samples(2, text_channels=False, n_frames=6, kinds=["what"]))
    assert len(report.items) == len(samples) == 4
    for item, letter_item, sample in zip(report.items, by_letter.items, samples, strict=True):
        assert item.seed == letter_item.seed == sample.seed
        if sample.options is None:  # open questions are asked the same way
            assert item.predicted == letter_item.predicted and item.prefill_s > 0
            continue
        question = open_prompt(sample.question)
        assert item.question == question != letter_item.question
        example = Example(sample.frames, list(sample.timestamps), question, sample.answer)
        scores = score_choices(student, prompt_embeds(student, example)[0], sample.options)
        best = int(np.argmax(scores))
        assert item.predicted == f"{LETTERS[best]}. {sample.options[best]}"
        assert item.correct == (LETTERS[best] == sample.answer)
        assert item.text_only.split(". ", 1)[1] in sample.options
        assert np.isnan(item.prefill_s)
    assert report.mean_prefill_s > 0  # the open questions' prefill only
    with pytest.raises(ConfigError, match="mc_scoring"):
        me.evaluate_qa(student, mc_scoring="logits", **kwargs)


def test_text_only_baseline_has_no_visual_tokens(student):
    question = "What word was written on the card?\nAnswer with a word or a short phrase."
    embeds, visual = me.text_only_embeds(student, question)
    text = student.tokenizer(question, add_special_tokens=False)["input_ids"]
    assert visual == 0
    assert len(text) < embeds.shape[1] < len(text) + 64  # the template around the question
    assert isinstance(me.greedy_answer(student, embeds, max_new_tokens=3), str)


def test_scaled_rope_changes_the_logits_and_is_undone(student):
    embeds, _ = me.text_only_embeds(student, "word?")
    positions = torch.arange(embeds.shape[1])[None]

    def logits():
        return student.language_model(inputs_embeds=embeds, position_ids=positions).logits

    before = logits()
    with me.scaled_rope(student, 10.0) as theta:
        assert theta == pytest.approx(1e6)
        scaled = logits()
    assert not torch.allclose(before, scaled)
    assert torch.allclose(before, logits())
    with pytest.raises(ConfigError), me.scaled_rope(student, 0.0):
        pass


def test_vniah_two_by_two_grid_writes_a_heatmap(student, tmp_path):
    task = me.MiniVNIAH(student, frames=[3, 6], depths=[0.0, 1.0], words=["lemon"])
    records = run_grid(task, tmp_path / "vniah.jsonl", progress=False)
    assert sorted((r["frames"], r["depth"]) for r in records) == [
        (3, 0.0),
        (3, 1.0),
        (6, 0.0),
        (6, 1.0),
    ]
    assert all(r["accuracy"] in (0.0, 1.0) and set(r["needles"]) == {"lemon"} for r in records)
    by_size = {r["frames"]: r["prompt_tokens"] for r in records}
    assert by_size[6] - by_size[3] >= 3 * 16  # three more frames of 16 tokens
    png = write_heatmap(records, tmp_path / "vniah.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_vniah_grid_stops_at_the_context(student):
    top = me.max_vniah_frames(student)
    assert me.vniah_frames(student)[-1] == top
    assert all(f < top for f in me.vniah_frames(student)[:-1])
    task = me.MiniVNIAH(student, frames=[top + 40], depths=[0.5], words=["lemon"])
    with pytest.raises(ConfigError, match="does not fit"):
        task.score(task.cells()[0])
    np.testing.assert_array_equal(me.vniah_frames(student, sizes=(1,)), [1, top])


def test_vniah_takes_its_haystack_frames_when_given(student):
    side = int(student.vision_tower.config.image_size)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (4, side, side, 3), dtype=np.uint8)
    task = me.MiniVNIAH(student, frames=[3], depths=[0.5], words=["lemon"], haystack=frames)
    default = me.MiniVNIAH(student, frames=[3], depths=[0.5], words=["lemon"])
    given, footage = (t.score(t.cells()[0]) for t in (task, default))
    assert given["prompt_tokens"] == footage["prompt_tokens"]
    expected = student.encode_images(me._frame_pixels(student, frames[:3]))
    torch.testing.assert_close(task._haystack, expected)
    assert not torch.allclose(task._haystack, default._haystack)
    with pytest.raises(ConfigError, match="the grid needs 6"):
        me.MiniVNIAH(student, frames=[6], haystack=frames)
    with pytest.raises(ConfigError, match="not both"):
        me.MiniVNIAH(student, frames=[3], haystack=frames, videos=["a.mp4"])


@pytest.mark.slow
def test_text_channels_put_subtitles_and_on_screen_text_in_the_prompt(student):
    def run(**kw):
        return me.evaluate_qa(
            student, n_per_kind=1, n_frames=6, kinds=["what"], max_new_tokens=1, **kw
        )

    frames_only = run(text_channels=False)
    subtitles = run(text_channels=True, ocr=False)
    with_ocr = run(text_channels=True)
    assert [i.seed for i in subtitles.items] == [i.seed for i in with_ocr.items]
    for plain, subs, ocr in zip(frames_only.items, subtitles.items, with_ocr.items, strict=True):
        assert subs.prompt_tokens > plain.prompt_tokens
        # each caption also names its time, and the cards' words are read off the frames
        assert ocr.prompt_tokens > subs.prompt_tokens
