"""A reader sees a case's clinical history, in a labelled panel and in the trial's payload, only
in the trials whose arm shows it; elsewhere nothing about it reaches them. The text is the
case's own and the panel names no arm, condition or truth."""

from __future__ import annotations

import json
import re

import pytest
from rest_framework.test import APIClient

from library.models import Case
from studies import services
from studies.models import Arm, Study, Trial
from tests.studies.factories import add_predictions, make_collection, make_model
from tests.studies.reader_views_helpers import (
    PAYLOAD_SCRIPT,
    assert_blind,
    client_for,
    complete,
    embedded_payload,
    enroll,
    without_csrf,
)

pytestmark = pytest.mark.django_db

# Distinctive codes, so that a leaked one can be searched for.
ARMS = {("unaided", False): "QZUN", ("unaided", True): "QZUH", ("ai", True): "QZAH"}
PANEL = re.compile(r'\s*<section class="clinical-history".*?</section>', re.S)
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _history(case: Case) -> str:
    return f"Patient {case.pk}: 58-year-old smoker, cough for 3 weeks"


@pytest.fixture
def enrollment(coordinator, reader_a):
    """An open, fully crossed study: every case under unaided without history, unaided with
    history and AI with history; every case but the last has a history."""
    collection = make_collection("history-study", cases=4)
    cases = list(collection.cases.order_by("pk"))
    for case in cases[:-1]:
        Case.objects.filter(pk=case.pk).update(clinical_history=_history(case))
    model = make_model()
    add_predictions(model, cases)
    study = services.study_create(
        acting_user=coordinator,
        title="History study",
        model=model,
        collections=[collection],
        consent_text="I agree.",
        design="fully_crossed",
        sessions=len(ARMS),
    )
    for kind, shows in ARMS:
        services.arm_add(
            acting_user=coordinator, study=study, kind=kind, shows_clinical_history=shows
        )
    for arm in study.arms.all():
        Arm.objects.filter(pk=arm.pk).update(code=ARMS[(arm.kind, arm.shows_clinical_history)])
    for question in services.questions_add_defaults(acting_user=coordinator, study=study):
        if question.key in ("clarity", "usefulness", "region_agreement"):  # no explanation here
            services.question_remove(acting_user=coordinator, question=question)
    services.study_cases_set(acting_user=coordinator, study=study, main=[c.pk for c in cases])
    study = services.study_open(acting_user=coordinator, study=study)
    return enroll(coordinator, study, reader_a)


def _trials(enrollment) -> list[Trial]:
    return list(
        Trial.objects.filter(session__enrollment=enrollment)
        .select_related("arm", "case", "session__enrollment__study")
        .order_by("session__index", "position")
    )


@pytest.fixture
def read(enrollment, reader_a) -> list[tuple[Trial, str, dict]]:
    """Every trial read in order: its page and its reader API payload, then answered."""
    client, api = client_for(reader_a), APIClient()
    api.force_login(reader_a)
    seen = []
    for trial in _trials(enrollment):
        response = client.get(f"/read/trials/{trial.uid}/")
        assert response.status_code == 200
        body = api.get(f"/api/v1/reading/trials/{trial.uid}/").json()
        seen.append((trial, response.content.decode(), body))
        complete(reader_a, Trial.objects.get(pk=trial.pk))
    return seen


def test_the_panel_and_the_text_appear_only_in_arms_that_show_the_history(read):
    assert {trial.arm.code for trial, _, _ in read} == set(ARMS.values())
    for trial, html, _ in read:
        payload = embedded_payload(html)
        text = trial.case.clinical_history
        if trial.arm.shows_clinical_history:
            assert '<h2 id="clinical-history-heading">Clinical history</h2>' in html
            assert payload["clinical_history"] == text
            assert (text or "None given for this case.") in html
        else:
            assert "clinical" not in html.lower() and "clinical_history" not in payload
            assert "Patient " not in html and "smoker" not in html
        assert_blind(html, trial)
        # random tokens (CSRF, CSP nonces) may contain any four letters: searched without them
        searched = re.sub(r'nonce="[^"]*"', "", without_csrf(html)).lower()
        for code in ARMS.values():
            assert code.lower() not in searched


def test_the_reader_api_payload_carries_the_history_only_in_arms_that_show_it(read):
    for trial, _, body in read:
        if trial.arm.shows_clinical_history:
            assert body["clinical_history"] == trial.case.clinical_history
        else:
            assert "clinical_history" not in body
            assert "smoker" not in json.dumps(body)


def _normalized(html: str) -> str:
    html = PAYLOAD_SCRIPT.sub("", without_csrf(html))
    html = re.sub(r'nonce="[^"]*"', "", UUID.sub("<uuid>", html))
    return re.sub(r"\d+", "#", html)


def test_one_case_read_with_and_without_history_differs_only_by_the_panel(read):
    by_case: dict[int, dict[str, str]] = {}
    for trial, html, _ in read:
        by_case.setdefault(trial.case_id, {})[trial.arm.code] = html
    for case_id, pages in by_case.items():
        without, with_history = pages["QZUN"], pages["QZUH"]
        assert PANEL.search(with_history) and not PANEL.search(without)
        assert _normalized(PANEL.sub("", with_history)) == _normalized(without)
        plain, shown = embedded_payload(without), embedded_payload(with_history)
        assert shown.pop("clinical_history") == Case.objects.get(pk=case_id).clinical_history
        for payload in (plain, shown):
            for key in ("trial", "position", "session"):
                payload.pop(key)
            payload["image"].pop("pixels_url")
            payload["image"].pop("display_url")
        assert shown == plain
    assert len(by_case) == 4


def test_the_text_shown_is_the_cases_own_and_escaped(enrollment, reader_a):
    trial = _trials(enrollment)[0]
    Arm.objects.filter(pk=trial.arm_id).update(shows_clinical_history=True)
    study = trial.session.enrollment.study
    frozen = dict(study.frozen_config)  # readers see the text frozen when the study opened
    frozen["clinical_histories"] = {str(trial.case_id): "Fever <b>& chills</b>"}
    Study.objects.filter(pk=study.pk).update(frozen_config=frozen)
    response = client_for(reader_a).get(f"/read/trials/{trial.uid}/")
    html = response.content.decode()
    assert "Fever &lt;b&gt;&amp; chills&lt;/b&gt;" in html and "<b>&" not in html


def test_the_text_readers_see_is_frozen_when_the_study_opens(enrollment, reader_a, coordinator):
    from library.services.case_history import case_clinical_history_set

    trials = _trials(enrollment)
    frozen = trials[0].session.enrollment.study.frozen_config["clinical_histories"]
    cases = sorted({t.case_id for t in trials})
    assert frozen == {str(pk): _history(Case(pk=pk)) for pk in cases[:-1]}  # the last has none
    trial = trials[0]  # the reader's current trial
    Arm.objects.filter(pk=trial.arm_id).update(shows_clinical_history=True)
    case_clinical_history_set(acting_user=coordinator, case=trial.case,
                              clinical_history="Edited after the study opened")
    page = client_for(reader_a).get(f"/read/trials/{trial.uid}/").content.decode()
    assert embedded_payload(page)["clinical_history"] == frozen.get(str(trial.case_id), "")
    assert "Edited after the study opened" not in page
