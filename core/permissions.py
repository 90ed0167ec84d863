"""Role checks shared by views, API views and commands.

For now the case library and the model registry belong to coordinators: members
of the `coordinators` group, and site admins (superusers). Per-study roles
(coordinator, statistician, reader) come with the studies app.
"""

from __future__ import annotations

from rest_framework.permissions import BasePermission

COORDINATORS_GROUP = "coordinators"


def is_coordinator(user) -> bool:
    if not user or not user.is_authenticated or not user.is_active:
        return False
    return user.is_superuser or user.groups.filter(name=COORDINATORS_GROUP).exists()


class IsCoordinator(BasePermission):
    message = "Only study coordinators can manage the case library and the model registry."

    def has_permission(self, request, view) -> bool:
        return is_coordinator(request.user)
