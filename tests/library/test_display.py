"""The display pipeline against values computed by hand from the PS3.3 formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from library.imaging.dicom_read import DicomImage, VoiLut, VoiPreset, read_dicom
from library.imaging.display import (
    apply_voi,
    default_window,
    display01,
    to_display,
    to_model_input,
)
from tests.library.dicom_factories import (
    SECONDARY_CAPTURE,
    US_IMAGE,
    image_dataset,
    part10_bytes,
)

LIMITS = {"max_bytes": 10_000_000, "max_pixels": 10_000_000}


def read(ds: Dataset) -> DicomImage:
    return read_dicom(part10_bytes(ds), **LIMITS)


def linear(x: float, c: float, w: float) -> float:
    """PS3.3 C.11.2.1.2.1 written out, output range 0..255."""
    if x <= c - 0.5 - (w - 1) / 2:
        return 0.0
    if x > c - 0.5 + (w - 1) / 2:
        return 255.0
    return ((x - (c - 0.5)) / (w - 1) + 0.5) * 255.0


def test_ct_window_gives_the_hand_computed_8_bit_values():
    # stored 2x3, RescaleSlope 2, RescaleIntercept -1024 -> HU = 2 * stored - 1024
    stored = np.array([[0, 400, 500], [520, 600, 2047]], dtype=np.int16)
    ds = image_dataset(
        stored, RescaleSlope=2, RescaleIntercept=-1024, WindowCenter=40, WindowWidth=400
    )
    # HU: [[-1024, -224, -24], [16, 176, 3070]]; window 40/400 spans (-160, 239]
    # -1024 and -224 are below -160 -> 0; 3070 is above 239 -> 255
    # -24: ((-24 - 39.5) / 399 + 0.5) * 255 = 86.92 -> 87
    #  16: (( 16 - 39.5) / 399 + 0.5) * 255 = 112.48 -> 112
    # 176: ((176 - 39.5) / 399 + 0.5) * 255 = 214.74 -> 215
    expected = np.array([[0, 0, 87], [112, 215, 255]], dtype=np.uint8)
    hand = [[round(linear(2 * s - 1024, 40, 400)) for s in row] for row in stored.tolist()]
    assert hand == expected.tolist()
    np.testing.assert_array_equal(to_display(read(ds)), expected)


def test_monochrome1_is_inverted_after_windowing():
    stored = np.array([[0, 100], [200, 300]], dtype=np.uint16)
    image = read(image_dataset(stored, photometric="MONOCHROME1", modality="CR"))
    # no window: min-max -> [[0, 1/3], [2/3, 1]], inverted -> [[1, 2/3], [1/3, 0]]
    np.testing.assert_array_equal(to_display(image), [[255, 170], [85, 0]])


def test_monochrome1_window_is_applied_before_the_inversion():
    stored = np.array([[0, 50, 200]], dtype=np.uint16)
    ds = image_dataset(stored, photometric="MONOCHROME1", WindowCenter=51, WindowWidth=101)
    # LINEAR 51/101 spans (0.5, 100.5]: 0 -> 0, 50 -> ((50 - 50.5) / 100 + 0.5) = 0.495, 200 -> 1
    # inverted: 1, 0.505, 0 -> 255, round(128.775) = 129, 0
    assert round(255 - linear(50, 51, 101)) == 129
    np.testing.assert_array_equal(to_display(read(ds)), [[255, 129, 0]])


def test_voi_lut_sequence_is_looked_up_when_the_file_has_no_window():
    item = Dataset()
    item.LUTDescriptor = [4, 100, 8]  # 4 entries starting at stored value 100, 8-bit output
    item.LUTData = np.array([0, 51, 102, 255], "<u2").tobytes()
    stored = np.array([[99, 100, 101], [102, 103, 200]], dtype=np.uint16)
    image = read(image_dataset(stored, VOILUTSequence=Sequence([item])))
    # 99 clamps to the first entry, 103 and 200 to the last; 8-bit entries / 255
    np.testing.assert_array_equal(to_display(image), [[0, 0, 51], [102, 255, 255]])


def test_a_window_preset_takes_precedence_over_the_voi_lut():
    lut = VoiLut(descriptor=(2, 0, 8), data=np.array([255, 0], np.uint16))
    out = apply_voi(np.array([0.0, 1.0]), preset=VoiPreset(1, 3, "w"), voi_lut=lut)
    # LINEAR 1/3: 0 -> ((0 - 0.5) / 2 + 0.5) = 0.25; 1 -> 0.75 (the LUT would give 1, 0)
    np.testing.assert_allclose(out, [0.25, 0.75])


def test_voi_lut_with_an_understated_descriptor_uses_the_data_maximum():
    lut = VoiLut(descriptor=(3, 0, 8), data=np.array([0, 1000, 4000], np.uint16))
    np.testing.assert_allclose(apply_voi(np.array([0, 1, 2]), voi_lut=lut), [0, 0.25, 1])


def test_sigmoid_matches_the_standard_formula():
    preset = VoiPreset(center=0, width=100, name="s", function="SIGMOID")
    x = np.array([-50.0, 0.0, 25.0])
    expected = [1 / (1 + math.exp(-4 * (v - 0) / 100)) for v in x]
    # 1/(1+e^2) = 0.1192, 0.5, 1/(1+e^-1) = 0.7311
    np.testing.assert_allclose(apply_voi(x, preset=preset), expected, rtol=1e-6)
    np.testing.assert_allclose(expected, [0.11920292, 0.5, 0.73105858], rtol=1e-6)


def test_linear_exact_matches_the_standard_formula():
    preset = VoiPreset(center=100, width=50, name="e", function="LINEAR_EXACT")
    x = np.array([74.0, 75.0, 100.0, 110.0, 125.0, 126.0])
    # x <= c - w/2 -> 0; x > c + w/2 -> 1; else (x - c) / w + 0.5
    np.testing.assert_allclose(apply_voi(x, preset=preset), [0, 0, 0.5, 0.7, 1.0, 1.0])


def test_linear_window_of_width_one_is_a_threshold():
    preset = VoiPreset(center=10, width=1, name="t")
    np.testing.assert_array_equal(
        apply_voi(np.array([9.0, 9.5, 9.6, 11]), preset=preset), [0, 0, 1, 1]
    )


def test_without_window_or_lut_values_are_min_max_scaled():
    np.testing.assert_allclose(apply_voi(np.array([-10.0, 0.0, 30.0])), [0, 0.25, 1])
    np.testing.assert_array_equal(apply_voi(np.full((2, 2), 7.0)), np.zeros((2, 2)))


def test_default_window_is_the_first_preset_and_an_explicit_preset_overrides_it():
    stored = np.array([[0, 100]], dtype=np.uint16)
    image = read(image_dataset(stored, WindowCenter=[50, 0], WindowWidth=[100, 2]))
    # preset 1 (50/100) spans (0, 99]: 0 -> 0, 100 -> 255
    assert default_window(image) == image.voi_presets[0]
    np.testing.assert_array_equal(to_display(image), [[0, 255]])
    # preset 2 (0/2) spans (-1.0, 0.0]: 0 -> ((0 + 0.5) / 1 + 0.5) = 1 -> 255, 100 -> 255
    np.testing.assert_array_equal(to_display(image, preset=image.voi_presets[1]), [[255, 255]])
    assert default_window(read(image_dataset(stored))) is None


def test_to_display_is_display01_times_255_rounded():
    stored = np.arange(12, dtype=np.int16).reshape(3, 4) * 37
    image = read(image_dataset(stored, WindowCenter=150, WindowWidth=300))
    d01 = display01(image)
    assert d01.dtype == np.float32 and d01.min() >= 0 and d01.max() <= 1
    np.testing.assert_array_equal(to_display(image), np.rint(d01 * 255).astype(np.uint8))


def test_color_display_keeps_rgb_values():
    rgb = np.array([[[10, 20, 30], [200, 100, 0]]], np.uint8)
    image = read(image_dataset(rgb, photometric="RGB", sop_class=US_IMAGE, modality="US"))
    out = to_display(image)
    assert out.dtype == np.uint8 and out.shape == (1, 2, 3)
    np.testing.assert_array_equal(out, rgb)
    np.testing.assert_allclose(display01(image), rgb / 255.0, rtol=1e-6)


# --------------------------------------------------------------------------- model input


def test_model_input_replicates_grey_and_normalises_each_channel():
    d01 = np.array([[0.0, 0.5], [1.0, 0.25]], np.float32)
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    out = to_model_input(d01, size=(2, 2), channels=3, mean=mean, std=std)
    assert out.shape == (3, 2, 2) and out.dtype == np.float32
    for c in range(3):
        expected = [[(v - mean[c]) / std[c] for v in row] for row in d01.tolist()]
        np.testing.assert_allclose(out[c], expected, rtol=1e-6)
    # e.g. the red channel's top-right pixel: (0.5 - 0.485) / 0.229 = 0.0655
    assert out[0, 0, 1] == pytest.approx(0.06550218, rel=1e-6)


def test_model_input_single_mean_and_std_apply_to_one_channel():
    out = to_model_input(
        np.array([[0.0, 1.0]], np.float32), size=(1, 2), channels=1, mean=[0.5], std=[0.5]
    )
    np.testing.assert_allclose(out, [[[-1.0, 1.0]]])


def test_colour_feeding_a_one_channel_model_becomes_bt601_luma():
    rgb01 = np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]], np.float32)
    out = to_model_input(rgb01, size=(1, 3), channels=1, mean=[0.0], std=[1.0])
    np.testing.assert_allclose(out, [[[0.299, 0.587, 0.114]]], rtol=1e-6)


def test_resizing_is_antialiased():
    checker = (np.indices((8, 8)).sum(axis=0) % 2).astype(np.float32)  # 1-pixel 0/1 pattern
    out = to_model_input(checker, size=(4, 4), channels=1, mean=[0.0], std=[1.0])
    assert out.shape == (1, 4, 4)
    # point sampling would return only 0s or 1s; an antialiased filter averages towards 0.5
    assert np.all(np.abs(out - 0.5) < 0.2)


def test_resizing_a_constant_image_keeps_the_constant():
    out = to_model_input(
        np.full((10, 6), 0.3, np.float32), size=(5, 7), channels=3, mean=[0], std=[1]
    )
    assert out.shape == (3, 5, 7)
    np.testing.assert_allclose(out, 0.3, rtol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"channels": 2, "mean": [0], "std": [1]}, "channels"),
        ({"channels": 3, "mean": [0, 0], "std": [1]}, "mean"),
        ({"channels": 1, "mean": [0], "std": [0]}, "std"),
    ],
)
def test_model_input_rejects_inconsistent_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        to_model_input(np.zeros((2, 2), np.float32), size=(2, 2), **kwargs)


def test_a_secondary_capture_flows_from_file_to_model_input():
    stored = np.array([[0, 255], [128, 64]], np.uint8)
    image = read(image_dataset(stored, sop_class=SECONDARY_CAPTURE, modality="OT"))
    out = to_model_input(display01(image), size=(2, 2), channels=3, mean=[0.5], std=[0.25])
    # min-max: [[0, 1], [128/255, 64/255]]; (x - 0.5) / 0.25
    expected = (np.array([[0, 1], [128 / 255, 64 / 255]]) - 0.5) / 0.25
    for c in range(3):
        np.testing.assert_allclose(out[c], expected, rtol=1e-5, atol=1e-6)
