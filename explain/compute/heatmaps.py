"""Post-processing of attribution maps for storage and display: the same steps for every
explainer, so that nothing but the map itself tells two explainers apart.

1. :func:`to_case_grid` maps the model-input-sized attribution back onto the case's pixel
   grid. The model input was the whole image resized to (H_in, W_in) (no crop, no padding),
   so the inverse is a plain bilinear resize.
2. :func:`normalize` applies :data:`NORMALIZATION_RULE`.
3. :func:`to_float16_npy_bytes` stores the normalised map; :func:`render_overlay_png` draws it
   as a transparent colour overlay (one colormap for all explainers, no text, no metadata).

The engine runs the same steps as torch operations on the compute device for a whole batch
(:func:`postprocess`), leaving only the PNG's deflate and the file writes to the CPU; the
single-map functions above are thin wrappers around the same code, so both give the same
numbers.
"""

from __future__ import annotations

import io
import math
import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

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
PNG_LEVEL = 1
"""zlib level of the overlay's IDAT: smooth maps compress well at 1, and it is ~5x faster than 6."""

FLOAT16_MAX = float(np.finfo(np.float16).max)

HIGHLIGHT_VALUE = 0.1
"""A pixel counts as highlighted when its normalised value is at least this (overlay alpha
0.075: the faintest tint a reader can tell from the bare image)."""
EMPTY_FRACTION = 0.001
"""A map is *empty* when fewer than this share of its pixels are highlighted (fewer than 1 in
1,000): the overlay shows (next to) nothing, e.g. Grad-CAM whose ReLU zeroes every channel."""
EMPTY_RULE = (
    f"An explanation counts as empty when fewer than {EMPTY_FRACTION:.1%} of its pixels reach "
    f"{HIGHLIGHT_VALUE:g} of the normalised scale (or, for maps stored before this share was "
    "recorded, when it has no positive value)."
)


def _highlighted(normalized: torch.Tensor) -> float:
    return float((normalized >= HIGHLIGHT_VALUE).float().mean())


def highlighted_fraction(normalized: np.ndarray | torch.Tensor) -> float:
    """Share of the pixels of a normalised map that the overlay visibly highlights."""
    return _highlighted(_as_tensor(normalized, "normalized map"))


def is_empty(*, fraction: float | None, raw_max: float | None) -> bool:
    """Whether a stored map counts as empty under :data:`EMPTY_RULE`."""
    if fraction is not None:
        return fraction < EMPTY_FRACTION
    return raw_max is not None and raw_max <= 0.0


def _as_tensor(heatmap: np.ndarray | torch.Tensor, what: str = "heatmap") -> torch.Tensor:
    """float32 2-D tensor (on the input's device; shares memory with a float32 input)."""
    if isinstance(heatmap, np.ndarray):
        if heatmap.ndim != 2 or heatmap.shape[0] < 1 or heatmap.shape[1] < 1:
            raise ValueError(f"{what} must be a non-empty 2-D array, got shape {heatmap.shape}")
        if not np.issubdtype(heatmap.dtype, np.number) or np.iscomplexobj(heatmap):
            raise ValueError(f"{what} must hold real numbers, got {heatmap.dtype}")
        heatmap = torch.from_numpy(np.ascontiguousarray(heatmap, dtype=np.float32))
    elif isinstance(heatmap, torch.Tensor):
        if heatmap.dim() != 2 or heatmap.shape[0] < 1 or heatmap.shape[1] < 1:
            raise ValueError(
                f"{what} must be a non-empty 2-D array, got shape {tuple(heatmap.shape)}"
            )
        if heatmap.dtype.is_complex or heatmap.dtype == torch.bool:
            raise ValueError(f"{what} must hold real numbers, got {heatmap.dtype}")
        heatmap = heatmap.detach().float()
    else:
        raise ValueError(
            f"{what} must be a numpy array or torch tensor, got {type(heatmap).__name__}"
        )
    if not bool(torch.isfinite(heatmap).all()):
        raise ValueError(f"{what} holds NaN or infinite values")
    return heatmap


def _check_size(rows: int, columns: int) -> None:
    for name, value in (("rows", rows), ("columns", columns)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _resize(maps: torch.Tensor, rows: int, columns: int) -> torch.Tensor:
    """(N, H, W) float32 -> (N, rows, columns): bilinear, half-pixel centres, antialiased
    when shrinking. Returns ``maps`` itself when the size already matches."""
    if tuple(maps.shape[1:]) == (rows, columns):
        return maps
    shrinking = rows < maps.shape[1] or columns < maps.shape[2]
    resized = F.interpolate(
        maps[:, None],
        size=(rows, columns),
        mode="bilinear",
        align_corners=False,
        antialias=shrinking,
    )
    return resized[:, 0]


def to_case_grid(attribution: np.ndarray | torch.Tensor, *, rows: int, columns: int) -> np.ndarray:
    """float32 (rows, columns): bilinear resize (half-pixel centres, antialiased when shrinking)."""
    tensor = _as_tensor(attribution, "attribution")
    _check_size(rows, columns)
    return _resize(tensor[None], rows, columns)[0].cpu().numpy().copy()


def _positive_values(positive: torch.Tensor) -> np.ndarray | torch.Tensor:
    """The entries > 0, flat (numpy on the CPU, where its boolean indexing is the faster)."""
    if positive.device.type == "cpu":
        flat = positive.reshape(-1).numpy()
        return flat[flat > 0]
    flat = positive.reshape(-1)
    return flat[flat > 0]


def _order_statistics(values: np.ndarray | torch.Tensor, ranks: Sequence[int]) -> list[float]:
    """The entries at 0-based `ranks` of the 1-D ``values`` sorted ascending (exact values,
    found by selection rather than a full sort)."""
    if isinstance(values, np.ndarray):
        chosen = np.partition(values, list(ranks))
        return [float(chosen[rank]) for rank in ranks]
    return [float(torch.kthvalue(values, rank + 1).values) for rank in ranks]


def percentile_scale(positive: torch.Tensor) -> float | None:
    """:data:`PERCENTILE` of the positive entries of ``positive`` (a map whose negative values
    are already 0), as numpy's default ("linear") ``np.percentile`` computes it in float64;
    None when no entry is positive."""
    values = _positive_values(positive)
    count = len(values)
    if count == 0:
        return None
    quantile = PERCENTILE / 100.0
    # numpy's virtual index, neighbours and lerp, term for term (alpha = beta = 1)
    virtual = count * quantile + (1.0 + quantile * (1.0 - 1.0 - 1.0)) - 1.0
    if virtual >= count - 1:
        below = above = count - 1
    elif virtual < 0:
        below = above = 0
    else:
        below = math.floor(virtual)
        above = below + 1
    gamma = virtual - below
    ranks = sorted({below, above})
    statistics = dict(zip(ranks, _order_statistics(values, ranks), strict=True))
    low, high = statistics[below], statistics[above]
    difference = high - low
    if gamma >= 0.5:
        return high - difference * (1.0 - gamma)
    return low + difference * gamma


def _normalize(grid: torch.Tensor) -> torch.Tensor:
    positive = grid.clamp(min=0.0)
    scale = percentile_scale(positive)
    if scale is None:
        return torch.zeros_like(positive)
    # divide by a same-dtype tensor (not a Python scalar, which torch turns into a
    # multiplication by the reciprocal) so that the result matches numpy's float32 division
    divisor = torch.full_like(positive, scale)
    return torch.div(positive, divisor).clamp_(0.0, 1.0)


def normalize(heatmap: np.ndarray | torch.Tensor) -> np.ndarray:
    """float32 map in [0, 1] following :data:`NORMALIZATION_RULE`."""
    return _normalize(_as_tensor(heatmap)).cpu().numpy()


def raw_range(heatmap: np.ndarray | torch.Tensor) -> tuple[float, float]:
    """(min, max) of the raw map, stored so a reader of the normalised map can recover scale."""
    low, high = torch.aminmax(_as_tensor(heatmap))
    return float(low), float(high)


def npy_bytes(array: np.ndarray) -> bytes:
    """``np.save`` of ``array`` as it is (no pickle)."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def to_float16_npy_bytes(heatmap: np.ndarray | torch.Tensor) -> bytes:
    """``np.save`` of the map as float16 (rows, columns), without pickle."""
    tensor = _as_tensor(heatmap)
    if float(tensor.abs().max()) > FLOAT16_MAX:
        raise ValueError("heatmap values exceed the float16 range; store the normalised map")
    return npy_bytes(tensor.half().cpu().numpy())


def _colormap_table() -> np.ndarray:
    from matplotlib import colormaps

    rgba = colormaps[COLORMAP](np.linspace(0.0, 1.0, 256))
    return np.round(rgba[:, :3] * 255).astype(np.uint8)


_TABLES: dict[torch.device, torch.Tensor] = {}


def _packed_table(device: torch.device) -> torch.Tensor:
    """(256,) int32 whose bytes in memory are the colormap's R, G, B and a 0 for alpha, so
    that one lookup per pixel gives the pixel's four bytes in PNG order."""
    table = _TABLES.get(device)
    if table is None:
        rgba = np.zeros((256, 4), dtype=np.uint8)
        rgba[:, :3] = _colormap_table()
        table = torch.from_numpy(rgba.view(np.int32).reshape(256).copy()).to(device)
        _TABLES[device] = table
    return table


def overlay_scanlines(normalized: torch.Tensor) -> torch.Tensor:
    """uint8 (rows, 1 + 4 * columns): the overlay's PNG scanlines (filter byte 0, then RGBA
    pixels), colour from :data:`COLORMAP` at round(255 * value), alpha round(255 *
    MAX_ALPHA * value); computed on ``normalized``'s device."""
    rows, columns = normalized.shape
    index = (normalized * 255).round_().to(torch.int64)
    pixels = torch.take(_packed_table(normalized.device), index)  # int32 (rows, columns)
    rgba = pixels.view(torch.uint8).view(rows, columns, 4)
    rgba[..., 3] = (normalized * (255 * MAX_ALPHA)).round_().to(torch.uint8)
    scanlines = torch.empty((rows, 1 + 4 * columns), dtype=torch.uint8, device=normalized.device)
    scanlines[:, 0] = 0
    scanlines[:, 1:] = rgba.view(rows, 4 * columns)
    return scanlines


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def encode_png_scanlines(scanlines: np.ndarray) -> bytes:
    """Minimal RGBA PNG (IHDR, one IDAT, IEND) of uint8 (H, 1 + 4 W) filtered scanlines."""
    height, length = scanlines.shape
    width = (length - 1) // 4
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    data = zlib.compress(memoryview(np.ascontiguousarray(scanlines)).cast("B"), PNG_LEVEL)
    return b"".join(
        [b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", header), _chunk(b"IDAT", data), _chunk(b"IEND", b"")]
    )


def encode_png_rgba(pixels: np.ndarray) -> bytes:
    """Minimal PNG (IHDR, one IDAT, IEND) of an (H, W, 4) uint8 array: no other chunks."""
    height, width = pixels.shape[:2]
    rows = np.concatenate(
        [np.zeros((height, 1), dtype=np.uint8), pixels.reshape(height, width * 4)], axis=1
    )
    return encode_png_scanlines(rows)


def _check_unit_range(tensor: torch.Tensor) -> None:
    low, high = torch.aminmax(tensor)
    if float(low) < 0.0 or float(high) > 1.0:
        raise ValueError("normalized heatmap values must lie in [0, 1]; call normalize() first")


def render_overlay_png(normalized: np.ndarray | torch.Tensor) -> bytes:
    """RGBA PNG of the map's size: colour from :data:`COLORMAP`, alpha = MAX_ALPHA * value."""
    tensor = _as_tensor(normalized, "normalized heatmap")
    _check_unit_range(tensor)
    return encode_png_scanlines(overlay_scanlines(tensor).cpu().numpy())


@dataclass(frozen=True)
class CaseMaps:
    """One case's post-processed map on its pixel grid, on the CPU and ready to store."""

    heatmap: np.ndarray  # float32 (rows, columns), raw values
    normalized: np.ndarray  # float32, NORMALIZATION_RULE applied
    heatmap16: np.ndarray  # float16 copies, as stored
    normalized16: np.ndarray
    scanlines: np.ndarray  # uint8 (rows, 1 + 4 * columns), the overlay before deflate
    raw_min: float
    raw_max: float
    highlighted: float = 0.0  # share of pixels at or above HIGHLIGHT_VALUE

    def heatmap_npy(self) -> bytes:
        return npy_bytes(self.heatmap16)

    def normalized_npy(self) -> bytes:
        return npy_bytes(self.normalized16)

    def overlay_png(self) -> bytes:
        """The deflate runs here (zlib releases the GIL: call it from a worker thread)."""
        return encode_png_scanlines(self.scanlines)


def postprocess(attributions: torch.Tensor, sizes: Sequence[tuple[int, int]]) -> Iterator[CaseMaps]:
    """Each map of ``attributions`` (N, H, W) on its case grid ``sizes[i]`` = (rows, columns):
    resampled, normalised and coloured with torch on the maps' device; yields one case at a
    time (in order) so that a caller can store a case while the next is processed.

    Raises ValueError for non-finite maps or bad sizes before yielding anything.
    """
    if attributions.dim() != 3 or attributions.shape[0] != len(sizes):
        raise ValueError(
            f"attributions must be (N, H, W) with N = {len(sizes)}, got {tuple(attributions.shape)}"
        )
    maps = attributions.detach().float()
    if not bool(torch.isfinite(maps).all()):
        raise ValueError("attribution holds NaN or infinite values")
    for rows, columns in sizes:
        _check_size(rows, columns)
    for index, (rows, columns) in enumerate(sizes):
        grid = _resize(maps[index : index + 1], rows, columns)[0]
        normalized = _normalize(grid)
        low, high = torch.aminmax(grid)
        yield CaseMaps(
            heatmap=grid.cpu().numpy(),
            normalized=normalized.cpu().numpy(),
            heatmap16=grid.half().cpu().numpy(),
            normalized16=normalized.half().cpu().numpy(),
            scanlines=overlay_scanlines(normalized).cpu().numpy(),
            raw_min=float(low),
            raw_max=float(high),
            highlighted=_highlighted(normalized),
        )
