"""Where LLaMA-VID's visual tokens go in the LLM input: short video, movie mode, training.

Paper: Li, Wang and Jia, "LLaMA-VID: An Image is Worth 2 Tokens in Large Language Models"
(ECCV 2024), §3.2 (training, including long-video tuning). Contract:
``shared/parity/llamavid/README.md`` §2 (the reference's ``tokenizer_image_token`` and
``prepare_inputs_labels_for_multimodal``).

- `tokenizer_image_token`: ``<image>`` becomes ``-200``; each text chunk is tokenized on its
  own and only the first chunk keeps its BOS.
- `prepare_multimodal_inputs`, **normal mode** (images, short video): the k-th ``-200`` of a
  sample is replaced by *all* rows of that sample's k-th visual block (the tokens made with
  its k-th Q-Former prompt: every frame at one place). Inserted rows get label -100.
- **long-video (movie) mode**: the sequence is not expanded; the prompt already holds one
  ``<image>`` per visual token (2 per frame), and the ``-200`` positions receive the visual
  rows in order. Labels pass through.
- Batching: equal lengths stack, with ``True`` prepended to the mask for the added rows;
  unequal lengths are right-padded with zero vectors and label -100, and sample b's mask is
  ``[True]*(new_len_b - L_in) + mask_b + [False]*(max_len - new_len_b)`` (right for the
  right-padded batches of the training collator).

Reference defects (README §2.1):

===================================  ====================================  ===================
defect                               faithful option                       default
===================================  ====================================  ===================
unequal lengths without labels       ``unequal_without_labels=             the same mask rule
(batched inference) raise            "llamavid-raise"`` (raises            as with labels;
``UnboundLocalError``                `BatchedInferenceError`)              labels stay None
===================================  ====================================  ===================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, NamedTuple

import torch
from torch import Tensor

from longvid.errors import LongvidError

__all__ = [
    "IGNORE_INDEX",
    "IMAGE_TOKEN_INDEX",
    "BatchedInferenceError",
    "MultimodalInputs",
    "prepare_multimodal_inputs",
    "tokenizer_image_token",
]

IMAGE_TOKEN_INDEX = -200
IGNORE_INDEX = -100


class BatchedInferenceError(LongvidError):
    """The faithful reference behaviour: a batch of unequal lengths without labels."""


class MultimodalInputs(NamedTuple):
    """``inputs_embeds (B, L, H)``, ``attention_mask (B, L)`` bool, ``labels (B, L)`` or None."""

    inputs_embeds: Tensor
    attention_mask: Tensor
    labels: Tensor | None


def tokenizer_image_token(
    prompt: str,
    tokenize: Callable[[str], list[int]],
    *,
    bos_token_id: int | None,
    image_token: str = "<image>",
    image_token_index: int = IMAGE_TOKEN_INDEX,
) -> list[int]:
    """Ids of ``prompt`` with each ``image_token`` as ``image_token_index`` (README §2.1).

    ``tokenize(chunk)`` returns a chunk's ids as the LLM tokenizer does (with its BOS). When
    the first chunk starts with ``bos_token_id`` it is kept once and the first id of *every*
    chunk is dropped (the BOS each chunk got); consecutive placeholders give consecutive ids.
    """
    chunks = [list(tokenize(chunk)) for chunk in prompt.split(image_token)]
    offset = int(bool(chunks and chunks[0] and chunks[0][0] == bos_token_id))
    ids: list[int] = [chunks[0][0]] if offset else []
    for i, chunk in enumerate(chunks):
        if i:
            ids.append(image_token_index)
        ids.extend(chunk[offset:])
    return ids


def prepare_multimodal_inputs(
    input_ids: Tensor,
    visual: Sequence[Tensor],
    embed: Callable[[Tensor], Tensor],
    *,
    attention_mask: Tensor | None = None,
    labels: Tensor | None = None,
    long_video: bool = False,
    image_token_index: int = IMAGE_TOKEN_INDEX,
    unequal_without_labels: Literal["mask", "llamavid-raise"] = "mask",
) -> MultimodalInputs:
    """Splice LLaMA-VID visual tokens into a batch (README §2.1).

    ``visual[s]``: sample s's tokens ``(n_s, T_s*(1+n), H)`` (one block per Q-Former prompt,
    i.e. per ``-200`` of the sample in normal mode; in long-video mode all rows in order).
    ``embed`` is the LLM's input embedding. A sample without ``-200`` is plain text.
    """
    batch, length = input_ids.shape
    if len(visual) < batch:
        raise ValueError(f"{batch} samples but visual tokens for {len(visual)}")
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids, dtype=torch.bool)
    embeds, new_labels = [], []
    for s in range(batch):
        ids = input_ids[s]
        lab = labels[s] if labels is not None else None
        where = (ids == image_token_index).nonzero().flatten().tolist()
        text_ids = ids.clamp_min(0)
        if long_video:
            rows = visual[s].reshape(-1, visual[s].shape[-1])
            if len(where) != rows.shape[0]:
                raise ValueError(
                    f"sample {s}: {len(where)} <image> placeholders for {rows.shape[0]} "
                    "visual tokens (movie mode needs one per token)"
                )
            out = embed(text_ids[None])[0].clone()
            if where:
                out[torch.tensor(where)] = rows.to(out.dtype)
            embeds.append(out)
            new_labels.append(lab)
            continue
        blocks = visual[s]
        if where and len(where) > blocks.shape[0]:
            raise ValueError(
                f"sample {s}: {len(where)} <image> placeholders but {blocks.shape[0]} visual blocks"
            )
        parts, part_labels, start = [], [], 0
        for k, pos in enumerate(where + [length]):
            text = text_ids[start:pos]
            parts.append(embed(text[None])[0])
            if lab is not None:
                part_labels.append(lab[start:pos])
            if pos == length:
                break
            block = blocks[k].to(parts[-1].dtype)
            parts.append(block)
            if lab is not None:
                part_labels.append(lab.new_full((block.shape[0],), IGNORE_INDEX))
            start = pos + 1
        embeds.append(torch.cat(parts))
        new_labels.append(torch.cat(part_labels) if lab is not None else None)

    lengths = [e.shape[0] for e in embeds]
    mask_in = attention_mask.to(torch.bool)
    if len(set(lengths)) == 1:
        grow = lengths[0] - length
        mask = torch.cat([mask_in.new_ones(batch, grow), mask_in], dim=1)
        stacked_labels = torch.stack(new_labels) if labels is not None else None  # type: ignore[arg-type]
        return MultimodalInputs(torch.stack(embeds), mask, stacked_labels)
    if labels is None and unequal_without_labels == "llamavid-raise":
        raise BatchedInferenceError(
            "batched inference with unequal lengths and no labels: the reference raises "
            "UnboundLocalError ('_new_labels') here"
        )
    longest = max(lengths)
    dim = embeds[0].shape[-1]
    out = embeds[0].new_zeros(batch, longest, dim)
    mask = mask_in.new_zeros(batch, longest)
    lab_out = labels.new_full((batch, longest), IGNORE_INDEX) if labels is not None else None
    for s, e in enumerate(embeds):
        n = e.shape[0]
        out[s, :n] = e
        grow = n - length
        mask[s, :n] = torch.cat([mask_in.new_ones(grow), mask_in[s]])
        if lab_out is not None:
            lab_out[s, :n] = new_labels[s]  # type: ignore[index]
    return MultimodalInputs(out, mask, lab_out)
