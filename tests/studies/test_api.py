"""The studies REST API: configuring, opening and running a blinded study, who may see and
change what, clear 400s for bad input, and the OpenAPI schema."""

from __future__ import annotations

import os

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from rest_framework.test import APIClient

from core.models import AuditEntry
from core.permissions import COORDINATORS_GROUP
from library.models import Case
from studies import services
from studies.models import Enrollment, Invitation, Study, StudyRole
from tests.studies.factories import add_explanations, add_predictions, make_collection, make_model

pytestmark = pytest.mark.django_db


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def api(coordinator) -> APIClient:
    return client_for(coordinator)


@pytest.fixture
def other_coordinator(db) -> User:
    user = User.objects.create_user(username="other_coordinator", password="pw-other")
    user.groups.add(Group.objects.get_or_create(name=COORDINATORS_GROUP)[0])
    return user


@pytest.fixture
def study_statistician(draft_study, coordinator, statistician):
    services.study_role_add(
        acting_user=coordinator, study=draft_study, user=statistician, role="statistician"
    )
    return statistician


def url(study, tail: str = "") -> str:
    return f"/api/v1/studies/{study if isinstance(study, int) else study.pk}/{tail}"


def mentions(problems: list[str], *phrases: str) -> bool:
    """Whether one of the problems contains every phrase (case-insensitive)."""
    return any(all(p.lower() in problem.lower() for p in phrases) for problem in problems)


def token_of(link: str) -> str:
    return link.rstrip("/").rsplit("/", 1)[-1]


# The whole flow -----------------------------------------------------------------------------


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


def test_opening_a_study_without_arms_answers_400_listing_what_is_missing(api):
    study = api.post("/api/v1/studies/", {"title": "Empty"}, format="json").json()
    response = api.post(url(study["id"], "open/"), format="json")
    assert response.status_code == 400
    problems = response.json()["problems"]
    assert mentions(problems, "no arms")
    assert mentions(problems, "no consent text")
    assert mentions(problems, "no questions")
    assert response.json()["detail"] == "; ".join(problems)
    assert Study.objects.get(pk=study["id"]).status == "draft"


def test_a_diagnosis_question_without_options_answers_400(api):
    study = api.post("/api/v1/studies/", {"title": "No model yet"}, format="json").json()
    response = api.post(
        url(study["id"], "questions/"),
        {"key": "diagnosis", "kind": "diagnosis", "text": "What is it?"},
        format="json",
    )
    assert response.status_code == 400
    assert "a diagnosis question needs at least two options" in response.json()["detail"]


def test_a_washout_with_one_session_is_named_as_the_reason_the_study_cannot_open(api, ready_study):
    for code in ("B", "C", "D"):
        api.delete(url(ready_study, f"arms/{code}/"))
    for key in ("trust", "clarity", "usefulness", "region_agreement"):
        api.delete(url(ready_study, f"questions/{key}/"))
    changed = api.patch(
        url(ready_study),
        {"design": "fully_crossed", "sessions": 1, "washout_days": 14},
        format="json",
    )
    assert changed.status_code == 200
    assert any("washout" in p for p in changed.json()["problems"])
    response = api.post(url(ready_study, "open/"), format="json")
    assert response.status_code == 400
    (problem,) = response.json()["problems"]
    assert "washout needs at least two sessions" in problem
    assert "set the washout to 0 days or add arms" in problem


def test_a_study_whose_explanations_are_missing_cannot_open(api, draft_study):
    response = api.post(url(draft_study, "open/"), format="json")
    assert response.status_code == 400
    problems = response.json()["problems"]
    assert mentions(problems, "arm C", "12 of 12 cases", "no precomputed explanation")
    assert mentions(problems, "arm D", "12 of 12 cases", "no precomputed explanation")


def test_every_edit_of_an_open_study_answers_400_saying_it_is_frozen(api, open_study):
    case_id = open_study.study_cases.first().case_id
    edits = [
        api.patch(url(open_study), {"title": "Changed"}, format="json"),
        api.post(url(open_study, "arms/"), {"kind": "ai"}, format="json"),
        api.delete(url(open_study, "arms/A/")),
        api.post(
            url(open_study, "questions/"),
            {"key": "notes", "kind": "free_text", "text": "?"},
            format="json",
        ),
        api.patch(url(open_study, "questions/trust/"), {"text": "Changed?"}, format="json"),
        api.delete(url(open_study, "questions/trust/")),
        api.put(url(open_study, "cases/"), {"main": [case_id]}, format="json"),
        api.post(url(open_study, "cases/select/"), {}, format="json"),
    ]
    for response in edits:
        assert response.status_code == 400, response.content
        assert "frozen" in response.json()["detail"]
    reopened = api.post(url(open_study, "open/"), format="json")
    assert reopened.status_code == 400 and mentions(reopened.json()["problems"], "already open")
    open_study.refresh_from_db()
    assert open_study.title == "Heatmap reader study" and open_study.arms.count() == 4


def test_malformed_and_mistyped_bodies_answer_400_not_500(api, draft_study):
    raw = api.generic("PATCH", url(draft_study), data="{not json", content_type="application/json")
    assert raw.status_code == 400 and "JSON parse error" in raw.json()["detail"]
    form = api.patch(url(draft_study), "title=x", content_type="application/x-www-form-urlencoded")
    assert form.status_code == 415
    cases = [
        (api.patch, url(draft_study), ["a", "list"], "non_field_errors"),
        (api.patch, url(draft_study), {"sessions": "many"}, "sessions"),
        (api.patch, url(draft_study), {"sessions": 10**20}, "sessions"),
        (api.patch, url(draft_study), {"washout_days": 40000}, "washout_days"),
        (api.patch, url(draft_study), {"model": 10**20}, "model"),
        (api.patch, url(draft_study), {"model": 999999}, "model"),
        (api.patch, url(draft_study), {"collections": [999999]}, "collections"),
        (api.patch, url(draft_study), {"collections": "all"}, "collections"),
        (api.patch, url(draft_study), {"design": "crossover"}, "design"),
        (api.patch, url(draft_study), {"min_ai_wrong_share": "lots"}, "min_ai_wrong_share"),
        (api.patch, url(draft_study), {"colour": "blue"}, "colour"),
        (api.post, "/api/v1/studies/", {}, "title"),
        (api.post, url(draft_study, "arms/"), {"kind": "magic"}, "kind"),
        (api.post, url(draft_study, "arms/"), {"kind": "ai_explainer", "params": [1]}, "params"),
        (api.put, url(draft_study, "cases/"), {"main": ["one"]}, "main"),
        (api.put, url(draft_study, "cases/"), {"main": [10**20]}, "main"),
        (api.put, url(draft_study, "cases/"), {"training": [1]}, "main"),
        (api.post, url(draft_study, "cases/select/"), {"main_count": "six"}, "main_count"),
        (
            api.post,
            url(draft_study, "questions/"),
            {"key": "q", "kind": "essay", "text": "?"},
            "kind",
        ),
        (api.patch, url(draft_study, "questions/trust/"), {"points": "five"}, "points"),
        (api.post, url(draft_study, "invitations/"), {"valid_days": 3}, "email"),
        (api.post, url(draft_study, "roles/"), {"username": "x", "role": "boss"}, "role"),
        (api.post, "/api/v1/invitations/accept/", {"password": "x"}, "token"),
    ]
    for method, path, body, field in cases:
        response = method(path, body, format="json")
        assert response.status_code == 400, (path, body, response.content)
        assert field in response.json(), (path, body, response.json())
    draft_study.refresh_from_db()
    assert draft_study.sessions == 2 and draft_study.arms.count() == 4


def test_bad_values_the_services_refuse_come_back_as_sentences(api, draft_study):
    other = make_collection("elsewhere", cases=1)
    outside = Case.objects.get(collection=other).pk
    answers = {
        "washout": api.patch(url(draft_study), {"washout_days": -1}, format="json"),
        "share": api.patch(url(draft_study), {"min_ai_wrong_share": 1.5}, format="json"),
        "title": api.patch(url(draft_study), {"title": "  "}, format="json"),
        "arm": api.post(url(draft_study, "arms/"), {"kind": "ai"}, format="json"),
        "explainer": api.post(url(draft_study, "arms/"), {"kind": "ai_explainer"}, format="json"),
        "cases": api.put(url(draft_study, "cases/"), {"main": [outside]}, format="json"),
        "likert": api.patch(url(draft_study, "questions/trust/"), {"points": 4}, format="json"),
        "email": api.post(
            url(draft_study, "invitations/"), {"email": "not-an-address"}, format="json"
        ),
        "days": api.post(
            url(draft_study, "invitations/"), {"email": "a@b.org", "valid_days": 365}, format="json"
        ),
        "user": api.post(
            url(draft_study, "roles/"), {"username": "nobody", "role": "reader"}, format="json"
        ),
    }
    expected = {
        "washout": "washout_days must be a whole number of days from 0 to 365",
        "share": "min_ai_wrong_share must be a share between 0 and 1",
        "title": "the title is required",
        "arm": "the study already has an arm with this condition",
        "explainer": "an arm of kind 'ai_explainer' needs an explainer",
        "cases": "1 case(s) are not in the study's collections",
        "likert": "a Likert item has 5 or 7 points, not 4",
        "email": "is not an e-mail address",
        "days": "an invitation is valid for 1 to 90 days",
        "user": "no user named 'nobody'",
    }
    for name, response in answers.items():
        assert response.status_code == 400, name
        assert expected[name] in response.json()["detail"], (name, response.json())
        assert response.json()["problems"], name


# The OpenAPI schema -------------------------------------------------------------------------


def test_the_openapi_schema_lists_the_study_endpoints_and_validates_without_warnings(api):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", os.devnull)
    schema = api.get("/api/schema/", {"format": "json"})
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in (
        "/api/v1/studies/",
        "/api/v1/studies/{study_id}/",
        "/api/v1/studies/{study_id}/arms/{code}/",
        "/api/v1/studies/{study_id}/questions/defaults/",
        "/api/v1/studies/{study_id}/cases/select/",
        "/api/v1/studies/{study_id}/cases/add/",
        "/api/v1/studies/{study_id}/cases/exclude/",
        "/api/v1/studies/{study_id}/questions/{key}/move/",
        "/api/v1/studies/{study_id}/readiness/",
        "/api/v1/studies/{study_id}/invitations/{invitation_id}/revoke/",
        "/api/v1/studies/{study_id}/roles/{username}/{role}/",
        "/api/v1/studies/{study_id}/reveal-arms/",
        "/api/v1/invitations/accept/",
    ):
        assert path in paths, path
    assert set(paths["/api/v1/studies/{study_id}/"]) == {"get", "patch"}
    arm = schema.json()["components"]["schemas"]["Arm"]["properties"]
    assert "explainer" not in arm
