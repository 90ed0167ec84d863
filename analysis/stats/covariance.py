"""Case-sampling covariance of figures of merit across (treatment, reader) units.

Three estimators, each returning a (U, U) matrix over the units flattened treatment-major:

``jackknife``
    Leave out one case at a time, over the cases the figure of merit depends on (all cases for
    AUC and accuracy, diseased only for sensitivity, non-diseased only for specificity). The
    leave-one-out values come in closed form from the per-case components (fom.py), so no
    figure of merit is recomputed. For two units reading the same m cases this is the usual
    ``(m - 1)/m * sum_k (theta_a(k) - theta_a(.)) (theta_b(k) - theta_b(.))``, exactly as in
    OR-DBM MRMC. For units a, b whose case sets differ (split-plot and partially paired designs),
    with m_a, m_b cases each and k shared, the sum runs over the shared cases and is scaled by
    ``(m_a - 1)(m_b - 1)/(m_a m_b) * k/(k - 1)``; this is the influence-function estimate the
    jackknife approximates, it reduces to the formula above when the sets are equal, and it is 0
    when the units share no case (or only one).

``delong``
    DeLong et al. (1988) for the AUC: ``S10/n1 + S01/n0`` with S the sample covariance of the
    placement values, computed by midranks (Sun & Xu 2014). Differing case sets are handled as
    for the jackknife, within each stratum: ``k_s/(k_s - 1) / (n_s,a n_s,b)`` times the sum of
    products of centred placements over the k_s shared cases of stratum s.

``bootstrap``
    Resample cases with replacement within strata defined by truth and by the set of units that
    read the case (so each unit keeps its numbers of diseased and non-diseased cases, and
    split-plot groups stay intact), recompute every figure of merit, and take the sample
    covariance of the replicates (denominator B - 1). Seeded and reproducible.
"""

from __future__ import annotations

import numpy as np

from analysis.stats.data import MRMCData, MRMCInputError
from analysis.stats.fom import FomEstimates, Stratum

COV_METHODS = ("jackknife", "delong", "bootstrap")


def _shared_scale(shared: np.ndarray) -> np.ndarray:
    """k/(k - 1) for k >= 2 shared cases, 0 otherwise (no covariance is estimable)."""
    scale = np.zeros_like(shared, dtype=float)
    ok = shared >= 2
    scale[ok] = shared[ok] / (shared[ok] - 1)
    return scale


def _shared_counts(mask: np.ndarray) -> np.ndarray:
    """(U, U) number of cases each pair of units shares (no product needed when all match)."""
    if (mask == mask[:1]).all():
        return np.full((mask.shape[0],) * 2, float(mask[0].sum()))
    mask = mask.astype(float)
    return mask @ mask.T


def _centred(stratum: Stratum, theta: np.ndarray) -> np.ndarray:
    return np.where(stratum.mask, stratum.values - theta[:, None], 0.0)


def jackknife_deviations(est: FomEstimates) -> np.ndarray:
    """(U, C) leave-one-out deviations theta_(k) - theta (0 outside each unit's domain)."""
    dev = np.zeros_like(est.strata[0].values)
    for stratum in est.strata:
        n = stratum.counts.astype(float)
        dev -= _centred(stratum, est.theta) / (n - 1)[:, None]
    return dev


def jackknife_values(est: FomEstimates) -> np.ndarray:
    """(U, C) leave-one-out figures of merit (theta where the case is outside the domain)."""
    return est.theta[:, None] + jackknife_deviations(est)


def jackknife_covariance(est: FomEstimates) -> np.ndarray:
    """Jackknife covariance matrix (see the module docstring for differing case sets)."""
    dev = jackknife_deviations(est)
    domain = est.domain
    m = domain.sum(axis=1).astype(float)
    scale = np.outer((m - 1) / m, (m - 1) / m) * _shared_scale(_shared_counts(domain))
    return scale * (dev @ dev.T)


def delong_covariance(est: FomEstimates) -> np.ndarray:
    """DeLong covariance matrix of AUCs (see the module docstring for differing case sets)."""
    if est.name != "auc":
        raise MRMCInputError(
            [
                f"DeLong covariance is defined for the AUC, not {est.name}; "
                "use the jackknife or bootstrap covariance"
            ]
        )
    cov = np.zeros((est.theta.size, est.theta.size))
    for stratum in est.strata:
        centred = _centred(stratum, est.theta)
        n = stratum.counts.astype(float)
        shared = _shared_counts(stratum.mask)
        cov += _shared_scale(shared) / np.outer(n, n) * (centred @ centred.T)
    return cov


def _bootstrap_weights(data: MRMCData, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """(B, C) case multiplicities, multinomial within (truth, read pattern) strata."""
    pattern = data.read.reshape(-1, data.n_cases).T  # (C, U)
    keys = np.concatenate([data.truth[:, None].astype(bool), pattern], axis=1)
    _, group = np.unique(keys, axis=0, return_inverse=True)
    group = np.asarray(group).reshape(-1)
    weights = np.zeros((n_samples, data.n_cases))
    for g in np.unique(group):
        members = np.flatnonzero(group == g)
        size = members.size
        weights[:, members] = rng.multinomial(size, np.full(size, 1.0 / size), size=n_samples)
    return weights


def _weighted_auc(
    neg: np.ndarray, w_neg: np.ndarray, pos: np.ndarray, w_pos: np.ndarray
) -> np.ndarray:
    """AUC for each row of case weights: sum w_i w_j psi(x_i, y_j) / (sum w_i * sum w_j)."""
    order = np.argsort(neg, kind="stable")
    neg_sorted = neg[order]
    cum = np.zeros((w_neg.shape[0], neg.size + 1))
    np.cumsum(w_neg[:, order], axis=1, out=cum[:, 1:])
    below = np.searchsorted(neg_sorted, pos, side="left")
    not_above = np.searchsorted(neg_sorted, pos, side="right")
    wins = 0.5 * (cum[:, below] + cum[:, not_above])  # (B, n1): weight below + half of ties
    return (w_pos * wins).sum(axis=1) / (w_neg.sum(axis=1) * w_pos.sum(axis=1))


def bootstrap_replicates(
    data: MRMCData, est: FomEstimates, n_samples: int = 2000, seed: int | None = 0
) -> np.ndarray:
    """(B, U) figures of merit recomputed on stratified bootstrap resamples of the cases."""
    if n_samples < 2:
        raise MRMCInputError([f"the bootstrap needs at least 2 samples, not {n_samples}"])
    rng = np.random.default_rng(seed)
    weights = _bootstrap_weights(data, n_samples, rng)
    n_units = est.theta.size
    if est.name == "auc":
        ratings = data.ratings.reshape(n_units, data.n_cases)
        neg_mask, pos_mask = est.strata[1].mask, est.strata[0].mask
        reps = np.empty((n_samples, n_units))
        for u in range(n_units):
            n_idx, p_idx = np.flatnonzero(neg_mask[u]), np.flatnonzero(pos_mask[u])
            reps[:, u] = _weighted_auc(
                ratings[u, n_idx], weights[:, n_idx], ratings[u, p_idx], weights[:, p_idx]
            )
        return reps
    stratum = est.strata[0]
    mask = stratum.mask.astype(float)
    correct = np.where(stratum.mask, stratum.values, 0.0)
    return (weights @ correct.T) / (weights @ mask.T)


def bootstrap_covariance(
    data: MRMCData, est: FomEstimates, n_samples: int = 2000, seed: int | None = 0
) -> np.ndarray:
    """Sample covariance (denominator B - 1) of stratified bootstrap replicates.

    Pairs of units that share no case are set to exactly 0: their replicates are independent,
    and the sample covariance would only add noise.
    """
    reps = bootstrap_replicates(data, est, n_samples, seed)
    cov = np.atleast_2d(np.cov(reps, rowvar=False, ddof=1))
    cov[_shared_counts(est.domain) == 0] = 0.0  # units sharing no case are independent by design
    return cov


def case_covariance(
    data: MRMCData,
    est: FomEstimates,
    method: str = "jackknife",
    *,
    n_samples: int = 2000,
    seed: int | None = 0,
) -> np.ndarray:
    """Dispatch to one of COV_METHODS."""
    if method == "jackknife":
        return jackknife_covariance(est)
    if method == "delong":
        return delong_covariance(est)
    if method == "bootstrap":
        return bootstrap_covariance(data, est, n_samples, seed)
    raise MRMCInputError(
        [f"unknown covariance method {method!r}; expected one of: {', '.join(COV_METHODS)}"]
    )
