"""Decoding one frame of a DICOM file into modality values (monochrome) or RGB, with the
structural checks the decoders skip (truncated or oversized data, broken codestreams, frames
larger than the header says)."""

from __future__ import annotations

import math
import struct

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import get_frame
from pydicom.pixels import apply_color_lut, apply_modality_lut, convert_color_space, get_decoder
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000TransferSyntaxes,
    JPEGLSTransferSyntaxes,
    JPEGTransferSyntaxes,
    RLETransferSyntaxes,
)

from library.imaging.dicom_header import MONOCHROME, first_line, functional_item, text
from library.imaging.errors import ImageRejected

# JPEG, JPEG-LS and JPEG 2000 codestreams all end with the marker FFD9 (EOI / EOC).
_ENDS_WITH_FFD9 = frozenset(
    JPEGTransferSyntaxes + JPEGLSTransferSyntaxes + JPEG2000TransferSyntaxes
)


def _int_attr(ds: Dataset, keyword: str, default: int | None = None) -> int:
    value = ds.get(keyword, default)
    if value is None or value == "":
        if default is None:
            raise ImageRejected("invalid_pixel_data", f"{keyword} is missing")
        return default
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ImageRejected("invalid_pixel_data", f"{keyword} is not a number: {value!r}") from exc


def check_pixel_header(ds: Dataset, photometric: str, max_pixels: int) -> dict[str, int]:
    rows = _int_attr(ds, "Rows")
    cols = _int_attr(ds, "Columns")
    bits_allocated = _int_attr(ds, "BitsAllocated")
    bits_stored = _int_attr(ds, "BitsStored", bits_allocated)
    samples = _int_attr(ds, "SamplesPerPixel", 1)
    frames = _int_attr(ds, "NumberOfFrames", 1)
    if rows < 1 or cols < 1 or frames < 1:
        raise ImageRejected(
            "invalid_pixel_data", f"empty image: {rows} rows, {cols} columns, {frames} frames"
        )
    expected_samples = 1 if photometric in MONOCHROME + ("PALETTE COLOR",) else 3
    if samples != expected_samples:
        raise ImageRejected(
            "invalid_pixel_data",
            f"SamplesPerPixel {samples} does not fit photometric interpretation {photometric}",
        )
    if bits_allocated not in (1, 8, 16, 32, 64) or not 1 <= bits_stored <= bits_allocated:
        raise ImageRejected(
            "invalid_pixel_data",
            f"BitsAllocated {bits_allocated} / BitsStored {bits_stored} is not a valid pair",
        )
    total = rows * cols * frames * samples
    if total > max_pixels:
        raise ImageRejected(
            "too_large",
            f"{rows}x{cols} pixels x {frames} frames x {samples} samples = {total:,} values, "
            f"the limit is {max_pixels:,}",
        )
    return {
        "rows": rows,
        "cols": cols,
        "bits_allocated": bits_allocated,
        "bits_stored": bits_stored,
        "samples": samples,
        "frames": frames,
    }


def _transfer_syntax(ds: Dataset) -> UID:
    meta = getattr(ds, "file_meta", None)
    ts = text(meta.get("TransferSyntaxUID")) if meta is not None else ""
    if ts:
        return UID(ts)
    # No file meta (a forced read): infer the native encoding pydicom actually used.
    implicit, little = getattr(ds, "original_encoding", (None, None))
    if implicit is None:
        implicit, little = True, True
    inferred = (
        ImplicitVRLittleEndian
        if implicit
        else (ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
    )
    if meta is None:
        ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = inferred
    return inferred


def decode_frame(ds: Dataset, header: dict[str, int], index: int) -> tuple[np.ndarray, str]:
    ts = _transfer_syntax(ds)
    try:
        decoder = get_decoder(ts)
    except Exception as exc:
        raise ImageRejected(
            "undecodable_transfer_syntax", f"no decoder exists for transfer syntax {ts.name}"
        ) from exc
    if not decoder.is_available:
        raise ImageRejected(
            "undecodable_transfer_syntax",
            f"no installed decoder plugin can decode transfer syntax {ts.name}",
        )
    if not ts.is_compressed:
        _check_native_length(ds, header)
    elif ts in _ENDS_WITH_FFD9 or ts in RLETransferSyntaxes:
        _check_compressed_frame(ds, ts, header, index)
    try:
        arr, meta = decoder.as_array(ds, index=index, as_rgb=True)
    except Exception as exc:
        if ts.is_compressed:
            raise ImageRejected(
                "undecodable_transfer_syntax",
                f"could not decode {ts.name} pixel data: {first_line(exc)}",
            ) from exc
        raise ImageRejected("invalid_pixel_data", first_line(exc)) from exc
    return arr, str(meta.get("photometric_interpretation", "")).upper()


def _check_native_length(ds: Dataset, header: dict[str, int]) -> None:
    values = header["rows"] * header["cols"] * header["samples"] * header["frames"]
    bits = header["bits_allocated"]
    expected = math.ceil(values / 8) if bits == 1 else values * bits // 8
    photometric = text(ds.get("PhotometricInterpretation")).upper()
    if photometric == "YBR_FULL_422":  # two luminance samples share one chroma pair
        expected = expected // 3 * 2
    actual = len(ds.PixelData or b"")
    if actual < expected:
        raise ImageRejected(
            "invalid_pixel_data",
            f"pixel data truncated: {actual:,} bytes, the header needs {expected:,}",
        )
    if actual > expected + expected % 2:  # one padding byte makes an odd length even
        raise ImageRejected(
            "invalid_pixel_data",
            f"pixel data is {actual:,} bytes, the header needs {expected:,}: "
            "extra data after the image is refused",
        )


def _check_compressed_frame(ds: Dataset, ts: UID, header: dict[str, int], index: int) -> None:
    """Structural checks the decoders skip. They fill a truncated JPEG frame with grey instead
    of failing: refuse a JPEG, JPEG-LS or JPEG 2000 frame whose codestream lacks its end marker
    (only NUL padding may follow it). They decode an RLE frame whose header declares the wrong
    number of segments: refuse it (PS3.5 G.2: one segment per byte of each sample)."""
    try:
        frame = get_frame(ds.PixelData or b"", index, number_of_frames=header["frames"])
    except Exception as exc:
        raise ImageRejected(
            "undecodable_transfer_syntax",
            f"could not find frame {index} in the {ts.name} pixel data: {first_line(exc)}",
        ) from exc
    if ts in RLETransferSyntaxes:
        segments = header["samples"] * math.ceil(header["bits_allocated"] / 8)
        declared = int.from_bytes(frame[:4], "little") if len(frame) >= 64 else -1
        if declared != segments or int.from_bytes(frame[4:8], "little") != 64:
            raise ImageRejected(
                "undecodable_transfer_syntax",
                f"RLE frame {index} has a broken header: it declares {declared} segments "
                f"where the image needs {segments}",
            )
        return
    if not bytes(frame[-8:]).rstrip(b"\x00").endswith(b"\xff\xd9"):
        raise ImageRejected(
            "undecodable_transfer_syntax",
            f"{ts.name} frame {index} is truncated: its codestream has no end marker",
        )
    # The decoders allocate what the codestream declares, not what the header says: a frame
    # declaring 60000x60000 pixels would take gigabytes before anything could be checked.
    frame = bytes(frame)
    size = _j2k_size(frame) if ts in JPEG2000TransferSyntaxes else _jpeg_size(frame)
    if size is None:
        raise ImageRejected(
            "undecodable_transfer_syntax",
            f"{ts.name} frame {index} has no readable frame header",
        )
    height, width = size
    if width != header["cols"] or height not in (header["rows"], 0):  # 0: height in a DNL
        raise ImageRejected(
            "invalid_pixel_data",
            f"the {ts.name} frame is {width}x{height} pixels, the header says "
            f"{header['cols']}x{header['rows']}",
        )


_JPEG_FRAME_MARKERS = frozenset(  # SOF0-15 but DHT, JPG and DAC; SOF55 (JPEG-LS)
    {*range(0xC0, 0xC4), *range(0xC5, 0xC8), *range(0xC9, 0xCC), *range(0xCD, 0xD0), 0xF7}
)


def _jpeg_size(frame: bytes) -> tuple[int, int] | None:
    """(height, width) from a JPEG or JPEG-LS start-of-frame segment, None if there is none."""
    if frame[:2] != b"\xff\xd8":
        return None
    position = 2
    while position + 4 <= len(frame):
        if frame[position] != 0xFF:
            return None
        marker = frame[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # segments without a length
            position += 2
            continue
        if marker in _JPEG_FRAME_MARKERS:
            if position + 9 > len(frame):
                return None
            return (
                int.from_bytes(frame[position + 5 : position + 7], "big"),
                int.from_bytes(frame[position + 7 : position + 9], "big"),
            )
        if marker == 0xDA:  # start of scan before any frame header
            return None
        position += 2 + int.from_bytes(frame[position + 2 : position + 4], "big")
    return None


def _j2k_size(frame: bytes) -> tuple[int, int] | None:
    """(height, width) from a JPEG 2000 SIZ segment (right after the SOC marker)."""
    at = frame.find(b"\xff\x4f\xff\x51")
    if at < 0 or at + 24 > len(frame):
        return None
    xsiz, ysiz, x_offset, y_offset = struct.unpack(">IIII", frame[at + 8 : at + 24])
    return ysiz - y_offset, xsiz - x_offset


def check_decoded_shape(
    values: np.ndarray, header: dict[str, int], is_color: bool, sop_name: str
) -> None:
    expected = (header["rows"], header["cols"]) + ((3,) if is_color else ())
    if values.shape != expected:
        raise ImageRejected(
            "invalid_pixel_data",
            f"decoded pixels have shape {values.shape}, the header says {expected} ({sop_name})",
        )


def modality_values(arr: np.ndarray, ds: Dataset, frame_index: int) -> np.ndarray:
    source: Dataset = ds
    transform = functional_item(ds, frame_index, "PixelValueTransformationSequence")
    if transform is not None and "ModalityLUTSequence" not in ds:
        source = Dataset()
        for keyword in ("RescaleSlope", "RescaleIntercept", "RescaleType"):
            if keyword in transform:
                setattr(source, keyword, transform[keyword].value)
    try:
        out = apply_modality_lut(arr, source)
    except Exception as exc:
        raise ImageRejected(
            "invalid_pixel_data", f"Modality LUT could not be applied: {first_line(exc)}"
        ) from exc
    with np.errstate(over="ignore", invalid="ignore"):
        values = np.ascontiguousarray(out, dtype=np.float32)
    if not np.isfinite(values).all():
        raise ImageRejected(
            "invalid_pixel_data",
            "the Modality LUT (rescale slope and intercept) gives values that are not finite",
        )
    return values


def rgb_values(
    arr: np.ndarray, ds: Dataset, photometric: str, decoded: str, bits_stored: int
) -> np.ndarray:
    if photometric == "PALETTE COLOR":
        try:
            rgb = apply_color_lut(arr, ds)
        except Exception as exc:
            raise ImageRejected(
                "invalid_pixel_data", f"palette could not be applied: {first_line(exc)}"
            ) from exc
        if rgb.dtype != np.uint8:
            bits = int(ds.RedPaletteColorLookupTableDescriptor[2])
            rgb = _scale_to_uint8(rgb, bits)
        return np.ascontiguousarray(rgb)
    if decoded in ("YBR_FULL", "YBR_FULL_422"):
        arr = convert_color_space(arr, "YBR_FULL", "RGB")
    elif decoded not in ("RGB", ""):
        raise ImageRejected(
            "unsupported_photometric", f"decoder returned {decoded} pixels for {photometric}"
        )
    if arr.dtype != np.uint8 or bits_stored > 8:
        arr = _scale_to_uint8(arr, bits_stored)
    return np.ascontiguousarray(arr, dtype=np.uint8)


def _scale_to_uint8(arr: np.ndarray, bits: int) -> np.ndarray:
    top = float(2**bits - 1)
    scaled = np.clip(arr.astype(np.float64) * (255.0 / top), 0, 255)
    return np.rint(scaled).astype(np.uint8)
