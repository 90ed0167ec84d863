import csv

import numpy as np
import pytest
from scipy import stats

from analysis.stats.binormal import (
    DegenerateFitError,
    binormal_auc,
    binormal_auc_value,
    collapse_counts,
    fit_binormal,
    fit_binormal_counts,
    log_likelihood,
    rating_table,
)
from tests.analysis.reference_data import shared_path


def model_probabilities(a, b, thresholds):
    """Category probabilities of the binormal model (non-diseased N(0, 1), diseased N(a/b, 1/b^2))."""
    cuts = np.concatenate([[-np.inf], thresholds, [np.inf]])
    return np.diff(stats.norm.cdf(cuts)), np.diff(stats.norm.cdf(b * cuts - a))


def vandyke(treatment, reader):
    rows = list(csv.DictReader(shared_path("mrmcaov_datasets/VanDyke.csv").open()))
    chosen = [r for r in rows if r["treatment"] == treatment and r["reader"] == reader]
    neg = np.array([float(r["rating"]) for r in chosen if r["truth"] == "0"])
    pos = np.array([float(r["rating"]) for r in chosen if r["truth"] == "1"])
    return neg, pos


def test_auc_formula_by_hand():
    assert binormal_auc_value(0.0, 1.0) == pytest.approx(0.5)
    # a = sqrt(2) * 1.0, b = 1: Phi(sqrt(2) / sqrt(2)) = Phi(1)
    assert binormal_auc_value(np.sqrt(2.0), 1.0) == pytest.approx(0.8413447460685429)
    assert binormal_auc_value(1.0, 0.0) == pytest.approx(stats.norm.cdf(1.0))


# MRMCaov (Smith, Hillis & Pesce), docs/jss/MRMCaov.tex (the package's JSS article): binormal
# curves of the VanDyke data (Van Dyke et al. 1993), roc_curves(..., method = "binormal") and
# parameters(): a, b printed to 3 significant digits, and mrmc(binormal_auc(truth, rating), ...)
# AUCs printed to 3 decimals. Treatment 2, reader 4 is degenerate there (a = 1.8e308, AUC 1).
MRMCAOV_VANDYKE = [
    ("1", "1", 1.70, 0.537, 0.933),
    ("2", "1", 1.85, 0.503, 0.951),
    ("1", "2", 1.40, 0.561, 0.890),
    ("2", "2", 1.66, 0.447, 0.935),
    ("1", "3", 1.74, 0.635, 0.929),
    ("2", "3", 1.62, 0.488, 0.928),
    ("1", "4", 1.93, 0.202, 0.970),
    ("1", "5", 1.06, 0.464, 0.833),
    ("2", "5", 1.73, 0.422, 0.945),
]


@pytest.mark.parametrize(("treatment", "reader", "a", "b", "auc"), MRMCAOV_VANDYKE)
def test_fit_matches_mrmcaov_on_vandyke(treatment, reader, a, b, auc):
    fit = fit_binormal(*vandyke(treatment, reader))
    assert fit.converged
    assert float(f"{fit.a:.3g}") == a
    assert float(f"{fit.b:.3g}") == b
    assert round(fit.auc, 3) == auc
    assert fit.auc == pytest.approx(binormal_auc_value(fit.a, fit.b))
    assert 0 < fit.se_auc < 0.1 and fit.se_a > 0 and fit.se_b > 0
    assert list(fit.thresholds) == sorted(fit.thresholds)


def test_fit_matches_mrmcaov_reader_1_aucs_to_seven_digits():
    """MRMCaov's JSS article, SRMC and STMC examples on VanDyke reader 1: binormal_auc
    0.93316085 (treatment 1, summary(stmc(...))) and 0.9508185 (treatment 2, summary(srmc(...)))."""
    assert fit_binormal(*vandyke("1", "1")).auc == pytest.approx(0.93316085, abs=5e-9)
    assert fit_binormal(*vandyke("2", "1")).auc == pytest.approx(0.9508185, abs=5e-8)


def test_vandyke_treatment_2_reader_4_is_degenerate_with_auc_limit_one_as_in_mrmcaov():
    neg, pos = vandyke("2", "4")
    with pytest.raises(DegenerateFitError, match="FPR = 0 or TPR = 1"):
        fit_binormal(neg, pos)
    assert binormal_auc(neg, pos) == 1.0


def test_counts_proportional_to_the_model_recover_the_parameters_exactly():
    # the expected counts make the model's probabilities the observed proportions: the MLE is
    # the truth itself
    a, b, c = 1.2, 0.8, np.array([-0.6, 0.1, 0.9, 1.7])
    p, q = model_probabilities(a, b, c)
    fit = fit_binormal_counts(300 * p, 200 * q)
    assert fit.a == pytest.approx(a, abs=1e-6)
    assert fit.b == pytest.approx(b, abs=1e-6)
    np.testing.assert_allclose(fit.thresholds, c, atol=1e-6)


def test_large_simulated_sample_recovers_the_parameters_within_their_standard_errors():
    rng = np.random.default_rng(2024)
    a, b, c = 1.2, 0.8, np.array([-0.6, 0.1, 0.9, 1.7])
    p, q = model_probabilities(a, b, c)
    n, m = rng.multinomial(4000, p), rng.multinomial(3000, q)
    fit = fit_binormal_counts(n, m)
    assert fit.converged
    assert abs(fit.a - a) < 3 * fit.se_a
    assert abs(fit.b - b) < 3 * fit.se_b
    assert abs(fit.auc - binormal_auc_value(a, b)) < 3 * fit.se_auc
    # the maximum is at least as likely as the truth, and as any nearby point
    assert fit.log_likelihood >= log_likelihood(a, b, c, n, m)
    nudged = np.array(fit.thresholds) + 0.01
    assert fit.log_likelihood >= log_likelihood(fit.a + 0.01, fit.b, nudged, n, m)


def test_fit_is_invariant_to_monotone_relabelling_of_the_ratings():
    neg, pos = vandyke("1", "5")
    fit = fit_binormal(neg, pos)
    relabelled = fit_binormal(np.exp(neg) * 3 + 7, np.exp(pos) * 3 + 7)
    assert relabelled.a == pytest.approx(fit.a, abs=1e-9)
    assert relabelled.b == pytest.approx(fit.b, abs=1e-9)
    assert relabelled.log_likelihood == pytest.approx(fit.log_likelihood, abs=1e-9)


def test_scaling_all_counts_keeps_the_estimates_and_halves_the_standard_errors():
    neg, pos = vandyke("1", "1")
    table = rating_table(neg, pos)
    fit = fit_binormal_counts(table.negative_counts, table.positive_counts)
    fit4 = fit_binormal_counts(
        4 * np.array(table.negative_counts), 4 * np.array(table.positive_counts)
    )
    assert fit4.a == pytest.approx(fit.a, abs=1e-7)
    assert fit4.b == pytest.approx(fit.b, abs=1e-7)
    assert fit4.se_a == pytest.approx(fit.se_a / 2, rel=1e-4)
    assert fit4.se_auc == pytest.approx(fit.se_auc / 2, rel=1e-4)


def test_continuous_scores_are_categorised_by_runs_of_one_truth_group():
    rng = np.random.default_rng(1)
    neg, pos = rng.normal(size=60), rng.normal(1.5, 1.3, size=50)
    table = rating_table(neg, pos)
    # after merging, each category holds a run of one group (nonzero in one count only) ...
    n, m = np.array(table.negative_counts), np.array(table.positive_counts)
    assert np.all((n == 0) != (m == 0))
    # ... and consecutive categories alternate between the groups
    assert np.all((n[1:] > 0) != (n[:-1] > 0))
    fit = fit_binormal(neg, pos)
    assert fit.converged and 0.7 < fit.auc < 0.95


def test_empty_categories_and_runs_do_not_change_the_fit():
    # category 2 is empty; categories 4 and 5 have no non-diseased cases: merging them is exact
    n, m = [20, 0, 12, 6, 0, 0], [2, 0, 5, 8, 9, 16]
    keep, merged_n, merged_m = collapse_counts(np.array(n, float), np.array(m, float))
    np.testing.assert_array_equal(keep, [0, 2, 3, 5])
    np.testing.assert_array_equal(merged_n, [20, 12, 6, 0])
    np.testing.assert_array_equal(merged_m, [2, 5, 8, 25])
    fit = fit_binormal_counts(n, m)
    merged = fit_binormal_counts(merged_n, merged_m)
    assert fit.a == pytest.approx(merged.a, abs=1e-9)
    assert fit.b == pytest.approx(merged.b, abs=1e-9)


def test_degenerate_data_raise_a_clear_error_and_binormal_auc_gives_the_limits():
    with pytest.raises(DegenerateFitError, match="one category"):
        fit_binormal([3.0, 3.0], [3.0, 3.0])
    assert binormal_auc([3.0, 3.0], [3.0, 3.0]) == 0.5
    with pytest.raises(DegenerateFitError, match="perfect"):
        fit_binormal([1.0, 2.0, 2.0], [3.0, 4.0])
    assert binormal_auc([1.0, 2.0, 2.0], [3.0, 4.0]) == 1.0
    assert binormal_auc([3.0, 4.0], [1.0, 2.0]) == 0.0
    # one shared middle category still leaves every point on the top-left edges
    assert binormal_auc([1.0, 2.0], [2.0, 3.0]) == 1.0
    # a binary rating: two categories, a and b not identifiable -- no limit to fall back on
    with pytest.raises(ValueError, match="three rating categories"):
        binormal_auc([0.0, 0.0, 1.0], [0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="at least one"):
        fit_binormal([], [1.0])
    with pytest.raises(ValueError, match="non-negative"):
        fit_binormal_counts([1, -1, 2], [1, 1, 1])


def test_analytic_gradient_matches_finite_differences_of_the_log_likelihood():
    from analysis.stats.binormal import _gradient  # the private gradient the fit relies on

    n, m = np.array([30.0, 12, 9, 4]), np.array([3.0, 6, 10, 25])
    x = np.array([1.1, 0.7, -0.4, 0.5, 1.2])

    def value(v):
        return log_likelihood(v[0], v[1], v[2:], n, m)

    numeric = [(value(x + h) - value(x - h)) / 2e-6 for h in np.eye(x.size) * 1e-6]
    np.testing.assert_allclose(_gradient(x[0], x[1], x[2:], n, m), numeric, rtol=1e-6, atol=1e-6)


def test_standard_error_of_the_auc_matches_its_spread_over_simulated_studies():
    rng = np.random.default_rng(77)
    a, b, c = 1.0, 0.9, np.array([-0.5, 0.3, 1.0, 1.6])
    p, q = model_probabilities(a, b, c)
    aucs, ses = [], []
    for _ in range(150):
        fit = fit_binormal_counts(rng.multinomial(250, p), rng.multinomial(200, q))
        aucs.append(fit.auc)
        ses.append(fit.se_auc)
    # the SD of 150 estimates is within about 12% of the true SD (2 sigma of its sampling error)
    assert np.std(aucs, ddof=1) == pytest.approx(np.mean(ses), rel=0.15)
