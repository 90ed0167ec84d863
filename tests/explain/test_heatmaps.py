"""Heatmap post-processing: back to the case grid, one normalisation, storage and overlay."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from explain.compute import heatmaps
from explain.compute.heatmaps import (
    MAX_ALPHA,
    NORMALIZATION_RULE,
    normalize,
    postprocess,
    raw_range,
    render_overlay_png,
    to_case_grid,
    to_float16_npy_bytes,
)


def test_a_constant_map_stays_constant_on_any_case_grid():
    grid = to_case_grid(np.full((8, 8), 0.3, dtype=np.float32), rows=20, columns=13)
    assert grid.shape == (20, 13) and grid.dtype == np.float32
    assert np.allclose(grid, 0.3)
    assert np.allclose(to_case_grid(torch.full((8, 8), 2.0), rows=3, columns=5), 2.0)


def test_two_by_two_to_four_by_four_is_bilinear_with_half_pixel_centres():
    grid = to_case_grid(np.array([[0.0, 1.0], [2.0, 3.0]]), rows=4, columns=4)
    # Output pixel centres at source coordinates -0.25, 0.25, 0.75, 1.25 (clamped to 0..1):
    # weights along an axis are 0, 0.25, 0.75, 1 of the second sample.
    ramp = np.array([0.0, 0.25, 0.75, 1.0])
    expected = 2.0 * ramp[:, None] + 1.0 * ramp[None, :]
    assert np.allclose(grid, expected, atol=1e-6)
    assert grid[0, 0] == 0.0 and grid[-1, -1] == 3.0  # corners keep the corner values


def test_case_grid_of_the_same_size_is_an_unchanged_copy():
    source = np.arange(12, dtype=np.float32).reshape(3, 4)
    grid = to_case_grid(source, rows=3, columns=4)
    assert np.array_equal(grid, source) and grid is not source


def test_shrinking_keeps_the_mean_of_a_smooth_map():
    source = np.add.outer(np.arange(64.0), np.arange(64.0)).astype(np.float32)
    grid = to_case_grid(source, rows=16, columns=16)
    assert abs(grid.mean() - source.mean()) < 0.5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"rows": 0, "columns": 4}, "rows"), ({"rows": 4, "columns": 2.5}, "columns")],
)
def test_case_grid_refuses_bad_sizes(kwargs, message):
    with pytest.raises(ValueError, match=message):
        to_case_grid(np.zeros((2, 2)), **kwargs)


def test_normalize_divides_the_positive_part_by_its_99th_percentile():
    heatmap = np.concatenate([np.arange(1, 101, dtype=np.float32), -np.ones(20, np.float32)])
    heatmap = heatmap.reshape(6, 20)
    # positives are 1..100: numpy's (linear) 99th percentile is 1 + 0.99 * 99 = 99.01
    scale = 1 + 0.99 * 99
    result = normalize(heatmap)
    flat = result.reshape(-1)
    assert np.allclose(flat[:99], np.arange(1, 100) / scale)
    assert flat[99] == 1.0  # 100 / 99.01 clipped to 1
    assert (flat[100:] == 0).all()  # negative evidence is not shown
    assert result.dtype == np.float32


def test_normalize_keeps_an_all_zero_or_all_negative_map_at_zero():
    assert not normalize(np.zeros((4, 4))).any()
    assert not normalize(-np.ones((4, 4))).any()


def test_normalize_is_scale_free():
    heatmap = np.random.default_rng(0).normal(size=(16, 16)).astype(np.float32)
    assert np.allclose(normalize(heatmap), normalize(1000 * heatmap), atol=1e-6)


def test_normalization_rule_names_the_steps():
    assert "99th percentile" in NORMALIZATION_RULE and "[0, 1]" in NORMALIZATION_RULE


def test_raw_range_and_bad_maps():
    assert raw_range(np.array([[-2.0, 0.5], [3.0, 1.0]])) == (-2.0, 3.0)
    with pytest.raises(ValueError, match="NaN"):
        raw_range(np.array([[np.nan]]))
    with pytest.raises(ValueError, match="2-D"):
        normalize(np.zeros(4))


def test_float16_npy_round_trips_without_pickle():
    heatmap = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    data = to_float16_npy_bytes(heatmap)
    loaded = np.load(io.BytesIO(data), allow_pickle=False)
    assert loaded.dtype == np.float16 and loaded.shape == (3, 4)
    assert np.allclose(loaded, heatmap, atol=1e-3)
    with pytest.raises(ValueError, match="float16 range"):
        to_float16_npy_bytes(np.full((2, 2), 1e6))


def _chunks(png: bytes) -> list[tuple[bytes, int]]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks = 8, []
    while position < len(png):
        (length,) = struct.unpack(">I", png[position : position + 4])
        kind = png[position + 4 : position + 8]
        body = png[position + 4 : position + 8 + length]
        (crc,) = struct.unpack(">I", png[position + 8 + length : position + 12 + length])
        assert crc == zlib.crc32(body) & 0xFFFFFFFF
        chunks.append((kind, length))
        position += 12 + length
    return chunks


def test_overlay_is_an_rgba_png_of_the_map_size_with_alpha_proportional_to_value():
    values = np.zeros((5, 7), dtype=np.float32)
    values[1, 2] = 1.0
    values[3, 4] = 0.5
    png = render_overlay_png(values)
    image = Image.open(io.BytesIO(png))
    assert image.mode == "RGBA" and image.size == (7, 5)
    pixels = np.asarray(image)
    assert (pixels[values == 0, 3] == 0).all()
    assert pixels[1, 2, 3] == round(255 * MAX_ALPHA)
    assert pixels[3, 4, 3] == round(0.5 * 255 * MAX_ALPHA)
    assert tuple(pixels[1, 2, :3]) != tuple(pixels[3, 4, :3])  # colour follows the value too


def test_overlays_of_different_explainers_have_the_same_structure_and_no_metadata():
    rng = np.random.default_rng(1)
    gradcam_like = normalize(rng.random((32, 48)).astype(np.float32))
    lime_like = normalize(np.kron(rng.normal(size=(4, 6)), np.ones((8, 8))).astype(np.float32))
    first, second = render_overlay_png(gradcam_like), render_overlay_png(lime_like)
    kinds = [kind for kind, _ in _chunks(first)]
    assert kinds == [kind for kind, _ in _chunks(second)] == [b"IHDR", b"IDAT", b"IEND"]
    assert first[8:33] == second[8:33]  # identical IHDR: size, depth, colour type
    for png in (first, second):
        assert not any(word in png for word in (b"tEXt", b"iTXt", b"zTXt", b"tIME", b"eXIf"))


def test_overlay_refuses_a_map_that_is_not_normalised():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        render_overlay_png(np.array([[0.0, 1.5]]))


# --- the rule against numpy, the batch path against the single-map functions


def _numpy_normalize(heatmap: np.ndarray) -> np.ndarray:
    """NORMALIZATION_RULE written with np.percentile (numpy's default, linear)."""
    positive = np.maximum(heatmap.astype(np.float32), 0.0)
    values = positive[positive > 0]
    if values.size == 0:
        return np.zeros_like(positive)
    return np.clip(positive / float(np.percentile(values.astype(np.float64), 99.0)), 0.0, 1.0)


def _maps_with_few_and_many_positives(seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    maps = [rng.normal(size=(int(h), int(w))) for h, w in rng.integers(1, 90, size=(12, 2))]
    for count in (1, 2, 3, 101):  # percentile neighbours at the edges of the sorted positives
        sparse = -np.abs(rng.normal(size=(40, 30)))
        sparse.flat[rng.choice(sparse.size, count, replace=False)] = rng.random(count) + 0.1
        maps.append(sparse)
    maps.append(np.kron(rng.normal(size=(4, 4)), np.ones((16, 16))))  # ties in the values
    return [m.astype(np.float32) for m in maps]


def test_normalize_matches_numpys_percentile_rule_on_maps_with_few_or_many_positives():
    for heatmap in _maps_with_few_and_many_positives(2):
        assert np.allclose(normalize(heatmap), _numpy_normalize(heatmap), rtol=0, atol=1e-6)


def test_the_accelerator_selection_path_gives_the_same_normalisation(monkeypatch):
    # on a GPU the positives are selected and ranked with torch (kthvalue), not numpy
    monkeypatch.setattr(
        heatmaps, "_positive_values", lambda positive: positive.reshape(-1)[positive.reshape(-1) > 0]
    )
    for heatmap in _maps_with_few_and_many_positives(3):
        assert np.allclose(normalize(heatmap), _numpy_normalize(heatmap), rtol=0, atol=1e-6)


def test_overlay_pixels_are_the_colormap_entry_and_alpha_of_each_value():
    from matplotlib import colormaps

    values = np.random.default_rng(4).random((9, 11)).astype(np.float32)
    values[0, :4] = [0.0, 1.0, 0.5 / 255, 127.5 / 255]  # extremes and rounding ties
    pixels = np.asarray(Image.open(io.BytesIO(render_overlay_png(values))))
    table = np.round(colormaps["inferno"](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)
    assert np.array_equal(pixels[..., :3], table[np.round(values * 255).astype(int)])
    assert np.array_equal(pixels[..., 3], np.round(values * 255 * MAX_ALPHA).astype(np.uint8))


def test_postprocess_gives_each_case_what_the_single_map_functions_give():
    rng = np.random.default_rng(5)
    attributions = torch.from_numpy(rng.normal(size=(3, 16, 16)).astype(np.float32))
    sizes = [(40, 23), (16, 16), (9, 12)]  # enlarged, unchanged, shrunk
    cases = list(postprocess(attributions, sizes))
    assert len(cases) == 3
    for maps, attribution, (rows, columns) in zip(cases, attributions, sizes, strict=True):
        grid = to_case_grid(attribution, rows=rows, columns=columns)
        assert np.array_equal(maps.heatmap, grid) and maps.heatmap.dtype == np.float32
        assert np.array_equal(maps.normalized, normalize(grid))
        assert (maps.raw_min, maps.raw_max) == raw_range(grid)
        assert maps.overlay_png() == render_overlay_png(normalize(grid))
        stored = np.load(io.BytesIO(maps.heatmap_npy()), allow_pickle=False)
        assert stored.dtype == np.float16 and np.array_equal(stored, grid.astype(np.float16))
        stored = np.load(io.BytesIO(maps.normalized_npy()), allow_pickle=False)
        assert np.array_equal(stored, normalize(grid).astype(np.float16))


def test_postprocess_refuses_a_batch_with_a_non_finite_map_before_yielding_a_case():
    attributions = torch.zeros(2, 4, 4)
    attributions[1, 2, 2] = float("nan")
    cases = postprocess(attributions, [(4, 4), (4, 4)])
    with pytest.raises(ValueError, match="NaN or infinite"):
        next(cases)
    with pytest.raises(ValueError, match="rows"):
        next(postprocess(torch.zeros(1, 4, 4), [(0, 4)]))


def test_the_highlighted_share_counts_pixels_at_or_above_the_visibility_threshold_and_decides_emptiness():
    grid = np.zeros((10, 100), dtype=np.float32)
    grid[0, :5] = heatmaps.HIGHLIGHT_VALUE  # 5 of 1,000 pixels at the threshold
    grid[1, :5] = heatmaps.HIGHLIGHT_VALUE / 2  # below it: not counted
    assert heatmaps.highlighted_fraction(grid) == pytest.approx(0.005)
    assert not heatmaps.is_empty(fraction=0.005, raw_max=1.0)
    assert heatmaps.is_empty(fraction=0.0005, raw_max=1.0)
    (maps,) = heatmaps.postprocess(torch.from_numpy(grid)[None], [(10, 100)])
    assert maps.highlighted == pytest.approx(heatmaps.highlighted_fraction(maps.normalized))
