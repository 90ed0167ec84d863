"""Trapezoidal, binormal and partial AUC as figures of merit of the OR analysis (issue 16)."""

import json
from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from analysis.stats.covariance import bootstrap_replicates, case_covariance, jackknife_values
from analysis.stats.data import MRMCData, MRMCInputError
from analysis.stats.fom import compute_fom
from analysis.stats.fom_curves import leave_one_out, partial_range, unit_statistic
from analysis.stats.io import read_long_csv
from analysis.stats.mrmc import or_analysis
from analysis.stats.render import render_or_text
from tests.analysis.reference_data import shared_path


def small_study(seed=5):
    rng = np.random.default_rng(seed)
    truth = np.array([0, 1] * 9)
    ratings = rng.integers(1, 6, (2, 3, truth.size)).astype(float) + 1.5 * truth
    return MRMCData.from_arrays(ratings, truth)


def split_study(seed=7):
    """Cases nested within readers: reader 0 reads cases 0-11, reader 1 cases 12-23."""
    rng = np.random.default_rng(seed)
    truth = np.array([0, 1] * 12)
    ratings = rng.normal(size=(2, 2, truth.size)) + truth
    ratings[:, 0, 12:] = np.nan
    ratings[:, 1, :12] = np.nan
    return MRMCData.from_arrays(ratings, truth)


def vandyke():
    return read_long_csv(shared_path("mrmcaov_datasets/VanDyke.csv"))


@pytest.mark.parametrize("cov", ["jackknife", "delong", "unbiased", "bootstrap"])
def test_trapezoidal_auc_gives_exactly_the_empirical_auc_results(cov):
    data = small_study()
    empirical = or_analysis(data, "auc", cov, bootstrap_samples=50).to_dict()
    trapezoidal = or_analysis(data, "trapezoidal_auc", cov, bootstrap_samples=50).to_dict()
    assert trapezoidal.pop("fom") == "trapezoidal_auc" and empirical.pop("fom") == "auc"
    assert trapezoidal == empirical


@pytest.mark.parametrize("focus", ["specificity", "sensitivity"])
def test_full_range_partial_auc_reproduces_the_closed_form_auc_jackknife(focus, boundary="proc"):
    # over [0, 1] the geometric partial area is the AUC, so the recomputed leave-one-out values
    # must equal the closed-form ones, on a split-plot design too (unread cases: unchanged)
    for data in (small_study(), split_study()):
        auc = compute_fom(data, "auc")
        full = compute_fom(data, "partial_auc",
                           partial=partial_range((0, 1), focus, boundary=boundary))
        np.testing.assert_allclose(full.theta, auc.theta, atol=1e-14)
        np.testing.assert_allclose(jackknife_values(full), jackknife_values(auc), atol=1e-14)
        np.testing.assert_allclose(
            case_covariance(data, full), case_covariance(data, auc), atol=1e-15
        )


def test_mrmcaov_takes_the_sensitivity_range_ends_at_the_lowest_specificity():
    """At sensitivity 0 the curve runs along TPR = 0 from FPR 0 to the first diseased score;
    MRMCaov's end there is the far end (approx(ties = max) of FPR), so the full sensitivity range
    loses the triangle between it and the curve: its area is below the AUC."""
    data = small_study()
    auc = compute_fom(data, "auc").theta
    full = compute_fom(data, "partial_auc", partial=partial_range((0, 1), "sensitivity")).theta
    assert (full <= auc + 1e-15).all() and (full < auc).any()


def test_the_bootstrap_recomputes_partial_auc_on_the_same_resamples():
    data = split_study()
    auc = compute_fom(data, "auc")
    full = compute_fom(data, "partial_auc", partial=partial_range((0, 1), boundary="proc"))
    np.testing.assert_allclose(
        bootstrap_replicates(data, full, 40, seed=3),
        bootstrap_replicates(data, auc, 40, seed=3),
        atol=1e-12,
    )


def test_leave_one_out_values_are_recomputed_for_every_case_and_unread_ones_keep_theta():
    data = split_study()
    partial = partial_range((0.7, 1.0), "specificity", standardized=True)
    est = compute_fom(data, "partial_auc", partial=partial)
    statistic = unit_statistic("partial_auc", partial)
    ratings = data.ratings.reshape(4, -1)
    truth = data.truth.astype(bool)
    for u in range(4):
        read = np.flatnonzero(~np.isnan(ratings[u]))
        for k in range(data.n_cases):
            if k in read:
                keep = read[read != k]
                expected = statistic(ratings[u, keep][~truth[keep]], ratings[u, keep][truth[keep]])
            else:
                expected = est.theta[u]
            assert est.loo[u, k] == pytest.approx(expected, abs=1e-14)
    # the shared values of tied (truth, rating) pairs are the brute-force ones too
    x, t = np.array([1.0, 1, 2, 3, 3, 4]), np.array([False, False, True, False, True, True])
    brute = [statistic(np.delete(x, i)[~np.delete(t, i)], np.delete(x, i)[np.delete(t, i)])
             for i in range(x.size)]
    np.testing.assert_allclose(leave_one_out(statistic, x, t), brute, atol=1e-14)


def test_partial_auc_by_hand_on_a_tiny_study():
    # non-diseased ratings 1, 2, 3 and diseased 2, 4 for every unit: ROC points (0, 0),
    # (0, 1/2), (1/3, 1/2), (2/3, 1), (1, 1). Over specificity 0.5-1 (FPR 0 to 1/2) the area is
    # 1/3 * 1/2 + 1/6 * (1/2 + 3/4) / 2 = 0.2708333; McClish with min 0.125, max 0.5:
    # (1 + (0.2708333 - 0.125) / 0.375) / 2 = 0.6944444. Over sensitivity 0.5-1 the area to
    # the right of the curve is the integral of 1 - FPR over TPR: 1/2 * (2/3 + 1/3) / 2 = 0.25;
    # MRMCaov takes the end at sensitivity 1 at the lowest specificity there (FPR 1: 0), so its
    # area is 1/2 * (2/3 + 0) / 2 = 1/6 (ends on the specificity axis are not on a step here).
    truth = np.array([0, 0, 0, 1, 1])
    ratings = np.tile(np.array([1.0, 2, 3, 2, 4]), (2, 2, 1))
    data = MRMCData.from_arrays(ratings, truth)
    cases = [
        (partial_range((0.5, 1)), 0.2708333333333333),
        (partial_range((1, 0.5), standardized=True), 0.6944444444444444),
        (partial_range((0.5, 1), "sensitivity", boundary="proc"), 0.25),
        (partial_range((0.5, 1), "sensitivity"), 1 / 6),
    ]
    for partial, expected in cases:
        est = compute_fom(data, "partial_auc", partial=partial)
        np.testing.assert_allclose(est.theta, expected, rtol=1e-12)


@pytest.mark.parametrize("cov", ["delong", "unbiased"])
@pytest.mark.parametrize("fom", ["binormal_auc", "partial_auc"])
def test_delong_and_unbiased_refuse_binormal_and_partial_auc(fom, cov):
    data = small_study()
    with pytest.raises(MRMCInputError, match=f"empirical.*AUC, not {fom}; use the jackknife"):
        or_analysis(data, fom, cov, partial=partial_range((0.8, 1)))


def test_partial_auc_needs_a_valid_range():
    with pytest.raises(MRMCInputError, match="partial AUC needs a range"):
        compute_fom(small_study(), "partial_auc")
    with pytest.raises(MRMCInputError, match="within \\[0, 1\\]"):
        partial_range((0.8, 1.2))
    with pytest.raises(MRMCInputError, match="focus must be one of"):
        partial_range((0.8, 1), "fpr")


# MRMCaov's JSS article (docs/jss/MRMCaov.tex), mrmc(binormal_auc(truth, rating), treatment,
# reader, case, data = VanDyke), print(est) and summary(est):
JSS_FOMS = [[0.933, 0.890, 0.929, 0.970, 0.833], [0.951, 0.935, 0.928, 1.0, 0.945]]
JSS_MEAN_SQUARES = (0.0041142, 0.0026081, 0.0009479)  # treatment, reader, treatment:reader
JSS_COVARIANCES = (0.0010790449, 0.0003125019, 0.0003116050, 0.0001937700)  # Error, Cov1-3
JSS_RRRC = (2.67666, 10.51789, 0.1313682)  # F, df2, p


@pytest.fixture(scope="module")
def binormal_vandyke():
    return or_analysis(vandyke(), "binormal_auc")


def test_binormal_foms_mean_squares_and_estimates_match_mrmcaov_to_the_printed_digits(
    binormal_vandyke,
):
    result = binormal_vandyke
    np.testing.assert_allclose(result.fom_table, JSS_FOMS, atol=5e-4)
    ms = result.mean_squares
    assert (ms.ms_t, ms.ms_r, ms.ms_tr) == pytest.approx(JSS_MEAN_SQUARES, abs=5e-8)
    np.testing.assert_allclose(result.arm_means, [0.9109867, 0.9515536], atol=5e-8)
    diff = result.analysis("rrrc").comparisons[0]
    assert diff.estimate == pytest.approx(-0.04056698, abs=5e-9)
    arms = result.analysis("rrrc").arms
    # the last printed digit of arm 2's MS(R) differs by one: the fits agree to about 1e-8
    assert [a.terms["ms_r"] for a in arms] == pytest.approx([0.0027417481, 0.0008142512], rel=2e-7)


def test_binormal_jackknife_covariances_match_mrmcaov_to_three_digits(binormal_vandyke):
    # Not to MRMCaov's printed digits: its leave-one-out fits come from trust-region iterations
    # that stop at their own tolerance, and one of them (treatment 1, reader 4 without its diseased
    # case rated 2) has its likelihood maximum on the b -> 0 boundary, where the two fits stop at
    # different points. Treatment 2's Cov2, free of that fit, agrees to 1e-5 relative.
    result = binormal_vandyke
    cc = result.covariance_components
    assert (cc.var_error, cc.cov1, cc.cov2, cc.cov3) == pytest.approx(JSS_COVARIANCES, rel=2e-3)
    assert cc.cov2_by_arm[1] == pytest.approx(0.0001619773, rel=2e-5)
    assert result.components.var_r == pytest.approx(0.0007113780, rel=1e-4)
    test = result.analysis("rrrc").global_test
    assert (test.statistic, test.df2, test.p_value) == pytest.approx(JSS_RRRC, rel=3e-3)


def test_the_binormal_jackknife_fits_only_distinct_leave_one_out_tables():
    calls = []
    statistic = unit_statistic("binormal_auc", None)

    def counting(neg, pos):
        calls.append(1)
        return statistic(neg, pos)

    data = vandyke()
    ratings, truth = data.ratings[0, 0], data.truth.astype(bool)
    loo = leave_one_out(counting, ratings, truth)
    assert len(calls) == len({(bool(t), float(r)) for t, r in zip(truth, ratings, strict=True)})
    assert len(calls) <= 10 and loo.shape == (114,)


def run(*args):
    out = StringIO()
    call_command("mrmc", *[str(a) for a in args], stdout=out)
    return out.getvalue()


def test_the_command_runs_partial_auc_and_records_its_parameters(tmp_path):
    path = shared_path("mrmcaov_datasets/VanDyke.csv")
    out_json = tmp_path / "out.json"
    text = run(path, "--fom", "partial_auc", "--pauc-range", "1", "0.8", "--pauc-focus",
               "sensitivity", "--pauc-standardized", "--json", out_json)
    assert ("Figure of merit: partial AUC (empirical) over sensitivity 0.8 to 1, "
            "McClish-standardized") in text
    data = json.loads(out_json.read_text())
    assert data["fom"] == "partial_auc"
    assert data["fom_parameters"] == {"range": [0.8, 1.0], "focus": "sensitivity",
                                      "standardized": True, "boundary": "mrmcaov"}
    expected = or_analysis(vandyke(), "partial_auc",
                           partial=partial_range((0.8, 1), "sensitivity", True))
    assert data["components"]["var_error"] == expected.components.var_error
    assert render_or_text(expected).splitlines()[1] == text.splitlines()[1]


def test_the_command_names_binormal_and_trapezoidal_auc_and_checks_partial_options():
    path = shared_path("mrmcaov_datasets/VanDyke.csv")
    assert "AUC (trapezoidal = empirical" in run(path, "--fom", "trapezoidal_auc")
    with pytest.raises(CommandError, match="needs --pauc-range"):
        run(path, "--fom", "partial_auc")
    with pytest.raises(CommandError, match="need --fom partial_auc"):
        run(path, "--pauc-range", "0.8", "1")
    with pytest.raises(CommandError, match="DeLong covariance is defined for the empirical"):
        run(path, "--fom", "binormal_auc", "--cov", "delong")


def test_the_standardized_partial_auc_is_the_area_rescaled_even_below_chance():
    # McClish over specificity 0.8-1: min 0.02, max 0.2, so standardized = 0.5 + (area - 0.02)/0.36;
    # curves below the chance line (small study, narrow range) continue the line, not NaN
    data = small_study()
    area = or_analysis(data, "partial_auc", partial=partial_range((0.8, 1)))
    std = or_analysis(data, "partial_auc", partial=partial_range((0.8, 1), standardized=True))
    np.testing.assert_allclose(std.fom_table, 0.5 + (area.fom_table - 0.02) / 0.36, atol=1e-12)
    np.testing.assert_allclose(std.covariance, area.covariance / 0.36**2, rtol=1e-9, atol=1e-18)
    for name in ("rrrc", "frrc", "rrfc"):
        a, s = area.analysis(name).global_test, std.analysis(name).global_test
        assert (s.statistic, s.df2, s.p_value) == pytest.approx((a.statistic, a.df2, a.p_value))
