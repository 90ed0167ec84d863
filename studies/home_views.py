"""The signed-in home page: everyone's studies, by the part they play in each.

Readers with nothing but reading go straight to their reading page; coordinators and
statisticians land on a page listing the studies they coordinate, analyse and read, with the
links each role needs (a statistician: the reports and the audited reveal).
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from core.permissions import is_coordinator
from studies import selectors
from studies.models import StudyRole


@login_required
def home(request):
    by_role = selectors.studies_by_role(user=request.user)
    coordinating = by_role[StudyRole.Role.COORDINATOR]
    analysing = by_role[StudyRole.Role.STATISTICIAN]
    reading = by_role[StudyRole.Role.READER]
    can_create = is_coordinator(request.user)
    if reading and not (coordinating or analysing or can_create or request.user.is_superuser):
        return redirect("studies:reader-home")
    return render(
        request,
        "studies/home.html",
        {
            "coordinating": coordinating,
            "analysing": analysing,
            "reading": reading,
            "can_create": can_create,
            "is_site_admin": request.user.is_superuser,
        },
    )
