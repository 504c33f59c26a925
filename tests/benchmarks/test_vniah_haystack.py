"""benchmarks/vniah_haystack.py: the haystacks it compares."""

from __future__ import annotations

import numpy as np
import pytest

from longvid.train.render import FRAMES_PER_VIDEO, Backgrounds
from tests.benchmarks import benchmark_script


@pytest.fixture(scope="module")
def vniah_haystack():
    with benchmark_script("vniah_haystack") as module:
        yield module


def test_each_row_is_bench_minis_footage_one_looped_source_or_black(vniah_haystack) -> None:
    footage = Backgrounds.load("test")
    count = len(footage.frames) + 3  # past the end: bench-mini's haystack wraps around
    rows = vniah_haystack.haystacks(count)
    assert list(rows) == ["footage", *(s.rsplit(".", 1)[0] for s in footage.sources), "black"]
    assert all(r.shape == (count, *footage.frames.shape[1:]) for r in rows.values())
    expected = np.stack([footage.frame(i) for i in range(count)])  # what MiniVNIAH encodes
    np.testing.assert_array_equal(rows["footage"], expected)
    second = rows[footage.sources[1].rsplit(".", 1)[0]]
    clip = footage.frames[FRAMES_PER_VIDEO : 2 * FRAMES_PER_VIDEO]
    np.testing.assert_array_equal(second[:FRAMES_PER_VIDEO], clip)
    np.testing.assert_array_equal(second[FRAMES_PER_VIDEO : 2 * FRAMES_PER_VIDEO], clip)
    assert not rows["black"].any()


def test_an_unknown_row_is_refused_before_any_model_loads(vniah_haystack, capsys) -> None:
    with pytest.raises(SystemExit):
        vniah_haystack.main(["--model", "no-such-model", "--rows", "footage", "nowhere"])
    assert "unknown haystacks ['nowhere']" in capsys.readouterr().err
