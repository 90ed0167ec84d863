"""Confidence intervals that stay inside the range of the parameter.

A figure of merit that is a probability (AUC, accuracy, sensitivity, ...) lies in [0, 1]; a
Wald interval ``estimate -/+ t se`` can cross 0 or 1 near the bound (an AUC of 0.97 with SE 0.02
gives an upper limit of 1.02). ``logit_interval`` builds the interval on the logit scale and
transforms it back (the delta method gives ``se_logit = se / (p (1 - p))``):

    expit(logit(p) -/+ t_{df, 1 - alpha/2} se / (p (1 - p)))

which lies strictly inside (0, 1) and keeps the degrees of freedom of the untransformed
interval (``df`` infinite: the normal quantile). Where the logit is undefined (an estimate of
exactly 0 or 1 with a positive SE) the Wald interval is clipped to [0, 1] and ``method`` says
so; an SE of 0 gives the zero-width interval at the estimate (``method`` "zero-width").

``percentile_interval`` is the percentile bootstrap interval every resampling analysis here
uses (kappa, explanation gain): the alpha/2 and 1 - alpha/2 quantiles of the finite replicates
(numpy's default linear interpolation), the undefined ones left out and counted.

``clipped_interval`` clips any interval to a parameter range (e.g. [-1, 1] for a difference of
two probabilities) and says whether it had to. The Obuchowski-Rockette difference intervals are
left as the reference software computes them; the report only clips them for display, and says
so, in the (practically impossible) case that they leave [-1, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

LOGIT = "logit"  # logit transform with delta-method SE
ZERO_WIDTH = "zero-width"  # SE 0: the interval is the estimate
CLIPPED = "clipped"  # the Wald interval clipped to the range
WALD = "wald"  # the Wald interval, inside the range as it is

METHOD_WORDS = {
    LOGIT: "logit transform (delta-method SE), back-transformed",
    ZERO_WIDTH: "standard error 0: zero-width interval",
    CLIPPED: "Wald interval clipped to the parameter range",
    WALD: "Wald interval",
}


@dataclass(frozen=True)
class BoundedInterval:
    """An interval inside [lower, upper] with how it was obtained and the untransformed one."""

    estimate: float
    se: float
    df: float
    ci_low: float
    ci_high: float
    method: str  # LOGIT | ZERO_WIDTH | CLIPPED | WALD
    wald_low: float
    wald_high: float

    @property
    def wald_outside(self) -> bool:
        """Whether the untransformed (Wald) interval leaves [0, 1]."""
        return self.wald_low < 0.0 or self.wald_high > 1.0


def critical_value(conf_level: float, df: float | None = None) -> float:
    """Two-sided critical value: Student's t with ``df`` (None or infinite: the normal)."""
    if not 0 < conf_level < 1:
        raise ValueError(f"confidence level must be between 0 and 1, not {conf_level}")
    q = 0.5 + conf_level / 2
    if df is None or math.isinf(df):
        return float(stats.norm.ppf(q))
    if not df > 0:
        raise ValueError(f"degrees of freedom must be positive, not {df}")
    return float(stats.t.ppf(q, df))


def logit_interval(
    estimate: float, se: float, *, df: float | None = None, conf_level: float = 0.95
) -> BoundedInterval:
    """Interval of a probability ``estimate`` with standard error ``se`` inside [0, 1]."""
    if not 0.0 <= estimate <= 1.0:
        raise ValueError(f"a probability must lie in [0, 1], not {estimate}")
    if not (se >= 0 and math.isfinite(se)):
        raise ValueError(f"the standard error must be finite and >= 0, not {se}")
    dof = math.inf if df is None else float(df)
    if se == 0:
        return BoundedInterval(
            estimate, se, dof, estimate, estimate, ZERO_WIDTH, estimate, estimate
        )
    t = critical_value(conf_level, None if math.isinf(dof) else dof)
    wald_low, wald_high = estimate - t * se, estimate + t * se
    if estimate in (0.0, 1.0):
        return BoundedInterval(
            estimate, se, dof, max(wald_low, 0.0), min(wald_high, 1.0), CLIPPED, wald_low, wald_high
        )
    centre = math.log(estimate / (1 - estimate))
    half = t * se / (estimate * (1 - estimate))
    low, high = _expit(centre - half), _expit(centre + half)
    return BoundedInterval(estimate, se, dof, low, high, LOGIT, wald_low, wald_high)


def percentile_interval(replicates, conf_level: float) -> tuple[float | None, float | None, int]:
    """Percentile bootstrap interval of the finite ``replicates``: (low, high, number left
    out as undefined); (None, None, all) when none is finite."""
    values = np.asarray(replicates, dtype=float).ravel()
    finite = values[np.isfinite(values)]
    left_out = int(values.size - finite.size)
    if finite.size == 0:
        return None, None, left_out
    alpha = (1 - conf_level) / 2
    low, high = (float(v) for v in np.quantile(finite, [alpha, 1 - alpha]))
    return low, high, left_out


def clipped_interval(
    low: float, high: float, lower: float, upper: float
) -> tuple[float, float, bool]:
    """(low, high) clipped to [lower, upper] and whether anything was clipped."""
    new_low, new_high = max(low, lower), min(high, upper)
    return new_low, new_high, (new_low, new_high) != (low, high)


def _expit(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)
