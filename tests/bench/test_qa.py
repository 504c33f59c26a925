"""Video QA (`longvid.bench.qa`): dataset reading, answer extraction, resumable scoring, the
summary, the shipped real-media sample set and ``longvid bench qa`` on it."""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from longvid.bench.qa import (
    SAMPLE_DATASET,
    QADatasetError,
    QAItem,
    QASettings,
    ResultsLog,
    extract_choice,
    format_question,
    load_items,
    run_qa,
    score_answer,
    summarize,
    summary_table,
)
from longvid.errors import LongvidError

OPTIONS = {"A": "a large grey rabbit", "B": "a dog", "C": "a horse", "D": "an elephant"}


# --------------------------------------------------------------------------------------------
# answer extraction


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("B", "B"),
        ("(B)", "B"),
        ("(b)", "B"),
        ("B.", "B"),
        ("C: a horse", "C"),
        ("b) a dog", "B"),
        ("The answer is B", "B"),
        ("The answer is b.", "B"),
        ("The answer is A because it hops.", "A"),
        ("Answer: D", "D"),
        ("**C**", "C"),
        ("I think C is right", "C"),
        ("a dog", "B"),
        ("It is a horse, clearly.", "C"),
        ("A large grey rabbit.", "A"),
        ("The answer is a dog", "B"),
        ("elephant", "D"),
        ("A", "A"),
        ("A dog is shown", "B"),  # the article "A", then option B's text
        ("I have no idea", None),
        ("the answer is a cockatoo", None),
        ("", None),
        ("E", None),
    ],
)
def test_extract_choice_examples(text: str, expected: str | None) -> None:
    assert extract_choice(text, OPTIONS) == expected


def test_extract_choice_letters_only_ignores_text_rule() -> None:
    assert extract_choice("a dog", "ABCD") is None
    assert extract_choice("(c)", ["A", "B", "C", "D"]) == "C"


_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=3, max_size=8).filter(
    lambda w: w != "the"
)
_option_text = st.lists(_word, min_size=1, max_size=4).map(" ".join)


@st.composite
def _mc(draw: st.DrawFn) -> tuple[dict[str, str], str]:
    n = draw(st.integers(2, 6))
    texts = draw(st.lists(_option_text, min_size=n, max_size=n, unique=True))
    # no option's text may contain another's (then "the option text" itself is ambiguous)
    for i, a in enumerate(texts):
        for j, b in enumerate(texts):
            assume(i == j or f" {a} " not in f" {b} ")
    options = dict(zip(string.ascii_uppercase, texts, strict=False))
    return options, draw(st.sampled_from(list(options)))


_FORMATS = [
    "{L}",
    "({L})",
    "({l})",
    "{L}.",
    "{L}. {text}",
    "{l}) {text}",
    "{L}: {text}",
    "The answer is {L}",
    "The answer is {L}.",
    "the answer is ({l}) {text}",
    "Answer: {L}",
    "Option {L}",
    "{text}",
    "{Text}.",
    "I would say {text}.",
    "**{L}**",
]


@settings(max_examples=300, deadline=None)
@given(_mc(), st.sampled_from(_FORMATS))
def test_extract_choice_property(mc: tuple[dict[str, str], str], fmt: str) -> None:
    options, letter = mc
    text = options[letter]
    answer = fmt.format(L=letter, l=letter.lower(), text=text, Text=text.capitalize())
    assert extract_choice(answer, options) == letter


@settings(max_examples=100, deadline=None)
@given(_mc(), st.sampled_from(["{L}", "({L})", "The answer is {L}", "{L}. {text}"]))
def test_extract_choice_wrong_letter_is_not_right(mc: tuple[dict[str, str], str], fmt: str) -> None:
    """An answer that names another option is read as that option, never as the right one."""
    options, letter = mc
    other = next(k for k in options if k != letter)
    answer = fmt.format(L=other, text=options[other])
    assert extract_choice(answer, options) == other


# --------------------------------------------------------------------------------------------
# dataset reading


def _write_video(folder: Path, name: str = "clip.mp4") -> Path:
    path = folder / name
    path.write_bytes(b"not decoded by load_items")
    return path


def test_load_jsonl_video_mme_options_and_relative_paths(tmp_path: Path) -> None:
    _write_video(tmp_path)
    (tmp_path / "subs.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nhi\n")
    rows = [
        {
            "question_id": "q1",
            "video": "clip.mp4",
            "question": "What?",
            "options": ["A. red", "B. green", "C. blue", "D. black"],
            "answer": "C",
            "subtitles": "subs.srt",
            "duration": "short",
            "task_type": "Attribute Perception",
        },
        {"video": "clip.mp4", "question": "Which?", "options": {"A": "x", "B": "y"}, "answer": "y"},
        {"video": "clip.mp4", "question": "Say it", "answer": "Hello World"},
    ]
    data = tmp_path / "set.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    items = load_items(data)
    assert [i.id for i in items] == ["q1", "2", "3"]
    first = items[0]
    assert first.options == {"A": "red", "B": "green", "C": "blue", "D": "black"}
    assert first.answer == "C" and first.video == tmp_path / "clip.mp4"
    assert first.subtitles == tmp_path / "subs.srt"
    assert (first.duration, first.task_type) == ("short", "Attribute Perception")
    assert items[1].answer == "B"  # the answer given as the option's text
    assert not items[2].multiple_choice and items[2].duration == "unknown"


def test_load_json_object_and_assets_prefix(tmp_path: Path) -> None:
    assets = tmp_path / "assets"
    (assets / "video").mkdir(parents=True)
    _write_video(assets / "video", "v.mp4")
    data = tmp_path / "sub" / "set.json"
    data.parent.mkdir()
    row = {"id": 7, "video": "{assets}/video/v.mp4", "question": "Q", "options": ["a", "b"]}
    data.write_text(json.dumps({"items": [{**row, "answer": "b"}]}))
    (item,) = load_items(data, assets=assets)
    assert item.id == "7" and item.video == assets / "video" / "v.mp4" and item.answer == "B"


def test_load_parquet(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    _write_video(tmp_path)
    table = pa.table(
        {
            "video": ["clip.mp4"],
            "question": ["What?"],
            "options": [["A. one", "B. two"]],
            "answer": ["A"],
            "duration": ["long"],
            "task_type": ["Counting Problem"],
        }
    )
    pq.write_table(table, tmp_path / "set.parquet")
    (item,) = load_items(tmp_path / "set.parquet")
    assert item.options == {"A": "one", "B": "two"} and item.duration == "long"


@pytest.mark.parametrize(
    ("content", "suffix", "problem"),
    [
        ('{"video": "clip.mp4", "question": "Q", "options": ["a", "b"]}', ".jsonl", "answer"),
        ('{"video": "clip.mp4", "question": "Q", "options": ["a"], "answer": "C"}', ".jsonl", "C"),
        ('{"video": "gone.mp4", "question": "Q", "answer": "x"}', ".jsonl", "gone.mp4"),
        ("{not json", ".jsonl", "line 1"),
        ("[]", ".json", "no questions"),
        ("a,b", ".csv", "unknown dataset format"),
        (
            '{"id": 1, "video": "clip.mp4", "question": "Q", "answer": "x"}\n'
            '{"id": 1, "video": "clip.mp4", "question": "Q", "answer": "x"}',
            ".jsonl",
            "duplicate",
        ),
    ],
)
def test_bad_datasets_raise_naming_file(
    tmp_path: Path, content: str, suffix: str, problem: str
) -> None:
    _write_video(tmp_path)
    data = tmp_path / f"bad{suffix}"
    data.write_text(content)
    with pytest.raises(QADatasetError) as info:
        load_items(data)
    assert isinstance(info.value, LongvidError)
    assert str(data) in str(info.value) and problem in str(info.value)


def test_missing_dataset_file(tmp_path: Path) -> None:
    with pytest.raises(QADatasetError, match="not found"):
        load_items(tmp_path / "nope.jsonl")


def test_format_question_video_mme_layout() -> None:
    item = QAItem("1", Path("v.mp4"), "What colour?", {"A": "red", "B": "blue"}, "B")
    assert format_question(item) == (
        "What colour?\nA. red\nB. blue\n"
        "Answer with the option's letter from the given choices directly."
    )
    open_item = QAItem("2", Path("v.mp4"), "Who?", {}, "Ada")
    assert format_question(open_item).startswith("Who?\n")
    assert score_answer(open_item, "It was Ada.") == (None, True)
    assert score_answer(open_item, "Adam") == (None, False)


# --------------------------------------------------------------------------------------------
# resumable scoring


def _items(n: int) -> list[QAItem]:
    return [
        QAItem(
            f"q{k}",
            Path(f"v{k}.mp4"),
            f"question {k}",
            {"A": "cat", "B": "dog"},
            "AB"[k % 2],
            duration=["short", "long"][k % 2],
            task_type=["Counting Problem", "OCR Problems", "OCR Problems"][k % 3],
        )
        for k in range(n)
    ]


def test_run_qa_scores_and_summarizes(tmp_path: Path) -> None:
    items = _items(6)
    records = run_qa(items, lambda item, prompt: "(A)", tmp_path / "r.jsonl")
    assert [r["correct"] for r in records] == [True, False] * 3
    summary = summarize(records, QASettings(model="m"))
    assert summary["overall"] == {"correct": 3, "total": 6, "accuracy": 0.5}
    assert summary["by_duration"]["short"]["accuracy"] == 1.0
    assert summary["by_duration"]["long"]["accuracy"] == 0.0
    assert summary["by_task_type"]["OCR Problems"]["total"] == 4
    assert summary["settings"]["model"] == "m" and summary["unparsed"] == 0
    assert summary_table(summary).row_count == 2 + 2 + 1


def test_run_qa_resumes_after_interrupt_without_losing_records(tmp_path: Path) -> None:
    items = _items(5)
    results = tmp_path / "r.jsonl"
    asked: list[str] = []

    def interrupted_at_third(item: QAItem, prompt: str) -> str:
        if item.id == "q2":
            raise KeyboardInterrupt
        asked.append(item.id)
        return "B"

    with pytest.raises(KeyboardInterrupt):
        run_qa(items, interrupted_at_third, results)
    assert [json.loads(line)["id"] for line in results.read_text().splitlines()] == ["q0", "q1"]
    # a kill in the middle of a write leaves a torn line: it is dropped and redone
    with results.open("a") as handle:
        handle.write('{"id": "q2", "corr')
    asked.clear()
    resumed: list[str] = []
    records = run_qa(
        items,
        lambda item, prompt: asked.append(item.id) or "B",
        results,
        on_record=lambda r, was: was and resumed.append(r["id"]),
    )
    assert asked == ["q2", "q3", "q4"] and resumed == ["q0", "q1"]
    assert [r["id"] for r in records] == [f"q{k}" for k in range(5)]
    assert len(ResultsLog(results)) == 5
    assert len(results.read_text().splitlines()) == 5


def test_run_qa_records_model_errors_as_wrong(tmp_path: Path) -> None:
    from longvid.errors import VideoDecodeError

    def broken(item: QAItem, prompt: str) -> str:
        raise VideoDecodeError("no video stream", item.video)

    (record,) = run_qa(_items(1), broken, tmp_path / "r.jsonl")
    assert record["correct"] is False and "no video stream" in record["error"]
    assert summarize([record])["errors"] == 1


def test_results_log_rejects_corrupt_middle_line(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"id": "a"}\nnot json\n{"id": "b"}\n')
    with pytest.raises(LongvidError, match="line 2"):
        ResultsLog(path)


def test_settings_fingerprint_names_results() -> None:
    a = QASettings(model="tiny-longva", frames=8)
    b = QASettings(model="tiny-longva", frames=16)
    assert a.fingerprint() != b.fingerprint()
    assert a.results_name("x/set.jsonl").startswith("qa-set-tiny-longva-")


# --------------------------------------------------------------------------------------------
# the shipped real-media sample set


def test_sample_set_is_well_formed(assets: Path) -> None:
    items = load_items(SAMPLE_DATASET, assets=assets)
    assert 10 <= len(items) <= 20
    assert all(len(i.options) == 4 and i.answer in i.options for i in items)
    assert all(i.video.is_file() and i.video.parent == assets / "video" for i in items)
    assert {i.duration for i in items} == {"short", "medium", "long"}
    assert len({i.task_type for i in items}) >= 5
    # the right answers are spread over the letters, not all "A"
    assert len({i.answer for i in items}) == 4


def test_sample_set_durations_match_the_clips(assets: Path) -> None:
    from longvid.io.video import probe

    for item in load_items(SAMPLE_DATASET, assets=assets):
        seconds = probe(item.video, count_frames=False).duration
        expected = "short" if seconds < 10 else "medium" if seconds <= 30 else "long"
        assert item.duration == expected, (item.id, seconds)


def test_cli_bench_qa_on_sample_set_resumes(assets: Path, tmp_path: Path) -> None:
    from longvid.cli import app

    runner = CliRunner()
    args = ["bench", "qa", "--model", "tiny-longva", "--data", "sample"]
    args += ["--assets", str(assets), "--out", str(tmp_path), "--frames", "4"]
    args += ["--max-new-tokens", "4", "--limit", "1"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "overall" in first.output
    (results,) = tmp_path.glob("qa-sample_qa-tiny-longva-*.jsonl")
    assert len(results.read_text().splitlines()) == 1
    summary = json.loads(results.with_suffix(".summary.json").read_text())
    assert summary["overall"]["total"] == 1 and summary["settings"]["frames"] == 4
    again = runner.invoke(app, [*args, "--json"])
    assert again.exit_code == 0, again.output
    assert len(results.read_text().splitlines()) == 1  # nothing rescored
    assert json.loads(again.stdout)["overall"]["total"] == 1


def test_cli_bench_qa_bad_dataset_is_one_line_error(tmp_path: Path) -> None:
    from longvid.cli import app

    bad = tmp_path / "bad.jsonl"
    bad.write_text("{oops\n")
    result = CliRunner().invoke(app, ["bench", "qa", "--data", str(bad), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "bad.jsonl" in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_cli_bench_qa_sigint_keeps_scored_questions(assets: Path, tmp_path: Path) -> None:
    """Ctrl-C (SIGINT) in the middle of a run: exit 130, every scored line intact, and the
    rerun scores only the rest."""
    import signal
    import subprocess
    import sys
    import time

    command = [sys.executable, "-m", "longvid", "bench", "qa", "--data", "sample"]
    command += ["--assets", str(assets), "--out", str(tmp_path), "--frames", "4"]
    command += ["--max-new-tokens", "4", "--limit", "8"]
    # a child of a background job inherits SIGINT ignored; give it the default back, so Python
    # installs its KeyboardInterrupt handler as in a terminal
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    results: list[Path] = []
    while time.monotonic() < deadline:
        results = list(tmp_path.glob("qa-*.jsonl"))
        if results and results[0].read_text().count("\n") >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    (path,) = results
    lines = path.read_text().splitlines()
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and 2 <= len(lines) < 8
    kept = [json.loads(line)["id"] for line in lines]
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    final = [json.loads(line)["id"] for line in path.read_text().splitlines()]
    assert final[: len(kept)] == kept and len(final) == len(set(final)) == 8


def test_model_answerer_passes_subtitles_to_generate(
    assets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``subtitles=True`` each question's subtitle file goes to `generate` (interleaved
    with the frames there); without, none does. Real model, real clip, real subtitle file."""
    import longvid.generate as gen
    from longvid.bench.qa import model_answerer

    row = {
        "id": "s1",
        "video": "{assets}/video/cockatoo.mp4",
        "subtitles": "{assets}/subtitles/webvtt-py_sample.srt",
        "question": "What animal?",
        "options": ["A. cockatoo", "B. dog"],
        "answer": "A",
    }
    data = tmp_path / "subs.jsonl"
    data.write_text(json.dumps(row) + "\n")
    items = load_items(data, assets=assets)
    calls: list[dict] = []
    real = gen.generate

    def spy(*args, **kwargs):
        answer = real(*args, **kwargs)
        calls.append({**kwargs, "prompt_tokens": answer.prompt_tokens})
        return answer

    monkeypatch.setattr(gen, "generate", spy)
    model = gen.load_model("tiny-longva")
    for use in (True, False):
        settings = QASettings(model="tiny-longva", frames=4, subtitles=use, max_new_tokens=2)
        (record,) = run_qa(items, model_answerer(model, settings), tmp_path / f"{use}.jsonl")
        assert "error" not in record
    with_subs, without = calls
    assert Path(with_subs["subtitles"]) == assets / "subtitles" / "webvtt-py_sample.srt"
    assert without["subtitles"] is None
    assert with_subs["prompt_tokens"] > without["prompt_tokens"]  # the cue text is in the prompt
