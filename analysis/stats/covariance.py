"""Case-sampling covariance of figures of merit across (treatment, reader) units.

Four estimators, each returning a (U, U) matrix over the units flattened treatment-major:

``jackknife``
    Leave out one case at a time and take ``(N - 1)/N * sum_k (theta_a(k) - theta_a(.))
    (theta_b(k) - theta_b(.))``. The leave-one-out values come in closed form from the per-case
    components (fom.py), so no figure of merit is recomputed -- except for the binormal and
    partial AUC (fom_curves.py), whose leave-one-out values are recomputed case by case and
    carried in ``FomEstimates.loo``. Two conventions differ only when units read different case
    sets:

    * ``mrmcaov`` (the default) follows MRMCaov's ``jackknife()``: every unit is jackknifed over
      the same N cases, the cases in the union of all units' domains (the cases the figure of
      merit depends on: all cases for AUC and accuracy, diseased only for sensitivity,
      non-diseased only for specificity). Leaving out a case a unit did not read leaves its figure
      of merit unchanged, so such cases contribute 0, and the sum runs over the cases both units
      read. On a fully crossed design N is the number of cases, exactly as in OR-DBM MRMC; with
      cases nested within treatments or readers, or partially paired (Kundel), N counts every case
      of the study, so Var(error) = (N - 1)/N * sum over the unit's own m cases, not (m - 1)/m.
      MRMCaov's ``preprocess()`` keeps only the diseased cases for sensitivity and only the
      non-diseased for specificity, so its N is this domain too. Recomputed leave-one-out values
      (binormal, partial AUC) do not average to theta: they are centred at their mean over the N
      cases, as MRMCaov's ``scale(metrics, scale = FALSE)`` centres them (jackknife_deviations).
      Covariances that are 0 by design (units that share no case in a nested design) are set to
      0 in the averages, as MRMCaov's ``vcov_comps()`` does (mrmc.covariance_components). With
      these conventions every figure of merit matches MRMCaov 0.3.0 on every design it accepts
      (tests/analysis/test_mrmcaov_reference.py; the binormal AUC to its optimizer's tolerance).
    * ``shared`` (this package's earlier default): for units a, b with m_a, m_b cases each and k
      shared, the sum over the shared cases is scaled by
      ``(m_a - 1)(m_b - 1)/(m_a m_b) * k/(k - 1)``, the influence-function estimate the jackknife
      approximates; it is 0 when the units share no case (or only one). Available as
      ``jackknife_covariance(est, convention="shared")``.

``unbiased``
    Gallas (2006) U-statistic covariance of empirical AUCs, as MRMCaov's ``unbiased()``; see
    unbiased.py. AUC only; every design.

``delong``
    DeLong et al. (1988) for the AUC: ``S10/n1 + S01/n0`` with S the sample covariance of the
    placement values, computed by midranks (Sun & Xu 2014). On balanced designs (every unit
    reads the same cases) this is MRMCaov's ``DeLong()``. MRMCaov refuses DeLong on any other
    design ("balanced design required"); this package extends it, within each stratum s, by
    ``k_s/(k_s - 1) / (n_s,a n_s,b)`` times the sum of products of centred placements over the
    k_s shared cases (0 when the units share fewer than two cases of the stratum). Split-plot and
    partially paired results therefore have no MRMCaov counterpart; on the reference data they
    reach the jackknife's conclusions (tests/analysis/test_mrmcaov_reference.py).

``bootstrap``
    Resample cases with replacement within strata defined by truth and by the set of units that
    read the case (so each unit keeps its numbers of diseased and non-diseased cases, and
    split-plot groups stay intact), recompute every figure of merit, and take the sample
    covariance of the replicates (denominator B - 1). Seeded and reproducible. The binormal and
    partial AUC are recomputed on every resample (a binormal fit per unit and resample: slow).
"""

from __future__ import annotations

import numpy as np

from analysis.stats.data import MRMCData, MRMCInputError
from analysis.stats.fom import EMPIRICAL_AUCS, FomEstimates, Stratum
from analysis.stats.fom_curves import unit_name, weighted_replicates
from analysis.stats.unbiased import unbiased_covariance

COV_METHODS = ("jackknife", "delong", "bootstrap", "unbiased")
JACKKNIFE_CONVENTIONS = ("mrmcaov", "shared")


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


def jackknife_deviations(est: FomEstimates, convention: str = "mrmcaov") -> np.ndarray:
    """(U, C) centred leave-one-out values.

    For the empirical AUC and the binary figures of merit (closed forms) the leave-one-out
    values average to theta over each unit's cases, so these are ``theta_(k) - theta``, 0
    outside the unit's domain. For recomputed figures of merit (binormal, partial AUC) they do
    not: as MRMCaov's ``jackknife()`` (``scale(metrics, scale = FALSE)``) they are centred at
    their mean over every study case (theta standing for the cases the unit did not read); with
    the ``shared`` convention at their mean over the unit's own cases, 0 outside them.
    """
    if est.loo is not None:
        if convention == "mrmcaov":
            return est.loo - est.loo.mean(axis=1, keepdims=True)
        domain = est.domain
        mean = np.where(domain, est.loo, 0.0).sum(axis=1) / domain.sum(axis=1)
        return np.where(domain, est.loo - mean[:, None], 0.0)
    dev = np.zeros_like(est.strata[0].values)
    for stratum in est.strata:
        n = stratum.counts.astype(float)
        dev -= _centred(stratum, est.theta) / (n - 1)[:, None]
    return dev


def jackknife_values(est: FomEstimates) -> np.ndarray:
    """(U, C) leave-one-out figures of merit (theta where the case is outside the domain)."""
    if est.loo is not None:
        return est.loo
    return est.theta[:, None] + jackknife_deviations(est)


def jackknife_covariance(est: FomEstimates, convention: str = "mrmcaov") -> np.ndarray:
    """Jackknife covariance matrix (the module docstring describes the two conventions)."""
    if convention not in JACKKNIFE_CONVENTIONS:
        raise MRMCInputError(
            [
                f"unknown jackknife convention {convention!r}; expected one of: "
                f"{', '.join(JACKKNIFE_CONVENTIONS)}"
            ]
        )
    dev = jackknife_deviations(est, convention)
    domain = est.domain
    if convention == "mrmcaov":
        n = float(domain.any(axis=0).sum())
        return (n - 1) / n * (dev @ dev.T)
    m = domain.sum(axis=1).astype(float)
    scale = np.outer((m - 1) / m, (m - 1) / m) * _shared_scale(_shared_counts(domain))
    return scale * (dev @ dev.T)


def delong_covariance(est: FomEstimates) -> np.ndarray:
    """DeLong covariance matrix of AUCs (see the module docstring for differing case sets)."""
    if est.name not in EMPIRICAL_AUCS:
        kind = "the empirical (trapezoidal) AUC" if est.loo is not None else "the AUC"
        raise MRMCInputError(
            [
                f"DeLong covariance is defined for {kind}, not {est.name}; "
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


def _recomputed_replicates(data: MRMCData, est: FomEstimates, weights: np.ndarray) -> np.ndarray:
    """(B, U) figures of merit of fom_curves.py recomputed on each resample."""
    n_units = est.theta.size
    ratings = data.ratings.reshape(n_units, data.n_cases)
    truth = data.truth.astype(bool)
    reps = np.empty((weights.shape[0], n_units))
    for u in range(n_units):
        cases = np.flatnonzero(est.domain[u])
        reps[:, u] = weighted_replicates(
            est.statistic, ratings[u, cases], truth[cases], weights[:, cases], unit_name(data, u)
        )
    return reps


def bootstrap_replicates(
    data: MRMCData, est: FomEstimates, n_samples: int = 2000, seed: int | None = 0
) -> np.ndarray:
    """(B, U) figures of merit recomputed on stratified bootstrap resamples of the cases."""
    if n_samples < 2:
        raise MRMCInputError([f"the bootstrap needs at least 2 samples, not {n_samples}"])
    rng = np.random.default_rng(seed)
    weights = _bootstrap_weights(data, n_samples, rng)
    n_units = est.theta.size
    if est.statistic is not None:
        return _recomputed_replicates(data, est, weights)
    if est.name in EMPIRICAL_AUCS:
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
    if method == "unbiased":
        return unbiased_covariance(est, data.ratings.reshape(est.theta.size, data.n_cases))
    if method == "delong":
        return delong_covariance(est)
    if method == "bootstrap":
        return bootstrap_covariance(data, est, n_samples, seed)
    raise MRMCInputError(
        [f"unknown covariance method {method!r}; expected one of: {', '.join(COV_METHODS)}"]
    )
