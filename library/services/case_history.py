"""Writes of a case's clinical history (the coordinator's edit; imports set it from the labels
CSV in case_storing)."""

from __future__ import annotations

from django.db import transaction

from core import audit
from core.errors import ServiceError
from core.permissions import is_coordinator
from library.clinical_history import clinical_history_clean, clinical_history_problem
from library.models import Case


def case_clinical_history_set(*, acting_user, case: Case, clinical_history: str) -> Case:
    """Set (or, with blank text, clear) a case's clinical history; audited when it changes.

    The text is cleaned (control characters dropped, ends stripped) and refused when it is
    longer than the limit."""
    if not is_coordinator(acting_user):
        raise ServiceError("only coordinators can edit a case's clinical history")
    if not isinstance(clinical_history, str):
        raise ServiceError("the clinical history must be text")
    text = clinical_history_clean(clinical_history)
    problem = clinical_history_problem(text)
    if problem is not None:
        raise ServiceError(problem)
    with transaction.atomic():
        locked = Case.objects.select_for_update().get(pk=case.pk)
        before = locked.clinical_history
        if text != before:
            locked.clinical_history = text
            locked.save(update_fields=["clinical_history"])
            audit.record(
                acting_user=acting_user,
                action="case.clinical_history",
                obj=locked,
                before={"clinical_history": before},
                after={"clinical_history": text},
            )
    case.clinical_history = text
    return case
