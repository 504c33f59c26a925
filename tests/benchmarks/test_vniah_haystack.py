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


def test_variant_rows_probe_one_clip_by_frames_colour_and_layout(vniah_haystack) -> None:
    base = {"clip": np.random.default_rng(0).integers(0, 256, (4, 6, 8, 3), dtype=np.uint8)}
    names = ["clip:one", "clip:two", "clip:grey", "clip:bgr", "clip:mirror", "clip:dark"]
    rows = vniah_haystack.variant_rows([*names, "clip", "other:grey", "clip:sepia"], base)
    assert list(rows) == names  # a plain row or an unknown source/variant is not a variant
    clip = base["clip"]
    np.testing.assert_array_equal(rows["clip:one"][0], clip[0])
    assert not rows["clip:one"][1:].any()
    np.testing.assert_array_equal(rows["clip:two"][:2], clip[:2])
    assert not rows["clip:two"][2:].any()
    grey = rows["clip:grey"]
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    np.testing.assert_array_equal(rows["clip:bgr"][..., 0], clip[..., 2])
    np.testing.assert_array_equal(rows["clip:mirror"][:, :, 0], clip[:, :, -1])
    np.testing.assert_array_equal(rows["clip:dark"], clip // 2)
    assert all(r.shape == clip.shape and r.dtype == np.uint8 for r in rows.values())


def test_a_variant_of_an_unknown_kind_is_refused(vniah_haystack, capsys) -> None:
    with pytest.raises(SystemExit):
        vniah_haystack.main(["--model", "no-such-model", "--rows", "win005:sepia"])
    assert "unknown haystacks ['win005:sepia']" in capsys.readouterr().err
