"""Empirical partial AUC over a specificity or a sensitivity range, with McClish's standardisation.

The empirical ROC curve joins the operating points (FPR, TPR) of every threshold "positive if
score >= t" (t over the distinct scores, higher = more suspicious) by straight lines, from (0, 0)
to (1, 1); tied scores give a diagonal step, so the full area is the Mann-Whitney AUC with ties
counting one half. A partial area is the integral of that piecewise-linear curve over a range,
the curve interpolated linearly at the range ends -- as pROC's ``auc(roc, partial.auc = ...)``:

- focus "specificity": the range is of specificity (1 - FPR), and the area is the integral of
  TPR over it (pROC's default ``partial.auc.focus``);
- focus "sensitivity": the range is of sensitivity (TPR), and the area is the integral of
  specificity over it (the area under the curve in that horizontal strip).

Over the whole range [0, 1] either focus gives the AUC. McClish (1989) standardisation
(pROC's ``partial.auc.correct = TRUE``): ``(1 + (area - min) / (max - min)) / 2`` with ``max`` the
range width and ``min`` the area of the chance diagonal over the range, so 0.5 is chance and 1 is
perfect. It is defined only for curves not below the diagonal there: below it (area < min) the
standardised value is NaN, as pROC returns NA.

MRMCaov's ``empirical_auc(..., partial = ...)`` computes the same area except where a range end
falls exactly on a vertical step of the curve (several operating points with the same x): it
takes the *highest* TPR there on the specificity axis and the *lowest* specificity on the
sensitivity axis (R's ``approx(..., ties = max)`` on FPR), joins that end to the nearest
operating point strictly inside the range, and so can cut a corner of the curve. With the range
(0.7, 1) of sensitivity, for example, the end at sensitivity 1 is taken at specificity 0, so the
last stretch of the curve is replaced by a straight line to (1, 0). ``mrmcaov_partial_area``
reproduces that number, which the MRMC analysis reports by default (users re-run MRMCaov);
``partial_auc`` is the geometric area (pROC's), used for single curves and on request.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FOCUSES = ("specificity", "sensitivity")


@dataclass(frozen=True)
class PartialAUC:
    """A partial area and its McClish standardisation over ``bounds`` on the ``focus`` axis."""

    area: float
    standardized: float  # NaN where the curve is below the chance line over the range
    focus: str
    bounds: tuple[float, float]  # (low, high) specificity or sensitivity
    min_area: float  # the chance diagonal's area over the range
    max_area: float  # the range width


def roc_points(negatives: np.ndarray, positives: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Empirical operating points ``(fpr, tpr)``, ascending from (0, 0) to (1, 1)."""
    negatives = np.asarray(negatives, dtype=float).ravel()
    positives = np.asarray(positives, dtype=float).ravel()
    if negatives.size == 0 or positives.size == 0:
        raise ValueError("the ROC curve needs at least one diseased and one non-diseased score")
    thresholds = np.unique(np.concatenate([negatives, positives]))[::-1]
    neg_sorted, pos_sorted = np.sort(negatives), np.sort(positives)
    # number of scores >= t: size minus the count strictly below t
    fpr = (negatives.size - np.searchsorted(neg_sorted, thresholds, side="left")) / negatives.size
    tpr = (positives.size - np.searchsorted(pos_sorted, thresholds, side="left")) / positives.size
    return np.concatenate([[0.0], fpr]), np.concatenate([[0.0], tpr])


def area_between(x: np.ndarray, y: np.ndarray, low: float, high: float) -> float:
    """Integral over [low, high] of the polyline through (x, y), x non-decreasing.

    Each segment is clipped to the range and its ends interpolated linearly; vertical segments
    (repeated x) have no width and add nothing.
    """
    x0, x1, y0, y1 = x[:-1], x[1:], y[:-1], y[1:]
    run = x1 - x0
    left, right = np.clip(x0, low, high), np.clip(x1, low, high)
    width = right - left
    inside = (run > 0) & (width > 0)
    slope = np.divide(y1 - y0, run, out=np.zeros_like(run), where=run > 0)
    y_left = y0 + slope * (left - x0)
    y_right = y0 + slope * (right - x0)
    return float(np.sum(np.where(inside, width * (y_left + y_right) / 2, 0.0)))


def chance_area(low: float, high: float) -> float:
    """Area of the chance diagonal over a specificity (or sensitivity) range [low, high].

    On the specificity axis the chance TPR is 1 - specificity, on the sensitivity axis the chance
    specificity is 1 - sensitivity: both integrate to (high - low) - (high^2 - low^2) / 2.
    """
    return (high - low) - (high * high - low * low) / 2


def mcclish(area: float, low: float, high: float) -> float:
    """McClish's standardised partial area; NaN for curves below the chance line (pROC's NA)."""
    min_area, max_area = chance_area(low, high), high - low
    if area < min_area:
        return float("nan")
    return (1 + (area - min_area) / (max_area - min_area)) / 2


def _check_bounds(bounds: tuple[float, float]) -> tuple[float, float]:
    if len(bounds) != 2:
        raise ValueError("the partial-AUC range needs exactly two bounds")
    values = [float(v) for v in bounds]
    if any(np.isnan(values)):
        raise ValueError("the partial-AUC bounds must not be NaN")
    low, high = sorted(values)
    if not (low >= 0.0 and high <= 1.0):
        raise ValueError(f"partial-AUC bounds must lie within [0, 1], got {bounds}")
    if low == high:
        raise ValueError("the partial-AUC bounds must be different")
    return low, high


def partial_auc(
    negatives: np.ndarray,
    positives: np.ndarray,
    bounds: tuple[float, float],
    focus: str = "specificity",
) -> PartialAUC:
    """Partial AUC over a specificity or sensitivity range (bounds in either order).

    ``partial_auc(neg, pos, (0.9, 1.0))`` is pROC's ``auc(roc, partial.auc = c(1, 0.9))``
    (specificity 0.9 to 1, i.e. FPR 0 to 0.1); ``focus="sensitivity"`` is
    ``partial.auc.focus = "sensitivity"``. ``.standardized`` is ``partial.auc.correct = TRUE``.
    """
    if focus not in FOCUSES:
        raise ValueError(f"focus must be one of {FOCUSES}, got {focus!r}")
    low, high = _check_bounds(bounds)
    fpr, tpr = roc_points(negatives, positives)
    if focus == "specificity":
        # integrate TPR over FPR in [1 - high, 1 - low]
        area = area_between(fpr, tpr, 1.0 - high, 1.0 - low)
    else:
        # integrate specificity over TPR in [low, high]; the points ascend in TPR too
        area = area_between(tpr, 1.0 - fpr, low, high)
    return PartialAUC(
        area=area,
        standardized=mcclish(area, low, high),
        focus=focus,
        bounds=(low, high),
        min_area=chance_area(low, high),
        max_area=high - low,
    )


def mrmcaov_partial_area(
    negatives: np.ndarray,
    positives: np.ndarray,
    bounds: tuple[float, float],
    focus: str = "specificity",
) -> float:
    """The partial area as MRMCaov 0.3.0 computes it (see the module docstring)."""
    if focus not in FOCUSES:
        raise ValueError(f"focus must be one of {FOCUSES}, got {focus!r}")
    low, high = _check_bounds(bounds)
    fpr, tpr = roc_points(negatives, positives)
    if focus == "specificity":
        x, y, x_low, x_high = fpr, tpr, 1.0 - high, 1.0 - low
        ends = _interpolate_ties_max(fpr, tpr, np.array([x_low, x_high]))
    else:
        x, y, x_low, x_high = tpr, 1.0 - fpr, low, high
        ends = 1.0 - _interpolate_ties_max(tpr, fpr, np.array([x_low, x_high]))
    inside = (x > x_low) & (x < x_high)
    xs = np.concatenate([[x_low], x[inside], [x_high]])
    ys = np.concatenate([[ends[0]], y[inside], [ends[1]]])
    return float(np.sum(np.diff(xs) * (ys[:-1] + ys[1:]) / 2))


def _interpolate_ties_max(x: np.ndarray, y: np.ndarray, at: np.ndarray) -> np.ndarray:
    """R's ``approx(x, y, at, ties = max)``: tied x collapse to their largest y, then linear."""
    unique, inverse = np.unique(x, return_inverse=True)
    top = np.full(unique.size, -np.inf)
    np.maximum.at(top, inverse, y)
    return np.interp(at, unique, top)


def partial_auc_fpr(
    negatives: np.ndarray, positives: np.ndarray, fpr_range: tuple[float, float]
) -> PartialAUC:
    """Partial AUC over a false-positive-rate range: the specificity range (1 - fpr2, 1 - fpr1)."""
    low, high = _check_bounds(fpr_range)
    return partial_auc(negatives, positives, (1.0 - high, 1.0 - low), focus="specificity")
