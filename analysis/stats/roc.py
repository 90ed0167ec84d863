"""Empirical ROC area (Wilcoxon/Mann-Whitney) and DeLong's test, via midranks.

Placement values (DeLong's structural components) come from midranks as in Sun & Xu (2014):
with ``Tz`` the midranks of all scores, ``Tx``/``Ty`` the midranks within the non-diseased and
diseased scores, the diseased placement is ``(Tz - Ty) / n0`` (the fraction of non-diseased scores
below it, ties counting one half) and the non-diseased placement is ``1 - (Tz - Tx) / n1``. This is
O(n log n) instead of the O(n0 * n1) pairwise comparison, and it works along the last axis of
stacked score arrays so many readers/treatments are handled in one call.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from analysis.stats.inference import critical_value, two_sided_p


def placements(negatives: np.ndarray, positives: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Placement values along the last axis.

    Returns ``(v10, v01)``: for each positive (diseased) score the fraction of negatives scored
    lower, and for each negative the fraction of positives scored higher (ties count 1/2).
    The AUC is the mean of either. A score set (row) holding a NaN gets NaN placements.

    Numpy only, per row: both score sets are sorted, then two stable merges of the sorted runs
    (ties broken one way, then the other) give, for every score, the other class's scores below
    it and below or tied with it. ``below + tied / 2`` is ``Tz - Tx`` (or ``Tz - Ty``) of Sun & Xu
    exactly (integers and halves), so the values are those of the midrank formula bit for bit.
    """
    negatives = np.asarray(negatives, dtype=float)
    positives = np.asarray(positives, dtype=float)
    n0, n1 = negatives.shape[-1], positives.shape[-1]
    if n0 == 0 or n1 == 0:
        raise ValueError("the AUC needs at least one diseased and one non-diseased score")
    if negatives.shape[:-1] != positives.shape[:-1]:
        raise ValueError("negatives and positives must have the same leading shape")
    lead = negatives.shape[:-1]
    neg_rows = negatives.reshape(-1, n0)
    pos_rows = positives.reshape(-1, n1)
    v10 = np.empty(pos_rows.shape)
    v01 = np.empty(neg_rows.shape)
    for row, (neg, pos) in enumerate(zip(neg_rows, pos_rows, strict=True)):
        if np.isnan(neg).any() or np.isnan(pos).any():
            v10[row], v01[row] = np.nan, np.nan
            continue
        v10[row], v01[row] = _row_placements(neg, pos)
    return v10.reshape(*lead, n1), v01.reshape(*lead, n0)


def _row_placements(neg: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n0, n1 = neg.size, pos.size
    neg_order, pos_order = np.argsort(neg), np.argsort(pos)
    neg_sorted, pos_sorted = neg[neg_order], pos[pos_order]
    # Stable merges of the two sorted runs (linear time). With the negatives first, a tied
    # negative lands before a positive: the i-th negative sits at i + #(positives < it) and the
    # j-th positive at j + #(negatives <= it). With the positives first, ties go the other way.
    first = np.argsort(np.concatenate([neg_sorted, pos_sorted]), kind="stable") < n0
    second = np.argsort(np.concatenate([pos_sorted, neg_sorted]), kind="stable") >= n1
    pos_below = np.flatnonzero(first) - np.arange(n0)
    pos_upto = np.flatnonzero(second) - np.arange(n0)
    neg_upto = np.flatnonzero(~first) - np.arange(n1)
    neg_below = np.flatnonzero(~second) - np.arange(n1)
    v10 = np.empty(n1)
    v01 = np.empty(n0)
    v10[pos_order] = (neg_below + 0.5 * (neg_upto - neg_below)) / n0
    v01[neg_order] = 1.0 - (pos_below + 0.5 * (pos_upto - pos_below)) / n1
    return v10, v01


def auc(negatives: np.ndarray, positives: np.ndarray) -> np.ndarray | float:
    """Empirical (trapezoidal) AUC: P(positive > negative) + 1/2 P(tie)."""
    v10, _ = placements(negatives, positives)
    result = v10.mean(axis=-1)
    return float(result) if np.ndim(result) == 0 else result


def auc_from_ratings(ratings: np.ndarray, truth: np.ndarray) -> float:
    """AUC of one reader's ratings given 0/1 truth per case."""
    ratings = np.asarray(ratings, dtype=float)
    truth = np.asarray(truth).astype(bool)
    return float(auc(ratings[~truth], ratings[truth]))


def delong_covariance(
    negatives: np.ndarray, positives: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """AUCs and DeLong covariance matrix for k score sets on the same cases.

    ``negatives`` has shape (k, n0) and ``positives`` (k, n1). Returns ``(aucs, cov)`` with
    ``cov = S10 / n1 + S01 / n0`` (S = sample covariance of placements, denominator n - 1).
    """
    negatives = np.atleast_2d(np.asarray(negatives, dtype=float))
    positives = np.atleast_2d(np.asarray(positives, dtype=float))
    n0, n1 = negatives.shape[-1], positives.shape[-1]
    if n0 < 2 or n1 < 2:
        raise ValueError("DeLong's variance needs at least two diseased and two non-diseased cases")
    v10, v01 = placements(negatives, positives)
    aucs = v10.mean(axis=-1)
    s10 = np.atleast_2d(np.cov(v10, ddof=1))
    s01 = np.atleast_2d(np.cov(v01, ddof=1))
    return aucs, s10 / n1 + s01 / n0


@dataclass(frozen=True)
class DeLongTest:
    """Paired DeLong test of two AUCs on the same cases (difference = a - b)."""

    auc_a: float
    auc_b: float
    difference: float
    se: float
    z: float
    p_value: float
    ci_low: float
    ci_high: float
    conf_level: float
    var_a: float
    var_b: float
    cov_ab: float
    n_diseased: int
    n_nondiseased: int

    def to_dict(self) -> dict:
        return asdict(self)


def delong_test(
    scores_a: np.ndarray, scores_b: np.ndarray, truth: np.ndarray, conf_level: float = 0.95
) -> DeLongTest:
    """DeLong, DeLong & Clarke-Pearson (1988) paired test of AUC(a) = AUC(b).

    ``truth`` is 1 (or True) for diseased/positive cases; higher scores mean more likely
    diseased. The CI is the Wald interval of the difference a - b.
    """
    scores_a = np.asarray(scores_a, dtype=float)
    scores_b = np.asarray(scores_b, dtype=float)
    truth = np.asarray(truth).astype(bool)
    if not (scores_a.shape == scores_b.shape == truth.shape) or scores_a.ndim != 1:
        raise ValueError("scores_a, scores_b and truth must be 1-D arrays of the same length")
    if not (np.isfinite(scores_a).all() and np.isfinite(scores_b).all()):
        raise ValueError("scores must be finite numbers")
    scores = np.stack([scores_a, scores_b])
    # index arrays: taking columns by index is several times faster than by a boolean mask
    negatives = scores.take(np.flatnonzero(~truth), axis=1)
    positives = scores.take(np.flatnonzero(truth), axis=1)
    aucs, cov = delong_covariance(negatives, positives)
    diff = float(aucs[0] - aucs[1])
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    se = float(np.sqrt(max(var, 0.0)))
    z = diff / se if se > 0 else (0.0 if diff == 0 else float(np.copysign(np.inf, diff)))
    p = two_sided_p(z, math.inf)
    half = critical_value(conf_level, math.inf) * se
    return DeLongTest(
        auc_a=float(aucs[0]),
        auc_b=float(aucs[1]),
        difference=diff,
        se=se,
        z=z,
        p_value=p,
        ci_low=diff - half,
        ci_high=diff + half,
        conf_level=conf_level,
        var_a=float(cov[0, 0]),
        var_b=float(cov[1, 1]),
        cov_ab=float(cov[0, 1]),
        n_diseased=int(truth.sum()),
        n_nondiseased=int((~truth).sum()),
    )
