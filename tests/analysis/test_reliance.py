import json

import pytest
from statsmodels.stats.proportion import proportion_confint

from analysis.stats.inference import to_jsonable
from analysis.stats.reads import Read
from analysis.stats.reliance import outcome_key, reliance, trial

# (arm, reader, ai_right, first_right, final_right, number of reads)
PATTERNS = [
    ("A", "r1", True, True, True, 3),     # agreed with a right AI throughout
    ("A", "r1", True, False, True, 2),    # switched to a right AI
    ("A", "r1", True, False, False, 1),   # rejected a right AI (under-reliance)
    ("A", "r1", False, True, True, 1),    # kept own right answer against a wrong AI
    ("A", "r1", False, True, False, 2),   # adopted a wrong AI (over-reliance)
    ("A", "r2", False, False, False, 1),  # agreed with a wrong AI throughout
    ("B", "r1", True, False, True, 2),
    ("B", "r2", True, True, True, 2),
]


def build_reads():
    reads = []
    i = 0
    for arm, reader, ai_right, first_right, final_right, n in PATTERNS:
        for _ in range(n):
            truth = i % 2 == 0  # alternate the truth so both classes are exercised
            reads.append(Read(
                reader=reader, case=f"c{i}", arm=arm, truth=truth, ai_shown=True,
                ai_positive=truth if ai_right else not truth,
                first_positive=truth if first_right else not truth,
                final_positive=truth if final_right else not truth,
            ))
            i += 1
    reads += [
        Read("r1", "x1", "A", truth=True, first_positive=True, final_positive=True),  # no AI
        Read("r1", "x2", "A", truth=True, ai_shown=True, ai_positive=True,
             final_positive=True),  # single-stage: no first call
        Read("r1", "x3", "A", kind="training", truth=True, ai_shown=True, ai_positive=False,
             first_positive=True, final_positive=False),
    ]
    return reads


def frac(p):
    return None if p.total == 0 else (p.successes, p.total)


def test_trial_pattern_is_derived_from_the_calls_and_truth():
    t = trial(Read("r", "c", "A", truth=False, ai_shown=True, ai_positive=True,
                   first_positive=False, final_positive=True))
    assert (t.ai_right, t.first_right, t.final_right) == (False, True, False)
    assert t.switched and not t.first_agrees and t.final_agrees
    assert trial(Read("r", "c", "A", truth=False, ai_shown=False, ai_positive=True,
                      first_positive=False, final_positive=True)) is None


def test_arm_a_measures_by_hand():
    res = reliance(build_reads())
    a = next(m for m in res.arms if m.arm == "A")
    assert a.n_reads == 10
    assert frac(a.switch_rate) == (4, 10)       # 2 switched to right AI + 2 to wrong AI
    assert frac(a.agreement_before) == (4, 10)  # 3 right-right + 1 wrong-wrong
    assert frac(a.agreement_after) == (8, 10)
    assert frac(a.accuracy_before) == (6, 10)
    assert frac(a.accuracy_after) == (6, 10)
    assert frac(a.ai_accuracy) == (6, 10)
    assert frac(a.rair) == (2, 3)               # of 3 wrong-first/right-AI reads, 2 switched
    assert frac(a.rsr) == (1, 3)                # of 3 right-first/wrong-AI reads, 1 kept
    assert frac(a.over_reliance) == (2, 4)
    assert frac(a.over_reliance_given_disagreement) == (2, 3)
    assert frac(a.under_reliance) == (1, 6)
    assert frac(a.under_reliance_given_disagreement) == (1, 3)
    assert a.over_reliance_given_disagreement.estimate == pytest.approx(1 - a.rsr.estimate)
    assert a.under_reliance_given_disagreement.estimate == pytest.approx(1 - a.rair.estimate)
    assert a.outcomes[outcome_key(False, True, False)] == 2
    assert sum(a.outcomes.values()) == 10
    low, high = proportion_confint(2, 3, method="wilson")
    assert (a.rair.ci_low, a.rair.ci_high) == pytest.approx((low, high))


def test_arm_without_wrong_ai_has_empty_self_reliance_and_over_reliance():
    b = next(m for m in reliance(build_reads()).arms if m.arm == "B")
    assert b.n_reads == 4
    assert frac(b.rair) == (2, 2)
    assert b.rsr.estimate is None and b.over_reliance.estimate is None
    assert frac(b.under_reliance) == (0, 4)


def test_overall_ai_wrong_and_per_reader_measures_by_hand():
    res = reliance(build_reads())
    assert (res.n_eligible, res.n_excluded) == (14, 2)
    assert res.overall.arm is None and res.overall.n_reads == 14
    assert frac(res.overall.rair) == (4, 5)
    assert frac(res.overall.switch_rate) == (6, 14)
    wrong = res.ai_wrong_overall
    assert (wrong.subset, wrong.n_reads) == ("ai_wrong", 4)
    assert frac(wrong.switch_rate) == (2, 4)
    assert frac(wrong.agreement_before) == (1, 4)
    assert frac(wrong.agreement_after) == (3, 4)
    assert frac(wrong.rsr) == (1, 3)
    assert wrong.rair.estimate is None
    assert [m.n_reads for m in res.ai_wrong_arms] == [4, 0]
    by = {(m.arm, m.reader): m for m in res.per_reader}
    assert frac(by["A", "r2"].agreement_before) == (1, 1)
    assert by["A", "r2"].rsr.estimate is None
    assert frac(by["A", "r1"].agreement_before) == (3, 9)
    assert frac(by["B", "r2"].switch_rate) == (0, 2)


def test_no_eligible_reads_gives_empty_measures_and_valid_json():
    res = reliance([Read("r1", "c1", "A", truth=True, final_positive=True)])
    assert res.n_eligible == 0 and res.arms == ()
    assert res.overall.switch_rate.estimate is None
    json.dumps(to_jsonable(res), allow_nan=False)
