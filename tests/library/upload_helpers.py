"""Helpers and fixtures shared by the hostile-upload tests (test_hostile_dicom_uploads.py,
test_hostile_archive_uploads.py, test_hostile_upload_fuzz.py): byte surgery, valid seeds, the
hostile corpus, and the import fixtures.
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
import pytest
from django.core.files.storage import default_storage
from PIL import Image
from pydicom.uid import (
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    RLELossless,
)
from rest_framework.test import APIClient

from core.models import AuditEntry
from library.imaging.errors import REJECTION_CODES
from library.models import Case, CaseLabel, Collection
from tests.library.dicom_factories import image_dataset, part10_bytes, raw_dataset_bytes

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
