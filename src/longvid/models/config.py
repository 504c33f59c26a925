"""The configuration of a long-video LM: vision tower, compressor, projector, language model.

One `LongVideoConfig` describes a whole LLaVA-style model (Liu et al., "Visual Instruction
Tuning", 2023; the LongVA variant: Zhang et al., "Long Context Transfer from Language to
Vision", 2024, sections 3-4) and serialises to one readable ``config.json``:

.. code-block:: json

    {"model_type": "longvid", "format_version": 1,
     "vision_tower": {"config": {"model_type": "clip_vision_model", ...},
                      "select_layer": -2, "select_feature": "patch"},
     "compressor": {"name": "longva", "params": {"stride": 2, "mode": "average"}},
     "projector": "mlp2x_gelu",
     "language_model": {"model_type": "qwen2", "rope_theta": 1e9, ...},
     "image_processing": {"image_aspect_ratio": "anyres", ...},
     "chat_template": "qwen_1_5", "image_token": "<image>", "image_token_index": -200,
     "trained": false, "name": "tiny-longva"}

The vision tower and the language model are *transformers* configs kept as plain dicts (only
the keys that differ from transformers' defaults need to be there); `vision_config()` and
`text_config()` turn them into transformers config objects, which is also where transformers
checks their fields. Everything else is checked here, so a malformed file fails at load time
with a `ConfigError` that names the file and the key (``"config.json: key 'projector': ..."``)
instead of failing later inside a model constructor.

``trained`` is True only for weights that learnt something (a released checkpoint); random
initialisations from the registry leave it False and the CLI says that their answers are noise.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from longvid.encoders.anyres import CLIP_MEAN, CLIP_STD
from longvid.errors import ConfigError

CONFIG_NAME = "config.json"
MODEL_TYPE = "longvid"
FORMAT_VERSION = 1

PROJECTORS = ("linear", "mlp2x_gelu")
SELECT_FEATURES = ("patch", "cls_patch")
IMAGE_ASPECT_RATIOS = ("anyres", "pad", "square")

VISION_MODEL_TYPES: dict[str, bool] = {
    # model_type -> whether the tower prepends a CLS token (dropped by select_feature="patch").
    "clip_vision_model": True,
    "siglip_vision_model": False,
    "resnet": False,  # a convolutional tower; its last feature map is read as row-major tokens
}
TEXT_MODEL_TYPES = ("qwen2", "llama", "mistral")


ProjectorType = Literal["linear", "mlp2x_gelu"]
SelectFeature = Literal["patch", "cls_patch"]
ImageAspectRatio = Literal["anyres", "pad", "square"]


# --------------------------------------------------------------------------------------------
# Field checks (shared by construction in code and by `load`)


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _expect_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"key {key!r}: expected an integer, got {_type_name(value)} {value!r}")
    return value


def _expect_number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(
            f"key {key!r}: expected a finite number, got {_type_name(value)} {value!r}"
        )
    return float(value)


def _expect_bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"key {key!r}: expected true or false, got {_type_name(value)} {value!r}")
    return value


def _expect_str(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"key {key!r}: expected a string, got {_type_name(value)} {value!r}")
    return value


def _expect_dict(value: Any, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"key {key!r}: expected an object, got {_type_name(value)}")
    return value


def _expect_choice(value: Any, key: str, choices: tuple[str, ...] | list[str]) -> str:
    _expect_str(value, key)
    if value not in choices:
        known = ", ".join(repr(c) for c in choices)
        raise ConfigError(f"key {key!r}: unknown value {value!r} (known: {known})")
    return value


def _expect_triple(value: Any, key: str) -> tuple[float, float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise ConfigError(f"key {key!r}: expected 3 numbers (one per RGB channel), got {value!r}")
    return tuple(_expect_number(v, f"{key}[{i}]") for i, v in enumerate(value))  # type: ignore[return-value]


def _require(data: dict[str, Any], name: str, prefix: str) -> Any:
    if name not in data:
        raise ConfigError(f"missing key {prefix + name!r}")
    return data[name]


def _reject_unknown(data: dict[str, Any], known: set[str], prefix: str) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"unknown key {prefix + unknown[0]!r} (known: {', '.join(sorted(known))})"
        )


def _transformers_config(data: dict[str, Any], key: str) -> Any:
    """Build the transformers config object for a tower / LM dict (transformers checks types)."""
    from transformers import AutoConfig

    kwargs = dict(data)
    model_type = kwargs.pop("model_type")
    try:
        return AutoConfig.for_model(model_type, **kwargs)
    except Exception as err:  # transformers raises ValueError / TypeError / strict-dataclass errors
        detail = " ".join(str(err).split())
        raise ConfigError(
            f"key {key!r}: transformers refused this {model_type} config: {detail}"
        ) from None


def _check_conv_tower(config: dict[str, Any]) -> None:
    """A ``resnet`` tower dict states its token grid as a ViT's would, consistently."""
    prefix = "vision_tower.config."
    sizes = _require(config, "hidden_sizes", prefix)
    for key in ("image_size", "patch_size", "hidden_size"):
        if _expect_int(_require(config, key, prefix), prefix + key) < 1:
            raise ConfigError(f"key '{prefix}{key}': must be >= 1")
    if not isinstance(sizes, list | tuple) or not sizes or config["hidden_size"] != sizes[-1]:
        raise ConfigError(
            f"key '{prefix}hidden_size': must equal the last of hidden_sizes ({sizes!r}), "
            f"got {config['hidden_size']!r}"
        )
    # The stem halves twice (conv + max-pool), then every stage but the first halves again
    # (the first too with downsample_in_first_stage).
    halvings = 2 + len(sizes) - 1 + int(bool(config.get("downsample_in_first_stage", False)))
    if config["patch_size"] != 2**halvings:
        raise ConfigError(
            f"key '{prefix}patch_size': this ResNet's output stride is {2**halvings}, "
            f"got {config['patch_size']!r}"
        )
    if config["image_size"] % config["patch_size"]:
        raise ConfigError(
            f"key '{prefix}image_size': must be a multiple of patch_size "
            f"({config['patch_size']}), got {config['image_size']!r}"
        )


# --------------------------------------------------------------------------------------------
# The dataclasses


@dataclass
class VisionTowerConfig:
    """The vision encoder: a transformers vision config plus which features to take from it.

    ``config`` is a transformers config as a dict (``model_type`` is ``clip_vision_model``,
    ``siglip_vision_model`` or ``resnet``). A ``resnet`` tower's feature maps ``(C, H, W)`` are
    read as ``H*W`` row-major tokens, so its dict also names what a ViT's config would:
    ``image_size``, ``patch_size`` (the output stride) and ``hidden_size`` (the last stage's
    width). ``select_layer`` indexes ``hidden_states`` (index 0 is the
    embedding output, so -2 is the second-to-last layer, LLaVA's and LongVA's choice).
    ``select_feature="patch"`` drops the CLS token where the tower has one; ``"cls_patch"``
    keeps it. ``btadapter`` (``{"depth": ..., "max_frames": ...}``) adds PPLLaVA's BT-Adapter
    temporal branch to a CLIP tower (`longvid.encoders.btadapter`).
    """

    config: dict[str, Any]
    select_layer: int = -2
    select_feature: SelectFeature = "patch"
    btadapter: dict[str, int] | None = None

    def __post_init__(self) -> None:
        if self.btadapter is not None:
            adapter = _expect_dict(self.btadapter, "vision_tower.btadapter")
            _reject_unknown(adapter, {"depth", "max_frames"}, "vision_tower.btadapter.")
            for key in ("depth", "max_frames"):
                value = _expect_int(_require(adapter, key, "vision_tower.btadapter."), key)
                if value < 1:
                    raise ConfigError(f"key 'vision_tower.btadapter.{key}': must be >= 1")
        config = _expect_dict(self.config, "vision_tower.config")
        model_type = _require(config, "model_type", "vision_tower.config.")
        _expect_choice(model_type, "vision_tower.config.model_type", list(VISION_MODEL_TYPES))
        _expect_int(self.select_layer, "vision_tower.select_layer")
        _expect_choice(self.select_feature, "vision_tower.select_feature", SELECT_FEATURES)
        if model_type == "resnet":
            _check_conv_tower(config)
            if self.select_layer not in (-1, len(config["hidden_sizes"])):
                raise ConfigError(
                    "key 'vision_tower.select_layer': a resnet tower's tokens are its last "
                    f"stage's feature map (-1), got {self.select_layer}"
                )
        if self.select_feature == "cls_patch" and not VISION_MODEL_TYPES[model_type]:
            raise ConfigError(
                f"key 'vision_tower.select_feature': 'cls_patch' needs a CLS token, "
                f"and {model_type} has none"
            )

    def transformers_config(self) -> Any:
        """The tower's transformers config object (e.g. ``CLIPVisionConfig``)."""
        return _transformers_config(self.config, "vision_tower.config")

    @property
    def has_cls_token(self) -> bool:
        """Whether the tower's output starts with a CLS token."""
        return VISION_MODEL_TYPES[self.config["model_type"]]


@dataclass
class CompressorConfig:
    """Which visual-token compressor runs between projector and prompt, and its parameters.

    ``name`` is a key of the compressor registry (``none``, ``longva``, ...); ``params`` are
    passed to that compressor's own config dataclass, which checks them.
    """

    name: str = "none"
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _expect_str(self.name, "compressor.name"):
            raise ConfigError("key 'compressor.name': must not be empty")
        _expect_dict(self.params, "compressor.params")


@dataclass
class ImageProcessingConfig:
    """How images and frames become pixel values (the CLIP preprocessing and LLaVA's modes).

    ``image_aspect_ratio``: ``"anyres"`` (LLaVA-NeXT / LongVA grid of crops chosen from
    ``image_grid_pinpoints``, (W, H) pairs in pixels), ``"pad"`` (pad to a square with the mean
    colour, then preprocess) or ``"square"`` (the processor alone: shortest-edge resize and
    centre crop). Video frames always take the processor alone (README section 8b).
    """

    image_aspect_ratio: ImageAspectRatio = "square"
    image_grid_pinpoints: list[tuple[int, int]] | None = None
    shortest_edge: int = 336
    crop_size: int = 336
    image_mean: tuple[float, float, float] = CLIP_MEAN
    image_std: tuple[float, float, float] = CLIP_STD
    rescale_factor: float = 1 / 255
    resample: int = 3  # PIL bicubic

    def __post_init__(self) -> None:
        p = "image_processing."
        _expect_choice(self.image_aspect_ratio, p + "image_aspect_ratio", IMAGE_ASPECT_RATIOS)
        for name in ("shortest_edge", "crop_size", "resample"):
            value = _expect_int(getattr(self, name), p + name)
            if name != "resample" and value < 1:
                raise ConfigError(f"key {p + name!r}: must be positive, got {value}")
        self.image_mean = _expect_triple(self.image_mean, p + "image_mean")
        self.image_std = _expect_triple(self.image_std, p + "image_std")
        self.rescale_factor = _expect_number(self.rescale_factor, p + "rescale_factor")
        if self.image_grid_pinpoints is not None:
            key = p + "image_grid_pinpoints"
            if not isinstance(self.image_grid_pinpoints, (list, tuple)):
                raise ConfigError(f"key {key!r}: expected a list of [width, height] pairs")
            pairs = []
            for i, pair in enumerate(self.image_grid_pinpoints):
                if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                    raise ConfigError(f"key '{key}[{i}]': expected [width, height], got {pair!r}")
                pairs.append(
                    (_expect_int(pair[0], f"{key}[{i}]"), _expect_int(pair[1], f"{key}[{i}]"))
                )
            self.image_grid_pinpoints = pairs
        if self.image_aspect_ratio == "anyres" and not self.image_grid_pinpoints:
            raise ConfigError(
                f"key '{p}image_grid_pinpoints': 'anyres' needs at least one pinpoint"
            )

    def processor_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for transformers' ``CLIPImageProcessor`` with these settings."""
        return {
            "size": {"shortest_edge": self.shortest_edge},
            "crop_size": {"height": self.crop_size, "width": self.crop_size},
            "do_resize": True,
            "do_center_crop": True,
            "do_rescale": True,
            "do_normalize": True,
            "do_convert_rgb": True,
            "resample": self.resample,
            "rescale_factor": self.rescale_factor,
            "image_mean": list(self.image_mean),
            "image_std": list(self.image_std),
        }

    def image_processor(self) -> Any:
        """transformers' PIL-backed ``CLIPImageProcessorPil`` with these settings (the slow
        path the reference used; it reproduces the reference pixels exactly)."""
        from transformers import CLIPImageProcessorPil

        return CLIPImageProcessorPil(**self.processor_kwargs())


@dataclass
class LongVideoConfig:
    """A long-video LM: vision tower -> projector -> compressor -> prompt -> language model.

    ``language_model`` is a transformers decoder config as a dict (``model_type`` qwen2, llama or
    mistral; ``rope_theta``, ``max_position_embeddings``, ...). ``chat_template`` names a
    template of `longvid.prompting`; ``image_token`` is the placeholder a prompt writes where the
    visual tokens go, and ``image_token_index`` the id it becomes in ``input_ids`` (LLaVA's -200,
    outside every vocabulary). ``trained`` marks weights that learnt something.

    ``language_model_weights`` names where the language model's weights come from when the
    checkpoint does not store them (`longvid.models.base_llm.resolve_language_model`: a
    registered offline model such as ``"smollm2-135m-instruct"``, or a directory); the
    checkpoint then holds only the parts the project trained, plus an optional LoRA adapter.
    ``timestamps`` says the model was trained with a time mark ("frame at 12.5 s:") before
    each frame, so its prompts carry them by default.
    """

    vision_tower: VisionTowerConfig
    language_model: dict[str, Any]
    projector: ProjectorType = "mlp2x_gelu"
    compressor: CompressorConfig = field(default_factory=CompressorConfig)
    image_processing: ImageProcessingConfig = field(default_factory=ImageProcessingConfig)
    chat_template: str = "qwen_1_5"
    image_token: str = "<image>"
    image_token_index: int = -200
    trained: bool = False
    name: str | None = None
    language_model_weights: str | None = None
    timestamps: bool = False

    def __post_init__(self) -> None:
        for attr, cls in (
            ("vision_tower", VisionTowerConfig),
            ("compressor", CompressorConfig),
            ("image_processing", ImageProcessingConfig),
        ):
            if not isinstance(getattr(self, attr), cls):
                raise ConfigError(f"key {attr!r}: expected a {cls.__name__}")
        lm = _expect_dict(self.language_model, "language_model")
        _expect_choice(
            _require(lm, "model_type", "language_model."),
            "language_model.model_type",
            TEXT_MODEL_TYPES,
        )
        _expect_choice(self.projector, "projector", PROJECTORS)
        if not _expect_str(self.chat_template, "chat_template"):
            raise ConfigError("key 'chat_template': must not be empty")
        if not _expect_str(self.image_token, "image_token"):
            raise ConfigError("key 'image_token': must not be empty")
        _expect_int(self.image_token_index, "image_token_index")
        _expect_bool(self.trained, "trained")
        _expect_bool(self.timestamps, "timestamps")
        if self.name is not None:
            _expect_str(self.name, "name")
        if self.language_model_weights is not None and not _expect_str(
            self.language_model_weights, "language_model_weights"
        ):
            raise ConfigError("key 'language_model_weights': must not be empty")
        # Let transformers check both sub-configs now, and check what depends on them.
        vision = self.vision_config()
        layers = len(vision.depths) if vision.model_type == "resnet" else vision.num_hidden_layers
        n_states = layers + 1
        if not -n_states <= self.vision_tower.select_layer < n_states:
            raise ConfigError(
                f"key 'vision_tower.select_layer': {self.vision_tower.select_layer} is outside "
                f"hidden_states of a {vision.num_hidden_layers}-layer tower "
                f"({-n_states}..{n_states - 1})"
            )
        self.text_config()

    # -- transformers views ------------------------------------------------------------------

    def vision_config(self) -> Any:
        """The vision tower's transformers config object (e.g. ``CLIPVisionConfig``)."""
        return self.vision_tower.transformers_config()

    def text_config(self) -> Any:
        """The language model's transformers config object (e.g. ``Qwen2Config``)."""
        return _transformers_config(self.language_model, "language_model")

    @property
    def context_length(self) -> int:
        """The language model's context window (``max_position_embeddings``)."""
        return int(self.text_config().max_position_embeddings)

    @property
    def rope_theta(self) -> float:
        """The RoPE base of the language model (LongVA: 1e9, stock Qwen2: 1e6)."""
        text = self.text_config()
        params = getattr(text, "rope_parameters", None) or {}
        return float(params.get("rope_theta", getattr(text, "rope_theta", 10000.0)))

    @property
    def patches_per_side(self) -> int:
        """Patch tokens per side of one crop (CLIP-L/336: 24; the tiny parity tower: 4)."""
        vision = self.vision_config()
        return vision.image_size // vision.patch_size

    # -- (de)serialisation -------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists); `from_dict` inverts it exactly."""
        data = {"model_type": MODEL_TYPE, "format_version": FORMAT_VERSION, **asdict(self)}
        return json.loads(json.dumps(data))

    @classmethod
    def from_dict(cls, data: Any, path: str | os.PathLike[str] | None = None) -> LongVideoConfig:
        """Check ``data`` key by key and build the config; errors name ``path`` and the key."""
        try:
            return cls._from_dict(data)
        except ConfigError as err:
            raise ConfigError(err.problem, path) from None

    @classmethod
    def _from_dict(cls, data: Any) -> LongVideoConfig:
        data = _expect_dict(data, "<top level>")
        model_type = _require(data, "model_type", "")
        if model_type != MODEL_TYPE:
            hint = (
                " (a released LongVA checkpoint: load it with "
                "longvid.models.longva_checkpoint.load_longva_checkpoint)"
                if model_type == "llava_qwen"
                else ""
            )
            raise ConfigError(f"key 'model_type': {model_type!r} is not a longvid config{hint}")
        version = _expect_int(_require(data, "format_version", ""), "format_version")
        if version != FORMAT_VERSION:
            raise ConfigError(
                f"key 'format_version': {version} is not supported (this longvid reads "
                f"{FORMAT_VERSION})"
            )
        top = {
            "model_type",
            "format_version",
            "vision_tower",
            "language_model",
            "projector",
            "compressor",
            "image_processing",
            "chat_template",
            "image_token",
            "image_token_index",
            "trained",
            "name",
            "language_model_weights",
            "timestamps",
        }
        _reject_unknown(data, top, "")

        vt = _expect_dict(_require(data, "vision_tower", ""), "vision_tower")
        _reject_unknown(
            vt, {"config", "select_layer", "select_feature", "btadapter"}, "vision_tower."
        )
        vision_tower = VisionTowerConfig(
            config=_require(vt, "config", "vision_tower."),
            **{k: vt[k] for k in ("select_layer", "select_feature", "btadapter") if k in vt},
        )

        kwargs: dict[str, Any] = {
            "vision_tower": vision_tower,
            "language_model": _require(data, "language_model", ""),
            "projector": _require(data, "projector", ""),
        }
        if "compressor" in data:
            comp = _expect_dict(data["compressor"], "compressor")
            _reject_unknown(comp, {"name", "params"}, "compressor.")
            kwargs["compressor"] = CompressorConfig(**comp)
        if "image_processing" in data:
            proc = _expect_dict(data["image_processing"], "image_processing")
            _reject_unknown(
                proc, set(ImageProcessingConfig.__dataclass_fields__), "image_processing."
            )
            kwargs["image_processing"] = ImageProcessingConfig(**proc)
        optional = ("chat_template", "image_token", "image_token_index", "trained", "name")
        for name in (*optional, "language_model_weights", "timestamps"):
            if name in data:
                kwargs[name] = data[name]
        return cls(**kwargs)

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``config.json`` into ``directory`` (created if needed); returns its path."""
        path = Path(directory) / CONFIG_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, directory_or_file: str | os.PathLike[str]) -> LongVideoConfig:
        """Read ``config.json`` (a directory holding it, or the file itself).

        Raises `ConfigError` naming the file and the key for a missing file, bad JSON, a
        missing key, a wrong type, or an unknown projector / model_type / feature choice.
        """
        path = Path(directory_or_file)
        if path.is_dir():
            path = path / CONFIG_NAME
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError("no such file (expected a longvid config.json)", path) from None
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"cannot read: {err}", path) from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(
                f"not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})", path
            ) from None
        return cls.from_dict(data, path)
