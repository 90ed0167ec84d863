"""Power and sample size for a future two-arm MRMC study from pilot OR estimates.

Hillis, Obuchowski & Berbaum (2011), "Power estimation for multireader ROC methods: an updated
and unified approach", Acad Radiol 18:129-142. The pilot's error variance and covariances are
per-study quantities that shrink with the number of cases, so for a future study with c cases
(at the pilot's disease prevalence) they are scaled by c*/c, c* being the pilot's cases per
reader and arm. Var(T*R) does not depend on cases. Negative estimates of Var(T*R) and of
Cov2 - Cov3 are set to 0, as in the OR test.

For r readers and an AUC difference d between the two arms, with s = c*/c:

* RRRC: denominator D = max(Var_TR, 0) + s [Var_error - Cov1 + (r-1) max(Cov2 - Cov3, 0)],
  noncentrality = r d^2 / (2 D), ddf = D^2 / {(max(Var_TR, 0) + s [Var_error - Cov1
  - max(Cov2 - Cov3, 0)])^2 / (r - 1)}; power = P(F(1, ddf; ncp) > F_crit).
* FRRC: D = s [Var_error - Cov1 + (r-1) max(Cov2 - Cov3, 0)], chi-square test (ddf = inf).
* RRFC: D = max(Var_TR, 0) + s [Var_error - Cov1 - max(Cov2 - Cov3, 0)], ddf = r - 1.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from analysis.stats.mrmc import ORResult, VarianceComponents

POWER_ANALYSES = ("rrrc", "frrc", "rrfc")


@dataclass(frozen=True)
class PowerResult:
    analysis: str
    power: float
    n_readers: int
    n_cases: int
    effect: float
    alpha: float
    noncentrality: float
    df1: int
    df2: float  # inf: chi-square test
    critical_value: float

    def to_dict(self) -> dict:
        data = asdict(self)
        data["df2"] = None if math.isinf(self.df2) else self.df2
        return data


def _terms(
    pilot: VarianceComponents, n_readers: int, n_cases: np.ndarray, analysis: str
) -> tuple[np.ndarray, np.ndarray]:
    """Denominator D and ddf for each number of cases."""
    scale = pilot.n_cases / np.asarray(n_cases, dtype=float)
    var_tr = max(pilot.var_tr, 0.0)
    diff = max(pilot.cov2 - pilot.cov3, 0.0)
    r = n_readers
    if analysis == "rrrc":
        denom = var_tr + scale * (pilot.var_error - pilot.cov1 + (r - 1) * diff)
        ms_tr = var_tr + scale * (pilot.var_error - pilot.cov1 - diff)
        with np.errstate(divide="ignore"):
            ddf = np.where(ms_tr > 0, denom**2 / (ms_tr**2 / (r - 1)), np.inf)
    elif analysis == "frrc":
        denom = scale * (pilot.var_error - pilot.cov1 + (r - 1) * diff)
        ddf = np.full_like(denom, np.inf)
    elif analysis == "rrfc":
        denom = var_tr + scale * (pilot.var_error - pilot.cov1 - diff)
        ddf = np.full_like(denom, float(r - 1))
    else:
        raise ValueError(
            f"unknown analysis {analysis!r}; expected one of: {', '.join(POWER_ANALYSES)}"
        )
    return denom, ddf


def _power(
    pilot: VarianceComponents,
    n_readers: int,
    n_cases: np.ndarray,
    effect: float,
    alpha: float,
    analysis: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    denom, ddf = _terms(pilot, n_readers, n_cases, analysis)
    if np.any(denom <= 0):
        raise ValueError(
            "the pilot's variance components give a non-positive error term; "
            "they cannot predict power"
        )
    ncp = n_readers * effect**2 / (2 * denom)
    finite = np.isfinite(ddf)
    crit = np.empty_like(ddf)
    power = np.empty_like(ddf)
    if finite.any():
        crit[finite] = stats.f.isf(alpha, 1, ddf[finite])
        power[finite] = stats.ncf.sf(crit[finite], 1, ddf[finite], ncp[finite])
    if (~finite).any():
        crit[~finite] = stats.chi2.isf(alpha, 1)
        power[~finite] = stats.ncx2.sf(crit[~finite], 1, ncp[~finite])
    if effect == 0:
        power[:] = alpha
    return power, ncp, ddf, crit


def _check(n_readers: int, alpha: float) -> None:
    if n_readers < 2:
        raise ValueError(f"a future study needs at least 2 readers, not {n_readers}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, not {alpha}")


def power(
    pilot: VarianceComponents | ORResult,
    n_readers: int,
    n_cases: int,
    effect: float,
    alpha: float = 0.05,
    analysis: str = "rrrc",
) -> PowerResult:
    """Power of a two-arm OR test with ``n_readers`` readers reading ``n_cases`` cases each."""
    if isinstance(pilot, ORResult):
        pilot = pilot.components
    _check(n_readers, alpha)
    if n_cases < 2:
        raise ValueError(f"a future study needs at least 2 cases, not {n_cases}")
    p, ncp, ddf, crit = _power(pilot, n_readers, np.array([n_cases]), effect, alpha, analysis)
    return PowerResult(
        analysis,
        float(p[0]),
        n_readers,
        n_cases,
        effect,
        alpha,
        float(ncp[0]),
        1,
        float(ddf[0]),
        float(crit[0]),
    )


def cases_for_power(
    pilot: VarianceComponents | ORResult,
    n_readers: int,
    effect: float,
    target: float = 0.8,
    alpha: float = 0.05,
    analysis: str = "rrrc",
    max_cases: int = 1_000_000,
) -> PowerResult:
    """Smallest number of cases giving at least ``target`` power with ``n_readers`` readers.

    Raises ValueError when the target cannot be reached with that many readers (with random
    readers, power is capped by Var(T*R) however many cases are read).
    """
    if isinstance(pilot, ORResult):
        pilot = pilot.components
    _check(n_readers, alpha)
    if not alpha < target < 1:
        raise ValueError(f"target power must be between alpha ({alpha}) and 1, not {target}")
    if effect == 0:
        raise ValueError("an effect of 0 has power alpha for any number of cases")
    limit, *_ = _power(pilot, n_readers, np.array([max_cases]), effect, alpha, analysis)
    if limit[0] < target:
        raise ValueError(
            f"power {target} is not reachable with {n_readers} readers: even {max_cases} cases "
            f"give {limit[0]:.3f}; add readers"
        )
    hi = 2
    while _power(pilot, n_readers, np.array([hi]), effect, alpha, analysis)[0][0] < target:
        hi = min(hi * 2, max_cases)
    # scan every case count up to the first power-of-two bracket that reaches the target, so the
    # answer is the smallest such count even where power is not monotone in the case count
    candidates = np.arange(2, hi + 1)
    powers, *_ = _power(pilot, n_readers, candidates, effect, alpha, analysis)
    n_cases = int(candidates[np.argmax(powers >= target)])
    return power(pilot, n_readers, n_cases, effect, alpha, analysis)
