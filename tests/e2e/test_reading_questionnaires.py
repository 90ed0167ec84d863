"""End-of-session questionnaires in the browser: a reader finishes session 1 of a two-session
study, is shown the System Usability Scale before anything else, fills it in (a submit with an
item left out is refused with the problem listed), and continues with session 2.

The study (a real demo study, read in Debian's chromium) asks the SUS after each session; the
session's other cases are read through the services first, its last case on the page."""

from __future__ import annotations

import re

import pytest

from studies import services
from studies.models import Enrollment, QuestionnaireResponse, Trial
from studies.questionnaire_scoring import score_sus
from studies.services.reading import enrollment_consent
from tests.e2e.reading_helpers import (
    UNBLINDING,
    choose_diagnosis,
    current_trial,
    read_by_service,
    schedule,
    slide_confidence,
    submit,
    wait_ready,
    wait_saved,
)
from tests.e2e.test_csp import WATCH_JS
from tests.explain.engine_fixtures import import_demo_collection, register_demo_architecture

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SUS_CHOICES = (4, 2, 4, 1, 5, 2, 4, 2, 4, 3)  # score (3+3+3+4+4+3+3+3+3+2) x 2.5 = 77.5


@pytest.fixture
def sus_study(coordinator, demo_dataset, tmp_path, eager):
    collection = import_demo_collection(demo_dataset, name="questionnaires")
    model = register_demo_architecture(tmp_path, name="questionnaire-net")
    study = services.study_create(
        acting_user=coordinator,
        title="Questionnaire study",
        reader_title="Chest image reading",
        model=model,
        collections=[collection],
        consent_text="I agree to take part in this reader study.",
        design="latin_square",
        sessions=2,
    )
    services.arm_add(acting_user=coordinator, study=study, kind="unaided")
    services.arm_add(acting_user=coordinator, study=study, kind="ai_explainer", explainer="gradcam")
    services.questions_add_defaults(acting_user=coordinator, study=study)
    services.study_cases_select(acting_user=coordinator, study=study, main_count=4)
    services.study_questionnaires_set(
        acting_user=coordinator,
        study=study,
        questionnaires=[{"instrument": "sus", "after": "each_session"}],
    )
    services.study_precompute(acting_user=coordinator, study=study)
    return services.study_open(acting_user=coordinator, study=study)


@pytest.fixture
def reader(sus_study, coordinator, reader_a):
    services.study_role_add(acting_user=coordinator, study=sus_study, user=reader_a, role="reader")
    enrollment = Enrollment.objects.get(study=sus_study, reader=reader_a)
    enrollment_consent(
        acting_user=reader_a, enrollment=enrollment, consent_version=sus_study.consent_version
    )
    return reader_a


def read_last_case_of_session_1(page, reader) -> None:
    """Read every case of session 1 but its last through the services, the last on the page."""
    first_session = [t for t in schedule(reader) if t.session.index == 0]
    for trial in first_session[:-1]:
        read_by_service(reader, trial)
    page.reload()  # the study page, now with the session under way
    page.get_by_role("link", name="Continue").click()
    wait_ready(page)
    trial = current_trial(page)
    assert trial.pk == first_session[-1].pk
    choose_diagnosis(page, "nodule")
    slide_confidence(page, 10)
    for key in page.locator("[data-question].question-likert").evaluate_all(
        "(boxes) => boxes.map((box) => box.dataset.question)"
    ):
        page.locator(f"label[for=q-{key}-3]").click()
    submit(page)
    wait_saved(page)
    assert Trial.objects.get(pk=trial.pk).state == Trial.State.DONE
    page.keyboard.press("Enter")  # "Finish the session"


def test_a_reader_finishes_a_session_fills_the_sus_and_continues(
    live_server, sus_study, reader, new_page, artifacts_dir
):
    shots = artifacts_dir / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    page = new_page(user=reader, base_url=live_server.url)
    page.add_init_script(WATCH_JS)
    page.goto(f"{live_server.url}/read/{sus_study.pk}/")
    read_last_case_of_session_1(page, reader)

    page.wait_for_url(re.compile(rf"/read/{sus_study.pk}/questionnaire/$"))
    assert page.locator("h1").inner_text() == "System Usability Scale (SUS)"
    assert "session 1 complete" in page.content()
    assert not UNBLINDING.search(page.locator("main").inner_text())
    assert page.locator("input[type=radio]:checked").count() == 0  # no default answers
    for number, value in enumerate(SUS_CHOICES[:-1], start=1):
        page.locator(f"input[name=sus_{number}][value='{value}']").check()
    page.get_by_role("button", name="Submit answers").click()
    assert "Item 10: missing" in page.locator("[role=alert]").inner_text()
    assert not QuestionnaireResponse.objects.exists()
    page.screenshot(path=str(shots / "questionnaire-sus-refused.png"), full_page=True)
    page.locator(f"input[name=sus_10][value='{SUS_CHOICES[-1]}']").check()
    page.get_by_role("button", name="Submit answers").click()

    page.wait_for_url(re.compile(rf"/read/{sus_study.pk}/$"))
    assert page.locator("h1").inner_text() == "Session 1 of 2 complete"
    stored = QuestionnaireResponse.objects.get()
    answers = {f"sus_{n}": v for n, v in enumerate(SUS_CHOICES, start=1)}
    assert stored.answers == answers
    assert stored.scores["score"] == score_sus(answers).score == 77.5
    assert page.evaluate("window.__cspViolations") == []
    page.get_by_role("link", name="Continue with session 2").click()
    wait_ready(page)
    assert current_trial(page).session.index == 1
