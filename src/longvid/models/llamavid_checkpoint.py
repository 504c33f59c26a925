"""Reading the released LLaMA-VID checkpoint layout into a `LongVideoLM`.

Paper: Li, Wang and Jia, "LLaMA-VID: An Image is Worth 2 Tokens in Large Language Models"
(ECCV 2024); the released checkpoints of its project. The layout is
``shared/parity/llamavid/README.md`` §0: a ``LlavaLlamaAttForCausalLM`` state dict whose
names map one to one onto ours:

==========================================  =================================================
released name                               `LongVideoLM` name
==========================================  =================================================
``model.vlm_att_encoder.*``,                ``compressor.vlm_att_*`` (`LlamaVidCompressor`)
``model.vlm_att_query``, ``model.vlm_att_ln``,
``model.vlm_att_{,key_,val_}projector``
``model.mm_projector.{0,2}.*``              ``projector.{0,2}.*``
``model.embed_tokens``, ``model.layers.*``,  ``language_model.model.*``
``model.norm``
``lm_head.weight``                          ``language_model.lm_head.weight``
==========================================  =================================================

Skipped: ``...bert.embeddings.position_ids`` (a buffer the reference loader supplies when
absent), RoPE ``inv_freq`` buffers, and any ``vision_tower`` tensors (the released model loads
EVA-ViT-g from its own ``eva_vit_g.pth``; our tower is a CLIP-shaped stand-in, see
`longvid.models.registry`). The reference requires ``model.vlm_att_query`` under exactly that
name; so does this loader.

Reference defect (README §6.2): the eval scripts pass ``model_max_length`` as the 4th
positional argument of ``load_pretrained_model``, which is ``load_8bit``, so a set
``--model-max-length`` silently loads in 8 bit. Not reproduced: `load_llamavid_weights` takes
its options by keyword only and never quantises.

========================================  =================  ==============================
defect                                    faithful option    default
========================================  =================  ==============================
``model_max_length`` lands on             none (not          keyword-only options, no
``load_8bit``                             reproduced)        quantisation
========================================  =================  ==============================
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from longvid.errors import CheckpointError
from longvid.models.modeling import CheckpointTensors, LongVideoLM

__all__ = ["LoadReport", "llamavid_name", "load_llamavid_weights"]


def llamavid_name(stored: str) -> str | None:
    """Our parameter name for a released LLaMA-VID tensor name; None for tensors to skip."""
    if stored.endswith("position_ids") or stored.endswith("rotary_emb.inv_freq"):
        return None
    if "vision_tower" in stored:
        return None
    if stored.startswith("model.vlm_att_"):
        return "compressor." + stored[len("model.") :]
    if stored.startswith("model.mm_projector."):
        return "projector." + stored[len("model.mm_projector.") :]
    if stored.startswith("model."):
        return "language_model." + stored
    if stored.startswith("lm_head."):
        return "language_model." + stored
    return stored


@dataclass
class LoadReport:
    """What `load_llamavid_weights` did: ``loaded`` / ``missing`` model names, ``skipped``
    checkpoint names."""

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def load_llamavid_weights(
    model: LongVideoLM,
    source: CheckpointTensors | str | os.PathLike[str],
    *,
    allow_missing: Callable[[str], bool] | None = None,
) -> LoadReport:
    """Copy a released-layout LLaMA-VID state into ``model`` (a ``llamavid``-compressor model).

    ``source``: a `CheckpointTensors` or one ``.safetensors`` file. Every tensor must map to a
    model parameter of the same shape (else one `CheckpointError` listing all problems);
    ``model.vlm_att_query`` must be present under that exact name. Model parameters the
    checkpoint lacks are an error unless ``allow_missing(name)`` is true; the vision tower is
    always allowed to be missing (see the module docstring). Nothing is copied unless all
    checks pass.
    """
    if not isinstance(source, CheckpointTensors):
        source = CheckpointTensors.from_files([Path(source)])
    if "model.vlm_att_query" not in source.names:
        raise CheckpointError(
            "no 'model.vlm_att_query' tensor: not a LLaMA-VID checkpoint", source.path
        )
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    params = {name for name, _ in model.named_parameters()}
    report = LoadReport()
    found: dict[str, str] = {}
    unexpected, mis_shaped = [], []
    for stored in source:
        name = llamavid_name(stored)
        if name is None:
            report.skipped.append(stored)
            continue
        if name not in expected:
            unexpected.append(stored)
        elif tuple(source.shape(stored)) != expected[name]:
            mis_shaped.append(
                f"{stored}: checkpoint {tuple(source.shape(stored))}, model {expected[name]}"
            )
        else:
            found[name] = stored
    allowed = allow_missing or (lambda name: False)
    report.missing = sorted(p for p in params if p not in found)
    refused = [p for p in report.missing if not p.startswith("vision_tower.") and not allowed(p)]
    # lm_head tied to the embedding may be absent.
    refused = [p for p in refused if not _is_tied(model, p)]
    if unexpected or mis_shaped or refused:
        lines = [
            f"checkpoint does not match the LLaMA-VID model: {len(refused)} missing, "
            f"{len(unexpected)} unexpected, {len(mis_shaped)} mis-shaped"
        ]
        lines += [f"  missing: {p}" for p in refused[:20]]
        lines += [f"  unexpected: {p}" for p in unexpected[:20]]
        lines += [f"  mis-shaped: {p}" for p in mis_shaped[:20]]
        raise CheckpointError("\n".join(lines), source.path)
    targets = model.state_dict(keep_vars=True)
    with torch.no_grad():
        for name, stored in found.items():
            targets[name].copy_(source.get(stored))
    report.loaded = sorted(found)
    return report


def _is_tied(model: LongVideoLM, name: str) -> bool:
    if name != "language_model.lm_head.weight":
        return False
    lm = model.language_model
    return lm.get_output_embeddings().weight is lm.get_input_embeddings().weight
