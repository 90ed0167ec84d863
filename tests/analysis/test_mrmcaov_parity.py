"""Known answers from the R package MRMCaov 0.3.0 and its covariance conventions."""

import numpy as np
import pytest

from analysis.stats.covariance import case_covariance, jackknife_covariance
from analysis.stats.data import MRMCData, MRMCInputError
from analysis.stats.fom import compute_fom
from analysis.stats.io import read_long_csv
from analysis.stats.mrmc import or_analysis
from analysis.stats.roc import auc_from_ratings
from tests.analysis.reference_data import shared_path

REL = 1e-6


def mrmcaov_data(name, case_column="case"):
    return read_long_csv(shared_path(f"mrmcaov_datasets/{name}.csv"), case_column=case_column)


def partially_paired_study(seed=3):
    """Two arms x two readers; arm 0 reads cases 0-17, arm 1 cases 6-23, reader 1 skips case 7."""
    rng = np.random.default_rng(seed)
    truth = np.array([0, 1] * 12)
    ratings = rng.integers(1, 6, (2, 2, 24)).astype(float) + truth
    ratings[0, :, 18:] = np.nan
    ratings[1, :, :6] = np.nan
    ratings[:, 1, 7] = np.nan
    return MRMCData.from_arrays(ratings, truth)


def test_the_jackknife_matches_mrmcaov_on_cases_nested_within_treatment():
    result = or_analysis(mrmcaov_data("VanDyke", "case3"))
    cc = result.covariance_components
    assert cc.var_error == pytest.approx(0.00080583821364981368, rel=REL)
    assert cc.cov2 == pytest.approx(0.00034559728385584568, rel=REL)
    assert cc.cov1 == 0 and cc.cov3 == 0
    test = result.analysis("rrrc").global_test
    assert test.statistic == pytest.approx(2.1044908595798653, rel=REL)
    assert test.df2 == pytest.approx(68.42324523122987, rel=REL)
    assert test.p_value == pytest.approx(0.15143632217735681, rel=REL)
    np.testing.assert_allclose(
        result.arm_means, [0.89703703703703708, 0.94083735909822863], rtol=REL
    )


def test_the_jackknife_matches_mrmcaov_on_the_fully_crossed_franken_study():
    result = or_analysis(mrmcaov_data("Franken"), cov="jackknife")
    cc = result.covariance_components
    expected = (
        0.0015257762493344658,
        0.00079168214695047375,
        0.00048363767268117127,
        0.00051250914742604009,
    )
    assert (cc.var_error, cc.cov1, cc.cov2, cc.cov3) == pytest.approx(expected, rel=REL)
    # Cov2 < Cov3, so the RRRC error term is MS(T*R) alone and ddf falls back to (t-1)(r-1) = 3
    test = result.analysis("rrrc").global_test
    assert test.clamped
    assert (test.statistic, test.df1, test.df2) == pytest.approx((4.6940577249571129, 1, 3), REL)
    assert test.p_value == pytest.approx(0.11883785748107023, rel=REL)


def test_the_unbiased_covariance_matches_mrmcaov_on_the_fully_crossed_franken_study():
    cc = or_analysis(mrmcaov_data("Franken"), cov="unbiased").covariance_components
    expected = (
        0.001496725377164177,
        0.00078043758978942708,
        0.00047848993037294239,
        0.00050684744424745235,
    )
    assert (cc.var_error, cc.cov1, cc.cov2, cc.cov3) == pytest.approx(expected, rel=REL)


def test_the_jackknife_leaves_out_every_case_of_the_study_as_mrmcaov_does():
    data = partially_paired_study()
    flat, read = data.ratings.reshape(4, -1), data.read.reshape(4, -1)
    n = data.n_cases
    loo = np.empty((4, n))
    for u in range(4):
        for k in range(n):  # a case the unit did not read leaves its AUC unchanged
            keep = read[u] & (np.arange(n) != k)
            loo[u, k] = auc_from_ratings(flat[u, keep], data.truth[keep])
    dev = loo - loo.mean(axis=1, keepdims=True)
    expected = (n - 1) / n * dev @ dev.T
    np.testing.assert_allclose(jackknife_covariance(compute_fom(data)), expected, atol=1e-15)


def literal_unbiased(data):
    """MRMCaov's unbalanced U-statistic covariance, pair by pair over case identifiers."""
    units = []
    for u, row in enumerate(data.ratings.reshape(-1, data.n_cases)):
        read = data.read.reshape(-1, data.n_cases)[u]
        pos = {k: row[k] for k in np.flatnonzero(read & (data.truth == 1))}
        neg = {k: row[k] for k in np.flatnonzero(read & (data.truth == 0))}
        psi = {(i, j): (np.sign(pos[i] - neg[j]) + 1) / 2 for i in pos for j in neg}
        units.append((pos, neg, psi))
    cov = np.zeros((len(units),) * 2)
    for a, (pos_a, neg_a, psi_a) in enumerate(units):
        for b, (pos_b, neg_b, psi_b) in enumerate(units):
            k1, k0 = pos_a.keys() & pos_b.keys(), neg_a.keys() & neg_b.keys()
            nn = len(psi_a) * len(psi_b)
            delta = nn / (
                nn
                - len(pos_a) * len(k0) * len(pos_b)
                - len(neg_a) * len(k1) * len(neg_b)
                + len(k1) * len(k0)
            )
            rows = sum(
                sum(psi_a[i, j] for j in neg_a) * sum(psi_b[i, j] for j in neg_b) for i in k1
            )
            cols = sum(
                sum(psi_a[i, j] for i in pos_a) * sum(psi_b[i, j] for i in pos_b) for j in k0
            )
            both = sum(psi_a[i, j] * psi_b[i, j] for i in k1 for j in k0)
            total = sum(psi_a.values()) * sum(psi_b.values())
            cov[a, b] = ((1 - delta) * total + delta * (rows + cols - both)) / nn
    return cov


def test_the_unbiased_covariance_follows_mrmcaov_on_partially_paired_cases():
    data = partially_paired_study()
    cov = case_covariance(data, compute_fom(data), "unbiased")
    np.testing.assert_allclose(cov, literal_unbiased(data), rtol=1e-12, atol=1e-16)


def test_the_unbiased_covariance_works_on_every_design_mrmcaov_accepts():
    for name, column in (("VanDyke", "case2"), ("VanDyke", "case3"), ("Kundel", "case")):
        result = or_analysis(mrmcaov_data(name, column), cov="unbiased")
        cc = result.covariance_components
        assert cc.var_error > 0, (name, column)
        assert all(e.ci_low < e.estimate < e.ci_high for e in result.analysis("rrrc").arms)
    assert cc.cov1 != 0 or cc.cov3 != 0  # Kundel's arms share some cases


def test_the_unbiased_covariance_is_refused_for_binary_figures_of_merit():
    data = partially_paired_study()
    with pytest.raises(
        MRMCInputError, match="unbiased covariance is defined for the empirical AUC"
    ):
        or_analysis(data, "sensitivity", "unbiased", threshold=3)


def test_the_or_result_names_the_design_as_mrmcaov_prints_it():
    designs = {
        ("VanDyke", "case"): "factorial",
        ("VanDyke", "case2"): "cases nested within reader",
        ("VanDyke", "case3"): "cases nested within treatment",
        ("Kundel", "case"): "factorial (partially paired)",
    }
    for (name, column), design in designs.items():
        result = or_analysis(mrmcaov_data(name, column), analyses="rrfc")
        assert result.mrmcaov_design == design
        assert result.to_dict()["mrmcaov_design"] == design
