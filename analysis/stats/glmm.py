"""Logistic mixed model with crossed random intercepts, fitted as lme4's ``glmer`` fits it.

Model: ``logit P(y = 1) = X beta + sum_f Z_f b_f`` with ``b_f ~ N(0, theta_f^2 I)`` for each
grouping factor (reader, case). As ``glmer(..., family = binomial)`` with its default Laplace
approximation (``nAGQ = 1``; Bates et al. 2015, J Stat Softw 67(1), section 5 of the lme4
"PIRLS" vignette): for given ``(theta, beta)`` penalized iteratively reweighted least squares
finds the conditional modes ``u*`` of the spherical random effects (``b = Lambda u``), and

    -2 log L(theta, beta) ~ sum_i devresid_i(mu*) + |u*|^2 + log det(I + Lambda' Z' W* Z Lambda)

with ``W* = diag(mu* (1 - mu*))``. That deviance is minimized jointly over ``theta >= 0`` and
``beta`` inside ``theta >= 0``, and again with each theta the fit leaves near 0 held at exactly
0; the lowest wins,
so a variance at zero is found exactly (``at_zero``; lme4 stops at ~1e-9 and calls the fit
singular). Standard errors are lme4's default (``vcov(fit)``, ``use.hessian = TRUE``): the
``beta`` block of the inverse of half the Hessian of that deviance over ``(theta, beta)`` (central
differences of its exact gradient, ``_Laplace.gradient``; glmer differentiates the deviance
twice numerically); ``vcov_conditional`` is the ``use.hessian = FALSE`` one, ``(X' W X -
X' W Z Lambda M^-1 Lambda' Z' W X)^-1`` at the optimum, used instead (``vcov_method``) where
that Hessian is not positive definite, as glmer falls back to it.

glmer's reported deviance can differ slightly from this one: its stored Cholesky factor is not
always refreshed at the final working weights (tests/analysis/test_glmm.py shows a case), which
moves its estimates by up to ~3e-3 on the log-odds scale; at a zero variance they agree to 1e-4.

Why our own code: statsmodels has no frequentist GLMM (its ``BinomialBayesMixedGLM`` is a
variational Bayes fit whose numbers do not match glmer), and researchers check these estimates
against glmer, the analysis most XAI reader studies publish (e.g. Prinster et al., Radiology
2024). Checked against lme4 1.1.31 (tests/analysis/fixtures/r_reference/glmer).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from analysis.stats.crossed_blocks import CrossedBlocks, Factor, factor, largest_first, sum_by

__all__ = ["Factor", "LogisticFit", "factor", "fit_logistic_crossed"]

HESSIAN_STEP = 1e-4  # lme4's deriv12 step
NEAR_ZERO = 1e-2  # a relative SD below this is also tried at exactly 0


@dataclass(frozen=True)
class LogisticFit:
    beta: np.ndarray  # fixed effects on the log-odds scale
    vcov: np.ndarray  # glmer's default covariance (finite-difference Hessian)
    vcov_conditional: np.ndarray  # glmer's use.hessian = FALSE covariance
    vcov_method: str  # "hessian", or "conditional" where the Hessian is not positive definite
    variances: dict[str, float]  # each factor's intercept variance (theta_f^2)
    at_zero: tuple[str, ...]  # factors whose variance is estimated at exactly 0
    deviance: float  # -2 log-likelihood (Laplace)
    n: int

    @property
    def se(self) -> np.ndarray:
        return np.sqrt(np.diag(self.vcov))


class _Laplace:
    """The Laplace deviance of one data set as a function of (theta, beta)."""

    def __init__(self, y: np.ndarray, x: np.ndarray, factors: Sequence[Factor]):
        self.y, self.x = y, x
        self.order = largest_first(factors)
        self.factors = [factors[i] for i in self.order]
        self.q = sum(f.n_levels for f in self.factors)
        self.u = np.zeros(self.q)  # warm start for the next PIRLS

    def modes(self, theta: np.ndarray, beta: np.ndarray):
        """PIRLS: the conditional modes u*, with mu and the system M at them."""
        offset = self.x @ beta
        u = self.u.copy()
        unweighted = CrossedBlocks(self.factors) if self.factors else None
        for _ in range(60):
            eta = offset + (unweighted.times(theta, u) if unweighted else 0.0)
            mu = special.expit(eta)
            blocks = CrossedBlocks(self.factors, mu * (1.0 - mu))
            solved = blocks.factorize(theta)
            step = solved.solve(blocks.transpose_times(theta, self.y - mu) - u)
            current = self._penalized(eta, u)
            scale = 1.0
            while scale > 1e-8:  # step halving keeps the penalized deviance going down
                trial = u + scale * step
                eta_trial = offset + unweighted.times(theta, trial)
                if self._penalized(eta_trial, trial) <= current + 1e-12:
                    break
                scale /= 2
            u = u + scale * step
            if np.max(np.abs(scale * step), initial=0.0) < 1e-10:
                break
        eta = offset + (unweighted.times(theta, u) if unweighted else 0.0)
        mu = special.expit(eta)
        self.u = u
        return u, eta, mu

    def _penalized(self, eta: np.ndarray, u: np.ndarray) -> float:
        return _binomial_deviance(self.y, eta) + float(u @ u)

    def deviance(self, theta: np.ndarray, beta: np.ndarray) -> float:
        if not self.factors:
            return _binomial_deviance(self.y, self.x @ beta)
        u, eta, mu = self.modes(theta, beta)
        solved = CrossedBlocks(self.factors, mu * (1.0 - mu)).factorize(theta)
        return _binomial_deviance(self.y, eta) + float(u @ u) + solved.log_det

    def gradient(self, theta: np.ndarray, beta: np.ndarray) -> tuple[float, np.ndarray]:
        """The deviance and its exact gradient over (theta, beta).

        At the modes the penalized deviance is stationary in u, so only its explicit
        dependence and that of log det M (through Lambda and the weights W(eta*), eta* moving
        with u*: du*/dphi = -M^-1 d(gradient in u)/dphi / 2) remain. ``h_i`` is the leverage
        ``z_i' Lambda M^-1 Lambda z_i`` of observation i."""
        if not self.factors:
            eta = self.x @ beta
            return _binomial_deviance(self.y, eta), -2 * self.x.T @ (self.y - special.expit(eta))
        u, eta, mu = self.modes(theta, beta)
        w = mu * (1.0 - mu)
        w_prime = w * (1.0 - 2.0 * mu)
        blocks = CrossedBlocks(self.factors, w)
        solved = blocks.factorize(theta)
        deviance = _binomial_deviance(self.y, eta) + float(u @ u) + solved.log_det
        resid = self.y - mu
        starts = np.cumsum([0] + [f.n_levels for f in self.factors])
        index = [start + f.codes for start, f in zip(starts, self.factors, strict=False)]
        k = len(self.factors)
        cross = [  # G_f(i) = sum_g theta_g M^-1[index_g(i), index_f(i)]
            sum(theta[g] * solved.inverse_at(index[g], index[f]) for g in range(k))
            for f in range(k)
        ]
        leverage = sum(theta[f] * cross[f] for f in range(k))
        weight = w_prime * leverage
        d_eta = self.x - blocks.times(
            theta, solved.solve(blocks.transpose_times(theta, w[:, None] * self.x))
        )
        grad_beta = -2.0 * self.x.T @ resid + weight @ d_eta
        grad_theta = np.empty(k)
        for f, fac in enumerate(self.factors):
            z_u = u[starts[f] : starts[f + 1]][fac.codes]
            direct = np.zeros(self.q)
            direct[starts[f] : starts[f + 1]] = sum_by(fac, resid)
            du = -solved.solve(blocks.transpose_times(theta, w * z_u) - direct)
            d_eta_f = z_u + blocks.times(theta, du)
            grad_theta[f] = -2.0 * resid @ z_u + 2.0 * w @ cross[f] + weight @ d_eta_f
        return deviance, np.concatenate([grad_theta, grad_beta])

    def conditional_vcov(self, theta: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """``(X' W X - X' W Z Lambda M^-1 Lambda' Z' W X)^-1`` at the modes."""
        _, _, mu = self.modes(theta, beta)
        w = mu * (1.0 - mu)
        xtwx = self.x.T @ (w[:, None] * self.x)
        if self.factors:
            blocks = CrossedBlocks(self.factors, w)
            zwx = blocks.transpose_times(theta, w[:, None] * self.x)
            xtwx = xtwx - zwx.T @ blocks.factorize(theta).solve(zwx)
        return np.linalg.inv(xtwx)


def _binomial_deviance(y: np.ndarray, eta: np.ndarray) -> float:
    """-2 sum log p(y | eta) for 0/1 outcomes, computed stably on the logit scale."""
    return float(2.0 * np.sum(np.logaddexp(0.0, eta) - y * eta))


def _glm_start(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Plain logistic regression (the fixed-effects start), shrunk slightly against separation."""

    def objective(beta):
        eta = x @ beta
        mu = special.expit(eta)
        return _binomial_deviance(y, eta) + 1e-6 * beta @ beta, 2 * x.T @ (mu - y) + 2e-6 * beta

    return optimize.minimize(objective, np.zeros(x.shape[1]), jac=True, method="BFGS").x


def _optimum_on_face(model: _Laplace, free: tuple[int, ...], k: int, start: np.ndarray):
    """Minimize the deviance over beta and the free thetas (the others held at 0)."""
    free = list(free)

    def unpack(params):
        theta = np.zeros(k)
        theta[free] = params[: len(free)]
        return theta, params[len(free) :]

    def objective(params):
        value, grad = model.gradient(*unpack(params))
        return value, np.concatenate([grad[:k][free], grad[k:]])

    x0 = np.concatenate([np.ones(len(free)), start])
    bounds = [(0.0, None)] * len(free) + [(None, None)] * start.size
    model.u = np.zeros(model.q)
    res = optimize.minimize(
        objective,
        x0,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"ftol": 1e-13, "gtol": 1e-8, "maxiter": 2000},
    )
    theta, beta = unpack(res.x)
    return model.deviance(theta, beta), theta, beta


def _hessian(gradient, x: np.ndarray, h: float = HESSIAN_STEP) -> np.ndarray:
    """Central differences of the exact gradient, symmetrized."""
    columns = []
    for i in range(x.size):
        step = np.zeros(x.size)
        step[i] = h
        columns.append((gradient(x + step) - gradient(x - step)) / (2 * h))
    out = np.array(columns)
    return (out + out.T) / 2


def _hessian_vcov(hessian: np.ndarray, k: int) -> np.ndarray | None:
    """The beta block of (H / 2)^-1, or None when H is not positive definite."""
    try:
        np.linalg.cholesky(hessian / 2.0)
    except np.linalg.LinAlgError:
        return None
    vcov = np.linalg.inv(hessian / 2.0)[k:, k:]
    return vcov if (np.diag(vcov) > 0).all() else None


def fit_logistic_crossed(y: np.ndarray, x: np.ndarray, factors: Sequence[Factor]) -> LogisticFit:
    """Fit ``y ~ x + (1|f1) + (1|f2) + ...`` for 0/1 ``y`` by the Laplace approximation.

    Raises ``ValueError`` when the fixed effects are not estimable (X not of full column rank)
    or ``y`` is not 0/1.
    """
    y = np.asarray(y, dtype=float)
    x = np.asarray(x, dtype=float)
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("the outcome must be 0 or 1")
    if np.linalg.matrix_rank(x) < x.shape[1]:
        raise ValueError("the fixed effects are not estimable (design not of full rank)")
    model = _Laplace(y, x, factors)
    k = len(factors)
    candidates = [_optimum_on_face(model, tuple(range(k)), k, _glm_start(y, x))]
    # a variance the full fit leaves near 0 is compared with the fit holding it at exactly 0
    near_zero = [i for i in range(k) if candidates[0][1][i] < NEAR_ZERO]
    for size in range(1, len(near_zero) + 1):
        for zeros in itertools.combinations(near_zero, size):
            free = tuple(i for i in range(k) if i not in zeros)
            candidates.append(_optimum_on_face(model, free, k, candidates[0][2]))
    best = min(c[0] for c in candidates)
    value, theta_sorted, beta = min(
        (c for c in candidates if c[0] <= best + 1e-7), key=lambda c: int((c[1] > 0).sum())
    )
    params = np.concatenate([theta_sorted, beta])
    hessian = _hessian(lambda p: model.gradient(p[:k], p[k:])[1], params)
    conditional = model.conditional_vcov(theta_sorted, beta)
    vcov, method = _hessian_vcov(hessian, k), "hessian"
    if vcov is None:  # as glmer: a Hessian that is not positive definite is not used
        vcov, method = conditional, "conditional"
    theta = {model.factors[pos].name: float(t) for pos, t in enumerate(theta_sorted)}
    return LogisticFit(
        beta=beta,
        vcov=vcov,
        vcov_conditional=conditional,
        vcov_method=method,
        variances={f.name: theta[f.name] ** 2 for f in factors},
        at_zero=tuple(f.name for f in factors if theta[f.name] == 0.0),
        deviance=float(value),
        n=int(y.size),
    )
