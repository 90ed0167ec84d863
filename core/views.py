from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from core.health import run_checks
from core.permissions import is_coordinator


@login_required
def home(request):
    if is_coordinator(request.user):
        return redirect("studies:study-list")
    if request.user.enrollments.exists():
        return redirect("studies:reader-home")
    return render(request, "core/home.html")


@never_cache
@require_safe
def health(request):
    """Public liveness and readiness: 200 when every check passes, 503 otherwise."""
    report = run_checks()
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)
