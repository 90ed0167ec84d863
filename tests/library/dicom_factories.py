"""Small builders for synthetic DICOM datasets used by the imaging tests."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

CT_IMAGE = UID("1.2.840.10008.5.1.4.1.1.2")
MR_IMAGE = UID("1.2.840.10008.5.1.4.1.1.4")
ENHANCED_CT_IMAGE = UID("1.2.840.10008.5.1.4.1.1.2.1")
SECONDARY_CAPTURE = UID("1.2.840.10008.5.1.4.1.1.7")
US_IMAGE = UID("1.2.840.10008.5.1.4.1.1.6.1")
RT_DOSE = UID("1.2.840.10008.5.1.4.1.1.481.2")
RT_PLAN = UID("1.2.840.10008.5.1.4.1.1.481.5")
SEGMENTATION = UID("1.2.840.10008.5.1.4.1.1.66.4")

PYDICOM_TEST_FILES = Path(pydicom.data.__file__).parent / "test_files"


def base_dataset(sop_class: str = CT_IMAGE, modality: str = "CT") -> Dataset:
    """A minimal composite object header without pixel data."""
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = modality
    ds.PatientName = "Test^Patient"
    ds.PatientID = "TEST-0001"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def image_dataset(
    pixels: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    sop_class: str = CT_IMAGE,
    modality: str = "CT",
    bits_stored: int | None = None,
    frames: bool = False,
    **attributes: object,
) -> Dataset:
    """A native (uncompressed, little endian) image dataset holding ``pixels``.

    ``pixels`` is (H, W) or (H, W, 3); with ``frames=True`` it is (N, H, W[, 3]). The dtype picks
    BitsAllocated and PixelRepresentation. Extra keyword arguments become attributes.
    """
    arr = np.asarray(pixels)
    ds = base_dataset(sop_class, modality)
    color = arr.ndim == (4 if frames else 3)
    shape = arr.shape[1:] if frames else arr.shape
    ds.Rows, ds.Columns = int(shape[0]), int(shape[1])
    ds.SamplesPerPixel = 3 if color else 1
    if color:
        ds.PlanarConfiguration = 0
    if frames:
        ds.NumberOfFrames = int(arr.shape[0])
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = arr.dtype.itemsize * 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if arr.dtype.kind == "i" else 0
    ds.PixelData = np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder("<"))).tobytes()
    ds["PixelData"].VR = "OB" if ds.BitsAllocated == 8 else "OW"
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def part10_bytes(ds: Dataset) -> bytes:
    """Write ``ds`` as a Part 10 file (preamble + meta) without de-identifying it."""
    buffer = BytesIO()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def raw_dataset_bytes(ds: Dataset, *, implicit_vr: bool = True) -> bytes:
    """The dataset alone, without the 128-byte preamble, DICM prefix or file meta."""
    body = Dataset()
    body.update(ds)  # elements only: no preamble, no file meta
    buffer = BytesIO()
    pydicom.dcmwrite(buffer, body, implicit_vr=implicit_vr, little_endian=True)
    return buffer.getvalue()
