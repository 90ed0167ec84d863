# ruff: noqa: F811  (tests take the imported fixtures as arguments)
"""Hostile archives, mask archives, mask arrays and label paths sent to the import are refused
by name; helpers in upload_helpers.py.
"""

from __future__ import annotations

import io
import struct
import zipfile

import numpy as np
import pytest
from PIL import Image

from tests.library.upload_helpers import (  # noqa: F401  (fixtures here are used by name)
    _central_entry,
    _fast_passwords,
    _png,
    api,
    api_import,
    assert_nothing_left,
    collection,
    ct_file,
    page,
    page_import,
    page_lists,
    refused,
    rejections,
    sandbox,
    zip_bytes,
)

pytestmark = pytest.mark.django_db


# --------------------------------------------------------------------------- archives


def _bomb() -> bytes:
    return zip_bytes([("scan.dcm", b"\x00" * 20_000_000)])


def _lying_sizes() -> bytes:
    """Headers say 100 bytes; the deflate stream expands to 20 MB."""
    data = bytearray(_bomb())
    struct.pack_into("<I", data, 22, 100)
    struct.pack_into("<I", data, _central_entry(bytes(data)) + 24, 100)
    return bytes(data)


def _patched(flag_offset: int, value: int) -> bytes:
    """A valid one-member zip with one 2-byte field set in both local and central headers."""
    data = bytearray(zip_bytes([("scan.dcm", ct_file())]))
    central = _central_entry(bytes(data))
    struct.pack_into("<H", data, flag_offset, value)
    struct.pack_into("<H", data, central + flag_offset + 2, value)
    return bytes(data)


def _corrupt_deflate() -> bytes:
    data = bytearray(zip_bytes([("scan.dcm", ct_file())]))
    data[40:60] = b"\xff" * 20
    return bytes(data)


def _renamed_local_header() -> bytes:
    data = bytearray(zip_bytes([("scan.dcm", ct_file())]))
    data[30:38] = b"evil.dcm"
    return bytes(data)


ARCHIVE_MEMBER_PROBLEMS = {
    "lying-sizes.zip": (_lying_sizes, "Bad CRC-32"),
    "corrupt-deflate.zip": (_corrupt_deflate, "decompressing"),
    "encrypted.zip": (lambda: _patched(6, 1), "encrypted"),
    "unknown-method.zip": (lambda: _patched(8, 98), "compression method"),
    "renamed-header.zip": (_renamed_local_header, "differ"),
}


@pytest.mark.parametrize("archive", list(ARCHIVE_MEMBER_PROBLEMS))
def test_an_unreadable_archive_member_is_refused_by_name(archive, api, page, collection, sandbox):
    build, fragment = ARCHIVE_MEMBER_PROBLEMS[archive]
    data = build()
    body = refused(api_import(api, collection, {archive: data}), sandbox)
    (name, (code, reason)), = rejections(body).items()
    assert name == f"{archive}:scan.dcm"
    assert code == "unreadable_file" and fragment in reason
    assert_nothing_left(sandbox)
    page_lists(page_import(page, collection, {archive: data}), [name, reason], sandbox)
    assert_nothing_left(sandbox)


WHOLE_ARCHIVE_PROBLEMS = {
    "bomb.zip": (_bomb, "compression ratio over 200:1"),
    "parent.zip": (lambda: zip_bytes([("../../x.dcm", ct_file())]), "unsafe member path '../../x.dcm'"),
    "inner-parent.zip": (lambda: zip_bytes([("a/../../x.dcm", ct_file())]), "unsafe member path"),
    "absolute.zip": (lambda: zip_bytes([("/etc/cron.d/x.dcm", ct_file())]), "unsafe member path"),
    "backslashes.zip": (lambda: zip_bytes([("..\\..\\x.dcm", ct_file())]), "unsafe member path"),
    "drive.zip": (lambda: zip_bytes([("C:/Windows/x.dcm", ct_file())]), "unsafe member path"),
    "drive-backslash.zip": (lambda: zip_bytes([("C:\\x.dcm", ct_file())]), "unsafe member path"),
    "truncated.zip": (lambda: zip_bytes([("x.dcm", ct_file())])[:200], "not a readable zip archive"),
    "not-a-zip.zip": (lambda: b"PK\x03\x04 this is not really a zip", "not a readable zip archive"),
    "empty.zip": (lambda: b"", "not a readable zip archive"),
}


@pytest.mark.parametrize("archive", list(WHOLE_ARCHIVE_PROBLEMS))
def test_a_dangerous_archive_is_refused_as_a_whole_naming_it(archive, api, page, collection, sandbox):
    build, fragment = WHOLE_ARCHIVE_PROBLEMS[archive]
    data = build()
    body = refused(api_import(api, collection, {archive: data}), sandbox)
    assert len(body["problems"]) == 1
    problem = body["problems"][0]
    assert problem.startswith(f"{archive}: ") and fragment in problem, problem
    assert_nothing_left(sandbox)
    page_lists(page_import(page, collection, {archive: data}), [problem], sandbox)
    assert_nothing_left(sandbox)


def test_nested_archives_are_not_expanded_and_their_members_are_refused(api, collection, sandbox):
    inner = zip_bytes([("x.dcm", ct_file())])
    middle = zip_bytes([("inner.zip", inner), ("y.dcm", b"not dicom")])
    outer = zip_bytes([("middle.zip", middle)], compression=zipfile.ZIP_STORED)
    body = refused(api_import(api, collection, {"outer.zip": outer}), sandbox)
    assert list(rejections(body)) == ["outer.zip:middle.zip"]
    assert rejections(body)["outer.zip:middle.zip"][0] == "not_dicom"
    assert_nothing_left(sandbox)


def test_an_archive_with_too_many_entries_is_refused_from_its_end_record(
    api, collection, sandbox, monkeypatch
):
    from library.services import uploads as library  # where the upload limit is read

    monkeypatch.setattr(library, "UPLOAD_MAX_FILES", 50)
    many = zip_bytes([(f"f{i}.dcm", b"") for i in range(51)], compression=zipfile.ZIP_STORED)
    body = refused(api_import(api, collection, {"many.zip": many}), sandbox)
    assert body["problems"] == ["many.zip: the archive lists more than 50 files; split it into smaller archives"]
    # An end record that claims a million entries is refused before the directory is parsed.
    forged = bytearray(zip_bytes([("x.dcm", ct_file())]))
    end = bytes(forged).rindex(b"PK\x05\x06")
    struct.pack_into("<HH", forged, end + 8, 0xFFFF, 0xFFFF)
    body = refused(api_import(api, collection, {"forged.zip": bytes(forged)}), sandbox)
    assert "lists more than 50 files" in body["problems"][0]
    assert_nothing_left(sandbox)


def test_thousands_of_tiny_entries_are_each_refused_without_reopening_the_archive(
    api, collection, sandbox, monkeypatch
):
    import library.import_sources as sources

    tiny = zip_bytes([(f"f{i:04d}.dcm", b"") for i in range(2000)], compression=zipfile.ZIP_STORED)
    opened = []
    real = zipfile.ZipFile

    class CountingZipFile(real):
        def __init__(self, *args, **kwargs):
            opened.append(args[0])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(sources.zipfile, "ZipFile", CountingZipFile)
    body = refused(api_import(api, collection, {"tiny.zip": tiny}), sandbox)
    assert len(body["rejected"]) == 2000
    assert {entry["code"] for entry in body["rejected"]} == {"not_dicom"}
    assert len(opened) == 2  # once to list the members, once to read them all
    assert_nothing_left(sandbox)


def test_a_masks_archive_that_escapes_its_folder_or_explodes_is_refused(api, collection, sandbox):
    labels = {"labels.csv": b"case,label,mask\nscan,Mass,m.png\n"}
    for masks, fragment in (
        (zip_bytes([("../../m.png", _png())]), "unsafe member path"),
        (zip_bytes([("m.png", b"\x00" * 20_000_000)]), "compression ratio"),
        (_patched(6, 1), "encrypted"),
    ):
        body = refused(
            api_import(api, collection, {"scan.dcm": ct_file()}, labels=labels, masks={"masks.zip": masks}),
            sandbox,
        )
        assert any(p.startswith("masks.zip") and fragment in p for p in body["problems"]), body
        assert_nothing_left(sandbox)


def test_a_mask_npy_declaring_a_huge_array_is_refused_before_numpy_allocates_it(
    api, collection, sandbox
):
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((6, 5), bool))
    forged = buffer.getvalue().replace(b"(6, 5)", b"(200000, 200000)")
    labels = {"labels.csv": b"case,label,mask\nscan,Mass,m.npy\n"}
    response = api_import(api, collection, {"scan.dcm": ct_file()}, labels=labels, masks={"m.npy": forged})
    body = refused(response, sandbox)
    code, reason = rejections(body)["scan.dcm"]
    assert code == "bad_mask" and "declares shape (200000, 200000)" in reason
    assert_nothing_left(sandbox)


def test_a_labels_mask_path_cannot_reach_files_outside_the_upload(api, collection, sandbox, tmp_path):
    outside = tmp_path / "secret.png"
    Image.fromarray(np.full((6, 5), 255, np.uint8)).save(outside)
    for ref in (str(outside), "../../../" + str(outside).lstrip("/"), "../../files/0000/scan.dcm"):
        labels = {"labels.csv": f"case,label,mask\nscan,Mass,{ref}\n".encode()}
        body = refused(api_import(api, collection, {"scan.dcm": ct_file()}, labels=labels), sandbox)
        assert body["problems"] == [f"labels.csv: row 2: mask file {ref!r} not found"]
        assert_nothing_left(sandbox)
