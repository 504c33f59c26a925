"""`LongVideoLM`: vision tower + projector + language model, built from transformers modules.

The LLaVA architecture (Liu et al., "Visual Instruction Tuning", 2023, section 4.1) as LongVA
uses it (Zhang et al., "Long Context Transfer from Language to Vision", 2024, section 3):

    frames --vision_tower--> hidden_states[select_layer] (CLS dropped) --projector--> tokens
    --compressor (longvid.compressors)--> spliced into the prompt (longvid.prompting)
    --> language_model(inputs_embeds=...)

Every block is transformers' own: the tower is ``AutoModel.from_config`` of a CLIP / SigLIP vision
config, the language model ``AutoModelForCausalLM.from_config`` of a Qwen2 / Llama / Mistral
config; the projector is ``nn.Linear`` or ``Linear -> GELU -> Linear`` (LLaVA's ``mlp2x_gelu``).
No attention or MLP is re-implemented here.

Checkpoints (`save_pretrained` / `from_pretrained`) are a directory with ``config.json``
(`LongVideoConfig`), ``model.safetensors`` and, when a tokenizer is attached, its files. Legacy
pickle weights (``pytorch_model.bin``) load only with ``allow_pickle=True`` and then through
``torch.load(weights_only=True)``. Any mismatch between file and model (missing, unexpected or
mis-shaped tensors) is one `CheckpointError` that lists them all. A released LongVA checkpoint
(``model_type: llava_qwen``) is recognised and read by `longvid.models.longva_checkpoint`.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

from longvid.compressors.registry import CompressedVideo, ModelDims, build_compressor
from longvid.encoders.btadapter import BTAdapterVisionModel
from longvid.errors import CheckpointError, ConfigError
from longvid.models.config import CONFIG_NAME, LongVideoConfig

__all__ = [
    "SAFE_WEIGHTS_NAME",
    "CheckpointTensors",
    "LongVideoLM",
    "build_projector",
    "feature_tokens",
    "load_checked_state",
]

SAFE_WEIGHTS_NAME = "model.safetensors"
ADAPTER_DIR = "adapter"  # the LoRA adapter of a checkpoint whose LLM comes from elsewhere
SAFE_INDEX_NAME = "model.safetensors.index.json"
PICKLE_INDEX_NAME = "pytorch_model.bin.index.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")

Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` after each chunk of frames (e.g. a rich progress bar)."""


def build_projector(kind: str, vision_width: int, text_width: int) -> nn.Module:
    """LLaVA's projector from vision features to LLM embeddings.

    ``"linear"``: one ``nn.Linear`` (LLaVA-1). ``"mlp2x_gelu"``: ``Linear -> GELU (exact erf)
    -> Linear`` as an ``nn.Sequential`` whose indices 0 and 2 match LLaVA's ``mm_projector.0/2``
    checkpoint keys (LLaVA-1.5, LLaVA-NeXT, LongVA).
    """
    if kind == "linear":
        return nn.Linear(vision_width, text_width)
    if kind == "mlp2x_gelu":
        return nn.Sequential(
            nn.Linear(vision_width, text_width), nn.GELU(), nn.Linear(text_width, text_width)
        )
    raise ConfigError(f"key 'projector': unknown projector {kind!r} (known: linear, mlp2x_gelu)")


def feature_tokens(hidden: Tensor, drop_cls: bool) -> Tensor:
    """One hidden state of a vision tower as patch tokens ``(N, P, D)``: a ViT's token
    sequence (its CLS dropped when ``drop_cls``), or a convolutional tower's ``(N, D, H, W)``
    feature map read row-major, as a ViT orders its patches."""
    if hidden.ndim == 4:
        return hidden.flatten(2).transpose(1, 2)
    return hidden[:, 1:] if drop_cls else hidden


NORM_LAYERS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)
"""Layers whose parameters decide whether a training tower may update running statistics."""


class LongVideoLM(nn.Module):
    """A LLaVA-style long-video LM: ``vision_tower``, ``projector``, ``language_model``.

    Build with random weights from a config (``LongVideoLM(config)``, or
    ``longvid.models.registry.create_model(name)``), or load with `from_pretrained`. The
    compressor and the prompt assembly live in their own stages; this class gives their inputs
    (`encode_images`, `project`, `embed_tokens`) and runs the LLM (`forward`).

    ``tokenizer`` is an optional transformers tokenizer saved and loaded with the weights.
    """

    def __init__(self, config: LongVideoConfig) -> None:
        super().__init__()
        from transformers import AutoModel, AutoModelForCausalLM

        self.config = config
        vision_config = config.vision_config()
        text_config = config.text_config()
        adapter = config.vision_tower.btadapter
        if adapter is not None:
            self.vision_tower = BTAdapterVisionModel(
                vision_config, depth=adapter["depth"], max_frames=adapter["max_frames"]
            )
        else:
            self.vision_tower = AutoModel.from_config(vision_config)
        self.projector = build_projector(
            config.projector, vision_config.hidden_size, text_config.hidden_size
        )
        self.language_model = AutoModelForCausalLM.from_config(text_config)
        self.compressor = build_compressor(
            config.compressor.name,
            config.compressor.params,
            ModelDims(vision_config.hidden_size, text_config.hidden_size, config.patches_per_side),
        )
        self.tokenizer: Any = None

    def train(self, mode: bool = True) -> LongVideoLM:
        """As `nn.Module.train`, except that a vision tower whose normalisation layers are
        frozen (the whole tower, or only those layers when its weights are fine-tuned) stays in
        eval mode: its normalisation statistics (a ResNet tower's BatchNorm) must not drift
        while the parts after it train on its features."""
        super().train(mode)
        norms = [
            p
            for module in self.vision_tower.modules()
            if isinstance(module, NORM_LAYERS)
            for p in module.parameters(recurse=False)
        ]
        if not any(p.requires_grad for p in norms or self.vision_tower.parameters()):
            self.vision_tower.eval()
        return self

    # -- the pieces of the pipeline ----------------------------------------------------------

    @property
    def device(self) -> torch.device:
        """Where the language model's weights are."""
        return self.language_model.get_input_embeddings().weight.device

    @property
    def dtype(self) -> torch.dtype:
        """The language model's weight dtype (what `project` and `embed_tokens` return)."""
        return self.language_model.get_input_embeddings().weight.dtype

    @property
    def tokens_per_image(self) -> int:
        """Feature tokens `encode_images` returns per image (CLIP-L/336, ``patch``: 576)."""
        side = self.config.patches_per_side
        keep_cls = self.config.vision_tower.select_feature == "cls_patch"
        return side * side + int(keep_cls)

    def encode_images(
        self,
        pixel_values: Tensor,
        chunk_size: int = 32,
        progress: Progress | None = None,
        video: bool = True,
    ) -> Tensor:
        """Vision features of images or frames, ``(N, tokens, D_vision)``.

        ``pixel_values`` is ``(N, 3, S, S)`` as the image processor makes it (any dtype and
        device; it is moved to the tower's). Frames go through the tower ``chunk_size`` at a
        time, so an hour of video never sits in the tower at once; ``progress(done, total)``
        is called after each chunk. The features are ``hidden_states[select_layer]`` (-2: the
        second-to-last layer, so the last layer and the post-LayerNorm are unused, as in LLaVA)
        with the CLS token dropped for ``select_feature="patch"``: 576 row-major patch tokens
        per 336-px crop with CLIP-L/14. No gradients unless the model is training and the
        tower has trainable weights: it is frozen in LLaVA and LongVA, and tuned only by
        ``StageConfig.tower_lr_scale``.
        With a BT-Adapter tower (PPLLaVA) and ``video=True``, consecutive frames go through
        as clips of at most ``max_frames`` so its temporal branch sees them together;
        ``video=False`` encodes each image on its own.
        """
        if pixel_values.ndim != 4:
            raise ValueError(
                f"pixel_values must be (N, 3, H, W), got shape {tuple(pixel_values.shape)}"
            )
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        weight = next(self.vision_tower.parameters())
        select = self.config.vision_tower
        drop_cls = select.select_feature == "patch" and select.has_cls_token
        total = pixel_values.shape[0]
        if isinstance(self.vision_tower, BTAdapterVisionModel) and video:
            # The temporal branch attends across frames: each chunk goes in as one clip.
            chunk_size = min(chunk_size, self.vision_tower.max_frames)
        tuned = self.training and any(p.requires_grad for p in self.vision_tower.parameters())
        chunks = []
        for start in range(0, total, chunk_size):
            pixels = pixel_values[start : start + chunk_size].to(weight.device, weight.dtype)
            if isinstance(self.vision_tower, BTAdapterVisionModel) and video:
                pixels = pixels[None]
            with torch.set_grad_enabled(tuned and torch.is_grad_enabled()):
                out = self.vision_tower(pixel_values=pixels, output_hidden_states=True)
            chunks.append(feature_tokens(out.hidden_states[select.select_layer], drop_cls))
            if progress is not None:
                progress(min(start + chunk_size, total), total)
        if not chunks:
            width = self.vision_tower.config.hidden_size
            return weight.new_zeros((0, self.tokens_per_image, width))
        return torch.cat(chunks)

    def project(self, features: Tensor) -> Tensor:
        """Vision features ``(..., D_vision)`` -> LLM embeddings ``(..., D_text)``, per token."""
        weight = next(self.projector.parameters())
        return self.projector(features.to(weight.device, weight.dtype))

    @torch.no_grad()
    def compress(
        self, features: Tensor, frame_times: Any, question: str | None = None
    ) -> CompressedVideo:
        """Vision features ``(T, P, Dv)`` -> the visual tokens of the prompt, through the
        configured compressor (which runs the projector where its paper does)."""
        return self.compressor(
            features, projector=self.project, frame_times=frame_times, question=question
        )

    def embed_tokens(self, input_ids: Tensor) -> Tensor:
        """The language model's input embedding of ``input_ids`` (ids must be in the vocab)."""
        return self.language_model.get_input_embeddings()(input_ids)

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        position_ids: Tensor | None = None,
        **kwargs: Any,
    ) -> Any:
        """Run the language model (on ids, or on assembled ``inputs_embeds``).

        Returns transformers' ``CausalLMOutputWithPast`` (``.logits``, ``.cache``).
        ``attention_mask`` marks real positions; extra keyword arguments go to the LLM.
        """
        return self.language_model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            inputs_embeds=inputs_embeds,
            position_ids=position_ids,
            **kwargs,
        )

    @torch.no_grad()
    def continuation_logprobs(
        self, inputs_embeds: Tensor, continuations: Sequence[str]
    ) -> list[tuple[float, bool]]:
        """How likely each text is to follow the prompt ``inputs_embeds (1, L, D)``: the
        summed log-probability of its tokens, and whether greedy decoding would have written
        exactly those tokens (lmms-eval's ``loglikelihood`` pair). Scoring the options of a
        multiple-choice question this way (the cloze form) asks nothing of a small model's
        grasp of option letters. One prefill; every text reuses its key-value cache."""
        if inputs_embeds.ndim != 3 or inputs_embeds.shape[0] != 1:
            raise ConfigError(f"inputs_embeds must be (1, L, D), got {tuple(inputs_embeds.shape)}")
        texts = list(continuations)
        ids = [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        empty = [t for t, i in zip(texts, ids, strict=True) if not i]
        if empty:
            raise ConfigError(f"continuations must have at least one token, got {empty!r}")
        prefill = self.language_model(inputs_embeds=inputs_embeds, use_cache=True)
        cache = prefill.cache
        first = prefill.logits[0, -1].float().log_softmax(-1)
        scored = []
        for tokens in ids:
            target = torch.tensor(tokens, device=inputs_embeds.device)
            logprobs = first[None]
            if len(tokens) > 1:
                rest = self.language_model(
                    input_ids=target[None, :-1], cache=cache, use_cache=True
                ).logits[0]
                cache.crop(-(len(tokens) - 1))  # back to the prompt alone
                logprobs = torch.cat([logprobs, rest.float().log_softmax(-1)])
            total = float(logprobs.gather(1, target[:, None]).sum())
            scored.append((total, bool((logprobs.argmax(-1) == target).all())))
        return scored

    # -- checkpoints -------------------------------------------------------------------------

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``config.json``, ``model.safetensors`` (and the tokenizer's files if one is
        attached) into ``directory``. Tied weights are stored once; the language model is left
        out when ``config.language_model_weights`` says where it comes from (a LoRA adapter
        trained on it is saved by `save_adapter`). Returns the directory."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.config.save(directory)
        stored = _stored_names(self)
        tensors = {
            name: tensor.detach().to("cpu").contiguous()
            for name, tensor in self.state_dict().items()
            if name in stored
        }
        save_file(tensors, directory / SAFE_WEIGHTS_NAME, metadata={"format": "pt"})
        if self.tokenizer is not None:
            self.tokenizer.save_pretrained(directory)
        return directory

    @classmethod
    def from_pretrained(
        cls,
        directory: str | os.PathLike[str],
        *,
        allow_pickle: bool = False,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> LongVideoLM:
        """Load a model saved by `save_pretrained` (or a released LongVA checkpoint directory).

        ``dtype`` (e.g. ``torch.bfloat16``) and ``device`` choose where the weights are built;
        RoPE tables stay float32 as transformers keeps them. Weights come from
        ``model.safetensors`` (or sharded safetensors with an index); a directory holding only
        pickle weights (``pytorch_model.bin``) raises `CheckpointError` unless
        ``allow_pickle=True`` (then ``torch.load(weights_only=True)``, which refuses code).
        Missing, unexpected or mis-shaped tensors raise one `CheckpointError` listing them.
        """
        directory = Path(directory)
        if not directory.is_dir():
            raise CheckpointError("not a directory (expected a saved longvid model)", directory)
        config_path = directory / CONFIG_NAME
        if _config_model_type(config_path) == "llava_qwen":
            from longvid.models.longva_checkpoint import load_longva_checkpoint

            return load_longva_checkpoint(
                directory, allow_pickle=allow_pickle, device=device, dtype=dtype
            )
        config = LongVideoConfig.load(config_path)
        source = CheckpointTensors.from_directory(directory, allow_pickle=allow_pickle)
        model = cls.build_empty(config, device=device, dtype=dtype)
        if config.language_model_weights is None:
            load_checked_state(model, source)
        else:
            model.load_base_language_model()
            load_checked_state(model, source, only=lambda name: not _is_llm(name))
            adapter = directory / ADAPTER_DIR
            if adapter.is_dir():
                model.merge_adapter(adapter)
        model.tokenizer = load_tokenizer(directory)
        if model.tokenizer is None and config.language_model_weights is not None:
            from longvid.models.base_llm import resolve_language_model

            model.tokenizer = load_tokenizer(resolve_language_model(config.language_model_weights))
        return model.eval()

    def load_base_language_model(self) -> None:
        """Fill the language model from ``config.language_model_weights`` (a registered offline
        model or a directory; `longvid.models.base_llm`)."""
        from longvid.models.base_llm import resolve_language_model

        base = resolve_language_model(self.config.language_model_weights)
        source = CheckpointTensors.from_directory(base)
        load_checked_state(self.language_model, source)
        self.language_model.tie_weights()

    def save_adapter(self, peft_model: Any, directory: str | os.PathLike[str]) -> Path:
        """Save the LoRA adapter of ``peft_model`` (the language model wrapped by peft) into
        ``directory/adapter``, where `from_pretrained` finds and merges it."""
        target = Path(directory) / ADAPTER_DIR
        peft_model.save_pretrained(target, safe_serialization=True)
        return target

    def merge_adapter(self, adapter: Path) -> None:
        """Merge a saved LoRA adapter into the language model's weights (inference runs at
        the base model's speed); a `CheckpointError` names the folder when it cannot."""
        try:
            from peft import PeftModel

            with peft_deprecations_silenced():
                wrapped = PeftModel.from_pretrained(self.language_model, str(adapter))
            self.language_model = wrapped.merge_and_unload()
        except ImportError:
            raise CheckpointError("a LoRA adapter needs peft (pip install peft)", adapter) from None
        except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as err:
            raise CheckpointError(f"cannot load the LoRA adapter: {err}", adapter) from None

    @classmethod
    def build_empty(
        cls,
        config: LongVideoConfig,
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> LongVideoLM:
        """The model with *uninitialised* weights, to be filled by a checkpoint (skipping the
        random init saves minutes at 7B). Tied weights are tied; buffers are computed."""
        from transformers.initialization import no_init_weights

        with no_init_weights(), _default_dtype(dtype), torch.device(device or "cpu"):
            model = cls(config)
        model.language_model.tie_weights()
        return model


# --------------------------------------------------------------------------------------------
# Checkpoint reading, shared with longva_checkpoint


class CheckpointTensors:
    """The tensors of a checkpoint (one or several files), read lazily by name.

    ``names`` maps each tensor name to the file that holds it; `shape` reads only headers
    (safetensors), `get` reads one tensor. ``path`` is what error messages name: the single
    weights file, or the index of a sharded checkpoint.
    """

    def __init__(self, files: list[Path], path: Path, *, allow_pickle: bool = False) -> None:
        self.path = path
        self.names: dict[str, Path] = {}
        self._safe: dict[Path, Any] = {}
        self._pickled: dict[Path, dict[str, Tensor]] = {}
        for file in files:
            if not file.is_file():
                raise CheckpointError("weights file not found", file)
            if file.suffix == ".safetensors":
                try:
                    handle = safe_open(str(file), framework="pt")
                except (SafetensorError, OSError) as err:
                    raise CheckpointError(f"not a readable safetensors file: {err}", file) from None
                self._safe[file] = handle
                keys = list(handle.keys())
            else:
                if not allow_pickle:
                    raise CheckpointError(_pickle_refusal(), file)
                try:
                    state = torch.load(file, map_location="cpu", weights_only=True)
                except Exception as err:  # UnpicklingError, RuntimeError, ...
                    raise CheckpointError(
                        f"torch.load(weights_only=True) refused it: {err}", file
                    ) from None
                if not isinstance(state, dict):
                    raise CheckpointError("pickle does not hold a state dict", file)
                self._pickled[file] = state
                keys = list(state)
            for key in keys:
                self.names[key] = file

    @classmethod
    def from_files(
        cls, files: list[str | os.PathLike[str]], *, allow_pickle: bool = False
    ) -> CheckpointTensors:
        """Tensors of explicitly named weight files (``.safetensors``, or ``.bin`` opted in)."""
        paths = [Path(f) for f in files]
        if not paths:
            raise CheckpointError("no weight files given")
        return cls(paths, paths[0], allow_pickle=allow_pickle)

    @classmethod
    def from_directory(cls, directory: Path, *, allow_pickle: bool = False) -> CheckpointTensors:
        """Find the weights of a checkpoint directory, safetensors first: a sharded index,
        ``model.safetensors``, other ``*.safetensors``; then, only with ``allow_pickle``, a
        pickle index or ``*.bin`` / ``*.pt`` files."""
        index = directory / SAFE_INDEX_NAME
        if index.is_file():
            return cls(_index_files(index), index)
        single = directory / SAFE_WEIGHTS_NAME
        if single.is_file():
            return cls([single], single)
        shards = sorted(directory.glob("*.safetensors"))
        if shards:
            return cls(shards, shards[0])
        pickles = sorted(directory.glob("*.bin")) + sorted(directory.glob("*.pt"))
        if pickles and not allow_pickle:
            names = ", ".join(p.name for p in pickles[:4])
            raise CheckpointError(
                f"holds only pickle weights ({names}); {_pickle_refusal()}", directory
            )
        index = directory / PICKLE_INDEX_NAME
        if index.is_file():
            return cls(_index_files(index), index, allow_pickle=True)
        if pickles:
            return cls(pickles, pickles[0], allow_pickle=True)
        raise CheckpointError(
            f"no weights found (expected {SAFE_WEIGHTS_NAME} or a sharded safetensors index)",
            directory,
        )

    def shape(self, name: str) -> tuple[int, ...]:
        """The stored shape of ``name`` without reading its data (safetensors)."""
        file = self.names[name]
        if file in self._safe:
            return tuple(self._safe[file].get_slice(name).get_shape())
        return tuple(self._pickled[file][name].shape)

    def get(self, name: str) -> Tensor:
        """Read tensor ``name``."""
        file = self.names[name]
        if file in self._safe:
            return self._safe[file].get_tensor(name)
        return self._pickled[file][name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)


def load_checked_state(
    model: nn.Module,
    source: CheckpointTensors,
    rename: Mapping[str, str] | None = None,
    ignore: Callable[[str], bool] | None = None,
    only: Callable[[str], bool] | None = None,
) -> None:
    """Copy ``source`` into ``model`` after checking that both hold exactly the same tensors.

    ``rename`` maps a checkpoint name to the model's name (absent: same name); checkpoint names
    for which ``ignore(name)`` is true are skipped (stale buffers of older transformers). A
    parameter tied to another one (``lm_head`` = ``embed_tokens``) may be absent. Every missing,
    unexpected and mis-shaped tensor is listed, with shapes, in one `CheckpointError` naming
    the file; nothing is copied unless all match. ``only(name)`` restricts the check to the
    model's tensors it accepts (the rest come from elsewhere).
    """
    rename = rename or {}
    # state_dict() leaves non-persistent buffers (RoPE tables, CLIP position ids) out.
    expected = {
        name: tuple(t.shape) for name, t in model.state_dict().items() if only is None or only(name)
    }
    canonical = _canonical_names(model)
    found: dict[str, str] = {}  # model name -> checkpoint name
    unexpected: list[str] = []
    for stored in source:
        if ignore is not None and ignore(stored):
            continue
        name = rename.get(stored, stored)
        if name in expected:
            found[name] = stored
        else:
            unexpected.append(f"{stored} {_fmt(source.shape(stored))}")
    missing = [
        f"{name} {_fmt(shape)}"
        for name, shape in expected.items()
        if name not in found and name in canonical
    ]
    mis_shaped = [
        f"{stored}: checkpoint {_fmt(source.shape(stored))}, model {_fmt(expected[name])}"
        for name, stored in found.items()
        if source.shape(stored) != expected[name]
    ]
    if missing or unexpected or mis_shaped:
        raise CheckpointError(_mismatch_message(missing, unexpected, mis_shaped), source.path)
    targets = model.state_dict(keep_vars=True)
    with torch.no_grad():
        for name, stored in found.items():
            targets[name].copy_(source.get(stored))


def load_tokenizer(directory: Path) -> Any:
    """The transformers tokenizer saved in ``directory``, or None when it has no tokenizer
    files. Never downloads (``local_files_only``)."""
    if not any((directory / name).is_file() for name in TOKENIZER_FILES):
        return None
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    except Exception as err:  # OSError, ValueError, JSON errors from the tokenizer files
        raise CheckpointError(f"tokenizer files cannot be loaded: {err}", directory) from None


# --------------------------------------------------------------------------------------------
# Helpers


def _is_llm(name: str) -> bool:
    return name.startswith("language_model.")


def _stored_names(model: LongVideoLM) -> set[str]:
    """The tensors `save_pretrained` writes: canonical ones, without the language model when
    the config names where its weights come from."""
    names = _canonical_names(model)
    if model.config.language_model_weights is not None:
        names = {name for name in names if not _is_llm(name)}
    return names


def _canonical_names(model: nn.Module) -> set[str]:
    """State-dict names that own their storage: tied aliases (``lm_head.weight`` when tied to
    the embedding) are left out, so they are saved once and may be absent when loading."""
    names = {name for name, _ in model.named_parameters()}
    names.update(name for name, _ in model.named_buffers())
    return names


def _fmt(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


def _mismatch_message(missing: list[str], unexpected: list[str], mis_shaped: list[str]) -> str:
    limit = 20
    parts = [
        f"checkpoint does not match the model: {len(missing)} missing, "
        f"{len(unexpected)} unexpected, {len(mis_shaped)} mis-shaped tensor(s)"
    ]
    for title, items in (
        ("missing", missing),
        ("unexpected", unexpected),
        ("mis-shaped", mis_shaped),
    ):
        for item in sorted(items)[:limit]:
            parts.append(f"  {title}: {item}")
        if len(items) > limit:
            parts.append(f"  ... and {len(items) - limit} more {title}")
    return "\n".join(parts)


def _pickle_refusal() -> str:
    return (
        "pickle checkpoints can run code when loaded and are refused by default; "
        "pass allow_pickle=True to load a trusted file with torch.load(weights_only=True), "
        "or convert it to safetensors"
    )


def _index_files(index: Path) -> list[Path]:
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        files = sorted({str(v) for v in weight_map.values()})
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise CheckpointError(f"not a valid checkpoint index ({err!r})", index) from None
    return [index.parent / f for f in files]


def _config_model_type(path: Path) -> Any:
    """``model_type`` of a config.json, or None when it cannot be read (load reports that)."""
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None


@contextlib.contextmanager
def peft_deprecations_silenced() -> Iterator[None]:
    """Wrapping a model in peft (0.21) reads transformers 5's deprecated
    ``is_gradient_checkpointing`` alias, whose FutureWarning tells our users nothing they can act
    on; only that one warning is hidden, and only inside this block."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning
        )
        yield


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype | None) -> Iterator[None]:
    """Build floating-point weights in ``dtype`` (transformers keeps RoPE tables float32)."""
    if dtype is None:
        yield
        return
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)
