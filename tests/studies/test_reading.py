"""The reader's trial state machine: consent, show, two-stage answers, idempotent submits."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from core.errors import ServiceError
from studies import services
from studies.models import Response, Study, Trial
from studies.selectors import questions_for, trial_stages
from studies.services.reading import (
    AnswerError,
    enrollment_consent,
    trial_answer,
    trial_reveal,
    trial_show,
)
from tests.conftest import require_service


def _enroll(coordinator, study, reader):
    enrollment = services.reader_enroll(acting_user=coordinator, study=study, reader=reader)
    return enrollment


@pytest.fixture
def two_stage_study(coordinator, ready_study):
    services.study_update(acting_user=coordinator, study=ready_study, protocol="two_stage")
    return services.study_open(acting_user=coordinator, study=ready_study)


@pytest.fixture
def reading(coordinator, two_stage_study, reader_a):
    enrollment = _enroll(coordinator, two_stage_study, reader_a)
    enrollment_consent(acting_user=reader_a, enrollment=enrollment, consent_version=two_stage_study.consent_version)
    return enrollment


def _next(enrollment) -> Trial:
    return (
        Trial.objects.filter(session__enrollment=enrollment).exclude(state="done")
        .select_related("arm", "session__enrollment__study").order_by("session__index", "position").first()
    )


def _answers(trial, stage):
    study = trial.session.enrollment.study
    values = {}
    for q in questions_for(study=study, trial=trial, stage=stage):
        values[q.key] = {"diagnosis": "nodule", "confidence": 70, "likert": 4, "free_text": "ok"}[q.kind]
    return values


def _complete(reader, trial):
    trial_show(acting_user=reader, trial=trial)
    study = trial.session.enrollment.study
    stages = trial_stages(trial=trial, study=study)
    if len(stages) == 2:
        trial_answer(acting_user=reader, trial=trial, stage="first", answers=_answers(trial, "first"), client_key=uuid.uuid4())
        trial_reveal(acting_user=reader, trial=trial)
    trial_answer(acting_user=reader, trial=trial, stage="final", answers=_answers(trial, "final"), client_key=uuid.uuid4())


def _first_of_kind(enrollment, *, shows_ai: bool) -> Trial:
    """Complete trials until the next one does (or does not) show the AI."""
    reader = enrollment.reader
    while True:
        trial = _next(enrollment)
        if trial.arm.shows_ai == shows_ai:
            return trial
        _complete(reader, trial)


def test_reading_needs_consent_to_the_current_text(coordinator, two_stage_study, reader_a):
    enrollment = _enroll(coordinator, two_stage_study, reader_a)
    with pytest.raises(ServiceError, match="consent"):
        trial_show(acting_user=reader_a, trial=_next(enrollment))
    with pytest.raises(ServiceError, match="consent text changed"):
        enrollment_consent(acting_user=reader_a, enrollment=enrollment, consent_version=99)
    enrollment_consent(acting_user=reader_a, enrollment=enrollment, consent_version=two_stage_study.consent_version)
    enrollment.refresh_from_db()
    assert enrollment.consented_at is not None
    assert trial_show(acting_user=reader_a, trial=_next(enrollment)).state == Trial.State.SHOWN


def test_another_reader_cannot_act_on_a_trial(reading, reader_b):
    with pytest.raises(PermissionError):
        trial_show(acting_user=reader_b, trial=_next(reading))


def test_a_reader_cannot_skip_ahead(reading, reader_a):
    trials = list(Trial.objects.filter(session__enrollment=reading).order_by("session__index", "position"))
    with pytest.raises(ServiceError, match="not your next trial"):
        trial_show(acting_user=reader_a, trial=trials[1])


def test_showing_again_keeps_the_original_start_time(reading, reader_a):
    trial = trial_show(acting_user=reader_a, trial=_next(reading))
    started = trial.started_at
    again = trial_show(acting_user=reader_a, trial=Trial.objects.get(pk=trial.pk))
    assert again.started_at == started


def test_a_two_stage_trial_stores_the_unaided_answer_before_the_reveal(reading, reader_a):
    trial = _first_of_kind(reading, shows_ai=True)
    trial_show(acting_user=reader_a, trial=trial)
    assert trial_stages(trial=trial, study=reading.study) == ["first", "final"]
    with pytest.raises(ServiceError, match="unaided answer first"):
        trial_reveal(acting_user=reader_a, trial=trial)
    with pytest.raises(ServiceError, match="revealed before the final answer"):
        trial_answer(acting_user=reader_a, trial=trial, stage="final", answers={}, client_key=uuid.uuid4())
    first_questions = [q.key for q in questions_for(study=reading.study, trial=trial, stage="first")]
    assert first_questions == ["diagnosis", "confidence"]
    trial_answer(acting_user=reader_a, trial=trial, stage="first", answers={"diagnosis": "normal", "confidence": 20},
                 client_key=uuid.uuid4())
    trial_reveal(acting_user=reader_a, trial=trial)
    final = trial_answer(acting_user=reader_a, trial=trial, stage="final", answers=_answers(trial, "final"),
                         client_key=uuid.uuid4())
    trial.refresh_from_db()
    assert trial.state == Trial.State.DONE
    assert trial.first_answered_at <= trial.revealed_at <= trial.completed_at
    assert final.seconds_on_stage is not None and final.seconds_on_stage >= 0
    assert list(trial.responses.values_list("stage", flat=True)) == ["first", "final"]


def test_an_unaided_trial_has_only_the_final_stage(reading, reader_a):
    trial = _first_of_kind(reading, shows_ai=False)
    trial_show(acting_user=reader_a, trial=trial)
    assert trial_stages(trial=trial, study=reading.study) == ["final"]
    keys = [q.key for q in questions_for(study=reading.study, trial=trial, stage="final")]
    assert keys == ["diagnosis", "confidence"]  # no AI, so no trust or explanation ratings
    with pytest.raises(ServiceError, match="no unaided first stage"):
        trial_answer(acting_user=reader_a, trial=trial, stage="first", answers={}, client_key=uuid.uuid4())


def test_the_same_submit_twice_stores_one_response(reading, reader_a):
    trial = _next(reading)
    trial_show(acting_user=reader_a, trial=trial)
    stage = trial_stages(trial=trial, study=reading.study)[0]
    key = uuid.uuid4()
    first = trial_answer(acting_user=reader_a, trial=trial, stage=stage, answers=_answers(trial, stage), client_key=key)
    again = trial_answer(acting_user=reader_a, trial=trial, stage=stage, answers=_answers(trial, stage), client_key=key)
    assert first.pk == again.pk
    assert Response.objects.filter(trial=trial).count() == 1


def test_a_second_answer_with_another_key_is_refused(reading, reader_a):
    trial = _first_of_kind(reading, shows_ai=True)
    trial_show(acting_user=reader_a, trial=trial)
    trial_answer(acting_user=reader_a, trial=trial, stage="first", answers=_answers(trial, "first"), client_key=uuid.uuid4())
    with pytest.raises(ServiceError, match="already answered"):
        trial_answer(acting_user=reader_a, trial=Trial.objects.get(pk=trial.pk), stage="first",
                     answers=_answers(trial, "first"), client_key=uuid.uuid4())


def test_a_finished_trial_cannot_be_answered_again(reading, reader_a):
    trial = _next(reading)
    _complete(reader_a, trial)
    with pytest.raises(ServiceError, match="cannot go back"):
        trial_answer(acting_user=reader_a, trial=Trial.objects.get(pk=trial.pk), stage="final",
                     answers={}, client_key=uuid.uuid4())


def test_a_key_reused_for_another_trial_is_refused(reading, reader_a):
    key = uuid.uuid4()
    trial = _next(reading)
    trial_show(acting_user=reader_a, trial=trial)
    stage = trial_stages(trial=trial, study=reading.study)[0]
    trial_answer(acting_user=reader_a, trial=trial, stage=stage, answers=_answers(trial, stage), client_key=key)
    if stage == "first":
        trial_reveal(acting_user=reader_a, trial=trial)
        with pytest.raises(ServiceError, match="already used for another answer"):
            trial_answer(acting_user=reader_a, trial=trial, stage="final", answers=_answers(trial, "final"), client_key=key)


@pytest.mark.parametrize(
    ("answers", "field", "message"),
    [
        ({"diagnosis": "tumour", "confidence": 50}, "diagnosis", "choose one of"),
        ({"diagnosis": "nodule", "confidence": 101}, "confidence", "from 0 to 100"),
        ({"diagnosis": "nodule", "confidence": 12.5}, "confidence", "whole number"),
        ({"diagnosis": "nodule", "confidence": True}, "confidence", "whole number"),
        ({"confidence": 50}, "diagnosis", "required"),
        ({"diagnosis": "nodule", "confidence": 50, "trust": 3}, "trust", "not asked at this stage"),
    ],
)
def test_invalid_answers_are_reported_per_field_and_nothing_is_stored(reading, reader_a, answers, field, message):
    trial = _first_of_kind(reading, shows_ai=True)
    trial_show(acting_user=reader_a, trial=trial)
    with pytest.raises(AnswerError) as caught:
        trial_answer(acting_user=reader_a, trial=trial, stage="first", answers=answers, client_key=uuid.uuid4())
    assert message in caught.value.fields[field]
    trial.refresh_from_db()
    assert trial.state == Trial.State.SHOWN and not trial.responses.exists()


def test_likert_answers_are_checked_against_their_points(reading, reader_a):
    trial = _first_of_kind(reading, shows_ai=True)
    trial_show(acting_user=reader_a, trial=trial)
    trial_answer(acting_user=reader_a, trial=trial, stage="first", answers=_answers(trial, "first"), client_key=uuid.uuid4())
    trial_reveal(acting_user=reader_a, trial=trial)
    answers = {**_answers(trial, "final"), "trust": 6}
    with pytest.raises(AnswerError) as caught:
        trial_answer(acting_user=reader_a, trial=trial, stage="final", answers=answers, client_key=uuid.uuid4())
    assert caught.value.fields == {"trust": "must be from 1 to 5"}


def test_interactions_are_kept_only_when_well_formed(reading, reader_a):
    trial = _next(reading)
    trial_show(acting_user=reader_a, trial=trial)
    stage = trial_stages(trial=trial, study=reading.study)[0]
    response = trial_answer(
        acting_user=reader_a, trial=trial, stage=stage, answers=_answers(trial, stage), client_key=uuid.uuid4(),
        interactions={"window_changes": 3, "zoom_changes": "many", "overlay_opacity": 0.4, "evil": "<script>"},
    )
    assert response.interactions == {"window_changes": 3, "overlay_opacity": 0.4}


def test_completing_every_trial_completes_the_session(reading, reader_a):
    session = reading.sessions.get(index=0)
    for _ in range(session.trials.count()):
        _complete(reader_a, _next(reading))
    session.refresh_from_db()
    assert session.completed_at is not None
    assert _next(reading).session.index == 1


def test_a_closed_study_takes_no_more_reads(coordinator, reading, reader_a):
    services.study_close(acting_user=coordinator, study=reading.study)
    with pytest.raises(ServiceError, match="closed"):
        trial_show(acting_user=reader_a, trial=_next(reading))


@pytest.mark.django_db(transaction=True)
def test_concurrent_double_submits_store_exactly_one_response(coordinator, ready_study, reader_a):
    from django.db import connection

    require_service(
        "PostgreSQL database", connection.vendor == "postgresql",
        "set DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db>; concurrent writers need real row locks",
    )
    services.study_open(acting_user=coordinator, study=ready_study)
    enrollment = _enroll(coordinator, ready_study, reader_a)
    enrollment_consent(acting_user=reader_a, enrollment=enrollment, consent_version=ready_study.consent_version)
    trial = _next(enrollment)
    trial_show(acting_user=reader_a, trial=trial)
    answers = _answers(trial, "final")
    key = uuid.uuid4()

    def submit(_):
        from django.db import connection as thread_connection

        try:
            return trial_answer(
                acting_user=reader_a, trial=Trial.objects.get(pk=trial.pk), stage="final", answers=answers,
                client_key=key,
            ).pk
        finally:
            thread_connection.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = list(pool.map(submit, range(8)))
    assert len(set(ids)) == 1
    assert Response.objects.filter(trial=trial).count() == 1
    assert Study.objects.get(pk=ready_study.pk).status == "open"


def test_the_coordinator_sees_stored_responses_with_arm_codes_only(client, coordinator, reading, reader_a):
    trial = _next(reading)
    _complete(reader_a, trial)
    client.force_login(coordinator)
    page = client.get(f"/studies/{reading.study.pk}/responses/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "reader_a" in text and trial.case.key in text and "nodule" in text
    assert "gradcam" not in text
    client.force_login(reader_a)
    assert client.get(f"/studies/{reading.study.pk}/responses/").status_code == 404
