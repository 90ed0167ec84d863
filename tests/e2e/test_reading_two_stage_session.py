"""Issue 5's acceptance test: an invited reader consents and reads a real two-stage study in
Debian's chromium, with mouse and keyboard.

The study and helpers are in reading_helpers.py.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlparse

import pytest

from studies import services
from studies.models import Arm, Enrollment, ReaderProfile, Response, Trial
from studies.selectors import questions_for
from tests.e2e import reading_helpers
from tests.e2e.reading_helpers import (
    ARM_NAMES,
    FULL_HD,
    LOAD_BOUND_S,
    MAIN_CASES,
    READER_EMAIL,
    READER_PASSWORD,
    READY_TIMER_JS,
    ai_box_shown,
    answer_likert,
    canvas,
    choose_diagnosis,
    current_trial,
    file_status,
    load_times,
    loaded_files,
    readout,
    responses,
    schedule,
    slide_confidence,
    submit,
    trial_url,
    wait_ready,
    wait_saved,
    wait_stage_heading,
    write_timings,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# The fixtures of reading_helpers.py.
reading_study = reading_helpers.reading_study
consented_reader = reading_helpers.consented_reader


def test_invited_reader_consents_and_reads_a_two_stage_session_with_mouse_and_keyboard(
    live_server, reading_study, coordinator, mailoutbox, new_page, artifacts_dir
):
    _, token = services.invitation_create(
        acting_user=coordinator, study=reading_study, email=READER_EMAIL
    )
    (mail,) = mailoutbox
    link = re.search(r"https?://\S+/invite/\S+/", mail.body).group()
    assert token in link and mail.to == [READER_EMAIL]

    # 1. The invitation: set a password and the profile; the reader is signed in.
    page = new_page(viewport=FULL_HD)
    page.add_init_script(READY_TIMER_JS)
    page.goto(live_server.url + urlparse(link).path)
    page.fill("#id_password", READER_PASSWORD)
    page.fill("#id_password_again", READER_PASSWORD)
    page.fill("#id_years_experience", "7")
    page.fill("#id_specialty", "thoracic radiology")
    page.select_option("#id_is_radiologist", "yes")
    page.get_by_role("button", name="Create my account and accept").click()
    page.wait_for_url(f"{live_server.url}/read/")
    # readers see the reader-facing title (here the neutral one), never the internal title
    assert "Welcome! You are a reader in 'Reader study'." in page.content()
    assert "Lung nodule reading" not in page.content()
    reader = Enrollment.objects.get(study=reading_study).reader
    assert reader.username == READER_EMAIL
    profile = ReaderProfile.objects.get(user=reader)
    assert (profile.years_experience, profile.specialty, profile.is_radiologist) == (
        7,
        "thoracic radiology",
        True,
    )

    # 2. Consent, then start reading.
    page.get_by_role("link", name="Read the consent").click()
    assert "I agree to take part in this reader study." in page.content()
    page.get_by_role("button", name="I agree").click()
    page.locator(".messages", has_text="your consent is recorded").wait_for()
    assert Enrollment.objects.get(study=reading_study).consented_at is not None
    page.get_by_role("link", name="Start").click()

    # 3. Every trial of the session, in the order the schedule says.
    planned = schedule(reader)
    assert [t.arm.code for t in planned].count("A") == 2 and len(planned) == MAIN_CASES + 1
    loads, reloaded = [], False
    for number, expected in enumerate(planned, start=1):
        page.wait_for_url(trial_url(live_server, expected))
        loads.append({"arm": ARM_NAMES[expected.arm.code], **load_times(page)})
        trial = current_trial(page)
        assert page.locator("[data-progress]").inner_text() == (
            f"Case {number} of {MAIN_CASES + 1}, session 1 of 1"
        )
        assert page.locator(".badge-training").is_visible() == (trial.kind == "training")
        two_stage = trial.arm.shows_ai
        heatmap = trial.arm.kind == Arm.Kind.PLACEBO or trial.arm.explainer == "gradcam"

        # The viewer: a left drag changes the window (readout and pixels), then i and +.
        before, wl = canvas(page), readout(page, "viewer-wl")
        assert before["lit"] > 0.05 * before["width"] * before["height"]  # the image is drawn
        box = page.get_by_test_id("viewer-canvas").bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x - 160, y + 90, steps=10)
        page.mouse.up()
        dragged = canvas(page)
        assert readout(page, "viewer-wl") != wl
        assert dragged != before
        page.keyboard.press("i")
        inverted = canvas(page)
        assert inverted != dragged
        assert page.get_by_test_id("viewer-inverted").is_visible()
        zoom = readout(page, "viewer-zoom")
        page.keyboard.press("+")
        assert readout(page, "viewer-zoom") != zoom
        unaided_view = canvas(page)
        assert unaided_view != inverted

        # The unaided answer: no AI output anywhere before it is stored.
        html = page.content()
        assert not ai_box_shown(page) and not page.locator("[data-similar]").is_visible()
        assert not page.get_by_test_id("viewer-overlay-toggle").is_visible()
        assert "files/overlay" not in html and "files/similar-" not in html
        assert "pixels" in loaded_files(page) and set(loaded_files(page)) <= {"pixels", "display"}
        if heatmap:
            assert file_status(page, trial, "overlay") == 404
        payload = json.loads(page.locator("#trial-payload").inner_text())
        assert payload["ai"] is None and payload["overlay_url"] is None
        assert payload["similar_cases"] == []
        choose_diagnosis(page, "nodule")
        slide_confidence(page, 12)
        if two_stage:
            wait_stage_heading(page, "Your answer before the AI output")
            submit(page)
            page.locator("[data-ai]").wait_for(state="visible")
            wait_stage_heading(page, "Your final answer")
            assert responses(trial) == ["first"]
            first = Response.objects.get(trial=trial)
            assert first.answers == {"diagnosis": "nodule", "confidence": 62}
            assert first.interactions["window_changes"] == 1
            assert first.interactions["invert_toggles"] == 1
            assert first.interactions["zoom_changes"] == 1
            assert re.fullmatch(r"(normal|nodule)", page.locator("[data-ai-label]").inner_text())
            assert re.fullmatch(r"\d{1,3}%", page.locator("[data-ai-probability]").inner_text())
            if heatmap:  # the overlay came with the AI output and `h` hides and shows it
                assert "overlay" in loaded_files(page)
                assert file_status(page, trial, "overlay") == 200
                toggle = page.get_by_test_id("viewer-overlay-toggle")
                assert toggle.is_visible()
                shown = canvas(page)
                assert shown != unaided_view
                page.keyboard.press("h")
                assert toggle.get_attribute("aria-pressed") == "false"
                assert canvas(page) == unaided_view  # exactly the image without the heatmap
                page.keyboard.press("h")
                assert canvas(page) == shown
            else:  # similar cases: thumbnails with their reference labels, no overlay
                assert not page.get_by_test_id("viewer-overlay-toggle").is_visible()
                figures = page.locator("[data-similar] figure")
                assert figures.count() >= 1 and page.locator("[data-similar]").is_visible()
                page.wait_for_function(
                    "() => [...document.querySelectorAll('[data-similar] img')]"
                    ".every((img) => img.complete && img.naturalWidth > 0)"
                )
                for caption in figures.locator("figcaption").all_inner_texts():
                    assert caption in ("nodule", "no nodule", "unknown")

            # 4. A reload between the unaided and the final answer resumes the final stage.
            if not reloaded:
                reloaded = True
                started = trial.started_at
                page.reload()
                wait_ready(page)
                assert page.url == trial_url(live_server, trial)
                wait_stage_heading(page, "Your final answer")
                assert ai_box_shown(page)
                trial.refresh_from_db()
                assert trial.started_at == started and trial.state == Trial.State.REVEALED
                assert responses(trial) == ["first"]

            # The final answer, with the Likert items.
            choose_diagnosis(page, "normal")
            slide_confidence(page, -20)
            likert = [
                q.key
                for q in questions_for(study=reading_study, trial=trial, stage="final")
                if q.kind == "likert"
            ]
            heatmap = trial.arm.shows_heatmap
            expected = ["clarity", "usefulness", "trust"] + (["region_agreement"] if heatmap else [])
            assert likert == expected  # similar cases highlight no region
            answer_likert(page, likert)
        else:
            wait_stage_heading(page, "Your answer")
            assert page.locator("[data-question]").count() == 2  # diagnosis, confidence
        submit(page)
        wait_saved(page)
        final = Response.objects.get(trial=trial, stage="final")
        assert responses(trial) == (["first", "final"] if two_stage else ["final"])
        if two_stage:
            assert final.answers == {
                "diagnosis": "normal",
                "confidence": 30,
                "clarity": 4,
                "usefulness": 3,
                "trust": 3,
                **({"region_agreement": 3} if trial.arm.shows_heatmap else {}),
            }
        else:
            assert final.answers == {"diagnosis": "nodule", "confidence": 62}
            assert not ai_box_shown(page)  # the unaided arm never shows the AI
        feedback = page.locator("[data-feedback]")
        assert feedback.is_visible() == (trial.kind == "training")
        if trial.kind == "training":
            assert re.search(
                r"The reference diagnosis is (no nodule|nodule)\.", feedback.inner_text()
            )
        trial.refresh_from_db()
        assert trial.state == Trial.State.DONE
        page.keyboard.press("Enter")  # Next case

    page.wait_for_url(f"{live_server.url}/read/{reading_study.pk}/")
    assert "You have read every case of this study. Thank you!" in page.content()
    assert (
        Response.objects.filter(trial__session__enrollment__reader=reader).count()
        == 2 * (MAIN_CASES + 1) - 2
    )  # the unaided arm's two trials have one stage
    assert all(load["ready_ms"] < LOAD_BOUND_S * 1000 for load in loads), loads
    write_timings(artifacts_dir, "walkthrough_first_visits", loads)
