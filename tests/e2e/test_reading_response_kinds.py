"""A reader answers, in chromium, the response kinds of issue 17 in an arm that shows the AI: a
0-100 probability slider with no default position (submitting it untouched shows the problem
next to it and sends nothing), accept / modify / reject of the AI advice and a BI-RADS
category; the answer arrives in the database once. An arm without the AI asks no advice.

The study is built here (the study of reading_helpers.py has none of these questions): an
unaided and an AI arm, one stage, a Latin-square split of two demo cases."""

from __future__ import annotations

import uuid

import pytest

from studies import services
from studies.models import Enrollment, Response
from studies.services.reading import enrollment_consent, trial_answer, trial_show
from tests.e2e.reading_helpers import (
    UNBLINDING,
    ai_box_shown,
    choose_diagnosis,
    schedule,
    submit,
    trial_url,
    wait_ready,
    wait_saved,
)
from tests.explain.engine_fixtures import import_demo_collection, register_demo_architecture

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

BIRADS = ["1 negative", "2 benign", "3 probably benign", "4 suspicious", "5 highly suggestive"]
ANSWER_PATH = "/answer/"


@pytest.fixture
def kinds_reader(coordinator, reader_a, demo_dataset, tmp_path, eager):
    """reader_a, consented, in an open one-stage study with an unaided and an AI arm whose
    questions are a diagnosis, a probability, the advice and a BI-RADS category."""
    study = services.study_create(
        acting_user=coordinator,
        title="Response kinds reading",
        model=register_demo_architecture(tmp_path, name="kinds-net"),
        collections=[import_demo_collection(demo_dataset, name="kinds")],
        consent_text="I agree to take part in this reader study.",
        design="latin_square",
        sessions=1,
    )
    services.arm_add(acting_user=coordinator, study=study, kind="unaided")
    services.arm_add(acting_user=coordinator, study=study, kind="ai")
    for values in (
        {"key": "diagnosis", "kind": "diagnosis", "text": "What is your diagnosis?"},
        {"key": "malignancy", "kind": "probability", "text": "Probability of a nodule (0-100)?"},
        {"key": "advice", "kind": "advice", "text": "What do you do with the advice?"},
        {"key": "birads", "kind": "ordinal", "text": "Category?", "options": BIRADS},
    ):
        services.question_add(acting_user=coordinator, study=study, **values)
    services.study_cases_select(acting_user=coordinator, study=study, main_count=2)
    services.study_precompute(acting_user=coordinator, study=study)
    services.study_open(acting_user=coordinator, study=study)
    services.study_role_add(acting_user=coordinator, study=study, user=reader_a, role="reader")
    enrollment = Enrollment.objects.get(study=study, reader=reader_a)
    enrollment_consent(
        acting_user=reader_a, enrollment=enrollment, consent_version=study.consent_version
    )
    return reader_a


def test_the_probability_must_be_touched_and_the_advice_and_category_are_stored_once(
    live_server, kinds_reader, new_page
):
    page = new_page(user=kinds_reader, base_url=live_server.url)
    posted = []
    page.on("request", lambda r: posted.append(r.url) if r.url.endswith(ANSWER_PATH) else None)
    trials = schedule(kinds_reader)
    assert sorted(t.arm.shows_ai for t in trials) == [False, True]
    for trial in trials:
        page.goto(trial_url(live_server, trial))
        wait_ready(page)
        assert not UNBLINDING.search(page.locator("body").inner_text())
        if not trial.arm.shows_ai:
            assert page.locator("[data-question=advice]").count() == 0
            assert page.locator("[data-question=birads] input[type=radio]").count() == len(BIRADS)
            trial_show(acting_user=kinds_reader, trial=trial)
            trial_answer(
                acting_user=kinds_reader,
                trial=trial,
                stage="final",
                answers={"diagnosis": "normal", "malignancy": 10, "birads": BIRADS[0]},
                client_key=uuid.uuid4(),
            )
            continue
        assert ai_box_shown(page)
        box = page.locator("[data-question=malignancy]")
        slider = box.locator("input[type=range]")
        # no position until touched: the thumb is not drawn and the value reads "not set"
        assert "unset" in slider.get_attribute("class")
        assert box.locator("output").inner_text() == "not set"
        assert slider.get_attribute("aria-valuetext") == "not set"
        labels = page.locator("[data-question=birads] label.choice").all_inner_texts()
        assert labels == BIRADS  # in their order
        assert page.locator("[data-question=advice] label.choice").all_inner_texts() == [
            "Accept",
            "Modify",
            "Reject",
        ]

        choose_diagnosis(page, "nodule")
        page.locator("[data-question=advice] label.choice", has_text="Modify").click()
        page.locator("[data-question=birads] label.choice", has_text=BIRADS[3]).click()
        submit(page)
        error = box.locator("[data-error-for=malignancy]")
        error.wait_for(state="visible")
        assert error.inner_text() == "move the slider to give your answer"
        assert slider.get_attribute("aria-invalid") == "true"
        assert page.evaluate("document.activeElement.name") == "malignancy"
        assert "nothing was saved yet" in page.locator("[data-status]").inner_text()
        assert posted == [] and not Response.objects.filter(trial=trial).exists()

        slider.focus()  # the keyboard sets it: the first key press gives it a position
        for _ in range(3):
            page.keyboard.press("ArrowRight")
        assert box.locator("output").inner_text() == "53"
        assert "unset" not in slider.get_attribute("class")
        assert error.is_hidden()
        submit(page)
        wait_saved(page)
        assert len(posted) == 1
        stored = Response.objects.get(trial=trial)
        assert stored.answers == {
            "diagnosis": "nodule",
            "malignancy": 53,
            "advice": "modify",
            "birads": BIRADS[3],
        }
    assert Response.objects.filter(trial__in=trials).count() == 2
