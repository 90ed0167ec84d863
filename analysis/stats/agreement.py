"""Inter-reader agreement on the final diagnosis (Fleiss' kappa) and reader-AI agreement (Cohen).

Fleiss' kappa, generalised to unequal numbers of raters per subject as in Gwet (2014),
*Handbook of Inter-Rater Reliability*, 4th ed., ch. 2 ("Fleiss' generalized kappa"). With
``r_ik`` the number of raters putting subject i in category k and ``r_i`` its raters, over the
n' subjects with r_i >= 2:

    p_a  = (1/n') sum_i sum_k r_ik (r_ik - 1) / (r_i (r_i - 1))
    pi_k = (1/n') sum_i r_ik / r_i
    p_e  = sum_k pi_k^2
    kappa = (p_a - p_e) / (1 - p_e)

With the same number of raters for every subject this is Fleiss (1971) exactly (and equals
``statsmodels.stats.inter_rater.fleiss_kappa``). ``modal_only=True`` instead keeps only the cases
read by the most common number of readers, where both formulations coincide.

The confidence interval is a percentile bootstrap over subjects (cases), seeded. kappa is
undefined (None, with a reason) when p_e = 1, i.e. every rating falls in one category.

Cohen's (1960) kappa between each reader and the AI uses the reads where the reader's final call
and the AI's call are both known: ``(p_o - p_e) / (1 - p_e)`` with p_e from the two marginals;
its standard error is the large-sample one of Fleiss, Cohen & Everitt (1969), as in
``statsmodels.stats.inter_rater.cohens_kappa``. The Wald interval ``kappa -/+ z se`` can leave
[-1, 1] near perfect agreement (kappa 0.8 on 10 reads gives an upper limit above 1), so
``reader_ai_kappa(n_bootstrap=B)`` replaces it with a percentile bootstrap over reads (the 2x2
table resampled multinomially, seeded), which stays inside the attainable range; resamples in
which kappa is undefined (every read in one category) are left out and counted in ``reason``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats

from analysis.stats.data import label_key
from analysis.stats.intervals import percentile_interval
from analysis.stats.reads import Read, arms_of, main_reads


@dataclass(frozen=True)
class FleissKappa:
    kappa: float | None
    p_observed: float | None
    p_expected: float | None
    n_subjects: int  # subjects with at least 2 raters (those used)
    n_ratings: int
    raters_min: int | None
    raters_max: int | None
    n_categories: int
    ci_low: float | None
    ci_high: float | None
    conf_level: float
    n_bootstrap: int
    reason: str | None = None  # why kappa or its interval is None


def _kappa_parts(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-subject observed agreement (n,) and per-subject category shares (n, K)."""
    raters = counts.sum(axis=1)
    agree = (counts * (counts - 1)).sum(axis=1) / (raters * (raters - 1))
    shares = counts / raters[:, None]
    return agree, shares


def _kappa(p_a, pi) -> tuple[np.ndarray, np.ndarray]:
    p_e = (pi**2).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (p_a - p_e) / (1 - p_e), p_e


def fleiss_kappa(
    table, *, conf_level: float = 0.95, n_bootstrap: int = 1000, seed: int | None = 0
) -> FleissKappa:
    """Generalised Fleiss' kappa of a (subjects, categories) table of rating counts.

    Rows with fewer than 2 ratings are dropped. ``n_bootstrap=0`` skips the interval.
    """
    counts = np.asarray(table, dtype=float)
    if counts.ndim != 2:
        raise ValueError("the table must have shape (subjects, categories)")
    if (counts < 0).any():
        raise ValueError("counts must not be negative")
    counts = counts[counts.sum(axis=1) >= 2]
    n, k = counts.shape
    raters = counts.sum(axis=1).astype(int)
    base = dict(
        n_subjects=n,
        n_ratings=int(raters.sum()),
        raters_min=int(raters.min()) if n else None,
        raters_max=int(raters.max()) if n else None,
        n_categories=k,
        conf_level=conf_level,
        n_bootstrap=n_bootstrap,
    )
    if n == 0:
        return FleissKappa(
            None,
            None,
            None,
            ci_low=None,
            ci_high=None,
            reason="no subject has at least 2 ratings",
            **base,
        )
    agree, shares = _kappa_parts(counts)
    p_a = float(agree.mean())
    kappa, p_e = _kappa(p_a, shares.mean(axis=0))
    p_e = float(p_e)
    if math.isclose(p_e, 1.0):
        return FleissKappa(
            None,
            p_a,
            p_e,
            ci_low=None,
            ci_high=None,
            reason="every rating is in one category: kappa is undefined",
            **base,
        )
    ci_low = ci_high = None
    reason = None
    if n_bootstrap > 0 and n >= 2:
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, n, size=(n_bootstrap, n))
        boot, _ = _kappa(agree[idx].mean(axis=1), shares[idx].mean(axis=1))
        ci_low, ci_high, left_out = percentile_interval(boot, conf_level)
        if left_out:
            reason = (
                f"{left_out} bootstrap samples had every rating in one "
                "category and were left out of the interval"
            )
    elif n_bootstrap > 0:
        reason = "one subject: no bootstrap interval"
    return FleissKappa(
        float(kappa), p_a, p_e, ci_low=ci_low, ci_high=ci_high, reason=reason, **base
    )


@dataclass(frozen=True)
class ArmAgreement:
    arm: str
    n_cases_read: int  # cases with a final call in this arm (any number of readers)
    modal_raters: int | None  # the most common number of readers per case (>= 2)
    modal_only: bool
    kappa: FleissKappa


def case_table(reads: Sequence[Read], arm: str) -> tuple[tuple[str, ...], np.ndarray]:
    """Cases of one arm and their (negative, positive) final-call counts from main reads."""
    counts: dict[str, list[int]] = {}
    for r in main_reads(reads):
        if r.arm == arm and r.final_positive is not None:
            counts.setdefault(r.case, [0, 0])[int(bool(r.final_positive))] += 1
    cases = tuple(sorted(counts, key=label_key))
    return cases, np.array([counts[c] for c in cases], dtype=float).reshape(-1, 2)


def fleiss_by_arm(
    reads: Sequence[Read],
    *,
    modal_only: bool = False,
    conf_level: float = 0.95,
    n_bootstrap: int = 1000,
    seed: int | None = 0,
) -> tuple[ArmAgreement, ...]:
    """Fleiss' kappa of the final diagnosis in each arm over cases read by >= 2 readers there."""
    out = []
    for arm in arms_of(main_reads(reads)):
        cases, table = case_table(reads, arm)
        raters = table.sum(axis=1).astype(int)
        multi = Counter(int(v) for v in raters if v >= 2)
        # most common count; ties go to the larger number of raters
        modal = max(multi, key=lambda v: (multi[v], v)) if multi else None
        if modal_only and modal is not None:
            table = table[raters == modal]
        out.append(
            ArmAgreement(
                arm,
                len(cases),
                modal,
                modal_only,
                fleiss_kappa(table, conf_level=conf_level, n_bootstrap=n_bootstrap, seed=seed),
            )
        )
    return tuple(out)


@dataclass(frozen=True)
class CohenKappa:
    arm: str | None  # None: all arms together
    reader: str
    n: int
    table: tuple[tuple[int, int], tuple[int, int]]  # [reader call][AI call], 0 = negative
    p_observed: float | None
    p_expected: float | None
    kappa: float | None
    se: float | None
    ci_low: float | None
    ci_high: float | None
    reason: str | None = None
    interval: str = "Wald"  # "Wald" or "percentile bootstrap over reads"


BOOTSTRAP_INTERVAL = "percentile bootstrap over reads"


def _cohen_from_tables(tables: np.ndarray) -> np.ndarray:
    """Cohen's kappa of each (K, K) count table of a (B, K, K) stack (NaN where undefined)."""
    n = tables.sum(axis=(1, 2))
    p = tables / n[:, None, None]
    p_o = np.trace(p, axis1=1, axis2=2)
    p_e = (p.sum(axis=2) * p.sum(axis=1)).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = (p_o - p_e) / (1 - p_e)
    kappa[np.isclose(p_e, 1.0)] = np.nan
    return kappa


def cohen_kappa_bootstrap(
    table, *, conf_level: float = 0.95, n_bootstrap: int = 2000, seed: int | None = 0
) -> tuple[float | None, float | None, int]:
    """Percentile bootstrap interval of Cohen's kappa resampling the reads of ``table``.

    Returns (low, high, number of resamples with undefined kappa, left out).
    """
    t = np.asarray(table, dtype=float)
    n = int(t.sum())
    if n == 0 or n_bootstrap <= 0:
        return None, None, 0
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, (t / n).ravel(), size=n_bootstrap).reshape(n_bootstrap, *t.shape)
    return percentile_interval(_cohen_from_tables(draws.astype(float)), conf_level)


def _with_bootstrap(
    k: CohenKappa, *, conf_level: float, n_bootstrap: int, seed: int | None
) -> CohenKappa:
    """``k`` with its Wald interval replaced by the percentile bootstrap over reads."""
    if k.kappa is None:
        return k
    low, high, undefined = cohen_kappa_bootstrap(
        k.table, conf_level=conf_level, n_bootstrap=n_bootstrap, seed=seed
    )
    reason = k.reason
    if undefined:
        reason = f"{undefined} of {n_bootstrap} resamples with one category only (left out)"
    return replace(k, ci_low=low, ci_high=high, reason=reason, interval=BOOTSTRAP_INTERVAL)


def cohen_kappa(
    table, conf_level: float = 0.95, *, arm: str | None = None, reader: str = ""
) -> CohenKappa:
    """Cohen's kappa of a 2x2 (or KxK) agreement table with a Wald interval."""
    t = np.asarray(table, dtype=float)
    n = float(t.sum())
    as_tuple = tuple(tuple(int(v) for v in row) for row in t)
    if n == 0:
        return CohenKappa(
            arm,
            reader,
            0,
            as_tuple,
            None,
            None,
            None,
            None,
            None,
            None,
            reason="no reads with both calls",
        )
    p = t / n
    rows, cols = p.sum(axis=1), p.sum(axis=0)
    p_o = float(np.trace(p))
    p_e = float(rows @ cols)
    if math.isclose(p_e, 1.0):
        return CohenKappa(
            arm,
            reader,
            int(n),
            as_tuple,
            p_o,
            p_e,
            None,
            None,
            None,
            None,
            reason="both raters used a single category: kappa is undefined",
        )
    kappa = (p_o - p_e) / (1 - p_e)
    # Fleiss, Cohen & Everitt (1969) large-sample variance
    diag = np.diag(p)
    term1 = float((diag * (1 - (rows + cols) * (1 - kappa)) ** 2).sum())
    off = p * (cols[:, None] + rows[None, :]) ** 2
    term2 = (1 - kappa) ** 2 * float(off.sum() - np.trace(off))
    term3 = (kappa - p_e * (1 - kappa)) ** 2
    var = max(term1 + term2 - term3, 0.0) / (n * (1 - p_e) ** 2)
    se = math.sqrt(var)
    half = float(stats.norm.ppf(0.5 + conf_level / 2)) * se
    return CohenKappa(
        arm,
        reader,
        int(n),
        as_tuple,
        p_o,
        p_e,
        float(kappa),
        se,
        float(kappa - half),
        float(kappa + half),
    )


def reader_ai_kappa(
    reads: Sequence[Read],
    *,
    by_arm: bool = True,
    conf_level: float = 0.95,
    n_bootstrap: int = 0,
    seed: int | None = 0,
) -> tuple[CohenKappa, ...]:
    """Cohen's kappa between each reader's final call and the AI's call.

    Uses main reads where both calls are known (``ai_positive`` may be known in an arm that does
    not show the AI, giving the unaided reader's agreement with the AI). ``by_arm`` False pools
    a reader's arms. ``n_bootstrap`` > 0: percentile bootstrap intervals over reads instead of
    the Wald interval (each table with its own stream derived from ``seed``).
    """
    tables: dict[tuple[str | None, str], np.ndarray] = {}
    for r in main_reads(reads):
        if r.final_positive is None or r.ai_positive is None:
            continue
        key = (r.arm if by_arm else None, r.reader)
        tables.setdefault(key, np.zeros((2, 2)))[
            int(bool(r.final_positive)), int(bool(r.ai_positive))
        ] += 1
    keys = sorted(tables, key=lambda k: (label_key(k[0] or ""), label_key(k[1])))
    out = [cohen_kappa(tables[k], conf_level, arm=k[0], reader=k[1]) for k in keys]
    if n_bootstrap > 0:
        seeds = np.random.SeedSequence(seed).spawn(len(out))
        out = [
            _with_bootstrap(k, conf_level=conf_level, n_bootstrap=n_bootstrap, seed=s)
            for k, s in zip(out, seeds, strict=True)
        ]
    return tuple(out)
