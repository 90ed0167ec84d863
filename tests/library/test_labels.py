import io

import numpy as np
import pytest
from PIL import Image

from library.labels import (
    CHESTXRAY14_FINDINGS,
    LabelRow,
    LabelsError,
    file_key,
    match_rows_to_files,
    parse_labels_csv,
)
from library.masks import load_mask

NIH_HEADER = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,"
    "View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"
)
CHEXPERT_HEADER = (
    "Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Enlarged Cardiomediastinum,Cardiomegaly,"
    "Lung Opacity,Lung Lesion,Edema,Consolidation,Pneumonia,Atelectasis,Pneumothorax,"
    "Pleural Effusion,Pleural Other,Fracture,Support Devices"
)


def problems_of(excinfo) -> list[str]:
    return excinfo.value.problems


# ------------------------------------------------------------------ generic


def test_generic_rows_list_each_pipe_separated_finding_as_positive():
    fmt, rows = parse_labels_csv(
        "case,label,mask,split\n"
        "case001.dcm,Nodule|Effusion,masks/case001.png,test\n"
        "sub/case002,normal,,\n"
    )
    assert fmt == "generic"
    assert rows == [
        LabelRow(row=2, case_key="case001", labels={"Nodule": 1, "Effusion": 1},
                 mask="masks/case001.png", split="test"),
        LabelRow(row=3, case_key="sub/case002", labels={"normal": 1}, mask=None, split=None),
    ]


def test_generic_headers_are_case_insensitive_and_extra_columns_ignored():
    fmt, rows = parse_labels_csv("Reader,CASE,Label,Notes\nA,c1,Mass,\"big, round\"\n")
    assert fmt == "generic"
    assert rows[0].case_key == "c1" and rows[0].labels == {"Mass": 1}


def test_bom_crlf_quotes_semicolons_and_trailing_blank_lines_are_handled():
    text = '\ufeff"case";"label"\r\n"a 1";"Mass|Nodule"\r\n\r\n\r\n'
    fmt, rows = parse_labels_csv(text.encode("utf-8"))
    assert fmt == "generic"
    assert [(r.row, r.case_key, r.labels) for r in rows] == [
        (2, "a 1", {"Mass": 1, "Nodule": 1})
    ]


def test_every_problem_is_reported_with_its_file_line_number():
    text = (
        "case,label,notes\n"  # line 1
        "c1,Mass,\"two\nline note\"\n"  # lines 2-3
        "\n"  # line 4 (blank, skipped)
        "c2,,x\n"  # line 5: blank label
        ",Mass,\n"  # line 6: blank case
        "c1,Nodule,\n"  # line 7: duplicate of line 2
        "c3,Mass,x,extra\n"  # line 8: too many fields
    )
    with pytest.raises(LabelsError) as excinfo:
        parse_labels_csv(text)
    assert problems_of(excinfo) == [
        "row 5: blank value in column 'label'",
        "row 6: blank value in column 'case'",
        "row 8: 4 fields but the header has 3 columns",
        "row 7: case 'c1' already appears in row 2",
    ]


def test_a_file_path_is_read_from_disk(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_bytes(b"case,label\nx,Mass\n")
    assert parse_labels_csv(path)[1][0].case_key == "x"
    with pytest.raises(LabelsError, match="pass a pathlib.Path"):
        parse_labels_csv(str(path))


@pytest.mark.parametrize(
    "source, fragment",
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary, not CSV text"),
        ("id,diagnosis\n1,Mass\n", "matches no known layout"),
        ("", "the label file is empty"),
        ("case,label\n", "header but no data rows"),
    ],
)
def test_unusable_files_get_a_one_line_explanation(source, fragment):
    with pytest.raises(LabelsError) as excinfo:
        parse_labels_csv(source)
    assert len(problems_of(excinfo)) == 1
    assert fragment in str(excinfo.value)
    if "layout" in fragment or "binary" in fragment:
        assert "ChestX-ray14" in str(excinfo.value) and "CheXpert" in str(excinfo.value)


# ------------------------------------------------------------------ ChestX-ray14


def test_chestxray14_rows_mark_listed_findings_positive_and_the_rest_negative():
    text = (
        NIH_HEADER + "\n"
        "00000001_000.png,Cardiomegaly,0,1,58,M,PA,2682,2749,0.143,0.143\n"
        "00000001_001.png,Cardiomegaly|Emphysema,1,1,58,M,PA,2894,2729,0.143,0.143\n"
        "00000002_000.png,No Finding,0,2,81,M,PA,2500,2048,0.171,0.171\n"
    )
    fmt, rows = parse_labels_csv(text)
    assert fmt == "chestxray14"
    assert [r.case_key for r in rows] == ["00000001_000", "00000001_001", "00000002_000"]
    second = rows[1].labels
    assert second["Cardiomegaly"] == 1 and second["Emphysema"] == 1
    assert sum(second.values()) == 2 and len(second) == 15  # 14 findings + "No Finding"
    assert second["No Finding"] == 0
    normal = rows[2].labels
    assert normal["No Finding"] == 1
    assert all(normal[f] == 0 for f in CHESTXRAY14_FINDINGS)


def test_the_2017_chestxray14_file_with_trailing_commas_is_accepted():
    text = NIH_HEADER + ",\n00000003_000.png,Hernia,0,3,81,F,PA,2582,2991,0.143,0.143,\n"
    fmt, rows = parse_labels_csv(text)
    assert fmt == "chestxray14" and rows[0].labels["Hernia"] == 1


def test_unknown_chestxray14_findings_are_reported_per_row():
    text = (
        NIH_HEADER + "\n"
        "00000001_000.png,Cardiomegaly,0,1,58,M,PA,2682,2749,0.143,0.143\n"
        "00000001_001.png,Cardiomegaly|Tumour,1,1,58,M,PA,2894,2729,0.143,0.143\n"
        "00000002_000.png,No Finding|Mass,0,2,81,M,PA,2500,2048,0.171,0.171\n"
    )
    with pytest.raises(LabelsError) as excinfo:
        parse_labels_csv(text)
    assert problems_of(excinfo) == [
        "row 3: unknown finding 'Tumour' in column 'Finding Labels'",
        "row 4: 'No Finding' is listed together with other findings",
    ]


# ------------------------------------------------------------------ CheXpert


def test_chexpert_rows_keep_uncertain_labels_and_skip_blank_ones():
    text = (
        CHEXPERT_HEADER + "\n"
        "CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg,Female,68,Frontal,AP,"
        "1.0,,,,,,,,,0.0,,,,1.0\n"
        "CheXpert-v1.0-small/train/patient00002/study2/view1_frontal.jpg,Female,87,Frontal,AP,"
        ",,-1.0,1.0,,-1.0,-1.0,,-1.0,,-1.0,,1.0,\n"
        "CheXpert-v1.0/valid/patient64541/study1/view1_frontal.jpg,Male,73,Frontal,AP,"
        "0.0,1.0,1.0,1.0,0.0,1.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,1.0\n"
    )
    fmt, rows = parse_labels_csv(text)
    assert fmt == "chexpert"
    assert [r.case_key for r in rows] == [
        "patient00001/study1/view1_frontal",
        "patient00002/study2/view1_frontal",
        "patient64541/study1/view1_frontal",
    ]
    assert rows[0].labels == {"No Finding": 1, "Pneumothorax": 0, "Support Devices": 1}
    assert rows[1].labels == {
        "Cardiomegaly": -1, "Lung Opacity": 1, "Edema": -1, "Consolidation": -1,
        "Atelectasis": -1, "Pleural Effusion": -1, "Fracture": 1,
    }
    assert len(rows[2].labels) == 14 and sum(rows[2].labels.values()) == 5


def test_unknown_chexpert_values_name_row_and_column():
    text = (
        CHEXPERT_HEADER + "\n"
        "CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg,Female,68,Frontal,AP,"
        "1.0,,,,,,,,,0.0,,,,1.0\n"
        "CheXpert-v1.0-small/train/patient00003/study1/view1_frontal.jpg,Male,41,Frontal,AP,"
        ",,,,,maybe,,,,2.0,,,,\n"
    )
    with pytest.raises(LabelsError) as excinfo:
        parse_labels_csv(text)
    assert problems_of(excinfo) == [
        "row 3: unknown value 'maybe' in column 'Edema'",
        "row 3: unknown value '2.0' in column 'Pneumothorax'",
    ]


# ------------------------------------------------------------------ keys and matching


@pytest.mark.parametrize(
    "path, key",
    [
        ("patient00001/study1/view1_frontal.jpg", "patient00001/study1/view1_frontal"),
        ("scans\\case7\\IMG0001.DCM", "scans/case7/IMG0001"),
        ("./a//b.png", "a/b"),
        ("series/1.2.840.113619.2.55", "series/1.2.840.113619.2.55"),
    ],
)
def test_file_keys_are_posix_paths_without_image_extensions(path, key):
    assert file_key(path) == key


def rows_for(*keys):
    return [LabelRow(row=i + 2, case_key=k, labels={"Mass": 1}) for i, k in enumerate(keys)]


def test_rows_match_files_by_equal_key_or_path_suffix():
    files = ["CheXpert-v1.0/train/patient00001/study1/view1_frontal", "case001", "x/case002"]
    matched = match_rows_to_files(
        rows_for("patient00001/study1/view1_frontal", "case001", "case002"), files
    )
    assert {k: r.case_key for k, r in matched.items()} == {
        "CheXpert-v1.0/train/patient00001/study1/view1_frontal":
            "patient00001/study1/view1_frontal",
        "case001": "case001",
        "x/case002": "case002",
    }


def test_every_unmatched_ambiguous_or_duplicate_row_is_reported():
    files = ["a/view1_frontal", "b/view1_frontal", "patient00001/img", "c/d"]
    rows = rows_for("view1_frontal", "00001/img", "nowhere", "c/d", "d", "c/d")
    with pytest.raises(LabelsError) as excinfo:
        match_rows_to_files(rows, files)
    assert problems_of(excinfo) == [
        "row 7: case 'c/d' already appears in row 5",
        "row 2: case 'view1_frontal' matches 2 files ('a/view1_frontal', 'b/view1_frontal')",
        "row 3: case '00001/img' matches no imported file",  # suffixes respect '/' boundaries
        "row 4: case 'nowhere' matches no imported file",
        "row 6: case 'd' matches file 'c/d', which row 5 already matched",
        "row 7: case 'c/d' matches file 'c/d', which row 5 already matched",
    ]


# ------------------------------------------------------------------ masks


def png_bytes(array: np.ndarray) -> bytes:
    image = Image.fromarray(array)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def npy_bytes(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def expected_square(shape=(6, 5)) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[1:3, 2:4] = True
    return mask


def test_a_grayscale_png_mask_marks_non_zero_pixels():
    mask = load_mask(png_bytes(expected_square().astype(np.uint8) * 255), shape=(6, 5))
    assert mask.dtype == bool and np.array_equal(mask, expected_square())


def test_an_rgba_png_mask_uses_colour_and_ignores_transparent_pixels():
    rgba = np.zeros((6, 5, 4), dtype=np.uint8)
    rgba[expected_square(), 1] = 200  # green lesion: red channel stays 0
    rgba[expected_square(), 3] = 255
    rgba[5, 4] = (255, 255, 255, 0)  # white but fully transparent: not lesion
    mask = load_mask(png_bytes(rgba), shape=(6, 5))
    assert np.array_equal(mask, expected_square())


def test_a_16_bit_png_mask_keeps_values_that_8_bit_conversion_would_drop():
    array = expected_square().astype(np.uint16)  # lesion value 1 of 65535
    data = png_bytes(array)
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    assert np.array_equal(load_mask(data, shape=(6, 5)), expected_square())


def test_one_bit_and_palette_pngs_are_read(tmp_path):
    bilevel = Image.fromarray(expected_square())
    assert bilevel.mode == "1"
    bilevel.save(tmp_path / "m1.png")
    assert np.array_equal(load_mask(tmp_path / "m1.png", shape=(6, 5)), expected_square())
    palette = Image.fromarray(expected_square().astype(np.uint8) * 255).convert("P")
    palette.save(tmp_path / "mp.png")
    assert np.array_equal(load_mask(str(tmp_path / "mp.png"), shape=(6, 5)), expected_square())


@pytest.mark.parametrize("dtype", [bool, np.uint8, np.float32, np.int64])
def test_npy_masks_accept_bool_and_numeric_zero_one_arrays(dtype):
    data = npy_bytes(expected_square().astype(dtype))
    assert np.array_equal(load_mask(data, shape=(6, 5)), expected_square())


def test_npy_masks_with_other_values_or_dimensions_are_refused():
    with pytest.raises(LabelsError, match="only 0 and 1, found 0.5"):
        load_mask(npy_bytes(np.full((6, 5), 0.5)), shape=(6, 5))
    with pytest.raises(LabelsError, match=r"must be 2-D \(height, width\), got shape \(2, 6, 5\)"):
        load_mask(npy_bytes(np.zeros((2, 6, 5))), shape=(6, 5))
    squeezed = load_mask(npy_bytes(expected_square()[None]), shape=(6, 5))
    assert np.array_equal(squeezed, expected_square())


def test_pickled_npy_masks_are_refused_without_unpickling():
    class Trap:
        def __reduce__(self):
            return (pytest.fail, ("the mask loader unpickled an object",))

    objects = np.empty((6, 5), dtype=object)
    objects[0, 0] = Trap()
    data = npy_bytes(objects, allow_pickle=True)
    with pytest.raises(LabelsError, match="pickled arrays are refused"):
        load_mask(data, shape=(6, 5))


def test_a_mask_of_the_wrong_size_names_both_sizes():
    wrong = np.zeros((120, 100), dtype=np.uint8)  # 100 wide, 120 high
    for data in (png_bytes(wrong), npy_bytes(wrong)):
        with pytest.raises(LabelsError) as excinfo:
            load_mask(data, shape=(480, 512))
        assert str(excinfo.value) == (
            "mask is 100×120 but the image is 512×480 (width×height)"
        )


def test_an_empty_mask_is_returned_for_the_caller_to_judge():
    mask = load_mask(npy_bytes(np.zeros((6, 5), dtype=bool)), shape=(6, 5))
    assert mask.shape == (6, 5) and not mask.any()


def test_files_that_are_neither_png_nor_npy_are_refused():
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((6, 5), dtype=np.uint8)).save(buffer, format="JPEG")
    with pytest.raises(LabelsError, match="must be a PNG image or a .npy array"):
        load_mask(buffer.getvalue(), shape=(6, 5))
