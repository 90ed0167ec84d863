# ruff: noqa: F811  (tests take the imported fixtures as arguments)
"""The diagnostic image viewer renders every supported pixel format (MONOCHROME1, dtypes,
Fortran order, colour) and falls back or reports broken files; helpers in viewer_helpers.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.e2e.viewer_helpers import (  # noqa: F401  (fixtures here are used by name)
    DTYPE_CASES,
    SAMPLES,
    dicom_linear,
    dtype_values,
    gray,
    open_viewer,
    pixel,
    ramp_page,
    ramp_values,
    site,
    summary,
)

pytestmark = pytest.mark.e2e


def test_monochrome1_renders_inverted(open_viewer):
    page = ramp_page(open_viewer, monochrome1=1)
    values = ramp_values()
    for col, row in SAMPLES:
        assert abs(gray(page, col, row) - (255 - dicom_linear(values[row, col], 500, 2000))) <= 3
    assert gray(page, 50, 190) == 0  # bright square is dark in MONOCHROME1


@pytest.mark.parametrize("case", sorted(DTYPE_CASES))
def test_every_supported_dtype_renders_with_the_min_max_window(open_viewer, case):
    dtype, lo, hi = DTYPE_CASES[case]
    values = dtype_values(dtype, lo, hi).astype(np.float64)
    page = open_viewer(pixels=f"dtype_{case}.npy", rows=48, columns=80)
    lo, hi = values.min(), values.max()
    for col, row in [(5, 5), (40, 10), (70, 40), (20, 30)]:
        expected = np.rint((values[row, col] - lo) / (hi - lo) * 255)
        assert abs(gray(page, col, row) - expected) <= 4, (case, col, row)


def test_fortran_ordered_float_file_renders_transposed_correctly(open_viewer):
    values = dtype_values("<f4", -5.0, 5.0).astype(np.float64)
    page = open_viewer(pixels="fortran_f4.npy", rows=48, columns=80)
    for col, row in [(5, 5), (70, 40), (20, 30)]:
        expected = np.rint((values[row, col] + 5.0) / 10.0 * 255)
        assert abs(gray(page, col, row) - expected) <= 4


def test_float32_ramp_with_presets_matches_the_server_formula(open_viewer):
    page = ramp_page(open_viewer, pixels="ramp_f4.npy", overlay="")
    page.evaluate("viewer.setWindow(300.5, 777)")
    values = ramp_values()
    for col, row in SAMPLES:
        assert abs(gray(page, col, row) - dicom_linear(values[row, col], 300.5, 777)) <= 3
    assert summary(page)["window_changes"] == 0  # programmatic changes are not counted


def test_broken_url_shows_an_error_message(open_viewer):
    page = open_viewer(pixels="missing.npy", rows=256, columns=256, expect="error")
    error = page.get_by_test_id("viewer-error")
    assert error.is_visible()
    assert "could not be loaded" in error.inner_text() and "404" in error.inner_text()
    assert "could not be loaded" in page.evaluate("document.body.dataset.error")


def test_unreadable_npy_falls_back_to_the_display_png(open_viewer):
    page = ramp_page(open_viewer, pixels="not_numpy.npy", overlay="")
    assert page.get_by_test_id("viewer-fallback").is_visible()
    assert not page.get_by_test_id("viewer-preset-1").is_visible()
    display = dicom_linear(ramp_values(), 500, 2000)
    for col, row in SAMPLES:
        assert abs(gray(page, col, row) - display[row, col]) <= 2
    page.keyboard.press("i")
    for col, row in SAMPLES:
        assert abs(gray(page, col, row) - (255 - display[row, col])) <= 2


def test_colour_image_renders_from_the_display_png(open_viewer):
    page = open_viewer(display="color.png", color=1, rows=256, columns=256)
    r, g, b = pixel(page, 100, 100)
    assert abs(r - 100) <= 2 and g == 0 and abs(b - 200) <= 1
