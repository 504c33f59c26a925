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
    inputs, labels = token_probe.features(model, "test", 12)
    n = len(labels["word"])
    assert 0 < n <= 12 and set(labels) == set(token_probe.ATTRIBUTES)
    assert inputs["tower"].shape[0] == inputs["LLM input"].shape[0] == n
    assert inputs["LLM input"].shape[1] != inputs["tower"].shape[1]
