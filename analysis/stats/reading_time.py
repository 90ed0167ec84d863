"""Reading time per arm: linear mixed model on log(seconds) with crossed reader and case effects.

Model (Baayen, Davidson & Bates 2008, crossed random effects):

    log(seconds)_rca = mu + alpha_a + u_r + v_c + e_rca,
    u_r ~ N(0, s2_reader), v_c ~ N(0, s2_case), e ~ N(0, s2),

with ``alpha`` the arm effects (reference arm 0), fitted by REML exactly as
``lme4::lmer(log(secs) ~ arm + (1|reader) + (1|case), REML = TRUE)`` fits it
(``analysis.stats.crossed_lmm``: the profiled criterion, every variance allowed to be 0).
``exp(alpha_a)`` is the ratio of geometric mean reading times of arm a to the reference arm,
with a Wald interval ``exp(alpha_a -/+ z se)`` (``se`` as ``summary(lmer)`` prints it).

A variance estimated at 0 (readers who read equally fast: a *singular* fit in lme4's words) is
reported as such in ``zero_variances`` and in ``model_note``; the model is not changed. Only if
the crossed model cannot be fitted at all (e.g. a numerical failure) is ordinary least squares
with reader-clustered standard errors reported instead (``model`` says ``"ols"``);
``attempts`` records each model tried and why it was not used; ``model_note`` says it in plain
words, once, for the report (``MODEL_WORDS`` names each model). Warnings raised while fitting
are captured, never printed: ``model_note`` counts them and ``optimizer_warnings`` keeps their
distinct texts for the JSON export. Reads with no time or a time <= 0 are left out (log
undefined). Degenerate inputs give a result with ``reason`` set and no ratios.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats

from analysis.stats.crossed_lmm import CrossedFit, factor, fit_crossed
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
    "ols": "least squares on log time with reader-clustered standard errors",
}


@dataclass(frozen=True)
class ModelAttempt:
    model: str  # a MODEL_WORDS key
    used: bool
    problem: str | None = None  # why it was not used, in plain words


@dataclass(frozen=True)
class ReadingTimeResult:
    model: str | None  # "crossed", "ols" (the fallback) or None (nothing fitted)
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
    zero_variances: tuple[str, ...] = ()  # "reader" / "case" variances estimated at 0
    reml_criterion: float | None = None  # -2 REML log-likelihood (lme4's REMLcrit)


def _crossed_fit(log_t, exog, reader_col, case_col):
    """The crossed model fitted as lme4 fits it; (fit, warning texts)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = fit_crossed(
            log_t, exog, [factor("reader", reader_col), factor("case", case_col)], reml=True
        )
    return fit, tuple(str(w.message).strip() for w in caught)


def _problem(fit: CrossedFit, k: int) -> str | None:
    """Why a fitted crossed model cannot be used (None: usable)."""
    se = fit.se[:k]
    if not (np.isfinite(se).all() and np.isfinite(fit.beta).all() and (se > 0).all()):
        return "gave no finite standard errors"
    return None


def zero_words(names: Sequence[str]) -> str:
    """Plain words for variances estimated at 0 (a singular fit, in lme4's words)."""
    if not names:
        return ""
    which = " and the ".join(names)
    plural = len(names) > 1
    return (
        f"The {which} variance{'s are' if plural else ' is'} estimated at 0 (a singular fit, "
        f"as lme4 reports it): reading times vary no more between "
        f"{' or between '.join(n + 's' for n in names)} than the residual variation explains. "
        f"The model is kept as planned with {'these variances' if plural else 'that variance'}"
        f" at 0."
    )


def model_note(
    model: str | None,
    attempts: Sequence[ModelAttempt],
    n_warnings: int,
    zero_variances: Sequence[str] = (),
) -> str:
    """Plain words: a failed crossed fit and why, variances at zero, what is reported."""
    failed = [f"the {MODEL_WORDS[a.model]} {a.problem}" for a in attempts if not a.used]
    parts = []
    if failed:
        text = "; ".join(failed)
        parts.append(text[0].upper() + text[1:] + ".")
    if model == "crossed" and zero_variances:
        parts.append(zero_words(zero_variances))
    parts.append(f"Reported: {MODEL_WORDS[model]}." if model else "No model could be fitted.")
    if n_warnings:
        parts.append(
            f"The optimizer issued {n_warnings} warning"
            f"{'s' if n_warnings != 1 else ''} while fitting (listed in the JSON "
            "export, not here)."
        )
    return " ".join(parts)


def _ols_clustered(log_t, exog, reader_col, caught: list):
    """Least squares on log time with reader-clustered standard errors (the fallback)."""
    import statsmodels.api as sm

    with warnings.catch_warnings(record=True) as ols_caught:
        warnings.simplefilter("always")
        reader_ids = np.unique(np.array(reader_col), return_inverse=True)[1]
        ols = sm.OLS(log_t, exog).fit(cov_type="cluster", cov_kwds={"groups": reader_ids})
    caught.extend(str(w.message).strip() for w in ols_caught)
    return ols


def _fit_models(log_t, exog, reader_col, case_col, k):
    """The crossed model; least squares clustered by reader only if it cannot be fitted.

    Returns (model name or None, fitted result or None, attempts, raw warning texts).
    """
    attempts: list[ModelAttempt] = []
    caught: list[str] = []
    try:
        fit, messages = _crossed_fit(log_t, exog, reader_col, case_col)
        caught.extend(messages)
        problem = _problem(fit, k)
    except (ValueError, np.linalg.LinAlgError) as exc:
        problem = f"failed ({exc})"
    attempts.append(ModelAttempt("crossed", problem is None, problem))
    if problem is None:
        return "crossed", fit, attempts, caught
    try:
        ols = _ols_clustered(log_t, exog, reader_col, caught)
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
    params = np.asarray(result.params if model == "ols" else result.beta, dtype=float)[:k]
    bse = np.asarray(result.bse if model == "ols" else result.se, dtype=float)[:k]
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
    zeros = tuple(result.at_zero) if model == "crossed" else ()
    fitted = dict(
        attempts=tuple(attempts),
        model_note=model_note(model, attempts, len(caught), zeros),
        optimizer_warnings=tuple(dict.fromkeys(caught)),
    )
    if result is None:
        return replace(
            empty("neither the mixed model nor the least-squares fallback could be fitted"),
            **fitted,
        )

    ratios = _time_ratios(result, model, others, reference, k, conf_level)
    crossed = model == "crossed"
    return ReadingTimeResult(
        model=model,
        ratios=ratios,
        converged=True,
        variance_components=dict(result.variances) if crossed else {},
        residual_variance=float(result.sigma2 if crossed else result.scale),
        zero_variances=zeros,
        reml_criterion=float(result.criterion) if crossed else None,
        notes=tuple(notes),
        **fitted,
        **base,
    )
