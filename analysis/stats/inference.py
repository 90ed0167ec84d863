"""Result types and small distribution helpers shared by the OR and DBM analyses.

Degrees of freedom of ``inf`` mean a normal (z) or chi-square reference distribution; they are
written as ``None`` in dictionaries so the JSON stays valid.

Distribution functions come from ``scipy.special`` (the functions ``scipy.stats`` calls for
these distributions, so the values are the same bit for bit): importing ``scipy.stats`` costs
about half a second of every ``manage.py mrmc`` run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import numpy as np
from scipy import special

_WHOLE_NUMBER = re.compile(r"([+-]?\d+)\.0+")


def id_text(label: str) -> str:
    """A reader, treatment or case id as text output shows it: ``"1.0"`` -> ``"1"``.

    Files often store integer ids as floats (mrmcaov's CSVs: ``1.0``). Ids stay text in the data
    (so ``"1.10"`` and ``"1.1"`` remain different); only whole numbers written with a zero
    fraction lose it here. Other labels are returned unchanged.
    """
    match = _WHOLE_NUMBER.fullmatch(label)
    return match.group(1) if match else label


def display_ids(labels: Sequence[str]) -> dict[str, str]:
    """``id_text`` of each label, unless two labels would then print alike ("1" and "1.0")."""
    shown = {label: id_text(label) for label in labels}
    if len(set(shown.values())) < len(shown):
        return {label: label for label in labels}
    return shown


def holm(p_values: list[float] | np.ndarray) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values for one family of tests."""
    p = np.asarray(p_values, dtype=float)
    if p.size == 0:
        return p
    order = np.argsort(p, kind="stable")
    m = p.size
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def f_sf(value: float, df1: float, df2: float) -> float:
    """P(F > value); df2 = inf gives the chi-square limit."""
    if not math.isfinite(value):
        return 0.0 if value > 0 else math.nan
    if math.isinf(df2):
        return float(special.chdtrc(df1, value * df1))  # chi2.sf
    return float(special.fdtrc(df1, df2, value))  # f.sf


def two_sided_p(statistic: float, df: float) -> float:
    """Two-sided p-value of a t (or, for df = inf, z) statistic."""
    if math.isnan(statistic):
        return math.nan
    if math.isinf(df):
        return float(2 * special.ndtr(-abs(statistic)))  # 2 * norm.sf
    return float(2 * special.stdtr(df, -abs(statistic)))  # 2 * t.sf


def critical_value(conf_level: float, df: float) -> float:
    """Two-sided critical value of t (or z for df = inf)."""
    q = 0.5 + conf_level / 2
    return float(special.ndtri(q) if math.isinf(df) else special.stdtrit(df, q))  # norm/t.ppf


def satterthwaite_ddf(numerator: float, ms: float, ms_df: float) -> float:
    """Hillis-style ddf = numerator^2 / (ms^2 / ms_df); inf when ms is 0."""
    if ms == 0:
        return math.inf
    return numerator**2 / (ms**2 / ms_df)


def _json_number(value):
    if isinstance(value, float | np.floating):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def as_dict(obj) -> dict:
    """Dataclass to a JSON-ready dict (non-finite floats become None, arrays become lists)."""
    out = {}
    for f in fields(obj):
        out[f.name] = to_jsonable(getattr(obj, f.name))
    return out


def to_jsonable(value):
    if hasattr(value, "__dataclass_fields__"):
        return as_dict(value)
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    return _json_number(value)


@dataclass(frozen=True)
class GlobalTest:
    """Test of equal figures of merit across all arms."""

    statistic_name: str  # "F" or "X2"
    statistic: float
    df1: float
    df2: float  # inf for a chi-square test
    p_value: float
    error_term: float  # the denominator (a linear combination of mean squares)
    error_term_formula: str
    clamped: bool = False  # whether max(., 0) in the error term replaced a negative value


@dataclass(frozen=True)
class Comparison:
    """Difference ``minuend - subtrahend`` between two arms."""

    minuend: str
    subtrahend: str
    label: str
    estimate: float
    se: float
    df: float
    statistic_name: str  # "t" or "z"
    statistic: float
    p_value: float
    ci_low: float
    ci_high: float
    p_holm: float | None = None
    reader: str | None = None


@dataclass(frozen=True)
class ArmEstimate:
    """Single-arm figure of merit with its confidence interval."""

    treatment: str
    estimate: float
    se: float
    df: float
    ci_low: float
    ci_high: float
    terms: dict = field(default_factory=dict)  # the quantities the SE was built from


@dataclass(frozen=True)
class Analysis:
    """One generalisation (rrrc, frrc or rrfc) of an OR or DBM analysis."""

    name: str
    title: str
    global_test: GlobalTest | None
    comparisons: tuple[Comparison, ...]
    arms: tuple[ArmEstimate, ...]
    reader_comparisons: tuple[Comparison, ...] = ()
    notes: tuple[str, ...] = ()


ANALYSES = ("rrrc", "frrc", "rrfc")
TITLES = {
    "rrrc": "random readers, random cases",
    "frrc": "fixed readers, random cases",
    "rrfc": "random readers, fixed cases",
}


def comparison(
    minuend: str,
    subtrahend: str,
    estimate: float,
    se: float,
    df: float,
    conf_level: float,
    reader: str | None = None,
) -> Comparison:
    """A difference with its t (or z when df is inf) test and CI."""
    statistic = (
        estimate / se
        if se > 0
        else (math.nan if estimate == 0 else math.copysign(math.inf, estimate))
    )
    half = critical_value(conf_level, df) * se
    return Comparison(
        minuend=minuend,
        subtrahend=subtrahend,
        label=f"treatment {id_text(minuend)} - treatment {id_text(subtrahend)}",
        estimate=estimate,
        se=se,
        df=df,
        statistic_name="z" if math.isinf(df) else "t",
        statistic=statistic,
        p_value=two_sided_p(statistic, df) if se > 0 else (1.0 if estimate == 0 else 0.0),
        ci_low=estimate - half,
        ci_high=estimate + half,
        reader=reader,
    )


def with_holm(comparisons: list[Comparison]) -> tuple[Comparison, ...]:
    """Attach Holm-adjusted p-values across the given family of comparisons."""
    adjusted = holm([c.p_value for c in comparisons])
    return tuple(
        Comparison(**{**{f.name: getattr(c, f.name) for f in fields(c)}, "p_holm": float(a)})
        for c, a in zip(comparisons, adjusted, strict=True)
    )


def arm_estimate(
    treatment: str, estimate: float, se: float, df: float, conf_level: float, **terms: float
) -> ArmEstimate:
    half = critical_value(conf_level, df) * se
    return ArmEstimate(treatment, estimate, se, df, estimate - half, estimate + half, terms)


def pairs(n: int) -> list[tuple[int, int]]:
    """All (i, j) with i < j: differences are reported as arm i minus arm j."""
    return [(i, j) for i in range(n) for j in range(i + 1, n)]
