"""Power and sample size (Hillis, Obuchowski & Berbaum 2011) from the Van Dyke pilot.

Known answers: RJafroc's test suite (dpc10ster/RJafroc, tests/testthat, "Sample Size ROC")
states that with Van Dyke as the pilot, the observed RRRC effect, 6 readers and 111 cases the
OR power is 0.5526116, and that 251 cases give 80% power with 6 readers.
"""

import math

import pytest
from scipy import stats

from analysis.stats.io import read_long_csv
from analysis.stats.mrmc import VarianceComponents, or_analysis
from analysis.stats.power import cases_for_power, power
from tests.analysis.reference_data import shared_path


@pytest.fixture(scope="module")
def pilot():
    return or_analysis(read_long_csv(shared_path("vandyke/RocData.csv")))


@pytest.fixture(scope="module")
def effect(pilot):
    return pilot.analysis("rrrc").comparisons[0].estimate


def test_power_for_six_readers_and_111_cases_matches_rjafroc(pilot, effect):
    assert power(pilot, 6, 111, effect).power == pytest.approx(0.5526116, abs=5e-8)


def test_cases_for_80_percent_power_with_six_readers_matches_rjafroc(pilot, effect):
    result = cases_for_power(pilot, 6, effect, target=0.8)
    assert result.n_cases == 251 and result.power >= 0.8
    assert power(pilot, 6, 250, effect).power < 0.8


def test_power_is_alpha_when_there_is_no_effect(pilot):
    assert power(pilot, 5, 200, 0.0, alpha=0.05).power == pytest.approx(0.05)


def test_power_grows_with_readers_cases_and_effect(pilot):
    base = power(pilot, 5, 100, 0.05).power
    assert power(pilot, 8, 100, 0.05).power > base
    assert power(pilot, 5, 200, 0.05).power > base
    assert power(pilot, 5, 100, 0.08).power > base


def test_fixed_reader_power_is_the_two_sided_z_test_power(pilot):
    vc = pilot.components
    r, c, d = 5, 150, 0.04
    se = math.sqrt(2 / r * vc.n_cases / c
                   * (vc.var_error - vc.cov1 + (r - 1) * max(vc.cov2 - vc.cov3, 0)))
    z = stats.norm.ppf(0.975)
    by_hand = stats.norm.cdf(d / se - z) + stats.norm.cdf(-d / se - z)
    assert power(pilot, r, c, d, analysis="frrc").power == pytest.approx(by_hand, rel=1e-9)


def test_random_reader_fixed_case_power_uses_r_minus_one_df(pilot):
    result = power(pilot, 7, 120, 0.05, analysis="rrfc")
    assert result.df2 == 6 and result.critical_value == pytest.approx(stats.f.isf(0.05, 1, 6))


def test_negative_treatment_by_reader_variance_is_set_to_zero():
    common = {"cov1": 0.0003, "cov2": 0.0003, "cov3": 0.0002, "var_error": 0.0008, "corr1": 0,
              "corr2": 0, "corr3": 0, "n_cases": 100, "n_readers": 5, "n_treatments": 2,
              "var_r": 0.001}
    negative = VarianceComponents(var_tr=-0.0002, **common)
    zero = VarianceComponents(var_tr=0.0, **common)
    assert power(negative, 5, 100, 0.05).power == power(zero, 5, 100, 0.05).power


def test_unreachable_power_says_to_add_readers(pilot):
    with pytest.raises(ValueError, match="not reachable with 2 readers"):
        cases_for_power(pilot, 2, 0.02, target=0.9)


def test_power_result_dictionary_marks_infinite_df_as_none(pilot):
    assert power(pilot, 5, 100, 0.05, analysis="frrc").to_dict()["df2"] is None
