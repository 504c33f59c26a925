"""Reading the released PPLLaVA checkpoint layout into longvid's modules.

Paper: Liu et al., "PPLLaVA: Varied Video Sequence Understanding With Prompt Guidance", 2024,
section 3 (the model is LLaVA-NeXT with PPLLaVA's projector and, for the Vicuna models, a
BT-Adapter vision tower). Key layout (``shared/parity/ppllava/README.md`` sections 3 and 4):

====================================================  ===========================================
checkpoint key                                        longvid module
====================================================  ===========================================
``multi_modal_projector.linear_1.*`` / ``linear_2.*``  ``projector.0.*`` / ``projector.2.*``
                                                      (LLaVA's ``mlp2x_gelu``)
``multi_modal_projector.clip_*``, ``logit_scale``     ``compressor.*`` (`PPLLaVACompressor`)
``vision_tower.vision_model.*`` (incl. ``btadapter_*``) ``vision_tower.*`` (`BTAdapterVisionModel`
                                                      or a plain ``CLIPVisionModel``)
``language_model.*``                                  ``language_model.*``
====================================================  ===========================================

`load_ppllava_parts` loads any subset of these parts from safetensors files (all tensors are
checked first: missing, unexpected or mis-shaped ones raise one `CheckpointError` naming the
file). Building a whole `LongVideoLM` from a released ``config.json`` is not done here yet.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from torch import nn

from longvid.errors import CheckpointError
from longvid.models.modeling import CheckpointTensors, load_checked_state

__all__ = ["load_ppllava_parts", "ppllava_key_mapping"]

_PREFIXES = (
    ("multi_modal_projector.linear_1.", "projector.0."),
    ("multi_modal_projector.linear_2.", "projector.2."),
    ("multi_modal_projector.", "compressor."),
    ("vision_tower.vision_model.", "vision_tower."),
    ("language_model.", "language_model."),
)


def ppllava_key_mapping(names: Sequence[str], prefix: str = "") -> dict[str, str]:
    """Checkpoint key -> longvid key for the names under ``prefix`` (others are left out)."""
    mapping = {}
    for name in names:
        if not name.startswith(prefix):
            continue
        key = name[len(prefix) :]
        for old, new in _PREFIXES:
            if key.startswith(old):
                mapping[name] = new + key[len(old) :]
                break
    return mapping


class _Parts(nn.Module):
    """A container naming the given parts as the mapping expects."""

    def __init__(self, **parts: nn.Module | None) -> None:
        super().__init__()
        for name, module in parts.items():
            if module is not None:
                self.add_module(name, module)


def load_ppllava_parts(
    weights: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    projector: nn.Module | None = None,
    compressor: nn.Module | None = None,
    vision_tower: nn.Module | None = None,
    language_model: nn.Module | None = None,
    prefix: str = "",
) -> None:
    """Copy a PPLLaVA checkpoint's tensors into the given modules, in place.

    Args:
        weights: safetensors file(s) in the released layout (module docstring).
        projector: LLaVA's ``mlp2x_gelu`` (``nn.Sequential`` with Linear at 0 and 2).
        compressor: a `longvid.compressors.ppllava.PPLLaVACompressor`.
        vision_tower: a `longvid.encoders.btadapter.BTAdapterVisionModel` (or CLIP's).
        language_model: the causal LM.
        prefix: a key prefix to strip (``"weights."`` in the parity files); keys without it
            are ignored.

    Raises:
        CheckpointError: a file is unreadable, or the tensors of the given parts do not match
            (every missing, unexpected and mis-shaped tensor listed); nothing is copied then.
    """
    files = [weights] if isinstance(weights, (str, os.PathLike)) else list(weights)
    source = CheckpointTensors.from_files(files)
    parts = _Parts(
        projector=projector,
        compressor=compressor,
        vision_tower=vision_tower,
        language_model=language_model,
    )
    if not list(parts.children()):
        raise CheckpointError("no module given to load into", source.path)
    rename = ppllava_key_mapping(list(source), prefix)
    present = {name.split(".")[0] for name, _ in parts.named_children()}
    unmapped = [n for n in source if n.startswith(prefix) and n not in rename]
    if unmapped:
        raise CheckpointError(
            f"{len(unmapped)} tensor(s) outside the PPLLaVA layout, e.g. {unmapped[0]!r}",
            source.path,
        )

    def ignore(name: str) -> bool:
        # Keys outside the prefix, parts not asked for, and computed buffers.
        if name not in rename:
            return True
        return rename[name].split(".")[0] not in present or name.endswith("position_ids")

    load_checked_state(parts, source, rename=rename, ignore=ignore)


def load_ppllava_checkpoint(
    model: nn.Module,
    weights: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    prefix: str = "",
) -> None:
    """Load a whole released PPLLaVA checkpoint into a `LongVideoLM` built from a PPLLaVA
    config (``ppllava-7b``, ``tiny-ppllava``): projector, prompt-guided compressor, the
    BT-Adapter tower and the language model, every tensor checked before any is copied."""
    load_ppllava_parts(
        weights,
        projector=model.projector,
        compressor=model.compressor,
        vision_tower=model.vision_tower,
        language_model=model.language_model,
        prefix=prefix,
    )
