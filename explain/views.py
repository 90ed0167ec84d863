"""Coordinator pages of the case library and the model registry."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from core.pages import attempt
from core.permissions import coordinator_required
from explain import selectors, services
from explain.forms import ModelRegisterForm, PrecomputeForm


@coordinator_required
def model_list(request):
    return render(request, "explain/model_list.html", {"models": selectors.model_list()})


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
        request,
        "explain/model_detail.html",
        {"model": model, "metric_names": metric_names, "metric_rows": rows},
    )


@coordinator_required
@require_http_methods(["GET", "POST"])
def model_register(request):
    form = ModelRegisterForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        model, problems = attempt(
            services.model_register_upload,
            acting_user=request.user,
            uploaded=data["file"],
            name=data["name"],
            description=data["description"],
            form=data["form"],
            architecture=data["architecture"],
            init_kwargs=data["init_kwargs"],
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
        for problem in problems:
            form.add_error(None, problem)
        if not problems:
            messages.success(request, f"Model {model.name} registered.")
            return redirect("explain:model-detail", model_id=model.pk)
    return render(request, "explain/model_register.html", {"form": form})


@coordinator_required
@require_http_methods(["GET", "POST"])
def job_list(request):
    form = PrecomputeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        job, problems = attempt(
            services.precompute_start,
            acting_user=request.user,
            model=data["model"],
            collection=data["collection"],
            explainers=data["explainers"],
            placebo=data["placebo"],
            split=data["split"] or None,
            force=data["force"],
        )
        for problem in problems:
            form.add_error(None, problem)
        if not problems:
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
    _, problems = attempt(services.precompute_cancel, acting_user=request.user, job=job)
    if problems:
        messages.error(request, "; ".join(problems))
    else:
        messages.success(request, f"Job {job.pk} cancelled.")
    return redirect("explain:job-detail", job_id=job.pk)
