"""Reader and treatment ids in text output: whole numbers stored as ``1.0`` print as ``1``."""

import json

import numpy as np
import pytest

from analysis.stats.data import MRMCData
from analysis.stats.inference import comparison, display_ids, id_text
from analysis.stats.io import read_long_csv
from analysis.stats.mrmc import or_analysis
from analysis.stats.render import render_or_text
from tests.analysis.reference_data import shared_path


@pytest.mark.parametrize(
    ("label", "shown"),
    [("1.0", "1"), ("12.000", "12"), ("-3.0", "-3"), ("0.0", "0"), ("1", "1"), ("01", "01"),
     ("1.10", "1.10"), ("1.5", "1.5"), ("1.", "1."), ("1e3", "1e3"), ("reader A", "reader A"),
     ("2.0 ", "2.0 ")],
)
def test_id_text_drops_only_a_zero_fraction(label, shown):
    assert id_text(label) == shown


def test_display_ids_keep_the_labels_when_two_would_print_alike():
    assert display_ids(["1.0", "2.0"]) == {"1.0": "1", "2.0": "2"}
    assert display_ids(["1", "1.0", "2.0"]) == {"1": "1", "1.0": "1.0", "2.0": "2.0"}


def test_comparison_label_prints_integer_ids_and_keeps_the_ids():
    c = comparison("1.0", "2.0", 0.1, 0.05, 10, 0.95)
    assert (c.minuend, c.subtrahend, c.label) == ("1.0", "2.0", "treatment 1 - treatment 2")


@pytest.fixture(scope="module")
def kundel():
    return or_analysis(read_long_csv(shared_path("mrmcaov_datasets/Kundel.csv")))


def test_every_table_prints_integer_reader_and_treatment_ids(kundel):
    assert kundel.treatments == ("1.0", "2.0", "3.0")  # the data keep the file's ids
    text = render_or_text(kundel)
    assert ".0 " not in text and not any(line.rstrip().endswith(".0") for line in text.splitlines())
    lines = text.splitlines()
    assert "  reader  treatment 1  treatment 2  treatment 3" in lines
    assert any(line.startswith("  1        0.81781046") for line in lines)
    assert any(line.startswith("  R within treatment 3 ") for line in lines)
    assert any(line.startswith("  treatment 1 - treatment 2 ") for line in lines)
    assert any(line.startswith("  treatment 2  0.80387931") for line in lines)
    reader_rows = [line for line in lines if line.startswith("  4       treatment 2 - treatment 3")]
    assert len(reader_rows) == 1  # the single-reader differences of FRRC


def test_json_keeps_the_ids_as_read(kundel):
    data = json.loads(json.dumps(kundel.to_dict()))
    assert data["treatments"] == ["1.0", "2.0", "3.0"] and data["readers"][0] == "1.0"
    rrrc = data["analyses"]["rrrc"]["comparisons"][0]
    assert (rrrc["minuend"], rrrc["label"]) == ("1.0", "treatment 1 - treatment 2")


def test_ids_that_would_print_alike_are_printed_as_read():
    rng = np.random.default_rng(1)
    truth = np.arange(40) % 2
    ratings = truth + rng.normal(size=(2, 3, 40))
    data = MRMCData.from_arrays(ratings, truth, treatments=("1", "1.0"), readers=("1.0", "2", "3"))
    text = render_or_text(or_analysis(data))
    assert "  reader  treatment 1  treatment 1.0" in text
    assert "  treatment 1 - treatment 1.0 " in text
    assert any(line.startswith("  1        ") for line in text.splitlines())  # readers: no clash
