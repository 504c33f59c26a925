"""Tests of longvid.models.rope against every tensor of the LongVA parity file
``longva_rope_theta1e9`` (README §4): ``inv_freq`` exact, cos / sin / rotated q and k at
``atol=rtol=1e-5`` (they come out exact), for positions up to 1e6.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from longvid.models.rope import apply_rotary_pos_emb, rope_cos_sin, rope_inv_freq

PARITY = Path(__file__).resolve().parents[2].parent / "shared" / "parity" / "longva"
TOL = {"atol": 1e-5, "rtol": 1e-5}


@pytest.fixture(scope="module")
def case() -> dict[str, torch.Tensor]:
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = PARITY / "longva_rope_theta1e9.safetensors"
    if not path.is_file():
        pytest.skip(f"LongVA parity file {path} not found (expected beside the checkout)")
    with safe_open(str(path), "pt") as f:
        assert f.metadata()["head_dim"] == "128"
    return load_file(path)


def _diff(name: str, got: torch.Tensor, want: torch.Tensor) -> None:
    assert got.shape == want.shape and got.dtype == want.dtype == torch.float32
    print(f"\nPARITY longva_rope_theta1e9 {name}: max abs diff {(got - want).abs().max().item()}")


@pytest.mark.parametrize("theta", ["1e9", "1e6"])
def test_inv_freq_is_torch_float32_pow(case, theta):
    got = rope_inv_freq(128, float(theta))
    _diff(f"inv_freq_theta{theta}", got, case[f"inv_freq_theta{theta}"])
    assert torch.equal(got, case[f"inv_freq_theta{theta}"])


@pytest.mark.parametrize("theta", ["1e9", "1e6"])
def test_cos_sin_every_position(case, theta):
    cos, sin = rope_cos_sin(case["position_ids"], 128, float(theta))
    _diff(f"cos_theta{theta}", cos[0], case[f"cos_theta{theta}"])
    _diff(f"sin_theta{theta}", sin[0], case[f"sin_theta{theta}"])
    torch.testing.assert_close(cos[0], case[f"cos_theta{theta}"], **TOL)
    torch.testing.assert_close(sin[0], case[f"sin_theta{theta}"], **TOL)


def test_rotated_q_and_k(case):
    cos, sin = rope_cos_sin(case["position_ids"], 128, 1e9)
    q_rot, k_rot = apply_rotary_pos_emb(case["q"], case["k"], cos, sin)
    _diff("q_rot_theta1e9", q_rot, case["q_rot_theta1e9"])
    _diff("k_rot_theta1e9", k_rot, case["k_rot_theta1e9"])
    torch.testing.assert_close(q_rot, case["q_rot_theta1e9"], **TOL)
    torch.testing.assert_close(k_rot, case["k_rot_theta1e9"], **TOL)


def test_lowest_frequency_turns_slowly_with_theta_1e9():
    # README §4: at position 224000 the lowest frequency turns ~3.1e-4 rad (1e9) vs ~0.28 (1e6).
    slow = 224000 * rope_inv_freq(128, 1e9)[-1].item()
    fast = 224000 * rope_inv_freq(128, 1e6)[-1].item()
    assert math.isclose(slow, 3.1e-4, rel_tol=0.05)
    assert math.isclose(fast, 0.28, rel_tol=0.05)


def test_one_dimensional_positions_and_dtype():
    cos, sin = rope_cos_sin(torch.arange(5), 8, 1e6, dtype=torch.bfloat16)
    assert cos.shape == sin.shape == (1, 5, 8) and cos.dtype == torch.bfloat16
    assert torch.equal(cos[0, 0].float(), torch.ones(8))
    with pytest.raises(ValueError):
        rope_inv_freq(7, 1e6)
