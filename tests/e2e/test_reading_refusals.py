"""Reading in chromium: a finished trial cannot be reopened or answered again, and a missing
required answer is shown next to its field.

The study and helpers are in reading_helpers.py.
"""

from __future__ import annotations

import uuid

import pytest

from studies.models import Response, Trial
from tests.e2e import reading_helpers
from tests.e2e.reading_helpers import (
    POST_JSON_JS,
    ai_box_shown,
    answer_likert,
    choose_diagnosis,
    read_by_service,
    responses,
    schedule,
    slide_confidence,
    submit,
    trial_url,
    wait_ready,
    wait_saved,
    wait_stage_heading,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# The fixtures of reading_helpers.py.
reading_study = reading_helpers.reading_study
consented_reader = reading_helpers.consented_reader


def refused_in_page(page) -> None:
    """Answer the (finished) trial a page still shows: the page says it is refused."""
    choose_diagnosis(page, "normal")
    page.locator("[data-question=confidence] input[type=range]").focus()
    for _ in range(3):  # (a page restored by Back may show the earlier answers, not 50)
        page.keyboard.press("ArrowLeft")
    submit(page)
    status = page.locator("[data-status]")
    status.get_by_role("link", name="Reload the case").wait_for()
    assert "this trial is finished; answers cannot be changed and you cannot go back" in (
        status.inner_text()
    )
    assert page.locator("[data-done]").is_hidden() and not ai_box_shown(page)


def test_a_finished_trial_cannot_be_reopened_or_answered_again(
    live_server, reading_study, consented_reader, new_page
):
    first, second = schedule(consented_reader)[:2]
    page = new_page(user=consented_reader, base_url=live_server.url)
    page.goto(trial_url(live_server, first))  # e.g. a bookmark, or the page reloaded
    wait_ready(page)
    other_tab = page.context.new_page()  # the same trial left open in another tab
    other_tab.goto(trial_url(live_server, first))
    wait_ready(other_tab)
    choose_diagnosis(page, "nodule")
    slide_confidence(page, 5)
    submit(page)
    wait_saved(page)
    page.keyboard.press("Enter")
    page.wait_for_url(trial_url(live_server, second))
    wait_ready(page)
    stored = Response.objects.count()
    assert responses(first) == ["final"]

    # Back: whatever the browser shows for the finished trial's address (the next trial, or
    # its own cached copy of the finished trial's page), nothing can be answered there again.
    page.go_back()
    page.wait_for_load_state()
    wait_ready(page)
    if page.url == trial_url(live_server, first):
        assert page.locator("[data-progress]").inner_text().startswith("Case 1 of")
        refused_in_page(page)
    else:
        assert page.url == trial_url(live_server, second)
        assert page.locator("[data-progress]").inner_text().startswith("Case 2 of")

    # Opening the finished trial's address leads to the next trial.
    page.goto(trial_url(live_server, first))
    assert page.url == trial_url(live_server, second)
    wait_ready(page)
    assert page.locator("[data-progress]").inner_text().startswith("Case 2 of")
    heading = "Your answer before the AI output" if second.arm.shows_ai else "Your answer"
    assert page.locator("[data-stage-heading]").inner_text() == heading

    # The other tab still shows the first trial's form: answering it is refused.
    refused_in_page(other_tab)

    # So is a hand-made request, for either stage.
    answer_url = f"/api/v1/reading/trials/{first.uid}/answer/"
    for stage in ("final", "first"):
        body = {
            "stage": stage,
            "answers": {"diagnosis": "normal", "confidence": 1},
            "client_key": str(uuid.uuid4()),
        }
        refused = page.evaluate(POST_JSON_JS, [answer_url, body])
        assert refused["status"] == 400, refused
        assert "this trial is finished" in refused["data"]["detail"]
    assert Response.objects.count() == stored
    assert Response.objects.get(trial=first).answers == {"diagnosis": "nodule", "confidence": 55}


def test_a_missing_required_answer_is_shown_next_to_its_field_and_typed_answers_stay(
    live_server, consented_reader, new_page
):
    planned = schedule(consented_reader)
    target = next(t for t in planned if t.arm.shows_heatmap)  # asks every Likert item
    for trial in planned[: planned.index(target)]:
        read_by_service(consented_reader, trial)
    page = new_page(user=consented_reader, base_url=live_server.url)
    page.goto(trial_url(live_server, target))
    wait_ready(page)

    # The unaided stage: a diagnosis, but the confidence slider never touched.
    choose_diagnosis(page, "nodule")
    submit(page)
    error = page.locator("[data-question=confidence] [data-error-for=confidence]")
    error.wait_for(state="visible")
    assert error.inner_text() == "an answer is required"
    assert "invalid" in page.locator("[data-question=confidence]").get_attribute("class")
    slider = page.locator("[data-question=confidence] input[type=range]")
    assert slider.get_attribute("aria-invalid") == "true"
    assert page.evaluate("document.activeElement.name") == "confidence"
    assert page.locator("[data-error-for=diagnosis]").is_hidden()
    assert page.locator("[data-question=diagnosis] input[value=nodule]").is_checked()
    assert "nothing was saved yet" in page.locator("[data-status]").inner_text()
    assert not ai_box_shown(page)
    target.refresh_from_db()
    assert responses(target) == [] and target.state == Trial.State.SHOWN
    slide_confidence(page, 25)
    submit(page)
    wait_stage_heading(page, "Your final answer")
    assert Response.objects.get(trial=target).answers == {"diagnosis": "nodule", "confidence": 75}

    # The final stage: one Likert item left out.
    choose_diagnosis(page, "normal")
    slide_confidence(page, -10)
    answer_likert(page, ["clarity", "usefulness", "region_agreement"])
    submit(page)
    error = page.locator("[data-question=trust] [data-error-for=trust]")
    error.wait_for(state="visible")
    assert error.inner_text() == "an answer is required"
    assert (
        page.locator("[data-question=trust] input[type=radio]").first.get_attribute("aria-invalid")
        == "true"
    )
    assert page.locator("[data-question=diagnosis] input[value=normal]").is_checked()
    assert slider.input_value() == "40"
    assert (
        page.locator("#q-clarity-3").is_checked() and page.locator("#q-usefulness-2").is_checked()
    )
    assert page.locator("#q-region_agreement-2").is_checked()
    assert page.locator(".field-error:visible").count() == 1
    assert responses(target) == ["first"]
    page.locator("label[for=q-trust-4]").click()
    submit(page)
    wait_saved(page)
    assert responses(target) == ["first", "final"]
    assert Response.objects.get(trial=target, stage="final").answers == {
        "diagnosis": "normal",
        "confidence": 40,
        "clarity": 4,
        "usefulness": 3,
        "trust": 5,
        "region_agreement": 3,
    }
