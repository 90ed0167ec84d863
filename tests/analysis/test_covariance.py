import numpy as np
import pytest

from analysis.stats.covariance import (
    _weighted_auc,
    bootstrap_covariance,
    bootstrap_replicates,
    case_covariance,
    delong_covariance,
    jackknife_covariance,
    jackknife_values,
)
from analysis.stats.data import MRMCData, MRMCInputError
from analysis.stats.fom import compute_fom
from analysis.stats.io import read_long_csv
from analysis.stats.mrmc import covariance_components
from analysis.stats.roc import auc_from_ratings
from analysis.stats.roc import delong_covariance as delong_pair
from tests.analysis.reference_data import shared_path


def small_study(seed=5, t=2, r=3, c=16):
    rng = np.random.default_rng(seed)
    truth = np.array([0, 1] * (c // 2))
    ratings = rng.integers(1, 6, (t, r, c)).astype(float) + truth
    return MRMCData.from_arrays(ratings, truth)


def brute_loo(values_fn, flat, truth, read, cases):
    """Leave-one-out figure of merit recomputed from scratch for each case in ``cases``."""
    out = np.empty((flat.shape[0], len(cases)))
    for u in range(flat.shape[0]):
        for j, k in enumerate(cases):
            keep = read[u].copy()
            keep[k] = False
            out[u, j] = values_fn(flat[u, keep], truth[keep])
    return out


def test_closed_form_leave_one_out_aucs_equal_recomputed_ones():
    data = small_study()
    est = compute_fom(data)
    flat = data.ratings.reshape(6, -1)
    expected = brute_loo(auc_from_ratings, flat, data.truth, data.read.reshape(6, -1),
                         range(data.n_cases))
    np.testing.assert_allclose(jackknife_values(est), expected, atol=1e-14)


def test_jackknife_covariance_is_the_usual_formula_over_all_cases():
    data = small_study()
    est = compute_fom(data)
    flat = data.ratings.reshape(6, -1)
    loo = brute_loo(auc_from_ratings, flat, data.truth, data.read.reshape(6, -1),
                    range(data.n_cases))
    n = data.n_cases
    dev = loo - loo.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(jackknife_covariance(est), (n - 1) / n * dev @ dev.T, atol=1e-15)


def test_sensitivity_jackknife_leaves_out_diseased_cases_only():
    data = small_study()
    est = compute_fom(data, "sensitivity", threshold=4)
    flat = data.ratings.reshape(6, -1)
    diseased = np.flatnonzero(data.truth == 1)

    def sensitivity(ratings, truth):
        return float((ratings[truth == 1] >= 4).mean())

    loo = brute_loo(sensitivity, flat, data.truth, data.read.reshape(6, -1), diseased)
    n1 = diseased.size
    dev = loo - loo.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(jackknife_covariance(est), (n1 - 1) / n1 * dev @ dev.T,
                               atol=1e-15)
    assert (jackknife_values(est)[:, data.truth == 0] == est.theta[:, None]).all()


def test_accuracy_jackknife_leaves_out_every_case():
    data = small_study()
    est = compute_fom(data, "accuracy", threshold=4)
    flat = data.ratings.reshape(6, -1)

    def accuracy(ratings, truth):
        return float(((ratings >= 4) == truth.astype(bool)).mean())

    loo = brute_loo(accuracy, flat, data.truth, data.read.reshape(6, -1), range(data.n_cases))
    np.testing.assert_allclose(jackknife_values(est), loo, atol=1e-14)


def test_delong_covariance_of_crossed_units_equals_the_two_sample_formula():
    data = small_study()
    est = compute_fom(data)
    flat = data.ratings.reshape(6, -1)
    diseased = data.truth == 1
    _, expected = delong_pair(flat[:, ~diseased], flat[:, diseased])
    np.testing.assert_allclose(delong_covariance(est), expected, atol=1e-16)


def test_van_dyke_jackknife_components_match_or_dbm():
    data = read_long_csv(shared_path("vandyke/RocData.csv"))
    cc = covariance_components(jackknife_covariance(compute_fom(data)), 2, 5)
    # OR-DBM MRMC 2.5 prints Var(Error) 0.00080229, COV1-3 0.00034661 0.00034407 0.00023903
    assert round(cc.var_error, 8) == 0.00080229
    assert (round(cc.cov1, 8), round(cc.cov2, 8), round(cc.cov3, 8)) == (
        0.00034661, 0.00034407, 0.00023903)


def test_units_sharing_no_cases_have_exactly_zero_covariance():
    path = shared_path("mrmcaov_datasets/VanDyke.csv")
    crossed = read_long_csv(path)
    split = read_long_csv(path, case_column="case2")  # each reader reads their own cases
    crossed_cov = jackknife_covariance(compute_fom(crossed))
    for method in ("jackknife", "delong", "bootstrap", "unbiased"):
        cov = case_covariance(split, compute_fom(split), method, n_samples=200)
        readers = np.tile(np.arange(5), 2)
        other_reader = readers[:, None] != readers[None, :]
        assert (cov[other_reader] == 0).all(), method
    same_reader = ~other_reader
    # MRMCaov's convention jackknifes every unit over all 570 cases of the study, not its own 114
    cov = jackknife_covariance(compute_fom(split))
    rescale = (569 / 570) / (113 / 114)
    np.testing.assert_allclose(cov[same_reader], rescale * crossed_cov[same_reader], rtol=1e-12)
    cov = jackknife_covariance(compute_fom(split), convention="shared")
    np.testing.assert_allclose(cov[same_reader], crossed_cov[same_reader], rtol=1e-12)


def test_partially_shared_cases_use_the_documented_scaling():
    rng = np.random.default_rng(2)
    truth = np.array([0, 1] * 10)
    ratings = rng.integers(1, 6, (2, 1, 20)).astype(float) + truth
    ratings[0, 0, 16:] = np.nan  # unit a reads cases 0-15
    ratings[1, 0, :6] = np.nan  # unit b reads cases 6-19
    data = MRMCData.from_arrays(ratings, truth)
    est = compute_fom(data)
    flat, read = data.ratings.reshape(2, -1), data.read.reshape(2, -1)
    dev = {}
    for u in range(2):
        own = np.flatnonzero(read[u])
        loo = brute_loo(auc_from_ratings, flat[u:u + 1], truth, read[u:u + 1], own)[0]
        dev[u] = dict(zip(own, loo - est.theta[u], strict=True))
    shared = sorted(dev[0].keys() & dev[1].keys())
    m_a, m_b, k = 16, 14, len(shared)
    expected = ((m_a - 1) * (m_b - 1) / (m_a * m_b) * k / (k - 1)
                * sum(dev[0][c] * dev[1][c] for c in shared))
    cov = jackknife_covariance(est, convention="shared")
    assert cov[0, 1] == pytest.approx(expected, rel=1e-12)
    own_a = np.array(list(dev[0].values()))
    assert cov[0, 0] == pytest.approx((m_a - 1) / m_a * (own_a**2).sum(), rel=1e-12)


def test_weighted_auc_with_integer_weights_equals_auc_of_repeated_cases():
    neg, pos = np.array([1.0, 2, 2, 4]), np.array([2.0, 3, 5])
    w_neg, w_pos = np.array([[2, 0, 1, 1]]), np.array([[1, 3, 0]])
    repeated = auc_from_ratings(np.concatenate([np.repeat(neg, w_neg[0]),
                                                np.repeat(pos, w_pos[0])]),
                                np.r_[np.zeros(4), np.ones(4)])
    assert _weighted_auc(neg, w_neg, pos, w_pos)[0] == pytest.approx(repeated)


def test_bootstrap_is_reproducible_for_a_seed_and_close_to_delong():
    data = read_long_csv(shared_path("vandyke/RocData.csv"))
    est = compute_fom(data)
    first = bootstrap_covariance(data, est, 1000, seed=42)
    np.testing.assert_array_equal(first, bootstrap_covariance(data, est, 1000, seed=42))
    assert not np.array_equal(first, bootstrap_covariance(data, est, 1000, seed=43))
    boot = covariance_components(first, 2, 5)
    delong = covariance_components(delong_covariance(est), 2, 5)
    for name in ("var_error", "cov1", "cov2", "cov3"):
        assert getattr(boot, name) == pytest.approx(getattr(delong, name), rel=0.15), name


def test_bootstrap_resamples_keep_each_units_class_counts():
    data = small_study()
    est = compute_fom(data, "sensitivity", threshold=4)
    reps = bootstrap_replicates(data, est, 50, seed=1)
    n1 = int(data.truth.sum())
    # a sensitivity over n1 diseased cases can only take values k / n1
    np.testing.assert_allclose(reps * n1, np.round(reps * n1), atol=1e-9)


def test_delong_covariance_is_refused_for_binary_figures_of_merit():
    data = small_study()
    with pytest.raises(MRMCInputError, match="DeLong covariance is defined for the AUC, not specificity"):
        case_covariance(data, compute_fom(data, "specificity", threshold=3), "delong")


def test_an_unknown_jackknife_convention_is_refused():
    with pytest.raises(MRMCInputError, match="unknown jackknife convention 'pooled'"):
        jackknife_covariance(compute_fom(small_study()), convention="pooled")
