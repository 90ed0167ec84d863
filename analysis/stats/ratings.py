"""Likert ratings per arm: distributions and a proportional-odds (ordinal logit) model on arm.

Distributions: counts and shares per level 1..points, with median and quartiles by linear
interpolation between order statistics (numpy's default, Hyndman & Fan type 7), so a median can
fall between two levels.

Model: for each item, the proportional-odds cumulative logit model (McCullagh 1980)

    logit P(Y <= k) = theta_k - x' beta,   x = indicators of the non-reference arms,

fitted by maximum likelihood with ``statsmodels.miscmodels.ordinal_model.OrderedModel``
(``distr="logit"``, BFGS). With this sign convention ``exp(beta_arm)`` is the odds ratio of a
*higher* rating in that arm versus the reference arm (> 1: the arm is rated higher). Only levels
that occur are modelled (an unused level has no estimable threshold).

Ratings are clustered by reader, so standard errors are cluster-robust by reader
(``cov_type="cluster"``, which OrderedModel accepts through ``LikelihoodModel.fit``; sandwich
estimator with the usual small-sample factor G/(G-1) (n-1)/(n-k)) when at least two readers
rated; otherwise the model-based (inverse Hessian) errors are used and the fit says so. Wald
intervals and p-values use the normal distribution. A proportional-odds model with random
reader intercepts would be the alternative, but statsmodels has no such estimator.

Degenerate inputs (a single observed level, fewer than two arms with ratings, a reference arm
without ratings, a failed or non-converged fit, separation) give an ``OrdinalFit`` with
``reason`` set rather than an exception.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from analysis.stats.data import label_key
from analysis.stats.reads import Read, arms_of, main_reads

# |log odds ratio| above this is taken as (quasi-)separation: an odds ratio beyond e^15
SEPARATION_LOG_OR = 15.0


@dataclass(frozen=True)
class LevelCount:
    level: int
    count: int
    share: float | None


@dataclass(frozen=True)
class RatingDistribution:
    arm: str
    item: str
    n: int
    levels: tuple[LevelCount, ...]
    median: float | None
    q1: float | None
    q3: float | None
    iqr: float | None


@dataclass(frozen=True)
class OddsRatio:
    arm: str
    reference: str
    log_odds_ratio: float | None
    se: float | None
    odds_ratio: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None


@dataclass(frozen=True)
class OrdinalFit:
    item: str
    reference: str | None
    arms: tuple[str, ...]  # arms in the model (with at least one rating)
    n: int
    n_readers: int
    levels: tuple[int, ...]  # observed levels, the model's categories
    cov_type: str | None  # "cluster" (by reader) or "nonrobust"
    converged: bool | None
    conf_level: float
    odds_ratios: tuple[OddsRatio, ...]
    thresholds: dict[str, float]
    reason: str | None = None  # set when there are no usable estimates
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class RatingsResult:
    items: tuple[str, ...]
    arms: tuple[str, ...]
    points: dict[str, int]
    distributions: tuple[RatingDistribution, ...]
    models: tuple[OrdinalFit, ...]


def _ratings_of(reads: Sequence[Read], item: str) -> list[tuple[Read, int]]:
    return [(r, int(r.ratings[item])) for r in main_reads(reads) if r.ratings.get(item) is not None]


def _points(
    reads: Sequence[Read], items: Sequence[str], points: int | Mapping[str, int] | None
) -> dict[str, int]:
    out = {}
    for item in items:
        values = [v for _, v in _ratings_of(reads, item)]
        if any(v < 1 for v in values):
            raise ValueError(f"item {item!r} has a rating below 1")
        top = points.get(item) if isinstance(points, Mapping) else points
        if top is None:
            top = max(values, default=1)
        if any(v > top for v in values):
            raise ValueError(f"item {item!r} has a rating above its {top} points")
        out[item] = int(top)
    return out


def items_of(reads: Sequence[Read]) -> tuple[str, ...]:
    return tuple(sorted({k for r in main_reads(reads) for k in r.ratings}, key=label_key))


def distribution(
    values: Sequence[int], points: int, *, arm: str = "", item: str = ""
) -> RatingDistribution:
    """Counts, shares, median and quartiles of ratings on a 1..points scale."""
    values = np.asarray(values, dtype=float)
    n = int(values.size)
    levels = tuple(
        LevelCount(k, int((values == k).sum()), float((values == k).mean()) if n else None)
        for k in range(1, points + 1)
    )
    if n == 0:
        return RatingDistribution(arm, item, 0, levels, None, None, None, None)
    q1, median, q3 = (float(v) for v in np.percentile(values, [25, 50, 75]))
    return RatingDistribution(arm, item, n, levels, median, q1, q3, q3 - q1)


def _empty_fit(
    item, reference, arms, n, n_readers, levels, conf_level, reason, notes=()
) -> OrdinalFit:
    return OrdinalFit(
        item,
        reference,
        tuple(arms),
        n,
        n_readers,
        tuple(levels),
        None,
        None,
        conf_level,
        (),
        {},
        reason=reason,
        notes=tuple(notes),
    )


def _odds_ratios(
    params: np.ndarray, bse: np.ndarray, others: Sequence[str], reference: str, conf_level: float
) -> tuple[list[OddsRatio], str | None]:
    """Each arm's odds ratio against the reference (Wald interval and test); none, with the
    reason, when an estimate diverges (separation)."""
    z = float(stats.norm.ppf(0.5 + conf_level / 2))
    ratios = []
    for i, arm in enumerate(others):
        b, se = float(params[i]), float(bse[i])
        ok = math.isfinite(b) and math.isfinite(se) and se > 0
        if not ok or abs(b) > SEPARATION_LOG_OR:
            return [], (
                "the estimates diverge (separation: e.g. every rating of one arm is "
                "above every rating of another); no odds ratio is reported"
            )
        ratios.append(
            OddsRatio(
                arm=arm,
                reference=reference,
                log_odds_ratio=b,
                se=se,
                odds_ratio=math.exp(b),
                ci_low=math.exp(b - z * se),
                ci_high=math.exp(b + z * se),
                p_value=float(2 * stats.norm.sf(abs(b / se))),
            )
        )
    return ratios, None


def _fit_ordered(rated, others: Sequence[str], n_readers: int, *, cluster: bool, notes: list):
    """The statsmodels OrderedModel fit of the ratings on arm indicators; (result, cov type).
    A note is added when there is one reader to cluster on."""
    from statsmodels.miscmodels.ordinal_model import OrderedModel  # slow to import; few need it

    arm_col = np.array([r.arm for r, _ in rated])
    exog = np.column_stack([(arm_col == a).astype(float) for a in others])
    # numeric endog: OrderedModel takes the sorted unique values as the ordered categories
    endog = np.array([v for _, v in rated], dtype=float)
    fit_kwargs: dict = {"method": "bfgs", "maxiter": 2000, "disp": False}
    cov_type = "nonrobust"
    if cluster and n_readers >= 2:
        groups = np.unique([r.reader for r, _ in rated], return_inverse=True)[1]
        fit_kwargs.update(cov_type="cluster", cov_kwds={"groups": groups})
        cov_type = "cluster"
    elif cluster:
        notes.append("one reader: model-based standard errors instead of cluster-robust ones")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return OrderedModel(endog, exog, distr="logit").fit(**fit_kwargs), cov_type


def ordinal_regression(
    reads: Sequence[Read],
    item: str,
    *,
    reference: str | None = None,
    conf_level: float = 0.95,
    cluster: bool = True,
) -> OrdinalFit:
    """Proportional-odds model of one Likert item on arm (see the module docstring).

    ``reference`` defaults to the first arm (label order) with ratings of the item; arms
    without ratings of the item (e.g. an unaided arm asked nothing about the AI) are left out
    with a note.
    """
    rated = _ratings_of(reads, item)
    all_arms = arms_of(main_reads(reads))
    arms = arms_of(r for r, _ in rated)
    reference = reference if reference is not None else (arms[0] if arms else None)
    readers = sorted({r.reader for r, _ in rated}, key=label_key)
    levels = sorted({v for _, v in rated})
    n = len(rated)
    notes = [f"arm {a} has no {item!r} ratings and is left out" for a in all_arms if a not in arms]

    def empty(reason: str) -> OrdinalFit:
        return _empty_fit(item, reference, arms, n, len(readers), levels, conf_level, reason, notes)

    if n == 0:
        return empty(f"no ratings of {item!r}")
    if reference not in arms:
        return empty(f"reference arm {reference} has no {item!r} ratings")
    if len(arms) < 2:
        return empty(f"only arm {arms[0]} has {item!r} ratings: nothing to compare")
    if len(levels) < 2:
        return empty(f"every {item!r} rating is {levels[0]}: no ordinal model can be fitted")

    others = [a for a in arms if a != reference]
    try:
        res, cov_type = _fit_ordered(rated, others, len(readers), cluster=cluster, notes=notes)
    except (ValueError, np.linalg.LinAlgError) as exc:
        return empty(f"the ordinal model could not be fitted: {exc}")

    converged = bool(res.mle_retvals.get("converged", False))
    params = np.asarray(res.params, dtype=float)
    ratios, reason = _odds_ratios(
        params, np.asarray(res.bse, dtype=float), others, reference, conf_level
    )
    if not converged and reason is None:
        reason = "the optimiser did not converge; no odds ratio is reported"
        ratios = []
    # OrderedModel stores thresholds as the first cut-off then log increments
    cuts = res.model.transform_threshold_params(params)[1:-1]
    thresholds = {f"{levels[i]}|{levels[i + 1]}": float(c) for i, c in enumerate(cuts)}
    return OrdinalFit(
        item,
        reference,
        arms,
        n,
        len(readers),
        tuple(levels),
        cov_type,
        converged,
        conf_level,
        tuple(ratios),
        thresholds if reason is None else {},
        reason=reason,
        notes=tuple(notes),
    )


def rating_analysis(
    reads: Sequence[Read],
    *,
    reference: str | None = None,
    points: int | Mapping[str, int] | None = None,
    conf_level: float = 0.95,
    cluster: bool = True,
) -> RatingsResult:
    """Distributions per (arm, item) and an ordinal model per item.

    ``points`` is the scale length (one for all items, or per item); by default the highest
    rating seen for the item. Ratings outside 1..points raise ValueError.
    """
    items = items_of(reads)
    arms = arms_of(main_reads(reads))
    scale = _points(reads, items, points)
    dists = []
    for item in items:
        rated = _ratings_of(reads, item)
        for arm in arms:
            dists.append(
                distribution([v for r, v in rated if r.arm == arm], scale[item], arm=arm, item=item)
            )
    models = tuple(
        ordinal_regression(reads, item, reference=reference, conf_level=conf_level, cluster=cluster)
        for item in items
    )
    return RatingsResult(items, arms, scale, tuple(dists), models)
