"""What every change to a draft does first: lock the study's row and check it is still a draft."""

from __future__ import annotations

from core.errors import ServiceError
from studies.models import Study


def locked_study(study: Study) -> Study:
    """Lock the study's row so concurrent edits serialize, and re-read it (in place, so the
    caller's object shows the change)."""
    Study.objects.select_for_update().filter(pk=study.pk).first()
    study.refresh_from_db()
    return study


def require_draft(study: Study) -> None:
    if study.status != Study.Status.DRAFT:
        raise ServiceError(
            f"study '{study.title}' is {study.status}: its configuration was frozen when it opened"
            " and can no longer be changed"
        )
