"""A labels CSV may carry each case's clinical history: an optional `clinical_history` column,
cleaned of control characters, bounded in length (an over-long text is a problem of its row,
refused before anything is stored); imports without the column are unchanged."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from core.errors import ServiceError
from core.models import AuditEntry
from library import services
from library.clinical_history import MAX_CLINICAL_HISTORY_CHARS
from library.labels import LabelsError, parse_labels_csv
from library.models import Case

pytestmark = pytest.mark.django_db

CHEXPERT_HEADER = "Path,No Finding,Cardiomegaly,Edema,Clinical_History"


def _labels_with_history(folder: Path, histories: dict[int, str]) -> Path:
    """The demo labels CSV with a clinical_history column (row index -> text)."""
    with (folder / "labels.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    target = folder / "labels-with-history.csv"
    with target.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*rows[0].keys(), "clinical_history"])
        writer.writeheader()
        for index, row in enumerate(rows):
            writer.writerow({**row, "clinical_history": histories.get(index, "")})
    return target


def _import(coordinator, folder: Path, labels: Path):
    return services.cases_import(
        acting_user=coordinator,
        collection="history",
        paths=[folder / "images"],
        labels_path=labels,
    )


def test_the_column_is_optional_and_a_file_without_it_reads_as_before():
    _, rows = parse_labels_csv("case,label\nc1,Mass\n")
    assert rows[0].clinical_history == ""


def test_the_column_is_read_in_every_layout_and_cleaned_of_control_characters():
    _, generic = parse_labels_csv(
        'case,label,clinical_history\nc1,Mass,"58-year-old\x07 smoker,\r\ncough\u202e 3 weeks  "\n'
    )
    assert generic[0].clinical_history == "58-year-old smoker,\ncough 3 weeks"
    _, chexpert = parse_labels_csv(
        f"{CHEXPERT_HEADER}\nCheXpert-v1.0/valid/p1/s1/view1.jpg,1.0,,,Fever for two days\n"
    )
    assert chexpert[0].clinical_history == "Fever for two days"


def test_an_over_long_history_is_a_problem_of_its_row_reported_with_the_others():
    long_text = "x" * (MAX_CLINICAL_HISTORY_CHARS + 1)
    with pytest.raises(LabelsError) as excinfo:
        parse_labels_csv(f"case,label,clinical_history\nc1,Mass,{long_text}\nc2,,ok\n")
    assert excinfo.value.problems == [
        f"row 2: the clinical history has {MAX_CLINICAL_HISTORY_CHARS + 1:,} characters, "
        f"the limit is {MAX_CLINICAL_HISTORY_CHARS:,}",
        "row 3: blank value in column 'label'",
    ]


def test_a_history_of_exactly_the_limit_is_accepted():
    text = "y" * MAX_CLINICAL_HISTORY_CHARS
    _, rows = parse_labels_csv(f"case,label,clinical_history\nc1,Mass,{text}\n")
    assert rows[0].clinical_history == text


def test_an_import_without_the_column_leaves_every_history_blank(coordinator, demo_copy):
    report = _import(coordinator, demo_copy, demo_copy / "labels.csv")
    assert report.ok and len(report.imported) == 8
    assert set(Case.objects.values_list("clinical_history", flat=True)) == {""}


def test_an_import_with_the_column_stores_each_cases_history_and_audits_it(
    coordinator, demo_copy
):
    labels = _labels_with_history(
        demo_copy, {0: "58-year-old smoker, cough for 3 weeks", 2: "Fever\x07 and dyspnoea"}
    )
    report = _import(coordinator, demo_copy, labels)
    assert report.ok and len(report.imported) == 8
    with labels.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    histories = {row["case"]: row["clinical_history"].replace("\x07", "") for row in rows}
    for case in Case.objects.all():
        assert case.clinical_history == histories[case.key]
    first = Case.objects.get(key=rows[0]["case"])
    entry = AuditEntry.objects.get(action="case.import", object_id=str(first.pk))
    assert entry.after["clinical_history"] == "58-year-old smoker, cough for 3 weeks"


def test_an_over_long_history_refuses_the_whole_import_and_stores_nothing(
    coordinator, demo_copy
):
    labels = _labels_with_history(demo_copy, {3: "z" * (MAX_CLINICAL_HISTORY_CHARS + 5)})
    with pytest.raises(ServiceError) as excinfo:
        _import(coordinator, demo_copy, labels)
    assert excinfo.value.problems == [
        f"labels-with-history.csv: row 5: the clinical history has "
        f"{MAX_CLINICAL_HISTORY_CHARS + 5:,} characters, the limit is {MAX_CLINICAL_HISTORY_CHARS:,}"
    ]
    assert not Case.objects.exists()
    assert not AuditEntry.objects.filter(action="case.import").exists()
