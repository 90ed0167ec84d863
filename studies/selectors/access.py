"""Who may see and change which study."""

from __future__ import annotations

from django.db.models import QuerySet

from core.permissions import is_coordinator
from studies.models import (
    Enrollment,
    Study,
    StudyRole,
)


def study_list_for_user(*, user) -> QuerySet[Study]:
    """Studies the user coordinates or is the statistician of (site admins: every study)."""
    studies = Study.objects.all()
    if not user.is_superuser:
        studies = studies.filter(
            roles__user=user,
            roles__role__in=[StudyRole.Role.COORDINATOR, StudyRole.Role.STATISTICIAN],
        )
    return studies.distinct().prefetch_related("collections").select_related("model")


def studies_by_role(*, user) -> dict[str, list[Study]]:
    """The studies a user has a part in, per role ("coordinator", "statistician", "reader"),
    newest first. A study appears once per role the user holds in it."""
    rows: dict[str, list[Study]] = {role: [] for role in StudyRole.Role.values}
    if not user.is_authenticated:
        return rows
    roles = (
        StudyRole.objects.filter(user=user)
        .select_related("study", "study__model")
        .order_by("-study__created_at", "-study_id")
    )
    for role in roles:
        rows[role.role].append(role.study)
    enrolled = {study.pk for study in rows[StudyRole.Role.READER]}
    for enrollment in (
        Enrollment.objects.filter(reader=user).select_related("study").order_by("-enrolled_at")
    ):
        if enrollment.study_id not in enrolled:
            rows[StudyRole.Role.READER].append(enrollment.study)
    return rows


def study_has_role(*, study: Study, user, role: str) -> bool:
    if not user.is_authenticated:
        return False
    return StudyRole.objects.filter(study=study, user=user, role=role).exists()


def study_can_manage(*, study: Study, user) -> bool:
    """Coordinators of the study (who are still coordinators) and site admins."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return is_coordinator(user) and study_has_role(
        study=study, user=user, role=StudyRole.Role.COORDINATOR
    )


def study_can_view(*, study: Study, user) -> bool:
    """Managers and the study's statistician."""
    return study_can_manage(study=study, user=user) or study_has_role(
        study=study, user=user, role=StudyRole.Role.STATISTICIAN
    )
