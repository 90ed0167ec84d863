"""The reader's pages: their studies, consent, the sessions of a study, and the trial page.

Blinding: these views hand templates only what `studies.reader_selectors` returns (a study's
title, texts and the reader's own progress; a trial's `trial_payload`). Nothing here names an
arm, its explainer, a case's key or labels, or whether the AI is right. A trial or study of
another reader is a 404, as if it did not exist. Files are served through the trial's opaque
uid with the same headers whatever is behind them.
"""

from __future__ import annotations

import hashlib

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponseNotModified
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from core.pages import BAD_INPUT, attempt
from studies import reader_selectors
from studies.models import Enrollment, Study, Trial
from studies.selectors import reading
from studies.selectors.progress import enrollment_sessions
from studies.selectors.questionnaires import questionnaire_next
from studies.selectors.reading import (
    enrollment_next_trial,
    reader_refusal,
)
from studies.services.reading import enrollment_consent, trial_show

CONFLICT = 409
GONE = 410
FILE_CACHE_CONTROL = "private, max-age=86400"


# Shared checks ------------------------------------------------------------------------------


def _blocked(request, enrollment: Enrollment) -> str | None:
    """Why the reader cannot read in this study now (`reading.CLOSED` or `reading.CONSENT`)."""
    refusal = reader_refusal(user=request.user, enrollment=enrollment)
    return refusal.reason if refusal else None


def _closed_page(request, enrollment: Enrollment, *, status: int = GONE):
    sessions = enrollment_sessions(enrollment=enrollment)
    return render(
        request,
        "studies/reader/closed.html",
        {
            "study": enrollment.study,
            "trials_done": sum(s["done"] for s in sessions),
            "trials_total": sum(s["trials"] for s in sessions),
        },
        status=status,
    )


def _session_rows(sessions: list[dict]) -> list[dict]:
    now = timezone.now()
    rows = []
    for session in sessions:
        if session["trials"] and session["done"] == session["trials"]:
            state = "done"
        elif session["unlocked"]:
            state = "open"
        elif session["unlocks_at"] is not None and session["unlocks_at"] > now:
            state = "opens"
        else:
            state = "after_previous"
        rows.append({**session, "number": session["index"] + 1, "state": state})
    return rows


def _locked_message(row: dict) -> str:
    if row["state"] == "opens":
        return f"Session {row['number']} opens on {row['unlocks_at']:%Y-%m-%d %H:%M} UTC. Please come back then."
    return f"Session {row['number']} opens after the previous session is finished."


def _next_step(enrollment: Enrollment, rows: list[dict]) -> dict:
    """What the reader does next: read (`trial`), wait for a locked session, or nothing left."""
    trial = enrollment_next_trial(enrollment=enrollment)
    if trial is None:
        return {
            "kind": "finished",
            "trial": None,
            "message": "You have read every case of this study. Thank you!",
        }
    row = next(r for r in rows if r["index"] == trial.session.index)
    if row["state"] in ("opens", "after_previous"):
        return {"kind": "locked", "trial": trial, "message": _locked_message(row)}
    return {"kind": "read", "trial": trial, "message": ""}


def _session_just_done(step: dict) -> int | None:
    """The number of the session the reader has just finished when the next trial opens a later
    session not started yet: the study page is then the pause between sessions."""
    trial = step["trial"]
    if trial is None or trial.session.index == 0 or trial.session.started_at is not None:
        return None
    return trial.session.index  # the previous session's 1-based number


def _consent(request, enrollment: Enrollment) -> list[str]:
    """Record the consent the reader POSTed; the problems when it is refused."""
    try:
        version = int(request.POST.get("consent_version", ""))
    except ValueError:
        return ["the consent form was incomplete; read the text and agree again"]
    _, problems = attempt(
        enrollment_consent, acting_user=request.user, enrollment=enrollment, consent_version=version
    )
    return problems


# Pages --------------------------------------------------------------------------------------


@never_cache
@login_required
@require_GET
def reader_home(request):
    rows = reader_selectors.reader_enrollments(user=request.user)
    for row in rows:
        row["open"] = row["study"].status == Study.Status.OPEN
        row["finished"] = row["trials_total"] > 0 and row["trials_done"] == row["trials_total"]
    return render(request, "studies/reader/home.html", {"rows": rows})


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def reader_study(request, study_id: int):
    enrollment = reader_selectors.reader_enrollment_get(user=request.user, study_id=study_id)
    study = enrollment.study
    blocked = _blocked(request, enrollment)
    if blocked == reading.CLOSED:
        return _closed_page(request, enrollment, status=200 if request.method == "GET" else GONE)
    problems: list[str] = []
    consented = blocked is None
    if request.method == "POST":
        if consented:
            return redirect("studies:reader-study", study_id=study.pk)
        problems = _consent(request, enrollment)
        if not problems:
            messages.success(request, "Thank you: your consent is recorded.")
            return redirect("studies:reader-study", study_id=study.pk)
    if not consented:
        return render(
            request,
            "studies/reader/consent.html",
            {
                "study": study,
                "enrollment": enrollment,
                "reconsent": enrollment.consented_at is not None,
                "problems": problems,
            },
            status=BAD_INPUT if problems else 200,
        )
    if questionnaire_next(enrollment=enrollment):  # a finished session's questionnaires first
        return redirect("studies:reader-questionnaire", study_id=study.pk)
    rows = _session_rows(enrollment_sessions(enrollment=enrollment))
    step = _next_step(enrollment, rows)
    return render(
        request,
        "studies/reader/study.html",
        {
            "study": study,
            "sessions": rows,
            "next": step,
            "session_done": _session_just_done(step),
            "trials_done": sum(r["done"] for r in rows),
            "trials_total": sum(r["trials"] for r in rows),
        },
    )


@never_cache
@login_required
@require_GET
def reader_next(request, study_id: int):
    enrollment = reader_selectors.reader_enrollment_get(user=request.user, study_id=study_id)
    blocked = _blocked(request, enrollment)
    if blocked == reading.CLOSED:
        return _closed_page(request, enrollment)
    if blocked == reading.CONSENT:
        return redirect("studies:reader-study", study_id=study_id)
    if questionnaire_next(enrollment=enrollment):  # a finished session's questionnaires first
        return redirect("studies:reader-questionnaire", study_id=study_id)
    step = _next_step(enrollment, _session_rows(enrollment_sessions(enrollment=enrollment)))
    if step["kind"] != "read":  # the study page says why: finished, or when the session opens
        return redirect("studies:reader-study", study_id=study_id)
    return redirect("studies:reader-trial", trial_uid=step["trial"].uid)


@never_cache
@login_required
@require_GET
def reader_trial(request, trial_uid):
    trial = reader_selectors.reader_trial_get(user=request.user, trial_uid=trial_uid)
    enrollment = trial.session.enrollment
    study = enrollment.study
    blocked = _blocked(request, enrollment)
    if blocked == reading.CLOSED:
        return _closed_page(request, enrollment)
    if blocked == reading.CONSENT:
        return redirect("studies:reader-study", study_id=study.pk)
    if trial.state == Trial.State.DONE:  # answers are final and readers do not go back
        messages.info(
            request, "That case is finished; its answers cannot be changed. Here is your next case."
        )
        return redirect("studies:reader-next", study_id=study.pk)
    trial, problems = attempt(trial_show, acting_user=request.user, trial=trial)
    if problems:
        return render(
            request,
            "studies/reader/blocked.html",
            {"study": study, "problems": problems},
            status=CONFLICT,
        )
    return render(
        request,
        "studies/reader/trial.html",
        {"study": study, "trial": trial, "payload": reader_selectors.trial_payload(trial=trial)},
    )


@login_required
@require_GET
def reader_trial_file(request, trial_uid, name: str):
    """A file of the reader's trial. The headers are the same for every file of a kind: no file
    name, and an ETag that is a digest, so nothing names the case or what computed the file."""
    trial = reader_selectors.reader_trial_get(user=request.user, trial_uid=trial_uid)
    if _blocked(request, trial.session.enrollment):
        raise Http404("not available")
    storage_name, content_type = reader_selectors.trial_file(trial=trial, name=name)
    if not storage_name or not default_storage.exists(storage_name):
        raise Http404("not available")
    size = default_storage.size(storage_name)
    etag = '"{}"'.format(
        hashlib.sha256(f"{trial.uid}\0{name}\0{storage_name}\0{size}".encode()).hexdigest()[:32]
    )
    if etag in [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")]:
        response = HttpResponseNotModified()
    else:
        response = FileResponse(default_storage.open(storage_name, "rb"), content_type=content_type)
        if "Content-Disposition" in response:  # FileResponse adds the stored file's name
            del response["Content-Disposition"]
    response["ETag"] = etag
    response["Cache-Control"] = FILE_CACHE_CONTROL
    response["X-Content-Type-Options"] = "nosniff"
    return response
