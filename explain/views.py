"""Coordinator pages of the case library and the model registry."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.views import APIView

from core.errors import ServiceError
from core.permissions import IsCoordinator, is_coordinator
from explain import selectors, services
from explain.forms import CollectionForm, ImportForm, ModelRegisterForm, PrecomputeForm
from explain.models import Case, Collection


def coordinator_required(view):
    @login_required
    def wrapped(request, *args, **kwargs):
        if not is_coordinator(request.user):
            raise Http404("not found")
        return view(request, *args, **kwargs)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


@coordinator_required
@require_http_methods(["GET", "POST"])
def collection_list(request):
    form = CollectionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            collection = services.collection_create(acting_user=request.user, **form.cleaned_data)
        except ServiceError as exc:
            form.add_error("name", exc.problems)
        else:
            messages.success(request, f"Collection {collection.name} created.")
            return redirect("explain:collection-detail", collection_id=collection.pk)
    return render(
        request,
        "explain/collection_list.html",
        {
            "collections": selectors.collection_list(),
            "models": selectors.model_list(),
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
        request, "explain/collection_detail.html", {"collection": collection, "page": page}
    )


@coordinator_required
@require_http_methods(["GET", "POST"])
def collection_import(request, collection_id: int):
    collection = get_object_or_404(Collection, pk=collection_id)
    form = ImportForm(request.POST or None, request.FILES or None)
    report = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            report = services.cases_import_uploads(
                acting_user=request.user,
                collection=collection,
                files=data["files"],
                labels=data.get("labels"),
                masks=data.get("masks"),
            )
        except ServiceError as exc:
            for problem in exc.problems:
                form.add_error(None, problem)
        if report is not None and report.ok:
            messages.success(
                request,
                f"{len(report.imported)} case(s) imported, {len(report.skipped)} already present.",
            )
            return redirect("explain:collection-detail", collection_id=collection.pk)
    return render(
        request,
        "explain/collection_import.html",
        {"collection": collection, "form": form, "report": report},
    )


@coordinator_required
def case_detail(request, case_id: int):
    case = get_object_or_404(selectors.case_list_all(), pk=case_id)
    return render(request, "explain/case_detail.html", {"case": case})


CASE_FILES = {
    "display": ("display_file", "image/png"),
    "thumbnail": ("thumbnail_file", "image/png"),
    "pixels": ("pixels_file", "application/octet-stream"),
}


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


@coordinator_required
def model_detail(request, model_id: int):
    model = get_object_or_404(selectors.model_list(), pk=model_id)
    summary = selectors.explanation_metrics_summary(model=model)
    metric_names = sorted({name for entry in summary.values() for name in entry["metrics"]})
    rows = [
        (key, entry["explanations"], [entry["metrics"].get(name) for name in metric_names])
        for key, entry in summary.items()
    ]
    return render(
        request, "explain/model_detail.html", {"model": model, "metric_names": metric_names, "metric_rows": rows}
    )


@coordinator_required
@require_http_methods(["GET", "POST"])
def model_register(request):
    form = ModelRegisterForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        with services.TemporaryFolder() as folder:
            path = services.uploaded_files_to_folder([data["file"]], folder=folder)[0]
            try:
                model = services.model_register(
                    acting_user=request.user,
                    name=data["name"],
                    description=data["description"],
                    form=data["form"],
                    architecture=data["architecture"],
                    init_kwargs=data["init_kwargs"],
                    weights_path=path if data["form"] == "eager" else None,
                    torchscript_path=path if data["form"] == "torchscript" else None,
                    input_spec={
                        "size": [data["input_height"], data["input_width"]],
                        "channels": data["channels"],
                        "mean": data["mean"],
                        "std": data["std"],
                    },
                    class_labels=data["class_labels"],
                    positive_class=data["positive_class"] or None,
                    cam_layer=data["cam_layer"],
                )
            except ServiceError as exc:
                for problem in exc.problems:
                    form.add_error(None, problem)
            else:
                messages.success(request, f"Model {model.name} registered.")
                return redirect("explain:model-detail", model_id=model.pk)
    return render(request, "explain/model_register.html", {"form": form})


@coordinator_required
@require_http_methods(["GET", "POST"])
def job_list(request):
    form = PrecomputeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            job = services.precompute_start(
                acting_user=request.user,
                model=data["model"],
                collection=data["collection"],
                explainers=data["explainers"],
                placebo=data["placebo"],
                split=data["split"] or None,
                force=data["force"],
            )
        except ServiceError as exc:
            for problem in exc.problems:
                form.add_error(None, problem)
        else:
            return redirect("explain:job-detail", job_id=job.pk)
    jobs = [selectors.precompute_progress(job=job) for job in selectors.job_list()[:30]]
    return render(request, "explain/job_list.html", {"form": form, "jobs": jobs})


@coordinator_required
def job_detail(request, job_id: int):
    job = get_object_or_404(selectors.job_list(), pk=job_id)
    return render(
        request,
        "explain/job_detail.html",
        {"job": job, "progress": selectors.precompute_progress(job=job)},
    )


@coordinator_required
@require_http_methods(["POST"])
def job_cancel(request, job_id: int):
    job = get_object_or_404(selectors.job_list(), pk=job_id)
    try:
        services.precompute_cancel(acting_user=request.user, job=job)
    except ServiceError as exc:
        messages.error(request, "; ".join(exc.problems))
    else:
        messages.success(request, f"Job {job.pk} cancelled.")
    return redirect("explain:job-detail", job_id=job.pk)
