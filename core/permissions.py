"""Role checks shared by views, API views and commands.

For now the case library and the model registry belong to coordinators: members
of the `coordinators` group, and site admins (superusers). Per-study roles
(coordinator, statistician, reader) come with the studies app.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404
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


def coordinator_required(view):
    """A page for coordinators only; anyone else gets 404 (the page's existence is not told)."""

    @login_required
    def wrapped(request, *args, **kwargs):
        if not is_coordinator(request.user):
            raise Http404("not found")
        return view(request, *args, **kwargs)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped
