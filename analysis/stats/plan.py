"""The pre-registered analysis plan as the analysis reads it, and which results it pre-specified.

A study's coordinator fixes the plan before the study opens (``studies.services.plan``
validates it; the snapshot frozen at opening keeps it with the SHA-256 of its canonical JSON):
the primary endpoint (``auc``, ``accuracy``, ``sensitivity`` or ``specificity``), the figure of
merit of an AUC endpoint (``empirical_auc`` or ``binormal_auc``), the comparisons (pairs of arm
codes, minuend first), alpha and the test (``or_rrrc``, ``or_frrc`` or ``glmm``).

A difference between two arms in an Obuchowski-Rockette table is *pre-specified* when the plan
names its pair of arms (in either order: the table may show it as the other arm minus this
one), its endpoint is the plan's primary endpoint, its analysis is the plan's test (RRRC for
``or_rrrc``, FRRC for ``or_frrc``) and, for the AUC, the report's figure of merit is the
plan's. Every other result is exploratory. No Django.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

PLAN_ENDPOINTS = ("auc", "accuracy", "sensitivity", "specificity")
PLAN_FOMS = ("empirical_auc", "binormal_auc")
PLAN_TESTS = ("or_rrrc", "or_frrc", "glmm")
# the plan's figure of merit -> StudyMeta.auc_fom; the plan's test -> the OR analysis it names
FOM_OF_PLAN = {"empirical_auc": "auc", "binormal_auc": "binormal_auc"}
ANALYSIS_OF_TEST = {"or_rrrc": "rrrc", "or_frrc": "frrc"}
# an OR section's figure of merit -> the plan's endpoint it answers
ENDPOINT_OF_FOM = {"auc": "auc", "binormal_auc": "auc", "accuracy": "accuracy"}
PRESPECIFIED = "pre-specified"
EXPLORATORY = "exploratory"


@dataclass(frozen=True)
class AnalysisPlan:
    primary_endpoint: str
    comparisons: tuple[tuple[str, str], ...]  # (minuend, subtrahend)
    alpha: float
    test: str
    fom: str = "empirical_auc"
    sha256: str | None = None  # of the canonical JSON frozen in the snapshot

    @classmethod
    def from_dict(cls, plan: Mapping | None, sha256: str | None = None) -> AnalysisPlan | None:
        """The plan from its JSON form (None for an empty or missing plan)."""
        if not plan:
            return None
        return cls(
            primary_endpoint=str(plan["primary_endpoint"]),
            comparisons=tuple((str(a), str(b)) for a, b in plan.get("comparisons", ())),
            alpha=float(plan["alpha"]),
            test=str(plan["test"]),
            fom=str(plan.get("fom") or "empirical_auc"),
            sha256=sha256,
        )

    def names_pair(self, minuend: str, subtrahend: str) -> bool:
        pair = {minuend, subtrahend}
        return any(set(c) == pair for c in self.comparisons)


def fom_matches(plan: AnalysisPlan, fom: str) -> bool:
    """Whether an OR analysis of ``fom`` is the one the plan fixed for its primary endpoint."""
    if ENDPOINT_OF_FOM.get(fom) != plan.primary_endpoint:
        return False
    return plan.primary_endpoint != "auc" or FOM_OF_PLAN.get(plan.fom) == fom


def plan_status(
    plan: AnalysisPlan | None, *, fom: str, analysis: str, minuend: str, subtrahend: str
) -> str:
    """``pre-specified`` or ``exploratory`` for one difference of an OR table."""
    if plan is None or not fom_matches(plan, fom):
        return EXPLORATORY
    if ANALYSIS_OF_TEST.get(plan.test) != analysis:
        return EXPLORATORY
    return PRESPECIFIED if plan.names_pair(minuend, subtrahend) else EXPLORATORY
