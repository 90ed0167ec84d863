"""The viewer's full-precision pixels as compressed 16-bit integers plus a rescale (pure, no Django).

DICOM stores integers and the Modality LUT makes them ``value = slope * stored + intercept``; the
library keeps those values as float32 (``pixels.npy``, 4 bytes a pixel). This module finds 16-bit
integers ``k`` and a ``(slope, intercept)`` that give back **exactly** the float32 values, with
the arithmetic the browser uses (``Math.fround(slope * k + intercept)``: one IEEE double multiply,
one double add, rounded to float32), and packs them into an "XRS pixels" file:

    bytes 0-6   magic  b"\\x93XRSPIX"
    byte 7      format version (1)
    bytes 8-11  header length N, uint32 little-endian
    12..12+N    header: ASCII JSON {"shape": [rows, columns], "dtype": "<u2" | "<i2",
                "slope": float, "intercept": float, "filter": "delta-shuffle",
                "codec": "deflate", "size": 2 * rows * columns}
    then        the body: a zlib (RFC 1950, "deflate" for the browser's DecompressionStream)
                stream of the filtered integers

The filter: ``k`` in C order as 16-bit words, each replaced by its difference from the previous
word modulo 2**16 (the first from 0), then split into two byte planes (all low bytes, then all
high bytes). Decoding is the reverse: inflate, re-interleave, running sum modulo 2**16.

``encode`` returns None when no exact 16-bit form exists (real-valued floats, NaN or infinity,
a range wider than 65,536 steps, colour or non-2-D arrays): the float32 ``.npy`` stays the file the
viewer gets. Every encoding is verified against the input before it is returned, so a file this
module writes always decodes to the identical float32 values (``-0.0`` comes back as ``0.0``).
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

MAGIC = b"\x93XRSPIX"
VERSION = 1
FILTER = "delta-shuffle"
CODEC = "deflate"
DEFAULT_LEVEL = 6  # zlib level: 9 is ~25x slower on a 3000x2500 image for ~1 % fewer bytes
MAX_UNIQUE = 1 << 16
_BLOCK = 1 << 20  # values verified at a time
_U16 = (0, 65535)
_I16 = (-32768, 32767)


class PixelFormatError(ValueError):
    """A byte string that is not a valid XRS pixels file."""


@dataclass(frozen=True)
class Rescale:
    """``value = float32(slope * stored + intercept)`` for the 16-bit ``stored`` array."""

    stored: np.ndarray  # uint16 or int16, C order, the input's shape
    slope: float
    intercept: float


def find_rescale(
    values: np.ndarray, *, hints: Iterable[tuple[float, float]] = ()
) -> Rescale | None:
    """An exact 16-bit representation of the 2-D ``values``, or None when there is none.

    ``hints`` are candidate (slope, intercept) pairs tried first (e.g. the DICOM file's
    RescaleSlope/RescaleIntercept); a wrong hint is only a wasted try. Without one, integer values
    get slope 1 (intercept 0 when they fit uint16 or int16, else their minimum), other values a
    slope inferred from the spacing of their distinct values."""
    arr = np.asarray(values)
    if arr.ndim != 2 or arr.size == 0 or arr.dtype.kind not in "biuf":
        return None
    ref = np.ascontiguousarray(arr, dtype=np.float32)
    if arr.dtype != np.float32 and not np.array_equal(ref.astype(arr.dtype), arr):
        return None  # e.g. float64 or int32 values that float32 would round: nothing to match
    with np.errstate(invalid="ignore"):
        if not np.isfinite(ref).all():
            return None
    lo, hi = float(ref.min()), float(ref.max())

    if hi - lo <= _U16[1] and np.array_equal(ref, np.rint(ref)):
        found = _try(ref, 1.0, 0.0)  # intercept 0, or the minimum when outside uint16/int16
        if found is not None:
            return found

    for slope, intercept in hints:
        if _usable(slope) and isinstance(intercept, (int, float)) and math.isfinite(intercept):
            found = _try(ref, float(slope), float(intercept))
            if found is not None:
                return found

    unique, inverse = np.unique(ref, return_inverse=True)
    if len(unique) > MAX_UNIQUE:
        return None
    for slope, intercept in _candidates(unique.astype(np.float64)):
        found = _try(unique, slope, intercept)
        if found is not None:
            stored = found.stored[inverse.reshape(-1)].reshape(ref.shape)
            return Rescale(stored=stored, slope=found.slope, intercept=found.intercept)
    return None


def encode(
    values: np.ndarray,
    *,
    hints: Iterable[tuple[float, float]] = (),
    level: int = DEFAULT_LEVEL,
) -> bytes | None:
    """The XRS pixels file for ``values``, or None when they have no exact 16-bit form."""
    rescale = find_rescale(values, hints=hints)
    if rescale is None:
        return None
    return pack(rescale, level=level)


def pack(rescale: Rescale, *, level: int = DEFAULT_LEVEL) -> bytes:
    """The file bytes of an already verified ``Rescale``."""
    stored = np.ascontiguousarray(rescale.stored)
    if stored.dtype not in (np.uint16, np.int16) or stored.ndim != 2:
        raise ValueError("stored must be a 2-D uint16 or int16 array")
    rows, columns = stored.shape
    words = stored.astype("<u2" if stored.dtype == np.uint16 else "<i2").view("<u2").reshape(-1)
    delta = np.empty_like(words)
    delta[0] = words[0]
    np.subtract(words[1:], words[:-1], out=delta[1:])  # modulo 2**16
    planes = delta.view(np.uint8).reshape(-1, 2).T.copy()  # row 0: low bytes, row 1: high bytes
    header = json.dumps(
        {
            "shape": [int(rows), int(columns)],
            "dtype": "<u2" if stored.dtype == np.uint16 else "<i2",
            "slope": float(rescale.slope),
            "intercept": float(rescale.intercept),
            "filter": FILTER,
            "codec": CODEC,
            "size": 2 * rows * columns,
        },
        separators=(",", ":"),
    ).encode("ascii")
    return (
        MAGIC
        + bytes([VERSION])
        + struct.pack("<I", len(header))
        + header
        + zlib.compress(planes.tobytes(), level)
    )


def is_encoded(data: bytes) -> bool:
    return data[: len(MAGIC)] == MAGIC


def read_header(data: bytes) -> tuple[dict, int]:
    """(header, offset of the body); PixelFormatError when the file is not valid."""
    if len(data) < 12 or not is_encoded(data):
        raise PixelFormatError("not an XRS pixels file")
    if data[7] != VERSION:
        raise PixelFormatError(f"unsupported XRS pixels version {data[7]}")
    (length,) = struct.unpack_from("<I", data, 8)
    if 12 + length > len(data):
        raise PixelFormatError("truncated header")
    try:
        header = json.loads(data[12 : 12 + length].decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise PixelFormatError("malformed header") from None
    shape = header.get("shape") if isinstance(header, dict) else None
    if (
        not isinstance(shape, list)
        or len(shape) != 2
        or not all(isinstance(n, int) and n > 0 for n in shape)
        or header.get("dtype") not in ("<u2", "<i2")
        or header.get("filter") != FILTER
        or header.get("codec") != CODEC
        or header.get("size") != 2 * shape[0] * shape[1]
        or not _usable(header.get("slope"))
        or not isinstance(header.get("intercept"), (int, float))
        or not math.isfinite(header["intercept"])
    ):
        raise PixelFormatError("malformed header")
    return header, 12 + length


def decode_stored(data: bytes) -> tuple[np.ndarray, float, float]:
    """(stored 16-bit array, slope, intercept) of an XRS pixels file."""
    header, offset = read_header(data)
    rows, columns = header["shape"]
    count = rows * columns
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(data[offset:], 2 * count + 1)
    except zlib.error as exc:
        raise PixelFormatError(f"corrupt body: {exc}") from None
    if len(raw) != 2 * count or not inflater.eof:
        raise PixelFormatError("the body does not hold rows x columns 16-bit values")
    planes = np.frombuffer(raw, dtype=np.uint8).reshape(2, count)
    delta = planes[0].astype(np.uint16) | (planes[1].astype(np.uint16) << 8)
    words = np.cumsum(delta, dtype=np.uint16)  # modulo 2**16
    stored = words.view(np.int16) if header["dtype"] == "<i2" else words
    return stored.reshape(rows, columns), float(header["slope"]), float(header["intercept"])


def decode(data: bytes) -> np.ndarray:
    """The float32 modality values of an XRS pixels file, computed as the browser does."""
    stored, slope, intercept = decode_stored(data)
    return _values(stored, slope, intercept)


# ---------------------------------------------------------------------------------- internals


def _values(k: np.ndarray, slope: float, intercept: float) -> np.ndarray:
    """float32(slope * k + intercept): a double multiply and a double add, like JavaScript."""
    return (np.float64(slope) * k.astype(np.float64) + np.float64(intercept)).astype(np.float32)


def _usable(slope) -> bool:
    return isinstance(slope, (int, float)) and math.isfinite(slope) and slope != 0


def _lattice(ref: np.ndarray, slope: float, intercept: float):
    """(k as int32, min k, max k) with float32(slope * k + intercept) bit-identical to every
    value of the float32 ``ref`` and a span of at most 65,535, or None (k is None when it does not
    fit int32). Works through blocks of
    ``_BLOCK`` values so that a large image needs no full-size float64 temporaries."""
    flat = ref.reshape(-1)
    k = np.empty(flat.size, dtype=np.int32)
    kmin, kmax = math.inf, -math.inf
    with np.errstate(all="ignore"):
        for start in range(0, flat.size, _BLOCK):
            block = flat[start : start + _BLOCK]
            steps = np.rint((block.astype(np.float64) - intercept) / slope)
            if not np.isfinite(steps).all():
                return None
            kmin = min(kmin, float(steps.min()))
            kmax = max(kmax, float(steps.max()))
            if kmax - kmin > _U16[1]:
                return None
            # == treats -0.0 as 0.0 (the same value, the same window); ref is finite
            if not np.array_equal(_values(steps, slope, intercept), block):
                return None
            if k is not None and (kmin < -(2**31) or kmax >= 2**31):
                k = None  # far from 0: only the range is of use (to move the intercept)
            if k is not None:
                k[start : start + _BLOCK] = steps
    return (None if k is None else k.reshape(ref.shape)), kmin, kmax


def _try(ref: np.ndarray, slope: float, intercept: float) -> Rescale | None:
    """The exact representation on the lattice (slope, intercept), as uint16 or int16, or with
    the intercept moved to the lattice's minimum (k from 0) when only the span fits 16 bits."""
    found = _lattice(ref, slope, intercept)
    if found is None:
        return None
    k, kmin, kmax = found
    for dtype, (low, high) in ((np.uint16, _U16), (np.int16, _I16)):
        if k is not None and kmin >= low and kmax <= high:
            return Rescale(stored=k.astype(dtype), slope=slope, intercept=intercept)
    shifted = intercept + slope * kmin
    found = _lattice(ref, slope, shifted)
    if found is not None and found[1] >= _U16[0] and found[2] <= _U16[1]:
        return Rescale(stored=found[0].astype(np.uint16), slope=slope, intercept=shifted)
    return None


def _decimal_roundings(x: float) -> list[float]:
    """``x`` rounded to 1..15 significant decimal digits (DICOM DS values are decimal strings)."""
    if x == 0 or not math.isfinite(x):
        return [0.0]
    out = []
    for digits in range(1, 16):
        rounded = float(f"{x:.{digits - 1}e}")
        if rounded not in out:
            out.append(rounded)
    return out


def _quantum(u: np.ndarray, guess: float) -> float | None:
    """The common step of the sorted distinct values ``u`` near ``guess`` (refined from ever
    farther values, since float32 rounding makes each single gap inexact), or None."""
    u0 = float(u[0])
    quantum = guess
    limit = 16.0
    while True:
        end = int(np.searchsorted(u, u0 + quantum * limit, side="right"))
        ratios = (u[:end] - u0) / quantum
        steps = np.rint(ratios)
        if np.abs(ratios - steps).max() > 0.1 or steps[-1] > 65535:
            return None
        if steps[-1] > 0:
            quantum = (float(u[end - 1]) - u0) / float(steps[-1])
        if end == len(u):
            return quantum
        limit *= 8


def _candidates(u: np.ndarray):
    """(slope, intercept) pairs worth verifying for the sorted distinct values ``u``."""
    if len(u) == 1:
        yield 1.0, float(u[0])
        return
    step = float(np.diff(u).min())
    u0 = float(u[0])
    # float32 rounding of the largest value, relative to the span: how far the slope may be off
    tolerance = max(1e-9, 4 * float(np.spacing(np.float32(np.abs(u).max()))) / float(u[-1] - u0))
    for divisor in range(1, 9):  # the smallest gap is a multiple of the quantum
        quantum = _quantum(u, step / divisor)
        if quantum is None or quantum <= 0:
            continue
        slopes = [quantum]
        slopes += [
            s for s in _decimal_roundings(quantum) if abs(s - quantum) <= tolerance * quantum
        ]
        for slope in dict.fromkeys(slopes):
            origin = u0 - slope * round(u0 / slope)  # the intercept nearest 0 on the lattice
            intercepts = [b for b in _decimal_roundings(origin) if abs(b - origin) <= slope / 4]
            intercepts += [origin, u0]
            intercepts += [b for b in _decimal_roundings(u0) if abs(b - u0) <= slope / 4]
            for intercept in dict.fromkeys(intercepts):
                yield slope, intercept
        return
