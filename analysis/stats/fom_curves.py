"""Figures of merit of fitted or partial ROC curves: binormal AUC and partial AUC, recomputed.

Unlike the figures of merit in fom.py these are not means of per-case components, so their
leave-one-out values have no closed form: each is recomputed with the case left out, as MRMCaov's
``jackknife()`` does. Per unit, every case of the study is left out in turn (the jackknife runs
over all N study cases); leaving out a case the unit did not read leaves its value unchanged.
Cases the unit read with the same truth and rating give the same leave-one-out value, so it is
computed once per distinct (truth, rating) pair (MRMCaov shares them the same way): for ordinal
ratings a unit needs a handful of fits, not one per case.

* ``binormal_auc``: area under the maximum-likelihood binormal ROC curve (binormal.py; Dorfman &
  Alf, Metz), with MRMCaov's limits (1, 0, 0.5) where the fit degenerates.
* ``partial_auc``: empirical partial area over a specificity or sensitivity range (partial_auc.py),
  optionally McClish-standardized: ``(1 + (area - min) / (max - min)) / 2``. By default the range
  ends are taken as MRMCaov takes them (``boundary="mrmcaov"``); ``boundary="proc"`` gives the
  geometric area of the empirical curve, as pROC computes it. The two differ only where a range
  end falls on a vertical step of a curve (partial_auc.py says how).
  Where a curve (or a leave-one-out or bootstrap curve) is below the chance line over the range,
  pROC returns NA; here the linear formula goes on below 0.5, so the OR analysis of the
  standardized area is exactly that of the area, rescaled, and a jackknife never breaks on it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from analysis.stats.data import MRMCData, MRMCInputError
from analysis.stats.partial_auc import FOCUSES, chance_area, mrmcaov_partial_area, partial_auc

RECOMPUTED_FOMS = ("binormal_auc", "partial_auc")

Statistic = Callable[[np.ndarray, np.ndarray], float]  # (non-diseased, diseased ratings) -> FOM


@dataclass(frozen=True)
class PartialRange:
    """The range of a partial AUC: ``bounds`` (low, high) of specificity or sensitivity."""

    bounds: tuple[float, float]
    focus: str = "specificity"
    standardized: bool = False  # McClish (1989)
    boundary: str = "mrmcaov"  # how range ends on a vertical step are taken (BOUNDARIES)

    def describe(self) -> str:
        low, high = self.bounds
        text = f"{self.focus} {low:g} to {high:g}"
        text += ", McClish-standardized" if self.standardized else ""
        return text + (", range ends as pROC takes them" if self.boundary == "proc" else "")

    def parameters(self) -> dict:
        return {
            "range": list(self.bounds),
            "focus": self.focus,
            "standardized": self.standardized,
            "boundary": self.boundary,
        }


BOUNDARIES = ("mrmcaov", "proc")


def partial_range(
    bounds, focus: str = "specificity", standardized: bool = False, boundary: str = "mrmcaov"
) -> PartialRange:
    """Validated PartialRange (bounds in either order, within [0, 1], distinct)."""
    problems = []
    if focus not in FOCUSES:
        problems.append(f"partial-AUC focus must be one of {', '.join(FOCUSES)}, not {focus!r}")
    if boundary not in BOUNDARIES:
        problems.append(
            f"partial-AUC boundary convention must be one of {', '.join(BOUNDARIES)}, "
            f"not {boundary!r}"
        )
    values = [float(v) for v in bounds] if bounds is not None else []
    if len(values) != 2 or any(math.isnan(v) for v in values):
        problems.append("the partial-AUC range needs two bounds, e.g. 0.8 1")
    else:
        low, high = sorted(values)
        if low < 0 or high > 1 or low == high:
            problems.append(
                f"the partial-AUC range must be two different values within [0, 1], not {bounds}"
            )
    if problems:
        raise MRMCInputError(problems)
    return PartialRange((low, high), focus, bool(standardized), boundary)


def _binormal(negatives: np.ndarray, positives: np.ndarray) -> float:
    # deferred: binormal.py loads scipy.optimize (~0.4 s), needed for this FOM only
    from analysis.stats.binormal import binormal_auc

    return binormal_auc(negatives, positives)


def unit_statistic(fom: str, partial: PartialRange | None) -> Statistic:
    """The function computing one unit's figure of merit from its two groups of ratings."""
    if fom == "binormal_auc":
        return _binormal
    if fom != "partial_auc":
        raise MRMCInputError([f"{fom!r} is not a recomputed figure of merit"])
    if partial is None:
        raise MRMCInputError(
            ["the partial AUC needs a range of specificity or sensitivity, e.g. 0.8 to 1"]
        )

    low, high = partial.bounds
    min_area, max_area = chance_area(low, high), high - low

    def statistic(negatives: np.ndarray, positives: np.ndarray) -> float:
        if partial.boundary == "proc":
            area = partial_auc(negatives, positives, partial.bounds, partial.focus).area
        else:
            area = mrmcaov_partial_area(negatives, positives, partial.bounds, partial.focus)
        if not partial.standardized:
            return area
        return (1 + (area - min_area) / (max_area - min_area)) / 2

    return statistic


def _value(statistic: Statistic, ratings: np.ndarray, truth: np.ndarray, where: str) -> float:
    try:
        value = float(statistic(ratings[~truth], ratings[truth]))
    except ValueError as error:
        raise MRMCInputError([f"{where}: {error}"]) from None
    if math.isnan(value):
        raise MRMCInputError([f"{where}: the figure of merit is undefined (NaN)"])
    return value


def leave_one_out(
    statistic: Statistic, ratings: np.ndarray, truth: np.ndarray, where: str = "unit"
) -> np.ndarray:
    """The statistic recomputed with each case left out (one fit per distinct truth, rating)."""
    keys = np.stack([truth.astype(float), ratings], axis=1)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    inverse = np.asarray(inverse).reshape(-1)
    values = np.empty(first.size)
    for k, i in enumerate(first):
        keep = np.ones(ratings.size, dtype=bool)
        keep[i] = False
        values[k] = _value(statistic, ratings[keep], truth[keep], f"{where} without one case")
    return values[inverse]


def unit_name(data: MRMCData, u: int) -> str:
    t, r = divmod(u, data.n_readers)
    return f"reader {data.readers[r]} under treatment {data.treatments[t]}"


def recomputed_estimates(data: MRMCData, statistic: Statistic) -> tuple[np.ndarray, np.ndarray]:
    """``(theta, loo)``: each unit's figure of merit and the (U, N) leave-one-out values."""
    n_units = data.n_treatments * data.n_readers
    ratings = data.ratings.reshape(n_units, data.n_cases)
    read = data.read.reshape(n_units, data.n_cases)
    truth = data.truth.astype(bool)
    theta = np.empty(n_units)
    loo = np.empty((n_units, data.n_cases))
    for u in range(n_units):
        cases = np.flatnonzero(read[u])
        where = unit_name(data, u)
        theta[u] = _value(statistic, ratings[u, cases], truth[cases], where)
        loo[u] = theta[u]
        loo[u, cases] = leave_one_out(statistic, ratings[u, cases], truth[cases], where)
    return theta, loo


def weighted_replicates(
    statistic: Statistic,
    ratings: np.ndarray,
    truth: np.ndarray,
    weights: np.ndarray,
    where: str = "unit",
) -> np.ndarray:
    """The statistic on each bootstrap resample, given as (B, cases) integer multiplicities."""
    counts = np.rint(weights).astype(int)
    return np.array(
        [
            _value(
                statistic, np.repeat(ratings, row), np.repeat(truth, row), f"{where} (bootstrap)"
            )
            for row in counts
        ]
    )
