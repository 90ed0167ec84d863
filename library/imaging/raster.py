"""PNG and JPEG images from public datasets: validated, decoded at full precision, re-encoded clean.

* Only PNG and JPEG are opened (Pillow is told so); anything else is ``unreadable_image``.
* Size: file bytes are checked against ``max_bytes`` before parsing, width x height against
  ``max_pixels`` from the header before decoding; Pillow's own DecompressionBombError is
  reported as ``too_large`` too.
* Grey: 8-bit (and 1-bit) images become float32 0..255 with ``bits`` 8; 16-bit PNGs keep every
  value (float32 0..65535, ``bits`` 16). Colour: uint8 RGB (alpha dropped, palette/CMYK/YCbCr
  converted). An RGB image whose three channels are identical everywhere is treated as grey,
  since many X-ray datasets store grey images as RGB.
* JPEG EXIF orientation is applied, so pixels are stored the way viewers show them.
* ``raster_to_png_bytes`` writes the pixels alone: no text chunks, EXIF, ICC or dates survive.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from library.imaging.errors import ImageRejected

ALLOWED_FORMATS = ("PNG", "JPEG")


@dataclass
class RasterImage:
    values: np.ndarray  # float32 (H, W) grey at full precision, or uint8 (H, W, 3) RGB
    is_color: bool
    bits: int  # 8 or 16 (grey); 8 for colour
    format: str  # "PNG" or "JPEG"


def read_raster(source: bytes | str | Path, *, max_bytes: int, max_pixels: int) -> RasterImage:
    """Open, validate and decode one PNG/JPEG file."""
    data = _load_bytes(source, max_bytes)
    # A truncated file must be rejected, never half-decoded. Pillow's switch is process-wide and
    # some libraries turn it on when imported (WeasyPrint does), so insist on it here.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DecompressionBombWarning: our own limit decides
        try:
            image = Image.open(BytesIO(data), formats=list(ALLOWED_FORMATS))
        except Image.DecompressionBombError as exc:
            raise ImageRejected(
                "too_large", f"image header declares too many pixels: {exc}"
            ) from exc
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise ImageRejected("unreadable_image", "not a readable PNG or JPEG image") from exc
        width, height = image.size
        if width * height > max_pixels:
            raise ImageRejected(
                "too_large",
                f"{width}x{height} = {width * height:,} pixels, the limit is {max_pixels:,}",
            )
        if width < 1 or height < 1:
            raise ImageRejected("unreadable_image", f"empty image ({width}x{height})")
        fmt = str(image.format)
        try:
            image.load()
            if fmt == "JPEG":
                image = ImageOps.exif_transpose(image)
            values, is_color, bits = _pixels(image)
        except ImageRejected:
            raise
        except Image.DecompressionBombError as exc:
            raise ImageRejected("too_large", f"image too large to decode: {exc}") from exc
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise ImageRejected(
                "unreadable_image", f"{fmt} data cannot be decoded: {reason}"
            ) from exc
    return RasterImage(values=values, is_color=is_color, bits=bits, format=fmt)


def _load_bytes(source: bytes | str | Path, max_bytes: int) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)  # no copy for bytes; a memoryview's len() would count items
        _check_size(len(data), max_bytes)
    else:
        _check_size(os.stat(source).st_size, max_bytes)  # before reading anything
        data = Path(source).read_bytes()
        _check_size(len(data), max_bytes)  # the file may have grown since stat
    if not data:
        raise ImageRejected("unreadable_image", "the file is empty")
    return data


def _check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise ImageRejected("too_large", f"file is {size:,} bytes, the limit is {max_bytes:,}")


def _pixels(image: Image.Image) -> tuple[np.ndarray, bool, int]:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(image).astype(np.float32), False, 16
    if mode == "I":
        arr = np.asarray(image)
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise ImageRejected("unreadable_image", "32-bit integer images are not supported")
        return arr.astype(np.float32), False, 16
    if mode in ("1", "L", "LA"):
        grey = image.convert("L") if mode != "LA" else image.getchannel("L")
        return np.asarray(grey).astype(np.float32), False, 8
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
        return rgb[..., 0].astype(np.float32), False, 8
    return np.ascontiguousarray(rgb), True, 8


def raster_display01(image: RasterImage) -> np.ndarray:
    """float32 in [0, 1]: 8-bit and colour values / 255, 16-bit grey min-max scaled."""
    values = np.asarray(image.values, dtype=np.float32)
    if image.is_color or image.bits <= 8:
        return np.clip(values / np.float32(255.0), 0.0, 1.0)
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return np.zeros_like(values)
    return ((values - lo) / (hi - lo)).astype(np.float32)


def raster_to_png_bytes(values: np.ndarray, bits: int) -> bytes:
    """Encode pixels alone as PNG: (H, W) grey at 8 or 16 bits, or (H, W, 3) uint8 RGB."""
    arr = np.asarray(values)
    if arr.ndim == 3 and arr.shape[2] == 3:
        out = np.clip(np.rint(arr), 0, 255).astype(np.uint8) if arr.dtype != np.uint8 else arr
    elif arr.ndim == 2 and bits == 16:
        out = np.clip(np.rint(arr), 0, 65535).astype(np.uint16)
    elif arr.ndim == 2 and bits == 8:
        out = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    else:
        raise ValueError(f"cannot encode shape {arr.shape} at {bits} bits as PNG")
    buffer = BytesIO()
    Image.fromarray(np.ascontiguousarray(out)).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()
