"""Lesion mask files (PNG or NPY) read into a bool (height, width) array on the image grid.

A hostile file is refused before it can make anything large: a PNG's size is checked before it
is decoded, a .npy header that declares more data than the file holds is refused before numpy
allocates it, and pickled arrays are never loaded.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format
from PIL import Image, UnidentifiedImageError

from library.labels import PNG_MAGIC, LabelsError

NPY_MAGIC = b"\x93NUMPY"


def load_mask(source: bytes | str | Path, *, shape: tuple[int, int]) -> np.ndarray:
    """Read a lesion mask as a bool (H, W) array; ``shape`` is the image's (height, width).

    PNG: a pixel is lesion where any colour channel is non-zero (and, with an alpha
    channel, alpha is non-zero too); works for 1-bit, L, LA, P, RGB, RGBA and 16-bit.
    NPY: a 2-D bool array or numeric 0/1 array (object arrays are refused).
    An empty mask is returned as is; the caller decides whether that is acceptable.
    """
    if isinstance(source, str | Path):
        path = Path(source)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise LabelsError(f"cannot read mask '{path.name}': {exc.strerror}") from exc
    elif isinstance(source, bytes | bytearray):
        data = bytes(source)
    else:
        raise LabelsError(f"mask source must be bytes, str or Path, not {type(source).__name__}")

    if data.startswith(PNG_MAGIC):
        mask = _png_mask(data, shape)
    elif data.startswith(NPY_MAGIC):
        mask = _npy_mask(data)
    else:
        raise LabelsError("mask must be a PNG image or a .npy array")
    _check_shape(mask.shape, shape)
    return mask


def _check_shape(got: tuple[int, ...], shape: tuple[int, int]) -> None:
    if tuple(got) != tuple(shape):
        raise LabelsError(
            f"mask is {got[1]}×{got[0]} but the image is {shape[1]}×{shape[0]} (width×height)"
        )


def _png_mask(data: bytes, shape: tuple[int, int]) -> np.ndarray:
    try:
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        _check_shape((height, width), shape)  # before decoding a possibly huge image
        image.load()
    except LabelsError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise LabelsError(f"mask PNG cannot be decoded: {exc}") from exc

    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode == "1":
        return np.asarray(image, dtype=bool).copy()
    bands = image.getbands()
    array = np.asarray(image)
    if array.ndim == 2:
        return array != 0
    colour = [i for i, band in enumerate(bands) if band != "A"]
    lesion = (array[..., colour] != 0).any(axis=-1)
    if "A" in bands:
        lesion &= array[..., bands.index("A")] != 0
    return lesion


def _check_npy_size(data: bytes) -> None:
    """numpy allocates the array a .npy header declares before reading its data: refuse a
    header that declares more bytes than the file holds (200000x200000 would take 37 GiB)."""
    handle = io.BytesIO(data)
    try:
        major, _ = npy_format.read_magic(handle)
        read_header = (
            npy_format.read_array_header_1_0 if major == 1 else npy_format.read_array_header_2_0
        )
        shape, _, dtype = read_header(handle)
    except (ValueError, OSError, EOFError, SyntaxError, TypeError) as exc:
        raise LabelsError(f"mask .npy cannot be read: {exc}") from exc
    declared = math.prod(shape) * dtype.itemsize
    if declared > len(data) - handle.tell():
        raise LabelsError(
            f"mask .npy declares shape {shape} ({declared:,} bytes) but holds "
            f"{len(data) - handle.tell():,} bytes of data"
        )


def _npy_mask(data: bytes) -> np.ndarray:
    _check_npy_size(data)
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise LabelsError("mask .npy holds Python objects; pickled arrays are refused") from exc
        raise LabelsError(f"mask .npy cannot be read: {exc}") from exc
    except (OSError, EOFError) as exc:
        raise LabelsError(f"mask .npy cannot be read: {exc}") from exc
    if array.ndim == 3 and 1 in (array.shape[0], array.shape[-1]):
        array = array.reshape(array.shape[1:] if array.shape[0] == 1 else array.shape[:-1])
    if array.ndim != 2:
        raise LabelsError(f"mask .npy must be 2-D (height, width), got shape {array.shape}")
    if array.dtype == bool:
        return array.copy()
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise LabelsError(f"mask .npy must hold bool or 0/1 numbers, got dtype {array.dtype}")
    values = np.unique(array)
    stray = [v for v in values if v not in (0, 1)]
    if stray:
        shown = ", ".join(f"{v:g}" for v in stray[:3])
        raise LabelsError(f"mask .npy must hold only 0 and 1, found {shown}")
    return array != 0
