"""Reads of the analysis app."""

from __future__ import annotations

from django.db.models import QuerySet

from analysis.models import StudyReport
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
