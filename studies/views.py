"""Coordinator pages of the studies app, and the invitation page readers open.

Views parse input with `studies.forms`, call one service (writes) or selectors (reads) and
render. A ServiceError's problems are listed on the page with HTTP 400 (`core.pages.attempt`).
Only people who may view a study (its coordinators, site admins, its statistician) see that its
pages exist; writes need `study_can_manage`. The explainer behind an arm appears only through
`arm_condition` (draft only) and the statistician's audited reveal.

This module holds the access decorator, the study list, the overview (open and close), the
details, progress, the statistician's reveal, the audit trail and the invitation link; arms and
questions are in `views_questions`, cases and readiness in `views_cases`, people in
`views_people`.
"""

from __future__ import annotations

import csv
from functools import wraps
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.pages import BAD_INPUT, attempt
from core.permissions import is_coordinator
from studies import selectors, services
from studies.forms import (
    AuditFilterForm,
    ConfirmForm,
    InvitationAcceptForm,
    StudyCreateForm,
    StudyEditForm,
)
from studies.models import Study, StudyRole

FORBIDDEN = 403
GONE = 410


# Access -------------------------------------------------------------------------------------


def study_view(*, manage: bool = False):
    """Load the study named by `study_id` for a signed-in user who may view it (others: 404);
    with manage=True, POSTs also need `study_can_manage` (the statistician: 403)."""

    def decorate(view):
        @login_required
        @wraps(view)
        def wrapped(request, study_id: int, *args, **kwargs):
            study = get_object_or_404(Study.objects.select_related("model"), pk=study_id)
            if not selectors.study_can_view(study=study, user=request.user):
                raise Http404("not found")
            can_manage = selectors.study_can_manage(study=study, user=request.user)
            if manage and request.method == "POST" and not can_manage:
                raise PermissionDenied("only the study's coordinators can change it")
            request.study_can_manage = can_manage
            return view(request, study, *args, **kwargs)

        return wrapped

    return decorate


def _page(request, study: Study, template: str, context: dict, *, status: int = 200):
    base = {
        "study": study,
        "can_manage": request.study_can_manage,
        "is_draft": study.status == Study.Status.DRAFT,
        "is_statistician": selectors.study_has_role(
            study=study, user=request.user, role=StudyRole.Role.STATISTICIAN
        ),
    }
    return render(request, template, {**base, **context}, status=status)


# List and create ----------------------------------------------------------------------------


@login_required
def study_list(request):
    return render(
        request,
        "studies/study_list.html",
        {
            "studies": selectors.study_list_for_user(user=request.user),
            "can_create": is_coordinator(request.user),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def study_create(request):
    if not is_coordinator(request.user):
        raise Http404("not found")
    form = StudyCreateForm(request.POST or None)
    problems: list[str] = []
    if request.method == "POST" and form.is_valid():
        study, problems = attempt(
            services.study_create, acting_user=request.user, **form.service_values()
        )
        if not problems:
            messages.success(request, f"Study '{study.title}' created as a draft.")
            return redirect("studies:study-detail", study_id=study.pk)
    status = BAD_INPUT if problems or form.errors else 200
    return render(
        request, "studies/study_create.html", {"form": form, "problems": problems}, status=status
    )


# Overview, open and close -------------------------------------------------------------------


def _overview(request, study: Study, *, problems_from_action=(), status: int = 200):
    draft = study.status == Study.Status.DRAFT
    return _page(
        request,
        study,
        "studies/study_detail.html",
        {
            "opening_problems": selectors.study_problems(study=study) if draft else [],
            "warnings": selectors.study_warnings(study=study) if draft else [],
            "problems": list(problems_from_action),
            "steps": selectors.study_checklist(study=study) if draft else [],
            "confirm_form": ConfirmForm(),
        },
        status=status,
    )


@study_view()
def study_detail(request, study: Study):
    return _overview(request, study)


def _lifecycle_action(service, done_message: str):
    @study_view(manage=True)
    @require_POST
    def action(request, study: Study):
        form = ConfirmForm(request.POST)
        if not form.is_valid():
            return _overview(
                request,
                study,
                problems_from_action=["tick the confirmation box first"],
                status=BAD_INPUT,
            )
        _, problems = attempt(service, acting_user=request.user, study=study)
        if problems:
            return _overview(request, study, problems_from_action=problems, status=BAD_INPUT)
        messages.success(request, done_message)
        return redirect("studies:study-detail", study_id=study.pk)

    return action


study_open = _lifecycle_action(
    services.study_open,
    "The study is open: its configuration is frozen and its readers are enrolled.",
)
study_close = _lifecycle_action(services.study_close, "The study is closed: no new reads start.")


# Details and design -------------------------------------------------------------------------


@study_view(manage=True)
@require_http_methods(["GET", "POST"])
def study_edit(request, study: Study):
    form = StudyEditForm.for_study(study, request.POST or None)
    problems: list[str] = []
    if request.method == "POST" and form.is_valid():
        _, problems = attempt(
            services.study_update, acting_user=request.user, study=study, **form.service_values()
        )
        if not problems:
            messages.success(request, "Details saved.")
            return redirect("studies:study-edit", study_id=study.pk)
    status = BAD_INPUT if problems or form.errors else 200
    warnings = selectors.study_warnings(study=study) if study.status == Study.Status.DRAFT else []
    return _page(
        request,
        study,
        "studies/study_edit.html",
        {"form": form, "problems": problems, "warnings": warnings},
        status=status,
    )


# Progress and the statistician's reveal -----------------------------------------------------


@study_view()
def study_progress(request, study: Study):
    return _page(
        request,
        study,
        "studies/study_progress.html",
        {"rows": selectors.study_progress(study=study)},
    )


RESPONSES_SHOWN = 500


@study_view()
def study_responses(request, study: Study):
    rows = selectors.study_responses(study=study, limit=RESPONSES_SHOWN)
    return _page(
        request, study, "studies/study_responses.html", {"rows": rows, "limit": RESPONSES_SHOWN}
    )


@study_view()
@require_http_methods(["GET", "POST"])
def study_reveal(request, study: Study):
    """The statistician's unblinding page. Every reveal is recorded in the audit trail. Anyone
    else who may see the study (its coordinators, site admins) gets a 403 page saying who can
    unblind and how a site admin who must do it becomes the study's statistician."""
    if not selectors.study_has_role(
        study=study, user=request.user, role=StudyRole.Role.STATISTICIAN
    ):
        return _page(
            request,
            study,
            "studies/study_reveal_refused.html",
            {"is_site_admin": request.user.is_superuser},
            status=FORBIDDEN,
        )
    arms = None
    if request.method == "POST":
        try:
            arms = services.study_arms_reveal(acting_user=request.user, study=study)
        except PermissionError as exc:
            raise PermissionDenied(str(exc)) from None
    return _page(request, study, "studies/study_reveal.html", {"arms": arms})


# The study's audit trail ----------------------------------------------------------------------

AUDIT_PAGE_SIZE = 50


class _Echo:
    """A file-like object whose write returns what it is given (for streaming a CSV)."""

    def write(self, value: str) -> str:
        return value


def _audit_filter_form(request, study: Study) -> AuditFilterForm:
    choices = selectors.audit_filter_choices(study=study)
    return AuditFilterForm(request.GET, actions=choices["actions"], actors=choices["actors"])


@study_view()
@require_GET
def study_audit(request, study: Study):
    """Who did what to the study, when and from where; filters and pages (GET)."""
    form = _audit_filter_form(request, study)
    if not form.is_valid():
        return _page(
            request, study, "studies/study_audit.html", {"form": form, "rows": []}, status=BAD_INPUT
        )
    entries = selectors.audit_entries_for_study(study=study, **form.filters())
    page = Paginator(entries, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    query = urlencode(
        [(key, value) for key, value in request.GET.items() if key != "page" and value]
    )
    return _page(
        request,
        study,
        "studies/study_audit.html",
        {
            "form": form,
            "listed": True,
            "page": page,
            "rows": selectors.audit_page_rows(entries=page.object_list, study=study),
            "query": query,
        },
    )


@study_view()
@require_GET
def study_audit_csv(request, study: Study):
    """The (filtered) audit trail as CSV, streamed; the export is recorded in the trail."""
    form = _audit_filter_form(request, study)
    if not form.is_valid():
        problems = [
            f"{field}: {message}" if field != "__all__" else message
            for field, messages_ in form.errors.items()
            for message in messages_
        ]
        return HttpResponse(
            "\n".join(problems) + "\n", status=BAD_INPUT, content_type="text/plain; charset=utf-8"
        )
    try:
        rows = services.study_audit_export(acting_user=request.user, study=study, **form.filters())
    except PermissionError:
        raise Http404("not found") from None
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in rows), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="study-{study.pk}-audit.csv"'
    response["Cache-Control"] = "private, no-store"
    return response


# Invitation ---------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def invitation_accept(request, token: str):
    """A reader's invitation link: sets up their account (or adds the study to the signed-in
    one) and gives them the reader role. An unusable link answers 410 with the reason."""
    invitation, unusable = attempt(services.invitation_get_valid, token=token)
    if unusable:
        return render(
            request, "studies/invitation_invalid.html", {"problems": unusable}, status=GONE
        )
    signed_in = request.user.is_authenticated
    form = None if signed_in else InvitationAcceptForm(request.POST or None)
    problems: list[str] = []
    if request.method == "POST" and (form is None or form.is_valid()):
        values = {"acting_user": request.user} if signed_in else form.service_values()
        reader, problems = attempt(services.invitation_accept, token=token, **values)
        if not problems:
            if not signed_in:
                login(request, reader, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(
                request, f"Welcome! You are a reader in '{invitation.study.reader_facing_title}'."
            )
            return redirect("home")
    status = BAD_INPUT if problems or (form is not None and form.errors) else 200
    return render(
        request,
        "studies/invitation_accept.html",
        {"invitation": invitation, "form": form, "problems": problems, "signed_in": signed_in},
        status=status,
    )
