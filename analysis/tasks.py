"""Celery tasks of the analysis app: thin wrappers that take ids."""

from __future__ import annotations

from analysis.services import report_build
from core.tasks import task


@task(name="analysis.build_report")
def build_report(report_id: int) -> bool:
    return report_build(report_id=report_id)
