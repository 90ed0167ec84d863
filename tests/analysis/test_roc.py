import csv

import numpy as np
import pytest

from analysis.stats.roc import auc, auc_from_ratings, delong_covariance, delong_test, placements
from tests.analysis.reference_data import shared_path


def pairwise_placements(neg, pos):
    """The O(n0 * n1) definition: psi = 1 if pos > neg, 1/2 if tied, 0 otherwise."""
    psi = (pos[None, :] > neg[:, None]) + 0.5 * (pos[None, :] == neg[:, None])
    return psi.mean(axis=0), psi.mean(axis=1)


def test_auc_counts_ties_as_one_half():
    # pairs (neg, pos): wins (1,2) (1,3) (1,4) (2,3) (2,4) (3,4) = 6, ties (2,2) (3,3) = 2 halves
    assert auc(np.array([1.0, 2.0, 3.0]), np.array([2.0, 3.0, 4.0])) == pytest.approx(7 / 9)


def test_auc_of_perfectly_separated_and_reversed_ratings():
    assert auc(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 1.0
    assert auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 0.0


def test_midrank_placements_equal_the_pairwise_definition_with_many_ties():
    rng = np.random.default_rng(7)
    neg = rng.integers(1, 6, 40).astype(float)
    pos = rng.integers(2, 7, 25).astype(float)
    v10, v01 = placements(neg, pos)
    expected10, expected01 = pairwise_placements(neg, pos)
    np.testing.assert_allclose(v10, expected10, atol=1e-14)
    np.testing.assert_allclose(v01, expected01, atol=1e-14)


def test_placements_work_row_by_row_on_stacked_score_sets():
    rng = np.random.default_rng(3)
    neg, pos = rng.normal(size=(4, 30)).round(1), rng.normal(1, size=(4, 20)).round(1)
    v10, _ = placements(neg, pos)
    for row in range(4):
        np.testing.assert_allclose(v10[row], pairwise_placements(neg[row], pos[row])[0])


def test_auc_from_ratings_splits_cases_by_truth():
    ratings = np.array([1, 4, 2, 5, 3.0])
    truth = np.array([0, 1, 0, 1, 1])
    assert auc_from_ratings(ratings, truth) == pytest.approx(1.0)


def test_delong_covariance_diagonal_is_the_textbook_variance():
    rng = np.random.default_rng(11)
    neg, pos = rng.normal(size=30).round(1), rng.normal(1, size=20).round(1)
    _, cov = delong_covariance(neg[None], pos[None])
    v10, v01 = pairwise_placements(neg, pos)
    expected = v10.var(ddof=1) / 20 + v01.var(ddof=1) / 30
    assert cov[0, 0] == pytest.approx(expected, rel=1e-12)


def test_delong_test_on_asah_matches_published_proc_values():
    rows = list(csv.DictReader(shared_path("delong_aSAH/aSAH.csv").open()))
    poor = np.array([r["outcome"] == "Poor" for r in rows])
    wfns = np.array([float(r["wfns"]) for r in rows])
    s100b = np.array([float(r["s100b"]) for r in rows])
    result = delong_test(wfns, s100b, poor)
    assert result.z == pytest.approx(2.20898359144091, rel=1e-12)
    assert result.p_value == pytest.approx(0.0271757822291882, rel=1e-12)
    assert result.ci_low == pytest.approx(0.0104061769564846, rel=1e-12)
    assert result.ci_high == pytest.approx(0.174214419249478, rel=1e-12)
    assert round(result.auc_a, 6) == 0.823679
    assert round(result.auc_b, 6) == 0.731369
    assert (result.n_diseased, result.n_nondiseased) == (41, 72)


def test_delong_test_of_a_score_against_itself_has_no_difference():
    scores = np.array([1, 2, 3, 4, 5, 6.0])
    truth = np.array([0, 0, 1, 0, 1, 1])
    result = delong_test(scores, scores, truth)
    assert result.difference == 0 and result.se == 0 and result.p_value == 1.0


def test_delong_test_rejects_arrays_of_different_lengths():
    with pytest.raises(ValueError, match="same length"):
        delong_test(np.ones(4), np.ones(5), np.array([0, 1, 0, 1]))
