"""The synthetic chest-radiograph DICOM demo dataset."""

import csv
import hashlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.uid import (
    ComputedRadiographyImageStorage,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
)
from scipy import ndimage

from demo.labels import LabelsFileError, read_labels
from demo.synthetic import PRIVATE_CREATOR, DemoDatasetError, generate_demo_dataset

CASES = 24


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    calls: list[tuple[int, int]] = []
    summary = generate_demo_dataset(
        out, cases=CASES, seed=11, progress=lambda done, total: calls.append((done, total))
    )
    return out, summary, calls


def tree_digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def read_rows(out: Path) -> list[dict[str, str]]:
    with (out / "labels.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def display_image(ds: pydicom.Dataset) -> np.ndarray:
    """Modality rescale -> first window (linear) -> inversion for MONOCHROME1, in [0, 1]."""
    values = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(
        ds.RescaleIntercept
    )
    center = ds.WindowCenter[0] if ds["WindowCenter"].VM > 1 else ds.WindowCenter
    width = ds.WindowWidth[0] if ds["WindowWidth"].VM > 1 else ds.WindowWidth
    unit = np.clip((values - (float(center) - float(width) / 2)) / float(width), 0, 1)
    return 1.0 - unit if ds.PhotometricInterpretation == "MONOCHROME1" else unit


def test_same_seed_gives_byte_identical_files_and_another_seed_differs(tmp_path):
    first = tree_digests(generate_demo_dataset(tmp_path / "a", cases=6, seed=3).out_dir)
    second = tree_digests(generate_demo_dataset(tmp_path / "b", cases=6, seed=3).out_dir)
    other = tree_digests(generate_demo_dataset(tmp_path / "c", cases=6, seed=4).out_dir)
    assert first == second
    images = [name for name in first if name.startswith("images/")]
    assert len(images) == 6 and "labels.csv" in first
    assert any(name.startswith("masks/") for name in first)
    assert all(first[name] != other.get(name) for name in images)


def test_one_dicom_per_case_and_progress_reported_per_case(dataset):
    out, summary, calls = dataset
    assert sorted(p.name for p in (out / "images").iterdir()) == [
        f"demo-{i:04d}.dcm" for i in range(1, CASES + 1)
    ]
    assert calls == [(i, CASES) for i in range(1, CASES + 1)]
    assert summary.cases == CASES


def test_files_are_part10_explicit_little_endian_dx_or_cr_with_12_bit_pixels(dataset):
    out, _, _ = dataset
    seen_classes = set()
    for path in sorted((out / "images").glob("*.dcm")):
        assert path.read_bytes()[128:132] == b"DICM"
        ds = pydicom.dcmread(path)
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        expected_modality = {
            DigitalXRayImageStorageForPresentation: "DX",
            ComputedRadiographyImageStorage: "CR",
        }[ds.SOPClassUID]
        assert ds.Modality == expected_modality
        seen_classes.add(ds.SOPClassUID)
        assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (
            16, 12, 11, 0,
        )  # fmt: skip
        pixels = ds.pixel_array
        assert pixels.shape == (ds.Rows, ds.Columns)
        assert 320 <= ds.Rows <= 512 and 320 <= ds.Columns <= 512
        assert int(pixels.max()) <= 4095
        assert ds.BodyPartExamined == "CHEST" and ds.ViewPosition in ("PA", "AP")
        assert "RescaleSlope" in ds and "RescaleIntercept" in ds and "RescaleType" in ds
        assert len(ds.PixelSpacing) == 2
    assert seen_classes == {DigitalXRayImageStorageForPresentation, ComputedRadiographyImageStorage}


def test_dataset_varies_size_photometric_rescale_and_window_presets(dataset):
    out, summary, _ = dataset
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in (out / "images").glob("*.dcm")]
    assert any(ds.Rows != ds.Columns for ds in headers)
    assert len({(ds.Rows, ds.Columns) for ds in headers}) > CASES // 2
    photometrics = [ds.PhotometricInterpretation for ds in headers]
    assert set(photometrics) == {"MONOCHROME1", "MONOCHROME2"}
    assert photometrics.count("MONOCHROME2") > photometrics.count("MONOCHROME1")
    assert summary.monochrome1 == photometrics.count("MONOCHROME1")
    assert len({(float(ds.RescaleSlope), float(ds.RescaleIntercept)) for ds in headers}) > 1
    two_presets = [ds for ds in headers if ds["WindowCenter"].VM == 2]
    assert two_presets, "expected some files with two window presets"
    assert all(ds.WindowCenterWidthExplanation[1] for ds in two_presets)


def test_identifying_data_is_present_for_import_to_strip(dataset):
    out, _, _ = dataset
    for path in (out / "images").glob("*.dcm"):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert "^" in str(ds.PatientName)
        for keyword in (
            "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "SeriesDate",
            "AcquisitionDate", "ContentDate", "StudyTime", "AccessionNumber", "StudyID",
            "InstitutionName", "ReferringPhysicianName", "OperatorsName",
            "DeviceSerialNumber", "StationName",
        ):  # fmt: skip
            assert str(ds.data_element(keyword).value), keyword
        block = ds.private_block(0x0011, PRIVATE_CREATOR)
        assert str(block[0x01].value) == str(ds.PatientName)


def test_uids_are_valid_and_unique_per_file(dataset):
    out, _, _ = dataset
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in (out / "images").glob("*.dcm")]
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        values = [ds.data_element(keyword).value for ds in headers]
        assert all(pydicom.uid.UID(v).is_valid for v in values)
        assert len(set(values)) == len(values)


def test_some_patients_have_two_studies_on_different_dates(dataset):
    out, summary, _ = dataset
    studies: dict[str, list[pydicom.Dataset]] = {}
    for path in (out / "images").glob("*.dcm"):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        studies.setdefault(ds.PatientID, []).append(ds)
    repeated = [v for v in studies.values() if len(v) == 2]
    assert len(repeated) == summary.patients_with_two_studies >= 1
    assert len(studies) == summary.patients
    for first, second in repeated:
        assert first.PatientName == second.PatientName
        assert first.StudyInstanceUID != second.StudyInstanceUID
        assert first.StudyDate != second.StudyDate


def test_labels_csv_lists_every_case_with_label_mask_and_split(dataset):
    out, summary, _ = dataset
    rows = read_rows(out)
    assert list(rows[0]) == ["case", "label", "mask", "split"]
    assert [r["case"] for r in rows] == [f"demo-{i:04d}" for i in range(1, CASES + 1)]
    for row in rows:
        assert row["label"] in ("nodule", "normal") and row["split"] in ("train", "test")
        expected_mask = f"masks/{row['case']}.png" if row["label"] == "nodule" else ""
        assert row["mask"] == expected_mask
    assert sorted(p.name for p in (out / "masks").iterdir()) == sorted(
        Path(r["mask"]).name for r in rows if r["mask"]
    )
    assert summary.positives == sum(r["label"] == "nodule" for r in rows) == CASES // 2
    assert [c.case for c in read_labels(out)] == [r["case"] for r in rows]


def test_split_is_stratified_by_label_and_keeps_each_patient_on_one_side(dataset):
    out, summary, _ = dataset
    rows = read_rows(out)
    positives = sum(r["label"] == "nodule" for r in rows)
    negatives = CASES - positives
    test_pos = sum(r["label"] == "nodule" and r["split"] == "test" for r in rows)
    test_neg = sum(r["label"] == "normal" and r["split"] == "test" for r in rows)
    assert (test_pos, test_neg) == (round(positives / 4), round(negatives / 4))  # 12 -> 3
    assert summary.test == test_pos + test_neg and summary.test_positives == test_pos
    split_of_patient: dict[str, set[str]] = {}
    for row in rows:
        ds = pydicom.dcmread(out / "images" / f"{row['case']}.dcm", stop_before_pixels=True)
        split_of_patient.setdefault(ds.PatientID, set()).add(row["split"])
    assert all(len(splits) == 1 for splits in split_of_patient.values())


def test_masks_are_binary_on_the_image_grid(dataset):
    out, _, _ = dataset
    for row in read_rows(out):
        if not row["mask"]:
            continue
        mask = np.asarray(Image.open(out / row["mask"]))
        ds = pydicom.dcmread(out / "images" / f"{row['case']}.dcm", stop_before_pixels=True)
        assert mask.shape == (ds.Rows, ds.Columns)
        assert set(np.unique(mask)) == {0, 255}
        area = (mask > 0).sum()
        assert np.pi * 5**2 * 0.5 < area < 2 * np.pi * 25**2 * 1.5  # 1-2 lesions, r 6..25


def test_lesions_are_brighter_than_their_surroundings_on_display(dataset):
    out, _, _ = dataset
    contrasts = []
    for row in read_rows(out):
        if not row["mask"]:
            continue
        lesion = np.asarray(Image.open(out / row["mask"])) > 0
        ring = ndimage.binary_dilation(lesion, iterations=8) & ~ndimage.binary_dilation(
            lesion, iterations=3
        )
        display = display_image(pydicom.dcmread(out / "images" / f"{row['case']}.dcm"))
        contrasts.append(display[lesion].mean() - display[ring].mean())
    assert all(c > 0 for c in contrasts)
    assert min(contrasts) < 0.5 * max(contrasts)  # contrast varies: some are subtle


def test_every_image_displays_with_dark_air_and_a_bright_mediastinum(dataset):
    # Holds for MONOCHROME1 files too, so their pixel values were inverted consistently.
    out, _, _ = dataset
    for path in (out / "images").glob("*.dcm"):
        display = display_image(pydicom.dcmread(path))
        rows, cols = display.shape
        band = slice(rows // 3, 2 * rows // 3)
        top = display[: rows // 10]
        corners = np.concatenate([top[:, : cols // 12].ravel(), top[:, -cols // 12 :].ravel()])
        centre = display[band, cols // 2 - cols // 30 : cols // 2 + cols // 30]
        assert corners.mean() + 0.3 < centre.mean(), path.name


def test_existing_dataset_is_not_overwritten_unless_asked(tmp_path):
    generate_demo_dataset(tmp_path, cases=4, seed=1)
    with pytest.raises(DemoDatasetError, match="overwrite"):
        generate_demo_dataset(tmp_path, cases=4, seed=1)
    summary = generate_demo_dataset(tmp_path, cases=5, seed=2, overwrite=True)
    assert len(list((tmp_path / "images").glob("*.dcm"))) == summary.cases == 5


def test_too_few_cases_are_refused_with_a_reason(tmp_path):
    with pytest.raises(DemoDatasetError, match="cases must be"):
        generate_demo_dataset(tmp_path, cases=3)


def test_malformed_labels_file_is_reported(tmp_path):
    (tmp_path / "labels.csv").write_text("case,label\ndemo-0001,nodule\n")
    with pytest.raises(LabelsFileError, match="columns"):
        read_labels(tmp_path)
