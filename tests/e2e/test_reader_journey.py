"""Issue 14: a reader's whole journey through a two-stage, two-session study in Debian's chromium.

The study has an unaided arm and an AI + Grad-CAM arm (a real demo study: the demo dataset, the
demo architecture, predictions and heatmaps precomputed by the engine), an internal title and
description readers must never see, and a reader-facing title. The reader consents, reads
session 1, gets a page that says the session is complete, continues with session 2 when ready
and ends on a page that says the study is complete. On the way:

* the reader-facing title is on every page and the internal title and description on none;
* every trial page has one h1 naming the case;
* the confidence slider draws no handle until the reader sets it (its pixels are looked at), a
  submit that leaves it unset is refused next to the field, and the keyboard sets it;
* the final stage shows the reader's own unaided answer, read-only, beside the final questions;
* at 1280x800 and at 1920x1080, with the question list scrolled to its end, the AI output and
  the Submit button are both inside the viewport.

Screenshots are left in var/test-artifacts/screenshots/ (or $XRS_TEST_ARTIFACTS).
"""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from studies import services
from studies.models import Enrollment, Response, Trial
from tests.e2e.reading_helpers import (
    FULL_HD,
    choose_diagnosis,
    current_trial,
    submit,
    wait_ready,
    wait_saved,
    wait_stage_heading,
)
from tests.e2e.test_csp import WATCH_JS
from tests.explain.engine_fixtures import import_demo_collection, register_demo_architecture

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LAPTOP_800 = (1280, 800)
INTERNAL_TITLE = "QZ-INTERNAL Grad-CAM reliance protocol v3"
INTERNAL_DESCRIPTION = "QZ-PROTOCOL arm B shows Grad-CAM heatmaps"
READER_TITLE = "Chest image reading 2026"
READER_DESCRIPTION = "You will read chest images in two sessions."
MAIN_CASES = 4


@pytest.fixture
def journey_study(coordinator, demo_dataset, tmp_path, eager):
    collection = import_demo_collection(demo_dataset, name="journey")
    model = register_demo_architecture(tmp_path, name="journey-net")
    study = services.study_create(
        acting_user=coordinator,
        title=INTERNAL_TITLE,
        description=INTERNAL_DESCRIPTION,
        reader_title=READER_TITLE,
        reader_description=READER_DESCRIPTION,
        model=model,
        collections=[collection],
        consent_text="I agree to take part in this reader study.",
        instructions="Read each case and answer the questions.",
        protocol="two_stage",
        design="latin_square",
        sessions=2,
    )
    services.arm_add(acting_user=coordinator, study=study, kind="unaided")
    services.arm_add(acting_user=coordinator, study=study, kind="ai_explainer", explainer="gradcam")
    services.questions_add_defaults(acting_user=coordinator, study=study)
    services.study_cases_select(acting_user=coordinator, study=study, main_count=MAIN_CASES)
    services.study_precompute(acting_user=coordinator, study=study)
    return services.study_open(acting_user=coordinator, study=study)


@pytest.fixture
def enrolled_reader(journey_study, coordinator, reader_a):
    services.study_role_add(acting_user=coordinator, study=journey_study, user=reader_a, role="reader")
    return reader_a


# Checks ---------------------------------------------------------------------------------------


def assert_reader_title(page) -> None:
    """The page names the study by its reader-facing title only (and broke no CSP rule)."""
    assert page.evaluate("window.__cspViolations") == [], page.url
    html = page.content()
    assert READER_TITLE in page.title(), page.title()
    assert "QZ-INTERNAL" not in html and "QZ-PROTOCOL" not in html, page.url


def handle_pixels(page, key: str = "confidence") -> int:
    """How many pixels of the slider look like its handle: the accent blue (#5fb3ff), which no
    other part of the slider uses."""
    shot = page.locator(f"[data-question={key}] input[type=range]").screenshot()
    with Image.open(io.BytesIO(shot)) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    return sum(count for count, (r, g, b) in colours if r < 140 and g > 150 and b > 220)


def assert_unset_slider(page) -> None:
    box = page.locator("[data-question=confidence]")
    assert box.locator("output").inner_text() == "not set"
    assert box.locator("input[type=range]").get_attribute("aria-valuetext") == "not set"
    assert handle_pixels(page) == 0, "an unset slider draws no handle"


def set_slider_by_keyboard(page, steps: int) -> None:
    slider = page.locator("[data-question=confidence] input[type=range]")
    slider.focus()
    for _ in range(abs(steps)):
        page.keyboard.press("ArrowRight" if steps > 0 else "ArrowLeft")
    value = str(50 + steps)
    assert slider.input_value() == value
    assert page.locator("[data-question=confidence] output").inner_text() == value
    assert handle_pixels(page) > 10, "a set slider draws its handle"
    assert page.locator("[data-error-for=confidence]").is_hidden()  # answered: no longer marked


def refuse_unset_slider(page, trial: Trial) -> None:
    """A submit with the slider left unset is refused next to the slider; nothing is stored."""
    stored = Response.objects.filter(trial=trial).count()
    submit(page)
    error = page.locator("[data-error-for=confidence]")
    error.wait_for(state="visible")
    assert error.inner_text() == "an answer is required"
    assert page.locator(".field-error:visible").count() == 1
    assert Response.objects.filter(trial=trial).count() == stored


def in_viewport(page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    width, height = page.viewport_size["width"], page.viewport_size["height"]
    return (
        box is not None and box["y"] >= 0 and box["x"] >= 0
        and box["y"] + box["height"] <= height and box["x"] + box["width"] <= width
    )


def assert_ai_and_submit_stay_visible(page) -> None:
    """Scroll the question list to its end: the AI output and Submit are still on screen."""
    page.locator("[data-question]").last.scroll_into_view_if_needed()
    page.evaluate(
        "() => { const p = document.querySelector('.trial-panel'); p.scrollTop = p.scrollHeight; }"
    )
    page.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")
    assert in_viewport(page, "[data-question]:last-of-type"), "the last question is reachable"
    assert in_viewport(page, "[data-ai]"), "the AI output left the screen"
    assert in_viewport(page, "[data-submit]"), "the Submit button left the screen"


def answer_final_likert(page) -> list[str]:
    keys = page.locator("[data-question].question-likert").evaluate_all(
        "(boxes) => boxes.map((box) => box.dataset.question)"
    )
    for key in keys:
        page.locator(f"label[for=q-{key}-3]").click()
    return keys


# The journey --------------------------------------------------------------------------------


def read_trial(page, number: int, session: int, shots) -> None:
    wait_ready(page)
    trial = current_trial(page)
    assert_reader_title(page)
    heading = page.locator("h1")
    assert heading.count() == 1
    assert heading.inner_text().startswith(f"Case {number} of 2, session {session} of 2")
    choose_diagnosis(page, "nodule")
    assert_unset_slider(page)
    refuse_unset_slider(page, trial)
    if (session, number) == (1, 1):
        page.screenshot(path=str(shots / "journey-unset-slider-refused.png"))
    set_slider_by_keyboard(page, 12)
    if (session, number) == (1, 1):
        page.locator("[data-question=confidence]").screenshot(path=str(shots / "journey-slider-set.png"))
    if trial.arm.shows_ai:
        wait_stage_heading(page, "Your answer before the AI output")
        submit(page)
        wait_stage_heading(page, "Your final answer")
        page.locator("[data-ai]").wait_for(state="visible")
        assert Response.objects.get(trial=trial).answers == {"diagnosis": "nodule", "confidence": 62}
        first = page.locator("[data-first-answer=diagnosis]")
        assert first.inner_text() == "Your answer before the AI output: nodule"
        assert page.locator("[data-first-answer=confidence]").inner_text() == (
            "Your answer before the AI output: 62 of 100"
        )
        assert first.locator("input").count() == 0  # read-only
        assert_unset_slider(page)  # the final confidence starts unset too
        page.screenshot(path=str(shots / f"journey-final-stage-top-{session}-{number}.png"))
        panel_scrolls = page.evaluate(
            "() => { const p = document.querySelector('.trial-panel'); return p.scrollHeight > p.clientHeight; }"
        )
        assert panel_scrolls, "at 1280x800 the default questions do not fit: the panel scrolls"
        assert_ai_and_submit_stay_visible(page)
        page.screenshot(path=str(shots / f"journey-final-stage-scrolled-{session}-{number}.png"))
        wide = page.context.new_page()
        wide.set_viewport_size({"width": FULL_HD[0], "height": FULL_HD[1]})
        wide.goto(page.url)
        wait_ready(wide)
        wait_stage_heading(wide, "Your final answer")
        assert_ai_and_submit_stay_visible(wide)
        wide.close()
        choose_diagnosis(page, "normal")
        assert "region_agreement" in answer_final_likert(page)
        refuse_unset_slider(page, trial)
        set_slider_by_keyboard(page, -20)
    submit(page)
    wait_saved(page)
    assert Trial.objects.get(pk=trial.pk).state == Trial.State.DONE
    page.keyboard.press("Enter")  # Next case


def test_a_reader_reads_two_sessions_with_a_break_between_them(
    live_server, journey_study, enrolled_reader, new_page, artifacts_dir
):
    shots = artifacts_dir / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    page = new_page(viewport=LAPTOP_800, user=enrolled_reader, base_url=live_server.url)
    page.add_init_script(WATCH_JS)
    page.goto(f"{live_server.url}/read/")
    assert READER_TITLE in page.content() and READER_DESCRIPTION in page.content()
    assert "QZ-INTERNAL" not in page.content() and "QZ-PROTOCOL" not in page.content()
    page.get_by_role("link", name="Read the consent").click()
    assert_reader_title(page)
    assert READER_DESCRIPTION in page.content()
    page.get_by_role("button", name="I agree").click()
    assert_reader_title(page)
    page.get_by_role("link", name="Start").click()

    for number in (1, 2):
        if number == 1:
            wait_ready(page)
            page.screenshot(path=str(shots / "journey-first-stage-unset-slider.png"))
        read_trial(page, number, 1, shots)

    # The break between the sessions.
    page.wait_for_url(re.compile(rf"/read/{journey_study.pk}/$"))
    assert_reader_title(page)
    assert page.locator("h1").inner_text() == "Session 1 of 2 complete"
    assert "Take a break; continue when ready." in page.content()
    page.screenshot(path=str(shots / "journey-session-break.png"))
    enrollment = Enrollment.objects.get(study=journey_study, reader=enrolled_reader)
    assert enrollment.sessions.get(index=1).started_at is None  # nothing opened behind the break
    page.get_by_role("link", name="Continue with session 2").click()

    for number in (1, 2):
        read_trial(page, number, 2, shots)

    page.wait_for_url(re.compile(rf"/read/{journey_study.pk}/$"))
    assert_reader_title(page)
    assert page.locator("h1").inner_text() == "Study complete"
    assert "Session 2 of 2 complete. You have read every case of this study. Thank you!" in (
        page.locator("[data-session-done]").inner_text()
    )
    page.screenshot(path=str(shots / "journey-study-complete.png"))
    assert Response.objects.filter(trial__session__enrollment=enrollment).count() == 6
