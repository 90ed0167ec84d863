"""The model input of a case: the one path from stored case to tensor, shared by serving and
training, cached in storage by input spec (a derived-data cache, not a business write)."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from library.imaging import display
from library.imaging.dicom_read import read_dicom
from library.imaging.raster import raster_display01, read_raster
from library.models import Case


def _spec_key(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def case_display01(*, case: Case) -> np.ndarray:
    """The windowed, [0, 1] image both the display PNG and the model input come from."""
    with default_storage.open(case.source_file.name, "rb") as handle:
        data = handle.read()
    limit = max(len(data) + 1, 1024)
    if case.source_format == Case.SourceFormat.DICOM:
        image = read_dicom(
            data,
            max_bytes=limit,
            max_pixels=case.rows * case.columns * max(case.number_of_frames, 1) * 4,
        )
        return display.display01(image)
    raster = read_raster(data, max_bytes=limit, max_pixels=case.rows * case.columns * 4)
    return raster_display01(raster)


def case_model_input(*, case: Case, input_spec: dict) -> np.ndarray:
    """The model input for `case` under `input_spec`, computed once and cached in storage."""
    name = f"cases/{case.uid}/input-{_spec_key(input_spec)}.npy"
    if default_storage.exists(name):
        with default_storage.open(name, "rb") as handle:
            return np.load(io.BytesIO(handle.read()), allow_pickle=False)
    array = display.spec_model_input(case_display01(case=case), input_spec)
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    if not default_storage.exists(name):
        default_storage.save(name, ContentFile(buffer.getvalue()))
    return array
