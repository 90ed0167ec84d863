"""Every file pydicom ships as test data either imports cleanly or is rejected with a known code."""

from __future__ import annotations

from io import BytesIO

import numpy as np
import pydicom
import pytest

from library.imaging.deidentify import dataset_to_bytes, deidentify
from library.imaging.dicom_read import classify_files, read_dicom
from library.imaging.display import to_display
from library.imaging.errors import REJECTION_CODES, ImageRejected
from tests.library.dicom_factories import PYDICOM_TEST_FILES

LIMITS = {"max_bytes": 64 * 2**20, "max_pixels": 50_000_000}
SECRET = b"walk-secret-0123456789"
ALL_FILES = sorted(p for p in PYDICOM_TEST_FILES.rglob("*") if p.is_file())


def test_the_walk_sees_the_whole_test_data_folder():
    assert len(ALL_FILES) > 150
    assert {p.suffix for p in ALL_FILES} >= {".dcm", ".json", ".txt", ".gz", ".icc"}


@pytest.mark.parametrize(
    "path", ALL_FILES, ids=[str(p.relative_to(PYDICOM_TEST_FILES)) for p in ALL_FILES]
)
def test_file_imports_or_is_rejected_with_a_known_code(path):
    try:
        image = read_dicom(path, **LIMITS)
    except ImageRejected as exc:
        assert exc.code in REJECTION_CODES
        assert exc.reason and "\n" not in exc.reason
        return
    ds = image.dataset
    expected = (int(ds.Rows), int(ds.Columns)) + ((3,) if image.is_color else ())
    assert image.modality_values.shape == expected
    assert image.modality_values.dtype == (np.uint8 if image.is_color else np.float32)
    assert 0 <= image.frame_index < image.number_of_frames
    shown = to_display(image)
    assert shown.dtype == np.uint8 and shown.shape == expected

    data = dataset_to_bytes(deidentify(ds, secret=SECRET))
    assert data[:128] == b"\x00" * 128 and data[128:132] == b"DICM"
    pydicom.dcmread(BytesIO(data))
    again = read_dicom(data, **LIMITS)
    np.testing.assert_array_equal(again.modality_values, image.modality_values)
    assert again.frame_index == image.frame_index


def _read(name: str):
    return read_dicom(PYDICOM_TEST_FILES / name, **LIMITS)


def _code(name: str) -> str:
    with pytest.raises(ImageRejected) as info:
        _read(name)
    return info.value.code


def test_ct_small_imports_as_ct_with_its_rescale_applied():
    image = _read("CT_small.dcm")
    ds = image.dataset
    assert image.modality == "CT" and image.photometric == "MONOCHROME2"
    assert float(ds.RescaleIntercept) == -1024 and float(ds.RescaleSlope) == 1
    stored = ds.pixel_array.astype(np.float32)
    np.testing.assert_array_equal(image.modality_values, stored * 1 - 1024)


def test_known_files_get_the_expected_rejections():
    assert _code("rtplan.dcm") == "no_pixel_data"
    assert _code("rtdose.dcm") == "non_image_sop_class"
    assert _code("liver_1frame.dcm") == "non_image_sop_class"  # segmentation
    assert _code("test-SR.dcm") == "no_pixel_data"
    assert _code("waveform_ecg.dcm") == "no_pixel_data"
    assert _code("dicomdirtests/DICOMDIR") == "no_pixel_data"
    assert _code("MR_truncated.dcm") == "invalid_pixel_data"
    assert _code("README.txt") == "not_dicom"
    assert _code("zipMR.gz") == "not_dicom"
    assert _code("crayons.icc") == "not_dicom"


def test_colour_files_import_as_rgb():
    for name in (
        "SC_rgb_jpeg_dcmtk.dcm",
        "SC_ybr_full_422_uncompressed.dcm",
        "examples_palette.dcm",
    ):
        image = _read(name)
        assert image.is_color and image.modality_values.shape[-1] == 3, name
    rgb = _read("SC_rgb_small_odd.dcm")
    np.testing.assert_array_equal(rgb.modality_values, rgb.dataset.pixel_array)


def test_multi_frame_ultrasound_takes_its_middle_frame():
    image = _read("examples_ybr_color.dcm")
    assert (image.number_of_frames, image.frame_index) == (30, 15)


def test_the_tally_counts_every_file_once():
    tally = classify_files(ALL_FILES, **LIMITS)
    assert sum(tally.values()) == len(ALL_FILES)
    assert set(tally) <= {"imported", *REJECTION_CODES}
    assert tally["imported"] > 50
