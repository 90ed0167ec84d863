# ruff: noqa: F811  (tests take the imported fixtures as arguments)
"""The diagnostic image viewer's controls (window, invert, zoom, heatmap, opacity, presets,
reset) driven in Debian's chromium; fixtures and helpers in viewer_helpers.py.
"""

from __future__ import annotations

import pytest

from tests.e2e.viewer_helpers import (  # noqa: F401  (fixtures here are used by name)
    CANVAS_STATS_JS,
    SAMPLES,
    canvas_centre,
    dicom_linear,
    gray,
    open_viewer,
    pixel,
    ramp_page,
    ramp_values,
    site,
    summary,
    wait_for_zoom_change,
    zoom_percent,
)

pytestmark = pytest.mark.e2e


def test_image_renders_with_the_first_preset_as_the_initial_window(open_viewer):
    page = ramp_page(open_viewer, no_overlay=1, overlay="")
    stats = page.evaluate(CANVAS_STATS_JS)
    assert stats["max"] > 200 and stats["mean"] > 20
    values = ramp_values()
    for col, row in SAMPLES:
        expected = dicom_linear(values[row, col], 500, 2000)
        assert abs(gray(page, col, row) - expected) <= 3, (col, row)
    assert gray(page, 50, 190) == 255  # the bright square
    assert page.get_by_test_id("viewer-wl").inner_text() == "W 2000 L 500"
    assert page.evaluate("viewer.getWindow()") == {"center": 500, "width": 2000}


def test_left_drag_changes_window_readout_and_pixels_once_per_gesture(open_viewer):
    page = ramp_page(open_viewer)
    before = gray(page, 100, 120)
    x, y = canvas_centre(page)
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x - 150, y + 80, steps=12)
    page.mouse.up()
    page.wait_for_function(
        "document.querySelector('[data-testid=viewer-wl]').textContent !== 'W 2000 L 500'"
    )
    window = page.evaluate("viewer.getWindow()")
    assert window["width"] < 2000 and window["center"] > 500  # left: narrower, down: higher level
    assert page.get_by_test_id("viewer-wl").inner_text() == (
        f"W {round(window['width'])} L {round(window['center'])}"
    )
    after = gray(page, 100, 120)
    assert (
        abs(after - dicom_linear(ramp_values()[120, 100], window["center"], window["width"])) <= 3
    )
    assert after != before
    assert summary(page)["window_changes"] == 1


def test_i_inverts_the_image(open_viewer):
    page = ramp_page(open_viewer)
    before = [gray(page, col, row) for col, row in SAMPLES]
    page.get_by_test_id("viewer-canvas").focus()
    page.keyboard.press("i")
    after = [gray(page, col, row) for col, row in SAMPLES]
    assert all(abs(a - (255 - b)) <= 1 for a, b in zip(after, before, strict=True)), (before, after)
    assert page.get_by_test_id("viewer-inverted").is_visible()
    page.get_by_test_id("viewer-invert").click()
    assert [gray(page, col, row) for col, row in SAMPLES] == before
    assert summary(page)["invert_toggles"] == 2


def test_wheel_zooms_around_the_cursor(open_viewer):
    page = ramp_page(open_viewer)
    start = zoom_percent(page)
    anchor = page.evaluate("viewer.imageToClient(60, 100)")
    page.mouse.move(anchor["x"], anchor["y"])
    page.mouse.wheel(0, -300)
    wait_for_zoom_change(page, start)
    assert zoom_percent(page) > start
    moved = page.evaluate("viewer.imageToClient(60, 100)")
    assert abs(moved["x"] - anchor["x"]) < 4 and abs(moved["y"] - anchor["y"]) < 4
    zoomed = zoom_percent(page)
    assert summary(page)["zoom_changes"] == 1
    page.wait_for_timeout(350)  # a new wheel gesture
    page.mouse.wheel(0, 600)
    wait_for_zoom_change(page, zoomed)
    assert zoom_percent(page) < zoomed
    assert summary(page)["zoom_changes"] == 2
    page.get_by_test_id("viewer-canvas").dblclick()
    page.wait_for_function(
        f"document.querySelector('[data-testid=viewer-zoom]').textContent === 'Zoom {start}%'"
    )


def test_zoom_buttons_and_keys_change_zoom(open_viewer):
    page = ramp_page(open_viewer)
    start = zoom_percent(page)
    page.get_by_test_id("viewer-zoom-in").click()
    assert zoom_percent(page) == pytest.approx(start * 1.25, abs=1)
    page.keyboard.press("-")
    page.keyboard.press("-")
    assert zoom_percent(page) == pytest.approx(start / 1.25, abs=1)
    assert summary(page)["zoom_changes"] == 3


def test_h_hides_and_shows_the_heatmap(open_viewer):
    page = ramp_page(open_viewer)
    base = dicom_linear(ramp_values()[50, 190], 500, 2000)
    r, g, b = pixel(page, 190, 50)
    assert abs(r - round(0.6 * base + 0.4 * 255)) <= 3 and abs(g - round(0.6 * base)) <= 3
    page.keyboard.press("h")
    assert abs(gray(page, 190, 50) - base) <= 3
    assert page.get_by_test_id("viewer-overlay-toggle").get_attribute("aria-pressed") == "false"
    page.keyboard.press("h")
    assert pixel(page, 190, 50) == [r, g, b]
    page.get_by_test_id("viewer-overlay-toggle").click()
    assert abs(gray(page, 190, 50) - base) <= 3
    s = summary(page)
    assert s["overlay_toggles"] == 3 and s["overlay_visible_ms"] > 0


def test_opacity_slider_changes_the_blend(open_viewer):
    page = ramp_page(open_viewer)
    base = dicom_linear(ramp_values()[50, 190], 500, 2000)
    slider = page.get_by_test_id("viewer-overlay-opacity")
    slider.fill("100")
    assert pixel(page, 190, 50) == [255, 0, 0]
    slider.fill("0")
    assert abs(gray(page, 190, 50) - base) <= 3
    slider.fill("75")
    r, g, _ = pixel(page, 190, 50)
    assert abs(g - round(0.25 * base)) <= 3 and r > 240
    assert summary(page)["overlay_opacity"] == 0.75


def test_overlay_set_later_appears_with_its_controls_and_no_url_in_the_page(open_viewer):
    page = ramp_page(open_viewer, reveal=1)
    toggle = page.get_by_test_id("viewer-overlay-toggle")
    assert not toggle.is_visible()
    base = gray(page, 190, 50)
    page.keyboard.press("h")  # no overlay yet: nothing happens
    assert summary(page)["overlay_toggles"] == 0 and summary(page)["overlay_visible_ms"] == 0
    page.evaluate("viewer.setOverlay('heatmap_7f3a.png')")
    assert toggle.is_visible() and page.get_by_test_id("viewer-overlay-opacity").is_visible()
    r, g, _ = pixel(page, 190, 50)
    assert r > base and g < base
    assert "heatmap_7f3a" not in page.evaluate("document.querySelector('.xrs-viewer').outerHTML")


def test_presets_apply_by_key_and_button(open_viewer):
    page = ramp_page(open_viewer)
    page.keyboard.press("2")
    assert page.evaluate("viewer.getWindow()") == {"center": 40, "width": 400}
    assert page.get_by_test_id("viewer-wl").inner_text() == "W 400 L 40"
    expected = dicom_linear(ramp_values()[120, 90], 40, 400)
    assert abs(gray(page, 90, 120) - expected) <= 3
    assert page.get_by_test_id("viewer-preset-2").get_attribute("aria-pressed") == "true"
    page.get_by_test_id("viewer-preset-1").click()
    assert page.evaluate("viewer.getWindow()") == {"center": 500, "width": 2000}
    page.keyboard.press("9")  # no ninth preset
    s = summary(page)
    assert s["presets_used"] == 2 and s["window_changes"] == 2


def test_reset_restores_fit_and_initial_window(open_viewer):
    page = ramp_page(open_viewer)
    start = zoom_percent(page)
    page.keyboard.press("2")
    page.keyboard.press("=")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("i")
    page.keyboard.press(" ")
    assert page.evaluate("viewer.getWindow()") == {"center": 500, "width": 2000}
    assert zoom_percent(page) == start
    assert not page.get_by_test_id("viewer-inverted").is_visible()
    s = summary(page)
    assert (s["resets"], s["pan_changes"], s["zoom_changes"]) == (1, 1, 1)
