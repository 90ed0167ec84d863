"""Every analysis of one reader study, assembled into a single result for the report.

``analyse_study(reads, meta, metrics=...)`` runs, on the main trials of a study:

``counts``
    readers, cases, reads per arm, and the reads left out of each analysis and why; per arm
    showing a heatmap, the main trials that showed an empty explanation and the arm's accuracy
    with and without them (empty_explanations.py).
``quality``
    each reader's attention-check score, who the study's rule excludes, the implausibly fast
    reads per reader and arm, and the ROC analysis again without what the rule excludes
    (study_quality.py, quality.py).
``proportions``
    sensitivity, specificity and accuracy per arm with Wilson intervals (proportions.py), of the
    final answers and, in two-stage reading, of the unaided first answers.
``mrmc_auc`` / ``mrmc_accuracy``
    the Obuchowski-Rockette analysis (mrmc.py: Hillis ddf; RRRC, FRRC and RRFC; every pairwise
    difference with Holm-adjusted p-values over all pairs) of the AUC of ``final_confidence``
    (``meta.auc_fom``: empirical or binormal, with the case covariance ``meta.cov_method``,
    jackknife by default) and of the accuracy of ``final_positive`` (jackknife). The comparisons are also
    grouped: those with the unaided arm first, oriented as arm minus unaided (the primary
    result), then those between explainer arms, then the rest (e.g. AI-only versus explainer).
    The Latin-square (split-plot, partially paired) layout goes in unchanged: to_mrmc_data keeps
    NaN for cells a reader did not read, and the jackknife covariance of two (reader, arm) units
    is estimated over the cases they share and is 0 when they share none (covariance.py), so
    Cov1 (same reader, different arms) is 0 when each reader reads a case under one arm only.
    What or_analysis refuses (fewer than 2 readers; a reader with no reads in an arm; a
    reader-arm unit with fewer than 2 cases of a class) becomes the section's ``reason``; when
    only some readers are incomplete they are left out with a note, if 2 or more remain.
    ``MRMCSection.arm_intervals`` adds each arm's interval on the logit scale (intervals.py),
    inside [0, 1]; the differences keep the reference software's untransformed intervals.
``accuracy_model``
    accuracy per read as a logistic mixed model with arm x AI correctness and crossed reader
    and case intercepts, as lme4's glmer fits it (accuracy_model.py, glmm.py).
``roc``
    empirical ROC points per arm pooled over readers (for the figure; descriptive).
``reliance``
    Schemmer et al. reliance measures (reliance.py); two-stage reading only.
``agreement``
    Fleiss' kappa (Gwet's generalisation) of the final call per arm, and Cohen's kappa of each
    reader with the AI (agreement.py), both with percentile bootstrap intervals (over cases,
    over reads), which stay inside the range of kappa.
``ratings``
    Likert distributions and a proportional-odds model per item (ratings.py); the reference arm
    of an item is the unaided arm when it has ratings of that item, else the first arm that has.
``reading_time``
    the mixed model on log time (reading_time.py; its fallbacks and the optimizer's warnings
    summarised in ``model_note``) and a five-number summary per arm.
``explanation_gain``
    accuracy gain of each aided arm over the unaided arm (explanation_gain.py) and, per arm and
    explanation metric, the Spearman correlation of the metric with the per-case gain. Without
    an unaided arm, two-stage studies use the first-stage answers as the unaided reference.
``subgroups``
    readers split at an experience threshold (given, or the median of the readers' years):
    proportions and gain within each subgroup.

The metadata, ``Section`` and the counts are in study_base.py, the OR and ROC sections in
study_mrmc.py (all re-exported here). Each section is a ``Section`` holding the module results
(``result``) or, when the analysis cannot be computed from the data (too few readers or cases,
single-stage reading for reliance, no ratings, no unaided reference, ...), a ``reason``;
``result`` may still carry the descriptive part then. Data problems never raise; a malformed
``StudyMeta`` does (ValueError). ``StudyAnalysis.to_dict()`` (and ``inference.to_jsonable``)
gives plain JSON with no NaN.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from analysis.stats.accuracy_model import accuracy_model
from analysis.stats.agreement import ArmAgreement, CohenKappa, fleiss_by_arm, reader_ai_kappa
from analysis.stats.inference import to_jsonable
from analysis.stats.proportions import ProportionsResult, diagnostic_proportions
from analysis.stats.ratings import items_of, ordinal_regression, rating_analysis
from analysis.stats.reading_time import ReadingTimeResult, reading_time_analysis
from analysis.stats.reads import Read, arms_of, main_reads
from analysis.stats.reliance import reliance
from analysis.stats.study_base import (
    AUC_FOMS,
    DATA_ERRORS,
    DESIGNS,
    EMPIRICAL_AUC_COV,
    PROTOCOLS,
    ArmCount,
    ArmMeta,
    Counts,
    Section,
    StudyMeta,
    analysis_option_problems,
    count_section,
)
from analysis.stats.study_gain import (
    GainSection,
    Subgroup,
    SubgroupsSection,
    gain_section,
    subgroups_section,
)
from analysis.stats.study_mrmc import (
    ComparisonGroups,
    MRMCSection,
    RocCurve,
    bounded_arm_intervals,
    flipped,
    group_comparisons,
    mrmc_section,
    roc_points,
    roc_section,
)
from analysis.stats.study_quality import QualitySection, quality_section

__all__ = [
    "AUC_FOMS",
    "DATA_ERRORS",
    "EMPIRICAL_AUC_COV",
    "DESIGNS",
    "PROTOCOLS",
    "SECTIONS",
    "AgreementSection",
    "ArmCount",
    "ArmMeta",
    "ComparisonGroups",
    "Counts",
    "GainSection",
    "MRMCSection",
    "ProportionsSection",
    "QualitySection",
    "ReadingTimeSection",
    "RocCurve",
    "Section",
    "StudyAnalysis",
    "StudyMeta",
    "Subgroup",
    "SubgroupsSection",
    "analyse_study",
    "analysis_option_problems",
    "bounded_arm_intervals",
    "flipped",
    "group_comparisons",
    "roc_points",
]

SECTIONS = (
    "counts",
    "quality",
    "proportions",
    "mrmc_auc",
    "mrmc_accuracy",
    "accuracy_model",
    "roc",
    "reliance",
    "agreement",
    "ratings",
    "reading_time",
    "explanation_gain",
    "subgroups",
)


# ----------------------------------------------------------------------------- other sections


@dataclass(frozen=True)
class ProportionsSection:
    final: ProportionsResult
    first: ProportionsResult | None  # two-stage reading only


@dataclass(frozen=True)
class AgreementSection:
    fleiss: tuple[ArmAgreement, ...]
    reader_ai: tuple[CohenKappa, ...]


@dataclass(frozen=True)
class TimeSummary:
    """Five-number summary of reading time (seconds) for a box plot; whiskers at the most
    extreme times within 1.5 IQR of the quartiles."""

    arm: str
    n: int
    whisker_low: float
    q1: float
    median: float
    q3: float
    whisker_high: float
    geometric_mean: float


@dataclass(frozen=True)
class ReadingTimeSection:
    model: ReadingTimeResult
    summaries: tuple[TimeSummary, ...]


def _guard(name: str, build: Callable[[], Section]) -> Section:
    try:
        return build()
    except DATA_ERRORS as exc:
        return Section(reason=f"the {name} could not be computed: {exc}")


def _proportions(reads: Sequence[Read], meta: StudyMeta) -> Section:
    final = diagnostic_proportions(reads, stage="final", conf_level=meta.conf_level)
    first = (
        diagnostic_proportions(reads, stage="first", conf_level=meta.conf_level)
        if meta.two_stage
        else None
    )
    if final.n_reads == 0:
        return Section(
            result=ProportionsSection(final, first),
            reason="no main read has both a known truth and a final diagnosis",
        )
    notes = ()
    if first is not None and first.n_reads == 0:
        notes = ("two-stage protocol, but no read has a first-stage diagnosis",)
    return Section(result=ProportionsSection(final, first), notes=notes)


def _reliance(reads: Sequence[Read], meta: StudyMeta) -> Section:
    if not meta.two_stage:
        return Section(
            reason="single-stage reading: there is no unaided first answer, so "
            "reliance on the AI (switching after seeing it) is not defined"
        )
    result = reliance(reads, conf_level=meta.conf_level)
    if result.n_eligible == 0:
        return Section(
            result=result,
            reason="no main read has the AI shown with its call, the "
            "truth and both the first and final calls known",
        )
    return Section(result=result)


def _agreement(reads: Sequence[Read], meta: StudyMeta) -> Section:
    if not any(r.final_positive is not None for r in main_reads(reads)):
        return Section(reason="no main read has a final diagnosis")
    fleiss = fleiss_by_arm(
        reads, conf_level=meta.conf_level, n_bootstrap=meta.n_bootstrap, seed=meta.seed
    )
    reader_ai = reader_ai_kappa(
        reads, conf_level=meta.conf_level, n_bootstrap=meta.n_bootstrap, seed=meta.seed
    )
    result = AgreementSection(fleiss, reader_ai)
    if all(a.kappa.kappa is None for a in fleiss):
        return Section(
            result=result,
            reason="Fleiss' kappa is undefined in every arm: "
            + "; ".join(sorted({a.kappa.reason or "" for a in fleiss})),
        )
    return Section(result=result)


def _ratings(reads: Sequence[Read], meta: StudyMeta) -> Section:
    items = items_of(reads)
    if not items:
        return Section(reason="no Likert ratings in the main reads")
    main = main_reads(reads)
    rated_unaided = {k for r in main if r.arm == meta.unaided for k in r.ratings}
    # per item: unaided when it rated the item, else the module's default (first arm rating it)
    wanted = {item: meta.unaided if item in rated_unaided else None for item in items}
    common = set(wanted.values())
    reference = common.pop() if len(common) == 1 else None
    result = rating_analysis(
        reads, reference=reference, points=meta.rating_points, conf_level=meta.conf_level
    )
    if any(wanted[f.item] != reference for f in result.models):
        models = tuple(
            f
            if wanted[f.item] == reference
            else ordinal_regression(
                reads, f.item, reference=wanted[f.item], conf_level=meta.conf_level
            )
            for f in result.models
        )
        result = replace(result, models=models)
    return Section(result=result)


def _time_summary(arm: str, seconds: np.ndarray) -> TimeSummary:
    q1, median, q3 = (float(v) for v in np.percentile(seconds, [25, 50, 75]))
    reach = 1.5 * (q3 - q1)
    low = float(seconds[seconds >= q1 - reach].min())
    high = float(seconds[seconds <= q3 + reach].max())
    return TimeSummary(
        arm, int(seconds.size), low, q1, median, q3, high, float(np.exp(np.log(seconds).mean()))
    )


def _reading_time(reads: Sequence[Read], meta: StudyMeta) -> Section:
    main = main_reads(reads)
    times = [
        r for r in main if r.seconds is not None and math.isfinite(r.seconds) and r.seconds > 0
    ]
    with_time = arms_of(times)
    reference = meta.unaided if meta.unaided in with_time else None
    model = reading_time_analysis(reads, reference=reference, conf_level=meta.conf_level)
    summaries = tuple(
        _time_summary(arm, np.array([r.seconds for r in times if r.arm == arm], dtype=float))
        for arm in with_time
    )
    return Section(
        result=ReadingTimeSection(model, summaries), reason=model.reason, notes=model.notes
    )


def _accuracy_model(reads: Sequence[Read], meta: StudyMeta) -> Section:
    arms = arms_of(main_reads(reads))
    reference = meta.unaided if meta.unaided in arms else None
    model = accuracy_model(reads, reference=reference, conf_level=meta.conf_level)
    return Section(result=model, reason=model.reason, notes=model.notes)


# ----------------------------------------------------------------------------- assembly


@dataclass(frozen=True)
class StudyAnalysis:
    meta: StudyMeta
    counts: Section
    quality: Section
    proportions: Section
    mrmc_auc: Section
    mrmc_accuracy: Section
    accuracy_model: Section
    roc: Section
    reliance: Section
    agreement: Section
    ratings: Section
    reading_time: Section
    explanation_gain: Section
    subgroups: Section

    def sections(self) -> dict[str, Section]:
        return {name: getattr(self, name) for name in SECTIONS}

    def to_dict(self) -> dict:
        """Every number as plain JSON (None for NaN and infinite values)."""
        out: dict[str, Any] = {"meta": to_jsonable(self.meta)}
        for name, section in self.sections().items():
            result = section.result
            out[name] = {
                "result": result.to_dict() if hasattr(result, "to_dict") else to_jsonable(result),
                "reason": section.reason,
                "notes": list(section.notes),
            }
        return out


def analyse_study(
    reads: Sequence[Read],
    meta: StudyMeta,
    *,
    metrics: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
) -> StudyAnalysis:
    """Run every analysis of the study (see the module docstring).

    ``metrics``: arm code -> case -> {metric name: value} of the explanations that arm shows
    (e.g. deletion_auc, pointing_game); each metric is correlated with the per-case gain.
    """
    reads = list(reads)
    main = main_reads(reads)
    built = {
        "counts": count_section(reads, main, meta),
        "quality": _guard("data-quality checks", lambda: quality_section(reads, meta)),
        "proportions": _guard("proportions", lambda: _proportions(reads, meta)),
        "mrmc_auc": mrmc_section(reads, meta, meta.auc_fom),
        "mrmc_accuracy": mrmc_section(reads, meta, "accuracy"),
        "accuracy_model": _guard("accuracy model", lambda: _accuracy_model(reads, meta)),
        "roc": _guard("ROC curves", lambda: roc_section(reads)),
        "reliance": _guard("reliance measures", lambda: _reliance(reads, meta)),
        "agreement": _guard("agreement", lambda: _agreement(reads, meta)),
        "ratings": _guard("rating analysis", lambda: _ratings(reads, meta)),
        "reading_time": _guard("reading-time analysis", lambda: _reading_time(reads, meta)),
        "explanation_gain": _guard("explanation gain", lambda: gain_section(reads, meta, metrics)),
        "subgroups": _guard("subgroup analysis", lambda: subgroups_section(reads, meta)),
    }
    if not main:
        built = {
            name: s
            if name == "counts"
            else Section(result=s.result, reason=s.reason or "no main reads", notes=s.notes)
            for name, s in built.items()
        }
    return StudyAnalysis(meta=meta, **built)
