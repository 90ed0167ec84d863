"""Coordinator pages of a study's people: roles and invitations (see `studies.views` for the
rules every page follows).

Every POST redirects (PRG), so reloading the page never repeats it. The invitation link, shown
once, travels to the redirected page in the session (popped when shown; only its hash is
stored in the database). A closed study takes no new readers or coordinators, but its
statistician can still be assigned or removed: the statistician is the only person who can
unblind the arms (a site admin who must unblind assigns themselves here, which is audited).
"""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from core.pages import BAD_INPUT, attempt
from studies import selectors, services
from studies.forms import InviteForm, RoleForm
from studies.models import Invitation, Study, StudyRole
from studies.views import _page, study_view

NEW_LINK_SESSION_KEY = "studies.new_invitation_link"


def invitation_state(invitation: Invitation, now=None) -> str:
    now = now or timezone.now()
    if invitation.accepted_at:
        return "accepted"
    if invitation.revoked_at:
        return "revoked"
    if invitation.expires_at <= now:
        return "expired"
    return "pending"


def _pop_new_link(request, study: Study) -> str:
    """The invitation link made by the last POST for this study, once."""
    stored = request.session.get(NEW_LINK_SESSION_KEY)
    if not stored or stored.get("study") != study.pk:
        return ""
    del request.session[NEW_LINK_SESSION_KEY]
    return stored.get("link", "")


def _people_page(
    request, study: Study, *, role_form=None, invite_form=None, problems=(), status: int = 200
):
    now = timezone.now()
    invitations = [
        {"invitation": invitation, "state": invitation_state(invitation, now)}
        for invitation in study.invitations.select_related("user", "created_by")
    ]
    closed = study.status == Study.Status.CLOSED
    return _page(
        request,
        study,
        "studies/study_people.html",
        {
            "roles": study.roles.select_related("user").order_by("role", "user__username"),
            "readers": selectors.study_readers(study=study),
            "invitations": invitations,
            "role_form": role_form or RoleForm(closed=closed),
            "invite_form": invite_form or InviteForm(),
            "problems": list(problems),
            "new_link": _pop_new_link(request, study) if request.method == "GET" else "",
            "accepts_people": not closed,
            "closed": closed,
        },
        status=status,
    )


@study_view(manage=True)
@require_http_methods(["GET", "POST"])
def study_people(request, study: Study):
    """The people of a study; a POST here gives someone a role."""
    if request.method != "POST":
        return _people_page(request, study)
    form = RoleForm(request.POST, closed=study.status == Study.Status.CLOSED)
    if not form.is_valid():
        return _people_page(request, study, role_form=form, status=BAD_INPUT)
    _, problems = attempt(
        services.study_role_add, acting_user=request.user, study=study, **form.cleaned_data
    )
    if problems:
        return _people_page(request, study, role_form=form, problems=problems, status=BAD_INPUT)
    member = form.cleaned_data["user"].get_username()
    label = StudyRole.Role(form.cleaned_data["role"]).label
    messages.success(request, f"{member} is now {label} of this study.")
    return redirect("studies:study-people", study_id=study.pk)


@study_view(manage=True)
@require_POST
def role_remove(request, study: Study):
    form = RoleForm(request.POST)
    if not form.is_valid():
        problems = [f"{field}: {' '.join(errors)}" for field, errors in form.errors.items()]
        return _people_page(request, study, problems=problems, status=BAD_INPUT)
    _, problems = attempt(
        services.study_role_remove, acting_user=request.user, study=study, **form.cleaned_data
    )
    if problems:
        return _people_page(request, study, problems=problems, status=BAD_INPUT)
    messages.success(
        request,
        f"Removed {form.cleaned_data['user'].get_username()} as {form.cleaned_data['role']}.",
    )
    return redirect("studies:study-people", study_id=study.pk)


@study_view(manage=True)
@require_POST
def invitation_create(request, study: Study):
    """Invite by e-mail, then redirect to the people page, which shows the link once (only its
    hash is stored)."""
    form = InviteForm(request.POST)
    if not form.is_valid():
        return _people_page(request, study, invite_form=form, status=BAD_INPUT)
    created, problems = attempt(
        services.invitation_create,
        acting_user=request.user,
        study=study,
        email=form.cleaned_data["email"],
        valid_days=form.cleaned_data["valid_days"],
    )
    if problems:
        return _people_page(request, study, invite_form=form, problems=problems, status=BAD_INPUT)
    invitation, token = created
    request.session[NEW_LINK_SESSION_KEY] = {
        "study": study.pk,
        "link": services.invitation_link(token),
    }
    messages.success(request, f"Invitation sent to {invitation.email}.")
    return redirect("studies:study-people", study_id=study.pk)


@study_view(manage=True)
@require_POST
def invitation_revoke(request, study: Study, invitation_id: int):
    invitation = get_object_or_404(Invitation, pk=invitation_id, study=study)
    _, problems = attempt(
        services.invitation_revoke, acting_user=request.user, invitation=invitation
    )
    if problems:
        return _people_page(request, study, problems=problems, status=BAD_INPUT)
    messages.success(request, f"Invitation of {invitation.email} revoked.")
    return redirect("studies:study-people", study_id=study.pk)
