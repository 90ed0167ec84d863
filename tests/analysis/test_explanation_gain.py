import json

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep

from analysis.stats.explanation_gain import (
    by_experience,
    case_gains,
    explanation_gain,
    newcombe_difference,
    spearman,
)
from analysis.stats.inference import to_jsonable
from analysis.stats.reads import Read

TRUTH = {"c1": True, "c2": False, "c3": True, "c4": False}


def scored(reader, case, arm, correct, **kw):
    truth = TRUTH[case]
    return Read(reader, case, arm, truth=truth, final_positive=truth if correct else not truth,
                **kw)


def hand_reads():
    return [
        # unaided U: 3 of 5 correct
        scored("r1", "c1", "U", True), scored("r1", "c2", "U", False),
        scored("r2", "c1", "U", True), scored("r2", "c3", "U", False),
        scored("r3", "c4", "U", True),
        # explainer E1: 5 of 6 correct
        scored("r1", "c3", "E1", True), scored("r1", "c4", "E1", True),
        scored("r2", "c2", "E1", True), scored("r2", "c4", "E1", False),
        scored("r3", "c1", "E1", True), scored("r3", "c2", "E1", True),
        # explainer E2: 1 of 2 correct
        scored("r1", "c1", "E2", False), scored("r2", "c4", "E2", True),
        # not scored: training, unknown truth
        scored("r3", "c3", "E1", False, kind="training"),
        Read("r3", "c9", "E1", final_positive=True),
    ]


METRIC_E1 = {"c1": 0.1, "c2": 0.9, "c3": 0.5, "c4": 0.2, "c9": 1.0}


def test_arm_difference_and_per_case_gain_by_hand():
    res = explanation_gain(hand_reads(), "U", metrics={"E1": METRIC_E1}, n_bootstrap=200)
    e1, e2 = res.arms
    assert (e1.arm, e1.unaided) == ("E1", "U")
    assert (e1.accuracy_arm.successes, e1.accuracy_arm.total) == (5, 6)
    assert (e1.accuracy_unaided.successes, e1.accuracy_unaided.total) == (3, 5)
    assert e1.difference == pytest.approx(5 / 6 - 3 / 5)
    # c1: 1/1 - 2/2; c2: 2/2 - 0/1; c3: 1/1 - 0/1; c4: 1/2 - 1/1
    assert [(g.case, g.gain) for g in e1.per_case] == [("c1", 0.0), ("c2", 1.0), ("c3", 1.0),
                                                       ("c4", -0.5)]
    assert (e1.per_case[3].n_arm, e1.per_case[3].correct_arm) == (2, 1)
    assert e1.n_cases == 4
    assert e2.difference == pytest.approx(1 / 2 - 3 / 5)
    assert e2.correlation is None  # no metric given for E2
    low, high = newcombe_difference(5, 6, 3, 5)
    assert (e1.newcombe_ci_low, e1.newcombe_ci_high) == (low, high)


def test_spearman_correlation_by_hand():
    gains = case_gains(hand_reads(), "E1", "U")
    corr = spearman(METRIC_E1, gains)
    # metric ranks (1, 4, 3, 2); gain ranks (2, 3.5, 3.5, 1): rho = 3.5 / sqrt(5 * 4.5)
    assert corr.n == 4
    assert corr.rho == pytest.approx(3.5 / np.sqrt(22.5))
    assert corr.p_value == pytest.approx(
        stats.spearmanr([0.1, 0.9, 0.5, 0.2], [0.0, 1.0, 1.0, -0.5]).pvalue)


def test_spearman_needs_three_cases_and_variation():
    gains = case_gains(hand_reads(), "E1", "U")
    few = spearman({"c1": 1.0, "c2": 2.0}, gains)
    assert few.rho is None and few.n == 2 and "at least 3" in few.reason
    flat = spearman({"c1": 1.0, "c2": 1.0, "c3": 1.0}, gains)
    assert flat.rho is None and "metric is constant" in flat.reason


@pytest.mark.parametrize(("x1", "n1", "x2", "n2", "low", "high"), [
    (56, 70, 48, 80, 0.0524, 0.3339),  # Newcombe (1998) Table II, method 10
    (9, 10, 3, 10, 0.1705, 0.8090),
    (10, 10, 0, 20, 0.6791, 1.0000),
])
def test_newcombe_interval_matches_the_published_values(x1, n1, x2, n2, low, high):
    got = newcombe_difference(x1, n1, x2, n2)
    assert got == pytest.approx((low, high), abs=6e-5)


@pytest.mark.parametrize(("x1", "n1", "x2", "n2"), [(5, 6, 3, 5), (0, 10, 0, 20), (17, 40, 25, 31)])
def test_newcombe_interval_equals_statsmodels(x1, n1, x2, n2):
    ref = confint_proportions_2indep(x1, n1, x2, n2, method="newcomb", compare="diff")
    assert newcombe_difference(x1, n1, x2, n2) == pytest.approx(ref, abs=1e-10)
    assert newcombe_difference(1, 2, 0, 0) == (None, None)


def simulated(n_cases, shared_difficulty, seed=9):
    """Each case read once unaided (U) and once with the explainer (E), by different readers."""
    rng = np.random.default_rng(seed)
    reads = []
    for c in range(n_cases):
        ease = rng.normal(0, 2.5) if shared_difficulty else 0.0
        for arm, shift in (("U", 0.4), ("E", 1.1)):
            correct = rng.random() < 1 / (1 + np.exp(-(shift + ease)))
            reads.append(Read(f"{arm}{c % 5}", f"c{c}", arm, truth=True, final_positive=correct))
    return reads


def test_case_bootstrap_agrees_with_newcombe_for_independent_reads():
    (e,) = explanation_gain(simulated(400, False), "U", n_bootstrap=2000).arms
    assert e.bootstrap_ci_low < e.difference < e.bootstrap_ci_high
    boot_width = e.bootstrap_ci_high - e.bootstrap_ci_low
    assert boot_width == pytest.approx(e.newcombe_ci_high - e.newcombe_ci_low, rel=0.1)


def paired_width(reads):
    """Normal-theory width for the mean per-case difference (one read per case and arm)."""
    diff = {}
    for r in reads:
        diff[r.case] = diff.get(r.case, 0) + (1 if r.arm == "E" else -1) * int(r.final_positive)
    d = np.array(list(diff.values()), dtype=float)
    return 2 * 1.959964 * d.std() / np.sqrt(d.size)


def test_case_bootstrap_follows_the_pairing_when_case_difficulty_is_shared_by_both_arms():
    reads = simulated(400, True)
    (e,) = explanation_gain(reads, "U", n_bootstrap=2000).arms
    boot_width = e.bootstrap_ci_high - e.bootstrap_ci_low
    assert boot_width == pytest.approx(paired_width(reads), rel=0.1)
    assert boot_width < 0.9 * (e.newcombe_ci_high - e.newcombe_ci_low)


def test_bootstrap_is_seeded_and_independent_of_the_other_arms():
    reads = hand_reads()
    a = explanation_gain(reads, "U", n_bootstrap=300, seed=5).arms[0]
    b = explanation_gain([r for r in reads if r.arm != "E2"], "U", n_bootstrap=300,
                         seed=5).arms[0]
    assert (a.bootstrap_ci_low, a.bootstrap_ci_high) == (b.bootstrap_ci_low,
                                                         b.bootstrap_ci_high)
    c = explanation_gain(reads, "U", n_bootstrap=300, seed=6).arms[0]
    assert (a.bootstrap_ci_low, a.bootstrap_ci_high) != (c.bootstrap_ci_low,
                                                         c.bootstrap_ci_high)


def test_first_stage_is_the_unaided_reading_when_no_arm_is_named():
    first_final = [(False, True), (False, True), (True, True), (False, False)]
    cases = ["c1", "c2", "c1", "c3"]
    reads = [Read(f"r{i}", c, "E", truth=TRUTH[c],
                  first_positive=TRUTH[c] if f else not TRUTH[c],
                  final_positive=TRUTH[c] if g else not TRUTH[c])
             for i, (c, (f, g)) in enumerate(zip(cases, first_final, strict=True))]
    reads.append(Read("r9", "c1", "U", truth=True, final_positive=True))  # single-stage arm
    res = explanation_gain(reads, None, n_bootstrap=0)
    (e,) = res.arms
    assert (res.unaided, e.unaided) == ("first stage", "first stage")
    assert e.accuracy_unaided.successes == 1 and e.accuracy_arm.successes == 3
    assert e.difference == pytest.approx(0.5)
    # c1: final 2/2 - first 1/2; c2: 1 - 0; c3: 0 - 0
    assert [g.gain for g in e.per_case] == [0.5, 1.0, 0.0]
    assert e.bootstrap_ci_low is None


def test_arm_without_scored_reads_gives_a_reason_and_valid_json():
    reads = hand_reads() + [Read("r1", "c1", "E3", final_positive=True)]
    res = explanation_gain(reads, "U", n_bootstrap=50)
    e3 = res.arms[-1]
    assert e3.arm == "E3" and e3.difference is None and "no scored reads in E3" in e3.reason
    json.dumps(to_jsonable(res), allow_nan=False)


def test_by_experience_splits_at_the_threshold_and_drops_unknown_experience():
    reads = [Read("r1", "c1", "A", reader_experience=2.0),
             Read("r2", "c1", "A", reader_experience=5.0),
             Read("r3", "c1", "A", reader_experience=12.5),
             Read("r4", "c1", "A")]
    below, above = by_experience(reads, 5)
    assert [r.reader for r in below] == ["r1"]
    assert [r.reader for r in above] == ["r2", "r3"]
