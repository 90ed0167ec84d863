"""Read one DICOM file into display-ready modality values, or reject it with a reason.

Decisions taken here (each rejection is an ``ImageRejected`` with a distinct code):

* **Size first.** The byte size is checked against ``max_bytes`` before anything is parsed
  (``os.stat`` for a path, ``len`` for bytes) and ``Rows*Columns*NumberOfFrames*SamplesPerPixel``
  against ``max_pixels`` from the header before any pixel is decoded (``too_large``).
* **What counts as DICOM.** A file with the Part 10 preamble and ``DICM`` prefix is parsed
  normally. A file without it is re-read with ``force=True`` and kept only if the result has a
  SOP Class UID (so random bytes, text or a renamed PNG are ``not_dicom``); it then passes the same
  checks as any other file, so e.g. a meta-less RT Structure Set is ``no_pixel_data``. A header
  that starts as DICOM but cannot be parsed, or an object without a SOP Instance UID (needed to
  de-identify and store it), is ``corrupt_dicom``.
* **Which SOP classes are images.** A SOP class known to pydicom is an image class when its
  name contains "Image Storage" (CT, MR, CR, DX, MG, US, secondary capture, NM, PET, XA, RT Image,
  VL, enhanced and legacy-converted variants, ...) or is "Enhanced US Volume Storage". Every other
  known class (RT Dose, Segmentation, Parametric Map, SR, waveforms, presentation states, DICOMDIR)
  is rejected: ``no_pixel_data`` when it has no Pixel Data, else ``non_image_sop_class``. A SOP
  class UID pydicom does not know (private or newer than pydicom) is treated as an image when it
  carries Pixel Data with a supported photometric interpretation; the pixel checks then decide.
  The modality itself is not filtered: DX, CR, MG, CT, MR, US, OT/SC and any other modality with
  an image SOP class are accepted (a missing Modality is recorded as "OT").
* **Multi-frame.** The MIDDLE frame, index ``NumberOfFrames // 2``, is the one read, and only
  that frame is decoded. For enhanced multi-frame objects the rescale
  (Pixel Value Transformation Sequence) and window (Frame VOI LUT Sequence) of that frame are
  taken from the Per-Frame Functional Groups, falling back to the Shared Functional Groups.
* **Photometric interpretation.** MONOCHROME1/MONOCHROME2 go through the Modality LUT
  (``pydicom.pixels.apply_modality_lut``: rescale slope/intercept or Modality LUT Sequence) into
  float32. RGB, YBR_FULL and YBR_FULL_422 become RGB (pydicom's decoders convert YBR, including
  for JPEG), PALETTE COLOR is expanded with ``apply_color_lut``; YBR_RCT/YBR_ICT (JPEG 2000 colour
  transforms, converted by the decoder) are accepted too. Colour values with more than 8 bits
  (BitsStored > 8, or 16-bit palettes) are scaled linearly to uint8. Anything else is
  ``unsupported_photometric``.
* Reading never writes anything and never modifies the file.
"""

from __future__ import annotations

import math
import os
import re
import struct
import sys
import warnings
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import get_frame
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
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

from library.imaging.errors import ImageRejected

VOI_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")
MONOCHROME = ("MONOCHROME1", "MONOCHROME2")
COLOR_PHOTOMETRICS = ("RGB", "YBR_FULL", "YBR_FULL_422", "PALETTE COLOR", "YBR_RCT", "YBR_ICT")
SUPPORTED_PHOTOMETRICS = MONOCHROME + COLOR_PHOTOMETRICS
_EXTRA_IMAGE_SOP_CLASSES = frozenset({"Enhanced US Volume Storage"})
_UID = re.compile(r"[0-9]+(?:\.[0-9]+)*")
# JPEG, JPEG-LS and JPEG 2000 codestreams all end with the marker FFD9 (EOI / EOC).
_ENDS_WITH_FFD9 = frozenset(JPEGTransferSyntaxes + JPEGLSTransferSyntaxes + JPEG2000TransferSyntaxes)


@dataclass(frozen=True)
class VoiPreset:
    """One window: centre/width in modality units plus the VOI LUT function to apply."""

    center: float
    width: float
    name: str
    function: str = "LINEAR"  # LINEAR, LINEAR_EXACT or SIGMOID


@dataclass(frozen=True, eq=False)
class VoiLut:
    """The first item of a VOI LUT Sequence.

    ``descriptor`` is (number of entries, first stored value mapped, bits per entry) with the
    "0 means 65536 entries" rule already applied; ``data`` holds the entries as uint16.
    """

    descriptor: tuple[int, int, int]
    data: np.ndarray
    explanation: str = ""

    @property
    def first_mapped(self) -> int:
        return self.descriptor[1]

    @property
    def bits(self) -> int:
        return self.descriptor[2]


@dataclass
class DicomImage:
    dataset: Dataset  # parsed, NOT de-identified; PixelData still present
    modality_values: np.ndarray  # float32 (H, W) after the Modality LUT, or uint8 (H, W, 3) RGB
    photometric: str  # original PhotometricInterpretation
    is_color: bool
    modality: str
    voi_presets: list[VoiPreset] = field(default_factory=list)
    voi_lut: VoiLut | None = None
    frame_index: int = 0
    number_of_frames: int = 1
    bits_stored: int = 8


def read_dicom(source: bytes | str | Path, *, max_bytes: int, max_pixels: int) -> DicomImage:
    """Parse, validate and decode one DICOM file (the middle frame of a multi-frame object)."""
    data = _load_bytes(source, max_bytes)
    _check_deflated_size(data, max_bytes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = _parse(data)
        sop_name = _check_sop_class(ds)
        photometric = _check_photometric(ds)
        header = _check_pixel_header(ds, photometric, max_pixels)
        frames = header["frames"]
        frame_index = frames // 2
        arr, decoded_photometric = _decode_frame(ds, header, frame_index)
        if photometric in MONOCHROME:
            values = _modality_values(arr, ds, frame_index)
            is_color = False
        else:
            values = _rgb_values(arr, ds, photometric, decoded_photometric, header["bits_stored"])
            is_color = True
        _check_decoded_shape(values, header, is_color, sop_name)
        presets, voi_lut = ([], None) if is_color else _voi(ds, frame_index)
    return DicomImage(
        dataset=ds,
        modality_values=values,
        photometric=photometric,
        is_color=is_color,
        modality=_modality(ds),
        voi_presets=presets,
        voi_lut=voi_lut,
        frame_index=frame_index,
        number_of_frames=frames,
        bits_stored=header["bits_stored"],
    )


# --------------------------------------------------------------------------- loading / parsing


def _load_bytes(source: bytes | str | Path, max_bytes: int) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)  # no copy for bytes; a memoryview's len() would count items
        _check_bytes(len(data), max_bytes)
        return data
    path = Path(source)
    _check_bytes(os.stat(path).st_size, max_bytes)
    data = path.read_bytes()
    _check_bytes(len(data), max_bytes)  # the file may have grown since stat
    return data


def _check_bytes(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise ImageRejected("too_large", f"file is {size:,} bytes, the limit is {max_bytes:,}")
    if size == 0:
        raise ImageRejected("not_dicom", "the file is empty")


_LONG_LENGTH_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
_DEFLATED = b"1.2.840.10008.1.2.1.99"


def _check_deflated_size(data: bytes, max_bytes: int) -> None:
    """pydicom inflates a deflated dataset in one go: a few kilobytes of zeros can ask for
    gigabytes. Inflate it here first, stopping at `max_bytes` (a deflate bomb is too_large)."""
    if data[128:132] != b"DICM":
        return
    position = 132  # the file meta: explicit VR little endian elements of group 0002
    while position + 8 <= len(data) and data[position : position + 2] == b"\x02\x00":
        if data[position + 4 : position + 6] in _LONG_LENGTH_VRS:
            position += 12 + int.from_bytes(data[position + 8 : position + 12], "little")
        else:
            position += 8 + int.from_bytes(data[position + 6 : position + 8], "little")
    if _DEFLATED not in data[132:position]:
        return
    try:
        inflated = zlib.decompressobj(-zlib.MAX_WBITS).decompress(data[position:], max_bytes + 1)
    except zlib.error:
        return  # pydicom reports the broken stream
    if len(inflated) > max_bytes:
        raise ImageRejected(
            "too_large",
            f"the deflated dataset expands to more than {max_bytes:,} bytes (a deflate bomb?)",
        )


def _parse(data: bytes) -> Dataset:
    forced = False
    try:
        ds = pydicom.dcmread(BytesIO(data))
    except InvalidDicomError:
        forced = True
        try:
            ds = pydicom.dcmread(BytesIO(data), force=True)
        except Exception as exc:  # random bytes make pydicom fail in many ways
            raise ImageRejected("not_dicom", f"not a DICOM file ({_first_line(exc)})") from exc
    except Exception as exc:
        reason = f"DICOM header unreadable: {_first_line(exc)}"
        raise ImageRejected("corrupt_dicom", reason) from exc
    _check_declared_lengths(ds, forced)  # before the elements are converted
    try:
        for _ in ds.iterall():  # convert every raw element now so parse errors surface here
            pass
        for _ in getattr(ds, "file_meta", None) or ():  # the file meta too (a Dataset)
            pass
    except Exception as exc:
        code = "not_dicom" if forced else "corrupt_dicom"
        raise ImageRejected(code, f"DICOM header unreadable: {_first_line(exc)}") from exc
    if forced and not _text(ds.get("SOPClassUID")):
        raise ImageRejected(
            "not_dicom", "not a DICOM file (no DICM prefix and no SOP Class UID in the data)"
        )
    return ds


def _check_declared_lengths(ds: Dataset, forced: bool) -> None:
    """pydicom keeps whatever bytes remain when an element declares more than the file holds
    (a truncated file, or a forged length such as 0xFFFFFFF0): refuse such a file."""
    for dataset in (getattr(ds, "file_meta", None), ds):
        if dataset is None:
            continue
        for tag in list(dataset.keys()):
            elem = dataset.get_item(tag, keep_deferred=True)  # never converts
            if not isinstance(elem, RawDataElement) or elem.length == 0xFFFFFFFF:
                continue
            size = len(elem.value) if isinstance(elem.value, bytes) else elem.length
            if size < elem.length and forced:
                raise ImageRejected(
                    "not_dicom",
                    f"not a DICOM file (no DICM prefix, and read as DICOM its element {elem.tag} "
                    f"declares {elem.length:,} bytes where {size:,} remain)",
                )
            if size < elem.length and elem.tag == 0x7FE00010:
                raise ImageRejected(
                    "invalid_pixel_data",
                    f"pixel data truncated: the element declares {elem.length:,} bytes, "
                    f"the file holds {size:,}",
                )
            if size < elem.length:
                raise ImageRejected(
                    "corrupt_dicom",
                    f"element {elem.tag} declares {elem.length:,} bytes but the file ends "
                    f"after {size:,} (truncated or forged length)",
                )


def _modality(ds: Dataset) -> str:
    modality = str(ds.get("Modality", "") or "OT").strip().upper() or "OT"
    if len(modality) > 16 or not modality.isprintable():
        raise ImageRejected("corrupt_dicom", f"Modality {modality[:40]!r} is not a code string")
    return modality


def _first_line(exc: BaseException) -> str:
    """The exception's message folded onto one line (pydicom lists each plugin's failure)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


# --------------------------------------------------------------------------- validation


def _sop_class_uid(ds: Dataset) -> str:
    uid = _text(ds.get("SOPClassUID"))
    meta = getattr(ds, "file_meta", None)
    if not uid and meta is not None:  # DICOMDIR carries its SOP class only in the file meta
        uid = _text(meta.get("MediaStorageSOPClassUID"))
    return uid


def sop_class_name(uid: str) -> str:
    """The SOP class's name when pydicom knows it, else the UID itself."""
    return UID(uid).name if uid else "unknown"


def is_image_sop_class(uid: str) -> bool | None:
    """True for an image storage class, False for a known non-image class, None when unknown."""
    known = UID(uid)
    if known.name == str(known):  # not in pydicom's dictionary
        return None
    name = known.name
    return "Image Storage" in name or name in _EXTRA_IMAGE_SOP_CLASSES


def _check_sop_class(ds: Dataset) -> str:
    uid = _sop_class_uid(ds)
    if not uid:
        raise ImageRejected("not_dicom", "no SOP Class UID: not a DICOM composite object")
    if len(uid) > 64 or not _UID.fullmatch(uid):
        raise ImageRejected("corrupt_dicom", f"SOP Class UID {uid[:70]!r} is not a valid UID")
    name = sop_class_name(uid)
    meta = getattr(ds, "file_meta", None)
    instance = _text(ds.get("SOPInstanceUID")) or (
        _text(meta.get("MediaStorageSOPInstanceUID")) if meta is not None else ""
    )
    if not instance:
        raise ImageRejected("corrupt_dicom", f"{name} object without a SOP Instance UID")
    for keyword in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
        if isinstance(ds.get(keyword), MultiValue):
            raise ImageRejected("corrupt_dicom", f"{keyword} holds several values; a UID has one")
    if "PixelData" not in ds:
        extra = " (float pixel data is not supported)" if _has_float_pixels(ds) else ""
        raise ImageRejected("no_pixel_data", f"no pixel data (SOP class {name}){extra}")
    if is_image_sop_class(uid) is False:
        raise ImageRejected("non_image_sop_class", f"{name} is not an image SOP class")
    return name


def _has_float_pixels(ds: Dataset) -> bool:
    return "FloatPixelData" in ds or "DoubleFloatPixelData" in ds


def _check_photometric(ds: Dataset) -> str:
    photometric = _text(ds.get("PhotometricInterpretation")).upper()
    if not photometric:
        raise ImageRejected("unsupported_photometric", "PhotometricInterpretation is missing")
    if photometric not in SUPPORTED_PHOTOMETRICS:
        raise ImageRejected(
            "unsupported_photometric",
            f"photometric interpretation {photometric} is not supported "
            f"(supported: {', '.join(SUPPORTED_PHOTOMETRICS)})",
        )
    return photometric


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


def _check_pixel_header(ds: Dataset, photometric: str, max_pixels: int) -> dict[str, int]:
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
    ts = _text(meta.get("TransferSyntaxUID")) if meta is not None else ""
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


def _decode_frame(ds: Dataset, header: dict[str, int], index: int) -> tuple[np.ndarray, str]:
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
                f"could not decode {ts.name} pixel data: {_first_line(exc)}",
            ) from exc
        raise ImageRejected("invalid_pixel_data", _first_line(exc)) from exc
    return arr, str(meta.get("photometric_interpretation", "")).upper()


def _check_native_length(ds: Dataset, header: dict[str, int]) -> None:
    values = header["rows"] * header["cols"] * header["samples"] * header["frames"]
    bits = header["bits_allocated"]
    expected = math.ceil(values / 8) if bits == 1 else values * bits // 8
    photometric = _text(ds.get("PhotometricInterpretation")).upper()
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
            f"could not find frame {index} in the {ts.name} pixel data: {_first_line(exc)}",
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


def _check_decoded_shape(
    values: np.ndarray, header: dict[str, int], is_color: bool, sop_name: str
) -> None:
    expected = (header["rows"], header["cols"]) + ((3,) if is_color else ())
    if values.shape != expected:
        raise ImageRejected(
            "invalid_pixel_data",
            f"decoded pixels have shape {values.shape}, the header says {expected} ({sop_name})",
        )


# --------------------------------------------------------------------------- pixel values


def _functional_item(ds: Dataset, frame_index: int, sequence: str) -> Dataset | None:
    """The first item of ``sequence`` for a frame: per-frame group first, then shared group."""
    for groups, position in (
        (ds.get("PerFrameFunctionalGroupsSequence"), frame_index),
        (ds.get("SharedFunctionalGroupsSequence"), 0),
    ):
        if groups and len(groups) > position:
            inner = groups[position].get(sequence)
            if inner:
                return inner[0]
    return None


def _modality_values(arr: np.ndarray, ds: Dataset, frame_index: int) -> np.ndarray:
    source: Dataset = ds
    transform = _functional_item(ds, frame_index, "PixelValueTransformationSequence")
    if transform is not None and "ModalityLUTSequence" not in ds:
        source = Dataset()
        for keyword in ("RescaleSlope", "RescaleIntercept", "RescaleType"):
            if keyword in transform:
                setattr(source, keyword, transform[keyword].value)
    try:
        out = apply_modality_lut(arr, source)
    except Exception as exc:
        raise ImageRejected(
            "invalid_pixel_data", f"Modality LUT could not be applied: {_first_line(exc)}"
        ) from exc
    with np.errstate(over="ignore", invalid="ignore"):
        values = np.ascontiguousarray(out, dtype=np.float32)
    if not np.isfinite(values).all():
        raise ImageRejected(
            "invalid_pixel_data",
            "the Modality LUT (rescale slope and intercept) gives values that are not finite",
        )
    return values


def _rgb_values(
    arr: np.ndarray, ds: Dataset, photometric: str, decoded: str, bits_stored: int
) -> np.ndarray:
    if photometric == "PALETTE COLOR":
        try:
            rgb = apply_color_lut(arr, ds)
        except Exception as exc:
            raise ImageRejected(
                "invalid_pixel_data", f"palette could not be applied: {_first_line(exc)}"
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


# --------------------------------------------------------------------------- VOI


def _as_floats(value: Any) -> list[float]:
    if value is None or value == "":
        return []
    items = list(value) if isinstance(value, list | tuple | MultiValue) else [value]
    out = []
    for item in items:
        try:
            out.append(float(item))
        except (TypeError, ValueError):
            out.append(math.nan)
    return out


def _as_strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple | MultiValue):
        return [_text(v) for v in value]
    return [_text(value)]


def _voi(ds: Dataset, frame_index: int) -> tuple[list[VoiPreset], VoiLut | None]:
    source = _functional_item(ds, frame_index, "FrameVOILUTSequence") or ds
    return voi_presets_from(source), _voi_lut_from(source, ds) or _voi_lut_from(ds, ds)


def voi_presets_from(source: Dataset) -> list[VoiPreset]:
    """Every usable (centre, width) pair of a dataset or Frame VOI LUT item, in file order."""
    centers = _as_floats(source.get("WindowCenter"))
    widths = _as_floats(source.get("WindowWidth"))
    names = _as_strings(source.get("WindowCenterWidthExplanation"))
    function = _text(source.get("VOILUTFunction")).upper() or "LINEAR"
    if function not in VOI_FUNCTIONS:
        function = "LINEAR"
    presets = []
    for i, (center, width) in enumerate(zip(centers, widths, strict=False)):
        minimum = 1.0 if function == "LINEAR" else 0.0
        if not (math.isfinite(center) and math.isfinite(width)) or width <= 0 or width < minimum:
            continue
        name = names[i].replace("\x00", "")[:64] if i < len(names) else ""
        name = name or f"Preset {i + 1}"
        presets.append(VoiPreset(center=center, width=width, name=name, function=function))
    return presets


def _voi_lut_from(source: Dataset, ds: Dataset) -> VoiLut | None:
    sequence = source.get("VOILUTSequence")
    if not sequence:
        return None
    item = sequence[0]
    try:
        descriptor = [int(v) for v in item.LUTDescriptor]
        entries = descriptor[0] or 65536
        data = _lut_array(item.LUTData, entries, ds)
    except Exception:
        return None  # a malformed VOI LUT is ignored; the window presets or min-max still work
    if len(data) < entries or entries < 1:
        return None
    return VoiLut(
        descriptor=(entries, descriptor[1], descriptor[2]),
        data=data[:entries],
        explanation=_text(item.get("LUTExplanation")),
    )


def _lut_array(value: Any, entries: int, ds: Dataset) -> np.ndarray:
    if isinstance(value, bytes | bytearray):
        little = getattr(ds, "original_encoding", (None, True))[1] is not False
        if len(value) in (entries, entries + 1) and len(value) < 2 * entries:
            return np.frombuffer(value[:entries], dtype=np.uint8).astype(np.uint16)
        return np.frombuffer(value[: 2 * entries], dtype="<u2" if little else ">u2").astype(
            np.uint16
        )
    return np.asarray(_as_floats(value), dtype=np.float64).astype(np.uint16)


# --------------------------------------------------------------------------- tally


def classify_files(
    paths: Iterable[Path], *, max_bytes: int = 256 * 2**20, max_pixels: int = 2**28
) -> Counter[str]:
    """Count how many files import ("imported") and how many are rejected, by rejection code."""
    tally: Counter[str] = Counter()
    for path in paths:
        try:
            read_dicom(path, max_bytes=max_bytes, max_pixels=max_pixels)
        except ImageRejected as exc:
            tally[exc.code] += 1
        else:
            tally["imported"] += 1
    return tally


def main(argv: list[str]) -> int:
    """``python -m library.imaging.dicom_read [DIR]``: tally a directory (pydicom's test files)."""
    root = Path(argv[0]) if argv else Path(pydicom.data.__file__).parent / "test_files"
    files = sorted(p for p in root.rglob("*") if p.is_file())
    tally = classify_files(files)
    print(f"{len(files)} files under {root}")
    for code, count in sorted(tally.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"{count:5d}  {code}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
