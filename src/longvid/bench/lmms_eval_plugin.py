"""A ``longvid`` model for lmms-eval: any longvid model on lmms-eval's video tasks.

lmms-eval (Zhang et al., 2024, "LMMs-Eval: Reality Check on the Evaluation of Large
Multimodal Models", section 2: one model interface, ``generate_until`` over `Instance`s, for
every task) finds third-party models through the ``lmms_eval.models`` entry-point group;
longvid's pyproject registers `manifest` there, so after installing longvid next to lmms-eval

    lmms-eval eval --model longvid \\
        --model_args pretrained=tiny-longva,compressor=longva,frames=16 --tasks videomme

runs the whole longvid pipeline (`longvid.generate.generate`: decode, vision tower, projector,
compressor, prompt, LLM) on each request. Model arguments: ``pretrained`` (a registry name or
a checkpoint directory), ``compressor`` (replaces the model's), ``frames`` (sampled uniformly,
default 16), ``max_new_tokens`` (default 64; a task's ``generation_kwargs.max_new_tokens``
wins), ``fit`` (``drop_frames``, the default, or ``error``), ``timestamps``. lmms-eval's own
``batch_size``/``device`` arguments are accepted; requests run one at a time on the model's
device.

Visuals: a request's ``doc_to_visual`` must give video file paths (lmms-eval's video tasks
do); image-only requests are refused with a `ConfigError`. Each request's ``until`` strings cut
the answer. ``loglikelihood`` requests (what lmms-eval's ``multiple_choice`` and
``loglikelihood`` tasks send) are scored on the same video prompt: the continuation's summed
negative log-likelihood and whether greedy decoding writes it. lmms-eval 0.7.3's evaluator
itself cannot finish such a task with any model yet: `lmms_eval.api.instance.
unwrap_generation_output` turns each ``(float, bool)`` answer into a string before scoring, so
``multiple_choice`` scoring fails to unpack it; the plugin is tested through the model
interface. Multi-round requests are not supported (`NotImplementedError`).

Install: lmms-eval 0.7.3 declares torchvision, ``av<16``, wandb, yt-dlp and more among its
requirements, so a plain install would replace the CPU torch and downgrade PyAV; ``make
lmms-eval`` installs it with ``--no-deps`` plus only the modules its CLI imports (the
``[lmms-eval]`` extra lists them).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

try:
    from lmms_eval.api.model import lmms
except ImportError as exc:  # pragma: no cover - exercised only without lmms-eval
    raise ImportError(
        "longvid.bench.lmms_eval_plugin needs lmms-eval: run `make lmms-eval` (installs "
        "lmms-eval 0.7.3 with --no-deps and the [lmms-eval] extra)"
    ) from exc

from longvid.errors import ConfigError

__all__ = ["LongvidLMM", "manifest", "write_local_task"]

MODEL_ID = "longvid"


def manifest() -> Any:
    """The entry point's payload: lmms-eval's `ModelManifest` naming `LongvidLMM`."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return ModelManifest(model_id=MODEL_ID, simple_class_path=f"{__name__}.{LongvidLMM.__name__}")


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _video_paths(visuals: Any) -> list[str]:
    """The video files among a request's visuals (lmms-eval gives a list, sometimes nested)."""
    if visuals is None:
        return []
    if isinstance(visuals, (str, os.PathLike)):
        return [os.fspath(visuals)]
    paths: list[str] = []
    if isinstance(visuals, (list, tuple)):
        for visual in visuals:
            paths.extend(_video_paths(visual))
    return paths


class LongvidLMM(lmms):
    """lmms-eval's model interface over `longvid.generate.generate`."""

    is_simple = True

    def __init__(
        self,
        pretrained: str = "tiny-longva",
        compressor: str | None = None,
        frames: int | str = 16,
        max_new_tokens: int | str = 64,
        fit: str = "drop_frames",
        timestamps: bool | str = False,
        batch_size: int | str = 1,
        device: str | None = None,
        **unused: Any,
    ) -> None:
        super().__init__()
        from longvid.generate import load_model

        if fit not in ("drop_frames", "error"):
            raise ConfigError(f"lmms-eval model_args: fit={fit!r} (use drop_frames or error)")
        self.pretrained = str(pretrained)
        self.compressor = compressor or None
        self.frames = int(frames)
        self.max_new_tokens = int(max_new_tokens)
        self.fit = fit
        self.timestamps = _as_bool(timestamps)
        self.batch_size = int(batch_size)
        self.model = load_model(self.pretrained)
        if device not in (None, "", "auto"):
            self.model.to(device)

    def _answer(self, context: str, video: str, gen_kwargs: dict[str, Any]) -> str:
        from longvid.generate import generate
        from longvid.io.video import uniform

        answer = generate(
            self.model,
            video,
            context,
            uniform(self.frames),
            max_new_tokens=int(gen_kwargs.get("max_new_tokens") or self.max_new_tokens),
            timestamps=self.timestamps,
            fit=self.fit,  # type: ignore[arg-type]
            compressor=self.compressor,
        )
        text = answer.text
        until = gen_kwargs.get("until") or []
        for stop in [until] if isinstance(until, str) else until:
            if stop:
                text = text.split(stop)[0]
        return text

    def _video(self, doc_to_visual: Any, task: str, split: str, doc_id: int) -> str:
        """The one video file of a request's doc; a `ConfigError` for anything else."""
        visuals = doc_to_visual(self.task_dict[task][split][doc_id])
        videos = _video_paths(visuals)
        if len(videos) != 1:
            raise ConfigError(
                f"lmms-eval task {task!r}, doc {doc_id}: the longvid model takes exactly one "
                f"video file per request, got {len(videos)} (visuals: {type(visuals).__name__})"
            )
        return videos[0]

    def generate_until(self, requests: list[Any]) -> list[str]:
        """One answer per `Instance`; ``arguments`` are lmms-eval's ``(context,
        generation_kwargs, doc_to_visual, doc_id, task, split)``."""
        answers: list[str] = []
        for request in requests:
            context, gen_kwargs, doc_to_visual, doc_id, task, split = request.args
            video = self._video(doc_to_visual, task, split, doc_id)
            text = self._answer(str(context), video, dict(gen_kwargs or {}))
            answers.append(text)
            self.cache_hook.add_partial("generate_until", (context, gen_kwargs), text)
        return answers

    def loglikelihood(self, requests: list[Any]) -> list[tuple[float, bool]]:
        """Per `Instance` (``arguments``: ``(context, continuation or doc_to_target,
        doc_to_visual, doc_id, task, split)``): the continuation's negative log-likelihood,
        summed over its tokens, after the video prompt of the context, and whether greedy
        decoding would write it. A loss rather than a log-probability, because lmms-eval's
        ``multiple_choice`` tasks take the option with the *smallest* first value (its own
        models return losses). Requests that share a video and context (a question's options)
        share one prompt and one prefill (`LongVideoLM.continuation_logprobs`)."""
        from longvid.generate import prepare_prompt
        from longvid.io.video import uniform

        groups: dict[tuple[str, str], list[tuple[int, str]]] = {}
        for k, request in enumerate(requests):
            context, target, doc_to_visual, doc_id, task, split = request.args
            doc = self.task_dict[task][split][doc_id]
            continuation = target if isinstance(target, str) else str(target(doc))
            video = self._video(doc_to_visual, task, split, doc_id)
            groups.setdefault((video, str(context)), []).append((k, continuation))
        results: list[tuple[float, bool]] = [(0.0, False)] * len(requests)
        for (video, context), members in groups.items():
            prepared = prepare_prompt(
                self.model,
                video,
                context,
                uniform(self.frames),
                max_new_tokens=0,
                timestamps=self.timestamps,
                fit=self.fit,  # type: ignore[arg-type]
                compressor=self.compressor,
            )
            embeds = prepared.assembled.inputs_embeds
            scored = self.model.continuation_logprobs(embeds, [c for _, c in members])
            for (k, continuation), (logprob, greedy) in zip(members, scored, strict=True):
                results[k] = (-logprob, greedy)
                self.cache_hook.add_partial("loglikelihood", (context, continuation), results[k])
        return results

    def generate_until_multi_round(self, requests: list[Any]) -> list[str]:
        raise NotImplementedError("the longvid lmms-eval model answers single-round tasks only")


# --------------------------------------------------------------------------------------------
# A local lmms-eval task over a longvid QA dataset (no downloads)

_TASK_YAML = """\
task: {task}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {docs}
test_split: test
output_type: generate_until
doc_to_visual: !function utils.doc_to_visual
doc_to_text: !function utils.doc_to_text
doc_to_target: answer
generation_kwargs:
  max_new_tokens: {max_new_tokens}
  until: []
process_results: !function utils.process_results
metric_list:
  - metric: accuracy
    aggregation: mean
    higher_is_better: true
"""

_TASK_UTILS = """\
# lmms-eval task functions for a longvid QA dataset (written by longvid.bench.lmms_eval_plugin).
from longvid.bench.lmms_eval_plugin import task_doc_to_text as doc_to_text
from longvid.bench.lmms_eval_plugin import task_doc_to_visual as doc_to_visual
from longvid.bench.lmms_eval_plugin import task_process_results as process_results

__all__ = ["doc_to_text", "doc_to_visual", "process_results"]
"""


def write_local_task(
    dataset: str | os.PathLike[str],
    folder: str | os.PathLike[str],
    *,
    assets: str | os.PathLike[str] | None = None,
    task: str = "longvid_qa",
    max_new_tokens: int = 16,
) -> Path:
    """Write an lmms-eval task definition for a longvid QA dataset (`longvid.bench.qa`
    format) into ``folder``: ``<task>.yaml``, ``utils.py`` and ``docs.jsonl`` (the questions
    with absolute video paths and the Video-MME prompt). Run it with ``lmms-eval eval
    --include_path FOLDER --tasks TASK --model longvid``; the metric is ``accuracy`` (the
    option letter read by `longvid.bench.qa.extract_choice`). Returns ``folder``."""
    from longvid.bench.qa import format_question, load_items

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    docs = folder / "docs.jsonl"
    with docs.open("w", encoding="utf-8") as handle:
        for item in load_items(dataset, assets=assets):
            doc = {
                "id": item.id,
                "video": str(item.video.resolve()),
                "prompt": format_question(item),
                "options": [f"{k}. {v}" for k, v in item.options.items()],
                "answer": item.answer,
                "duration": item.duration,
                "task_type": item.task_type,
            }
            handle.write(json.dumps(doc) + "\n")
    yaml = _TASK_YAML.format(task=task, docs=json.dumps(str(docs)), max_new_tokens=max_new_tokens)
    (folder / f"{task}.yaml").write_text(yaml, encoding="utf-8")
    (folder / "utils.py").write_text(_TASK_UTILS, encoding="utf-8")
    return folder


def task_doc_to_visual(doc: dict[str, Any]) -> list[str]:
    """The local task's visuals: the question's video file."""
    return [doc["video"]]


def task_doc_to_text(doc: dict[str, Any], lmms_eval_specific_kwargs: Any = None) -> str:
    """The local task's prompt (written by `write_local_task`)."""
    return str(doc["prompt"])


def task_process_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """``accuracy`` 1.0 when the answer's option letter is the right one (open questions: the
    reference text occurs in the answer)."""
    from longvid.bench.qa import QAItem, score_answer

    options = {str(o).split(".", 1)[0]: str(o).split(".", 1)[1].strip() for o in doc["options"]}
    item = QAItem(str(doc["id"]), Path(doc["video"]), "", options, str(doc["answer"]))
    _, correct = score_answer(item, results[0] if results else "")
    return {"accuracy": float(correct)}
