"""Reading time per arm: linear mixed model on log(seconds) with crossed reader and case effects.

Model (Baayen, Davidson & Bates 2008, crossed random effects):

    log(seconds)_rca = mu + alpha_a + u_r + v_c + e_rca,
    u_r ~ N(0, s2_reader), v_c ~ N(0, s2_case), e ~ N(0, s2),

with ``alpha`` the arm effects (reference arm 0). It is fitted by REML with statsmodels
``MixedLM`` using one all-encompassing group and the reader and case intercepts as variance
components (``exog_vc``), which is how statsmodels expresses crossed random effects.
``exp(alpha_a)`` is the ratio of geometric mean reading times of arm a to the reference arm,
with a Wald interval ``exp(alpha_a -/+ z se)``.

If the crossed model raises, does not converge, or gives non-finite standard errors, the model
with a random reader intercept only (groups = readers) is fitted instead and ``model`` says
``"reader"``; if that fails too (both variances at the boundary, as with no reader or case
effect at all), ordinary least squares with reader-clustered standard errors (``"ols"``);
``notes`` says why. Reads with no time or a time <= 0 are left out (log undefined).
Degenerate inputs give a result with ``reason`` set and no ratios.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from analysis.stats.data import label_key
from analysis.stats.reads import Read, arms_of, main_reads


@dataclass(frozen=True)
class ArmTime:
    arm: str
    n: int
    geometric_mean_seconds: float | None
    median_seconds: float | None


@dataclass(frozen=True)
class TimeRatio:
    arm: str
    reference: str
    log_ratio: float
    se: float
    ratio: float  # geometric mean time of arm / reference, adjusted for reader and case
    ci_low: float
    ci_high: float
    p_value: float


@dataclass(frozen=True)
class ReadingTimeResult:
    model: str | None  # "crossed", "reader" (fallback) or None (nothing fitted)
    reference: str | None
    arms: tuple[ArmTime, ...]
    ratios: tuple[TimeRatio, ...]
    n: int
    n_excluded: int
    n_readers: int
    n_cases: int
    converged: bool | None
    variance_components: dict[str, float]  # reader / case intercept variances, on log scale
    residual_variance: float | None
    conf_level: float
    reason: str | None = None
    notes: tuple[str, ...] = ()


def _one_hot(labels: Sequence[str]) -> tuple[list[str], np.ndarray]:
    levels = sorted(set(labels), key=label_key)
    index = {v: i for i, v in enumerate(levels)}
    out = np.zeros((len(labels), len(levels)))
    out[np.arange(len(labels)), [index[v] for v in labels]] = 1.0
    return levels, out


def _crossed_spec(reader_col: Sequence[str], case_col: Sequence[str]):
    """Reader and case intercepts as variance components of one all-encompassing group."""
    from statsmodels.regression.mixed_linear_model import VCSpec

    reader_levels, reader_mat = _one_hot(reader_col)
    case_levels, case_mat = _one_hot(case_col)
    return VCSpec(["reader", "case"], [[reader_levels], [case_levels]],
                  [[reader_mat], [case_mat]])


def _fit(endog, exog, groups, exog_vc=None):
    """Fit a MixedLM by REML; return (result, warning messages)."""
    from statsmodels.regression.mixed_linear_model import MixedLM

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if exog_vc is None:
            model = MixedLM(endog, exog, groups)
        else:
            model = MixedLM(endog, exog, groups, exog_re=np.zeros((len(endog), 0)),
                            exog_vc=exog_vc)
        result = model.fit(reml=True)
    messages = tuple(dict.fromkeys(str(w.message).splitlines()[0] for w in caught))
    return result, messages


def _usable(result, k: int) -> bool:
    if not result.converged:
        return False
    se = np.asarray(result.bse_fe, dtype=float)[:k]
    return bool(np.isfinite(se).all() and np.isfinite(result.fe_params).all())


def reading_time_analysis(reads: Sequence[Read], *, reference: str | None = None,
                          conf_level: float = 0.95) -> ReadingTimeResult:
    """Arm effects on log reading time with crossed reader and case random intercepts.

    ``reference`` defaults to the first arm (label order) with usable reading times.
    """
    main = main_reads(reads)
    timed = [r for r in main if r.seconds is not None and math.isfinite(r.seconds)
             and r.seconds > 0]
    all_arms = arms_of(main)
    arms = arms_of(timed)
    reference = reference if reference is not None else (arms[0] if arms else None)
    readers = sorted({r.reader for r in timed}, key=label_key)
    cases = sorted({r.case for r in timed}, key=label_key)
    log_t = np.log([r.seconds for r in timed]) if timed else np.zeros(0)
    arm_col = np.array([r.arm for r in timed])
    per_arm = []
    for arm in all_arms:
        mask = arm_col == arm
        n = int(mask.sum())
        per_arm.append(ArmTime(arm, n, float(np.exp(log_t[mask].mean())) if n else None,
                               float(np.exp(np.median(log_t[mask]))) if n else None))
    notes = [f"arm {a} has no usable reading times" for a in all_arms if a not in arms]
    base = dict(reference=reference, arms=tuple(per_arm), n=len(timed),
                n_excluded=len(main) - len(timed), n_readers=len(readers), n_cases=len(cases),
                conf_level=conf_level)

    def empty(reason: str) -> ReadingTimeResult:
        return ReadingTimeResult(model=None, ratios=(), converged=None, variance_components={},
                                 residual_variance=None, reason=reason, notes=tuple(notes),
                                 **base)

    others = [a for a in arms if a != reference]
    if not timed:
        return empty("no main read has a positive reading time")
    if reference not in arms:
        return empty(f"reference arm {reference} has no usable reading times")
    if not others:
        return empty(f"only arm {reference} has reading times: nothing to compare")
    if len(readers) < 2:
        return empty("a mixed model needs reading times from at least 2 readers")
    k = 1 + len(others)
    if len(timed) <= k + 2:
        return empty(f"{len(timed)} reading times are too few for {k} fixed effects and the "
                     "variance components")

    exog = np.column_stack([np.ones(len(timed))] + [(arm_col == a).astype(float)
                                                   for a in others])
    reader_col = [r.reader for r in timed]
    case_col = [r.case for r in timed]
    one = np.zeros(len(timed))
    model, result = None, None
    try:
        crossed, messages = _fit(log_t, exog, one, _crossed_spec(reader_col, case_col))
        notes.extend(f"crossed model: {m}" for m in messages)
        if _usable(crossed, k):
            model, result = "crossed", crossed
        else:
            notes.append("the crossed model did not converge; fell back to a random reader "
                         "intercept only")
    except (ValueError, np.linalg.LinAlgError) as exc:
        notes.append(f"the crossed model failed ({exc}); fell back to a random reader "
                     "intercept only")
    if result is None:
        try:
            fallback, messages = _fit(log_t, exog, np.array(reader_col))
            notes.extend(f"reader model: {m}" for m in messages)
            if _usable(fallback, k):
                model, result = "reader", fallback
        except (ValueError, np.linalg.LinAlgError) as exc:
            notes.append(f"the reader-intercept model failed ({exc})")
    if result is None:
        # Typically both random-effect variances sit at the boundary (0): the mixed model's limit
        # is ordinary least squares; reads stay clustered by reader for the standard errors.
        try:
            import statsmodels.api as sm

            reader_ids = np.unique(np.array(reader_col), return_inverse=True)[1]
            ols = sm.OLS(log_t, exog).fit(cov_type="cluster", cov_kwds={"groups": reader_ids})
            bse_ols = np.asarray(ols.bse, dtype=float)
            if np.isfinite(bse_ols).all() and (bse_ols[1:] > 0).all():
                model, result = "ols", ols
                notes.append("neither mixed model could be fitted (random-effect variances at the "
                             "boundary); fell back to least squares with reader-clustered standard "
                             "errors")
        except (ValueError, np.linalg.LinAlgError) as exc:
            notes.append(f"the least-squares fallback failed ({exc})")
    if result is None:
        return empty("neither the mixed models nor the least-squares fallback could be fitted")

    z = float(stats.norm.ppf(0.5 + conf_level / 2))
    params = np.asarray(result.params if model == "ols" else result.fe_params, dtype=float)[:k]
    bse = np.asarray(result.bse if model == "ols" else result.bse_fe, dtype=float)[:k]
    ratios = tuple(
        TimeRatio(arm=a, reference=reference, log_ratio=float(params[i]), se=float(bse[i]),
                  ratio=float(np.exp(params[i])), ci_low=float(np.exp(params[i] - z * bse[i])),
                  ci_high=float(np.exp(params[i] + z * bse[i])),
                  p_value=float(2 * stats.norm.sf(abs(params[i] / bse[i]))))
        for i, a in enumerate(others, start=1)
    )
    if model == "crossed":
        components = {name: float(v) for name, v in
                      zip(result.model.exog_vc.names, result.vcomp, strict=True)}
    elif model == "reader":
        components = {"reader": float(np.asarray(result.cov_re)[0, 0])}
    else:
        components = {}
    return ReadingTimeResult(model=model, ratios=ratios, converged=True,
                             variance_components=components,
                             residual_variance=float(result.scale), notes=tuple(notes), **base)
