"""Reading and checking a DICOM file's bytes and header, before any pixel is decoded: the
size limits (a deflate bomb included), the parse (forced for a file without the DICM prefix),
declared element lengths, the SOP class (is it an image?) and the photometric interpretation.
The reasons are in library.imaging.dicom_read's docstring.
"""

from __future__ import annotations

import os
import re
import zlib
from io import BytesIO
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.uid import UID

from library.imaging.errors import ImageRejected

MONOCHROME = ("MONOCHROME1", "MONOCHROME2")
COLOR_PHOTOMETRICS = ("RGB", "YBR_FULL", "YBR_FULL_422", "PALETTE COLOR", "YBR_RCT", "YBR_ICT")
SUPPORTED_PHOTOMETRICS = MONOCHROME + COLOR_PHOTOMETRICS
_EXTRA_IMAGE_SOP_CLASSES = frozenset({"Enhanced US Volume Storage"})
_UID = re.compile(r"[0-9]+(?:\.[0-9]+)*")


def load_bytes(source: bytes | str | Path, max_bytes: int) -> bytes:
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


_LONG_LENGTH_VRS = {
    b"OB",
    b"OD",
    b"OF",
    b"OL",
    b"OV",
    b"OW",
    b"SQ",
    b"SV",
    b"UC",
    b"UN",
    b"UR",
    b"UT",
    b"UV",
}
_DEFLATED = b"1.2.840.10008.1.2.1.99"


def check_deflated_size(data: bytes, max_bytes: int) -> None:
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


def parse(data: bytes) -> Dataset:
    forced = False
    try:
        ds = pydicom.dcmread(BytesIO(data))
    except InvalidDicomError:
        forced = True
        try:
            ds = pydicom.dcmread(BytesIO(data), force=True)
        except Exception as exc:  # random bytes make pydicom fail in many ways
            raise ImageRejected("not_dicom", f"not a DICOM file ({first_line(exc)})") from exc
    except Exception as exc:
        reason = f"DICOM header unreadable: {first_line(exc)}"
        raise ImageRejected("corrupt_dicom", reason) from exc
    _check_declared_lengths(ds, forced)  # before the elements are converted
    try:
        for _ in ds.iterall():  # convert every raw element now so parse errors surface here
            pass
        for _ in getattr(ds, "file_meta", None) or ():  # the file meta too (a Dataset)
            pass
    except Exception as exc:
        code = "not_dicom" if forced else "corrupt_dicom"
        raise ImageRejected(code, f"DICOM header unreadable: {first_line(exc)}") from exc
    if forced and not text(ds.get("SOPClassUID")):
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


def modality_of(ds: Dataset) -> str:
    modality = str(ds.get("Modality", "") or "OT").strip().upper() or "OT"
    if len(modality) > 16 or not modality.isprintable():
        raise ImageRejected("corrupt_dicom", f"Modality {modality[:40]!r} is not a code string")
    return modality


def first_line(exc: BaseException) -> str:
    """The exception's message folded onto one line (pydicom lists each plugin's failure)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _sop_class_uid(ds: Dataset) -> str:
    uid = text(ds.get("SOPClassUID"))
    meta = getattr(ds, "file_meta", None)
    if not uid and meta is not None:  # DICOMDIR carries its SOP class only in the file meta
        uid = text(meta.get("MediaStorageSOPClassUID"))
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


def check_sop_class(ds: Dataset) -> str:
    uid = _sop_class_uid(ds)
    if not uid:
        raise ImageRejected("not_dicom", "no SOP Class UID: not a DICOM composite object")
    if len(uid) > 64 or not _UID.fullmatch(uid):
        raise ImageRejected("corrupt_dicom", f"SOP Class UID {uid[:70]!r} is not a valid UID")
    name = sop_class_name(uid)
    meta = getattr(ds, "file_meta", None)
    instance = text(ds.get("SOPInstanceUID")) or (
        text(meta.get("MediaStorageSOPInstanceUID")) if meta is not None else ""
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


def check_photometric(ds: Dataset) -> str:
    photometric = text(ds.get("PhotometricInterpretation")).upper()
    if not photometric:
        raise ImageRejected("unsupported_photometric", "PhotometricInterpretation is missing")
    if photometric not in SUPPORTED_PHOTOMETRICS:
        raise ImageRejected(
            "unsupported_photometric",
            f"photometric interpretation {photometric} is not supported "
            f"(supported: {', '.join(SUPPORTED_PHOTOMETRICS)})",
        )
    return photometric


def functional_item(ds: Dataset, frame_index: int, sequence: str) -> Dataset | None:
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
