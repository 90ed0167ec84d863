"""Celery tasks of the analysis app: thin wrappers that take ids."""

from __future__ import annotations

from celery import shared_task

from analysis.services import report_build


@shared_task(name="analysis.build_report", acks_late=True, reject_on_worker_lost=True)
def build_report(report_id: int) -> bool:
    return report_build(report_id=report_id)
