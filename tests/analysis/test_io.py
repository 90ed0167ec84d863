import numpy as np
import pytest

from analysis.stats.data import MRMCData, MRMCInputError, label_key
from analysis.stats.formats import write_imrmc, write_long_csv, write_rjafroc
from analysis.stats.io import read_imrmc, read_long_csv, read_study
from analysis.stats.mrmc import or_analysis
from tests.analysis.reference_data import shared_path

HEADER = "reader,treatment,case,truth,rating\n"


def write(tmp_path, text, name="study.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def problems_of(path, reader=read_long_csv):
    with pytest.raises(MRMCInputError) as info:
        reader(path)
    return info.value.problems


def test_van_dyke_csv_is_a_crossed_study_with_the_published_case_counts():
    data = read_long_csv(shared_path("vandyke/RocData.csv"))
    assert data.treatments == ("0", "1")
    assert data.readers == ("0", "1", "2", "3", "4")
    assert (data.n_cases, data.n_nondiseased, data.n_diseased) == (114, 69, 45)
    assert data.ratings.shape == (2, 5, 114) and data.design == "crossed"


def test_imrmc_file_holds_the_same_ratings_as_the_csv():
    csv_data = read_long_csv(shared_path("vandyke/RocData.csv"))
    imrmc = read_imrmc(shared_path("vandyke/RocData.imrmc"))
    assert imrmc.treatments == csv_data.treatments and imrmc.readers == csv_data.readers
    assert imrmc.cases == csv_data.cases
    np.testing.assert_array_equal(imrmc.truth, csv_data.truth)
    np.testing.assert_array_equal(imrmc.ratings, csv_data.ratings)


def test_read_study_picks_the_format_from_the_extension():
    assert read_study(shared_path("vandyke/RocData.imrmc")).n_cases == 114


def test_split_plot_case_codes_are_kept_as_text():
    path = shared_path("mrmcaov_datasets/VanDyke.csv")
    by_reader = read_long_csv(path, case_column="case2")
    by_treatment = read_long_csv(path, case_column="case3")
    assert "1.1" in by_reader.cases and "1.10" in by_reader.cases
    assert by_reader.n_cases == 570 and by_reader.design == "cases within readers"
    assert by_treatment.n_cases == 228 and by_treatment.design == "cases within treatments"


def test_kundel_is_recognised_as_partially_paired():
    data = read_long_csv(shared_path("mrmcaov_datasets/Kundel.csv"))
    assert data.design == "partially paired"
    assert data.read[0].all(axis=0).sum() == 95  # treatment 1 read its own 95 cases


def test_numeric_labels_sort_by_value():
    assert sorted(["10", "2", "b", "1"], key=label_key) == ["1", "2", "10", "b"]


def test_extra_columns_blank_lines_and_header_case_are_tolerated(tmp_path):
    rows = "".join(f"{r},{t},{c},{c % 2},{(c * 7 + r) % 5},x\n"
                   for r in range(2) for t in range(2) for c in range(4))
    path = write(tmp_path, "Reader, Treatment ,CASE,truth,rating,note\n\n" + rows)
    data = read_long_csv(path)
    assert data.ratings.shape == (2, 2, 4)


def test_a_diagnosis_column_is_read_as_binary_calls(tmp_path):
    rows = "".join(f"{r},{t},{c},{c % 2},{c},{c % 2}\n"
                   for r in range(2) for t in range(2) for c in range(4))
    data = read_long_csv(write(tmp_path, HEADER.strip() + ",diagnosis\n" + rows))
    np.testing.assert_array_equal(data.diagnosis[0, 0], [0, 1, 0, 1])


def test_missing_columns_are_named_in_one_line(tmp_path):
    problems = problems_of(write(tmp_path, "reader,treatment,case\n1,1,1\n"))
    assert len(problems) == 1
    assert "missing required column(s): truth, rating" in problems[0]


def test_every_problem_in_a_file_gets_its_own_line(tmp_path):
    text = HEADER + "0,0,1,0,abc\n0,0,2,1,3\n0,0,2,1,4\n0,1,1,1,2\n1,0,1,0,2\n"
    problems = problems_of(write(tmp_path, text))
    assert len(problems) == 4
    assert any("line 2: rating 'abc' is not a number" in p for p in problems)
    assert any("line 4: duplicate rating for reader 0, treatment 0, case 2 (first at line 3)"
               in p for p in problems)
    assert any("case 1 has inconsistent truth" in p for p in problems)
    assert any("reader 1 has no ratings under treatment 1" in p for p in problems)
    assert all("\n" not in p for p in problems)


def test_a_flood_of_problems_is_cut_to_fifty_lines_and_a_count(tmp_path):
    rows = "".join(f"0,0,{c},{c % 2},bad\n" for c in range(60))
    problems = problems_of(write(tmp_path, HEADER + rows))
    assert len(problems) == 51 and problems[-1] == "... and 10 more problems"


def test_a_single_truth_class_is_refused(tmp_path):
    problems = problems_of(write(tmp_path, HEADER + "0,0,1,1,1\n0,0,2,1,3\n"))
    assert problems == [f"{tmp_path / 'study.csv'}: truth has a single class: every case is "
                        "diseased (1); an ROC analysis needs both diseased and non-diseased cases"]


def test_truth_must_be_zero_or_one_and_ratings_finite(tmp_path):
    problems = problems_of(write(tmp_path, HEADER + "0,0,1,2,1\n0,0,2,1,inf\n0,0,3,0,\n"))
    assert any("line 2: truth '2' must be 0 or 1" in p for p in problems)
    assert any("line 3: rating 'inf' is not a finite number" in p for p in problems)
    assert any("line 4: rating is empty" in p for p in problems)


def test_an_empty_file_and_a_missing_file_are_reported(tmp_path):
    assert "empty" in problems_of(write(tmp_path, ""))[0]
    assert "no such file" in problems_of(tmp_path / "nope.csv")[0]


def test_imrmc_header_counts_and_missing_truth_rows_are_checked(tmp_path):
    text = ("demo\nN0: 2\nN1: 1\nNR: 1\nNM: 1\nBEGIN DATA:\n"
            "-1,1,0,0\n-1,2,0,1\nA,1,m,1\nA,2,m,3\nA,3,m,2\n")
    problems = problems_of(write(tmp_path, text, "s.imrmc"), read_imrmc)
    assert any("case 3 has ratings but no truth row" in p for p in problems)
    assert any("header says N0: 2 but the data have 1 non-diseased cases" in p for p in problems)


def test_imrmc_without_begin_data_is_refused(tmp_path):
    problems = problems_of(write(tmp_path, "N0: 1\n1,2,3,4\n", "s.imrmc"), read_imrmc)
    assert "no 'BEGIN DATA:' line" in problems[0]


def test_from_arrays_marks_unread_cases_with_nan():
    ratings = np.array([[[1.0, np.nan, 3.0], [2.0, 2.0, np.nan]]])
    data = MRMCData.from_arrays(ratings, [0, 1, 1])
    assert data.read.sum() == 4 and data.design == "partially paired"


# --- writers: what other MRMC software reads -------------------------------------------------


def assert_same(read, data, *, with_diagnosis=True):
    assert (read.treatments, read.readers, read.cases) == (data.treatments, data.readers, data.cases)
    np.testing.assert_array_equal(read.truth, data.truth)
    np.testing.assert_array_equal(read.ratings, data.ratings)  # NaN (not read) in the same cells
    if with_diagnosis and data.diagnosis is not None:
        np.testing.assert_array_equal(read.diagnosis, data.diagnosis)
    else:
        assert read.diagnosis is None


def awkward_data() -> MRMCData:
    """Ratings that lose digits if written carelessly, a diagnosis, and an unread cell."""
    rng = np.random.default_rng(7)
    ratings = rng.normal(size=(2, 3, 6)) / 3 + 0.1
    ratings[0, 0, 0] = 80.0
    ratings[1, 2, 5] = np.nan
    diagnosis = np.where(np.isnan(ratings), np.nan, (ratings > 0.1).astype(float))
    return MRMCData.from_arrays(
        ratings, [0, 1, 0, 1, 1, 0], ["A", "B"], ["R01", "R02", "R03"],
        ["1.50", "7", "c1", "c10", "c2", "x"], diagnosis=diagnosis,  # in the readers' order
    )


def test_the_imrmc_writer_round_trips_every_digit(tmp_path):
    data = awkward_data()
    text = write_imrmc(data, "two arms\nN0: 99 (not a count line of ours)")
    assert "NR: 3\nN0: 3\nN1: 3\nNM: 2\n\nBEGIN DATA:\n-1,1.50,0,0\n" in text
    assert "R01,1.50,A,80\n" in text and "N0: 99" not in text
    assert_same(read_imrmc(write(tmp_path, text, "s.imrmc")), data, with_diagnosis=False)


def test_the_long_csv_writer_round_trips_ratings_and_diagnosis(tmp_path):
    data = awkward_data()
    text = write_long_csv(data)
    assert text.startswith("reader,treatment,case,truth,rating,diagnosis\n")
    assert text.count("\n") == 1 + int(data.read.sum())
    assert_same(read_long_csv(write(tmp_path, text)), data)


def test_labels_a_comma_separated_format_cannot_hold_are_refused():
    data = MRMCData.from_arrays(np.ones((1, 1, 2)), [0, 1], ["A"], ["Smith, J"], ["1", "2"])
    with pytest.raises(MRMCInputError) as info:
        write_imrmc(data)
    assert info.value.problems == ["reader 'Smith, J' contains ',', which the iMRMC format cannot hold"]


def test_van_dyke_written_for_imrmc_and_mrmcaov_gives_the_same_or_analysis(tmp_path):
    data = read_long_csv(shared_path("vandyke/RocData.csv"))
    expected = or_analysis(data).to_dict()
    for name, text, reader in (
        ("v.imrmc", write_imrmc(data), read_imrmc),
        ("v.csv", write_long_csv(data), read_long_csv),
    ):
        again = reader(write(tmp_path, text, name))
        assert_same(again, data)
        result = or_analysis(again).to_dict()
        result.pop("source"), expected.pop("source", None)
        assert result == expected


def test_kundel_partially_paired_round_trips_through_the_long_csv(tmp_path):
    data = read_long_csv(shared_path("mrmcaov_datasets/Kundel.csv"))
    again = read_long_csv(write(tmp_path, write_long_csv(data)))
    assert again.design == "partially paired"
    assert_same(again, data)


def test_the_rjafroc_workbook_puts_every_rating_in_its_sheet_and_row(tmp_path):
    from openpyxl import load_workbook  # only these tests read Excel

    data = read_long_csv(shared_path("vandyke/RocData.csv"))
    path = tmp_path / "v.xlsx"
    path.write_bytes(write_rjafroc(data))
    book = load_workbook(path, read_only=True)
    assert book.sheetnames == ["Truth", "FP", "TP", "Cases"]
    truth = list(book["Truth"].iter_rows(values_only=True))
    assert truth[0] == ("CaseID", "LesionID", "Weight", "ReaderID", "ModalityID", "Paradigm")
    assert [row[5] for row in truth[1:3]] == ["ROC", "crossed"]
    assert truth[1][3:5] == ("0, 1, 2, 3, 4", "0, 1")
    lesion = {row[0]: row[1] for row in truth[1:]}
    assert sum(lesion.values()) == 45 and len(lesion) == 114
    cases = dict(book["Cases"].iter_rows(min_row=2, values_only=True))
    fp = list(book["FP"].iter_rows(values_only=True))
    tp = list(book["TP"].iter_rows(values_only=True))
    assert fp[0] == ("ReaderID", "ModalityID", "CaseID", "FP_Rating")
    assert tp[0] == ("ReaderID", "ModalityID", "CaseID", "LesionID", "TP_Rating")
    assert (len(fp) - 1, len(tp) - 1) == (2 * 5 * 69, 2 * 5 * 45)
    seen = np.zeros(data.ratings.shape, dtype=bool)
    for sheet, diseased in ((fp[1:], 0), (tp[1:], 1)):
        for reader, modality, case_id, *rest in sheet:
            t, r = data.treatments.index(modality), data.readers.index(reader)
            c = data.cases.index(cases[case_id])
            assert lesion[case_id] == data.truth[c] == diseased
            assert rest == ([1] if diseased else []) + [data.ratings[t, r, c]]
            seen[t, r, c] = True
    assert seen.all()


def test_the_rjafroc_workbook_needs_crossed_data():
    data = MRMCData.from_arrays(np.array([[[1.0, np.nan, 3.0, 2.0]]]), [0, 1, 1, 0])
    with pytest.raises(MRMCInputError) as info:
        write_rjafroc(data)
    assert "fully crossed" in info.value.problems[0]
