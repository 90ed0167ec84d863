"""The demo dataset's `labels.csv`: one row per case with its label, mask path and split."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

LABELS_FILENAME = "labels.csv"
LABEL_COLUMNS = ("case", "label", "mask", "split")
POSITIVE_LABEL = "nodule"
NEGATIVE_LABEL = "normal"
SPLITS = ("train", "test")


class LabelsFileError(ValueError):
    """labels.csv is missing or malformed."""


@dataclass(frozen=True)
class DemoCase:
    case: str  # case key = DICOM file stem, e.g. "demo-0001"
    label: str  # "nodule" or "normal"
    mask: str  # "masks/<case>.png" or "" when there is no lesion
    split: str  # "train" or "test"

    @property
    def is_positive(self) -> bool:
        return self.label == POSITIVE_LABEL

    def image_path(self, dataset_dir: Path) -> Path:
        return dataset_dir / "images" / f"{self.case}.dcm"


def write_labels(path: Path, cases: list[DemoCase]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(LABEL_COLUMNS)
        for case in cases:
            writer.writerow([case.case, case.label, case.mask, case.split])


def read_labels(dataset_dir: Path) -> list[DemoCase]:
    """Read and validate `<dataset_dir>/labels.csv`, in file order."""
    path = Path(dataset_dir) / LABELS_FILENAME
    if not path.is_file():
        raise LabelsFileError(f"no {LABELS_FILENAME} in {dataset_dir}")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != LABEL_COLUMNS:
            raise LabelsFileError(
                f"{path} has columns {reader.fieldnames}, expected {list(LABEL_COLUMNS)}"
            )
        cases = []
        for line, row in enumerate(reader, start=2):
            case = DemoCase(row["case"], row["label"], row["mask"], row["split"])
            if case.label not in (POSITIVE_LABEL, NEGATIVE_LABEL):
                raise LabelsFileError(f"{path}:{line}: unknown label {case.label!r}")
            if case.split not in SPLITS:
                raise LabelsFileError(f"{path}:{line}: unknown split {case.split!r}")
            cases.append(case)
    if not cases:
        raise LabelsFileError(f"{path} lists no cases")
    return cases
