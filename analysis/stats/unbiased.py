"""Unbiased (U-statistic) covariance of empirical AUCs, after Gallas (2006) and MRMCaov.

The empirical AUC of unit a is ``theta_a = 1/(n1_a n0_a) sum_ij psi_a(i, j)`` over the pairs of a
diseased case i and a non-diseased case j the unit read, with ``psi = 1`` when the diseased case
is rated higher, 1/2 on a tie and 0 otherwise. Write ``S_a`` for the sum of all of a's kernels,
``P_a(i) = sum_j psi_a(i, j)`` and ``N_a(j) = sum_i psi_a(i, j)`` for its row and column sums, and
k1, k0 for the numbers of diseased and non-diseased cases units a and b both read. The estimate of
``Cov(theta_a, theta_b)`` is

    [(1 - delta) S_a S_b
     + delta (sum_i P_a(i) P_b(i) + sum_j N_a(j) N_b(j) - sum_ij psi_a(i, j) psi_b(i, j))]
    / (n1_a n0_a n1_b n0_b),

with the inner sums over shared cases only and
``delta = n1_a n0_a n1_b n0_b / (n1_a n0_a n1_b n0_b - n1_a k0 n1_b - n0_a k1 n0_b + k1 k0)``.

It is unbiased for the covariance of the two AUCs over case sampling: it is the moment estimator
in which every product of kernels is replaced by the average over case tuples with no repeated
case. That is the convention of MRMCaov's ``unbiased()`` covariance (its balanced and unbalanced
code paths agree on fully crossed data); units that share no case get exactly 0. Unlike the
jackknife it can give a negative variance for tiny studies. Only the empirical AUC is supported.
"""

from __future__ import annotations

import numpy as np

from analysis.stats.data import MRMCInputError
from analysis.stats.fom import EMPIRICAL_AUCS, FomEstimates


def _kernels(pos: np.ndarray, mask1: np.ndarray, neg: np.ndarray, mask0: np.ndarray) -> np.ndarray:
    """(U, C1, C0) psi(diseased i, non-diseased j), 0 where the unit did not read i or j."""
    pos = np.where(mask1, pos, np.nan)[:, :, None]
    neg = np.where(mask0, neg, np.nan)[:, None, :]
    psi = (np.sign(pos - neg) + 1.0) / 2.0
    return np.nan_to_num(psi, nan=0.0)


def unbiased_covariance(est: FomEstimates, ratings: np.ndarray) -> np.ndarray:
    """(U, U) unbiased covariance of empirical AUCs; ``ratings`` is (U, C), NaN where unread."""
    if est.name not in EMPIRICAL_AUCS:
        raise MRMCInputError(
            [
                f"the unbiased covariance is defined for the empirical AUC, not {est.name}; "
                "use the jackknife or bootstrap covariance"
            ]
        )
    diseased, nondiseased = est.strata
    cols1 = np.flatnonzero(diseased.mask.any(axis=0))
    cols0 = np.flatnonzero(nondiseased.mask.any(axis=0))
    mask1 = diseased.mask[:, cols1]
    mask0 = nondiseased.mask[:, cols0]
    m1, m0 = mask1.astype(float), mask0.astype(float)
    psi = _kernels(ratings[:, cols1], mask1, ratings[:, cols0], mask0)
    rows = psi.sum(axis=2)  # (U, C1): P_a(i)
    columns = psi.sum(axis=1)  # (U, C0): N_a(j)
    total = rows.sum(axis=1)  # S_a
    flat = psi.reshape(psi.shape[0], -1)
    n1, n0 = m1.sum(axis=1), m0.sum(axis=1)
    k1, k0 = m1 @ m1.T, m0 @ m0.T
    nn = np.outer(n1 * n0, n1 * n0)
    delta = nn / (nn - np.outer(n1, n1) * k0 - np.outer(n0, n0) * k1 + k1 * k0)
    shared = rows @ rows.T + columns @ columns.T - flat @ flat.T
    return ((1.0 - delta) * np.outer(total, total) + delta * shared) / nn
