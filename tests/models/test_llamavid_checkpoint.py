"""Loading the released LLaMA-VID layout; the LLaMA-VID registry entries."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from longvid.errors import CheckpointError
from longvid.models.llamavid_checkpoint import llamavid_name, load_llamavid_weights
from longvid.models.registry import create_model, get_config

PARITY = Path(__file__).resolve().parents[2].parent / "shared" / "parity" / "llamavid"
WEIGHTS = PARITY / "tiny_weights.safetensors"


def test_names_map_one_to_one() -> None:
    assert llamavid_name("model.vlm_att_query") == "compressor.vlm_att_query"
    assert llamavid_name("model.mm_projector.2.bias") == "projector.2.bias"
    assert llamavid_name("model.layers.3.mlp.up_proj.weight") == (
        "language_model.model.layers.3.mlp.up_proj.weight"
    )
    assert llamavid_name("lm_head.weight") == "language_model.lm_head.weight"
    assert llamavid_name("model.vlm_att_encoder.bert.embeddings.position_ids") is None
    assert llamavid_name("model.vision_tower.vision_tower.blocks.0.attn.qkv.weight") is None


def test_tiny_weights_load_into_tiny_llamavid() -> None:
    model = create_model("tiny-llamavid")
    stored = load_file(WEIGHTS)
    with pytest.raises(CheckpointError, match="missing: language_model.model.layers"):
        load_llamavid_weights(model, WEIGHTS)  # the tiny file has no LLaMA layers
    report = load_llamavid_weights(
        model, WEIGHTS, allow_missing=lambda n: n.startswith("language_model.")
    )
    assert len(report.loaded) == len(stored)
    state = model.state_dict()
    for key, value in stored.items():
        assert torch.equal(state[llamavid_name(key)], value), key
    assert not any(
        n.startswith("compressor.") or n.startswith("projector.") for n in report.missing
    )


def test_position_ids_are_skipped_and_bad_files_refused(tmp_path: Path) -> None:
    stored = load_file(WEIGHTS)
    extra = dict(stored)
    extra["model.vlm_att_encoder.bert.embeddings.position_ids"] = torch.arange(256)[None]
    save_file(extra, tmp_path / "ok.safetensors")
    report = load_llamavid_weights(
        create_model("tiny-llamavid"), tmp_path / "ok.safetensors", allow_missing=lambda n: True
    )
    assert report.skipped == ["model.vlm_att_encoder.bert.embeddings.position_ids"]
    renamed = {
        k.replace("model.vlm_att_query", "model.vlm_att_queries"): v for k, v in stored.items()
    }
    save_file(renamed, tmp_path / "renamed.safetensors")
    with pytest.raises(CheckpointError, match="vlm_att_query"):
        load_llamavid_weights(create_model("tiny-llamavid"), tmp_path / "renamed.safetensors")
    bad = dict(stored)
    bad["model.vlm_att_ln.weight"] = torch.ones(25)
    save_file(bad, tmp_path / "bad.safetensors")
    with pytest.raises(CheckpointError, match="mis-shaped: model.vlm_att_ln.weight"):
        load_llamavid_weights(
            create_model("tiny-llamavid"),
            tmp_path / "bad.safetensors",
            allow_missing=lambda n: True,
        )


def test_released_long_video_shapes_on_meta() -> None:
    config = get_config("llama-vid-7b-full-224-long-video")
    assert config.context_length == 65536
    text = config.text_config()
    assert text.rope_parameters["rope_type"] == "linear" and text.rope_parameters["factor"] == 16.0
    with torch.device("meta"):
        model = create_model("llama-vid-7b-full-224-long-video")

    def count(module: torch.nn.Module) -> int:
        return sum(p.numel() for p in module.parameters())

    assert count(model.language_model) == 6_738_415_616  # LLaMA-7B / Vicuna-7B
    assert model.vision_tower.config.hidden_size == 1408
    assert model.vision_tower.config.num_hidden_layers == 39
    c = model.compressor
    assert tuple(c.vlm_att_query.shape) == (1, 32, 768)
    assert len(c.vlm_att_encoder.bert.encoder.layer) == 12
    layer0 = c.vlm_att_encoder.bert.encoder.layer[0]
    assert tuple(layer0.crossattention.self.key.weight.shape) == (768, 1408)
    assert not hasattr(c.vlm_att_encoder.bert.encoder.layer[1], "crossattention")
    assert tuple(c.vlm_att_encoder.bert.embeddings.word_embeddings.weight.shape) == (30523, 768)
    assert tuple(c.vlm_att_val_projector.weight.shape) == (4096, 1408)
    assert count(model.projector) == 1408 * 4096 + 4096 + 4096 * 4096 + 4096
    assert c.config.long_video and c.config.compress_type == "mean"
