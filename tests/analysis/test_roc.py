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


def midrank_placements(neg, pos):
    """Sun & Xu's formula with scipy's midranks, the former implementation, row by row."""
    from scipy import stats  # the reference only; analysis.stats.roc must not need scipy.stats

    n0, n1 = neg.shape[-1], pos.shape[-1]
    tz = stats.rankdata(np.concatenate([neg, pos], axis=-1), axis=-1)
    tx, ty = stats.rankdata(neg, axis=-1), stats.rankdata(pos, axis=-1)
    return (tz[..., n0:] - ty) / n0, 1.0 - (tz[..., :n0] - tx) / n1


@pytest.mark.parametrize("lead", [(), (5,), (2, 3)])
def test_placements_equal_the_midrank_formula_bit_for_bit(lead):
    rng = np.random.default_rng(len(lead))
    for n0, n1, levels in [(1, 1, 2), (7, 3, 3), (40, 25, 6), (300, 200, 1000)]:
        neg = rng.integers(0, levels, (*lead, n0)).astype(float)
        pos = rng.integers(1, levels + 2, (*lead, n1)).astype(float)
        v10, v01 = placements(neg, pos)
        expected10, expected01 = midrank_placements(neg, pos)
        assert v10.shape == (*lead, n1) and v01.shape == (*lead, n0)
        assert np.array_equal(v10, expected10) and np.array_equal(v01, expected01)


def test_placements_with_all_scores_tied_are_one_half():
    v10, v01 = placements(np.full(4, 2.0), np.full(3, 2.0))
    assert (v10 == 0.5).all() and (v01 == 0.5).all()


def test_a_score_set_holding_nan_gets_nan_placements_and_others_are_kept():
    neg = np.array([[1.0, 2.0, 3.0], [1.0, np.nan, 3.0]])
    pos = np.array([[2.0, 4.0], [2.0, 4.0]])
    v10, v01 = placements(neg, pos)
    assert np.isnan(v10[1]).all() and np.isnan(v01[1]).all()
    np.testing.assert_array_equal(v10[0], [0.5, 1.0])


def test_placements_need_the_same_leading_shape():
    with pytest.raises(ValueError, match="same leading shape"):
        placements(np.ones((2, 3)), np.ones((3, 2)))


def test_delong_test_equals_the_former_midrank_computation_on_many_cases():
    rng = np.random.default_rng(16)
    truth = rng.random(5000) < 0.4
    a = np.round(rng.normal(size=5000) + truth, 1)
    b = np.round(a + rng.normal(size=5000), 1)
    result = delong_test(a, b, truth)
    scores = np.stack([a, b])
    v10, v01 = midrank_placements(scores[:, ~truth], scores[:, truth])
    cov = np.cov(v10) / truth.sum() + np.cov(v01) / (~truth).sum()
    assert result.auc_a == v10[0].mean() and result.auc_b == v10[1].mean()
    assert (result.var_a, result.var_b, result.cov_ab) == (cov[0, 0], cov[1, 1], cov[0, 1])


def test_signed_zeros_tie_and_infinite_scores_rank_like_midranks():
    neg = np.array([[-0.0, 1.0, -np.inf, 3.0], [0.0, 0.0, np.inf, -1.0]])
    pos = np.array([[0.0, np.inf, 3.0], [-0.0, np.inf, 2.0]])
    for got, expected in zip(placements(neg, pos), midrank_placements(neg, pos), strict=True):
        assert np.array_equal(got, expected)
