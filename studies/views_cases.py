"""Coordinator pages of a study's cases and its readiness (see `studies.views` for the rules
every page follows).

The case page lists the splits of the study's collections (with case counts) for the seeded
selection, the chosen cases with their role, ground truth and the AI's prediction (the
coordinator is configuring the study; none of this tells arms apart), and lets cases be picked
by hand or excluded. The readiness page lists what each arm still misses, the warnings that do
not stop the study from opening, and the cases whose explanation highlights nothing.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from core.pages import BAD_INPUT, attempt, flash_problems
from studies import selectors, services
from studies.forms import CaseExcludeForm, CasePickForm, CaseSelectForm
from studies.models import Study, StudyCase
from studies.views import _page, study_view


def _form_problems(form) -> list[str]:
    return [
        message if field == "__all__" else f"{form.fields[field].label or field}: {message}"
        for field, errors in form.errors.items()
        for message in errors
    ]


def _counts_message(counts: dict) -> str:
    return ", ".join(f"{n} {role}" for role, n in counts.items())


# Cases --------------------------------------------------------------------------------------


def _available_split(request, splits: list[dict]) -> str | None:
    """The split whose available cases are listed (?split=; none given: every split)."""
    wanted = request.GET.get("split")
    return wanted if wanted is not None and any(row["split"] == wanted for row in splits) else None


def _cases_page(
    request, study: Study, *, select_form=None, pick_form=None, problems=(), status: int = 200
):
    splits = selectors.study_case_splits(study=study)
    chosen = selectors.study_case_rows(study=study)
    counts = dict.fromkeys(StudyCase.Role.values, 0)
    for row in chosen:
        counts[row["role"]] += 1
    shown_split = _available_split(request, splits)
    return _page(
        request,
        study,
        "studies/study_cases.html",
        {
            "form": select_form or CaseSelectForm(splits=splits),
            "pick_form": pick_form or CasePickForm(),
            "problems": list(problems),
            "counts": [(StudyCase.Role(role).label, n) for role, n in counts.items()],
            "collections": study.collections.all(),
            "splits": splits,
            "chosen": chosen,
            "available": selectors.study_available_cases(study=study, split=shown_split),
            "shown_split": shown_split,
        },
        status=status,
    )


@study_view(manage=True)
@require_http_methods(["GET", "POST"])
def study_cases(request, study: Study):
    """The case page; a POST here makes the seeded selection (replacing the current one)."""
    if request.method != "POST":
        return _cases_page(request, study)
    form = CaseSelectForm(request.POST, splits=selectors.study_case_splits(study=study))
    if not form.is_valid():
        return _cases_page(request, study, select_form=form, status=BAD_INPUT)
    counts, problems = attempt(
        services.study_cases_select, acting_user=request.user, study=study, **form.cleaned_data
    )
    if problems:
        return _cases_page(request, study, select_form=form, problems=problems, status=BAD_INPUT)
    messages.success(request, f"Cases chosen: {_counts_message(counts)}.")
    return redirect("studies:study-cases", study_id=study.pk)


@study_view(manage=True)
@require_POST
def cases_add(request, study: Study):
    """Add cases picked by hand (ticked or by key) in one role, keeping the others."""
    form = CasePickForm(request.POST)
    if not form.is_valid():
        return _cases_page(
            request, study, pick_form=form, problems=_form_problems(form), status=BAD_INPUT
        )
    counts, problems = attempt(
        services.study_cases_add, acting_user=request.user, study=study, **form.service_values()
    )
    if problems:
        return _cases_page(request, study, pick_form=form, problems=problems, status=BAD_INPUT)
    messages.success(request, f"Cases added; the study now has {_counts_message(counts)}.")
    url = reverse("studies:study-cases", kwargs={"study_id": study.pk})
    shown = request.POST.get("shown_split")
    return redirect(f"{url}?{urlencode({'split': shown})}" if shown is not None else url)


@study_view(manage=True)
@require_POST
def cases_exclude(request, study: Study):
    """Take the ticked cases out of the selection (from the case page or the readiness page's
    list of empty explanations)."""
    form = CaseExcludeForm(request.POST)
    back = (
        "studies:study-readiness"
        if request.POST.get("back") == "readiness"
        else "studies:study-cases"
    )
    problems = _form_problems(form) if not form.is_valid() else []
    if not problems:
        counts, problems = attempt(
            services.study_cases_exclude,
            acting_user=request.user,
            study=study,
            case_ids=form.cleaned_data["case_ids"],
        )
    if problems:
        if back == "studies:study-readiness":
            return _readiness_page(request, study, problems=problems, status=BAD_INPUT)
        return _cases_page(request, study, problems=problems, status=BAD_INPUT)
    messages.success(request, f"Cases excluded; the study now has {_counts_message(counts)}.")
    return redirect(back, study_id=study.pk)


# Readiness ----------------------------------------------------------------------------------


def _readiness_page(request, study: Study, *, problems=(), status: int = 200):
    conditions = {
        arm.code: selectors.arm_condition(arm=arm, study=study) for arm in study.arms.all()
    }
    rows = [
        {**row, "condition": conditions[row["code"]]}
        for row in selectors.arm_readiness(study=study)
    ]
    role_labels = dict(StudyCase.Role.choices)
    empty = [
        {**row, "role_label": role_labels[row["role"]]}
        for row in selectors.study_empty_explanation_rows(study=study)
    ]
    return _page(
        request,
        study,
        "studies/study_readiness.html",
        {
            "rows": rows,
            "ai_wrong": selectors.study_ai_wrong(study=study),
            "warnings": selectors.study_warnings(study=study)
            if study.status == Study.Status.DRAFT
            else [],
            "empty": empty,
            "problems": list(problems),
            "precompute_url": reverse("explain:job-list"),
        },
        status=status,
    )


@study_view()
def study_readiness(request, study: Study):
    return _readiness_page(request, study)


@study_view(manage=True)
@require_POST
def study_precompute(request, study: Study):
    jobs, problems = attempt(services.study_precompute, acting_user=request.user, study=study)
    if problems:
        flash_problems(request, problems)
        return redirect("studies:study-readiness", study_id=study.pk)
    for job in jobs:
        messages.success(
            request,
            f"Precompute job {job.pk} started on {job.collection.name}; results that exist are reused.",
        )
    return redirect("studies:study-readiness", study_id=study.pk)
