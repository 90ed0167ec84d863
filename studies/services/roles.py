"""Who has a part in a study: coordinators, the statistician, readers (enrolled at once when
the study is open)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from core import audit
from core.errors import ServiceError
from core.permissions import is_coordinator
from studies.models import Study, StudyRole
from studies.services.drafts import locked_study
from studies.services.lifecycle import reader_enroll


def study_role_add(*, acting_user, study: Study, user, role: str) -> StudyRole:
    """Give a person a role in the study. A reader added to an open study is enrolled at once."""
    if role not in StudyRole.Role.values:
        raise ServiceError(
            f"unknown role {role!r}; choose one of {', '.join(StudyRole.Role.values)}"
        )
    if role == StudyRole.Role.COORDINATOR and not is_coordinator(user):
        raise ServiceError(
            f"{user.get_username()} is not a coordinator (ask a site admin to add them)"
        )
    if study.status == Study.Status.CLOSED and role != StudyRole.Role.STATISTICIAN:
        # A closed study still needs its statistician (the only person who can unblind it).
        raise ServiceError(
            f"study '{study.title}' is closed; only its statistician can still be assigned"
        )
    # The statistician can reveal what the arms are: they cannot also read the study blind.
    other = {
        StudyRole.Role.READER: StudyRole.Role.STATISTICIAN,
        StudyRole.Role.STATISTICIAN: StudyRole.Role.READER,
    }
    if (
        role in other
        and StudyRole.objects.filter(study=study, user=user, role=other[role]).exists()
    ):
        raise ServiceError(
            f"{user.get_username()} is a {other[role]} of this study; its statistician, who can see"
            " what the arms are, cannot also be one of its readers"
        )
    with transaction.atomic():
        study = locked_study(study)
        member, created = StudyRole.objects.get_or_create(study=study, user=user, role=role)
        if created:
            audit.record(
                acting_user=acting_user,
                action="study.role_add",
                obj=study,
                study=study,
                after={"user": user.get_username(), "role": role},
            )
        if role == StudyRole.Role.READER and study.status == Study.Status.OPEN:
            reader_enroll(acting_user=acting_user, study=study, reader=user)
    return member


def study_role_remove(*, acting_user, study: Study, user, role: str) -> None:
    with transaction.atomic():
        study = locked_study(study)
        if study.status == Study.Status.CLOSED and role != StudyRole.Role.STATISTICIAN:
            raise ServiceError(
                f"study '{study.title}' is closed; its readers and coordinators stay as they are"
                " (only the statistician can still be changed)"
            )
        if role == StudyRole.Role.READER and study.enrollments.filter(reader=user).exists():
            raise ServiceError(
                f"{user.get_username()} is enrolled with a frozen schedule; readers cannot be removed"
                " from an open study (their reads so far stay in the analysis)"
            )
        if role == StudyRole.Role.COORDINATOR and study.roles.filter(role=role).count() == 1:
            raise ServiceError("a study needs at least one coordinator")
        deleted, _ = StudyRole.objects.filter(study=study, user=user, role=role).delete()
        if not deleted:
            raise ServiceError(f"{user.get_username()} has no {role} role in this study")
        audit.record(
            acting_user=acting_user,
            action="study.role_remove",
            obj=study,
            study=study,
            before={"user": user.get_username(), "role": role},
        )


def user_by_username(username: str):
    try:
        return get_user_model().objects.get(username=username)
    except get_user_model().DoesNotExist:
        raise ServiceError(f"no user named {username!r}") from None
