"""The study analysis's metadata (``StudyMeta``, ``ArmMeta``), its ``Section`` container and the
``counts`` section (readers, cases, reads per arm, exclusions, empty explanations). See
study.py for the whole analysis.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analysis.stats.covariance import COV_METHODS
from analysis.stats.empty_explanations import EmptyExplanationCount, empty_explanation_counts
from analysis.stats.plan import AnalysisPlan
from analysis.stats.quality import QualityRules
from analysis.stats.reads import Read, arms_of

DESIGNS = ("latin_square", "fully_crossed")
# The figures of merit the report's ROC analysis may use, and the covariance methods defined only
# for the empirical AUC (covariance.py); the accuracy analysis always uses the jackknife
AUC_FOMS = ("auc", "binormal_auc")
EMPIRICAL_AUC_COV = ("delong", "unbiased")
PROTOCOLS = ("single_stage", "two_stage")
# What a data-shape problem raises inside the statistics modules (MRMCInputError is a ValueError)
DATA_ERRORS = (ValueError, ZeroDivisionError, FloatingPointError, np.linalg.LinAlgError)


def analysis_option_problems(*, auc_fom: str, cov_method: str) -> list[str]:
    """What is wrong with a choice of the ROC analysis's figure of merit and covariance method
    (one line per problem; empty when the pair can be used)."""
    problems = []
    if auc_fom not in AUC_FOMS:
        problems.append(
            f"unknown figure of merit {auc_fom!r}; choose one of: {', '.join(AUC_FOMS)}"
        )
    if cov_method not in COV_METHODS:
        problems.append(
            f"unknown covariance method {cov_method!r}; choose one of: {', '.join(COV_METHODS)}"
        )
    elif auc_fom in AUC_FOMS and auc_fom != "auc" and cov_method in EMPIRICAL_AUC_COV:
        problems.append(
            "DeLong and unbiased covariance are defined for the empirical AUC; choose the "
            "jackknife or the bootstrap for the binormal AUC"
        )
    return problems


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
    empty_rule: str | None = None  # when an explanation counts as empty (for the methods)
    auc_fom: str = "auc"  # figure of merit of the ROC analysis (AUC_FOMS)
    cov_method: str = "jackknife"  # its case-sampling covariance (covariance.COV_METHODS)
    # the pre-registered plan frozen when the study opened (None: every result is exploratory)
    analysis_plan: AnalysisPlan | None = None
    # the attention-check exclusion rule and the fast-read threshold (quality.py)
    quality_rules: QualityRules = field(default_factory=QualityRules)

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
        problems += analysis_option_problems(auc_fom=self.auc_fom, cov_method=self.cov_method)
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
    # per arm showing a heatmap: main trials that showed an empty explanation
    empty_explanations: tuple[EmptyExplanationCount, ...] = ()


def counts_of(reads: Sequence[Read], main: Sequence[Read], meta: StudyMeta) -> Counts:
    truth: dict[str, bool] = {}
    for r in main:
        if r.truth is not None:
            truth.setdefault(r.case, bool(r.truth))
    arms = []
    for arm in arms_of(main):
        mine = [r for r in main if r.arm == arm]
        cases = {r.case for r in mine}
        arms.append(
            ArmCount(
                arm=arm,
                reads=len(mine),
                readers=len({r.reader for r in mine}),
                cases=len(cases),
                positive_cases=sum(1 for c in cases if truth.get(c) is True),
                negative_cases=sum(1 for c in cases if truth.get(c) is False),
            )
        )

    def bad_number(value) -> bool:
        return value is None or not math.isfinite(float(value))

    excluded = {
        "training trial (feedback shown; not analysed)": sum(r.kind == "training" for r in reads),
        "attention-check trial (not analysed)": sum(r.kind == "attention" for r in reads),
        "unknown truth (left out of every accuracy and ROC analysis)": sum(
            r.truth is None for r in main
        ),
        "no final diagnosis (left out of the proportions, accuracy and agreement)": sum(
            r.final_positive is None for r in main
        ),
        "no final confidence (left out of the ROC analysis)": sum(
            bad_number(r.final_confidence) for r in main
        ),
        "no reading time (left out of the reading-time model)": sum(
            bad_number(r.seconds) or r.seconds <= 0 for r in main
        ),
    }
    if meta.two_stage:
        excluded[
            "no first-stage diagnosis (left out of the first-stage proportions and reliance)"
        ] = sum(r.first_positive is None for r in main)
    experienced = {
        r.reader
        for r in main
        if r.reader_experience is not None and math.isfinite(r.reader_experience)
    }
    known = {a.code for a in meta.arms}
    cells = [(r.reader, r.arm, r.case) for r in main]
    return Counts(
        readers=len({r.reader for r in main}),
        cases=len({r.case for r in main}),
        main_reads=len(main),
        all_reads=len(reads),
        arms=tuple(arms),
        excluded=excluded,
        arms_not_in_meta=tuple(a for a in arms_of(main) if a not in known),
        readers_with_experience=len(experienced),
        duplicate_reads=len(cells) - len(set(cells)),
        empty_explanations=empty_explanation_counts(main, conf_level=meta.conf_level),
    )


def count_section(reads: Sequence[Read], main: Sequence[Read], meta: StudyMeta) -> Section:
    counts = counts_of(reads, main, meta)
    notes = []
    if counts.duplicate_reads:
        notes.append(
            f"{counts.duplicate_reads} main reads repeat a reader, arm and case "
            "already read; the OR analyses refuse such data"
        )
    if counts.arms_not_in_meta:
        notes.append(
            "arms with reads but no description in the study metadata: "
            + ", ".join(counts.arms_not_in_meta)
        )
    return Section(result=counts, notes=tuple(notes))
