"""The studies REST API: clear 400s for bad input and studies that cannot open, and the OpenAPI
schema."""

from __future__ import annotations

import os

import pytest
from django.core.management import call_command

from library.models import Case
from studies.models import Study
from tests.studies import api_helpers
from tests.studies.api_helpers import (
    mentions,
    url,
)
from tests.studies.factories import make_collection

pytestmark = pytest.mark.django_db

# The fixtures of api_helpers.py.
api = api_helpers.api
other_coordinator = api_helpers.other_coordinator
study_statistician = api_helpers.study_statistician


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
