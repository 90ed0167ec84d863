"""Schema-driven fuzzing of the whole REST API with schemathesis: every operation of the OpenAPI
schema (drf-spectacular, /api/schema/) is called with generated valid and invalid requests, as a
coordinator and as a reader, against a database holding a model, a collection with cases, a
draft study, an open study with an enrolled reader, a precompute job and a report.

No request may end in a 5xx (schemathesis' ``not_a_server_error``), and every documented
response must match its schema (``response_schema_conformance``). Half of the examples of an
operation use the path parameters of objects that exist, so that requests get past the 404s.
"""

from __future__ import annotations

import os
import time
from collections import Counter

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from analysis.models import StudyReport
from explain import services as explain_services
from studies import services
from studies.models import Question
from tests.studies.factories import add_explanations, add_predictions, make_collection, make_model
from tests.studies.reader_views_helpers import enroll, give_files, next_trial

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("XRS_SCHEMA_FUZZ_EXAMPLES", "25"))
"""Examples per operation and role (positive and negative data mixed); more for a long hunt."""
RANDOM = os.environ.get("XRS_SCHEMA_FUZZ_RANDOM") == "1"
"""Fresh random examples instead of the same derandomized ones each run (for a long hunt)."""
PASSWORD = "fuzz-Passw0rd-1234"
CHECKS = [not_a_server_error, response_schema_conformance]


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Basic authentication checks the password on every request: hash it cheaply."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def app():
    """The project's WSGI application, keeping the test's database connection open between
    requests as Django's test client does (a real request closes it when it finishes)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _raw_schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def _configured_study(coordinator, title, model, collection):
    study = services.study_create(
        acting_user=coordinator,
        title=title,
        model=model,
        collections=[collection],
        consent_text="I agree to take part.",
        design="latin_square",
        sessions=2,
    )
    services.arm_add(acting_user=coordinator, study=study, kind="unaided")
    services.arm_add(acting_user=coordinator, study=study, kind="ai")
    services.arm_add(acting_user=coordinator, study=study, kind="ai_explainer", explainer="gradcam")
    services.questions_add_defaults(acting_user=coordinator, study=study)
    services.study_cases_select(acting_user=coordinator, study=study)
    study.refresh_from_db()
    return study


@pytest.fixture
def world(coordinator, reader_a, reader_b):
    """Objects for every path parameter of the schema, owned by the coordinator."""
    for user in (coordinator, reader_a, reader_b):
        user.set_password(PASSWORD)
        user.save()
    model = make_model()
    collection = make_collection(cases=8)
    cases = list(collection.cases.all())
    add_predictions(model, cases, wrong={cases[0].pk})
    add_explanations(model, cases, "gradcam")
    draft = _configured_study(coordinator, "Draft study", model, collection)
    opened = _configured_study(coordinator, "Open study", model, collection)
    opened = services.study_open(acting_user=coordinator, study=opened)
    give_files(opened)
    enrollment = enroll(coordinator, opened, reader_a)
    trial = next_trial(enrollment)
    invitation, _ = services.invitation_create(
        acting_user=coordinator, study=draft, email="invitee@example.org"
    )
    job = explain_services.precompute_start(
        acting_user=coordinator, model=model, collection=collection, explainers=["occlusion"]
    )
    report = StudyReport.objects.create(study=opened, created_by=coordinator)
    question = Question.objects.filter(study=draft).first()
    return {
        "collection_id": collection.pk,
        "case_id": cases[1].pk,
        "model_id": model.pk,
        "job_id": job.pk,
        "study_id": [draft.pk, opened.pk],
        "code": [arm.code for arm in draft.arms.all()],
        "key": question.key,
        "invitation_id": invitation.pk,
        "username": "reader_a",
        "role": "reader",
        "trial_uid": str(trial.uid),
        "report_uid": str(report.uid),
        "kind": "display",
    }


def _known(world, operation) -> st.SearchStrategy[dict]:
    names = [p.name for p in operation.path_parameters]
    choices = {}
    for name in names:
        value = world.get(name)
        if value is None:
            return st.just({})
        choices[name] = st.sampled_from(value) if isinstance(value, list) else st.just(value)
    return st.fixed_dictionaries(choices)


def _summary(label, mode, response, exc) -> str:
    """One failure: the operation, the status, what schemathesis found and the body (cut)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    found = [line for i, line in enumerate(lines) if line.startswith("- ST") or (i and lines[i - 1].startswith("- ST"))]
    body = response.text[:300] if hasattr(response, "text") else ""
    return f"{label} [{mode.value}] -> {response.status_code}: {' | '.join(found) or lines[0]} :: {body}"


def _runner(world, app, auth, operation, sent: Counter, failures: list[str]):
    """A Hypothesis test for one operation (a closure: @given cannot take default arguments)."""
    label = f"{operation.method.upper()} {operation.path}"

    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=not RANDOM,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def run(data):
        mode = data.draw(st.sampled_from([GenerationMode.POSITIVE, GenerationMode.NEGATIVE]))
        known = data.draw(_known(world, operation)) if data.draw(st.booleans()) else {}
        case = data.draw(operation.as_strategy(mode, path_parameters=known or None))
        response = case.call(app=app, auth=auth)
        sent[(label, response.status_code)] += 1
        try:
            case.validate_response(response, checks=CHECKS, transport_kwargs={"app": app})
        except (Exception, BaseExceptionGroup) as exc:  # collect every operation's failures
            failures.append(_summary(label, mode, response, exc))

    return run


def fuzz_every_operation(world, app, username: str) -> dict[str, Counter]:
    """Fuzz every operation as `username`; returns {operation: Counter(status: requests)}."""
    started = time.monotonic()
    schema = schemathesis.openapi.from_dict(_raw_schema())
    sent: Counter = Counter()
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 40
    for operation in operations:
        _runner(world, app, (username, PASSWORD), operation, sent, failures)()
    distinct = sorted(set(failures))
    assert not distinct, "\n".join(distinct[:60]) + f"\n{len(distinct)} distinct failure(s)"
    by_operation: dict[str, Counter] = {}
    for (label, code), count in sent.items():
        by_operation.setdefault(label, Counter())[code] += count
    print(
        f"\n{username}: {sum(sent.values())} requests over {len(by_operation)} operations "
        f"in {time.monotonic() - started:.1f}s (requests per operation: status -> count)"
    )
    for label, codes in sorted(by_operation.items()):
        print(f"  {sum(codes.values()):4d}  {label}  {dict(sorted(codes.items()))}")
    assert all(sum(codes.values()) >= EXAMPLES * 0.8 for codes in by_operation.values())
    assert not any(401 in codes for codes in by_operation.values())  # authentication held
    return by_operation


def _succeeded(codes: Counter) -> bool:
    return any(200 <= code < 300 for code in codes)


def test_no_operation_answers_a_coordinator_with_a_server_error(world, app):
    by_operation = fuzz_every_operation(world, app, "coordinator")
    # The fuzzer got past validation and lookups, not only 400s and 404s.
    assert sum(_succeeded(codes) for codes in by_operation.values()) >= 30


LIBRARY = ("/api/v1/collections", "/api/v1/cases", "/api/v1/models", "/api/v1/precompute", "/library/")


def test_no_operation_answers_a_reader_with_a_server_error(world, app):
    by_operation = fuzz_every_operation(world, app, "reader_a")
    assert _succeeded(by_operation["GET /api/v1/reading/trials/{trial_uid}/"])
    for label, codes in by_operation.items():
        if label.split(" ", 1)[1].startswith(LIBRARY):
            assert not _succeeded(codes), (label, codes)  # coordinators only


NON_OBJECT_BODIES = ["[]", '[{"unblinded": true}]', '"text"', "0", "null", "true", "{", "\x00"]


def test_a_json_body_that_is_not_an_object_is_a_4xx_on_every_operation(world, reader_a, coordinator):
    """Regression for a 500 the random hunt found (a JSON list posted to request a report):
    every operation that takes a JSON body refuses lists, scalars and broken JSON with a 4xx."""
    from rest_framework.test import APIClient

    clients = {}
    for user in (coordinator, reader_a):
        clients[user.username] = APIClient()
        clients[user.username].force_authenticate(user)
    tried = 0
    covered = set()
    for path, operations in _raw_schema()["paths"].items():
        for method, operation in operations.items():
            content = (operation.get("requestBody") or {}).get("content", {})
            if "application/json" not in content:
                continue
            url = path
            for name, value in world.items():
                url = url.replace("{" + name + "}", str(value[-1] if isinstance(value, list) else value))
            client = clients["reader_a" if "/reading/" in path else "coordinator"]
            for body in NON_OBJECT_BODIES:
                response = getattr(client, method)(url, data=body, content_type="application/json")
                assert 400 <= response.status_code < 500, (method, url, body, response.status_code)
                tried += 1
            covered.add(f"{method.upper()} {path}")
    print(f"\nnon-object JSON bodies: {tried} requests over {len(covered)} operations")
    assert len(covered) >= 12 and "POST /api/v1/studies/{study_id}/reports/" in covered
