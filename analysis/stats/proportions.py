"""Sensitivity, specificity and accuracy per arm with Wilson score intervals.

Wilson (1927) score interval for a binomial proportion x/n with z the two-sided critical value:

    centre = (p + z^2 / (2n)) / (1 + z^2 / n)
    half   = z / (1 + z^2 / n) * sqrt(p (1 - p) / n + z^2 / (4 n^2))

(identical to ``statsmodels.stats.proportion.proportion_confint(method="wilson")``).

The pooled interval treats every read as independent; reads of one reader or of one case are
correlated, so it is descriptive. Inference between arms that accounts for reader and case
variability is the Obuchowski-Rockette analysis (``reads.to_mrmc_data`` + ``mrmc.or_analysis``
with fom sensitivity, specificity or accuracy).

Denominators: sensitivity over reads of positive cases, specificity over reads of negative
cases, accuracy over all reads; a read counts only when its truth and its call at the chosen
stage are known. An empty denominator gives a ``Proportion`` whose estimate and limits are None.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

from analysis.stats.data import label_key
from analysis.stats.reads import Read, arms_of, diagnosis, main_reads


@dataclass(frozen=True)
class Proportion:
    """``successes`` of ``total`` with a Wilson score interval (None when total is 0)."""

    successes: int
    total: int
    estimate: float | None
    ci_low: float | None
    ci_high: float | None


def z_value(conf_level: float) -> float:
    if not 0 < conf_level < 1:
        raise ValueError(f"confidence level must be between 0 and 1, not {conf_level}")
    return float(stats.norm.ppf(0.5 + conf_level / 2))


def wilson(successes: int, total: int, conf_level: float = 0.95) -> Proportion:
    """The proportion successes/total with its Wilson score interval."""
    if successes < 0 or total < 0 or successes > total:
        raise ValueError(f"need 0 <= successes <= total, got {successes}/{total}")
    if total == 0:
        return Proportion(0, 0, None, None, None)
    z = z_value(conf_level)
    p = successes / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    return Proportion(
        int(successes), int(total), p, max(0.0, centre - half), min(1.0, centre + half)
    )


@dataclass(frozen=True)
class DiagnosticProportions:
    """Sensitivity, specificity and accuracy of one arm, pooled (reader None) or per reader."""

    arm: str
    reader: str | None
    sensitivity: Proportion
    specificity: Proportion
    accuracy: Proportion


@dataclass(frozen=True)
class ProportionsResult:
    stage: str  # "final" or "first"
    conf_level: float
    method: str
    arms: tuple[DiagnosticProportions, ...]  # pooled over readers, one per arm
    per_reader: tuple[DiagnosticProportions, ...]  # one per (arm, reader) with reads
    n_reads: int  # main reads with known truth and call
    n_excluded: int  # main reads left out (unknown truth or no call at this stage)


def _counts(
    reads: Sequence[tuple[bool, bool]], arm: str, reader: str | None, conf_level: float
) -> DiagnosticProportions:
    tp = sum(1 for truth, call in reads if truth and call)
    tn = sum(1 for truth, call in reads if not truth and not call)
    pos = sum(1 for truth, _ in reads if truth)
    neg = len(reads) - pos
    return DiagnosticProportions(
        arm=arm,
        reader=reader,
        sensitivity=wilson(tp, pos, conf_level),
        specificity=wilson(tn, neg, conf_level),
        accuracy=wilson(tp + tn, len(reads), conf_level),
    )


def diagnostic_proportions(
    reads: Sequence[Read], *, stage: str = "final", conf_level: float = 0.95
) -> ProportionsResult:
    """Sensitivity, specificity and accuracy per arm (pooled and per reader) of main reads.

    ``stage`` "final" uses ``final_positive``; "first" the unaided ``first_positive`` of
    two-stage reading.
    """
    z_value(conf_level)
    main = main_reads(reads)
    usable = [r for r in main if r.truth is not None and diagnosis(r, stage) is not None]
    pairs = {}
    for r in usable:
        pairs.setdefault((r.arm, r.reader), []).append((bool(r.truth), bool(diagnosis(r, stage))))
    arms = arms_of(main)
    pooled = tuple(
        _counts([p for (a, _), ps in pairs.items() if a == arm for p in ps], arm, None, conf_level)
        for arm in arms
    )
    per_reader = tuple(
        _counts(pairs[key], key[0], key[1], conf_level)
        for key in sorted(pairs, key=lambda k: (label_key(k[0]), label_key(k[1])))
    )
    return ProportionsResult(
        stage=stage,
        conf_level=conf_level,
        method="Wilson score interval",
        arms=pooled,
        per_reader=per_reader,
        n_reads=len(usable),
        n_excluded=len(main) - len(usable),
    )
