"""Obuchowski-Rockette (OR) analysis of MRMC studies with Hillis (2007) degrees of freedom.

The figure of merit of each reader under each treatment (arm) is modelled as
``theta_tr = mu + tau_t + R_r + (TR)_tr + e_tr`` where the errors ``e`` carry the case-sampling
(co)variance: ``Var_error`` for one unit, ``Cov1`` between arms for the same reader, ``Cov2``
between readers within an arm, ``Cov3`` between different readers and arms. These are the
averages of the corresponding entries of the case-sampling covariance matrix (covariance.py).

In split-plot designs the covariance of two units that share no cases is 0 and enters the
averages as 0: with cases nested within readers Cov2 = Cov3 = 0; with cases nested within
treatments Cov1 = Cov3 = 0; in partially paired layouts (Kundel) the averages mix paired and
unpaired pairs. The pairwise comparisons then use the pooled error term of the global test, which
assumes the covariances are the same for every pair of arms.

Formulas follow OR-DBM MRMC 2.5 (Hillis et al. 2005, Hillis 2007, Hillis 2008):

* RRRC: F = MS(T) / [MS(T*R) + r max(Cov2 - Cov3, 0)],
  ddf = [MS(T*R) + r max(Cov2 - Cov3, 0)]^2 / {MS(T*R)^2 / [(t-1)(r-1)]}.
* FRRC: X2 = (t-1) MS(T) / [Var_error - Cov1 + (r-1) (Cov2 - Cov3)], chi-square(t-1), as
  MRMCaov computes it (Hillis 2007 and OR-DBM MRMC 2.5 write max(Cov2 - Cov3, 0) there; the two
  agree whenever Cov2 >= Cov3, and MRMCaov's is the one users check against). Per-arm standard
  errors use max(Cov2, 0) in both.
* RRFC: F = MS(T) / MS(T*R) on (t-1, (t-1)(r-1)) df.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from analysis.stats.covariance import COV_METHODS, case_covariance
from analysis.stats.data import MRMCData, MRMCInputError
from analysis.stats.fom import FomEstimates, compute_fom
from analysis.stats.fom_curves import PartialRange
from analysis.stats.inference import (
    ANALYSES,
    TITLES,
    Analysis,
    GlobalTest,
    arm_estimate,
    comparison,
    f_sf,
    pairs,
    satterthwaite_ddf,
    to_jsonable,
    with_holm,
)


@dataclass(frozen=True)
class MeanSquares:
    """Treatment x reader ANOVA of the figures of merit."""

    ms_t: float
    ms_r: float
    ms_tr: float
    ms_r_by_arm: tuple[float, ...]  # reader mean square within each arm
    df_t: int
    df_r: int
    df_tr: int


def mean_squares(table: np.ndarray) -> MeanSquares:
    """Two-way ANOVA (one observation per cell) of a (treatments, readers) table."""
    t, r = table.shape
    grand = table.mean()
    arm = table.mean(axis=1)
    reader = table.mean(axis=0)
    ms_t = r * ((arm - grand) ** 2).sum() / (t - 1) if t > 1 else math.nan
    ms_r = t * ((reader - grand) ** 2).sum() / (r - 1)
    resid = table - arm[:, None] - reader[None, :] + grand
    ms_tr = (resid**2).sum() / ((t - 1) * (r - 1)) if t > 1 else math.nan
    by_arm = tuple(float(((row - row.mean()) ** 2).sum() / (r - 1)) for row in table)
    return MeanSquares(
        float(ms_t), float(ms_r), float(ms_tr), by_arm, t - 1, r - 1, (t - 1) * (r - 1)
    )


@dataclass(frozen=True)
class CovarianceComponents:
    """Averages of the case-sampling covariance matrix by kind of unit pair."""

    var_error: float
    cov1: float  # same reader, different arms
    cov2: float  # different readers, same arm
    cov3: float  # different readers, different arms
    var_error_by_arm: tuple[float, ...]
    cov2_by_arm: tuple[float, ...]
    var_error_by_reader: tuple[float, ...]
    cov1_by_reader: tuple[float, ...]


# Covariances that are 0 by design (the units share no case), set to 0 as MRMCaov's vcov_comps()
# sets them: a recomputed figure of merit's jackknife leaves tiny cross terms there otherwise.
STRUCTURAL_ZEROS = {
    "cases nested within reader": ("cov2", "cov3"),
    "cases nested within treatment": ("cov1", "cov3"),
}


def covariance_components(
    cov: np.ndarray, n_treatments: int, n_readers: int, design: str | None = None
) -> CovarianceComponents:
    """Average a (U, U) covariance matrix (units treatment-major) into OR's Cov1-3.

    ``design`` (MRMCData.mrmcaov_design) sets the covariances that are 0 by design to 0.
    """
    zeros = STRUCTURAL_ZEROS.get(design, ())
    arm = np.repeat(np.arange(n_treatments), n_readers)
    reader = np.tile(np.arange(n_readers), n_treatments)
    same_t = arm[:, None] == arm[None, :]
    same_r = reader[:, None] == reader[None, :]

    def mean(mask: np.ndarray) -> float:
        return float(cov[mask].mean()) if mask.any() else math.nan

    def component(name: str, mask: np.ndarray) -> float:
        value = mean(mask)
        return 0.0 if name in zeros and not math.isnan(value) else value

    diag = np.diag(cov)
    return CovarianceComponents(
        var_error=float(diag.mean()),
        cov1=component("cov1", ~same_t & same_r),
        cov2=component("cov2", same_t & ~same_r),
        cov3=component("cov3", ~same_t & ~same_r),
        var_error_by_arm=tuple(float(diag[arm == i].mean()) for i in range(n_treatments)),
        cov2_by_arm=tuple(
            component("cov2", same_t & ~same_r & (arm[:, None] == i)) for i in range(n_treatments)
        ),
        var_error_by_reader=tuple(float(diag[reader == j].mean()) for j in range(n_readers)),
        cov1_by_reader=tuple(
            component("cov1", ~same_t & same_r & (reader[:, None] == j))
            for j in range(n_readers)
        ),
    )


@dataclass(frozen=True)
class VarianceComponents:
    """OR variance components (ANOVA estimates, which can be negative) and correlations.

    ``n_cases`` is the number of cases per unit in this (pilot) study, used by power.py to scale
    the error covariances to a future study's size.
    """

    var_r: float
    var_tr: float
    cov1: float
    cov2: float
    cov3: float
    var_error: float
    corr1: float
    corr2: float
    corr3: float
    n_cases: float
    n_readers: int
    n_treatments: int


def variance_components(
    ms: MeanSquares, cc: CovarianceComponents, n_treatments: int, n_readers: int, n_cases: float
) -> VarianceComponents:
    t = n_treatments
    if t > 1:
        var_r = (ms.ms_r - ms.ms_tr) / t - cc.cov1 + cc.cov3
        var_tr = ms.ms_tr - cc.var_error + cc.cov1 + (cc.cov2 - cc.cov3)
    else:  # one arm: E[MS(R)] = var_R + Var_error - Cov2
        var_r, var_tr = ms.ms_r - cc.var_error + cc.cov2, math.nan

    def corr(c: float) -> float:
        return c / cc.var_error if cc.var_error > 0 else math.nan

    return VarianceComponents(
        var_r,
        var_tr,
        cc.cov1,
        cc.cov2,
        cc.cov3,
        cc.var_error,
        corr(cc.cov1),
        corr(cc.cov2),
        corr(cc.cov3),
        n_cases,
        n_readers,
        t,
    )


@dataclass(frozen=True)
class ORResult:
    """Everything an OR analysis estimated; ``to_dict()`` gives it as JSON-ready data."""

    fom: str
    cov_method: str
    design: str
    conf_level: float
    treatments: tuple[str, ...]
    readers: tuple[str, ...]
    n_cases: int
    n_diseased: int
    n_nondiseased: int
    fom_table: np.ndarray  # (treatments, readers)
    arm_means: np.ndarray
    covariance: np.ndarray  # (U, U), units treatment-major
    mean_squares: MeanSquares
    covariance_components: CovarianceComponents
    components: VarianceComponents
    analyses: dict[str, Analysis]
    threshold: float | None = None
    bootstrap_samples: int | None = None
    seed: int | None = None
    source: str = ""
    mrmcaov_design: str = ""  # the design as MRMCaov names it (MRMCData.mrmcaov_design)
    fom_parameters: dict = field(default_factory=dict)  # a partial AUC's range, focus, ...

    def analysis(self, name: str) -> Analysis:
        return self.analyses[name]

    def to_dict(self) -> dict:
        data = to_jsonable(self)
        data["fom_table"] = [
            {"treatment": t, "reader": r, "fom": to_jsonable(float(self.fom_table[i, j]))}
            for i, t in enumerate(self.treatments)
            for j, r in enumerate(self.readers)
        ]
        data["arm_means"] = {
            t: float(m) for t, m in zip(self.treatments, self.arm_means, strict=True)
        }
        data["covariance"] = {
            "units": [{"treatment": t, "reader": r} for t in self.treatments for r in self.readers],
            "matrix": to_jsonable(self.covariance),
        }
        return data


def _rrrc(
    ms: MeanSquares, cc: CovarianceComponents, theta: np.ndarray, treatments, r: int, conf: float
) -> Analysis:
    t = len(treatments)
    arms = []
    for i, name in enumerate(treatments):
        ms_r = ms.ms_r_by_arm[i]
        cov2 = cc.cov2_by_arm[i]
        numerator = ms_r + r * max(cov2, 0.0)
        se = math.sqrt(numerator / r)
        df = satterthwaite_ddf(numerator, ms_r, r - 1)
        arms.append(arm_estimate(name, float(theta[i].mean()), se, df, conf, ms_r=ms_r, cov2=cov2))
    if t < 2:
        return Analysis("rrrc", TITLES["rrrc"], None, (), tuple(arms))
    diff = cc.cov2 - cc.cov3
    error = ms.ms_tr + r * max(diff, 0.0)
    ddf = satterthwaite_ddf(error, ms.ms_tr, ms.df_tr)
    f_value = ms.ms_t / error if error > 0 else math.nan
    test = GlobalTest(
        "F",
        f_value,
        t - 1,
        ddf,
        f_sf(f_value, t - 1, ddf),
        error,
        "MS(T*R) + r*max(Cov2 - Cov3, 0)",
        clamped=diff < 0,
    )
    se = math.sqrt(max(2.0 / r * error, 0.0))
    means = theta.mean(axis=1)
    comps = [
        comparison(treatments[i], treatments[j], float(means[i] - means[j]), se, ddf, conf)
        for i, j in pairs(t)
    ]
    return Analysis("rrrc", TITLES["rrrc"], test, with_holm(comps), tuple(arms))


def _frrc(
    ms: MeanSquares,
    cc: CovarianceComponents,
    cov: np.ndarray,
    theta: np.ndarray,
    treatments,
    readers,
    conf: float,
) -> Analysis:
    t, r = len(treatments), len(readers)
    arms = []
    for i, name in enumerate(treatments):
        var, cov2 = cc.var_error_by_arm[i], cc.cov2_by_arm[i]
        se = math.sqrt(max((var + (r - 1) * max(cov2, 0.0)) / r, 0.0))
        arms.append(
            arm_estimate(name, float(theta[i].mean()), se, math.inf, conf, var_error=var, cov2=cov2)
        )
    if t < 2:
        return Analysis("frrc", TITLES["frrc"], None, (), tuple(arms))
    error = cc.var_error - cc.cov1 + (r - 1) * (cc.cov2 - cc.cov3)
    x2 = (t - 1) * ms.ms_t / error if error > 0 else math.nan
    test = GlobalTest(
        "X2",
        x2,
        t - 1,
        math.inf,
        f_sf(x2 / (t - 1), t - 1, math.inf),
        error,
        "Var_error - Cov1 + (r-1)*(Cov2 - Cov3)",
    )
    se = math.sqrt(max(2.0 / r * error, 0.0))
    means = theta.mean(axis=1)
    comps = [
        comparison(treatments[i], treatments[j], float(means[i] - means[j]), se, math.inf, conf)
        for i, j in pairs(t)
    ]
    per_reader = []
    for k, reader in enumerate(readers):
        for i, j in pairs(t):
            a, b = i * r + k, j * r + k
            var_diff = cov[a, a] + cov[b, b] - 2 * cov[a, b]
            per_reader.append(
                comparison(
                    treatments[i],
                    treatments[j],
                    float(theta[i, k] - theta[j, k]),
                    math.sqrt(max(var_diff, 0.0)),
                    math.inf,
                    conf,
                    reader=reader,
                )
            )
    return Analysis(
        "frrc",
        TITLES["frrc"],
        test,
        with_holm(comps),
        tuple(arms),
        tuple(per_reader),
        notes=(
            "per-reader differences: SE = sqrt(Var_a + Var_b - 2 Cov_ab) "
            "from that reader's own covariances; p-values not adjusted",
        ),
    )


def _arm_intervals_within_0_1(analysis: Analysis) -> Analysis:
    """Every figure of merit here is a proportion or an area in [0, 1]: each arm's interval is
    truncated to it, as MRMCaov truncates them (``trunc_ci``); differences are not truncated."""
    arms = tuple(
        replace(a, ci_low=max(a.ci_low, 0.0), ci_high=min(a.ci_high, 1.0)) for a in analysis.arms
    )
    return replace(analysis, arms=arms)


def _rrfc(ms: MeanSquares, theta: np.ndarray, treatments, r: int, conf: float) -> Analysis:
    t = len(treatments)
    arms = [
        arm_estimate(
            name,
            float(theta[i].mean()),
            math.sqrt(ms.ms_r_by_arm[i] / r),
            r - 1,
            conf,
            ms_r=ms.ms_r_by_arm[i],
        )
        for i, name in enumerate(treatments)
    ]
    if t < 2:
        return Analysis("rrfc", TITLES["rrfc"], None, (), tuple(arms))
    f_value = ms.ms_t / ms.ms_tr if ms.ms_tr > 0 else math.nan
    test = GlobalTest(
        "F", f_value, t - 1, ms.df_tr, f_sf(f_value, t - 1, ms.df_tr), ms.ms_tr, "MS(T*R)"
    )
    se = math.sqrt(2.0 / r * ms.ms_tr)
    means = theta.mean(axis=1)
    comps = [
        comparison(treatments[i], treatments[j], float(means[i] - means[j]), se, ms.df_tr, conf)
        for i, j in pairs(t)
    ]
    return Analysis("rrfc", TITLES["rrfc"], test, with_holm(comps), tuple(arms))


def parse_analyses(analyses: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    if isinstance(analyses, str):
        analyses = ANALYSES if analyses == "all" else (analyses,)
    unknown = [a for a in analyses if a not in ANALYSES]
    if unknown:
        raise MRMCInputError(
            [f"unknown analysis {unknown[0]!r}; expected one of: {', '.join(ANALYSES)}, all"]
        )
    return tuple(analyses)


def or_analysis(
    data: MRMCData,
    fom: str = "auc",
    cov: str = "jackknife",
    *,
    analyses: str | tuple[str, ...] = "all",
    threshold: float | None = None,
    conf_level: float = 0.95,
    bootstrap_samples: int = 2000,
    seed: int | None = 0,
    estimates: FomEstimates | None = None,
    partial: PartialRange | None = None,
) -> ORResult:
    """Obuchowski-Rockette analysis of a study.

    ``fom``: auc (= trapezoidal_auc) | binormal_auc | partial_auc | sensitivity | specificity |
    accuracy (binary ones need ``threshold`` or a diagnosis column; partial_auc needs
    ``partial``, fom_curves.partial_range). ``cov``: jackknife | delong | bootstrap | unbiased (covariance.py; the
    jackknife follows MRMCaov's convention, unbiased is MRMCaov's U-statistic, AUC only).
    ``analyses``: rrrc, frrc, rrfc
    or "all". Differences are reported as earlier arm minus later arm, in the order of
    ``data.treatments``.
    """
    names = parse_analyses(analyses)
    if cov not in COV_METHODS:
        raise MRMCInputError(
            [f"unknown covariance method {cov!r}; expected one of: {', '.join(COV_METHODS)}"]
        )
    if data.n_readers < 2:
        raise MRMCInputError(
            [
                f"an MRMC analysis needs at least 2 readers, found "
                f"{data.n_readers}; for one reader compare arms with delong_test"
            ]
        )
    if not 0 < conf_level < 1:
        raise MRMCInputError([f"confidence level must be between 0 and 1, not {conf_level}"])
    est = estimates or compute_fom(data, fom, threshold, partial=partial)
    matrix = case_covariance(data, est, cov, n_samples=bootstrap_samples, seed=seed)
    table = est.table
    t, r = table.shape
    ms = mean_squares(table)
    cc = covariance_components(matrix, t, r, data.mrmcaov_design)
    n_cases = float(data.read.reshape(t * r, -1).sum(axis=1).mean())
    components = variance_components(ms, cc, t, r, n_cases)
    built: dict[str, Analysis] = {}
    for name in names:
        if name == "rrrc":
            built[name] = _rrrc(ms, cc, table, data.treatments, r, conf_level)
        elif name == "frrc":
            built[name] = _frrc(ms, cc, matrix, table, data.treatments, data.readers, conf_level)
        else:
            built[name] = _rrfc(ms, table, data.treatments, r, conf_level)
        built[name] = _arm_intervals_within_0_1(built[name])
    return ORResult(
        fom=est.name,
        cov_method=cov,
        design=data.design,
        conf_level=conf_level,
        treatments=data.treatments,
        readers=data.readers,
        n_cases=data.n_cases,
        n_diseased=data.n_diseased,
        n_nondiseased=data.n_nondiseased,
        fom_table=table,
        arm_means=table.mean(axis=1),
        covariance=matrix,
        mean_squares=ms,
        covariance_components=cc,
        components=components,
        analyses=built,
        threshold=est.threshold,
        bootstrap_samples=bootstrap_samples if cov == "bootstrap" else None,
        seed=seed if cov == "bootstrap" else None,
        source=data.source,
        mrmcaov_design=data.mrmcaov_design,
        fom_parameters=dict(est.parameters),
    )
