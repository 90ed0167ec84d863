"""The viewer reading XRS pixels (16-bit + rescale, deflate) in Debian's chromium.

The same modality values are served as today's float32 .npy and as the XRS pixels file written by
library/imaging/pixel_transfer.py: the browser must decode them to bit-identical float32 values and
window them into identical pixels. Files come from a temporary folder served by http.server.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import shutil
import threading
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from library.imaging import pixel_transfer as pt

pytestmark = pytest.mark.e2e

VIEWER_DIR = Path(__file__).resolve().parents[2] / "static" / "studies" / "viewer"
SHAPE = (48, 80)  # not square, so a transposition would show

# name: (slope, intercept, stored values' low and high, presets)
CASES = {
    "plain": (1.0, 0.0, 0, 4095, [{"name": "W", "center": 2048, "width": 4096}]),
    "ct": (
        1.0,
        -1024.0,
        0,
        4095,
        [
            {"name": "Soft", "center": 40, "width": 400},
            {"name": "Lung", "center": -600, "width": 1500},
        ],
    ),
    "half": (0.5, -100.0, 0, 4095, [{"name": "Half", "center": 411.25, "width": 733.5}]),
    "decimal": (0.1, -7.3, 0, 4095, []),  # min-max initial window
    "odd": (1.2345, -20.5, 0, 4095, [{"name": "Odd", "center": 1000.3, "width": 2.0}]),
    "wide": (2.0, -3.0, 0, 65535, []),
}

HASH_JS = """async (bytes) => {
  const digest = await crypto.subtle.digest('SHA-256', bytes);
  return Array.from(new Uint8Array(digest)).map((b) => b.toString(16).padStart(2, '0')).join('');
}"""

DECODE_JS = """async (name) => {
  const buffer = await (await fetch(name)).arrayBuffer();
  const pixels = await XrsViewer.parsePixels(buffer);
  const values = XrsViewer.modalityValues(pixels);
  const digest = await crypto.subtle.digest('SHA-256', values.buffer);
  return {
    rows: pixels.rows, columns: pixels.columns, dtype: pixels.dtype, rescale: pixels.rescale,
    sha: Array.from(new Uint8Array(digest)).map((b) => b.toString(16).padStart(2, '0')).join(''),
  };
}"""

RENDERED_JS = """async () => {
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const digest = await crypto.subtle.digest('SHA-256', viewer._imageData.data);
  return Array.from(new Uint8Array(digest)).map((b) => b.toString(16).padStart(2, '0')).join('');
}"""


def stored_for(low, high) -> np.ndarray:
    rows, cols = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    rng = np.random.default_rng(5)
    stored = low + (high - low) * (0.7 * cols / (SHAPE[1] - 1) + 0.2 * rows / (SHAPE[0] - 1))
    return np.clip(np.rint(stored + rng.normal(0, 3, SHAPE)), low, high).astype(np.int64)


def values_for(slope, intercept, low, high) -> np.ndarray:
    return (stored_for(low, high).astype(np.float64) * slope + intercept).astype(np.float32)


def thresholds_at_rounded_values(slope, intercept, low, high, count=3) -> list[float]:
    """Threshold windows (width 1) exactly at stored float32 values whose double-precision
    rescale is larger: only values rounded to float32 exactly as the server did stay below."""
    exact = stored_for(low, high).astype(np.float64) * slope + intercept
    values = exact.astype(np.float32)
    above = np.unique(values[exact > values.astype(np.float64)])
    picked = above[:: max(1, len(above) // count)][:count] if len(above) else values.ravel()[:1]
    return [float(v) + 0.5 for v in picked]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("viewer-pixels-site")
    for name in ("harness.html", "viewer.js", "viewer.css"):
        shutil.copy(VIEWER_DIR / name, root / name)
    for name, (slope, intercept, low, high, _) in CASES.items():
        values = values_for(slope, intercept, low, high)
        np.save(root / f"{name}.npy", values)
        encoded = pt.encode(values)
        assert encoded is not None
        (root / f"{name}.xrsp").write_bytes(encoded)
    plain = (root / "plain.xrsp").read_bytes()
    (root / "truncated.xrsp").write_bytes(plain[: len(plain) // 2])
    (root / "bad-header.xrsp").write_bytes(plain[:12] + b"[" + plain[13:])
    Image.fromarray(np.full(SHAPE, 128, np.uint8), "L").save(root / "display.png")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            """No request lines on stderr."""

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def open_viewer(site, browser):
    contexts = []

    def _open(**params):
        context = browser.new_context(viewport={"width": 700, "height": 500})
        contexts.append(context)
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        query = urllib.parse.urlencode(
            {k: json.dumps(v) if isinstance(v, list) else v for k, v in params.items()}
        )
        page.goto(f"{site}/harness.html?{query}")
        page.wait_for_function("document.body.dataset.state !== 'loading'", timeout=15_000)
        assert page.evaluate("document.body.dataset.state") == "ready", page.evaluate(
            "document.body.dataset.error || ''"
        )
        assert errors == []
        return page

    yield _open
    for context in contexts:
        context.close()


def test_every_rescale_decodes_in_the_browser_to_the_identical_float32_values(open_viewer):
    page = open_viewer(pixels="plain.xrsp", rows=SHAPE[0], columns=SHAPE[1])
    for name, (slope, intercept, low, high, _) in CASES.items():
        expected = values_for(slope, intercept, low, high)
        got = page.evaluate(DECODE_JS, f"{name}.xrsp")
        assert (got["rows"], got["columns"]) == SHAPE
        assert got["sha"] == hashlib.sha256(expected.astype("<f4").tobytes()).hexdigest(), name
        from_npy = page.evaluate(
            """async (name) => {
              const pixels = await XrsViewer.parsePixels(await (await fetch(name)).arrayBuffer());
              const digest = await crypto.subtle.digest('SHA-256', new Float32Array(pixels.data).buffer);
              return Array.from(new Uint8Array(digest)).map((b) => b.toString(16).padStart(2, '0')).join('');
            }""",
            f"{name}.npy",
        )
        assert from_npy == got["sha"], name


def rendered_sequence(page, windows) -> list[str]:
    """The windowed pixels (SHA-256 of the offscreen RGBA) at the initial window, after each
    programmatic window, after invert and after reset, plus the W/L readout."""
    out = [page.evaluate(RENDERED_JS), page.get_by_test_id("viewer-wl").inner_text()]
    for center, width in windows:
        page.evaluate("([c, w]) => viewer.setWindow(c, w)", [center, width])
        out.append(page.evaluate(RENDERED_JS))
    page.keyboard.press("i")
    out.append(page.evaluate(RENDERED_JS))
    page.keyboard.press("r")
    out += [page.evaluate(RENDERED_JS), page.get_by_test_id("viewer-wl").inner_text()]
    return out


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("monochrome1", [0, 1])
def test_windowing_gives_identical_pixels_for_the_npy_and_the_xrs_file(
    open_viewer, name, monochrome1
):
    slope, intercept, low, high, presets = CASES[name]
    values = values_for(slope, intercept, low, high)
    lo, hi = float(values.min()), float(values.max())
    windows = [
        ((lo + hi) / 2, (hi - lo) / 3),
        (lo + (hi - lo) * 0.3, 1.0),  # threshold
        (float(values[10, 40]), 2.0),  # a width-2 window around a real value
        (lo + 0.25, 7.5),
    ] + [(c, 1.0) for c in thresholds_at_rounded_values(slope, intercept, low, high)]
    results = {}
    for suffix in ("npy", "xrsp"):
        page = open_viewer(
            pixels=f"{name}.{suffix}",
            display="display.png",
            rows=SHAPE[0],
            columns=SHAPE[1],
            presets=presets,
            monochrome1=monochrome1,
        )
        assert page.evaluate("viewer._source.mode") == "values"
        assert not page.get_by_test_id("viewer-fallback").is_visible()
        results[suffix] = rendered_sequence(page, windows)
    assert results["xrsp"] == results["npy"]
    assert len(set(results["npy"][2:6])) > 1  # the windows really differ


def test_the_rescaled_image_uses_the_integer_lookup_table(open_viewer):
    page = open_viewer(pixels="odd.xrsp", rows=SHAPE[0], columns=SHAPE[1])
    assert page.evaluate("viewer._intLut !== null && viewer._source.rescale.slope") == 1.2345


@pytest.mark.parametrize("name", ["truncated.xrsp", "bad-header.xrsp"])
def test_a_damaged_xrs_file_falls_back_to_the_display_png(open_viewer, name):
    page = open_viewer(pixels=name, display="display.png", rows=SHAPE[0], columns=SHAPE[1])
    assert page.evaluate("viewer._source.mode") == "rgba"
    assert page.get_by_test_id("viewer-fallback").is_visible()


def test_an_xrs_file_of_another_shape_falls_back_to_the_display_png(open_viewer):
    page = open_viewer(pixels="plain.xrsp", display="display.png", rows=SHAPE[1], columns=SHAPE[0])
    assert page.get_by_test_id("viewer-fallback").is_visible()


def test_files_arriving_in_small_chunks_decode_the_same(open_viewer):
    """The viewer inflates an XRS file while it downloads: any chunking gives the same values."""
    page = open_viewer(pixels="plain.xrsp", rows=SHAPE[0], columns=SHAPE[1])
    for name in ("odd.xrsp", "ct.xrsp", "half.npy"):
        hashes = page.evaluate(
            """async (name) => {
              const bytes = new Uint8Array(await (await fetch(name)).arrayBuffer());
              const out = [];
              for (const size of [1, 7, 13, 4096, bytes.length]) {
                let at = 0;
                const stream = new ReadableStream({ pull(c) {
                  if (at >= bytes.length) { c.close(); return; }
                  c.enqueue(bytes.slice(at, at + size)); at += size;
                } });
                const pixels = await XrsViewer.readPixels(new Response(stream));
                const values = pixels.rescale ? XrsViewer.modalityValues(pixels) : new Float32Array(pixels.data);
                const digest = await crypto.subtle.digest('SHA-256', values.buffer);
                out.push(Array.from(new Uint8Array(digest)).map((b) => b.toString(16).padStart(2, '0')).join(''));
              }
              return out;
            }""",
            name,
        )
        slope, intercept, low, high, _ = CASES[name.split(".")[0]]
        expected = hashlib.sha256(values_for(slope, intercept, low, high).astype("<f4").tobytes())
        assert hashes == [expected.hexdigest()] * 5, name
