"""Post-processing of attribution maps for storage and display: the same steps for every
explainer, so that nothing but the map itself tells two explainers apart.

1. :func:`to_case_grid` maps the model-input-sized attribution back onto the case's pixel
   grid. The model input was the whole image resized to (H_in, W_in) (no crop, no padding),
   so the inverse is a plain bilinear resize.
2. :func:`normalize` applies :data:`NORMALIZATION_RULE`.
3. :func:`to_float16_npy_bytes` stores the normalised map; :func:`render_overlay_png` draws it
   as a transparent colour overlay (one colormap for all explainers, no text, no metadata).
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import torch
import torch.nn.functional as F

NORMALIZATION_RULE = (
    "Only evidence for the shown class is displayed: negative values are set to 0, the map "
    "is divided by the 99th percentile of its positive values and clipped to [0, 1] "
    "(a map with no positive value stays all 0)."
)
PERCENTILE = 99.0

COLORMAP = "inferno"
"""matplotlib colormap of every overlay (perceptually uniform, legible in grey)."""
MAX_ALPHA = 0.75
"""Overlay opacity at value 1; alpha is proportional to the value (0 where the map is 0)."""

FLOAT16_MAX = float(np.finfo(np.float16).max)


def _as_array(heatmap: np.ndarray | torch.Tensor, what: str = "heatmap") -> np.ndarray:
    if isinstance(heatmap, torch.Tensor):
        heatmap = heatmap.detach().to("cpu").float().numpy()
    if not isinstance(heatmap, np.ndarray):
        raise ValueError(
            f"{what} must be a numpy array or torch tensor, got {type(heatmap).__name__}"
        )
    if heatmap.ndim != 2 or heatmap.shape[0] < 1 or heatmap.shape[1] < 1:
        raise ValueError(f"{what} must be a non-empty 2-D array, got shape {heatmap.shape}")
    if not np.issubdtype(heatmap.dtype, np.number) or np.iscomplexobj(heatmap):
        raise ValueError(f"{what} must hold real numbers, got {heatmap.dtype}")
    array = heatmap.astype(np.float32, copy=False)
    if not np.isfinite(array).all():
        raise ValueError(f"{what} holds NaN or infinite values")
    return array


def to_case_grid(attribution: np.ndarray | torch.Tensor, *, rows: int, columns: int) -> np.ndarray:
    """float32 (rows, columns): bilinear resize (half-pixel centres, antialiased when shrinking)."""
    array = _as_array(attribution, "attribution")
    for name, value in (("rows", rows), ("columns", columns)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if array.shape == (rows, columns):
        return array.copy()
    tensor = torch.from_numpy(np.ascontiguousarray(array))[None, None]
    shrinking = rows < array.shape[0] or columns < array.shape[1]
    resized = F.interpolate(
        tensor, size=(rows, columns), mode="bilinear", align_corners=False, antialias=shrinking
    )
    return resized[0, 0].numpy().astype(np.float32)


def normalize(heatmap: np.ndarray | torch.Tensor) -> np.ndarray:
    """float32 map in [0, 1] following :data:`NORMALIZATION_RULE`."""
    array = _as_array(heatmap)
    positive = np.maximum(array, 0.0)
    values = positive[positive > 0]
    if values.size == 0:
        return np.zeros_like(positive, dtype=np.float32)
    scale = float(np.percentile(values.astype(np.float64), PERCENTILE))
    return np.clip(positive / scale, 0.0, 1.0).astype(np.float32)


def raw_range(heatmap: np.ndarray | torch.Tensor) -> tuple[float, float]:
    """(min, max) of the raw map, stored so a reader of the normalised map can recover scale."""
    array = _as_array(heatmap)
    return float(array.min()), float(array.max())


def to_float16_npy_bytes(heatmap: np.ndarray | torch.Tensor) -> bytes:
    """``np.save`` of the map as float16 (rows, columns), without pickle."""
    array = _as_array(heatmap)
    if float(np.abs(array).max()) > FLOAT16_MAX:
        raise ValueError("heatmap values exceed the float16 range; store the normalised map")
    buffer = io.BytesIO()
    np.save(buffer, array.astype(np.float16), allow_pickle=False)
    return buffer.getvalue()


def _colormap_table() -> np.ndarray:
    from matplotlib import colormaps

    rgba = colormaps[COLORMAP](np.linspace(0.0, 1.0, 256))
    return np.round(rgba[:, :3] * 255).astype(np.uint8)


_TABLE: np.ndarray | None = None


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def encode_png_rgba(pixels: np.ndarray) -> bytes:
    """Minimal PNG (IHDR, one IDAT, IEND) of an (H, W, 4) uint8 array: no other chunks."""
    height, width = pixels.shape[:2]
    rows = np.concatenate(
        [np.zeros((height, 1), dtype=np.uint8), pixels.reshape(height, width * 4)], axis=1
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"".join(
        [
            b"\x89PNG\r\n\x1a\n",
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(rows.tobytes(), 1)),  # level 1: smooth maps, 5x faster
            _chunk(b"IEND", b""),
        ]
    )


def render_overlay_png(normalized: np.ndarray | torch.Tensor) -> bytes:
    """RGBA PNG of the map's size: colour from :data:`COLORMAP`, alpha = MAX_ALPHA * value."""
    global _TABLE
    array = _as_array(normalized, "normalized heatmap")
    if float(array.min()) < 0.0 or float(array.max()) > 1.0:
        raise ValueError("normalized heatmap values must lie in [0, 1]; call normalize() first")
    if _TABLE is None:
        _TABLE = _colormap_table()
    index = np.round(array * 255).astype(np.intp)
    pixels = np.empty((*array.shape, 4), dtype=np.uint8)
    pixels[..., :3] = _TABLE[index]
    pixels[..., 3] = np.round(array * (255 * MAX_ALPHA)).astype(np.uint8)
    return encode_png_rgba(pixels)
