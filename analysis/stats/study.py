"""Every analysis of one reader study, assembled into a single result for the report.

``analyse_study(reads, meta, metrics=...)`` runs, on the main trials of a study:

``counts``
    readers, cases, reads per arm, and the reads left out of each analysis and why.
``proportions``
    sensitivity, specificity and accuracy per arm with Wilson intervals (proportions.py), of the
    final answers and, in two-stage reading, of the unaided first answers.
``mrmc_auc`` / ``mrmc_accuracy``
    the Obuchowski-Rockette analysis (mrmc.py: Hillis ddf, jackknife case covariance; RRRC, FRRC
    and RRFC; every pairwise difference with Holm-adjusted p-values over all pairs) of the AUC
    of ``final_confidence`` and of the accuracy of ``final_positive``. The comparisons are also
    grouped: those with the unaided arm first, oriented as arm minus unaided (the primary
    result), then those between explainer arms, then the rest (e.g. AI-only versus explainer).
    The Latin-square (split-plot, partially paired) layout goes in unchanged: to_mrmc_data keeps
    NaN for cells a reader did not read, and the jackknife covariance of two (reader, arm) units
    is estimated over the cases they share and is 0 when they share none (covariance.py), so
    Cov1 (same reader, different arms) is 0 when each reader reads a case under one arm only.
    What or_analysis refuses (fewer than 2 readers; a reader with no reads in an arm; a
    reader-arm unit with fewer than 2 cases of a class) becomes the section's ``reason``; when
    only some readers are incomplete they are left out with a note, if 2 or more remain.
``roc``
    empirical ROC points per arm pooled over readers (for the figure; descriptive).
``reliance``
    Schemmer et al. reliance measures (reliance.py); two-stage reading only.
``agreement``
    Fleiss' kappa (Gwet's generalisation) of the final call per arm, and Cohen's kappa of each
    reader with the AI (agreement.py).
``ratings``
    Likert distributions and a proportional-odds model per item (ratings.py); the reference arm
    of an item is the unaided arm when it has ratings of that item, else the first arm that has.
``reading_time``
    the mixed model on log time (reading_time.py) and a five-number summary per arm.
``explanation_gain``
    accuracy gain of each aided arm over the unaided arm (explanation_gain.py) and, per arm and
    explanation metric, the Spearman correlation of the metric with the per-case gain. Without
    an unaided arm, two-stage studies use the first-stage answers as the unaided reference.
``subgroups``
    readers split at an experience threshold (given, or the median of the readers' years):
    proportions and gain within each subgroup.

Each section is a ``Section`` holding the module results (``result``) or, when the analysis
cannot be computed from the data (too few readers or cases, single-stage reading for reliance,
no ratings, no unaided reference, ...), a ``reason``; ``result`` may still carry the
descriptive part then. Data problems never raise; a malformed ``StudyMeta`` does (ValueError).
``StudyAnalysis.to_dict()`` (and ``inference.to_jsonable``) gives plain JSON with no NaN.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from analysis.stats.agreement import ArmAgreement, CohenKappa, fleiss_by_arm, reader_ai_kappa
from analysis.stats.data import MRMCInputError, label_key
from analysis.stats.explanation_gain import (
    Correlation,
    ExplanationGainResult,
    by_experience,
    explanation_gain,
    spearman,
)
from analysis.stats.inference import Comparison, to_jsonable
from analysis.stats.mrmc import ORResult, or_analysis
from analysis.stats.proportions import ProportionsResult, diagnostic_proportions
from analysis.stats.ratings import items_of, ordinal_regression, rating_analysis
from analysis.stats.reading_time import ReadingTimeResult, reading_time_analysis
from analysis.stats.reads import Read, arms_of, main_reads, to_mrmc_data
from analysis.stats.reliance import reliance
from analysis.stats.roc import auc_from_ratings

DESIGNS = ("latin_square", "fully_crossed")
PROTOCOLS = ("single_stage", "two_stage")
SECTIONS = ("counts", "proportions", "mrmc_auc", "mrmc_accuracy", "roc", "reliance", "agreement",
            "ratings", "reading_time", "explanation_gain", "subgroups")
# What a data-shape problem raises inside the statistics modules (MRMCInputError is a ValueError)
DATA_ERRORS = (ValueError, ZeroDivisionError, FloatingPointError, np.linalg.LinAlgError)


@dataclass(frozen=True)
class ArmMeta:
    """One arm as the report shows it. ``label`` is neutral unless the caller unblinds;
    ``explainer`` is None when blinded."""

    code: str
    label: str
    shows_ai: bool = False
    shows_explanation: bool = False
    explainer: str | None = None


@dataclass(frozen=True)
class StudyMeta:
    title: str
    design: str  # latin_square | fully_crossed
    protocol: str  # single_stage | two_stage
    arms: tuple[ArmMeta, ...]
    unaided: str | None  # code of the unaided arm, if any
    positive_class: str
    conf_level: float = 0.95
    experience_threshold: float | None = None  # years; None: median of the readers' experience
    seed: int = 0
    n_bootstrap: int = 2000  # case-bootstrap samples for the gain and kappa intervals
    rating_points: int | Mapping[str, int] | None = field(default=None, hash=False)  # Likert
    # scale length (one for all items or per item); None: the highest rating seen

    def __post_init__(self) -> None:
        problems = []
        if self.design not in DESIGNS:
            problems.append(f"design must be one of {DESIGNS}, not {self.design!r}")
        if self.protocol not in PROTOCOLS:
            problems.append(f"protocol must be one of {PROTOCOLS}, not {self.protocol!r}")
        if not 0 < self.conf_level < 1:
            problems.append(f"conf_level must be between 0 and 1, not {self.conf_level}")
        codes = [a.code for a in self.arms]
        if len(set(codes)) != len(codes):
            problems.append(f"arm codes repeat: {codes}")
        if self.unaided is not None and self.unaided not in codes:
            problems.append(f"the unaided arm {self.unaided!r} is not one of the arms {codes}")
        if self.n_bootstrap < 0:
            problems.append("n_bootstrap must not be negative")
        if problems:
            raise ValueError("; ".join(problems))

    def arm(self, code: str) -> ArmMeta | None:
        return next((a for a in self.arms if a.code == code), None)

    def label(self, code: str | None) -> str:
        """The arm's display label ("Arm X" for a code the metadata does not describe)."""
        if code is None:
            return "all arms"
        arm = self.arm(code)
        return arm.label if arm is not None else f"Arm {code}"

    @property
    def explainer_arms(self) -> tuple[str, ...]:
        return tuple(a.code for a in self.arms if a.shows_explanation)

    @property
    def two_stage(self) -> bool:
        return self.protocol == "two_stage"


@dataclass(frozen=True)
class Section:
    """One analysis: ``result`` (module results) or ``reason`` (why it cannot be computed).

    With ``reason`` set the main estimate is missing; ``result`` may still hold the descriptive
    part (e.g. geometric mean times when the mixed model cannot be fitted) or be None.
    """

    result: Any = None
    reason: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.reason is None and self.result is not None


# ----------------------------------------------------------------------------- counts


@dataclass(frozen=True)
class ArmCount:
    arm: str
    reads: int  # main reads
    readers: int
    cases: int
    positive_cases: int
    negative_cases: int


@dataclass(frozen=True)
class Counts:
    readers: int  # readers with main reads
    cases: int  # cases with main reads
    main_reads: int
    all_reads: int  # main, training and attention
    arms: tuple[ArmCount, ...]
    excluded: dict[str, int]  # why -> number of reads (a read may have several reasons)
    arms_not_in_meta: tuple[str, ...]
    readers_with_experience: int
    duplicate_reads: int  # main reads repeating a (reader, arm, case): the OR analysis refuses


def _counts(reads: Sequence[Read], main: Sequence[Read], meta: StudyMeta) -> Counts:
    truth: dict[str, bool] = {}
    for r in main:
        if r.truth is not None:
            truth.setdefault(r.case, bool(r.truth))
    arms = []
    for arm in arms_of(main):
        mine = [r for r in main if r.arm == arm]
        cases = {r.case for r in mine}
        arms.append(ArmCount(
            arm=arm, reads=len(mine), readers=len({r.reader for r in mine}),
            cases=len(cases), positive_cases=sum(1 for c in cases if truth.get(c) is True),
            negative_cases=sum(1 for c in cases if truth.get(c) is False),
        ))

    def bad_number(value) -> bool:
        return value is None or not math.isfinite(float(value))

    excluded = {
        "training trial (feedback shown; not analysed)": sum(r.kind == "training" for r in reads),
        "attention-check trial (not analysed)": sum(r.kind == "attention" for r in reads),
        "unknown truth (left out of every accuracy and ROC analysis)":
            sum(r.truth is None for r in main),
        "no final diagnosis (left out of the proportions, accuracy and agreement)":
            sum(r.final_positive is None for r in main),
        "no final confidence (left out of the ROC analysis)":
            sum(bad_number(r.final_confidence) for r in main),
        "no reading time (left out of the reading-time model)":
            sum(bad_number(r.seconds) or r.seconds <= 0 for r in main),
    }
    if meta.two_stage:
        excluded["no first-stage diagnosis (left out of the first-stage proportions and "
                 "reliance)"] = sum(r.first_positive is None for r in main)
    experienced = {r.reader for r in main if r.reader_experience is not None
                   and math.isfinite(r.reader_experience)}
    known = {a.code for a in meta.arms}
    cells = [(r.reader, r.arm, r.case) for r in main]
    return Counts(
        readers=len({r.reader for r in main}), cases=len({r.case for r in main}),
        main_reads=len(main), all_reads=len(reads), arms=tuple(arms), excluded=excluded,
        arms_not_in_meta=tuple(a for a in arms_of(main) if a not in known),
        readers_with_experience=len(experienced), duplicate_reads=len(cells) - len(set(cells)),
    )


def _count_section(reads: Sequence[Read], main: Sequence[Read], meta: StudyMeta) -> Section:
    counts = _counts(reads, main, meta)
    notes = []
    if counts.duplicate_reads:
        notes.append(f"{counts.duplicate_reads} main reads repeat a reader, arm and case "
                     "already read; the OR analyses refuse such data")
    if counts.arms_not_in_meta:
        notes.append("arms with reads but no description in the study metadata: "
                     + ", ".join(counts.arms_not_in_meta))
    return Section(result=counts, notes=tuple(notes))


# ----------------------------------------------------------------------------- MRMC


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

    @property
    def primary(self) -> tuple[Comparison, ...]:
        """RRRC differences of each arm versus the unaided arm."""
        return self.groups["rrrc"].versus_unaided if "rrrc" in self.groups else ()

    def to_dict(self) -> dict:
        return {"fom": self.fom, "design": self.design,
                "readers_left_out": list(self.readers_left_out),
                "or_result": self.or_result.to_dict(),
                "groups": to_jsonable(self.groups)}


def flipped(c: Comparison) -> Comparison:
    """The same comparison as subtrahend minus minuend."""
    return replace(c, minuend=c.subtrahend, subtrahend=c.minuend,
                   label=f"treatment {c.subtrahend} - treatment {c.minuend}",
                   estimate=-c.estimate, statistic=-c.statistic,
                   ci_low=-c.ci_high, ci_high=-c.ci_low)


def group_comparisons(comparisons: Sequence[Comparison], unaided: str | None,
                      explainers: Sequence[str]) -> ComparisonGroups:
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
    """Readers whose every arm has enough usable reads for ``fom`` (2 per class for the AUC)."""
    usable = [r for r in main_reads(reads) if r.truth is not None
              and getattr(r, rating) is not None and math.isfinite(float(getattr(r, rating)))]
    arms = arms_of(usable)
    tally: dict[tuple[str, str], list[int]] = {}
    for r in usable:
        tally.setdefault((r.reader, r.arm), [0, 0])[int(bool(r.truth))] += 1
    readers = sorted({r.reader for r in usable}, key=label_key)

    def enough(counts: list[int] | None) -> bool:
        if counts is None:
            return False
        return min(counts) >= 2 if fom == "auc" else sum(counts) >= 2

    return [rd for rd in readers if all(enough(tally.get((rd, a))) for a in arms)]


def _mrmc(reads: Sequence[Read], meta: StudyMeta, fom: str) -> Section:
    rating, what = (("final_confidence", "the final confidence") if fom == "auc"
                    else ("final_positive", "the final diagnosis"))
    notes: list[str] = []
    left_out: tuple[str, ...] = ()

    def run(chosen: Sequence[Read]) -> ORResult:
        data = to_mrmc_data(chosen, rating=rating, diagnosis_from="final_positive")
        return or_analysis(data, fom, "jackknife", conf_level=meta.conf_level)

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
            notes.append(f"readers {', '.join(left_out)} left out: "
                         + "; ".join(first_error.problems[:5]))
    except MRMCInputError as exc:
        return Section(reason=f"the OR analysis of {what} cannot be computed: "
                              + "; ".join(exc.problems[:5]))
    except DATA_ERRORS as exc:
        return Section(reason=f"the OR analysis of {what} failed: {exc}")
    explainers = meta.explainer_arms
    unaided = meta.unaided if meta.unaided in result.treatments else None
    if unaided is None:
        notes.append("no unaided arm among the analysed arms: no comparison versus unaided")
    if len(result.treatments) < 2:
        notes.append("one arm: single-arm estimates only, no comparison")
    groups = {name: group_comparisons(a.comparisons, unaided, explainers)
              for name, a in result.analyses.items()}
    if result.design != "crossed":
        notes.append(f"read layout: {result.design}; the case-sampling covariance of two "
                     "reader-arm units uses the cases they share (0 when none)")
    return Section(result=MRMCSection(fom, result.design, left_out, result, groups),
                   notes=tuple(notes))


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


def _roc(reads: Sequence[Read]) -> Section:
    main = main_reads(reads)
    curves = []
    for arm in arms_of(main):
        kept = [r for r in main if r.arm == arm and r.truth is not None
                and r.final_confidence is not None and math.isfinite(r.final_confidence)]
        truth = [bool(r.truth) for r in kept]
        n1 = sum(truth)
        n0 = len(truth) - n1
        if n1 == 0 or n0 == 0:
            curves.append(RocCurve(arm, n1, n0, (), (), None,
                                   reason="needs reads of both positive and negative cases "
                                          "with a final confidence"))
            continue
        ratings = [float(r.final_confidence) for r in kept]
        fpr, tpr = roc_points(ratings, truth)
        curves.append(RocCurve(arm, n1, n0, tuple(float(v) for v in fpr),
                               tuple(float(v) for v in tpr),
                               auc_from_ratings(np.array(ratings), np.array(truth))))
    if not any(c.reason is None for c in curves):
        return Section(result=tuple(curves) or None,
                       reason="no arm has confidence ratings of both positive and negative "
                              "cases")
    return Section(result=tuple(curves))


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


def _guard(name: str, build: Callable[[], Section]) -> Section:
    try:
        return build()
    except DATA_ERRORS as exc:
        return Section(reason=f"the {name} could not be computed: {exc}")


def _proportions(reads: Sequence[Read], meta: StudyMeta) -> Section:
    final = diagnostic_proportions(reads, stage="final", conf_level=meta.conf_level)
    first = (diagnostic_proportions(reads, stage="first", conf_level=meta.conf_level)
             if meta.two_stage else None)
    if final.n_reads == 0:
        return Section(result=ProportionsSection(final, first),
                       reason="no main read has both a known truth and a final diagnosis")
    notes = ()
    if first is not None and first.n_reads == 0:
        notes = ("two-stage protocol, but no read has a first-stage diagnosis",)
    return Section(result=ProportionsSection(final, first), notes=notes)


def _reliance(reads: Sequence[Read], meta: StudyMeta) -> Section:
    if not meta.two_stage:
        return Section(reason="single-stage reading: there is no unaided first answer, so "
                              "reliance on the AI (switching after seeing it) is not defined")
    result = reliance(reads, conf_level=meta.conf_level)
    if result.n_eligible == 0:
        return Section(result=result, reason="no main read has the AI shown with its call, the "
                                             "truth and both the first and final calls known")
    return Section(result=result)


def _agreement(reads: Sequence[Read], meta: StudyMeta) -> Section:
    if not any(r.final_positive is not None for r in main_reads(reads)):
        return Section(reason="no main read has a final diagnosis")
    fleiss = fleiss_by_arm(reads, conf_level=meta.conf_level, n_bootstrap=meta.n_bootstrap,
                           seed=meta.seed)
    result = AgreementSection(fleiss, reader_ai_kappa(reads, conf_level=meta.conf_level))
    if all(a.kappa.kappa is None for a in fleiss):
        return Section(result=result, reason="Fleiss' kappa is undefined in every arm: "
                       + "; ".join(sorted({a.kappa.reason or "" for a in fleiss})))
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
    result = rating_analysis(reads, reference=reference, points=meta.rating_points,
                             conf_level=meta.conf_level)
    if any(wanted[f.item] != reference for f in result.models):
        models = tuple(
            f if wanted[f.item] == reference else
            ordinal_regression(reads, f.item, reference=wanted[f.item],
                               conf_level=meta.conf_level)
            for f in result.models)
        result = replace(result, models=models)
    return Section(result=result)


def _time_summary(arm: str, seconds: np.ndarray) -> TimeSummary:
    q1, median, q3 = (float(v) for v in np.percentile(seconds, [25, 50, 75]))
    reach = 1.5 * (q3 - q1)
    low = float(seconds[seconds >= q1 - reach].min())
    high = float(seconds[seconds <= q3 + reach].max())
    return TimeSummary(arm, int(seconds.size), low, q1, median, q3, high,
                       float(np.exp(np.log(seconds).mean())))


def _reading_time(reads: Sequence[Read], meta: StudyMeta) -> Section:
    main = main_reads(reads)
    times = [r for r in main if r.seconds is not None and math.isfinite(r.seconds)
             and r.seconds > 0]
    with_time = arms_of(times)
    reference = meta.unaided if meta.unaided in with_time else None
    model = reading_time_analysis(reads, reference=reference, conf_level=meta.conf_level)
    summaries = tuple(
        _time_summary(arm, np.array([r.seconds for r in times if r.arm == arm], dtype=float))
        for arm in with_time)
    return Section(result=ReadingTimeSection(model, summaries), reason=model.reason,
                   notes=model.notes)


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


def metric_names(metrics: Mapping[str, Mapping[str, Mapping[str, float]]] | None
                 ) -> tuple[str, ...]:
    names = {name for cases in (metrics or {}).values() for values in cases.values()
             for name in values}
    return tuple(sorted(names))


def metric_values(metrics: Mapping[str, Mapping[str, Mapping[str, float]]], arm: str,
                  name: str) -> dict[str, float]:
    """case -> value of one metric of one arm's explanations (finite values only)."""
    out = {}
    for case, values in metrics.get(arm, {}).items():
        value = values.get(name)
        if value is not None and math.isfinite(float(value)):
            out[case] = float(value)
    return out


def _gain(reads: Sequence[Read], meta: StudyMeta,
          metrics: Mapping[str, Mapping[str, Mapping[str, float]]] | None) -> Section:
    unaided, reason = _gain_reference(reads, meta)
    if reason is not None:
        return Section(reason=reason)
    gain = explanation_gain(reads, unaided, conf_level=meta.conf_level,
                            n_bootstrap=meta.n_bootstrap, seed=meta.seed)
    notes = []
    if unaided is None:
        missing = ("no unaided arm" if meta.unaided is None else
                   f"the unaided arm {meta.unaided} has no main reads")
        notes.append(f"{missing}: the gain is final minus first-stage accuracy of the same "
                     "reads")
    if not gain.arms:
        return Section(result=GainSection(gain, (), ()),
                       reason="no aided arm to compare with the unaided reference")
    names = metric_names(metrics)
    correlations = []
    if metrics:
        for arm_gain in gain.arms:
            if arm_gain.arm not in metrics:
                continue
            for name in names:
                values = metric_values(metrics, arm_gain.arm, name)
                points = tuple(MetricPoint(g.case, values[g.case], g.gain)
                               for g in arm_gain.per_case if g.case in values)
                correlations.append(MetricCorrelation(arm_gain.arm, name,
                                                      spearman(values, arm_gain.per_case),
                                                      points))
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


def _subgroups(reads: Sequence[Read], meta: StudyMeta) -> Section:
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
    steady = [replace(r, reader_experience=experience[r.reader]) for r in main
              if r.reader in experience]
    below, above = by_experience(steady, threshold)
    unaided, gain_reason = _gain_reference(reads, meta)
    groups = []
    for name, label, chosen in (("below", f"< {threshold:g} years", below),
                                ("at_or_above", f">= {threshold:g} years", above)):
        readers = tuple(sorted({r.reader for r in chosen}, key=label_key))
        if not chosen:
            groups.append(Subgroup(name, label, readers, 0, None, None,
                                   reason="no reader in this subgroup"))
            continue
        props = diagnostic_proportions(chosen, stage="final", conf_level=meta.conf_level)
        gain = None
        if gain_reason is None:
            gain = explanation_gain(chosen, unaided, conf_level=meta.conf_level,
                                    n_bootstrap=meta.n_bootstrap, seed=meta.seed)
        groups.append(Subgroup(name, label, readers, len(chosen), props, gain,
                               gain_reason=gain_reason))
    notes = ()
    if without:
        notes = (f"readers without known experience are in neither subgroup: "
                 f"{', '.join(without)}",)
    result = SubgroupsSection(threshold, source, tuple(groups), without)
    if any(g.reason for g in groups):
        return Section(result=result, notes=notes,
                       reason=f"every reader with known experience is on one side of "
                              f"{threshold:g} years: no comparison of subgroups")
    return Section(result=result, notes=notes)


# ----------------------------------------------------------------------------- assembly


@dataclass(frozen=True)
class StudyAnalysis:
    meta: StudyMeta
    counts: Section
    proportions: Section
    mrmc_auc: Section
    mrmc_accuracy: Section
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


def analyse_study(reads: Sequence[Read], meta: StudyMeta, *,
                  metrics: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None
                  ) -> StudyAnalysis:
    """Run every analysis of the study (see the module docstring).

    ``metrics``: arm code -> case -> {metric name: value} of the explanations that arm shows
    (e.g. deletion_auc, pointing_game); each metric is correlated with the per-case gain.
    """
    reads = list(reads)
    main = main_reads(reads)
    built = {
        "counts": _count_section(reads, main, meta),
        "proportions": _guard("proportions", lambda: _proportions(reads, meta)),
        "mrmc_auc": _mrmc(reads, meta, "auc"),
        "mrmc_accuracy": _mrmc(reads, meta, "accuracy"),
        "roc": _guard("ROC curves", lambda: _roc(reads)),
        "reliance": _guard("reliance measures", lambda: _reliance(reads, meta)),
        "agreement": _guard("agreement", lambda: _agreement(reads, meta)),
        "ratings": _guard("rating analysis", lambda: _ratings(reads, meta)),
        "reading_time": _guard("reading-time analysis", lambda: _reading_time(reads, meta)),
        "explanation_gain": _guard("explanation gain", lambda: _gain(reads, meta, metrics)),
        "subgroups": _guard("subgroup analysis", lambda: _subgroups(reads, meta)),
    }
    if not main:
        built = {name: s if name == "counts" else Section(
            result=s.result, reason=s.reason or "no main reads", notes=s.notes)
            for name, s in built.items()}
    return StudyAnalysis(meta=meta, **built)

