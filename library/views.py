"""Coordinator pages of the case library."""

from __future__ import annotations

from django.contrib import messages
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.views import APIView

from core.pages import BAD_INPUT, attempt
from core.permissions import IsCoordinator, coordinator_required
from library import selectors, services
from library.forms import ClinicalHistoryForm, CollectionForm, ImportForm
from library.models import Case, Collection

CASE_FILES = {
    "display": ("display_file", "image/png"),
    "thumbnail": ("thumbnail_file", "image/png"),
    "pixels": ("pixels_file", "application/octet-stream"),
}


@coordinator_required
@require_http_methods(["GET", "POST"])
def collection_list(request):
    form = CollectionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        collection, problems = attempt(
            services.collection_create, acting_user=request.user, **form.cleaned_data
        )
        if problems:
            form.add_error("name", problems)
        else:
            messages.success(request, f"Collection {collection.name} created.")
            return redirect("library:collection-detail", collection_id=collection.pk)
    return render(
        request,
        "library/collection_list.html",
        {
            "collections": selectors.collection_list(),
            "form": form,
        },
    )


@coordinator_required
def collection_detail(request, collection_id: int):
    collection = get_object_or_404(selectors.collection_list(), pk=collection_id)
    page = Paginator(selectors.case_list(collection=collection), 60).get_page(
        request.GET.get("page")
    )
    return render(
        request, "library/collection_detail.html", {"collection": collection, "page": page}
    )


@coordinator_required
@require_http_methods(["GET", "POST"])
def collection_import(request, collection_id: int):
    collection = get_object_or_404(Collection, pk=collection_id)
    form = ImportForm(request.POST or None, request.FILES or None)
    report = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data  # files, labels, masks: the service's own arguments
        report, problems = attempt(
            services.cases_import_uploads, acting_user=request.user, collection=collection, **data
        )
        for problem in problems:
            form.add_error(None, problem)
        if report is not None and report.ok:
            messages.success(
                request,
                f"{len(report.imported)} case(s) imported, {len(report.skipped)} already present.",
            )
            return redirect("library:collection-detail", collection_id=collection.pk)
    return render(
        request,
        "library/collection_import.html",
        {"collection": collection, "form": form, "report": report},
    )


@coordinator_required
@require_http_methods(["GET", "POST"])
def case_detail(request, case_id: int):
    case = get_object_or_404(selectors.case_list_all(), pk=case_id)
    form = ClinicalHistoryForm(
        request.POST or None, initial={"clinical_history": case.clinical_history}
    )
    if request.method == "POST":
        problems = []
        if form.is_valid():
            _, problems = attempt(
                services.case_clinical_history_set,
                acting_user=request.user,
                case=case,
                **form.cleaned_data,
            )
            if not problems:
                messages.success(request, "Clinical history saved.")
                return redirect("library:case-detail", case_id=case.pk)
        for problem in problems:
            form.add_error("clinical_history", problem)
        return render(
            request, "library/case_detail.html", {"case": case, "form": form}, status=BAD_INPUT
        )
    return render(request, "library/case_detail.html", {"case": case, "form": form})


class CaseFileView(APIView):
    """A case's stored image files, for coordinators (session or API authentication)."""

    permission_classes = [IsCoordinator]

    @extend_schema(responses={(200, "image/png"): OpenApiTypes.BINARY})
    def get(self, request, case_id: int, kind: str):
        if kind not in CASE_FILES:
            raise Http404("not found")
        case = get_object_or_404(Case, pk=case_id)
        field, content_type = CASE_FILES[kind]
        name = getattr(case, field).name
        if not name or not default_storage.exists(name):  # a case row without that file
            raise Http404("this case has no such file")
        response = FileResponse(default_storage.open(name, "rb"), content_type=content_type)
        response["Cache-Control"] = "private, max-age=86400, immutable"
        return response


@coordinator_required
def mask_file(request, case_id: int):
    case = get_object_or_404(selectors.case_list_all(), pk=case_id)
    mask = case.masks.first()
    if mask is None:
        raise Http404("this case has no lesion mask")
    try:
        handle = default_storage.open(mask.file.name, "rb")
    except OSError:  # the row is there but its file has gone from storage
        raise Http404("this case's lesion mask file is missing from storage") from None
    return FileResponse(handle, content_type="image/png")
