"""LongVA / LLaVA sequence assembly: splice visual tokens into embedded text at ``<image>`` ids.

This is the tensor half of the reference's ``prepare_inputs_labels_for_multimodal`` (LongVA,
``llava_arch.py``; README §2 step 5-7 of ``shared/parity/longva``): for each batch row, drop the
positions the attention mask hides, split the ids at every placeholder (``-200``), embed the text
pieces, interleave them with the visual items, optionally cut to a maximum length, and pad the
rows to a common length with zero vectors. The visual items are already merged token sequences
(``longvid.compressors.longva.merge_visual_item``).

Reference defects (``README §10``) that concern this function:

====  ========================================  =============================  ===================
§10   defect                                    faithful option                default
====  ========================================  =============================  ===================
6     one batch-global item counter, and a row  ``placeholders=``              ``"strict"``: a row
      with no ``<image>`` still consumes (and   ``"longva-reference"``         without placeholders
      discards) one visual item                                                takes no item, and
                                                                               the placeholder and
                                                                               item counts must
                                                                               match
====  ========================================  =============================  ===================

In both modes the k-th placeholder of the batch (row by row, left to right) takes the k-th item.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, NamedTuple

import torch
from torch import Tensor

from longvid.prompting.prompt import IMAGE_TOKEN_INDEX

__all__ = [
    "IGNORE_INDEX",
    "IMAGE_TOKEN_INDEX",
    "MultimodalSequence",
    "assemble_multimodal_sequence",
]

IGNORE_INDEX = -100
"""Label of positions the loss ignores (visual tokens and padding)."""


class MultimodalSequence(NamedTuple):
    """The assembled batch.

    ``inputs_embeds (B, L, D)``; ``attention_mask (B, L)`` bool, True on real positions;
    ``position_ids (B, L)`` int64, ``0..len-1`` over each row's real positions and 0 on padding
    (the reference returns None when the caller passed none, and the LLM then counts from the
    first column, which is the same thing for right padding); ``labels (B, L)`` with
    ``IGNORE_INDEX`` on visual tokens and padding, or None when no labels were given.
    """

    inputs_embeds: Tensor
    attention_mask: Tensor
    position_ids: Tensor
    labels: Tensor | None


def assemble_multimodal_sequence(
    input_ids: Tensor,
    visual_items: Sequence[Tensor],
    embed_tokens: Callable[[Tensor], Tensor],
    *,
    attention_mask: Tensor | None = None,
    labels: Tensor | None = None,
    max_length: int | None = None,
    padding_side: Literal["right", "left"] = "right",
    placeholders: Literal["strict", "longva-reference"] = "strict",
    image_token_index: int = IMAGE_TOKEN_INDEX,
) -> MultimodalSequence:
    """Build ``inputs_embeds`` for an LLM from token ids with placeholders and visual tokens.

    Args:
        input_ids: ``(B, L)`` int64 with ``image_token_index`` where visual items go.
        visual_items: one ``(n_k, D)`` tensor per visual item, in batch order.
        embed_tokens: the LLM's input embedding (e.g. ``model.get_input_embeddings()``).
        attention_mask: ``(B, L)``; positions where it is False are dropped before assembly.
        labels: ``(B, L)`` training labels, or None.
        max_length: cut every assembled row to this many positions (the reference's
            ``tokenizer_model_max_length``); None keeps everything.
        padding_side: where the zero padding goes (``tokenizer_padding_side``).
        placeholders: ``"strict"`` (default) or ``"longva-reference"`` (README §10.6; see the
            module docstring).
        image_token_index: the placeholder id (-200).

    Returns:
        A :class:`MultimodalSequence`.
    """
    if input_ids.ndim != 2:
        raise ValueError(f"input_ids must be (B, L), got shape {tuple(input_ids.shape)}")
    if placeholders not in ("strict", "longva-reference"):
        raise ValueError(
            f"placeholders must be 'strict' or 'longva-reference', got {placeholders!r}"
        )
    if padding_side not in ("right", "left"):
        raise ValueError(f"padding_side must be 'right' or 'left', got {padding_side!r}")
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids, dtype=torch.bool)
    attention_mask = attention_mask.bool()
    if placeholders == "strict":
        wanted = int(((input_ids == image_token_index) & attention_mask).sum())
        if wanted != len(visual_items):
            raise ValueError(
                f"the batch has {wanted} image placeholders but {len(visual_items)} visual items"
            )

    rows: list[Tensor] = []
    row_labels: list[Tensor] = []
    item = 0
    for b in range(input_ids.shape[0]):
        ids = input_ids[b][attention_mask[b]]
        lab = labels[b][attention_mask[b]] if labels is not None else None
        cuts = torch.nonzero(ids == image_token_index).flatten().tolist()
        if not cuts and placeholders == "longva-reference":
            item += 1  # the reference consumes (and discards) one item for a text-only row
        bounds = [-1, *cuts, ids.shape[0]]
        text_ids = [ids[bounds[i] + 1 : bounds[i + 1]] for i in range(len(bounds) - 1)]
        # One embedding call per row over all its text, then split: as the reference does.
        text = torch.split(embed_tokens(torch.cat(text_ids)), [len(t) for t in text_ids])
        pieces: list[Tensor] = []
        label_pieces: list[Tensor] = []
        for i, piece in enumerate(text):
            pieces.append(piece)
            if lab is not None:
                label_pieces.append(lab[bounds[i] + 1 : bounds[i + 1]])
            if i < len(cuts):
                if item >= len(visual_items):
                    raise ValueError(
                        f"placeholder {item} (row {b}) has no visual item: "
                        f"only {len(visual_items)} given"
                    )
                visual = visual_items[item].to(device=piece.device, dtype=piece.dtype)
                item += 1
                pieces.append(visual)
                if lab is not None:
                    label_pieces.append(
                        torch.full(
                            (visual.shape[0],), IGNORE_INDEX, dtype=lab.dtype, device=lab.device
                        )
                    )
        rows.append(torch.cat(pieces)[:max_length])
        if lab is not None:
            row_labels.append(torch.cat(label_pieces)[:max_length])

    length = max(row.shape[0] for row in rows)
    first = rows[0]
    batch = len(rows)
    embeds = first.new_zeros((batch, length, first.shape[-1]))
    mask = torch.zeros((batch, length), dtype=torch.bool, device=first.device)
    positions = torch.zeros((batch, length), dtype=torch.long, device=first.device)
    out_labels = (
        torch.full((batch, length), IGNORE_INDEX, dtype=labels.dtype, device=labels.device)
        if labels is not None
        else None
    )
    for b, row in enumerate(rows):
        n = row.shape[0]
        span = slice(0, n) if padding_side == "right" else slice(length - n, length)
        embeds[b, span] = row
        mask[b, span] = True
        positions[b, span] = torch.arange(n, device=first.device)
        if out_labels is not None:
            out_labels[b, span] = row_labels[b]
    return MultimodalSequence(embeds, mask, positions, out_labels)
