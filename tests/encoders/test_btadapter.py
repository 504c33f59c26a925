"""BT-Adapter vision tower parity (shared/parity/ppllava/btadapter_vision.safetensors)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from transformers import CLIPVisionConfig

from longvid.encoders.btadapter import BTAdapterVisionModel
from longvid.models.ppllava_checkpoint import load_ppllava_parts

PARITY = Path(__file__).resolve().parents[2].parent / "shared" / "parity" / "ppllava"
FILE = PARITY / "btadapter_vision.safetensors"
ATOL, RTOL = 1e-5, 1e-4


def _tower(**kwargs) -> tuple[BTAdapterVisionModel, object]:
    if not FILE.is_file():
        pytest.skip(f"parity file {FILE} not present")
    f = safe_open(str(FILE), framework="pt")
    tiny = json.loads(f.metadata()["tiny_config"])
    depth, max_t = tiny.pop("depth"), tiny.pop("max_T")
    tower = BTAdapterVisionModel(CLIPVisionConfig(**tiny), depth, max_t, **kwargs)
    load_ppllava_parts(FILE, vision_tower=tower, prefix="weights.")
    return tower.eval(), f


@pytest.mark.parametrize("case", ["video", "image"])
def test_btadapter_parity(case: str) -> None:
    tower, f = _tower()
    with torch.no_grad():
        out = tower(f.get_tensor(f"{case}.pixel_values"), output_hidden_states=True)
    n = int(f.metadata()["num_hidden_states"])
    assert len(out.hidden_states) == n
    for k in range(n):
        torch.testing.assert_close(
            out.hidden_states[k], f.get_tensor(f"{case}.hidden_states.{k}"), atol=ATOL, rtol=RTOL
        )
    torch.testing.assert_close(
        out.pooler_output, f.get_tensor(f"{case}.pooler_output"), atol=ATOL, rtol=RTOL
    )


def test_three_frame_clip_layout() -> None:
    tower, _ = _tower()
    faithful, _ = _tower(input_layout="ppllava")
    clip = torch.randn(1, 3, 3, 28, 28)  # (B, T=3, C, H, W)
    with torch.no_grad():
        right = tower(clip, output_hidden_states=True).hidden_states[-2]
        # the default reads it as 3 frames; per-frame CLIP matches a 4-D call before the branch
        plain = tower(clip[0], output_hidden_states=True).hidden_states[1]
        torch.testing.assert_close(tower(clip, output_hidden_states=True).hidden_states[1], plain)
        # the reference reads dim 1 as channels: frames and channels swapped
        wrong = faithful(clip, output_hidden_states=True).hidden_states[-2]
        swapped = tower(clip.transpose(1, 2), output_hidden_states=True).hidden_states[-2]
    torch.testing.assert_close(wrong, swapped)
    assert not torch.allclose(right, wrong)


def test_too_many_frames_is_refused() -> None:
    tower, _ = _tower()
    with pytest.raises(ValueError, match="max_T"):
        tower(torch.randn(1, 9, 3, 28, 28))


def test_encode_video_selects_layer_minus_two() -> None:
    tower, f = _tower()
    pixels = f.get_tensor("video.pixel_values")
    features = tower.encode_video(pixels[0])
    torch.testing.assert_close(
        features, f.get_tensor("video.hidden_states.3")[:, 1:], atol=ATOL, rtol=RTOL
    )
