from __future__ import annotations

from django.http import JsonResponse
from django.shortcuts import redirect
from django.templatetags.static import static
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from core.health import run_checks


@require_safe
def favicon(request):
    """Browsers ask for /favicon.ico whatever the page says; answer with the static icon."""
    return redirect(static("favicon.ico"), permanent=True)


@never_cache
@require_safe
def health(request):
    """Public liveness and readiness: 200 when every check passes, 503 otherwise."""
    report = run_checks()
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)
