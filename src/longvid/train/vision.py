"""Train longvid-mini's vision tower by locked-text tuning against frozen MiniLM.

No pretrained vision encoder is installable offline, so longvid-mini grows its own: a small
transformers ResNet (`longvid.models.registry.MINI_TOWER`; a same-size CLIP ViT trained from
scratch does not learn to read words in this budget, see ``benchmarks/tower_arch.py``), whose
8x8 feature map the compressors read as 64 patch tokens, learns to put each rendered frame
(`longvid.train.render`: words on cards and coloured shapes over real footage) near the
MiniLM sentence embedding of its caption. The text side is frozen, as in LiT (Zhai et al.,
"LiT: Zero-Shot Transfer with Locked-image text Tuning", CVPR 2022, with the roles of the
towers swapped: here the text tower is the locked one), and the loss is CLIP's symmetric
InfoNCE (Radford et al., 2021, section 2.3) with a learned temperature.

The attribute prompt banks are centred (`prompt_bank`). The image embedding is the mean of the
last layer's patch tokens through ``head`` (192 -> 384),
so the patch tokens the compressors read are the ones trained, and ``head`` maps a single patch
into MiniLM space too: PPLLaVA's prompt-guided pooling on longvid-mini starts from it.

`evaluate_retrieval` reports zero-shot accuracy on held-out scenes (test seeds, test footage):
reading the card's word among all `WORDS`, the shapes' colour, kind and count, and image ->
caption retrieval among the held-out captions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from longvid.encoders.anyres import CLIP_MEAN, CLIP_STD
from longvid.encoders.minilm import get_minilm
from longvid.models.config import VISION_MODEL_TYPES, VisionTowerConfig
from longvid.models.modeling import feature_tokens
from longvid.train.loop import LoopConfig, LoopResult, run_loop
from longvid.train.render import (
    COLORS,
    COUNTS,
    FRAMES_PER_VIDEO,
    NUMBER_WORDS,
    SHAPES,
    WORDS,
    Backgrounds,
    Scene,
    caption,
    random_scene,
    render,
    vary_background,
)

__all__ = [
    "ContrastiveTower",
    "RetrievalReport",
    "build_tower",
    "evaluate_retrieval",
    "held_out_scenes",
    "prompt_bank",
    "train_tower",
]

SEED_STRIDE = 1_000_003  # steps of different seeds never share a batch


ATTRIBUTES: dict[str, tuple[str, list[str]]] = {
    # name -> (the scene part it describes, the caption of each value)
    "word": ("card", [f'the word "{w}"' for w in WORDS]),
    "card_color": ("card", [f"a {c} card" for c in COLORS]),
    "text_color": ("card", [f"text written in {c}" for c in COLORS]),
    "shape_kind": ("shapes", [f"{k}s" for k in SHAPES]),
    "shape_color": ("shapes", [f"{c} shapes" for c in COLORS]),
    "shape_count": ("shapes", [f"{NUMBER_WORDS[n]} shapes" for n in COUNTS]),
}
"""Attribute prompts: besides the whole caption, each image is matched against the MiniLM
embeddings of every value of each attribute its scene shows (LiT with a fixed prompt bank,
as CLIP's zero-shot classifier, used here for training too). The whole caption's embedding is
dominated by its longest parts; these targets make the tower read the word itself."""


def attribute_index(scene, name: str) -> int | None:
    """The index of ``scene``'s value of attribute ``name`` in `ATTRIBUTES` (None: absent)."""
    card, shapes = scene.card, scene.shapes
    if name == "word":
        return None if card is None else WORDS.index(card.word)
    if name == "card_color":
        return None if card is None else list(COLORS).index(card.card_color)
    if name == "text_color":
        return None if card is None else list(COLORS).index(card.text_color)
    if shapes is None:
        return None
    if name == "shape_kind":
        return SHAPES.index(shapes.shape)
    if name == "shape_color":
        return list(COLORS).index(shapes.color)
    return COUNTS.index(shapes.count)


class ContrastiveTower(nn.Module):
    """A transformers vision tower plus heads into MiniLM space and CLIP's temperature:
    ``head`` for whole captions, ``attribute_heads`` for the `ATTRIBUTES` prompts."""

    def __init__(self, tower: nn.Module, text_dim: int = 384) -> None:
        super().__init__()
        self.tower = tower
        width = tower.config.hidden_size
        self.head = nn.Linear(width, text_dim)
        self.attribute_heads = nn.ModuleDict({a: nn.Linear(width, text_dim) for a in ATTRIBUTES})
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def patch_features(self, pixel_values: Tensor) -> Tensor:
        """The last layer's patch tokens ``(N, P, D)`` (CLS dropped), what the compressors read
        with ``select_layer=-1``."""
        out = self.tower(pixel_values=pixel_values, output_hidden_states=True)
        has_cls = VISION_MODEL_TYPES[self.tower.config.model_type]
        return feature_tokens(out.hidden_states[-1], drop_cls=has_cls)

    def embed(self, pixel_values: Tensor, attribute: str | None = None) -> Tensor:
        """Unit-norm image embeddings ``(N, text_dim)`` in MiniLM's space (for whole captions,
        or for one attribute's prompts)."""
        return self.embed_pooled(self.patch_features(pixel_values).mean(1), attribute)

    def embed_pooled(self, pooled: Tensor, attribute: str | None = None) -> Tensor:
        head = self.head if attribute is None else self.attribute_heads[attribute]
        return F.normalize(head(pooled), dim=-1)


def build_tower(config: dict, text_dim: int = 384) -> ContrastiveTower:
    """A randomly initialised `ContrastiveTower` around the transformers vision model that
    ``config`` (a `VisionTowerConfig` dict, e.g. `registry.MINI_TOWER`) describes."""
    from transformers import AutoModel

    tower_config = VisionTowerConfig(config=dict(config), select_layer=-1)
    tower = AutoModel.from_config(tower_config.transformers_config())
    return ContrastiveTower(tower, text_dim)


def prompt_bank(name: str) -> Tensor:
    """The MiniLM embeddings of attribute ``name``'s prompts, centred on their mean and
    renormalised. Raw, the prompts of one attribute ('the word "apple"', 'the word "bread"',
    ...) share much of their embedding (mean pairwise cosine 0.35 for words, 0.67-0.78 for
    colours and counts), which flattens the softmax over them; centred, only what tells them
    apart remains (mean cosine below 0)."""
    bank = get_minilm().embed(ATTRIBUTES[name][1])
    return F.normalize(bank - bank.mean(0, keepdim=True), dim=-1)


def to_pixels(frames: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> Tensor:
    """``(N, S, S, 3)`` uint8 frames at the tower's size -> normalised ``(N, 3, S, S)``
    float32, exactly what the model's square image processor gives for frames of that size."""
    x = torch.from_numpy(np.array(frames, copy=True)).permute(0, 3, 1, 2).float() / 255.0
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    return (x - m) / s


def rendered_batch(
    rng: np.random.Generator,
    backgrounds: Backgrounds,
    size: int,
    n: int,
    *,
    augment: bool = False,
) -> tuple[np.ndarray, list]:
    """``n`` random scenes over random backgrounds (each varied by `vary_background` when
    ``augment``), and the scenes. Reading words is the hardest skill, so cards appear in 3 of
    4 frames and a third of the frames are close-ups of one card (word 30-45% of the frame
    height; letters span several patches)."""
    frames, scenes = [], []
    for _ in range(n):
        if rng.random() < 1 / 3:
            card = random_scene(rng, card=True, shapes=False).card
            close = replace(card, size=float(rng.uniform(0.3, 0.45)), x=0.5, y=0.5)
            scene = Scene(close, None)
        else:
            scene = random_scene(rng, card=bool(rng.random() < 0.75))
        background = backgrounds.sample(rng, size)
        if augment:
            background = vary_background(rng, background)
        frames.append(render(scene, background, size))
        scenes.append(scene)
    return np.stack(frames), scenes


def train_tower(
    model: ContrastiveTower,
    out_dir: str | Path,
    *,
    steps: int = 600,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    background_frames: int = FRAMES_PER_VIDEO,
    photos: bool = False,
    augment: bool = False,
    image_mean: tuple[float, ...] = CLIP_MEAN,
    image_std: tuple[float, ...] = CLIP_STD,
    progress: bool = True,
) -> LoopResult:
    """Locked-text contrastive training of ``model`` (resumable from ``out_dir``): in-batch
    InfoNCE between images and their captions, plus, per attribute, the cross-entropy of the
    image against the embeddings of all that attribute's prompts. The backgrounds are
    ``background_frames`` frames of each train clip (plus the train photos with ``photos``),
    varied by `vary_background` with ``augment``."""
    size = model.tower.config.image_size
    backgrounds = Backgrounds.load(
        "train", size=size, frames_per_video=background_frames, photos=photos
    )
    minilm = get_minilm()
    banks = {a: prompt_bank(a) for a in ATTRIBUTES}

    def loss_fn(step: int) -> Tensor:
        rng = np.random.default_rng(seed * SEED_STRIDE + step)
        frames, scenes = rendered_batch(rng, backgrounds, size, batch_size, augment=augment)
        captions = [caption(s) for s in scenes]
        device = model.head.weight.device
        scale = model.logit_scale.clamp(max=math.log(100)).exp()
        text = minilm.embed(captions).to(device)
        pooled = model.patch_features(to_pixels(frames, image_mean, image_std).to(device)).mean(1)
        logits = scale * model.embed_pooled(pooled) @ text.T
        # Identical captions in a batch are both positives, not negatives of each other.
        same = torch.tensor(
            [[a == b for b in captions] for a in captions], device=device, dtype=torch.bool
        )
        targets = same.float() / same.float().sum(1, keepdim=True)
        loss = 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets.T))
        for name in ATTRIBUTES:
            truth = [attribute_index(s, name) for s in scenes]
            rows = [i for i, t in enumerate(truth) if t is not None]
            if rows:
                image = model.embed_pooled(pooled[rows], name)
                attr_logits = scale * image @ banks[name].to(device).T
                target = torch.tensor([truth[i] for i in rows], device=device)
                loss = loss + F.cross_entropy(attr_logits, target)
        return loss

    config = LoopConfig(
        steps=steps,
        lr=lr,
        warmup=min(50, steps // 10 + 1),
        weight_decay=0.05,
        seed=seed,
        checkpoint_every=50,
    )
    return run_loop("vision-contrastive", model, loss_fn, config, out_dir, progress=progress)


@dataclass
class RetrievalReport:
    """Zero-shot accuracies on held-out rendered scenes (fractions), and chance for each."""

    n_images: int
    word: float
    shape_color: float
    shape_kind: float
    shape_count: float
    caption_top1: float
    caption_top5: float
    word_train_footage: float
    """The word probe on held-out scenes over the *training* footage: its distance to
    ``word`` is what the tower learnt of its backgrounds rather than of the words."""

    def chance(self) -> dict[str, float]:
        """Accuracy of guessing, per probe."""
        return {
            "word": 1 / len(WORDS),
            "word_train_footage": 1 / len(WORDS),
            "shape_color": 1 / len(COLORS),
            "shape_kind": 1 / len(SHAPES),
            "shape_count": 1 / len(COUNTS),
            "caption_top1": 1 / self.n_images,
            "caption_top5": min(1.0, 5 / self.n_images),
        }


def held_out_scenes(
    n: int, size: int, seed: int = 7, split: str = "test"
) -> tuple[np.ndarray, list[Scene]]:
    """``n`` scenes with a card and shapes, drawn with seeds far from every training step's
    over the ``split``'s footage (the *test* footage unless told), and their
    ``(n, size, size, 3)`` frames."""
    backgrounds = Backgrounds.load(split, size=size)
    rng = np.random.default_rng(10**9 + seed)
    scenes = [random_scene(rng, card=True, shapes=True) for _ in range(n)]
    frames = np.stack([render(s, backgrounds.sample(rng, size), size) for s in scenes])
    return frames, scenes


@torch.no_grad()
def evaluate_retrieval(
    model: ContrastiveTower,
    *,
    n_images: int = 400,
    seed: int = 7,
    image_mean: tuple[float, ...] = CLIP_MEAN,
    image_std: tuple[float, ...] = CLIP_STD,
) -> RetrievalReport:
    """Zero-shot probes on ``n_images`` scenes drawn over the *test* footage: each probe picks
    the candidate caption (every word, colour, shape, count) closest to the image; the word
    probe once more on as many held-out scenes over the training footage."""
    model.eval()
    size = model.tower.config.image_size
    device = model.head.weight.device

    def pooled_features(frames: np.ndarray) -> Tensor:
        return torch.cat(
            [
                model.patch_features(
                    to_pixels(frames[i : i + 64], image_mean, image_std).to(device)
                ).mean(1)
                for i in range(0, len(frames), 64)
            ]
        )

    def probe(name: str, pooled: Tensor, scenes: list[Scene]) -> float:
        bank = prompt_bank(name).to(device)
        guess = (model.embed_pooled(pooled, name) @ bank.T).argmax(1).cpu()
        truth = torch.tensor([attribute_index(s, name) for s in scenes])
        return float((guess == truth).float().mean())

    frames, scenes = held_out_scenes(n_images, size, seed)
    pooled = pooled_features(frames)
    seen_frames, seen_scenes = held_out_scenes(n_images, size, seed, split="train")
    minilm = get_minilm()

    images = model.embed_pooled(pooled)
    captions = minilm.embed([caption(s) for s in scenes]).to(device)
    ranks = (images @ captions.T).argsort(1, descending=True).cpu()
    truth = torch.arange(n_images)[:, None]
    return RetrievalReport(
        n_images=n_images,
        word=probe("word", pooled, scenes),
        shape_color=probe("shape_color", pooled, scenes),
        shape_kind=probe("shape_kind", pooled, scenes),
        shape_count=probe("shape_count", pooled, scenes),
        caption_top1=float((ranks[:, :1] == truth).any(1).float().mean()),
        caption_top5=float((ranks[:, :5] == truth).any(1).float().mean()),
        word_train_footage=probe("word", pooled_features(seen_frames), seen_scenes),
    )
