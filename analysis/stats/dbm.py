"""Dorfman-Berbaum-Metz (DBM) analysis of jackknife pseudovalues, as a cross-check of OR.

Pseudovalues ``Y_trk = m theta_tr - (m - 1) theta_tr(k)`` (m = number of cases the figure of
merit depends on) are analysed by a treatment x reader x case ANOVA with the Hillis (2008) error
terms and degrees of freedom. With jackknife covariances the RRRC test is algebraically the OR
RRRC test (Hillis et al. 2005), which the tests check. DBM needs every unit to have read the same
cases (a fully crossed design, for the cases the figure of merit uses).

* RRRC: F = MS(T) / [MS(T*R) + max(MS(T*C) - MS(T*R*C), 0)], Hillis ddf.
* FRRC: F = MS(T) / MS(T*C) on (t-1, (t-1)(c-1)) df.
* RRFC: F = MS(T) / MS(T*R) on (t-1, (t-1)(r-1)) df.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from analysis.stats.covariance import jackknife_values
from analysis.stats.data import MRMCData, MRMCInputError
from analysis.stats.fom import compute_fom
from analysis.stats.inference import (
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
from analysis.stats.mrmc import parse_analyses


def _ss(means: np.ndarray, weight: float) -> float:
    return float(weight * (means**2).sum())


@dataclass(frozen=True)
class DBMMeanSquares:
    ms_t: float
    ms_r: float
    ms_c: float
    ms_tr: float
    ms_tc: float
    ms_rc: float
    ms_trc: float
    by_arm: tuple[dict, ...]  # reader x case ANOVA per arm: ms_r, ms_c, ms_rc
    by_reader: tuple[dict, ...]  # treatment x case ANOVA per reader: ms_t, ms_c, ms_tc


def _two_way(y: np.ndarray) -> tuple[float, float, float]:
    """Mean squares (rows, columns, interaction) of a two-way table without replication."""
    a, b = y.shape
    grand = y.mean()
    rows = y.mean(axis=1) - grand
    cols = y.mean(axis=0) - grand
    resid = y - grand - rows[:, None] - cols[None, :]
    return (
        _ss(rows, b) / (a - 1) if a > 1 else math.nan,
        _ss(cols, a) / (b - 1),
        float((resid**2).sum()) / ((a - 1) * (b - 1)) if a > 1 else math.nan,
    )


def dbm_mean_squares(y: np.ndarray) -> DBMMeanSquares:
    """Three-way ANOVA (one observation per cell) of pseudovalues shaped (T, R, C)."""
    t, r, c = y.shape
    g = y.mean()
    mt = y.mean(axis=(1, 2)) - g
    mr = y.mean(axis=(0, 2)) - g
    mc = y.mean(axis=(0, 1)) - g
    mtr = y.mean(axis=2) - g - mt[:, None] - mr[None, :]
    mtc = y.mean(axis=1) - g - mt[:, None] - mc[None, :]
    mrc = y.mean(axis=0) - g - mr[:, None] - mc[None, :]
    resid = (
        y
        - g
        - mt[:, None, None]
        - mr[None, :, None]
        - mc[None, None, :]
        - mtr[:, :, None]
        - mtc[:, None, :]
        - mrc[None, :, :]
    )
    dft, dfr, dfc = t - 1, r - 1, c - 1

    def ms(ss: float, df: int) -> float:
        return ss / df if df > 0 else math.nan

    by_arm = []
    for i in range(t):
        ms_r, ms_c, ms_rc = _two_way(y[i])
        by_arm.append({"ms_r": ms_r, "ms_c": ms_c, "ms_rc": ms_rc})
    by_reader = []
    for j in range(r):
        ms_t, ms_c, ms_tc = _two_way(y[:, j, :])
        by_reader.append({"ms_t": ms_t, "ms_c": ms_c, "ms_tc": ms_tc})
    return DBMMeanSquares(
        ms_t=ms(_ss(mt, r * c), dft),
        ms_r=ms(_ss(mr, t * c), dfr),
        ms_c=ms(_ss(mc, t * r), dfc),
        ms_tr=ms(_ss(mtr, c), dft * dfr),
        ms_tc=ms(_ss(mtc, r), dft * dfc),
        ms_rc=ms(_ss(mrc, t), dfr * dfc),
        ms_trc=ms(float((resid**2).sum()), dft * dfr * dfc),
        by_arm=tuple(by_arm),
        by_reader=tuple(by_reader),
    )


@dataclass(frozen=True)
class DBMVarianceComponents:
    """DBM variance components of the pseudovalue model (ANOVA estimates, may be negative)."""

    var_r: float
    var_c: float
    var_tr: float
    var_tc: float
    var_rc: float
    var_error: float  # Var(T*R*C) + Var(error)


def dbm_variance_components(ms: DBMMeanSquares, t: int, r: int, c: int) -> DBMVarianceComponents:
    return DBMVarianceComponents(
        var_r=(ms.ms_r - ms.ms_tr - ms.ms_rc + ms.ms_trc) / (t * c),
        var_c=(ms.ms_c - ms.ms_tc - ms.ms_rc + ms.ms_trc) / (t * r),
        var_tr=(ms.ms_tr - ms.ms_trc) / c,
        var_tc=(ms.ms_tc - ms.ms_trc) / r,
        var_rc=(ms.ms_rc - ms.ms_trc) / t,
        var_error=ms.ms_trc,
    )


@dataclass(frozen=True)
class DBMResult:
    fom: str
    conf_level: float
    treatments: tuple[str, ...]
    readers: tuple[str, ...]
    n_cases: int  # cases in the pseudovalue ANOVA
    fom_table: np.ndarray
    pseudovalues: np.ndarray  # (T, R, C)
    mean_squares: DBMMeanSquares
    components: DBMVarianceComponents
    analyses: dict[str, Analysis]

    def to_dict(self) -> dict:
        """JSON-ready data (the pseudovalue array is left out; it is on the object)."""
        data = to_jsonable({k: v for k, v in self.__dict__.items() if k != "pseudovalues"})
        return data


def pseudovalues(
    data: MRMCData, fom: str = "auc", threshold: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Jackknife pseudovalues (T, R, m) over the cases the figure of merit depends on."""
    est = compute_fom(data, fom, threshold)
    domain = est.domain
    if not (domain == domain[:1]).all():
        raise MRMCInputError(
            [
                f"DBM needs every reader to have read the same cases under every treatment "
                f"(this design is {data.design}); use the OR analysis"
            ]
        )
    cols = np.flatnonzero(domain[0])
    m = cols.size
    loo = jackknife_values(est)[:, cols]
    y = m * est.theta[:, None] - (m - 1) * loo
    return y.reshape(data.n_treatments, data.n_readers, m), est.table


def _comparisons(trs, arm_means, se: float, ddf: float, conf_level: float) -> list:
    return [
        comparison(trs[i], trs[j], float(arm_means[i] - arm_means[j]), se, ddf, conf_level)
        for i, j in pairs(len(trs))
    ]


def _arms_on(ms: DBMMeanSquares, key: str, df: int, trs, arm_means, n: int, conf_level: float):
    """Each arm's estimate with the error term `key` ("ms_c" or "ms_r") of its own ANOVA."""
    return [
        arm_estimate(
            arm,
            float(arm_means[i]),
            math.sqrt(ms.by_arm[i][key] / n),
            df,
            conf_level,
            **{key: ms.by_arm[i][key]},
        )
        for i, arm in enumerate(trs)
    ]


def _rrrc(ms: DBMMeanSquares, shape, trs, arm_means, conf_level: float):
    """Random readers and cases: (arms, comparisons, per reader, global test)."""
    t, r, c = shape
    arms, comps, test = [], [], None
    for i, arm in enumerate(trs):
        a = ms.by_arm[i]
        error = a["ms_r"] + max(a["ms_c"] - a["ms_rc"], 0.0)
        arms.append(
            arm_estimate(
                arm,
                float(arm_means[i]),
                math.sqrt(error / (r * c)),
                satterthwaite_ddf(error, a["ms_r"], r - 1),
                conf_level,
                **a,
            )
        )
    if t > 1:
        diff = ms.ms_tc - ms.ms_trc
        error = ms.ms_tr + max(diff, 0.0)
        ddf = satterthwaite_ddf(error, ms.ms_tr, (t - 1) * (r - 1))
        f_value = ms.ms_t / error if error > 0 else math.nan
        test = GlobalTest(
            "F",
            f_value,
            t - 1,
            ddf,
            f_sf(f_value, t - 1, ddf),
            error,
            "MS(T*R) + max(MS(T*C) - MS(T*R*C), 0)",
            clamped=diff < 0,
        )
        comps = _comparisons(trs, arm_means, math.sqrt(2 * error / (r * c)), ddf, conf_level)
    return arms, comps, [], test


def _frrc(ms: DBMMeanSquares, y: np.ndarray, trs, readers, arm_means, conf_level: float):
    """Fixed readers, random cases: (arms, comparisons, per reader, global test)."""
    t, r, c = y.shape
    arms = _arms_on(ms, "ms_c", c - 1, trs, arm_means, r * c, conf_level)
    comps, per_reader, test = [], [], None
    if t > 1:
        ddf = (t - 1) * (c - 1)
        f_value = ms.ms_t / ms.ms_tc
        test = GlobalTest("F", f_value, t - 1, ddf, f_sf(f_value, t - 1, ddf), ms.ms_tc, "MS(T*C)")
        comps = _comparisons(trs, arm_means, math.sqrt(2 * ms.ms_tc / (r * c)), ddf, conf_level)
        for k, reader in enumerate(readers):
            rm = y[:, k, :].mean(axis=1)
            se_k = math.sqrt(2 * ms.by_reader[k]["ms_tc"] / c)
            per_reader += [
                comparison(
                    trs[i],
                    trs[j],
                    float(rm[i] - rm[j]),
                    se_k,
                    (t - 1) * (c - 1),
                    conf_level,
                    reader=reader,
                )
                for i, j in pairs(t)
            ]
    return arms, comps, per_reader, test


def _rrfc(ms: DBMMeanSquares, shape, trs, arm_means, conf_level: float):
    """Random readers, fixed cases: (arms, comparisons, per reader, global test)."""
    t, r, c = shape
    arms = _arms_on(ms, "ms_r", r - 1, trs, arm_means, r * c, conf_level)
    comps, test = [], None
    if t > 1:
        ddf = (t - 1) * (r - 1)
        f_value = ms.ms_t / ms.ms_tr
        test = GlobalTest("F", f_value, t - 1, ddf, f_sf(f_value, t - 1, ddf), ms.ms_tr, "MS(T*R)")
        comps = _comparisons(trs, arm_means, math.sqrt(2 * ms.ms_tr / (r * c)), ddf, conf_level)
    return arms, comps, [], test


def dbm_analysis(
    data: MRMCData,
    fom: str = "auc",
    *,
    analyses: str | tuple[str, ...] = "all",
    threshold: float | None = None,
    conf_level: float = 0.95,
) -> DBMResult:
    """DBM analysis with jackknife pseudovalues (Hillis 2008 error terms and ddf)."""
    names = parse_analyses(analyses)
    if data.n_readers < 2:
        raise MRMCInputError(["a DBM analysis needs at least 2 readers"])
    y, table = pseudovalues(data, fom, threshold)
    t, r, c = y.shape
    ms = dbm_mean_squares(y)
    arm_means = y.mean(axis=(1, 2))
    trs = data.treatments
    built: dict[str, Analysis] = {}
    for name in names:
        if name == "rrrc":
            arms, comps, per_reader, test = _rrrc(ms, y.shape, trs, arm_means, conf_level)
        elif name == "frrc":
            arms, comps, per_reader, test = _frrc(ms, y, trs, data.readers, arm_means, conf_level)
        else:
            arms, comps, per_reader, test = _rrfc(ms, y.shape, trs, arm_means, conf_level)
        built[name] = Analysis(
            name, TITLES[name], test, with_holm(comps), tuple(arms), tuple(per_reader)
        )
    return DBMResult(
        fom=fom,
        conf_level=conf_level,
        treatments=data.treatments,
        readers=data.readers,
        n_cases=c,
        fom_table=table,
        pseudovalues=y,
        mean_squares=ms,
        components=dbm_variance_components(ms, t, r, c),
        analyses=built,
    )
