"""Readers' sessions and progress, the study's readers and its stored responses."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Max, Q
from django.utils import timezone

from studies.models import (
    Enrollment,
    ReadingSession,
    Response,
    Study,
    StudyRole,
)


def session_unlocks_at(*, session: ReadingSession, previous: ReadingSession | None, enrolled_at):
    """When a session becomes available: the first on enrollment; a later one when the one before
    it is complete and, if it starts a new washout period, `washout` days after that completion."""
    if previous is None:
        return enrolled_at if session.index == 0 else None
    if previous.completed_at is None:
        return None
    gap = session.unlock_after_days - previous.unlock_after_days
    return previous.completed_at + timedelta(days=max(gap, 0))


def enrollment_sessions(*, enrollment: Enrollment) -> list[dict]:
    sessions = list(
        enrollment.sessions.annotate(
            total=Count("trials"),
            done=Count("trials", filter=Q(trials__completed_at__isnull=False)),
        ).order_by("index")
    )
    now = timezone.now()
    rows, previous = [], None
    for session in sessions:
        unlocks_at = session_unlocks_at(
            session=session, previous=previous, enrolled_at=enrollment.enrolled_at
        )
        rows.append(
            {
                "index": session.index,
                "trials": session.total,
                "done": session.done,
                "unlocks_at": unlocks_at,
                "unlocked": unlocks_at is not None and unlocks_at <= now,
                "completed_at": session.completed_at,
            }
        )
        previous = session
    return rows


def study_progress(*, study: Study) -> list[dict]:
    """Per enrolled reader: trials done, sessions unlocked and done, last activity."""
    enrollments = (
        study.enrollments.select_related("reader")
        .annotate(
            trials_total=Count("sessions__trials", distinct=True),
            trials_done=Count(
                "sessions__trials",
                filter=Q(sessions__trials__completed_at__isnull=False),
                distinct=True,
            ),
            last_trial=Max("sessions__trials__completed_at"),
        )
        .order_by("reader_index")
    )
    rows = []
    for enrollment in enrollments:
        sessions = enrollment_sessions(enrollment=enrollment)
        rows.append(
            {
                "reader": enrollment.reader.get_username(),
                "reader_index": enrollment.reader_index,
                "trials_total": enrollment.trials_total,
                "trials_done": enrollment.trials_done,
                "sessions_total": len(sessions),
                "sessions_unlocked": sum(1 for s in sessions if s["unlocked"]),
                "sessions_done": sum(1 for s in sessions if s["completed_at"]),
                "last_activity": enrollment.last_activity_at or enrollment.last_trial,
                "consented": enrollment.consented_at is not None,
            }
        )
    return rows


def study_readers(*, study: Study) -> list[dict]:
    """Readers with the reader role, enrolled or waiting for the study to open."""
    enrolled = {e.reader_id: e for e in study.enrollments.all()}
    rows = []
    for member in study.roles.filter(role=StudyRole.Role.READER).select_related(
        "user__reader_profile"
    ):
        profile = getattr(member.user, "reader_profile", None)
        rows.append(
            {
                "username": member.user.get_username(),
                "enrolled": member.user_id in enrolled,
                "years_experience": profile.years_experience if profile else None,
                "specialty": profile.specialty if profile else "",
                "is_radiologist": profile.is_radiologist if profile else None,
            }
        )
    return rows


def study_responses(*, study: Study, limit: int | None = None) -> list[dict]:
    """Stored responses, newest first, as the coordinator sees them: arms as codes only."""
    responses = (
        Response.objects.filter(trial__session__enrollment__study=study)
        .select_related("trial__session__enrollment__reader", "trial__arm", "trial__case")
        .order_by("-submitted_at", "-pk")
    )
    if limit:
        responses = responses[:limit]
    return [
        {
            "reader": r.trial.session.enrollment.reader.get_username(),
            "session": r.trial.session.index + 1,
            "position": r.trial.position + 1,
            "case": r.trial.case.key,
            "arm": r.trial.arm.code,
            "kind": r.trial.kind,
            "stage": r.stage,
            "answers": r.answers,
            "seconds": r.seconds_on_stage,
            "submitted_at": r.submitted_at,
        }
        for r in responses
    ]
