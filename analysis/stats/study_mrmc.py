"""The Obuchowski-Rockette sections (``mrmc_auc``, ``mrmc_accuracy``) and the pooled ROC points
(``roc``) of the study analysis; see study.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from analysis.stats.data import MRMCInputError, label_key
from analysis.stats.fom import BINARY_FOMS
from analysis.stats.inference import Comparison, to_jsonable
from analysis.stats.intervals import BoundedInterval, logit_interval
from analysis.stats.mrmc import ORResult, or_analysis
from analysis.stats.reads import Read, arms_of, main_reads, to_mrmc_data
from analysis.stats.roc import auc_from_ratings
from analysis.stats.study_base import DATA_ERRORS, Section, StudyMeta


@dataclass(frozen=True)
class ComparisonGroups:
    """The pairwise differences of one OR analysis, grouped for the report.

    ``versus_unaided``: every comparison with the unaided arm, as arm minus unaided (the sign of
    the estimate, statistic and interval flipped where or_analysis gave unaided minus arm;
    p-values unchanged). ``between_explainers``: both arms show explanations. ``other``: the
    rest. Holm p-values are those of or_analysis, adjusted over all pairwise comparisons.
    """

    versus_unaided: tuple[Comparison, ...]
    between_explainers: tuple[Comparison, ...]
    other: tuple[Comparison, ...]


@dataclass(frozen=True)
class MRMCSection:
    fom: str
    design: str  # the read layout or_analysis saw (MRMCData.design)
    readers_left_out: tuple[str, ...]
    or_result: ORResult
    groups: dict[str, ComparisonGroups]  # analysis name (rrrc, frrc, rrfc) -> groups
    # analysis name -> arm -> the single-arm interval on the logit scale (inside [0, 1]); the
    # untransformed one, as the reference software prints it, stays in or_result
    arm_intervals: dict[str, dict[str, BoundedInterval]] = field(default_factory=dict)

    @property
    def primary(self) -> tuple[Comparison, ...]:
        """RRRC differences of each arm versus the unaided arm."""
        return self.groups["rrrc"].versus_unaided if "rrrc" in self.groups else ()

    def to_dict(self) -> dict:
        return {
            "fom": self.fom,
            "design": self.design,
            "readers_left_out": list(self.readers_left_out),
            "or_result": self.or_result.to_dict(),
            "groups": to_jsonable(self.groups),
            "arm_intervals": to_jsonable(self.arm_intervals),
        }


def flipped(c: Comparison) -> Comparison:
    """The same comparison as subtrahend minus minuend."""
    return replace(
        c,
        minuend=c.subtrahend,
        subtrahend=c.minuend,
        label=f"treatment {c.subtrahend} - treatment {c.minuend}",
        estimate=-c.estimate,
        statistic=-c.statistic,
        ci_low=-c.ci_high,
        ci_high=-c.ci_low,
    )


def group_comparisons(
    comparisons: Sequence[Comparison], unaided: str | None, explainers: Sequence[str]
) -> ComparisonGroups:
    versus, between, other = [], [], []
    for c in comparisons:
        if unaided is not None and unaided in (c.minuend, c.subtrahend):
            versus.append(flipped(c) if c.minuend == unaided else c)
        elif c.minuend in explainers and c.subtrahend in explainers:
            between.append(c)
        else:
            other.append(c)
    return ComparisonGroups(tuple(versus), tuple(between), tuple(other))


def _complete_readers(reads: Sequence[Read], rating: str, fom: str) -> list[str]:
    """Readers whose every arm has enough usable reads for ``fom`` (2 per class for an AUC)."""
    usable = [
        r
        for r in main_reads(reads)
        if r.truth is not None
        and getattr(r, rating) is not None
        and math.isfinite(float(getattr(r, rating)))
    ]
    arms = arms_of(usable)
    tally: dict[tuple[str, str], list[int]] = {}
    for r in usable:
        tally.setdefault((r.reader, r.arm), [0, 0])[int(bool(r.truth))] += 1
    readers = sorted({r.reader for r in usable}, key=label_key)

    def enough(counts: list[int] | None) -> bool:
        if counts is None:
            return False
        return min(counts) >= 2 if fom not in BINARY_FOMS else sum(counts) >= 2

    return [rd for rd in readers if all(enough(tally.get((rd, a))) for a in arms)]


def mrmc_section(reads: Sequence[Read], meta: StudyMeta, fom: str) -> Section:
    """The OR analysis of ``fom``: an AUC (AUC_FOMS) of the final confidence with the
    covariance method ``meta.cov_method``, or a binary one of the final diagnosis with the
    jackknife."""
    rating, what = (
        ("final_confidence", "the final confidence")
        if fom not in BINARY_FOMS
        else ("final_positive", "the final diagnosis")
    )
    cov = meta.cov_method if fom not in BINARY_FOMS else "jackknife"
    notes: list[str] = []
    left_out: tuple[str, ...] = ()

    def run(chosen: Sequence[Read]) -> ORResult:
        data = to_mrmc_data(chosen, rating=rating, diagnosis_from="final_positive")
        return or_analysis(
            data,
            fom,
            cov,
            conf_level=meta.conf_level,
            bootstrap_samples=meta.n_bootstrap,
            seed=meta.seed,
        )

    try:
        try:
            result = run(reads)
        except MRMCInputError as first_error:
            complete = _complete_readers(reads, rating, fom)
            everyone = {r.reader for r in main_reads(reads)}
            if not 2 <= len(complete) < len(everyone):
                raise
            left_out = tuple(sorted(everyone - set(complete), key=label_key))
            result = run([r for r in reads if r.reader in set(complete)])
            notes.append(
                f"readers {', '.join(left_out)} left out: " + "; ".join(first_error.problems[:5])
            )
    except MRMCInputError as exc:
        return Section(
            reason=f"the OR analysis of {what} cannot be computed: " + "; ".join(exc.problems[:5])
        )
    except DATA_ERRORS as exc:
        return Section(reason=f"the OR analysis of {what} failed: {exc}")
    explainers = meta.explainer_arms
    unaided = meta.unaided if meta.unaided in result.treatments else None
    if unaided is None:
        notes.append("no unaided arm among the analysed arms: no comparison versus unaided")
    if len(result.treatments) < 2:
        notes.append("one arm: single-arm estimates only, no comparison")
    groups = {
        name: group_comparisons(a.comparisons, unaided, explainers)
        for name, a in result.analyses.items()
    }
    if result.design != "crossed":
        notes.append(
            f"read layout: {result.design}; the case-sampling covariance of two "
            "reader-arm units uses the cases they share (0 when none)"
        )
    return Section(
        result=MRMCSection(
            fom,
            result.design,
            left_out,
            result,
            groups,
            bounded_arm_intervals(result, meta.conf_level),
        ),
        notes=tuple(notes),
    )


def bounded_arm_intervals(
    result: ORResult, conf_level: float
) -> dict[str, dict[str, BoundedInterval]]:
    """Per analysis and arm, the single-arm interval on the logit scale (intervals.py)."""
    out: dict[str, dict[str, BoundedInterval]] = {}
    for name, analysis in result.analyses.items():
        arms = {}
        for e in analysis.arms:
            if math.isfinite(e.se) and 0.0 <= e.estimate <= 1.0:
                arms[e.treatment] = logit_interval(e.estimate, e.se, df=e.df, conf_level=conf_level)
        out[name] = arms
    return out


# ----------------------------------------------------------------------------- ROC points


@dataclass(frozen=True)
class RocCurve:
    """Empirical ROC of one arm, every reader's reads pooled (descriptive)."""

    arm: str
    n_positive: int
    n_negative: int
    fpr: tuple[float, ...]
    tpr: tuple[float, ...]
    auc: float | None  # empirical AUC of the pooled reads (not the OR estimate)
    reason: str | None = None


def roc_points(ratings: Sequence[float], truth: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, tpr) at every distinct rating used as threshold (rating >= t is positive),
    from (0, 0) to (1, 1)."""
    ratings = np.asarray(ratings, dtype=float)
    truth = np.asarray(truth, dtype=bool)
    n1, n0 = int(truth.sum()), int((~truth).sum())
    thresholds = np.unique(ratings)[::-1]
    tpr = np.array([0.0] + [float((ratings[truth] >= t).sum()) / n1 for t in thresholds])
    fpr = np.array([0.0] + [float((ratings[~truth] >= t).sum()) / n0 for t in thresholds])
    return fpr, tpr


def roc_section(reads: Sequence[Read]) -> Section:
    main = main_reads(reads)
    curves = []
    for arm in arms_of(main):
        kept = [
            r
            for r in main
            if r.arm == arm
            and r.truth is not None
            and r.final_confidence is not None
            and math.isfinite(r.final_confidence)
        ]
        truth = [bool(r.truth) for r in kept]
        n1 = sum(truth)
        n0 = len(truth) - n1
        if n1 == 0 or n0 == 0:
            curves.append(
                RocCurve(
                    arm,
                    n1,
                    n0,
                    (),
                    (),
                    None,
                    reason="needs reads of both positive and negative cases "
                    "with a final confidence",
                )
            )
            continue
        ratings = [float(r.final_confidence) for r in kept]
        fpr, tpr = roc_points(ratings, truth)
        curves.append(
            RocCurve(
                arm,
                n1,
                n0,
                tuple(float(v) for v in fpr),
                tuple(float(v) for v in tpr),
                auc_from_ratings(np.array(ratings), np.array(truth)),
            )
        )
    if not any(c.reason is None for c in curves):
        return Section(
            result=tuple(curves) or None,
            reason="no arm has confidence ratings of both positive and negative cases",
        )
    return Section(result=tuple(curves))
