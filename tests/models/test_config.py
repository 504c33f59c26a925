"""`LongVideoConfig`: round trip through config.json, and one ConfigError per malformed case."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from longvid.errors import ConfigError, LongvidError
from longvid.models.config import (
    CompressorConfig,
    ImageProcessingConfig,
    LongVideoConfig,
    VisionTowerConfig,
)
from longvid.models.registry import get_config


@pytest.mark.parametrize("name", ["tiny-longva", "longva-7b"])
def test_round_trip_through_config_json(tmp_path: Path, name: str) -> None:
    config = get_config(name)
    path = config.save(tmp_path)
    assert path == tmp_path / "config.json"
    loaded = LongVideoConfig.load(tmp_path)
    assert loaded == config
    assert LongVideoConfig.load(path) == config  # the file itself works too
    assert LongVideoConfig.from_dict(config.to_dict()) == config
    data = json.loads(path.read_text())
    assert data["model_type"] == "longvid" and data["projector"] == "mlp2x_gelu"


def test_derived_values_of_longva_7b() -> None:
    config = get_config("longva-7b")
    assert config.context_length == 224000
    assert config.rope_theta == 1e9
    assert config.patches_per_side == 24
    assert len(config.image_processing.image_grid_pinpoints) == 200
    assert (336, 336) not in config.image_processing.image_grid_pinpoints
    assert config.trained is False


def test_defaults_and_programmatic_construction() -> None:
    config = LongVideoConfig(
        vision_tower=VisionTowerConfig(config={"model_type": "siglip_vision_model"}),
        language_model={"model_type": "llama", "num_hidden_layers": 2},
        image_processing=ImageProcessingConfig(image_aspect_ratio="pad"),
    )
    assert config.compressor == CompressorConfig("none", {})
    assert config.image_token == "<image>" and config.image_token_index == -200
    assert not config.vision_tower.has_cls_token
    with pytest.raises(ConfigError, match="projector"):
        LongVideoConfig(
            vision_tower=VisionTowerConfig(config={"model_type": "clip_vision_model"}),
            language_model={"model_type": "qwen2"},
            projector="mlp3x",  # type: ignore[arg-type]
        )


def _edit(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        data = data[part]
    if value is _DELETE:
        del data[last]
    else:
        data[last] = value


_DELETE = object()

MALFORMED = [
    # (dotted key to change, new value, text the message must contain)
    ("projector", _DELETE, "missing key 'projector'"),
    ("vision_tower", _DELETE, "missing key 'vision_tower'"),
    ("language_model", _DELETE, "missing key 'language_model'"),
    ("vision_tower.config", _DELETE, "missing key 'vision_tower.config'"),
    ("vision_tower.config.model_type", _DELETE, "missing key 'vision_tower.config.model_type'"),
    ("language_model.model_type", _DELETE, "missing key 'language_model.model_type'"),
    ("model_type", _DELETE, "missing key 'model_type'"),
    ("projector", "mlp3x_gelu", "key 'projector': unknown value 'mlp3x_gelu'"),
    ("projector", 2, "key 'projector': expected a string"),
    ("vision_tower.config.model_type", "eva_vision", "'vision_tower.config.model_type'"),
    ("language_model.model_type", "gpt2", "'language_model.model_type': unknown value"),
    ("vision_tower.select_layer", "-2", "'vision_tower.select_layer': expected an integer"),
    ("vision_tower.select_layer", True, "'vision_tower.select_layer': expected an integer"),
    ("vision_tower.select_layer", -9, "'vision_tower.select_layer': -9 is outside"),
    ("vision_tower.select_feature", "cls", "'vision_tower.select_feature': unknown value"),
    ("trained", "yes", "key 'trained': expected true or false"),
    ("chat_template", None, "key 'chat_template': expected a string"),
    ("image_token_index", 1.5, "key 'image_token_index': expected an integer"),
    ("compressor.params", [], "key 'compressor.params': expected an object"),
    ("compressor.name", "", "key 'compressor.name'"),
    ("image_processing.image_mean", [0.5, 0.5], "key 'image_processing.image_mean'"),
    ("image_processing.crop_size", 0, "key 'image_processing.crop_size': must be positive"),
    ("image_processing.image_grid_pinpoints", [[56]], "'image_processing.image_grid_pinpoints[0]'"),
    ("image_processing.image_aspect_ratio", "crop", "'image_processing.image_aspect_ratio'"),
    ("language_model.hidden_size", "32", "key 'language_model': transformers refused"),
    ("vision_tower.config.patch_size", "14", "key 'vision_tower.config': transformers refused"),
    ("projecter", "linear", "unknown key 'projecter'"),
    ("format_version", 2, "key 'format_version': 2 is not supported"),
    ("model_type", "llava_qwen", "load_longva_checkpoint"),
]


@pytest.mark.parametrize(("key", "value", "message"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_config_names_file_and_key(
    tmp_path: Path, key: str, value: Any, message: str
) -> None:
    data = get_config("tiny-longva").to_dict()
    _edit(data, key, value)
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError) as info:
        LongVideoConfig.load(tmp_path)
    text = str(info.value)
    assert text.startswith(str(tmp_path / "config.json") + ": ")
    assert message in text
    assert isinstance(info.value, LongvidError)


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "not valid JSON (line 1"), ("[1, 2]", "expected an object"), ("", "not valid")],
)
def test_unparsable_config(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "config.json").write_text(content)
    with pytest.raises(ConfigError, match="config.json") as info:
        LongVideoConfig.load(tmp_path)
    assert message in str(info.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        LongVideoConfig.load(tmp_path)
