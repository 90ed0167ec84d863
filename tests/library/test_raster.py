"""read_raster / raster_to_png_bytes / raster_display01 on PNG and JPEG files built in the test."""

from __future__ import annotations

import struct
import zlib
from io import BytesIO

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from library.imaging.display import to_model_input, to_uint8
from library.imaging.errors import ImageRejected
from library.imaging.raster import raster_display01, raster_to_png_bytes, read_raster

LIMITS = {"max_bytes": 10_000_000, "max_pixels": 10_000_000}


def encode(image: Image.Image, fmt: str = "PNG", **params: object) -> bytes:
    buffer = BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def png_with_declared_size(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height`` (valid CRC) but holds 1x1 pixel data."""
    data = bytearray(encode(Image.new("L", (1, 1))))
    ihdr_start = 8 + 8  # signature, then length + type of the first chunk
    data[ihdr_start : ihdr_start + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[12 : ihdr_start + 13]))
    data[ihdr_start + 13 : ihdr_start + 17] = struct.pack(">I", crc)
    return bytes(data)


def test_16_bit_grey_png_keeps_every_value():
    values = np.array([[0, 1, 255], [256, 40000, 65535]], np.uint16)
    image = read_raster(encode(Image.fromarray(values)), **LIMITS)
    assert image.format == "PNG" and image.bits == 16 and not image.is_color
    assert image.values.dtype == np.float32
    np.testing.assert_array_equal(image.values, values.astype(np.float32))


def test_8_bit_grey_png_reads_as_float_and_displays_divided_by_255():
    values = np.array([[0, 51], [204, 255]], np.uint8)
    image = read_raster(encode(Image.fromarray(values)), **LIMITS)
    assert image.bits == 8 and not image.is_color
    np.testing.assert_array_equal(image.values, values)
    np.testing.assert_allclose(raster_display01(image), [[0, 0.2], [0.8, 1.0]], rtol=1e-6)


def test_16_bit_display_is_min_max_scaled():
    values = np.array([[1000, 2000], [3000, 5000]], np.uint16)
    image = read_raster(encode(Image.fromarray(values)), **LIMITS)
    np.testing.assert_allclose(raster_display01(image), [[0, 0.25], [0.5, 1.0]], rtol=1e-6)


def test_colour_png_reads_as_uint8_rgb_and_drops_alpha():
    rgba = np.array([[[255, 0, 0, 10], [0, 128, 255, 255]]], np.uint8)
    image = read_raster(encode(Image.fromarray(rgba)), **LIMITS)
    assert image.is_color and image.values.dtype == np.uint8 and image.values.shape == (1, 2, 3)
    np.testing.assert_array_equal(image.values, rgba[..., :3])


def test_rgb_with_identical_channels_is_treated_as_grey():
    grey = np.array([[10, 20], [30, 40]], np.uint8)
    image = read_raster(encode(Image.fromarray(np.stack([grey] * 3, axis=-1))), **LIMITS)
    assert not image.is_color and image.values.shape == (2, 2)
    np.testing.assert_array_equal(image.values, grey)


def test_palette_png_is_expanded_to_rgb():
    palette_image = Image.new("P", (2, 1))
    palette_image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    palette_image.putpixel((1, 0), 1)
    image = read_raster(encode(palette_image), **LIMITS)
    np.testing.assert_array_equal(image.values, [[[255, 0, 0], [0, 0, 255]]])


def test_jpeg_reads_as_colour_with_its_format():
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[:, :8] = [200, 30, 30]
    rgb[:, 8:] = [30, 30, 200]
    image = read_raster(encode(Image.fromarray(rgb), "JPEG", quality=95), **LIMITS)
    assert image.format == "JPEG" and image.is_color and image.bits == 8
    assert np.abs(image.values.astype(int) - rgb.astype(int)).mean() < 5


@pytest.mark.parametrize(
    "data",
    [
        b"not an image at all" * 10,
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,
        encode(Image.new("RGB", (4, 4)), "GIF"),
        encode(Image.new("RGB", (4, 4)), "BMP"),
        b"",
    ],
    ids=["text", "broken-png", "gif", "bmp", "empty"],
)
def test_non_png_or_jpeg_content_is_unreadable(data):
    with pytest.raises(ImageRejected) as info:
        read_raster(data, **LIMITS)
    assert info.value.code == "unreadable_image"


def test_truncated_png_is_unreadable():
    data = encode(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8)))
    with pytest.raises(ImageRejected) as info:
        read_raster(data[: len(data) // 2], **LIMITS)
    assert info.value.code == "unreadable_image"


def test_pixel_count_over_the_limit_is_rejected_from_the_header_before_decoding():
    # the data holds one pixel: decoding would fail, so too_large proves the header check
    data = png_with_declared_size(5000, 4000)
    with pytest.raises(ImageRejected) as info:
        read_raster(data, max_bytes=10_000, max_pixels=19_999_999)
    assert info.value.code == "too_large" and "20,000,000" in info.value.reason


def test_pillow_decompression_bomb_is_reported_as_too_large():
    # far past Pillow's own bomb limit (2 x 89.5 M pixels) while our own limit is generous
    data = png_with_declared_size(100_000, 100_000)
    with pytest.raises(ImageRejected) as info:
        read_raster(data, max_bytes=10_000, max_pixels=10**12)
    assert info.value.code == "too_large"


def test_file_over_max_bytes_is_rejected_before_parsing(tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(b"garbage" * 100)
    with pytest.raises(ImageRejected) as info:
        read_raster(path, max_bytes=699, max_pixels=10)
    assert info.value.code == "too_large"


def test_re_encoded_png_carries_pixels_but_no_metadata():
    info = PngImagePlugin.PngInfo()
    info.add_text("Patient", "Doe^Jane 1970-01-01")
    info.add_itxt("Comment", "MRN 1234567")
    values = np.array([[0, 300], [65535, 12345]], np.uint16)
    source = encode(Image.fromarray(values), pnginfo=info)
    assert b"Doe^Jane" in source
    image = read_raster(source, **LIMITS)
    clean = raster_to_png_bytes(image.values, image.bits)
    assert b"Doe^Jane" not in clean and b"1234567" not in clean
    for chunk in (b"tEXt", b"iTXt", b"zTXt", b"eXIf", b"tIME", b"iCCP"):
        assert chunk not in clean
    again = read_raster(clean, **LIMITS)
    assert again.bits == 16
    np.testing.assert_array_equal(again.values, values)


def test_jpeg_exif_is_not_carried_into_the_png():
    exif = Image.Exif()
    exif[0x010E] = "Patient Doe^Jane"  # ImageDescription
    rgb = np.full((8, 8, 3), [10, 120, 200], np.uint8)
    source = encode(Image.fromarray(rgb), "JPEG", exif=exif.tobytes())
    assert b"Doe^Jane" in source
    image = read_raster(source, **LIMITS)
    clean = raster_to_png_bytes(image.values, image.bits)
    assert b"Doe^Jane" not in clean and b"Exif" not in clean
    np.testing.assert_array_equal(read_raster(clean, **LIMITS).values, image.values)


def test_8_bit_grey_round_trips_through_png():
    values = np.array([[0, 17], [128, 255]], np.float32)
    again = read_raster(raster_to_png_bytes(values, 8), **LIMITS)
    assert again.bits == 8
    np.testing.assert_array_equal(again.values, values)


def test_unsupported_png_shape_is_a_value_error():
    with pytest.raises(ValueError, match="cannot encode"):
        raster_to_png_bytes(np.zeros((2, 2)), 12)


def test_raster_display_feeds_the_same_display_and_model_steps():
    values = np.array([[0, 65535], [32768, 0]], np.uint16)
    image = read_raster(encode(Image.fromarray(values)), **LIMITS)
    d01 = raster_display01(image)
    np.testing.assert_array_equal(to_uint8(d01), [[0, 255], [128, 0]])
    out = to_model_input(d01, size=(2, 2), channels=3, mean=[0.5], std=[0.5])
    np.testing.assert_allclose(out[2], (d01 - 0.5) / 0.5, rtol=1e-6)


def test_a_truncated_png_is_rejected_even_after_a_library_relaxed_pillow(monkeypatch):
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # as importing WeasyPrint does
    data = encode(Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64), np.uint8)))
    with pytest.raises(ImageRejected) as info:
        read_raster(data[: len(data) // 2], **LIMITS)
    assert info.value.code == "unreadable_image"

