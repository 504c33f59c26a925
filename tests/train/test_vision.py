"""Tests of the vision tower's locked-text training: shapes, the contrastive loss learning,
resumable training and the zero-shot retrieval report."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import CLIPVisionConfig, CLIPVisionModel

from longvid.encoders.anyres import CLIP_MEAN, CLIP_STD
from longvid.train import vision
from longvid.train.render import COLORS, Backgrounds, Scene, caption, random_scene, vary_background
from longvid.train.vision import (
    ATTRIBUTES,
    ContrastiveTower,
    RetrievalReport,
    attribute_index,
    build_tower,
    evaluate_retrieval,
    prompt_bank,
    rendered_batch,
    to_pixels,
    train_tower,
)

SIZE = 32


def tiny_tower(seed: int = 0) -> ContrastiveTower:
    torch.manual_seed(seed)
    config = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=SIZE,
        patch_size=8,
    )
    return ContrastiveTower(CLIPVisionModel(config))


def test_patch_features_and_embeddings() -> None:
    model = tiny_tower().eval()
    pixels = torch.randn(3, 3, SIZE, SIZE)
    assert model.patch_features(pixels).shape == (3, 16, 32)  # 4x4 patches, CLS dropped
    emb = model.embed(pixels)
    assert emb.shape == (3, 384)  # MiniLM's space
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(3))
    for name in ATTRIBUTES:  # one head per attribute prompt bank, into the same space
        word = model.embed(pixels, name)
        assert word.shape == (3, 384) and not torch.allclose(word, emb)
    assert model.logit_scale.item() == pytest.approx(math.log(1 / 0.07))


def test_build_tower_makes_the_mini_resnet_with_its_token_grid() -> None:
    from longvid.models.registry import MINI_TOWER

    torch.manual_seed(0)
    model = build_tower(MINI_TOWER).eval()
    assert model.tower.config.model_type == "resnet"
    assert model.patch_features(torch.randn(2, 3, 128, 128)).shape == (2, 64, 192)  # 8x8 grid


def test_prompt_banks_are_centred_so_their_prompts_differ() -> None:
    from longvid.encoders.minilm import get_minilm

    raw = get_minilm().embed(ATTRIBUTES["word"][1])
    bank = prompt_bank("word")
    assert bank.shape == raw.shape
    torch.testing.assert_close(bank.norm(dim=-1), torch.ones(len(bank)))
    off_diagonal = ~torch.eye(len(bank), dtype=torch.bool)
    # raw word prompts share much of their embedding; centred, they point apart on average
    raw_cos, centred_cos = (raw @ raw.T)[off_diagonal], (bank @ bank.T)[off_diagonal]
    assert raw_cos.mean() > 0.3 and centred_cos.mean() < 0.0
    assert centred_cos.max() < raw_cos.max()


def test_to_pixels_normalises_like_clip() -> None:
    frames = np.zeros((2, 4, 4, 3), np.uint8)
    frames[1] = 255
    x = to_pixels(frames, CLIP_MEAN, CLIP_STD)
    assert x.shape == (2, 3, 4, 4) and x.dtype == torch.float32
    for c in range(3):
        assert x[0, c].unique().item() == pytest.approx(-CLIP_MEAN[c] / CLIP_STD[c])
        assert x[1, c].unique().item() == pytest.approx((1 - CLIP_MEAN[c]) / CLIP_STD[c])


def test_rendered_batch_is_a_function_of_the_rng(assets: Path) -> None:
    backgrounds = Backgrounds.load("train", size=SIZE)
    a, scenes_a = rendered_batch(np.random.default_rng(5), backgrounds, SIZE, 4)
    b, scenes_b = rendered_batch(np.random.default_rng(5), backgrounds, SIZE, 4)
    assert a.shape == (4, SIZE, SIZE, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and scenes_a == scenes_b
    assert len(scenes_a) == 4 and all(isinstance(s, Scene) for s in scenes_a)
    assert all(caption(s) for s in scenes_a)


def test_augmented_batches_vary_the_background_and_keep_the_named_colours(
    assets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backgrounds = Backgrounds.load("train", size=SIZE)
    calls = []

    def spy(rng: np.random.Generator, frame: np.ndarray) -> np.ndarray:
        calls.append(frame.shape)
        return vary_background(rng, frame)

    monkeypatch.setattr(vision, "vary_background", spy)
    rendered_batch(np.random.default_rng(5), backgrounds, SIZE, 6)
    assert calls == []
    frames, scenes = rendered_batch(np.random.default_rng(5), backgrounds, SIZE, 12, augment=True)
    assert calls == [(SIZE, SIZE, 3)] * 12
    # The card is drawn after the background is varied: its colour is the named one exactly.
    with_card = [(f, s) for f, s in zip(frames, scenes, strict=True) if s.card is not None]
    assert with_card
    for frame, scene in with_card:
        exact = (frame == np.array(COLORS[scene.card.card_color], np.uint8)).all(-1)
        assert exact.mean() > 0.02, scene.card


def test_attribute_index_matches_the_prompt_banks() -> None:
    rng = np.random.default_rng(0)
    for _ in range(30):
        scene = random_scene(rng, card=True, shapes=True)
        for name, (_, prompts) in ATTRIBUTES.items():
            index = attribute_index(scene, name)
            assert index is not None and 0 <= index < len(prompts)
        assert (
            ATTRIBUTES["word"][1][attribute_index(scene, "word")] == f'the word "{scene.card.word}"'
        )
        assert (
            scene.shapes.color
            in ATTRIBUTES["shape_color"][1][attribute_index(scene, "shape_color")]
        )
    bare = random_scene(rng, card=False, shapes=False)
    assert all(attribute_index(bare, name) is None for name in ATTRIBUTES)


def test_the_contrastive_loss_falls_on_a_fixed_batch(
    assets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """train_tower's own loss, fed the same 8 scenes every step: a few AdamW steps must fit it."""
    backgrounds = Backgrounds.load("train", size=SIZE)
    fixed = rendered_batch(np.random.default_rng(0), backgrounds, SIZE, 8)
    monkeypatch.setattr(vision, "rendered_batch", lambda rng, bg, size, n, **kw: fixed)
    model = tiny_tower()
    result = train_tower(model, tmp_path, steps=8, batch_size=8, lr=3e-3, progress=False)
    losses = result.losses
    assert len(losses) == 8 and all(math.isfinite(x) for x in losses)
    assert sum(losses[-3:]) / 3 < 0.5 * sum(losses[:3]) / 3, losses
    assert (tmp_path / "checkpoint.safetensors").is_file()
    assert (tmp_path / "curve.png").is_file()


def test_train_tower_on_fresh_batches_updates_the_tower(assets: Path, tmp_path: Path) -> None:
    model = tiny_tower()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = train_tower(model, tmp_path, steps=3, batch_size=8, progress=False)
    assert len(result.losses) == 3 and result.resumed_from == 0
    # At the start the embeddings are near-random: no better than chance on the captions.
    assert result.losses[0] > 0.5 * math.log(8) and all(math.isfinite(x) for x in result.losses)
    after = model.state_dict()
    for name in (
        "head.weight",
        "logit_scale",
        "tower.embeddings.patch_embedding.weight",
    ):
        assert not torch.equal(before[name], after[name]), name
    again = train_tower(tiny_tower(), tmp_path, steps=3, batch_size=8, progress=False)
    assert again.resumed_from == 3 and again.losses == result.losses


def test_evaluate_retrieval_reports_fractions_and_chance(assets: Path) -> None:
    report = evaluate_retrieval(tiny_tower(), n_images=24, seed=1)
    assert isinstance(report, RetrievalReport) and report.n_images == 24
    chance = report.chance()
    probes = (
        "word",
        "shape_color",
        "shape_kind",
        "shape_count",
        "caption_top1",
        "caption_top5",
        "word_train_footage",
    )
    assert set(chance) == set(probes)
    for probe in probes:
        value = getattr(report, probe)
        assert 0.0 <= value <= 1.0, probe
        assert 0.0 < chance[probe] <= 1.0, probe
        assert value * 24 == pytest.approx(round(value * 24))  # a count out of 24 images
    assert chance["caption_top1"] == pytest.approx(1 / 24)
    assert chance["caption_top5"] == pytest.approx(5 / 24)
    assert chance["shape_kind"] == pytest.approx(1 / 4)
    assert chance["shape_color"] == pytest.approx(1 / 8)
    assert report.caption_top5 >= report.caption_top1
    # Deterministic: the held-out scenes come from the seed.
    assert evaluate_retrieval(tiny_tower(), n_images=24, seed=1) == report
