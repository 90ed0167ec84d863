"""Standard scoring of the end-of-session questionnaires (NASA-TLX, SUS, Jian et al. trust)."""

import json
import math
from dataclasses import asdict

import numpy as np
import pytest
from scipy import stats

from analysis.stats.questionnaires import (
    INSTRUMENTS,
    SUS,
    TLX,
    TLX_SUBSCALES,
    TRUST,
    QuestionnaireError,
    compare_groups,
    score_sus,
    score_tlx,
    score_trust,
    scores_by_group,
    summarize_groups,
    tlx_pairs,
)


def sus(*values):
    return {f"sus_{n}": v for n, v in enumerate(values, start=1)}


def trust(*values):
    return {f"jian_{n}": v for n, v in enumerate(values, start=1)}


# The instruments as data ------------------------------------------------------------------------


def test_instruments_have_the_published_shape():
    assert [len(i.items) for i in (TLX, SUS, TRUST)] == [6, 10, 12]
    assert set(INSTRUMENTS) == {"nasa_tlx", "sus", "jian_trust"}
    assert [i.reverse for i in SUS.items] == [False, True] * 5  # even items negatively worded
    assert [i.key for i in TRUST.items if i.reverse] == [f"jian_{n}" for n in range(1, 6)]
    assert {i.subscale for i in TRUST.items[:5]} == {"distrust"}
    assert {i.subscale for i in TRUST.items[5:]} == {"trust"}
    assert TRUST.items[10].text == "I can trust the system."
    assert SUS.items[0].text == "I think that I would like to use this system frequently."
    assert (TLX.low, TLX.high, TLX.step) == (0, 100, 5)
    assert len(range(TLX.low, TLX.high + 1, TLX.step)) == 21


# SUS --------------------------------------------------------------------------------------------


def test_sus_all_neutral_is_50():
    assert score_sus(sus(*[3] * 10)).score == 50


def test_sus_best_and_worst_answers():
    assert score_sus(sus(*[5, 1] * 5)).score == 100
    assert score_sus(sus(*[1, 5] * 5)).score == 0


def test_sus_mixed_example_by_hand():
    # answers 4 2 4 1 3 3 5 2 4 3
    # odd items (x - 1):  4 4 3 5 4 -> 3 + 3 + 2 + 4 + 3 = 15
    # even items (5 - x): 2 1 3 2 3 -> 3 + 4 + 2 + 3 + 2 = 14
    # (15 + 14) * 2.5 = 72.5
    result = score_sus(sus(4, 2, 4, 1, 3, 3, 5, 2, 4, 3))
    assert result.score == 72.5
    assert result.contributions["sus_2"] == 3
    assert result.contributions["sus_7"] == 4


def test_sus_refuses_bad_answers_with_one_line_each():
    answers = sus(3, 3, 3, 3, 3, 3, 3, 3, 6, 2.5)
    del answers["sus_1"]
    answers["sus_11"] = 3
    with pytest.raises(QuestionnaireError) as caught:
        score_sus(answers)
    problems = caught.value.problems
    assert len(problems) == 4
    assert "sus_1: missing" in problems
    assert any(p.startswith("sus_11:") and "not an item" in p for p in problems)
    assert any(p.startswith("sus_9:") and "outside 1-5" in p for p in problems)
    assert any(p.startswith("sus_10:") and "step" in p for p in problems)
    assert isinstance(caught.value, ValueError)
    assert str(caught.value).count("\n") == 3


@pytest.mark.parametrize("bad", [None, "3", True, float("nan")])
def test_sus_refuses_non_numbers(bad):
    with pytest.raises(QuestionnaireError) as caught:
        score_sus(sus(bad, *[3] * 9))
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith("sus_1:")


def test_sus_accepts_whole_floats_and_numpy_ints():
    assert score_sus(sus(*[np.int64(3)] * 5, *[3.0] * 5)).score == 50


# NASA-TLX ----------------------------------------------------------------------------------------

RATINGS = {
    "mental_demand": 70,
    "physical_demand": 10,
    "temporal_demand": 50,
    "performance": 30,
    "effort": 60,
    "frustration": 40,
}
# A reader who always picks the subscale ranked higher in this order: weights 5 4 3 2 1 0.
RANKING = ["mental_demand", "effort", "temporal_demand", "frustration", "performance",
           "physical_demand"]


def full_comparisons(reverse_order=False):
    rows = []
    for a, b in tlx_pairs():
        winner = min(a, b, key=RANKING.index)
        rows.append((b, a, winner) if reverse_order else (a, b, winner))
    return rows


def test_tlx_pairs_are_the_15_distinct_pairs():
    pairs = tlx_pairs()
    assert len(pairs) == 15
    assert len({frozenset(p) for p in pairs}) == 15
    assert all(a != b for a, b in pairs)


def test_raw_tlx_is_the_unweighted_mean():
    result = score_tlx(RATINGS)
    assert result.raw_tlx == pytest.approx((70 + 10 + 50 + 30 + 60 + 40) / 6)  # 43.33
    assert result.weights is None
    assert result.weighted_tlx is None


@pytest.mark.parametrize("reverse_order", [False, True])
def test_weighted_tlx_by_hand(reverse_order):
    result = score_tlx(RATINGS, full_comparisons(reverse_order))
    assert result.weights == {"mental_demand": 5, "effort": 4, "temporal_demand": 3,
                              "frustration": 2, "performance": 1, "physical_demand": 0}
    assert sum(result.weights.values()) == 15
    # (5*70 + 0*10 + 3*50 + 1*30 + 4*60 + 2*40) / 15 = 850 / 15 = 56.67
    assert result.weighted_tlx == pytest.approx(850 / 15)
    assert result.raw_tlx == pytest.approx(260 / 6)


def test_weighted_tlx_counts_choices_not_a_ranking():
    # an intransitive reader: each pair won by its first subscale in tlx_pairs() order, except
    # that physical_demand beats mental_demand -> mental 4, physical 5, temporal 3, perf 2, ...
    rows = [(a, b, a) for a, b in tlx_pairs()]
    rows[0] = ("mental_demand", "physical_demand", "physical_demand")
    result = score_tlx(dict.fromkeys(TLX_SUBSCALES, 50) | {"physical_demand": 100}, rows)
    assert result.weights == {"mental_demand": 4, "physical_demand": 5, "temporal_demand": 3,
                              "performance": 2, "effort": 1, "frustration": 0}
    # (4*50 + 5*100 + (3+2+1+0)*50) / 15 = 1000 / 15
    assert result.weighted_tlx == pytest.approx(1000 / 15)


def test_tlx_missing_pair_is_one_line():
    with pytest.raises(QuestionnaireError) as caught:
        score_tlx(RATINGS, full_comparisons()[1:])
    assert caught.value.problems == ["mental_demand vs physical_demand: missing"]


def test_tlx_repeated_pair_is_one_line():
    rows = full_comparisons()
    rows.append(("temporal_demand", "mental_demand", "temporal_demand"))
    with pytest.raises(QuestionnaireError) as caught:
        score_tlx(RATINGS, rows)
    assert caught.value.problems == ["mental_demand vs temporal_demand: answered 2 times (2, 16)"]


def test_tlx_choice_outside_its_pair_is_one_line():
    rows = full_comparisons()
    rows[3] = ("mental_demand", "effort", "frustration")
    with pytest.raises(QuestionnaireError) as caught:
        score_tlx(RATINGS, rows)
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith("comparison 4 (mental_demand vs effort)")


def test_tlx_bad_entries_each_reported_with_the_pairs_they_leave_missing():
    rows = full_comparisons()
    rows[0] = ("effort", "effort", "effort")
    rows[1] = ("mental_demand", "boredom", "boredom")
    rows[2] = "mental_demand"
    with pytest.raises(QuestionnaireError) as caught:
        score_tlx(RATINGS, rows)
    problems = caught.value.problems
    assert problems[:3] == [
        "comparison 1: compares effort with itself",
        "comparison 2: unknown subscale 'boredom'",
        "comparison 3: 'mental_demand' is not (subscale, subscale, chosen)",
    ]
    assert problems[3:] == [
        "mental_demand vs physical_demand: missing",
        "mental_demand vs temporal_demand: missing",
        "mental_demand vs performance: missing",
    ]


@pytest.mark.parametrize(("value", "words"), [(52, "step of 5"), (2.5, "step of 5"),
                                              (105, "outside 0-100"), (-5, "outside 0-100")])
def test_tlx_ratings_off_the_scale_refused(value, words):
    with pytest.raises(QuestionnaireError) as caught:
        score_tlx(RATINGS | {"effort": value})
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith("effort:")
    assert words in caught.value.problems[0]


def test_tlx_rating_and_comparison_problems_reported_together():
    ratings = dict(RATINGS)
    del ratings["frustration"]
    with pytest.raises(QuestionnaireError) as caught:
        score_tlx(ratings, full_comparisons()[:-1])
    assert caught.value.problems == ["frustration: missing", "effort vs frustration: missing"]


def test_tlx_bounds_accepted():
    result = score_tlx(dict.fromkeys(TLX_SUBSCALES, 0) | {"effort": 100})
    assert result.raw_tlx == pytest.approx(100 / 6)


# Trust in automation (Jian et al. 2000) ----------------------------------------------------------


def test_trust_reverse_keys_the_distrust_items():
    result = score_trust(trust(*[7] * 12))
    assert result.distrust_mean == 7
    assert result.trust_mean == 7
    assert result.trust == pytest.approx((5 * 1 + 7 * 7) / 12)  # 4.5


def test_trust_all_ones():
    result = score_trust(trust(*[1] * 12))
    assert (result.distrust_mean, result.trust_mean) == (1, 1)
    assert result.trust == pytest.approx((5 * 7 + 7 * 1) / 12)  # 3.5


def test_trust_full_trust_is_7_and_mixed_by_hand():
    assert score_trust(trust(*[1] * 5, *[7] * 7)).trust == 7
    # distrust 2 3 1 2 2 -> mean 2, reversed 6 5 7 6 6 = 30; trust 5 6 5 4 6 6 3 = 35, mean 5
    result = score_trust(trust(2, 3, 1, 2, 2, 5, 6, 5, 4, 6, 6, 3))
    assert result.distrust_mean == 2
    assert result.trust_mean == 5
    assert result.trust == pytest.approx(65 / 12)


def test_trust_range_and_step_validated():
    with pytest.raises(QuestionnaireError) as caught:
        score_trust(trust(0, 8, 4.5, *[4] * 8))
    assert caught.value.problems == [
        "jian_12: missing",
        "jian_1: 0 is outside 1-7",
        "jian_2: 8 is outside 1-7",
        "jian_3: 4.5 is not on the scale's step of 1",
    ]


# Across readers ---------------------------------------------------------------------------------


def test_summary_by_hand():
    groups = scores_by_group([("r1", "AI", 50), ("r2", "AI", 70), ("r3", "AI", 90), ("r4", "AI", 60),
                              ("r1", "no AI", 40)])
    ai, no_ai = summarize_groups(groups)
    assert (ai.group, ai.n, ai.mean, ai.median) == ("AI", 4, 67.5, 65)
    # deviations -17.5 2.5 22.5 -7.5; squares sum 875; 875 / 3 = 291.67
    assert ai.sd == pytest.approx(math.sqrt(875 / 3))
    assert (ai.minimum, ai.maximum) == (50, 90)
    assert (no_ai.n, no_ai.mean, no_ai.sd, no_ai.median) == (1, 40, None, 40)


def test_summary_of_empty_group_is_none_not_nan():
    (empty,) = summarize_groups({"AI": {}})
    assert (empty.n, empty.mean, empty.sd, empty.median) == (0, None, None, None)
    json.dumps(asdict(empty), allow_nan=False)


def test_scores_by_group_refuses_duplicates_and_non_numbers():
    with pytest.raises(QuestionnaireError) as caught:
        scores_by_group([("r1", "AI", 50), ("r1", "AI", 60), ("r2", "AI", float("nan")),
                         ("r3", "AI", "high")])
    assert len(caught.value.problems) == 3
    assert caught.value.problems[0] == "reader r1: more than one score in group AI"


PAIRED = {
    "AI": {"r1": 72.5, "r2": 80, "r3": 65, "r4": 90, "r5": 55, "r6": 77.5, "r7": 60},
    "no AI": {"r1": 60, "r2": 82.5, "r3": 50, "r4": 70, "r5": 57.5, "r6": 62.5, "r7": 45},
}


def test_paired_readers_use_wilcoxon_as_scipy():
    result = compare_groups(PAIRED, "AI", "no AI")
    readers = sorted(PAIRED["AI"])
    expected = stats.wilcoxon([PAIRED["AI"][r] for r in readers],
                              [PAIRED["no AI"][r] for r in readers])
    assert (result.test, result.paired, result.n_pairs) == ("wilcoxon", True, 7)
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.p_value == pytest.approx(expected.pvalue)
    diffs = [PAIRED["AI"][r] - PAIRED["no AI"][r] for r in readers]
    assert result.mean_difference == pytest.approx(np.mean(diffs))
    assert result.median_difference == pytest.approx(np.median(diffs))
    assert result.note is None


def test_pairing_is_by_reader_not_by_position():
    shuffled = {"AI": PAIRED["AI"], "no AI": dict(reversed(list(PAIRED["no AI"].items())))}
    assert compare_groups(shuffled, "AI", "no AI") == compare_groups(PAIRED, "AI", "no AI")


def test_different_readers_use_mann_whitney_as_scipy():
    groups = {"AI": {"a1": 72.5, "a2": 80, "a3": 65, "a4": 90},
              "no AI": {"b1": 60, "b2": 82.5, "b3": 50, "b4": 70, "b5": 57.5}}
    result = compare_groups(groups, "AI", "no AI")
    expected = stats.mannwhitneyu([72.5, 80, 65, 90], [60, 82.5, 50, 70, 57.5])
    assert (result.test, result.paired, result.n_pairs) == ("mann-whitney", False, None)
    assert (result.n_first, result.n_second) == (4, 5)
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.p_value == pytest.approx(expected.pvalue)
    assert result.mean_difference == pytest.approx(76.875 - 64)
    assert result.median_difference == pytest.approx(76.25 - 60)


def test_forced_pairing_uses_readers_in_both_and_says_so():
    groups = {"AI": PAIRED["AI"] | {"r8": 99}, "no AI": PAIRED["no AI"]}
    auto = compare_groups(groups, "AI", "no AI")
    assert auto.test == "mann-whitney"
    assert auto.note == "7 reader(s) in both groups treated as independent"
    forced = compare_groups(groups, "AI", "no AI", paired=True)
    assert forced.test == "wilcoxon"
    assert forced.n_pairs == 7
    assert forced.p_value == pytest.approx(compare_groups(PAIRED, "AI", "no AI").p_value)
    assert forced.note == "1 score(s) of readers in only one group left out"


def test_degenerate_comparisons_give_none_with_a_reason():
    same = compare_groups({"AI": {"r1": 50, "r2": 60}, "no AI": {"r1": 50, "r2": 60}}, "AI", "no AI")
    assert (same.test, same.statistic, same.p_value) == (None, None, None)
    assert "equal" in same.note
    missing = compare_groups({"AI": {"r1": 50}}, "AI", "no AI")
    assert (missing.test, missing.p_value, missing.note) == (None, None, "a group has no scores")


def test_results_round_trip_through_json():
    results = [
        score_tlx(RATINGS, full_comparisons()),
        score_tlx(RATINGS),
        score_sus(sus(*[3] * 10)),
        score_trust(trust(*[7] * 12)),
        *summarize_groups(PAIRED | {"empty": {}, "one": {"r1": 1.0}}),
        compare_groups(PAIRED, "AI", "no AI"),
        compare_groups(PAIRED, "AI", "no AI", paired=False),
        compare_groups({"AI": {"r1": 50}, "no AI": {"r1": 50}}, "AI", "no AI"),
    ]
    for result in results:
        text = json.dumps(asdict(result), allow_nan=False)
        assert json.loads(text) == json.loads(json.dumps(asdict(result)))
    assert json.loads(json.dumps(asdict(results[0])))["weighted_tlx"] == pytest.approx(850 / 15)
