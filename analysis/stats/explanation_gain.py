"""Accuracy gain of each explainer arm over unaided reading, per arm and per case.

Unaided reading is either another arm (``unaided="A"``: e.g. the arm without AI) or, with
``unaided=None``, the first-stage answers of the same reads in two-stage reading (gain = final
minus first accuracy on the reads that have both).

``difference``: pooled accuracy of the arm minus pooled accuracy unaided, each over all main
reads with known truth and call (every reader's reads together).

Intervals (both reported):

* ``bootstrap``: percentile interval from resampling cases with replacement (seeded), keeping
  every read of a drawn case in both arms, so the correlation of arms through shared cases is
  kept; readers are held fixed. This is the primary interval.
* ``newcombe``: Newcombe (1998) hybrid score interval (his method 10) from the two Wilson
  intervals, ``d - sqrt((p1 - l1)^2 + (u2 - p2)^2)``, ``d + sqrt((u1 - p1)^2 + (p2 - l2)^2)``;
  it treats the two sets of reads as independent binomial samples (no pairing, no clustering),
  so it is a reference point only.

Per-case gain: for each case read in both conditions, accuracy across the readers who read it
in the arm minus accuracy across those who read it unaided. Its Spearman rank correlation with a
per-case explanation metric of that arm (``metrics[arm][case]``) uses ``scipy.stats.spearmanr``
(p-value from the t approximation with n - 2 df); fewer than 3 cases or a constant variable give
``rho`` None with a reason.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from analysis.stats.data import label_key
from analysis.stats.intervals import percentile_interval
from analysis.stats.proportions import Proportion, wilson, z_value
from analysis.stats.reads import Read, arms_of, is_correct, main_reads

FIRST_STAGE = "first stage"


@dataclass(frozen=True)
class CaseGain:
    case: str
    n_arm: int
    correct_arm: int
    n_unaided: int
    correct_unaided: int
    accuracy_arm: float
    accuracy_unaided: float
    gain: float


@dataclass(frozen=True)
class Correlation:
    method: str
    rho: float | None
    p_value: float | None
    n: int
    reason: str | None = None


@dataclass(frozen=True)
class ArmGain:
    arm: str
    unaided: str  # the unaided arm's code, or "first stage"
    accuracy_arm: Proportion
    accuracy_unaided: Proportion
    difference: float | None
    bootstrap_ci_low: float | None
    bootstrap_ci_high: float | None
    newcombe_ci_low: float | None
    newcombe_ci_high: float | None
    n_cases: int  # cases resampled by the bootstrap (read in the arm or unaided)
    per_case: tuple[CaseGain, ...]
    correlation: Correlation | None  # None when no metric was given for the arm
    reason: str | None = None


@dataclass(frozen=True)
class ExplanationGainResult:
    unaided: str
    conf_level: float
    n_bootstrap: int
    seed: int | None
    method: str
    arms: tuple[ArmGain, ...]


def newcombe_difference(
    x1: int, n1: int, x2: int, n2: int, conf_level: float = 0.95
) -> tuple[float | None, float | None]:
    """Newcombe (1998) hybrid score interval for p1 - p2 (None when a sample is empty)."""
    a, b = wilson(x1, n1, conf_level), wilson(x2, n2, conf_level)
    if a.estimate is None or b.estimate is None:
        return None, None
    d = a.estimate - b.estimate
    low = d - math.sqrt((a.estimate - a.ci_low) ** 2 + (b.ci_high - b.estimate) ** 2)
    high = d + math.sqrt((a.ci_high - a.estimate) ** 2 + (b.estimate - b.ci_low) ** 2)
    return low, high


def spearman(values: Mapping[str, float], gains: Iterable[CaseGain]) -> Correlation:
    """Spearman correlation of a per-case metric with the per-case gain over shared cases."""
    pairs = [
        (float(values[g.case]), g.gain)
        for g in gains
        if g.case in values and values[g.case] is not None and math.isfinite(float(values[g.case]))
    ]
    n = len(pairs)
    if n < 3:
        return Correlation(
            "spearman",
            None,
            None,
            n,
            reason=f"{n} cases with both a metric and a gain; need at least 3",
        )
    x, y = np.array(pairs).T
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        which = "metric" if np.ptp(x) == 0 else "gain"
        return Correlation(
            "spearman",
            None,
            None,
            n,
            reason=f"the per-case {which} is constant: no rank correlation",
        )
    res = stats.spearmanr(x, y)
    return Correlation("spearman", float(res.statistic), float(res.pvalue), n)


def _tallies(reads: Sequence[Read], arm: str, unaided: str | None):
    """Per case: [correct, total] in the arm and unaided."""
    arm_t: dict[str, list[int]] = {}
    un_t: dict[str, list[int]] = {}
    for r in reads:
        if unaided is None:
            if r.arm != arm:
                continue
            final, first = is_correct(r, "final"), is_correct(r, "first")
            if final is None or first is None:
                continue
            pairs = ((arm_t, final), (un_t, first))
        else:
            ok = is_correct(r, "final")
            if ok is None or r.arm not in (arm, unaided):
                continue
            pairs = ((arm_t if r.arm == arm else un_t, ok),)
        for table, ok in pairs:
            cell = table.setdefault(r.case, [0, 0])
            cell[0] += int(ok)
            cell[1] += 1
    return arm_t, un_t


def case_gains(reads: Sequence[Read], arm: str, unaided: str | None) -> tuple[CaseGain, ...]:
    """Per-case accuracy in ``arm`` minus unaided, for cases read in both."""
    arm_t, un_t = _tallies(main_reads(reads), arm, unaided)
    out = []
    for case in sorted(set(arm_t) & set(un_t), key=label_key):
        (ca, na), (cu, nu) = arm_t[case], un_t[case]
        out.append(CaseGain(case, na, ca, nu, cu, ca / na, cu / nu, ca / na - cu / nu))
    return tuple(out)


def _arm_gain(reads, arm, unaided, metric, conf_level, n_bootstrap, rng) -> ArmGain:
    arm_t, un_t = _tallies(reads, arm, unaided)
    cases = sorted(set(arm_t) | set(un_t), key=label_key)
    table = np.array(
        [arm_t.get(c, [0, 0]) + un_t.get(c, [0, 0]) for c in cases], dtype=float
    ).reshape(-1, 4)
    xa, na, xu, nu = (int(v) for v in table.sum(axis=0))
    acc_arm, acc_un = wilson(xa, na, conf_level), wilson(xu, nu, conf_level)
    label = unaided if unaided is not None else FIRST_STAGE
    gains = case_gains(reads, arm, unaided)
    correlation = spearman(metric, gains) if metric is not None else None
    if acc_arm.estimate is None or acc_un.estimate is None:
        missing = arm if acc_arm.estimate is None else label
        return ArmGain(
            arm,
            label,
            acc_arm,
            acc_un,
            None,
            None,
            None,
            None,
            None,
            len(cases),
            gains,
            correlation,
            reason=f"no scored reads in {missing}",
        )
    difference = acc_arm.estimate - acc_un.estimate
    nc_low, nc_high = newcombe_difference(xa, na, xu, nu, conf_level)
    low = high = None
    reason = None
    if n_bootstrap > 0 and len(cases) >= 2:
        weights = rng.multinomial(
            len(cases), np.full(len(cases), 1 / len(cases)), size=n_bootstrap
        ).astype(float)
        sums = weights @ table
        with np.errstate(divide="ignore", invalid="ignore"):
            boot = sums[:, 0] / sums[:, 1] - sums[:, 2] / sums[:, 3]
        low, high, left_out = percentile_interval(boot, conf_level)
        if left_out:
            reason = (
                f"{left_out} bootstrap samples lacked reads in one "
                "condition and were left out of the interval"
            )
    elif n_bootstrap > 0:
        reason = "one case: no bootstrap interval"
    return ArmGain(
        arm,
        label,
        acc_arm,
        acc_un,
        difference,
        low,
        high,
        nc_low,
        nc_high,
        len(cases),
        gains,
        correlation,
        reason=reason,
    )


def explanation_gain(
    reads: Sequence[Read],
    unaided: str | None,
    *,
    metrics: Mapping[str, Mapping[str, float]] | None = None,
    conf_level: float = 0.95,
    n_bootstrap: int = 2000,
    seed: int | None = 0,
) -> ExplanationGainResult:
    """Accuracy gain of every explainer arm over ``unaided`` (see the module docstring).

    ``unaided``: the unaided arm's code (every other arm is an explainer arm) or None for the
    first stage of two-stage reading (every arm with first-stage answers). ``metrics``: arm ->
    case -> explanation metric, correlated with the per-case gain of that arm.
    """
    z_value(conf_level)
    main = main_reads(reads)
    if unaided is None:
        arms = arms_of(r for r in main if r.first_positive is not None)
    else:
        arms = tuple(a for a in arms_of(main) if a != unaided)
    # one generator per arm from the same seed: an arm's interval does not depend on which
    # other arms are in the study
    results = tuple(
        _arm_gain(
            main,
            arm,
            unaided,
            metrics.get(arm) if metrics is not None else None,
            conf_level,
            n_bootstrap,
            np.random.default_rng(seed),
        )
        for arm in arms
    )
    return ExplanationGainResult(
        unaided=unaided if unaided is not None else FIRST_STAGE,
        conf_level=conf_level,
        n_bootstrap=n_bootstrap,
        seed=seed,
        method="case bootstrap (percentile) and Newcombe hybrid score intervals; Spearman rho",
        arms=results,
    )


def by_experience(reads: Iterable[Read], threshold_years: float) -> tuple[list[Read], list[Read]]:
    """Split reads into (experience < threshold, experience >= threshold).

    Reads whose ``reader_experience`` is unknown are in neither list.
    """
    below: list[Read] = []
    above: list[Read] = []
    for r in reads:
        if r.reader_experience is None or not math.isfinite(r.reader_experience):
            continue
        (below if r.reader_experience < threshold_years else above).append(r)
    return below, above
