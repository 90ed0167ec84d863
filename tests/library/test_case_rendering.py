"""The stored display PNG and the cached model input of an imported case,
against values computed by hand from the DICOM standard's formulas."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from library import model_input
from library.models import Case

pytestmark = pytest.mark.django_db

STORED = np.array([[412, 462, 512], [562, 612, 1000]], dtype=np.uint16)
# modality value = 2 * stored - 1024      -> [[-200, -100, 0], [100, 200, 976]]
# window C=0, W=400 (LINEAR, PS3.3 C.11.2.1.2.1):
#   x <= -200 -> 0; x > 199 -> 1; else ((x + 0.5) / 399 + 0.5)
EXPECTED01 = np.array(
    [[0.0, (-100 + 0.5) / 399 + 0.5, (0 + 0.5) / 399 + 0.5], [(100 + 0.5) / 399 + 0.5, 1.0, 1.0]]
)


def _write_dicom(path, photometric: str) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.Modality = "Hand^Computed", "HC-1", "DX"
    ds.Rows, ds.Columns = STORED.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleSlope, ds.RescaleIntercept = 2, -1024
    ds.WindowCenter, ds.WindowWidth = 0, 400
    ds.PixelData = STORED.tobytes()
    ds.save_as(path, enforce_file_format=True)


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_display_png_and_model_input_match_the_hand_computed_values(tmp_path, photometric):
    _write_dicom(tmp_path / "hand.dcm", photometric)
    call_command(
        "import_cases",
        str(tmp_path / "hand.dcm"),
        collection="hand",
        no_progress=True,
        stdout=io.StringIO(),
    )
    case = Case.objects.get()
    expected01 = EXPECTED01 if photometric == "MONOCHROME2" else 1.0 - EXPECTED01
    display = np.array(Image.open(default_storage.open(case.display_file.name)))
    assert display.tolist() == np.rint(expected01 * 255).astype(int).tolist()
    pixels = np.load(default_storage.open(case.pixels_file.name), allow_pickle=False)
    assert pixels.tolist() == (2.0 * STORED.astype(float) - 1024).tolist()
    assert case.window_presets[0]["center"] == 0 and case.window_presets[0]["width"] == 400
    spec = {"size": [2, 3], "channels": 1, "mean": [0.5], "std": [0.25]}
    values = model_input.case_model_input(case=case, input_spec=spec)
    assert values.shape == (1, 2, 3)
    np.testing.assert_allclose(values[0], (expected01 - 0.5) / 0.25, atol=1e-5)
    cached = model_input.case_model_input(case=case, input_spec=spec)
    np.testing.assert_array_equal(cached, values)
    assert any(
        name.startswith("input-") for name in default_storage.listdir(f"cases/{case.uid}")[1]
    )
