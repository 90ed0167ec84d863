"""Reading one imported file into everything its case needs, before anything is stored:
the de-identified file to keep, the pixels, the display image, the metadata, the labels and
the lesion mask. A file that fails raises ImageRejected or CaseProblem with one reason."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from django.conf import settings

from library import labels as labels_lib
from library import masks
from library.imaging import deidentify as deid
from library.imaging import display
from library.imaging.dicom_read import read_dicom
from library.imaging.errors import ImageRejected
from library.imaging.raster import raster_display01, raster_to_png_bytes, read_raster
from library.import_sources import ImportItem

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
RASTER_SUFFIXES = {".png", ".jpg", ".jpeg"}
DICOM_SUFFIXES = {".dcm", ".dicom", ".dic"}


class CaseProblem(Exception):
    """One file refused for a reason of the import (not of its image): code and reason."""

    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code, self.reason = code, reason


@dataclass
class PreparedCase:
    """Everything one case needs, computed before anything is stored."""

    key: str
    source_format: str
    source_sha256: str
    stored_bytes: bytes
    stored_name: str
    pixels: np.ndarray
    display8: np.ndarray
    meta: dict
    labels: dict[str, int]
    split: str
    mask: np.ndarray | None
    clinical_history: str = ""


@dataclass
class _ReadImage:
    stored: bytes
    stored_name: str
    values01: np.ndarray
    pixels: np.ndarray
    meta: dict


def sniff(data: bytes, relative_path: str) -> str:
    """'png', 'jpeg' or 'dicom' from the content; a name that says otherwise is refused."""
    suffix = PurePosixPath(relative_path).suffix.lower()
    for kind, signature in (("png", PNG_SIGNATURE), ("jpeg", JPEG_SIGNATURE)):
        if data.startswith(signature):
            if suffix in DICOM_SUFFIXES:
                raise ImageRejected(
                    "not_dicom", f"named like a DICOM file ({suffix}) but is a {kind.upper()} image"
                )
            return kind
    if suffix in RASTER_SUFFIXES and data[128:132] != b"DICM":
        raise ImageRejected("unreadable_image", "named like a PNG/JPEG image but is not one")
    return "dicom"


def _read_dicom_case(data: bytes, *, max_bytes: int, max_pixels: int) -> _ReadImage:
    image = read_dicom(data, max_bytes=max_bytes, max_pixels=max_pixels)
    clean = deid.deidentify(image.dataset, secret=settings.XRS_DEID_SECRET.encode())
    presets = [
        {"center": p.center, "width": p.width, "name": p.name, "function": p.function}
        for p in image.voi_presets
    ]
    meta = {
        "modality": image.modality,
        "sop_class_uid": str(clean.get("SOPClassUID", "")),
        "patient_pseudonym": str(clean.get("PatientID", "")),
        "study_uid": str(clean.get("StudyInstanceUID", "")),
        "series_uid": str(clean.get("SeriesInstanceUID", "")),
        "sop_instance_uid": str(clean.get("SOPInstanceUID", "")),
        "is_color": image.is_color,
        "photometric": image.photometric,
        "bits_stored": image.bits_stored,
        "frame_index": image.frame_index,
        "number_of_frames": image.number_of_frames,
        "window_presets": presets,
    }
    return _ReadImage(
        stored=deid.dataset_to_bytes(clean),
        stored_name="source.dcm",
        values01=display.display01(image),
        pixels=image.modality_values,
        meta=meta,
    )


def _read_raster_case(data: bytes, *, max_bytes: int, max_pixels: int) -> _ReadImage:
    raster = read_raster(data, max_bytes=max_bytes, max_pixels=max_pixels)
    meta = {
        "modality": "",
        "is_color": raster.is_color,
        "photometric": "RGB" if raster.is_color else "MONOCHROME2",
        "bits_stored": raster.bits,
        "window_presets": [],
    }
    return _ReadImage(
        stored=raster_to_png_bytes(raster.values, raster.bits),
        stored_name="source.png",
        values01=raster_display01(raster),
        pixels=raster.values,
        meta=meta,
    )


def _read_mask(mask_source, *, shape, labels_name: str, max_bytes: int) -> np.ndarray | None:
    mask_path, mask_row = mask_source
    if mask_path is None:
        return None
    if isinstance(mask_path, ImportItem):
        source = mask_path.read(max_bytes=max_bytes)
    else:
        source = Path(mask_path)
    try:
        return masks.load_mask(source, shape=shape)
    except labels_lib.LabelsError as exc:
        where = f"{labels_name} row {mask_row}: " if mask_row else ""
        raise CaseProblem("bad_mask", f"{where}{'; '.join(exc.problems)}") from None


def prepare_case(*, item: ImportItem, key: str, row, mask_source, labels_name: str) -> PreparedCase:
    """Read, check and de-identify one file (and its mask) into a PreparedCase."""
    max_bytes = settings.XRS_IMPORT_MAX_BYTES
    max_pixels = settings.XRS_IMPORT_MAX_PIXELS
    if len(key) > labels_lib.MAX_KEY_CHARS:
        raise CaseProblem(
            "key_too_long",
            f"the case key (the path without its extension) has {len(key)} characters, "
            f"the limit is {labels_lib.MAX_KEY_CHARS}",
        )
    data = item.read(max_bytes=max_bytes)
    source_sha256 = hashlib.sha256(data).hexdigest()
    kind = sniff(data, item.relative_path)
    read = _read_dicom_case if kind == "dicom" else _read_raster_case
    image = read(data, max_bytes=max_bytes, max_pixels=max_pixels)
    display8 = np.clip(np.rint(image.values01 * 255.0), 0, 255).astype(np.uint8)
    mask = _read_mask(
        mask_source, shape=image.pixels.shape[:2], labels_name=labels_name, max_bytes=max_bytes
    )
    return PreparedCase(
        key=key,
        source_format=kind,
        source_sha256=source_sha256,
        stored_bytes=image.stored,
        stored_name=image.stored_name,
        pixels=image.pixels,
        display8=display8,
        meta=image.meta,
        labels=dict(row.labels) if row is not None else {},
        split=(row.split or "") if row is not None else "",
        mask=mask,
        clinical_history=row.clinical_history if row is not None else "",
    )
