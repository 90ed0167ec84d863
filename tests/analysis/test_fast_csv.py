"""The column-wise fast path of ``read_long_csv`` gives the row reader's study, or steps aside."""

import numpy as np
import pytest

from analysis.stats import data as data_module
from analysis.stats import io
from analysis.stats.data import MRMCInputError
from analysis.stats.fast_csv import parse_clean_long_csv
from analysis.stats.io import read_long_csv, read_study
from tests.analysis.reference_data import shared_path

REFERENCE = [
    ("mrmcaov_datasets/VanDyke.csv", "case"),
    ("mrmcaov_datasets/VanDyke.csv", "case2"),
    ("mrmcaov_datasets/VanDyke.csv", "case3"),
    ("mrmcaov_datasets/Franken.csv", "case"),
    ("mrmcaov_datasets/Kundel.csv", "case"),
    ("vandyke/RocData.csv", "case"),
]


def fast_parse(path, case_column="case"):
    """The fast path alone (None where it steps aside)."""
    required = tuple(case_column if c == "case" else c for c in io.REQUIRED_COLUMNS)
    text = io._read_text(path)
    return parse_clean_long_csv(text, str(path), required, case_column, io.DIAGNOSIS_COLUMN)


def assert_identical(fast, slow):
    assert (fast.treatments, fast.readers, fast.cases) == (
        slow.treatments,
        slow.readers,
        slow.cases,
    )
    assert fast.source == slow.source
    for a, b in ((fast.truth, slow.truth), (fast.ratings, slow.ratings), (fast.read, slow.read)):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    assert (fast.diagnosis is None) == (slow.diagnosis is None)
    if slow.diagnosis is not None:
        assert fast.diagnosis.dtype == slow.diagnosis.dtype
        np.testing.assert_array_equal(fast.diagnosis, slow.diagnosis)


def outcome(path, fast):
    """The study read, or the error's type and problems."""
    try:
        return read_long_csv(path, fast=fast)
    except MRMCInputError as exc:
        return ("MRMCInputError", exc.problems)
    except Exception as exc:  # noqa: BLE001 - whatever the row reader raises, both must agree
        return (type(exc).__name__, str(exc))


@pytest.mark.parametrize(("name", "case_column"), REFERENCE)
def test_the_reference_files_take_the_fast_path_and_read_the_same(name, case_column):
    path = shared_path(name)
    fast = fast_parse(path, case_column)
    assert fast is not None
    slow = read_long_csv(path, case_column, fast=False)
    assert_identical(fast, slow)
    assert_identical(read_long_csv(path, case_column), slow)
    assert_identical(read_study(path, case_column=case_column), slow)


def test_kundel_keeps_its_ids_as_written():
    data = fast_parse(shared_path("mrmcaov_datasets/Kundel.csv"))
    assert data.treatments == ("1.0", "2.0", "3.0") and data.readers[0] == "1.0"
    assert data.design == "partially paired"


def test_the_row_reader_validates_once(tmp_path, monkeypatch):
    calls = []
    validate = data_module.validate_records

    def counting(records, source=""):
        calls.append(len(records))
        return validate(records, source)

    monkeypatch.setattr(io, "validate_records", counting)
    monkeypatch.setattr(data_module, "validate_records", counting)
    path = shared_path("mrmcaov_datasets/VanDyke.csv")
    data = read_long_csv(path, fast=False)
    assert calls == [data.read.sum()]


# --- randomized clean files -------------------------------------------------------------------


def id_labels(rng, kind, n):
    if kind == "int":
        labels = [str(i + 1) for i in range(n)]
    elif kind == "float":
        labels = [f"{i + 1}.0" for i in range(n)]
    else:  # text, numbers that differ only in their text, non-ASCII
        pool = ["A", "b", "1.1", "1.10", "10", "2", "1", "1.0", "lecteur-é", "x_1", "-3", "1e3"]
        labels = [str(x) for x in rng.permutation(pool)[:n]]
        labels += [f"id{i}" for i in range(n - len(labels))]
    return labels


def random_csv(rng) -> str:
    """A clean long CSV: shuffled rows and columns, ties, unread cells, odd ids and numbers."""
    n_t, n_r, n_c = int(rng.integers(1, 4)), int(rng.integers(1, 5)), int(rng.integers(4, 30))
    kinds = rng.choice(["int", "float", "text"], size=3)
    treatments, readers, cases = (id_labels(rng, k, n) for k, n in zip(kinds, (n_t, n_r, n_c)))
    truth = rng.integers(0, 2, n_c)
    truth[:2] = (0, 1)
    read = rng.random((n_t, n_r, n_c)) < rng.choice([0.4, 0.8, 1.0])
    read[:, :, :2] = True  # every reader under every treatment; both truth classes
    ratings = (
        rng.integers(1, 6, (n_t, n_r, n_c))
        if rng.random() < 0.5
        else np.round(rng.normal(size=(n_t, n_r, n_c)), int(rng.integers(1, 6)))
    )
    with_diagnosis, extra = rng.random() < 0.5, rng.random() < 0.5
    names = ["reader", "treatment", "case", "truth", "rating"]
    names += ["diagnosis"] * with_diagnosis + ["treatment_name", "note"] * extra
    order = rng.permutation(len(names))
    truth_text = ("0", "1") if rng.random() < 0.5 else ("0.0", "1.0")
    rows = []
    for t, r, c in zip(*np.nonzero(read)):
        x = ratings[t, r, c]
        values = [
            readers[r],
            treatments[t],
            cases[c],
            truth_text[truth[c]],
            str(x) if rng.random() < 0.8 else f"{x:.6e}",
        ]
        values += [str(int(x > 0))] * with_diagnosis
        values += [f"arm {treatments[t]} film", ""] * extra
        rows.append(",".join(values[i] for i in order))
    rows = [rows[i] for i in rng.permutation(len(rows))]
    header = [names[i].upper() if rng.random() < 0.3 else names[i] for i in order]
    end = "\r\n" if rng.random() < 0.3 else "\n"
    return end.join([",".join(header), *rows]) + end * int(rng.integers(0, 3))


@pytest.mark.parametrize("seed", range(40))
def test_random_clean_files_read_the_same_both_ways(tmp_path, seed):
    path = tmp_path / "study.csv"
    path.write_text(random_csv(np.random.default_rng(seed)), encoding="utf-8")
    fast = fast_parse(path)
    assert fast is not None
    assert_identical(fast, read_long_csv(path, fast=False))


# --- anything unusual: the fast path steps aside and the row reader reports as before ---------

CLEAN = (
    "reader,treatment,case,truth,rating,diagnosis,note\n"
    "1,A,1,0,1.5,0,x y\n1,A,2,1,3,1,\n1,B,1,0,2,0,\n1,B,2,1,4,1,\n"
    "2,A,1,0,1,0,\n2,A,2,1,2.5,1,\n2,B,1,0,2,1,\n2,B,2,1,5,1,\n"
)

MUTATIONS = {
    "quoted field": ("1,A,1,0,1.5", '"1",A,1,0,1.5'),
    "quoted comma": ("1,A,1,0,1.5,0,x y", '1,A,1,0,1.5,0,"x, y"'),
    "blank line": ("\n2,A,1", "\n\n2,A,1"),
    "line of commas": ("\n2,A,1", "\n,,,,,,\n2,A,1"),
    "leading blank line": ("reader,", "\nreader,"),
    "padded id": ("1,A,2,1,3", "1, A,2,1,3"),
    "padded with a no-break space": ("1,A,2,1,3", "1,A\u00a0,2,1,3"),
    "tab-padded rating": ("1,A,2,1,3", "1,A,2,1,\t3"),
    "empty reader": ("2,B,2,1,5", ",B,2,1,5"),
    "empty case": ("2,B,2,1,5", "2,B,,1,5"),
    "rating not a number": ("2,B,2,1,5", "2,B,2,1,five"),
    "rating nan": ("2,B,2,1,5", "2,B,2,1,nan"),
    "rating infinite": ("2,B,2,1,5", "2,B,2,1,1e999"),
    "empty rating": ("2,B,2,1,5", "2,B,2,1,"),
    "truth two": ("2,B,2,1,5", "2,B,2,2,5"),
    "truth empty": ("2,B,2,1,5", "2,B,2,,5"),
    "inconsistent truth": ("2,B,2,1,5", "2,B,2,0,5"),
    "single class": (",0,", ",1,"),  # every row
    "duplicate": ("2,B,2,1,5", "2,B,1,0,5"),
    "missing arm": ("2,B,1,0,2,1,\n2,B,2,1,5,1,\n", ""),
    "diagnosis partly empty": ("2,B,2,1,5,1,", "2,B,2,1,5,,"),
    "diagnosis all empty": (",0,x y\n", ",,x y\n"),
    "diagnosis two": ("2,B,2,1,5,1,", "2,B,2,1,5,2,"),
    "short row": ("2,B,2,1,5,1,", "2,B,2,1,5,1"),
    "long row": ("2,B,2,1,5,1,", "2,B,2,1,5,1,,"),
    "missing column": ("rating,diagnosis", "score,diagnosis"),
    "duplicate column": (",note\n", ",reader\n"),
    "comment row": ("\n1,A,1", "\n#1,A,1"),
    "no rows": (CLEAN[CLEAN.index("\n") :], "\n"),
    "header without a line break": (CLEAN[CLEAN.index("\n") :], ""),
    "vertical tab": ("1,B,1,0,2,0,\n", "1,B,1,0,2,0,\x0b"),
    "unicode line separator": ("1,B,1,0,2,0,\n", "1,B,1,0,2,0,\u2028"),
    "NUL in an id": ("2,B,2,1,5", "2,B\x00,2,1,5"),
    "unit separator in an id": ("2,B,2,1,5", "2,B\x1f,2,1,5"),
}


def test_the_clean_file_takes_the_fast_path(tmp_path):
    path = tmp_path / "clean.csv"
    path.write_text(CLEAN, encoding="utf-8")
    assert fast_parse(path) is not None
    assert_identical(read_long_csv(path), read_long_csv(path, fast=False))


@pytest.mark.parametrize("end", ["\r\n", "\r"])
def test_windows_and_old_mac_line_ends_take_the_fast_path(tmp_path, end):
    path = tmp_path / "ends.csv"
    path.write_text(CLEAN.replace("\n", end), encoding="utf-8", newline="")
    assert fast_parse(path) is not None
    assert_identical(read_long_csv(path), read_long_csv(path, fast=False))


@pytest.mark.parametrize("name", MUTATIONS)
def test_unusual_files_fall_back_to_the_row_reader(tmp_path, name):
    old, new = MUTATIONS[name]
    assert old in CLEAN
    text = CLEAN.replace(old, new, -1 if name == "single class" else 1)
    path = tmp_path / "odd.csv"
    path.write_text(text, encoding="utf-8", newline="")
    assert fast_parse(path) is None
    fast, slow = outcome(path, True), outcome(path, False)
    if isinstance(slow, tuple):
        assert fast == slow
    else:
        assert_identical(fast, slow)
