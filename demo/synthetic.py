"""Deterministic synthetic chest-radiograph-like DICOM dataset for the demo study.

`generate_demo_dataset(out_dir)` writes

    images/<case>.dcm   one Part 10 DX (or CR) file per case, 12-bit, with fake identifiers
    masks/<case>.png    binary lesion mask (0/255) on the image grid, only for lesion cases
    labels.csv          case,label,mask,split

The same seed gives byte-identical files (on the same numpy/scipy/pydicom/Pillow build).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    ComputedRadiographyImageStorage,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    generate_uid,
)

from demo.anatomy import ChestImage, draw_chest, draw_image_size
from demo.identities import (
    FakePatient,
    FakeStudy,
    draw_study_date,
    make_patient,
    make_study,
)
from demo.labels import (
    LABELS_FILENAME,
    NEGATIVE_LABEL,
    POSITIVE_LABEL,
    DemoCase,
    write_labels,
)

MIN_CASES = 4
TEST_FRACTION = 0.25
POSITIVE_FRACTION = 0.5
TWO_LESION_PROBABILITY = 0.2
MONOCHROME1_PROBABILITY = 0.2
CR_PROBABILITY = 0.2
MAX_STORED = 4095  # 12 bits stored
PRIVATE_CREATOR = "XAI-DEMO SYNTHETIC"
# (RescaleSlope, RescaleIntercept) presets with their relative frequency.
RESCALE_PRESETS = ((1.0, 0.0), (0.5, -100.0), (1.0, -1024.0), (2.0, 0.0))
RESCALE_WEIGHTS = (0.55, 0.15, 0.15, 0.15)


class DemoDatasetError(ValueError):
    """The demo dataset cannot be generated with the given arguments."""


@dataclass(frozen=True)
class DemoDatasetSummary:
    out_dir: Path
    cases: int
    positives: int
    negatives: int
    train: int
    test: int
    train_positives: int
    test_positives: int
    lesions: int
    patients: int
    patients_with_two_studies: int
    monochrome1: int
    computed_radiography: int
    seconds: float


@dataclass(frozen=True)
class _CasePlan:
    index: int  # 0-based
    key: str
    positive: bool
    split: str
    patient_index: int
    study_number: int  # 1 or 2 for the patient


def case_key(index: int) -> str:
    """Case key (= DICOM file stem) of the 0-based case index."""
    return f"demo-{index + 1:04d}"


def generate_demo_dataset(
    out_dir: Path,
    *,
    cases: int = 240,
    seed: int = 7,
    progress: Callable[[int, int], None] | None = None,
    overwrite: bool = False,
) -> DemoDatasetSummary:
    """Write the demo dataset into `out_dir` and return what was written.

    `progress(done, total)` is called after each case. Refuses to write into a folder that
    already holds a demo dataset unless `overwrite` (which first removes the old images,
    masks and labels.csv, nothing else).
    """
    if not isinstance(cases, int) or cases < MIN_CASES:
        raise DemoDatasetError(f"cases must be an integer >= {MIN_CASES}, got {cases!r}")
    if not isinstance(seed, int) or seed < 0:
        raise DemoDatasetError(f"seed must be a non-negative integer, got {seed!r}")
    started = time.perf_counter()
    out_dir = Path(out_dir)
    images_dir, masks_dir = out_dir / "images", out_dir / "masks"
    _prepare_output(out_dir, images_dir, masks_dir, overwrite)

    plans, patient_count = _plan_cases(cases, seed)
    patients = [
        make_patient(np.random.default_rng([seed, 1, index])) for index in range(patient_count)
    ]
    first_dates = [
        draw_study_date(np.random.default_rng([seed, 2, index])) for index in range(patient_count)
    ]

    rows: list[DemoCase] = []
    lesion_total = mono1 = cr = 0
    for done, plan in enumerate(plans, start=1):
        rng = np.random.default_rng([seed, 3, plan.index])
        rows_px, cols_px = draw_image_size(rng)
        lesion_count = 0
        if plan.positive:
            lesion_count = 2 if rng.random() < TWO_LESION_PROBABILITY else 1
        image = draw_chest(rng, rows_px, cols_px, lesion_count)
        lesion_total += len(image.lesions)

        study_date = first_dates[plan.patient_index]
        if plan.study_number == 2:
            study_date += dt.timedelta(days=int(rng.integers(30, 720)))
        study = make_study(np.random.default_rng([seed, 4, plan.index]), study_date)
        ds = _build_dicom(rng, plan, image, patients[plan.patient_index], study, seed)
        mono1 += ds.PhotometricInterpretation == "MONOCHROME1"
        cr += ds.Modality == "CR"
        ds.save_as(images_dir / f"{plan.key}.dcm", enforce_file_format=True)

        mask_rel = ""
        if image.lesions:
            mask_rel = f"masks/{plan.key}.png"
            mask = image.lesion_mask.astype(np.uint8) * 255
            Image.fromarray(mask).save(out_dir / mask_rel, format="PNG")
        label = POSITIVE_LABEL if plan.positive else NEGATIVE_LABEL
        rows.append(DemoCase(plan.key, label, mask_rel, plan.split))
        if progress is not None:
            progress(done, cases)

    write_labels(out_dir / LABELS_FILENAME, rows)
    study_counts = np.bincount([p.patient_index for p in plans], minlength=patient_count)
    return DemoDatasetSummary(
        out_dir=out_dir,
        cases=cases,
        positives=sum(p.positive for p in plans),
        negatives=sum(not p.positive for p in plans),
        train=sum(p.split == "train" for p in plans),
        test=sum(p.split == "test" for p in plans),
        train_positives=sum(p.positive and p.split == "train" for p in plans),
        test_positives=sum(p.positive and p.split == "test" for p in plans),
        lesions=lesion_total,
        patients=patient_count,
        patients_with_two_studies=int((study_counts == 2).sum()),
        monochrome1=mono1,
        computed_radiography=cr,
        seconds=time.perf_counter() - started,
    )


def _prepare_output(out_dir: Path, images_dir: Path, masks_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise DemoDatasetError(f"{out_dir} exists and is not a folder")
    existing = [
        *images_dir.glob("*.dcm"),
        *masks_dir.glob("*.png"),
        *([out_dir / LABELS_FILENAME] if (out_dir / LABELS_FILENAME).exists() else []),
    ]
    if existing and not overwrite:
        raise DemoDatasetError(
            f"{out_dir} already holds a demo dataset ({len(existing)} files); "
            "pass overwrite=True to replace it"
        )
    for path in existing:
        path.unlink()
    images_dir.mkdir(parents=True, exist_ok=True)
    masks_dir.mkdir(parents=True, exist_ok=True)


def _plan_cases(cases: int, seed: int) -> tuple[list[_CasePlan], int]:
    """Labels, patients (some with two studies) and a patient-grouped, label-stratified split."""
    rng = np.random.default_rng([seed, 0])
    positives = round(cases * POSITIVE_FRACTION)
    is_positive = np.zeros(cases, dtype=bool)
    is_positive[rng.permutation(cases)[:positives]] = True

    # Pair up some cases as two studies of the same patient.
    pairs = max(1, cases // 8)
    order = rng.permutation(cases)
    patient_of = np.empty(cases, dtype=int)
    study_number = np.ones(cases, dtype=int)
    patient = 0
    for k in range(pairs):
        first, second = sorted((int(order[2 * k]), int(order[2 * k + 1])))
        patient_of[first] = patient_of[second] = patient
        study_number[second] = 2
        patient += 1
    for index in order[2 * pairs :]:
        patient_of[int(index)] = patient
        patient += 1

    # Greedy, patient-grouped split hitting the per-label test targets exactly when possible.
    def target(n: int) -> int:
        return max(1, math.floor(n * TEST_FRACTION + 0.5)) if n >= 2 else 0

    want = {True: target(positives), False: target(cases - positives)}
    have = {True: 0, False: 0}
    members: list[list[int]] = [[] for _ in range(patient)]
    for index in range(cases):
        members[patient_of[index]].append(index)
    split = ["train"] * cases
    for p in rng.permutation(patient):
        counts = {flag: sum(is_positive[i] == flag for i in members[p]) for flag in (True, False)}
        if all(have[flag] + counts[flag] <= want[flag] for flag in (True, False)):
            for i in members[p]:
                split[i] = "test"
            for flag in (True, False):
                have[flag] += counts[flag]

    plans = [
        _CasePlan(
            index=i,
            key=case_key(i),
            positive=bool(is_positive[i]),
            split=split[i],
            patient_index=int(patient_of[i]),
            study_number=int(study_number[i]),
        )
        for i in range(cases)
    ]
    return plans, patient


def _uid(seed: int, *parts: object) -> str:
    return generate_uid(entropy_srcs=["xai-reader-study demo", str(seed), *map(str, parts)])


def _ds(value: float) -> str:
    """A DS string short enough for the 16-character limit."""
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


@dataclass(frozen=True)
class _Acquisition:
    """How one case was "acquired": its stored pixels, rescale, windows and geometry."""

    is_cr: bool
    monochrome1: bool
    slope: float
    intercept: float
    pixels: np.ndarray  # uint16, 12 bits stored
    centers: list[float]
    widths: list[float]
    explanations: list[str]
    spacing: float
    view: str


def _draw_acquisition(rng: np.random.Generator, image: ChestImage) -> _Acquisition:
    """Every random choice of the file, in a fixed order (a seed gives the same bytes)."""
    is_cr = rng.random() < CR_PROBABILITY
    monochrome1 = rng.random() < MONOCHROME1_PROBABILITY
    slope, intercept = RESCALE_PRESETS[rng.choice(len(RESCALE_PRESETS), p=RESCALE_WEIGHTS)]
    low = rng.uniform(60, 700)
    high = rng.uniform(2600, MAX_STORED)

    stored = low + image.brightness * (high - low)
    if monochrome1:  # low values are white: mirror inside [low, high]
        stored = (low + high) - stored
    pixels = np.clip(np.rint(stored), 0, MAX_STORED).astype(np.uint16)

    modality_values = pixels.astype(np.float64) * slope + intercept
    p_low, p_high = np.percentile(modality_values, [0.5, 99.5])
    widen = rng.uniform(1.0, 1.2)
    centers = [(p_low + p_high) / 2.0]
    widths = [max(2.0, (p_high - p_low) * widen)]
    explanations = ["STANDARD"]
    if rng.random() < 0.4:
        centers.append(centers[0] + rng.uniform(-0.05, 0.05) * widths[0])
        widths.append(max(2.0, widths[0] * rng.uniform(0.55, 0.75)))
        explanations.append("HIGH CONTRAST")
    spacing = rng.uniform(340.0, 430.0) / image.brightness.shape[1]
    view = "PA" if rng.random() < 0.8 else "AP"
    return _Acquisition(
        is_cr, monochrome1, slope, intercept, pixels, centers, widths, explanations, spacing, view
    )


def _set_study(ds: Dataset, acq: _Acquisition, study: FakeStudy) -> None:
    """Study, series and equipment attributes, with the fake identifying ones import strips."""
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = study.date
    ds.StudyTime = study.time
    ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = study.time
    ds.AccessionNumber = study.accession
    ds.Modality = "CR" if acq.is_cr else "DX"
    if not acq.is_cr:
        ds.PresentationIntentType = "FOR PRESENTATION"
    ds.Manufacturer = "Synthetic Demo Imaging"
    ds.InstitutionName = study.institution
    ds.InstitutionAddress = "1 Demo Road, Example Town"
    ds.ReferringPhysicianName = study.referring_physician
    ds.StationName = study.station
    ds.StudyDescription = f"XR CHEST {acq.view}"
    ds.SeriesDescription = f"CHEST {acq.view}"
    ds.OperatorsName = study.operator
    ds.ManufacturerModelName = "DemoRad 3000"
    ds.BodyPartExamined = "CHEST"
    ds.KVP = "120" if acq.view == "PA" else "90"
    ds.DeviceSerialNumber = study.device_serial
    ds.SoftwareVersions = "demo-1.0"
    ds.ViewPosition = acq.view
    ds.StudyID = study.study_id
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1


def _set_patient(ds: Dataset, patient: FakePatient, study: FakeStudy) -> None:
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = patient.sex
    age = int(study.date[:4]) - int(patient.birth_date[:4])
    ds.PatientAge = f"{age:03d}Y"
    ds.PatientAddress = patient.address


def _one_or_many(values: list):
    return values if len(values) > 1 else values[0]


def _set_image(ds: Dataset, acq: _Acquisition) -> None:
    """The image pixel, rescale and VOI attributes, and the pixels."""
    rows, cols = acq.pixels.shape
    ds.PatientOrientation = ["L", "F"]
    if not acq.is_cr:
        ds.ImageLaterality = "U"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME1" if acq.monochrome1 else "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = cols
    ds.PixelSpacing = [_ds(acq.spacing), _ds(acq.spacing)]
    ds.ImagerPixelSpacing = [_ds(acq.spacing), _ds(acq.spacing)]
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.WindowCenter = _one_or_many([_ds(round(c, 1)) for c in acq.centers])
    ds.WindowWidth = _one_or_many([_ds(round(w, 1)) for w in acq.widths])
    ds.WindowCenterWidthExplanation = _one_or_many(acq.explanations)
    ds.RescaleIntercept = _ds(acq.intercept)
    ds.RescaleSlope = _ds(acq.slope)
    ds.RescaleType = "US"
    ds.PixelIntensityRelationship = "LOG"
    ds.PixelIntensityRelationshipSign = 1 if acq.monochrome1 else -1
    ds.LossyImageCompression = "00"
    ds.BurnedInAnnotation = "NO"
    ds.PixelData = acq.pixels.tobytes()
    ds["PixelData"].VR = "OW"


def _build_dicom(
    rng: np.random.Generator,
    plan: _CasePlan,
    image: ChestImage,
    patient: FakePatient,
    study: FakeStudy,
    seed: int,
) -> Dataset:
    acq = _draw_acquisition(rng, image)
    sop_class = (
        ComputedRadiographyImageStorage if acq.is_cr else DigitalXRayImageStorageForPresentation
    )
    sop_uid = _uid(seed, "sop", plan.index)

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = _uid(seed, "study", plan.index)
    ds.SeriesInstanceUID = _uid(seed, "series", plan.index)
    _set_study(ds, acq, study)
    _set_patient(ds, patient, study)
    _set_image(ds, acq)
    block = ds.private_block(0x0011, PRIVATE_CREATOR, create=True)
    block.add_new(0x01, "PN", patient.name)
    block.add_new(0x02, "LO", f"Reviewed by {study.operator.replace('^', ' ')}")
    block.add_new(0x03, "LO", patient.patient_id)
    return ds
