"""analysis.stats.glmm against lme4's glmer (fixtures/r_reference/glmer: R 4.2.2, lme4 1.1.31).

On the interior set glmer's stored log-determinant (``m@pp$ldL2()``, 72.6190) is not that of
``I + Lambda' Z' W Z Lambda`` at its own final working weights (72.6139, computed in R from
``getME(m, "Lambdat")``, ``getME(m, "Zt")`` and ``m@resp$mu``): its PIRLS stops before the factor
is refreshed. Ours is evaluated at the conditional modes themselves, so the two deviances differ
by 0.005 and the optima by up to 0.003 on the log-odds scale (glmer's own deviance function at
our estimates is within 3e-4 of its minimum). With one variance at zero they agree to 1e-4.
The issue asks for agreement to 2 decimals."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from analysis.stats.glmm import _binomial_deviance, _Laplace, factor, fit_logistic_crossed

GLMER = Path(__file__).parent / "fixtures" / "r_reference" / "glmer"
REFERENCE = json.loads((GLMER / "glmer.json").read_text())["fits"]
NAMES = ["(Intercept)", "armB", "ai_correctyes", "armB:ai_correctyes"]


def design(name):
    data = pd.read_csv(GLMER / f"{name}.csv")
    b = (data["arm"] == "B").to_numpy(float)
    a = (data["ai_correct"] == "yes").to_numpy(float)
    x = np.column_stack([np.ones(len(data)), b, a, b * a])
    factors = [factor("reader", data["reader"]), factor("case", data["case"])]
    return data["correct"].to_numpy(float), x, factors


@pytest.fixture(scope="module")
def fits():
    return {name: fit_logistic_crossed(*design(name)) for name in ("interior", "no_reader")}


@pytest.mark.parametrize("name, tolerance", [("interior", 0.005), ("no_reader", 1e-4)])
def test_estimates_and_standard_errors_agree_with_glmer(fits, name, tolerance):
    fit, ref = fits[name], REFERENCE[name]
    assert fit.beta == pytest.approx([ref["fixef"][n] for n in NAMES], abs=tolerance)
    assert fit.se == pytest.approx([ref["se"][n] for n in NAMES], abs=tolerance)
    conditional = np.sqrt(np.diag(fit.vcov_conditional))
    assert conditional == pytest.approx([ref["se_conditional"][n] for n in NAMES], abs=tolerance)
    for group in ("reader", "case"):
        assert fit.variances[group] == pytest.approx(ref["variances"][group], abs=2 * tolerance + 2e-3)


def test_a_variance_glmer_leaves_at_1e_9_is_exactly_zero_here(fits):
    fit = fits["no_reader"]
    assert REFERENCE["no_reader"]["singular"] and REFERENCE["no_reader"]["variances"]["reader"] < 1e-8
    assert fit.at_zero == ("reader",) and fit.variances["reader"] == 0.0
    assert fit.deviance == pytest.approx(-2 * REFERENCE["no_reader"]["log_lik"], abs=1e-4)


def test_our_optimum_is_the_minimum_of_the_laplace_deviance(fits):
    """At glmer's estimates our (exact-weight) Laplace deviance is higher than at ours."""
    y, x, factors = design("interior")
    model = _Laplace(y, x, factors)
    ref = REFERENCE["interior"]
    order = [f.name for f in model.factors]
    theta = np.sqrt([ref["variances"][name] for name in order])
    theirs = model.deviance(theta, np.array([ref["fixef"][n] for n in NAMES]))
    fit = fits["interior"]
    assert fit.deviance < theirs < fit.deviance + 1e-2


def test_the_laplace_deviance_is_exact_without_random_effects():
    """With every theta at 0 the deviance is the GLM's: -2 log-likelihood of the logistic fit."""
    y, x, factors = design("no_reader")
    glm = sm.Logit(y, x).fit(disp=False)
    model = _Laplace(y, x, factors)
    assert model.deviance(np.zeros(2), glm.params) == pytest.approx(-2 * glm.llf, rel=1e-12)
    assert _binomial_deviance(y, x @ glm.params) == pytest.approx(-2 * glm.llf, rel=1e-12)


def test_the_conditional_modes_solve_the_penalized_score_equations():
    y, x, factors = design("interior")
    model = _Laplace(y, x, factors)
    theta, beta = np.array([0.9, 0.45]), np.array([0.6, -0.9, 0.4, 1.6])
    u, eta, mu = model.modes(theta, beta)
    from analysis.stats.crossed_blocks import CrossedBlocks

    score = CrossedBlocks(model.factors).transpose_times(theta, y - mu) - u
    assert np.abs(score).max() < 1e-8


def test_bad_outcomes_and_designs_are_refused():
    y, x, factors = design("no_reader")
    with pytest.raises(ValueError, match="0 or 1"):
        fit_logistic_crossed(y * 2, x, factors)
    with pytest.raises(ValueError, match="not estimable"):
        fit_logistic_crossed(y, np.column_stack([x, x[:, 1]]), factors)


def test_a_hessian_that_is_not_positive_definite_falls_back_to_the_conditional_covariance(
        monkeypatch):
    import analysis.stats.glmm as glmm

    monkeypatch.setattr(glmm, "_hessian", lambda g, x, h=glmm.HESSIAN_STEP: -np.eye(x.size))
    fit = fit_logistic_crossed(*design("no_reader"))
    assert fit.vcov_method == "conditional"
    np.testing.assert_array_equal(fit.vcov, fit.vcov_conditional)


def test_the_hessian_covariance_is_used_when_it_is_positive_definite(fits):
    assert fits["no_reader"].vcov_method == "hessian"
    assert not np.allclose(fits["no_reader"].vcov, fits["no_reader"].vcov_conditional)


@pytest.mark.parametrize("theta", [(0.9, 0.45), (0.7, 0.0), (0.0, 0.3)])
def test_the_exact_gradient_equals_central_differences_of_the_deviance(theta):
    y, x, factors = design("interior")
    model = _Laplace(y, x, factors)
    point = np.concatenate([theta, [0.6, -0.9, 0.4, 1.6]])
    value, gradient = model.gradient(point[:2], point[2:])
    assert value == pytest.approx(model.deviance(point[:2], point[2:]), rel=1e-12)
    h = 1e-5
    for j in range(point.size):
        step = np.zeros(point.size)
        step[j] = h
        up = model.deviance((point + step)[:2], (point + step)[2:])
        down = model.deviance((point - step)[:2], (point - step)[2:])
        assert gradient[j] == pytest.approx((up - down) / (2 * h), abs=2e-5)
