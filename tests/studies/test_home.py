"""The signed-in home page lists a person's studies by the part they play in each."""

from __future__ import annotations

from django.urls import reverse

from studies import services
from studies.models import NEUTRAL_READER_TITLE


def _client(client, user):
    client.force_login(user)
    return client


def test_a_statistician_lands_on_their_studies_with_reports_and_reveal(client, open_study, coordinator, statistician):
    services.study_role_add(acting_user=coordinator, study=open_study, user=statistician, role="statistician")
    page = _client(client, statistician).get(reverse("home"))
    body = page.content.decode()
    assert page.status_code == 200
    assert "You have no studies to read yet" not in body
    assert "Studies you analyse (statistician)" in body
    assert open_study.title in body
    assert reverse("analysis:report-list", args=[open_study.pk]) in body
    assert reverse("studies:study-reveal", args=[open_study.pk]) in body
    assert 'href="/studies/"' in body  # the Studies link is in the navigation


def test_a_coordinator_sees_the_studies_they_coordinate_and_can_create_one(client, draft_study, coordinator):
    body = _client(client, coordinator).get(reverse("home")).content.decode()
    assert "Studies you coordinate" in body and draft_study.title in body
    assert reverse("studies:study-readiness", args=[draft_study.pk]) in body
    assert reverse("studies:study-create") in body
    assert "Studies you analyse" not in body


def test_a_reader_who_only_reads_goes_straight_to_reading(client, open_study, coordinator, reader_a):
    services.reader_enroll(acting_user=coordinator, study=open_study, reader=reader_a)
    page = _client(client, reader_a).get(reverse("home"))
    assert page.status_code == 302 and page["Location"] == reverse("studies:reader-home")


def test_a_coordinator_who_also_reads_sees_the_reader_facing_title_under_reading(
    client, open_study, coordinator
):
    services.reader_enroll(acting_user=coordinator, study=open_study, reader=coordinator)
    body = _client(client, coordinator).get(reverse("home")).content.decode()
    reading = body[body.index("Studies you read"):]
    assert NEUTRAL_READER_TITLE in reading and open_study.title not in reading


def test_someone_with_no_study_is_told_how_they_will_get_one(client, outsider):
    body = _client(client, outsider).get(reverse("home")).content.decode()
    assert "You take part in no study yet" in body


def test_the_favicon_is_served_from_the_static_files(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("favicon.ico")
    assert response["Location"] != "/favicon.ico"
