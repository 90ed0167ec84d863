from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from core.permissions import is_coordinator


@login_required
def home(request):
    if is_coordinator(request.user):
        return redirect("studies:study-list")
    if request.user.enrollments.exists():
        return redirect("studies:reader-home")
    return render(request, "core/home.html")
