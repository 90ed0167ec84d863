"""Pages of the analysis app: a study's reports (request, live progress, audited downloads)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from analysis import export, selectors, services
from analysis.models import StudyReport
from core.errors import ServiceError
from studies.models import Study, StudyRole
from studies.selectors import study_can_view, study_has_role


def _study(request, study_id: int) -> Study:
    study = get_object_or_404(Study, pk=study_id)
    if not study_can_view(study=study, user=request.user):
        raise Http404("no such study")
    return study


def _report(request, report_uid) -> StudyReport:
    report = get_object_or_404(StudyReport.objects.select_related("study"), uid=report_uid)
    if report not in selectors.report_list(
        study=report.study, user=request.user
    ) or not study_can_view(study=report.study, user=request.user):
        raise Http404("no such report")
    return report


@login_required
def report_list(request, study_id: int):
    """The study's reports; with ``?ratings=FORMAT``, the closed study's ratings for iMRMC,
    MRMCaov or RJafroc (an audited download, with the same permission rule as this page)."""
    study = _study(request, study_id)
    if "ratings" in request.GET:
        return _ratings_download(request, study, request.GET["ratings"])
    reports = selectors.report_list(study=study, user=request.user)
    return render(
        request,
        "analysis/report_list.html",
        {
            "study": study,
            "reports": [(r, selectors.report_progress(report=r)) for r in reports[:50]],
            "is_statistician": study_has_role(
                study=study, user=request.user, role=StudyRole.Role.STATISTICIAN
            ),
            "is_draft": study.status == Study.Status.DRAFT,
            "is_closed": study.status == Study.Status.CLOSED,
            "fom_choices": StudyReport.Fom.choices,
            "cov_choices": StudyReport.COV_CHOICES,
            "interop_formats": [
                (fmt, what) for fmt, (_, _, what) in export.INTEROP_FORMATS.items()
            ],
            "current": "report-list",
        },
    )


@login_required
@require_POST
def report_request(request, study_id: int):
    study = _study(request, study_id)
    try:
        services.report_request(
            acting_user=request.user,
            study=study,
            unblinded=request.POST.get("unblinded") == "1",
            fom=request.POST.get("fom", "auc"),
            cov_method=request.POST.get("cov_method", "jackknife"),
        )
    except PermissionError as exc:
        messages.error(request, str(exc))
    except ServiceError as exc:
        for problem in exc.problems:
            messages.error(request, problem)
    else:
        messages.success(request, "Report requested; it builds in the background (progress below).")
    return redirect("analysis:report-list", study_id=study.pk)


@login_required
def report_progress(request, report_uid):
    return JsonResponse(selectors.report_progress(report=_report(request, report_uid)))


@login_required
def report_file(request, report_uid, kind: str):
    report = _report(request, report_uid)
    try:
        name, content_type, filename = services.report_download(
            acting_user=request.user, report=report, kind=kind
        )
    except PermissionError as exc:
        raise Http404(str(exc)) from None
    except ServiceError as exc:
        return render(
            request, "analysis/report_unavailable.html", {"problems": exc.problems}, status=404
        )
    inline = kind in ("html", "pdf") and request.GET.get("download") != "1"
    try:
        handle = default_storage.open(name, "rb")
    except OSError:  # the report row is there but its file has gone from storage
        return render(
            request,
            "analysis/report_unavailable.html",
            {
                "problems": [
                    f"the report's {kind} file is missing from storage; build the report again"
                ]
            },
            status=404,
        )
    response = FileResponse(
        handle, content_type=content_type, as_attachment=not inline, filename=filename
    )
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    if kind == "html":  # the report is self-contained: it may load nothing from anywhere
        response["Content-Security-Policy"] = (
            "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
        )
    return response


def _ratings_download(request, study: Study, fmt: str):
    try:
        content, content_type, filename = export.interop_export(
            acting_user=request.user, study=study, fmt=fmt
        )
    except PermissionError as exc:
        raise Http404(str(exc)) from None
    except ServiceError as exc:
        return render(
            request, "analysis/report_unavailable.html", {"problems": exc.problems}, status=404
        )
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
