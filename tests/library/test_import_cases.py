"""import_cases: files, folders, zips, labels, masks, rejections, atomicity, PHI."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image

from core.models import AuditEntry
from library.models import Case, CaseLabel, Collection, LesionMask
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.django_db


def _import(*paths, collection="c1", **options):
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "import_cases",
        *[str(p) for p in paths],
        collection=collection,
        no_progress=True,
        stdout=out,
        stderr=err,
        **options,
    )
    return out.getvalue(), err.getvalue()


def _labels(path: Path) -> list[dict]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_demo_folder_imports_with_labels_masks_and_splits(demo_copy):
    out, _ = _import(demo_copy / "images", labels=demo_copy / "labels.csv")
    rows = _labels(demo_copy / "labels.csv")
    assert "8 imported" in out
    assert Case.objects.count() == 8
    for row in rows:
        case = Case.objects.get(key=row["case"])
        assert case.split == row["split"]
        assert CaseLabel.objects.get(case=case).name == row["label"]
        assert case.masks.exists() == bool(row["mask"])
        if row["mask"]:
            stored = np.array(Image.open(default_storage.open(case.masks.get().file.name)))
            original = np.array(Image.open(demo_copy / row["mask"]))
            assert np.array_equal(stored > 0, original > 0)
            assert case.masks.get().pixel_count == int((original > 0).sum())
    assert AuditEntry.objects.filter(action="case.import").count() == 8


def test_import_stores_no_original_bytes_and_no_patient_identity(demo_copy):
    originals = sorted((demo_copy / "images").glob("*.dcm"))
    phi = set()
    for path in originals:
        ds = pydicom.dcmread(path)
        phi |= {
            str(ds.PatientName),
            str(ds.PatientID),
            str(ds.AccessionNumber),
            str(ds.InstitutionName),
            str(ds.StudyInstanceUID),
            str(ds.SOPInstanceUID),
            str(ds.PatientBirthDate),
        }
    phi = {value for value in phi if len(value) >= 4}
    _import(demo_copy / "images", labels=demo_copy / "labels.csv")
    media = Path(default_storage.location)
    stored = [p for p in media.rglob("*") if p.is_file()]
    assert stored
    original_bytes = {path.read_bytes() for path in originals}
    for path in stored:
        data = path.read_bytes()
        assert data not in original_bytes
        for value in phi:
            assert value.encode() not in data, f"{value!r} survives in {path.name}"
    for case in Case.objects.all():
        ds = pydicom.dcmread(default_storage.open(case.source_file.name))
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.preamble == b"\0" * 128
        assert str(ds.SOPInstanceUID) == case.sop_instance_uid
        for field in ("key", "patient_pseudonym", "study_uid", "series_uid", "sop_instance_uid"):
            assert getattr(case, field) not in phi


def test_reimporting_the_same_files_skips_them_instead_of_duplicating(demo_copy):
    _import(demo_copy / "images")
    out, _ = _import(demo_copy / "images")
    assert "0 imported, 8 already present" in out
    assert Case.objects.count() == 8


def test_a_zip_archive_imports_like_a_folder(demo_copy, tmp_path):
    archive = tmp_path / "cases.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted((demo_copy / "images").glob("*.dcm"))[:3]:
            zf.write(path, f"batch/{path.name}")
        zf.writestr("__MACOSX/._junk", b"junk")
    out, _ = _import(archive)
    assert "3 imported" in out
    assert sorted(Case.objects.values_list("key", flat=True))[0].startswith("batch/demo-")


def test_rejected_files_are_listed_with_reasons_and_the_command_exits_1(demo_copy, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    good = sorted((demo_copy / "images").glob("*.dcm"))[0]
    (folder / "good.dcm").write_bytes(good.read_bytes())
    (folder / "notes.dcm").write_bytes(b"this is not a DICOM file at all")
    (folder / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    err = io.StringIO()
    with pytest.raises(CommandError, match="2 file\\(s\\) rejected") as excinfo:
        call_command(
            "import_cases",
            str(folder),
            collection="c1",
            no_progress=True,
            stderr=err,
            stdout=io.StringIO(),
        )
    assert excinfo.value.returncode == 1
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 2
    assert any("notes.dcm" in line and "[not_dicom]" in line for line in lines)
    assert any("photo.png" in line and "[unreadable_image]" in line for line in lines)
    assert list(Case.objects.values_list("key", flat=True)) == ["good"]


def test_a_labels_row_with_an_unknown_case_key_stops_the_import_before_anything_is_stored(
    demo_copy,
):
    with (demo_copy / "labels.csv").open("a") as handle:
        handle.write("no-such-case,nodule,,test\n")
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command(
            "import_cases",
            str(demo_copy / "images"),
            collection="c1",
            labels=str(demo_copy / "labels.csv"),
            no_progress=True,
            stderr=err,
            stdout=io.StringIO(),
        )
    assert "row 10" in err.getvalue() and "no-such-case" in err.getvalue()
    assert not Case.objects.exists()
    assert not [p for p in Path(default_storage.location).rglob("*") if p.is_file()]


def test_a_mask_of_the_wrong_size_rejects_its_case_with_the_row_number(demo_copy):
    rows = _labels(demo_copy / "labels.csv")
    row_index, row = next((i, r) for i, r in enumerate(rows) if r["mask"])
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(demo_copy / row["mask"])
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command(
            "import_cases",
            str(demo_copy / "images"),
            collection="c1",
            labels=str(demo_copy / "labels.csv"),
            no_progress=True,
            stderr=err,
            stdout=io.StringIO(),
        )
    assert f"row {row_index + 2}" in err.getvalue()
    assert "[bad_mask]" in err.getvalue()
    assert not Case.objects.filter(key=row["case"]).exists()
    assert Case.objects.count() == 7


def test_a_failure_while_storing_a_case_leaves_neither_rows_nor_files(demo_copy, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(LesionMask.objects, "create", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        _import(demo_copy / "images", labels=demo_copy / "labels.csv")
    stored_keys = set(Case.objects.values_list("key", flat=True))
    # Cases imported before the failing one are complete; the failing one left nothing behind.
    for case in Case.objects.all():
        assert default_storage.exists(case.source_file.name)
    folders = {p.parent.name for p in Path(default_storage.location).rglob("*") if p.is_file()}
    assert folders == {str(uid) for uid in Case.objects.values_list("uid", flat=True)}
    assert LesionMask.objects.count() == 0
    assert len(stored_keys) < 8


def test_png_images_with_a_chestxray14_table_get_every_finding(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for name, value in [("00000001_000", 40), ("00000002_000", 200)]:
        Image.fromarray(np.full((32, 40), value, np.uint8)).save(images / f"{name}.png")
    table = tmp_path / "Data_Entry_2017.csv"
    table.write_text(
        "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
        "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],\n"
        "00000001_000.png,Cardiomegaly|Effusion,0,1,58,M,PA,2682,2749,0.143,0.143\n"
        "00000002_000.png,No Finding,0,2,81,M,PA,2500,2048,0.168,0.168\n"
    )
    out, _ = _import(images, labels=table)
    assert "2 imported" in out and "chestxray14" in out
    first = {label.name: label.value for label in Case.objects.get(key="00000001_000").labels.all()}
    assert first["Cardiomegaly"] == 1 and first["Effusion"] == 1 and first["Nodule"] == 0
    second = Case.objects.get(key="00000002_000")
    assert second.source_format == "png" and (second.rows, second.columns) == (32, 40)
    display = np.array(Image.open(default_storage.open(second.display_file.name)))
    assert display.shape == (32, 40)


def test_chexpert_paths_match_nested_files_and_keep_uncertain_labels(tmp_path):
    root = tmp_path / "CheXpert-v1.0-small" / "valid" / "patient00001" / "study1"
    root.mkdir(parents=True)
    Image.fromarray(np.arange(48 * 64, dtype=np.uint8).reshape(48, 64)).save(
        root / "view1_frontal.jpg"
    )
    table = tmp_path / "valid.csv"
    table.write_text(
        "Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Enlarged Cardiomediastinum,Cardiomegaly,"
        "Lung Opacity,Lung Lesion,Edema,Consolidation,Pneumonia,Atelectasis,Pneumothorax,"
        "Pleural Effusion,Pleural Other,Fracture,Support Devices\n"
        "CheXpert-v1.0-small/valid/patient00001/study1/view1_frontal.jpg,Female,68,Frontal,AP,"
        ",,1.0,1.0,,-1.0,,,0.0,0.0,,,,\n"
    )
    out, _ = _import(tmp_path / "CheXpert-v1.0-small", labels=table)
    case = Case.objects.get()
    assert case.key == "valid/patient00001/study1/view1_frontal"
    assert case.source_format == "jpeg"
    labels = {label.name: label.value for label in case.labels.all()}
    assert labels == {
        "Cardiomegaly": 1,
        "Lung Opacity": 1,
        "Edema": -1,
        "Atelectasis": 0,
        "Pneumothorax": 0,
    }


def test_the_command_run_as_a_process_exits_1_without_a_traceback(tmp_path):
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"\0" * 200)
    env = {
        **__import__("os").environ,
        "XRS_VAR_DIR": str(tmp_path / "var"),
        "DATABASE_URL": "",
        "XRS_MEDIA_ROOT": str(tmp_path / "media"),
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        timeout=300,
    )
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "import_cases",
            str(bad),
            "--collection",
            "cli-test",
            "--no-progress",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "bad.dcm" in result.stderr


def test_a_missing_path_is_an_error_and_creates_nothing(tmp_path):
    with pytest.raises(CommandError):
        _import(tmp_path / "nowhere", collection="never")
    assert not Case.objects.exists()
    assert not Collection.objects.filter(name="never").exists()
