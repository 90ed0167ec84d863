"""A reader's writes: consent, and the trial state machine the server holds.

    pending --show--> shown --answer(first)--> first_answered --reveal--> revealed --answer(final)--> done
                        \\------------------- answer(final), one-stage trials -------------------/

A trial has two stages when the study is read in two stages and its arm shows the AI;
otherwise it has only the final stage (the AI output, if any, is shown from the start).
A response is stored once: a replay with the same client key returns the stored response,
a second answer with another key is refused. Readers cannot skip ahead or go back: only
the next trial of their schedule (in an unlocked session) can be shown or answered.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from core import audit
from core.errors import ServiceError
from studies.models import Enrollment, Question, ReadingSession, Response, Study, Trial
from studies.selectors.reading import (
    ANOTHER_READER,
    questions_for,
    reader_refusal,
    trial_stages,
)
from studies.services.questionnaires import require_no_questionnaire_due

MAX_FREE_TEXT = 5000
CONFIDENCE_RANGES = {"slider100": (0, 100), "scale5": (1, 5), "scale7": (1, 7)}
PROBABILITY_RANGE = (0, 100)
# Kinds answered with one of the question's options.
CHOICE_KINDS = (Question.Kind.DIAGNOSIS, Question.Kind.ADVICE, Question.Kind.ORDINAL)
INTERACTION_KEYS = {
    "window_changes": int,
    "zoom_changes": int,
    "pan_changes": int,
    "invert_toggles": int,
    "resets": int,
    "overlay_toggles": int,
    "overlay_visible_ms": int,
    "overlay_opacity": float,
    "presets_used": int,
    "viewer_ms": int,
}


class AnswerError(ServiceError):
    """Answers that cannot be stored; `fields` maps a question key to what is wrong with it."""

    def __init__(self, fields: dict[str, str], problems: list[str] | None = None):
        self.fields = fields
        super().__init__(problems or [f"{key}: {message}" for key, message in fields.items()])


def _check_answer(question: Question, value: Any) -> tuple[Any, str | None]:
    empty = value is None or (isinstance(value, str) and not value.strip())
    if empty:
        return None, ("an answer is required" if question.required else None)
    kind = question.kind
    if kind in CHOICE_KINDS:  # one of the question's options (advice: the fixed three)
        if not isinstance(value, str) or value not in question.options:
            return None, f"choose one of: {', '.join(question.options)}"
        return value, None
    if kind == Question.Kind.FREE_TEXT:
        if not isinstance(value, str):
            return None, "must be text"
        if len(value) > MAX_FREE_TEXT:
            return None, f"at most {MAX_FREE_TEXT} characters"
        return value.strip(), None
    if kind == Question.Kind.CONFIDENCE:
        low, high = CONFIDENCE_RANGES[question.scale or "slider100"]
    elif kind == Question.Kind.PROBABILITY:
        low, high = PROBABILITY_RANGE
    else:  # Likert
        low, high = 1, question.points or 5
    number = _whole_number(value)
    if number is None:
        return None, f"must be a whole number from {low} to {high}"
    if not low <= number <= high:
        return None, f"must be from {low} to {high}"
    return number, None


def _whole_number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _clean_answers(questions: list[Question], answers: Any) -> dict:
    if not isinstance(answers, dict):
        raise AnswerError({}, ["answers must be an object of question key -> answer"])
    known = {q.key for q in questions}
    fields: dict[str, str] = {}
    for key in answers:
        if key not in known:
            fields[str(key)] = "this question is not asked at this stage"
    cleaned = {}
    for question in questions:
        value, problem = _check_answer(question, answers.get(question.key))
        if problem:
            fields[question.key] = problem
        elif value is not None:
            cleaned[question.key] = value
    if fields:
        raise AnswerError(fields)
    return cleaned


def _clean_interactions(interactions: Any) -> dict:
    if not isinstance(interactions, dict):
        return {}
    cleaned = {}
    for key, kind in INTERACTION_KEYS.items():
        value = interactions.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        value = kind(value)
        if value < 0 or value > 10**9:
            continue
        cleaned[key] = value
    return cleaned


def _check_reader_may_act(*, acting_user, trial: Trial) -> tuple[Enrollment, Study]:
    """The one rule (`reader_refusal`) as this module's errors: another reader's trial is a
    PermissionError (interfaces answer 404), any other refusal a ServiceError."""
    enrollment = trial.session.enrollment
    refusal = reader_refusal(user=acting_user, enrollment=enrollment, trial=trial)
    if refusal is not None and refusal.reason == ANOTHER_READER:
        raise PermissionError(refusal.message)
    if refusal is not None:
        raise ServiceError(refusal.message)
    require_no_questionnaire_due(enrollment=enrollment)  # end-of-session questionnaires first
    return enrollment, enrollment.study


def enrollment_consent(*, acting_user, enrollment: Enrollment, consent_version: int) -> Enrollment:
    """Record the reader's consent to the study's current consent text."""
    study = enrollment.study
    if enrollment.reader_id != acting_user.pk:
        raise PermissionError("only the reader can consent")
    if study.status != Study.Status.OPEN:
        raise ServiceError(f"the study '{study.reader_facing_title}' is {study.status}")
    if consent_version != study.consent_version:
        raise ServiceError("the consent text changed; read the current version and consent again")
    with transaction.atomic():
        not_yet = Q(consented_at__isnull=True) | ~Q(consent_version=consent_version)
        updated = Enrollment.objects.filter(not_yet, pk=enrollment.pk).update(
            consent_version=consent_version, consented_at=timezone.now()
        )
        enrollment.refresh_from_db()
        if updated:
            audit.record(
                acting_user=acting_user,
                action="reader.consent",
                obj=study,
                study=study,
                after={"reader": acting_user.get_username(), "consent_version": consent_version},
            )
    return enrollment


def trial_show(*, acting_user, trial: Trial) -> Trial:
    """Mark the reader's next trial as shown (first time only: resuming keeps the start time)."""
    enrollment, study = _check_reader_may_act(acting_user=acting_user, trial=trial)
    if trial.state != Trial.State.PENDING:
        return trial
    now = timezone.now()
    with transaction.atomic():
        claimed = Trial.objects.filter(pk=trial.pk, state=Trial.State.PENDING).update(
            state=Trial.State.SHOWN, started_at=now
        )
        if claimed:
            ReadingSession.objects.filter(pk=trial.session_id, started_at__isnull=True).update(
                started_at=now
            )
            Enrollment.objects.filter(pk=enrollment.pk, started_at__isnull=True).update(
                started_at=now
            )
            Enrollment.objects.filter(pk=enrollment.pk).update(last_activity_at=now)
            audit.record(
                acting_user=acting_user,
                action="trial.show",
                obj=trial,
                study=study,
                after={"state": Trial.State.SHOWN},
            )
    trial.refresh_from_db()
    return trial


def trial_reveal(*, acting_user, trial: Trial) -> Trial:
    """Two-stage reading: after the unaided answer is stored, reveal the AI output."""
    enrollment, study = _check_reader_may_act(acting_user=acting_user, trial=trial)
    if trial_stages(trial=trial, study=study) != [Response.Stage.FIRST, Response.Stage.FINAL]:
        raise ServiceError(
            "this trial shows the AI output from the start; there is nothing to reveal"
        )
    if trial.state == Trial.State.REVEALED:
        return trial
    if trial.state != Trial.State.FIRST_ANSWERED:
        raise ServiceError(
            "give your unaided answer first; the AI output is shown after it is saved"
        )
    now = timezone.now()
    with transaction.atomic():
        if Trial.objects.filter(pk=trial.pk, state=Trial.State.FIRST_ANSWERED).update(
            state=Trial.State.REVEALED, revealed_at=now
        ):
            Enrollment.objects.filter(pk=enrollment.pk).update(last_activity_at=now)
            audit.record(
                acting_user=acting_user,
                action="trial.reveal",
                obj=trial,
                study=study,
                after={"state": Trial.State.REVEALED},
            )
    trial.refresh_from_db()
    return trial


def _replay(*, key: uuid.UUID, trial: Trial, stage: str) -> Response | None:
    """The response already stored under this client key for this trial and stage, if any."""
    return Response.objects.filter(client_key=key, trial=trial, stage=stage).first()


def _state_to_answer(*, trial: Trial, stage: str, stages: list[str]) -> str:
    """The state the trial must be in for `stage` to be answered now (ServiceError: why not)."""
    if stage not in stages:
        raise ServiceError("this trial has no unaided first stage; give your final answer")
    expected = {
        Response.Stage.FIRST: Trial.State.SHOWN,
        Response.Stage.FINAL: Trial.State.REVEALED if len(stages) == 2 else Trial.State.SHOWN,
    }[stage]
    if trial.state != expected:
        if Response.objects.filter(trial=trial, stage=stage).exists():
            raise ServiceError("this stage was already answered; answers cannot be changed")
        if trial.state == Trial.State.PENDING:
            raise ServiceError("open the trial before answering")
        raise ServiceError("the AI output must be revealed before the final answer")
    return expected


def _complete_session_if_done(*, trial: Trial, now) -> None:
    """Mark the trial's session complete once none of its trials is left."""
    if not Trial.objects.filter(session=trial.session_id).exclude(state=Trial.State.DONE).exists():
        ReadingSession.objects.filter(pk=trial.session_id, completed_at__isnull=True).update(
            completed_at=now
        )


def trial_answer(
    *, acting_user, trial: Trial, stage: str, answers: Any, client_key, interactions: Any = None
) -> Response:
    """Store the reader's answers for a stage, exactly once."""
    try:
        key = uuid.UUID(str(client_key))
    except ValueError:
        raise ServiceError("the submission key must be a UUID") from None
    if trial.session.enrollment.reader_id != acting_user.pk:
        raise PermissionError("this trial belongs to another reader")
    replay = Response.objects.filter(client_key=key).first()
    if replay is not None:
        if replay.trial_id != trial.pk or replay.stage != stage:
            raise ServiceError("this submission key was already used for another answer")
        return replay
    if stage not in Response.Stage.values:
        raise ServiceError(f"unknown stage {stage!r}")
    try:
        enrollment, study = _check_reader_may_act(acting_user=acting_user, trial=trial)
        stages = trial_stages(trial=trial, study=study)
        expected = _state_to_answer(trial=trial, stage=stage, stages=stages)
    except ServiceError:
        # A retry racing its original (a double click, a resend after a timeout): the original
        # may have been stored since the lookup above and moved the trial on. Then this is a
        # replay of it, not an answer out of order.
        replay = _replay(key=key, trial=trial, stage=stage)
        if replay is not None:
            return replay
        raise
    cleaned = _clean_answers(questions_for(study=study, trial=trial, stage=stage), answers)
    now = timezone.now()
    since = (
        trial.revealed_at
        if stage == Response.Stage.FINAL and len(stages) == 2
        else trial.started_at
    )
    next_state = Trial.State.FIRST_ANSWERED if stage == Response.Stage.FIRST else Trial.State.DONE
    try:
        with transaction.atomic():
            moved = Trial.objects.filter(pk=trial.pk, state=expected).update(
                state=next_state,
                **(
                    {"first_answered_at": now}
                    if stage == Response.Stage.FIRST
                    else {"completed_at": now}
                ),
            )
            if not moved:  # another request moved the trial on first: a replay, or a second answer
                raise IntegrityError("trial state changed")
            response = Response.objects.create(
                trial=trial,
                stage=stage,
                answers=cleaned,
                interactions=_clean_interactions(interactions),
                client_key=key,
                seconds_on_stage=(now - since).total_seconds() if since else None,
            )
            if next_state == Trial.State.DONE:
                _complete_session_if_done(trial=trial, now=now)
            Enrollment.objects.filter(pk=enrollment.pk).update(last_activity_at=now)
            audit.record(
                acting_user=acting_user,
                action="trial.answer",
                obj=trial,
                study=study,
                after={"stage": stage, "response": response.pk, "state": next_state},
            )
    except IntegrityError:
        replay = _replay(key=key, trial=trial, stage=stage)
        if replay is not None:
            return replay
        raise ServiceError("this stage was already answered; answers cannot be changed") from None
    trial.refresh_from_db()
    return response

