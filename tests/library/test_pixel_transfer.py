"""library/imaging/pixel_transfer.py: exact 16-bit + rescale encoding of the viewer's pixels."""

from __future__ import annotations

import io
import json
import struct
import zlib

import numpy as np
import pytest

from demo.anatomy import draw_chest
from library.imaging import pixel_transfer as pt
from library.imaging.dicom_read import read_dicom
from tests.library.dicom_factories import image_dataset, part10_bytes


def bits(values: np.ndarray) -> np.ndarray:
    """float32 values as their bit patterns: equality here is bit-for-bit."""
    return np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)


def chest_stored(rows=96, columns=80, seed=3) -> np.ndarray:
    image = draw_chest(np.random.default_rng(seed), rows, columns, 1)
    return np.clip(np.rint(300 + image.brightness * 3500), 0, 4095).astype(np.uint16)


def modality(stored: np.ndarray, slope: float, intercept: float) -> np.ndarray:
    """What pydicom's Modality LUT and the import make of stored values: float32."""
    return (stored.astype(np.float64) * slope + intercept).astype(np.float32)


RESCALES = [
    (1.0, 0.0),
    (1.0, -1024.0),  # CT-like
    (0.5, -100.0),
    (0.5, 0.0),
    (2.0, 0.0),
    (1.0, 30000.0),  # integers outside uint16/int16: intercept moves to the minimum
    (0.25, 1e6),
    (0.1, -7.3),  # slopes and intercepts that are not binary fractions
    (1.2345, -20.5),
    (0.000976562, 0.0),
    (-1.0, 0.0),
]


@pytest.mark.parametrize(("slope", "intercept"), RESCALES)
def test_integer_valued_images_decode_to_the_identical_float32_values(slope, intercept):
    values = modality(chest_stored(), slope, intercept)
    encoded = pt.encode(values)
    assert encoded is not None
    assert np.array_equal(bits(pt.decode(encoded)), bits(values))
    header, _ = pt.read_header(encoded)
    assert header["shape"] == [96, 80] and header["dtype"] in ("<u2", "<i2")
    stored, got_slope, got_intercept = pt.decode_stored(encoded)
    assert stored.dtype in (np.uint16, np.int16)
    assert (got_slope, got_intercept) == (header["slope"], header["intercept"])


@pytest.mark.parametrize(("slope", "intercept"), [(1.0, 0.0), (1.0, -1024.0), (0.5, -100.0)])
def test_common_rescales_keep_a_plain_lattice(slope, intercept):
    values = modality(chest_stored(), slope, intercept)
    rescale = pt.find_rescale(values)
    assert rescale.slope == slope and rescale.intercept in (0.0, intercept)


def test_full_16_bit_ranges_signed_and_unsigned_are_exact():
    rng = np.random.default_rng(0)
    for low, high in ((0, 65536), (-32768, 32768)):
        values = rng.integers(low, high, (64, 64)).astype(np.float32)
        values[0, :2] = (low, high - 1)
        assert np.array_equal(bits(pt.decode(pt.encode(values))), bits(values))
    wide_slope = modality(rng.integers(0, 65536, (64, 64)).astype(np.uint16), 2.0, -3.0)
    assert np.array_equal(bits(pt.decode(pt.encode(wide_slope))), bits(wide_slope))


@pytest.mark.parametrize(
    ("slope", "intercept", "signed"),
    [
        ("1", "-1024", True),
        ("1", "-1024", False),
        ("0.5", "-100", False),
        ("2", "0", False),
        ("0.1", "-7.3", False),
        ("1.2345", "-20.5", True),
        ("0.000976562", "0", False),
    ],
)
def test_dicom_files_through_pydicom_decode_exactly(slope, intercept, signed):
    stored = chest_stored(64, 48)
    stored = stored.astype(np.int16) - 1000 if signed else stored
    ds = image_dataset(
        stored, bits_stored=12 if not signed else 16, RescaleSlope=slope, RescaleIntercept=intercept
    )
    values = read_dicom(part10_bytes(ds), max_bytes=1 << 24, max_pixels=1 << 20).modality_values
    assert values.dtype == np.float32
    assert np.array_equal(bits(pt.decode(pt.encode(values))), bits(values))


def test_hints_are_tried_and_a_wrong_hint_is_harmless():
    values = modality(chest_stored(), 0.1, -7.3)
    hinted = pt.find_rescale(values, hints=[(0.1, -7.3)])
    assert (hinted.slope, hinted.intercept) == (0.1, -7.3)
    assert np.array_equal(bits(modality(hinted.stored, 0.1, -7.3)), bits(values))
    wrong = pt.find_rescale(values, hints=[(0.3, 1.0), (float("nan"), 0.0), (0.0, 0.0)])
    assert wrong is not None
    assert np.array_equal(bits(pt.decode(pt.pack(wrong))), bits(values))


def test_raster_and_small_integer_dtypes_are_encoded():
    rng = np.random.default_rng(1)
    for values in (
        rng.integers(0, 256, (20, 30)).astype(np.uint8),
        rng.integers(0, 65536, (20, 30)).astype(np.uint16).astype(np.float32),  # 16-bit PNG grey
        rng.integers(-500, 500, (20, 30)).astype(np.int32),
        np.full((5, 7), 7.25, dtype=np.float32),  # constant
    ):
        assert np.array_equal(bits(pt.decode(pt.encode(values))), bits(values.astype(np.float32)))


def test_negative_zero_decodes_as_zero():
    values = np.array([[-0.0, 1.0], [2.0, 3.0]], dtype=np.float32)
    decoded = pt.decode(pt.encode(values))
    assert np.array_equal(decoded, values)  # -0.0 == 0.0: the same value, the same window


@pytest.mark.parametrize(
    "values",
    [
        pytest.param(
            np.random.default_rng(2).random((40, 40)).astype(np.float32), id="real-floats"
        ),
        pytest.param(np.array([[1.0, np.nan], [2.0, 3.0]], np.float32), id="nan"),
        pytest.param(np.array([[1.0, np.inf], [2.0, 3.0]], np.float32), id="inf"),
        pytest.param(np.array([[0.0, 65536.0], [2.0, 3.0]], np.float32), id="17-bit-range"),
        pytest.param(np.array([[-70000, 70000], [0, 1]], np.int32), id="int32-wide"),
        pytest.param(np.array([[0.1, 0.2]], np.float64), id="float64-not-float32"),
        pytest.param(
            np.arange(70000, dtype=np.float32).reshape(280, 250) * np.float32(0.37) + 0.011,
            id="more-than-65536-distinct",
        ),
        pytest.param(np.zeros((8, 8, 3), np.uint8), id="colour"),
        pytest.param(np.zeros(8, np.float32), id="1-d"),
        pytest.param(np.zeros((0, 4), np.float32), id="empty"),
    ],
)
def test_values_without_an_exact_16_bit_form_fall_back(values):
    assert pt.encode(values) is None


def test_the_file_layout_is_the_documented_one():
    values = modality(chest_stored(), 1.0, -1024.0)
    encoded = pt.encode(values)
    assert encoded[:7] == b"\x93XRSPIX" and encoded[7] == 1 and pt.is_encoded(encoded)
    (length,) = struct.unpack_from("<I", encoded, 8)
    header, offset = pt.read_header(encoded)
    assert offset == 12 + length
    assert header["filter"] == "delta-shuffle" and header["codec"] == "deflate"
    assert header["size"] == 2 * values.size
    planes = np.frombuffer(zlib.decompress(encoded[offset:]), np.uint8).reshape(2, -1)
    words = np.cumsum(
        planes[0].astype(np.uint16) | (planes[1].astype(np.uint16) << 8), dtype=np.uint16
    )
    assert np.array_equal(words.view(np.int16).reshape(values.shape), values.astype(np.int16))


def test_demo_like_images_take_well_under_half_the_float32_bytes():
    values = modality(chest_stored(256, 240), 1.0, 0.0)
    buffer = io.BytesIO()
    np.save(buffer, values)
    assert len(pt.encode(values)) < 0.4 * len(buffer.getvalue())


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b"\x93NUMPY" + b[6:],
        lambda b: b[:7] + b"\x02" + b[8:],
        lambda b: b[:8] + struct.pack("<I", 10**6) + b[12:],
        lambda b: b[:12] + b"[" + b[13:],
        lambda b: b[:-20],
        lambda b: b[:-4] + b"\0\0\0\0",
        lambda b: b[:7],
    ],
    ids=["magic", "version", "header-length", "header-json", "truncated", "checksum", "short"],
)
def test_damaged_files_are_refused(mutate):
    encoded = pt.encode(modality(chest_stored(), 1.0, 0.0))
    with pytest.raises(pt.PixelFormatError):
        pt.decode(mutate(encoded))


def test_a_header_that_disagrees_with_its_body_is_refused():
    encoded = pt.encode(modality(chest_stored(), 1.0, 0.0))
    header, offset = pt.read_header(encoded)
    for change in (
        {"shape": [95, 80], "size": 2 * 95 * 80},
        {"dtype": "<f4"},
        {"slope": 0},
        {"filter": "none"},
        {"size": 1},
    ):
        bad = dict(header, **change)
        text = json.dumps(bad).encode()
        with pytest.raises(pt.PixelFormatError):
            pt.decode(encoded[:8] + struct.pack("<I", len(text)) + text + encoded[offset:])


def test_large_images_are_verified_block_by_block_up_to_the_last_value(monkeypatch):
    monkeypatch.setattr(pt, "_BLOCK", 1000)
    values = modality(chest_stored(), 0.5, -100.0)  # 7,680 values: 8 blocks
    assert np.array_equal(bits(pt.decode(pt.encode(values))), bits(values))
    values[-1, -1] += np.float32(0.0123)  # one value off any 16-bit lattice, in the last block
    assert pt.encode(values) is None
    wide = values.copy()
    wide[-1, -1] = 40000.0  # on the lattice, but the span no longer fits 16 bits
    assert pt.encode(wide) is None


def test_integers_far_from_zero_move_the_intercept():
    values = (np.arange(600, dtype=np.float64).reshape(20, 30) + 3e9).astype(np.float32)
    rescale = pt.find_rescale(values)
    assert rescale.stored.dtype == np.uint16 and rescale.stored.min() == 0
    assert np.array_equal(bits(pt.decode(pt.pack(rescale))), bits(values))
