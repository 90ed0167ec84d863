import json

import numpy as np
import pytest
from statsmodels.stats.inter_rater import aggregate_raters, cohens_kappa
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from analysis.stats.agreement import cohen_kappa, fleiss_by_arm, fleiss_kappa, reader_ai_kappa
from analysis.stats.inference import to_jsonable
from analysis.stats.reads import Read

# Wikipedia "Fleiss' kappa" worked example: 10 subjects, 14 raters, 5 categories
WIKIPEDIA = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0],
             [2, 2, 8, 1, 1], [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2],
             [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]

# Fleiss (1971) psychiatric diagnoses: 30 subjects, 6 raters, 5 categories (R irr::diagnoses)
FLEISS_1971 = np.array([
    [4, 4, 4, 4, 4, 4], [2, 2, 2, 5, 5, 5], [2, 3, 3, 3, 3, 5], [5, 5, 5, 5, 5, 5],
    [2, 2, 2, 4, 4, 4], [1, 1, 3, 3, 3, 3], [3, 3, 3, 3, 5, 5], [1, 1, 3, 3, 3, 4],
    [1, 1, 4, 4, 4, 4], [5, 5, 5, 5, 5, 5], [1, 4, 4, 4, 4, 4], [1, 2, 4, 4, 4, 4],
    [2, 2, 2, 3, 3, 3], [1, 4, 4, 4, 4, 4], [2, 2, 4, 4, 4, 5], [3, 3, 3, 3, 3, 5],
    [1, 1, 1, 4, 5, 5], [1, 1, 1, 1, 1, 2], [2, 2, 4, 4, 4, 4], [1, 3, 3, 5, 5, 5],
    [5, 5, 5, 5, 5, 5], [2, 4, 4, 4, 4, 4], [2, 2, 4, 5, 5, 5], [1, 1, 4, 4, 4, 4],
    [1, 4, 4, 4, 4, 5], [2, 2, 2, 2, 2, 4], [1, 1, 1, 1, 5, 5], [2, 2, 4, 4, 4, 4],
    [1, 3, 3, 3, 3, 3], [5, 5, 5, 5, 5, 5],
])


def test_wikipedia_example_gives_kappa_0_210():
    res = fleiss_kappa(WIKIPEDIA, n_bootstrap=0)
    assert res.p_observed == pytest.approx(0.378, abs=5e-4)
    assert res.p_expected == pytest.approx(0.213, abs=5e-4)
    assert res.kappa == pytest.approx(0.210, abs=5e-4)
    assert res.kappa == pytest.approx(sm_fleiss_kappa(np.array(WIKIPEDIA)), abs=1e-12)
    assert (res.n_subjects, res.raters_min, res.raters_max) == (10, 14, 14)


def test_fleiss_1971_diagnoses_give_kappa_0_430_as_in_r_irr():
    table, _ = aggregate_raters(FLEISS_1971)
    assert fleiss_kappa(table, n_bootstrap=0).kappa == pytest.approx(0.4302445, abs=1e-7)


def test_equal_rater_tables_match_statsmodels():
    rng = np.random.default_rng(5)
    for raters, k in [(2, 2), (3, 2), (5, 3), (8, 4)]:
        table = rng.multinomial(raters, rng.dirichlet(np.ones(k)), size=25)
        assert fleiss_kappa(table, n_bootstrap=0).kappa == pytest.approx(
            sm_fleiss_kappa(table), abs=1e-12)


def test_unequal_raters_by_hand():
    # agreement per row: 1, 0, 1, 1/3 -> p_a = 7/12; shares (1, 0), (1/2, 1/2), (0, 1),
    # (2/3, 1/3) -> pi = (13/24, 11/24), p_e = 290/576; kappa = 46/286. The single-rater row
    # [1, 0] is ignored.
    res = fleiss_kappa([[2, 0], [1, 1], [0, 3], [2, 1], [1, 0]], n_bootstrap=0)
    assert res.p_observed == pytest.approx(7 / 12)
    assert res.p_expected == pytest.approx(290 / 576)
    assert res.kappa == pytest.approx(46 / 286)
    assert (res.n_subjects, res.n_ratings, res.raters_min, res.raters_max) == (4, 10, 2, 3)


def test_bootstrap_interval_is_seeded_and_brackets_the_estimate():
    table, _ = aggregate_raters(FLEISS_1971)
    a = fleiss_kappa(table, n_bootstrap=500, seed=3)
    b = fleiss_kappa(table, n_bootstrap=500, seed=3)
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)
    assert a.ci_low < a.kappa < a.ci_high
    assert a.ci_low > 0.2 and a.ci_high < 0.65


def test_degenerate_tables_give_a_reason():
    same = fleiss_kappa([[3, 0], [2, 0], [4, 0]])
    assert same.kappa is None and "one category" in same.reason
    single = fleiss_kappa([[1, 0], [0, 1]])
    assert single.kappa is None and single.n_subjects == 0 and "at least 2" in single.reason
    json.dumps(to_jsonable(same), allow_nan=False)


def reads_for_fleiss():
    # arm A: c1 by 3 readers (+, +, -), c2 by 3 (-, -, -), c3 by 2 (+, -), c4 by 1 (+)
    # arm B: c1 by 2 (+, +), c2 by 2 (-, -)
    calls = {("A", "c1"): [1, 1, 0], ("A", "c2"): [0, 0, 0], ("A", "c3"): [1, 0],
             ("A", "c4"): [1], ("B", "c1"): [1, 1], ("B", "c2"): [0, 0]}
    reads = [Read(f"r{i}", case, arm, final_positive=bool(v), truth=True)
             for (arm, case), values in calls.items() for i, v in enumerate(values)]
    reads.append(Read("r9", "c2", "A", kind="training", final_positive=True))
    return reads


def test_fleiss_by_arm_uses_cases_read_by_at_least_two_readers():
    a, b = fleiss_by_arm(reads_for_fleiss(), n_bootstrap=0)
    assert (a.arm, a.n_cases_read, a.modal_raters) == ("A", 4, 3)
    expected = fleiss_kappa([[1, 2], [3, 0], [1, 1]], n_bootstrap=0).kappa
    assert a.kappa.kappa == pytest.approx(expected)
    assert a.kappa.n_subjects == 3
    assert b.kappa.kappa == pytest.approx(1.0)
    json.dumps(to_jsonable([a, b]), allow_nan=False)


def test_modal_only_keeps_the_cases_with_the_most_common_number_of_readers():
    a, _ = fleiss_by_arm(reads_for_fleiss(), modal_only=True, n_bootstrap=0)
    assert a.kappa.n_subjects == 2
    assert a.kappa.kappa == pytest.approx(sm_fleiss_kappa(np.array([[1, 2], [3, 0]])))


def test_cohen_kappa_by_hand_and_against_statsmodels():
    table = [[20, 5], [10, 15]]
    res = cohen_kappa(table)
    # p_o = 35/50 = 0.7; marginals (0.5, 0.5) and (0.6, 0.4): p_e = 0.5; kappa = 0.2/0.5
    assert (res.p_observed, res.p_expected) == pytest.approx((0.7, 0.5))
    assert res.kappa == pytest.approx(0.4)
    ref = cohens_kappa(np.array(table))
    assert res.se == pytest.approx(ref.std_kappa, rel=1e-12)
    assert (res.ci_low, res.ci_high) == pytest.approx((ref.kappa_low, ref.kappa_upp))


def test_reader_ai_kappa_tabulates_reader_calls_against_ai_calls():
    calls = [(True, True), (True, True), (False, False), (True, False), (False, False)]
    reads = [Read("r1", f"c{i}", "B", final_positive=f, ai_positive=a, ai_shown=True)
             for i, (f, a) in enumerate(calls)]
    reads.append(Read("r1", "c9", "A", final_positive=True))  # no AI call: not tabulated
    (res,) = reader_ai_kappa(reads)
    assert (res.arm, res.reader, res.n) == ("B", "r1", 5)
    assert res.table == ((2, 0), (1, 2))
    # p_o = 4/5; reader (2/5, 3/5), AI (3/5, 2/5): p_e = 12/25; kappa = (20 - 12)/(25 - 12)
    assert res.kappa == pytest.approx(8 / 13)
    constant = cohen_kappa([[0, 0], [0, 4]])
    assert constant.kappa is None and "single category" in constant.reason
