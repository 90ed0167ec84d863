# ruff: noqa: F811  (tests take the imported fixtures as arguments)
"""The diagnostic image viewer's session: gesture summary, keyboard shortcuts, help overlay,
canvas sizing, destroy and rendering speed; helpers in viewer_helpers.py.
"""

from __future__ import annotations

import statistics

import pytest

from tests.e2e.viewer_helpers import (  # noqa: F401  (fixtures here are used by name)
    CANVAS_STATS_JS,
    canvas_centre,
    open_viewer,
    ramp_page,
    site,
    summary,
    wait_for_zoom_change,
    zoom_percent,
)

pytestmark = pytest.mark.e2e


def test_summary_counts_gestures_not_mouse_moves(open_viewer):
    page = ramp_page(open_viewer)
    x, y = canvas_centre(page)
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 120, y - 40, steps=15)
    page.mouse.up()
    page.keyboard.down("Shift")
    page.mouse.down()
    page.mouse.move(x + 40, y + 60, steps=10)
    page.mouse.up()
    page.keyboard.up("Shift")
    page.mouse.down(button="middle")
    page.mouse.move(x, y, steps=10)
    page.mouse.up(button="middle")
    page.mouse.down(button="right")
    page.mouse.move(x, y - 80, steps=10)
    page.mouse.up(button="right")
    page.mouse.click(x, y)  # a click without movement changes nothing
    page.keyboard.press("i")
    page.keyboard.press("h")
    page.keyboard.press("r")
    page.wait_for_timeout(50)
    s = summary(page)
    assert s == {
        "window_changes": 1,
        "zoom_changes": 1,
        "pan_changes": 2,
        "invert_toggles": 1,
        "resets": 1,
        "overlay_toggles": 1,
        "overlay_visible_ms": s["overlay_visible_ms"],
        "overlay_opacity": 0.4,
        "presets_used": 0,
        "viewer_ms": s["viewer_ms"],
    }
    assert 0 < s["overlay_visible_ms"] <= s["viewer_ms"]
    assert all(isinstance(v, int) for k, v in s.items() if k != "overlay_opacity")


def test_shortcuts_are_ignored_while_typing_in_an_input(open_viewer):
    page = ramp_page(open_viewer)
    page.get_by_test_id("harness-note").fill("")
    page.get_by_test_id("harness-note").press_sequentially("ih2r ?")
    s = summary(page)
    assert s["invert_toggles"] == s["overlay_toggles"] == s["presets_used"] == s["resets"] == 0
    assert page.get_by_test_id("harness-note").input_value() == "ih2r ?"
    assert not page.get_by_test_id("viewer-help-panel").is_visible()


def test_question_mark_toggles_the_help_overlay(open_viewer):
    page = ramp_page(open_viewer)
    panel = page.get_by_test_id("viewer-help-panel")
    page.keyboard.press("?")
    assert panel.is_visible() and "Invert" in panel.inner_text()
    page.keyboard.press("?")
    assert not panel.is_visible()
    page.get_by_test_id("viewer-help").click()
    assert panel.is_visible()
    page.keyboard.press("Escape")
    assert not panel.is_visible()


def test_canvas_follows_container_size_and_device_pixel_ratio(open_viewer):
    page = ramp_page(open_viewer, scale=2)
    stats = page.evaluate(CANVAS_STATS_JS)
    assert (stats["width"], stats["height"]) == (2 * stats["cssWidth"], 2 * stats["cssHeight"])
    start = zoom_percent(page)
    page.set_viewport_size({"width": 700, "height": 500})
    wait_for_zoom_change(page, start)
    stats = page.evaluate(CANVAS_STATS_JS)
    assert stats["width"] == 2 * stats["cssWidth"] and stats["cssWidth"] < 700
    assert zoom_percent(page) < start  # still fitted to the smaller stage


def test_destroy_removes_the_viewer_and_freezes_the_summary(open_viewer):
    page = ramp_page(open_viewer)
    page.keyboard.press("i")
    page.get_by_test_id("harness-destroy").click()
    assert page.locator(".xrs-viewer").count() == 0
    first = summary(page)
    page.keyboard.press("i")
    page.wait_for_timeout(30)
    assert summary(page) == first and first["invert_toggles"] == 1


def test_window_change_on_a_2048_float32_image_renders_fast(open_viewer):
    page = open_viewer(gen=2048, dtype="f4", no_overlay=1)
    timings = page.evaluate(
        """async () => {
          const out = [];
          for (let k = 0; k < 12; k++) {
            const t0 = performance.now();
            viewer.setWindow(200 + 50 * k, 1500 + 100 * k);
            await new Promise((r) => requestAnimationFrame(r));
            out.push({latency: performance.now() - t0, ...viewer.renderStats()});
          }
          return out.slice(2);
        }"""
    )
    pixel_ms = statistics.median(t["lastPixelMs"] for t in timings)
    frame_ms = statistics.median(t["lastFrameMs"] for t in timings)
    latency_ms = statistics.median(t["latency"] for t in timings)
    print(
        f"2048x2048 float32: windowing {pixel_ms:.1f} ms, frame {frame_ms:.1f} ms, "
        f"window change -> frame {latency_ms:.1f} ms (medians)"
    )
    assert frame_ms < 250
