"""Load a released LongVA checkpoint (``LlavaQwenForCausalLM``) into a `LongVideoLM`.

LongVA (Zhang et al., "Long Context Transfer from Language to Vision", 2024) ships as a LLaVA
checkpoint: one ``config.json`` of ``model_type: llava_qwen`` (Qwen2 fields at the top level,
LLaVA's ``mm_*`` fields beside them) and a state dict laid out as
``shared/parity/longva/README.md`` section 8a describes:

=====================================================  =========================================
checkpoint key                                         `LongVideoLM` parameter
=====================================================  =========================================
``model.mm_projector.{0,2}.*`` (``mlp2x_gelu``)        ``projector.{0,2}.*``
``model.vision_tower.vision_tower.vision_model.*``     ``vision_tower.*`` (transformers CLIP)
``model.embed_tokens``, ``model.layers.*``,            ``language_model.model.*``
``model.norm``
``lm_head.weight``                                     ``language_model.lm_head.weight``
=====================================================  =========================================

Config fields read (README section 9): the Qwen2 shape keys, ``rope_theta`` (1e9 for
LongVA-7B), ``max_position_embeddings``; ``mm_vision_tower``, ``mm_hidden_size``,
``mm_vision_select_layer``, ``mm_vision_select_feature``, ``mm_projector_type``,
``mm_patch_merge_type`` (``unires`` only: the checkpoint has no ``image_newline``),
``image_aspect_ratio``, ``image_grid_pinpoints``, ``mm_spatial_pool_stride`` and
``mm_spatial_pool_mode`` (the video pooling, compressor ``longva``).

The released config names its vision tower by hub id (``openai/clip-vit-large-patch14-336``)
and LLaVA downloads that tower's config at run time; nothing here downloads, so known ids map to
their published shapes (`KNOWN_VISION_TOWERS`), and a config may carry the tower's transformers
config itself under ``vision_tower_config`` (the parity file does). The CLIP preprocessing comes
from ``preprocessor_config.json`` when the checkpoint has one, else from an ``image_processor``
entry of the config, else from the known tower.

Not carried over: ``tokenizer_model_max_length`` (the reference cuts every assembled sequence to
it; pass it as ``max_length`` to the sequence assembly for that behaviour) and
``tokenizer_padding_side`` (right, the assembly's default).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from longvid.errors import ConfigError
from longvid.models.config import (
    CONFIG_NAME,
    CompressorConfig,
    ImageProcessingConfig,
    LongVideoConfig,
    VisionTowerConfig,
)
from longvid.models.modeling import (
    CheckpointTensors,
    LongVideoLM,
    load_checked_state,
    load_tokenizer,
)

__all__ = [
    "KNOWN_VISION_TOWERS",
    "load_longva_checkpoint",
    "longva_config_from_dict",
    "longva_key_mapping",
]

_CLIP_L14 = {
    "model_type": "clip_vision_model",
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "patch_size": 14,
    "projection_dim": 768,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-5,
}

KNOWN_VISION_TOWERS: dict[str, dict[str, Any]] = {
    "openai/clip-vit-large-patch14-336": {**_CLIP_L14, "image_size": 336},
    "openai/clip-vit-large-patch14": {**_CLIP_L14, "image_size": 224},
}
"""Vision tower hub ids -> their transformers vision configs (published facts, no download)."""

_TEXT_MODEL_TYPES = {"llava_qwen": "qwen2"}

_TEXT_KEYS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "hidden_act",
    "max_position_embeddings",
    "rms_norm_eps",
    "rope_theta",
    "tie_word_embeddings",
    "use_sliding_window",
    "sliding_window",
    "max_window_layers",
    "attention_dropout",
    "initializer_range",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
)
_REQUIRED_TEXT_KEYS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
)
_TEXT_DEFAULTS = {
    # transformers 4.40's Qwen2Config defaults, which the reference ran with when a key is absent.
    "rope_theta": 10000.0,
    "max_position_embeddings": 32768,
}

_PROCESSOR_KEYS = {"shortest_edge", "crop", "resample", "rescale_factor", "image_mean", "image_std"}


# --------------------------------------------------------------------------------------------
# Config


def _get(data: dict[str, Any], key: str, default: Any = ..., kind: type | tuple = object) -> Any:
    """``data[key]`` checked against ``kind`` (bool is not an int here); ``default`` if absent
    (no default: the key is required). null is accepted only where the default is None."""
    if key not in data:
        if default is ...:
            raise ConfigError(f"missing key {key!r}")
        return default
    value = data[key]
    if value is None and default is None:
        return None
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if kind is not object and (
        not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds)
    ):
        names = " or ".join(k.__name__ for k in kinds)
        raise ConfigError(f"key {key!r}: expected {names}, got {type(value).__name__} {value!r}")
    return value


def _vision_config(data: dict[str, Any]) -> dict[str, Any]:
    if "vision_tower_config" in data:
        config = _get(data, "vision_tower_config", kind=dict)
        if "model_type" not in config:
            raise ConfigError("missing key 'vision_tower_config.model_type'")
        return dict(config)
    tower = _get(data, "mm_vision_tower", kind=str)
    if tower not in KNOWN_VISION_TOWERS:
        known = ", ".join(KNOWN_VISION_TOWERS)
        raise ConfigError(
            f"key 'mm_vision_tower': {tower!r} is not a known vision tower (known: {known}); "
            "add its transformers vision config as 'vision_tower_config'"
        )
    return dict(KNOWN_VISION_TOWERS[tower])


def _image_processing(
    data: dict[str, Any], vision: dict[str, Any], directory: Path | None
) -> ImageProcessingConfig:
    side = int(vision.get("image_size", 224))
    settings: dict[str, Any] = {"shortest_edge": side, "crop_size": side}
    preprocessor = directory / "preprocessor_config.json" if directory else None
    if preprocessor is not None and preprocessor.is_file():
        settings.update(_read_preprocessor(preprocessor))
    elif "image_processor" in data:
        proc = _get(data, "image_processor", kind=dict)
        unknown = sorted(set(proc) - _PROCESSOR_KEYS)
        if unknown:
            raise ConfigError(f"unknown key 'image_processor.{unknown[0]}'")
        if "shortest_edge" in proc:
            settings["shortest_edge"] = proc["shortest_edge"]
        if "crop" in proc:
            crop = proc["crop"]
            if not isinstance(crop, list) or len(crop) != 2 or crop[0] != crop[1]:
                raise ConfigError(
                    f"key 'image_processor.crop': expected [side, side], got {crop!r}"
                )
            settings["crop_size"] = crop[0]
        for key in ("rescale_factor", "image_mean", "image_std"):
            if key in proc:
                settings[key] = proc[key]
        # "resample" is written "bicubic(3)" there; only bicubic is used by CLIP.
    aspect = _get(data, "image_aspect_ratio", "square", kind=str)
    if aspect not in ("anyres", "pad", "square"):
        raise ConfigError(
            f"key 'image_aspect_ratio': {aspect!r} is not supported (anyres, pad, square)"
        )
    pinpoints = _get(data, "image_grid_pinpoints", None, kind=list)
    return ImageProcessingConfig(
        image_aspect_ratio=aspect,
        image_grid_pinpoints=pinpoints,
        **settings,
    )


def _read_preprocessor(path: Path) -> dict[str, Any]:
    try:
        proc = json.loads(path.read_text(encoding="utf-8"))
        size, crop = proc.get("size", {}), proc.get("crop_size", {})
        out: dict[str, Any] = {
            "shortest_edge": size["shortest_edge"] if isinstance(size, dict) else size,
            "crop_size": crop["height"] if isinstance(crop, dict) else crop,
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise ConfigError(f"not a CLIP preprocessor config ({err!r})", path) from None
    for key in ("image_mean", "image_std", "rescale_factor", "resample"):
        if key in proc:
            out[key] = proc[key]
    return out


def longva_config_from_dict(
    data: Any,
    *,
    directory: str | os.PathLike[str] | None = None,
    trained: bool = True,
) -> LongVideoConfig:
    """Translate a LongVA ``config.json`` (``llava_qwen``) into a `LongVideoConfig`.

    ``directory`` is where a ``preprocessor_config.json`` may be found. Raises `ConfigError`
    naming the key for a missing or mistyped field or an unsupported projector / merge type.
    """
    if not isinstance(data, dict):
        raise ConfigError("expected a JSON object at the top level")
    model_type = _get(data, "model_type", kind=str)
    if model_type not in _TEXT_MODEL_TYPES:
        raise ConfigError(
            f"key 'model_type': {model_type!r} is not a LongVA checkpoint (llava_qwen)"
        )

    text: dict[str, Any] = {"model_type": _TEXT_MODEL_TYPES[model_type]}
    for key in _REQUIRED_TEXT_KEYS:
        text[key] = _get(data, key, kind=int)
    for key in _TEXT_KEYS:
        if key in data and key not in text:
            text[key] = data[key]
    for key, value in _TEXT_DEFAULTS.items():
        text.setdefault(key, value)
    text["rope_theta"] = float(_get(data, "rope_theta", 10000.0, kind=(int, float)))
    # LlavaQwenForCausalLM.__init__ forces rope_scaling=None.

    vision = _vision_config(data)
    mm_hidden = _get(data, "mm_hidden_size", None, kind=int)
    if mm_hidden is not None and mm_hidden != vision.get("hidden_size"):
        raise ConfigError(
            f"key 'mm_hidden_size': {mm_hidden} is not the vision tower's width "
            f"{vision.get('hidden_size')}"
        )
    projector = _get(data, "mm_projector_type", "linear", kind=str)
    if projector not in ("linear", "mlp2x_gelu"):
        raise ConfigError(
            f"key 'mm_projector_type': unknown projector {projector!r} (known: linear, mlp2x_gelu)"
        )
    merge = _get(data, "mm_patch_merge_type", "flat", kind=str)
    if merge != "unires":
        raise ConfigError(
            f"key 'mm_patch_merge_type': {merge!r} is not supported (LongVA's 'unires' only)"
        )
    pool = {
        "stride": _get(data, "mm_spatial_pool_stride", 2, kind=int),
        "mode": _get(data, "mm_spatial_pool_mode", "average", kind=str),
    }
    if pool["mode"] not in ("average", "max"):
        raise ConfigError(f"key 'mm_spatial_pool_mode': {pool['mode']!r} is not average or max")
    for flag in ("mm_use_im_start_end", "mm_use_im_patch_token"):
        if _get(data, flag, False, kind=bool):
            raise ConfigError(f"key {flag!r}: image start/end/patch tokens are not supported")

    return LongVideoConfig(
        vision_tower=VisionTowerConfig(
            config=vision,
            select_layer=_get(data, "mm_vision_select_layer", -2, kind=int),
            select_feature=_get(data, "mm_vision_select_feature", "patch", kind=str),
        ),
        language_model=text,
        projector=projector,
        compressor=CompressorConfig(name="longva", params=pool),
        image_processing=_image_processing(
            data, vision, Path(directory) if directory is not None else None
        ),
        chat_template="qwen_1_5",
        trained=trained,
        name="longva",
    )


# --------------------------------------------------------------------------------------------
# Weights


def longva_key_mapping(names: Sequence[str], model: LongVideoLM) -> dict[str, str]:
    """Checkpoint key -> model key for the LLaVA layout (README section 8a)."""
    own = model.state_dict()
    # transformers 4.x's CLIPVisionModel had a `vision_model.` level, 5.x has none.
    tower = (
        "vision_tower.vision_model."
        if any(k.startswith("vision_tower.vision_model.") for k in own)
        else "vision_tower."
    )
    prefixes = (
        ("model.mm_projector.", "projector."),
        ("model.vision_tower.vision_tower.vision_model.", tower),
        ("model.", "language_model.model."),
        ("lm_head.", "language_model.lm_head."),
    )
    mapping = {}
    for name in names:
        for old, new in prefixes:
            if name.startswith(old):
                mapping[name] = new + name[len(old) :]
                break
    return mapping


def _stale_buffer(name: str) -> bool:
    """Buffers older transformers saved that are computed, not learnt."""
    return name.endswith("rotary_emb.inv_freq") or name.endswith("embeddings.position_ids")


def load_longva_checkpoint(
    path: str | os.PathLike[str],
    weights: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    *,
    allow_pickle: bool = False,
    trained: bool = True,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> LongVideoLM:
    """A `LongVideoLM` with the weights of a LongVA (``LlavaQwenForCausalLM``) checkpoint.

    Args:
        path: the checkpoint directory (``config.json`` + safetensors, sharded or not, +
            tokenizer files), or a LongVA ``config.json`` file itself.
        weights: explicit weight file(s); by default those of the config's directory.
        allow_pickle: accept ``pytorch_model*.bin`` (read with ``torch.load(weights_only=True)``).
        trained: the ``trained`` flag of the result: True for a released checkpoint, False for
            test stand-ins with random weights (the CLI then says answers are noise).
        device, dtype: where and in which dtype to build the weights.

    Raises:
        ConfigError: the config file is unreadable or malformed (names the file and the key).
        CheckpointError: weights missing, unexpected or mis-shaped (all listed), or pickle-only.
    """
    path = Path(path)
    config_path = path / CONFIG_NAME if path.is_dir() else path
    directory = config_path.parent
    try:
        data = json.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("no such file (expected a LongVA config.json)", config_path) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read: {err}", config_path) from None
    except json.JSONDecodeError as err:
        raise ConfigError(
            f"not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})", config_path
        ) from None
    try:
        config = longva_config_from_dict(data, directory=directory, trained=trained)
    except ConfigError as err:
        raise ConfigError(err.problem, err.path or config_path) from None

    if weights is None:
        source = CheckpointTensors.from_directory(directory, allow_pickle=allow_pickle)
    else:
        files = [weights] if isinstance(weights, (str, os.PathLike)) else list(weights)
        source = CheckpointTensors.from_files(files, allow_pickle=allow_pickle)

    model = LongVideoLM.build_empty(config, device=device, dtype=dtype)
    load_checked_state(
        model, source, rename=longva_key_mapping(list(source), model), ignore=_stale_buffer
    )
    if path.is_dir():
        model.tokenizer = load_tokenizer(directory)
    return model.eval()
