"""The studies REST API: configuring, opening, inviting into and closing a study; changing drafts,
questions, cases, arms and roles."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from core.models import AuditEntry
from studies import services
from studies.models import Enrollment, StudyRole
from tests.studies import api_helpers
from tests.studies.api_helpers import (
    client_for,
    mentions,
    token_of,
    url,
)
from tests.studies.factories import add_explanations, add_predictions, make_collection, make_model

pytestmark = pytest.mark.django_db

# The fixtures of api_helpers.py.
api = api_helpers.api
other_coordinator = api_helpers.other_coordinator
study_statistician = api_helpers.study_statistician


def test_a_coordinator_configures_opens_invites_and_closes_a_study_through_the_api(api):
    model = make_model()
    collection = make_collection(cases=12)
    created = api.post(
        "/api/v1/studies/",
        {
            "title": "Grad-CAM for nodules",
            "model": model.pk,
            "collections": [collection.pk],
            "consent_text": "I agree.",
            "design": "latin_square",
            "sessions": 2,
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    study = created.json()
    assert study["status"] == "draft" and study["model"] == model.pk
    assert study["collections"] == [collection.pk]
    assert mentions(study["problems"], "no arms")

    for arm in ({"kind": "unaided"}, {"kind": "ai_explainer", "explainer": "gradcam"}):
        response = api.post(url(study["id"], "arms/"), arm, format="json")
        assert response.status_code == 201, response.content
    arms = api.get(url(study["id"], "arms/")).json()
    assert [(a["code"], a["kind"]) for a in arms] == [("A", "unaided"), ("B", "ai_explainer")]

    defaults = api.post(url(study["id"], "questions/defaults/"), format="json")
    assert defaults.status_code == 201
    assert [q["key"] for q in defaults.json()][:2] == ["diagnosis", "confidence"]
    assert defaults.json()[0]["options"] == ["normal", "nodule"]

    case_ids = list(collection.cases.order_by("pk").values_list("pk", flat=True))
    cases = api.put(url(study["id"], "cases/"), {"main": case_ids}, format="json")
    assert cases.status_code == 200
    assert cases.json() == {"main": 12, "training": 0, "attention": 0}

    readiness = api.get(url(study["id"], "readiness/")).json()
    arm_b = next(row for row in readiness["arms"] if row["code"] == "B")
    assert arm_b["ready"] is False
    assert arm_b["missing"] == {"prediction": 12, "explanation": 12}
    assert any("no precomputed explanation" in p for p in readiness["problems"])
    refused = api.post(url(study["id"], "open/"), format="json")
    assert refused.status_code == 400
    assert any("no precomputed explanation" in p for p in refused.json()["problems"])

    all_cases = list(collection.cases.all())
    add_predictions(model, all_cases, wrong={all_cases[1].pk})
    add_explanations(model, all_cases, "gradcam")
    readiness = api.get(url(study["id"], "readiness/")).json()
    assert readiness["problems"] == []
    assert all(row["ready"] for row in readiness["arms"])
    assert readiness["ai_wrong"]["ai_wrong_cases"] == 1

    opened = api.post(url(study["id"], "open/"), format="json")
    assert opened.status_code == 200 and opened.json()["status"] == "open"

    invited = api.post(
        url(study["id"], "invitations/"), {"email": "New.Reader@Example.org"}, format="json"
    )
    assert invited.status_code == 201
    link = invited.json()["link"]
    assert link.startswith("http") and invited.json()["email"] == "new.reader@example.org"
    listed = api.get(url(study["id"], "invitations/"))
    assert listed.json()[0]["state"] == "pending"
    assert token_of(link) not in listed.content.decode() and "link" not in listed.json()[0]

    accepted = client_for().post(
        "/api/v1/invitations/accept/",
        {
            "token": token_of(link),
            "password": "a-long-unusual-passphrase-42",
            "years_experience": 7,
        },
        format="json",
    )
    assert accepted.status_code == 201, accepted.content
    assert accepted.json() == {
        "username": "new.reader@example.org",
        "study": study["id"],
        "study_title": "Reader study",  # readers are told the reader-facing title, never the internal one
        "enrolled": True,
    }
    reader = User.objects.get(username="new.reader@example.org")
    assert reader.check_password("a-long-unusual-passphrase-42")

    readers = api.get(url(study["id"], "readers/")).json()
    assert readers == [
        {
            "username": "new.reader@example.org",
            "enrolled": True,
            "years_experience": 7,
            "specialty": "",
            "is_radiologist": None,
        }
    ]
    progress = api.get(url(study["id"], "progress/")).json()
    assert len(progress) == 1
    assert progress[0]["reader"] == "new.reader@example.org"
    assert progress[0]["trials_total"] == 12 and progress[0]["trials_done"] == 0
    assert progress[0]["sessions_total"] == 2

    closed = api.post(url(study["id"], "close/"), format="json")
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    late = api.post(url(study["id"], "invitations/"), {"email": "late@example.org"}, format="json")
    assert late.status_code == 400 and "closed" in late.json()["detail"]


def test_an_invitation_used_once_cannot_be_used_again(open_study, api):
    link = api.post(
        url(open_study, "invitations/"), {"email": "r@example.org"}, format="json"
    ).json()["link"]
    body = {"token": token_of(link), "password": "a-long-unusual-passphrase-42"}
    assert client_for().post("/api/v1/invitations/accept/", body, format="json").status_code == 201
    again = client_for().post("/api/v1/invitations/accept/", body, format="json")
    assert again.status_code == 400 and "already used" in again.json()["detail"]
    forged = client_for().post(
        "/api/v1/invitations/accept/", {"token": "not-a-token", "password": "x"}, format="json"
    )
    assert forged.status_code == 400 and forged.json()["problems"] == [
        "this invitation link is not valid"
    ]


def test_a_signed_in_reader_accepts_an_invitation_into_their_own_account(open_study, api, reader_a):
    link = api.post(
        url(open_study, "invitations/"), {"email": "a@example.org"}, format="json"
    ).json()["link"]
    accepted = client_for(reader_a).post(
        "/api/v1/invitations/accept/",
        {"token": token_of(link), "specialty": "thoracic"},
        format="json",
    )
    assert accepted.status_code == 201 and accepted.json()["username"] == "reader_a"
    assert Enrollment.objects.filter(study=open_study, reader=reader_a).exists()
    assert reader_a.reader_profile.specialty == "thoracic"


def test_a_revoked_invitation_is_listed_as_revoked_and_cannot_be_accepted(open_study, api):
    created = api.post(
        url(open_study, "invitations/"), {"email": "r@example.org"}, format="json"
    ).json()
    revoked = api.post(url(open_study, f"invitations/{created['id']}/revoke/"), format="json")
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    twice = api.post(url(open_study, f"invitations/{created['id']}/revoke/"), format="json")
    assert twice.status_code == 400 and "already used or revoked" in twice.json()["detail"]
    accepted = client_for().post(
        "/api/v1/invitations/accept/",
        {"token": token_of(created["link"]), "password": "a-long-unusual-passphrase-42"},
        format="json",
    )
    assert accepted.status_code == 400 and "withdrawn" in accepted.json()["detail"]
    assert api.post(url(open_study, "invitations/999999/revoke/"), format="json").status_code == 404


# Configuration endpoints --------------------------------------------------------------------


def test_a_coordinator_changes_a_draft_by_ids_and_a_new_consent_text_raises_its_version(
    api, draft_study
):
    other_model = make_model("second-net")
    other_collection = make_collection("second-cases", cases=3)
    response = api.patch(
        url(draft_study),
        {
            "title": "Renamed",
            "model": other_model.pk,
            "collections": [other_collection.pk],
            "consent_text": "A new consent text.",
            "min_ai_wrong_share": 0.25,
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["title"] == "Renamed" and body["model"] == other_model.pk
    assert body["model_name"] == "second-net" and body["collections"] == [other_collection.pk]
    assert body["consent_version"] == draft_study.consent_version + 1
    assert body["min_ai_wrong_share"] == 0.25
    # the cases of the collection that left the study left with it
    assert body["case_counts"] == {"main": 0, "training": 0, "attention": 0}
    assert AuditEntry.objects.filter(action="study.update", object_id=str(draft_study.pk)).exists()


def test_questions_are_added_changed_and_removed_through_the_api(api, draft_study):
    added = api.post(
        url(draft_study, "questions/"),
        {"key": "notes", "kind": "free_text", "text": "Anything else?"},
        format="json",
    )
    assert added.status_code == 201 and added.json()["required"] is False
    changed = api.patch(
        url(draft_study, "questions/notes/"), {"text": "Other remarks?", "order": 0}, format="json"
    )
    assert changed.status_code == 200
    assert changed.json()["text"] == "Other remarks?" and changed.json()["order"] == 0
    questions = api.get(url(draft_study, "questions/")).json()
    assert questions[0]["key"] == "notes"
    assert api.delete(url(draft_study, "questions/notes/")).status_code == 204
    assert "notes" not in [q["key"] for q in api.get(url(draft_study, "questions/")).json()]
    assert api.delete(url(draft_study, "questions/notes/")).status_code == 404
    again = api.post(url(draft_study, "questions/defaults/"), format="json")
    assert again.status_code == 201 and again.json() == []


def test_cases_are_chosen_from_the_collections_by_count_and_listed_by_role(api, draft_study):
    chosen = api.post(
        url(draft_study, "cases/select/"),
        {"main_count": 6, "training_count": 2, "attention_count": 1},
        format="json",
    )
    assert chosen.status_code == 200 and chosen.json() == {"main": 6, "training": 2, "attention": 1}
    listed = api.get(url(draft_study, "cases/")).json()
    assert [len(listed[role]) for role in ("main", "training", "attention")] == [6, 2, 1]
    too_many = api.post(url(draft_study, "cases/select/"), {"main_count": 50}, format="json")
    assert too_many.status_code == 400
    assert mentions(too_many.json()["problems"], "50 cases", "only 12")


def test_an_arm_is_removed_by_its_code_and_an_unknown_code_is_a_404(api, draft_study):
    assert api.delete(url(draft_study, "arms/D/")).status_code == 204
    assert [a["code"] for a in api.get(url(draft_study, "arms/")).json()] == ["A", "B", "C"]
    assert api.delete(url(draft_study, "arms/Z/")).status_code == 404


def test_roles_are_given_and_taken_by_username(api, draft_study, statistician, reader_a):
    given = api.post(
        url(draft_study, "roles/"),
        {"username": "statistician", "role": "statistician"},
        format="json",
    )
    assert given.status_code == 201 and given.json()["username"] == "statistician"
    api.post(url(draft_study, "roles/"), {"username": "reader_a", "role": "reader"}, format="json")
    roles = {(r["username"], r["role"]) for r in api.get(url(draft_study, "roles/")).json()}
    assert roles == {
        ("coordinator", "coordinator"),
        ("statistician", "statistician"),
        ("reader_a", "reader"),
    }
    readers = api.get(url(draft_study, "readers/")).json()
    assert readers[0]["username"] == "reader_a" and readers[0]["enrolled"] is False
    assert api.delete(url(draft_study, "roles/statistician/statistician/")).status_code == 204
    assert not StudyRole.objects.filter(study=draft_study, user=statistician).exists()
    not_coordinator = api.post(
        url(draft_study, "roles/"), {"username": "reader_a", "role": "coordinator"}, format="json"
    )
    assert (
        not_coordinator.status_code == 400
        and "is not a coordinator" in not_coordinator.json()["detail"]
    )
    last = api.delete(url(draft_study, "roles/coordinator/coordinator/"))
    assert last.status_code == 400 and "at least one coordinator" in last.json()["detail"]


def test_a_reader_added_by_username_to_an_open_study_is_enrolled_at_once(api, open_study, reader_b):
    response = api.post(
        url(open_study, "roles/"), {"username": "reader_b", "role": "reader"}, format="json"
    )
    assert response.status_code == 201
    assert api.get(url(open_study, "progress/")).json()[0]["reader"] == "reader_b"
    removed = api.delete(url(open_study, "roles/reader_b/reader/"))
    assert removed.status_code == 400 and "frozen schedule" in removed.json()["detail"]


# Blinding -----------------------------------------------------------------------------------


def test_the_draft_editor_names_the_explainer_but_an_open_study_never_does(
    api, ready_study, reader_a
):
    draft = api.get(url(ready_study)).json()
    assert [a["condition"] for a in draft["arms"]][2:] == [
        "AI prediction and explanation: gradcam",
        "AI prediction and placebo explanation: gradcam",
    ]
    services.study_role_add(
        acting_user=ready_study.created_by, study=ready_study, user=reader_a, role="reader"
    )
    api.post(url(ready_study, "open/"), format="json")

    responses = {
        tail: api.get(url(ready_study, tail))
        for tail in ("", "arms/", "readiness/", "progress/", "readers/", "questions/", "roles/")
    }
    responses["list"] = api.get("/api/v1/studies/")
    for name, response in responses.items():
        assert response.status_code == 200, name
        text = response.content.decode().lower()
        assert "gradcam" not in text, name
        assert "placebo" not in text, name
    detail = responses[""].json()
    assert [a["kind"] for a in detail["arms"]] == ["unaided", "ai", "explanation", "explanation"]
    assert {a["condition"] for a in detail["arms"][2:]} == {"AI prediction and explanation"}
    assert [row["kind"] for row in responses["readiness/"].json()["arms"]][2:] == [
        "explanation"
    ] * 2
    assert len(responses["progress/"].json()) == 1
