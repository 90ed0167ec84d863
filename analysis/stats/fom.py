"""Figures of merit per (treatment, reader) unit, with their per-case structural components.

Every figure of merit here is a mean of per-case components within one or two case strata:

* ``auc``: placements of diseased cases (stratum 1) and of non-diseased cases (stratum 0); the AUC
  is the mean within either stratum.
* ``sensitivity``: 1 if a diseased case was called positive (stratum: diseased cases only).
* ``specificity``: 1 if a non-diseased case was called negative (stratum: non-diseased only).
* ``accuracy``: 1 if the call matches the truth (one stratum: all cases).

Leaving out case k of stratum s (size n_s) changes each of these to
``(n_s * theta - V_k) / (n_s - 1)``, because the other components do not depend on case k. That
closed form gives all leave-one-out values without recomputing anything (see covariance.py).

``trapezoidal_auc`` is the empirical AUC under MRMCaov's other name (same numbers). The
figures of merit of fom_curves.py (``binormal_auc``, ``partial_auc``) are not means of
components: FomEstimates then carries ``loo``, their leave-one-out values recomputed case by
case, and ``statistic``, the function that recomputes a unit's value (for the bootstrap); its
strata carry the diseased / non-diseased masks only (values NaN).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from analysis.stats.data import MRMCData, MRMCInputError
from analysis.stats.fom_curves import (
    RECOMPUTED_FOMS,
    PartialRange,
    Statistic,
    recomputed_estimates,
    unit_name,
    unit_statistic,
)
from analysis.stats.roc import placements

EMPIRICAL_AUCS = ("auc", "trapezoidal_auc")
FOMS = ("auc", "trapezoidal_auc", *RECOMPUTED_FOMS, "sensitivity", "specificity", "accuracy")
BINARY_FOMS = ("sensitivity", "specificity", "accuracy")


@dataclass(frozen=True)
class Stratum:
    """Per-case components of one case stratum.

    ``values`` (U, C): the component of each case for each unit, NaN where the case is outside
    the stratum or was not read by the unit. ``mask`` is the complement of NaN.
    """

    name: str
    values: np.ndarray
    mask: np.ndarray

    @property
    def counts(self) -> np.ndarray:
        return self.mask.sum(axis=1)


@dataclass(frozen=True)
class FomEstimates:
    """Figure of merit per unit (``theta``, flattened treatment-major) and its components."""

    name: str
    theta: np.ndarray
    strata: tuple[Stratum, ...]
    n_treatments: int
    n_readers: int
    threshold: float | None = None
    parameters: dict = field(default_factory=dict)  # e.g. a partial AUC's range and focus
    loo: np.ndarray | None = None  # (U, C) recomputed leave-one-out values (fom_curves.py)
    statistic: Statistic | None = field(default=None, compare=False, repr=False)

    @property
    def table(self) -> np.ndarray:
        """theta as a (treatments, readers) table."""
        return self.theta.reshape(self.n_treatments, self.n_readers)

    @property
    def domain(self) -> np.ndarray:
        """(U, C) mask of the cases each unit's figure of merit depends on."""
        mask = np.zeros_like(self.strata[0].mask)
        for stratum in self.strata:
            mask |= stratum.mask
        return mask


def decisions(data: MRMCData, threshold: float | None) -> np.ndarray:
    """Binary calls (T, R, C): rating >= threshold, else the file's diagnosis column."""
    if threshold is not None:
        calls = np.where(data.read, (data.ratings >= threshold).astype(float), np.nan)
        return calls
    if data.diagnosis is not None:
        return data.diagnosis
    raise MRMCInputError(
        [
            "a binary figure of merit needs a threshold (rating >= threshold is positive) "
            "or a 'diagnosis' column of 0/1 calls"
        ]
    )


def _check_counts(data: MRMCData, strata: tuple[Stratum, ...], minimum: int) -> None:
    problems = []
    for stratum in strata:
        for u in np.flatnonzero(stratum.counts < minimum):
            problems.append(
                f"{unit_name(data, u)} read {int(stratum.counts[u])} {stratum.name} case(s); "
                f"at least {minimum} are needed"
            )
    if problems:
        raise MRMCInputError(problems)


def _auc_strata(data: MRMCData) -> tuple[np.ndarray, tuple[Stratum, ...]]:
    n_units = data.n_treatments * data.n_readers
    ratings = data.ratings.reshape(n_units, data.n_cases)
    read = data.read.reshape(n_units, data.n_cases)
    diseased = data.truth.astype(bool)
    mask1 = read & diseased
    mask0 = read & ~diseased
    v10 = np.full(ratings.shape, np.nan)
    v01 = np.full(ratings.shape, np.nan)
    if read.all():  # fully crossed: one batched midrank computation for all units
        p10, p01 = placements(ratings[:, ~diseased], ratings[:, diseased])
        v10[:, diseased] = p10
        v01[:, ~diseased] = p01
    else:
        for u in range(n_units):
            p10, p01 = placements(ratings[u, mask0[u]], ratings[u, mask1[u]])
            v10[u, mask1[u]] = p10
            v01[u, mask0[u]] = p01
    theta = np.nanmean(v10, axis=1)
    return theta, (Stratum("diseased", v10, mask1), Stratum("non-diseased", v01, mask0))


def _recomputed(
    data: MRMCData, fom: str, partial: PartialRange | None, strata: tuple[Stratum, ...]
) -> FomEstimates:
    statistic = unit_statistic(fom, partial)
    theta, loo = recomputed_estimates(data, statistic)
    empty = tuple(replace(s, values=np.full(s.mask.shape, np.nan)) for s in strata)
    parameters = partial.parameters() if fom == "partial_auc" and partial else {}
    return FomEstimates(
        fom,
        theta,
        empty,
        data.n_treatments,
        data.n_readers,
        parameters=parameters,
        loo=loo,
        statistic=statistic,
    )


def compute_fom(
    data: MRMCData,
    fom: str = "auc",
    threshold: float | None = None,
    min_per_stratum: int = 2,
    partial: PartialRange | None = None,
) -> FomEstimates:
    """Figure of merit of every (treatment, reader) unit with its per-case components.

    ``min_per_stratum`` (default 2) is the fewest cases of each class a unit must have read; two
    are needed for any case-sampling variance. ``partial`` (fom_curves.partial_range) is the
    range of ``partial_auc``.
    """
    if fom not in FOMS:
        raise MRMCInputError(
            [f"unknown figure of merit {fom!r}; expected one of: {', '.join(FOMS)}"]
        )
    n_units = data.n_treatments * data.n_readers
    read = data.read.reshape(n_units, data.n_cases)
    diseased = data.truth.astype(bool)
    if fom in EMPIRICAL_AUCS or fom in RECOMPUTED_FOMS:
        empty = tuple(
            Stratum(name, np.empty(0), read & m)
            for name, m in (("diseased", diseased), ("non-diseased", ~diseased))
        )
        _check_counts(data, empty, min_per_stratum)
        if fom in RECOMPUTED_FOMS:
            return _recomputed(data, fom, partial, empty)
        theta, strata = _auc_strata(data)
    else:
        calls = decisions(data, threshold).reshape(n_units, data.n_cases)
        if fom == "sensitivity":
            mask, correct, name = read & diseased, calls == 1, "diseased"
        elif fom == "specificity":
            mask, correct, name = read & ~diseased, calls == 0, "non-diseased"
        else:
            mask, correct, name = read, calls == diseased, "read"
        values = np.where(mask, correct.astype(float), np.nan)
        strata = (Stratum(name, values, mask),)
        _check_counts(data, strata, min_per_stratum)
        theta = np.nanmean(values, axis=1)
    return FomEstimates(
        fom,
        theta,
        strata,
        data.n_treatments,
        data.n_readers,
        threshold if fom in BINARY_FOMS else None,
    )
