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
"""

from __future__ import annotations

import html
import io
import json
import struct
import tempfile
import zipfile
import zlib
from functools import cache
from pathlib import Path

import numpy as np
import pydicom
import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from PIL import Image
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    RLELossless,
)
from rest_framework.test import APIClient

from core.models import AuditEntry
from library.imaging.errors import REJECTION_CODES
from library.models import Case, CaseLabel, Collection
from tests.library.dicom_factories import image_dataset, part10_bytes, raw_dataset_bytes

pytestmark = pytest.mark.django_db

# --------------------------------------------------------------------------- byte surgery

LONG_VRS = {b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN", b"UR", b"UC", b"OD", b"OL", b"OV", b"SV"}
ITEM = b"\xfe\xff\x00\xe0"
SEQUENCE_END = b"\xfe\xff\xdd\xe0"


def _tag(group: int, element: int) -> bytes:
    return struct.pack("<HH", group, element)


def _explicit_element(data: bytes, group: int, element: int) -> tuple[int, int, int]:
    """(start, header length, value length) of an explicit VR little endian element."""
    start = data.index(_tag(group, element))
    if data[start + 4 : start + 6] in LONG_VRS:
        return start, 12, struct.unpack_from("<I", data, start + 8)[0]
    return start, 8, struct.unpack_from("<H", data, start + 6)[0]


def set_value(data: bytes, group: int, element: int, value: bytes) -> bytes:
    """Replace an element's value bytes (and its length) without any validation."""
    start, head, length = _explicit_element(data, group, element)
    size = struct.pack("<I" if head == 12 else "<H", len(value))
    return data[: start + head - len(size)] + size + value + data[start + head + length :]


def set_length(data: bytes, group: int, element: int, length: int) -> bytes:
    """Forge an element's declared length, leaving its value bytes as they are."""
    start, head, _ = _explicit_element(data, group, element)
    size = struct.pack("<I" if head == 12 else "<H", length)
    return data[: start + head - len(size)] + size + data[start + head :]


def set_vr(data: bytes, group: int, element: int, vr: bytes) -> bytes:
    start = data.index(_tag(group, element))
    return data[: start + 4] + vr + data[start + 6 :]


def set_implicit_length(data: bytes, group: int, element: int, length: int) -> bytes:
    start = data.index(_tag(group, element))
    return data[: start + 4] + struct.pack("<I", length) + data[start + 8 :]


def set_transfer_syntax(data: bytes, uid: bytes) -> bytes:
    return set_value(data, 0x0002, 0x0010, uid + b"\x00" * (len(uid) % 2))


# --------------------------------------------------------------------------- valid seeds


def _fixed_uids(ds):
    """Seeds with the same bytes in every run, so that a fuzzer failure replays exactly."""
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.9.7.1"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.9.7.2"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.9.7.3"
    return ds


def ct_dataset(rows: int = 6, cols: int = 5, **attributes):
    pixels = (np.arange(rows * cols, dtype=np.uint16).reshape(rows, cols) * 37) % 4096
    return _fixed_uids(image_dataset(pixels, WindowCenter="60", WindowWidth="400", **attributes))


@cache
def ct_file() -> bytes:
    """A small valid CT image: explicit VR little endian, 6x5 16-bit pixels."""
    return part10_bytes(ct_dataset())


@cache
def implicit_file() -> bytes:
    """The same image without preamble, DICM prefix or file meta (implicit VR)."""
    return raw_dataset_bytes(ct_dataset(4, 4))


@cache
def rgb_file() -> bytes:
    rgb = np.random.default_rng(5).integers(0, 255, (4, 6, 3)).astype(np.uint8)
    return part10_bytes(_fixed_uids(image_dataset(rgb, photometric="RGB", modality="OT")))


def _grey8(size: int = 32) -> np.ndarray:
    return np.random.default_rng(7).integers(0, 255, (size, size)).astype(np.uint8)


def _compressed_dataset(codec: str):
    ds = _fixed_uids(image_dataset(_grey8(32 if codec != "j2k" else 64)))
    if codec == "rle":
        ds.compress(RLELossless)
    elif codec == "j2k":
        ds.compress(JPEG2000Lossless)
    else:
        buffer = io.BytesIO()
        Image.fromarray(_grey8()).save(buffer, "JPEG", quality=90)
        ds.PixelData = _encapsulated(buffer.getvalue())
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    return ds


@cache
def compressed_file(codec: str) -> bytes:
    return part10_bytes(_compressed_dataset(codec))


def _encapsulated(fragment: bytes, offsets: bytes = b"") -> bytes:
    """Basic offset table item + one fragment item (pydicom writes the sequence delimiter)."""
    fragment += b"\x00" * (len(fragment) % 2)
    return (
        ITEM + struct.pack("<I", len(offsets)) + offsets
        + ITEM + struct.pack("<I", len(fragment)) + fragment
    )


def _fragment(codec: str) -> bytes:
    data = _compressed_dataset(codec).PixelData
    offsets = struct.unpack_from("<I", data, 4)[0]
    start = 8 + offsets
    length = struct.unpack_from("<I", data, start + 4)[0]
    return data[start + 8 : start + 8 + length]


def _with_fragment(codec: str, fragment: bytes, offsets: bytes = b"") -> bytes:
    ds = _compressed_dataset(codec)
    ds.PixelData = _encapsulated(fragment, offsets)
    return part10_bytes(ds)


def _with(**attributes) -> bytes:
    ds = ct_dataset(4, 4)
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return part10_bytes(ds)


def _png(width: int = 4, height: int = 4) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((height, width), np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def _png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header (with a valid CRC) declares width x height pixels."""
    data = bytearray(_png())
    struct.pack_into(">II", data, 16, width, height)
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(_grey8(8)).save(buffer, "JPEG")
    return buffer.getvalue()


ELF_HEADER = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00\x01\x00\x00\x00"
PE_HEADER = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"This program cannot be run in DOS mode."

# --------------------------------------------------------------------------- the corpus

ANY_REJECTION = set(REJECTION_CODES)
PIXELS = {"invalid_pixel_data", "corrupt_dicom"}
UNDECODABLE = {"undecodable_transfer_syntax"}


def truncations() -> list[tuple[str, bytes, set[str]]]:
    """Every seed cut at many points: inside the preamble, the meta, each element, the pixels.

    An encapsulated file ends with a sequence delimiter whose 4-byte length is always zero;
    losing only those bytes leaves every element and the whole image intact, so those cuts
    are left out (pydicom reads such a file in full, and so may the import)."""
    out = []
    for seed_name, seed, intact_tail in (
        ("ct", ct_file(), 0),
        ("implicit", implicit_file(), 0),
        ("rle", compressed_file("rle"), 4),
        ("jpeg", compressed_file("jpeg"), 4),
    ):
        end = len(seed) - intact_tail
        step = max(1, len(seed) // 40)
        cuts = sorted({*range(0, end, step), 1, 127, 128, 131, 132, end - 1, end - 2})
        out += [(f"cut-{seed_name}-{cut:05d}.dcm", seed[:cut], ANY_REJECTION) for cut in cuts]
    return out


def invalid_vrs() -> list[tuple[str, bytes, set[str]]]:
    ct = ct_file()
    return [
        ("vr-zz-rows.dcm", set_vr(ct, 0x0028, 0x0010, b"ZZ"), ANY_REJECTION),
        ("vr-nul-rows.dcm", set_vr(ct, 0x0028, 0x0010, b"\x00\x00"), ANY_REJECTION),
        ("vr-sq-rows.dcm", set_vr(ct, 0x0028, 0x0010, b"SQ"), ANY_REJECTION),
        ("vr-sq-patient-name.dcm", set_vr(ct, 0x0010, 0x0010, b"SQ"), ANY_REJECTION),
        ("vr-sq-pixel-data.dcm", set_vr(ct, 0x7FE0, 0x0010, b"SQ"), ANY_REJECTION),
        ("vr-us-pixel-data.dcm", set_vr(ct, 0x7FE0, 0x0010, b"US"), ANY_REJECTION),
        ("meta-vr-ti.dcm", set_vr(set_value(ct, 0x0008, 0x0018, b""), 0x0002, 0x0003, b"TI"), {"corrupt_dicom"}),
        ("rows-three-bytes.dcm", set_value(ct, 0x0028, 0x0010, b"\x06\x00\x00"), ANY_REJECTION),
        ("rows-empty.dcm", set_value(ct, 0x0028, 0x0010, b""), ANY_REJECTION),
        ("frames-text.dcm", set_value(_with(NumberOfFrames="1"), 0x0028, 0x0008, b"abc "), PIXELS),
        ("frames-binary.dcm", set_value(_with(NumberOfFrames="1"), 0x0028, 0x0008, b"\xff\xfe\x00\x01"), PIXELS),
        ("study-uid-two-values.dcm", set_value(ct, 0x0020, 0x000D, b"1.2.3\\1.2.4 "), {"corrupt_dicom"}),
        ("modality-long.dcm", set_value(ct, 0x0008, 0x0060, b"X" * 40), {"corrupt_dicom"}),
        ("modality-nul.dcm", set_value(ct, 0x0008, 0x0060, b"C\x00T\x01"), {"corrupt_dicom"}),
        ("sop-class-garbage.dcm", set_value(set_value(ct, 0x0002, 0x0002, b"1.2.x\x00"), 0x0008, 0x0016, b"\xff\xfe<script>"), {"corrupt_dicom"}),
        ("sop-class-huge.dcm", set_value(set_value(ct, 0x0002, 0x0002, b"1." * 40), 0x0008, 0x0016, b"1." * 40), {"corrupt_dicom"}),
        ("slope-nan.dcm", set_value(_with(RescaleSlope="1", RescaleIntercept="0"), 0x0028, 0x1053, b"NaN "), PIXELS),
        ("slope-infinite.dcm", set_value(_with(RescaleSlope="1", RescaleIntercept="0"), 0x0028, 0x1052, b"1e999 "), PIXELS),
    ]


def huge_lengths() -> list[tuple[str, bytes, set[str]]]:
    ct = ct_file()
    with_url = ct_dataset()
    with_url.RetrieveURL = "http://example.org/x"
    url = part10_bytes(with_url)
    implicit = implicit_file()
    return [
        ("pixel-data-fffffff0.dcm", set_length(ct, 0x7FE0, 0x0010, 0xFFFFFFF0), PIXELS),
        ("pixel-data-undefined.dcm", set_length(ct, 0x7FE0, 0x0010, 0xFFFFFFFF), ANY_REJECTION),
        ("pixel-data-one-short.dcm", set_length(ct, 0x7FE0, 0x0010, 59), PIXELS),
        ("url-fffffff0.dcm", set_length(url, 0x0008, 0x1190, 0xFFFFFFF0), {"corrupt_dicom"}),
        ("patient-name-ffff.dcm", set_length(ct, 0x0010, 0x0010, 0xFFFF), {"corrupt_dicom"}),
        ("meta-uid-ffff.dcm", set_length(ct, 0x0002, 0x0003, 0xFFFF), ANY_REJECTION),
        ("implicit-rows-fffffff0.dcm", set_implicit_length(implicit, 0x0028, 0x0010, 0xFFFFFFF0), ANY_REJECTION),
        ("implicit-rows-undefined.dcm", set_implicit_length(implicit, 0x0028, 0x0010, 0xFFFFFFFF), ANY_REJECTION),
        ("implicit-name-fffffff0.dcm", set_implicit_length(implicit, 0x0010, 0x0010, 0xFFFFFFF0), ANY_REJECTION),
        ("implicit-pixels-fffffff0.dcm", set_implicit_length(implicit, 0x7FE0, 0x0010, 0xFFFFFFF0), ANY_REJECTION),
        ("implicit-pixels-undefined.dcm", set_implicit_length(implicit, 0x7FE0, 0x0010, 0xFFFFFFFF), ANY_REJECTION),
    ]


def not_dicom() -> list[tuple[str, bytes, set[str]]]:
    rng = np.random.default_rng(11)
    return [
        ("picture.dcm", _png(), {"not_dicom"}),
        ("photo.dcm", _jpeg(), {"not_dicom"}),
        ("notes.dcm", b"Patient: Jane Doe\nFinding: none\n" * 20, {"not_dicom"}),
        ("empty.dcm", b"", {"not_dicom"}),
        ("one-byte.dcm", b"\x00", {"not_dicom"}),
        ("random-1.dcm", rng.bytes(512), {"not_dicom"}),
        ("random-2.dcm", rng.bytes(4096), {"not_dicom"}),
        ("random-after-prefix.dcm", b"\x00" * 128 + b"DICM" + rng.bytes(600), ANY_REJECTION),
        ("prefix-only.dcm", b"\x00" * 128 + b"DICM", {"not_dicom"}),
        ("program.dcm", ELF_HEADER + rng.bytes(2000), {"not_dicom"}),
        ("setup.dcm", PE_HEADER + rng.bytes(2000), {"not_dicom"}),
        ("report.dcm", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", {"not_dicom"}),
        ("page.dcm", b"<html><script>alert(1)</script></html>", {"not_dicom"}),
        ("archive.dcm", zlib.compress(b"x" * 10_000), {"not_dicom"}),
        ("fake-png.png", b"\x89PNG\r\n\x1a\n" + rng.bytes(64), {"unreadable_image"}),
        ("fake-jpeg.jpg", rng.bytes(300), {"unreadable_image"}),
    ]


def huge_dimensions(max_pixels: int) -> list[tuple[str, bytes, set[str]]]:
    side = int(max_pixels**0.5) + 1
    return [
        ("rows-columns-65535.dcm", _with(Rows=65535, Columns=65535), {"too_large"}),
        ("just-over-the-limit.dcm", _with(Rows=side, Columns=side), {"too_large"}),
        ("frames-99999999.dcm", _with(NumberOfFrames="99999999"), {"too_large"}),
        ("frames-over-the-limit.dcm", _with(Rows=1024, Columns=1024, NumberOfFrames=str(max_pixels // 2**20 + 1)), {"too_large"}),
        ("bits-64-wide.dcm", _with(Rows=20000, Columns=20000, BitsAllocated=64, BitsStored=64), {"too_large"}),
        ("rows-zero.dcm", _with(Rows=0), PIXELS),
        ("frames-negative.dcm", _with(NumberOfFrames="-3"), PIXELS),
        ("samples-65535.dcm", _with(SamplesPerPixel=65535), PIXELS),
        ("bits-stored-zero.dcm", _with(BitsStored=0), PIXELS),
        ("bits-allocated-12.dcm", _with(BitsAllocated=12, BitsStored=12), PIXELS),
        ("pixel-representation-7.dcm", _with(PixelRepresentation=7), PIXELS),
        ("huge.png", _png_declaring(60000, 60000), {"too_large"}),
    ]


def pixel_lengths() -> list[tuple[str, bytes, set[str]]]:
    expected = 4 * 4 * 2
    return [
        ("pixels-empty.dcm", _with(PixelData=b""), PIXELS),
        ("pixels-one-byte.dcm", _with(PixelData=b"\x01\x00"), PIXELS),
        ("pixels-half.dcm", _with(PixelData=b"\x01" * (expected // 2)), PIXELS),
        ("pixels-two-short.dcm", _with(PixelData=b"\x01" * (expected - 2)), PIXELS),
        ("pixels-doubled.dcm", _with(PixelData=b"\x01" * expected * 2), PIXELS),
        ("pixels-with-payload.dcm", _with(PixelData=b"\x01" * expected + ELF_HEADER * 4000), PIXELS),
        ("frames-claimed-3.dcm", _with(NumberOfFrames="3"), PIXELS),
        ("bits-32-claimed.dcm", _with(BitsAllocated=32, BitsStored=32), PIXELS),
    ]


def bad_transfer_syntaxes() -> list[tuple[str, bytes, set[str]]]:
    ct = ct_file()
    return [
        ("ts-unknown.dcm", set_transfer_syntax(ct, b"1.2.3.4.5"), UNDECODABLE),
        ("ts-garbage.dcm", set_transfer_syntax(ct, b"not a uid!!"), UNDECODABLE),
        ("ts-sop-class.dcm", set_transfer_syntax(ct, b"1.2.840.10008.5.1.4.1.1.2"), UNDECODABLE),
        ("ts-too-long.dcm", set_transfer_syntax(ct, b"1." * 40), UNDECODABLE),
        ("ts-jpeg-on-native.dcm", set_transfer_syntax(ct, JPEGBaseline8Bit.encode()), UNDECODABLE),
        ("ts-rle-on-native.dcm", set_transfer_syntax(ct, RLELossless.encode()), UNDECODABLE),
        ("ts-mpeg2.dcm", set_transfer_syntax(ct, b"1.2.840.10008.1.2.4.100"), UNDECODABLE),
        ("ts-deflate-on-garbage.dcm", set_transfer_syntax(ct, b"1.2.840.10008.1.2.1.99")[:-80] + b"\x13\x37" * 40, ANY_REJECTION),
    ]


def corrupt_compressed() -> list[tuple[str, bytes, set[str]]]:
    out = []
    rng = np.random.default_rng(13)
    for codec in ("rle", "jpeg", "j2k"):
        fragment = _fragment(codec)
        good = compressed_file(codec)
        first_item = good.index(ITEM)
        out += [
            (f"{codec}-half-fragment.dcm", _with_fragment(codec, fragment[: len(fragment) // 2]), UNDECODABLE),
            (f"{codec}-fragment-head.dcm", _with_fragment(codec, fragment[:16]), UNDECODABLE),
            (f"{codec}-fragment-zeros.dcm", _with_fragment(codec, bytes(len(fragment))), UNDECODABLE),
            (f"{codec}-fragment-ff.dcm", _with_fragment(codec, b"\xff" * len(fragment)), UNDECODABLE),
            (f"{codec}-fragment-random.dcm", _with_fragment(codec, rng.bytes(len(fragment))), UNDECODABLE),
            (f"{codec}-fragment-empty.dcm", _with_fragment(codec, b""), UNDECODABLE),
            (f"{codec}-offset-table-far.dcm", _with_fragment(codec, fragment, struct.pack("<I", 0x7FFFFFF0)), UNDECODABLE),
            (f"{codec}-item-tag.dcm", good[:first_item] + b"\xfe\xff\x00\xe1" + good[first_item + 4 :], UNDECODABLE),
            (f"{codec}-item-length.dcm", good[: first_item + 4] + struct.pack("<I", 0xFFFFFFF0) + good[first_item + 8 :], UNDECODABLE),
            (f"{codec}-no-items.dcm", good[:first_item] + SEQUENCE_END + b"\x00" * 4, UNDECODABLE),
            (f"{codec}-no-delimiter.dcm", good[: good.rindex(SEQUENCE_END)], ANY_REJECTION),
        ]
    jpeg, j2k = _fragment("jpeg"), _fragment("j2k")
    sof, siz = jpeg.index(b"\xff\xc0"), j2k.index(b"\xff\x51")
    out += [  # codestreams declaring far more pixels than the header: never decoded
        ("jpeg-frame-60000.dcm", _with_fragment("jpeg", jpeg[: sof + 5] + struct.pack(">HH", 60000, 60000) + jpeg[sof + 9 :]), PIXELS),
        ("j2k-frame-60000.dcm", _with_fragment("j2k", j2k[: siz + 6] + struct.pack(">II", 60000, 60000) + j2k[siz + 14 :]), PIXELS),
    ]
    fragment = _fragment("rle")
    out += [
        ("rle-header-15-segments.dcm", _with_fragment("rle", struct.pack("<I", 15) + fragment[4:]), UNDECODABLE),
        ("rle-header-0-segments.dcm", _with_fragment("rle", struct.pack("<I", 0) + fragment[4:]), UNDECODABLE),
        ("rle-header-offset.dcm", _with_fragment("rle", fragment[:4] + struct.pack("<I", 0xFFFFFFF0) + fragment[8:]), UNDECODABLE),
    ]
    return out


CATEGORIES = {
    "invalid value representations": invalid_vrs,
    "huge declared lengths": huge_lengths,
    "non-DICOM content": not_dicom,
    "pixel data length mismatches": pixel_lengths,
    "bad transfer syntaxes": bad_transfer_syntaxes,
    "corrupt compressed pixel data": corrupt_compressed,
}


def hostile_corpus(max_pixels: int) -> list[tuple[str, bytes, set[str]]]:
    files = truncations() + huge_dimensions(max_pixels)
    for build in CATEGORIES.values():
        files += build()
    return files


def zip_bytes(entries, compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def _central_entry(data: bytes) -> int:
    return data.rindex(b"PK\x01\x02")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """The personas are created with passwords; a fast hasher keeps 40 tests from hashing 40 times."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def sandbox(tmp_path, settings, monkeypatch) -> Path:
    """Temporary upload folders and spooled uploads all go here, so leftovers are visible."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    settings.FILE_UPLOAD_TEMP_DIR = str(folder)
    return folder


@pytest.fixture
def collection(db) -> Collection:
    return Collection.objects.create(name="hostile")


@pytest.fixture
def api(coordinator) -> APIClient:
    client = APIClient()
    client.force_authenticate(coordinator)
    return client


@pytest.fixture
def page(client, coordinator):
    client.force_login(coordinator)
    return client


def _uploads(files: dict[str, bytes] | list[tuple[str, bytes]]) -> list[io.BytesIO]:
    out = []
    for name, data in files.items() if isinstance(files, dict) else files:
        handle = io.BytesIO(data)
        handle.name = name
        out.append(handle)
    return out


def api_import(api, collection, files, **extra):
    payload = {"files": _uploads(files)}
    for field, uploads in extra.items():
        payload[field] = _uploads(uploads) if field == "masks" else _uploads(uploads)[0]
    return api.post(f"/api/v1/collections/{collection.pk}/import/", payload, format="multipart")


def page_import(page, collection, files, **extra):
    payload = {"files": _uploads(files)}
    for field, uploads in extra.items():
        payload[field] = _uploads(uploads) if field == "masks" else _uploads(uploads)[0]
    return page.post(f"/library/collections/{collection.pk}/import/", payload)


def refused(response, sandbox: Path) -> dict:
    """A 400 whose body never names a temporary path."""
    assert response.status_code == 400, (response.status_code, response.content[:800])
    body = response.json()
    text = json.dumps(body)
    assert str(sandbox) not in text and "xrs-upload" not in text, text[:800]
    return body


def rejections(body: dict) -> dict[str, tuple[str, str]]:
    return {entry["file"]: (entry["code"], entry["reason"]) for entry in body["rejected"]}


def page_lists(response, lines: list[str], sandbox: Path) -> None:
    """The form page (200 or 400) shows every line and no temporary path."""
    assert response.status_code in (200, 400), response.status_code
    text = html.unescape(response.content.decode())
    assert str(sandbox) not in text and "xrs-upload" not in text
    missing = [line for line in lines if line not in text]
    assert not missing, missing[:5]


def assert_nothing_left(sandbox: Path) -> None:
    assert not Case.objects.exists()
    assert not CaseLabel.objects.exists()
    assert not AuditEntry.objects.filter(action="case.import").exists()
    media = Path(default_storage.location)
    assert [p for p in media.rglob("*") if p.is_file()] == []
    assert list(sandbox.iterdir()) == []


def assert_each_file_refused(body: dict, corpus) -> None:
    by_name = rejections(body)
    assert body["imported"] == 0
    assert set(by_name) == {name for name, _, _ in corpus}
    for name, _, codes in corpus:
        code, reason = by_name[name]
        assert code in codes, (name, code, reason)
        assert reason.strip() and "\n" not in reason, (name, reason)


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


# --------------------------------------------------------------------------- mutation fuzzing

SEEDS = {
    "ct": ct_file,
    "implicit": implicit_file,
    "rgb": rgb_file,
    "rle": lambda: compressed_file("rle"),
    "jpeg": lambda: compressed_file("jpeg"),
}

_mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(1, 255)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 32)),
    st.tuples(
        st.just("word"),
        st.integers(0, 10**6),
        st.sampled_from([0, 1, 0x7FFF, 0x8000, 0xFFFF, 0xFFFFFFF0, 0xFFFFFFFF]),
    ),
)


def mutate(data: bytes, mutations) -> bytes:
    out = bytearray(data)
    for kind, position, argument in mutations:
        at = position % (len(out) + 1)
        if kind == "flip" and out:
            out[at % len(out)] ^= argument
        elif kind == "insert":
            out[at:at] = argument
        elif kind == "delete":
            del out[at : at + argument]
        elif kind == "word":
            out[at : at + 4] = struct.pack("<I", argument)
    return bytes(out)


def _clear_imported() -> None:
    for case in Case.objects.all():
        for field in ("source_file", "pixels_file", "pixels_encoded_file", "display_file", "thumbnail_file"):
            if getattr(case, field).name:  # a colour case has no encoded pixels
                default_storage.delete(getattr(case, field).name)
    Case.objects.all().delete()


FUZZ_EXAMPLES = 500


def test_mutated_dicom_files_are_imported_or_refused_but_never_crash_the_import(
    api, collection, sandbox
):
    outcomes = {"imported": 0, "refused": 0}

    @hypothesis_settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        seed=st.sampled_from(sorted(SEEDS)), mutations=st.lists(_mutation, min_size=1, max_size=6)
    )
    def one_request(seed, mutations):
        data = mutate(SEEDS[seed](), mutations)
        response = api_import(api, collection, {"mutant.dcm": data})
        assert response.status_code in (201, 400), (response.status_code, response.content[:500])
        if response.status_code == 400:
            outcomes["refused"] += 1
            ((name, (code, reason)),) = rejections(response.json()).items()
            assert name == "mutant.dcm" and reason.strip() and "\n" not in reason
            assert code in REJECTION_CODES
            assert not Case.objects.exists()
        else:
            outcomes["imported"] += 1
            case = Case.objects.get()
            with default_storage.open(case.source_file.name, "rb") as handle:
                stored = handle.read()
            assert stored[:128] == b"\x00" * 128 and stored[128:132] == b"DICM"
            assert api.get(f"/api/v1/cases/{case.pk}/").status_code == 200
            _clear_imported()
        assert list(sandbox.iterdir()) == []

    one_request()
    print(f"mutation fuzzer: {outcomes}")
    assert outcomes["imported"] + outcomes["refused"] >= FUZZ_EXAMPLES * 0.9
    assert outcomes["imported"] > 0 and outcomes["refused"] > 0
    assert not Case.objects.exists()
    assert [p for p in Path(default_storage.location).rglob("*") if p.is_file()] == []
