"""BT-Adapter: a CLIP vision tower with a temporal side branch, as PPLLaVA's Vicuna models use it.

Paper: Liu et al., "One For All: Video Conversation is Feasible Without Video Instruction
Tuning" (BT-Adapter), 2023, section 3.1 (the branching temporal adapter), used by PPLLaVA
(Liu et al., 2024, section 4.1) for every released Vicuna model. The contract is section 4 and
5a of ``shared/parity/ppllava/README.md`` (the reference's ``CLIPVisionModel_BTAdapter``).

The standard CLIP layers run per frame and are never changed by the branch. After each of the
last ``depth`` encoder layers a branch ``x2`` of ``1 + P*T`` tokens (its own CLS, then patch
``p`` of frame ``t`` at index ``p*T + t``) is updated: first built from that layer's output
(plus the CLIP position table, the time embedding and ``btadapter_cls_token``), later the
layer's output is added to it; then a temporal block (attention over the T tokens of each
patch, ``temporal_fc``, residual) and a spatial block (CLIP attention over each frame's
``[CLS, patches]`` with the CLS outputs averaged over frames, then LayerNorm + MLP) update it.
Every recorded hidden state after that is, per frame, ``[main CLS, (main + branch patches)/2]``.

The module subclasses transformers' ``CLIPVisionModel`` (so its keys are the reference's
``vision_model.*`` keys: ``embeddings``, ``pre_layrnorm``, ``encoder.layers``,
``post_layernorm``) and adds ``btadapter_S_layers``, ``btadapter_T_layers``,
``btadapter_time_embed`` and ``btadapter_cls_token``.

Reference defects:

=============================================  ==========================  =====================
defect                                         faithful option             default
=============================================  ==========================  =====================
a 5-D input whose 2nd dim is 3 is read as      ``input_layout="ppllava"``  ``"BTCHW"``: 5-D
(B, C, T, H, W), so a 3-frame clip in                                      input is always
(B, T, C, H, W) is mis-read                                                (B, T, C, H, W)
=============================================  ==========================  =====================
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor, nn
from transformers import CLIPVisionConfig, CLIPVisionModel
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.models.clip.modeling_clip import CLIPMLP, CLIPAttention

__all__ = ["BTAdapterVisionModel", "InputLayout"]

InputLayout = Literal["BTCHW", "ppllava"]


class _TemporalLayer(nn.Module):
    """Attention over time for each patch (LayerNorm, CLIP attention, ``temporal_fc``)."""

    def __init__(self, config: CLIPVisionConfig) -> None:
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.self_attn = CLIPAttention(config)
        self.temporal_fc = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, branch: Tensor, frames: int) -> Tensor:
        batch, length, dim = branch.shape
        patches = branch[:, 1:].reshape(-1, frames, dim)  # (B*P, T, D): index p*T + t
        attended, _ = self.self_attn(self.layer_norm1(patches))
        patches = patches + self.temporal_fc(attended)
        return torch.cat([branch[:, :1], patches.reshape(batch, length - 1, dim)], dim=1)


class _SpatialLayer(nn.Module):
    """Attention over each frame's ``[branch CLS, patches]``, CLS averaged, then the MLP."""

    def __init__(self, config: CLIPVisionConfig) -> None:
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.self_attn = CLIPAttention(config)
        self.layer_norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = CLIPMLP(config)

    def forward(self, branch: Tensor, frames: int) -> Tensor:
        batch, length, dim = branch.shape
        patches_per_frame = (length - 1) // frames
        # (B, P, T, D) -> per frame (B*T, P, D), each with the branch CLS in front.
        patches = branch[:, 1:].reshape(batch, patches_per_frame, frames, dim).transpose(1, 2)
        cls = branch[:, :1].expand(batch, frames, dim).reshape(batch * frames, 1, dim)
        seq = torch.cat([cls, patches.reshape(batch * frames, patches_per_frame, dim)], dim=1)
        attended, _ = self.self_attn(self.layer_norm1(seq))
        attended = attended.reshape(batch, frames, 1 + patches_per_frame, dim)
        cls_out = attended[:, :, :1].mean(dim=1)
        patch_out = attended[:, :, 1:].transpose(1, 2).reshape(batch, length - 1, dim)
        branch = branch + torch.cat([cls_out, patch_out], dim=1)
        return branch + self.mlp(self.layer_norm2(branch))


class BTAdapterVisionModel(CLIPVisionModel):
    """CLIP vision tower + BT-Adapter branch over the last ``depth`` layers (module docstring).

    ``config`` is a ``CLIPVisionConfig``; ``depth`` (adapter blocks) and ``max_frames``
    (rows of ``btadapter_time_embed``, the reference's ``max_T``) default to the config's
    ``btadapter_depth`` / ``btadapter_max_T`` attributes when present, else 4 and 64 (our
    guesses for the released model: the parity files fix only the tiny 2 / 8; a released
    checkpoint's shapes tell, and a mismatch is a `CheckpointError` when loading it).
    """

    def __init__(
        self,
        config: CLIPVisionConfig,
        depth: int | None = None,
        max_frames: int | None = None,
        input_layout: InputLayout = "BTCHW",
    ) -> None:
        super().__init__(config)
        depth = int(depth if depth is not None else getattr(config, "btadapter_depth", 4))
        max_frames = int(
            max_frames if max_frames is not None else getattr(config, "btadapter_max_T", 64)
        )
        if not 1 <= depth <= config.num_hidden_layers:
            raise ValueError(f"depth must be in 1..{config.num_hidden_layers}, got {depth}")
        if input_layout not in ("BTCHW", "ppllava"):
            raise ValueError(f"input_layout must be 'BTCHW' or 'ppllava', got {input_layout!r}")
        self.depth = depth
        self.max_frames = max_frames
        self.input_layout = input_layout
        dim = config.hidden_size
        self.btadapter_S_layers = nn.ModuleList(_SpatialLayer(config) for _ in range(depth))
        self.btadapter_T_layers = nn.ModuleList(_TemporalLayer(config) for _ in range(depth))
        self.btadapter_time_embed = nn.Embedding(max_frames, dim)
        self.btadapter_cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        with torch.no_grad():
            for layer in self.btadapter_T_layers:  # the reference starts temporal_fc at zero
                layer.temporal_fc.weight.zero_()
                layer.temporal_fc.bias.zero_()

    def _frames(self, pixel_values: Tensor) -> tuple[Tensor, int, int]:
        """``(B*T, C, H, W)`` frames, B and T, from 4-D (T = 1) or 5-D input."""
        if pixel_values.ndim == 4:
            return pixel_values, pixel_values.shape[0], 1
        if pixel_values.ndim != 5:
            raise ValueError(
                f"pixel_values must be (N, C, H, W) or (B, T, C, H, W), got "
                f"{tuple(pixel_values.shape)}"
            )
        if self.input_layout == "ppllava" and pixel_values.shape[1] == 3:
            pixel_values = pixel_values.transpose(1, 2)  # read as (B, C, T, H, W)
        batch, frames = pixel_values.shape[:2]
        if frames > self.max_frames:
            raise ValueError(
                f"{frames} frames exceed the time embedding's {self.max_frames} (max_T)"
            )
        return pixel_values.flatten(0, 1), batch, frames

    def forward(  # type: ignore[override]
        self,
        pixel_values: Tensor,
        output_hidden_states: bool | None = None,
        **kwargs: Any,
    ) -> BaseModelOutputWithPooling:
        """``pixel_values`` ``(B, T, C, H, W)`` (one video per batch item) or ``(N, C, H, W)``
        (independent images, T = 1). Returns ``last_hidden_state`` and each of
        ``hidden_states`` as ``(B*T, 1+P, D)``, ``pooler_output`` ``(B*T, D)``."""
        frames_in, batch, frames = self._frames(pixel_values)
        main = self.pre_layrnorm(
            self.embeddings(frames_in.to(self.embeddings.patch_embedding.weight.dtype))
        )
        dim = main.shape[-1]
        patches = main.shape[1] - 1
        layers = self.encoder.layers
        first_adapted = len(layers) - self.depth
        pos = self.embeddings.position_embedding.weight
        recorded = [main]
        branch: Tensor | None = None
        for k, layer in enumerate(layers):
            main = layer(main, None)
            if isinstance(main, tuple):
                main = main[0]
            if k >= first_adapted:
                per_video = main.reshape(batch, frames, 1 + patches, dim)
                cls = per_video[:, :, 0].mean(dim=1, keepdim=True)  # (B, 1, D)
                grid = per_video[:, :, 1:].transpose(1, 2)  # (B, P, T, D)
                if branch is None:
                    cls = (cls + self.btadapter_cls_token + pos[0]) / 2
                    time = self.btadapter_time_embed.weight[:frames]
                    grid = grid + pos[1:, None] + time[None]
                    branch = torch.cat([cls, grid.reshape(batch, patches * frames, dim)], 1)
                else:
                    branch = branch + torch.cat([cls, grid.reshape(batch, -1, dim)], 1)
                j = k - first_adapted
                branch = self.btadapter_T_layers[j](branch, frames)
                branch = self.btadapter_S_layers[j](branch, frames)
            recorded.append(self._combine(main, branch, batch, frames))
        last = recorded[-1]
        cls_main = main[:, 0]
        if branch is not None:
            cls_main = cls_main + branch[:, 0].repeat_interleave(frames, dim=0)
        return BaseModelOutputWithPooling(
            last_hidden_state=last,
            pooler_output=self.post_layernorm(cls_main),
            hidden_states=tuple(recorded) if output_hidden_states else None,
        )

    @torch.no_grad()
    def encode_video(self, frames: Tensor, select_layer: int = -2) -> Tensor:
        """Patch features ``(T, P, D)`` of one video's preprocessed frames ``(T, C, H, W)``:
        ``hidden_states[select_layer]`` with CLS dropped, as LLaVA selects them. The frames go
        through together (the branch attends over time), so T is bounded by ``max_frames``."""
        if frames.ndim != 4:
            raise ValueError(f"expected frames (T, C, H, W), got {tuple(frames.shape)}")
        out = self(frames[None], output_hidden_states=True)
        return out.hidden_states[select_layer][:, 1:]

    @staticmethod
    def _combine(main: Tensor, branch: Tensor | None, batch: int, frames: int) -> Tensor:
        """Per frame ``[main CLS, (main patches + branch patches of that frame) / 2]``."""
        if branch is None:
            return main
        dim = main.shape[-1]
        side = branch[:, 1:].reshape(batch, -1, frames, dim).transpose(1, 2).flatten(0, 1)
        return torch.cat([main[:, :1], (main[:, 1:] + side) / 2], dim=1)
