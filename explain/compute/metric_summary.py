"""Summaries of a metric over cases (pure numpy): what the model page and the metrics API show."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np


def summarize(values: Iterable[float | bool | None]) -> dict:
    """``{"n", "mean", "sd", "median", "min", "max"}`` over the values that are not None/NaN.

    Booleans count as 0/1 (so the pointing-game mean is the hit rate). ``sd`` is the sample
    standard deviation (ddof=1). Undefined statistics are ``None`` rather than NaN so the
    result stays valid JSON: all of them when nothing is left, ``sd`` when only one value is.
    """
    kept = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    n = len(kept)
    if n == 0:
        return {"n": 0, "mean": None, "sd": None, "median": None, "min": None, "max": None}
    array = np.asarray(kept, dtype=np.float64)
    return {
        "n": n,
        "mean": float(array.mean()),
        "sd": float(array.std(ddof=1)) if n > 1 else None,
        "median": float(np.median(array)),
        "min": float(array.min()),
        "max": float(array.max()),
    }
