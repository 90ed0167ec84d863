"""Reads of the analysis app."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from analysis.models import StudyReport
from analysis.services import study_meta
from analysis.stats.mrmc import ORResult
from analysis.stats.study_mrmc import mrmc_section
from analysis.study_data import study_reads, study_rows
from studies.models import Study, StudyRole
from studies.selectors import study_has_role


def report_list(*, study: Study, user) -> QuerySet[StudyReport]:
    """The study's reports the user may see: unblinded ones only for its statistician."""
    reports = StudyReport.objects.filter(study=study)
    if not study_has_role(study=study, user=user, role=StudyRole.Role.STATISTICIAN):
        reports = reports.filter(unblinded=False)
    return reports.select_related("created_by")


def report_progress(*, report: StudyReport) -> dict:
    return {
        "uid": str(report.uid),
        "status": report.status,
        "status_label": report.get_status_display(),
        "progress": report.progress,
        "stage": report.stage,
        "error": report.error,
        "unblinded": report.unblinded,
        "fom": report.fom,
        "fom_label": report.get_fom_display(),
        "cov_method": report.cov_method,
        "cov_method_label": report.get_cov_method_display(),
        "files": [kind for kind in StudyReport.FILES if getattr(report, f"{kind}_file")],
        "pdf_problem": report.pdf_problem,
        "created_at": report.created_at.isoformat(),
        "finished_at": report.finished_at.isoformat() if report.finished_at else None,
    }


@dataclass(frozen=True)
class StudyPilot:
    """A study's AUC OR analysis (empirical AUC, jackknife covariance) as a power pilot, or why
    it cannot be one."""

    result: ORResult | None
    reason: str = ""

    @property
    def arm_aucs(self) -> list[tuple[str, float]]:
        if self.result is None:
            return []
        return list(zip(self.result.treatments, map(float, self.result.arm_means), strict=True))


def study_pilot(*, study: Study) -> StudyPilot:
    """The study's OR analysis of the AUC of the final confidence, as its report runs it (blinded:
    arms by code), when it has at least two arms and two readers."""
    if study.status == Study.Status.DRAFT:
        return StudyPilot(None, "a draft study has no responses yet")
    rows = study_rows(study=study)
    section = mrmc_section(study_reads(rows), study_meta(study=study, unblinded=False), "auc")
    if not section.ok:
        return StudyPilot(None, section.reason or "the study has no OR analysis of the AUC yet")
    result = section.result.or_result
    if len(result.treatments) < 2:
        return StudyPilot(None, "the study's analysis has one arm: no comparison to power")
    return StudyPilot(result)
