"""Loading a released MiniGPT4-Video checkpoint into a `LongVideoLM`.

Paper: Ataallah et al., "MiniGPT4-Video", 2024, §3 (a linear projection from EVA-CLIP-g tokens
into the LLM, and LoRA on the LLM). The released files (``video_llama_checkpoint_last.pth``,
``video_mistral_checkpoint_last.pth``) hold only what training changed, as ``{"model":
state_dict}``; the frozen parts come from their own releases (EVA-CLIP-g with BLIP-2's
``ln_vision``, Llama-2-7B-chat or Mistral-7B-Instruct-v0.2), loaded into the base model first.
The layout, as the reference's trainer saves it (trainable parameters of ``MiniGPT4_Video``):

=========================================================================  ===================
checkpoint key                                                             here
=========================================================================  ===================
``llama_proj.weight (H, 4*C)``, ``llama_proj.bias (H)``                    ``compressor.
                                                                           llama_proj``
``ln_vision.weight``, ``ln_vision.bias`` (present only if saved)           ``compressor.
                                                                           ln_vision``
``llama_model.base_model.model.<m>.lora_A[.default].weight (r, in)``       merged into
``llama_model.base_model.model.<m>.lora_B[.default].weight (out, r)``      ``language_model.
                                                                           <m>.weight``
``llama_model.base_model.model.<p>`` / ``....<m>.base_layer.weight``       ``language_model.
(a full tensor, e.g. ``modules_to_save``)                                  <p>``
=========================================================================  ===================

LoRA (r 64, alpha 16 on ``q_proj`` / ``v_proj`` in the released configs) is **merged**:
``W <- W + (alpha / r) * B @ A``, computed in float32 and cast back to ``W``'s dtype. For
inference this is the function the reference's unmerged peft forward computes (LoRA dropout is
off at eval), with no extra matmuls per step and no dependency on ``peft``; ``r`` is read from
the tensors, ``alpha`` is an argument (the released value by default).

Weights load from safetensors; a pickle (``.pth``, as released) only with ``allow_pickle=True``
and then through ``torch.load(weights_only=True)``. Unknown, missing or mis-shaped tensors raise
one `CheckpointError` listing them, and nothing is changed unless all match.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch
from torch import Tensor

from longvid.errors import CheckpointError
from longvid.models.modeling import LongVideoLM

__all__ = [
    "RELEASED_LORA_ALPHA",
    "load_minigpt4video_checkpoint",
    "read_checkpoint_state",
]

#: ``lora_alpha`` of the released configs (``lora_r`` 64 is read from the tensors).
RELEASED_LORA_ALPHA = 16.0

_PEFT = "llama_model.base_model.model."
_LORA = re.compile(r"^llama_model\.base_model\.model\.(.+)\.lora_([AB])(?:\.[^.]+)?\.weight$")
_IGNORED = re.compile(r"(^|\.)rotary_emb\.inv_freq$")


def read_checkpoint_state(
    path: str | os.PathLike[str], *, allow_pickle: bool = False
) -> dict[str, Tensor]:
    """The tensors of a checkpoint file (safetensors, or a trusted pickle), ``{"model": ...}``
    unwrapped."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError("checkpoint file not found", path)
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as err:
            raise CheckpointError(f"not a readable safetensors file: {err}", path) from None
    if not allow_pickle:
        raise CheckpointError(
            "pickle checkpoints (.pth, as MiniGPT4-Video releases them) can run code when "
            "loaded and are refused by default; pass allow_pickle=True to load a trusted file "
            "with torch.load(weights_only=True), or convert it to safetensors",
            path,
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError, RuntimeError, ...
        raise CheckpointError(f"torch.load(weights_only=True) refused it: {err}", path) from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError("does not hold a state dict (nor {'model': state dict})", path)
    return state


def _fmt(shape: tuple[int, ...] | torch.Size) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


def load_minigpt4video_checkpoint(
    model: LongVideoLM,
    checkpoint: str | os.PathLike[str],
    *,
    allow_pickle: bool = False,
    lora_alpha: float = RELEASED_LORA_ALPHA,
) -> LongVideoLM:
    """Put a released MiniGPT4-Video checkpoint into ``model`` (in place; returned).

    ``model`` has the ``minigpt4video`` compressor and its frozen weights already loaded (vision
    tower, ``ln_vision`` and LLM from their own releases, e.g. a `LongVideoLM.from_pretrained`
    directory). ``llama_proj`` (and ``ln_vision`` when saved) are copied; each LoRA pair is
    merged into its LLM weight with scale ``lora_alpha / r``. See the module table for the key
    layout; every problem is listed in one `CheckpointError`.
    """
    if getattr(model.compressor, "name", None) != "minigpt4video":
        raise CheckpointError(
            f"the model's compressor is {getattr(model.compressor, 'name', None)!r}; a "
            "MiniGPT4-Video checkpoint needs 'minigpt4video'",
            checkpoint,
        )
    state = read_checkpoint_state(checkpoint, allow_pickle=allow_pickle)
    targets = model.state_dict(keep_vars=True)
    copies: dict[str, Tensor] = {}
    lora: dict[str, dict[str, Tensor]] = {}
    unexpected: list[str] = []
    for key, tensor in state.items():
        if _IGNORED.search(key):
            continue
        match = _LORA.match(key)
        if match:
            lora.setdefault(match.group(1), {})[match.group(2)] = tensor
            continue
        if key.startswith(("llama_proj.", "ln_vision.")):
            name = "compressor." + key
        elif key.startswith(_PEFT):
            name = "language_model." + key[len(_PEFT) :].replace(".base_layer.", ".")
        elif key.startswith("llama_model."):
            name = "language_model." + key[len("llama_model.") :]
        else:
            unexpected.append(f"{key} {_fmt(tensor.shape)}")
            continue
        if name not in targets:
            unexpected.append(f"{key} {_fmt(tensor.shape)}")
        else:
            copies[name] = tensor
    problems: list[str] = []
    for name, tensor in copies.items():
        if tuple(tensor.shape) != tuple(targets[name].shape):
            problems.append(
                f"mis-shaped: {name}: checkpoint {_fmt(tensor.shape)}, model "
                f"{_fmt(targets[name].shape)}"
            )
    for required in ("compressor.llama_proj.weight", "compressor.llama_proj.bias"):
        if required not in copies:
            problems.append(f"missing: {required[len('compressor.') :]}")
    merges: dict[str, tuple[Tensor, Tensor]] = {}
    for module, pair in sorted(lora.items()):
        name = f"language_model.{module}.weight"
        if set(pair) != {"A", "B"}:
            problems.append(f"missing: the lora_{'B' if 'A' in pair else 'A'} of {module}")
        elif name not in targets:
            unexpected.append(f"LoRA of {module} (no such module in the language model)")
        else:
            a, b = pair["A"], pair["B"]
            out_f, in_f = targets[name].shape
            if (
                a.ndim != 2
                or b.ndim != 2
                or a.shape[1] != in_f
                or b.shape[0] != out_f
                or (a.shape[0] != b.shape[1])
            ):
                problems.append(
                    f"mis-shaped: LoRA of {module}: A {_fmt(a.shape)}, B {_fmt(b.shape)} for a "
                    f"({out_f}, {in_f}) weight"
                )
            else:
                merges[name] = (a, b)
    problems += [f"unexpected: {u}" for u in unexpected]
    if problems:
        shown = "\n".join(f"  {p}" for p in problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise CheckpointError(
            f"not a MiniGPT4-Video checkpoint for this model ({len(problems)} problem(s)):\n"
            + shown
            + more,
            checkpoint,
        )
    with torch.no_grad():
        for name, tensor in copies.items():
            targets[name].copy_(tensor)
        for name, (a, b) in merges.items():
            weight = targets[name]
            scale = lora_alpha / a.shape[0]
            delta = (b.float() @ a.float()) * scale
            weight.copy_((weight.float() + delta.to(weight.device)).to(weight.dtype))
    return model
