"""read_dicom: modality values, presets, frames, colour, and every rejection code."""

from __future__ import annotations

import os
from io import BytesIO

import numpy as np
import pytest
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.pixels import convert_color_space
from pydicom.sequence import Sequence
from pydicom.uid import MPEG2MPML, JPEGBaseline8Bit

from library.imaging.dicom_read import read_dicom
from library.imaging.errors import REJECTION_CODES, ImageRejected
from tests.library.dicom_factories import (
    ENHANCED_CT_IMAGE,
    RT_DOSE,
    RT_PLAN,
    SECONDARY_CAPTURE,
    SEGMENTATION,
    US_IMAGE,
    base_dataset,
    image_dataset,
    part10_bytes,
    raw_dataset_bytes,
)

LIMITS = {"max_bytes": 10_000_000, "max_pixels": 10_000_000}


def read(ds: Dataset, **limits: int):
    return read_dicom(part10_bytes(ds), **{**LIMITS, **limits})


def rejection(source, **limits: int) -> ImageRejected:
    with pytest.raises(ImageRejected) as info:
        read_dicom(source, **{**LIMITS, **limits})
    assert info.value.code in REJECTION_CODES
    assert "\n" not in info.value.reason
    return info.value


# --------------------------------------------------------------------------- modality LUT


def test_rescale_slope_and_intercept_give_float32_modality_values():
    stored = np.array([[0, 1, 2], [500, 1000, 2047]], dtype=np.int16)
    image = read(image_dataset(stored, RescaleSlope=2, RescaleIntercept=-1024))
    expected = np.array(
        [[0 * 2 - 1024, 1 * 2 - 1024, 2 * 2 - 1024], [500 * 2 - 1024, 1000 * 2 - 1024, 4094 - 1024]]
    )
    assert image.modality_values.dtype == np.float32
    np.testing.assert_array_equal(image.modality_values, expected)
    assert image.modality == "CT" and not image.is_color
    assert image.bits_stored == 16


def test_modality_lut_sequence_maps_stored_values_and_clamps_outside_the_table():
    stored = np.array([[9, 10, 11], [12, 13, 40]], dtype=np.uint16)
    lut = Dataset()
    lut.LUTDescriptor = [4, 10, 16]  # 4 entries, first stored value mapped = 10
    lut.ModalityLUTType = "HU"
    lut.LUTData = np.array([100, 200, 300, 400], "<u2").tobytes()
    image = read(image_dataset(stored, ModalityLUTSequence=Sequence([lut])))
    # 9 is below the first mapped value -> first entry; 13 and 40 beyond the end -> last entry
    np.testing.assert_array_equal(image.modality_values, [[100, 100, 200], [300, 400, 400]])


def test_image_without_rescale_keeps_stored_values():
    stored = np.array([[0, 7], [65535, 3]], dtype=np.uint16)
    image = read(image_dataset(stored, sop_class="1.2.840.10008.5.1.4.1.1.4", modality="MR"))
    np.testing.assert_array_equal(image.modality_values, stored.astype(np.float32))


# --------------------------------------------------------------------------- VOI metadata


def test_multi_valued_window_presets_are_each_listed_with_their_names():
    ds = image_dataset(
        np.zeros((2, 2), np.int16),
        WindowCenter=[40, 400, -600],
        WindowWidth=[80, 2000, 1500],
        WindowCenterWidthExplanation=["BRAIN", "BONE"],
    )
    presets = read(ds).voi_presets
    assert [(p.center, p.width, p.name, p.function) for p in presets] == [
        (40.0, 80.0, "BRAIN", "LINEAR"),
        (400.0, 2000.0, "BONE", "LINEAR"),
        (-600.0, 1500.0, "Preset 3", "LINEAR"),
    ]


def test_voi_lut_function_is_recorded_on_every_preset():
    ds = image_dataset(
        np.zeros((2, 2), np.int16), WindowCenter=50, WindowWidth=10, VOILUTFunction="SIGMOID"
    )
    assert [(p.center, p.width, p.function) for p in read(ds).voi_presets] == [
        (50.0, 10.0, "SIGMOID")
    ]


def test_window_with_zero_width_is_not_offered_as_a_preset():
    ds = image_dataset(np.zeros((2, 2), np.int16), WindowCenter=[40, 10], WindowWidth=[0, 20])
    assert [(p.center, p.width) for p in read(ds).voi_presets] == [(10.0, 20.0)]


def test_voi_lut_sequence_is_read_with_descriptor_and_data():
    item = Dataset()
    item.LUTDescriptor = [3, 100, 8]
    item.LUTData = np.array([0, 128, 255], "<u2").tobytes()
    item.LUTExplanation = "NORMAL"
    image = read(image_dataset(np.zeros((2, 2), np.uint16), VOILUTSequence=Sequence([item])))
    assert image.voi_lut is not None
    assert image.voi_lut.descriptor == (3, 100, 8)
    np.testing.assert_array_equal(image.voi_lut.data, [0, 128, 255])
    assert image.voi_lut.explanation == "NORMAL"
    assert image.voi_presets == []


# --------------------------------------------------------------------------- frames


@pytest.mark.parametrize(("frames", "middle"), [(5, 2), (4, 2), (2, 1)])
def test_multi_frame_takes_the_middle_frame(frames, middle):
    stack = np.stack([np.full((3, 4), i, np.uint16) for i in range(frames)])
    image = read(image_dataset(stack, frames=True))
    assert image.frame_index == middle
    assert image.number_of_frames == frames
    assert image.modality_values.shape == (3, 4)
    assert np.all(image.modality_values == middle)


def _enhanced_ct(per_frame_override: bool) -> Dataset:
    stack = np.stack([np.full((2, 2), 10 * (i + 1), np.int16) for i in range(3)])
    ds = image_dataset(stack, frames=True, sop_class=ENHANCED_CT_IMAGE)
    shared = Dataset()
    transform = Dataset()
    transform.RescaleSlope = 1
    transform.RescaleIntercept = 0
    transform.RescaleType = "HU"
    shared.PixelValueTransformationSequence = Sequence([transform])
    window = Dataset()
    window.WindowCenter = 0
    window.WindowWidth = 100
    shared.FrameVOILUTSequence = Sequence([window])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    frames = [Dataset() for _ in range(3)]
    if per_frame_override:
        own = Dataset()
        own.RescaleSlope = 2
        own.RescaleIntercept = -1000
        own.RescaleType = "HU"
        frames[1].PixelValueTransformationSequence = Sequence([own])
        own_window = Dataset()
        own_window.WindowCenter = [40, -600]
        own_window.WindowWidth = [400, 1500]
        own_window.WindowCenterWidthExplanation = ["MEDIASTINUM", "LUNG"]
        frames[1].FrameVOILUTSequence = Sequence([own_window])
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    return ds


def test_enhanced_multi_frame_uses_the_chosen_frames_rescale_and_window():
    image = read(_enhanced_ct(per_frame_override=True))
    assert image.frame_index == 1
    # frame 1 stores 20 everywhere: 20 * 2 - 1000
    assert np.all(image.modality_values == 20 * 2 - 1000)
    assert [(p.center, p.width, p.name) for p in image.voi_presets] == [
        (40.0, 400.0, "MEDIASTINUM"),
        (-600.0, 1500.0, "LUNG"),
    ]


def test_enhanced_multi_frame_falls_back_to_shared_functional_groups():
    image = read(_enhanced_ct(per_frame_override=False))
    assert np.all(image.modality_values == 20 * 1 + 0)
    assert [(p.center, p.width) for p in image.voi_presets] == [(0.0, 100.0)]


# --------------------------------------------------------------------------- colour


def test_rgb_image_reads_as_uint8_color():
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10
    image = read(image_dataset(rgb, photometric="RGB", sop_class=US_IMAGE, modality="US"))
    assert image.is_color and image.photometric == "RGB"
    assert image.modality_values.dtype == np.uint8
    np.testing.assert_array_equal(image.modality_values, rgb)
    assert image.voi_presets == []


def test_ybr_full_is_converted_to_rgb():
    rgb = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [128, 128, 128]]], np.uint8)
    ybr = convert_color_space(rgb, "RGB", "YBR_FULL")
    image = read(image_dataset(ybr, photometric="YBR_FULL", sop_class=SECONDARY_CAPTURE))
    assert image.photometric == "YBR_FULL" and image.is_color
    assert np.abs(image.modality_values.astype(int) - rgb.astype(int)).max() <= 2


def test_color_with_16_bits_stored_is_scaled_to_uint8():
    rgb16 = np.array([[[0, 65535, 257 * 100]]], np.uint16)
    image = read(image_dataset(rgb16, photometric="RGB", sop_class=SECONDARY_CAPTURE))
    # v * 255 / 65535 = v / 257
    np.testing.assert_array_equal(image.modality_values, [[[0, 255, 100]]])


def test_palette_color_is_expanded_through_the_lookup_tables():
    indices = np.array([[0, 1], [2, 3]], np.uint8)
    ds = image_dataset(indices, photometric="PALETTE COLOR", sop_class=US_IMAGE, modality="US")
    red = np.array([0, 65535, 0, 257 * 128], "<u2")
    green = np.array([0, 0, 65535, 257 * 128], "<u2")
    blue = np.array([0, 0, 0, 257 * 64], "<u2")
    for colour, data in (("Red", red), ("Green", green), ("Blue", blue)):
        setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [4, 0, 16])
        setattr(ds, f"{colour}PaletteColorLookupTableData", data.tobytes())
    image = read(ds)
    assert image.is_color and image.photometric == "PALETTE COLOR"
    # 16-bit entries scale by 255 / 65535 = 1 / 257
    expected = [[[0, 0, 0], [255, 0, 0]], [[0, 255, 0], [128, 128, 64]]]
    np.testing.assert_array_equal(image.modality_values, expected)


# --------------------------------------------------------------------------- sources


def test_reading_from_a_path_gives_the_same_image_and_leaves_the_file_untouched(tmp_path):
    data = part10_bytes(image_dataset(np.array([[1, 2], [3, 4]], np.uint16)))
    path = tmp_path / "image.dcm"
    path.write_bytes(data)
    before = os.stat(path).st_mtime_ns
    entries = sorted(p.name for p in tmp_path.iterdir())
    from_path = read_dicom(path, **LIMITS)
    from_str = read_dicom(str(path), **LIMITS)
    from_bytes = read_dicom(data, **LIMITS)
    np.testing.assert_array_equal(from_path.modality_values, from_bytes.modality_values)
    np.testing.assert_array_equal(from_str.modality_values, from_bytes.modality_values)
    assert path.read_bytes() == data and os.stat(path).st_mtime_ns == before
    assert sorted(p.name for p in tmp_path.iterdir()) == entries  # nothing written beside it


def test_dataset_without_preamble_is_accepted_when_it_has_sop_class_and_pixels():
    ds = image_dataset(np.array([[5, 6], [7, 8]], np.uint16))
    image = read_dicom(raw_dataset_bytes(ds), **LIMITS)
    np.testing.assert_array_equal(image.modality_values, [[5, 6], [7, 8]])


# --------------------------------------------------------------------------- rejections


def _png_bytes() -> bytes:
    buffer = BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x01\x02\x03" * 300,
        b"Patient report: this is plain text, not an image\n" * 20,
        _png_bytes(),
        b"",
    ],
    ids=["random-bytes", "text", "png-renamed-dcm", "empty"],
)
def test_non_dicom_content_is_rejected_as_not_dicom(data):
    assert rejection(data).code == "not_dicom"


def test_dataset_without_preamble_or_sop_class_is_not_dicom():
    ds = image_dataset(np.zeros((2, 2), np.uint16))
    del ds.SOPClassUID
    assert rejection(raw_dataset_bytes(ds)).code == "not_dicom"


def test_object_without_pixel_data_is_rejected_naming_its_sop_class():
    plan = base_dataset(RT_PLAN, "RTPLAN")
    error = rejection(part10_bytes(plan))
    assert error.code == "no_pixel_data"
    assert "RT Plan Storage" in error.reason


@pytest.mark.parametrize(
    ("sop_class", "name"), [(RT_DOSE, "RT Dose Storage"), (SEGMENTATION, "Segmentation Storage")]
)
def test_non_image_sop_class_with_pixel_data_is_rejected(sop_class, name):
    ds = image_dataset(np.zeros((2, 2), np.uint16), sop_class=sop_class, modality="RTDOSE")
    error = rejection(part10_bytes(ds))
    assert error.code == "non_image_sop_class"
    assert name in error.reason


def test_unknown_sop_class_with_image_pixels_is_accepted_as_an_image():
    ds = image_dataset(np.array([[1, 2]], np.uint16), sop_class="1.2.826.0.1.3680043.99.1.1")
    ds.Modality = "OT"
    image = read(ds)
    assert image.modality == "OT"
    np.testing.assert_array_equal(image.modality_values, [[1, 2]])


def _encapsulated(transfer_syntax: str, fragment: bytes) -> Dataset:
    ds = image_dataset(np.zeros((8, 8), np.uint8), sop_class=SECONDARY_CAPTURE)
    ds.PixelData = encapsulate([fragment])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    return ds


def test_transfer_syntax_without_any_decoder_is_rejected_by_name():
    error = rejection(part10_bytes(_encapsulated(MPEG2MPML, b"\x00\x00\x01\xb3" + b"\x00" * 60)))
    assert error.code == "undecodable_transfer_syntax"
    assert "MPEG2" in error.reason


def test_compressed_data_no_plugin_can_decode_is_rejected_by_transfer_syntax_name():
    error = rejection(part10_bytes(_encapsulated(JPEGBaseline8Bit, b"\xff\xd8not a jpeg\xff\xd9")))
    assert error.code == "undecodable_transfer_syntax"
    assert "JPEG Baseline" in error.reason


@pytest.mark.parametrize("photometric", ["YBR_PARTIAL_420", "HSV", "ARGB"])
def test_unsupported_photometric_interpretation_is_rejected(photometric):
    ds = image_dataset(np.zeros((2, 2, 3), np.uint8), photometric=photometric)
    error = rejection(part10_bytes(ds))
    assert error.code == "unsupported_photometric"
    assert photometric in error.reason


def test_truncated_native_pixel_data_is_invalid():
    ds = image_dataset(np.zeros((4, 4), np.uint16))
    ds.PixelData = ds.PixelData[:20]
    error = rejection(part10_bytes(ds))
    assert error.code == "invalid_pixel_data"
    assert "20" in error.reason and "32" in error.reason


def test_samples_per_pixel_that_contradict_the_photometric_are_invalid():
    ds = image_dataset(np.zeros((2, 2, 3), np.uint8), photometric="MONOCHROME2")
    assert rejection(part10_bytes(ds)).code == "invalid_pixel_data"


def test_file_over_max_bytes_is_rejected_before_parsing():
    # garbage would be not_dicom if it were parsed: too_large proves the size check came first
    error = rejection(b"\x00garbage" * 1000, max_bytes=7999)
    assert error.code == "too_large"
    assert "8,000" in error.reason


def test_path_over_max_bytes_is_rejected_before_reading(tmp_path):
    path = tmp_path / "big.dcm"
    path.write_bytes(b"x" * 5000)
    assert rejection(path, max_bytes=4999).code == "too_large"


def test_pixel_count_over_max_pixels_is_rejected_from_the_header_before_decoding():
    ds = image_dataset(np.zeros((4, 4), np.uint16))
    ds.Rows, ds.Columns = 5000, 5000  # the 32 bytes of pixel data could never decode as this
    error = rejection(part10_bytes(ds), max_pixels=24_999_999)
    assert error.code == "too_large"
    assert "25,000,000" in error.reason


def test_pixel_limit_counts_every_frame_and_sample():
    stack = np.zeros((10, 4, 4, 3), np.uint8)  # one frame is 48 values, all frames 480
    ds = image_dataset(stack, frames=True, photometric="RGB", sop_class=SECONDARY_CAPTURE)
    assert rejection(part10_bytes(ds), max_pixels=479).code == "too_large"
    assert read(ds, max_pixels=480).number_of_frames == 10


def test_unknown_rejection_code_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown rejection code"):
        ImageRejected("bad_code", "reason")


def test_dicom_header_with_a_broken_element_is_corrupt():
    data = part10_bytes(image_dataset(np.zeros((2, 2), np.uint16)))
    patient_name = data.index(b"\x10\x00\x10\x00")  # (0010,0010), explicit VR little endian
    broken = data[:patient_name] + b"\x10\x00\x10\x00ZZ\x04\x00abcd"
    error = rejection(broken)
    assert error.code == "corrupt_dicom"
    assert "ZZ" in error.reason


def test_image_without_sop_instance_uid_is_corrupt():
    ds = image_dataset(np.zeros((2, 2), np.uint16))
    del ds.SOPInstanceUID
    error = rejection(raw_dataset_bytes(ds))
    assert error.code == "corrupt_dicom"
    assert "SOP Instance UID" in error.reason
