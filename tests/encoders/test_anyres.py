"""Tests of longvid.encoders.anyres: the anyres geometry against every case of the LongVA parity
file ``longva_anyres_grid`` (README §1), the CLIP pixels against the tiny end-to-end file (§8b),
and the selection / geometry rules under hypothesis.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from longvid.encoders.anyres import (
    LLAVA_NEXT_PINPOINTS,
    LONGVA_PINPOINTS,
    anyres_crops,
    anyres_grid_shape,
    clip_image_processor,
    divide_to_crops,
    expand_to_square,
    longva_pinpoints,
    preprocess_anyres,
    preprocess_pad,
    preprocess_video,
    resize_and_pad_geometry,
    resize_and_pad_image,
    select_best_resolution,
)

PARITY = Path(__file__).resolve().parents[2].parent / "shared" / "parity" / "longva"
TINY_PINPOINTS = [(56, 112), (112, 56), (112, 112), (168, 56), (56, 168)]


def _load(name: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    path = PARITY / f"{name}.safetensors"
    if not path.is_file():
        pytest.skip(f"LongVA parity file {path} not found (expected beside the checkout)")
    return load_file(path)


@pytest.fixture(scope="module")
def grid_case() -> dict[str, torch.Tensor]:
    return _load("longva_anyres_grid")


@pytest.fixture(scope="module")
def e2e() -> dict[str, torch.Tensor]:
    return _load("longva_e2e_tiny")


def _pairs(t: torch.Tensor) -> list[tuple[int, ...]]:
    return [tuple(row) for row in t.tolist()]


# --- parity: longva_anyres_grid -----------------------------------------------------------------


def test_metadata_names_the_reference():
    from safetensors import safe_open

    path = PARITY / "longva_anyres_grid.safetensors"
    if not path.is_file():
        pytest.skip(f"LongVA parity file {path} not found")
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    assert meta["reference_repo"] == "EvolvingLMMs-Lab/LongVA"
    assert "select_best_resolution" in meta["function"]


def test_pinpoint_lists_are_the_stored_ones(grid_case):
    assert list(LONGVA_PINPOINTS) == _pairs(grid_case["pinpoints_longva"])
    assert len(LONGVA_PINPOINTS) == 200 and (336, 336) not in LONGVA_PINPOINTS
    assert list(LLAVA_NEXT_PINPOINTS) == _pairs(grid_case["pinpoints_dpo"])
    assert longva_pinpoints(56)[0] == (56, 112)


@pytest.mark.parametrize("which", ["longva", "dpo"])
def test_best_resolution_and_grid_every_case(grid_case, which):
    pinpoints = _pairs(grid_case[f"pinpoints_{which}"])
    sizes = _pairs(grid_case["image_sizes_wh"])
    best = [select_best_resolution(s, pinpoints) for s in sizes]
    grid = [anyres_grid_shape(s, pinpoints, 336) for s in sizes]
    expected = _pairs(grid_case[f"best_res_{which}"])
    mismatches = sum(b != e for b, e in zip(best, expected, strict=True))
    print(
        f"\nPARITY longva_anyres_grid best_res/grid_{which}: {len(sizes)} cases, {mismatches} off"
    )
    assert best == expected
    assert grid == _pairs(grid_case[f"grid_{which}"])


def test_pad_geometry_every_case_reference(grid_case):
    sizes = _pairs(grid_case["image_sizes_wh"])
    best = _pairs(grid_case["best_res_longva"])
    got = torch.tensor(
        [
            resize_and_pad_geometry(s, b, reference_ceil_bug=True)
            for s, b in zip(sizes, best, strict=True)
        ]
    )
    diff = (got - grid_case["pad_geom_longva"]).abs().max().item()
    print(f"\nPARITY longva_anyres_grid pad_geom_longva (reference_ceil_bug=True): max diff {diff}")
    assert torch.equal(got, grid_case["pad_geom_longva"])


def test_pad_geometry_default_fixes_only_the_float_overshoot(grid_case):
    sizes = _pairs(grid_case["image_sizes_wh"])
    best = _pairs(grid_case["best_res_longva"])
    changed = []
    for i, (size, target) in enumerate(zip(sizes, best, strict=True)):
        ref = resize_and_pad_geometry(size, target, reference_ceil_bug=True)
        new = resize_and_pad_geometry(size, target)
        if ref != new:
            changed.append(i)
            # Same fitted side, and the other one is exactly one pixel shorter.
            assert sum(abs(a - b) for a, b in zip(ref[:2], new[:2], strict=True)) == 1
    assert 5 in changed  # README §1 case 5: 700x300 -> 785 with the float product, 784 exact
    assert resize_and_pad_geometry((700, 300), (1008, 336)) == (784, 336, 112, 0)
    assert resize_and_pad_geometry((700, 300), (1008, 336), reference_ceil_bug=True) == (
        785,
        336,
        111,
        0,
    )


@pytest.mark.parametrize(
    ("size", "longva", "geom", "dpo"),
    [
        ((336, 336), (336, 672), (336, 336, 0, 168), (336, 672)),
        ((640, 480), (672, 672), (672, 504, 0, 84), (672, 672)),
        ((700, 300), (1008, 336), (785, 336, 111, 0), (1008, 336)),
        ((1920, 1080), (2016, 1344), (2016, 1134, 0, 105), (672, 672)),
        ((4000, 3000), (2688, 2016), (2688, 2016, 0, 0), (672, 672)),
        ((100, 3000), (336, 3024), (101, 3024, 117, 0), (336, 1008)),
        ((1, 1), (336, 672), (336, 336, 0, 168), (336, 672)),
        ((337, 673), (672, 1008), (505, 1008, 83, 0), (672, 672)),
        ((2353, 2353), (2352, 2352), (2352, 2352, 0, 0), (672, 672)),
    ],
)
def test_readme_table(size, longva, geom, dpo):
    assert select_best_resolution(size, LONGVA_PINPOINTS) == longva
    assert resize_and_pad_geometry(size, longva, reference_ceil_bug=True) == geom
    assert select_best_resolution(size, LLAVA_NEXT_PINPOINTS) == dpo


# --- parity: CLIP pixels of the tiny end-to-end file (README §8b) -------------------------------


def test_anyres_pixels(e2e):
    image = e2e["raw_image_hwc_uint8"].numpy()
    assert select_best_resolution((90, 40), TINY_PINPOINTS) == (112, 56)
    assert resize_and_pad_geometry((90, 40), (112, 56)) == (112, 50, 0, 3)
    pixels = preprocess_anyres(image, TINY_PINPOINTS, clip_image_processor(56))
    assert pixels.dtype == torch.float32
    diff = (pixels - e2e["pixels_image_anyres"]).abs().max().item()
    print(f"\nPARITY longva_e2e_tiny pixels_image_anyres: max diff {diff}")
    assert torch.equal(pixels, e2e["pixels_image_anyres"])
    tiles = preprocess_anyres(image, TINY_PINPOINTS, clip_image_processor(56), include_base=False)
    assert torch.equal(tiles, e2e["pixels_image_anyres"][1:])


def test_pad_pixels(e2e):
    processor = clip_image_processor(56)
    assert [int(m * 255) for m in processor.image_mean] == [122, 116, 104]
    pixels = preprocess_pad(Image.fromarray(e2e["raw_image_hwc_uint8"].numpy()), processor)
    diff = (pixels - e2e["pixels_image_pad"]).abs().max().item()
    print(f"\nPARITY longva_e2e_tiny pixels_image_pad: max diff {diff}")
    assert torch.equal(pixels, e2e["pixels_image_pad"])


def test_video_pixels(e2e):
    pixels = preprocess_video(e2e["raw_video_thwc_uint8"], clip_image_processor(56))
    diff = (pixels - e2e["pixels_video"]).abs().max().item()
    print(f"\nPARITY longva_e2e_tiny pixels_video: max diff {diff}")
    assert torch.equal(pixels, e2e["pixels_video"])


# --- behaviour ----------------------------------------------------------------------------------


def test_resize_and_pad_image_puts_the_image_on_black():
    image = Image.new("RGB", (90, 40), (200, 10, 10))
    out = resize_and_pad_image(image, (112, 56))
    arr = np.asarray(out)
    assert out.size == (112, 56)
    assert (arr[:3] == 0).all() and (arr[53:] == 0).all()  # 112x50 pasted at y=3
    assert (arr[3:53, :, 0] > 150).all()


def test_crops_are_row_major_and_base_first():
    canvas = np.zeros((112, 168, 3), dtype=np.uint8)
    for r in range(2):
        for c in range(3):
            canvas[r * 56 : (r + 1) * 56, c * 56 : (c + 1) * 56] = 10 * (3 * r + c + 1)
    tiles = divide_to_crops(Image.fromarray(canvas), 56)
    assert [int(np.asarray(t)[0, 0, 0]) for t in tiles] == [10, 20, 30, 40, 50, 60]
    crops = anyres_crops(canvas, [(168, 112)], 56)
    assert len(crops) == 7 and all(c.size == (56, 56) for c in crops)
    assert len(anyres_crops(canvas, [(168, 112)], 56, include_base=False)) == 6


def test_expand_to_square_centres_on_the_fill():
    out = expand_to_square(Image.new("RGB", (6, 2), (255, 255, 255)), (122, 116, 104))
    arr = np.asarray(out)
    assert out.size == (6, 6)
    assert tuple(arr[0, 0]) == (122, 116, 104) and (arr[2:4] == 255).all()


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        select_best_resolution((0, 10), LONGVA_PINPOINTS)
    with pytest.raises(ValueError):
        select_best_resolution((10, 10), [])
    with pytest.raises(ValueError):
        preprocess_video(np.zeros((4, 4, 3), np.uint8), clip_image_processor(56))


# --- properties ---------------------------------------------------------------------------------


def _score(size, cand):
    w, h = size
    scale = min(cand[0] / w, cand[1] / h)
    eff = min(int(w * scale) * int(h * scale), w * h)
    return eff, cand[0] * cand[1] - eff


@settings(max_examples=150, deadline=None)
@given(
    size=st.tuples(st.integers(1, 5000), st.integers(1, 5000)),
    picks=st.lists(st.integers(0, len(LONGVA_PINPOINTS) - 1), min_size=1, max_size=12),
)
def test_best_resolution_is_the_first_optimum(size, picks):
    pinpoints = [LONGVA_PINPOINTS[i] for i in picks]
    best = select_best_resolution(size, pinpoints)
    assert best in pinpoints
    scores = [_score(size, c) for c in pinpoints]
    eff, waste = _score(size, best)
    assert all(e < eff or (e == eff and w >= waste) for e, w in scores)
    # Strict comparisons: the earliest candidate with the winning score is the one returned.
    first = next(c for c, s in zip(pinpoints, scores, strict=True) if s == (eff, waste))
    assert best == first


@settings(max_examples=200, deadline=None)
@given(
    size=st.tuples(st.integers(1, 5000), st.integers(1, 5000)),
    target=st.tuples(st.integers(1, 60), st.integers(1, 60)).map(lambda t: (t[0] * 56, t[1] * 56)),
)
def test_geometry_fits_and_keeps_the_aspect(size, target):
    new_w, new_h, x, y = resize_and_pad_geometry(size, target)
    assert 1 <= new_w <= target[0] and 1 <= new_h <= target[1]
    assert new_w == target[0] or new_h == target[1]
    assert (x, y) == ((target[0] - new_w) // 2, (target[1] - new_h) // 2)
    w, h = size
    if new_w == target[0] and new_h < target[1]:
        assert new_h == -(-h * target[0] // w)  # exact ceil(h * Wt / w)
    if new_h == target[1] and new_w < target[0]:
        assert new_w == -(-w * target[1] // h)
    ref = resize_and_pad_geometry(size, target, reference_ceil_bug=True)
    assert all(0 <= r - n <= 1 for r, n in zip(ref[:2], (new_w, new_h), strict=True))
