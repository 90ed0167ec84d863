"""The studies REST API: who may see and change what (coordinators, statisticians, readers, site
admins, anonymous callers)."""

from __future__ import annotations

import pytest

from core.models import AuditEntry
from studies import services
from studies.models import Invitation, Study
from tests.studies import api_helpers
from tests.studies.api_helpers import (
    client_for,
    url,
)

pytestmark = pytest.mark.django_db

# The fixtures of api_helpers.py.
api = api_helpers.api
other_coordinator = api_helpers.other_coordinator
study_statistician = api_helpers.study_statistician


def test_the_statistician_reveals_the_arms_and_the_reveal_is_audited(
    ready_study, study_statistician
):
    response = client_for(study_statistician).post(url(ready_study, "reveal-arms/"), format="json")
    assert response.status_code == 200
    revealed = {arm["code"]: (arm["kind"], arm["explainer"]) for arm in response.json()}
    assert revealed == {
        "A": ("unaided", ""),
        "B": ("ai", ""),
        "C": ("ai_explainer", "gradcam"),
        "D": ("placebo", "gradcam"),
    }
    entry = AuditEntry.objects.get(action="study.arms_reveal")
    assert entry.actor == study_statistician and entry.object_id == str(ready_study.pk)


def test_a_coordinator_cannot_reveal_the_arms(api, open_study):
    response = api.post(url(open_study, "reveal-arms/"), format="json")
    assert response.status_code == 403
    assert "only the study's statistician" in response.json()["detail"]
    assert not AuditEntry.objects.filter(action="study.arms_reveal").exists()


# Who may see and change what ----------------------------------------------------------------


def test_another_coordinator_gets_the_same_404_as_for_a_study_that_does_not_exist(
    draft_study, other_coordinator
):
    client = client_for(other_coordinator)
    missing = client.get(url(999999))
    assert missing.status_code == 404
    for tail in ("", "arms/", "readiness/", "progress/", "invitations/", "roles/"):
        response = client.get(url(draft_study, tail))
        assert response.status_code == 404, tail
        assert response.json() == missing.json()
    assert client.patch(url(draft_study), {"title": "mine"}, format="json").status_code == 404
    assert client.post(url(draft_study, "open/"), format="json").status_code == 404
    assert client.get("/api/v1/studies/").json() == []
    assert Study.objects.get(pk=draft_study.pk).title == "Heatmap reader study"


def test_a_reader_of_the_study_never_sees_its_coordinator_endpoints(
    open_study, reader_a, coordinator
):
    services.study_role_add(acting_user=coordinator, study=open_study, user=reader_a, role="reader")
    client = client_for(reader_a)
    for tail in ("", "arms/", "readiness/", "progress/", "readers/", "invitations/"):
        assert client.get(url(open_study, tail)).status_code == 404, tail
    assert client.post(url(open_study, "reveal-arms/"), format="json").status_code == 404
    assert client.get("/api/v1/studies/").json() == []
    assert client.post("/api/v1/studies/", {"title": "x"}, format="json").status_code == 403


def test_the_statistician_reads_the_study_but_cannot_change_it(draft_study, study_statistician):
    client = client_for(study_statistician)
    detail = client.get(url(draft_study))
    assert detail.status_code == 200 and detail.json()["can_manage"] is False
    assert client.get(url(draft_study, "readiness/")).status_code == 200
    writes = [
        client.patch(url(draft_study), {"title": "stats"}, format="json"),
        client.post(url(draft_study, "arms/"), {"kind": "ai"}, format="json"),
        client.delete(url(draft_study, "arms/A/")),
        client.post(url(draft_study, "questions/defaults/"), format="json"),
        client.put(url(draft_study, "cases/"), {"main": []}, format="json"),
        client.post(url(draft_study, "open/"), format="json"),
        client.post(url(draft_study, "invitations/"), {"email": "x@example.org"}, format="json"),
        client.post(
            url(draft_study, "roles/"),
            {"username": "statistician", "role": "reader"},
            format="json",
        ),
    ]
    assert [w.status_code for w in writes] == [403] * len(writes)
    assert "coordinators" in writes[0].json()["detail"]
    assert draft_study.arms.count() == 4 and not Invitation.objects.exists()


def test_a_site_admin_sees_and_manages_every_study(draft_study, site_admin):
    client = client_for(site_admin)
    assert [s["id"] for s in client.get("/api/v1/studies/").json()] == [draft_study.pk]
    response = client.patch(url(draft_study), {"description": "checked"}, format="json")
    assert response.status_code == 200 and response.json()["can_manage"] is True


def test_anonymous_callers_cannot_use_the_studies_api(draft_study):
    anonymous = client_for()
    assert anonymous.get("/api/v1/studies/").status_code in (401, 403)
    assert anonymous.get(url(draft_study)).status_code in (401, 403)
    assert anonymous.post("/api/v1/studies/", {"title": "x"}, format="json").status_code in (
        401,
        403,
    )


def test_only_coordinators_create_studies(statistician):
    response = client_for(statistician).post("/api/v1/studies/", {"title": "x"}, format="json")
    assert response.status_code == 403
    assert response.json()["detail"] == "only coordinators can create studies"
    assert not Study.objects.exists()


# Bad configurations and bad input -----------------------------------------------------------
