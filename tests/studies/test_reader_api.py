"""The trial page's JSON API: read the payload, answer a stage once per client key, reveal the AI
output only after the unaided answer, per-field validation errors, and who may call it."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from rest_framework.test import APIClient

from library.models import CaseLabel
from studies import services
from studies.models import Arm, Response, Trial
from tests.studies.factories import add_explanations, add_predictions, make_collection
from tests.studies.reader_views_helpers import (
    advance_to,
    answers_for,
    assert_blind,
    complete,
    enroll,
    file_url,
    give_files,
    mark_arms,
    next_trial,
)

pytestmark = pytest.mark.django_db


def api_for(user, **kwargs) -> APIClient:
    client = APIClient(**kwargs)
    client.force_login(user)
    return client


def trial_url(trial: Trial, action: str = "") -> str:
    return f"/api/v1/reading/trials/{trial.uid}/" + (f"{action}/" if action else "")


def answer(client, trial: Trial, stage: str, answers=None, *, key=None, interactions=None):
    body = {
        "stage": stage,
        "answers": answers_for(trial, stage) if answers is None else answers,
        "client_key": str(key or uuid.uuid4()),
    }
    if interactions is not None:
        body["interactions"] = interactions
    return client.post(trial_url(trial, "answer"), body, format="json")


def open_page(client, trial: Trial) -> None:
    """What the browser does first: open the trial page (which marks the trial shown)."""
    assert client.get(f"/read/trials/{trial.uid}/").status_code == 200


@pytest.fixture
def two_stage_study(coordinator, ready_study):
    services.study_update(acting_user=coordinator, study=ready_study, protocol="two_stage")
    return services.study_open(acting_user=coordinator, study=ready_study)


@pytest.fixture
def reading(coordinator, two_stage_study, reader_a):
    give_files(two_stage_study)
    return enroll(coordinator, two_stage_study, reader_a)


@pytest.fixture
def api_a(reader_a) -> APIClient:
    return api_for(reader_a)


# The whole flow ------------------------------------------------------------------------------


def test_a_reader_consents_opens_the_next_trial_answers_through_the_api_and_moves_on(
    coordinator, open_study, reader_a, api_a
):
    enrollment = enroll(coordinator, open_study, reader_a, consent=False)
    api_a.post(f"/read/{open_study.pk}/", {"consent_version": open_study.consent_version})
    trial_page = api_a.get(f"/read/{open_study.pk}/next/").url
    trial = next_trial(enrollment)
    assert trial_page == f"/read/trials/{trial.uid}/"
    open_page(api_a, trial)
    payload = api_a.get(trial_url(trial)).json()
    assert payload["stage"] == "final" and payload["state"] == "shown"
    saved = answer(
        api_a, trial, "final", interactions={"window_changes": 2, "viewer_ms": 1500, "junk": "x"}
    )
    assert saved.status_code == 200
    done = saved.json()["payload"]
    assert done["state"] == "done" and done["stage"] is None and done["questions"] == []
    response = Response.objects.get(trial=trial)
    assert response.stage == "final" and response.answers == answers_for(trial, "final")
    assert response.interactions == {"window_changes": 2, "viewer_ms": 1500}
    following = next_trial(enrollment)
    assert following.pk != trial.pk
    assert api_a.get(f"/read/{open_study.pk}/next/").url == f"/read/trials/{following.uid}/"


def test_a_two_stage_trial_reveals_the_ai_output_only_after_the_unaided_answer(reading, api_a):
    trial = advance_to(reading, Arm.Kind.AI_EXPLAINER)
    open_page(api_a, trial)
    payload = api_a.get(trial_url(trial)).json()
    assert payload["stage"] == "first" and payload["two_stage"] is True
    assert payload["ai"] is None and payload["overlay_url"] is None
    assert [q["key"] for q in payload["questions"]] == ["diagnosis", "confidence"]
    assert api_a.get(file_url(trial, "overlay")).status_code == 404

    early = api_a.post(trial_url(trial, "reveal"), {}, format="json")
    assert early.status_code == 400 and "unaided answer first" in early.json()["detail"]
    final_first = answer(api_a, trial, "final", answers_for(trial, "first"))
    assert (
        final_first.status_code == 400
        and "revealed before the final answer" in final_first.json()["detail"]
    )

    first = answer(api_a, trial, "first")
    assert first.status_code == 200
    waiting = first.json()["payload"]
    assert waiting["stage"] == "reveal" and waiting["ai"] is None and waiting["overlay_url"] is None
    assert api_a.get(trial_url(trial)).json()["ai"] is None
    assert api_a.get(file_url(trial, "overlay")).status_code == 404

    revealed = api_a.post(trial_url(trial, "reveal"), {}, format="json")
    assert revealed.status_code == 200
    shown = revealed.json()
    assert shown["stage"] == "final" and shown["overlay_url"] == file_url(trial, "overlay")
    assert set(shown["ai"]) == {"label", "positive_class", "positive_probability"}
    assert {"clarity", "usefulness", "trust", "region_agreement"} <= {
        q["key"] for q in shown["questions"]
    }
    assert api_a.get(shown["overlay_url"]).status_code == 200
    again = api_a.post(trial_url(trial, "reveal"), {}, format="json")
    assert again.status_code == 200 and again.json() == shown

    final = answer(api_a, trial, "final")
    assert final.status_code == 200 and final.json()["payload"]["state"] == "done"
    assert list(Response.objects.filter(trial=trial).values_list("stage", flat=True)) == [
        "first",
        "final",
    ]


def test_every_payload_of_a_whole_study_is_blind(coordinator, two_stage_study, reader_a, api_a):
    mark_arms(two_stage_study)
    give_files(two_stage_study)
    enrollment = enroll(coordinator, two_stage_study, reader_a)
    while (trial := next_trial(enrollment)) is not None:
        open_page(api_a, trial)
        texts = [api_a.get(trial_url(trial)).content.decode()]
        stage = api_a.get(trial_url(trial)).json()["stage"]
        if stage == "first":
            texts.append(answer(api_a, trial, "first").content.decode())
            texts.append(api_a.post(trial_url(trial, "reveal"), {}, format="json").content.decode())
        final = answer(api_a, trial, "final")
        texts.append(final.content.decode())
        assert final.json()["payload"]["feedback"] is None
        for text in texts:
            assert_blind(text, trial)


# Answers: validation and idempotency ---------------------------------------------------------


def test_invalid_answers_come_back_per_field_and_nothing_is_stored(reading, api_a):
    trial = advance_to(reading, Arm.Kind.AI)
    open_page(api_a, trial)
    refused = answer(api_a, trial, "first", {"diagnosis": "tumour", "confidence": 150, "trust": 3})
    assert refused.status_code == 400
    body = refused.json()
    assert set(body) == {"detail", "problems", "fields"}
    assert "choose one of" in body["fields"]["diagnosis"]
    assert "from 0 to 100" in body["fields"]["confidence"]
    assert "not asked at this stage" in body["fields"]["trust"]
    assert len(body["problems"]) == 3 and "diagnosis" in body["detail"]
    trial.refresh_from_db()
    assert trial.state == Trial.State.SHOWN and not trial.responses.exists()


def test_a_submit_retried_after_fixing_its_answers_reuses_its_key_and_is_stored(reading, api_a):
    trial = next_trial(reading)
    open_page(api_a, trial)
    stage = api_a.get(trial_url(trial)).json()["stage"]
    key = uuid.uuid4()
    assert answer(api_a, trial, stage, {"confidence": 20}, key=key).status_code == 400
    assert answer(api_a, trial, stage, key=key).status_code == 200
    assert Response.objects.get(trial=trial).client_key == key


def test_the_same_submit_twice_stores_one_response_and_answers_the_same(reading, api_a):
    trial = next_trial(reading)
    open_page(api_a, trial)
    stage = api_a.get(trial_url(trial)).json()["stage"]
    key = uuid.uuid4()
    first = answer(api_a, trial, stage, key=key)
    second = answer(api_a, trial, stage, key=key)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert Response.objects.filter(trial=trial).count() == 1


def test_answering_a_finished_trial_is_refused_with_a_message(reading, reader_a, api_a):
    trial = next_trial(reading)
    complete(reader_a, trial)
    refused = answer(api_a, trial, "final")
    assert refused.status_code == 400
    assert "cannot go back" in refused.json()["detail"]
    assert refused.json()["problems"] == [refused.json()["detail"]]
    assert Response.objects.filter(trial=trial, stage="final").count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"stage": "second", "answers": {}, "client_key": str(uuid.uuid4())}, "stage"),
        ({"stage": "final", "answers": {}, "client_key": "not-a-uuid"}, "client_key"),
        ({"stage": "final", "answers": ["nodule"], "client_key": str(uuid.uuid4())}, "answers"),
        ({"stage": "final", "answers": {}, "client_key": str(uuid.uuid4()), "arm": "A"}, "arm"),
    ],
)
def test_a_malformed_answer_request_is_a_400_naming_the_field(reading, api_a, body, field):
    trial = next_trial(reading)
    open_page(api_a, trial)
    refused = api_a.post(trial_url(trial, "answer"), body, format="json")
    assert refused.status_code == 400
    problems = refused.json()["problems"]
    assert len(problems) == 1 and problems[0].startswith(f"{field}: ")
    assert refused.json()["detail"] == problems[0]
    assert not Response.objects.filter(trial=trial).exists()


def test_training_trials_give_feedback_once_answered_and_main_trials_do_not(
    coordinator, ready_study, study_model, reader_a, api_a
):
    extra = make_collection("training-cases", cases=2)
    ready_study.collections.add(extra)
    cases = list(ready_study.study_cases.values_list("case_id", flat=True))
    training = list(extra.cases.order_by("pk").values_list("pk", flat=True))
    services.study_cases_set(
        acting_user=coordinator, study=ready_study, main=cases, training=training
    )
    add_predictions(study_model, list(extra.cases.all()))
    add_explanations(study_model, list(extra.cases.all()), "gradcam")
    add_explanations(study_model, list(extra.cases.all()), "gradcam", placebo=True)
    study = services.study_open(acting_user=coordinator, study=ready_study)
    enrollment = enroll(coordinator, study, reader_a)
    trial = next_trial(enrollment)
    assert trial.kind == Trial.Kind.TRAINING
    open_page(api_a, trial)
    shown = api_a.get(trial_url(trial)).json()
    assert shown["training"] is True and shown["feedback"] is None
    done = answer(api_a, trial, "final").json()["payload"]
    positive = CaseLabel.objects.filter(case=trial.case, name="nodule", value=1).exists()
    assert done["feedback"] == {"truth": "nodule" if positive else "no nodule"}
    while (trial := next_trial(enrollment)).kind == Trial.Kind.TRAINING:
        complete(reader_a, trial)
    open_page(api_a, trial)
    assert answer(api_a, trial, "final").json()["payload"]["feedback"] is None


# Who may call it ----------------------------------------------------------------------------


def test_another_readers_trial_is_not_found_through_the_api(coordinator, reading, reader_b):
    enroll(coordinator, reading.study, reader_b)
    trial = next_trial(reading)
    other = api_for(reader_b)
    assert other.get(trial_url(trial)).status_code == 404
    assert answer(other, trial, "first").status_code == 404
    assert other.post(trial_url(trial, "reveal"), {}, format="json").status_code == 404
    trial.refresh_from_db()
    assert trial.state == Trial.State.PENDING and not trial.responses.exists()


def test_the_api_needs_a_signed_in_user(reading):
    trial = next_trial(reading)
    assert APIClient().get(trial_url(trial)).status_code in (401, 403)
    assert answer(APIClient(), trial, "final").status_code in (401, 403)


def test_answers_need_the_pages_csrf_token(reading, reader_a):
    client = api_for(reader_a, enforce_csrf_checks=True)
    trial = next_trial(reading)
    html = client.get(f"/read/trials/{trial.uid}/").content.decode()
    token = re.search(r'data-csrf-token="([^"]+)"', html).group(1)
    stage = json.loads(
        re.search(r'id="trial-payload" type="application/json">(.*?)</script>', html).group(1)
    )["stage"]
    body = {"stage": stage, "answers": answers_for(trial, stage), "client_key": str(uuid.uuid4())}
    refused = client.post(trial_url(trial, "answer"), body, format="json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    accepted = client.post(trial_url(trial, "answer"), body, format="json", HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 200


def test_a_closed_study_takes_no_answers_and_says_so(coordinator, reading, api_a):
    trial = next_trial(reading)
    open_page(api_a, trial)
    stage = api_a.get(trial_url(trial)).json()["stage"]
    services.study_close(acting_user=coordinator, study=reading.study)
    refused = answer(api_a, trial, stage)
    assert refused.status_code == 400 and "closed" in refused.json()["detail"]
    assert "closed" in api_a.get(trial_url(trial)).json()["detail"]
    assert not Response.objects.filter(trial=trial).exists()


def test_the_openapi_schema_documents_the_reading_endpoints(coordinator):
    schema = api_for(coordinator).get("/api/schema/", {"format": "json"}).json()
    paths = schema["paths"]
    base = "/api/v1/reading/trials/{trial_uid}/"
    assert "get" in paths[base]
    assert "post" in paths[base + "answer/"] and "post" in paths[base + "reveal/"]
    answer_schema = paths[base + "answer/"]["post"]
    assert set(answer_schema["responses"]) == {"200", "400", "404"}
    components = schema["components"]["schemas"]
    assert {"stage", "answers", "client_key", "interactions"} <= set(
        components["ReadingAnswerRequest"]["properties"]
    )
    assert "fields" in components["ReadingAnswerProblems"]["properties"]
    assert {"ai", "overlay", "overlay_url", "first_answer", "image", "questions"} <= set(
        components["ReadingTrial"]["properties"]
    )
    assert set(components["ReadingOverlay"]["properties"]) == {"url", "empty"}
