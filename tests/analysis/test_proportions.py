import json

import pytest
from statsmodels.stats.proportion import proportion_confint

from analysis.stats.inference import to_jsonable
from analysis.stats.proportions import diagnostic_proportions, wilson
from analysis.stats.reads import Read


@pytest.mark.parametrize(("x", "n", "conf"), [
    (0, 1, 0.95), (1, 1, 0.95), (0, 12, 0.95), (12, 12, 0.95), (3, 17, 0.95), (50, 97, 0.9),
    (7, 9, 0.99), (123, 400, 0.8),
])
def test_wilson_interval_equals_statsmodels(x, n, conf):
    low, high = proportion_confint(x, n, alpha=1 - conf, method="wilson")
    p = wilson(x, n, conf)
    assert p.estimate == pytest.approx(x / n)
    assert p.ci_low == pytest.approx(low, abs=1e-12)
    assert p.ci_high == pytest.approx(high, abs=1e-12)


def test_wilson_interval_of_8_out_of_10_by_hand():
    # z = 1.959964, z^2 = 3.841459; centre = (0.8 + 0.192073) / 1.384146 = 0.716741
    # half = 1.959964 / 1.384146 * sqrt(0.016 + 0.009604) = 1.416008 * 0.160011 = 0.226577
    p = wilson(8, 10)
    assert p.ci_low == pytest.approx(0.716741 - 0.226577, abs=2e-6)
    assert p.ci_high == pytest.approx(0.716741 + 0.226577, abs=2e-6)


def test_empty_denominator_gives_none_not_an_error():
    p = wilson(0, 0)
    assert (p.successes, p.total, p.estimate, p.ci_low, p.ci_high) == (0, 0, None, None, None)


def test_impossible_counts_and_confidence_levels_are_refused():
    with pytest.raises(ValueError):
        wilson(3, 2)
    with pytest.raises(ValueError):
        wilson(1, 2, conf_level=1.0)


def reads():
    truth = {"c1": True, "c2": False, "c3": True, "c4": False}
    calls = [("A", "r1", "c1", True), ("A", "r1", "c2", True), ("A", "r1", "c3", False),
             ("A", "r2", "c1", True), ("A", "r2", "c2", False), ("A", "r2", "c4", False),
             ("B", "r1", "c2", False), ("B", "r1", "c4", True)]
    out = [Read(rd, c, arm, truth=truth[c], final_positive=call, first_positive=not call)
           for arm, rd, c, call in calls]
    out += [Read("r1", "c5", "A", truth=None, final_positive=True),
            Read("r2", "c3", "A", truth=True),
            Read("r2", "c3", "A", kind="training", truth=True, final_positive=True)]
    return out


def counts(p):
    return (p.successes, p.total)


def test_pooled_and_per_reader_proportions_by_hand():
    res = diagnostic_proportions(reads())
    a, b = res.arms
    assert (a.arm, a.reader) == ("A", None)
    # arm A positives: r1 c1 TP, r1 c3 FN, r2 c1 TP; negatives: r1 c2 FP, r2 c2 TN, r2 c4 TN
    assert counts(a.sensitivity) == (2, 3)
    assert counts(a.specificity) == (2, 3)
    assert counts(a.accuracy) == (4, 6)
    assert a.accuracy.estimate == pytest.approx(2 / 3)
    # arm B read no positive case: its sensitivity is empty
    assert b.sensitivity.estimate is None and counts(b.sensitivity) == (0, 0)
    assert counts(b.specificity) == (1, 2)
    by = {(p.arm, p.reader): p for p in res.per_reader}
    assert set(by) == {("A", "r1"), ("A", "r2"), ("B", "r1")}
    assert [counts(by["A", "r1"].sensitivity), counts(by["A", "r1"].specificity),
            counts(by["A", "r1"].accuracy)] == [(1, 2), (0, 1), (1, 3)]
    assert [counts(by["A", "r2"].sensitivity), counts(by["A", "r2"].specificity),
            counts(by["A", "r2"].accuracy)] == [(1, 1), (2, 2), (3, 3)]
    assert (res.n_reads, res.n_excluded) == (8, 2)
    low, high = proportion_confint(4, 6, method="wilson")
    assert (a.accuracy.ci_low, a.accuracy.ci_high) == pytest.approx((low, high))


def test_first_stage_proportions_use_the_unaided_calls():
    res = diagnostic_proportions(reads(), stage="first")
    a = res.arms[0]
    # first calls are the opposite of the final ones: arm A TP 1 of 3, TN 1 of 3
    assert counts(a.sensitivity) == (1, 3)
    assert counts(a.specificity) == (1, 3)


def test_result_is_valid_json_without_nan():
    text = json.dumps(to_jsonable(diagnostic_proportions(reads())), allow_nan=False)
    assert '"sensitivity": {"successes": 0, "total": 0, "estimate": null' in text
