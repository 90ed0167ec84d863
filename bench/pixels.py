"""Benchmark of the viewer's full-precision pixel transfer: float32 .npy against XRS pixels.

For each image size (default: the demo size 512 x 476 and a 3000 x 2500 radiograph) a
chest-radiograph-like image is drawn with the demo generator (demo/anatomy.py: 12-bit
stored values with quantum noise, then the Modality LUT to float32, exactly what the import keeps
as pixels.npy), and the script reports

* bytes on the wire of the float32 .npy (today's file, the baseline) and of the XRS pixels file
  (library/imaging/pixel_transfer.py: 16-bit integers + rescale, delta + byte-plane filter,
  deflate), plus, for comparison only, the float32 .npy deflated as a whole (what HTTP gzip of
  today's file would send) and 16-bit integers deflated without the filter;
* the server's one-time cost: encoding at import (best of 3), and a check that the file decodes
  to bit-identical float32 values;
* time to first image in Debian's chromium (headless, /usr/bin/chromium): from the viewer's
  construction to its first drawn frame (`viewer.ready`, the harness's data-load-ms), the file
  served by a local HTTP server, with the browser cache off, under network profiles emulated
  through the DevTools protocol (`local`: no throttling; `100mbit`: 100 Mbit/s, 5 ms;
  `20mbit`: 20 Mbit/s, 20 ms). Median of `--repeat` page loads (about half as many for images
  over 4 Mpixel), after one uncounted warm-up load of each file; the formats interleaved, in
  alternating order, so that a busy machine slows both alike. The fetch's share (Resource Timing:
  request start to the last byte) is shown next to it.

Every ratio is against the float32 baseline measured in the same run.

    python bench/pixels.py [--sizes 512x476,3000x2500] [--rescale 1,0] [--repeat 5]
                           [--profiles local,100mbit,20mbit] [--no-browser] [--json OUT]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import io
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from demo.anatomy import draw_chest  # noqa: E402
from library.imaging import pixel_transfer  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
VIEWER_DIR = ROOT / "static" / "studies" / "viewer"
PROFILES = {  # name: (download bytes/s or -1 for none, latency ms)
    "local": (-1, 0),
    "100mbit": (100e6 / 8, 5),
    "20mbit": (20e6 / 8, 20),
}


def make_image(rows: int, columns: int, slope: float, intercept: float, seed: int = 7):
    """Stored 12-bit values like the demo generator's, and their float32 modality values."""
    rng = np.random.default_rng(seed)
    image = draw_chest(rng, rows, columns, 1)
    low, high = rng.uniform(60, 700), rng.uniform(2600, 4095)
    stored = np.clip(np.rint(low + image.brightness * (high - low)), 0, 4095).astype(np.uint16)
    values = (stored.astype(np.float64) * slope + intercept).astype(np.float32)
    return stored, values


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def best_seconds(function, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def serve(folder: Path):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            """No request lines on stderr."""

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def time_to_first_image(browser, url: str, file_name: str, profile: str) -> tuple[float, float]:
    """(ms to the first drawn frame, ms of the pixel file's fetch) of one fresh page load."""
    throughput, latency = PROFILES[profile]
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    try:
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
        if throughput > 0:
            cdp.send(
                "Network.emulateNetworkConditions",
                {
                    "offline": False,
                    "latency": latency,
                    "downloadThroughput": throughput,
                    "uploadThroughput": throughput,
                },
            )
        page.goto(url)
        page.wait_for_function(
            "document.body.dataset.state === 'ready' || document.body.dataset.state === 'error'",
            timeout=180_000,
        )
        if page.evaluate("document.body.dataset.state") != "ready":
            raise RuntimeError(page.evaluate("document.body.dataset.error"))
        load_ms = float(page.evaluate("document.body.dataset.loadMs"))
        fetch_ms = page.evaluate(
            """(name) => {
              const entry = performance.getEntriesByType('resource').find((e) => e.name.endsWith(name));
              return entry ? entry.responseEnd - entry.startTime : NaN;
            }""",
            file_name,
        )
        return load_ms, float(fetch_ms)
    finally:
        context.close()


def run(args) -> dict:
    slope, intercept = (float(x) for x in args.rescale.split(","))
    results: dict = {"rescale": [slope, intercept], "sizes": []}
    site = Path(tempfile.mkdtemp(prefix="xrs-bench-pixels-"))
    server = browser = playwright = None
    try:
        for name in ("harness.html", "viewer.js", "viewer.css"):
            shutil.copy(VIEWER_DIR / name, site / name)
        if not args.no_browser:
            from playwright.sync_api import sync_playwright

            server = serve(site)
            playwright = sync_playwright().start()
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        for size in args.sizes.split(","):
            rows, columns = (int(n) for n in size.lower().split("x"))
            stored, values = make_image(rows, columns, slope, intercept)
            baseline = npy_bytes(values)
            encoded = pixel_transfer.encode(values)
            if encoded is None:
                raise SystemExit(f"{size}: no exact 16-bit form (rescale {slope}, {intercept})")
            decoded = pixel_transfer.decode(encoded)
            exact = bool(np.array_equal(decoded.view(np.uint32), values.view(np.uint32)))
            header, _ = pixel_transfer.read_header(encoded)
            entry = {
                "rows": rows,
                "columns": columns,
                "exact": exact,
                "header": header,
                "bytes": {
                    "float32_npy": len(baseline),
                    "xrs_pixels": len(encoded),
                    "float32_npy_deflate": len(zlib.compress(baseline, 6)),
                    "int16_deflate_unfiltered": len(zlib.compress(stored.tobytes(), 6)),
                },
                "encode_s": best_seconds(functools.partial(pixel_transfer.encode, values)),
                "decode_python_s": best_seconds(functools.partial(pixel_transfer.decode, encoded)),
                "first_image_ms": {},
                "fetch_ms": {},
            }
            print(
                f"{rows}x{columns}: float32 .npy {len(baseline):,} B, XRS pixels {len(encoded):,} B "
                f"({len(encoded) / len(baseline):.3f}), exact: {exact}, "
                f"encode {entry['encode_s'] * 1000:.0f} ms",
                flush=True,
            )
            if browser is not None:
                files = {
                    "float32_npy": f"b{rows}x{columns}.npy",
                    "xrs_pixels": f"b{rows}x{columns}.xrsp",
                }
                (site / files["float32_npy"]).write_bytes(baseline)
                (site / files["xrs_pixels"]).write_bytes(encoded)
                base = f"http://127.0.0.1:{server.server_address[1]}/harness.html"
                for file_name in files.values():  # warm-up, not counted
                    url = f"{base}?pixels={file_name}&rows={rows}&columns={columns}"
                    time_to_first_image(browser, url, file_name, "local")
                for profile in args.profiles.split(","):
                    times = {fmt: [] for fmt in files}
                    fetches = {fmt: [] for fmt in files}
                    repeat = (
                        args.repeat if rows * columns < 4_000_000 else max(1, args.repeat // 2 + 1)
                    )
                    for index in range(repeat):
                        order = list(files.items())
                        for fmt, file_name in order if index % 2 == 0 else order[::-1]:
                            url = f"{base}?pixels={file_name}&rows={rows}&columns={columns}"
                            load_ms, fetch_ms = time_to_first_image(
                                browser, url, file_name, profile
                            )
                            times[fmt].append(load_ms)
                            fetches[fmt].append(fetch_ms)
                    entry["first_image_ms"][profile] = {
                        f: statistics.median(t) for f, t in times.items()
                    }
                    entry["fetch_ms"][profile] = {
                        f: statistics.median(t) for f, t in fetches.items()
                    }
                    old = entry["first_image_ms"][profile]["float32_npy"]
                    new = entry["first_image_ms"][profile]["xrs_pixels"]
                    print(
                        f"  {profile:>8}: first image float32 .npy {old:7.0f} ms, "
                        f"XRS pixels {new:7.0f} ms ({new / old:.2f}x)  [median of {repeat}]",
                        flush=True,
                    )
            results["sizes"].append(entry)
    finally:
        if browser is not None:
            browser.close()
        if playwright is not None:
            playwright.stop()
        if server is not None:
            server.shutdown()
            server.server_close()
        shutil.rmtree(site, ignore_errors=True)
    return results


def report(results: dict) -> str:
    lines = [f"rescale slope, intercept: {results['rescale']}", ""]
    for entry in results["sizes"]:
        b = entry["bytes"]
        base = b["float32_npy"]
        lines.append(
            f"## {entry['rows']} x {entry['columns']}  (decodes exactly: {entry['exact']})"
        )
        lines.append("")
        lines.append("| file | bytes | vs float32 .npy |")
        lines.append("|---|---:|---:|")
        for name, label in (
            ("float32_npy", "float32 .npy (baseline)"),
            ("xrs_pixels", "XRS pixels (16-bit + rescale, delta-shuffle, deflate)"),
            ("float32_npy_deflate", "float32 .npy deflated (HTTP gzip of today's file)"),
            ("int16_deflate_unfiltered", "16-bit deflated, no filter"),
        ):
            lines.append(f"| {label} | {b[name]:,} | {b[name] / base:.3f} |")
        lines.append("")
        lines.append(
            f"encode at import {entry['encode_s'] * 1000:.0f} ms; "
            f"Python decode {entry['decode_python_s'] * 1000:.0f} ms"
        )
        if entry["first_image_ms"]:
            lines.append("")
            lines.append(
                "| network | float32 .npy: first image (fetch) | XRS pixels: first image (fetch) "
                "| ratio |"
            )
            lines.append("|---|---:|---:|---:|")
            for profile, times in entry["first_image_ms"].items():
                fetch = entry["fetch_ms"][profile]
                old, new = times["float32_npy"], times["xrs_pixels"]
                lines.append(
                    f"| {profile} | {old:.0f} ms ({fetch['float32_npy']:.0f}) "
                    f"| {new:.0f} ms ({fetch['xrs_pixels']:.0f}) | {new / old:.2f} |"
                )
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="512x476,3000x2500", help="ROWSxCOLUMNS,...")
    parser.add_argument("--rescale", default="1,0", help="slope,intercept of the Modality LUT")
    parser.add_argument("--repeat", type=int, default=5, help="page loads per format and profile")
    parser.add_argument("--profiles", default="local,100mbit,20mbit", help=", ".join(PROFILES))
    parser.add_argument("--no-browser", action="store_true", help="bytes and encode time only")
    parser.add_argument("--json", type=Path, help="write every number here")
    args = parser.parse_args(argv)
    unknown = set(args.profiles.split(",")) - set(PROFILES)
    if unknown:
        parser.error(f"unknown profiles: {', '.join(sorted(unknown))}")
    results = run(args)
    print()
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
