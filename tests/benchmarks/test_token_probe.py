"""benchmarks/token_probe.py: the probe fits what is there and nothing that is not."""

from __future__ import annotations

import pytest
import torch

from tests.benchmarks import benchmark_script


@pytest.fixture(scope="module")
def token_probe():
    with benchmark_script("token_probe") as module:
        yield module


def test_the_probe_reads_a_linear_label_and_not_noise(token_probe) -> None:
    generator = torch.Generator().manual_seed(0)
    y = torch.randint(0, 4, (600,), generator=generator)
    x = torch.randn(600, 40, generator=generator)
    x[:, :4] += 6 * torch.nn.functional.one_hot(y, 4)  # the label, linearly readable
    noise = torch.randint(0, 4, (600,), generator=generator)
    assert token_probe.probe(x[:400], y[:400], x[400:], y[400:], 4) > 0.9
    assert token_probe.probe(x[:400], noise[:400], x[400:], noise[400:], 4) < 0.4


def test_features_of_a_tiny_model(token_probe) -> None:
    from longvid.train.mini import build_student
    from tests.train.test_mini import tiny_config

    torch.manual_seed(0)
    model = build_student("longva", config=tiny_config()).eval()
    inputs, labels = token_probe.features(*token_probe.package_encoders(model), "test", 12)
    n = len(labels["word"])
    assert 0 < n <= 12 and set(labels) == set(token_probe.ATTRIBUTES)
    assert inputs["tower"].shape[0] == inputs["LLM input"].shape[0] == n
    assert inputs["LLM input"].shape[1] != inputs["tower"].shape[1]


def test_a_bare_tower_is_probed_on_its_own_patch_tokens(token_probe, tmp_path) -> None:
    from safetensors.torch import save_file

    from longvid.models.registry import MINI_TOWER
    from longvid.train.vision import build_tower

    torch.manual_seed(0)
    tower = build_tower(MINI_TOWER).eval()
    path = tmp_path / "tower.safetensors"
    save_file(tower.state_dict(), str(path))
    parts, mean, std = token_probe.tower_encoders(str(path))
    inputs, labels = token_probe.features(parts, mean, std, "test", 6)
    assert set(inputs) == {"tower"} and inputs["tower"].shape[0] == len(labels["word"]) > 0
    pixels = torch.rand(1, 3, 128, 128)
    assert torch.equal(parts["tower"](pixels), tower.patch_features(pixels))
