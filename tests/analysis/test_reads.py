import math

import numpy as np
import pytest

from analysis.stats.data import MRMCInputError
from analysis.stats.mrmc import or_analysis
from analysis.stats.reads import Read, ai_correct, is_correct, main_reads, to_mrmc_data

TRUTH = {"c1": True, "c2": False, "c3": True, "c4": False}


def read(reader, case, arm, confidence, positive=None, **kw):
    return Read(reader=reader, case=case, arm=arm, truth=TRUTH.get(case, kw.pop("truth", None)),
                final_confidence=confidence,
                final_positive=confidence >= 50 if positive is None else positive, **kw)


def test_main_reads_drops_training_and_attention_trials_in_order():
    reads = [read("r1", "c1", "A", 80), read("r1", "c2", "A", 20, kind="training"),
             read("r1", "c3", "A", 70, kind="attention"), read("r1", "c4", "A", 10)]
    assert [r.case for r in main_reads(reads)] == ["c1", "c4"]


@pytest.mark.parametrize(("shown", "ai_positive", "truth", "expected"), [
    (True, True, True, True),
    (True, False, True, False),
    (True, False, False, True),
    (True, True, False, False),
    (False, True, True, None),
    (True, None, True, None),
    (True, True, None, None),
])
def test_ai_correct_compares_the_shown_ai_call_with_the_truth(shown, ai_positive, truth,
                                                               expected):
    r = Read("r1", "c1", "A", truth=truth, ai_shown=shown, ai_positive=ai_positive)
    assert ai_correct(r) is expected


def test_reads_with_ratings_are_hashable_and_compare_by_value():
    a = Read("r1", "c1", "A", ratings={"trust": 4})
    assert a == Read("r1", "c1", "A", ratings={"trust": 4})
    assert a != Read("r1", "c1", "A", ratings={"trust": 3})
    assert len({a, Read("r1", "c1", "A", ratings={"trust": 4})}) == 1


def test_is_correct_uses_the_requested_stage():
    r = Read("r1", "c1", "A", truth=True, first_positive=False, final_positive=True)
    assert is_correct(r, "first") is False
    assert is_correct(r, "final") is True
    assert is_correct(Read("r1", "c1", "A", truth=True)) is None
    with pytest.raises(ValueError, match="stage"):
        is_correct(r, "second")


def test_crossed_reads_fill_every_cell_of_the_mrmc_array():
    reads = [read(rd, c, arm, 10 * i + j + 1 + (50 if TRUTH[c] else 0))
             for i, arm in enumerate("AB") for j, rd in enumerate(["r1", "r2"])
             for c in TRUTH]
    data = to_mrmc_data(reads)
    assert data.design == "crossed"
    assert data.treatments == ("A", "B") and data.readers == ("r1", "r2")
    assert data.cases == ("c1", "c2", "c3", "c4")
    np.testing.assert_array_equal(data.truth, [1, 0, 1, 0])
    # arm B (i=1), reader r2 (j=1), case c3 (positive): 10 + 1 + 1 + 50
    assert data.ratings[1, 1, 2] == 62
    assert data.ratings[0, 0, 1] == 1
    np.testing.assert_array_equal(data.diagnosis[0, 0], [1, 0, 1, 0])


def test_latin_square_reads_give_a_partially_paired_study_the_or_analysis_accepts():
    # each reader reads each case once; r1: c1, c2 under A and c3, c4 under B; r2 the opposite
    plan = {("r1", "c1"): "A", ("r1", "c2"): "A", ("r1", "c3"): "B", ("r1", "c4"): "B",
            ("r2", "c1"): "B", ("r2", "c2"): "B", ("r2", "c3"): "A", ("r2", "c4"): "A",
            ("r3", "c1"): "A", ("r3", "c2"): "B", ("r3", "c3"): "A", ("r3", "c4"): "B"}
    calls = {("r1", "c1"): True, ("r1", "c2"): True, ("r1", "c3"): True, ("r1", "c4"): False,
             ("r2", "c1"): True, ("r2", "c2"): False, ("r2", "c3"): False, ("r2", "c4"): False,
             ("r3", "c1"): True, ("r3", "c2"): False, ("r3", "c3"): True, ("r3", "c4"): True}
    reads = [read(rd, c, arm, 90 if calls[rd, c] else 10) for (rd, c), arm in plan.items()]
    data = to_mrmc_data(reads)
    assert data.design == "partially paired"
    assert data.read.sum() == 12
    assert np.isnan(data.ratings[1, 0, 0])  # r1 did not read c1 under B
    result = or_analysis(data, fom="accuracy", analyses="rrrc")
    # accuracy by hand: r1 A: c1 right, c2 wrong = 1/2; r1 B: c3 right, c4 right = 1
    #                   r2 A: c3 wrong, c4 right = 1/2; r2 B: c1 right, c2 right = 1
    #                   r3 A: c1, c3 right = 1;         r3 B: c2 right, c4 wrong = 1/2
    np.testing.assert_allclose(result.fom_table, [[0.5, 0.5, 1.0], [1.0, 1.0, 0.5]])


def test_cases_nested_within_readers_are_representable():
    reads = [read("r1", "c1", "A", 90), read("r1", "c2", "A", 10),
             read("r1", "c1", "B", 80), read("r1", "c2", "B", 20),
             read("r2", "c3", "A", 60), read("r2", "c4", "A", 40),
             read("r2", "c3", "B", 70), read("r2", "c4", "B", 30)]
    assert to_mrmc_data(reads).design == "cases within readers"


def test_reads_with_unknown_truth_missing_rating_or_other_kind_are_left_out():
    reads = [read("r1", "c1", "A", 90), read("r1", "c2", "A", 10),
             read("r1", "c5", "A", 60, truth=None),
             Read("r1", "c3", "A", truth=True, final_positive=True),
             read("r1", "c4", "A", 70, kind="training"),
             Read("r1", "c4", "A", truth=False, final_confidence=math.nan)]
    data = to_mrmc_data(reads)
    assert data.cases == ("c1", "c2")
    assert data.read.sum() == 2


def test_diagnosis_is_omitted_when_some_read_lacks_a_call():
    reads = [read("r1", "c1", "A", 90), Read("r1", "c2", "A", truth=False,
                                              final_confidence=10.0)]
    assert to_mrmc_data(reads).diagnosis is None


def test_first_stage_confidence_can_be_the_rating():
    reads = [Read("r1", c, "A", truth=TRUTH[c], first_confidence=float(i),
                  first_positive=i > 1, final_confidence=0.0) for i, c in enumerate(TRUTH)]
    data = to_mrmc_data(reads, rating="first_confidence", diagnosis_from="first_positive")
    np.testing.assert_array_equal(data.ratings[0, 0], [0, 1, 2, 3])
    np.testing.assert_array_equal(data.diagnosis[0, 0], [0, 0, 1, 1])


def test_reader_without_reads_in_an_arm_is_refused_with_the_reason():
    reads = [read("r1", "c1", "A", 90), read("r1", "c2", "A", 10),
             read("r2", "c1", "B", 90), read("r2", "c2", "B", 10)]
    with pytest.raises(MRMCInputError) as err:
        to_mrmc_data(reads)
    assert "reader r1 has no ratings under treatment B" in err.value.problems
    assert "reader r2 has no ratings under treatment A" in err.value.problems


def test_duplicate_reads_and_unknown_attributes_are_refused():
    reads = [read("r1", "c1", "A", 90), read("r1", "c1", "A", 80), read("r1", "c2", "A", 10)]
    with pytest.raises(MRMCInputError, match="duplicate rating for reader r1"):
        to_mrmc_data(reads)
    with pytest.raises(ValueError, match="no attribute 'confidence'"):
        to_mrmc_data(reads, rating="confidence")
    with pytest.raises(MRMCInputError, match="no main read"):
        to_mrmc_data([read("r1", "c1", "A", 90, kind="training")])
