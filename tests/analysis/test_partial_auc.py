import csv
import math

import numpy as np
import pytest

from analysis.stats.partial_auc import (
    area_between,
    chance_area,
    mcclish,
    mrmcaov_partial_area,
    partial_auc,
    partial_auc_fpr,
    roc_points,
)
from analysis.stats.roc import auc
from tests.analysis.reference_data import shared_path

# neg = [1, 2], pos = [2, 3]: thresholds 3, 2, 1 give the ROC polyline
# (0, 0) -> (0, 1/2) -> (1/2, 1) -> (1, 1); between FPR 0 and 1/2 it is TPR = 1/2 + FPR.
NEG, POS = np.array([1.0, 2.0]), np.array([2.0, 3.0])


def test_roc_points_of_the_small_example():
    fpr, tpr = roc_points(NEG, POS)
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 1, 1])


def test_partial_area_up_to_an_fpr_inside_a_segment_is_interpolated():
    # FPR 0..1/4 (specificity 3/4..1): TPR(1/4) = 3/4, trapezoid 1/4 * (1/2 + 3/4) / 2 = 5/32.
    # McClish: min = (1/4)^2 / 2 = 1/32, max = 1/4: (1 + (5/32 - 1/32) / (7/32)) / 2 = 11/14.
    result = partial_auc(NEG, POS, (1.0, 0.75))
    assert result.area == pytest.approx(5 / 32)
    assert result.min_area == pytest.approx(1 / 32)
    assert result.max_area == pytest.approx(1 / 4)
    assert result.standardized == pytest.approx(11 / 14)
    assert partial_auc_fpr(NEG, POS, (0.0, 0.25)) == result


def test_partial_area_over_an_interior_fpr_range():
    # FPR 0.1..0.4: integral of (1/2 + f) = 0.3 / 2 + (0.16 - 0.01) / 2 = 0.225;
    # min = (0.16 - 0.01) / 2 = 0.075, max = 0.3: (1 + 0.15 / 0.225) / 2 = 5/6.
    result = partial_auc(NEG, POS, (0.6, 0.9), focus="specificity")
    assert result.area == pytest.approx(0.225)
    assert result.standardized == pytest.approx(5 / 6)


def test_partial_area_with_sensitivity_focus():
    # (TPR, specificity) points: (0, 1) (1/2, 1) (1, 1/2) (1, 0). TPR 0.25..0.75: specificity is
    # 1 up to TPR 1/2, then 1 - (t - 1/2): area 0.25 + 0.25 * (1 + 0.75) / 2 = 0.46875.
    # min = 0.5 - (0.5625 - 0.0625) / 2 = 0.25, max = 0.5: (1 + 0.21875 / 0.25) / 2 = 0.9375.
    result = partial_auc(NEG, POS, (0.75, 0.25), focus="sensitivity")
    assert result.area == pytest.approx(0.46875)
    assert result.min_area == pytest.approx(0.25)
    assert result.standardized == pytest.approx(0.9375)


@pytest.mark.parametrize("focus", ["specificity", "sensitivity"])
def test_the_full_range_gives_the_auc(focus):
    rng = np.random.default_rng(5)
    neg, pos = rng.normal(size=40).round(1), rng.normal(0.8, size=30).round(1)
    result = partial_auc(neg, pos, (0.0, 1.0), focus=focus)
    assert result.area == pytest.approx(auc(neg, pos), abs=1e-12)
    assert result.standardized == pytest.approx(auc(neg, pos), abs=1e-12)  # min 1/2, max 1


def test_partial_areas_over_adjacent_ranges_add_up():
    rng = np.random.default_rng(9)
    neg, pos = rng.normal(size=25), rng.normal(1, size=35)
    for focus in ("specificity", "sensitivity"):
        parts = [partial_auc(neg, pos, (lo, lo + 0.2), focus).area for lo in np.arange(0, 1, 0.2)]
        assert sum(parts) == pytest.approx(auc(neg, pos), abs=1e-12)


@pytest.mark.parametrize("focus", ["specificity", "sensitivity"])
def test_a_perfect_classifier_gets_the_range_width_and_standardised_one(focus):
    result = partial_auc([1.0, 2.0, 3.0], [4.0, 5.0], (0.8, 0.95), focus=focus)
    assert result.area == pytest.approx(0.15)
    assert result.standardized == pytest.approx(1.0)


@pytest.mark.parametrize("focus", ["specificity", "sensitivity"])
def test_a_chance_classifier_gets_the_diagonal_area_and_standardised_one_half(focus):
    # identical score sets: the ROC points (k/3, k/3) lie on the diagonal
    result = partial_auc([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], (0.9, 0.7), focus=focus)
    assert result.area == pytest.approx(chance_area(0.7, 0.9))
    assert result.standardized == pytest.approx(0.5)


def test_mcclish_is_undefined_below_the_chance_line():
    result = partial_auc([4.0, 5.0], [1.0, 2.0, 3.0], (0.9, 1.0))
    assert result.area == 0.0
    assert math.isnan(result.standardized)
    assert math.isnan(mcclish(0.001, 0.9, 1.0))


def test_area_between_ignores_vertical_segments():
    x, y = np.array([0.0, 0.5, 0.5, 1.0]), np.array([0.0, 0.2, 0.8, 1.0])
    # 0..0.5: trapezoid 0.5 * 0.2 / 2 = 0.05; 0.5..1: 0.5 * (0.8 + 1) / 2 = 0.45
    assert area_between(x, y, 0.0, 1.0) == pytest.approx(0.5)
    assert area_between(x, y, 0.5, 1.0) == pytest.approx(0.45)


def test_bad_ranges_and_focus_are_rejected():
    with pytest.raises(ValueError, match="within"):
        partial_auc(NEG, POS, (1.0, -0.2))
    with pytest.raises(ValueError, match="different"):
        partial_auc(NEG, POS, (0.8, 0.8))
    with pytest.raises(ValueError, match="focus"):
        partial_auc(NEG, POS, (0.8, 1.0), focus="se")
    with pytest.raises(ValueError, match="at least one"):
        partial_auc([], POS, (0.8, 1.0))


def _asah(column):
    rows = list(csv.DictReader(shared_path("delong_aSAH/aSAH.csv").open()))
    poor = np.array([row["outcome"] == "Poor" for row in rows])
    scores = np.array([float(row[column]) for row in rows])
    return scores[~poor], scores[poor]


# pROC's own test suite (xrobin/pROC, tests/testthat/test-auc.R) on its aSAH data, outcome Poor
# as cases: auc(roc(outcome, wfns / ndka), partial.auc = bounds, partial.auc.focus = focus,
# partial.auc.correct = FALSE / TRUE). None is pROC's NA (correction below the diagonal).
PROC_PARTIAL_AUCS = [
    ("wfns", "specificity", (1, 0.9), 0.0334417344173442, 0.649693339038653),
    ("wfns", "specificity", (0.9, 0.8), 0.0598373983739837, 0.763749402199904),
    ("wfns", "specificity", (0.5, 0), 0.488134475939354, 0.952537903757416),
    ("wfns", "specificity", (1, 0), 0.823678861788618, 0.823678861788618),
    ("ndka", "specificity", (1, 0.9), 0.0107046070460705, 0.530024247610897),
    ("ndka", "specificity", (0.9, 0.8), 0.0277777777777778, 0.575163398692811),
    ("ndka", "specificity", (0.5, 0), 0.416836043360434, 0.667344173441734),
    ("ndka", "specificity", (1, 0), 0.611957994579946, 0.611957994579946),
    ("wfns", "sensitivity", (1, 0.9), 0.0400999322493225, 0.68473648552275),
    ("wfns", "sensitivity", (0.9, 0.8), 0.0609953703703703, 0.770561002178649),
    ("wfns", "sensitivity", (0.5, 0), 0.483358739837398, 0.933434959349593),
    ("wfns", "sensitivity", (1, 0), 0.823678861788618, 0.823678861788618),
    ("ndka", "sensitivity", (1, 0.9), 0.0037940379403794, None),
    ("ndka", "sensitivity", (0.9, 0.8), 0.0242547425474255, 0.554439662043679),
    ("ndka", "sensitivity", (0.5, 0), 0.428523035230352, 0.714092140921409),
    ("ndka", "sensitivity", (1, 0), 0.611957994579946, 0.611957994579946),
]


@pytest.mark.parametrize(("column", "focus", "bounds", "area", "corrected"), PROC_PARTIAL_AUCS)
def test_partial_auc_on_asah_matches_proc(column, focus, bounds, area, corrected):
    neg, pos = _asah(column)
    result = partial_auc(neg, pos, bounds, focus=focus)
    assert result.area == pytest.approx(area, rel=1e-12, abs=1e-14)
    if corrected is None:
        assert math.isnan(result.standardized)
    else:
        assert result.standardized == pytest.approx(corrected, rel=1e-12)


def test_mrmcaov_takes_a_range_end_on_a_step_at_its_far_end():
    """MRMCaov 0.3.0: empirical_auc(truth, rating) = 0.7666667 but with partial = "specificity",
    min = 0, max = 1 it gives 0.7833333 on these scores: the lowest score is diseased, so the curve
    ends with a vertical step at FPR 1, and MRMCaov joins the last point inside to (1, 1)."""
    neg = np.array([-0.18878213, -0.06651732, 0.07451623, 0.76225971, 1.43852259])
    pos = np.array([-0.1992889, 0.32433775, 1.57668958, 1.66724756, 1.68291027, 3.00041655])
    assert partial_auc(neg, pos, (0, 1)).area == pytest.approx(23 / 30, abs=1e-15)
    assert mrmcaov_partial_area(neg, pos, (0, 1)) == pytest.approx(23.5 / 30, abs=1e-15)
    # away from steps both conventions give the same area
    assert mrmcaov_partial_area(neg, pos, (0.5, 0.9)) == pytest.approx(
        partial_auc(neg, pos, (0.5, 0.9)).area, abs=1e-15)


def test_the_mrmcaov_convention_refuses_the_same_bad_input():
    with pytest.raises(ValueError, match="focus"):
        mrmcaov_partial_area(np.array([1.0]), np.array([2.0]), (0.8, 1), "both")
    with pytest.raises(ValueError, match="different"):
        mrmcaov_partial_area(np.array([1.0]), np.array([2.0]), (0.8, 0.8))
