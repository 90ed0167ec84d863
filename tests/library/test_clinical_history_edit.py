"""A coordinator edits a case's clinical history on the case's page and through the API: the
text is cleaned and bounded, every change is audited, a refusal is a 400 that says why, and no
one else may change it."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from core.errors import ServiceError
from core.models import AuditEntry
from library import services
from library.clinical_history import MAX_CLINICAL_HISTORY_CHARS
from library.models import Case
from tests.studies.factories import make_collection

pytestmark = pytest.mark.django_db

TOO_LONG = "h" * (MAX_CLINICAL_HISTORY_CHARS + 1)


@pytest.fixture
def case(db) -> Case:
    return make_collection("history-cases", cases=1).cases.get()


@pytest.fixture
def api(coordinator) -> APIClient:
    client = APIClient()
    client.force_authenticate(coordinator)
    return client


def _edits(case: Case):
    return AuditEntry.objects.filter(action="case.clinical_history", object_id=str(case.pk))


def test_the_service_stores_the_cleaned_text_and_audits_before_and_after(coordinator, case):
    services.case_clinical_history_set(
        acting_user=coordinator, case=case, clinical_history="  Smoker,\x1b cough\r\n3 weeks "
    )
    case.refresh_from_db()
    assert case.clinical_history == "Smoker, cough\n3 weeks"
    entry = _edits(case).get()
    assert entry.actor == coordinator
    assert entry.before == {"clinical_history": ""}
    assert entry.after == {"clinical_history": "Smoker, cough\n3 weeks"}


def test_saving_the_same_text_again_writes_no_audit_row(coordinator, case):
    for _ in range(2):
        services.case_clinical_history_set(acting_user=coordinator, case=case, clinical_history="a")
    assert _edits(case).count() == 1


def test_an_over_long_text_is_refused_and_nothing_changes(coordinator, case):
    with pytest.raises(ServiceError, match="the limit is 2,000"):
        services.case_clinical_history_set(
            acting_user=coordinator, case=case, clinical_history=TOO_LONG
        )
    case.refresh_from_db()
    assert case.clinical_history == "" and not _edits(case).exists()


def test_only_coordinators_may_edit_it(reader_a, case):
    with pytest.raises(ServiceError, match="only coordinators"):
        services.case_clinical_history_set(acting_user=reader_a, case=case, clinical_history="x")


def test_a_coordinator_edits_it_on_the_cases_page(coordinator_client, case):
    page = coordinator_client.get(f"/library/cases/{case.pk}/")
    assert page.status_code == 200 and b"Save clinical history" in page.content
    response = coordinator_client.post(
        f"/library/cases/{case.pk}/", {"clinical_history": "Fever for 2 days"}
    )
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.clinical_history == "Fever for 2 days" and _edits(case).count() == 1
    assert b"Fever for 2 days" in coordinator_client.get(f"/library/cases/{case.pk}/").content


def test_the_page_refuses_an_over_long_text_with_a_400_that_says_why(coordinator_client, case):
    response = coordinator_client.post(f"/library/cases/{case.pk}/", {"clinical_history": TOO_LONG})
    assert response.status_code == 400
    assert b"at most 2000 characters" in response.content
    case.refresh_from_db()
    assert case.clinical_history == ""


def test_a_reader_cannot_reach_the_page(client, reader_a, case):
    client.force_login(reader_a)
    response = client.post(f"/library/cases/{case.pk}/", {"clinical_history": "x"})
    assert response.status_code == 404
    case.refresh_from_db()
    assert case.clinical_history == ""


def test_the_api_shows_and_patches_it(api, case):
    assert api.get(f"/api/v1/cases/{case.pk}/").json()["clinical_history"] == ""
    response = api.patch(
        f"/api/v1/cases/{case.pk}/", {"clinical_history": "Chest pain"}, format="json"
    )
    assert response.status_code == 200 and response.json()["clinical_history"] == "Chest pain"
    assert _edits(case).count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"clinical_history": TOO_LONG}, "clinical_history"),
        ({"clinical_history": None}, "clinical_history"),
        ({}, "clinical_history"),
        ({"clinical_history": "x", "key": "renamed"}, "key"),
    ],
)
def test_the_api_refuses_bad_input_with_a_400_naming_the_field(api, case, body, field):
    response = api.patch(f"/api/v1/cases/{case.pk}/", body, format="json")
    assert response.status_code == 400 and field in response.json()
    case.refresh_from_db()
    assert case.clinical_history == "" and case.key == "history-cases-000"


def test_a_reader_cannot_patch_it_through_the_api(reader_a, case):
    client = APIClient()
    client.force_authenticate(reader_a)
    response = client.patch(f"/api/v1/cases/{case.pk}/", {"clinical_history": "x"}, format="json")
    assert response.status_code == 403
