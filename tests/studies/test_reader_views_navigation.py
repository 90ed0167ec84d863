"""The reader's pages: their studies, consent, sessions, the next-case redirect and the trial page."""

from __future__ import annotations

from datetime import timedelta

import pytest

from studies import services
from studies.models import ReadingSession, Trial
from studies.services.reading import enrollment_consent
from tests.studies import reader_views_helpers
from tests.studies.reader_views_helpers import (
    client_for,
    complete,
    embedded_payload,
    enroll,
    file_url,
    next_trial,
)

pytestmark = pytest.mark.django_db

# The fixtures of reader_views_helpers.py.
two_stage_study = reader_views_helpers.two_stage_study
reading = reader_views_helpers.reading
client_a = reader_views_helpers.client_a


def test_the_reader_home_lists_the_readers_studies_with_progress_and_consent_state(
    coordinator, open_study, reader_a, client_a
):
    enrollment = enroll(coordinator, open_study, reader_a, consent=False)
    page = client_a.get("/read/")
    assert page.status_code == 200
    html = page.content.decode()
    assert open_study.reader_facing_title in html and "0 of 12 cases" in html
    assert open_study.title not in html
    assert "needed" in html and "Read the consent" in html
    enrollment_consent(
        acting_user=reader_a, enrollment=enrollment, consent_version=open_study.consent_version
    )
    complete(reader_a, next_trial(enrollment))
    html = client_a.get("/read/").content.decode()
    assert "1 of 12 cases" in html and "given" in html
    assert f'href="/read/{open_study.pk}/next/"' in html and "Continue" in html


def test_the_reading_link_shows_only_for_users_with_enrollments(
    coordinator, open_study, reader_a, reader_b
):
    enroll(coordinator, open_study, reader_a, consent=False)
    assert 'href="/read/">Reading</a>' in client_for(reader_a).get("/read/").content.decode()
    assert 'href="/read/">Reading</a>' not in client_for(reader_b).get("/read/").content.decode()


def test_a_reader_who_has_not_consented_sees_the_consent_text_and_cannot_read(
    coordinator, open_study, reader_a, client_a
):
    enrollment = enroll(coordinator, open_study, reader_a, consent=False)
    page = client_a.get(f"/read/{open_study.pk}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "I agree to take part." in html and f"version {open_study.consent_version}" in html
    assert "I agree" in html and "Your sessions" not in html
    assert client_a.get(f"/read/{open_study.pk}/next/").url == f"/read/{open_study.pk}/"
    trial = next_trial(enrollment)
    assert client_a.get(f"/read/trials/{trial.uid}/").url == f"/read/{open_study.pk}/"
    trial.refresh_from_db()
    assert trial.state == Trial.State.PENDING


def test_agreeing_records_consent_and_shows_the_instructions_and_sessions(
    coordinator, two_stage_study, reader_a, client_a
):
    enrollment = enroll(coordinator, two_stage_study, reader_a, consent=False)
    answer = client_a.post(
        f"/read/{two_stage_study.pk}/", {"consent_version": two_stage_study.consent_version}
    )
    assert answer.status_code == 302 and answer.url == f"/read/{two_stage_study.pk}/"
    enrollment.refresh_from_db()
    assert (
        enrollment.consented_at is not None
        and enrollment.consent_version == two_stage_study.consent_version
    )
    html = client_a.get(f"/read/{two_stage_study.pk}/").content.decode()
    assert "Read each image, then answer." in html
    assert "Session 1" in html and "Session 2" in html and "0 of 6" in html
    assert f'href="/read/{two_stage_study.pk}/next/">Start</a>' in html


def test_consenting_to_an_outdated_text_is_refused_with_a_message(
    coordinator, open_study, reader_a, client_a
):
    enrollment = enroll(coordinator, open_study, reader_a, consent=False)
    answer = client_a.post(
        f"/read/{open_study.pk}/", {"consent_version": open_study.consent_version + 1}
    )
    assert answer.status_code == 400
    assert "consent text changed" in answer.content.decode()
    enrollment.refresh_from_db()
    assert enrollment.consented_at is None


def test_a_reader_cannot_see_a_study_they_are_not_enrolled_in(
    coordinator, open_study, reader_a, reader_b
):
    enroll(coordinator, open_study, reader_a)
    client = client_for(reader_b)
    assert client.get(f"/read/{open_study.pk}/").status_code == 404
    assert client.get(f"/read/{open_study.pk}/next/").status_code == 404
    assert client.post(f"/read/{open_study.pk}/", {"consent_version": 1}).status_code == 404


# Next case ----------------------------------------------------------------------------------


def test_next_opens_the_readers_next_trial_and_moves_on_after_it_is_answered(
    reading, reader_a, client_a
):
    study = reading.study
    first = next_trial(reading)
    assert client_a.get(f"/read/{study.pk}/next/").url == f"/read/trials/{first.uid}/"
    complete(reader_a, first)
    second = next_trial(reading)
    assert second.pk != first.pk
    assert client_a.get(f"/read/{study.pk}/next/").url == f"/read/trials/{second.uid}/"


def test_a_locked_session_sends_the_reader_to_the_study_home_with_its_opening_date(
    reading, reader_a, client_a
):
    study = reading.study
    ReadingSession.objects.filter(enrollment=reading, index=1).update(unlock_after_days=7)
    html = client_a.get(f"/read/{study.pk}/").content.decode()
    assert "opens after the previous session" in html
    for _ in range(reading.sessions.get(index=0).trials.count()):
        complete(reader_a, next_trial(reading))
    opens = (reading.sessions.get(index=0).completed_at + timedelta(days=7)).strftime(
        "%Y-%m-%d %H:%M"
    )
    redirected = client_a.get(f"/read/{study.pk}/next/", follow=True)
    assert redirected.redirect_chain == [(f"/read/{study.pk}/", 302)]
    html = redirected.content.decode()
    assert f"Session 2 opens on {opens} UTC" in html
    assert f'href="/read/{study.pk}/next/"' not in html  # no Continue button while locked
    trial = next_trial(reading)
    blocked = client_a.get(f"/read/trials/{trial.uid}/")
    assert blocked.status_code == 409 and "not open yet" in blocked.content.decode()


def test_after_the_last_trial_next_says_the_reader_is_finished(
    coordinator, open_study, reader_a, client_a
):
    enrollment = enroll(coordinator, open_study, reader_a)
    while (trial := next_trial(enrollment)) is not None:
        complete(reader_a, trial)
    redirected = client_a.get(f"/read/{open_study.pk}/next/", follow=True)
    assert redirected.redirect_chain == [(f"/read/{open_study.pk}/", 302)]
    assert "You have read every case of this study" in redirected.content.decode()
    assert "finished" in client_a.get("/read/").content.decode()


# Trial page ---------------------------------------------------------------------------------


def test_the_trial_page_shows_the_trial_and_keeps_the_original_start_time_on_reload(
    reading, client_a
):
    trial = next_trial(reading)
    page = client_a.get(f"/read/trials/{trial.uid}/")
    assert page.status_code == 200
    html = page.content.decode()
    payload = embedded_payload(html)
    assert payload["trial"] == str(trial.uid) and payload["state"] == "shown"
    assert (
        payload["position"],
        payload["trials_in_session"],
        payload["session"],
        payload["sessions"],
    ) == (1, 6, 1, 2)
    assert "Case 1 of 6, session 1 of 2" in html
    assert (
        "studies/trial.js" in html and "studies/viewer/viewer.js" in html and "data-viewer" in html
    )
    assert f"/api/v1/reading/trials/{trial.uid}/answer/" in html
    trial.refresh_from_db()
    started = trial.started_at
    assert started is not None
    client_a.get(f"/read/trials/{trial.uid}/")
    trial.refresh_from_db()
    assert trial.started_at == started


def test_a_trial_of_another_reader_is_not_found(coordinator, reading, reader_b):
    enroll(coordinator, reading.study, reader_b)
    trial = next_trial(reading)
    client = client_for(reader_b)
    assert client.get(f"/read/trials/{trial.uid}/").status_code == 404
    assert client.get(file_url(trial, "display")).status_code == 404
    trial.refresh_from_db()
    assert trial.state == Trial.State.PENDING


def test_a_trial_that_is_not_next_cannot_be_opened(reading, client_a):
    later = Trial.objects.filter(session__enrollment=reading).order_by(
        "session__index", "position"
    )[2]
    page = client_a.get(f"/read/trials/{later.uid}/")
    assert page.status_code == 409
    assert "not your next trial" in page.content.decode()
    later.refresh_from_db()
    assert later.state == Trial.State.PENDING


def test_a_finished_trial_sends_the_reader_on_to_the_next_case(reading, reader_a, client_a):
    trial = next_trial(reading)
    complete(reader_a, trial)
    assert client_a.get(f"/read/trials/{trial.uid}/").url == f"/read/{reading.study.pk}/next/"


def test_a_closed_study_shows_a_clear_message_instead_of_reading(coordinator, reading, client_a):
    trial = next_trial(reading)
    services.study_close(acting_user=coordinator, study=reading.study)
    study = reading.study
    home = client_a.get(f"/read/{study.pk}/")
    assert home.status_code == 200 and "This study is closed" in home.content.decode()
    for url in (f"/read/{study.pk}/next/", f"/read/trials/{trial.uid}/"):
        page = client_a.get(url)
        assert page.status_code == 410
        assert "This study is closed" in page.content.decode()
    assert client_a.get(file_url(trial, "display")).status_code == 404
    trial.refresh_from_db()
    assert trial.state == Trial.State.PENDING
