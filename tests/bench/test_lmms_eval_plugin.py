"""The lmms-eval plugin (`longvid.bench.lmms_eval_plugin`): found through lmms-eval's
``lmms_eval.models`` entry point, answering `Instance`s through lmms-eval's model interface, and
the ``lmms-eval eval`` CLI end to end on a local task over the real-media sample set (no dataset
downloads). Skips where lmms-eval is not installed (``make lmms-eval`` installs it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip(
    "lmms_eval.models",
    reason="lmms-eval is not installed (run `make lmms-eval`: lmms-eval 0.7.3 with --no-deps "
    "plus the [lmms-eval] extra)",
)

from lmms_eval.api.instance import Instance  # noqa: E402
from lmms_eval.api.model import lmms  # noqa: E402
from lmms_eval.models import get_model, list_available_models  # noqa: E402

from longvid.bench import lmms_eval_plugin  # noqa: E402
from longvid.bench.lmms_eval_plugin import LongvidLMM, write_local_task  # noqa: E402
from longvid.bench.qa import SAMPLE_DATASET  # noqa: E402
from longvid.errors import ConfigError  # noqa: E402


def _instances(task: str, docs: list[dict], gen_kwargs: dict) -> list[Instance]:
    return [
        Instance(
            request_type="generate_until",
            arguments=(doc["prompt"], dict(gen_kwargs), lambda d: [d["video"]], k, task, "test"),
            idx=0,
            metadata={"task": task, "doc_id": k, "repeats": 1},
        )
        for k, doc in enumerate(docs)
    ]


def _docs(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "docs.jsonl").read_text().splitlines()]


def test_entry_point_registers_longvid() -> None:
    assert "longvid" in list_available_models()
    cls = get_model("longvid")
    assert cls is LongvidLMM and issubclass(cls, lmms)


def test_local_task_files(assets: Path, tmp_path: Path) -> None:
    folder = write_local_task(SAMPLE_DATASET, tmp_path, assets=assets, task="t")
    assert {p.name for p in folder.iterdir()} == {"t.yaml", "utils.py", "docs.jsonl"}
    docs = _docs(folder)
    assert len(docs) == 18 and all(Path(d["video"]).is_file() for d in docs)
    assert docs[0]["prompt"].endswith("from the given choices directly.")
    right = lmms_eval_plugin.task_process_results(docs[0], [f"({docs[0]['answer']})"])
    wrong = lmms_eval_plugin.task_process_results(docs[0], ["no idea"])
    assert right == {"accuracy": 1.0} and wrong == {"accuracy": 0.0}


def test_generate_until_through_model_interface(assets: Path, tmp_path: Path) -> None:
    """lmms-eval's interface: the class from the registry, built from a model_args string,
    answering `Instance`s whose visuals come from the task's docs."""
    docs = _docs(write_local_task(SAMPLE_DATASET, tmp_path, assets=assets))[:1]
    model = get_model("longvid").create_from_arg_string(
        "pretrained=tiny-longva,frames=4,max_new_tokens=3", {"batch_size": 1, "device": "cpu"}
    )
    model.task_dict = {"sample": {"test": docs}}
    answers = model.generate_until(_instances("sample", docs, {"max_new_tokens": 3}))
    assert len(answers) == 1 and all(isinstance(a, str) for a in answers)
    with pytest.raises(NotImplementedError):
        model.generate_until_multi_round([])


def test_loglikelihood_scores_options_on_one_shared_prompt(
    assets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """lmms-eval's ``multiple_choice`` requests: one per option, a loss each (smaller is
    likelier), the options of one question scored on one prompt."""
    import longvid.generate
    from longvid.io.video import uniform

    docs = _docs(write_local_task(SAMPLE_DATASET, tmp_path, assets=assets))[:2]
    model = get_model("longvid").create_from_arg_string("pretrained=tiny-longva,frames=3", {})
    model.task_dict = {"sample": {"test": docs}}
    prepared: list[str] = []
    prepare = longvid.generate.prepare_prompt

    def counting(lm, video, question, *args, **kwargs):
        prepared.append(question)
        return prepare(lm, video, question, *args, **kwargs)

    monkeypatch.setattr(longvid.generate, "prepare_prompt", counting)
    options = [" A", " B", " C", " D"]
    requests = [
        Instance(
            request_type="loglikelihood",
            arguments=(doc["prompt"], option, lambda d: [d["video"]], k, "sample", "test"),
            idx=i,
            metadata={"task": "sample", "doc_id": k, "repeats": 1},
        )
        for k, doc in enumerate(docs)
        for i, option in enumerate(options)
    ]
    requests.append(
        Instance(
            request_type="loglikelihood",
            arguments=(docs[0]["prompt"], lambda d: " " + d["answer"], lambda d: [d["video"]])
            + (0, "sample", "test"),
            idx=0,
            metadata={"task": "sample", "doc_id": 0, "repeats": 1},
        )
    )
    results = model.loglikelihood(requests)
    assert prepared == [docs[0]["prompt"], docs[1]["prompt"]]  # one prompt per question
    embeds = prepare(
        model.model, docs[1]["video"], docs[1]["prompt"], uniform(3), timestamps=False
    ).assembled.inputs_embeds
    expected = model.model.continuation_logprobs(embeds, options)
    for (loss, greedy), (logprob, is_greedy) in zip(results[4:8], expected, strict=True):
        assert loss == pytest.approx(-logprob, rel=1e-5) and loss > 0 and greedy == is_greedy
    assert results[8] == results[options.index(" " + docs[0]["answer"])]


def test_until_and_visual_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict = {}

    def fake_generate(model, video, question, sampler, **kwargs):
        seen.update(video=video, question=question, n=sampler.wants, **kwargs)
        return SimpleNamespace(text="B. a dog\nThe rest")

    monkeypatch.setattr("longvid.generate.generate", fake_generate)
    model = LongvidLMM(pretrained="tiny-longva", frames="5", compressor="longva")
    doc = {"video": "/v.mp4", "prompt": "Q?"}
    model.task_dict = {"t": {"test": [doc]}}
    (answer,) = model.generate_until(_instances("t", [doc], {"until": ["\n"]}))
    assert answer == "B. a dog"
    assert seen["video"] == "/v.mp4" and seen["n"] == 5 and seen["compressor"] == "longva"
    assert seen["max_new_tokens"] == 64 and seen["fit"] == "drop_frames"
    request = Instance(
        request_type="generate_until",
        arguments=("Q?", {}, lambda d: [], 0, "t", "test"),
        idx=0,
        metadata={"task": "t", "doc_id": 0, "repeats": 1},
    )
    with pytest.raises(ConfigError, match="exactly one video"):
        model.generate_until([request])
    with pytest.raises(ConfigError, match="fit"):
        LongvidLMM(pretrained="tiny-longva", fit="squeeze")


@pytest.mark.slow
def test_lmms_eval_cli_end_to_end(assets: Path, tmp_path: Path) -> None:
    """``lmms-eval eval --model longvid`` on a local task over two sample questions."""
    exe = Path(sys.executable).with_name("lmms-eval")
    if not exe.exists():
        exe = Path(shutil.which("lmms-eval") or "lmms-eval")
    task_dir = write_local_task(SAMPLE_DATASET, tmp_path / "task", assets=assets, task="lv_qa")
    env = {
        **os.environ,
        "HF_HOME": str(tmp_path / "hf"),
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
    }
    command = [str(exe), "eval", "--model", "longvid"]
    command += ["--model_args", "pretrained=tiny-longva,frames=4,max_new_tokens=4"]
    command += ["--tasks", "lv_qa", "--include_path", str(task_dir), "--limit", "2"]
    command += ["--output_path", str(tmp_path / "out"), "--device", "cpu"]
    run = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    (results,) = (tmp_path / "out").rglob("*_results.json")
    scores = json.loads(results.read_text())["results"]["lv_qa"]
    assert "accuracy,none" in scores and 0.0 <= scores["accuracy,none"] <= 1.0
    assert "|lv_qa" in run.stdout
