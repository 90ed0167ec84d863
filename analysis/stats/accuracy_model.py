"""Accuracy as a logistic mixed model: arm x AI correctness, crossed reader and case intercepts.

The analysis most XAI reader studies publish beside (or instead of) MRMC AUCs (Prinster et al.,
Radiology 2024; Jabbour et al., JAMA 2023): for each main read, whether the final call was
correct, modelled as

    logit P(correct) = arm + ai_correct + arm:ai_correct + (1 | reader) + (1 | case)

fitted by the Laplace approximation as ``lme4::glmer(..., family = binomial)`` fits it (glmm.py).
The reference arm is the unaided arm when the study has one (else the first arm); AI-wrong is
the reference level of ``ai_correct``. Each arm's odds ratio against the reference is reported
separately for the cases the AI got right and those it got wrong (``beta_arm`` and ``beta_arm +
beta_arm:ai_correct``, standard errors from the model's covariance): an explanation that helps
when the AI is right and misleads when it is wrong shows as ratios on either side of 1.

AI correctness of a read: whether the advice shown in that trial matched the truth. Trials that
show no AI (an unaided arm) take the case's AI correctness from the trials of that case that do
show it, when those all agree (with manipulated advice they may not: such a case's unaided reads
are then left out with a note). When the AI was right on every case (or wrong on every case),
or an arm has fewer than ``MIN_CELL_READS`` reads of AI-right or of AI-wrong cases, or all of
them correct or all wrong (which would make the estimates diverge), the correctness terms cannot
be estimated: the model has arm alone and says why.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from analysis.stats.data import label_key
from analysis.stats.reads import Read, main_reads

SEPARATION = (
    "the estimates diverge (separation: e.g. every read of one arm is correct): no model of "
    "accuracy can be fitted to these reads"
)
DIVERGED = 15.0  # |log odds| or SE beyond this: the estimates diverge (an odds ratio of e^15)
MIN_CELL_READS = 5  # reads per arm and AI correctness for the interaction to be estimable


@dataclass(frozen=True)
class Term:
    name: str  # "(Intercept)", "arm B", "AI correct", "arm B x AI correct"
    estimate: float  # log odds (ratio)
    se: float
    z: float
    p_value: float


@dataclass(frozen=True)
class ArmOddsRatio:
    arm: str
    reference: str
    ai_correct: bool | None  # None: the model has no AI-correctness terms
    odds_ratio: float
    ci_low: float
    ci_high: float
    p_value: float


@dataclass(frozen=True)
class AccuracyModel:
    reference: str | None
    arms: tuple[str, ...]
    terms: tuple[Term, ...]
    odds_ratios: tuple[ArmOddsRatio, ...]
    variances: dict[str, float]  # reader / case intercept variances (log-odds scale)
    zero_variances: tuple[str, ...]
    with_ai_correctness: bool
    n: int
    n_readers: int
    n_cases: int
    deviance: float | None
    conf_level: float
    reason: str | None = None
    notes: tuple[str, ...] = ()


def _case_ai_correct(reads: Sequence[Read]) -> dict[str, bool | None]:
    """Per case: the AI's correctness where every trial showing AI agrees, else None."""
    seen: dict[str, set] = defaultdict(set)
    for r in reads:
        if r.ai_shown and r.ai_positive is not None and r.truth is not None:
            seen[r.case].add(r.ai_positive == r.truth)
    return {case: (next(iter(v)) if len(v) == 1 else None) for case, v in seen.items()}


def _usable(reads: Sequence[Read]) -> tuple[list[tuple[Read, bool, bool | None]], list[str]]:
    """(read, correct, ai_correct) of each main read with a truth and a final call."""
    main = [r for r in main_reads(reads) if r.truth is not None and r.final_positive is not None]
    by_case = _case_ai_correct(main)
    rows, notes = [], []
    conflicted = 0
    for r in main:
        if r.ai_shown and r.ai_positive is not None:
            ai = r.ai_positive == r.truth
        else:
            ai = by_case.get(r.case)
            conflicted += r.case in by_case and ai is None
        rows.append((r, r.final_positive == r.truth, ai))
    if conflicted:
        notes.append(
            f"{conflicted} read(s) without AI of cases whose advice differed between arms have "
            "no AI correctness and are left out of the model"
        )
    return rows, notes


def _design(rows, arms: Sequence[str], reference: str, with_ai: bool):
    others = [a for a in arms if a != reference]
    arm_col = np.array([r.arm for r, _, _ in rows])
    columns = [np.ones(len(rows))] + [(arm_col == a).astype(float) for a in others]
    names = ["(Intercept)"] + [f"arm {a}" for a in others]
    if with_ai:
        ai = np.array([bool(a) for _, _, a in rows], dtype=float)
        columns.append(ai)
        names.append("AI correct")
        for a in others:
            columns.append((arm_col == a) * ai)
            names.append(f"arm {a} x AI correct")
    return np.column_stack(columns), names, others


def _odds_ratios(fit, names, others, reference, with_ai, z_crit):
    out = []
    for arm in others:
        i = names.index(f"arm {arm}")
        unit = np.eye(len(names))
        combos = [(None, unit[i])]
        if with_ai:
            j = names.index(f"arm {arm} x AI correct")
            combos = [(False, unit[i]), (True, unit[i] + unit[j])]
        for ai, weights in combos:
            est = float(weights @ fit.beta)
            se = float(math.sqrt(weights @ fit.vcov @ weights))
            out.append(
                ArmOddsRatio(
                    arm,
                    reference,
                    ai,
                    math.exp(est),
                    math.exp(est - z_crit * se),
                    math.exp(est + z_crit * se),
                    float(2 * stats.norm.sf(abs(est / se))),
                )
            )
    return tuple(out)


def _select(reads: Sequence[Read]):
    """(rows used, whether the AI-correctness terms can be estimated, notes)."""
    rows, notes = _usable(reads)
    ai_values = {a for _, _, a in rows if a is not None}
    with_ai = len(ai_values) == 2
    if not with_ai and ai_values:
        notes.append(
            "the AI was "
            + ("right" if True in ai_values else "wrong")
            + " on every case: the model has no AI-correctness terms"
        )
    if with_ai:
        thin = _thin_cells([row for row in rows if row[2] is not None])
        if thin:
            with_ai = False
            notes.append(
                "too few reads to estimate how accuracy depends on AI correctness ("
                + "; ".join(thin)
                + "): the model has arm alone. Add cases the AI gets wrong (a minimum share "
                "of AI-wrong cases) to estimate it."
            )
    return ([row for row in rows if row[2] is not None] if with_ai else rows), with_ai, notes


def _thin_cells(rows) -> list[str]:
    """Arm x AI-correctness cells that cannot support the interaction: fewer than
    ``MIN_CELL_READS`` reads, or every read correct or every read wrong (separation)."""
    cells: dict[tuple[str, bool], list[bool]] = defaultdict(list)
    for r, correct, ai in rows:
        cells[(r.arm, ai)].append(correct)
    thin = []
    for arm in sorted({arm for arm, _ in cells}, key=label_key):
        for ai in (False, True):
            outcomes = cells.get((arm, ai), [])
            which = "AI right" if ai else "AI wrong"
            if len(outcomes) < MIN_CELL_READS:
                thin.append(f"arm {arm}, {which}: {len(outcomes)} read(s)")
            elif len(set(outcomes)) < 2:
                thin.append(
                    f"arm {arm}, {which}: every read {'correct' if outcomes[0] else 'wrong'}"
                )
    return thin


def _why_not(arms, readers, y) -> str | None:
    if len(arms) < 2:
        return "a model of accuracy by arm needs reads from at least 2 arms"
    if len(readers) < 2:
        return "a mixed model needs reads from at least 2 readers"
    if len(set(y)) < 2:
        return "every read is " + ("correct" if y[0] else "wrong") + ": nothing to model"
    return None


def accuracy_model(
    reads: Sequence[Read], *, reference: str | None = None, conf_level: float = 0.95
) -> AccuracyModel:
    """Fit the model (see the module docstring); degenerate data give ``reason`` instead."""
    from analysis.stats.glmm import factor, fit_logistic_crossed  # scipy.optimize: when needed

    used, with_ai, notes = _select(reads)
    arms = tuple(sorted({r.arm for r, _, _ in used}, key=label_key))
    reference = reference if reference in arms else (arms[0] if arms else None)
    readers = [r.reader for r, _, _ in used]
    base = dict(
        reference=reference,
        arms=arms,
        with_ai_correctness=with_ai,
        n=len(used),
        n_readers=len(set(readers)),
        n_cases=len({r.case for r, _, _ in used}),
        conf_level=conf_level,
    )

    def empty(reason: str) -> AccuracyModel:
        return AccuracyModel(
            terms=(),
            odds_ratios=(),
            variances={},
            zero_variances=(),
            deviance=None,
            reason=reason,
            notes=tuple(notes),
            **base,
        )

    y = np.array([float(c) for _, c, _ in used])
    refusal = _why_not(arms, set(readers), y)
    if refusal is not None:
        return empty(refusal)
    x, names, others = _design(used, arms, reference, with_ai)
    try:
        fit = fit_logistic_crossed(
            y, x, [factor("reader", readers), factor("case", [r.case for r, _, _ in used])]
        )
    except np.linalg.LinAlgError:
        return empty(SEPARATION)
    except ValueError as exc:
        return empty(f"the logistic mixed model could not be fitted: {exc}")
    se = fit.se
    finite = np.isfinite(se).all() and np.isfinite(fit.beta).all()
    if not (finite and (np.abs(fit.beta) < DIVERGED).all() and (se < DIVERGED).all()):
        return empty(SEPARATION)
    if fit.vcov_method == "conditional":
        notes.append(
            "standard errors from the model at its estimates (glmer's use.hessian = FALSE): the "
            "deviance's finite-difference Hessian is not positive definite"
        )
    terms = tuple(
        Term(name, float(b), float(s), float(b / s), float(2 * stats.norm.sf(abs(b / s))))
        for name, b, s in zip(names, fit.beta, se, strict=True)
    )
    z_crit = float(stats.norm.ppf(0.5 + conf_level / 2))
    return AccuracyModel(
        terms=terms,
        odds_ratios=_odds_ratios(fit, names, others, reference, with_ai, z_crit),
        variances=dict(fit.variances),
        zero_variances=fit.at_zero,
        deviance=fit.deviance,
        notes=tuple(notes),
        **base,
    )
