"""The diagnostic image viewer (static/studies/viewer/) driven in Debian's chromium.

The harness page, viewer.js/.css and fixtures generated here with numpy/PIL are served from a
temporary folder by Python's http.server; no Django server is involved. The
`browser` fixture (Debian's chromium) is in conftest.py.
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

VIEWER_DIR = Path(__file__).resolve().parents[2] / "static" / "studies" / "viewer"

RAMP_SHAPE = (256, 256)
SQUARE = (slice(160, 220), slice(20, 80))  # bright square, value 3000
OVERLAY_BOX = (slice(20, 80), slice(150, 230))  # opaque red in the heatmap
PRESETS = [
    {"name": "Wide", "center": 500, "width": 2000},
    {"name": "Soft tissue", "center": 40, "width": 400},
]

READ_PIXEL_JS = """async ([col, row]) => {
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const canvas = document.querySelector('[data-testid=viewer-canvas]');
  const rect = canvas.getBoundingClientRect();
  const p = window.viewer.imageToClient(col, row);
  const x = Math.floor((p.x - rect.left) * canvas.width / rect.width);
  const y = Math.floor((p.y - rect.top) * canvas.height / rect.height);
  return Array.from(canvas.getContext('2d').getImageData(x, y, 1, 1).data.slice(0, 3));
}"""

CANVAS_STATS_JS = """async () => {
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const canvas = document.querySelector('[data-testid=viewer-canvas]');
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let max = 0, sum = 0;
  for (let i = 0; i < data.length; i += 4) { max = Math.max(max, data[i]); sum += data[i]; }
  return {max, mean: sum / (data.length / 4), width: canvas.width, height: canvas.height,
          cssWidth: canvas.clientWidth, cssHeight: canvas.clientHeight};
}"""


def dicom_linear(x, center, width):
    """PS3.3 C.11.2.1.2 LINEAR window to 8 bits, as library.imaging.display does it."""
    x = np.asarray(x, dtype=np.float64)
    low, high = center - 0.5 - (width - 1) / 2, center - 0.5 + (width - 1) / 2
    y = np.where(x <= low, 0.0, np.where(x > high, 1.0, (x - (center - 0.5)) / (width - 1) + 0.5))
    return np.rint(np.clip(y, 0, 1) * 255).astype(int)


def ramp_values() -> np.ndarray:
    cols = np.arange(RAMP_SHAPE[1])
    values = np.tile(-1000 + 12 * cols, (RAMP_SHAPE[0], 1)).astype(np.int16)
    values[SQUARE] = 3000
    return values


def dtype_values(dtype: str, lo: float, hi: float) -> np.ndarray:
    """48 x 80 (not square, so a transposition shows): mostly a column ramp, a little row ramp."""
    rows, cols = np.mgrid[0:48, 0:80]
    values = lo + (hi - lo) * (0.75 * cols / 79 + 0.25 * rows / 47)
    return values.astype(dtype)


DTYPE_CASES = {
    "u1": ("|u1", 0, 255),
    "u2": ("<u2", 0, 4095),
    "i2": ("<i2", -1024, 3071),
    "u4": ("<u4", 0, 4_000_000),
    "i4": ("<i4", -70_000, 70_000),
    "f4": ("<f4", 0.0, 1.0),
    "f8": ("<f8", -3500.0, 20000.0),
    "f2": ("<f2", -2.0, 6.0),
    "big-endian-i2": (">i2", -1024, 3071),
}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A folder with the harness, the viewer and the fixtures, served on a free port."""
    root = tmp_path_factory.mktemp("viewer-site")
    for name in ("harness.html", "viewer.js", "viewer.css"):
        shutil.copy(VIEWER_DIR / name, root / name)
    ramp = ramp_values()
    np.save(root / "ramp.npy", ramp)
    np.save(root / "ramp_f4.npy", ramp.astype(np.float32))
    for key, (dtype, lo, hi) in DTYPE_CASES.items():
        np.save(root / f"dtype_{key}.npy", dtype_values(dtype, lo, hi))
    np.save(root / "fortran_f4.npy", np.asfortranarray(dtype_values("<f4", -5.0, 5.0)))
    overlay = np.zeros((*RAMP_SHAPE, 4), dtype=np.uint8)
    overlay[OVERLAY_BOX] = (255, 0, 0, 255)
    Image.fromarray(overlay, "RGBA").save(root / "heatmap_7f3a.png")
    display = dicom_linear(ramp, PRESETS[0]["center"], PRESETS[0]["width"]).astype(np.uint8)
    Image.fromarray(display, "L").save(root / "display.png")
    color = np.zeros((*RAMP_SHAPE, 3), dtype=np.uint8)
    color[..., 0] = np.arange(256)[None, :]
    color[..., 2] = 200
    Image.fromarray(color, "RGB").save(root / "color.png")
    (root / "not_numpy.npy").write_text("this is not a NumPy file")

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def open_viewer(site, browser):
    """open_viewer(**params) loads the harness and waits until the viewer is ready (or failed)."""
    contexts = []

    def _open(*, viewport=(900, 700), scale=1, expect="ready", **params):
        context = browser.new_context(
            viewport={"width": viewport[0], "height": viewport[1]}, device_scale_factor=scale
        )
        contexts.append(context)
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        query = urllib.parse.urlencode(
            {k: json.dumps(v) if isinstance(v, list) else v for k, v in params.items()}
        )
        page.goto(f"{site}/harness.html?{query}")
        page.wait_for_function("document.body.dataset.state !== 'loading'", timeout=15_000)
        state = page.evaluate("document.body.dataset.state")
        assert state == expect, page.evaluate("document.body.dataset.error || ''")
        assert errors == []
        return page

    yield _open
    for context in contexts:
        context.close()


def ramp_page(open_viewer, **params):
    defaults = {
        "pixels": "ramp.npy",
        "display": "display.png",
        "rows": 256,
        "columns": 256,
        "presets": PRESETS,
        "overlay": "heatmap_7f3a.png",
    }
    return open_viewer(**{**defaults, **params})


def pixel(page, col, row):
    return page.evaluate(READ_PIXEL_JS, [col, row])


def gray(page, col, row):
    r, g, b = pixel(page, col, row)
    assert abs(r - g) <= 1 and abs(g - b) <= 1, (r, g, b)
    return r


def summary(page):
    return page.evaluate("viewer.summary()")


def zoom_percent(page):
    text = page.evaluate(
        """async () => {
          await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
          return document.querySelector('[data-testid=viewer-zoom]').textContent;
        }"""
    )
    return int(text.removeprefix("Zoom ").removesuffix("%"))


def wait_for_zoom_change(page, old):
    page.wait_for_function(
        f"document.querySelector('[data-testid=viewer-zoom]').textContent !== 'Zoom {old}%'"
    )


def canvas_centre(page):
    box = page.get_by_test_id("viewer-canvas").bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


# ramp sample points outside the heatmap box: (column, row)
SAMPLES = [(60, 120), (100, 120), (140, 240), (180, 120)]
