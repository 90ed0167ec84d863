# ruff: noqa: F811  (tests take the imported fixtures as arguments)
"""Hostile uploads: broken, forged and dangerous files sent through the import page, the REST
API and the import command are refused one by one, each with its name and the reason; nothing
is stored, no temporary folder stays behind, and no request ends in a 500.

Decisions recorded here:

* An executable in the 128-byte preamble (ELF, PE) is stripped, not refused: PS3.10 lets
  applications use the preamble (TIFF/DICOM dual files), and the original file is never stored.
  The stored file is re-encoded with a zeroed preamble, so it is never an executable.
* Corrupted compressed pixel data is refused when it is structurally broken (truncated frames,
  JPEG codestreams without their end marker, RLE headers with the wrong number of segments,
  broken items); flipped bytes inside the entropy-coded data still decode, to other pixels, and
  may be imported: the mutation fuzzer accepts either outcome but never a crash.
* Imports run inside the request (``cases_import_uploads``) or in the ``import_cases`` command;
  no Celery task imports files, so the command is the offline path checked here.

Hostile DICOM files and the import command are checked here; archives in
test_hostile_archive_uploads.py, mutation fuzzing in test_hostile_upload_fuzz.py, helpers and
fixtures in upload_helpers.py.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
)

from library.models import Case
from tests.library.dicom_factories import part10_bytes
from tests.library.upload_helpers import (  # noqa: F401  (fixtures here are used by name)
    CATEGORIES,
    ELF_HEADER,
    PE_HEADER,
    _fast_passwords,
    _jpeg,
    _png,
    api,
    api_import,
    assert_each_file_refused,
    assert_nothing_left,
    collection,
    ct_dataset,
    ct_file,
    hostile_corpus,
    huge_dimensions,
    page,
    page_import,
    page_lists,
    refused,
    rejections,
    sandbox,
    truncations,
    zip_bytes,
)

pytestmark = pytest.mark.django_db


# --------------------------------------------------------------------------- DICOM files


def test_truncated_files_are_each_refused_by_name_at_every_cut_point(api, page, collection, sandbox):
    corpus = truncations()
    assert len(corpus) > 150
    body = refused(api_import(api, collection, {n: d for n, d, _ in corpus}), sandbox)
    assert_each_file_refused(body, corpus)
    assert_nothing_left(sandbox)
    response = page_import(page, collection, {n: d for n, d, _ in corpus})
    page_lists(response, [n for n, _, _ in corpus], sandbox)
    assert_nothing_left(sandbox)


@pytest.mark.parametrize("category", list(CATEGORIES))
def test_hostile_dicom_files_are_refused_through_the_api_and_the_page(
    category, api, page, collection, sandbox
):
    corpus = CATEGORIES[category]()
    files = {name: data for name, data, _ in corpus}
    assert len(files) == len(corpus)
    body = refused(api_import(api, collection, files), sandbox)
    assert_each_file_refused(body, corpus)
    assert_nothing_left(sandbox)
    response = page_import(page, collection, files)
    reasons = [reason for _, reason in rejections(body).values()]
    page_lists(response, list(files) + reasons, sandbox)
    assert_nothing_left(sandbox)


def test_declared_dimensions_beyond_the_pixel_limit_are_refused_before_decoding(
    api, collection, sandbox, settings
):
    corpus = huge_dimensions(settings.XRS_IMPORT_MAX_PIXELS)
    body = refused(api_import(api, collection, {n: d for n, d, _ in corpus}), sandbox)
    assert_each_file_refused(body, corpus)
    by_name = rejections(body)
    assert f"{settings.XRS_IMPORT_MAX_PIXELS:,}" in by_name["just-over-the-limit.dcm"][1]
    assert "4,294,836,225" in by_name["rows-columns-65535.dcm"][1]
    assert_nothing_left(sandbox)


def test_a_deflated_dataset_that_inflates_past_the_byte_limit_is_refused_unread(
    api, collection, sandbox, settings
):
    ds = ct_dataset(4, 4)
    ds.Rows = ds.Columns = 1600
    ds.PixelData = bytes(1600 * 1600 * 2)  # 5 MB of zeros deflate to a few kilobytes
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    bomb = part10_bytes(ds)
    settings.XRS_IMPORT_MAX_BYTES = 1_000_000
    assert len(bomb) < 100_000
    body = refused(api_import(api, collection, {"deflated.dcm": bomb}), sandbox)
    code, reason = rejections(body)["deflated.dcm"]
    assert code == "too_large" and "deflated dataset expands to more than 1,000,000 bytes" in reason
    assert_nothing_left(sandbox)


def test_a_png_or_jpeg_named_like_a_dicom_file_is_refused_as_not_dicom(api, collection, sandbox):
    body = refused(api_import(api, collection, {"x.dcm": _png(), "y.dicom": _jpeg()}), sandbox)
    by_name = rejections(body)
    assert by_name["x.dcm"] == ("not_dicom", "named like a DICOM file (.dcm) but is a PNG image")
    assert by_name["y.dicom"][0] == "not_dicom" and "JPEG" in by_name["y.dicom"][1]


@pytest.mark.parametrize("header", [ELF_HEADER, PE_HEADER], ids=["elf", "pe"])
def test_an_executable_preamble_is_stripped_before_the_file_is_stored(
    header, api, collection, sandbox
):
    original = header.ljust(128, b"\x00") + ct_file()[128:]
    assert original[128:132] == b"DICM" and original.startswith(header[:4])
    response = api_import(api, collection, {"polyglot.dcm": original})
    assert response.status_code == 201, response.json()
    case = Case.objects.get()
    with default_storage.open(case.source_file.name, "rb") as handle:
        stored = handle.read()
    assert stored[:128] == b"\x00" * 128 and stored[128:132] == b"DICM"
    assert header[:16] not in stored
    assert pydicom.dcmread(io.BytesIO(stored)).preamble == b"\x00" * 128
    assert list(sandbox.iterdir()) == []


def test_an_upload_spooled_to_disk_is_refused_and_its_temporary_file_removed(
    api, collection, sandbox, settings
):
    big = np.random.default_rng(3).bytes(settings.FILE_UPLOAD_MAX_MEMORY_SIZE + 1024)
    body = refused(api_import(api, collection, {"big.dcm": big}), sandbox)
    assert rejections(body)["big.dcm"][0] == "not_dicom"
    assert_nothing_left(sandbox)


def test_a_file_name_too_long_for_the_disk_is_a_400_not_a_500(api, page, collection, sandbox):
    name = "é" * 200 + ".dcm"  # 200 characters, but 404 bytes
    body = refused(api_import(api, collection, {name: ct_file()}), sandbox)
    assert "longer than 255 bytes" in body["detail"]
    response = page_import(page, collection, {name: ct_file()})
    page_lists(response, ["longer than 255 bytes"], sandbox)
    assert_nothing_left(sandbox)


def test_a_zip_member_whose_key_is_too_long_for_the_database_is_refused(api, collection, sandbox):
    name = "/".join(["folder" * 10] * 5) + "/x.dcm"
    body = refused(api_import(api, collection, {"long.zip": zip_bytes([(name, ct_file())])}), sandbox)
    (code, reason), = rejections(body).values()
    assert code == "key_too_long" and "the limit is 255" in reason
    assert_nothing_left(sandbox)

# --------------------------------------------------------------------------- the command


def test_the_import_command_refuses_the_whole_corpus_with_one_line_per_file(tmp_path, settings):
    corpus = hostile_corpus(settings.XRS_IMPORT_MAX_PIXELS)
    folder = tmp_path / "hostile"
    folder.mkdir()
    for name, data, _ in corpus:
        (folder / name).write_bytes(data)
    err = io.StringIO()
    with pytest.raises(CommandError, match=f"{len(corpus)} file\\(s\\) rejected") as info:
        call_command(
            "import_cases", str(folder), collection="c", no_progress=True,
            stderr=err, stdout=io.StringIO(),
        )
    assert info.value.returncode == 1
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == len(corpus)
    by_name = {}
    for line in lines:
        assert line.startswith(f"rejected {folder}/"), line
        path, _ = line[len("rejected ") :].split(": ", 1)
        by_name[Path(path).name] = line.rsplit("[", 1)[1].rstrip("]")
    for name, _, codes in corpus:
        assert by_name[name] in codes, (name, by_name[name])
    assert not Case.objects.exists()
    assert not [p for p in Path(default_storage.location).rglob("*") if p.is_file()]
