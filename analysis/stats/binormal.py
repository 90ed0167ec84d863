"""Maximum-likelihood binormal ROC fit to rating data (Dorfman & Alf 1969; Metz's ROCFIT).

Model: a case's latent decision variable is N(0, 1) if non-diseased and N(a / b, 1 / b^2) if
diseased; a rating falls in category k (ascending, k = 1..K) when the latent value lies between
thresholds c_{k-1} < c_k (c_0 = -inf, c_K = +inf). At threshold c the operating point is
``FPR = Phi(-c)``, ``TPR = Phi(a - b c)``, so ``probit(TPR) = a + b probit(FPR)``, and the area
under the fitted curve is ``Phi(a / sqrt(1 + b^2))``.

Fit: the multinomial log-likelihood of the two rows of category counts is maximised over
(a, log b, c_1, log(c_2 - c_1), ...) -- a monotone parametrisation that keeps b > 0 and the
thresholds ordered -- by BFGS with the analytic gradient, starting from the least-squares line
through the empirical z-transformed operating points. Standard errors come from the inverse
observed information (central differences of the analytic gradient at the optimum).

Categories: each distinct rating value is a category (as ROCFIT does for ordinal data and
LABROC/RSCORE-style programs for continuous data), ascending, higher = more suspicious. Adjacent
categories that are both empty in one truth group are then merged (MRMCaov's ``collapse``): this
changes the likelihood by a constant only, so the ML (a, b) are unchanged, and it removes
thresholds that would run off to the boundary. For continuous scores this leaves the runs of
one truth group, as LABROC4's categorisation does.

Degenerate data (documented limits, raised as ``DegenerateFitError``, a ``ValueError``):
fewer than three categories after merging (a single category, or a binary rating: (a, b) are
not identifiable), or every empirical operating point on the FPR = 0 / TPR = 1 edges (perfect
separation and its near relatives: the likelihood increases without bound as a -> inf, so the
ML AUC is 1), or on the TPR = 0 / FPR = 1 edges (ML AUC 0). ``binormal_auc`` returns those limits
(1, 0, and 0.5 for a single category) as MRMCaov's ``binormal_auc`` does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

_SQRT_2PI = float(np.sqrt(2 * np.pi))
# scipy.stats.norm's cdf, ppf and pdf are these same formulas (special.ndtr, special.ndtri) behind
# a per-call overhead that was most of a fit's time; the values are identical.
_norm_cdf, _norm_ppf = special.ndtr, special.ndtri


def _norm_pdf(x):
    return np.exp(-np.square(x) / 2.0) / _SQRT_2PI


class DegenerateFitError(ValueError):
    """The ML binormal fit does not exist for these data; ``limit_auc`` is its AUC limit."""

    def __init__(self, message: str, limit_auc: float | None = None) -> None:
        super().__init__(message)
        self.limit_auc = limit_auc


@dataclass(frozen=True)
class RatingTable:
    """Category counts, ascending categories; ``categories`` holds each one's highest rating."""

    categories: tuple[float, ...]
    negative_counts: tuple[float, ...]
    positive_counts: tuple[float, ...]


@dataclass(frozen=True)
class BinormalFit:
    """The ML binormal fit of one reader's ratings under one treatment."""

    a: float
    b: float
    thresholds: tuple[float, ...]
    auc: float
    se_a: float
    se_b: float
    se_auc: float
    covariance: tuple[tuple[float, ...], ...]  # of (a, b, thresholds...)
    log_likelihood: float  # multinomial, without the constant, of the merged table
    converged: bool  # |gradient| < 1e-6 * cases after BFGS and Newton polishing
    iterations: int  # BFGS iterations
    message: str  # BFGS's message
    table: RatingTable  # the merged categories the fit used


def _floats(values) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


def binormal_auc_value(a: float, b: float) -> float:
    """Area under the binormal ROC curve: Phi(a / sqrt(1 + b^2))."""
    return float(_norm_cdf(a / np.sqrt(1.0 + b * b)))


def collapse_counts(
    negative_counts: np.ndarray, positive_counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge categories as described in the module docstring.

    Returns ``(keep, negatives, positives)``: ``keep`` the index of the last original category
    of each merged one. Categories empty in both groups are dropped first.
    """
    neg = np.asarray(negative_counts, dtype=float)
    pos = np.asarray(positive_counts, dtype=float)
    index = np.flatnonzero(neg + pos > 0)
    cum_neg, cum_pos = np.cumsum(neg[index]), np.cumsum(pos[index])

    def interior_run(cum: np.ndarray) -> np.ndarray:
        flat = np.zeros(cum.size, dtype=bool)
        if cum.size > 2:
            flat[1:-1] = (cum[1:-1] == cum[:-2]) & (cum[1:-1] == cum[2:])
        return flat

    drop = interior_run(cum_neg) | interior_run(cum_pos)
    # a category empty in one group merges into the next one when that is empty there too
    first = np.zeros(cum_neg.size, dtype=bool)
    if cum_neg.size > 1:
        first[0] = (neg[index][0] == 0 and neg[index][1] == 0) or (
            pos[index][0] == 0 and pos[index][1] == 0
        )
    drop |= first
    kept = ~drop
    cum_neg, cum_pos = cum_neg[kept], cum_pos[kept]
    return index[kept], np.diff(cum_neg, prepend=0.0), np.diff(cum_pos, prepend=0.0)


def rating_table(negatives: np.ndarray, positives: np.ndarray) -> RatingTable:
    """Tabulate ratings by distinct value (ascending) and merge categories (module docstring)."""
    negatives = np.asarray(negatives, dtype=float).ravel()
    positives = np.asarray(positives, dtype=float).ravel()
    if negatives.size == 0 or positives.size == 0:
        raise ValueError("the binormal fit needs at least one diseased and one non-diseased case")
    values = np.unique(np.concatenate([negatives, positives]))
    neg = np.searchsorted(values, negatives)
    pos = np.searchsorted(values, positives)
    neg_counts = np.bincount(neg, minlength=values.size).astype(float)
    pos_counts = np.bincount(pos, minlength=values.size).astype(float)
    keep, neg_counts, pos_counts = collapse_counts(neg_counts, pos_counts)
    return RatingTable(_floats(values[keep]), _floats(neg_counts), _floats(pos_counts))


def _cell_probabilities(a: float, b: float, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cuts = np.concatenate([[-np.inf], c, [np.inf]])
    p = np.diff(_norm_cdf(cuts))
    q = np.diff(_norm_cdf(b * cuts - a))
    return p, q


def log_likelihood(
    a: float, b: float, thresholds: np.ndarray, negative_counts, positive_counts
) -> float:
    """Multinomial log-likelihood (without the constant) of category counts at (a, b, c)."""
    p, q = _cell_probabilities(a, b, np.asarray(thresholds, dtype=float))
    n, m = np.asarray(negative_counts, float), np.asarray(positive_counts, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.concatenate([n * np.log(p), m * np.log(q)])
    return float(np.where(np.concatenate([n, m]) > 0, terms, 0.0).sum())


def _gradient(a: float, b: float, c: np.ndarray, n: np.ndarray, m: np.ndarray) -> np.ndarray:
    """d logL / d(a, b, c_1..c_{K-1})."""
    p, q = _cell_probabilities(a, b, c)
    z = b * c - a
    phi_c, phi_z = _norm_pdf(c), _norm_pdf(z)
    wn = np.where(n > 0, n / np.where(p > 0, p, 1.0), 0.0)
    wm = np.where(m > 0, m / np.where(q > 0, q, 1.0), 0.0)
    # dq_k/dz_k = +phi(z_k) (upper edge of cell k), -phi(z_{k-1}) (lower edge of cell k)
    edge_z = np.concatenate([[0.0], phi_z, [0.0]])
    edge_cz = np.concatenate([[0.0], c * phi_z, [0.0]])
    d_a = float(np.sum(wm * -(edge_z[1:] - edge_z[:-1])))
    d_b = float(np.sum(wm * (edge_cz[1:] - edge_cz[:-1])))
    d_c = (wn[:-1] - wn[1:]) * phi_c + (wm[:-1] - wm[1:]) * b * phi_z
    return np.concatenate([[d_a, d_b], d_c])


def _unpack(theta: np.ndarray) -> tuple[float, float, np.ndarray]:
    c = np.cumsum(np.concatenate([[theta[2]], np.exp(theta[3:])]))
    return float(theta[0]), float(np.exp(theta[1])), c


def _pack(a: float, b: float, c: np.ndarray) -> np.ndarray:
    return np.concatenate([[a, np.log(b), c[0]], np.log(np.diff(c))])


def _starting_values(n: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Least-squares line through the z-transformed empirical operating points."""
    fpr = np.cumsum(n[::-1])[::-1][1:] / n.sum()
    tpr = np.cumsum(m[::-1])[::-1][1:] / m.sum()
    fpr = np.clip(fpr, 0.5 / n.sum(), 1 - 0.5 / n.sum())
    tpr = np.clip(tpr, 0.5 / m.sum(), 1 - 0.5 / m.sum())
    x, y = _norm_ppf(fpr), _norm_ppf(tpr)
    if np.ptp(x) > 0:
        b, a = np.polyfit(x, y, 1)
    else:
        b, a = 1.0, float(np.mean(y - x))
    b = b if b > 0.05 else 1.0
    c = -x
    for k in range(1, c.size):  # strictly increasing thresholds
        c[k] = max(c[k], c[k - 1] + 0.05)
    return _pack(float(a), float(b), c)


def _check_degenerate(n: np.ndarray, m: np.ndarray) -> None:
    if n.size < 2:
        raise DegenerateFitError("all ratings fall in one category: no ROC curve to fit", 0.5)
    fpr = np.cumsum(n[::-1])[::-1][1:] / n.sum()
    tpr = np.cumsum(m[::-1])[::-1][1:] / m.sum()
    if np.all((fpr == 0) | (tpr == 1)):
        raise DegenerateFitError(
            "every empirical operating point lies on the FPR = 0 or TPR = 1 edge (e.g. perfect "
            "separation): the binormal likelihood has no maximum (a -> inf, AUC -> 1)",
            1.0,
        )
    if np.all((tpr == 0) | (fpr == 1)):
        raise DegenerateFitError(
            "every empirical operating point lies on the TPR = 0 or FPR = 1 edge (reversed "
            "separation): the binormal likelihood has no maximum (AUC -> 0)",
            0.0,
        )
    if n.size < 3:
        raise DegenerateFitError(
            "the binormal fit needs at least three rating categories (after merging runs of one "
            "truth group): with two, a and b are not identifiable"
        )


def _observed_information(a: float, b: float, c: np.ndarray, n, m) -> np.ndarray:
    x = np.concatenate([[a, b], c])
    info = np.empty((x.size, x.size))
    for j in range(x.size):
        h = 1e-5 * max(1.0, abs(x[j]))
        up, down = x.copy(), x.copy()
        up[j] += h
        down[j] -= h
        g_up = _gradient(up[0], up[1], up[2:], n, m)
        g_down = _gradient(down[0], down[1], down[2:], n, m)
        info[:, j] = -(g_up - g_down) / (2 * h)
    return (info + info.T) / 2


def _newton_polish(a: float, b: float, c: np.ndarray, n, m, steps: int = 8):
    """Newton steps on (a, b, c) from near the optimum; a step is kept only if it is valid
    (b > 0, ordered thresholds) and does not lower the likelihood."""
    x = np.concatenate([[a, b], c])
    best = log_likelihood(a, b, c, n, m)
    for _ in range(steps):
        try:
            step = np.linalg.solve(
                _observed_information(x[0], x[1], x[2:], n, m), _gradient(x[0], x[1], x[2:], n, m)
            )
        except np.linalg.LinAlgError:
            break
        trial = x + step
        if trial[1] <= 0 or np.any(np.diff(trial[2:]) <= 0):
            break
        value = log_likelihood(trial[0], trial[1], trial[2:], n, m)
        if not value >= best:
            break
        x, best = trial, value
        if np.max(np.abs(step)) < 1e-12:
            break
    return float(x[0]), float(x[1]), x[2:]


def fit_binormal_counts(negative_counts, positive_counts, table: RatingTable | None = None):
    """ML binormal fit to category counts (ascending categories, higher = more suspicious).

    Categories are merged first (module docstring); raises ``DegenerateFitError`` (a
    ``ValueError``) where no ML fit exists.
    """
    raw_n = np.asarray(negative_counts, dtype=float)
    raw_m = np.asarray(positive_counts, dtype=float)
    if raw_n.shape != raw_m.shape or raw_n.ndim != 1:
        raise ValueError("negative and positive counts must be 1-d and of equal length")
    if np.any(raw_n < 0) or np.any(raw_m < 0) or raw_n.sum() == 0 or raw_m.sum() == 0:
        raise ValueError("counts must be non-negative, with some cases in each truth group")
    keep, n, m = collapse_counts(raw_n, raw_m)
    if table is None:
        table = RatingTable(_floats(keep + 1), _floats(n), _floats(m))
    _check_degenerate(n, m)

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        a, b, c = _unpack(theta)
        value = log_likelihood(a, b, c, n, m)
        if not np.isfinite(value):
            return 1e300, np.zeros_like(theta)
        g = _gradient(a, b, c, n, m)
        d_c = np.cumsum(g[2:][::-1])[::-1]  # d/d c_1 and d/d log-gaps via the cumulative sums
        grad = np.concatenate([[g[0], g[1] * b, d_c[0]], d_c[1:] * np.exp(theta[3:])])
        return -value, -grad

    result = optimize.minimize(
        objective,
        _starting_values(n, m),
        jac=True,
        method="BFGS",
        options={"gtol": 1e-6, "maxiter": 2000},
    )
    a, b, c = _newton_polish(*_unpack(result.x), n, m)
    gradient = _gradient(a, b, c, n, m)
    converged = bool(np.max(np.abs(gradient)) < 1e-6 * (n.sum() + m.sum()))
    cov = np.linalg.pinv(_observed_information(a, b, c, n, m))
    root = np.sqrt(1.0 + b * b)
    density = _norm_pdf(a / root)
    d_auc = np.zeros(cov.shape[0])
    d_auc[0], d_auc[1] = density / root, -density * a * b / root**3
    with np.errstate(invalid="ignore"):  # NaN standard errors where the information is singular
        se_a, se_b = np.sqrt(cov[0, 0]), np.sqrt(cov[1, 1])
        se_auc = np.sqrt(d_auc @ cov @ d_auc)
    return BinormalFit(
        a=a,
        b=b,
        thresholds=tuple(float(v) for v in c),
        auc=binormal_auc_value(a, b),
        se_a=float(se_a),
        se_b=float(se_b),
        se_auc=float(se_auc),
        covariance=tuple(tuple(float(v) for v in row) for row in cov),
        log_likelihood=log_likelihood(a, b, c, n, m),
        converged=converged,
        iterations=int(result.nit),
        message=str(result.message),
        table=table,
    )


def fit_binormal(negatives: np.ndarray, positives: np.ndarray) -> BinormalFit:
    """ML binormal fit to one reader's ratings of non-diseased and diseased cases."""
    table = rating_table(negatives, positives)
    return fit_binormal_counts(table.negative_counts, table.positive_counts, table=table)


def binormal_auc(negatives: np.ndarray, positives: np.ndarray) -> float:
    """Binormal ML AUC, or its limit (1, 0, or 0.5) where the fit degenerates (as MRMCaov)."""
    try:
        return fit_binormal(negatives, positives).auc
    except DegenerateFitError as error:
        if error.limit_auc is None:
            raise
        return error.limit_auc
