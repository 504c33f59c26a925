"""Multiple-choice and open video QA on local Video-MME-style datasets.

Video-MME (Fu et al., 2024, "Video-MME: The First-Ever Comprehensive Evaluation Benchmark of
Multi-modal LLMs in Video Analysis", section 3: the question format, the duration bins and the
task types; section 4: evaluation with and without subtitles) asks four-option questions about
videos and reports accuracy overall, per duration category and per task type. This module runs
any longvid model on a dataset in that shape read from local files, with no downloads:

- `load_items` reads JSON (a list, or an object with an ``items``/``questions``/``data`` list),
  JSON lines, or Parquet (through pyarrow, when installed). Fields per question: ``video`` (or
  ``video_path``), ``question``, ``options`` (a list ``["A. text", ...]`` as Video-MME writes
  it, a plain list, or a ``{"A": text}`` mapping; empty or absent for an open question),
  ``answer`` (the letter, or the option's text; free text for an open question), optional
  ``subtitles`` (or ``subtitle_path``), ``duration`` (or ``duration_category``), ``task_type``
  and ``id`` (or ``question_id``; default: the row number). A relative ``video``/``subtitles``
  path is resolved against the dataset file's folder, except one that starts with
  ``{assets}/``, which is resolved against the assets root (`default_assets_root`, or
  ``assets=``), so a dataset can name the shared media wherever they live.
- `format_question` writes the Video-MME prompt (question, one line per option, "Answer with
  the option's letter from the given choices directly."); subtitles, when asked for, go
  through `longvid.generate.generate(..., subtitles=...)`, which interleaves them with the
  frames by time.
- `extract_choice` reads the chosen letter from free-form output (rule in its docstring).
- `run_qa` scores item by item and appends one JSON line per item to a results file (flushed
  and fsynced), so a rerun with the same results file skips what is done and an interrupt
  loses nothing scored; `summarize` and `summary_table` give accuracy overall, by duration and
  by task type.

`longvid.bench.grid` resumes grid cells keyed by (size, depth); QA items are keyed by their
id, so `ResultsLog` below is this module's own small resumable JSON-lines writer (same
guarantees: one fsynced line per item, a torn last line dropped and redone).

The shipped sample set (`SAMPLE_DATASET`, 18 questions written by looking at the frames of 8
real clips in ``shared/assets/video``) bins durations as its own clips allow: ``short`` under
10 s, ``medium`` 10-30 s, ``long`` over 30 s (Video-MME's bins are under 2 min, 4-15 min and
30-60 min); its task types are Video-MME's names.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import string
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longvid.errors import InputFileError

__all__ = [
    "ASSETS_PREFIX",
    "QADatasetError",
    "QAItem",
    "QASettings",
    "ResultsLog",
    "SAMPLE_DATASET",
    "default_assets_root",
    "extract_choice",
    "format_question",
    "load_items",
    "run_qa",
    "score_answer",
    "summarize",
    "summary_table",
]

SAMPLE_DATASET = Path(__file__).resolve().parent / "data" / "sample_qa.jsonl"
"""The real-media sample set that ships with longvid (questions about ``shared/assets``)."""

ASSETS_PREFIX = "{assets}/"
"""A dataset path starting with this is resolved against the assets root."""

MC_INSTRUCTION = "Answer with the option's letter from the given choices directly."
OPEN_INSTRUCTION = "Answer the question using a single word or phrase."


class QADatasetError(InputFileError):
    """A QA dataset file is malformed: bad JSON, a missing field, an answer not among the
    options, a video that does not exist."""


def default_assets_root() -> Path:
    """``$LONGVID_ASSETS`` if set, else ``shared/assets`` beside the checkout (this file is
    ``<checkout>/src/longvid/bench/qa.py``)."""
    env = os.environ.get("LONGVID_ASSETS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[4] / "shared" / "assets"


@dataclass(frozen=True)
class QAItem:
    """One question. ``options`` maps letters to option texts in order (empty: open question);
    ``answer`` is a letter for a multiple-choice question, the reference text otherwise."""

    id: str
    video: Path
    question: str
    options: dict[str, str]
    answer: str
    subtitles: Path | None = None
    duration: str = "unknown"
    task_type: str = "unknown"

    @property
    def multiple_choice(self) -> bool:
        return bool(self.options)


# --------------------------------------------------------------------------------------------
# Reading a dataset


def _read_rows(path: Path) -> list[dict[str, Any]]:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise QADatasetError(
                "reading Parquet needs pyarrow: pip install 'longvid[parquet]' "
                "(or convert the file to JSON lines)",
                path,
            ) from None
        try:
            return pq.read_table(path).to_pylist()
        except Exception as exc:  # pyarrow raises its own types for corrupt files
            raise QADatasetError(f"not a readable Parquet file ({exc})", path) from exc
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise QADatasetError(f"not UTF-8 text ({exc})", path) from exc
    if suffix in (".jsonl", ".ndjson"):
        rows = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise QADatasetError(f"line {number}: invalid JSON ({exc.msg})", path) from exc
        return rows
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise QADatasetError(f"invalid JSON at line {exc.lineno} ({exc.msg})", path) from exc
        if isinstance(data, dict):
            for key in ("items", "questions", "data"):
                if isinstance(data.get(key), list):
                    return data[key]
            raise QADatasetError("a JSON object needs an 'items' (or 'questions') list", path)
        if not isinstance(data, list):
            raise QADatasetError("expected a JSON list of questions", path)
        return data
    raise QADatasetError(
        f"unknown dataset format {suffix or '(no suffix)'!r} (use .json, .jsonl or .parquet)",
        path,
    )


_OPTION_PREFIX = re.compile(r"^\s*\(?([A-Za-z])[.):]\s*")


def _parse_options(raw: Any, where: str, path: Path) -> dict[str, str]:
    if raw is None:
        return {}
    if isinstance(raw, dict):
        options = {str(k).strip().upper(): str(v).strip() for k, v in raw.items()}
    elif isinstance(raw, (list, tuple)):
        options = {}
        for k, text in enumerate(raw):
            letter = string.ascii_uppercase[k]
            text = str(text).strip()
            match = _OPTION_PREFIX.match(text)
            if match and match.group(1).upper() == letter:  # Video-MME: "A. text"
                text = text[match.end() :].strip()
            options[letter] = text
    else:
        raise QADatasetError(f"{where}: 'options' must be a list or a mapping", path)
    if any(len(k) != 1 or k not in string.ascii_uppercase for k in options):
        raise QADatasetError(f"{where}: option keys must be single letters A-Z", path)
    if any(not v for v in options.values()):
        raise QADatasetError(f"{where}: an option is empty", path)
    return options


def _resolve(value: str, base: Path, assets: Path) -> Path:
    if value.startswith(ASSETS_PREFIX):
        return assets / value[len(ASSETS_PREFIX) :]
    candidate = Path(value).expanduser()
    return candidate if candidate.is_absolute() else base / candidate


def _first(row: dict[str, Any], *names: str) -> Any:
    for name in names:
        if row.get(name) not in (None, ""):
            return row[name]
    return None


def load_items(
    path: str | os.PathLike[str],
    *,
    assets: str | os.PathLike[str] | None = None,
    check_files: bool = True,
) -> list[QAItem]:
    """Read a QA dataset (format in the module docstring) into `QAItem`s.

    ``assets`` is the root ``{assets}/`` paths resolve against (default
    `default_assets_root`). With ``check_files`` every video and subtitle file must exist, so a
    wrong assets root fails here, before any result is written. Raises `QADatasetError`.
    """
    path = Path(path)
    if not path.is_file():
        raise QADatasetError("dataset file not found", path)
    root = Path(assets) if assets is not None else default_assets_root()
    base = path.resolve().parent
    items: list[QAItem] = []
    seen: set[str] = set()
    for number, row in enumerate(_read_rows(path), 1):
        where = f"question {number}"
        if not isinstance(row, dict):
            raise QADatasetError(f"{where}: expected an object", path)
        ident = str(_first(row, "id", "question_id") or number)
        where = f"question {ident!r}"
        if ident in seen:
            raise QADatasetError(f"{where}: duplicate id", path)
        seen.add(ident)
        video = _first(row, "video", "video_path")
        question = _first(row, "question")
        answer = _first(row, "answer")
        for name, value in (("video", video), ("question", question), ("answer", answer)):
            if value is None:
                raise QADatasetError(f"{where}: missing {name!r}", path)
        options = _parse_options(row.get("options"), where, path)
        answer = str(answer).strip()
        if options:
            letter = answer.upper().strip("(). ")
            if letter not in options:
                by_text = [k for k, v in options.items() if v.casefold() == answer.casefold()]
                if not by_text:
                    raise QADatasetError(
                        f"{where}: answer {answer!r} is not one of the options "
                        f"{', '.join(options)}",
                        path,
                    )
                letter = by_text[0]
            answer = letter
        video_path = _resolve(str(video), base, root)
        subs = _first(row, "subtitles", "subtitle_path")
        subs_path = _resolve(str(subs), base, root) if subs is not None else None
        if check_files:
            if not video_path.is_file():
                hint = f" (assets root {root})" if str(video).startswith(ASSETS_PREFIX) else ""
                raise QADatasetError(f"{where}: video {video_path} not found{hint}", path)
            if subs_path is not None and not subs_path.is_file():
                raise QADatasetError(f"{where}: subtitles {subs_path} not found", path)
        items.append(
            QAItem(
                id=ident,
                video=video_path,
                question=str(question).strip(),
                options=options,
                answer=answer,
                subtitles=subs_path,
                duration=str(_first(row, "duration", "duration_category") or "unknown"),
                task_type=str(_first(row, "task_type") or "unknown"),
            )
        )
    if not items:
        raise QADatasetError("the dataset holds no questions", path)
    return items


# --------------------------------------------------------------------------------------------
# Prompt and answer extraction


def format_question(item: QAItem) -> str:
    """The question text handed to the model: Video-MME's layout (question, then ``A. text``
    lines, then the instruction to answer with the letter); an open question gets the
    short-answer instruction instead."""
    if not item.multiple_choice:
        return f"{item.question}\n{OPEN_INSTRUCTION}"
    lines = [item.question, *(f"{k}. {v}" for k, v in item.options.items()), MC_INSTRUCTION]
    return "\n".join(lines)


def _normalize(text: str) -> str:
    """Lower case, punctuation to spaces, articles dropped, whitespace collapsed."""
    text = text.casefold()
    text = "".join(" " if unicodedata.category(c)[0] in "PS" else c for c in text)
    words = [w for w in text.split() if w not in ("a", "an", "the")]
    return " ".join(words)


_MARKUP = re.compile(r"[*_`#>]+")


def extract_choice(text: str, options: Sequence[str] | dict[str, str]) -> str | None:
    """The option letter a free-form answer chooses, or None when it names none.

    ``options`` are the valid letters (or the letter -> text mapping, which also enables
    matching by text). The rule, first match wins (Markdown ``* _ ` # >`` is removed first):

    1. The whole answer is one valid letter, in either case, with at most surrounding
       brackets and punctuation: ``"B"``, ``"(b)"``, ``"C."``.
    2. An explicit marker, letter in either case: a bracketed letter ``"(B)"``/``"[B]"``
       anywhere; a letter at the very start followed by ``.``, ``)`` or ``:`` (``"B. a dog"``,
       ``"b) a dog"``); a letter after "answer is/answer:/option/choice" that ends there
       (followed by punctuation or the end of the text: ``"The answer is B"``).
    3. The option's text: the options whose (normalized: case, punctuation and articles
       ignored) text occurs in the answer; of several, the one occurring first, the longest
       at the same place; failing that, the single option whose text contains the whole
       answer (at least 3 characters), e.g. ``"cockatoo"`` for ``"a white cockatoo"``.
    4. An upper-case letter after an answer phrase (``"The answer is A because ..."``), else
       a standalone upper-case valid letter anywhere (``"I think B is right"``), except
       ``"A"`` followed by a word (``"A dog"`` is an article), which counts only before
       punctuation or the end.

    Lower-case letters outside rules 1-2 never count (``"a"`` is an article), so an answer
    that is ordinary prose without a marker or an option's text gives None.
    """
    texts = dict(options) if isinstance(options, dict) else {}
    letters = [str(k).upper() for k in options]
    valid = "".join(letters)
    if not valid:
        return None
    cls = f"[{re.escape(valid)}{re.escape(valid.lower())}]"
    clean = _MARKUP.sub("", text).strip()
    # 1. the whole answer is a letter
    bare = clean.strip(" \t\n()[].:;,!'\"")
    if len(bare) == 1 and bare.upper() in letters:
        return bare.upper()
    # 2. explicit markers
    marked = re.search(rf"[(\[]\s*({cls})\s*[)\]]", clean)
    if marked:
        return marked.group(1).upper()
    leading = re.match(rf"({cls})\s*[.):](?!\w)", clean)
    if leading:
        return leading.group(1).upper()
    phrase = re.search(
        rf"(?:answer\s*(?:is|:)|option|choice)\s*:?\s*({cls})(?=\s*[.,;:!)\]]|\s*$)",
        clean,
        flags=re.IGNORECASE,
    )
    if phrase:
        return phrase.group(1).upper()
    # 3. the option's text
    if texts:
        said = f" {_normalize(clean)} "
        found: list[tuple[int, int, str]] = []
        for letter, option in texts.items():
            norm = _normalize(option)
            if norm:
                at = said.find(f" {norm} ")
                if at >= 0:
                    found.append((at, -len(norm), str(letter).upper()))
        if found:
            return min(found)[2]
        core = said.strip()
        if len(core) >= 3:
            holders = [
                str(k).upper() for k, v in texts.items() if f" {core} " in f" {_normalize(v)} "
            ]
            if len(holders) == 1:
                return holders[0]
    # 4. a capital letter after an answer phrase, then a standalone capital letter
    spoken = re.search(
        rf"(?i:answer\s*(?:is|:)|option|choice)\s*:?\s*([{re.escape(valid)}])(?![\w'])", clean
    )
    if spoken:
        return spoken.group(1)
    for match in re.finditer(rf"(?<![\w'])([{re.escape(valid)}])(?![\w'])", clean):
        letter = match.group(1)
        rest = clean[match.end() :]
        if letter == "A" and re.match(r"\s+\w", rest):
            continue
        return letter
    return None


def score_answer(item: QAItem, prediction: str) -> tuple[str | None, bool]:
    """``(choice, correct)``: for a multiple-choice item the extracted letter and whether it is
    the answer; for an open item the normalized reference occurring as whole words in the
    normalized prediction (``choice`` is then None)."""
    if item.multiple_choice:
        choice = extract_choice(prediction, item.options)
        return choice, choice == item.answer
    reference = _normalize(item.answer)
    return None, bool(reference) and f" {reference} " in f" {_normalize(prediction)} "


# --------------------------------------------------------------------------------------------
# Resumable results


class ResultsLog:
    """A JSON-lines results file that survives interrupts.

    Each `append` writes one line, flushes and fsyncs, so a record is on disk before the next
    item starts. Opening an existing file reads the records already there (keyed by
    ``key_field``) and cuts off a last line left half-written by a kill; a malformed line
    anywhere else is an error naming the file and line.
    """

    def __init__(self, path: str | os.PathLike[str], key_field: str = "id") -> None:
        self.path = Path(path)
        self.key_field = key_field
        self.records: dict[str, dict[str, Any]] = {}
        if self.path.is_file():
            self._load()

    def _load(self) -> None:
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # a partial last line from an interrupted write
            with self.path.open("r+b") as handle:
                handle.truncate(end)
        for number, line in enumerate(data[:end].decode("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputFileError(f"line {number}: invalid JSON ({exc.msg})", self.path) from exc
            self.records[str(record.get(self.key_field))] = record

    def __contains__(self, key: object) -> bool:
        return str(key) in self.records

    def __len__(self) -> int:
        return len(self.records)

    def append(self, record: dict[str, Any]) -> None:
        """Write ``record`` as one line and make it durable before returning."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        self.records[str(record[self.key_field])] = record


# --------------------------------------------------------------------------------------------
# Running


@dataclass(frozen=True)
class QASettings:
    """What a run depends on; its `fingerprint` names the results file, so runs with other
    settings never mix their records."""

    model: str
    compressor: str | None = None
    frames: int = 16
    subtitles: bool = False
    max_new_tokens: int = 16
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "compressor": self.compressor,
            "frames": self.frames,
            "subtitles": self.subtitles,
            "max_new_tokens": self.max_new_tokens,
            **self.extra,
        }

    def fingerprint(self) -> str:
        blob = json.dumps(self.as_dict(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:10]

    def results_name(self, dataset: str | os.PathLike[str]) -> str:
        """``qa-<dataset>-<model>-<fingerprint>.jsonl`` (model slugged to a file name)."""
        model = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(self.model).name or self.model)
        return f"qa-{Path(dataset).stem}-{model}-{self.fingerprint()}.jsonl"


Answerer = Callable[[QAItem, str], str]
"""``(item, prompt) -> generated text``: what `run_qa` asks for each item."""


def model_answerer(model: Any, settings: QASettings) -> Answerer:
    """An `Answerer` over `longvid.generate.generate`: ``settings.frames`` frames sampled
    uniformly, the item's subtitles interleaved when ``settings.subtitles``, frames dropped
    evenly if the prompt would overflow the context."""
    from longvid.generate import generate
    from longvid.io.video import uniform

    def answer(item: QAItem, prompt: str) -> str:
        result = generate(
            model,
            item.video,
            prompt,
            uniform(settings.frames),
            max_new_tokens=settings.max_new_tokens,
            fit="drop_frames",
            compressor=settings.compressor,
            subtitles=item.subtitles if settings.subtitles else None,
        )
        return result.text

    return answer


def run_qa(
    items: Iterable[QAItem],
    answerer: Answerer,
    results: str | os.PathLike[str] | ResultsLog,
    *,
    settings: QASettings | None = None,
    on_record: Callable[[dict[str, Any], bool], None] | None = None,
) -> list[dict[str, Any]]:
    """Score every item not already in ``results``; return all records in item order.

    A record holds the item's id, video, duration, task type, question, answer, the raw
    prediction, the extracted ``choice``, ``correct`` and, when the model raised a
    `LongvidError` (a video that does not decode, ...), ``error`` (counted as wrong).
    ``on_record(record, resumed)`` is called per item, ``resumed`` True for records read back
    from an earlier run. An interrupt (Ctrl-C) stops between or inside items; everything
    written before stays, and the next call resumes after it.
    """
    from longvid.errors import LongvidError

    log = results if isinstance(results, ResultsLog) else ResultsLog(results)
    out: list[dict[str, Any]] = []
    for item in items:
        if item.id in log:
            record = log.records[item.id]
            out.append(record)
            if on_record is not None:
                on_record(record, True)
            continue
        prompt = format_question(item)
        error = None
        try:
            prediction = answerer(item, prompt)
        except LongvidError as exc:
            prediction, error = "", str(exc)
        choice, correct = score_answer(item, prediction)
        record = {
            "id": item.id,
            "video": str(item.video),
            "duration": item.duration,
            "task_type": item.task_type,
            "question": item.question,
            "answer": item.answer,
            "kind": "mc" if item.multiple_choice else "open",
            "prediction": prediction,
            "choice": choice,
            "correct": bool(correct and error is None),
        }
        if error is not None:
            record["error"] = error
        if settings is not None:
            record["settings"] = settings.fingerprint()
        log.append(record)
        out.append(record)
        if on_record is not None:
            on_record(record, False)
    return out


# --------------------------------------------------------------------------------------------
# Reporting


def _group(records: Sequence[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[bool]] = {}
    for record in records:
        groups.setdefault(str(record.get(key, "unknown")), []).append(bool(record["correct"]))
    return {name: _cell(marks) for name, marks in sorted(groups.items())}


def _cell(marks: Sequence[bool]) -> dict[str, Any]:
    total = len(marks)
    correct = sum(marks)
    return {"correct": correct, "total": total, "accuracy": correct / total if total else 0.0}


def summarize(
    records: Sequence[dict[str, Any]], settings: QASettings | None = None
) -> dict[str, Any]:
    """Accuracy overall, by duration category and by task type, plus the count of answers
    from which no option could be read (``unparsed``) and of items that raised (``errors``).
    """
    summary: dict[str, Any] = {
        "overall": _cell([bool(r["correct"]) for r in records]),
        "by_duration": _group(records, "duration"),
        "by_task_type": _group(records, "task_type"),
        "unparsed": sum(
            1
            for r in records
            if r.get("kind", "mc") == "mc" and r.get("choice") is None and "error" not in r
        ),
        "errors": sum(1 for r in records if "error" in r),
    }
    if settings is not None:
        summary["settings"] = settings.as_dict()
    return summary


def summary_table(summary: dict[str, Any], title: str = "video QA accuracy") -> Any:
    """A rich `Table`: one row per duration category and task type, and the overall row."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("group", style="bold")
    table.add_column("value")
    table.add_column("correct", justify="right")
    table.add_column("total", justify="right")
    table.add_column("accuracy", justify="right")
    for label, key in (("duration", "by_duration"), ("task type", "by_task_type")):
        for name, cell in summary[key].items():
            table.add_row(
                label, name, str(cell["correct"]), str(cell["total"]), f"{cell['accuracy']:.1%}"
            )
    cell = summary["overall"]
    table.add_row(
        "overall",
        "all",
        str(cell["correct"]),
        str(cell["total"]),
        f"{cell['accuracy']:.1%}",
        style="bold",
        end_section=True,
    )
    return table
