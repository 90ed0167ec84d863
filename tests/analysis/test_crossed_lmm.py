"""analysis.stats.crossed_lmm against lme4's lmer (fixtures/r_reference/lmer, made by
make_reference.R with R 4.2.2 and lme4 1.1.31) and against hand-checkable limits."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from analysis.stats.crossed_lmm import factor, fit_crossed

LMER = Path(__file__).parent / "fixtures" / "r_reference" / "lmer"
REFERENCE = json.loads((LMER / "lmer.json").read_text())
SETS = ("interior", "no_reader", "no_effects", "unbalanced")


def design(name):
    data = pd.read_csv(LMER / f"{name}.csv")
    arms = sorted(data["arm"].unique())
    x = np.column_stack([np.ones(len(data))] + [(data["arm"] == a).to_numpy(float)
                                                for a in arms[1:]])
    return np.log(data["seconds"].to_numpy()), x, data, ["(Intercept)"] + [f"arm{a}" for a in arms[1:]]


def assert_equals_lmer(fit, ref, names):
    assert fit.beta == pytest.approx([ref["fixef"][n] for n in names], rel=1e-5)
    assert fit.se == pytest.approx([ref["se"][n] for n in names], rel=1e-4)
    for group, value in fit.variances.items():
        assert value == pytest.approx(ref["variances"][group], rel=1e-4, abs=1e-7)
    assert fit.sigma2 == pytest.approx(ref["variances"]["Residual"], rel=1e-5)
    # our optimum is never worse than lme4's (bobyqa stops a little early at most)
    assert fit.criterion == pytest.approx(ref["criterion"], rel=1e-9)
    assert fit.criterion <= ref["criterion"] + 1e-7
    assert bool(fit.at_zero) == ref["singular"]


@pytest.mark.parametrize("name", SETS)
@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
def test_crossed_reader_and_case_intercepts_equal_lmer(name, reml):
    y, x, data, names = design(name)
    fit = fit_crossed(y, x, [factor("reader", data["reader"]), factor("case", data["case"])],
                      reml=reml)
    assert_equals_lmer(fit, REFERENCE["fits"]["reml" if reml else "ml"][name], names)


@pytest.mark.parametrize("name", SETS)
def test_a_single_reader_intercept_equals_lmer(name):
    y, x, data, names = design(name)
    fit = fit_crossed(y, x, [factor("reader", data["reader"])])
    assert_equals_lmer(fit, REFERENCE["fits"]["reader_only"][name], names)


def test_a_variance_at_zero_is_exactly_zero_and_named():
    y, x, data, _ = design("no_reader")
    fit = fit_crossed(y, x, [factor("reader", data["reader"]), factor("case", data["case"])])
    assert fit.at_zero == ("reader",)
    assert fit.theta["reader"] == 0.0 and fit.variances["reader"] == 0.0
    assert fit.variances["case"] > 0


def test_with_every_variance_at_zero_the_fit_is_least_squares():
    """No grouping structure at all: the REML fit is OLS with its usual covariance."""
    rng = np.random.default_rng(3)
    n = 200
    x = np.column_stack([np.ones(n), rng.integers(0, 2, n)])
    y = x @ [1.0, 0.5] + rng.normal(0, 1, n)
    readers = np.repeat(np.arange(10), n // 10)
    cases = np.tile(np.arange(20), n // 20)
    fit = fit_crossed(y, x, [factor("reader", readers), factor("case", cases)])
    if set(fit.at_zero) == {"reader", "case"}:
        ols = sm.OLS(y, x).fit()
        assert fit.beta == pytest.approx(ols.params, rel=1e-10)
        assert fit.se == pytest.approx(ols.bse, rel=1e-10)
        assert fit.sigma2 == pytest.approx(ols.scale, rel=1e-10)
    else:  # sampling noise gave a small positive variance: still lower than the OLS criterion
        ols_fit = fit_crossed(y, x, [])
        assert fit.criterion < ols_fit.criterion


def test_no_factors_reproduces_ordinary_least_squares():
    rng = np.random.default_rng(4)
    x = np.column_stack([np.ones(50), rng.normal(size=50)])
    y = x @ [2.0, -1.0] + rng.normal(0, 0.5, 50)
    fit = fit_crossed(y, x, [])
    ols = sm.OLS(y, x).fit()
    assert fit.beta == pytest.approx(ols.params, rel=1e-10)
    assert fit.se == pytest.approx(ols.bse, rel=1e-10)


def test_fixed_effects_that_are_not_estimable_are_refused():
    x = np.column_stack([np.ones(6), np.ones(6)])
    with pytest.raises(ValueError, match="not estimable"):
        fit_crossed(np.arange(6.0), x, [factor("reader", "aabbcc")])
    with pytest.raises(ValueError, match="no residual degrees of freedom"):
        fit_crossed(np.arange(1.0), np.ones((1, 1)), [factor("reader", "a")])


def test_factor_levels_follow_first_appearance():
    f = factor("reader", ["r2", "r1", "r2", "r3"])
    assert f.codes.tolist() == [0, 1, 0, 2] and f.n_levels == 3
