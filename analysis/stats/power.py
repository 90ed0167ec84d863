"""Power and sample size for a future MRMC study of t >= 2 arms from pilot OR estimates.

Hillis, Obuchowski & Berbaum (2011), "Power estimation for multireader ROC methods: an updated
and unified approach", Acad Radiol 18:129-142; Hillis (2007) for the t-arm degrees of freedom.
The pilot's error variance and covariances are per-study quantities that shrink with the number
of cases, so for a future study with c cases (at the pilot's disease prevalence) they are scaled
by c*/c, c* being the pilot's cases per reader and arm. Var(T*R) does not depend on cases.
Negative estimates of Var(T*R) and of Cov2 - Cov3 are set to 0, as in the OR test.

For r readers, t arms with assumed AUCs theta_1..theta_t and s = c*/c, the global test of equal
AUCs has df1 = t - 1 and noncentrality ncp = r sum_i (theta_i - theta_bar)^2 / D; with two arms
and an AUC difference d this is r d^2 / (2 D). With diff = max(Cov2 - Cov3, 0):

* RRRC: D = max(Var_TR, 0) + s [Var_error - Cov1 + (r-1) diff],
  ddf = D^2 / {(max(Var_TR, 0) + s [Var_error - Cov1 - diff])^2 / ((t-1)(r-1))};
  power = P(F(t-1, ddf; ncp) > F_crit).
* FRRC: D = s [Var_error - Cov1 + (r-1) diff], chi-square test on t-1 df (ddf = inf).
* RRFC: D = max(Var_TR, 0) + s [Var_error - Cov1 - diff], ddf = (t-1)(r-1).

``plan`` gathers what a sample-size page or command shows: a power table over readers x cases
and the smallest number of cases (for given readers) or readers (for given cases) reaching a
target power.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial

import numpy as np
from scipy import stats

from analysis.stats.mrmc import ORResult, VarianceComponents

POWER_ANALYSES = ("rrrc", "frrc", "rrfc")
MAX_CASES = 1_000_000
MAX_READERS = 1_000


@dataclass(frozen=True)
class PowerResult:
    analysis: str
    power: float
    n_readers: int
    n_cases: int
    effect: float  # two arms: the AUC difference; t arms: sqrt(2 sum (theta_i - theta_bar)^2)
    alpha: float
    noncentrality: float
    df1: int
    df2: float  # inf: chi-square test
    critical_value: float
    aucs: tuple[float, ...] = ()  # the assumed arm AUCs, when power was asked for from them

    def to_dict(self) -> dict:
        data = asdict(self)
        data["df2"] = None if math.isinf(self.df2) else self.df2
        data["aucs"] = list(self.aucs)
        return data


@dataclass(frozen=True)
class Effect:
    """What the noncentrality needs: ``squared`` = 2 sum (theta_i - theta_bar)^2 (d^2 for two
    arms), the numerator df and what the result reports."""

    squared: float
    df1: int
    effect: float
    aucs: tuple[float, ...] = ()


def _two_arm(effect: float) -> Effect:
    return Effect(effect**2, 1, effect)


def arm_effect(aucs: Sequence[float]) -> Effect:
    """The effect of assumed arm AUCs; for two arms exactly that of d = aucs[1] - aucs[0]."""
    values = tuple(float(a) for a in aucs)
    if len(values) < 2:
        raise ValueError(f"give the assumed AUC of at least 2 arms, not {len(values)}")
    if not all(math.isfinite(a) for a in values):
        raise ValueError("the assumed AUCs must be finite numbers")
    if len(values) == 2:
        d = values[1] - values[0]
        return Effect(d**2, 1, d, values)
    theta = np.array(values)
    squared = 2 * float(((theta - theta.mean()) ** 2).sum())
    return Effect(squared, len(values) - 1, math.sqrt(squared), values)


def _components(pilot: VarianceComponents | ORResult) -> VarianceComponents:
    return pilot.components if isinstance(pilot, ORResult) else pilot


def _terms(
    pilot: VarianceComponents, n_readers, n_cases, analysis: str, df1: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Denominator D and ddf for each (readers, cases) pair (numpy broadcasting)."""
    scale = pilot.n_cases / np.asarray(n_cases, dtype=float)
    r = np.asarray(n_readers, dtype=float)
    var_tr = max(pilot.var_tr, 0.0)
    diff = max(pilot.cov2 - pilot.cov3, 0.0)
    if analysis == "rrrc":
        denom = var_tr + scale * (pilot.var_error - pilot.cov1 + (r - 1) * diff)
        ms_tr = var_tr + scale * (pilot.var_error - pilot.cov1 - diff)
        with np.errstate(divide="ignore"):
            ddf = np.where(ms_tr > 0, denom**2 / (ms_tr**2 / (df1 * (r - 1))), np.inf)
    elif analysis == "frrc":
        denom = scale * (pilot.var_error - pilot.cov1 + (r - 1) * diff)
        ddf = np.full_like(denom, np.inf)
    elif analysis == "rrfc":
        denom = var_tr + scale * (pilot.var_error - pilot.cov1 - diff)
        denom, ddf = np.broadcast_arrays(denom, df1 * (r - 1))
    else:
        raise ValueError(
            f"unknown analysis {analysis!r}; expected one of: {', '.join(POWER_ANALYSES)}"
        )
    denom, ddf = np.broadcast_arrays(np.asarray(denom, dtype=float), ddf)
    return np.atleast_1d(denom), np.atleast_1d(np.asarray(ddf, dtype=float))


def _power(
    pilot: VarianceComponents,
    n_readers,
    n_cases,
    effect: float | Effect,
    alpha: float,
    analysis: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    eff = effect if isinstance(effect, Effect) else _two_arm(effect)
    denom, ddf = _terms(pilot, n_readers, n_cases, analysis, eff.df1)
    if np.any(denom <= 0):
        raise ValueError(
            "the pilot's variance components give a non-positive error term; "
            "they cannot predict power"
        )
    ncp = np.asarray(n_readers) * eff.squared / (2 * denom)
    ncp = np.broadcast_to(ncp, denom.shape).astype(float)
    finite = np.isfinite(ddf)
    crit = np.empty_like(ddf)
    power = np.empty_like(ddf)
    if finite.any():
        crit[finite] = stats.f.isf(alpha, eff.df1, ddf[finite])
        power[finite] = stats.ncf.sf(crit[finite], eff.df1, ddf[finite], ncp[finite])
    if (~finite).any():
        crit[~finite] = stats.chi2.isf(alpha, eff.df1)
        power[~finite] = stats.ncx2.sf(crit[~finite], eff.df1, ncp[~finite])
    if eff.squared == 0:
        power[:] = alpha
    return power, ncp, ddf, crit


def _check(n_readers: int, alpha: float) -> None:
    if n_readers < 2:
        raise ValueError(f"a future study needs at least 2 readers, not {n_readers}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, not {alpha}")


def _check_cases(n_cases: int) -> None:
    if n_cases < 2:
        raise ValueError(f"a future study needs at least 2 cases, not {n_cases}")


def _check_target(target: float, alpha: float) -> None:
    if not alpha < target < 1:
        raise ValueError(f"target power must be between alpha ({alpha}) and 1, not {target}")


def _result(pilot, n_readers, n_cases, eff: Effect, alpha, analysis) -> PowerResult:
    p, ncp, ddf, crit = _power(pilot, n_readers, np.array([n_cases]), eff, alpha, analysis)
    return PowerResult(
        analysis,
        float(p[0]),
        int(n_readers),
        int(n_cases),
        eff.effect,
        alpha,
        float(ncp[0]),
        eff.df1,
        float(ddf[0]),
        float(crit[0]),
        eff.aucs,
    )


def power(
    pilot: VarianceComponents | ORResult,
    n_readers: int,
    n_cases: int,
    effect: float,
    alpha: float = 0.05,
    analysis: str = "rrrc",
) -> PowerResult:
    """Power of a two-arm OR test with ``n_readers`` readers reading ``n_cases`` cases each."""
    pilot = _components(pilot)
    _check(n_readers, alpha)
    _check_cases(n_cases)
    return _result(pilot, n_readers, n_cases, _two_arm(effect), alpha, analysis)


def arms_power(
    pilot: VarianceComponents | ORResult,
    n_readers: int,
    n_cases: int,
    aucs: Sequence[float],
    *,
    alpha: float = 0.05,
    analysis: str = "rrrc",
) -> PowerResult:
    """Power of the OR global test of t = len(aucs) arms whose true AUCs are ``aucs``."""
    pilot = _components(pilot)
    _check(n_readers, alpha)
    _check_cases(n_cases)
    return _result(pilot, n_readers, n_cases, arm_effect(aucs), alpha, analysis)


def _smallest(power_at: Callable[[np.ndarray], np.ndarray], target: float, limit: int) -> int:
    """Smallest n >= 2 with power_at(n) >= target, given that power_at(limit) reaches it.

    Doubles a bracket from 2, then scans every count up to it, so the answer is the smallest
    such count even where power is not monotone in n."""
    hi = 2
    while power_at(np.array([hi]))[0] < target:
        hi = min(hi * 2, limit)
    candidates = np.arange(2, hi + 1)
    return int(candidates[np.argmax(power_at(candidates) >= target)])


def _cases_needed(pilot, n_readers, eff: Effect, target, alpha, analysis, max_cases):
    _check(n_readers, alpha)
    _check_target(target, alpha)
    if eff.squared == 0:
        raise ValueError("an effect of 0 has power alpha for any number of cases")

    def power_at(cases: np.ndarray) -> np.ndarray:
        return _power(pilot, n_readers, cases, eff, alpha, analysis)[0]

    limit = power_at(np.array([max_cases]))[0]
    if limit < target:
        raise ValueError(
            f"power {target} is not reachable with {n_readers} readers: even {max_cases} cases "
            f"give {limit:.3f}; add readers"
        )
    n_cases = _smallest(power_at, target, max_cases)
    return _result(pilot, n_readers, n_cases, eff, alpha, analysis)


def cases_for_power(
    pilot: VarianceComponents | ORResult,
    n_readers: int,
    effect: float,
    target: float = 0.8,
    alpha: float = 0.05,
    analysis: str = "rrrc",
    max_cases: int = MAX_CASES,
) -> PowerResult:
    """Smallest number of cases giving at least ``target`` power with ``n_readers`` readers.

    Raises ValueError when the target cannot be reached with that many readers (with random
    readers, power is capped by Var(T*R) however many cases are read).
    """
    pilot = _components(pilot)
    return _cases_needed(pilot, n_readers, _two_arm(effect), target, alpha, analysis, max_cases)


def cases_needed(
    pilot: VarianceComponents | ORResult,
    n_readers: int,
    aucs: Sequence[float],
    *,
    target: float = 0.8,
    alpha: float = 0.05,
    analysis: str = "rrrc",
    max_cases: int = MAX_CASES,
) -> PowerResult:
    """``cases_for_power`` for t arms with assumed AUCs ``aucs``."""
    pilot = _components(pilot)
    return _cases_needed(pilot, n_readers, arm_effect(aucs), target, alpha, analysis, max_cases)


def _readers_needed(pilot, n_cases, eff: Effect, target, alpha, analysis, max_readers):
    _check(2, alpha)
    _check_cases(n_cases)
    _check_target(target, alpha)
    if eff.squared == 0:
        raise ValueError("an effect of 0 has power alpha for any number of readers")

    def power_at(readers: np.ndarray) -> np.ndarray:
        return _power(pilot, readers, n_cases, eff, alpha, analysis)[0]

    limit = power_at(np.array([max_readers]))[0]
    if limit < target:
        raise ValueError(
            f"power {target} is not reachable with {n_cases} cases: even {max_readers} readers "
            f"give {limit:.3f}; add cases"
        )
    n_readers = _smallest(power_at, target, max_readers)
    return _result(pilot, n_readers, n_cases, eff, alpha, analysis)


def readers_needed(
    pilot: VarianceComponents | ORResult,
    n_cases: int,
    aucs: Sequence[float],
    *,
    target: float = 0.8,
    alpha: float = 0.05,
    analysis: str = "rrrc",
    max_readers: int = MAX_READERS,
) -> PowerResult:
    """Smallest number of readers giving at least ``target`` power when each reads ``n_cases``.

    Raises ValueError when even ``max_readers`` readers fall short (with random cases, power is
    capped by Cov2 - Cov3 however many readers there are)."""
    pilot = _components(pilot)
    return _readers_needed(pilot, n_cases, arm_effect(aucs), target, alpha, analysis, max_readers)


@dataclass(frozen=True)
class Needed:
    """The smallest readers (for ``n_given`` cases) or cases (for ``n_given`` readers) reaching
    the target power; ``problem`` says why there is none within the bounds."""

    analysis: str
    given: str  # "readers": n_given readers, cases found; "cases": n_given cases, readers found
    n_given: int
    result: PowerResult | None
    problem: str = ""

    def to_dict(self) -> dict:
        return {
            "analysis": self.analysis,
            "given": self.given,
            "n_given": self.n_given,
            "result": self.result.to_dict() if self.result else None,
            "problem": self.problem,
        }


@dataclass(frozen=True)
class PowerPlan:
    """A power table over readers x cases and, for a target power, the sample sizes needed."""

    aucs: tuple[float, ...]
    alpha: float
    analyses: tuple[str, ...]
    target: float | None
    table: tuple[PowerResult, ...] = ()
    cases_needed: tuple[Needed, ...] = ()
    readers_needed: tuple[Needed, ...] = ()
    components: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "aucs": list(self.aucs),
            "alpha": self.alpha,
            "analyses": list(self.analyses),
            "target_power": self.target,
            "components": self.components,
            "power": [r.to_dict() for r in self.table],
            "cases_needed": [n.to_dict() for n in self.cases_needed],
            "readers_needed": [n.to_dict() for n in self.readers_needed],
        }


def _needed(search: Callable[[], PowerResult], analysis: str, given: str, n: int) -> Needed:
    try:
        return Needed(analysis, given, n, search())
    except ValueError as exc:
        return Needed(analysis, given, n, None, str(exc))


def plan(
    pilot: VarianceComponents | ORResult,
    aucs: Sequence[float],
    *,
    readers: Sequence[int] = (),
    cases: Sequence[int] = (),
    target: float | None = None,
    alpha: float = 0.05,
    analyses: Sequence[str] = POWER_ANALYSES,
) -> PowerPlan:
    """Power for every readers x cases pair (when both are given) and, with a ``target``, the
    cases needed for each reader count and the readers needed for each case count.

    Raises ValueError for input no table can be made from (too few readers or cases, alpha or
    target out of range, fewer than 2 AUCs, a pilot with a non-positive error term); a target
    that cannot be reached within the bounds is a row's ``problem``, not an error."""
    pilot = _components(pilot)
    eff = arm_effect(aucs)
    _check(min(readers, default=2), alpha)
    _check_cases(min(cases, default=2))
    if target is not None:
        _check_target(target, alpha)
    unknown = [a for a in analyses if a not in POWER_ANALYSES]
    if unknown:
        raise ValueError(f"unknown analysis {unknown[0]!r}; expected one of: rrrc, frrc, rrfc")
    table = tuple(
        _result(pilot, r, c, eff, alpha, a) for a in analyses for r in readers for c in cases
    )
    found_cases: list[Needed] = []
    found_readers: list[Needed] = []
    if target is not None:
        for a in analyses:
            for r in readers:
                search = partial(_cases_needed, pilot, r, eff, target, alpha, a, MAX_CASES)
                found_cases.append(_needed(search, a, "readers", r))
            for c in cases:
                search = partial(_readers_needed, pilot, c, eff, target, alpha, a, MAX_READERS)
                found_readers.append(_needed(search, a, "cases", c))
    return PowerPlan(
        eff.aucs,
        alpha,
        tuple(analyses),
        target,
        table,
        tuple(found_cases),
        tuple(found_readers),
        {k: v for k, v in asdict(pilot).items() if not k.startswith("corr")},
    )


def assumed_components(
    *, var_tr: float, var_error: float, cov1: float, cov2: float, cov3: float, pilot_cases: float
) -> VarianceComponents:
    """Assumed OR variance components for ``pilot_cases`` cases per reader and arm."""

    def corr(c: float) -> float:
        return c / var_error if var_error > 0 else float("nan")

    return VarianceComponents(
        var_r=float("nan"),
        var_tr=var_tr,
        cov1=cov1,
        cov2=cov2,
        cov3=cov3,
        var_error=var_error,
        corr1=corr(cov1),
        corr2=corr(cov2),
        corr3=corr(cov3),
        n_cases=float(pilot_cases),
        n_readers=0,
        n_treatments=0,
    )
