"""Submit faults: the database connection dropped in the middle of a reader's request, and a
retried submit racing its original.

On PostgreSQL the server side of the request's own connection is really terminated
(`pg_terminate_backend` from a second connection) at a point inside the write's transaction:
after the trial's state was moved on but before the response row is written, or after every
write but before the commit. The reader must get HTTP 503 with a message (JSON for the API, a
page for the trial page), not a 500 traceback; nothing may be half written (the trial keeps its
state, no response, no audit row); and a retry with the same client key stores the answer
exactly once.
"""

from __future__ import annotations

import time
import uuid

import pytest
from django.db import OperationalError, connection
from django.db.models.signals import post_save, pre_save

from core.errors import DATABASE_UNAVAILABLE
from core.models import AuditEntry
from studies import services
from studies.models import Response, Trial
from studies.selectors import questions_for
from studies.services import reading
from studies.services.reading import enrollment_consent, trial_reveal, trial_show
from tests.conftest import require_service

ANSWER_URL = "/api/v1/reading/trials/{uid}/answer/"


# A reader in an open two-stage study ----------------------------------------------------------


@pytest.fixture
def enrollment(coordinator, ready_study, reader_a):
    services.study_update(acting_user=coordinator, study=ready_study, protocol="two_stage")
    services.study_open(acting_user=coordinator, study=ready_study)
    enrollment = services.reader_enroll(acting_user=coordinator, study=ready_study, reader=reader_a)
    enrollment_consent(acting_user=reader_a, enrollment=enrollment, consent_version=ready_study.consent_version)
    return enrollment


@pytest.fixture
def reader_client(client, reader_a):
    client.force_login(reader_a)
    return client


def _next(enrollment) -> Trial:
    return (
        Trial.objects.filter(session__enrollment=enrollment).exclude(state="done")
        .select_related("arm", "session__enrollment__study").order_by("session__index", "position").first()
    )


def _answers(trial: Trial, stage: str) -> dict:
    study = trial.session.enrollment.study
    values = {"diagnosis": "nodule", "confidence": 70, "likert": 4, "free_text": "ok"}
    return {q.key: values[q.kind] for q in questions_for(study=study, trial=trial, stage=stage)}


def _trial_at(enrollment, reader, stage: str) -> Trial:
    """The reader's next trial that shows the AI, shown, and (stage 'final') revealed."""
    while True:
        trial = _next(enrollment)
        trial_show(acting_user=reader, trial=trial)
        trial = Trial.objects.select_related("arm", "session__enrollment__study").get(pk=trial.pk)
        if trial.arm.shows_ai:
            break
        reading.trial_answer(acting_user=reader, trial=trial, stage="final", answers=_answers(trial, "final"),
                             client_key=uuid.uuid4())
    if stage == "final":
        reading.trial_answer(acting_user=reader, trial=trial, stage="first", answers=_answers(trial, "first"),
                             client_key=uuid.uuid4())
        trial = trial_reveal(acting_user=reader, trial=trial)
    return Trial.objects.select_related("arm", "session__enrollment__study").get(pk=trial.pk)


def _submit(client, trial: Trial, stage: str, key: str):
    return client.post(
        ANSWER_URL.format(uid=trial.uid),
        {"stage": stage, "answers": _answers(trial, stage), "client_key": key},
        content_type="application/json",
    )


def _audit_rows(trial: Trial, action: str) -> int:
    return AuditEntry.objects.filter(action=action, object_type="studies.trial", object_id=str(trial.pk)).count()


# Dropping the request's own connection on PostgreSQL -------------------------------------------


@pytest.fixture
def postgres():
    require_service(
        "PostgreSQL database", connection.vendor == "postgresql",
        "set DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db>; the test terminates a real server backend",
    )


def _terminate_this_connection() -> None:
    """Terminate the server process behind Django's connection, from a second connection, and
    wait until it is gone: the connection's next statement fails as after a server restart."""
    import psycopg

    pid = connection.connection.info.backend_pid
    db = connection.settings_dict
    with psycopg.connect(
        dbname=db["NAME"], user=db["USER"], password=db["PASSWORD"] or None,
        host=db["HOST"] or None, port=db["PORT"] or None, autocommit=True,
    ) as other:
        assert other.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
        for _ in range(100):
            if other.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone() is None:
                return
            time.sleep(0.05)
    raise AssertionError(f"backend {pid} did not end")


class _DropOnce:
    """A signal receiver that drops the connection the first time `when` holds."""

    def __init__(self, signal, sender, when=lambda instance: True):
        self.signal, self.sender, self.when, self.fired = signal, sender, when, 0

    def __call__(self, sender, instance, **kwargs):
        if not self.fired and self.when(instance):
            self.fired += 1
            _terminate_this_connection()

    def __enter__(self):
        self.signal.connect(self, sender=self.sender, weak=False)
        return self

    def __exit__(self, *exc):
        self.signal.disconnect(self, sender=self.sender)


DROP_POINTS = {
    # the trial's state was moved on in the transaction; the response row is next
    "before the response row": lambda: _DropOnce(pre_save, Response),
    # every write done (trial, response, session, enrollment, audit): only the commit is left
    "before the commit": lambda: _DropOnce(post_save, AuditEntry, lambda row: row.action == "trial.answer"),
}


@pytest.mark.service
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("point", list(DROP_POINTS))
@pytest.mark.parametrize("stage", ["first", "final"])
def test_a_connection_dropped_during_a_submit_answers_503_and_the_retry_stores_it_once(
    postgres, enrollment, reader_a, reader_client, stage, point
):
    trial = _trial_at(enrollment, reader_a, stage)
    state_before = trial.state
    key = str(uuid.uuid4())

    with DROP_POINTS[point]() as drop:
        dropped = _submit(reader_client, trial, stage, key)
    assert drop.fired == 1
    assert dropped.status_code == 503, dropped.content[:500]
    assert dropped["Content-Type"] == "application/json"
    assert dropped.json()["detail"] == DATABASE_UNAVAILABLE
    assert int(dropped["Retry-After"]) > 0
    # nothing half written: the trial keeps its state, no response, no audit row
    trial.refresh_from_db()
    assert trial.state == state_before
    assert not Response.objects.filter(trial=trial).filter(stage=stage).exists()
    assert not Response.objects.filter(client_key=key).exists()
    assert _audit_rows(trial, "trial.answer") == (1 if stage == "final" else 0)  # the first stage's, if any

    retried = _submit(reader_client, trial, stage, key)
    assert retried.status_code == 200, retried.content[:500]
    assert retried.json()["payload"]["stage"] == ("reveal" if stage == "first" else None)
    again = _submit(reader_client, trial, stage, key)  # and once more: a replay
    assert again.status_code == 200
    stored = Response.objects.filter(trial=trial, stage=stage)
    assert [str(r.client_key) for r in stored] == [key]
    assert stored.get().answers == _answers(trial, stage)
    trial.refresh_from_db()
    assert trial.state == ("first_answered" if stage == "first" else "done")
    assert _audit_rows(trial, "trial.answer") == (1 if stage == "first" else 2)


@pytest.mark.service
@pytest.mark.django_db(transaction=True)
def test_a_connection_dropped_while_a_trial_opens_shows_a_503_page_and_a_reload_opens_it_once(
    postgres, enrollment, reader_a, reader_client
):
    trial = _next(enrollment)
    page = f"/read/trials/{trial.uid}/"
    with _DropOnce(post_save, AuditEntry, lambda row: row.action == "trial.show") as drop:
        dropped = reader_client.get(page)
    assert drop.fired == 1
    assert dropped.status_code == 503
    assert dropped["Content-Type"].startswith("text/html")
    assert "Temporarily unavailable" in dropped.content.decode()
    assert "Traceback" not in dropped.content.decode()
    trial.refresh_from_db()
    assert trial.state == "pending" and trial.started_at is None

    reloaded = reader_client.get(page)
    assert reloaded.status_code == 200
    trial.refresh_from_db()
    assert trial.state == "shown"
    assert _audit_rows(trial, "trial.show") == 1


# A database that cannot be reached at all (any database) --------------------------------------


@pytest.mark.django_db
def test_a_database_error_in_the_reading_api_is_a_503_with_a_message(enrollment, reader_client, monkeypatch):
    trial = _next(enrollment)

    def unreachable(**kwargs):
        raise OperationalError("could not connect to server: Connection refused")

    monkeypatch.setattr("studies.reader_selectors.reader_trial_get", unreachable)
    response = reader_client.get(f"/api/v1/reading/trials/{trial.uid}/")
    assert response.status_code == 503
    assert response.json() == {"detail": DATABASE_UNAVAILABLE, "problems": [DATABASE_UNAVAILABLE]}
    page = reader_client.get(f"/read/trials/{trial.uid}/")
    assert page.status_code == 503
    assert DATABASE_UNAVAILABLE in page.content.decode()


@pytest.mark.django_db
def test_other_database_errors_are_not_mistaken_for_an_unavailable_database(enrollment, reader_client, monkeypatch):
    from django.db import IntegrityError

    trial = _next(enrollment)

    def broken(**kwargs):
        raise IntegrityError("a bug, not an outage")

    monkeypatch.setattr("studies.reader_selectors.reader_trial_get", broken)
    reader_client.raise_request_exception = False
    assert reader_client.get(f"/api/v1/reading/trials/{trial.uid}/").status_code == 500


# A retry racing its original ---------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("stage", ["first", "final"])
def test_a_retry_that_arrives_while_its_original_is_stored_gets_the_stored_answer(
    enrollment, reader_a, reader_client, stage, monkeypatch
):
    """The retry looks for a stored answer with its key, finds none, and only then does the
    original commit and move the trial on: the retry must still get the stored answer (200),
    not "this trial is finished" or "not your next trial"."""
    trial = _trial_at(enrollment, reader_a, stage)
    key = str(uuid.uuid4())
    real_check = reading._check_reader_may_act
    original_stored = []

    def original_commits_first(*, acting_user, trial):
        if not original_stored:
            original_stored.append(True)
            fresh = Trial.objects.select_related("arm", "session__enrollment__study").get(pk=trial.pk)
            reading.trial_answer(acting_user=acting_user, trial=fresh, stage=stage,
                                 answers=_answers(fresh, stage), client_key=key)
        return real_check(acting_user=acting_user, trial=trial)

    monkeypatch.setattr(reading, "_check_reader_may_act", original_commits_first)
    retry = _submit(reader_client, trial, stage, key)
    assert original_stored
    assert retry.status_code == 200, retry.content[:500]
    assert [str(r.client_key) for r in Response.objects.filter(trial=trial, stage=stage)] == [key]
    assert _audit_rows(trial, "trial.answer") == (1 if stage == "first" else 2)
