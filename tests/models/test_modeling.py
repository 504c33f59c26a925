"""`LongVideoLM`: encode path, save/load round trip, and every bad checkpoint case."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from longvid.errors import CheckpointError, ConfigError
from longvid.models.config import LongVideoConfig, VisionTowerConfig
from longvid.models.modeling import LongVideoLM
from longvid.models.registry import create_model, get_config

IDS = torch.tensor([[5, 17, 301, 2, 9, 44], [7, 7, 100, 511, 0, 0]])
MASK = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]], dtype=torch.bool)


@pytest.fixture(scope="module")
def tiny() -> LongVideoLM:
    torch.manual_seed(1234)
    return create_model("tiny-longva").eval()


@pytest.fixture(scope="module")
def saved(tiny: LongVideoLM, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny.save_pretrained(tmp_path_factory.mktemp("tiny"))


@torch.no_grad()
def _logits(model: LongVideoLM) -> torch.Tensor:
    return model(input_ids=IDS, attention_mask=MASK).logits


# -- encode path ---------------------------------------------------------------------------


def test_encode_images_chunks_and_reports_progress(tiny: LongVideoLM) -> None:
    pixels = torch.randn(5, 3, 56, 56)
    calls: list[tuple[int, int]] = []
    chunked = tiny.encode_images(pixels, chunk_size=2, progress=lambda d, t: calls.append((d, t)))
    whole = tiny.encode_images(pixels, chunk_size=64)
    assert calls == [(2, 5), (4, 5), (5, 5)]
    assert chunked.shape == (5, 16, 16)
    torch.testing.assert_close(chunked, whole, atol=1e-6, rtol=0)
    assert not chunked.requires_grad
    assert tiny.encode_images(pixels[:0]).shape == (0, 16, 16)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        tiny.encode_images(pixels[0])


def test_select_layer_and_features(tiny: LongVideoLM) -> None:
    pixels = torch.randn(2, 3, 56, 56)
    out = tiny.vision_tower(pixel_values=pixels, output_hidden_states=True)
    torch.testing.assert_close(tiny.encode_images(pixels), out.hidden_states[-2][:, 1:])
    config = get_config("tiny-longva")
    config.vision_tower.select_feature = "cls_patch"
    with_cls = LongVideoLM(config)
    assert with_cls.encode_images(pixels).shape == (2, 17, 16)
    assert with_cls.tokens_per_image == 17


def test_siglip_tower_and_linear_projector() -> None:
    config = get_config("tiny-longva")
    config.vision_tower = VisionTowerConfig(
        config={
            "model_type": "siglip_vision_model",
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 56,
            "patch_size": 14,
        },
        select_layer=-1,
    )
    config.projector = "linear"
    model = LongVideoLM(config)
    assert type(model.vision_tower).__name__ == "SiglipVisionModel"
    assert isinstance(model.projector, torch.nn.Linear)
    features = model.encode_images(torch.randn(1, 3, 56, 56))
    assert features.shape == (1, 16, 16)  # SigLIP has no CLS token: nothing dropped
    assert model.project(features).shape == (1, 16, 32)


# -- round trip ----------------------------------------------------------------------------


def test_round_trip_gives_identical_logits(tiny: LongVideoLM, saved: Path) -> None:
    assert sorted(p.name for p in saved.iterdir()) == ["config.json", "model.safetensors"]
    loaded = LongVideoLM.from_pretrained(saved)
    assert loaded.config == tiny.config
    assert torch.equal(_logits(loaded), _logits(tiny))
    pixels = torch.randn(2, 3, 56, 56)
    assert torch.equal(loaded.encode_images(pixels), tiny.encode_images(pixels))
    assert loaded.tokenizer is None


def test_round_trip_with_tied_embeddings_and_a_tokenizer(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    config = get_config("tiny-longva")
    config.language_model["tie_word_embeddings"] = True
    model = LongVideoLM(config).eval()
    lm = model.language_model
    assert lm.lm_head.weight is lm.get_input_embeddings().weight
    vocab = {"[UNK]": 0, "<image>": 1, "hello": 2, "world": 3}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    model.tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]")
    model.save_pretrained(tmp_path)
    stored = load_file(tmp_path / "model.safetensors")
    assert "language_model.lm_head.weight" not in stored  # tied: stored once
    loaded = LongVideoLM.from_pretrained(tmp_path)
    lm = loaded.language_model
    assert lm.lm_head.weight is lm.get_input_embeddings().weight
    assert torch.equal(_logits(loaded), _logits(model))
    assert loaded.tokenizer("hello world")["input_ids"] == [2, 3]


def test_from_pretrained_in_bfloat16_keeps_rope_in_float32(saved: Path) -> None:
    model = LongVideoLM.from_pretrained(saved, dtype=torch.bfloat16)
    assert model.dtype == torch.bfloat16 and model.projector[0].weight.dtype == torch.bfloat16
    assert model.language_model.model.rotary_emb.inv_freq.dtype == torch.float32
    assert torch.get_default_dtype() == torch.float32  # restored


# -- bad checkpoints -----------------------------------------------------------------------


def _copy_with(saved: Path, target: Path, edit) -> Path:
    target.mkdir()
    (target / "config.json").write_text((saved / "config.json").read_text())
    tensors = load_file(saved / "model.safetensors")
    edit(tensors)
    save_file(tensors, target / "model.safetensors")
    return target


def test_missing_tensor_is_listed(saved: Path, tmp_path: Path) -> None:
    bad = _copy_with(saved, tmp_path / "bad", lambda t: t.pop("projector.2.bias"))
    with pytest.raises(CheckpointError) as info:
        LongVideoLM.from_pretrained(bad)
    text = str(info.value)
    assert text.startswith(str(bad / "model.safetensors"))
    assert "1 missing, 0 unexpected, 0 mis-shaped" in text
    assert "missing: projector.2.bias (32)" in text


def test_unexpected_tensor_is_listed(saved: Path, tmp_path: Path) -> None:
    def edit(t: dict) -> None:
        t["image_newline"] = torch.zeros(32)

    bad = _copy_with(saved, tmp_path / "bad", edit)
    with pytest.raises(CheckpointError, match=r"unexpected: image_newline \(32\)"):
        LongVideoLM.from_pretrained(bad)


def test_mis_shaped_tensor_is_listed(saved: Path, tmp_path: Path) -> None:
    def edit(t: dict) -> None:
        t["projector.0.weight"] = torch.zeros(32, 8)

    bad = _copy_with(saved, tmp_path / "bad", edit)
    with pytest.raises(CheckpointError) as info:
        LongVideoLM.from_pretrained(bad)
    assert "mis-shaped: projector.0.weight: checkpoint (32, 8), model (32, 16)" in str(info.value)


def test_all_problems_in_one_error(saved: Path, tmp_path: Path) -> None:
    def edit(t: dict) -> None:
        t.pop("language_model.lm_head.weight")
        t["extra"] = torch.zeros(2, 2)
        t["language_model.model.norm.weight"] = torch.zeros(31)

    bad = _copy_with(saved, tmp_path / "bad", edit)
    with pytest.raises(CheckpointError) as info:
        LongVideoLM.from_pretrained(bad)
    text = str(info.value)
    assert "1 missing, 1 unexpected, 1 mis-shaped" in text
    assert "missing: language_model.lm_head.weight (512, 32)" in text
    assert "unexpected: extra (2, 2)" in text
    assert "language_model.model.norm.weight: checkpoint (31), model (32)" in text


def test_pickle_only_checkpoint_needs_opt_in(tiny: LongVideoLM, tmp_path: Path) -> None:
    tiny.config.save(tmp_path)
    torch.save(tiny.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(CheckpointError) as info:
        LongVideoLM.from_pretrained(tmp_path)
    text = str(info.value)
    assert str(tmp_path) in text and "pytorch_model.bin" in text and "allow_pickle=True" in text
    loaded = LongVideoLM.from_pretrained(tmp_path, allow_pickle=True)
    assert torch.equal(_logits(loaded), _logits(tiny))


def test_pickle_with_code_is_refused_even_when_opted_in(tiny: LongVideoLM, tmp_path: Path) -> None:
    tiny.config.save(tmp_path)
    torch.save({"weights": tiny.state_dict(), "fn": _logits}, tmp_path / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="weights_only=True"):
        LongVideoLM.from_pretrained(tmp_path, allow_pickle=True)


def test_unreadable_or_absent_weights(saved: Path, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text((saved / "config.json").read_text())
    with pytest.raises(CheckpointError, match="no weights found"):
        LongVideoLM.from_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="model.safetensors: not a readable safetensors"):
        LongVideoLM.from_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="not a directory"):
        LongVideoLM.from_pretrained(tmp_path / "nope")


def test_bad_config_in_checkpoint_is_a_config_error(saved: Path, tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes((saved / "model.safetensors").read_bytes())
    data = LongVideoConfig.load(saved).to_dict()
    data["projector"] = "qformer"
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"config.json: key 'projector': unknown value 'qformer'"):
        LongVideoLM.from_pretrained(tmp_path)


def test_sharded_safetensors_with_index(tiny: LongVideoLM, saved: Path, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text((saved / "config.json").read_text())
    tensors = load_file(saved / "model.safetensors")
    names = sorted(tensors)
    shards = {
        "model-00001-of-00002.safetensors": names[::2],
        "model-00002-of-00002.safetensors": names[1::2],
    }
    weight_map = {}
    for file, part in shards.items():
        save_file({n: tensors[n] for n in part}, tmp_path / file)
        weight_map.update(dict.fromkeys(part, file))
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    assert torch.equal(_logits(LongVideoLM.from_pretrained(tmp_path)), _logits(tiny))


# -- scoring continuations -----------------------------------------------------------------


@torch.no_grad()
def test_continuation_logprobs_match_a_full_forward_pass(tiny: LongVideoLM) -> None:
    from longvid.prompting.tokenizer import byte_level_tokenizer

    tiny.tokenizer = byte_level_tokenizer()
    try:
        torch.manual_seed(0)
        prompt = torch.randn(1, 9, tiny.language_model.config.hidden_size)
        texts = ["x", "lemon", "a longer answer<|im_end|>"]
        scored = tiny.continuation_logprobs(prompt, texts)
        for text, (logprob, greedy) in zip(texts, scored, strict=True):
            ids = torch.tensor(tiny.tokenizer(text, add_special_tokens=False)["input_ids"])
            whole = torch.cat([prompt, tiny.embed_tokens(ids)[None]], dim=1)
            logits = tiny(inputs_embeds=whole).logits[0, 8:-1].log_softmax(-1)
            expected = logits.gather(1, ids[:, None]).sum()
            assert logprob == pytest.approx(float(expected), abs=1e-4)
            assert greedy == bool((logits.argmax(-1) == ids).all())
        # With "o" made the top token everywhere, greedy decoding writes "oo", not "ok".
        boost = torch.zeros(tiny.language_model.config.vocab_size)
        boost[ord("o")] = 100.0
        head = tiny.language_model.get_output_embeddings()
        hook = head.register_forward_hook(lambda module, inputs, output: output + boost)
        try:
            (_, oo), (_, ok) = tiny.continuation_logprobs(prompt, ["oo", "ok"])
        finally:
            hook.remove()
        assert oo and not ok
        with pytest.raises(ConfigError, match="at least one token"):
            tiny.continuation_logprobs(prompt, ["ok", ""])
        with pytest.raises(ConfigError, match=r"\(1, L, D\)"):
            tiny.continuation_logprobs(prompt[0], ["ok"])
    finally:
        tiny.tokenizer = None
