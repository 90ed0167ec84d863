"""What every page's menu needs to know about the signed-in user: whether they coordinate (a
site role), read in a study, or coordinate or analyse one (study roles). The study roles are
asked only where a template uses them."""

from __future__ import annotations

from django.utils.functional import SimpleLazyObject

from core.permissions import is_coordinator
from studies.models import Enrollment, StudyRole


def _is_reader(user) -> bool:
    if user is None or not user.is_authenticated:
        return False
    return Enrollment.objects.filter(reader=user).exists()


def _has_study_roles(user) -> bool:
    """Coordinates or analyses (statistician) at least one study."""
    if user is None or not user.is_authenticated:
        return False
    return StudyRole.objects.filter(
        user=user, role__in=[StudyRole.Role.COORDINATOR, StudyRole.Role.STATISTICIAN]
    ).exists()


def roles(request):
    user = getattr(request, "user", None)
    return {
        "is_coordinator": is_coordinator(user),
        # Evaluated only where a template asks: whether the user is enrolled in any study.
        "is_reader": SimpleLazyObject(lambda: _is_reader(user)),
        "has_study_roles": SimpleLazyObject(lambda: _has_study_roles(user)),
    }
