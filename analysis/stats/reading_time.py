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
effect at all), ordinary least squares with reader-clustered standard errors (``"ols"``).
``attempts`` records each model tried and why it was not used; ``model_note`` says it in plain
words, once, for the report (``MODEL_WORDS`` names each model). The optimizer's warnings
(statsmodels ConvergenceWarning and the like) are captured, never printed: ``model_note``
counts them and ``optimizer_warnings`` keeps their distinct texts for the JSON export.
Reads with no time or a time <= 0 are left out (log undefined). Degenerate inputs give a result
with ``reason`` set and no ratios.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace

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


MODEL_WORDS = {
    "crossed": "mixed model on log time with crossed reader and case intercepts",
    "reader": "mixed model on log time with a reader intercept only",
    "ols": "least squares on log time with reader-clustered standard errors",
}


@dataclass(frozen=True)
class ModelAttempt:
    model: str  # a MODEL_WORDS key
    used: bool
    problem: str | None = None  # why it was not used, in plain words
    at_boundary: bool = False  # the optimizer warned that a variance is at its boundary (0)


@dataclass(frozen=True)
class ReadingTimeResult:
    model: str | None  # "crossed", "reader", "ols" (fallbacks) or None (nothing fitted)
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
    attempts: tuple[ModelAttempt, ...] = ()
    model_note: str = ""  # which model is reported and why, in plain words
    optimizer_warnings: tuple[str, ...] = ()  # distinct warning texts (not for the report)


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
    return VCSpec(["reader", "case"], [[reader_levels], [case_levels]], [[reader_mat], [case_mat]])


def _fit(endog, exog, groups, exog_vc=None):
    """Fit a MixedLM by REML; return (result, warning messages)."""
    from statsmodels.regression.mixed_linear_model import MixedLM

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if exog_vc is None:
            model = MixedLM(endog, exog, groups)
        else:
            model = MixedLM(endog, exog, groups, exog_re=np.zeros((len(endog), 0)), exog_vc=exog_vc)
        result = model.fit(reml=True)
    messages = tuple(str(w.message).strip() for w in caught)
    return result, messages


def _problem(result, k: int, messages: Sequence[str]) -> str | None:
    """Why a fitted mixed model cannot be used (None: usable)."""
    at_boundary = any("boundary" in m for m in messages)
    if not result.converged:
        return "did not converge (variance at the boundary)" if at_boundary else "did not converge"
    se = np.asarray(result.bse_fe, dtype=float)[:k]
    if not (np.isfinite(se).all() and np.isfinite(result.fe_params).all()):
        return (
            "gave no finite standard errors (variance at the boundary)"
            if at_boundary
            else "gave no finite standard errors"
        )
    return None


def model_note(model: str | None, attempts: Sequence[ModelAttempt], n_warnings: int) -> str:
    """Plain words: the planned model, each fallback and why, what is reported."""
    failed = [f"the {MODEL_WORDS[a.model]} {a.problem}" for a in attempts if not a.used]
    parts = []
    if failed:
        text = "; ".join(failed)
        parts.append(text[0].upper() + text[1:] + ".")
    used = next((a for a in attempts if a.used), None)
    boundary = (
        " (a variance component is estimated at the boundary, 0)"
        if used is not None and used.at_boundary
        else ""
    )
    parts.append(
        f"Reported: {MODEL_WORDS[model]}{boundary}." if model else "No model could be fitted."
    )
    if n_warnings:
        parts.append(
            f"The optimizer issued {n_warnings} warning"
            f"{'s' if n_warnings != 1 else ''} while fitting (listed in the JSON "
            "export, not here)."
        )
    return " ".join(parts)


def _fit_models(log_t, exog, reader_col, case_col, k):
    """Try the crossed model, the reader-intercept model, then clustered least squares.

    Returns (model name or None, fitted result or None, attempts, raw warning texts).
    """
    attempts: list[ModelAttempt] = []
    caught: list[str] = []
    tries = (
        (
            "crossed",
            lambda: _fit(log_t, exog, np.zeros(len(log_t)), _crossed_spec(reader_col, case_col)),
        ),
        ("reader", lambda: _fit(log_t, exog, np.array(reader_col))),
    )
    for name, fit in tries:
        try:
            result, messages = fit()
        except (ValueError, np.linalg.LinAlgError) as exc:
            attempts.append(ModelAttempt(name, False, f"failed ({exc})"))
            continue
        caught.extend(messages)
        with warnings.catch_warnings(record=True) as late:  # standard errors are computed lazily
            warnings.simplefilter("always")
            problem = _problem(result, k, messages)
        caught.extend(str(w.message).strip() for w in late)
        attempts.append(
            ModelAttempt(name, problem is None, problem, any("boundary" in m for m in messages))
        )
        if problem is None:
            return name, result, attempts, caught
    # Typically both random-effect variances sit at the boundary (0): the mixed model's limit is
    # ordinary least squares; reads stay clustered by reader for the standard errors.
    try:
        import statsmodels.api as sm

        with warnings.catch_warnings(record=True) as ols_caught:
            warnings.simplefilter("always")
            reader_ids = np.unique(np.array(reader_col), return_inverse=True)[1]
            ols = sm.OLS(log_t, exog).fit(cov_type="cluster", cov_kwds={"groups": reader_ids})
        caught.extend(str(w.message).strip() for w in ols_caught)
        bse = np.asarray(ols.bse, dtype=float)
        if np.isfinite(bse).all() and (bse[1:] > 0).all():
            attempts.append(ModelAttempt("ols", True))
            return "ols", ols, attempts, caught
        attempts.append(ModelAttempt("ols", False, "gave standard errors of 0"))
    except (ValueError, np.linalg.LinAlgError) as exc:
        attempts.append(ModelAttempt("ols", False, f"failed ({exc})"))
    return None, None, attempts, caught


def _time_ratios(result, model: str, others, reference: str, k: int, conf_level: float):
    """Each arm's ratio of geometric mean reading times to the reference, Wald interval and
    test on the log scale."""
    z = float(stats.norm.ppf(0.5 + conf_level / 2))
    params = np.asarray(result.params if model == "ols" else result.fe_params, dtype=float)[:k]
    bse = np.asarray(result.bse if model == "ols" else result.bse_fe, dtype=float)[:k]
    return tuple(
        TimeRatio(
            arm=a,
            reference=reference,
            log_ratio=float(params[i]),
            se=float(bse[i]),
            ratio=float(np.exp(params[i])),
            ci_low=float(np.exp(params[i] - z * bse[i])),
            ci_high=float(np.exp(params[i] + z * bse[i])),
            p_value=float(2 * stats.norm.sf(abs(params[i] / bse[i]))),
        )
        for i, a in enumerate(others, start=1)
    )


def _variance_components(result, model: str) -> dict[str, float]:
    if model == "crossed":
        return {
            name: float(v) for name, v in zip(result.model.exog_vc.names, result.vcomp, strict=True)
        }
    if model == "reader":
        return {"reader": float(np.asarray(result.cov_re)[0, 0])}
    return {}


def _arm_times(all_arms, arm_col: np.ndarray, log_t: np.ndarray) -> list[ArmTime]:
    """Each arm's count, geometric mean and median of the usable reading times."""
    per_arm = []
    for arm in all_arms:
        mask = arm_col == arm
        n = int(mask.sum())
        per_arm.append(
            ArmTime(
                arm,
                n,
                float(np.exp(log_t[mask].mean())) if n else None,
                float(np.exp(np.median(log_t[mask]))) if n else None,
            )
        )
    return per_arm


def _why_no_model(n: int, arms, reference, others, n_readers: int) -> str | None:
    """Why no model can be fitted to `n` usable reading times, or None."""
    if not n:
        return "no main read has a positive reading time"
    if reference not in arms:
        return f"reference arm {reference} has no usable reading times"
    if not others:
        return f"only arm {reference} has reading times: nothing to compare"
    if n_readers < 2:
        return "a mixed model needs reading times from at least 2 readers"
    k = 1 + len(others)
    if n <= k + 2:
        return f"{n} reading times are too few for {k} fixed effects and the variance components"
    return None


def reading_time_analysis(
    reads: Sequence[Read], *, reference: str | None = None, conf_level: float = 0.95
) -> ReadingTimeResult:
    """Arm effects on log reading time with crossed reader and case random intercepts.

    ``reference`` defaults to the first arm (label order) with usable reading times.
    """
    main = main_reads(reads)
    timed = [
        r for r in main if r.seconds is not None and math.isfinite(r.seconds) and r.seconds > 0
    ]
    all_arms = arms_of(main)
    arms = arms_of(timed)
    reference = reference if reference is not None else (arms[0] if arms else None)
    readers = sorted({r.reader for r in timed}, key=label_key)
    cases = sorted({r.case for r in timed}, key=label_key)
    log_t = np.log([r.seconds for r in timed]) if timed else np.zeros(0)
    arm_col = np.array([r.arm for r in timed])
    per_arm = _arm_times(all_arms, arm_col, log_t)
    notes = [f"arm {a} has no usable reading times" for a in all_arms if a not in arms]
    base = dict(
        reference=reference,
        arms=tuple(per_arm),
        n=len(timed),
        n_excluded=len(main) - len(timed),
        n_readers=len(readers),
        n_cases=len(cases),
        conf_level=conf_level,
    )

    def empty(reason: str) -> ReadingTimeResult:
        return ReadingTimeResult(
            model=None,
            ratios=(),
            converged=None,
            variance_components={},
            residual_variance=None,
            reason=reason,
            notes=tuple(notes),
            **base,
        )

    others = [a for a in arms if a != reference]
    k = 1 + len(others)
    refusal = _why_no_model(len(timed), arms, reference, others, len(readers))
    if refusal is not None:
        return empty(refusal)

    exog = np.column_stack([np.ones(len(timed))] + [(arm_col == a).astype(float) for a in others])
    reader_col = [r.reader for r in timed]
    case_col = [r.case for r in timed]
    model, result, attempts, caught = _fit_models(log_t, exog, reader_col, case_col, k)
    fitted = dict(
        attempts=tuple(attempts),
        model_note=model_note(model, attempts, len(caught)),
        optimizer_warnings=tuple(dict.fromkeys(caught)),
    )
    if result is None:
        return replace(
            empty("neither the mixed models nor the least-squares fallback could be fitted"),
            **fitted,
        )

    ratios = _time_ratios(result, model, others, reference, k, conf_level)
    components = _variance_components(result, model)
    return ReadingTimeResult(
        model=model,
        ratios=ratios,
        converged=True,
        variance_components=components,
        residual_variance=float(result.scale),
        notes=tuple(notes),
        **fitted,
        **base,
    )
