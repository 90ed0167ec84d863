"""The display pipeline: modality values -> VOI (window or VOI LUT) -> [0, 1] -> 8 bits or model.

``display01`` is the single source for both what a reader sees (``to_display``: x255, rounded)
and what a model receives (``to_model_input``), so the two can never drift apart. MONOCHROME1
is inverted after windowing (low values are bright), as PS3.3 C.7.6.3.1.2 requires.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from library.imaging.dicom_read import DicomImage, VoiLut, VoiPreset

# ITU-R BT.601 luma weights, used when a colour image feeds a one-channel model.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def default_window(image: DicomImage) -> VoiPreset | None:
    """The first window the file carries, or None."""
    return image.voi_presets[0] if image.voi_presets else None


def apply_voi(
    values: np.ndarray,
    *,
    preset: VoiPreset | None = None,
    voi_lut: VoiLut | None = None,
    bits_stored: int | None = None,
) -> np.ndarray:
    """Map modality values to float32 in [0, 1].

    A ``preset`` wins over a ``voi_lut``; with neither, the values are min-max scaled (a constant
    image becomes all zeros). Formulas are PS3.3 C.11.2.1.2 (LINEAR, LINEAR_EXACT, SIGMOID) with
    an output range of [0, 1]. A VOI LUT maps ``clip(round(x) - first_mapped, 0, n - 1)`` and
    divides by ``2**bits - 1`` from its descriptor; ``bits_stored`` is the fallback when the
    descriptor's bit count is unusable (outside 1..16), else the LUT's own maximum is used.
    """
    x = np.asarray(values, dtype=np.float64)
    if preset is not None:
        out = _window(x, preset)
    elif voi_lut is not None:
        out = _lookup(x, voi_lut, bits_stored)
    else:
        lo, hi = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
        out = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _window(x: np.ndarray, preset: VoiPreset) -> np.ndarray:
    c, w = float(preset.center), float(preset.width)
    function = preset.function.upper()
    if function == "SIGMOID":
        if w <= 0:
            raise ValueError("SIGMOID window width must be > 0")
        return 1.0 / (1.0 + np.exp(-4.0 * (x - c) / w))
    if function == "LINEAR_EXACT":
        if w <= 0:
            raise ValueError("LINEAR_EXACT window width must be > 0")
        return np.where(x <= c - w / 2, 0.0, np.where(x > c + w / 2, 1.0, (x - c) / w + 0.5))
    if w < 1:
        raise ValueError("LINEAR window width must be >= 1")
    if w == 1:  # the formula degenerates into a threshold at c - 0.5
        return np.where(x <= c - 0.5, 0.0, 1.0)
    low = c - 0.5 - (w - 1) / 2
    high = c - 0.5 + (w - 1) / 2
    inside = (x - (c - 0.5)) / (w - 1) + 0.5
    return np.where(x <= low, 0.0, np.where(x > high, 1.0, inside))


def _lookup(x: np.ndarray, lut: VoiLut, bits_stored: int | None) -> np.ndarray:
    data = np.asarray(lut.data, dtype=np.float64)
    entries = len(data)
    index = np.clip(np.rint(x) - lut.first_mapped, 0, entries - 1).astype(np.int64)
    bits = lut.bits if 1 <= lut.bits <= 16 else (bits_stored or 0)
    top = float(2**bits - 1) if bits else float(data.max() or 1.0)
    if data.max() > top:  # descriptor understates the entry size: trust the data
        top = float(data.max())
    return data[index] / top


def display01(image: DicomImage, *, preset: VoiPreset | None = None) -> np.ndarray:
    """float32 in [0, 1]: windowed (``preset``, else the file's first window, else its VOI LUT,
    else min-max) and MONOCHROME1-inverted; colour images are RGB / 255 with shape (H, W, 3)."""
    if image.is_color:
        return np.asarray(image.modality_values, dtype=np.float32) / np.float32(255.0)
    chosen = preset or default_window(image)
    out = apply_voi(
        image.modality_values,
        preset=chosen,
        voi_lut=None if chosen is not None else image.voi_lut,
        bits_stored=image.bits_stored,
    )
    if image.photometric == "MONOCHROME1":
        out = np.float32(1.0) - out
    return out


def to_uint8(display: np.ndarray) -> np.ndarray:
    """[0, 1] floats to uint8 (x255, rounded half to even, clipped)."""
    return np.rint(np.clip(display, 0.0, 1.0) * 255.0).astype(np.uint8)


def to_display(image: DicomImage, *, preset: VoiPreset | None = None) -> np.ndarray:
    """uint8 (H, W) for monochrome (MONOCHROME1 inverted after windowing), (H, W, 3) for colour."""
    return to_uint8(display01(image, preset=preset))


def to_model_input(
    display01: np.ndarray,
    *,
    size: tuple[int, int],
    channels: int,
    mean: Sequence[float],
    std: Sequence[float],
) -> np.ndarray:
    """float32 (channels, H, W) for a model, ``size`` being (height, width).

    Resizing is Pillow's antialiased bilinear on float32 planes. A grey image is replicated to 3
    channels; a colour image feeding a 1-channel model becomes BT.601 luma. Then
    ``(x - mean) / std`` per channel (a single mean/std applies to every channel).
    """
    arr = np.asarray(display01, dtype=np.float32)
    if channels not in (1, 3):
        raise ValueError("channels must be 1 or 3")
    height, width = int(size[0]), int(size[1])
    if height < 1 or width < 1:
        raise ValueError("size must be positive (height, width)")
    if arr.ndim == 3 and arr.shape[2] == 3:
        planes = [arr[..., i] for i in range(3)]
        if channels == 1:
            planes = [np.tensordot(arr, _LUMA, axes=([2], [0])).astype(np.float32)]
    elif arr.ndim == 2:
        planes = [arr] * channels
    else:
        raise ValueError(f"expected (H, W) or (H, W, 3) values, got shape {arr.shape}")
    resized = np.stack([_resize_plane(p, height, width) for p in planes])
    mean_arr = _per_channel(mean, channels, "mean")
    std_arr = _per_channel(std, channels, "std")
    if np.any(std_arr == 0):
        raise ValueError("std must not contain zeros")
    return ((resized - mean_arr) / std_arr).astype(np.float32)


def spec_model_input(display01: np.ndarray, input_spec: dict) -> np.ndarray:
    """``to_model_input`` under a model's input spec ({"size", "channels", "mean", "std"}): what
    serving (library.model_input) and the demo's training both feed a model."""
    return to_model_input(
        display01,
        size=tuple(input_spec["size"]),
        channels=int(input_spec["channels"]),
        mean=input_spec["mean"],
        std=input_spec["std"],
    ).astype(np.float32)


def _per_channel(values: Sequence[float], channels: int, name: str) -> np.ndarray:
    arr = np.asarray(list(values), dtype=np.float32)
    if arr.size == 1:
        arr = np.repeat(arr, channels)
    if arr.size != channels:
        raise ValueError(f"{name} needs 1 or {channels} values, got {arr.size}")
    return arr.reshape(channels, 1, 1)


def _resize_plane(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    if plane.shape == (height, width):
        return np.ascontiguousarray(plane, dtype=np.float32)
    image = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32))
    resized = image.resize((width, height), resample=Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32)
