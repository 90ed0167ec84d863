"""The explanation-gain and reader-experience subgroup sections of the study analysis: the
accuracy gain of each aided arm over the unaided reference, correlated with the explanations'
metrics, and the same split by the readers' years of experience."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from analysis.stats.data import label_key
from analysis.stats.explanation_gain import (
    Correlation,
    ExplanationGainResult,
    by_experience,
    explanation_gain,
    spearman,
)
from analysis.stats.proportions import ProportionsResult, diagnostic_proportions
from analysis.stats.reads import Read, arms_of, main_reads
from analysis.stats.study_base import Section, StudyMeta


@dataclass(frozen=True)
class MetricPoint:
    case: str
    value: float
    gain: float


@dataclass(frozen=True)
class MetricCorrelation:
    arm: str
    metric: str
    correlation: Correlation
    points: tuple[MetricPoint, ...]  # cases with both the metric and a gain (the scatter)


@dataclass(frozen=True)
class GainSection:
    gain: ExplanationGainResult
    metric_names: tuple[str, ...]
    correlations: tuple[MetricCorrelation, ...]


@dataclass(frozen=True)
class Subgroup:
    name: str  # "below" | "at_or_above"
    label: str
    readers: tuple[str, ...]
    n_reads: int  # main reads
    proportions: ProportionsResult | None
    gain: ExplanationGainResult | None
    reason: str | None = None  # why nothing is computed for the subgroup
    gain_reason: str | None = None


@dataclass(frozen=True)
class SubgroupsSection:
    threshold: float
    threshold_source: str  # "given" | "median of the readers' experience"
    groups: tuple[Subgroup, ...]
    readers_without_experience: tuple[str, ...]


def _gain_reference(reads: Sequence[Read], meta: StudyMeta) -> tuple[str | None, str | None]:
    """(unaided argument for explanation_gain, reason when there is no unaided reference)."""
    arms = arms_of(main_reads(reads))
    if meta.unaided is not None and meta.unaided in arms:
        return meta.unaided, None
    if meta.unaided is not None:
        where = f"the unaided arm {meta.unaided} has no main reads"
    else:
        where = "the study has no unaided arm"
    if meta.two_stage:
        return None, None  # first-stage answers of the same reads
    return None, f"{where} and single-stage reading has no unaided first answer: no gain"


def metric_names(
    metrics: Mapping[str, Mapping[str, Mapping[str, float]]] | None,
) -> tuple[str, ...]:
    names = {
        name for cases in (metrics or {}).values() for values in cases.values() for name in values
    }
    return tuple(sorted(names))


def metric_values(
    metrics: Mapping[str, Mapping[str, Mapping[str, float]]], arm: str, name: str
) -> dict[str, float]:
    """case -> value of one metric of one arm's explanations (finite values only)."""
    out = {}
    for case, values in metrics.get(arm, {}).items():
        value = values.get(name)
        if value is not None and math.isfinite(float(value)):
            out[case] = float(value)
    return out


def gain_section(
    reads: Sequence[Read],
    meta: StudyMeta,
    metrics: Mapping[str, Mapping[str, Mapping[str, float]]] | None,
) -> Section:
    unaided, reason = _gain_reference(reads, meta)
    if reason is not None:
        return Section(reason=reason)
    gain = explanation_gain(
        reads, unaided, conf_level=meta.conf_level, n_bootstrap=meta.n_bootstrap, seed=meta.seed
    )
    notes = []
    if unaided is None:
        missing = (
            "no unaided arm"
            if meta.unaided is None
            else f"the unaided arm {meta.unaided} has no main reads"
        )
        notes.append(f"{missing}: the gain is final minus first-stage accuracy of the same reads")
    if not gain.arms:
        return Section(
            result=GainSection(gain, (), ()),
            reason="no aided arm to compare with the unaided reference",
        )
    names = metric_names(metrics)
    correlations = []
    if metrics:
        for arm_gain in gain.arms:
            if arm_gain.arm not in metrics:
                continue
            for name in names:
                values = metric_values(metrics, arm_gain.arm, name)
                points = tuple(
                    MetricPoint(g.case, values[g.case], g.gain)
                    for g in arm_gain.per_case
                    if g.case in values
                )
                correlations.append(
                    MetricCorrelation(
                        arm_gain.arm, name, spearman(values, arm_gain.per_case), points
                    )
                )
        unknown = sorted(set(metrics) - {g.arm for g in gain.arms}, key=label_key)
        if unknown:
            notes.append(f"metrics given for arms without a gain: {', '.join(unknown)}")
    return Section(result=GainSection(gain, names, tuple(correlations)), notes=tuple(notes))


def _reader_experience(main: Sequence[Read]) -> dict[str, float]:
    years: dict[str, list[float]] = {}
    for r in main:
        if r.reader_experience is not None and math.isfinite(r.reader_experience):
            years.setdefault(r.reader, []).append(float(r.reader_experience))
    return {reader: float(np.median(v)) for reader, v in years.items()}


def subgroups_section(reads: Sequence[Read], meta: StudyMeta) -> Section:
    main = main_reads(reads)
    experience = _reader_experience(main)
    if not experience:
        return Section(reason="no reader's years of experience are known")
    if meta.experience_threshold is not None:
        threshold, source = float(meta.experience_threshold), "given"
    else:
        threshold = float(np.median(list(experience.values())))
        source = "median of the readers' experience"
    without = tuple(sorted({r.reader for r in main} - set(experience), key=label_key))
    # one experience value per reader (the median of its reads), so a reader is in one group
    steady = [
        replace(r, reader_experience=experience[r.reader]) for r in main if r.reader in experience
    ]
    below, above = by_experience(steady, threshold)
    unaided, gain_reason = _gain_reference(reads, meta)
    groups = []
    for name, label, chosen in (
        ("below", f"< {threshold:g} years", below),
        ("at_or_above", f">= {threshold:g} years", above),
    ):
        readers = tuple(sorted({r.reader for r in chosen}, key=label_key))
        if not chosen:
            groups.append(
                Subgroup(name, label, readers, 0, None, None, reason="no reader in this subgroup")
            )
            continue
        props = diagnostic_proportions(chosen, stage="final", conf_level=meta.conf_level)
        gain = None
        if gain_reason is None:
            gain = explanation_gain(
                chosen,
                unaided,
                conf_level=meta.conf_level,
                n_bootstrap=meta.n_bootstrap,
                seed=meta.seed,
            )
        groups.append(
            Subgroup(name, label, readers, len(chosen), props, gain, gain_reason=gain_reason)
        )
    notes = ()
    if without:
        notes = (f"readers without known experience are in neither subgroup: {', '.join(without)}",)
    result = SubgroupsSection(threshold, source, tuple(groups), without)
    if any(g.reason for g in groups):
        return Section(
            result=result,
            notes=notes,
            reason=f"every reader with known experience is on one side of "
            f"{threshold:g} years: no comparison of subgroups",
        )
    return Section(result=result, notes=notes)
