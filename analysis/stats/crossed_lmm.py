"""Linear mixed model with crossed random intercepts, fitted as lme4's ``lmer`` fits it.

Model: ``y = X beta + sum_f Z_f b_f + e`` with ``b_f ~ N(0, sigma^2 theta_f^2 I)`` for each
grouping factor f (reader, case, ...) and ``e ~ N(0, sigma^2 I)``. Following Bates, Maechler,
Bolker & Walker (2015, J Stat Softw 67(1), "Fitting linear mixed-effects models using lme4",
sections 3.2-3.4) the REML criterion is profiled over the relative standard deviations
``theta >= 0``:

    -2 l_R(theta) = log|L_theta|^2 + log|R_X|^2 + (n - p) (1 + log(2 pi r^2(theta) / (n - p)))

where ``L_theta L_theta' = Lambda' Z' Z Lambda + I``, ``R_X' R_X = X' V^-1 X`` with
``V = I + Z Lambda Lambda' Z'`` and ``r^2`` the penalized residual sum of squares; then
``sigma^2 = r^2 / (n - p)`` and ``vcov(beta) = sigma^2 (R_X' R_X)^-1`` (what ``summary(lmer)``
prints). The ML criterion replaces ``log|R_X|^2 + (n - p) (...)`` by ``n (1 + log(2 pi r^2 / n))``.

Why our own code: statsmodels' ``MixedLM`` expresses crossed factors as variance components of
one group and fails when a variance sits at zero, which is common in reader studies (readers
who read equally fast); lme4 fits such data and reports a singular fit. Here the optimum is
searched inside ``theta >= 0`` *and* on every face where some ``theta_f = 0`` (at most eight
fits for three factors), and the lowest criterion wins, so a variance at zero is found exactly
(reported in ``at_zero``) rather than approached.

The sparse system ``Lambda' Z' Z Lambda + I`` is solved by crossed_blocks.py (the factor with
most levels eliminated by its diagonal): a criterion evaluation costs time linear in the number
of cases.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import linalg, optimize

from analysis.stats.crossed_blocks import CrossedBlocks, Factor, factor, largest_first

__all__ = ["CrossedFit", "Factor", "factor", "fit_crossed"]


@dataclass(frozen=True)
class CrossedFit:
    beta: np.ndarray  # fixed effects
    vcov: np.ndarray  # their covariance, sigma^2 (X' V^-1 X)^-1
    sigma2: float  # residual variance
    variances: dict[str, float]  # each factor's intercept variance, sigma^2 theta_f^2
    theta: dict[str, float]  # relative standard deviations
    at_zero: tuple[str, ...]  # factors whose variance is estimated at exactly 0 (singular fit)
    criterion: float  # -2 log (restricted) likelihood at the optimum
    reml: bool
    n: int

    @property
    def se(self) -> np.ndarray:
        return np.sqrt(np.diag(self.vcov))


class _Criterion:
    """The profiled (RE)ML deviance of one data set as a function of theta."""

    def __init__(self, y: np.ndarray, x: np.ndarray, factors: Sequence[Factor], reml: bool):
        self.n, self.p = x.shape
        self.reml = reml
        self.order = largest_first(factors)
        xy = np.column_stack([x, y])
        self.xy = xy
        self.xy_xy = xy.T @ xy
        self.blocks = CrossedBlocks([factors[i] for i in self.order]) if factors else None

    def parts(self, theta_sorted: np.ndarray):
        """(log det L^2, P = [X y]' V^-1 [X y]) at theta, in this object's factor order."""
        if self.blocks is None:
            return 0.0, self.xy_xy
        solved = self.blocks.factorize(theta_sorted)
        w = self.blocks.transpose_times(theta_sorted, self.xy)
        return solved.log_det, self.xy_xy - w.T @ solved.solve(w)

    def solve(self, theta_sorted: np.ndarray):
        """(criterion, beta, (X' V^-1 X), r^2) at theta."""
        log_det, p_mat = self.parts(theta_sorted)
        p = self.p
        xtvx, xtvy, ytvy = p_mat[:p, :p], p_mat[:p, p], p_mat[p, p]
        chol = linalg.cho_factor(xtvx, lower=True)
        beta = linalg.cho_solve(chol, xtvy)
        r2 = max(float(ytvy - xtvy @ beta), 1e-300)
        if self.reml:
            dof = self.n - p
            log_det_x = 2.0 * float(np.log(np.diag(chol[0])).sum())
            crit = log_det + log_det_x + dof * (1.0 + math.log(2.0 * math.pi * r2 / dof))
        else:
            crit = log_det + self.n * (1.0 + math.log(2.0 * math.pi * r2 / self.n))
        return crit, beta, xtvx, r2

    def __call__(self, theta_sorted: np.ndarray) -> float:
        try:
            return self.solve(np.asarray(theta_sorted, dtype=float))[0]
        except (linalg.LinAlgError, ValueError):
            return math.inf


def _optimum_on_face(crit: _Criterion, free: tuple[int, ...], k: int) -> tuple[float, np.ndarray]:
    """Minimize the criterion over theta with only the ``free`` entries allowed above 0."""
    theta = np.zeros(k)
    if not free:
        return crit(theta), theta

    def on_face(values):
        t = np.zeros(k)
        t[list(free)] = values
        return crit(t)

    if len(free) == 1:
        # a bounded scalar search on log(theta) over [1e-6, 1e3]; the face's edge (theta = 0)
        # is its own face and compared separately
        res = optimize.minimize_scalar(
            lambda s: on_face([math.exp(s)]),
            bounds=(math.log(1e-6), math.log(1e3)),
            method="bounded",
            options={"xatol": 1e-10},
        )
        best = np.array([math.exp(res.x)])
    else:
        res = optimize.minimize(
            on_face,
            np.ones(len(free)),  # lme4's start: every theta 1
            method="L-BFGS-B",
            bounds=[(0.0, None)] * len(free),
            options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 1000},
        )
        best = res.x
    theta[list(free)] = best
    return crit(theta), theta


def fit_crossed(
    y: np.ndarray, x: np.ndarray, factors: Sequence[Factor], *, reml: bool = True
) -> CrossedFit:
    """Fit ``y ~ x + (1|f1) + (1|f2) + ...`` by (RE)ML with every variance allowed to be 0.

    Raises ``ValueError`` when the fixed effects are not estimable (X not of full column rank,
    or no residual degrees of freedom).
    """
    y = np.asarray(y, dtype=float)
    x = np.asarray(x, dtype=float)
    n, p = x.shape
    if np.linalg.matrix_rank(x) < p:
        raise ValueError("the fixed effects are not estimable (design not of full rank)")
    if n <= p:
        raise ValueError("no residual degrees of freedom")
    crit = _Criterion(y, x, factors, reml)
    k = len(factors)
    candidates = [
        _optimum_on_face(crit, free, k)
        for size in range(k, -1, -1)
        for free in itertools.combinations(range(k), size)
    ]
    # lowest criterion; within 1e-9 of it, the face with most variances at zero (the simpler fit)
    best_value = min(value for value, _ in candidates)
    value, theta_sorted = min(
        (c for c in candidates if c[0] <= best_value + 1e-9),
        key=lambda c: int((c[1] > 0).sum()),
    )
    value, beta, xtvx, r2 = crit.solve(theta_sorted)
    sigma2 = r2 / (n - p if reml else n)
    theta = {factors[i].name: float(theta_sorted[pos]) for pos, i in enumerate(crit.order)}
    return CrossedFit(
        beta=beta,
        vcov=sigma2 * np.linalg.inv(xtvx),
        sigma2=sigma2,
        variances={name: sigma2 * t * t for name, t in theta.items()},
        theta=theta,
        at_zero=tuple(f.name for f in factors if theta[f.name] == 0.0),
        criterion=value,
        reml=reml,
        n=n,
    )
