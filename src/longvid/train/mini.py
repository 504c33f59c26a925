"""The longvid-mini recipe: projector and compressor training, LLaVA-style, on SmolLM2.

Liu et al., "Visual Instruction Tuning" (2023), section 4.2: stage 1 aligns the projector with
the frozen LLM on image captions; stage 2 tunes on instructions, here with LoRA on the LLM
(Hu et al., 2021) instead of full fine-tuning, so the adapter stays a few MB. The vision tower
comes from `longvid.train.vision` and stays frozen. Each of the four compressors gets its own
projector (and its own learned compressor layers: LLaMA-VID's MiniLM query projection,
PPLLaVA's visual projection into MiniLM space, MiniGPT4-Video's merge projection).

Data is procedural (`longvid.train.videoqa`): stage 1 captions single rendered frames; stage 2
asks the five question kinds about rendered timelines of 6-12 frames (the issue caps training
clips at 16), multiple-choice and open, half of them with the subtitle channel interleaved as
``longvid ask`` does, plus (by the recipe's mix) extra which-word questions and V-NIAH's own
task at training length, a word card among 7-15 footage frames, so the benchmark's long
haystacks test length transfer (LongVA's question) rather than a task never trained. Every
prompt is built by the same functions inference uses (`longvid.prompting.minigpt4video.
video_prompt` + `assemble`), so train and test prompts are the same token for token; the loss
covers only the answer and the template's stop string.

The budget of stages 1 and 2 fits two CPU cores (SmolLM2-135M trains at a few hundred
tokens/s): few visual tokens per frame, short clips, a few thousand samples. Stage 3 is stage 2
continued on fresh examples at sixteen per padded step, sized for one GPU (an H200 runs it in
under seven minutes; two CPU cores would need some five hours); `continue_package` runs it on
a finished package.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from longvid.errors import ConfigError
from longvid.io.subtitles import Cue, Subtitles
from longvid.models.modeling import (
    CheckpointTensors,
    LongVideoLM,
    _is_llm,
    load_checked_state,
    peft_deprecations_silenced,
)
from longvid.models.registry import mini_config
from longvid.prompting.minigpt4video import video_prompt
from longvid.prompting.prompt import assemble
from longvid.prompting.templates import get_template
from longvid.train.loop import LoopConfig, LoopResult, plot_curve, run_loop
from longvid.train.videoqa import (
    NEEDLE_QUESTION,
    QUESTION_KINDS,
    caption_sample,
    make_sample,
    needle_clip,
    open_prompt,
    split_seeds,
)
from longvid.train.vision import to_pixels

__all__ = [
    "LORA_TARGETS",
    "RECIPE",
    "Example",
    "PositionGap",
    "StageConfig",
    "answer_ids",
    "batch_loss",
    "build_student",
    "caption_example",
    "continue_package",
    "needle_example",
    "example_loss",
    "package",
    "position_gap",
    "qa_example",
    "recipe_stage",
    "skipped_positions",
    "stage2_example",
    "student_from_package",
    "train_compressor",
    "train_stage1",
    "train_stage2",
]

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")
CAPTION_QUESTION = "Describe what is drawn on the frame."
IGNORE = -100
#: A training prompt's positional gap: (positions skipped, where; see `skipped_positions`).
PositionGap = tuple[int, float]


@dataclass
class Example:
    """One training example: frames at times, the question as asked, the answer, the subtitle
    cues to interleave (None: the subtitle channel is off) and, per frame, the new on-screen
    text as OCR would read it (None: the OCR channel is off; then subtitles are interleaved as
    plain text, as ``longvid ask --subtitles`` does without ``--ocr``)."""

    frames: np.ndarray
    times: list[float]
    question: str
    answer: str
    subtitles: list[tuple[float, float, str]] | None = None
    screen: list[str] | None = None


@dataclass
class StageConfig:
    """Steps, samples per step and learning rate of one stage; for stage 2 also the LoRA rank
    and the data mix: the share of V-NIAH-form needle clips (`needle_example`) and of extra
    which-word questions, the rest drawn over all question kinds (`qa_example`). ``padded``
    runs a step's examples as one padded forward pass (`batch_loss`): faster on a GPU, and on
    a CPU for prompts of similar length; ``seed`` picks the stage's data. A positive
    ``tower_lr_scale`` trains the vision tower's weights too (`unfreeze_tower`) at that
    fraction of ``lr``; 0 keeps the tower frozen. A positive ``position_skip`` opens a random
    gap of up to that many positions at a random point of each training prompt
    (`skipped_positions`), so clips of at most 16 frames show the LLM the distances of long
    ones. ``varied_haystacks`` draws needle clips' footage from the vision tower's backgrounds
    and ``hard_haystacks`` adds kinds of footage the tower never saw, colour-varied;
    ``distractor_haystacks`` turns a third of their frames into card-free decoys
    (`needle_example`). ``what_screen_share`` asks that share of the extra which-word
    questions with the text channels on and every new card in the captions as OCR phrases
    it, word and colours (`qa_example`'s ``screen``), so the model learns to answer them from
    ``longvid ask --ocr``'s on-screen text; the rest draw their channels as any question."""

    steps: int
    batch: int = 4
    lr: float = 1e-3
    lora_rank: int = 16
    seed: int = 0
    needle_share: float = 0.0
    what_share: float = 0.0
    padded: bool = False
    tower_lr_scale: float = 0.0
    position_skip: int = 0
    varied_haystacks: bool = False
    hard_haystacks: bool = False
    distractor_haystacks: bool = False
    what_screen_share: float = 0.0


#: The shipped recipe (``make train-mini``): what each stage of each compressor runs.
RECIPE = {
    "vision": {
        "steps": 1400,
        "batch_size": 96,
        "lr": 2e-3,
        "seed": 0,
        # 64 frames of each training clip, the photos and per-frame colour/mirror variation:
        # held-out word 94.2% against 88.5% on 16 frames per clip alone (model card).
        "background_frames": 64,
        "photos": True,
        "augment": True,
    },
    "stage1": StageConfig(steps=1000, batch=4, lr=3e-3),
    "stage2": StageConfig(
        steps=500, batch=4, lr=5e-4, lora_rank=8, needle_share=0.25, what_share=0.25
    ),
    "stage3": StageConfig(
        steps=950,
        batch=16,
        lr=3e-4,
        lora_rank=8,
        seed=1,
        needle_share=0.3,
        what_share=0.3,
        padded=True,
        # Position gaps carry needle reading past the training length; footage the tower never
        # saw and card-free decoys keep loud frames from being read as the card; the tower,
        # tuned at a tenth of the rate, stops mistaking loud footage for a card. The shipped
        # longva/ got them as two 90-step CPU continuations (model card; docs/benchmarks.md).
        position_skip=7000,
        hard_haystacks=True,
        distractor_haystacks=True,
        tower_lr_scale=0.1,
    ),
}
# Stage 3 as two CPU cores run it: the same mix on 1,600 fresh examples, not 15,200 (about
# 55 min measured in `make train-mini`, not some five hours), at the rate of the shipped
# package's CPU long-context stages.
RECIPE["stage3_cpu"] = replace(RECIPE["stage3"], steps=200, batch=8, lr=2e-4)


def recipe_stage(name: str, *, accelerated: bool | None = None) -> StageConfig:
    """The recipe's config of stage ``name`` for this machine: stage 3 is sized for a GPU
    (``RECIPE["stage3"]``) and cut to ``RECIPE["stage3_cpu"]`` where none is present
    (``accelerated`` None: ask torch), so the whole recipe stays within hours on two cores."""
    if name != "stage3":
        return RECIPE[name]
    if accelerated is None:
        accelerated = torch.cuda.is_available()
    return RECIPE["stage3" if accelerated else "stage3_cpu"]


def build_student(compressor: str, tower: str | Path | None = None, *, config=None) -> LongVideoLM:
    """longvid-mini before stage 1: the real SmolLM2 weights, the contrastively trained tower
    from ``tower`` (a `ContrastiveTower` safetensors file; None keeps the random one), a fresh
    projector and compressor. PPLLaVA's visual projection into MiniLM space starts from the
    tower's contrastive head, which was trained for exactly that map."""
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    from longvid.models.base_llm import resolve_language_model

    config = config or mini_config(compressor)
    model = LongVideoLM(config)
    if config.language_model_weights is not None:
        model.load_base_language_model()
        model.tokenizer = AutoTokenizer.from_pretrained(
            str(resolve_language_model(config.language_model_weights)), local_files_only=True
        )
    else:  # a tiny random LLM (tests): the offline byte-level tokenizer
        from longvid.prompting.tokenizer import byte_level_tokenizer

        model.tokenizer = byte_level_tokenizer()
    if tower is not None:
        state = load_file(str(tower))
        vision = {k.removeprefix("tower."): v for k, v in state.items() if k.startswith("tower.")}
        model.vision_tower.load_state_dict(vision)
        projection = getattr(model.compressor, "visual_projection", None)
        if projection is not None and projection.weight.shape == state["head.weight"].shape:
            with torch.no_grad():
                projection.weight.copy_(state["head.weight"])
                projection.bias.copy_(state["head.bias"])
    model.vision_tower.requires_grad_(False)
    model.language_model.requires_grad_(False)
    return model


def caption_example(seed: int, split: str = "train") -> Example:
    """Stage 1: one rendered frame and its caption."""
    frame, text, _ = caption_sample(seed, split)
    return Example(frame[None], [0.0], CAPTION_QUESTION, text)


def qa_example(
    seed: int,
    split: str = "train",
    *,
    text_channels: bool | None = None,
    kind: str | None = None,
    screen: bool = False,
) -> Example:
    """Stage 2: a question of ``kind`` (None: a random kind) about a 6-12 frame rendered
    timeline.

    ``text_channels`` None draws it (half the examples get the subtitle channel, half of those
    the on-screen text too); subtitle questions only come with the channel on, since without
    it they have no answer. ``screen`` turns both channels on, on-screen text included.
    """
    rng = np.random.default_rng(seed)
    if screen:
        text_channels = True
    channels = bool(rng.integers(2)) if text_channels is None else text_channels
    kinds = [k for k in QUESTION_KINDS if channels or k != "subtitle"]
    drawn = kinds[int(rng.integers(len(kinds)))]
    kind = drawn if kind is None else kind
    sample = make_sample(
        seed,
        split,
        kind=kind,
        n_frames=int(rng.integers(6, 13)),
        multiple_choice=bool(rng.integers(2)),
        subtitles=channels,
    )
    on_screen = None
    if channels and (rng.integers(2) or screen):
        on_screen = _screen_text(sample.timeline, sample.timestamps)
    return Example(
        sample.frames,
        list(sample.timestamps),
        sample.prompt(),
        sample.answer,
        list(sample.subtitles) if channels else None,
        on_screen,
    )


def needle_example(
    seed: int,
    split: str = "train",
    *,
    varied: bool = False,
    hard: bool = False,
    distractors: bool = False,
) -> Example:
    """Stage 2: V-NIAH's task at training length: a card on grey among 7-15 footage frames,
    asked V-NIAH's open question (`longvid.train.videoqa.needle_clip`); no text channels, as
    V-NIAH scores the visual path. ``varied`` (train split only) draws the footage from the
    vision tower's backgrounds: 64 frames of each clip and crops of the photos, not 16 frames
    of each clip, so fewer kinds of footage are new to the model at test time. ``hard`` (train
    split only) adds the clips of `longvid.train.render.EXTRA_VIDEOS` and varies each haystack
    frame's colours (`longvid.train.render.vary_background`): the shipped model took unseen
    rendered animation and phone video for a card. ``distractors`` turns a third of the
    haystack frames into card-free decoys (`longvid.train.render.distract`): coloured blobs or
    raised saturation, what that animation looks like."""
    n_haystack = int(np.random.default_rng([seed, 5]).integers(7, 16))
    footage = {}
    if varied or hard:
        vision = RECIPE["vision"]
        footage = {"footage_frames": vision["background_frames"], "photos": vision["photos"]}
    frames, times, word = needle_clip(
        seed, split, n_haystack, extra=hard, vary=hard, distractors=distractors, **footage
    )
    return Example(frames, times, open_prompt(NEEDLE_QUESTION), word)


def stage2_example(seed: int, stage: StageConfig, split: str = "train") -> Example:
    """One stage-2 example drawn by ``stage``'s mix: a needle clip, a which-word question or
    a question of any kind."""
    draw = float(np.random.default_rng([seed, 6]).random())
    if draw < stage.needle_share:
        return needle_example(
            seed,
            split,
            varied=stage.varied_haystacks,
            hard=stage.hard_haystacks,
            distractors=stage.distractor_haystacks,
        )
    if draw < stage.needle_share + stage.what_share:
        screen = float(np.random.default_rng([seed, 7]).random()) < stage.what_screen_share
        return qa_example(seed, split, kind="what", screen=screen)
    return qa_example(seed, split)


def _screen_text(timeline, times: list[float]) -> list[str]:
    """Per frame, the card that is new on screen since the previous frame, with its colours:
    `longvid.io.ocr.new_text` on the lines OCR reads from these frames when it reads them
    right."""
    from longvid.io.ocr import FrameText, TextLine, new_text

    read = []
    for t in times:
        card = timeline.scene_at(t).card
        lines = (
            []
            if card is None
            else [TextLine(card.word, 1.0, (), (card.text_color, card.card_color))]
        )
        read.append(FrameText(t, lines))
    return new_text(read)


def prompt_embeds(
    model: LongVideoLM, example: Example, *, timestamps: bool = True
) -> tuple[Tensor, int]:
    """The assembled prompt of ``example`` as ``longvid ask`` builds it, with gradients
    flowing into the projector and compressor: ``(inputs_embeds (1, L, D), L)``."""
    config = model.config
    pixels = to_pixels(
        example.frames, config.image_processing.image_mean, config.image_processing.image_std
    )
    features = model.encode_images(pixels)
    times = np.asarray(example.times, dtype=np.float64)
    compressed = model.compressor(
        features, projector=model.project, frame_times=times, question=example.question
    )
    template = get_template(config.chat_template)
    captions = None
    if example.subtitles is not None or example.screen is not None:
        captions = subtitle_captions(example.subtitles, times, example.screen)
    prompt = video_prompt(
        template,
        example.question,
        times.tolist(),
        compressed.tokens_per_frame,
        captions,
        timestamps=timestamps,
    )
    assembled = assemble(
        prompt,
        model.tokenizer,
        model.embed_tokens,
        compressed.tokens.to(model.dtype),
        config.context_length,
    )
    return assembled.inputs_embeds, assembled.token_count


def subtitle_captions(
    cues: list[tuple[float, float, str]] | None,
    times: np.ndarray,
    screen: list[str] | None = None,
) -> list[str | None]:
    """Each frame's caption as ``longvid ask`` interleaves it: plain subtitle text, or with
    on-screen text the time- and channel-marked form of `longvid.prompting.channels`."""
    from longvid.io.subtitle_alignment import align_captions
    from longvid.io.subtitles import align
    from longvid.prompting.channels import channel_captions

    subs = Subtitles([Cue(float(a), float(b), text) for a, b, text in cues or ()])
    if screen is None:
        return align_captions(subs, times)
    speech = align(subs, times) if len(subs) else [""] * len(times)
    return channel_captions(times.tolist(), screen, speech, "subtitles")[0]


def answer_ids(model: LongVideoLM, example: Example, device: torch.device) -> Tensor:
    """The token ids the loss covers: the answer and the template's stop string."""
    stop = get_template(model.config.chat_template).stop_strings[0]
    ids = model.tokenizer(example.answer + stop, add_special_tokens=False)["input_ids"]
    return torch.tensor(ids, device=device)


def skipped_positions(length: int, prompt_length: int, gap: PositionGap | None) -> Tensor:
    """Position ids ``0 .. length - 1`` of a training sequence, with ``gap = (size, where)``
    added to every position from a cut inside the prompt on (``where`` in [0, 1) places the
    cut among the prompt's tokens after the first). RoPE sees only distances, so the tokens
    either side of the cut look ``size`` positions further apart than they are: PoSE's
    positional skip (Zhu et al. 2023, "PoSE: Efficient Context Window Extension of LLMs via
    Positional Skip-wise Training"), a cheap stand-in for LongVA's long-context training."""
    positions = torch.arange(length)
    if gap is not None and prompt_length > 1:
        size, where = gap
        positions[1 + int(where * (prompt_length - 1)) :] += int(size)
    return positions


def example_loss(model: LongVideoLM, example: Example, gap: PositionGap | None = None) -> Tensor:
    """Next-token cross-entropy on the answer and the stop string only; ``gap``: see
    `skipped_positions`."""
    embeds, length = prompt_embeds(model, example)
    answer = answer_ids(model, example, embeds.device)
    inputs = torch.cat([embeds, model.embed_tokens(answer)[None].to(embeds.dtype)], dim=1)
    labels = torch.cat([torch.full((length,), IGNORE, device=embeds.device), answer])[None]
    positions = skipped_positions(inputs.shape[1], length, gap).to(inputs.device)[None]
    return model.language_model(inputs_embeds=inputs, labels=labels, position_ids=positions).loss


def batch_loss(
    model: LongVideoLM, examples: list[Example], gaps: Sequence[PositionGap | None] | None = None
) -> Tensor:
    """The mean of `example_loss` over ``examples``, in one padded forward pass of the LLM
    (right padding, so no real position attends to a pad; logits only over the answer span).
    For stage 1's short caption prompts this is 1.4x faster than one pass per example on CPU;
    stage 2's clips differ in length by hundreds of tokens, and padding them costs more than it
    saves. ``gaps``: one per example (`skipped_positions`), or None for contiguous positions."""
    from torch.nn.utils.rnn import pad_sequence

    sequences, spans, positions = [], [], []
    for example, gap in zip(examples, gaps or [None] * len(examples), strict=True):
        embeds, length = prompt_embeds(model, example)
        answer = answer_ids(model, example, embeds.device)
        sequences.append(torch.cat([embeds[0], model.embed_tokens(answer).to(embeds.dtype)]))
        spans.append((length, answer))
        positions.append(skipped_positions(len(sequences[-1]), length, gap))
    inputs = pad_sequence(sequences, batch_first=True)
    mask = pad_sequence([s.new_ones(len(s), dtype=torch.long) for s in sequences], batch_first=True)
    position_ids = pad_sequence(positions, batch_first=True).to(inputs.device)
    # Logit at position p predicts token p + 1: keep those predicting any answer token.
    first = min(length for length, _ in spans) - 1
    last = max(length + len(answer) for length, answer in spans) - 1
    keep = torch.arange(first, last, device=inputs.device)
    logits = model.language_model(
        inputs_embeds=inputs.to(model.dtype),
        attention_mask=mask,
        position_ids=position_ids,
        logits_to_keep=keep,
    ).logits.float()
    losses = []
    for row, (length, answer) in enumerate(spans):
        start = length - 1 - first
        predicted = logits[row, start : start + len(answer)]
        losses.append(torch.nn.functional.cross_entropy(predicted, answer))
    return torch.stack(losses).mean()


def position_gap(seed: int, position_skip: int) -> PositionGap | None:
    """The example of ``seed``'s gap (`skipped_positions`): a size drawn uniformly from
    ``0 .. position_skip`` and a place; None when ``position_skip`` is 0."""
    if position_skip <= 0:
        return None
    rng = np.random.default_rng([seed, 8])
    return int(rng.integers(position_skip + 1)), float(rng.random())


def _stage_loss(
    model: LongVideoLM, make, seeds: list[int], batch: int, *, padded: bool, position_skip: int = 0
):
    def loss_fn(step: int) -> Tensor:
        step_seeds = seeds[step * batch : (step + 1) * batch]
        examples = [make(s) for s in step_seeds]
        gaps = [position_gap(s, position_skip) for s in step_seeds]
        if padded:
            return batch_loss(model, examples, gaps)
        losses = [example_loss(model, e, g) for e, g in zip(examples, gaps, strict=True)]
        return sum(losses) / len(examples)

    return loss_fn


def train_stage1(model: LongVideoLM, out_dir: str | Path, stage: StageConfig) -> LoopResult:
    """Stage 1: projector and compressor on captions, everything else frozen."""
    seeds = split_seeds("train", stage.steps * stage.batch, start=stage.seed * 10**7)
    config = LoopConfig(
        steps=stage.steps,
        lr=stage.lr,
        warmup=max(1, stage.steps // 10),
        seed=stage.seed,
        checkpoint_every=25,
    )
    loss = _stage_loss(model, caption_example, seeds, stage.batch, padded=True)
    return run_loop("stage1-captions", model, loss, config, out_dir)


def add_lora(model: LongVideoLM, rank: int) -> object:
    """Wrap the language model with a LoRA adapter (peft) on the attention projections; the
    wrapped model replaces ``model.language_model`` and is returned."""
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules=list(LORA_TARGETS)
    )
    with peft_deprecations_silenced():
        model.language_model = get_peft_model(model.language_model, lora)
    return model.language_model


def unfreeze_tower(model: LongVideoLM) -> None:
    """Make the vision tower's weights trainable, its normalisation layers excepted: they and
    their running statistics stay as the tower's own training left them (the tower stays in
    eval mode, `LongVideoLM.train`), so the LLM's loss adjusts what the tower sees, not how
    its features are scaled."""
    from longvid.models.modeling import NORM_LAYERS

    for module in model.vision_tower.modules():
        trainable = not isinstance(module, NORM_LAYERS)
        for parameter in module.parameters(recurse=False):
            parameter.requires_grad_(trainable)


def train_stage2(
    model: LongVideoLM,
    out_dir: str | Path,
    stage: StageConfig,
    *,
    name: str = "stage2-instructions",
) -> LoopResult:
    """Stage 2 (and stage 3, its continuation under another ``name`` and seed): instruction
    tuning on procedural video QA, projector + compressor + LoRA. On a GPU the LLM runs in
    bfloat16 autocast; with ``stage.tower_lr_scale`` the vision tower trains too."""
    if stage.tower_lr_scale < 0:
        raise ConfigError(f"tower_lr_scale must be >= 0, got {stage.tower_lr_scale}")
    shares = (stage.needle_share, stage.what_share)
    if min(shares) < 0 or sum(shares) > 1:
        raise ConfigError(
            f"needle_share and what_share must be >= 0 and sum to at most 1, got {shares}"
        )
    if stage.position_skip < 0:
        raise ConfigError(f"position_skip must be >= 0, got {stage.position_skip}")
    if not 0 <= stage.what_screen_share <= 1:
        raise ConfigError(f"what_screen_share must be in [0, 1], got {stage.what_screen_share}")
    if stage.tower_lr_scale:
        unfreeze_tower(model)
    seeds = split_seeds("train", stage.steps * stage.batch, start=10**9 + stage.seed * 10**7)
    config = LoopConfig(
        steps=stage.steps,
        lr=stage.lr,
        warmup=max(1, stage.steps // 10),
        seed=stage.seed,
        checkpoint_every=25,
        mixed_precision="bf16" if torch.cuda.is_available() else "no",
        lr_scales={"vision_tower.": stage.tower_lr_scale},
    )
    loss = _stage_loss(
        model,
        lambda seed: stage2_example(seed, stage),
        seeds,
        stage.batch,
        padded=stage.padded,
        position_skip=stage.position_skip,
    )
    return run_loop(name, model, loss, config, out_dir)


def student_from_package(directory: str | Path, lora_rank: int) -> LongVideoLM:
    """A packaged longvid-mini made ready to train on: its tower, projector and compressor in
    float32 (the tower frozen) and its LoRA adapter loaded trainable rather than merged, so
    training continues where the package's last stage ended. The adapter must be this recipe's
    (`add_lora` with ``lora_rank``); a `CheckpointError` names the file otherwise."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    from longvid.errors import CheckpointError
    from longvid.models.config import LongVideoConfig

    directory = Path(directory)
    config_path = directory / "config.json"
    adapter_config = directory / "adapter" / "adapter_config.json"
    adapter_weights = directory / "adapter" / "adapter_model.safetensors"
    for needed in (config_path, adapter_config, adapter_weights):
        if not needed.is_file():
            raise CheckpointError("a longvid-mini package needs this file", needed)
    config = LongVideoConfig.load(config_path)
    if config.language_model_weights is None:
        raise CheckpointError("names no base LLM (language_model_weights)", config_path)
    lora = json.loads(adapter_config.read_text())
    found = (lora.get("r"), lora.get("lora_alpha"), sorted(lora.get("target_modules") or []))
    if found != (lora_rank, 2 * lora_rank, sorted(LORA_TARGETS)):
        raise CheckpointError(
            f"the adapter (rank, alpha, targets) is {found}, not this recipe's "
            f"{(lora_rank, 2 * lora_rank, sorted(LORA_TARGETS))}",
            adapter_config,
        )
    model = build_student(config.compressor.name, config=config)
    # The package's own tensors, checked as `LongVideoLM.from_pretrained` checks them.
    source = CheckpointTensors.from_directory(directory)
    load_checked_state(model, source, only=lambda name: not _is_llm(name))
    add_lora(model, lora_rank)
    lora_state = {k: v.float() for k, v in load_file(str(adapter_weights)).items()}
    loaded = set_peft_model_state_dict(model.language_model, lora_state)
    if loaded.unexpected_keys:
        raise CheckpointError(
            f"tensors the LoRA layers do not have: {loaded.unexpected_keys[:5]}", adapter_weights
        )
    return model


def continue_package(
    source: str | Path, work_dir: str | Path, target: str | Path, stage: StageConfig
) -> Path:
    """Stage 3: train the package at ``source`` on for ``stage`` (checkpoints in
    ``work_dir``, resumable) and package the result at ``target`` under the same name."""
    work = Path(work_dir)
    model = student_from_package(source, stage.lora_rank)
    train_stage2(model, work / "stage3", stage, name="stage3-instructions")
    return package(model, target, name=model.config.name, logs=[work / "stage3" / "log.jsonl"])


def package(model: LongVideoLM, target: str | Path, *, name: str, logs: list[Path]) -> Path:
    """Write the trained parts as a longvid checkpoint: config (``trained``), the tower,
    projector and compressor in float16 safetensors, the LoRA adapter and the training curve
    (the tokenizer is the base LLM's). The LLM itself is not stored
    (``language_model_weights``); a model whose config names no base LLM (tiny test models)
    stores it with the adapter merged in."""
    import copy

    target = Path(target)
    model.config.trained = True
    model.config.name = name
    peft_model = model.language_model
    wrapped = hasattr(peft_model, "merge_and_unload")
    adapter = wrapped and model.config.language_model_weights is not None
    if adapter:
        base = peft_model.get_base_model()
    elif wrapped:  # a copy: the wrapper in ``model`` keeps training-ready LoRA layers
        base = copy.deepcopy(peft_model).merge_and_unload()
    else:
        base = peft_model
    model.language_model = base
    tokenizer = model.tokenizer
    if model.config.language_model_weights is not None:
        model.tokenizer = None  # the base LLM's own tokenizer; loading takes it from there
    try:
        model.save_pretrained(target)
    finally:
        model.language_model = peft_model
        model.tokenizer = tokenizer
    _halve(target / "model.safetensors")
    if adapter:
        model.save_adapter(peft_model, target)
        _halve(target / "adapter" / "adapter_model.safetensors")
    plot_curve(logs, target / "training_curve.png")
    return target


def _halve(path: Path) -> None:
    """Store a safetensors file's float32 tensors as float16 (loading casts them back)."""
    from safetensors.torch import load_file, save_file

    tensors = {
        k: v.half() if v.dtype == torch.float32 else v for k, v in load_file(str(path)).items()
    }
    save_file(tensors, str(path), metadata={"format": "pt"})


def train_compressor(
    compressor: str,
    tower: str | Path | None,
    work_dir: str | Path,
    target: str | Path,
    stage1: StageConfig,
    stage2: StageConfig,
    stage3: StageConfig | None = None,
    *,
    name: str | None = None,
    config=None,
) -> Path:
    """The whole recipe for one compressor: stage 1, LoRA, stage 2 (and stage 3 when given),
    packaged at ``target``.

    ``work_dir`` keeps each stage's checkpoints, so rerunning the same command resumes where it
    stopped (a finished stage is skipped; stage 2 restarts from stage 1's final weights).
    """
    work = Path(work_dir)
    model = build_student(compressor, tower, config=config)
    train_stage1(model, work / "stage1", stage1)
    add_lora(model, stage2.lora_rank)
    train_stage2(model, work / "stage2", stage2)
    logs = [work / "stage1" / "log.jsonl", work / "stage2" / "log.jsonl"]
    if stage3 is not None and stage3.steps > 0:
        train_stage2(model, work / "stage3", stage3, name="stage3-instructions")
        logs.append(work / "stage3" / "log.jsonl")
    return package(model, target, name=name or f"longvid-mini-{compressor}", logs=logs)
